//! Writes the seed corpus of the fuzz targets: `fuzz/corpus/<target>/seed-*`,
//! the inputs of the hostile-input tests of `net/resp.rs`, `net/request.rs`,
//! `net/peer.rs`, `kv/` and `tests/wal.rs`, built with the library's own
//! encoders. When a format changes, regenerate them:
//!
//! ```sh
//! cargo test --release --test fuzz_seeds -- --ignored
//! ```
//!
//! Inputs the fuzzer found (hash-named files) are kept; only `seed-*` files
//! are rewritten. `tests/fuzz_corpus.rs` replays them all in `.ci/run`.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use paxoskv::kv::{Command, KvStore, Op, Reply, SetCondition};
use paxoskv::net::peer::{
    encode_frame, encode_handshake, encode_handshake_reply, ForwardRefusal, Handshake, HandshakeReply, PeerFrame,
    FRAME_HEADER_BYTES, PROTOCOL_VERSION,
};
use paxoskv::net::resp;
use paxoskv::paxos::{
    Accept, Accepted, AcceptedEntry, Ballot, CatchUp, CatchUpReply, FetchSnapshot, Heartbeat, HeartbeatReply, Message,
    PersistOp, PreVote, PreVoteReply, Prepare, Promise, Reject, RejectReason, SnapshotChunk, Value,
};
use paxoskv::rng::Rng;
use paxoskv::storage::{encode_ops, encode_record, Record};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand when a format changes"]
fn write_seed_corpus() {
    resp_request();
    resp_reply_roundtrip();
    peer_frame_and_paxos_step();
    wal();
    kv();
    generated_inputs();
}

fn multibulk(line: &str) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let args: Vec<&str> = line.split(' ').collect();
    resp::array_header(&mut buf, args.len());
    args.iter().for_each(|arg| resp::bulk(&mut buf, arg.as_bytes()));
    buf.to_vec()
}

fn resp_request() {
    let commands = [
        "GET k",
        "SET k v",
        "SET k v NX",
        "SET k v xx",
        "SET k v IFEQ old",
        "SET k v EX 10",
        "SET k v NX XX",
        "DEL a b a",
        "EXISTS a",
        "MGET a b",
        "MSET a 1 b 2",
        "MSET a",
        "INCR n",
        "DECR n",
        "INCRBY n -9223372036854775808",
        "DECRBY n -9223372036854775808",
        "INCRBY n 01",
        "PING",
        "PING hi",
        "ECHO hi",
        "INFO Server",
        "DBSIZE",
        "QUIT",
        "COMMAND",
        "COMMAND COUNT",
        "COMMAND DOCS get set",
        "COMMAND INFO get",
        "COMMAND GETKEYS x",
        "CLIENT SETNAME worker-1",
        "CLIENT GETNAME",
        "CLIENT ID",
        "CLIENT SETINFO lib-name redis-py",
        "CLIENT KILL x",
        "HELLO",
        "HELLO 3 AUTH default secret SETNAME me",
        "HELLO 4",
        "HELLO 3 AUTH u",
        "SELECT 0",
        "SELECT 1",
        "CONFIG GET save",
        "CONFIG SET a b",
        "FLUSHALL x y",
    ];
    for (i, command) in commands.iter().enumerate() {
        write("resp_request", &format!("multibulk-{i:02}"), &multibulk(command));
    }
    let raw: &[(&str, &[u8])] = &[
        ("inline", b"PING\r\nset  k\tv\n\r\n\n   \r\nGET k \r\n"),
        ("inline-quotes", b"SET \"hello world\" ''\r\nSET k \"a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n"),
        ("inline-hex", b"SET k \"\\x41\\x4a\\xZZ\\x4\"\r\nSET k 'it\\'s \\n'\r\n"),
        ("unbalanced", b"SET k \"a\"b\r\n"),
        ("empty-arrays", b"*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n*0\r\n"),
        ("pipelined", b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n\r\nPING\r\n\nECHO \"hi there\"\n*-1\r\n*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n"),
        ("bad-count", b"*-2\r\n"),
        ("bad-bulk", b"*1\r\n$01\r\n"),
        ("expected-dollar", b"*2\r\n$1\r\na\r\nx"),
        ("missing-terminator", b"*1\r\n$1\r\naX"),
        ("binary", b"*3\r\n$3\r\nSET\r\n$5\r\n\r\n\x00\xff*\r\n$0\r\n\r\n"),
    ];
    for (name, data) in raw {
        write("resp_request", name, data);
    }
}

