//! `paxos_step`: one message off the wire into a fresh replica.
//!
//! The peer decoder admits any well-typed message; `check_well_formed` and
//! `Replica::step` must then cope with whatever the fields hold. One
//! message on a replica in a state its own legitimate traffic leads to, not
//! a sequence of forged ones: a peer that lies consistently over many
//! messages is a Byzantine model this project does not claim to survive.

use bytes::Bytes;

use crate::net::peer::{decode_frame, PeerFrame};
use crate::paxos::{
    Ballot, Config, Event, Message, NodeId, PreVoteReply, Promise, Ready, RecoveryReply, Replica, RoleKind, StepError,
    ROUND_JUMP_MAX,
};

/// The replica under test is node 1 of members 1, 2, 3.
const SELF: NodeId = 1;
const MEMBERS: [NodeId; 3] = [1, 2, 3];
/// The replica's seed: fixes its election timeouts and its recovery nonce.
const SEED: u64 = 0x5EED;
/// The sender, picked by the first input byte: two peers, the replica
/// itself, a stranger.
const SENDERS: [NodeId; 4] = [2, 3, SELF, 4];

/// The states the replica under test is driven into before the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Follower,
    PreCandidate,
    Candidate,
    /// Leader, with one command in flight.
    Leader,
    /// Rejoining after losing its state (`paxos/recovery.rs`), no answer yet.
    Recovering,
    /// Recovering, and node 3 has answered its query: an answer from node 2
    /// completes the set.
    RecoveringAnsweredBy3,
}

const STATES: [State; 6] = [
    State::Follower,
    State::PreCandidate,
    State::Candidate,
    State::Leader,
    State::Recovering,
    State::RecoveringAnsweredBy3,
];

/// How far the clock moves after the message, picked by bits 5-7 of the
/// first input byte: not at all, one tick, past the retry timeouts, past
/// the election timeouts, and far beyond.
const CLOCK_JUMPS_TICKS: [u64; 8] = [0, 1, 31, 151, 301, 1_000, 100_000, 1 << 40];

/// `data[0]`: bits 0-1 pick the sender, bits 2-4 the replica's state
/// (modulo the 6 states), bits 5-7 how far the clock moves afterwards; the
/// rest is a peer frame body. A Paxos message that decodes is stepped in,
/// and the replica's output drained as the shell would (`ready`,
/// `on_persisted`, `ready`); then the clock moves and what is due fires
/// (`set_now`, `fire_timeouts`, `ready`). Never a panic; `step` refuses
/// exactly what it documents: a stranger, itself, what `check_well_formed`
/// rejects, and a ballot round more than `ROUND_JUMP_MAX` above any seen.
pub fn paxos_step(data: &[u8]) {
    let Some((&choice, body)) = data.split_first() else { return };
    let Ok(PeerFrame::Paxos(message)) = decode_frame(Bytes::copy_from_slice(body)) else { return };
    let from = SENDERS[usize::from(choice & 3)];
    let state = STATES[usize::from(choice >> 2 & 7) % STATES.len()];
    let clock_jump_ticks = CLOCK_JUMPS_TICKS[usize::from(choice >> 5)];
    let (mut replica, round_seen) = replica_in(state);
    let expected = if !MEMBERS.contains(&from) {
        Err(StepError::UnknownSender(from))
    } else if from == SELF {
        Err(StepError::FromSelf)
    } else if let Err(why) = message.check_well_formed() {
        Err(StepError::Malformed(why))
    } else if message.max_round() > round_seen + ROUND_JUMP_MAX {
        Err(StepError::Malformed("ballot round jumps too far above any round seen"))
    } else {
        Ok(())
    };
    let kind = message.kind();
    assert_eq!(replica.step(from, message), expected, "step of a {kind} from {from} to a {state:?} replica");
    let ready = replica.ready();
    let next_slot = check_committed(&ready, None);
    replica.on_persisted(ready.number);
    let ready = replica.ready();
    let next_slot = check_committed(&ready, next_slot);
    replica.on_persisted(ready.number);
    replica.set_now(replica.now().saturating_add(clock_jump_ticks));
    replica.fire_timeouts();
    check_committed(&replica.ready(), next_slot);
}

