//! The binary wire format between servers: handshake, framing, and the
//! encoding of every Paxos [`Message`] plus client-request forwarding.
//!
//! One TCP link carries the traffic of one (peer node, shard) pair. It opens
//! with four handshake frames, a mutual challenge-response over the
//! cluster's peer secret (`net::peer_auth` computes the proofs):
//!
//! 1. dialer -> acceptor: [`Handshake`] (who it is, a fresh nonce);
//! 2. acceptor -> dialer: [`HandshakeReply::Challenge`] (who it is, its own
//!    fresh nonce, its proof over both) or [`HandshakeReply::Refused`];
//! 3. dialer -> acceptor: [`HandshakeProof::Proof`] (the dialer's proof over
//!    both nonces) or [`HandshakeProof::Refused`] (the acceptor's proof is wrong);
//! 4. acceptor -> dialer: [`HandshakeReply::Accepted`] or [`HandshakeReply::Refused`].
//!
//! From then on both sides exchange [`PeerFrame`]s.
//!
//! ```text
//! frame       = len: u32 | crc: u32 | body (len bytes)        crc = CRC32C(body), len <= frame_bytes_max
//! handshake   = magic "PXKV" | version: u16 | cluster_id: u16 len + UTF-8 (<= 255) | node_id: u32 | shard: u32
//!               | nonce: 32 bytes | shards: u32 | members: u32 count + node_id: u32*
//!               | formats: command u8 | op_tag_max u8 | reply u8 | snapshot u8
//! hs_reply    = magic "PXKV" | 0 Accepted | node_id: u32 | shard: u32
//!             | magic "PXKV" | 1 Refused | reason: u16 len + UTF-8 (<= REFUSAL_REASON_BYTES_MAX)
//!             | magic "PXKV" | 2 Challenge | node_id: u32 | shard: u32 | nonce: 32 bytes | proof: 32 bytes
//! hs_proof    = magic "PXKV" | 0 Proof | proof: 32 bytes
//!             | magic "PXKV" | 1 Refused | reason: u16 len + UTF-8 (<= REFUSAL_REASON_BYTES_MAX)
//! body        = tag: u8 | payload
//! tag 0x01    PreVote         ballot
//! tag 0x02    PreVoteReply    ballot | granted: bool | promised: ballot
//! tag 0x03    Prepare         ballot | first_unchosen: u64
//! tag 0x04    Promise         ballot | commit: u64 | chosen: values
//!                             | accepted: u32 count + (slot: u64 | ballot | value)* | horizon: u64
//! tag 0x05    Accept          ballot | first_slot: u64 | values | commit: u64
//! tag 0x06    Accepted        ballot | first_slot: u64 | count: u64
//! tag 0x07    Reject          ballot | promised: ballot | reason: u8 (0 HigherBallot, 1 LeaseHeld)
//! tag 0x08    Heartbeat       ballot | commit: u64 | round: u64 | horizon: u64
//! tag 0x09    HeartbeatReply  ballot | round: u64 | commit: u64 | horizon: u64
//! tag 0x0A    CatchUp         first_slot: u64
//! tag 0x0B    CatchUpReply    first_slot: u64 | values | commit: u64
//! tag 0x0C    SnapshotChunk   slot: u64 | total_bytes: u64 | offset: u64 | data: u32 len + bytes
//! tag 0x0D    FetchSnapshot   slot: u64 | offset: u64
//! tag 0x0E    RecoveryQuery   nonce: u64
//! tag 0x0F    RecoveryReply   nonce: u64 | recovering: bool | promised: ballot | commit: u64
//!                             | accepted: u32 count + (slot: u64 | ballot | value)* | horizon: u64
//! tag 0x10    HandOver        ballot | to: u32 | commit: u64
//! tag 0x40    Forward         id: u64 | command: u32 len + bytes
//! tag 0x41    ForwardRead     id: u64 | command: u32 len + bytes
//! tag 0x42    ForwardReply    id: u64 | reply: u32 len + bytes
//! tag 0x43    ForwardRefused  id: u64 | refusal: u8 (0 NotLeader | hint, 1 Busy, 2 TooLarge)
//! hint        = 0 none | 1 then leader: u32
//! ballot      = round: u64 | node: u32
//! values      = count: u32 | value*
//! value       = 0 (Noop) | 1 commands (a batch with stamp 0) | 2 stamp: u64 (> 0) commands
//! commands    = count: u32 | (len: u32 | bytes)*
//! bool        = u8, 0 or 1
//! ```
//!
//! All integers are little-endian; the value layout is the WAL's
//! (`storage/record.rs`). Tag 0 is reserved as invalid, so a zeroed body
//! never decodes. The handshake's magic and version, and the Refused
//! reply, keep this layout in every protocol version: a node can always
//! read which version a peer speaks and why it was refused (versions 2 and
//! 3 had no nonce, no Challenge and no proof).
//!
//! Decoding treats its input as hostile (a peer is not trusted to be
//! correct, only authenticated by the handshake): it never panics, rejects
//! every count the remaining bytes could not hold *before* allocating for
//! it, and is canonical (strict bools and tags, no trailing bytes), so
//! re-encoding a decoded frame gives back the same bytes. Whether a decoded
//! [`Message`] makes sense (slot ranges, ballots) is for
//! [`Message::check_well_formed`] to judge, not the wire format.

