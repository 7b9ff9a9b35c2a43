//! `paxoskv sim`: run seeds through the simulator and report.

use std::fs::File;
use std::io::BufWriter;
use std::ops::RangeInclusive;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use paxoskv::paxos::InjectedBug;
use paxoskv::sim::{
    run_seed, run_seeds, Drawn, FaultPlan, NetworkConfig, ReadMode, RunOptions, RunReport, SimConfig, Tracer,
};
use paxoskv::trace::{Clock, Header, Source};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    paxoskv sim --replicas 5 --seeds 1..200 --loss 0.2 --partitions --crashes\n  \
    paxoskv sim --seed 7 --crashes --trace run.jsonl\n\n\
    Each run has a safety phase (--duration-ms) with the chosen faults, then a liveness phase \
    with every fault healed that must finish all client operations and converge. The last line \
    is `violations: N`; the exit code is 1 if N > 0.")]
pub struct SimArgs {
    /// Replicas in the group (1, 3, 5, 7, ...; a group of one has no
    /// partitions and never loses its disk).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    replicas: u32,
    /// Run one seed (prints a detailed summary).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run a range of seeds: `A..B` is A to B-1, `A..=B` includes B.
    #[arg(long, value_parser = parse_seed_range)]
    seeds: Option<RangeInclusive<u64>>,
    /// Length of the safety (fault) phase, in simulated milliseconds.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Bound on the liveness phase: after healing, clients must finish and
    /// replicas converge within this many simulated milliseconds.
    #[arg(long, default_value_t = 10_000)]
    liveness_ms: u64,
    /// Concurrent simulated clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Distinct keys the clients use (fewer keys, more contention).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    keys: u32,
    /// Probability that a message between replicas is lost.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    loss: f64,
    /// Probability that a message between replicas is delivered twice.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    duplicate: f64,
    /// Minimum one-way message delay, microseconds.
    #[arg(long, default_value_t = 100)]
    delay_min_us: u64,
    /// Mean of the exponential delay added to the minimum, microseconds.
    #[arg(long, default_value_t = 400)]
    delay_mean_us: u64,
    /// Probability that a message is 20x slower (reordering, stragglers).
    #[arg(long, default_value_t = 0.01, value_parser = parse_probability)]
    slow: f64,
    /// Inject network partitions (two-way and one-way) during the safety phase.
    #[arg(long)]
    partitions: bool,
    /// Crash and restart replicas during the safety phase (a crash loses
    /// everything not yet fsynced).
    #[arg(long)]
    crashes: bool,
    /// With --crashes: a crash may tear the group-commit write in flight
    /// (its blocks land in any order, a bit may flip), and some crashes
    /// lose the whole disk (the replica rejoins and relearns its state);
    /// restart recovers from the damaged bytes.
    #[arg(long)]
    disk_faults: bool,
    /// Stall executors during the safety phase: a node stops for up to
    /// --stall-max-ms while time runs on, then works through its backlog.
    #[arg(long)]
    stalls: bool,
    /// Longest executor stall, milliseconds (longer than an election
    /// timeout: the others elect a new leader meanwhile).
    #[arg(long, default_value_t = 300)]
    stall_max_ms: u64,
    /// Mean time between injected partitions/crashes, milliseconds.
    #[arg(long, default_value_t = 400)]
    fault_interval_ms: u64,
    /// Bound on clock drift, parts per thousand (each replica's clock gets a
    /// rate within it; the core's lease is shortened by it) [default: drawn
    /// per seed from 20, 50, 100, 200 with clocks at its ends half the time;
    /// 50 with --pin-knobs].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..500))]
    drift_permille: Option<u64>,
    /// Bound on wall-clock offsets, milliseconds: each replica's wall clock
    /// (batch stamps, expiry) is off the true time by a fixed amount within
    /// it [default: drawn per seed from 0, 20, 400, 5000; 0 with
    /// --pin-knobs].
    #[arg(long)]
    clock_offset_ms: Option<u64>,
    /// Time for an fsync to complete, microseconds [default: drawn per seed
    /// from 50..3000 with jitter; 200 with --pin-knobs].
    #[arg(long)]
    fsync_us: Option<u64>,
    /// Operations each client pipelines on its connection [default: drawn
    /// per seed from 1..=4; 1 with --pin-knobs].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pipeline: Option<u64>,
    /// Client sessions each store remembers [default: 1024, or per seed a
    /// tight table with reconnecting clients; 1024 with --pin-knobs].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    sessions_max: Option<u64>,
    /// Backpressure bound: appended bytes waiting for their fsync beyond
    /// which a node holds requests and entries [default: 65536, or per
    /// seed 8192 or 16384 bytes 30% of the time; 65536 with
    /// --pin-knobs].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    unsynced_bytes_max: Option<u64>,
    /// A leader with an append waiting this long (simulated ms) for its
    /// fsync hands leadership over, if the others can elect a leader
    /// without it; a node behind the backpressure bound starts no
    /// election (0: neither) [default: 200, or per seed 5 or 20 ms 30% of the time;
    /// 200 with --pin-knobs].
    #[arg(long)]
    hand_over_after_ms: Option<u64>,
    /// Do not draw knobs per seed (fsync latency, clock-rate extremes,
    /// election timeouts near the lease, pipeline depth, session pressure,
    /// backpressure bound, hand-over threshold): use the flags' values and
    /// defaults for every seed.
    #[arg(long)]
    pin_knobs: bool,
    /// How reads are served.
    #[arg(long, value_enum, default_value_t = ReadModeArg::Lease)]
    read_mode: ReadModeArg,
    /// Pipelining window: slots in flight at the leader.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    window: u64,
    /// Commands per slot at most (batching).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Each replica snapshots its store and compacts its log every this many
    /// applied slots (0: never). Small values exercise snapshot transfer.
    #[arg(long, default_value_t = 64)]
    snapshot_every: u64,
    /// Election timeout range in ticks (1 tick = 1 simulated ms), e.g.
    /// `150..300`; must stay above the 100-tick lease. Equal bounds make
    /// replicas time out together (dueling proposers) [default: 150..300,
    /// or per seed just above the lease half the time].
    #[arg(long, value_parser = parse_tick_range)]
    election_timeout_ms: Option<(u64, u64)>,
    /// Reads each node may have forwarded to the leader and unanswered at
    /// once; more wait for an answer, with whatever arrives after them
    /// (small values make them wait).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    forward_read_window: u64,
    /// Write a JSON-lines trace of every event (needs --seed).
    #[arg(long, requires = "seed")]
    trace: Option<String>,
    /// Break one protocol rule on purpose, to check that the checkers catch it.
    #[arg(long, value_enum, default_value_t = BugArg::None)]
    inject_bug: BugArg,
    /// Worker threads for a seed range (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print a line per seed.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReadModeArg {
    /// Local reads at a leader holding a lease; read-index otherwise.
    Lease,
    /// Every read confirms leadership with a heartbeat round.
    ReadIndex,
    /// Reads go through the log like writes.
    Log,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BugArg {
    None,
    /// A new leader ignores values reported in promises (breaks agreement).
    IgnorePromisedValues,
    /// The leader lease ignores clock drift (breaks lease-read safety).
    LeaseIgnoresDrift,
    /// Promise/Accepted replies leave before fsync (a crash forgets them).
    ReplyBeforePersist,
    /// Peer messages are stepped without moving the core's clock to now:
    /// after a stall, lease grants are stamped in the past.
    StaleGrantClock,
    /// A replica that lost its disk votes after the restart quarantine only.
    EmptyReplicaVotes,
    /// The leader counts its own vote before its own fsync.
    CountOwnVoteBeforePersist,
    /// A restarted acceptor does not wait out the lease it may have granted.
    NoRestartQuarantine,
    /// Reads without a lease skip the read-index confirmation round.
    ReadIndexWithoutRound,
    /// A new leader ignores the time horizons promises report: its stamps
    /// can fall behind times its predecessor judged reads at.
    StampIgnoresHorizon,
    /// MSET applies its first key, and the others only at the next slot.
    SplitMultiKeyWrites,
    /// A new leader serves reads without closing the slots past its
    /// recovered log where an unknown older batch may lie.
    LeaderLeavesWindowOpen,
    /// Every node answers reads from its own applied state at once: no
    /// lease, no read-index round, no forward to the leader.
    StaleLeaseReads,
    /// The node reports its next timer deadline a tick late: a shell
    /// that sleeps until it fires timeouts late.
    LateTickDeadline,
    /// The simulated disk stamps WAL writes with their segment's index, not
    /// a salt: a re-created log takes a deleted one's exposed writes for its own.
    WalIndexEpochs,
    /// A client's pipelined commands take effect out of the order sent: a
    /// read can miss earlier writes of its connection, or see later ones.
    SessionOrderIgnored,
    /// A read due right after its write is refused when that write ran
    /// below the slots committed when the read arrived, instead of waiting.
    AfterWriteReadRefused,
    /// A node whose held entries pass its backpressure bound holds every
    /// peer frame (its clients' answers too) until its disk catches up.
    PeersUnreadWhileBehind,
    /// A leader unfit to lead names its successor and gives its followers'
    /// lease grants up, but leads on under its lease.
    HandOverWhileLeading,
}

impl BugArg {
    fn bug(self) -> InjectedBug {
        let name = self.to_possible_value().expect("no skipped variants");
        InjectedBug::from_name(name.get_name()).expect("every variant has a core counterpart")
    }
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability in [0, 1]"))
    }
}