/// `Ready::committed` is contiguous and in order, continuing from
/// `next_slot` (the slot after the last one committed before). Returns the
/// slot after its last.
fn check_committed(ready: &Ready, mut next_slot: Option<u64>) -> Option<u64> {
    for (slot, _) in &ready.committed {
        assert!(next_slot.is_none_or(|next| next == *slot), "committed slot {slot} after {next_slot:?}");
        next_slot = Some(slot + 1);
    }
    next_slot
}

/// The nonce of the recovering replica's query: a [`RecoveryReply`] counts
/// only if it echoes it (for the seed corpus).
pub fn recovery_nonce() -> u64 {
    let mut replica = Replica::rejoin(Config::new(MEMBERS.to_vec()), SELF, SEED).expect("a valid config");
    let ready = replica.ready();
    ready
        .send_now
        .iter()
        .find_map(|envelope| match &envelope.message {
            Message::RecoveryQuery(query) => Some(query.nonce),
            _ => None,
        })
        .expect("a rejoining replica queries its peers")
}

/// A fresh replica driven by legitimate traffic into `state`, and the
/// highest ballot round it has seen: its election timeout fires
/// (pre-candidate), a peer grants its pre-vote (candidate), a peer promises
/// (leader, which then proposes one command); or it rejoins (recovering),
/// and a fresh peer answers its query.
fn replica_in(state: State) -> (Replica, u64) {
    let config = Config::new(MEMBERS.to_vec());
    if matches!(state, State::Recovering | State::RecoveringAnsweredBy3) {
        let nonce = recovery_nonce();
        let mut replica = Replica::rejoin(config, SELF, SEED).expect("a valid config");
        let ready = replica.ready();
        replica.on_persisted(ready.number);
        if state == State::RecoveringAnsweredBy3 {
            let answer = RecoveryReply {
                nonce,
                recovering: false,
                promised: Ballot::ZERO,
                commit: 0,
                accepted: vec![],
                horizon: 0,
            };
            replica.step(3, Message::RecoveryReply(answer)).expect("a valid recovery reply");
            drop(replica.ready());
        }
        assert!(replica.is_recovering(), "{state:?}");
        return (replica, 0);
    }
    let mut replica = Replica::new(config, SELF, SEED).expect("a valid config");
    if state == State::Follower {
        return (replica, 0);
    }
    while replica.status().role == RoleKind::Follower {
        replica.tick();
    }
    let ballot = started(&replica.ready(), |event| match event {
        Event::PreVoteStarted { ballot } => Some(*ballot),
        _ => None,
    });
    if state == State::PreCandidate {
        return (replica, 0); // a pre-vote raises no round
    }
    let reply = PreVoteReply { ballot, granted: true, promised: Ballot::ZERO };
    replica.step(2, Message::PreVoteReply(reply)).expect("a valid pre-vote reply");
    let ready = replica.ready();
    let ballot = started(&ready, |event| match event {
        Event::ElectionStarted { ballot } => Some(*ballot),
        _ => None,
    });
    replica.on_persisted(ready.number);
    drop(replica.ready());
    if state == State::Candidate {
        return (replica, ballot.round);
    }
    let promise = Promise { ballot, commit: 0, chosen: vec![], accepted: vec![], horizon: 0 };
    replica.step(2, Message::Promise(promise)).expect("a valid promise");
    let ready = replica.ready();
    replica.on_persisted(ready.number);
    assert_eq!(replica.status().role, RoleKind::Leader);
    replica.propose(vec![Bytes::from_static(b"command")]).expect("a leader takes a command");
    let ready = replica.ready();
    replica.on_persisted(ready.number);
    drop(replica.ready());
    (replica, ballot.round)
}

