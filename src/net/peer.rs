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
//!               | nonce: 32 bytes
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
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::paxos::{
    Accept, Accepted, AcceptedEntry, Ballot, CatchUp, CatchUpReply, FetchSnapshot, Heartbeat, HeartbeatReply, Message,
    PreVote, PreVoteReply, Prepare, Promise, RecoveryQuery, RecoveryReply, Reject, RejectReason, SnapshotChunk, Value,
};

/// 5: the handshake carries the dialer's view of the cluster (its members
/// and shard count), which the acceptor must share. 4: the handshake
/// proves knowledge of the peer secret (nonces, Challenge, proof). 3: time
/// horizons in
/// Promise, Heartbeat, HeartbeatReply and RecoveryReply. 2: the handshake
/// carried the cluster id only.
pub const PROTOCOL_VERSION: u16 = 5;
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

// ---------------------------------------------------------------------------
// Handshake

/// Append a handshake body (no frame header: wrap it with
/// [`write_frame_body`]). Writes `h.protocol_version` as given.
///
/// Panics if the cluster id exceeds [`CLUSTER_ID_BYTES_MAX`]: the config
/// validation refuses such ids, so reaching here is a bug.
pub fn encode_handshake(h: &Handshake, out: &mut BytesMut) {
    assert!(
        h.cluster_id.len() <= CLUSTER_ID_BYTES_MAX,
        "cluster id of {} bytes exceeds CLUSTER_ID_BYTES_MAX ({CLUSTER_ID_BYTES_MAX})",
        h.cluster_id.len()
    );
    out.reserve(4 + 2 + 2 + h.cluster_id.len() + 4 + 4 + NONCE_BYTES + 4 + 4 + 4 * h.members.len());
    out.put_slice(&MAGIC);
    out.put_u16_le(h.protocol_version);
    out.put_u16_le(h.cluster_id.len() as u16);
    out.put_slice(h.cluster_id.as_bytes());
    out.put_u32_le(h.node_id);
    out.put_u32_le(h.shard);
    out.put_slice(&h.nonce);
    out.put_u32_le(h.shards);
    out.put_u32_le(h.members.len() as u32);
    for &member in &h.members {
        out.put_u32_le(member);
    }
}

/// Decode a handshake body. The version is checked right after the magic,
/// before the fields (whose layout a later version may change): a peer
/// speaking another version yields [`PeerDecodeError::UnsupportedVersion`]
/// naming its version, for the refusal.
pub fn decode_handshake(body: &[u8]) -> Result<Handshake, PeerDecodeError> {
    let mut reader = Reader::new(body);
    reader.magic()?;
    let protocol_version = reader.u16("protocol version")?;
    if protocol_version != PROTOCOL_VERSION {
        return Err(PeerDecodeError::UnsupportedVersion { version: protocol_version });
    }
    let cluster_id = reader.string("cluster id", CLUSTER_ID_BYTES_MAX)?;
    let node_id = reader.u32("node id")?;
    let shard = reader.u32("shard")?;
    let nonce = reader.array("handshake nonce")?;
    let shards = reader.u32("shard count")?;
    let count = reader.count("members", 4)?;
    let members = (0..count).map(|_| reader.u32("member")).collect::<Result<_, _>>()?;
    reader.finish("handshake")?;
    Ok(Handshake { cluster_id, node_id, shard, protocol_version, nonce, shards, members })
}

/// Append a handshake reply body (no frame header). A refusal reason longer
/// than [`REFUSAL_REASON_BYTES_MAX`] is truncated at a character boundary.
pub fn encode_handshake_reply(r: &HandshakeReply, out: &mut BytesMut) {
    out.put_slice(&MAGIC);
    match r {
        HandshakeReply::Accepted { node_id, shard } => {
            out.put_u8(REPLY_ACCEPTED);
            out.put_u32_le(*node_id);
            out.put_u32_le(*shard);
        }
        HandshakeReply::Refused(reason) => put_refusal(out, REPLY_REFUSED, reason),
        HandshakeReply::Challenge { node_id, shard, nonce, proof } => {
            out.reserve(1 + 4 + 4 + NONCE_BYTES + PROOF_BYTES);
            out.put_u8(REPLY_CHALLENGE);
            out.put_u32_le(*node_id);
            out.put_u32_le(*shard);
            out.put_slice(nonce);
            out.put_slice(proof);
        }
    }
}

