//! A connection's order (`node/order.rs`): a read sees the writes its
//! connection pipelined before it and none sent after, at a leader and
//! through a follower.

use bytes::Bytes;

use super::*;

/// Found by the latency checker: a read waited for every write of its
/// session, so a pipeline of writes starved it. It waits only for the
/// writes sent before it.
#[test]
fn a_read_waits_only_for_the_writes_sent_before_it() {
    let (mut n, now) = leader_alone(|_| {});
    let mut session = ClientSession::new(1);
    let deadline = now + 1_000_000;
    let first = session.command(set("k", "1"), true, || 1);
    n.submit(now, Request::new(first, Waiter::Client(1), deadline));
    let first_token = drain(&mut n).appends[0].token;
    let read = session.command(get("k"), false, || 1);
    n.submit(now, Request::new(read, Waiter::Client(2), deadline));
    let later = session.command(set("k", "3"), true, || 1);
    n.submit(now, Request::new(later, Waiter::Client(3), deadline));
    let out = drain(&mut n);
    assert!(out.replies.is_empty(), "the read waits for the write before it");
    n.on_synced(now, first_token);
    let out = drain(&mut n);
    let replies: Vec<(Client, Reply)> = out.replies;
    assert_eq!(replies[0], (1, Reply::Ok));
    assert_eq!(replies[1], (2, Reply::Bulk(Bytes::from_static(b"1"))), "it sees the earlier write, not the later");
    assert_eq!(replies.len(), 2, "the later write is still waiting for its fsync");
}

/// Found by the simulator's session-order checker: `SET k 1; GET k; INCR
/// k; GET k` in one pipeline answered `OK, 2, 2, 2` (Redis: `OK, 1, 2,
/// 2`). The first GET waited for the SET, but the INCR, proposed at once,
/// ran in the same batch before the GET was let go. With a lease the
/// reads are answered right after the write before them runs; without
/// one they take slots of their own, behind it.
#[test]
fn pipelined_reads_see_the_writes_sent_before_them_and_not_those_after() {
    for lease in [true, false] {
        let (mut n, now) = leader_alone_with_core(|_| {}, |c| c.lease_reads = lease);
        assert_eq!(n.replica().holds_lease(), lease);
        let mut session = ClientSession::new(1);
        let incr = Op::IncrBy { key: Bytes::from_static(b"k"), delta: 1 };
        let pipeline = [(set("k", "1"), true), (get("k"), false), (incr, true), (get("k"), false)];
        for (client, (op, through_log)) in pipeline.into_iter().enumerate() {
            let command = session.command(op, through_log, || 1);
            n.submit(now, Request::new(command, Waiter::Client(client as Client), now + 1_000_000));
        }
        let mut replies = settle(&mut n, now);
        replies.sort_by_key(|(client, _)| *client);
        let bulk = |v: &'static [u8]| Reply::Bulk(Bytes::from_static(v));
        let expected = vec![(0, Reply::Ok), (1, bulk(b"1")), (2, Reply::Int(2)), (3, bulk(b"2"))];
        assert_eq!(replies, expected, "lease {lease}");
        let without_a_slot = if lease { 2 } else { 0 };
        assert_eq!(n.status().reads_served, without_a_slot, "lease {lease}");
    }
}

/// At an entry node that forwards: a pipeline's commands all leave at
/// once, in order (the leader keeps their order, below). A read after a
/// forwarded write names that write (its `prev`), as a read, not a slot.
/// Until stop 44 the write waited here for the read before it to be
/// answered, and the read after it took a slot of its own: a round trip
/// and a group commit more per turn of a pipeline.
#[test]
fn a_follower_forwards_a_pipeline_at_once_and_a_read_names_the_write_before_it() {
    let mut n = follower_of_node_1(|_| {});
    let mut session = ClientSession::new(1);
    let read = session.command(get("a"), false, || 1);
    let write = session.command(set("a", "1"), true, || 1);
    let read_after = session.command(get("a"), false, || 1);
    for (client, command) in [read.clone(), write.clone(), read_after.clone()].into_iter().enumerate() {
        n.submit(2_000, Request::new(command, Waiter::Client(client as Client), 1_000_000));
    }
    let sent: Vec<(bool, Command)> = forwards_sent(&drain(&mut n)).into_iter().map(|(l, _, c)| (l, c)).collect();
    let expected = vec![(false, read), (true, write.clone()), (false, read_after.clone())];
    assert_eq!(sent, expected);
    assert_eq!(read_after.prev, write.seq);
}

