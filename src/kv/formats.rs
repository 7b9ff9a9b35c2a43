//! [`Formats`]: what a build's state machine reads and writes, as peers
//! compare it before they link.
//!
//! Replicas stay identical only if every one of them decodes and applies
//! every committed command the same way. A build that meets a command it
//! does not know (an op added by a later build) refuses it as malformed
//! while a newer replica runs it: their states, session tables and key
//! versions part, and a later EXEC can then run on one replica and be
//! refused on another. So two builds link only if they speak the same
//! command format with the same op tags, the same reply format (forwarded
//! answers, cached replies in snapshots) and the same snapshot format
//! (catch-up): the peer handshake carries [`FORMATS`] and the acceptor
//! refuses a dialer whose formats differ (`server/links.rs`).
//!
//! A rolling upgrade goes one node at a time: an upgraded node is refused
//! by the others (and cannot catch up) until a majority runs the new
//! build, and while the node that tips the majority restarts no majority
//! is linked. Not covered: a downgrade onto a log a newer build wrote
//! (nothing records the formats on disk), and a change to what an
//! existing op does in the same format, or to a constant the store
//! applies by (`SESSION_WAITING_MAX`, the session table's size): builds
//! that differ so link, and apply the log differently.

use std::fmt;

use super::command::{COMMAND_FORMAT_VERSION, OP_TAG_MAX};
use super::reply::REPLY_FORMAT_VERSION;
use super::snapshot::SNAPSHOT_FORMAT_VERSION;

/// The formats of one build's replicated state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    /// [`COMMAND_FORMAT_VERSION`].
    pub command: u8,
    /// The highest op tag the command format's decoder knows
    /// ([`OP_TAG_MAX`]): a new op changes it without a new format version.
    /// A new option of an existing op (a SET condition, a TTL kind) does
    /// not: it needs a new format version.
    pub op_tag_max: u8,
    /// [`REPLY_FORMAT_VERSION`].
    pub reply: u8,
    /// [`SNAPSHOT_FORMAT_VERSION`].
    pub snapshot: u8,
}

/// This build's formats.
pub const FORMATS: Formats = Formats {
    command: COMMAND_FORMAT_VERSION,
    op_tag_max: OP_TAG_MAX,
    reply: REPLY_FORMAT_VERSION,
    snapshot: SNAPSHOT_FORMAT_VERSION,
};

impl Formats {
    /// Bytes of [`Formats::to_bytes`].
    pub const BYTES: usize = 4;

    pub fn to_bytes(self) -> [u8; Formats::BYTES] {
        [self.command, self.op_tag_max, self.reply, self.snapshot]
    }

    pub fn from_bytes(bytes: [u8; Formats::BYTES]) -> Formats {
        let [command, op_tag_max, reply, snapshot] = bytes;
        Formats { command, op_tag_max, reply, snapshot }
    }
}

impl fmt::Display for Formats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "commands v{} (op tags up to {}), replies v{}, snapshots v{}",
            self.command, self.op_tag_max, self.reply, self.snapshot
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::command::COMMAND_HEADER_BYTES;
    use crate::kv::{Command, DecodeError};

    /// `OP_TAG_MAX` is the highest tag of any op (every op is in
    /// `sample_ops`), and a tag above it does not decode: a build that adds
    /// an op and forgets the constant fails here, not in a mixed cluster.
    #[test]
    fn op_tag_max_is_the_highest_op_tag() {
        let highest = crate::fuzzing::sample_ops()
            .into_iter()
            .map(|(op, _)| Command::anonymous(op).encode()[COMMAND_HEADER_BYTES])
            .max()
            .expect("ops");
        assert_eq!(highest, OP_TAG_MAX);
        let mut unknown = Command::anonymous(crate::kv::Op::DbSize).encode().to_vec();
        unknown[COMMAND_HEADER_BYTES] = OP_TAG_MAX + 1;
        assert_eq!(Command::decode(&unknown), Err(DecodeError::UnknownTag { what: "op", tag: OP_TAG_MAX + 1 }));
    }

    #[test]
    fn formats_round_trip_and_name_every_part() {
        assert_eq!(Formats::from_bytes(FORMATS.to_bytes()), FORMATS);
        let other = Formats { command: 3, op_tag_max: 29, reply: 2, snapshot: 3 };
        assert_eq!(other.to_string(), "commands v3 (op tags up to 29), replies v2, snapshots v3");
    }
}
