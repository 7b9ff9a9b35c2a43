//! Redis 7.0's replies are the specification: every transcript in
//! `tests/redis_compat/` holds commands and the exact bytes redis-server
//! 7.0 answered them with, in RESP2 and in RESP3, and these tests replay
//! them over raw TCP against paxoskv clusters (one node with one shard; the
//! leader and a follower of a 3-node, 2-shard cluster) and list every reply
//! that differs, all at once. CI needs no redis-server: the transcripts are
//! committed. `benches/record-redis-replies.sh` records them anew (it runs
//! the ignored test [`record_redis_replies`] here).
//!
//! # The transcript format
//!
//! Plain text, one item per line:
//!
//! ```text
//! # A comment. Kept by the recorder, ignored by the checker.
//! %requirepass s3cret        Header (before the first case): the server runs with this
//!                            password. The recorder starts redis-server with
//!                            --requirepass; the checker's cluster file sets requirepass.
//! %protocols 2               Header: replay the file in these protocols (default `2 3`).
//! %recorded-with ...         Header: the redis-server version, written by the recorder.
//!
//! === SET with GET           A case. Before it the harness empties the keyspace (FLUSHALL
//!                            on a connection of its own, closed before the case starts);
//!                            the case's connections are opened on first use and closed
//!                            at its end. In RESP3 each opens with `HELLO 3` (its reply
//!                            must be a map; HELLO's own reply is recorded in hello.txt).
//! > SET {t}a "two words"     A command on connection `a`. Arguments are separated by
//! < +OK                      spaces and taken as written (backslashes too: `{t}h\*llo`),
//!                            or "double quoted" with escapes \" \\ \r \n \t \0 \xHH;
//!                            "" is the empty argument. `${NAME}` is a captured value.
//! b> GET {t}a                A command on connection `b` (labels: lowercase letters and
//! < $9                       digits; commands run one at a time in file order, so a
//! < two words                second connection can make a WATCH conflict).
//! > GET {t}missing
//! 2< $-1                     The reply differs by protocol: `2<` lines for RESP2, `3<`
//! 3< _                       lines for RESP3; `<` lines when both are the same.
//! ```
//!
//! A reply is written one line per CRLF-terminated line of its bytes (a
//! bulk string whose data holds CRLF spans several lines), with `\\`, `\r`,
//! `\n`, `\t` and `\xHH` for other bytes outside printable ASCII, and a
//! trailing space as `\x20`. `< [closed]` means the server closed the
//! connection instead of answering; the label's next command reconnects.
//!
//! By default a reply must match byte for byte. A directive on the line
//! before a command says otherwise:
//!
//! | directive | the reply must |
//! | --- | --- |
//! | `@shape [KEY...]` | have the same type at every position, null-ness, item counts and map keys (in order); map values under the listed keys must be equal too. For HELLO, TIME, COMMAND DOCS/COUNT, CLIENT ID, a RANDOMKEY among several keys. |
//! | `@info [FIELD\|FIELD:VALUE...]` | be INFO text of the same type with the same `# Section` headers in the same order, only `field:value` lines besides, each listed field present (with that value if given). |
//! | `@fields [KEY=VALUE...]` | be CLIENT LIST/INFO text of the same type with as many lines, each with the same keys in the same order, and each listed pair on some line. |
//! | `@unordered` | be an array with the same items in any order (KEYS). |
//! | `@scan` | be the same set of keys once the SCAN is iterated from its cursor until the server returns 0 (recorded as their sorted array; each page must be `[cursor, [keys]]` with a decimal cursor). Cursors themselves are never compared. |
//! | `@range MIN MAX` | be an integer in `MIN..=MAX` (TTL, PTTL after a relative expiry; the recorded value shows what Redis said). Expiry *times* are exact: the cases use EXPIREAT/PXAT far in the future. |
//! | `@eventually` | equal the reply written, after resending the command until it does (within 10 s): a key given a short TTL disappearing. The reply is written by hand and the recorder checks redis-server reaches it. |
//! | `@capture NAME` | have the same shape; its value (integer or bulk string) becomes `${NAME}` for the rest of the case (CLIENT ID for CLIENT KILL). |
//!
//! Keys all carry the hash tag `{t}`, so multi-key commands stay in one
//! shard of a multi-shard cluster. `known-differences.txt` holds cases
//! paxoskv is not expected to match (each with its reason); it is replayed
//! and its mismatches printed, but they do not fail the test.

#[path = "support/compat/mod.rs"]
mod compat;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use compat::cluster::{print_block, wait_until, TestCluster};
use compat::replay::{args, check_transcript, record, Connection, Mismatch, Target};
use compat::transcript::{transcript_paths, variables_in, Check, Outcome, Transcript};
use paxoskv::net::slot::{key_slot, slot_shard};