use std::fmt;
use std::ops::Range;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kv::Formats;

use crate::paxos::{
    Accept, Accepted, AcceptedEntry, Ballot, CatchUp, CatchUpReply, FetchSnapshot, HandOver, Heartbeat, HeartbeatReply,
    Message, PreVote, PreVoteReply, Prepare, Promise, RecoveryQuery, RecoveryReply, Reject, RejectReason,
    SnapshotChunk, Value,
};

mod codec;
mod handshake;
mod reader;

pub use codec::decode_frame;
use codec::{message_payload_bytes, put_frame};
pub use handshake::{
    decode_handshake, decode_handshake_proof, decode_handshake_reply, encode_handshake, encode_handshake_proof,
    encode_handshake_reply,
};

/// 7: the HandOver message (a leader that steps down names its
/// successor and gives its lease up). 6: the handshake carries the dialer's state-machine formats
/// (`kv::FORMATS`), which the acceptor must share. 5: the handshake
/// carries the dialer's view of the cluster (its members
/// and shard count), which the acceptor must share. 4: the handshake
/// proves knowledge of the peer secret (nonces, Challenge, proof). 3: time
/// horizons in
/// Promise, Heartbeat, HeartbeatReply and RecoveryReply. 2: the handshake
/// carried the cluster id only.
pub const PROTOCOL_VERSION: u16 = 7;
pub const MAGIC: [u8; 4] = *b"PXKV";
/// Every frame: `[len: u32 LE][crc32c of body: u32 LE][body: len bytes]`,
/// `len <= frame_bytes_max`.
pub const FRAME_HEADER_BYTES: usize = 8;
/// Longest cluster id a [`Handshake`] carries, in bytes of UTF-8.
pub const CLUSTER_ID_BYTES_MAX: usize = 255;
/// Bytes of each side's handshake nonce (fresh randomness per connection).
pub const NONCE_BYTES: usize = 32;
/// Bytes of a proof of the peer secret (an HMAC-SHA256 tag).
pub const PROOF_BYTES: usize = 32;
/// Longest reason a [`HandshakeReply::Refused`] carries; the encoder
/// truncates longer ones (at a character boundary).
pub const REFUSAL_REASON_BYTES_MAX: usize = 1024;

