//! `peer_frame`: bytes from a peer through the frame splitter and every
//! body decoder of `net::peer` (`net/peer.rs` and `net/peer/`).

use bytes::{Bytes, BytesMut};

use crate::net::peer::{
    decode_frame, decode_handshake, decode_handshake_proof, decode_handshake_reply, encode_frame, encode_handshake,
    encode_handshake_proof, encode_handshake_reply, frame_bytes, split_frame, PeerDecodeError, PeerFrame,
    FRAME_HEADER_BYTES,
};

/// Small, so that inputs of a few KiB hit the limit (the server uses MiBs).
const FRAME_BYTES_MAX: usize = 1024;

/// `data` twice over. As one frame body (the checksum would stop almost
/// every mutation short of the decoders otherwise): the frame, handshake,
/// handshake-reply and handshake-proof decoders never panic, and whatever decodes
/// re-encodes to the same bytes (the format is documented canonical). As a
/// stream of framed bytes: split into frames whole and in two parts alike,
/// each body then checked the same way.
pub fn peer_frame(data: &[u8]) {
    check_body(Bytes::copy_from_slice(data));
    let whole = split_stream(data, data.len());
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    assert_eq!(split_stream(data, cut), whole, "splitting the stream at byte {cut} changes its frames");
    for body in whole.0 {
        check_body(body);
    }
}

/// The frame bodies of `data`, fed in two parts (`..cut`, `cut..`), and the
/// error that ends the stream, if any.
fn split_stream(data: &[u8], cut: usize) -> (Vec<Bytes>, Option<PeerDecodeError>) {
    let mut buf = BytesMut::new();
    let mut bodies = Vec::new();
    for part in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(part);
        loop {
            let before = buf.len();
            match split_frame(&mut buf, FRAME_BYTES_MAX) {
                Ok(Some(body)) => {
                    assert_eq!(before - buf.len(), FRAME_HEADER_BYTES + body.len(), "split consumed another length");
                    assert!(body.len() <= FRAME_BYTES_MAX, "a body over the limit");
                    bodies.push(body);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "an incomplete frame was consumed");
                    break;
                }
                Err(error) => return (bodies, Some(error)),
            }
        }
    }
    (bodies, None)
}

fn check_body(body: Bytes) {
    if let Ok(handshake) = decode_handshake(&body) {
        let mut again = BytesMut::new();
        encode_handshake(&handshake, &mut again);
        assert_eq!(again, body, "non-canonical handshake {handshake:?}");
    }
    if let Ok(reply) = decode_handshake_reply(&body) {
        let mut again = BytesMut::new();
        encode_handshake_reply(&reply, &mut again);
        assert_eq!(again, body, "non-canonical handshake reply {reply:?}");
    }
    if let Ok(proof) = decode_handshake_proof(&body) {
        let mut again = BytesMut::new();
        encode_handshake_proof(&proof, &mut again);
        assert_eq!(again, body, "non-canonical handshake proof {proof:?}");
    }
    if let Ok(frame) = decode_frame(body.clone()) {
        check_reencodes(&frame, &body);
    }
}

/// A decoded frame must give back its body, inside a frame of the size
/// `frame_bytes` promises.
fn check_reencodes(frame: &PeerFrame, body: &[u8]) {
    let mut wire = BytesMut::new();
    encode_frame(frame, &mut wire);
    assert_eq!(wire.len(), frame_bytes(frame), "frame_bytes disagrees with the encoder for {frame:?}");
    assert_eq!(&wire[FRAME_HEADER_BYTES..], body, "non-canonical frame {frame:?}");
    let mut buf = wire.clone();
    let split = split_frame(&mut buf, wire.len()).expect("an encoded frame splits").expect("whole");
    assert_eq!(&split[..], body);
}
