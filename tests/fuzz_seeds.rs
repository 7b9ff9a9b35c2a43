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
//! are rewritten (delete the old ones first when a seed is renamed or
//! dropped). `tests/fuzz_corpus.rs` replays them all in `.ci/run`.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use paxoskv::fuzzing::recovery_nonce;
use paxoskv::kv::{session_id, Command, KvStore, Op, Reply, SetCondition, SetTtl, FORMATS};
use paxoskv::net::peer::{
    encode_frame, encode_handshake, encode_handshake_proof, encode_handshake_reply, ForwardRefusal, Handshake,
    HandshakeProof, HandshakeReply, PeerFrame, FRAME_HEADER_BYTES, NONCE_BYTES, PROOF_BYTES, PROTOCOL_VERSION,
};
use paxoskv::net::resp;
use paxoskv::paxos::{
    Accept, Accepted, AcceptedEntry, Ballot, CatchUp, CatchUpReply, FetchSnapshot, Heartbeat, HeartbeatReply, Message,
    PersistOp, PreVote, PreVoteReply, Prepare, Promise, RecoveryQuery, RecoveryReply, Reject, RejectReason,
    SnapshotChunk, Value,
};
use paxoskv::rng::Rng;
use paxoskv::storage::{encode_ops, encode_record, encode_write, Record, WRITE_HEADER_BYTES};

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

/// `paxos_step`'s states (the index in bits 2-4 of its first byte).
const FOLLOWER: u8 = 0;
const PRE_CANDIDATE: u8 = 1;
const CANDIDATE: u8 = 2;
const LEADER: u8 = 3;
const RECOVERING: u8 = 4;
const RECOVERING_ANSWERED_BY_3: u8 = 5;

/// Every message kind, with the ballot the paxos_step replica campaigns
/// and leads with, (1, 1), and a peer's higher one; each with the state of
/// the paxos_step replica that cares about it, and a clock jump (index into
/// its jumps: 0 none, 2 past the retry timeouts, 4 past the election ones).
fn every_message() -> Vec<(&'static str, Message, u8, u8)> {
    let b = Ballot::new(1, 1);
    let peer = Ballot::new(3, 2);
    let entry = |slot, round| AcceptedEntry { slot, ballot: Ballot::new(round, 3), value: batch(&[b"set a 1"]) };
    let nonce = recovery_nonce();
    vec![
        ("pre-vote", Message::PreVote(PreVote { ballot: peer }), FOLLOWER, 0),
        (
            "pre-vote-reply",
            Message::PreVoteReply(PreVoteReply { ballot: b, granted: true, promised: Ballot::ZERO }),
            PRE_CANDIDATE,
            0,
        ),
        ("prepare", Message::Prepare(Prepare { ballot: peer, first_unchosen: 0 }), LEADER, 0),
        (
            "promise",
            Message::Promise(Promise { ballot: b, commit: 0, chosen: vec![], accepted: vec![], horizon: 0 }),
            CANDIDATE,
            0,
        ),
        (
            "promise-values",
            Message::Promise(Promise {
                ballot: b,
                commit: 1,
                chosen: vec![batch(&[b"set a 1"])],
                accepted: vec![AcceptedEntry { slot: 2, ballot: Ballot::new(1, 3), value: Value::Noop }],
                horizon: 1_764_000_000_000,
            }),
            CANDIDATE,
            2,
        ),
        (
            "accept",
            Message::Accept(Accept {
                ballot: peer,
                first_slot: 0,
                values: vec![Value::Noop, batch(&[b"x", b""])],
                commit: 1,
            }),
            FOLLOWER,
            2,
        ),
        ("accepted", Message::Accepted(Accepted { ballot: b, first_slot: 0, count: 1 }), LEADER, 0),
        ("reject", Message::Reject(Reject { ballot: b, promised: peer, reason: RejectReason::LeaseHeld }), LEADER, 0),
        (
            "heartbeat",
            Message::Heartbeat(Heartbeat { ballot: peer, commit: 3, round: 9, horizon: 1_764_000_000_000 }),
            FOLLOWER,
            2,
        ),
        (
            "heartbeat-reply",
            Message::HeartbeatReply(HeartbeatReply { ballot: b, round: 1, commit: 0, horizon: 1_764_000_000_000 }),
            LEADER,
            4,
        ),
        ("catch-up", Message::CatchUp(CatchUp { first_slot: 0 }), LEADER, 0),
        (
            "catch-up-reply",
            Message::CatchUpReply(CatchUpReply { first_slot: 0, values: vec![batch(&[b"a"]), Value::Noop], commit: 2 }),
            FOLLOWER,
            0,
        ),
        (
            "snapshot-chunk",
            Message::SnapshotChunk(SnapshotChunk {
                slot: 5,
                total_bytes: 8,
                offset: 0,
                data: Bytes::from_static(b"snapshot"),
            }),
            FOLLOWER,
            2,
        ),
        ("fetch-snapshot", Message::FetchSnapshot(FetchSnapshot { slot: 5, offset: 0 }), FOLLOWER, 0),
        ("recovery-query", Message::RecoveryQuery(RecoveryQuery { nonce: 77 }), LEADER, 0),
        (
            "recovery-reply",
            Message::RecoveryReply(RecoveryReply {
                nonce,
                recovering: false,
                promised: peer,
                commit: 0,
                accepted: vec![entry(0, 2), entry(2, 3)],
                horizon: 0,
            }),
            RECOVERING_ANSWERED_BY_3,
            0,
        ),
        (
            "recovery-reply-ahead",
            Message::RecoveryReply(RecoveryReply {
                nonce,
                recovering: false,
                promised: peer,
                commit: 4,
                accepted: vec![entry(4, 3)],
                horizon: 5,
            }),
            RECOVERING_ANSWERED_BY_3,
            2,
        ),
        (
            "recovery-reply-recovering",
            Message::RecoveryReply(RecoveryReply {
                nonce,
                recovering: true,
                promised: b,
                commit: 0,
                accepted: vec![],
                horizon: 0,
            }),
            RECOVERING,
            4,
        ),
    ]
}