const TAG_PRE_VOTE: u8 = 0x01;
const TAG_PRE_VOTE_REPLY: u8 = 0x02;
const TAG_PREPARE: u8 = 0x03;
const TAG_PROMISE: u8 = 0x04;
const TAG_ACCEPT: u8 = 0x05;
const TAG_ACCEPTED: u8 = 0x06;
const TAG_REJECT: u8 = 0x07;
const TAG_HEARTBEAT: u8 = 0x08;
const TAG_HEARTBEAT_REPLY: u8 = 0x09;
const TAG_CATCH_UP: u8 = 0x0A;
const TAG_CATCH_UP_REPLY: u8 = 0x0B;
const TAG_SNAPSHOT_CHUNK: u8 = 0x0C;
const TAG_FETCH_SNAPSHOT: u8 = 0x0D;
const TAG_RECOVERY_QUERY: u8 = 0x0E;
const TAG_RECOVERY_REPLY: u8 = 0x0F;
const TAG_HAND_OVER: u8 = 0x10;
const TAG_FORWARD: u8 = 0x40;
const TAG_FORWARD_READ: u8 = 0x41;
const TAG_FORWARD_REPLY: u8 = 0x42;
const TAG_FORWARD_REFUSED: u8 = 0x43;

const VALUE_NOOP: u8 = 0;
const VALUE_BATCH: u8 = 1;
const VALUE_STAMPED_BATCH: u8 = 2;

const REJECT_HIGHER_BALLOT: u8 = 0;
const REJECT_LEASE_HELD: u8 = 1;

const REFUSAL_NOT_LEADER: u8 = 0;
const REFUSAL_BUSY: u8 = 1;
const REFUSAL_TOO_LARGE: u8 = 2;

const REPLY_ACCEPTED: u8 = 0;
const REPLY_REFUSED: u8 = 1;
const REPLY_CHALLENGE: u8 = 2;

const PROOF_PROOF: u8 = 0;
const PROOF_REFUSED: u8 = 1;

const BALLOT_BYTES: usize = 12;
/// Smallest encoding of one value (a Noop tag): bounds a value count.
const VALUE_BYTES_MIN: usize = 1;
/// Smallest encoding of one command (an empty one: its u32 length).
const COMMAND_BYTES_MIN: usize = 4;
/// Smallest encoding of one accepted entry: slot, ballot, Noop.
const ACCEPTED_ENTRY_BYTES_MIN: usize = 8 + BALLOT_BYTES + VALUE_BYTES_MIN;

/// The first frame on a link, sent by the connecting side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Guards against wiring two clusters together. At most
    /// [`CLUSTER_ID_BYTES_MAX`] bytes (the config validates it).
    pub cluster_id: String,
    /// The connecting node.
    pub node_id: u32,
    /// The shard (Paxos group) this link carries.
    pub shard: u32,
    /// What the sender speaks. Always [`PROTOCOL_VERSION`] after a
    /// successful decode: any other is [`PeerDecodeError::UnsupportedVersion`].
    pub protocol_version: u16,
    /// The dialer's fresh random challenge: the acceptor's proof covers it,
    /// so a recorded proof is worthless on another connection.
    pub nonce: [u8; NONCE_BYTES],
    /// The dialer's cluster file: its shard count and member ids, in
    /// ascending order. Nodes that disagree on the members count different
    /// majorities (two leaders could each win one), and nodes that disagree
    /// on the shard count route a key to different groups: the acceptor
    /// refuses a dialer whose view is not its own.
    pub shards: u32,
    pub members: Vec<u32>,
    /// The dialer's state-machine formats (`kv::FORMATS`): a build that
    /// decodes or applies the log otherwise would part from its replicas,
    /// so the acceptor refuses a dialer whose formats are not its own.
    pub formats: Formats,
}

/// The accepting side's answers: first to a [`Handshake`] (Challenge or
/// Refused), then to the dialer's [`HandshakeProof`] (Accepted or Refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeReply {
    /// The last frame of a handshake: the link is up. Who accepted: the
    /// dialer checks it reached the node and shard it meant to (a
    /// misconfigured address must not let one node vote twice).
    Accepted { node_id: u32, shard: u32 },
    /// Why the link is refused (wrong cluster, unknown node or shard,
    /// unsupported version, wrong proof of the peer secret), for the
    /// connecting side's log.
    Refused(String),
    /// The acceptor's answer to an acceptable [`Handshake`]: who it is, its
    /// own fresh nonce, and its proof of the peer secret over both nonces
    /// (`net::peer_auth`). The dialer checks the proof before it proves
    /// anything itself.
    Challenge { node_id: u32, shard: u32, nonce: [u8; NONCE_BYTES], proof: [u8; PROOF_BYTES] },
}