/// `tag | reason`, the reason truncated to [`REFUSAL_REASON_BYTES_MAX`] at a
/// character boundary.
fn put_refusal(out: &mut BytesMut, tag: u8, reason: &str) {
    let mut len = reason.len().min(REFUSAL_REASON_BYTES_MAX);
    while !reason.is_char_boundary(len) {
        len -= 1;
    }
    out.reserve(1 + 2 + len);
    out.put_u8(tag);
    out.put_u16_le(len as u16);
    out.put_slice(&reason.as_bytes()[..len]);
}

pub fn decode_handshake_reply(body: &[u8]) -> Result<HandshakeReply, PeerDecodeError> {
    let mut reader = Reader::new(body);
    reader.magic()?;
    let reply = match reader.u8("handshake reply tag")? {
        REPLY_ACCEPTED => HandshakeReply::Accepted {
            node_id: reader.u32("accepting node id")?,
            shard: reader.u32("accepting shard")?,
        },
        REPLY_REFUSED => HandshakeReply::Refused(reader.string("refusal reason", REFUSAL_REASON_BYTES_MAX)?),
        REPLY_CHALLENGE => HandshakeReply::Challenge {
            node_id: reader.u32("accepting node id")?,
            shard: reader.u32("accepting shard")?,
            nonce: reader.array("challenge nonce")?,
            proof: reader.array("challenge proof")?,
        },
        tag => return Err(PeerDecodeError::UnknownTag { what: "handshake reply", tag }),
    };
    reader.finish("handshake reply")?;
    Ok(reply)
}

/// Append the dialer's proof body (no frame header). A refusal reason longer
/// than [`REFUSAL_REASON_BYTES_MAX`] is truncated at a character boundary.
pub fn encode_handshake_proof(p: &HandshakeProof, out: &mut BytesMut) {
    out.put_slice(&MAGIC);
    match p {
        HandshakeProof::Proof(proof) => {
            out.put_u8(PROOF_PROOF);
            out.put_slice(proof);
        }
        HandshakeProof::Refused(reason) => put_refusal(out, PROOF_REFUSED, reason),
    }
}

pub fn decode_handshake_proof(body: &[u8]) -> Result<HandshakeProof, PeerDecodeError> {
    let mut reader = Reader::new(body);
    reader.magic()?;
    let proof = match reader.u8("handshake proof tag")? {
        PROOF_PROOF => HandshakeProof::Proof(reader.array("proof")?),
        PROOF_REFUSED => HandshakeProof::Refused(reader.string("refusal reason", REFUSAL_REASON_BYTES_MAX)?),
        tag => return Err(PeerDecodeError::UnknownTag { what: "handshake proof", tag }),
    };
    reader.finish("handshake proof")?;
    Ok(proof)
}

// ---------------------------------------------------------------------------
// Encoding frame bodies

fn put_frame(out: &mut BytesMut, frame: &PeerFrame) {
    match frame {
        PeerFrame::Paxos(message) => put_message(out, message),
        PeerFrame::Forward { id, command } => put_id_and_data(out, TAG_FORWARD, *id, command),
        PeerFrame::ForwardRead { id, command } => put_id_and_data(out, TAG_FORWARD_READ, *id, command),
        PeerFrame::ForwardReply { id, reply } => put_id_and_data(out, TAG_FORWARD_REPLY, *id, reply),
        PeerFrame::ForwardRefused { id, reason } => {
            out.put_u8(TAG_FORWARD_REFUSED);
            out.put_u64_le(*id);
            match reason {
                ForwardRefusal::NotLeader { leader } => {
                    out.put_u8(REFUSAL_NOT_LEADER);
                    match leader {
                        None => out.put_u8(0),
                        Some(node) => {
                            out.put_u8(1);
                            out.put_u32_le(*node);
                        }
                    }
                }
                ForwardRefusal::Busy => out.put_u8(REFUSAL_BUSY),
                ForwardRefusal::TooLarge => out.put_u8(REFUSAL_TOO_LARGE),
            }
        }
    }
}