/// The ballot of the campaign event `pick` finds in `ready`.
fn started(ready: &Ready, pick: impl Fn(&Event) -> Option<Ballot>) -> Ballot {
    ready.events.iter().find_map(pick).unwrap_or_else(|| panic!("no campaign started: {:?}", ready.events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::{AcceptedEntry, PreVote, RecoveryQuery, Value};

    fn role_of(state: State) -> RoleKind {
        match state {
            State::PreCandidate => RoleKind::PreCandidate,
            State::Candidate => RoleKind::Candidate,
            State::Leader => RoleKind::Leader,
            _ => RoleKind::Follower,
        }
    }

    #[test]
    fn the_replica_reaches_every_state_with_the_seed_corpus_ballot() {
        for state in STATES {
            let (replica, _) = replica_in(state);
            assert_eq!(replica.status().role, role_of(state));
            if matches!(state, State::Candidate | State::Leader) {
                // fuzz/corpus/paxos_step's messages speak for this ballot
                // (the pre-vote's too, which promises nothing).
                assert_eq!(replica.status().promised, Ballot::new(1, SELF), "{state:?}");
            }
        }
    }

    /// The round the harness says each state has seen is the replica's:
    /// a jump of exactly `ROUND_JUMP_MAX` above it is stepped, one more is not.
    #[test]
    fn round_seen_matches_the_replicas_jump_check() {
        for state in STATES {
            let (_, round_seen) = replica_in(state);
            for (extra, ok) in [(0, true), (1, false)] {
                let (mut replica, _) = replica_in(state);
                let round = round_seen + ROUND_JUMP_MAX + extra;
                let result = replica.step(2, Message::PreVote(PreVote { ballot: Ballot::new(round, 2) }));
                assert_eq!(result.is_ok(), ok, "{state:?}, round {round}: {result:?}");
            }
        }
    }

    /// Found by this target (then skipped as a known bug until the core
    /// bounded what a promise may report): a Promise reporting an accepted
    /// slot far above the candidate's log made `become_leader` re-propose
    /// every slot up to it at once. Now refused as malformed, and the
    /// candidate goes on campaigning.
    #[test]
    fn a_promise_reaching_a_far_slot_is_refused_by_the_candidate() {
        for slot in [u64::MAX - 1, crate::paxos::ACCEPTED_AHEAD_MAX] {
            let (mut replica, _) = replica_in(State::Candidate);
            let far = AcceptedEntry { slot, ballot: Ballot::new(1, 3), value: Value::Noop };
            let promise =
                Promise { ballot: Ballot::new(1, SELF), commit: 0, chosen: vec![], accepted: vec![far], horizon: 0 };
            let refused = replica.step(2, Message::Promise(promise));
            assert!(matches!(refused, Err(StepError::Malformed(_))), "{refused:?}");
            assert_eq!(replica.status().role, RoleKind::Candidate);
            assert!(replica.ready().events.iter().all(|e| !matches!(e, Event::BecameLeader { .. })));
        }
    }

    #[test]
    fn an_accepted_from_a_peer_commits_the_leaders_command() {
        let (mut replica, _) = replica_in(State::Leader);
        let accepted = crate::paxos::Accepted { ballot: Ballot::new(1, SELF), first_slot: 0, count: 1 };
        replica.step(2, Message::Accepted(accepted)).unwrap();
        assert_eq!(replica.ready().committed.len(), 1);
    }

    /// The recovery messages the seed corpus carries do what they should:
    /// a query is answered, and the second answer (with the right nonce)
    /// ends the recovery, adopting the value it reports.
    #[test]
    fn recovery_messages_reach_the_recovery_code() {
        let (mut follower, _) = replica_in(State::Follower);
        follower.step(2, Message::RecoveryQuery(RecoveryQuery { nonce: 9 })).unwrap();
        let answered =
            follower.ready().send_now.iter().any(|e| matches!(&e.message, Message::RecoveryReply(r) if r.nonce == 9));
        assert!(answered, "a follower answers a recovery query");

        let (mut recovering, _) = replica_in(State::RecoveringAnsweredBy3);
        let accepted = vec![AcceptedEntry { slot: 0, ballot: Ballot::new(2, 2), value: Value::Noop }];
        let reply = RecoveryReply {
            nonce: recovery_nonce(),
            recovering: false,
            promised: Ballot::new(2, 2),
            commit: 0,
            accepted,
            horizon: 0,
        };
        recovering.step(2, Message::RecoveryReply(reply)).unwrap();
        assert!(!recovering.is_recovering(), "two answers of three members end the recovery");
        assert_eq!(recovering.status().promised, Ballot::new(2, 2));
    }
}
