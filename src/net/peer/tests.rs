//! Tests of `net::peer` (framing, handshake and frame body codecs).

use super::*;
use crate::kv::FORMATS;
use crate::rng::Rng;

/// Bodies are limited by callers; tests use a limit no sample reaches.
const LIMIT: usize = 1 << 20;

fn batch(commands: &[&[u8]]) -> Value {
    Value::batch(commands.iter().map(|command| Bytes::copy_from_slice(command)).collect())
}

fn many_commands(count: u32) -> Value {
    Value::batch((0..count).map(|i| Bytes::from(vec![i as u8; (i % 7) as usize])).collect())
}

/// Every message kind, with edge-case field values.
fn every_message() -> Vec<Message> {
    let b = Ballot::new(7, 2);
    let max = Ballot::new(u64::MAX, u32::MAX);
    vec![
        Message::PreVote(PreVote { ballot: b }),
        Message::PreVoteReply(PreVoteReply { ballot: b, granted: true, promised: Ballot::ZERO }),
        Message::PreVoteReply(PreVoteReply { ballot: b, granted: false, promised: max }),
        Message::Prepare(Prepare { ballot: b, first_unchosen: 42 }),
        Message::Promise(Promise { ballot: b, commit: 0, chosen: vec![], accepted: vec![], horizon: 0 }),
        Message::Promise(Promise {
            ballot: b,
            commit: 40,
            chosen: vec![Value::Noop, batch(&[b"set a 1"]), batch(&[])],
            accepted: vec![
                AcceptedEntry { slot: 43, ballot: Ballot::new(6, 1), value: batch(&[b"x", b"", b"yz"]) },
                AcceptedEntry { slot: 44, ballot: Ballot::new(5, 3), value: Value::Noop },
            ],
            horizon: 1_764_000_000_123,
        }),
        Message::Accept(Accept { ballot: b, first_slot: 9, values: vec![], commit: 9 }),
        Message::Accept(Accept {
            ballot: b,
            first_slot: 9,
            values: vec![
                many_commands(100),
                Value::Noop,
                batch(&[b"del k"]),
                Value::stamped(1_764_000_000_789, vec![]),
            ],
            commit: 8,
        }),
        Message::Accepted(Accepted { ballot: b, first_slot: 9, count: 3 }),
        Message::Reject(Reject { ballot: b, promised: max, reason: RejectReason::HigherBallot }),
        Message::Reject(Reject { ballot: b, promised: b, reason: RejectReason::LeaseHeld }),
        Message::Heartbeat(Heartbeat { ballot: b, commit: 12, round: 99, horizon: 1_764_000_000_456 }),
        Message::HeartbeatReply(HeartbeatReply { ballot: b, round: 99, commit: 11, horizon: u64::MAX }),
        Message::CatchUp(CatchUp { first_slot: u64::MAX }),
        Message::CatchUpReply(CatchUpReply { first_slot: 3, values: vec![], commit: 3 }),
        Message::CatchUpReply(CatchUpReply {
            first_slot: 3,
            values: vec![batch(&[b"a"]), Value::Noop, batch(&[b"b", b"c"])],
            commit: 6,
        }),
        Message::SnapshotChunk(SnapshotChunk { slot: 5, total_bytes: 0, offset: 0, data: Bytes::new() }),
        Message::SnapshotChunk(SnapshotChunk {
            slot: 5,
            total_bytes: 1000,
            offset: 500,
            data: Bytes::from(vec![0xAB; 300]),
        }),
        Message::FetchSnapshot(FetchSnapshot { slot: 5, offset: 500 }),
        Message::RecoveryQuery(RecoveryQuery { nonce: u64::MAX }),
        Message::HandOver(HandOver { ballot: b, to: 3, commit: 12 }),
        Message::HandOver(HandOver { ballot: max, to: u32::MAX, commit: u64::MAX }),
        Message::RecoveryReply(RecoveryReply {
            nonce: 7,
            recovering: false,
            promised: b,
            commit: 40,
            accepted: vec![AcceptedEntry { slot: 41, ballot: Ballot::new(6, 1), value: batch(&[b"x"]) }],
            horizon: 7,
        }),
        Message::RecoveryReply(RecoveryReply {
            nonce: 0,
            recovering: true,
            promised: Ballot::ZERO,
            commit: 0,
            accepted: vec![],
            horizon: 0,
        }),
    ]
}