fn put_id_and_data(out: &mut BytesMut, tag: u8, id: u64, data: &[u8]) {
    out.put_u8(tag);
    out.put_u64_le(id);
    put_data(out, data);
}

fn put_message(out: &mut BytesMut, message: &Message) {
    match message {
        Message::PreVote(m) => {
            out.put_u8(TAG_PRE_VOTE);
            put_ballot(out, m.ballot);
        }
        Message::PreVoteReply(m) => {
            out.put_u8(TAG_PRE_VOTE_REPLY);
            put_ballot(out, m.ballot);
            out.put_u8(u8::from(m.granted));
            put_ballot(out, m.promised);
        }
        Message::Prepare(m) => {
            out.put_u8(TAG_PREPARE);
            put_ballot(out, m.ballot);
            out.put_u64_le(m.first_unchosen);
        }
        Message::Promise(m) => {
            out.put_u8(TAG_PROMISE);
            put_ballot(out, m.ballot);
            out.put_u64_le(m.commit);
            put_values(out, &m.chosen);
            put_accepted_entries(out, &m.accepted);
            out.put_u64_le(m.horizon);
        }
        Message::Accept(m) => {
            out.put_u8(TAG_ACCEPT);
            put_ballot(out, m.ballot);
            out.put_u64_le(m.first_slot);
            put_values(out, &m.values);
            out.put_u64_le(m.commit);
        }
        Message::Accepted(m) => {
            out.put_u8(TAG_ACCEPTED);
            put_ballot(out, m.ballot);
            out.put_u64_le(m.first_slot);
            out.put_u64_le(m.count);
        }
        Message::Reject(m) => {
            out.put_u8(TAG_REJECT);
            put_ballot(out, m.ballot);
            put_ballot(out, m.promised);
            out.put_u8(match m.reason {
                RejectReason::HigherBallot => REJECT_HIGHER_BALLOT,
                RejectReason::LeaseHeld => REJECT_LEASE_HELD,
            });
        }
        Message::Heartbeat(m) => {
            out.put_u8(TAG_HEARTBEAT);
            put_ballot(out, m.ballot);
            out.put_u64_le(m.commit);
            out.put_u64_le(m.round);
            out.put_u64_le(m.horizon);
        }
        Message::HeartbeatReply(m) => {
            out.put_u8(TAG_HEARTBEAT_REPLY);
            put_ballot(out, m.ballot);
            out.put_u64_le(m.round);
            out.put_u64_le(m.commit);
            out.put_u64_le(m.horizon);
        }
        Message::CatchUp(m) => {
            out.put_u8(TAG_CATCH_UP);
            out.put_u64_le(m.first_slot);
        }
        Message::CatchUpReply(m) => {
            out.put_u8(TAG_CATCH_UP_REPLY);
            out.put_u64_le(m.first_slot);
            put_values(out, &m.values);
            out.put_u64_le(m.commit);
        }
        Message::SnapshotChunk(m) => {
            out.put_u8(TAG_SNAPSHOT_CHUNK);
            out.put_u64_le(m.slot);
            out.put_u64_le(m.total_bytes);
            out.put_u64_le(m.offset);
            put_data(out, &m.data);
        }
        Message::FetchSnapshot(m) => {
            out.put_u8(TAG_FETCH_SNAPSHOT);
            out.put_u64_le(m.slot);
            out.put_u64_le(m.offset);
        }
        Message::RecoveryQuery(m) => {
            out.put_u8(TAG_RECOVERY_QUERY);
            out.put_u64_le(m.nonce);
        }
        Message::RecoveryReply(m) => {
            out.put_u8(TAG_RECOVERY_REPLY);
            out.put_u64_le(m.nonce);
            out.put_u8(u8::from(m.recovering));
            put_ballot(out, m.promised);
            out.put_u64_le(m.commit);
            put_accepted_entries(out, &m.accepted);
            out.put_u64_le(m.horizon);
        }
    }
}

