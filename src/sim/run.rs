//! One simulated run, in two phases (TigerBeetle's VOPR): a safety phase
//! with every enabled fault drawn from the seed, then a liveness phase with
//! the faults healed, which must converge. Checkers run throughout.
//!
//! Besides the faults, the seed draws the knobs that decide whether a bug
//! can show at all (`Drawn`): clock rates at the ends of the drift bound,
//! fsync latency, election timeouts close to the lease, the clients'
//! pipeline depth, session-table pressure. A sweep over seeds thereby
//! covers the corners a single setting would miss; a knob set on the
//! command line is kept as given.

use std::ops::RangeInclusive;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

use super::checker::Violation;
use super::client::{outcome, Outcome};
use super::cluster::{Cluster, EventKind, FaultCounts, LeaderChange, ReadMode, SimConfig};
use super::linearizability::RegisterInput;
use super::trace::Tracer;
use crate::paxos::NodeId;
use crate::rng::Rng;

/// The faults of the safety phase (network loss/duplication/delay are in
/// `SimConfig::network`, torn writes and lost disks in `SimConfig::disk_faults`).
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// Length of the safety phase.
    pub duration_ms: u64,
    pub partitions: bool,
    pub crashes: bool,
    /// Executor stalls of up to `stall_max_ms`.
    pub stalls: bool,
    pub stall_max_ms: u64,
    /// Mean time between fault injections.
    pub fault_interval_ms: u64,
    /// After healing, every client must finish and replicas converge within this.
    pub liveness_ms: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            duration_ms: 3_000,
            partitions: false,
            crashes: false,
            stalls: false,
            stall_max_ms: 300,
            fault_interval_ms: 400,
            liveness_ms: 10_000,
        }
    }
}

/// Which knobs each seed draws (the rest stay as configured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    /// fsync latency and its jitter, snapshot serialization time.
    pub disk: bool,
    /// Clocks at the ends of the drift bound (or uniform within it).
    pub drift: bool,
    /// Election timeouts (sometimes just above the lease).
    pub timeouts: bool,
    /// Client pipeline depth.
    pub pipeline: bool,
    /// A tight session table with reconnecting clients.
    pub sessions: bool,
    /// Wall-clock offsets between nodes (0, 20 ms, 400 ms or 5 s).
    pub clocks: bool,
    /// Sometimes a backpressure bound small enough that nodes hold
    /// requests and entries, and drop entries over it.
    pub backpressure: bool,
    /// Sometimes a hand-over threshold short enough that leaders on a slow
    /// disk hand leadership over (`NodeConfig::hand_over_after_us`).
    pub hand_over: bool,
}

impl Drawn {
    pub const ALL: Drawn = Drawn {
        disk: true,
        drift: true,
        timeouts: true,
        pipeline: true,
        sessions: true,
        clocks: true,
        backpressure: true,
        hand_over: true,
    };
    pub const NONE: Drawn = Drawn {
        disk: false,
        drift: false,
        timeouts: false,
        pipeline: false,
        sessions: false,
        clocks: false,
        backpressure: false,
        hand_over: false,
    };
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub sim: SimConfig,
    pub faults: FaultPlan,
    pub draw: Drawn,
}

#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub seed: u64,
    pub committed_slots: u64,
    pub committed_commands: usize,
    pub ops_invoked: usize,
    pub ops_completed: usize,
    pub leader_changes: Vec<LeaderChange>,
    pub faults: FaultCounts,
    pub recoveries: u64,
    /// Reads that found their node's forward read window full and waited.
    pub forward_read_waits: u64,
    /// Times a node began holding client requests, its disk behind.
    pub backpressure_holds: u64,
    /// Entry-bearing peer frames nodes dropped, the ones they held over
    /// their backpressure bound.
    pub peer_frames_dropped: u64,
    /// Leaders that handed leadership over, their disk slow to sync.
    pub hand_overs: u64,
    pub messages_delivered: u64,
    pub violations: Vec<Violation>,
    /// Keys whose linearizability search ran out of budget (neither verdict).
    pub unknown_keys: usize,
    pub sim_time_us: u64,
}