fn body(frame: &PeerFrame) -> Vec<u8> {
    let mut wire = BytesMut::new();
    encode_frame(frame, &mut wire);
    wire[FRAME_HEADER_BYTES..].to_vec()
}

fn peer_frame_and_paxos_step() {
    let mut stream = BytesMut::new();
    for (name, message, state, clock_jump) in every_message() {
        let frame = PeerFrame::Paxos(message);
        write("peer_frame", name, &body(&frame));
        encode_frame(&frame, &mut stream);
        // paxos_step: a choice byte (sender 2, a state that cares, a clock
        // jump), then the body.
        let mut input = vec![state << 2 | clock_jump << 5];
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
    let hello = Handshake {
        cluster_id: "prod-eu-1".into(),
        node_id: 3,
        shard: 17,
        protocol_version: PROTOCOL_VERSION,
        nonce: [0x5A; NONCE_BYTES],
        shards: 2,
        members: vec![1, 2, 3],
        formats: FORMATS,
    };
    for (name, version) in [("handshake", PROTOCOL_VERSION), ("handshake-old-version", PROTOCOL_VERSION - 1)] {
        let mut handshake = BytesMut::new();
        encode_handshake(&Handshake { protocol_version: version, ..hello.clone() }, &mut handshake);
        write("peer_frame", name, &handshake);
    }
    for (name, reply) in [
        ("handshake-accepted", HandshakeReply::Accepted { node_id: 3, shard: 1 }),
        ("handshake-refused", HandshakeReply::Refused("cluster id mismatch".into())),
        (
            "handshake-challenge",
            HandshakeReply::Challenge { node_id: 2, shard: 1, nonce: [7; NONCE_BYTES], proof: [0xC3; PROOF_BYTES] },
        ),
    ] {
        let mut out = BytesMut::new();
        encode_handshake_reply(&reply, &mut out);
        write("peer_frame", name, &out);
    }
    for (name, proof) in [
        ("handshake-proof", HandshakeProof::Proof([0x3C; PROOF_BYTES])),
        ("handshake-proof-refused", HandshakeProof::Refused("the peer secrets differ".into())),
    ] {
        let mut out = BytesMut::new();
        encode_handshake_proof(&proof, &mut out);
        write("peer_frame", name, &out);
    }
}

/// The shape of `tests/wal.rs`'s workloads, one group commit per entry:
/// promises, pipelined accepts, re-accepts under a newer ballot, chosen
/// values, commits, a recovery and a snapshot marker.
fn wal_writes() -> Vec<Vec<u8>> {
    let b1 = Ballot::new(1, 1);
    let b2 = Ballot::new(2, 2);
    let groups: Vec<Vec<PersistOp>> = vec![
        vec![
            PersistOp::Promise { ballot: b1 },
            PersistOp::Accept {
                ballot: b1,
                first_slot: 0,
                values: vec![batch(&[b"set a 1", b"set b 2"]), Value::Noop],
            },
        ],
        vec![
            PersistOp::Accept { ballot: b1, first_slot: 2, values: vec![batch(&[b"incr n"])] },
            PersistOp::Commit { commit: 2 },
        ],
        vec![
            PersistOp::RecoveryBegun,
            PersistOp::Promise { ballot: b2 },
            PersistOp::Accept { ballot: b2, first_slot: 2, values: vec![batch(&[b"del a"])] },
            PersistOp::RecoveryDone,
        ],
        vec![
            PersistOp::Chosen { first_slot: 3, values: vec![Value::Noop, batch(&[])] },
            PersistOp::Commit { commit: 5 },
        ],
    ];
    let mut bodies: Vec<Vec<u8>> = groups
        .iter()
        .map(|ops| {
            let mut body = Vec::new();
            encode_ops(ops, &mut body);
            body
        })
        .collect();
    encode_record(&Record::SnapshotMarker { slot: 0, snapshot_id: 1 }, bodies.last_mut().unwrap());
    bodies
}

/// Segment `epoch` of `bodies`, one write each numbered from `first_seq`;
/// returns the bytes and each write's start (and the end).
fn segment(epoch: u64, bodies: &[Vec<u8>], first_seq: u64) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut starts = vec![0];
    for (i, body) in bodies.iter().enumerate() {
        encode_write(epoch, first_seq + i as u64, body, &mut bytes);
        starts.push(bytes.len());
    }
    (bytes, starts)
}

