//! Merging several files of one run (a live cluster writes one per node,
//! and rotation splits each) into one time-ordered trace.

use super::reader::Trace;
use super::schema::Header;

/// Merge `traces` into one whose records are ordered by `t_us`. Records with
/// equal times keep their order: file order within a file, then the order
/// of `traces`. The traces must share clock, source and shard: times of a
/// simulated run and of a wall clock cannot be put on one axis.
///
/// On several hosts, wall clocks differ by their skew: a message whose
/// delivery is logged by a host behind the sender's shows up delivered
/// before it was sent (an arrow pointing back in time).
pub fn merge(traces: Vec<Trace>) -> Result<Trace, String> {
    let Some(first) = traces.first() else {
        return Err("no trace to merge".to_string());
    };
    let mut header = first.header.clone();
    for trace in &traces[1..] {
        let other = &trace.header;
        if other.clock != header.clock || other.source != header.source {
            return Err(format!(
                "cannot merge a {:?}-clock {:?} trace with a {:?}-clock {:?} trace",
                header.clock, header.source, other.clock, other.source
            ));
        }
        if other.shard != header.shard {
            return Err(format!("cannot merge traces of shard {:?} and shard {:?}", header.shard, other.shard));
        }
        merge_header(&mut header, other);
    }
    let mut records = Vec::with_capacity(traces.iter().map(|t| t.records.len()).sum());
    let (mut skipped_unknown, mut torn_tail) = (0, false);
    for trace in traces {
        skipped_unknown += trace.skipped_unknown;
        torn_tail |= trace.torn_tail;
        records.extend(trace.records);
    }
    records.sort_by_key(|r| r.t_us); // stable: ties keep their order
    Ok(Trace { header, records, skipped_unknown, torn_tail })
}

/// Fold `other` into `header`: the union of nodes; writer node, seed and
/// command kept only where all files agree.
fn merge_header(header: &mut Header, other: &Header) {
    header.nodes.extend(&other.nodes);
    header.nodes.sort_unstable();
    header.nodes.dedup();
    if header.node != other.node {
        header.node = None;
    }
    if header.seed != other.seed {
        header.seed = None;
    }
    if header.command != other.command {
        header.command = None;
    }
}