/// The leader's side of the rule above: a forwarded read is answered
/// right after the write it names runs (it sees it, and takes no slot),
/// also when it got there before that write (it waits for it); one that
/// a later command of its connection overtook (a retried forward) is
/// refused, never answered out of order.
#[test]
fn a_leader_answers_a_forwarded_read_after_the_write_it_names_and_never_after_a_later_one() {
    let (mut nodes, l, now) = group_of_three();
    let f = if l == 0 { 2 } else { 1 }; // a follower's id
    let mut session = ClientSession::new(f);
    let write = session.command(set("k", "1"), true, || 1);
    let read = session.command(get("k"), false, || 1);
    let later = session.command(set("k", "2"), true, || 1);
    let frame = |id: u64, c: &Command, log: bool| {
        if log {
            PeerFrame::Forward { id, command: c.encode() }
        } else {
            PeerFrame::ForwardRead { id, command: c.encode() }
        }
    };
    // The read before its write: it waits for it.
    nodes[l].on_peer_frame(now, f, frame(10, &read, false));
    let out = drain(&mut nodes[l]);
    assert!(out.messages.iter().all(|(to, _)| *to != f), "no answer yet: {:?}", out.messages);
    // The write: the read is answered after it, seeing it.
    nodes[l].on_peer_frame(now, f, frame(11, &write, true));
    let answers = deliver_all(&mut nodes, now);
    let bulk_1 = Reply::Bulk(Bytes::from_static(b"1")).encode();
    assert!(answers.contains(&(f, PeerFrame::ForwardReply { id: 10, reply: bulk_1.clone() })), "{answers:?}");
    assert_eq!(nodes[l].status().reads_served, 1, "served as a read, not through the log");
    // A retry of the read now that its write ran: served as a read.
    nodes[l].on_peer_frame(now, f, frame(12, &read, false));
    let answers = deliver_all(&mut nodes, now);
    assert!(answers.contains(&(f, PeerFrame::ForwardReply { id: 12, reply: bulk_1 })), "{answers:?}");
    assert_eq!(nodes[l].status().reads_served, 2, "served as a read, not through the log");
    // A later write runs; a retry of the read arriving after it is refused.
    nodes[l].on_peer_frame(now, f, frame(13, &later, true));
    deliver_all(&mut nodes, now);
    nodes[l].on_peer_frame(now, f, frame(14, &read, false));
    let answers = deliver_all(&mut nodes, now);
    let refused = Reply::Error(crate::kv::ERROR_READ_OVERTAKEN.into()).encode();
    assert!(answers.contains(&(f, PeerFrame::ForwardReply { id: 14, reply: refused })), "{answers:?}");
}