fn every_frame() -> Vec<PeerFrame> {
    let mut frames: Vec<PeerFrame> = every_message().into_iter().map(PeerFrame::Paxos).collect();
    frames.extend([
        PeerFrame::Forward { id: 1, command: Bytes::from_static(b"encoded command") },
        PeerFrame::Forward { id: u64::MAX, command: Bytes::new() },
        PeerFrame::ForwardRead { id: 2, command: Bytes::from_static(b"get k") },
        PeerFrame::ForwardReply { id: 1, reply: Bytes::from_static(b"encoded reply") },
        PeerFrame::ForwardReply { id: 3, reply: Bytes::new() },
        PeerFrame::ForwardRefused { id: 4, reason: ForwardRefusal::NotLeader { leader: None } },
        PeerFrame::ForwardRefused { id: 5, reason: ForwardRefusal::NotLeader { leader: Some(3) } },
        PeerFrame::ForwardRefused { id: 6, reason: ForwardRefusal::Busy },
        PeerFrame::ForwardRefused { id: 7, reason: ForwardRefusal::TooLarge },
    ]);
    frames
}

fn encode(frame: &PeerFrame) -> BytesMut {
    let mut wire = BytesMut::new();
    encode_frame(frame, &mut wire);
    wire
}

fn body_of(frame: &PeerFrame) -> Bytes {
    encode(frame).split_off(FRAME_HEADER_BYTES).freeze()
}

fn encode_stream(frames: &[PeerFrame]) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        encode_frame(frame, &mut wire);
    }
    wire
}

/// Split every complete frame off `buf` and decode it.
fn drain(buf: &mut BytesMut, out: &mut Vec<PeerFrame>) {
    while let Some(body) = split_frame(buf, LIMIT).unwrap() {
        out.push(decode_frame(body).unwrap());
    }
}

#[test]
fn every_frame_round_trips_canonically() {
    let kinds: std::collections::BTreeSet<&str> = every_message().iter().map(Message::kind).collect();
    assert_eq!(kinds.len(), 16, "every Message variant is sampled");
    for frame in every_frame() {
        let wire = encode(&frame);
        assert_eq!(wire.len(), frame_bytes(&frame), "{frame:?}");
        let mut buf = wire.clone();
        let body = split_frame(&mut buf, LIMIT).unwrap().unwrap();
        assert!(buf.is_empty());
        let decoded = decode_frame(body).unwrap();
        assert_eq!(decoded, frame);
        assert_eq!(encode(&decoded), wire, "re-encoding a decoded frame gives the same bytes");
    }
}

