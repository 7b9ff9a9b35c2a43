use super::serve::{serve_floor, serve_floor_on};
use super::*;

fn args() -> FloorArgs {
    FloorArgs {
        replicas: 3,
        runtime: Runtime::Blocking,
        ops: 200,
        warmup: 10,
        request_bytes: 64,
        sync_dir: None,
        clients: 1,
        group_commit: false,
        rate: 0.0,
        read_ratio: 0.0,
        serve: None,
        serve_seconds: 30.0,
        json: None,
    }
}

#[test]
fn a_short_run_answers_every_op_in_order() {
    let result = floor(&args()).expect("the floor runs");
    assert_eq!(result.ops, 200);
    assert!(result.p50_us <= result.p99_us && result.p99_us <= result.max_us);
}

/// Not a test: the entry of the replica processes a glommio run starts
/// from this test binary (`processes::CHILD_ARGS`); in a test run of its
/// own it does nothing.
#[test]
fn replica_process_entry() {
    if let Some(ended) = super::replica_from_env() {
        if let Err(e) = &ended {
            eprintln!("{e}");
        }
        std::process::exit(i32::from(ended.is_err()));
    }
}

#[test]
fn a_short_run_on_glommio_answers_every_op_in_order() {
    let result = floor(&FloorArgs { runtime: Runtime::Glommio, ..args() }).expect("the floor runs on glommio");
    assert_eq!((result.ops, result.runtime), (200, Runtime::Glommio));
}

/// Many clients: the leader batches, and every client still gets each
/// of its replies in order (a client checks every reply's op number), on
/// either runtime.
#[test]
fn many_clients_are_batched_and_every_reply_reaches_its_client() {
    for runtime in [Runtime::Blocking, Runtime::Glommio] {
        for replicas in [1, 3, 5] {
            let result = floor(&FloorArgs { replicas, runtime, clients: 7, ops: 500, ..args() })
                .unwrap_or_else(|e| panic!("{runtime:?}, {replicas} replicas: {e}"));
            assert_eq!((result.ops, result.clients, result.replicated_ops), (500, 7, 510));
        }
    }
}

#[test]
fn a_paced_run_keeps_to_its_rate() {
    // 200 ops at 20,000/s over 2 clients: a 10 ms schedule, met or late, never early.
    let started = Instant::now();
    let result = floor(&FloorArgs { clients: 2, rate: 20_000.0, warmup: 0, ..args() }).expect("runs");
    assert!(started.elapsed() >= Duration::from_millis(9), "the schedule held the clients back");
    assert_eq!(result.rate, 20_000.0);
}

/// `--read-ratio`: reads are answered by the leader alone, writes are
/// replicated, and each client's ops split in the ratio asked for.
#[test]
fn reads_are_answered_by_the_leader_and_only_writes_replicated() {
    for (ratio, expected) in [(0.0, 1000), (0.5, 500), (0.25, 750), (1.0, 0)] {
        let writes = (0..1000).filter(|op| !Reads::new(ratio, 3).is_read(*op)).count();
        assert!(writes.abs_diff(expected) <= 1, "ratio {ratio}: {writes} writes of 1000");
    }
    let runs = [(0.0, 1), (0.5, 3), (1.0, 2)].into_iter();
    for ((read_ratio, clients), runtime) in runs.flat_map(|r| [(r, Runtime::Blocking), (r, Runtime::Glommio)]) {
        let run = FloorArgs { read_ratio, clients, runtime, ops: 300, warmup: 0, ..args() };
        let result = floor(&run).unwrap_or_else(|e| panic!("{runtime:?}, read ratio {read_ratio}: {e}"));
        let share = |c: u64| 300 / clients as u64 + u64::from(c < 300 % clients as u64);
        let writes: u64 = (0..clients as u64)
            .map(|c| (0..share(c)).filter(|op| !Reads::new(read_ratio, c).is_read(*op)).count() as u64)
            .sum();
        assert_eq!((result.replicated_ops, result.read_ratio), (writes, read_ratio));
    }
}

