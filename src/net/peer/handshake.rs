//! The handshake frames' bodies: [`Handshake`], [`HandshakeReply`] and
//! [`HandshakeProof`] (the format is in the parent module's doc).

use super::reader::Reader;
use super::*;

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
    out.reserve(4 + 2 + 2 + h.cluster_id.len() + 4 + 4 + NONCE_BYTES + 4 + 4 + 4 * h.members.len() + Formats::BYTES);
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
    out.put_slice(&h.formats.to_bytes());
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
    let formats = Formats::from_bytes(reader.array("state-machine formats")?);
    reader.finish("handshake")?;
    Ok(Handshake { cluster_id, node_id, shard, protocol_version, nonce, shards, members, formats })
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