#[test]
fn empty_batch_and_noop_stay_distinct() {
    for value in [Value::Noop, batch(&[])] {
        let frame = PeerFrame::Paxos(Message::CatchUpReply(CatchUpReply {
            first_slot: 1,
            values: vec![value.clone()],
            commit: 2,
        }));
        match decode_frame(body_of(&frame)).unwrap() {
            PeerFrame::Paxos(Message::CatchUpReply(m)) => assert_eq!(m.values, vec![value]),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn accept_body_layout_is_pinned() {
    // Pins the wire format: changing it needs a new PROTOCOL_VERSION.
    let frame = PeerFrame::Paxos(Message::Accept(Accept {
        ballot: Ballot::new(2, 3),
        first_slot: 7,
        values: vec![Value::Noop, batch(&[b"ab"])],
        commit: 5,
    }));
    #[rustfmt::skip]
    let body: &[u8] = &[
        0x05,                                   // tag Accept
        2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,     // ballot (2, 3)
        7, 0, 0, 0, 0, 0, 0, 0,                 // first_slot
        2, 0, 0, 0,                             // value count
        0,                                      // Noop
        1, 1, 0, 0, 0, 2, 0, 0, 0, b'a', b'b',  // Batch of one 2-byte command
        5, 0, 0, 0, 0, 0, 0, 0,                 // commit
    ];
    let wire = encode(&frame);
    assert_eq!(&wire[FRAME_HEADER_BYTES..], body);
    assert_eq!(wire[..4], (body.len() as u32).to_le_bytes());
    assert_eq!(wire[4..8], crc32c::crc32c(body).to_le_bytes());
}

#[test]
fn decoded_byte_strings_share_the_body_buffer() {
    let frame = PeerFrame::Paxos(Message::Accept(Accept {
        ballot: Ballot::new(1, 1),
        first_slot: 0,
        values: vec![batch(&[b"first command", b"second command"])],
        commit: 0,
    }));
    let body = body_of(&frame);
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    let PeerFrame::Paxos(Message::Accept(accept)) = decode_frame(body.clone()).unwrap() else { panic!() };
    for command in accept.values[0].commands() {
        assert!(range.contains(&(command.as_ptr() as usize)), "command was copied");
    }
    let forward = PeerFrame::Forward { id: 9, command: Bytes::from_static(b"payload") };
    let body = body_of(&forward);
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    let PeerFrame::Forward { command, .. } = decode_frame(body.clone()).unwrap() else { panic!() };
    assert!(range.contains(&(command.as_ptr() as usize)), "command was copied");
}

#[test]
fn split_frame_at_every_split_point_of_a_stream() {
    let frames = every_frame();
    let stream = encode_stream(&frames);
    for split in 0..=stream.len() {
        let mut buf = BytesMut::from(&stream[..split]);
        let mut decoded = Vec::new();
        drain(&mut buf, &mut decoded);
        buf.extend_from_slice(&stream[split..]);
        drain(&mut buf, &mut decoded);
        assert!(buf.is_empty(), "split at {split}");
        assert_eq!(decoded, frames, "split at {split}");
    }
}

#[test]
fn split_frame_byte_by_byte_consumes_nothing_until_complete() {
    let frames = every_frame();
    let stream = encode_stream(&frames);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for &byte in stream.iter() {
        buf.put_u8(byte);
        let before = buf.clone();
        match split_frame(&mut buf, LIMIT).unwrap() {
            Some(body) => decoded.push(decode_frame(body).unwrap()),
            None => assert_eq!(buf, before, "Ok(None) must not consume"),
        }
    }
    assert!(buf.is_empty());
    assert_eq!(decoded, frames);
}

#[test]
fn corrupted_body_or_checksum_is_detected() {
    for frame in every_frame() {
        let wire = encode(&frame);
        for at in 4..wire.len() {
            let mut corrupt = wire.clone();
            corrupt[at] ^= 0x20;
            match split_frame(&mut corrupt, LIMIT) {
                Err(PeerDecodeError::ChecksumMismatch { .. }) => {}
                other => panic!("{frame:?} with byte {at} flipped: {other:?}"),
            }
        }
    }
}

#[test]
fn oversize_len_is_rejected_before_the_body_arrives() {
    let max = 100;
    let mut buf = BytesMut::new();
    buf.put_u32_le(max as u32 + 1);
    let error = split_frame(&mut buf, max).unwrap_err();
    assert_eq!(error, PeerDecodeError::FrameTooLarge { len: 101, max: 100 });
    assert_eq!(error.to_string(), "frame of 101 bytes exceeds the limit 100");
    let mut huge = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
    assert!(matches!(split_frame(&mut huge, LIMIT), Err(PeerDecodeError::FrameTooLarge { .. })));
    // A length exactly at the limit waits for its body, then splits.
    let mut at_limit = BytesMut::new();
    write_frame_body(&mut at_limit, |out| out.put_bytes(7, max));
    let mut buf = BytesMut::from(&at_limit[..50]);
    assert_eq!(split_frame(&mut buf, max), Ok(None));
    buf.extend_from_slice(&at_limit[50..]);
    assert_eq!(split_frame(&mut buf, max).unwrap().unwrap().len(), max);
}

#[test]
fn write_frame_body_appends_after_existing_bytes() {
    let mut out = BytesMut::from(&b"xyz"[..]);
    write_frame_body(&mut out, |out| out.put_slice(b"hello"));
    let mut rest = out.split_off(3);
    assert_eq!(&out[..], b"xyz");
    assert_eq!(split_frame(&mut rest, LIMIT).unwrap().unwrap(), Bytes::from_static(b"hello"));
}

#[test]
fn every_strict_prefix_of_a_body_is_truncated() {
    for frame in every_frame() {
        let body = body_of(&frame);
        for cut in 0..body.len() {
            match decode_frame(body.slice(..cut)) {
                Err(PeerDecodeError::Truncated { .. }) | Err(PeerDecodeError::CountTooLarge { .. }) => {}
                other => panic!("{frame:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn non_canonical_and_unknown_bytes_are_rejected() {
    let decode = |bytes: &[u8]| decode_frame(Bytes::copy_from_slice(bytes));
    for frame in every_frame() {
        let mut body = body_of(&frame).to_vec();
        body.push(0);
        assert_eq!(decode(&body), Err(PeerDecodeError::TrailingBytes { what: "frame body", count: 1 }));
    }
    for tag in [0x00, 0x11, 0x3F, 0x44, 0xFF] {
        assert_eq!(decode(&[tag]), Err(PeerDecodeError::UnknownTag { what: "message", tag }));
    }
    assert_eq!(
        decode(&[0x11]).unwrap_err().to_string(),
        "unknown message tag 0x11",
        "the brief's wording for an unknown tag"
    );

    let b = Ballot::new(1, 1);
    let mut granted =
        body_of(&PeerFrame::Paxos(Message::PreVoteReply(PreVoteReply { ballot: b, granted: true, promised: b })))
            .to_vec();
    granted[1 + BALLOT_BYTES] = 2;
    assert_eq!(decode(&granted), Err(PeerDecodeError::InvalidBool { what: "granted", byte: 2 }));

    let mut reject =
        body_of(&PeerFrame::Paxos(Message::Reject(Reject { ballot: b, promised: b, reason: RejectReason::LeaseHeld })))
            .to_vec();
    *reject.last_mut().unwrap() = 2;
    assert_eq!(decode(&reject), Err(PeerDecodeError::UnknownTag { what: "reject reason", tag: 2 }));

    let mut hint =
        body_of(&PeerFrame::ForwardRefused { id: 1, reason: ForwardRefusal::NotLeader { leader: None } }).to_vec();
    *hint.last_mut().unwrap() = 2;
    assert_eq!(decode(&hint), Err(PeerDecodeError::InvalidBool { what: "leader hint presence", byte: 2 }));

    let mut refusal = body_of(&PeerFrame::ForwardRefused { id: 1, reason: ForwardRefusal::Busy }).to_vec();
    *refusal.last_mut().unwrap() = 3;
    assert_eq!(decode(&refusal), Err(PeerDecodeError::UnknownTag { what: "forward refusal", tag: 3 }));

    let catch_up = |values: Vec<Value>| {
        body_of(&PeerFrame::Paxos(Message::CatchUpReply(CatchUpReply { first_slot: 0, values, commit: 0 }))).to_vec()
    };
    let mut value_tag = catch_up(vec![Value::Noop]);
    value_tag[1 + 8 + 4] = 3;
    assert_eq!(decode(&value_tag), Err(PeerDecodeError::UnknownTag { what: "value", tag: 3 }));
    // A stamped batch must carry a stamp: stamp 0 is the unstamped tag's job.
    value_tag[1 + 8 + 4] = 2;
    assert!(matches!(decode(&value_tag), Err(PeerDecodeError::UnknownTag { tag: 2, .. })));
}

#[test]
fn hostile_counts_are_rejected_before_allocating() {
    let decode = |bytes: &[u8]| decode_frame(Bytes::copy_from_slice(bytes));
    // A CatchUpReply claiming u32::MAX values in a 30-byte body.
    let mut values = vec![TAG_CATCH_UP_REPLY];
    values.extend_from_slice(&3u64.to_le_bytes());
    values.extend_from_slice(&u32::MAX.to_le_bytes());
    values.extend_from_slice(&[0; 17]);
    assert_eq!(
        decode(&values),
        Err(PeerDecodeError::CountTooLarge { what: "value count", count: u32::MAX, remaining: 17 })
    );
    // A batch of 5 commands needs at least 20 bytes.
    let mut commands = vec![TAG_CATCH_UP_REPLY];
    commands.extend_from_slice(&3u64.to_le_bytes());
    commands.extend_from_slice(&1u32.to_le_bytes());
    commands.push(VALUE_BATCH);
    commands.extend_from_slice(&5u32.to_le_bytes());
    commands.extend_from_slice(&[0; 19]);
    assert_eq!(
        decode(&commands),
        Err(PeerDecodeError::CountTooLarge { what: "command count", count: 5, remaining: 19 })
    );
    // Accepted entries take at least 21 bytes each.
    let mut promise = vec![TAG_PROMISE];
    promise.extend_from_slice(&[0; BALLOT_BYTES + 8 + 4]);
    promise.extend_from_slice(&2u32.to_le_bytes());
    promise.extend_from_slice(&[0; 41]);
    assert_eq!(
        decode(&promise),
        Err(PeerDecodeError::CountTooLarge { what: "accepted entry count", count: 2, remaining: 41 })
    );
    // A byte string longer than the body.
    let mut forward = vec![TAG_FORWARD];
    forward.extend_from_slice(&1u64.to_le_bytes());
    forward.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode(&forward),
        Err(PeerDecodeError::Truncated { what: "command", needed: u32::MAX as usize, remaining: 0 })
    );
}

fn handshake() -> Handshake {
    Handshake {
        cluster_id: "prod-eu-1".to_owned(),
        node_id: 3,
        shard: 17,
        protocol_version: PROTOCOL_VERSION,
        nonce: [0xA5; NONCE_BYTES],
        shards: 2,
        members: vec![1, 3, 5],
        formats: FORMATS,
    }
}

fn handshake_body(h: &Handshake) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_handshake(h, &mut out);
    out.to_vec()
}

#[test]
fn handshake_round_trips_in_a_frame() {
    for h in [
        handshake(),
        Handshake { cluster_id: "é".repeat(127), ..handshake() },
        Handshake { cluster_id: String::new(), ..handshake() },
        Handshake { members: Vec::new(), shards: 0, ..handshake() },
        Handshake { members: (1..=64).collect(), ..handshake() },
    ] {
        let mut wire = BytesMut::new();
        write_frame_body(&mut wire, |out| encode_handshake(&h, out));
        let body = split_frame(&mut wire, LIMIT).unwrap().unwrap();
        assert_eq!(decode_handshake(&body), Ok(h.clone()));
        assert_eq!(&body[..4], b"PXKV");
        for cut in 0..body.len() {
            // A cut member list shows as a count the bytes left cannot hold.
            let error = decode_handshake(&body[..cut]);
            let cut_short =
                matches!(error, Err(PeerDecodeError::Truncated { .. } | PeerDecodeError::CountTooLarge { .. }));
            assert!(cut_short, "cut {cut}: {error:?}");
        }
        let mut long = body.to_vec();
        long.push(0);
        assert_eq!(decode_handshake(&long), Err(PeerDecodeError::TrailingBytes { what: "handshake", count: 1 }));
    }
}

#[test]
fn handshake_with_bad_magic_is_refused() {
    let mut body = handshake_body(&handshake());
    body[..4].copy_from_slice(b"*1\r\n");
    let error = decode_handshake(&body).unwrap_err();
    assert_eq!(error, PeerDecodeError::BadMagic { found: *b"*1\r\n" });
    assert!(error.to_string().starts_with("bad magic"), "{error}");
}

#[test]
fn handshake_of_another_version_reports_that_version() {
    let body = handshake_body(&Handshake { protocol_version: 1, ..handshake() });
    let error = decode_handshake(&body).unwrap_err();
    assert_eq!(error, PeerDecodeError::UnsupportedVersion { version: 1 });
    assert_eq!(error.to_string(), "unsupported protocol version 1 (this node speaks 7)");
    // The fields after the version are not read: a later version may lay them out differently.
    let mut future = body[..6].to_vec();
    future.extend_from_slice(b"anything at all");
    assert_eq!(decode_handshake(&future), Err(PeerDecodeError::UnsupportedVersion { version: 1 }));
}

#[test]
fn handshake_with_a_long_or_invalid_cluster_id_is_refused() {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    body.extend_from_slice(&256u16.to_le_bytes());
    body.extend_from_slice(&[b'c'; 256]);
    body.extend_from_slice(&[0; 8]);
    assert_eq!(
        decode_handshake(&body),
        Err(PeerDecodeError::TooLong { what: "cluster id", len: 256, max: CLUSTER_ID_BYTES_MAX })
    );
    let mut invalid = handshake_body(&handshake());
    invalid[8] = 0xFF;
    assert_eq!(decode_handshake(&invalid), Err(PeerDecodeError::InvalidUtf8 { what: "cluster id" }));
}

#[test]
#[should_panic(expected = "exceeds CLUSTER_ID_BYTES_MAX")]
fn encoding_a_long_cluster_id_is_a_bug() {
    encode_handshake(&Handshake { cluster_id: "c".repeat(256), ..handshake() }, &mut BytesMut::new());
}

#[test]
fn a_version_3_handshake_is_reported_as_version_3() {
    // What a node of protocol version 3 sends (no nonce): the version is
    // read, so the refusal can name it on both sides.
    let mut old = MAGIC.to_vec();
    old.extend_from_slice(&3u16.to_le_bytes());
    old.extend_from_slice(&5u16.to_le_bytes());
    old.extend_from_slice(b"local");
    old.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    let error = decode_handshake(&old).unwrap_err();
    assert_eq!(error, PeerDecodeError::UnsupportedVersion { version: 3 });
    assert_eq!(error.to_string(), format!("unsupported protocol version 3 (this node speaks {PROTOCOL_VERSION})"));
}

fn challenge() -> HandshakeReply {
    HandshakeReply::Challenge { node_id: 2, shard: 17, nonce: [7; NONCE_BYTES], proof: [0xC3; PROOF_BYTES] }
}

#[test]
fn handshake_reply_round_trips_and_truncates_long_reasons() {
    for reply in [
        HandshakeReply::Accepted { node_id: 3, shard: 1 },
        HandshakeReply::Refused("cluster id mismatch".into()),
        challenge(),
    ] {
        let mut body = BytesMut::new();
        encode_handshake_reply(&reply, &mut body);
        assert_eq!(decode_handshake_reply(&body), Ok(reply));
        for cut in 0..body.len() {
            assert!(matches!(decode_handshake_reply(&body[..cut]), Err(PeerDecodeError::Truncated { .. })));
        }
    }
    // 'é' is two bytes: 1024 bytes would split the 513th.
    let long = format!("x{}", "é".repeat(600));
    let mut body = BytesMut::new();
    encode_handshake_reply(&HandshakeReply::Refused(long.clone()), &mut body);
    let Ok(HandshakeReply::Refused(reason)) = decode_handshake_reply(&body) else { panic!() };
    assert_eq!(reason.len(), 1023);
    assert!(long.starts_with(&reason));
    let mut unknown = body[..5].to_vec();
    unknown[4] = 7;
    assert_eq!(decode_handshake_reply(&unknown), Err(PeerDecodeError::UnknownTag { what: "handshake reply", tag: 7 }));
}

#[test]
fn challenge_body_layout_is_pinned() {
    // Pins the wire format: changing it needs a new PROTOCOL_VERSION.
    let mut body = BytesMut::new();
    encode_handshake_reply(&challenge(), &mut body);
    let mut expected = b"PXKV\x02\x02\0\0\0\x11\0\0\0".to_vec();
    expected.extend_from_slice(&[7; NONCE_BYTES]);
    expected.extend_from_slice(&[0xC3; PROOF_BYTES]);
    assert_eq!(&body[..], &expected[..]);
    let mut body = BytesMut::new();
    encode_handshake(&handshake(), &mut body);
    assert_eq!(&body[..6], b"PXKV\x07\0");
    let view = body.len() - 20 - Formats::BYTES;
    assert_eq!(&body[view - NONCE_BYTES..view], &[0xA5; NONCE_BYTES]);
    // After the nonce: shard count 2, then 3 members: 1, 3, 5, then the
    // state-machine formats.
    assert_eq!(&body[view..view + 20], b"\x02\0\0\0\x03\0\0\0\x01\0\0\0\x03\0\0\0\x05\0\0\0");
    let formats = Formats { command: 3, op_tag_max: 31, reply: 2, snapshot: 3 };
    let mut body = BytesMut::new();
    encode_handshake(&Handshake { formats, ..handshake() }, &mut body);
    assert_eq!(&body[body.len() - Formats::BYTES..], b"\x03\x1f\x02\x03");
}

#[test]
fn handshake_proof_round_trips_and_rejects_bad_input() {
    for proof in [HandshakeProof::Proof([9; PROOF_BYTES]), HandshakeProof::Refused("your proof is wrong".into())] {
        let mut body = BytesMut::new();
        encode_handshake_proof(&proof, &mut body);
        assert_eq!(decode_handshake_proof(&body), Ok(proof));
        for cut in 0..body.len() {
            assert!(matches!(decode_handshake_proof(&body[..cut]), Err(PeerDecodeError::Truncated { .. })));
        }
        let mut long = body.to_vec();
        long.push(0);
        assert_eq!(
            decode_handshake_proof(&long),
            Err(PeerDecodeError::TrailingBytes { what: "handshake proof", count: 1 })
        );
    }
    let mut long = BytesMut::new();
    encode_handshake_proof(&HandshakeProof::Refused("é".repeat(600)), &mut long);
    let Ok(HandshakeProof::Refused(reason)) = decode_handshake_proof(&long) else { panic!() };
    assert_eq!(reason.len(), 1024);
    assert_eq!(
        decode_handshake_proof(b"PXKV\x05"),
        Err(PeerDecodeError::UnknownTag { what: "handshake proof", tag: 5 })
    );
    assert_eq!(decode_handshake_proof(b"PXKW\x00"), Err(PeerDecodeError::BadMagic { found: *b"PXKW" }));
}

/// Prints the case seed if the fuzz case panics.
struct ReportSeedOnPanic(u64);

impl Drop for ReportSeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("peer fuzz case failed; reproduce with PAXOSKV_PEER_FUZZ_SEED={}", self.0);
        }
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..rng.range_inclusive(1, 3) {
        let at = rng.below(bytes.len() as u64 + 1) as usize;
        match rng.below(6) {
            0 if at < bytes.len() => bytes[at] = rng.next_u64() as u8,
            1 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
            2 if at + 4 <= bytes.len() => {
                let word = [0, 1, 2, 0x7F, u32::MAX, 1 << 31, rng.next_u64() as u32][rng.below(7) as usize];
                bytes[at..at + 4].copy_from_slice(&word.to_le_bytes());
            }
            3 => bytes.truncate(at),
            4 => bytes.insert(at, rng.next_u64() as u8),
            5 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
}

/// Decodes `body` (must not panic); a body that decodes must re-encode
/// to the same bytes.
fn check_body(body: &[u8]) -> bool {
    let Ok(frame) = decode_frame(Bytes::copy_from_slice(body)) else { return false };
    assert_eq!(&encode(&frame)[FRAME_HEADER_BYTES..], body, "non-canonical: {frame:?}");
    true
}

#[test]
fn decoders_survive_mutated_and_random_input() {
    let base_seed =
        std::env::var("PAXOSKV_PEER_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_0000_0000_0001u64);
    let bodies: Vec<Vec<u8>> = every_frame().iter().map(|f| body_of(f).to_vec()).collect();
    let stream = encode_stream(&every_frame()).to_vec();
    let handshake = handshake_body(&handshake());
    let mut replies = Vec::new();
    for reply in [HandshakeReply::Refused("no".into()), challenge()] {
        let mut body = BytesMut::new();
        encode_handshake_reply(&reply, &mut body);
        replies.push(body.to_vec());
    }
    let mut proof = BytesMut::new();
    encode_handshake_proof(&HandshakeProof::Proof([1; PROOF_BYTES]), &mut proof);
    let (mut decoded, mut mutated_decoded) = (0, 0);
    for case in 0..20_000u64 {
        let seed = base_seed.wrapping_add(case);
        let _report = ReportSeedOnPanic(seed);
        let mut rng = Rng::new(seed);
        match case % 4 {
            // A valid body, mutated: exercises the decoder past the CRC.
            0 => {
                let mut body = bodies[rng.below(bodies.len() as u64) as usize].clone();
                mutate(&mut rng, &mut body);
                if check_body(&body) {
                    mutated_decoded += 1;
                }
            }
            // Noise, biased towards valid tags and small numbers.
            1 => {
                let len = rng.below(48) as usize;
                let mut body: Vec<u8> = (0..len).map(|_| rng.below(3) as u8).collect();
                if let Some(tag) = body.first_mut() {
                    *tag =
                        [TAG_PRE_VOTE, TAG_CATCH_UP, TAG_FORWARD_REFUSED, rng.next_u64() as u8][rng.below(4) as usize];
                }
                if check_body(&body) {
                    decoded += 1;
                }
            }
            // A mutated stream, fed in random chunks.
            2 => {
                let mut wire = stream.clone();
                mutate(&mut rng, &mut wire);
                let mut buf = BytesMut::new();
                let mut fed = 0;
                while fed < wire.len() {
                    let chunk = (rng.range_inclusive(1, 64) as usize).min(wire.len() - fed);
                    buf.extend_from_slice(&wire[fed..fed + chunk]);
                    fed += chunk;
                    loop {
                        match split_frame(&mut buf, 4096) {
                            Ok(Some(body)) => {
                                check_body(&body);
                            }
                            Ok(None) => break,
                            Err(_) => {
                                fed = wire.len();
                                break;
                            }
                        }
                    }
                }
            }
            // Handshakes and replies, mutated.
            _ => {
                let mut body = handshake.clone();
                mutate(&mut rng, &mut body);
                if let Ok(h) = decode_handshake(&body) {
                    assert_eq!(handshake_body(&h), body);
                }
                let mut body = replies[rng.below(replies.len() as u64) as usize].clone();
                mutate(&mut rng, &mut body);
                if let Ok(r) = decode_handshake_reply(&body) {
                    let mut again = BytesMut::new();
                    encode_handshake_reply(&r, &mut again);
                    assert_eq!(again, body);
                }
                let mut body = proof.to_vec();
                mutate(&mut rng, &mut body);
                if let Ok(p) = decode_handshake_proof(&body) {
                    let mut again = BytesMut::new();
                    encode_handshake_proof(&p, &mut again);
                    assert_eq!(again, body);
                }
            }
        }
    }
    assert!(decoded > 0 && mutated_decoded > 0, "fuzzing should reach valid encodings");
}
