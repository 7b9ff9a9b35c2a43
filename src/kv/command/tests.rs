use super::*;
use crate::kv::codec::test_support::check_decoder_robust;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn set(key: &str, value: &str, condition: SetCondition) -> Op {
    Op::Set { key: b(key), value: b(value), condition, ttl: SetTtl::Clear, get: false }
}

/// One of each op and option, with the expected `is_read_only`.
fn every_op_and_read_only() -> Vec<(Op, bool)> {
    crate::fuzzing::sample_ops()
}

fn every_op() -> Vec<Op> {
    every_op_and_read_only().into_iter().map(|(op, _)| op).collect()
}

fn every_command() -> Vec<Command> {
    every_op()
        .into_iter()
        .enumerate()
        .map(|(i, op)| Command {
            session: i as u64 * 0x0101_0101,
            seq: u64::MAX - i as u64,
            ack: i as u64,
            prev: i as u64 / 2,
            op,
        })
        .collect()
}

/// The header (version, session, seq, ack, prev) of a command, then `rest`.
fn with_header(rest: &[u8]) -> Vec<u8> {
    let mut encoded = vec![COMMAND_FORMAT_VERSION];
    encoded.extend_from_slice(&[0; COMMAND_HEADER_BYTES - 1]);
    encoded.extend_from_slice(rest);
    encoded
}

#[test]
fn command_round_trips_for_every_op() {
    for command in every_command() {
        let encoded = command.encode();
        assert_eq!(encoded[0], COMMAND_FORMAT_VERSION);
        assert_eq!(encoded.len(), COMMAND_HEADER_BYTES + command.op.encoded_len(), "capacity estimate for {command:?}");
        assert_eq!(Command::decode(&encoded), Ok(command.clone()));
    }
}

#[test]
fn truncations_and_random_bytes_are_rejected_without_panic() {
    let seeds: Vec<Bytes> = every_command().iter().map(Command::encode).collect();
    // Older input decodes too, but re-encodes as version 3: canonical within a version.
    let current = |input: &[u8]| input.first() == Some(&COMMAND_FORMAT_VERSION);
    check_decoder_robust(&seeds, 5000, |input| {
        Command::decode(input).ok().filter(|_| current(input)).map(|c| c.encode())
    });
}

#[test]
fn peek_key_reads_the_key_decode_would() {
    let mut peeked = 0;
    for command in every_command() {
        let encoded = command.encode();
        let expected = match &command.op {
            Op::Get { key } | Op::Set { key, .. } | Op::IncrBy { key, .. } => Some(key.as_ref()),
            _ => None,
        };
        assert_eq!(Command::peek_key(&encoded), expected, "{command:?}");
        peeked += usize::from(expected.is_some());
        // Cut anywhere, it reads the key whole or not at all.
        for cut in 0..encoded.len() {
            let key = Command::peek_key(&encoded[..cut]);
            assert!(key.is_none() || key == expected, "{command:?} cut at {cut}");
        }
    }
    assert!(peeked >= 3, "the sample has every op peek_key reads");
}

/// A version 1 command (session 7, seq 3) of op `tag` whose first field is `key`.
fn version_1(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut encoded = vec![COMMAND_FORMAT_VERSION_1];
    encoded.extend_from_slice(&7u64.to_le_bytes());
    encoded.extend_from_slice(&3u64.to_le_bytes());
    encoded.push(tag);
    encoded.extend_from_slice(&(key.len() as u32).to_le_bytes());
    encoded.extend_from_slice(key);
    encoded
}

#[test]
fn peek_key_reads_version_1_and_refuses_unknown_versions() {
    let mut encoded = version_1(TAG_SET, b"ky");
    assert_eq!(Command::peek_key(&encoded), Some(&b"ky"[..]));
    encoded[0] = COMMAND_FORMAT_VERSION + 1;
    assert_eq!(Command::peek_key(&encoded), None);
    encoded[0] = 0;
    assert_eq!(Command::peek_key(&encoded), None);
}

#[test]
fn version_1_commands_still_decode() {
    let encoded = version_1(TAG_GET, b"k");
    let command = Command::decode(&encoded).expect("a version 1 command");
    assert_eq!(command, Command { session: 7, seq: 3, ack: 3, prev: 0, op: Op::Get { key: b("k") } });
}