/// Inputs of the hand decoder: the first byte of each reply picks its
/// variant (Ok, Nil, Int, Bulk, Array, Error).
fn resp_reply_roundtrip() {
    let inputs: &[(&str, &[u8])] = &[
        ("ok-nil", &[0, 1]),
        ("int", &[2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        ("int-min", &[2, 0, 0, 0, 0, 0, 0, 0, 0x80]),
        ("bulk", b"\x03\x05a\r\nbc"),
        ("array", b"\x04\x03\x01\x01a\x00\x01\x00"),
        ("error", b"\x05\x0cERR bad\r\nx\xff"),
        ("pipeline", b"\x00\x03\x02hi\x04\x01\x00\x05\x03ERR"),
    ];
    for (name, data) in inputs {
        write("resp_reply_roundtrip", name, data);
    }
}

fn batch(commands: &[&[u8]]) -> Value {
    Value::batch(commands.iter().map(|command| Bytes::copy_from_slice(command)).collect())
}

/// Every message kind, with the ballot the paxos_step replica campaigns
/// and leads with, (1, 1), and a peer's higher one.
fn every_message() -> Vec<(&'static str, Message)> {
    let b = Ballot::new(1, 1);
    let peer = Ballot::new(3, 2);
    vec![
        ("pre-vote", Message::PreVote(PreVote { ballot: peer })),
        ("pre-vote-reply", Message::PreVoteReply(PreVoteReply { ballot: b, granted: true, promised: Ballot::ZERO })),
        ("prepare", Message::Prepare(Prepare { ballot: peer, first_unchosen: 0 })),
        ("promise", Message::Promise(Promise { ballot: b, commit: 0, chosen: vec![], accepted: vec![] })),
        (
            "promise-values",
            Message::Promise(Promise {
                ballot: b,
                commit: 1,
                chosen: vec![batch(&[b"set a 1"])],
                accepted: vec![AcceptedEntry { slot: 2, ballot: Ballot::new(1, 3), value: Value::Noop }],
            }),
        ),
        (
            "accept",
            Message::Accept(Accept {
                ballot: peer,
                first_slot: 0,
                values: vec![Value::Noop, batch(&[b"x", b""])],
                commit: 1,
            }),
        ),
        ("accepted", Message::Accepted(Accepted { ballot: b, first_slot: 0, count: 1 })),
        ("reject", Message::Reject(Reject { ballot: b, promised: peer, reason: RejectReason::LeaseHeld })),
        ("heartbeat", Message::Heartbeat(Heartbeat { ballot: peer, commit: 3, round: 9 })),
        ("heartbeat-reply", Message::HeartbeatReply(HeartbeatReply { ballot: b, round: 1, commit: 0 })),
        ("catch-up", Message::CatchUp(CatchUp { first_slot: 0 })),
        (
            "catch-up-reply",
            Message::CatchUpReply(CatchUpReply { first_slot: 0, values: vec![batch(&[b"a"]), Value::Noop], commit: 2 }),
        ),
        (
            "snapshot-chunk",
            Message::SnapshotChunk(SnapshotChunk {
                slot: 5,
                total_bytes: 8,
                offset: 0,
                data: Bytes::from_static(b"snapshot"),
            }),
        ),
        ("fetch-snapshot", Message::FetchSnapshot(FetchSnapshot { slot: 5, offset: 0 })),
    ]
}

fn body(frame: &PeerFrame) -> Vec<u8> {
    let mut wire = BytesMut::new();
    encode_frame(frame, &mut wire);
    wire[FRAME_HEADER_BYTES..].to_vec()
}

fn peer_frame_and_paxos_step() {
    let mut stream = BytesMut::new();
    for (i, (name, message)) in every_message().into_iter().enumerate() {
        let frame = PeerFrame::Paxos(message);
        write("peer_frame", name, &body(&frame));
        encode_frame(&frame, &mut stream);
        // paxos_step: a choice byte (sender 2, a role that cares), then the body.
        let role = [0, 1, 3, 2, 2, 0, 3, 3, 0, 3, 3, 0, 0, 3][i];
        let mut input = vec![role << 2];
        input.extend_from_slice(&body(&frame));
        write("paxos_step", name, &input);
    }
    write("peer_frame", "stream", &stream);
    let others = [
        ("forward", PeerFrame::Forward { id: 1, command: b("encoded command") }),
        ("forward-read", PeerFrame::ForwardRead { id: 2, command: b("get k") }),
        ("forward-reply", PeerFrame::ForwardReply { id: 1, reply: Bytes::new() }),
        ("refused-hint", PeerFrame::ForwardRefused { id: 5, reason: ForwardRefusal::NotLeader { leader: Some(3) } }),
        ("refused-busy", PeerFrame::ForwardRefused { id: 6, reason: ForwardRefusal::Busy }),
    ];
    for (name, frame) in others {
        write("peer_frame", name, &body(&frame));
    }
    let mut handshake = BytesMut::new();
    let hello = Handshake { cluster_id: "prod-eu-1".into(), node_id: 3, shard: 17, protocol_version: PROTOCOL_VERSION };
    encode_handshake(&hello, &mut handshake);
    write("peer_frame", "handshake", &handshake);
    for (name, reply) in [
        ("handshake-accepted", HandshakeReply::Accepted { node_id: 3, shard: 1 }),
        ("handshake-refused", HandshakeReply::Refused("cluster id mismatch".into())),
    ] {
        let mut out = BytesMut::new();
        encode_handshake_reply(&reply, &mut out);
        write("peer_frame", name, &out);
    }
}

/// The shape of `tests/wal.rs`'s workloads: promises, pipelined accepts,
/// re-accepts under a newer ballot, chosen values and commits.
fn wal_ops() -> Vec<PersistOp> {
    let b1 = Ballot::new(1, 1);
    let b2 = Ballot::new(2, 2);
    vec![
        PersistOp::Promise { ballot: b1 },
        PersistOp::Accept { ballot: b1, first_slot: 0, values: vec![batch(&[b"set a 1", b"set b 2"]), Value::Noop] },
        PersistOp::Accept { ballot: b1, first_slot: 2, values: vec![batch(&[b"incr n"])] },
        PersistOp::Commit { commit: 2 },
        PersistOp::Promise { ballot: b2 },
        PersistOp::Accept { ballot: b2, first_slot: 2, values: vec![batch(&[b"del a"])] },
        PersistOp::Chosen { first_slot: 3, values: vec![Value::Noop, batch(&[])] },
        PersistOp::Commit { commit: 5 },
    ]
}

fn wal() {
    let mut segment = Vec::new();
    encode_ops(&wal_ops(), &mut segment);
    encode_record(&Record::SnapshotMarker { slot: 0, snapshot_id: 1 }, &mut segment);
    write("wal_scan", "clean", &segment);
    let mut padded = segment.clone();
    padded.resize(4096, 0);
    write("wal_scan", "preallocated", &padded);
    let len = segment.len();
    write("wal_scan", "torn-header", &segment[..len - 20]);
    write("wal_scan", "torn-body", &segment[..len - 5]);
    let mut flipped = segment.clone();
    flipped[len - 3] ^= 0x10;
    write("wal_scan", "flipped-last", &flipped);
    let mut corrupt = segment.clone();
    corrupt[12] ^= 0x04;
    write("wal_scan", "corrupt-middle", &corrupt);
    let mut garbage = segment.clone();
    garbage.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xA5, 1, 2, 3]);
    write("wal_scan", "zeros-then-garbage", &garbage);
    let mut uncommitted = Vec::new();
    encode_ops(&[PersistOp::Commit { commit: 3 }], &mut uncommitted);
    write("wal_scan", "commit-without-values", &uncommitted);
}