#[test]
fn a_durable_run_writes_and_removes_its_files() {
    let dir = std::env::temp_dir().join(format!("loadgen-floor-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for runtime in [Runtime::Blocking, Runtime::Glommio] {
        let durable = FloorArgs { ops: 20, warmup: 2, sync_dir: Some(dir.clone()), clients: 3, runtime, ..args() };
        // tmpfs has no O_DIRECT: a clear error there, never a panic.
        match floor(&durable) {
            Ok(result) => assert!(result.sync),
            Err(e) => assert!(e.contains("O_DIRECT"), "{runtime:?}: {e}"),
        }
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(left.is_empty(), "the floor's files are removed: {left:?}");
}

/// Group commit: every reply still reaches its client in order, a
/// replica's disk thread answers for every batch its sync covers, and
/// its CPU counts.
#[test]
fn a_group_commit_run_answers_every_op_and_removes_its_files() {
    let dir = std::env::temp_dir().join(format!("loadgen-floor-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let group = FloorArgs { ops: 300, sync_dir: Some(dir.clone()), clients: 5, group_commit: true, ..args() };
    let result = floor(&group);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    std::fs::remove_dir_all(&dir).unwrap();
    match result {
        Ok(result) => {
            assert!(result.sync && result.group_commit);
            assert_eq!((result.ops, result.clients), (300, 5));
            assert!(result.replica_cpu_us_per_op > 0.0);
        }
        Err(e) => assert!(e.contains("O_DIRECT"), "{e}"),
    }
    assert!(left.is_empty(), "the floor's files are removed: {left:?}");
}

/// `--serve`: a pipelined client's commands are replicated and
/// answered in order, whatever they are; input that is not RESP gets
/// an error in its turn and the connection is read no further.
#[test]
fn a_served_pipeline_is_answered_in_order() {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = FloorArgs { serve: Some(addr), serve_seconds: 3.0, ..args() };
    let server = std::thread::spawn(move || serve_floor_on(listener, &serve));
    let mut client = TcpStream::connect(addr).expect("the floor listens");
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut pipeline = Vec::new();
    for i in 0..20 {
        pipeline.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$5\r\nkey{i:02}\r\n$1\r\nv\r\n").as_bytes());
    }
    pipeline.extend_from_slice(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*1\r\n:9\r\n");
    client.write_all(&pipeline).unwrap();
    let mut expected = "+OK\r\n".repeat(20);
    expected += "+PONG\r\n-ERR loadgen floor answers SET and PING only\r\n+PONG\r\n";
    expected += "-ERR loadgen floor: not a RESP command; nothing more is read from this connection\r\n";
    let mut got = vec![0u8; expected.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), expected);
    let result = server.join().unwrap().expect("the floor serves");
    assert_eq!((result.commands, result.connections, result.replicas), (24, 1, 3));
    assert!(result.replica_cpu_us_per_op > 0.0);
}

/// The leader hangs up with a follower's answer unread in its socket:
/// the follower still ends cleanly (a reset connection made it report
/// an error, and a `--serve` run fail at SIGTERM).
#[test]
fn hanging_up_with_answers_unread_ends_the_follower_cleanly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let far = std::thread::spawn(move || follower(listener.accept().unwrap().0, None, 8, false));
    let stream = TcpStream::connect(addr).unwrap();
    let fd = stream.as_raw_fd();
    let mut replication: Replication<()> = Replication::new(vec![stream], None, false).unwrap();
    let mut batch = 1u32.to_le_bytes().to_vec();
    batch.extend_from_slice(&[7; 8]);
    replication.send(&batch, ()).unwrap();
    // Wait until the follower's answer is in the leader's socket, unread.
    let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
    while !poll(&mut fds, -1).unwrap() {}
    replication.finish().expect("the leader finishes");
    assert_eq!(far.join().unwrap(), Ok(Duration::ZERO));
}

#[test]
fn bad_arguments_are_refused_with_the_option_named() {
    assert!(floor(&FloorArgs { request_bytes: 4, ..args() }).unwrap_err().contains("--request-bytes"));
    assert!(floor(&FloorArgs { replicas: 4, ..args() }).unwrap_err().contains("--replicas"));
    assert!(floor(&FloorArgs { clients: 0, ..args() }).unwrap_err().contains("--clients"));
    assert!(floor(&FloorArgs { rate: -1.0, ..args() }).unwrap_err().contains("--rate"));
    assert!(floor(&FloorArgs { group_commit: true, ..args() }).unwrap_err().contains("--group-commit"));
    for read_ratio in [-0.1, 1.5, f64::NAN] {
        assert!(floor(&FloorArgs { read_ratio, ..args() }).unwrap_err().contains("--read-ratio"), "{read_ratio}");
    }
    assert!(floor(&FloorArgs { read_ratio: 0.5, request_bytes: 8, ..args() }).unwrap_err().contains("--read-ratio"));
    let serve = || FloorArgs { serve: Some("127.0.0.1:0".parse().unwrap()), ..args() };
    assert!(serve_floor(&FloorArgs { serve_seconds: 0.0, ..serve() }).unwrap_err().contains("--serve-seconds"));
    let glommio = FloorArgs { runtime: Runtime::Glommio, ..serve() };
    assert!(serve_floor(&glommio).unwrap_err().contains("--runtime blocking"));
}