/// Run every seed in `seeds` on `threads` worker threads. Each run is
/// independent and deterministic, so the reports (returned in seed order)
/// do not depend on the thread count.
pub fn run_seeds(options: &RunOptions, seeds: RangeInclusive<u64>, threads: usize) -> Vec<RunReport> {
    let next = AtomicU64::new(*seeds.start());
    let last = *seeds.end();
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, AtomicOrdering::Relaxed);
                if seed > last {
                    break;
                }
                let report = run_seed(options, seed, Tracer::default());
                reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    reports
}

/// Run one seed. Never panics: an assertion inside the run becomes a
/// `Violation::Panic` in the report.
pub fn run_seed(options: &RunOptions, seed: u64, tracer: Tracer) -> RunReport {
    let result = panic::catch_unwind(AssertUnwindSafe(|| run_seed_inner(options, seed, tracer)));
    match result {
        Ok(report) => report,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            RunReport { seed, violations: vec![Violation::Panic { message }], ..RunReport::default() }
        }
    }
}

/// The configuration seed `seed` runs with: the drawn knobs filled in.
pub fn resolve(options: &RunOptions, seed: u64) -> SimConfig {
    let mut sim = options.sim.clone();
    let mut rng = Rng::new(seed ^ 0x0C0F_FEE5);
    let draw = options.draw;
    if draw.disk {
        sim.fsync_us = [50, 200, 1_000, 3_000][rng.below(4) as usize];
        sim.fsync_jitter = rng.unit() * 2.0;
        sim.snapshot_us = rng.below(3) * 2_000;
        if rng.chance(0.3) {
            // One slow disk: its node's votes lag the others'.
            let slow = rng.below(u64::from(sim.replicas)) as usize;
            sim.fsync_factors =
                (0..sim.replicas as usize).map(|i| if i == slow { 5 + rng.below(16) } else { 1 }).collect();
        }
    }
    if draw.drift {
        sim.drift_permille = [20, 50, 100, 200][rng.below(4) as usize];
        sim.drift_extremes = rng.chance(0.5);
    }
    if draw.clocks {
        // Its own generator: the other draws stay as they were.
        let mut clock_rng = Rng::new(seed ^ 0xC10C_0FF5);
        sim.clock_offset_ms = [0, 20, 400, 5_000][clock_rng.below(4) as usize];
    }
    if draw.backpressure {
        // Its own generator too. Sim commands are tens of bytes: these
        // bounds are a hundred or more of them. A node takes about a
        // bound's worth of entries per fsync, so with a small bound a node
        // whose disk is 5-20 times slower than the others falls behind the
        // load, and catches up only after it: at 4 KiB, seed 375 of the
        // read-index sweep took over the liveness checker's 10 s (stop 53's
        // build and this one alike); one under an Accept's size never lets
        // it catch up (256 bytes, stop 53). The latency checker excuses
        // what a node's backpressure delays (`check_latency`).
        let mut backpressure_rng = Rng::new(seed ^ 0xBAC4_9E55);
        if backpressure_rng.chance(0.3) {
            sim.unsynced_bytes_max = [8_192, 16_384][backpressure_rng.below(2) as usize];
        }
    }
    if draw.hand_over {
        // Its own generator too. A slow disk's fsync (up to 60 ms drawn
        // above) leaves its node behind the bound for that long at a time:
        // these thresholds make its leader hand over, and nodes behind
        // decline to campaign, in a share of the seeds.
        let mut hand_over_rng = Rng::new(seed ^ 0x4A4D_0FE2);
        if hand_over_rng.chance(0.3) {
            sim.hand_over_after_us = [5_000, 20_000][hand_over_rng.below(2) as usize];
        }
    }
    if draw.timeouts && rng.chance(0.5) {
        // Just above the lease: leases must hold at their tightest.
        let min = sim.paxos_config().lease_ticks + 1 + rng.below(10);
        sim.election_timeout_ticks = Some((min, min + rng.below(20)));
    }
    if draw.pipeline {
        sim.pipeline = 1 + rng.below(4) as usize;
    }
    if draw.sessions && rng.chance(0.3) {
        sim.sessions_max = sim.clients.max(2);
        sim.churn = 0.05 + rng.unit() * 0.2;
    }
    sim
}

