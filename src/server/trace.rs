//! A live shard's protocol trace (`[trace]` in the cluster file, `server
//! --trace-dir`): the node tracer's events (`trace::NodeTracer`: roles,
//! ballots, elections, leases and grants, commit progress, peer links, the
//! same translation the simulator uses) and a sample of peer messages,
//! stamped with the wall clock in µs, in a rotating file. Lease renewals and
//! commit progress are coalesced (a node renews on every heartbeat and
//! commits thousands of slots a second). The file is buffered and flushed
//! every 200 ms, and at once after a role change, an election, a step-down
//! or a peer link change, so a node killed right after one still shows it.
//! A write error turns tracing off with one log line: tracing never stops
//! the node.

use bytes::BytesMut;

use super::config::{ClusterFile, TraceSettings};
use crate::net::peer::PeerFrame;
use crate::node::NodeEvent;
use crate::paxos::{NodeId, Replica};
use crate::server_log;
use crate::trace::{
    frame_id, frame_send, Clock, Event, Header, NodeTraceConfig, NodeTracer, RotatingTraceFile, Source,
};

/// How often the buffered file is flushed (µs), so `viz` sees recent events.
const FLUSH_EVERY_US: u64 = 200_000;

pub struct ShardTrace {
    file: RotatingTraceFile,
    tracer: NodeTracer,
    node: NodeId,
    shard: usize,
    messages_every: u64,
    scratch: BytesMut,
    /// Wall-clock µs at node-local time 0.
    wall_start_us: u64,
    failed: bool,
    flushed_at_us: u64,
    /// An event was written that must reach the file now (`urgent`).
    urgent_pending: bool,
}

impl ShardTrace {
    /// Start node `node`'s trace of shard `shard`; `wall_start_us` is the
    /// wall clock at the shard's local time 0. `restarted`: the shard
    /// recovered earlier state (traced as a restart).
    pub fn open(
        settings: &TraceSettings,
        file: &ClusterFile,
        node: NodeId,
        shard: usize,
        wall_start_us: u64,
        restarted: bool,
    ) -> Result<ShardTrace, String> {
        std::fs::create_dir_all(&settings.dir)
            .map_err(|e| format!("creating trace directory {}: {e}", settings.dir.display()))?;
        let mut header = Header::new(Source::Node, Clock::Wall, file.nodes.iter().map(|n| n.id).collect());
        header.node = Some(node);
        header.shard = Some(shard as u32);
        header.command = Some(std::env::args().collect::<Vec<_>>().join(" "));
        let path = settings.path(node, shard);
        let trace_file = RotatingTraceFile::create(&path, header, settings.bytes_max, settings.files_max)
            .map_err(|e| format!("creating trace file {}: {e}", path.display()))?;
        let tick_us = file.tuning.tick_ms * 1000;
        let config = NodeTraceConfig { tick_us, commit_interval_us: 10_000, lease_step_us: 50_000, chosen: false };
        let mut trace = ShardTrace {
            file: trace_file,
            tracer: NodeTracer::new(node, config),
            node,
            shard,
            messages_every: settings.messages_every,
            scratch: BytesMut::new(),
            wall_start_us,
            failed: false,
            flushed_at_us: 0,
            urgent_pending: false,
        };
        if restarted {
            trace.emit(wall_start_us, Event::Restart { node });
        }
        Ok(trace)
    }

    fn emit(&mut self, t_us: u64, event: Event) {
        self.urgent_pending |= urgent(&event);
        write(&mut self.file, &mut self.failed, (self.node, self.shard), t_us, event);
    }

    /// One drain's events and the replica's state after it, at local time `now_us`.
    pub fn on_output(&mut self, now_us: u64, events: &[NodeEvent], replica: &Replica) {
        let ShardTrace { file, tracer, failed, wall_start_us, node, shard, urgent_pending, .. } = self;
        let (start, who) = (*wall_start_us, (*node, *shard));
        tracer.on_output(
            start + now_us,
            events,
            replica,
            |local| start + local,
            |t, e| {
                *urgent_pending |= urgent(&e);
                write(file, failed, who, t, e)
            },
        );
        self.flush_if_due(now_us);
    }

    /// Whether this frame is in the message sample (both ends agree).
    fn sampled(&mut self, frame: &PeerFrame) -> Option<u64> {
        if self.messages_every == 0 || self.failed {
            return None;
        }
        let id = frame_id(frame, &mut self.scratch);
        id.is_multiple_of(self.messages_every).then_some(id)
    }

    pub fn on_send(&mut self, now_us: u64, to: NodeId, frame: &PeerFrame) {
        if let Some(id) = self.sampled(frame) {
            let send = frame_send(id, self.node, to, frame);
            self.emit(self.wall_start_us + now_us, Event::Send(send));
        }
    }

    pub fn on_deliver(&mut self, now_us: u64, from: NodeId, frame: &PeerFrame) {
        if let Some(id) = self.sampled(frame) {
            self.emit(self.wall_start_us + now_us, Event::Deliver { id, from, to: self.node });
        }
    }

    pub fn on_link(&mut self, now_us: u64, peer: NodeId, up: bool) {
        let ShardTrace { file, tracer, failed, wall_start_us, node, shard, urgent_pending, .. } = self;
        let who = (*node, *shard);
        tracer.on_link(*wall_start_us + now_us, peer, up, |t, e| {
            *urgent_pending |= urgent(&e);
            write(file, failed, who, t, e)
        });
        self.flush_if_due(now_us);
    }

    /// Flush every [`FLUSH_EVERY_US`], or now after an urgent event
    /// (called on every drain, so on every tick).
    fn flush_if_due(&mut self, now_us: u64) {
        if self.failed || (!self.urgent_pending && now_us < self.flushed_at_us + FLUSH_EVERY_US) {
            return;
        }
        self.flushed_at_us = now_us;
        self.urgent_pending = false;
        if let Err(e) = self.file.flush() {
            self.failed = true;
            server_log!(self.node, self.shard, "protocol trace off: writing it failed: {e}");
        }
    }
}

/// Events that reach the file at once: the story of a failover.
fn urgent(event: &Event) -> bool {
    matches!(
        event,
        Event::Role { .. }
            | Event::Election { .. }
            | Event::StepDown { .. }
            | Event::PeerUp { .. }
            | Event::PeerDown { .. }
            | Event::Restart { .. }
            | Event::Recovery { .. }
    )
}

fn write(file: &mut RotatingTraceFile, failed: &mut bool, (node, shard): (NodeId, usize), t_us: u64, event: Event) {
    if *failed {
        return;
    }
    if let Err(e) = file.write(t_us, event) {
        *failed = true;
        server_log!(node, shard, "protocol trace off: writing it failed: {e}");
    }
}