/// wal_scan's input: the epoch byte, then the segment.
fn wal_input(epoch: u8, segment: &[u8]) -> Vec<u8> {
    [&[epoch][..], segment].concat()
}

fn wal() {
    const EPOCH: u8 = 7;
    let bodies = wal_writes();
    let (clean, starts) = segment(EPOCH.into(), &bodies, 1);
    let last = starts[starts.len() - 2];
    let len = clean.len();
    let mut variants: Vec<(&str, Vec<u8>)> = vec![("clean", clean.clone())];
    let mut padded = clean.clone();
    padded.resize(4096, 0);
    variants.push(("preallocated", padded));
    variants.push(("torn-header", clean[..last + WRITE_HEADER_BYTES - 3].to_vec()));
    variants.push(("torn-body", clean[..len - 5].to_vec()));
    // The last write's 64-byte blocks: every other one landed, over zeros.
    let mut blocks = clean.clone();
    for block in (last / 64..len.div_ceil(64)).step_by(2) {
        let range = (block * 64).max(last)..((block + 1) * 64).min(len);
        blocks[range].fill(0);
    }
    variants.push(("torn-blocks", blocks));
    let mut flipped = clean.clone();
    flipped[len - 3] ^= 0x10;
    variants.push(("flipped-last", flipped));
    let mut corrupt = clean.clone();
    corrupt[starts[1] + WRITE_HEADER_BYTES + 4] ^= 0x04;
    variants.push(("corrupt-middle", corrupt));
    let mut dropped = clean[..starts[1]].to_vec();
    dropped.extend_from_slice(&clean[starts[2]..]);
    variants.push(("dropped-write", dropped));
    let (mut out_of_sequence, _) = segment(EPOCH.into(), &bodies[..2], 1);
    out_of_sequence.extend_from_slice(&segment(EPOCH.into(), &bodies[2..], 4).0);
    variants.push(("out-of-sequence", out_of_sequence));
    // Checksums right, frames wrong: a frame of length 5 with a bad crc.
    let (mut bad_frames, _) = segment(EPOCH.into(), &bodies[..1], 1);
    encode_write(EPOCH.into(), 2, &[5, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 0], &mut bad_frames);
    variants.push(("bad-frames", bad_frames));
    variants.push(("other-epoch", segment(u64::from(EPOCH) - 1, &bodies, 1).0));
    // A reused file: an older segment's bytes after this one's end, at a
    // write boundary (the end of the log) and inside a write (a torn tail).
    let (young, _) = segment(EPOCH.into(), &bodies[..2], 1);
    let (old, _) = segment(u64::from(EPOCH) - 3, &[bodies[0].clone(), bodies[1].clone(), bodies[0].clone()], 1);
    variants.push(("stale-tail", [&young[..], &old[young.len()..]].concat()));
    let (old, _) = segment(u64::from(EPOCH) - 3, &[bodies[2].clone(), bodies[3].clone(), bodies[0].clone()], 1);
    variants.push(("stale-tail-misaligned", [&young[..], &old[young.len()..]].concat()));
    let mut garbage = clean.clone();
    garbage.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xA5, 1, 2, 3]);
    variants.push(("zeros-then-garbage", garbage));
    // A client value holding a whole write of this segment with a later
    // seq, in a torn last write: reads as Corrupt (a known limitation).
    let mut planted = Vec::new();
    encode_write(EPOCH.into(), 99, &[], &mut planted);
    let mut body = Vec::new();
    let value = batch(&[&[&[0xEE; 8][..], &planted[..], &[0xEE; 8]].concat()]);
    encode_ops(&[PersistOp::Accept { ballot: Ballot::new(1, 1), first_slot: 0, values: vec![value] }], &mut body);
    let (embedded, _) = segment(EPOCH.into(), &[bodies[0].clone(), body], 1);
    variants.push(("embedded-write", embedded[..embedded.len() - 4].to_vec()));
    for (name, bytes) in variants {
        write("wal_scan", name, &wal_input(EPOCH, &bytes));
    }
}

