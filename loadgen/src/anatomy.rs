//! The server's latency anatomy over a run's measured window: `INFO
//! latency` read from every target node when the window opens and when it
//! closes, and per (node, shard, stage) the samples taken in between and
//! their mean.
//!
//! paxoskv prints one line per shard and per stage that has samples:
//!
//! ```text
//! shard0_stage_local_sync_usec:count=78,sum=20110,mean=257.8,p50=255,p90=447,p99=818,max=818
//! ```
//!
//! `count` and `sum` (µs) are cumulative since the process started, so two
//! readings give the samples and the mean between them; the percentiles
//! are not differences of anything and are not used. A server without
//! these lines (Redis 7.0 answers `INFO latency` with an empty text) has no
//! stages; a node that could not be read at either end of the window, or
//! whose counts went backwards (it restarted in between), has none either.
//!
//! The server samples one request in 64 per shard, so a short run at a low
//! rate gives few samples: `StageMean::samples` says how many.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bundle::StageMean;

/// The server's stages in the order a request meets them
/// (`node::Stage::ALL`); others sort after these, by name.
pub const STAGE_ORDER: [&str; 8] =
    ["parse", "queue", "local_sync", "quorum", "read_wait", "forward", "reply", "wal_sync"];

/// The ways a request goes through a node, each a bar of `stages.svg`.
/// `parse` and `reply` are timed for every request a node's shard serves,
/// whatever its path, so the paths share them.
pub struct RequestPath {
    pub name: &'static str,
    /// In order; a bar draws those that have samples.
    pub stages: &'static [&'static str],
    /// A (node, shard) took this path if one of these has samples.
    pub marks: &'static [&'static str],
}

pub const REQUEST_PATHS: [RequestPath; 3] = [
    RequestPath {
        name: "write at leader",
        stages: &["parse", "queue", "local_sync", "quorum", "reply"],
        marks: &["queue", "local_sync", "quorum"],
    },
    RequestPath { name: "read at leader", stages: &["parse", "read_wait", "reply"], marks: &["read_wait"] },
    RequestPath { name: "forwarded to leader", stages: &["parse", "forward", "reply"], marks: &["forward"] },
];

/// A stage's place in [`STAGE_ORDER`] (unknown stages after all of them).
pub fn stage_rank(stage: &str) -> usize {
    STAGE_ORDER.iter().position(|s| *s == stage).unwrap_or(STAGE_ORDER.len())
}

/// One `shardN_stage_S_usec` line of `INFO latency`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageReading {
    pub shard: u32,
    pub stage: String,
    pub count: u64,
    pub sum_us: u64,
}

/// The stage lines of an `INFO latency` reply; other lines (section
/// headers, Redis's own fields) and malformed ones are skipped.
pub fn parse_info_latency(text: &str) -> Vec<StageReading> {
    text.lines().filter_map(parse_stage_line).collect()
}

fn parse_stage_line(line: &str) -> Option<StageReading> {
    let (key, fields) = line.trim().split_once(':')?;
    // The stage name may hold underscores (local_sync): split on "_stage_".
    let (shard, stage) = key.strip_prefix("shard")?.split_once("_stage_")?;
    let stage = stage.strip_suffix("_usec")?;
    if stage.is_empty() {
        return None;
    }
    let field = |name: &str| -> Option<u64> {
        fields.split(',').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some(StageReading {
        shard: shard.parse().ok()?,
        stage: stage.to_string(),
        count: field("count")?,
        sum_us: field("sum")?,
    })
}

/// Per (shard, stage) of one node: the samples between two readings and
/// their mean, in shard then [`STAGE_ORDER`] order. Stages without new
/// samples are left out, and so is the whole node when a reading is
/// missing or a count went backwards (the node restarted in between: its
/// counters started again from zero, so no difference means anything).
pub fn stage_means(node: &str, start: Option<&[StageReading]>, end: Option<&[StageReading]>) -> Vec<StageMean> {
    let (Some(start), Some(end)) = (start, end) else {
        return Vec::new();
    };
    let mut means = Vec::new();
    for reading in end {
        let before = start.iter().find(|r| r.shard == reading.shard && r.stage == reading.stage);
        let (count_before, sum_before) = before.map_or((0, 0), |r| (r.count, r.sum_us));
        if reading.count < count_before || reading.sum_us < sum_before {
            return Vec::new();
        }
        let samples = reading.count - count_before;
        if samples == 0 {
            continue;
        }
        let mean_us = (reading.sum_us - sum_before) as f64 / samples as f64;
        means.push(StageMean {
            node: node.to_string(),
            shard: reading.shard,
            stage: reading.stage.clone(),
            samples,
            mean_us,
        });
    }
    // A stage that vanished from the end reading also means a restart.
    let vanished = start.iter().any(|r| r.count > 0 && !end.iter().any(|e| e.shard == r.shard && e.stage == r.stage));
    if vanished {
        return Vec::new();
    }
    means.sort_by(|a, b| (a.shard, stage_rank(&a.stage), &a.stage).cmp(&(b.shard, stage_rank(&b.stage), &b.stage)));
    means
}

/// How long one `INFO` request may take before the node counts as unread.
const INFO_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
const INFO_READ_TIMEOUT: Duration = Duration::from_millis(500);
/// A longer INFO reply is not read.
const INFO_BYTES_MAX: usize = 1 << 20;

/// `INFO <section>` on a fresh connection: the reply's text, or `None` if
/// the node cannot be reached, answers too slowly or with anything but a
/// bulk string (an error reply, say).
pub fn info_text(address: SocketAddr, section: &str) -> Option<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, INFO_CONNECT_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(INFO_READ_TIMEOUT)).ok()?;
    let request = format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len());
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).ok()?;
    let len: usize = header.strip_prefix('$')?.trim().parse().ok()?;
    let mut body = vec![0u8; len.min(INFO_BYTES_MAX)];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

