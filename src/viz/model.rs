//! The view model: a trace digested into what the page draws (arrows with
//! both ends, role and lease intervals, op rows), embedded in the HTML as
//! JSON. Pairing and interval building live here, in tested Rust, so the
//! page's script only draws.

use std::collections::HashMap;

use serde::Serialize;

use super::arrows::pair_messages;
pub use super::arrows::{Arrow, DELIVERED, DROPPED, UNKNOWN};
use super::spans::{Partitions, Spans};
use crate::paxos::{Ballot, NodeId, Slot};
use crate::trace::{Clock, Event, MessageKind, Outcome, RoleName, Source, Trace};

/// What the page gets. Times are in the trace's clock (`t_us`); lanes are
/// indexes into `lanes`; ballots are indexes into `ballots`.
#[derive(Debug, Serialize)]
pub struct Model {
    pub title: String,
    pub source: Source,
    pub clock: Clock,
    pub seed: Option<u64>,
    pub command: Option<String>,
    pub t_min: u64,
    pub t_max: u64,
    /// Node ids, one lane each, ascending.
    pub lanes: Vec<NodeId>,
    /// Message kind names; `Arrow.4` indexes this.
    pub kinds: Vec<&'static str>,
    /// Every ballot seen, ascending, as "round.node".
    pub ballots: Vec<String>,
    /// One per delivery, drop, or send of unknown fate; by send time.
    pub arrows: Vec<Arrow>,
    /// Role intervals ("down" while crashed), leader leases, acceptor
    /// grants, stalls.
    pub roles: Vec<Span>,
    pub leases: Vec<Span>,
    pub grants: Vec<Span>,
    pub stalls: Vec<Span>,
    pub partitions: Vec<PartitionSpan>,
    /// (t, lane, slot, ballot, commands, digest), by time.
    pub chosen: Vec<(u64, usize, Slot, usize, u64, String)>,
    /// (t, lane, commit index), by time.
    pub commits: Vec<(u64, usize, Slot)>,
    pub marks: Vec<Mark>,
    pub ops: Vec<Op>,
    pub op_rows: usize,
    pub violations: Vec<Violation>,
    /// Deliveries and drops whose send is not in the trace (sampling).
    pub unmatched: usize,
}

/// An interval on one lane: a role, a lease, a grant or a stall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    pub lane: usize,
    pub t0: u64,
    pub t1: u64,
    /// The role name, "down", "lease", "grant" or "stall".
    pub what: &'static str,
    pub ballot: Option<usize>,
}

/// The network's cuts between two partition/heal events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionSpan {
    pub t0: u64,
    pub t1: u64,
    /// E.g. "{1,2} | {3,4,5}; {4} → {5}".
    pub label: String,
    /// Per lane: its group of replicas that still reach each other both ways.
    pub groups: Vec<usize>,
}

/// A point event on a lane (or on none: `lane` null).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub t: u64,
    pub lane: Option<usize>,
    /// crash, restart, election, step_down, disk_fault, peer_up, peer_down, recovery.
    pub what: &'static str,
    pub text: String,
}

/// A client operation as an interval in row `row` under the lanes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Op {
    pub op: u64,
    pub client: u64,
    pub lane: usize,
    pub t0: u64,
    /// None while it never completed.
    pub t1: Option<u64>,
    pub outcome: Option<Outcome>,
    pub command: String,
    pub output: Option<String>,
    pub row: usize,
    /// A checker named it in a violation.
    pub violation: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub t: u64,
    pub checker: String,
    pub message: String,
    pub ops: Vec<u64>,
    pub slot: Option<Slot>,
}

/// Digest a (time-ordered, e.g. merged) trace.
pub fn build(trace: &Trace, title: &str) -> Model {
    let records = &trace.records;
    let t_min = records.iter().map(|r| r.t_us).min().unwrap_or(0);
    let t_max = records.iter().map(|r| r.t_us).max().unwrap_or(0);
    let mut lanes = trace.header.nodes.clone();
    for r in records {
        for_each_node(&r.event, |node| lanes.push(node));
    }
    lanes.sort_unstable();
    lanes.dedup();
    let mut ballots: Vec<Ballot> = records.iter().filter_map(|r| event_ballot(&r.event)).collect();
    ballots.sort_unstable();
    ballots.dedup();
    let mut model = Model {
        title: title.to_string(),
        source: trace.header.source,
        clock: trace.header.clock,
        seed: trace.header.seed,
        command: trace.header.command.clone(),
        t_min,
        t_max,
        kinds: MessageKind::ALL.iter().map(|k| k.name()).collect(),
        ballots: ballots.iter().map(|b| b.to_string()).collect(),
        arrows: Vec::new(),
        roles: Vec::new(),
        leases: Vec::new(),
        grants: Vec::new(),
        stalls: Vec::new(),
        partitions: Vec::new(),
        chosen: Vec::new(),
        commits: Vec::new(),
        marks: Vec::new(),
        ops: Vec::new(),
        op_rows: 0,
        violations: Vec::new(),
        unmatched: 0,
        lanes,
    };
    let lanes = model.lanes.clone();
    let index = Index { lanes: &lanes, ballots: &ballots };
    let (arrows, unmatched) = pair_messages(trace, &index);
    model.arrows = arrows;
    model.unmatched = unmatched;
    intervals_and_marks(trace, &index, &mut model);
    (model.ops, model.op_rows) = client_ops(trace, &index, &model.violations);
    model
}