/// The dialer's answer to a [`HandshakeReply::Challenge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeProof {
    /// The dialer's proof of the peer secret over both nonces.
    Proof([u8; PROOF_BYTES]),
    /// The acceptor's challenge did not check out (a wrong proof, another
    /// node or shard); the reason is for the acceptor's log.
    Refused(String),
}

/// What flows on an established link (one per (peer node, shard)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerFrame {
    Paxos(Message),
    /// A follower hands a client's command to the leader. `command` is an
    /// encoded `crate::kv::Command` (opaque here); `id` is the sender's
    /// request id, echoed in the answer.
    Forward {
        id: u64,
        command: Bytes,
    },
    /// A follower asks the leader for a linearizable read of an encoded
    /// `crate::kv::Command` (a read-only op).
    ForwardRead {
        id: u64,
        command: Bytes,
    },
    /// The leader's answer to a Forward or ForwardRead: an encoded
    /// `crate::kv::Reply` (opaque here).
    ForwardReply {
        id: u64,
        reply: Bytes,
    },
    /// The receiver could not take request `id`.
    ForwardRefused {
        id: u64,
        reason: ForwardRefusal,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardRefusal {
    /// The receiver is not the leader; `leader` is who it believes is.
    NotLeader { leader: Option<u32> },
    /// The leader's proposal queue is full: retry later.
    Busy,
    /// The command exceeds what the leader batches.
    TooLarge,
}

/// Why bytes from a peer are not a valid frame. Bad input from the network:
/// the link is dropped and reported, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerDecodeError {
    /// A frame header announces a body larger than the receiver accepts.
    FrameTooLarge {
        len: usize,
        max: usize,
    },
    /// The body's CRC32C differs from the header's.
    ChecksumMismatch {
        expected: u32,
        actual: u32,
    },
    /// The input ends inside `what`.
    Truncated {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    /// A tag byte that names no variant of `what`.
    UnknownTag {
        what: &'static str,
        tag: u8,
    },
    /// A count claims more elements than the remaining bytes could hold.
    CountTooLarge {
        what: &'static str,
        count: u32,
        remaining: usize,
    },
    /// A string longer than its limit.
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A bool (or presence) byte other than 0 or 1.
    InvalidBool {
        what: &'static str,
        byte: u8,
    },
    InvalidUtf8 {
        what: &'static str,
    },
    /// The handshake does not start with [`MAGIC`]: not a paxoskv peer.
    BadMagic {
        found: [u8; 4],
    },
    /// The peer speaks another protocol version.
    UnsupportedVersion {
        version: u16,
    },
    /// `what` decoded completely but `count` bytes follow it.
    TrailingBytes {
        what: &'static str,
        count: usize,
    },
}

impl fmt::Display for PeerDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerDecodeError::FrameTooLarge { len, max } => write!(f, "frame of {len} bytes exceeds the limit {max}"),
            PeerDecodeError::ChecksumMismatch { expected, actual } => {
                write!(f, "checksum mismatch: header says {expected:#010x}, body has {actual:#010x}")
            }
            PeerDecodeError::Truncated { what, needed, remaining } => {
                write!(f, "truncated {what}: needs {needed} bytes, {remaining} remain")
            }
            PeerDecodeError::UnknownTag { what, tag } => write!(f, "unknown {what} tag {tag:#04x}"),
            PeerDecodeError::CountTooLarge { what, count, remaining } => {
                write!(f, "{what} {count} is more than the {remaining} remaining bytes can hold")
            }
            PeerDecodeError::TooLong { what, len, max } => write!(f, "{what} of {len} bytes exceeds the limit {max}"),
            PeerDecodeError::InvalidBool { what, byte } => write!(f, "{what} is {byte:#04x}, not 0 or 1"),
            PeerDecodeError::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            PeerDecodeError::BadMagic { found } => write!(f, "bad magic {found:02x?}: not a paxoskv peer"),
            PeerDecodeError::UnsupportedVersion { version } => {
                write!(f, "unsupported protocol version {version} (this node speaks {PROTOCOL_VERSION})")
            }
            PeerDecodeError::TrailingBytes { what, count } => write!(f, "{count} trailing bytes after the {what}"),
        }
    }
}

