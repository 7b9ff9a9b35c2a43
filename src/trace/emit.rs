//! For emitters (the simulator and live nodes): one way to describe a core
//! message as a `send` event and to digest values, so that both drivers
//! write the same fields and equal values get equal digests.

use bytes::BytesMut;

use super::kinds::MessageKind;
use super::schema::{MessageId, Send};
use crate::net::peer::{encode_frame, PeerFrame};
use crate::paxos::{Envelope, Message, NodeId, Value};

/// The `send` event of message `id` (unique per link `from -> to`) in `envelope`.
/// Values are counted where the message carries them: Accept and
/// CatchUpReply (their slots), Promise (the accepted values it reports,
/// which the new leader will re-propose); a snapshot chunk counts its bytes.
pub fn send_event(id: MessageId, envelope: &Envelope) -> Send {
    message_send(id, envelope.from, envelope.to, &envelope.message)
}

/// The `send` event of a peer frame: a core message as [`send_event`]
/// describes it; a forwarded client command (or read) as `forward` and its
/// answer (or refusal) as `forward_reply`, with their payload bytes.
pub fn frame_send(id: MessageId, from: NodeId, to: NodeId, frame: &PeerFrame) -> Send {
    let (kind, bytes) = match frame {
        PeerFrame::Paxos(message) => return message_send(id, from, to, message),
        PeerFrame::Forward { command, .. } | PeerFrame::ForwardRead { command, .. } => {
            (MessageKind::Forward, command.len())
        }
        PeerFrame::ForwardReply { reply, .. } => (MessageKind::ForwardReply, reply.len()),
        PeerFrame::ForwardRefused { .. } => (MessageKind::ForwardReply, 0),
    };
    let commands = u64::from(kind == MessageKind::Forward);
    Send { id, from, to, kind, ballot: None, slot: None, slots: 0, commands, bytes: bytes as u64, digest: None }
}

/// A message id both ends of a live link compute alike without sharing a
/// counter: a 64-bit FNV-1a hash of the frame's encoding (`scratch` is a
/// reusable buffer). Frames differ in ballot, slot, heartbeat round or
/// payload; an identical frame sent again (a retransmitted Prepare) gets
/// the same id, and the viewer pairs each delivery with the latest send
/// before it. Sampling by `id % n` keeps the same messages at both ends.
pub fn frame_id(frame: &PeerFrame, scratch: &mut BytesMut) -> MessageId {
    scratch.clear();
    encode_frame(frame, scratch);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in scratch.iter() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn message_send(id: MessageId, from: NodeId, to: NodeId, m: &Message) -> Send {
    let mut send = Send {
        id,
        from,
        to,
        kind: MessageKind::from_name(m.kind()),
        ballot: m.ballot(),
        slot: m.slot(),
        slots: 0,
        commands: 0,
        bytes: 0,
        digest: None,
    };
    match m {
        Message::Accept(a) => describe_values(&mut send, &a.values),
        Message::CatchUpReply(c) => describe_values(&mut send, &c.values),
        Message::Promise(p) => {
            let values: Vec<&Value> = p.accepted.iter().map(|e| &e.value).collect();
            send.slot = p.accepted.first().map(|e| e.slot);
            describe_values(&mut send, values);
        }
        Message::Accepted(a) => send.slots = a.count,
        Message::SnapshotChunk(c) => send.bytes = c.data.len() as u64,
        _ => {}
    }
    send
}

fn describe_values<'a>(send: &mut Send, values: impl IntoIterator<Item = &'a Value> + Clone) {
    for value in values.clone() {
        send.slots += 1;
        send.commands += value.commands().len() as u64;
        send.bytes += value.size_bytes() as u64;
    }
    send.digest = value_digest(values);
}