fn parse_tick_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{s}` is not a range like 150..300");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let min: u64 = a.trim().parse().map_err(|_| bad())?;
    let max: u64 = b.trim_start_matches('=').trim().parse().map_err(|_| bad())?;
    if min > max {
        return Err(format!("`{s}`: the minimum exceeds the maximum"));
    }
    Ok((min, max))
}

fn parse_seed_range(s: &str) -> Result<RangeInclusive<u64>, String> {
    let bad = || format!("`{s}` is not a seed range like 1..200 or 1..=200");
    let (start, end, inclusive) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        let one: u64 = s.parse().map_err(|_| bad())?;
        return Ok(one..=one);
    };
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    let last = if inclusive { end } else { end.checked_sub(1).ok_or_else(bad)? };
    if last < start {
        return Err(format!("seed range `{s}` is empty"));
    }
    Ok(start..=last)
}

impl SimArgs {
    fn options(&self) -> RunOptions {
        let sim = SimConfig {
            replicas: self.replicas,
            clients: self.clients,
            keys: self.keys,
            network: NetworkConfig {
                delay_min_us: self.delay_min_us,
                delay_mean_us: self.delay_mean_us,
                slow_probability: self.slow,
                slow_factor: 20,
                loss: self.loss,
                duplicate: self.duplicate,
                ..NetworkConfig::default()
            },
            fsync_us: self.fsync_us.unwrap_or(200),
            pipeline: self.pipeline.unwrap_or(1) as usize,
            sessions_max: self.sessions_max.map_or(1024, |n| n as usize),
            unsynced_bytes_max: self.unsynced_bytes_max.map_or(64 << 10, |n| n as usize),
            hand_over_after_us: self.hand_over_after_ms.map_or(200_000, |ms| ms.saturating_mul(1000)),
            drift_permille: self.drift_permille.unwrap_or(50),
            clock_offset_ms: self.clock_offset_ms.unwrap_or(0),
            read_mode: match self.read_mode {
                ReadModeArg::Lease => ReadMode::Lease,
                ReadModeArg::ReadIndex => ReadMode::ReadIndex,
                ReadModeArg::Log => ReadMode::Log,
            },
            election_timeout_ticks: self.election_timeout_ms,
            snapshot_every_slots: self.snapshot_every,
            disk_faults: self.disk_faults,
            window_slots: self.window as usize,
            batch_count_max: self.batch as usize,
            forward_read_window: self.forward_read_window as usize,
            injected_bug: self.inject_bug.bug(),
            ..SimConfig::default()
        };
        let faults = FaultPlan {
            duration_ms: self.duration_ms,
            partitions: self.partitions,
            crashes: self.crashes,
            stalls: self.stalls,
            stall_max_ms: self.stall_max_ms,
            fault_interval_ms: self.fault_interval_ms.max(1),
            liveness_ms: self.liveness_ms,
        };
        let draw = if self.pin_knobs {
            Drawn::NONE
        } else {
            Drawn {
                disk: self.fsync_us.is_none(),
                drift: self.drift_permille.is_none(),
                timeouts: self.election_timeout_ms.is_none(),
                pipeline: self.pipeline.is_none(),
                sessions: self.sessions_max.is_none(),
                clocks: self.clock_offset_ms.is_none(),
                backpressure: self.unsynced_bytes_max.is_none(),
                hand_over: self.hand_over_after_ms.is_none(),
            }
        };
        RunOptions { sim, faults, draw }
    }
}

/// The command line that replays `seed` alone: this one with the seed options replaced.
fn reproduce_command(seed: u64) -> String {
    let mut out = vec!["paxoskv".to_string(), "sim".to_string(), "--seed".to_string(), seed.to_string()];
    let mut args = std::env::args().skip(2);
    while let Some(arg) = args.next() {
        if arg == "--seeds" || arg == "--seed" || arg == "--threads" || arg == "--trace" {
            args.next();
        } else if !(arg.starts_with("--seeds=") || arg.starts_with("--seed=") || arg.starts_with("--threads=")) {
            out.push(arg);
        }
    }
    out.join(" ")
}

pub fn run(args: SimArgs) -> ExitCode {
    let options = args.options();
    if let Err(e) = options.sim.paxos_config().validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let seeds = match (&args.seed, &args.seeds) {
        (Some(seed), _) => *seed..=*seed,
        (None, Some(range)) => range.clone(),
        (None, None) => 1..=1,
    };
    let single = seeds.start() == seeds.end();
    let reports = if let Some(path) = &args.trace {
        let file = match File::create(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: cannot create trace file {path}: {e}");
                return ExitCode::from(2);
            }
        };
        let seed = *seeds.start();
        let mut header = Header::new(Source::Sim, Clock::Sim, options.sim.members());
        header.seed = Some(seed);
        header.command = Some(reproduce_command(seed));
        let tracer = match Tracer::to_writer(Box::new(BufWriter::new(file)), &header) {
            Ok(tracer) => tracer,
            Err(e) => {
                eprintln!("error: cannot write trace file {path}: {e}");
                return ExitCode::from(2);
            }
        };
        vec![run_seed(&options, seed, tracer)]
    } else {
        let threads =
            args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
        // A panic inside a run is caught and reported as a violation with
        // its message; the default hook would also spray it on stderr.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let reports = run_seeds(&options, seeds, threads);
        std::panic::set_hook(hook);
        reports
    };
    let violations = print_reports(&args, &options, &reports, single);
    if let Some(path) = &args.trace {
        println!("trace: {path}");
    }
    println!("violations: {violations}");
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_reports(args: &SimArgs, options: &RunOptions, reports: &[RunReport], single: bool) -> usize {
    let mut violations = 0;
    for r in reports {
        if single || args.verbose {
            print_run(r, single);
        }
        if !r.violations.is_empty() {
            violations += r.violations.len();
            println!("seed {}: {} violation(s)", r.seed, r.violations.len());
            for v in &r.violations {
                println!("  {v}");
            }
            println!("  reproduce with: {}", reproduce_command(r.seed));
        }
    }
    let sum = |f: fn(&RunReport) -> u64| reports.iter().map(f).sum::<u64>();
    let s = &options.sim;
    println!(
        "runs: {}  replicas: {}  clients: {}  read mode: {}  loss: {}  duplicate: {}  partitions: {}  crashes: {}  disk faults: {}  stalls: {}  injected bug: {}",
        reports.len(),
        s.replicas,
        s.clients,
        s.read_mode.as_str(),
        s.network.loss,
        s.network.duplicate,
        options.faults.partitions,
        options.faults.crashes,
        s.disk_faults,
        options.faults.stalls,
        s.injected_bug.name()
    );
    println!(
        "faults injected: {} crashes ({} planned stops, {} torn writes, {} with two writes in flight, {} lost disks, {} with deleted blocks exposed), {} restarts, {} partitions ({} one-way), {} stalls, {} messages lost, {} cut by partitions, {} duplicated, {} client reconnects",
        sum(|r| r.faults.crashes),
        sum(|r| r.faults.planned_stops),
        sum(|r| r.faults.torn_writes),
        sum(|r| r.faults.crashes_beside),
        sum(|r| r.faults.disk_losses),
        sum(|r| r.faults.stale_exposures),
        sum(|r| r.faults.restarts),
        sum(|r| r.faults.partitions + r.faults.one_way_partitions),
        sum(|r| r.faults.one_way_partitions),
        sum(|r| r.faults.stalls),
        sum(|r| r.faults.messages_lost),
        sum(|r| r.faults.messages_cut),
        sum(|r| r.faults.messages_duplicated),
        sum(|r| r.faults.reconnects)
    );
    println!(
        "committed: {} commands in {} slots; client operations: {} completed of {} invoked; leader changes: {}",
        sum(|r| r.committed_commands as u64),
        sum(|r| r.committed_slots),
        sum(|r| r.ops_completed as u64),
        sum(|r| r.ops_invoked as u64),
        sum(|r| r.leader_changes.len() as u64)
    );
    println!(
        "backpressure: nodes began holding requests {} times; {} peer frames with entries dropped over the bound; \
         {} leaders handed over",
        sum(|r| r.backpressure_holds),
        sum(|r| r.peer_frames_dropped),
        sum(|r| r.hand_overs)
    );
    let unknown = sum(|r| r.unknown_keys as u64);
    let failed_runs = reports.iter().filter(|r| !r.violations.is_empty()).count();
    println!(
        "checkers: agreement, read freshness, lease overlap, linearizability ({} keys beyond the search budget), session order, latency, quiet refusal, liveness, tick deadline; {} of {} runs failed",
        unknown,
        failed_runs,
        reports.len()
    );
    violations
}

fn print_run(r: &RunReport, detailed: bool) {
    println!(
        "seed {}: {} commands in {} slots, {}/{} ops completed, {} leader changes, {} crashes, {} partitions, {} messages, {:.1} s simulated",
        r.seed,
        r.committed_commands,
        r.committed_slots,
        r.ops_completed,
        r.ops_invoked,
        r.leader_changes.len(),
        r.faults.crashes,
        r.faults.partitions + r.faults.one_way_partitions,
        r.messages_delivered,
        r.sim_time_us as f64 / 1e6
    );
    if detailed {
        for change in &r.leader_changes {
            println!(
                "  {:>9.1} ms  node {} leads with ballot {}",
                change.t_us as f64 / 1000.0,
                change.node,
                change.ballot
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_like_rust_ranges() {
        assert_eq!(parse_seed_range("1..200").unwrap(), 1..=199);
        assert_eq!(parse_seed_range("1..=200").unwrap(), 1..=200);
        assert_eq!(parse_seed_range("7").unwrap(), 7..=7);
        assert!(parse_seed_range("5..5").is_err());
        assert!(parse_seed_range("a..b").is_err());
    }
}
