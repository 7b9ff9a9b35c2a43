//! `paxoskv server`: run one node of a cluster described by a cluster file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use paxoskv::server::config::{parse_password, ClusterFile, Secret, TuningArgs};

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  \
    paxoskv server --config cluster.toml --node-id 1\n\n\
    The cluster file holds the cluster id (cluster_id: peers of another cluster are refused), every \
    node (id, host, client_port, peer_port, optional metrics_port), the number of shards, the data \
    directory, the peer secret (peer_secret or peer_secret_file), the client password \
    (requirepass) and the [tuning] flags; see README.md. Flags given here \
    override the file. Every node of a cluster must run with the same file.\n\n\
    Peers prove they know the peer secret when a link opens (an HMAC challenge; the secret never \
    crosses the wire, and the traffic after the handshake is not encrypted). Without a secret, \
    only a cluster whose nodes are all on loopback starts, with a warning.\n\n\
    SIGTERM or SIGINT stops the node gracefully: each shard it leads hands its leadership over to \
    the follower furthest along first, and the process exits once it leads nothing (at most 3 s); \
    a second signal exits at once. Nothing acknowledged is lost either way.")]
pub struct ServerArgs {
    /// The cluster file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// This node's id in the cluster file.
    #[arg(long)]
    node_id: u32,
    /// Override the file's data directory (shard s lives in DIR/node-ID/shard-s).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Pin one executor per CPU instead of letting the kernel place them.
    #[arg(long)]
    pin: bool,
    /// This node lost its data (a replaced disk, a corrupt log moved aside):
    /// start it with an empty data directory and this flag, and each shard
    /// relearns its promises and accepted values from a majority of its
    /// peers before it votes again. Without it, an empty directory whose
    /// identity marker is gone looks like a brand-new member, which may
    /// lose acknowledged writes.
    #[arg(long)]
    rejoin: bool,
    /// Read the peer secret from this file (overrides the cluster file's
    /// peer_secret and peer_secret_file). Every node of a cluster needs the
    /// same secret; 32 random bytes make a good one.
    #[arg(long, value_name = "PATH")]
    peer_secret_file: Option<PathBuf>,
    /// Clients must authenticate with this password before any other
    /// command (overrides the cluster file's requirepass). Other local
    /// users can see it in `ps`: the cluster file keeps it private.
    #[arg(long, value_name = "PASSWORD", value_parser = parse_password)]
    requirepass: Option<Secret>,
    /// Write this node's protocol trace (roles, ballots, elections, leases,
    /// commit progress, peer links; see README "Trace format") to
    /// DIR/node-ID-shard-S.jsonl for `paxoskv viz`, rotated at the cluster
    /// file's trace.bytes_max (default 64 MiB, 4 old files kept). Overrides
    /// the cluster file's [trace] dir. Off by default.
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// With tracing on: trace one in N peer messages as arrows (both ends
    /// pick the same ones); 0 for none [default: the cluster file's
    /// trace.messages_every, else 0].
    #[arg(long, value_name = "N")]
    trace_messages_every: Option<u64>,
    #[command(flatten)]
    tuning: TuningArgs,
}

pub fn run(args: ServerArgs) -> ExitCode {
    let mut file = match ClusterFile::load(&args.config) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = args.data_dir {
        file.data_dir = dir;
    }
    if let Some(path) = args.peer_secret_file {
        file.peer_secret = None;
        file.peer_secret_file = Some(path);
    }
    if let Some(password) = args.requirepass {
        file.requirepass = Some(password);
    }
    if let Some(dir) = args.trace_dir {
        let settings = file.trace.get_or_insert_with(|| paxoskv::server::TraceSettings::new(dir.clone()));
        settings.dir = dir;
    }
    if let Some(every) = args.trace_messages_every {
        match file.trace.as_mut() {
            Some(settings) => settings.messages_every = every,
            None => {
                eprintln!("error: --trace-messages-every needs --trace-dir or a [trace] section in the cluster file");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = args.tuning.check_cluster_wide(&file.tuning) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    args.tuning.apply(&mut file.tuning);
    if let Err(e) = file.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let node = args.node_id;
    // A bug in one executor must not leave a half-alive node: log, exit.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        paxoskv::server_log!(node, "-", "FATAL: a panic; exiting so a supervisor restarts the node");
        std::process::exit(101);
    }));
    let stop = ctrlc::set_handler(move || paxoskv::server::stop_on_signal(node));
    if let Err(e) = stop {
        eprintln!("warning: cannot handle Ctrl-C: {e}");
    }
    match paxoskv::server::run(file, node, args.pin, args.rejoin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
