//! Frame bodies: every [`PeerFrame`], encoded and decoded (the format is in
//! the parent module's doc).

use super::reader::Reader;
use super::*;

// ---------------------------------------------------------------------------
// Encoding frame bodies

pub(super) fn put_frame(out: &mut BytesMut, frame: &PeerFrame) {
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
        Message::HandOver(m) => {
            out.put_u8(TAG_HAND_OVER);
            put_ballot(out, m.ballot);
            out.put_u32_le(m.to);
            out.put_u64_le(m.commit);
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
pub(super) fn message_payload_bytes(message: &Message) -> usize {
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
        Message::HandOver(_) => BALLOT_BYTES + 4 + 8,
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
            TAG_HAND_OVER => Message::HandOver(HandOver {
                ballot: r.ballot()?,
                to: r.u32("hand-over successor")?,
                commit: r.u64("commit")?,
            }),
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
                // Two passes, so the batch's `Vec` is allocated once, at its
                // exact size: the first pass validates every length; the
                // second slices, and cannot fail.
                let start = self.reader.at();
                for _ in 0..count {
                    self.reader.data_span("command")?;
                }
                let body = self.body;
                let mut at = start;
                let commands: Vec<Bytes> = (0..count)
                    .map(|_| {
                        let len = le_u32(&body[at..at + 4]) as usize;
                        at += 4 + len;
                        body.slice(at - len..at)
                    })
                    .collect();
                let commands = Rc::new(commands);
                debug_assert_eq!(at, self.reader.at());
                Ok(Value::Batch { stamp, commands })
            }
            tag => Err(PeerDecodeError::UnknownTag { what: "value", tag }),
        }
    }
}