/// Lane and ballot lookups.
pub(super) struct Index<'a> {
    lanes: &'a [NodeId],
    ballots: &'a [Ballot],
}

impl Index<'_> {
    pub(super) fn lane(&self, node: NodeId) -> usize {
        self.lanes.binary_search(&node).expect("every node has a lane")
    }

    pub(super) fn ballot(&self, ballot: Ballot) -> usize {
        self.ballots.binary_search(&ballot).expect("every ballot is indexed")
    }

    pub(super) fn node(&self, lane: usize) -> NodeId {
        self.lanes[lane]
    }

    pub(super) fn lane_count(&self) -> usize {
        self.lanes.len()
    }
}

/// Roles, leases, grants, stalls, partitions, chosen slots, commits, point
/// marks and violations, in one pass over the time-ordered records.
fn intervals_and_marks(trace: &Trace, index: &Index, model: &mut Model) {
    let mut roles = Spans::new(index.lane_count());
    let mut leases = Spans::new(index.lane_count());
    let mut grants = Spans::new(index.lane_count());
    let mut stalls = Spans::new(index.lane_count());
    let mut partitions = Partitions::new(index.lanes);
    for r in &trace.records {
        let t = r.t_us;
        let mut mark = |lane: NodeId, what: &'static str, text: String| {
            model.marks.push(Mark { t, lane: Some(index.lane(lane)), what, text });
        };
        match &r.event {
            Event::Role { node, role, ballot } => {
                let lane = index.lane(*node);
                roles.open(lane, t, role_name(*role), ballot.map(|b| index.ballot(b)), None);
                if *role != RoleName::Leader {
                    leases.close(lane, t);
                }
            }
            Event::Election { node, ballot } => mark(*node, "election", format!("election {ballot}")),
            Event::StepDown { node, ballot, reason } => {
                leases.close(index.lane(*node), t);
                mark(*node, "step_down", format!("step down {ballot}: {reason}"));
            }
            Event::LeaseGrant { node, holder, until_us } => {
                grants.extend_or_open(index.lane(*node), t, "grant", index.ballot(*holder), *until_us)
            }
            Event::LeaseRelease { node, .. } => grants.close(index.lane(*node), t),
            Event::Lease { node, ballot, until_us } => {
                leases.extend_or_open(index.lane(*node), t, "lease", index.ballot(*ballot), *until_us)
            }
            Event::LeaseExpired { node, .. } => leases.close(index.lane(*node), t),
            Event::Chosen { node, slot, ballot, commands, digest } => {
                let entry = (t, index.lane(*node), *slot, index.ballot(*ballot), *commands, digest.clone());
                model.chosen.push(entry);
            }
            Event::Commit { node, index: commit } => model.commits.push((t, index.lane(*node), *commit)),
            Event::Violation { checker, message, ops, slot } => model.violations.push(Violation {
                t,
                checker: checker.clone(),
                message: message.clone(),
                ops: ops.clone(),
                slot: *slot,
            }),
            Event::Crash { node } => {
                let lane = index.lane(*node);
                roles.open(lane, t, "down", None, None);
                for spans in [&mut leases, &mut grants, &mut stalls] {
                    spans.close(lane, t);
                }
                mark(*node, "crash", "crash".to_string());
            }
            Event::Restart { node } => {
                roles.close(index.lane(*node), t);
                mark(*node, "restart", "restart".to_string());
            }
            Event::Partition { side_a, side_b, one_way } => partitions.cut(t, side_a, side_b, *one_way),
            Event::Heal {} => partitions.heal(t),
            Event::StallStart { node } => stalls.open(index.lane(*node), t, "stall", None, None),
            Event::StallEnd { node } => stalls.close(index.lane(*node), t),
            Event::DiskFault { node, detail } => mark(*node, "disk_fault", format!("disk fault: {detail}")),
            Event::PeerUp { node, peer } => mark(*node, "peer_up", format!("peer {peer} up")),
            Event::PeerDown { node, peer } => mark(*node, "peer_down", format!("peer {peer} down")),
            Event::Recovery { node, detail } => mark(*node, "recovery", format!("recovered: {detail}")),
            Event::Send(_)
            | Event::Deliver { .. }
            | Event::Drop { .. }
            | Event::Invoke { .. }
            | Event::Complete { .. } => {}
        }
    }
    // A live node writes its own file: a node killed (or whose file ends)
    // tells nothing more, so its role, lease and grant end with its last
    // record instead of running on to the end of the merged trace.
    let ends: Vec<u64> = match trace.header.source {
        Source::Node => {
            let mut last = vec![model.t_min; index.lane_count()];
            for r in &trace.records {
                if let Some(node) = writer(&r.event) {
                    let lane = index.lane(node);
                    last[lane] = last[lane].max(r.t_us);
                }
            }
            last
        }
        _ => vec![model.t_max; index.lane_count()],
    };
    model.roles = roles.finish_lanes(&ends);
    model.leases = leases.finish_lanes(&ends);
    model.grants = grants.finish_lanes(&ends);
    model.stalls = stalls.finish_lanes(&ends);
    model.partitions = partitions.finish(model.t_max);
}

