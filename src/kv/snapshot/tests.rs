//! Tests of `snapshot.rs`.

use super::*;
use crate::kv::codec::test_support::{check_decoder_robust, XorShift};
use crate::kv::command::{Command, Op, SetCondition};
use crate::kv::store::Applied;
use crate::kv::{ExpireWhen, Expiry, SetTtl};

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn reply_of(store: &mut KvStore, command: &Command) -> Option<Reply> {
    store.apply(command.clone()).reply
}

/// Found by the kv_snapshot fuzz target: an image of the current
/// version holding a cached reply in the older reply format restored,
/// and snapshotted to other bytes (`snapshot` writes only the current
/// format). Such an image is refused.
#[test]
fn a_current_image_with_an_older_format_reply_inside_is_refused() {
    let mut store = KvStore::new(4);
    let command = Command { session: 5, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } };
    assert_eq!(reply_of(&mut store, &command), Some(Reply::Nil));
    let image = store.snapshot();
    // The cached reply: its length (2), the reply version, the Nil tag.
    let current = [2, 0, 0, 0, crate::kv::REPLY_FORMAT_VERSION, 2];
    let at = image.windows(current.len()).position(|w| w == current).expect("the cached reply is in the image");
    let mut old = image.to_vec();
    old[at + 4] = 1; // the older reply format, which decodes to the same reply
    assert!(matches!(
        KvStore::restore(&old),
        Err(SnapshotError::Decode(DecodeError::UnsupportedVersion { what: "cached reply", version: 1 }))
    ));
    assert_eq!(KvStore::restore(&image).as_ref(), Ok(&store));
}

/// A pseudo-random command over a few keys; `session`, `seq`, `ack` and `prev` as given.
fn random_command(rng: &mut XorShift, session: SessionId, seq: u64, ack: u64, prev: u64) -> Command {
    let key = b(&format!("k{}", rng.next() % 6));
    let op = match rng.next() % 7 {
        0 => Op::Set {
            key,
            value: b(&(rng.next() % 100).to_string()),
            condition: SetCondition::Always,
            ttl: SetTtl::Clear,
            get: false,
        },
        1 => Op::Set { key, value: b("nx"), condition: SetCondition::IfNotExists, ttl: SetTtl::Clear, get: false },
        2 => Op::IncrBy { key, delta: (rng.next() % 21) as i64 - 10 },
        3 => Op::Del { keys: vec![key, b("k0")] },
        4 => Op::MSet { pairs: vec![(key, b("m")), (b(&format!("k{}", rng.next() % 6)), b("7"))] },
        5 => Op::MGet { keys: vec![key, b("k1")] },
        _ => Op::Get { key },
    };
    Command { session, seq, ack, prev, op }
}

/// Applies a few hundred mixed commands from 8 sessions (more than the
/// 5 the table keeps, so some are evicted and retired), with pipelines
/// (acks lagging), commands arriving before their predecessor, retries
/// and stale commands. Returns the store and every command applied.
fn busy_store() -> (KvStore, Vec<Command>) {
    let mut store = KvStore::new(5);
    let mut rng = XorShift(0x5EED_0000_0000_0001);
    let mut seq_next: BTreeMap<SessionId, u64> = BTreeMap::new();
    let mut history: Vec<Command> = Vec::new();
    for _ in 0..400 {
        let session = rng.next() % 9; // 0 is SESSION_NONE: never deduplicated
        let command = match rng.next() % 10 {
            // A retry or a stale resend of an earlier command.
            0 | 1 if !history.is_empty() => history[(rng.next() % history.len() as u64) as usize].clone(),
            _ => {
                let next = seq_next.entry(session).or_insert(1);
                let seq = *next + rng.next() % 2; // sometimes skip one: it arrives later
                *next = seq + 1;
                let ack = seq.saturating_sub(rng.next() % 4).max(1);
                let prev = seq - 1;
                random_command(&mut rng, session, seq, ack, prev)
            }
        };
        store.apply(command.clone());
        history.push(command);
    }
    (store, history)
}

/// Applies each command to both stores; results and digests must match
/// after every one. Returns the results.
fn apply_to_both(first: &mut KvStore, second: &mut KvStore, commands: &[Command]) -> Vec<Applied> {
    commands
        .iter()
        .map(|command| {
            let applied = first.apply(command.clone());
            assert_eq!(second.apply(command.clone()), applied, "{command:?}");
            assert_eq!(first.digest(), second.digest(), "after {command:?}");
            applied
        })
        .collect()
}

