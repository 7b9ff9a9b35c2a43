//! Fuzz target bodies (issue 14): one plain function per target, taking the
//! fuzzer's bytes. The `fuzz/` crate (cargo-fuzz, libFuzzer) calls them from
//! one-line targets, and `tests/fuzz_corpus.rs` replays the committed corpus
//! through the same functions, so `.ci/run` checks every saved input without
//! cargo-fuzz.
//!
//! Each function panics exactly when the code under test breaks a rule it
//! documents: a decoder panics, accepts a non-canonical encoding, or
//! allocates more than its input justifies; a scan misreads a torn tail.
//! Rejecting bad input with an error is the expected outcome, never a
//! failure.
//!
//! Not part of the public API: the inputs these functions read (a mode byte,
//! a sender, generated operations) change whenever the targets do.

mod input;
mod kv;
mod ops;
mod paxos;
mod peer;
mod resp;
mod resp_reply;
mod wal;

pub use input::Input;
pub use kv::{kv_command, kv_snapshot, kv_snapshot_mutated};
pub use ops::sample_ops;
pub use paxos::{paxos_step, recovery_nonce};
pub use peer::peer_frame;
pub use resp::resp_request;
pub use resp_reply::{parse_reply, reply_roundtrip, resp_reply_roundtrip, ReplyParseError, RespValue, RespVersion};
pub use wal::{mutate_segment, wal_scan, wal_scan_mutated, SegmentMutation};

/// A target's body: panics if the code under test breaks a rule.
pub type Target = fn(&[u8]);

/// Every target by name: the `fuzz/fuzz_targets/<name>.rs` files and the
/// `fuzz/corpus/<name>/` directories use these names.
pub const TARGETS: &[(&str, Target)] = &[
    ("resp_request", resp_request),
    ("resp_reply_roundtrip", resp_reply_roundtrip),
    ("peer_frame", peer_frame),
    ("paxos_step", paxos_step),
    ("wal_scan", wal_scan),
    ("wal_scan_mutated", wal_scan_mutated),
    ("kv_snapshot", kv_snapshot),
    ("kv_snapshot_mutated", kv_snapshot_mutated),
    ("kv_command", kv_command),
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(target, _)| *target == name).map(|(_, run)| *run)
}