impl std::error::Error for PeerDecodeError {}

// ---------------------------------------------------------------------------
// Framing

/// Low-level: append one frame whose body `body_writer` appends to `out`
/// (it must only append). Used directly for handshake frames.
///
/// Panics if the body exceeds `u32::MAX` bytes: the core's batch and
/// catch-up limits keep messages far below that, so it is a bug.
pub fn write_frame_body(out: &mut BytesMut, body_writer: impl FnOnce(&mut BytesMut)) {
    let frame_start = out.len();
    out.put_bytes(0, FRAME_HEADER_BYTES);
    body_writer(out);
    let body_start = frame_start + FRAME_HEADER_BYTES;
    assert!(out.len() >= body_start, "a frame body writer must only append");
    let body_len = u32::try_from(out.len() - body_start).expect("peer frame body longer than u32::MAX");
    let crc = crc32c::crc32c(&out[body_start..]);
    out[frame_start..frame_start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[frame_start + 4..body_start].copy_from_slice(&crc.to_le_bytes());
}

/// Append one whole frame (header and body) for `frame` to `out`, reserving
/// its exact size first.
pub fn encode_frame(frame: &PeerFrame, out: &mut BytesMut) {
    let frame_bytes = frame_bytes(frame);
    out.reserve(frame_bytes);
    let start = out.len();
    write_frame_body(out, |out| put_frame(out, frame));
    assert_eq!(out.len() - start, frame_bytes, "frame_bytes disagrees with the encoder");
}

/// Bytes [`encode_frame`] appends for `frame` (header included): what a
/// sender checks against the receiver's `frame_bytes_max`.
pub fn frame_bytes(frame: &PeerFrame) -> usize {
    FRAME_HEADER_BYTES
        + 1
        + match frame {
            PeerFrame::Paxos(message) => message_payload_bytes(message),
            PeerFrame::Forward { command: data, .. }
            | PeerFrame::ForwardRead { command: data, .. }
            | PeerFrame::ForwardReply { reply: data, .. } => 8 + 4 + data.len(),
            PeerFrame::ForwardRefused { reason, .. } => {
                8 + 1
                    + match reason {
                        ForwardRefusal::NotLeader { leader: None } => 1,
                        ForwardRefusal::NotLeader { leader: Some(_) } => 1 + 4,
                        ForwardRefusal::Busy | ForwardRefusal::TooLarge => 0,
                    }
            }
        }
}

/// Split one whole frame off the front of `buf` if it is complete.
///
/// `Ok(Some(body))` consumes the frame and returns its body without copying
/// (it shares `buf`'s allocation). `Ok(None)`: more bytes are needed and
/// nothing was consumed. A header announcing more than `frame_bytes_max`
/// body bytes is an error as soon as its length field arrives, before any
/// of the body.
pub fn split_frame(buf: &mut BytesMut, frame_bytes_max: usize) -> Result<Option<Bytes>, PeerDecodeError> {
    let Some(len) = buf.get(..4) else { return Ok(None) };
    let len = le_u32(len) as usize;
    if len > frame_bytes_max {
        return Err(PeerDecodeError::FrameTooLarge { len, max: frame_bytes_max });
    }
    if buf.len() < FRAME_HEADER_BYTES + len {
        return Ok(None);
    }
    let expected = le_u32(&buf[4..FRAME_HEADER_BYTES]);
    let actual = crc32c::crc32c(&buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]);
    if expected != actual {
        return Err(PeerDecodeError::ChecksumMismatch { expected, actual });
    }
    let mut frame = buf.split_to(FRAME_HEADER_BYTES + len);
    let body = frame.split_off(FRAME_HEADER_BYTES);
    Ok(Some(body.freeze()))
}

/// `bytes` must be exactly 4 long.
fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests;