/// Writes a version 2 image field by field without any check, to build
/// invalid ones. Each session `(id, floor, apply_index)` caches one
/// reply at `floor` and has no waiting command.
fn raw_image(sessions_max: u64, apply_count: u64, data: &[(&str, &str)], sessions: &[(u64, u64, u64)]) -> Vec<u8> {
    let mut writer = Writer::with_capacity(64);
    writer.u8(SNAPSHOT_FORMAT_VERSION);
    writer.u64(sessions_max);
    writer.u64(apply_count);
    writer.i64(0);
    writer.u64(0);
    writer.length(data.len());
    for (key, value) in data {
        writer.bytes(key.as_bytes());
        writer.bytes(value.as_bytes());
        writer.u8(0);
        writer.u64(0);
    }
    writer.length(sessions.len());
    for &(id, floor, apply_index_last) in sessions {
        writer.u64(id);
        writer.u64(floor);
        writer.u64(apply_index_last);
        writer.length(1);
        writer.u64(floor);
        writer.bytes(&Reply::Int(floor as i64).encode());
        writer.length(0);
    }
    writer.length(0);
    writer.finish().to_vec()
}

/// Runs commands on a restored store, so a corrupt-but-accepted image
/// would show up as a panic in the session table.
fn exercise(mut store: KvStore) {
    let ids: Vec<SessionId> = store.sessions.sorted().into_iter().map(|(id, _)| id).collect();
    for id in ids.into_iter().chain([SESSION_NONE, u64::MAX - 1]) {
        for seq in [0, 1, 2, u64::MAX] {
            let prev = seq.saturating_sub(1);
            store.apply(Command { session: id, seq, ack: seq / 2, prev, op: Op::IncrBy { key: b("n"), delta: 1 } });
        }
    }
    store.sessions.check_invariants();
}

#[test]
fn round_trip_then_identical_behaviour() {
    let (mut original, history) = busy_store();
    assert_eq!(original.sessions_len(), 5, "the table filled up and evicted");
    assert!(!original.sessions.retired.is_empty(), "evictions raised a watermark");
    assert!(original.sessions.sessions.values().any(|s| !s.waiting.is_empty()), "some command waits");
    let image = original.snapshot();
    let mut restored = KvStore::restore(&image).expect("a fresh snapshot restores");
    assert_eq!(restored, original);
    assert_eq!(restored.digest(), original.digest());
    assert_eq!(restored.snapshot(), image, "snapshot(restore(b)) == b");

    // A retry of a cached command replays its reply without executing.
    let (&id, session) = restored.sessions.sessions.iter().find(|(_, s)| s.replies.len() > 0).unwrap();
    let (seq, cached) = session.replies.iter().next().unwrap();
    let retry = history.iter().rev().find(|c| c.session == id && c.seq == seq).unwrap().clone();
    let (cached, data_before) = (cached.clone(), restored.keys.clone());
    let retry = Command { ack: retry.ack.min(seq), ..retry };
    let results = apply_to_both(&mut original, &mut restored, &[retry]);
    assert_eq!(results[0].reply, Some(cached));
    assert_eq!(restored.keys, data_before, "a retry must not execute again");

    // Retries of every pre-snapshot command, then 20 new sessions that
    // evict every old one, then the pre-snapshot retries again.
    let mut rng = XorShift(0xC0FF_EE00_0000_0001);
    let mut later: Vec<Command> = history.iter().rev().take(60).cloned().collect();
    for session in 100..120 {
        later.push(random_command(&mut rng, session, 1, 1, 0));
        later.push(random_command(&mut rng, 1 + session % 8, 1_000 + session, 1_000 + session, 0));
        later.push(history[(rng.next() % history.len() as u64) as usize].clone());
    }
    later.extend(history.iter().rev().take(60).cloned());
    let results = apply_to_both(&mut original, &mut restored, &later);
    let errors = |prefix: &str| {
        results.iter().filter(|r| matches!(&r.reply, Some(Reply::Error(m)) if m.starts_with(prefix))).count()
    };
    assert!(errors("ERR session expired") > 0, "retired sessions are refused");
    assert!(errors("ERR command") > 0, "settled commands are refused");
    assert_eq!(restored, original);
    assert_eq!(restored.snapshot(), original.snapshot());
}