#[test]
fn version_2_commands_still_decode_and_know_no_new_ops() {
    let mut encoded = vec![COMMAND_FORMAT_VERSION_2];
    encoded.extend_from_slice(&[0; COMMAND_HEADER_BYTES - 1]);
    encoded.push(TAG_SET);
    encoded.extend_from_slice(&1u32.to_le_bytes());
    encoded.push(b'k');
    encoded.extend_from_slice(&1u32.to_le_bytes());
    encoded.push(b'v');
    encoded.push(CONDITION_ALWAYS);
    let command = Command::decode(&encoded).expect("a version 2 SET");
    assert_eq!(command.op, set("k", "v", SetCondition::Always));
    let mut strlen = vec![COMMAND_FORMAT_VERSION_2];
    strlen.extend_from_slice(&[0; COMMAND_HEADER_BYTES - 1]);
    strlen.extend_from_slice(&[TAG_STRLEN, 0, 0, 0, 0]);
    assert_eq!(Command::decode(&strlen), Err(DecodeError::UnknownTag { what: "op", tag: TAG_STRLEN }));
}

#[test]
fn an_exec_inside_an_exec_is_refused() {
    let inner = Op::Exec { ops: vec![], watched: vec![], removals: 0 };
    let outer = Op::Exec { ops: vec![inner], watched: vec![], removals: 0 };
    let encoded = Command::anonymous(outer).encode();
    assert_eq!(Command::decode(&encoded), Err(DecodeError::UnknownTag { what: "op", tag: TAG_EXEC }));
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut encoded = Command { session: 1, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } }.encode().to_vec();
    encoded.push(0);
    assert_eq!(Command::decode(&encoded), Err(DecodeError::TrailingBytes { what: "command", count: 1 }));
}

#[test]
fn unknown_version_and_tags_are_errors() {
    let mut encoded = Command { session: 1, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } }.encode().to_vec();
    encoded[0] = 9;
    assert_eq!(Command::decode(&encoded), Err(DecodeError::UnsupportedVersion { what: "command", version: 9 }));
    encoded[0] = COMMAND_FORMAT_VERSION;
    encoded[COMMAND_HEADER_BYTES] = 200; // the op tag
    assert_eq!(Command::decode(&encoded), Err(DecodeError::UnknownTag { what: "op", tag: 200 }));

    let set = set("k", "v", SetCondition::Always);
    let mut encoded = Command { session: 1, seq: 1, ack: 1, prev: 0, op: set }.encode().to_vec();
    let condition_at = encoded.len() - 3; // condition, ttl, get flag
    encoded[condition_at] = 4;
    assert_eq!(Command::decode(&encoded), Err(DecodeError::UnknownTag { what: "set condition", tag: 4 }));
}

#[test]
fn absurd_lengths_are_rejected_before_allocating() {
    // GET with a key length of u32::MAX and 3 bytes of key.
    let mut rest = vec![TAG_GET];
    rest.extend_from_slice(&u32::MAX.to_le_bytes());
    rest.extend_from_slice(b"abc");
    assert_eq!(
        Command::decode(&with_header(&rest)),
        Err(DecodeError::LengthTooLarge { what: "key", length: u64::from(u32::MAX), remaining: 3 })
    );
    // MGET claiming 2 keys with 7 bytes left: each key needs >= 4 bytes.
    let mut rest = vec![TAG_MGET];
    rest.extend_from_slice(&2u32.to_le_bytes());
    rest.extend_from_slice(&[0; 7]);
    assert_eq!(
        Command::decode(&with_header(&rest)),
        Err(DecodeError::LengthTooLarge { what: "key list", length: 2, remaining: 7 })
    );
    // MSET claiming u32::MAX pairs.
    let mut rest = vec![TAG_MSET];
    rest.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Command::decode(&with_header(&rest)),
        Err(DecodeError::LengthTooLarge { what: "MSET pair list", .. })
    ));
}

#[test]
fn decode_errors_display_clear_messages() {
    let error = Command::decode(&[]).unwrap_err();
    assert_eq!(error.to_string(), "kv decode: input truncated while reading command version: need 1 bytes, 0 left");
    let error = Command::decode(&with_header(&[99])).unwrap_err();
    assert_eq!(error.to_string(), "kv decode: unknown op tag 99");
}

#[test]
fn op_keys_and_read_only() {
    for (op, read_only) in every_op_and_read_only() {
        assert_eq!(op.is_read_only(), read_only, "{op:?}");
    }
    let mset = Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] };
    assert_eq!(mset.keys(), vec![&b("a"), &b("b")]);
    let exists = Op::Exists { keys: vec![b("x"), b("x")] };
    assert_eq!(exists.keys(), vec![&b("x"), &b("x")]);
    let set = set("k", "v", SetCondition::IfEqual(b("o")));
    assert_eq!(set.keys(), vec![&b("k")]);
    let exec = Op::Exec {
        ops: vec![Op::Rename { from: b("a"), to: b("b"), nx: false }],
        watched: vec![Watched { key: b("w"), version: None }],
        removals: 0,
    };
    assert_eq!(exec.keys(), vec![&b("w"), &b("a"), &b("b")]);
}
