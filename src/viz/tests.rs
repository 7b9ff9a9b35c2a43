//! The view model on small hand-made traces.

use super::model::{build, Model, Span, DELIVERED, DROPPED, UNKNOWN};
use crate::paxos::Ballot;
use crate::trace::{Clock, DropReason, Event, Header, MessageKind, Outcome, Record, RoleName, Send, Source, Trace};

fn model(nodes: Vec<u32>, events: Vec<(u64, Event)>) -> Model {
    let records = events.into_iter().map(|(t_us, event)| Record { t_us, event }).collect();
    let header = Header::new(Source::Sim, Clock::Sim, nodes);
    build(&Trace { header, records, skipped_unknown: 0, torn_tail: false }, "test")
}

fn send(id: u64, from: u32, to: u32) -> Event {
    Event::Send(Send {
        id,
        from,
        to,
        kind: MessageKind::Accept,
        ballot: Some(Ballot::new(1, from)),
        slot: Some(4),
        slots: 1,
        commands: 3,
        bytes: 100,
        digest: Some("abcd0123".into()),
    })
}

#[test]
fn sends_pair_with_deliveries_drops_or_nothing() {
    let m = model(
        vec![1, 2, 3],
        vec![
            (10, send(1, 1, 2)),
            (15, Event::Deliver { id: 1, from: 1, to: 2 }),
            (18, Event::Deliver { id: 1, from: 1, to: 2 }),
            (20, send(2, 1, 3)),
            (20, Event::Drop { id: 2, from: 1, to: 3, reason: DropReason::Loss }),
            (30, send(3, 2, 3)),
            (40, Event::Deliver { id: 9, from: 3, to: 1 }),
        ],
    );
    let fates: Vec<_> = m.arrows.iter().map(|a| (a.t_send, a.t_end, a.fate, a.duplicated, a.drop_reason)).collect();
    assert_eq!(
        fates,
        [
            (10, 15, DELIVERED, true, None),
            (10, 18, DELIVERED, true, None),
            (20, 20, DROPPED, false, Some("loss")),
            (30, 30, UNKNOWN, false, None),
        ]
    );
    assert_eq!(m.unmatched, 1, "a delivery without its send");
    let a = &m.arrows[0];
    assert_eq!((a.from, a.to, m.kinds[a.kind], a.slot, a.commands), (0, 1, "accept", Some(4), 3));
    assert_eq!(m.ballots[a.ballot.unwrap()], "1.1");
}

#[test]
fn ids_need_only_be_unique_per_link() {
    // A live node may number each peer connection's frames from 1.
    let m = model(
        vec![1, 2, 3],
        vec![
            (10, send(1, 1, 2)),
            (10, send(1, 1, 3)),
            (12, Event::Deliver { id: 1, from: 1, to: 3 }),
            (14, Event::Deliver { id: 1, from: 1, to: 2 }),
        ],
    );
    let ends: Vec<_> = m.arrows.iter().map(|a| (a.to, a.t_end, a.fate, a.duplicated)).collect();
    assert_eq!(ends, [(2, 12, DELIVERED, false), (1, 14, DELIVERED, false)]);
}

#[test]
fn a_delivery_logged_before_its_send_still_pairs() {
    // Two hosts' clocks disagree: the receiver's log is earlier.
    let m = model(vec![1, 2], vec![(5, Event::Deliver { id: 1, from: 1, to: 2 }), (10, send(1, 1, 2))]);
    assert_eq!((m.arrows.len(), m.arrows[0].t_end, m.unmatched), (1, 5, 0));
}

#[test]
fn roles_run_until_the_next_role_and_a_crash_shows_the_node_down() {
    let leader = Event::Role { node: 1, role: RoleName::Leader, ballot: Some(Ballot::new(2, 1)) };
    let m = model(
        vec![1, 2],
        vec![
            (10, leader),
            (20, Event::Crash { node: 1 }),
            (30, Event::Restart { node: 1 }),
            (35, Event::Role { node: 1, role: RoleName::Follower, ballot: None }),
            (50, Event::Heal {}),
        ],
    );
    let span = |t0, t1, what, ballot| Span { lane: 0, t0, t1, what, ballot };
    assert_eq!(m.roles, [span(10, 20, "leader", Some(0)), span(20, 30, "down", None), span(35, 50, "follower", None)]);
    let marks: Vec<_> = m.marks.iter().map(|m| (m.t, m.what)).collect();
    assert_eq!(marks, [(20, "crash"), (30, "restart")]);
}

#[test]
fn a_lease_extends_while_renewed_in_time_and_ends_at_a_step_down() {
    let b = Ballot::new(1, 1);
    let lease = |until_us| Event::Lease { node: 1, ballot: b, until_us };
    let m = model(
        vec![1],
        vec![
            (10, lease(100)),
            (90, lease(150)),
            (200, lease(260)), // the first lapsed at 150: a new interval
            (220, Event::StepDown { node: 1, ballot: b, reason: "higher_ballot".into() }),
            (300, Event::Heal {}),
        ],
    );
    let spans: Vec<_> = m.leases.iter().map(|s| (s.t0, s.t1)).collect();
    assert_eq!(spans, [(10, 150), (200, 220)]);
}

#[test]
fn concurrent_operations_stack_into_rows() {
    let invoke = |op, node| Event::Invoke { op, client: op, node, command: format!("GET k{op}"), key: None };
    let done = |op| Event::Complete { op, outcome: Outcome::Ok, output: Some("OK".into()) };
    let m = model(
        vec![1, 2],
        vec![
            (0, invoke(1, 1)),
            (5, invoke(2, 2)),
            (10, done(1)),
            (12, invoke(3, 1)), // row 0 is free again
            (14, invoke(4, 1)), // never completes
            (20, done(2)),
            (21, done(3)),
            (30, Event::Violation { checker: "linearizability".into(), message: "m".into(), ops: vec![2], slot: None }),
        ],
    );
    let rows: Vec<_> = m.ops.iter().map(|o| (o.op, o.row, o.t1, o.violation)).collect();
    assert_eq!(rows, [(1, 0, Some(10), false), (2, 1, Some(20), true), (3, 0, Some(21), false), (4, 2, None, false)]);
    assert_eq!(m.op_rows, 3);
}

#[test]
fn partitions_add_up_until_healed_and_group_the_lanes() {
    let m = model(
        vec![1, 2, 3],
        vec![
            (10, Event::Partition { side_a: vec![1], side_b: vec![2, 3], one_way: false }),
            (20, Event::Partition { side_a: vec![2], side_b: vec![3], one_way: true }),
            (30, Event::Heal {}),
        ],
    );
    let spans: Vec<_> = m.partitions.iter().map(|p| (p.t0, p.t1, p.label.as_str(), p.groups.clone())).collect();
    assert_eq!(spans, [(10, 20, "{1} | {2,3}", vec![0, 1, 1]), (20, 30, "{1} | {2,3}; {2} → {3}", vec![0, 1, 2])]);
}

#[test]
fn every_node_an_event_names_gets_a_lane() {
    let m = model(vec![1], vec![(1, send(1, 1, 7)), (2, Event::PeerDown { node: 1, peer: 4 })]);
    assert_eq!(m.lanes, [1, 4, 7]);
}