/// The transcript paxoskv is not expected to match.
const KNOWN_DIFFERENCES: &str = "known-differences.txt";
/// The hash tag every transcript key carries.
const HASH_TAG: &[u8] = b"{t}";

fn transcripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("redis_compat")
}

fn load_all() -> Vec<Transcript> {
    transcript_paths(&transcripts_dir())
        .iter()
        .map(|path| Transcript::load(path).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn is_known_differences(transcript: &Transcript) -> bool {
    transcript.name() == KNOWN_DIFFERENCES
}

/// Replay `transcripts` against `target`; print every mismatch, and return
/// how many there were outside the known differences.
fn check_all<'a>(transcripts: impl IntoIterator<Item = &'a Transcript>, target: &Target) -> usize {
    let mut failures: Vec<Mismatch> = Vec::new();
    let mut known: Vec<Mismatch> = Vec::new();
    let mut commands = 0;
    for transcript in transcripts {
        commands += transcript.commands().count() * transcript.protocols.len();
        let mismatches = check_transcript(transcript, target);
        if is_known_differences(transcript) {
            known.extend(mismatches);
        } else {
            failures.extend(mismatches);
        }
    }
    let mut report = String::new();
    if !known.is_empty() {
        report.push_str(&format!(
            "--- {} known differences on {} (expected; not failures) ---\n",
            known.len(),
            target.description
        ));
        for mismatch in &known {
            report.push_str(&format!("{}:{} {}\n", mismatch.file, mismatch.line, mismatch.command));
        }
    }
    for mismatch in &failures {
        report.push_str(&mismatch.to_string());
    }
    report.push_str(&format!(
        "{}: {} of {commands} replies differ from Redis 7.0 ({} more in {KNOWN_DIFFERENCES})\n",
        target.description,
        failures.len(),
        known.len()
    ));
    print_block(&report);
    failures.len()
}

// ---------------------------------------------------------------------------
// The transcripts themselves
// ---------------------------------------------------------------------------

#[test]
fn transcripts_are_well_formed_and_fully_recorded() {
    let transcripts = load_all();
    assert!(transcripts.len() >= 2, "no transcripts in {}", transcripts_dir().display());
    let mut problems = Vec::new();
    for transcript in &transcripts {
        for case in &transcript.cases {
            let mut captured = Vec::new();
            if case.commands.is_empty() {
                problems.push(format!("{}:{}: case {:?} has no commands", transcript.name(), case.line, case.name));
            }
            for command in &case.commands {
                let place = format!("{}:{}", transcript.name(), command.line);
                for &protocol in &transcript.protocols {
                    match command.expected(protocol) {
                        None => problems.push(format!("{place}: no RESP{protocol} reply recorded")),
                        Some(expected) => {
                            if let Err(e) = compat::replay::judge(&command.check, expected, expected) {
                                problems.push(format!("{place}: the recorded reply fails its own check: {e}"));
                            }
                            if matches!(command.check, Check::Unordered)
                                && !matches!(expected.reply(), Some(r) if r.kind() == b'*')
                            {
                                problems.push(format!("{place}: @unordered on a reply that is not an array"));
                            }
                        }
                    }
                }
                for arg in &command.args {
                    for name in variables_in(arg) {
                        if !captured.contains(&name) {
                            problems.push(format!("{place}: ${{{name}}} is used before a @capture {name}"));
                        }
                    }
                    // A `{` in an argument (other than a `${NAME}`) should be
                    // the shared hash tag, or a multi-key command may span shards.
                    let mut without_variables = String::from_utf8_lossy(arg).into_owned();
                    for name in variables_in(arg) {
                        without_variables = without_variables.replace(&format!("${{{name}}}"), "");
                    }
                    let arg = without_variables.as_bytes();
                    if arg.contains(&b'{') && !arg.windows(HASH_TAG.len()).any(|w| w == HASH_TAG) {
                        problems.push(format!("{place}: an argument with a hash tag other than {{t}}"));
                    }
                }
                if let Check::Capture { name } = &command.check {
                    captured.push(name.clone());
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

// ---------------------------------------------------------------------------
// paxoskv against the recorded replies
// ---------------------------------------------------------------------------

/// The shard that holds every transcript key.
fn transcript_shard(shards: usize) -> usize {
    slot_shard(key_slot(b"{t}a"), shards)
}

#[test]
fn transcripts_match_redis_on_a_one_node_cluster() {
    let transcripts: Vec<Transcript> = load_all().into_iter().filter(|t| t.requirepass.is_none()).collect();
    let cluster = TestCluster::start("transcripts_one_node", 30000, 1, 1, None);
    let target = Target { port: cluster.client_port(1), password: None, description: "1-node cluster".into() };
    let failures = check_all(&transcripts, &target);
    assert_eq!(failures, 0, "{failures} replies differ from Redis 7.0: see the list above");
}

#[test]
fn transcripts_match_redis_through_the_leader_and_a_follower_of_a_sharded_cluster() {
    let transcripts: Vec<Transcript> = load_all().into_iter().filter(|t| t.requirepass.is_none()).collect();
    let mut cluster = TestCluster::start("transcripts_sharded", 30020, 3, 2, None);
    let shard = transcript_shard(cluster.shards());
    let leader = cluster.leader(shard);
    let follower = cluster.node_ids().into_iter().find(|&n| n != leader).expect("3 nodes");
    let mut failures = 0;
    for (node, role) in [(leader, "leader"), (follower, "follower")] {
        let target = Target {
            port: cluster.client_port(node),
            password: None,
            description: format!("node {node} ({role} of shard {shard} of 2)"),
        };
        failures += check_all(&transcripts, &target);
    }
    assert_eq!(failures, 0, "{failures} replies differ from Redis 7.0: see the list above");
}

/// The transcripts with a `%requirepass` header (AUTH, HELLO AUTH, NOAUTH)
/// against a 1-node cluster whose cluster file sets `requirepass`.
#[test]
fn the_requirepass_transcripts_match_redis_on_a_cluster_with_a_password() {
    let transcripts: Vec<Transcript> = load_all().into_iter().filter(|t| t.requirepass.is_some()).collect();
    assert!(!transcripts.is_empty(), "no transcript has a %requirepass header");
    for transcript in &transcripts {
        let password = transcript.requirepass.as_deref();
        let cluster = TestCluster::start("transcripts_requirepass", 30040, 1, 1, password);
        let target = Target {
            port: cluster.client_port(1),
            password: password.map(str::to_string),
            description: "1-node cluster with requirepass".into(),
        };
        let failures = check_all([transcript], &target);
        assert_eq!(failures, 0, "{failures} replies differ from Redis 7.0: see the list above");
    }
}

// ---------------------------------------------------------------------------
// Recording from redis-server (not run by CI)
// ---------------------------------------------------------------------------

/// The ports tried for the recording redis-server (the first free one).
const REDIS_PORTS: std::ops::Range<u16> = 30900..31000;

/// A redis-server started for one transcript, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    fn start(binary: &str, dir: &Path, requirepass: Option<&str>) -> RedisServer {
        let port = REDIS_PORTS
            .clone()
            .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
            .expect("a free port for redis-server");
        std::fs::create_dir_all(dir).expect("creating redis-server's directory");
        let mut command = Command::new(binary);
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        command.arg("--dir").arg(dir);
        if let Some(password) = requirepass {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e} (benches/install-deps.sh installs it)"));
        let server = RedisServer { child, port, dir: dir.to_path_buf() };
        wait_until(&format!("redis-server to answer on port {port}"), || {
            let mut connection = Connection::open(port, 2).ok()?;
            // With requirepass PING answers -NOAUTH: any reply will do.
            let reply = connection.call(&args(&["PING"])).ok()?;
            connection.close().ok()?;
            matches!(reply, Outcome::Reply(_)).then_some(())
        });
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-server --version`'s `v=` field.
fn redis_version(binary: &str) -> String {
    let output = Command::new(binary).arg("--version").output().unwrap_or_else(|e| panic!("running {binary}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .unwrap_or_else(|| panic!("no v= in {binary} --version: {text:?}"))
        .to_string()
}

/// Rewrite every transcript with the replies of a fresh redis-server 7.0
/// (`REDIS_SERVER` names another binary; `RECORD_ANY_VERSION=1` accepts a
/// version other than 7.0.x). Run by `benches/record-redis-replies.sh`.
#[test]
#[ignore = "records the transcripts from redis-server: benches/record-redis-replies.sh"]
fn record_redis_replies() {
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let version = redis_version(&binary);
    assert!(
        version.starts_with("7.0.") || std::env::var_os("RECORD_ANY_VERSION").is_some(),
        "{binary} is version {version}; the specification is Redis 7.0 (RECORD_ANY_VERSION=1 to record anyway)"
    );
    let scratch = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("redis-record");
    let mut problems = Vec::new();
    for path in transcript_paths(&transcripts_dir()) {
        let transcript = Transcript::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let server = RedisServer::start(&binary, &scratch.join(transcript.name()), transcript.requirepass.as_deref());
        let target = Target {
            port: server.port,
            password: transcript.requirepass.clone(),
            description: format!("redis-server {version}"),
        };
        match record(&transcript, &target, &format!("redis-server {version}")) {
            Ok(text) => {
                std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
                let commands = transcript.commands().count();
                println!("{}: {} cases, {commands} commands recorded", transcript.name(), transcript.cases.len());
            }
            Err(file_problems) => problems.extend(file_problems),
        }
        drop(server);
    }
    assert!(problems.is_empty(), "not recorded:\n{}", problems.join("\n"));
}