fn run_seed_inner(options: &RunOptions, seed: u64, tracer: Tracer) -> RunReport {
    let mut cluster = Cluster::new(resolve(options, seed), seed);
    cluster.tracer = tracer;
    plan_faults(&mut cluster, &options.faults, seed);
    cluster.start_clients();

    // Safety phase.
    cluster.run_until_us(options.faults.duration_ms * 1000);

    cluster.heal_and_check_liveness(options.faults.liveness_ms);
    cluster.settle_history();
    let history = std::mem::take(&mut cluster.history);
    cluster.checker.check_history(&history);
    cluster.trace_new_violations();
    if let Err(e) = cluster.tracer.flush() {
        eprintln!("warning: trace output failed: {e}");
    }
    RunReport {
        seed,
        committed_slots: cluster.checker.committed_slots(),
        committed_commands: cluster.checker.committed_commands(),
        ops_invoked: history.ops.len(),
        ops_completed: history.completed(),
        leader_changes: cluster.leader_changes.clone(),
        faults: cluster.faults,
        recoveries: cluster.recoveries,
        forward_read_waits: cluster.forward_read_waits,
        backpressure_holds: cluster.backpressure_holds,
        peer_frames_dropped: cluster.peer_frames_dropped,
        hand_overs: cluster.hand_overs,
        messages_delivered: cluster.messages_delivered,
        violations: std::mem::take(&mut cluster.checker.violations),
        unknown_keys: cluster.checker.unknown_keys.len(),
        sim_time_us: cluster.now_us,
    }
}

/// Settling time after the heal before the latency checker applies: every
/// node restarted, rejoined and caught up, a leader stable.
const SETTLE_MS: u64 = 1_500;

impl Cluster {
    /// The liveness phase: heal every fault, let clients finish their
    /// operations and replicas converge within `bound_ms`; record a
    /// violation if they do not, and compare the replicas' stores. In the
    /// quiet stretch after settling, the latency checker holds every
    /// request to a bound derived from the (now capped) delays.
    pub fn heal_and_check_liveness(&mut self, bound_ms: u64) {
        self.faults_over = true;
        self.heal();
        self.calm_network();
        for node in self.config.members() {
            self.restart(node);
        }
        self.run_for_ms(SETTLE_MS.min(bound_ms));
        self.quiet_since_us = Some(self.now_us);
        self.run_for_ms(SETTLE_MS.min(bound_ms));
        self.stop_clients();
        if !self.run_until(bound_ms, |c| c.pending_clients().is_empty()) {
            let detail = format!(
                "{} clients still wait {bound_ms} ms after the faults healed (clients {:?}); nodes: {}",
                self.pending_clients().len(),
                self.pending_clients(),
                self.node_summaries()
            );
            self.checker.violations.push(Violation::Liveness { detail });
        }
        let converged = self.run_until(bound_ms, |c| {
            let end = c.checker.committed_end;
            c.config.members().into_iter().all(|n| {
                c.replica(n).is_some_and(|r| r.commit_index() == end && !r.is_recovering()) && c.applied(n) == end
            })
        });
        if !converged {
            let detail = format!(
                "replicas did not converge on commit index {} within {bound_ms} ms: {}",
                self.checker.committed_end,
                self.node_summaries()
            );
            self.checker.violations.push(Violation::Liveness { detail });
            return;
        }
        // Replicas that applied the same log must hold the same store.
        let digests: Vec<(NodeId, u64)> =
            self.config.members().into_iter().map(|n| (n, self.kv(n).map_or(0, |kv| kv.digest()))).collect();
        if digests.windows(2).any(|w| w[0].1 != w[1].1) {
            let detail = format!("store digests differ at equal commit index: {digests:x?}");
            self.checker.violations.push(Violation::Divergence { detail });
        }
    }