fn put_accepted_entries(out: &mut BytesMut, entries: &[AcceptedEntry]) {
    put_len(out, entries.len(), "accepted entry count");
    for entry in entries {
        out.put_u64_le(entry.slot);
        put_ballot(out, entry.ballot);
        put_value(out, &entry.value);
    }
}

fn accepted_entries_bytes(entries: &[AcceptedEntry]) -> usize {
    4 + entries.iter().map(|e| 8 + BALLOT_BYTES + value_bytes(&e.value)).sum::<usize>()
}

/// Encoded bytes of `message` after its tag; mirrors [`put_message`].
fn message_payload_bytes(message: &Message) -> usize {
    match message {
        Message::PreVote(_) => BALLOT_BYTES,
        Message::PreVoteReply(_) => BALLOT_BYTES + 1 + BALLOT_BYTES,
        Message::Prepare(_) => BALLOT_BYTES + 8,
        Message::Promise(m) => BALLOT_BYTES + 8 + values_bytes(&m.chosen) + accepted_entries_bytes(&m.accepted) + 8,
        Message::Accept(m) => BALLOT_BYTES + 8 + values_bytes(&m.values) + 8,
        Message::Accepted(_) => BALLOT_BYTES + 8 + 8,
        Message::Reject(_) => BALLOT_BYTES + BALLOT_BYTES + 1,
        Message::Heartbeat(_) | Message::HeartbeatReply(_) => BALLOT_BYTES + 8 + 8 + 8,
        Message::CatchUp(_) => 8,
        Message::CatchUpReply(m) => 8 + values_bytes(&m.values) + 8,
        Message::SnapshotChunk(m) => 8 + 8 + 8 + 4 + m.data.len(),
        Message::FetchSnapshot(_) => 8 + 8,
        Message::RecoveryQuery(_) => 8,
        Message::RecoveryReply(m) => 8 + 1 + BALLOT_BYTES + 8 + accepted_entries_bytes(&m.accepted) + 8,
    }
}

fn values_bytes(values: &[Value]) -> usize {
    4 + values.iter().map(value_bytes).sum::<usize>()
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Noop => 1,
        Value::Batch { stamp, commands } => {
            1 + if *stamp == 0 { 0 } else { 8 } + 4 + commands.iter().map(|c| 4 + c.len()).sum::<usize>()
        }
    }
}

fn put_ballot(out: &mut BytesMut, ballot: Ballot) {
    out.put_u64_le(ballot.round);
    out.put_u32_le(ballot.node);
}

/// A count or length prefix. Panics past `u32::MAX`: batch and catch-up
/// limits keep real messages far below it, so it is a bug, not input.
fn put_len(out: &mut BytesMut, len: usize, what: &str) {
    let len = u32::try_from(len).unwrap_or_else(|_| panic!("peer frame {what} {len} exceeds u32::MAX"));
    out.put_u32_le(len);
}

fn put_data(out: &mut BytesMut, data: &[u8]) {
    put_len(out, data.len(), "byte string length");
    out.put_slice(data);
}

fn put_values(out: &mut BytesMut, values: &[Value]) {
    put_len(out, values.len(), "value count");
    for value in values {
        put_value(out, value);
    }
}

