//! Sample operations: one of every `Op` shape (and the corner values of
//! their fields), for round-trip tests and fuzz seed corpora.

use bytes::Bytes;

use crate::kv::{ExpireWhen, Expiry, Op, SetCondition, SetTtl, Watched};

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn set(key: &str, value: &str, condition: SetCondition) -> Op {
    Op::Set { key: b(key), value: b(value), condition, ttl: SetTtl::Clear, get: false }
}

/// Every op shape, each with whether it is read-only.
pub fn sample_ops() -> Vec<(Op, bool)> {
    let expiry = Expiry::In { ms: 1500, command: 1 };
    vec![
        (Op::Get { key: b("k") }, true),
        (Op::Get { key: Bytes::new() }, true),
        (set("k", "v", SetCondition::Always), false),
        (set("k", "", SetCondition::IfNotExists), false),
        (set("k", "v", SetCondition::IfExists), false),
        (set("k", "new", SetCondition::IfEqual(b("old"))), false),
        (Op::Set { key: b("k"), value: b("v"), condition: SetCondition::Always, ttl: SetTtl::Keep, get: true }, false),
        (
            Op::Set {
                key: b("k"),
                value: b("v"),
                condition: SetCondition::IfExists,
                ttl: SetTtl::Expire(Expiry::At(-5)),
                get: false,
            },
            false,
        ),
        (Op::Del { keys: vec![b("a"), b("b"), b("a")] }, false),
        (Op::Del { keys: vec![] }, false),
        (Op::Exists { keys: vec![b("a"), b("a")] }, true),
        (Op::IncrBy { key: b("n"), delta: i64::MIN }, false),
        (Op::IncrBy { key: b("n"), delta: -7 }, false),
        (Op::MGet { keys: vec![b("a"), b("missing")] }, true),
        (Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), Bytes::from_static(&[0, 255, 10]))] }, false),
        (Op::MSet { pairs: vec![] }, false),
        (Op::StrLen { key: b("k") }, true),
        (Op::GetRange { key: b("k"), start: -3, end: i64::MAX }, true),
        (Op::Type { key: b("k") }, true),
        (Op::MemoryUsage { key: b("k") }, true),
        (Op::ObjectEncoding { key: b("k") }, true),
        (Op::Ttl { key: b("k"), milliseconds: true, absolute: false }, true),
        (Op::Ttl { key: b("k"), milliseconds: false, absolute: true }, true),
        (Op::Keys { pattern: b("user:*") }, true),
        (Op::Scan { from: 77, count: 10, pattern: Some(b("a*")), type_filter: None }, true),
        (Op::Scan { from: 0, count: 1, pattern: None, type_filter: Some(b("string")) }, true),
        (Op::RandomKey { point: u64::MAX }, true),
        (Op::DbSize, true),
        (Op::Watch { keys: vec![b("w")] }, true),
        (Op::SetNx { key: b("k"), value: b("v") }, false),
        (Op::GetDel { key: b("k") }, false),
        (Op::GetEx { key: b("k"), ttl: SetTtl::Clear }, false),
        (Op::GetEx { key: b("k"), ttl: SetTtl::Expire(expiry) }, false),
        (Op::Append { key: b("k"), value: b("tail"), limit: 1 << 20 }, false),
        (Op::SetRange { key: b("k"), offset: 3, value: b("xy"), limit: 100 }, false),
        (Op::IncrByFloat { key: b("f"), increment: b("1.5e3") }, false),
        (Op::MSetNx { pairs: vec![(b("a"), b("1"))] }, false),
        (Op::Expire { key: b("k"), expiry, when: ExpireWhen { xx: true, gt: true, ..ExpireWhen::default() } }, false),
        (Op::Expire { key: b("k"), expiry: Expiry::At(i64::MAX), when: ExpireWhen::default() }, false),
        (Op::Persist { key: b("k") }, false),
        (Op::Rename { from: b("a"), to: b("b"), nx: true }, false),
        (Op::Copy { from: b("a"), to: b("b"), replace: false }, false),
        (Op::Flush, false),
        (
            Op::Exec {
                ops: vec![set("a", "1", SetCondition::Always), Op::Get { key: b("a") }],
                watched: vec![Watched { key: b("a"), version: Some(3) }, Watched { key: b("b"), version: None }],
                removals: 9,
            },
            false,
        ),
        (Op::Exec { ops: vec![Op::Get { key: b("a") }], watched: vec![], removals: 0 }, true),
        (Op::Exec { ops: vec![], watched: vec![], removals: 0 }, true),
    ]
}