#[test]
fn empty_store_round_trips() {
    for sessions_max in [0, 1, 4096] {
        let empty = KvStore::new(sessions_max);
        let image = empty.snapshot();
        assert_eq!(image.len(), 1 + 8 + 8 + 8 + 8 + 4 + 4 + 4);
        assert_eq!(image[0], SNAPSHOT_FORMAT_VERSION);
        let restored = KvStore::restore(&image).expect("restores");
        assert_eq!(restored, empty);
        assert_eq!(restored.digest(), empty.digest());
    }
}

#[test]
fn version_1_images_restore_with_one_cached_reply_per_session() {
    let mut writer = Writer::with_capacity(64);
    writer.u8(SNAPSHOT_FORMAT_VERSION_1);
    writer.u64(4);
    writer.u64(3);
    writer.length(1);
    writer.bytes(b"k");
    writer.bytes(b"v");
    writer.length(1);
    writer.u64(7); // session
    writer.u64(2); // seq_last
    writer.u64(3); // apply index
    writer.bytes(&Reply::Ok.encode());
    let mut store = KvStore::restore(&writer.finish()).expect("a version 1 image");
    assert_eq!(store.get(b"k"), Some(&b("v")));
    let retry = Command { session: 7, seq: 2, ack: 2, prev: 1, op: Op::IncrBy { key: b("n"), delta: 1 } };
    assert_eq!(reply_of(&mut store, &retry), Some(Reply::Ok), "the cached reply survives");
}

#[test]
fn version_2_images_restore_without_expiries() {
    let mut writer = Writer::with_capacity(64);
    writer.u8(SNAPSHOT_FORMAT_VERSION_2);
    writer.u64(4);
    writer.u64(3);
    writer.length(1);
    writer.bytes(b"k");
    writer.bytes(b"v");
    writer.length(0);
    writer.length(0);
    let store = KvStore::restore(&writer.finish()).expect("a version 2 image");
    assert_eq!(store.get(b"k"), Some(&b("v")));
    assert_eq!(store.entry(b"k").map(|entry| entry.expires_at), Some(None));
    assert_eq!(store.log_time(), 0, "a version 2 store has seen no stamp");
}