fn role_name(role: RoleName) -> &'static str {
    match role {
        RoleName::Follower => "follower",
        RoleName::PreCandidate => "pre_candidate",
        RoleName::Candidate => "candidate",
        RoleName::Leader => "leader",
        RoleName::Recovering => "recovering",
        RoleName::Other => "other",
    }
}

/// Client operations, each placed in the first row free at its start (rows
/// fill greedily, so concurrent operations stack).
fn client_ops(trace: &Trace, index: &Index, violations: &[Violation]) -> (Vec<Op>, usize) {
    let mut ops: Vec<Op> = Vec::new();
    let mut by_id = HashMap::new(); // lookups only
    for r in &trace.records {
        match &r.event {
            Event::Invoke { op, client, node, command, .. } => {
                by_id.insert(*op, ops.len());
                ops.push(Op {
                    op: *op,
                    client: *client,
                    lane: index.lane(*node),
                    t0: r.t_us,
                    t1: None,
                    outcome: None,
                    command: command.clone(),
                    output: None,
                    row: 0,
                    violation: violations.iter().any(|v| v.ops.contains(op)),
                });
            }
            Event::Complete { op, outcome, output } => {
                if let Some(&i) = by_id.get(op) {
                    let o: &mut Op = &mut ops[i];
                    (o.t1, o.outcome, o.output) = (Some(r.t_us), Some(*outcome), output.clone());
                }
            }
            _ => {}
        }
    }
    ops.sort_by_key(|o| o.t0);
    let mut row_ends: Vec<u64> = Vec::new(); // per row: when its last op ends
    for o in &mut ops {
        let end = o.t1.unwrap_or(u64::MAX);
        match row_ends.iter().position(|&e| e < o.t0) {
            Some(row) => (o.row, row_ends[row]) = (row, end),
            None => {
                o.row = row_ends.len();
                row_ends.push(end);
            }
        }
    }
    (ops, row_ends.len())
}

/// Call `f` with every node id `event` names, so each gets a lane even if
/// the header left it out.
fn for_each_node(event: &Event, mut f: impl FnMut(NodeId)) {
    match event {
        Event::Send(s) => {
            f(s.from);
            f(s.to);
        }
        Event::Deliver { from, to, .. } | Event::Drop { from, to, .. } => {
            f(*from);
            f(*to);
        }
        Event::PeerUp { node, peer } | Event::PeerDown { node, peer } => {
            f(*node);
            f(*peer);
        }
        Event::Partition { side_a, side_b, .. } => {
            side_a.iter().chain(side_b).for_each(|&n| f(n));
        }
        Event::Role { node, .. }
        | Event::Election { node, .. }
        | Event::StepDown { node, .. }
        | Event::LeaseGrant { node, .. }
        | Event::LeaseRelease { node, .. }
        | Event::Lease { node, .. }
        | Event::LeaseExpired { node, .. }
        | Event::Chosen { node, .. }
        | Event::Commit { node, .. }
        | Event::Invoke { node, .. }
        | Event::Crash { node }
        | Event::Restart { node }
        | Event::StallStart { node }
        | Event::StallEnd { node }
        | Event::DiskFault { node, .. }
        | Event::Recovery { node, .. } => f(*node),
        Event::Complete { .. } | Event::Violation { .. } | Event::Heal {} => {}
    }
}

/// The node whose own trace file a live node's event comes from.
fn writer(event: &Event) -> Option<NodeId> {
    match event {
        Event::Send(s) => Some(s.from),
        Event::Deliver { to, .. } => Some(*to),
        Event::PeerUp { node, .. }
        | Event::PeerDown { node, .. }
        | Event::Role { node, .. }
        | Event::Election { node, .. }
        | Event::StepDown { node, .. }
        | Event::LeaseGrant { node, .. }
        | Event::LeaseRelease { node, .. }
        | Event::Lease { node, .. }
        | Event::LeaseExpired { node, .. }
        | Event::Chosen { node, .. }
        | Event::Commit { node, .. }
        | Event::Restart { node }
        | Event::Recovery { node, .. } => Some(*node),
        _ => None,
    }
}

/// The ballot an event names, if any.
fn event_ballot(event: &Event) -> Option<Ballot> {
    match event {
        Event::Send(s) => s.ballot,
        Event::Role { ballot, .. } => *ballot,
        Event::Election { ballot, .. }
        | Event::StepDown { ballot, .. }
        | Event::Lease { ballot, .. }
        | Event::LeaseExpired { ballot, .. }
        | Event::Chosen { ballot, .. } => Some(*ballot),
        Event::LeaseGrant { holder, .. } | Event::LeaseRelease { holder, .. } => Some(*holder),
        _ => None,
    }
}
