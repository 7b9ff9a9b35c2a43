//! The small closed vocabularies of the trace: message kinds, drop
//! reasons, roles, outcomes, and ballots written as "round.node". Each enum
//! reads an unknown name as `Other`, so a newer writer's additions do not
//! make an older reader fail.

use serde::{Deserialize, Serialize};

/// Message kinds: the core's messages plus the shell's forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    PreVote,
    PreVoteReply,
    Prepare,
    Promise,
    Accept,
    Accepted,
    Reject,
    /// A leader that stepped down names its successor (`paxos::HandOver`).
    HandOver,
    Heartbeat,
    HeartbeatReply,
    CatchUp,
    CatchUpReply,
    SnapshotChunk,
    FetchSnapshot,
    /// A follower passes client commands to the leader.
    Forward,
    ForwardReply,
    /// A kind this reader does not know (written by a newer emitter).
    #[serde(other)]
    Other,
}

impl MessageKind {
    /// Every kind, in legend order.
    pub const ALL: [MessageKind; 17] = [
        MessageKind::Prepare,
        MessageKind::Promise,
        MessageKind::Accept,
        MessageKind::Accepted,
        MessageKind::PreVote,
        MessageKind::PreVoteReply,
        MessageKind::Reject,
        MessageKind::HandOver,
        MessageKind::Heartbeat,
        MessageKind::HeartbeatReply,
        MessageKind::CatchUp,
        MessageKind::CatchUpReply,
        MessageKind::SnapshotChunk,
        MessageKind::FetchSnapshot,
        MessageKind::Forward,
        MessageKind::ForwardReply,
        MessageKind::Other,
    ];

    /// The wire name, e.g. "pre_vote_reply" (the same as the core's
    /// `Message::kind()` for the core's kinds).
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::PreVote => "pre_vote",
            MessageKind::PreVoteReply => "pre_vote_reply",
            MessageKind::Prepare => "prepare",
            MessageKind::Promise => "promise",
            MessageKind::Accept => "accept",
            MessageKind::Accepted => "accepted",
            MessageKind::Reject => "reject",
            MessageKind::HandOver => "hand_over",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::HeartbeatReply => "heartbeat_reply",
            MessageKind::CatchUp => "catch_up",
            MessageKind::CatchUpReply => "catch_up_reply",
            MessageKind::SnapshotChunk => "snapshot_chunk",
            MessageKind::FetchSnapshot => "fetch_snapshot",
            MessageKind::Forward => "forward",
            MessageKind::ForwardReply => "forward_reply",
            MessageKind::Other => "other",
        }
    }

    /// The kind named `name` (the core's `Message::kind()`), `Other` if unknown.
    pub fn from_name(name: &str) -> MessageKind {
        MessageKind::ALL.into_iter().find(|k| k.name() == name).unwrap_or(MessageKind::Other)
    }
}

/// Why a message was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Random loss (the simulator's `--loss`).
    Loss,
    /// A cut link (`partition`).
    Partition,
    /// No connection to the peer (live nodes).
    LinkDown,
    /// The receiver was down when it arrived.
    ReceiverDown,
    /// The sender's bounded peer queue was full (live nodes).
    QueueFull,
    #[serde(other)]
    Other,
}

/// A replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Follower,
    /// Asking for pre-votes before raising its ballot.
    PreCandidate,
    /// Running Phase 1.
    Candidate,
    Leader,
    /// Restarted and catching up before it takes part.
    Recovering,
    #[serde(other)]
    Other,
}

/// How a client operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect (or read) and the client got the reply.
    Ok,
    /// The server refused it; it took no effect.
    Error,
    /// The client gave up waiting; it may or may not have taken effect.
    Timeout,
    /// The client got an answer saying the outcome is unknown.
    Indeterminate,
    #[serde(other)]
    Other,
}

/// Ballots as text "round.node", the form the core prints.
pub mod ballot_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::paxos::Ballot;

    pub fn parse(text: &str) -> Option<Ballot> {
        let (round, node) = text.split_once('.')?;
        Some(Ballot::new(round.parse().ok()?, node.parse().ok()?))
    }

    pub fn serialize<S: Serializer>(ballot: &Ballot, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ballot)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ballot, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| not_a_ballot(&text))
    }

    fn not_a_ballot<E: serde::de::Error>(text: &str) -> E {
        E::custom(format!("ballot {text:?} is not \"round.node\""))
    }

    /// The same for an optional ballot.
    pub mod opt {
        use serde::{Deserialize, Deserializer, Serializer};

        use crate::paxos::Ballot;

        pub fn serialize<S: Serializer>(ballot: &Option<Ballot>, s: S) -> Result<S::Ok, S::Error> {
            match ballot {
                Some(b) => super::serialize(b, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ballot>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => super::parse(&text).map(Some).ok_or_else(|| super::not_a_ballot(&text)),
            }
        }
    }
}