#[test]
fn every_truncation_is_an_error() {
    for image in [busy_store().0.snapshot(), KvStore::new(3).snapshot()] {
        for end in 0..image.len() {
            let error = KvStore::restore(&image[..end]).expect_err("a truncated image must not restore");
            assert!(matches!(error, SnapshotError::Decode(_)), "cut at {end}: {error}");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut small = KvStore::new(2);
    let set = Op::Set { key: b("a"), value: b("1"), condition: SetCondition::Always, ttl: SetTtl::Clear, get: false };
    small.apply(Command { session: 7, seq: 1, ack: 1, prev: 0, op: set });
    small.apply(Command { session: 3, seq: 9, ack: 9, prev: 0, op: Op::MGet { keys: vec![b("a"), b("zz")] } });
    let seeds = [busy_store().0.snapshot(), small.snapshot(), KvStore::new(0).snapshot()];
    // Noise, and seeds with bytes flipped: whatever restores (in the
    // current version) must re-snapshot to the same bytes and keep working.
    check_decoder_robust(&seeds, 5000, |input| {
        KvStore::restore(input).ok().filter(|_| input[0] == SNAPSHOT_FORMAT_VERSION).map(|store| {
            let image = store.snapshot();
            exercise(store);
            image
        })
    });
    // Well-framed images with random small field values, so that the
    // semantic checks (order, bounds, apply indices) are hit often and
    // some images are valid; a quarter get a byte flipped as well.
    let mut rng = XorShift(0x0BAD_5EED_0000_0001);
    let (mut restored_count, mut rejected_count) = (0, 0);
    for _ in 0..5000 {
        let keys = ["", "a", "ab", "b"];
        let data: Vec<(&str, &str)> =
            (0..rng.next() % 4).map(|_| (keys[(rng.next() % 4) as usize], keys[(rng.next() % 4) as usize])).collect();
        let sessions: Vec<(u64, u64, u64)> =
            (0..rng.next() % 4).map(|_| (rng.next() % 4, rng.next() % 3, rng.next() % 5)).collect();
        let mut input = raw_image(rng.next() % 4, rng.next() % 5, &data, &sessions);
        if rng.next().is_multiple_of(4) {
            let at = (rng.next() % input.len() as u64) as usize;
            input[at] = rng.next() as u8;
        }
        match KvStore::restore(&input) {
            Ok(store) if input[0] == SNAPSHOT_FORMAT_VERSION => {
                assert_eq!(store.snapshot().as_ref(), input.as_slice(), "non-canonical image accepted");
                exercise(store);
                restored_count += 1;
            }
            Ok(store) => exercise(store),
            Err(_) => rejected_count += 1,
        }
    }
    assert!(restored_count > 100 && rejected_count > 100, "{restored_count} restored, {rejected_count} rejected");
}

#[test]
fn keys_must_be_strictly_ascending() {
    // Entries ascend by (key hash, key): the order SCAN walks.
    let mut pairs = vec![("a", "1"), ("b", "2"), ("c", "3")];
    pairs.sort_by_key(|(key, _)| HashedKey::new(b(key)));
    assert!(KvStore::restore(&raw_image(4, 0, &pairs, &[])).is_ok());
    pairs.swap(1, 2);
    assert_eq!(KvStore::restore(&raw_image(4, 0, &pairs, &[])), Err(SnapshotError::KeyOutOfOrder { index: 2 }));
    let repeated = raw_image(4, 0, &[("a", "1"), ("a", "2")], &[]);
    assert_eq!(KvStore::restore(&repeated), Err(SnapshotError::DuplicateKey { index: 1 }));
}

#[test]
fn invalid_session_tables_are_rejected() {
    let restore = |sessions_max, apply_count, sessions: &[(u64, u64, u64)]| {
        KvStore::restore(&raw_image(sessions_max, apply_count, &[], sessions))
    };
    let valid = restore(3, 10, &[(1, 4, 7), (2, 1, 10), (9, 1, 1)]).expect("valid");
    assert_eq!(valid.sessions_len(), 3);
    assert_eq!(restore(3, 10, &[(2, 1, 1), (1, 1, 2)]), Err(SnapshotError::SessionOutOfOrder { session: 1 }));
    assert_eq!(restore(3, 10, &[(2, 1, 1), (2, 1, 2)]), Err(SnapshotError::DuplicateSession { session: 2 }));
    assert_eq!(restore(3, 10, &[(0, 1, 1)]), Err(SnapshotError::SessionNone));
    assert_eq!(
        restore(1, 10, &[(1, 1, 1), (2, 1, 2)]),
        Err(SnapshotError::TooManySessions { count: 2, sessions_max: 1 })
    );
    assert_eq!(
        restore(3, 10, &[(1, 1, 11)]),
        Err(SnapshotError::ApplyIndexOutOfRange { session: 1, apply_index: 11, apply_count: 10 })
    );
    assert_eq!(
        restore(3, 10, &[(1, 1, 0)]),
        Err(SnapshotError::ApplyIndexOutOfRange { session: 1, apply_index: 0, apply_count: 10 })
    );
    assert_eq!(
        restore(3, 10, &[(1, 1, 5), (2, 1, 5)]),
        Err(SnapshotError::ApplyIndexReused { session: 2, apply_index: 5 })
    );
}

/// Found by the kv_snapshot fuzz target: an image with the apply counter
/// at u64::MAX restored, and the next apply overflowed it (a panic with
/// overflow checks; without, the counter wrapped and the session table
/// asserted that apply indices never go backwards).
#[test]
fn an_apply_count_no_replica_reaches_is_rejected() {
    for apply_count in [u64::MAX, APPLY_COUNT_MAX + 1] {
        assert_eq!(
            KvStore::restore(&raw_image(2, apply_count, &[], &[])),
            Err(SnapshotError::ApplyCountOutOfRange { apply_count })
        );
    }
    let mut store = KvStore::restore(&raw_image(2, APPLY_COUNT_MAX, &[], &[(1, 1, APPLY_COUNT_MAX)])).unwrap();
    store.apply(Command { session: 2, seq: 1, ack: 1, prev: 0, op: Op::Get { key: b("k") } });
    assert_eq!(store.sessions_len(), 2);
    assert_eq!(
        SnapshotError::ApplyCountOutOfRange { apply_count: u64::MAX }.to_string(),
        "kv snapshot: apply count 18446744073709551615 exceeds 9223372036854775808"
    );
}

#[test]
fn invalid_session_entries_and_watermarks_are_rejected() {
    let mut store = KvStore::new(4);
    let command = |seq, ack, prev| Command { session: 5, seq, ack, prev, op: Op::Get { key: b("k") } };
    store.apply(command(2, 1, 1)); // waits for 1
    store.apply(command(4, 1, 3)); // waits for 3
    let image = store.snapshot();
    assert!(KvStore::restore(&image).is_ok());
    // Swap the two waiting commands: out of order.
    let first = command(2, 1, 1).encode();
    let second = command(4, 1, 3).encode();
    let at = image.windows(first.len()).position(|w| w == &first[..]).unwrap();
    let mut swapped = image.to_vec();
    swapped[at..at + first.len()].copy_from_slice(&second);
    swapped[at + first.len() + 4..at + 2 * first.len() + 4].copy_from_slice(&first);
    assert_eq!(KvStore::restore(&swapped), Err(SnapshotError::BadSessionEntry { session: 5, seq: 2 }));
    // A waiting command of another session.
    let foreign = Command { session: 6, ..command(2, 1, 1) }.encode();
    let mut wrong = image.to_vec();
    wrong[at..at + foreign.len()].copy_from_slice(&foreign);
    assert_eq!(KvStore::restore(&wrong), Err(SnapshotError::BadSessionEntry { session: 5, seq: 2 }));
    // A waiting command whose prev is not below its seq (found by the
    // kv_snapshot fuzz target: `apply` kept it waiting below the floor).
    let ahead = command(2, 1, 2).encode();
    let mut ahead_image = image.to_vec();
    ahead_image[at..at + ahead.len()].copy_from_slice(&ahead);
    assert_eq!(KvStore::restore(&ahead_image), Err(SnapshotError::BadSessionEntry { session: 5, seq: 2 }));
    // Watermarks must ascend.
    let mut image = raw_image(2, 0, &[], &[]);
    image.truncate(image.len() - 4);
    let mut writer = Writer::with_capacity(32);
    writer.length(2);
    writer.u32(3);
    writer.u64(1);
    writer.u32(3);
    writer.u64(2);
    image.extend_from_slice(&writer.finish());
    assert_eq!(KvStore::restore(&image), Err(SnapshotError::WatermarkOutOfOrder { node: 3 }));
}

#[test]
fn malformed_encodings_are_rejected() {
    let mut image = KvStore::new(2).snapshot().to_vec();
    image.push(0);
    assert_eq!(
        KvStore::restore(&image),
        Err(SnapshotError::Decode(DecodeError::TrailingBytes { what: "snapshot", count: 1 }))
    );
    image[0] = 9;
    assert_eq!(
        KvStore::restore(&image),
        Err(SnapshotError::Decode(DecodeError::UnsupportedVersion { what: "snapshot", version: 9 }))
    );
    // A pair count of u32::MAX with nothing behind it: rejected before
    // anything is allocated.
    let mut absurd = raw_image(2, 0, &[], &[]);
    absurd[33..37].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        KvStore::restore(&absurd),
        Err(SnapshotError::Decode(DecodeError::LengthTooLarge { what: "entry list", .. }))
    ));
    let mut absurd = raw_image(2, 0, &[], &[]);
    absurd[37..41].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        KvStore::restore(&absurd),
        Err(SnapshotError::Decode(DecodeError::LengthTooLarge { what: "session list", .. }))
    ));
    // A cached reply that is not a valid reply encoding: its tag sits
    // before the i64, the waiting count and the watermark count.
    let mut bad_reply = raw_image(2, 1, &[], &[(1, 1, 1)]);
    let tag_at = bad_reply.len() - 4 - 4 - 8 - 1;
    bad_reply[tag_at] = 99;
    assert_eq!(
        KvStore::restore(&bad_reply),
        Err(SnapshotError::Decode(DecodeError::UnknownTag { what: "reply", tag: 99 }))
    );
}