/// Found with loadgen (stop 46: 1.6% of its GETs refused at 10,000 ops/s,
/// half reads): a read arriving while the write before it on its
/// connection, and a later slot, are chosen but not yet applied must see
/// every slot chosen when it arrived, the later one too. It is answered
/// once those are applied, not refused as if its write had run too early.
#[test]
fn a_read_behind_a_chosen_but_unapplied_write_of_its_connection_is_answered() {
    let (mut nodes, l, now) = group_of_three();
    let mut session = ClientSession::new(l as NodeId + 1);
    let mut other = ClientSession::new(l as NodeId + 1);
    let write = session.command(set("k", "v"), true, || 1);
    let read = session.command(get("k"), false, || 1);
    let other_write = other.command(set("j", "w"), true, || 2);
    nodes[l].submit(now, Request::new(write, Waiter::Client(7), now + 1_000_000));
    let mut out = drain(&mut nodes[l]);
    nodes[l].on_synced(now, out.appends.last().expect("the leader writes its Accept").token);
    nodes[l].submit(now, Request::new(other_write, Waiter::Client(9), now + 1_000_000));
    let second = drain(&mut nodes[l]);
    nodes[l].on_synced(now, second.appends.last().expect("the leader writes its Accept").token);
    out.messages.extend(second.messages);
    // The followers accept both slots; their Accepteds reach the leader,
    // which does not run its ready work yet (as when a read arrives in
    // the same batch of input).
    let from = l as NodeId + 1;
    for (to, frame) in out.messages {
        nodes[to as usize - 1].on_peer_frame(now, from, frame);
    }
    for f in (0..3).filter(|&f| f != l) {
        let out = drain(&mut nodes[f]);
        if let Some(last) = out.appends.last() {
            nodes[f].on_synced(now, last.token);
        }
        for (to, frame) in drain(&mut nodes[f]).messages.into_iter().chain(out.messages) {
            if to as usize - 1 == l {
                nodes[l].on_peer_frame(now, f as NodeId + 1, frame);
            }
        }
    }
    let index = nodes[l].replica().read_index().expect("leads");
    assert!(index >= nodes[l].status().applied + 2, "two slots chosen, not applied: {index}");
    nodes[l].submit(now, Request::new(read, Waiter::Client(8), now + 1_000_000));
    let replies = settle(&mut nodes[l], now);
    let v = Reply::Bulk(Bytes::from_static(b"v"));
    assert_eq!(replies, vec![(7, Reply::Ok), (9, Reply::Ok), (8, v)]);
}

/// Found by the simulator (seed 802 of the every-fault mix with
/// `--pipeline 4`, once the pipeline order above moved its schedule): a
/// follower restarted while a leader still held forwards it had sent, and
/// numbered its new forwards from 0 again; the leader's late answers to
/// the old ones, by id, reached clients of the new ones (a SET answered
/// `(integer) 1`). Each boot now numbers its forwards from its own point.
#[test]
fn a_restarted_node_does_not_reuse_the_forward_ids_of_its_last_boot() {
    let ids = |seed: u64| {
        let mut n: Node<Client> =
            Node::boot(NodeConfig::new(2, vec![1, 2, 3]), Config::new(vec![1, 2, 3]), seed, Boot::New).expect("valid");
        let heartbeat = PeerFrame::Paxos(Message::Heartbeat(Heartbeat {
            ballot: Ballot::new(1, 1),
            commit: 0,
            round: 1,
            horizon: 0,
        }));
        n.on_link_up(1);
        n.on_peer_frame(1_000, 1, heartbeat);
        settle(&mut n, 1_000);
        let mut session = ClientSession::new(2);
        for client in 0..3 {
            let command = session.command(set("k", "v"), true, || 1);
            n.submit(2_000, Request::new(command, Waiter::Client(client), 1_000_000));
        }
        forwards_sent(&drain(&mut n)).into_iter().map(|(_, id, _)| id).collect::<Vec<u64>>()
    };
    let (first, second) = (ids(7), ids(8));
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|id| !second.contains(id)), "{first:?} {second:?}");
}

/// Found in review (stop 44): a command parked (behind another client's)
/// while an earlier write of its connection was held went out before that
/// write once the read holding it was answered. A follower holds no write
/// behind a forwarded read any more; with the read window full, the
/// connection's later read still leaves after its write, in arrival
/// order, naming it.
#[test]
fn a_read_parked_for_the_window_leaves_in_arrival_order_naming_the_write_before_it() {
    let sent = |out: &Output<Client>| -> Vec<(bool, Command)> {
        forwards_sent(out).into_iter().map(|(log, _, command)| (log, command)).collect()
    };
    let mut n = follower_of_node_1(|c| c.forward_read_window = 1);
    let (mut a, mut b) = (ClientSession::new(2), ClientSession::new(2));
    let read = a.command(get("k"), false, || 1);
    let write = a.command(set("k", "1"), true, || 1);
    let other = b.command(get("x"), false, || 2);
    let read_after = a.command(get("k"), false, || 1);
    for (client, command) in [read.clone(), write.clone(), other.clone(), read_after.clone()].into_iter().enumerate() {
        n.submit(2_000, Request::new(command, Waiter::Client(client as Client), 1_000_000));
    }
    let first = drain(&mut n);
    let seqs = |out: &Output<Client>| -> Vec<(bool, SessionId, u64)> {
        sent(out).iter().map(|(log, c)| (*log, c.session, c.seq)).collect()
    };
    let expected = vec![(false, read.session, read.seq), (true, write.session, write.seq)];
    assert_eq!(seqs(&first), expected, "the first read (the window holds one), and the write");
    let read_id = |out: &Output<Client>| {
        out.messages
            .iter()
            .find_map(|(_, f)| match f {
                PeerFrame::ForwardRead { id, .. } => Some(*id),
                _ => None,
            })
            .expect("forwarded")
    };
    let id = read_id(&first);
    n.on_peer_frame(3_000, 1, PeerFrame::ForwardReply { id, reply: Reply::Nil.encode() });
    let out = drain(&mut n);
    let expected = vec![(false, other.session, other.seq)];
    assert_eq!(seqs(&out), expected, "in arrival order (the last read waits for the window)");
    let id = read_id(&out);
    n.on_peer_frame(4_000, 1, PeerFrame::ForwardReply { id, reply: Reply::Nil.encode() });
    let last = sent(&drain(&mut n));
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(!last[0].0 && last[0].1.seq == read_after.seq, "as a read: {last:?}");
    assert_eq!(last[0].1.prev, write.seq, "naming the write before it");
}