/// 8 hex digits of the CRC32C of the values (a no-op and each command
/// length-prefixed, so different batches do not collide by concatenation);
/// `None` for no values. Equal values give equal digests.
pub fn value_digest<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    let mut crc = 0u32;
    let mut any = false;
    for value in values {
        any = true;
        match value {
            Value::Noop => crc = crc32c::crc32c_append(crc, &[0]),
            Value::Batch { commands, .. } => {
                crc = crc32c::crc32c_append(crc, &[1]);
                for command in commands.iter() {
                    crc = crc32c::crc32c_append(crc, &(command.len() as u32).to_le_bytes());
                    crc = crc32c::crc32c_append(crc, command);
                }
            }
        }
    }
    any.then(|| format!("{crc:08x}"))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::paxos::{Accept, AcceptedEntry, Ballot, Heartbeat, Promise};

    fn batch(commands: &[&'static str]) -> Value {
        Value::batch(commands.iter().map(|c| Bytes::from_static(c.as_bytes())).collect())
    }

    fn envelope(message: Message) -> Envelope {
        Envelope { from: 1, to: 2, message }
    }

    #[test]
    fn an_accept_counts_its_slots_commands_and_bytes() {
        let values = vec![batch(&["set a 1", "set b 2"]), Value::Noop];
        let accept = Accept { ballot: Ballot::new(3, 1), first_slot: 10, values: values.clone(), commit: 9 };
        let send = send_event(7, &envelope(Message::Accept(accept)));
        assert_eq!((send.id, send.from, send.to, send.kind), (7, 1, 2, MessageKind::Accept));
        assert_eq!(
            (send.ballot, send.slot, send.slots, send.commands, send.bytes),
            (Some(Ballot::new(3, 1)), Some(10), 2, 2, 14)
        );
        assert_eq!(send.digest, value_digest(&values));
    }

    #[test]
    fn a_promise_describes_the_values_it_reports_accepted() {
        let entry = AcceptedEntry { slot: 4, ballot: Ballot::new(1, 3), value: batch(&["x"]) };
        let promise =
            Promise { ballot: Ballot::new(2, 1), commit: 3, chosen: Vec::new(), accepted: vec![entry], horizon: 0 };
        let send = send_event(1, &envelope(Message::Promise(promise)));
        assert_eq!((send.kind, send.slot, send.slots, send.commands), (MessageKind::Promise, Some(4), 1, 1));
        assert_eq!(send.digest, value_digest(&[batch(&["x"])]));
    }

    #[test]
    fn a_heartbeat_carries_no_values() {
        let send = send_event(
            1,
            &envelope(Message::Heartbeat(Heartbeat { ballot: Ballot::new(2, 1), commit: 5, round: 9, horizon: 0 })),
        );
        assert_eq!((send.kind, send.slots, send.digest), (MessageKind::Heartbeat, 0, None));
    }

    #[test]
    fn a_forward_is_one_command_and_its_reply_a_forward_reply() {
        let forward = PeerFrame::Forward { id: 3, command: Bytes::from_static(b"abcd") };
        let send = frame_send(9, 2, 1, &forward);
        assert_eq!((send.kind, send.commands, send.bytes, send.from, send.to), (MessageKind::Forward, 1, 4, 2, 1));
        let reply = PeerFrame::ForwardReply { id: 3, reply: Bytes::from_static(b"ok") };
        assert_eq!(frame_send(10, 1, 2, &reply).kind, MessageKind::ForwardReply);
        let heartbeat = Message::Heartbeat(Heartbeat { ballot: Ballot::new(2, 1), commit: 5, round: 9, horizon: 0 });
        assert_eq!(frame_send(11, 1, 2, &PeerFrame::Paxos(heartbeat.clone())), send_event(11, &envelope(heartbeat)));
    }

    #[test]
    fn frame_ids_are_equal_for_equal_frames_only() {
        let mut scratch = BytesMut::new();
        let heartbeat = |round| {
            PeerFrame::Paxos(Message::Heartbeat(Heartbeat { ballot: Ballot::new(2, 1), commit: 5, round, horizon: 0 }))
        };
        assert_eq!(frame_id(&heartbeat(1), &mut scratch), frame_id(&heartbeat(1), &mut BytesMut::new()));
        assert_ne!(frame_id(&heartbeat(1), &mut scratch), frame_id(&heartbeat(2), &mut scratch));
    }

    #[test]
    fn digests_tell_values_apart_and_equal_values_alike() {
        let d = |values: &[Value]| value_digest(values).unwrap();
        assert_eq!(d(&[batch(&["ab", "c"])]), d(&[batch(&["ab", "c"])]));
        assert_ne!(d(&[batch(&["ab", "c"])]), d(&[batch(&["a", "bc"])]));
        assert_ne!(d(&[Value::Noop]), d(&[batch(&[])]));
        assert_eq!(d(&[Value::Noop]).len(), 8);
        assert_eq!(value_digest(&[]), None);
    }
}