#[test]
fn equal_stores_give_identical_bytes() {
    let (store, _) = busy_store();
    assert_eq!(store.snapshot(), store.clone().snapshot());
    assert_eq!(store.snapshot(), busy_store().0.snapshot(), "same log, same image");
    // Filled in a different order, equal in the end.
    let mut first = KvStore::new(4);
    let mut second = KvStore::new(4);
    let mset = |pairs: &[(&str, &str)]| Op::MSet { pairs: pairs.iter().map(|(k, v)| (b(k), b(v))).collect() };
    first.apply(Command { session: 5, seq: 1, ack: 1, prev: 0, op: mset(&[("a", "1"), ("b", "2")]) });
    second.apply(Command { session: 5, seq: 1, ack: 1, prev: 0, op: mset(&[("b", "2"), ("a", "1")]) });
    assert_eq!(first, second);
    assert_eq!(first.snapshot(), second.snapshot());
    // The test helper writes exactly the real format.
    let expected = raw_image(4, 0, &[("a", "1")], &[]);
    let mut third = KvStore::new(4);
    third.keys.put(b("a"), Entry { value: b("1"), expires_at: None, version: 0 });
    assert_eq!(third.snapshot().as_ref(), expected.as_slice());
}

#[test]
fn errors_display_what_is_wrong() {
    let error = KvStore::restore(&[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "kv snapshot: kv decode: input truncated while reading snapshot version: need 1 bytes, 0 left"
    );
    assert!(std::error::Error::source(&error).is_some());
    let mut pairs = [("a", ""), ("b", "")];
    pairs.sort_by_key(|(key, _)| std::cmp::Reverse(HashedKey::new(b(key))));
    let error = KvStore::restore(&raw_image(4, 0, &pairs, &[])).unwrap_err();
    assert_eq!(error.to_string(), "kv snapshot: key 1 sorts before the previous key (keys must ascend)");
    let error = KvStore::restore(&raw_image(4, 3, &[], &[(1, 1, 9)])).unwrap_err();
    assert_eq!(error.to_string(), "kv snapshot: session 1 has apply index 9, outside 1..=3");
}

/// A command for the image tests: sets (some with an expiry), deletes
/// and expiries over `keys` keys, and now and then a flush.
fn image_test_command(rng: &mut XorShift, keys: u64, seq: u64) -> Command {
    let key = b(&format!("w{}", rng.next() % keys));
    let value = b(&format!("v{}", rng.next() % 1000));
    let op = match rng.next() % 20 {
        0..=8 => Op::Set { key, value, condition: SetCondition::Always, ttl: SetTtl::Clear, get: false },
        9..=11 => {
            let ttl = SetTtl::Expire(Expiry::In { ms: (rng.next() % 50) as i64 + 1, command: 0 });
            Op::Set { key, value, condition: SetCondition::Always, ttl, get: false }
        }
        12..=15 => Op::Del { keys: vec![key] },
        16..=17 => Op::Expire {
            key,
            expiry: Expiry::In { ms: (rng.next() % 50) as i64 + 1, command: 0 },
            when: ExpireWhen::default(),
        },
        18 if rng.next().is_multiple_of(10) => Op::Flush,
        _ => Op::Persist { key },
    };
    Command { session: 1, seq, ack: seq, prev: seq - 1, op }
}

/// An image begun at one moment and copied a few keys at a time while
/// commands keep applying (sets, deletes, expiries set and reclaimed, a
/// flush now and then) encodes to the bytes `snapshot` gave at that
/// moment; so does a second image begun after the first is taken.
#[test]
fn an_image_copied_in_shares_is_the_store_as_it_was_when_begun() {
    for seed in 1..=60u64 {
        let mut rng = XorShift(0x1DEA_5EED ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let keys = 1 + rng.next() % 200;
        let mut store = KvStore::new(16);
        let mut seq = 0;
        let mut stamp = 1_000;
        let mut step = |store: &mut KvStore, rng: &mut XorShift| {
            seq += 1;
            stamp += rng.next() % 5;
            store.advance_clock(stamp);
            store.apply(image_test_command(rng, keys, seq));
        };
        for _ in 0..rng.next() % 600 {
            step(&mut store, &mut rng);
        }
        for round in 0..2 {
            let expected = store.snapshot();
            let start = store.begin_image();
            assert!(store.image_in_progress());
            let share = 1 + (rng.next() % 16) as usize;
            while !store.continue_image(share) {
                for _ in 0..rng.next() % 6 {
                    step(&mut store, &mut rng);
                }
            }
            let image = store.take_image(start).expect("the copy is complete");
            assert!(!store.image_in_progress());
            assert_eq!(image.encode(), expected, "seed {seed}, round {round}, {keys} keys, {share} per share");
            store.keys.check_invariants();
        }
    }
}

/// A clone of a store with an image in progress is the state alone: it
/// equals the store, and has no image to continue.
#[test]
fn a_clone_leaves_an_image_in_progress_behind() {
    let (mut store, _) = busy_store();
    let start = store.begin_image();
    let clone = store.clone();
    assert_eq!(clone, store);
    assert!(!clone.image_in_progress() && store.image_in_progress());
    while !store.continue_image(1) {}
    assert!(store.take_image(start).is_some());
}