    /// Settle what clients could not know, from what the stores did: an
    /// operation whose client was told "outcome unknown" (or heard nothing)
    /// took effect when its command first ran in a store, with that reply,
    /// or never if it never ran (the replicas converged on the whole log
    /// first). Sound: that is when, and how, it took effect; and it keeps
    /// the linearizability search free of operations that could fall
    /// anywhere, which make it explode. Also checks that an operation
    /// reported "not applied" never ran, and that every answer a client
    /// got is the reply its command produced when it ran.
    pub fn settle_history(&mut self) {
        for index in 0..self.history.ops.len() {
            let recorded = &self.history.ops[index];
            let ran = self.executions.get(&(recorded.session, recorded.seq)).cloned();
            let (input, key, told_not_applied) = (recorded.op.input, recorded.key, recorded.not_applied);
            let read_times = self.read_times.get(&(recorded.session, recorded.seq));
            let at = match (&ran, read_times.map(Vec::as_slice)) {
                (Some((_, _, at_ms)), _) => Some(*at_ms),
                (None, Some(&[at_ms])) => Some(at_ms),
                _ => None,
            };
            let output = recorded.op.output;
            self.history.ops[index].at = at;
            match (ran, output) {
                (Some((at, reply, _)), _) if told_not_applied => {
                    let detail =
                        format!("{input:?} on k{key} was reported not applied, but it ran at {at} us: {reply:?}");
                    self.checker.violations.push(Violation::BadReply { detail });
                }
                (Some((at, reply, _)), None) => match outcome(key, input, &reply) {
                    Outcome::Done(output) => self.history.complete(index, output, at),
                    _ => self.history.not_applied(index),
                },
                (Some((_, reply, _)), Some(output)) => {
                    if outcome(key, input, &reply) != Outcome::Done(output) {
                        let detail =
                            format!("{input:?} on k{key}: the client got {output:?}, but it ran with {reply:?}");
                        self.checker.violations.push(Violation::BadReply { detail });
                    }
                }
                (None, output) if input != RegisterInput::Get || self.config.read_mode == ReadMode::Log => {
                    if let Some(output) = output {
                        let detail = format!("{input:?} on k{key} was answered {output:?} but never ran");
                        self.checker.violations.push(Violation::BadReply { detail });
                    }
                    self.history.not_applied(index)
                }
                (None, _) => {}
            }
        }
    }

    /// Heal, check liveness, then check the whole history; all violations so far.
    pub fn finish(&mut self, bound_ms: u64) -> Vec<Violation> {
        self.heal_and_check_liveness(bound_ms);
        self.settle_history();
        let history = std::mem::take(&mut self.history);
        self.checker.check_history(&history);
        self.history = history;
        self.checker.violations.clone()
    }
}

/// Draw the times of the safety phase's faults from the seed; what each
/// one is, and whom it hits, is decided when it happens (`faults.rs`).
fn plan_faults(cluster: &mut Cluster, plan: &FaultPlan, seed: u64) {
    cluster.fault_plan = plan.clone();
    // More lost disks than this at once lose data for real (recovery needs
    // a majority of intact peers); one run loses at most that many.
    cluster.disk_losses_left = cluster.config.members().len() - cluster.paxos_config.majority();
    if !(plan.partitions || plan.crashes || plan.stalls) {
        return;
    }
    let mut rng = Rng::new(seed ^ 0x7133_5EED);
    let end_us = plan.duration_ms * 1000;
    let mut t_us = 0u64;
    loop {
        let gap = (-(1.0 - rng.unit()).ln() * plan.fault_interval_ms as f64 * 1000.0) as u64;
        t_us += gap.max(1000);
        if t_us >= end_us {
            break;
        }
        cluster.schedule_fault(t_us, EventKind::Fault);
    }
}