fn every_op() -> Vec<Op> {
    paxoskv::fuzzing::sample_ops().into_iter().map(|(op, _)| op).collect()
}

/// Little-endian fields, for the version 1 formats (which no encoder writes any more).
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn u8(mut self, value: u8) -> Raw {
        self.0.push(value);
        self
    }
    fn u64(mut self, value: u64) -> Raw {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn count(mut self, count: u32) -> Raw {
        self.0.extend_from_slice(&count.to_le_bytes());
        self
    }
    fn bytes(mut self, data: &[u8]) -> Raw {
        self.0.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.0.extend_from_slice(data);
        self
    }
}

fn kv() {
    // Version 2 commands: in order, waiting for an earlier one, a retry
    // with a later ack, an ack above the seq, no session.
    for (i, op) in every_op().into_iter().enumerate() {
        let i = i as u64;
        let (seq, ack, prev) = [(1, 1, 0), (5, 3, 4), (9, 9, 8), (2, 7, 1), (u64::MAX - i, 0, 0)][i as usize % 5];
        let session = if i % 9 == 8 { 0 } else { session_id(1 + (i % 3) as u32, i) };
        write("kv_command", &format!("command-{i:02}"), &Command { session, seq, ack, prev, op }.encode());
    }
    // A version 1 command: GET k of session 7, seq 3.
    write("kv_command", "command-v1", &Raw::default().u8(1).u64(7).u64(3).u8(1).bytes(b"k").0);
    let replies = [
        Reply::Ok,
        Reply::Nil,
        Reply::Int(-42),
        Reply::Bulk(b("value")),
        Reply::Array(vec![Reply::Bulk(b("a")), Reply::Nil, Reply::Bulk(Bytes::new())]),
        Reply::Array(vec![Reply::Status("QUEUED".to_string()), Reply::Array(vec![Reply::Int(1)]), Reply::NilArray]),
        Reply::Error("ERR \u{fc}nicode".to_string()),
    ];
    for (i, reply) in replies.iter().enumerate() {
        write("kv_command", &format!("reply-{i}"), &reply.encode());
    }
    // Stores like kv/snapshot.rs's tests: empty, small, and busy enough to
    // evict sessions (8 sessions of 3 entry nodes, 5 remembered, so the
    // retired watermarks rise), with pipelines whose commands wait,
    // retries and stale resends.
    write("kv_snapshot", "empty", &KvStore::new(3).snapshot());
    let mut small = KvStore::new(2);
    let set = Op::Set { key: b("a"), value: b("1"), condition: SetCondition::Always, ttl: SetTtl::Clear, get: false };
    small.apply(Command { session: session_id(1, 7), seq: 1, ack: 1, prev: 0, op: set });
    let mget = Op::MGet { keys: vec![b("a"), b("zz")] };
    small.apply(Command { session: session_id(2, 3), seq: 9, ack: 9, prev: 8, op: mget });
    write("kv_snapshot", "small", &small.snapshot());
    let mut busy = KvStore::new(5);
    let mut rng = Rng::new(0x5EED);
    let ops = every_op();
    let mut history: Vec<Command> = Vec::new();
    let mut seq_next = [1u64; 9];
    for _ in 0..80 {
        let counter = rng.below(9);
        let command = if rng.below(6) == 0 && !history.is_empty() {
            history[rng.below(history.len() as u64) as usize].clone()
        } else {
            let seq = seq_next[counter as usize] + rng.below(2);
            seq_next[counter as usize] = seq + 1;
            let session = if counter == 0 { 0 } else { session_id(1 + (counter % 3) as u32, counter) };
            let op = ops[rng.below(ops.len() as u64) as usize].clone();
            Command { session, seq, ack: seq.saturating_sub(rng.below(3)).max(1), prev: seq - 1, op }
        };
        busy.apply(command.clone());
        history.push(command);
    }
    write("kv_snapshot", "busy", &busy.snapshot());
    // A version 1 image: sessions_max 4, apply count 3, one pair, one
    // session (id 7, seq_last 2, apply index 3, reply OK).
    let image = Raw::default().u8(1).u64(4).u64(3).count(1).bytes(b"k").bytes(b"v");
    let image = image.count(1).u64(7).u64(2).u64(3).bytes(&Reply::Ok.encode());
    write("kv_snapshot", "v1", &image.0);
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