/// A lone leader with a client's write (SET k 1, waiter 1) appended and
/// not yet synced. Returns the node, the time, the session, the write's
/// seq and the append's sync token.
fn leader_with_a_waiting_write() -> (Node<Client>, u64, ClientSession, u64, u64) {
    let (mut n, now) = leader_alone(|_| {});
    let mut session = ClientSession::new(1);
    let write = session.command(set("k", "1"), true, || 1);
    let write_seq = write.seq;
    n.submit(now, Request::new(write, Waiter::Client(1), now + 1_000_000));
    let token = drain(&mut n).appends[0].token;
    (n, now, session, write_seq, token)
}

/// The write was forwarded and its entry node's deadline came first: the
/// entry answered it (outcome unknown) while the leader still has it.
fn entry_timed_out(session: &mut ClientSession, seq: u64) {
    session.answered(seq, &Reply::Error("ERR request timed out; its outcome is unknown".into()));
}

/// A read owes no order to a write its client has settled: one it was
/// answered for (or gave up on, its outcome unknown), which its `ack`
/// says. Holding it there made it wait for as long as the write did; in
/// the simulator (seed 788 of the every-fault sweep, before clients
/// learned that a dead node refuses them), 1.8 s behind a write that
/// waited in the store for a command lost with a crash.
#[test]
fn a_read_does_not_wait_for_a_write_its_client_gave_up_on() {
    let (mut n, now, mut session, write_seq, token) = leader_with_a_waiting_write();
    entry_timed_out(&mut session, write_seq);
    let read = session.command(get("k"), false, || 1);
    assert!(read.ack > write_seq, "the read says the write is settled");
    n.submit(now, Request::new(read, Waiter::Client(2), now + 1_000_000));
    let out = drain(&mut n);
    assert_eq!(out.replies, vec![(2, Reply::Nil)], "answered at once, before the write");
    n.on_synced(now, token);
    assert_eq!(settle(&mut n, now), vec![(1, Reply::Ok)]);
}

/// ... but a read still comes after an earlier read of its session that
/// waits for that write, so that reads take effect in the order sent.
#[test]
fn a_read_does_not_overtake_an_earlier_held_read() {
    let (mut n, now, mut session, write_seq, token) = leader_with_a_waiting_write();
    let first_read = session.command(get("k"), false, || 1);
    n.submit(now, Request::new(first_read, Waiter::Client(2), now + 1_000_000));
    entry_timed_out(&mut session, write_seq);
    let second_read = session.command(get("k"), false, || 1);
    n.submit(now, Request::new(second_read, Waiter::Client(3), now + 1_000_000));
    assert!(drain(&mut n).replies.is_empty(), "the first read waits for the write, the second for the first");
    n.on_synced(now, token);
    let one = Reply::Bulk(Bytes::from_static(b"1"));
    assert_eq!(settle(&mut n, now), vec![(1, Reply::Ok), (2, one.clone()), (3, one)]);
}
