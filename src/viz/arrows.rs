//! Messages as arrows: each send paired with its deliveries and drops.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::model::Index;
use crate::paxos::{NodeId, Slot};
use crate::trace::{DropReason, Event, MessageKind, Send, Trace};

/// A message arrow: one per delivery, per drop, or per send of unknown fate.
/// Written as an array in field order (the page indexes it): a run has many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    pub t_send: u64,
    /// The delivery or drop time (the send time when the fate is unknown).
    pub t_end: u64,
    pub from: usize,
    pub to: usize,
    /// Index into `Model::kinds`.
    pub kind: usize,
    /// [`DELIVERED`], [`DROPPED`] or [`UNKNOWN`].
    pub fate: u8,
    /// The message was delivered more than once.
    pub duplicated: bool,
    pub ballot: Option<usize>,
    pub slot: Option<Slot>,
    pub slots: u64,
    pub commands: u64,
    pub bytes: u64,
    pub digest: Option<String>,
    pub id: u64,
    pub drop_reason: Option<&'static str>,
}

impl Serialize for Arrow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(15)?;
        t.serialize_element(&self.t_send)?;
        t.serialize_element(&self.t_end)?;
        t.serialize_element(&self.from)?;
        t.serialize_element(&self.to)?;
        t.serialize_element(&self.kind)?;
        t.serialize_element(&self.fate)?;
        t.serialize_element(&self.duplicated)?;
        t.serialize_element(&self.ballot)?;
        t.serialize_element(&self.slot)?;
        t.serialize_element(&self.slots)?;
        t.serialize_element(&self.commands)?;
        t.serialize_element(&self.bytes)?;
        t.serialize_element(&self.digest)?;
        t.serialize_element(&self.id)?;
        t.serialize_element(&self.drop_reason)?;
        t.end()
    }
}

pub const DELIVERED: u8 = 0;
pub const DROPPED: u8 = 1;
pub const UNKNOWN: u8 = 2;

/// Pair each send with its deliveries and drops. Two passes, so a delivery
/// logged before its send (clock skew between hosts) still pairs.
pub(super) fn pair_messages(trace: &Trace, index: &Index) -> (Vec<Arrow>, usize) {
    // Hash maps for lookups only: their iteration order never shows.
    let mut sends = HashMap::new();
    let mut send_order = Vec::new();
    for r in &trace.records {
        if let Event::Send(s) = &r.event {
            sends.insert((s.from, s.to, s.id), (r.t_us, s));
            send_order.push((s.from, s.to, s.id));
        }
    }
    let mut arrows = Vec::new();
    let mut deliveries: HashMap<(NodeId, NodeId, u64), u32> = HashMap::new();
    let mut ended = HashSet::new();
    let mut unmatched = 0;
    for r in &trace.records {
        let (key, fate, reason) = match &r.event {
            Event::Deliver { id, from, to } => ((*from, *to, *id), DELIVERED, None),
            Event::Drop { id, from, to, reason } => ((*from, *to, *id), DROPPED, Some(drop_reason_name(*reason))),
            _ => continue,
        };
        let Some(&(t_send, s)) = sends.get(&key) else {
            unmatched += 1;
            continue;
        };
        if fate == DELIVERED {
            *deliveries.entry(key).or_default() += 1;
        }
        ended.insert(key);
        arrows.push(arrow(t_send, r.t_us, s, fate, reason, index));
    }
    for key in send_order {
        if !ended.contains(&key) {
            let (t_send, s) = sends[&key];
            arrows.push(arrow(t_send, t_send, s, UNKNOWN, None, index));
        }
    }
    for a in &mut arrows {
        a.duplicated = deliveries.get(&(index.node(a.from), index.node(a.to), a.id)).is_some_and(|&n| n > 1);
    }
    arrows.sort_by_key(|a| (a.t_send, a.t_end));
    (arrows, unmatched)
}

fn arrow(t_send: u64, t_end: u64, s: &Send, fate: u8, reason: Option<&'static str>, index: &Index) -> Arrow {
    let kind = MessageKind::ALL.iter().position(|k| *k == s.kind).expect("ALL lists every kind");
    Arrow {
        t_send,
        t_end,
        from: index.lane(s.from),
        to: index.lane(s.to),
        kind,
        fate,
        duplicated: false,
        ballot: s.ballot.map(|b| index.ballot(b)),
        slot: s.slot,
        slots: s.slots,
        commands: s.commands,
        bytes: s.bytes,
        digest: s.digest.clone(),
        id: s.id,
        drop_reason: reason,
    }
}

fn drop_reason_name(reason: DropReason) -> &'static str {
    use DropReason::*;
    match reason {
        Loss => "loss",
        Partition => "partition",
        LinkDown => "link_down",
        ReceiverDown => "receiver_down",
        QueueFull => "queue_full",
        Other => "other",
    }
}