fn put_value(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Noop => out.put_u8(VALUE_NOOP),
        Value::Batch { stamp, commands } => {
            if *stamp == 0 {
                out.put_u8(VALUE_BATCH);
            } else {
                out.put_u8(VALUE_STAMPED_BATCH);
                out.put_u64_le(*stamp);
            }
            put_len(out, commands.len(), "command count");
            for command in commands.iter() {
                put_data(out, command);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding frame bodies

/// Decode a frame body (as [`split_frame`] returns it). Byte strings
/// (commands, snapshot data, forwarded payloads) are zero-copy slices of
/// `body`: they keep its buffer alive as long as they live.
pub fn decode_frame(body: Bytes) -> Result<PeerFrame, PeerDecodeError> {
    let mut decoder = BodyDecoder { body: &body, reader: Reader::new(&body) };
    let frame = decoder.frame()?;
    decoder.reader.finish("frame body")?;
    Ok(frame)
}

/// A cursor over untrusted bytes; every read checks what remains.
///
/// Invariant: `at <= input.len()`.
struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    /// The range of the next `needed` bytes, which are consumed.
    fn span(&mut self, what: &'static str, needed: usize) -> Result<Range<usize>, PeerDecodeError> {
        let remaining = self.remaining();
        if needed > remaining {
            return Err(PeerDecodeError::Truncated { what, needed, remaining });
        }
        let start = self.at;
        self.at += needed;
        Ok(start..self.at)
    }

    fn take(&mut self, what: &'static str, needed: usize) -> Result<&'a [u8], PeerDecodeError> {
        let span = self.span(what, needed)?;
        Ok(&self.input[span])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PeerDecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(what, N)?);
        Ok(array)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PeerDecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, PeerDecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, PeerDecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, PeerDecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, PeerDecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(PeerDecodeError::InvalidBool { what, byte }),
        }
    }

    fn ballot(&mut self) -> Result<Ballot, PeerDecodeError> {
        let round = self.u64("ballot round")?;
        let node = self.u32("ballot node")?;
        Ok(Ballot { round, node })
    }

    /// The count of a list whose items take at least `item_bytes_min` (> 0)
    /// bytes each, checked against the remaining input so that callers may
    /// reserve `count` items.
    fn count(&mut self, what: &'static str, item_bytes_min: usize) -> Result<usize, PeerDecodeError> {
        let count = self.u32(what)?;
        let remaining = self.remaining();
        if count as usize > remaining / item_bytes_min {
            return Err(PeerDecodeError::CountTooLarge { what, count, remaining });
        }
        Ok(count as usize)
    }

    /// A `len: u32 | bytes` string; returns the bytes' range.
    fn data_span(&mut self, what: &'static str) -> Result<Range<usize>, PeerDecodeError> {
        let len = self.u32(what)? as usize;
        self.span(what, len)
    }

    /// A `len: u16 | UTF-8` string of at most `max` bytes.
    fn string(&mut self, what: &'static str, max: usize) -> Result<String, PeerDecodeError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(PeerDecodeError::TooLong { what, len, max });
        }
        let raw = self.take(what, len)?;
        let text = std::str::from_utf8(raw).map_err(|_| PeerDecodeError::InvalidUtf8 { what })?;
        Ok(text.to_owned())
    }

    fn magic(&mut self) -> Result<(), PeerDecodeError> {
        let found = self.array::<4>("magic")?;
        if found != MAGIC {
            return Err(PeerDecodeError::BadMagic { found });
        }
        Ok(())
    }

    /// Ends decoding of `what`: any unread byte is an error.
    fn finish(self, what: &'static str) -> Result<(), PeerDecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(PeerDecodeError::TrailingBytes { what, count }),
        }
    }
}

/// A [`Reader`] over a frame body that hands out byte strings as slices of
/// the body's shared buffer.
struct BodyDecoder<'a> {
    body: &'a Bytes,
    reader: Reader<'a>,
}