fn command(session: u64, seq: u64, op: Op) -> Command {
    Command { session, seq, ack: seq, prev: 0, op }
}

fn every_op() -> Vec<Op> {
    vec![
        Op::Get { key: b("k") },
        Op::Set { key: b("k"), value: b("v"), condition: SetCondition::Always },
        Op::Set { key: b("k"), value: Bytes::new(), condition: SetCondition::IfNotExists },
        Op::Set { key: b("k"), value: b("v"), condition: SetCondition::IfExists },
        Op::Set { key: b("k"), value: b("new"), condition: SetCondition::IfEqual(b("old")) },
        Op::Del { keys: vec![b("a"), b("b"), b("a")] },
        Op::Exists { keys: vec![b("a"), b("a")] },
        Op::IncrBy { key: b("n"), delta: i64::MIN },
        Op::MGet { keys: vec![b("a"), b("missing")] },
        Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), Bytes::from_static(&[0, 255, 10]))] },
    ]
}

fn kv() {
    for (i, op) in every_op().into_iter().enumerate() {
        write("kv_command", &format!("command-{i:02}"), &command(i as u64, u64::MAX - i as u64, op).encode());
    }
    let replies = [
        Reply::Ok,
        Reply::Nil,
        Reply::Int(-42),
        Reply::Bulk(b("value")),
        Reply::Array(vec![Some(b("a")), None, Some(Bytes::new())]),
        Reply::Error("ERR \u{fc}nicode".to_string()),
    ];
    for (i, reply) in replies.iter().enumerate() {
        write("kv_command", &format!("reply-{i}"), &reply.encode());
    }
    // Stores like kv/snapshot.rs's tests: empty, small, and busy enough to
    // evict sessions (8 sessions, 5 remembered), with retries.
    write("kv_snapshot", "empty", &KvStore::new(3).snapshot());
    let mut small = KvStore::new(2);
    small.apply(&command(7, 1, Op::Set { key: b("a"), value: b("1"), condition: SetCondition::Always }));
    small.apply(&command(3, 9, Op::MGet { keys: vec![b("a"), b("zz")] }));
    write("kv_snapshot", "small", &small.snapshot());
    let mut busy = KvStore::new(5);
    let mut rng = Rng::new(0x5EED);
    let ops = every_op();
    for i in 0..60u64 {
        let session = rng.below(9);
        let seq = if rng.below(5) == 0 { i.saturating_sub(3) } else { i };
        busy.apply(&command(session, seq, ops[rng.below(ops.len() as u64) as usize].clone()));
    }
    write("kv_snapshot", "busy", &busy.snapshot());
}

/// Seeds of the targets that read fuzz bytes as decisions: a few lengths of
/// seeded noise (what matters is that every branch is reachable).
fn generated_inputs() {
    let mut rng = Rng::new(14);
    for target in ["wal_scan_mutated", "kv_snapshot_mutated"] {
        for len in [8, 32, 64, 128, 256, 512] {
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            write(target, &format!("noise-{len}"), &data);
        }
    }
}
