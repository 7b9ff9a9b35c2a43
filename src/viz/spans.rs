//! Turning start/stop events into intervals: [`Spans`] for per-lane states
//! (roles, leases, grants, stalls) and [`Partitions`] for the network's cuts.

use std::collections::BTreeSet;

use super::model::{PartitionSpan, Span};
use crate::paxos::NodeId;

/// The interval open on each lane, if any.
#[derive(Clone, Copy)]
struct Open {
    t0: u64,
    what: &'static str,
    ballot: Option<usize>,
    /// A lease's end, if nothing closes it earlier.
    until: Option<u64>,
}

pub(super) struct Spans {
    open: Vec<Option<Open>>,
    done: Vec<Span>,
}

impl Spans {
    pub(super) fn new(lanes: usize) -> Spans {
        Spans { open: vec![None; lanes], done: Vec::new() }
    }

    /// Start `what` on `lane` at `t`, ending whatever was open there.
    pub(super) fn open(&mut self, lane: usize, t: u64, what: &'static str, ballot: Option<usize>, until: Option<u64>) {
        self.close(lane, t);
        self.open[lane] = Some(Open { t0: t, what, ballot, until });
    }

    /// End what is open on `lane` at `t` (or at its `until`, if earlier).
    pub(super) fn close(&mut self, lane: usize, t: u64) {
        let Some(open) = self.open[lane].take() else { return };
        let t1 = open.until.map_or(t, |until| until.min(t));
        if t1 > open.t0 {
            self.done.push(Span { lane, t0: open.t0, t1, what: open.what, ballot: open.ballot });
        }
    }

    /// A lease (or grant) for `ballot` valid until `until`: extends the open
    /// one if it is for the same ballot and has not run out, else starts anew.
    pub(super) fn extend_or_open(&mut self, lane: usize, t: u64, what: &'static str, ballot: usize, until: u64) {
        if let Some(open) = &mut self.open[lane] {
            if open.ballot == Some(ballot) && open.until.is_some_and(|u| u >= t) {
                open.until = open.until.max(Some(until));
                return;
            }
        }
        self.open(lane, t, what, Some(ballot), Some(until));
    }

    /// Close what is open on lane `i` at `ends[i]`; the intervals by start time.
    pub(super) fn finish_lanes(mut self, ends: &[u64]) -> Vec<Span> {
        for (lane, &end) in ends.iter().enumerate() {
            self.close(lane, end);
        }
        self.done.sort_by_key(|s| (s.t0, s.lane));
        self.done
    }
}

/// The cut links over time. Cuts add up until a heal, as in the simulator's
/// network.
pub(super) struct Partitions<'a> {
    lanes: &'a [NodeId],
    /// Directed links `(from, to)` that drop everything.
    blocked: BTreeSet<(NodeId, NodeId)>,
    labels: Vec<String>,
    since: Option<u64>,
    done: Vec<PartitionSpan>,
}

impl Partitions<'_> {
    pub(super) fn new(lanes: &[NodeId]) -> Partitions<'_> {
        Partitions { lanes, blocked: BTreeSet::new(), labels: Vec::new(), since: None, done: Vec::new() }
    }

    pub(super) fn cut(&mut self, t: u64, side_a: &[NodeId], side_b: &[NodeId], one_way: bool) {
        self.close(t);
        for &a in side_a {
            for &b in side_b {
                self.blocked.insert((a, b));
                if !one_way {
                    self.blocked.insert((b, a));
                }
            }
        }
        let between = if one_way { "→" } else { "|" };
        self.labels.push(format!("{} {between} {}", set_text(side_a), set_text(side_b)));
        self.since = Some(t);
    }

    pub(super) fn heal(&mut self, t: u64) {
        self.close(t);
        self.blocked.clear();
        self.labels.clear();
    }

    pub(super) fn finish(mut self, end: u64) -> Vec<PartitionSpan> {
        self.close(end);
        self.done
    }

    fn close(&mut self, t: u64) {
        let Some(t0) = self.since.take() else { return };
        if t > t0 {
            let groups = self.groups();
            self.done.push(PartitionSpan { t0, t1: t, label: self.labels.join("; "), groups });
        }
    }

    /// Per lane, a group number: lanes whose replicas reach each other both
    /// ways, directly or through others, share one. Numbered by first lane.
    fn groups(&self) -> Vec<usize> {
        let n = self.lanes.len();
        let mut group: Vec<Option<usize>> = vec![None; n];
        let mut next = 0;
        for start in 0..n {
            if group[start].is_some() {
                continue;
            }
            group[start] = Some(next);
            let mut stack = vec![start];
            while let Some(i) = stack.pop() {
                for (j, g) in group.iter_mut().enumerate() {
                    let (a, b) = (self.lanes[i], self.lanes[j]);
                    let linked = !self.blocked.contains(&(a, b)) && !self.blocked.contains(&(b, a));
                    if g.is_none() && linked {
                        *g = Some(next);
                        stack.push(j);
                    }
                }
            }
            next += 1;
        }
        group.into_iter().map(|g| g.expect("every lane visited")).collect()
    }
}

fn set_text(nodes: &[NodeId]) -> String {
    let ids: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    format!("{{{}}}", ids.join(","))
}