impl BodyDecoder<'_> {
    fn frame(&mut self) -> Result<PeerFrame, PeerDecodeError> {
        let tag = self.reader.u8("message tag")?;
        let frame = match tag {
            TAG_FORWARD => PeerFrame::Forward { id: self.reader.u64("request id")?, command: self.data("command")? },
            TAG_FORWARD_READ => {
                PeerFrame::ForwardRead { id: self.reader.u64("request id")?, command: self.data("command")? }
            }
            TAG_FORWARD_REPLY => {
                PeerFrame::ForwardReply { id: self.reader.u64("request id")?, reply: self.data("reply")? }
            }
            TAG_FORWARD_REFUSED => {
                let id = self.reader.u64("request id")?;
                let reason = match self.reader.u8("forward refusal tag")? {
                    REFUSAL_NOT_LEADER => {
                        let leader = match self.reader.bool("leader hint presence")? {
                            false => None,
                            true => Some(self.reader.u32("leader hint")?),
                        };
                        ForwardRefusal::NotLeader { leader }
                    }
                    REFUSAL_BUSY => ForwardRefusal::Busy,
                    REFUSAL_TOO_LARGE => ForwardRefusal::TooLarge,
                    tag => return Err(PeerDecodeError::UnknownTag { what: "forward refusal", tag }),
                };
                PeerFrame::ForwardRefused { id, reason }
            }
            tag => PeerFrame::Paxos(self.message(tag)?),
        };
        Ok(frame)
    }

    fn message(&mut self, tag: u8) -> Result<Message, PeerDecodeError> {
        let r = &mut self.reader;
        let message = match tag {
            TAG_PRE_VOTE => Message::PreVote(PreVote { ballot: r.ballot()? }),
            TAG_PRE_VOTE_REPLY => Message::PreVoteReply(PreVoteReply {
                ballot: r.ballot()?,
                granted: r.bool("granted")?,
                promised: r.ballot()?,
            }),
            TAG_PREPARE => Message::Prepare(Prepare { ballot: r.ballot()?, first_unchosen: r.u64("first unchosen")? }),
            TAG_PROMISE => {
                let ballot = r.ballot()?;
                let commit = r.u64("commit")?;
                let chosen = self.values()?;
                let accepted = self.accepted_entries()?;
                let horizon = self.reader.u64("horizon")?;
                Message::Promise(Promise { ballot, commit, chosen, accepted, horizon })
            }
            TAG_ACCEPT => {
                let ballot = r.ballot()?;
                let first_slot = r.u64("first slot")?;
                let values = self.values()?;
                Message::Accept(Accept { ballot, first_slot, values, commit: self.reader.u64("commit")? })
            }
            TAG_ACCEPTED => Message::Accepted(Accepted {
                ballot: r.ballot()?,
                first_slot: r.u64("first slot")?,
                count: r.u64("accepted count")?,
            }),
            TAG_REJECT => Message::Reject(Reject {
                ballot: r.ballot()?,
                promised: r.ballot()?,
                reason: match r.u8("reject reason")? {
                    REJECT_HIGHER_BALLOT => RejectReason::HigherBallot,
                    REJECT_LEASE_HELD => RejectReason::LeaseHeld,
                    tag => return Err(PeerDecodeError::UnknownTag { what: "reject reason", tag }),
                },
            }),
            TAG_HEARTBEAT => Message::Heartbeat(Heartbeat {
                ballot: r.ballot()?,
                commit: r.u64("commit")?,
                round: r.u64("round")?,
                horizon: r.u64("horizon")?,
            }),
            TAG_HEARTBEAT_REPLY => Message::HeartbeatReply(HeartbeatReply {
                ballot: r.ballot()?,
                round: r.u64("round")?,
                commit: r.u64("commit")?,
                horizon: r.u64("horizon")?,
            }),
            TAG_CATCH_UP => Message::CatchUp(CatchUp { first_slot: r.u64("first slot")? }),
            TAG_CATCH_UP_REPLY => {
                let first_slot = r.u64("first slot")?;
                let values = self.values()?;
                Message::CatchUpReply(CatchUpReply { first_slot, values, commit: self.reader.u64("commit")? })
            }
            TAG_SNAPSHOT_CHUNK => {
                let slot = r.u64("snapshot slot")?;
                let total_bytes = r.u64("snapshot total bytes")?;
                let offset = r.u64("snapshot offset")?;
                Message::SnapshotChunk(SnapshotChunk { slot, total_bytes, offset, data: self.data("snapshot data")? })
            }
            TAG_FETCH_SNAPSHOT => Message::FetchSnapshot(FetchSnapshot {
                slot: r.u64("snapshot slot")?,
                offset: r.u64("snapshot offset")?,
            }),
            TAG_RECOVERY_QUERY => Message::RecoveryQuery(RecoveryQuery { nonce: r.u64("recovery nonce")? }),
            TAG_RECOVERY_REPLY => {
                let nonce = r.u64("recovery nonce")?;
                let recovering = r.bool("recovering")?;
                let promised = r.ballot()?;
                let commit = r.u64("commit")?;
                let accepted = self.accepted_entries()?;
                let horizon = self.reader.u64("horizon")?;
                Message::RecoveryReply(RecoveryReply { nonce, recovering, promised, commit, accepted, horizon })
            }
            tag => return Err(PeerDecodeError::UnknownTag { what: "message", tag }),
        };
        Ok(message)
    }

    /// A `len: u32 | bytes` string, sharing the body's buffer.
    fn data(&mut self, what: &'static str) -> Result<Bytes, PeerDecodeError> {
        let span = self.reader.data_span(what)?;
        Ok(self.body.slice(span))
    }

    fn accepted_entries(&mut self) -> Result<Vec<AcceptedEntry>, PeerDecodeError> {
        let count = self.reader.count("accepted entry count", ACCEPTED_ENTRY_BYTES_MIN)?;
        let mut accepted = Vec::with_capacity(count);
        for _ in 0..count {
            let slot = self.reader.u64("accepted slot")?;
            let ballot = self.reader.ballot()?;
            accepted.push(AcceptedEntry { slot, ballot, value: self.value()? });
        }
        Ok(accepted)
    }

    fn values(&mut self) -> Result<Vec<Value>, PeerDecodeError> {
        let count = self.reader.count("value count", VALUE_BYTES_MIN)?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(self.value()?);
        }
        Ok(values)
    }

    fn value(&mut self) -> Result<Value, PeerDecodeError> {
        match self.reader.u8("value tag")? {
            VALUE_NOOP => Ok(Value::Noop),
            tag @ (VALUE_BATCH | VALUE_STAMPED_BATCH) => {
                let stamp = if tag == VALUE_STAMPED_BATCH {
                    match self.reader.u64("stamp")? {
                        0 => return Err(PeerDecodeError::UnknownTag { what: "stamped value with stamp 0", tag }),
                        stamp => stamp,
                    }
                } else {
                    0
                };
                let count = self.reader.count("command count", COMMAND_BYTES_MIN)?;
                // Two passes, so the batch is allocated once, at its exact
                // size, straight into the `Arc<[Bytes]>` (a `Vec` first would
                // allocate and copy twice): the first pass validates every
                // length; the second slices, and cannot fail.
                let start = self.reader.at;
                for _ in 0..count {
                    self.reader.data_span("command")?;
                }
                let body = self.body;
                let mut at = start;
                let commands: Arc<[Bytes]> = (0..count)
                    .map(|_| {
                        let len = le_u32(&body[at..at + 4]) as usize;
                        at += 4 + len;
                        body.slice(at - len..at)
                    })
                    .collect();
                debug_assert_eq!(at, self.reader.at);
                Ok(Value::Batch { stamp, commands })
            }
            tag => Err(PeerDecodeError::UnknownTag { what: "value", tag }),
        }
    }
}

#[cfg(test)]
mod tests;