/// The stage lines of one node now, `None` if it could not be read.
fn read_stages(address: SocketAddr) -> Option<Vec<StageReading>> {
    info_text(address, "latency").map(|text| parse_info_latency(&text))
}

/// The readings of a run in progress: one thread per node, each reading
/// `INFO latency` at the window's start and at its end.
pub struct AnatomyWatch {
    nodes: Vec<(SocketAddr, JoinHandle<NodeReadings>)>,
}

type NodeReadings = (Option<Vec<StageReading>>, Option<Vec<StageReading>>);

impl AnatomyWatch {
    /// One thread per address (a slow node delays only its own readings).
    pub fn start(addresses: &[SocketAddr], window_start: Instant, window_end: Instant) -> AnatomyWatch {
        let nodes = addresses
            .iter()
            .map(|&address| {
                let reader = std::thread::spawn(move || {
                    sleep_until(window_start);
                    let start = read_stages(address);
                    sleep_until(window_end);
                    (start, read_stages(address))
                });
                (address, reader)
            })
            .collect();
        AnatomyWatch { nodes }
    }

    /// Waits for the end readings (taken at the window's end) and returns
    /// the stage means, node by node in the order of the addresses.
    pub fn finish(self) -> Vec<StageMean> {
        let mut means = Vec::new();
        for (address, reader) in self.nodes {
            let Ok((start, end)) = reader.join() else { continue };
            means.extend(stage_means(&address.to_string(), start.as_deref(), end.as_deref()));
        }
        means
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What paxoskv 37ef5bd answers to `INFO latency` (CRLF line ends).
    const PAXOSKV: &str = "# Latency\r\n\
        shard0_stage_parse_usec:count=100,sum=2000,mean=20.0,p50=19,p90=30,p99=60,max=70\r\n\
        shard0_stage_local_sync_usec:count=78,sum=20110,mean=257.8,p50=255,p90=447,p99=818,max=818\r\n\
        shard0_stage_quorum_usec:count=78,sum=39000,mean=500.0,p50=480,p90=700,p99=900,max=950\r\n\
        shard1_stage_read_wait_usec:count=5,sum=50,mean=10.0,p50=9,p90=12,p99=15,max=15\r\n";

    /// Redis 7.0 answers `INFO latency` with an empty text (no such
    /// section); its own latency section, `INFO latencystats`, reads so.
    const REDIS_LATENCYSTATS: &str = "# Latencystats\r\n\
        latency_percentiles_usec_set:p50=8.031,p99=8.031,p99.9=8.031\r\n\
        latency_percentiles_usec_info:p50=8.031,p99=8.031,p99.9=8.031\r\n";

    fn reading(shard: u32, stage: &str, count: u64, sum_us: u64) -> StageReading {
        StageReading { shard, stage: stage.into(), count, sum_us }
    }

    #[test]
    fn info_latency_lines_parse_with_underscored_stage_names() {
        assert_eq!(
            parse_info_latency(PAXOSKV),
            vec![
                reading(0, "parse", 100, 2000),
                reading(0, "local_sync", 78, 20110),
                reading(0, "quorum", 78, 39000),
                reading(1, "read_wait", 5, 50),
            ]
        );
    }

    #[test]
    fn redis_and_empty_and_malformed_text_have_no_stages() {
        assert!(parse_info_latency("").is_empty());
        assert!(parse_info_latency(REDIS_LATENCYSTATS).is_empty());
        let malformed = "shardX_stage_parse_usec:count=1,sum=2\r\n\
            shard0_stage__usec:count=1,sum=2\r\n\
            shard0_stage_parse_usec:count=1\r\n\
            shard0_stage_parse_usec:count=-1,sum=2\r\n\
            shard0_parse_usec:count=1,sum=2\r\n\
            shard0_stage_parse:count=1,sum=2\r\n\
            shard0_stage_parse_usec count=1,sum=2\r\n";
        assert!(parse_info_latency(malformed).is_empty());
        // Fields in another order, or new ones, still parse.
        assert_eq!(parse_info_latency("shard2_stage_reply_usec:sum=9,max=4,count=3"), vec![reading(2, "reply", 3, 9)]);
    }

    #[test]
    fn means_are_the_difference_of_two_readings_in_stage_order() {
        let start = vec![reading(0, "quorum", 10, 5_000), reading(0, "parse", 10, 100), reading(0, "reply", 4, 40)];
        let end = vec![
            reading(0, "quorum", 30, 15_000),
            reading(0, "parse", 30, 500),
            reading(0, "reply", 4, 40),
            reading(0, "local_sync", 20, 4_000),
        ];
        let means = stage_means("n1", Some(&start), Some(&end));
        let got: Vec<(&str, u32, &str, u64, f64)> =
            means.iter().map(|m| (m.node.as_str(), m.shard, m.stage.as_str(), m.samples, m.mean_us)).collect();
        // reply had no samples in the window: left out; local_sync is new: all of it counts.
        assert_eq!(
            got,
            vec![("n1", 0, "parse", 20, 20.0), ("n1", 0, "local_sync", 20, 200.0), ("n1", 0, "quorum", 20, 500.0)]
        );
    }

    #[test]
    fn a_node_unread_at_either_end_or_restarted_has_no_stages() {
        let some = vec![reading(0, "parse", 10, 100)];
        let more = vec![reading(0, "parse", 20, 300)];
        assert_eq!(stage_means("n", Some(&some), Some(&more)).len(), 1);
        assert!(stage_means("n", None, Some(&more)).is_empty(), "failed at the start");
        assert!(stage_means("n", Some(&some), None).is_empty(), "failed at the end");
        assert!(stage_means("n", Some(&more), Some(&some)).is_empty(), "counts went backwards");
        let other = vec![reading(0, "reply", 30, 300)];
        assert!(stage_means("n", Some(&more), Some(&other)).is_empty(), "a stage vanished");
        assert!(stage_means("n", Some(&[]), Some(&[])).is_empty(), "Redis: nothing on either side");
    }

    /// A node that answers its i-th connection with `replies[i]` (raw
    /// RESP) and then stops listening.
    fn fake_node(replies: Vec<String>) -> SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for reply in replies {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 64];
                let n = stream.read(&mut request).unwrap();
                assert_eq!(&request[..n], b"*2\r\n$4\r\nINFO\r\n$7\r\nlatency\r\n");
                stream.write_all(reply.as_bytes()).unwrap();
            }
        });
        address
    }

    fn bulk(text: &str) -> String {
        format!("${}\r\n{text}\r\n", text.len())
    }

    fn forward_line(count: u64, sum_us: u64) -> String {
        bulk(&format!("# Latency\r\nshard0_stage_forward_usec:count={count},sum={sum_us},mean=0.0,p50=1\r\n"))
    }

    #[test]
    fn the_watch_reads_each_node_at_both_ends_of_the_window() {
        let first = fake_node(vec![forward_line(10, 100), forward_line(20, 400)]);
        let second = fake_node(vec![forward_line(0, 0), forward_line(4, 20)]);
        let now = Instant::now();
        let means = AnatomyWatch::start(&[first, second], now, now + Duration::from_millis(20)).finish();
        let got: Vec<(String, u64, f64)> = means.iter().map(|m| (m.node.clone(), m.samples, m.mean_us)).collect();
        assert_eq!(got, vec![(first.to_string(), 10, 30.0), (second.to_string(), 4, 5.0)]);
    }

    #[test]
    fn redis_an_error_reply_a_dead_node_and_one_lost_mid_window_give_no_stages() {
        // Redis 7.0: an empty bulk string, read fine, no stages.
        let redis = fake_node(vec![bulk(""), bulk(""), bulk("")]);
        assert_eq!(read_stages(redis), Some(Vec::new()));
        // An error reply: the node is not read.
        let refusing = fake_node(vec!["-ERR unknown section\r\n".into()]);
        assert_eq!(read_stages(refusing), None);
        // Bind then drop: a port nothing listens on.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert_eq!(read_stages(dead), None);
        // Answers when the window opens, gone when it closes.
        let lost = fake_node(vec![forward_line(10, 100)]);
        let alive = fake_node(vec![forward_line(10, 100), forward_line(11, 110)]);
        let now = Instant::now();
        let means = AnatomyWatch::start(&[redis, dead, lost, alive], now, now + Duration::from_millis(20)).finish();
        let nodes: Vec<&str> = means.iter().map(|m| m.node.as_str()).collect();
        assert_eq!(nodes, vec![alive.to_string()]);
    }
}
