//! One simulated run, in two phases (TigerBeetle's VOPR): a safety phase
//! with every enabled fault drawn from the seed, then a liveness phase with
//! the faults healed, which must converge. Checkers run throughout.

use std::ops::RangeInclusive;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

use super::checker::Violation;
use super::cluster::{Cluster, EventKind, FaultCounts, LeaderChange, SimConfig};
use super::trace::Tracer;
use crate::paxos::NodeId;
use crate::rng::Rng;

/// The faults of the safety phase (network loss/duplication/delay are in
/// `SimConfig::network`).
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// Length of the safety phase.
    pub duration_ms: u64,
    pub partitions: bool,
    pub crashes: bool,
    /// Mean time between fault injections.
    pub fault_interval_ms: u64,
    /// After healing, every client must finish and replicas converge within this.
    pub liveness_ms: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan { duration_ms: 3_000, partitions: false, crashes: false, fault_interval_ms: 400, liveness_ms: 10_000 }
    }
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub sim: SimConfig,
    pub faults: FaultPlan,
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

fn run_seed_inner(options: &RunOptions, seed: u64, tracer: Tracer) -> RunReport {
    let mut cluster = Cluster::new(options.sim.clone(), seed);
    cluster.tracer = tracer;
    plan_faults(&mut cluster, &options.faults, seed);
    cluster.start_clients();

    // Safety phase.
    cluster.run_until_us(options.faults.duration_ms * 1000);

    cluster.heal_and_check_liveness(options.faults.liveness_ms);
    let history = std::mem::take(&mut cluster.history);
    cluster.checker.check_history(&history);
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
        messages_delivered: cluster.messages_delivered,
        violations: std::mem::take(&mut cluster.checker.violations),
        unknown_keys: cluster.checker.unknown_keys.len(),
        sim_time_us: cluster.now_us,
    }
}

impl Cluster {
    /// The liveness phase: heal every fault, let clients finish their
    /// operations and replicas converge within `bound_ms`; record a
    /// violation if they do not, and compare the replicas' stores.
    pub fn heal_and_check_liveness(&mut self, bound_ms: u64) {
        self.heal();
        self.calm_network();
        for node in self.config.members() {
            self.restart(node);
        }
        self.stop_clients();
        if !self.run_until(bound_ms, |c| c.pending_clients().is_empty()) {
            let detail = format!(
                "{} client operations still pending {bound_ms} ms after the faults healed (clients {:?}); leaders: {:?}",
                self.pending_clients().len(),
                self.pending_clients(),
                self.leaders()
            );
            self.checker.violations.push(Violation::Liveness { detail });
        }
        let converged = self.run_until(bound_ms, |c| {
            let end = c.checker.committed_end;
            c.nodes.iter().all(|n| n.replica.as_ref().is_some_and(|r| r.commit_index() == end) && n.applied == end)
        });
        if !converged {
            let detail = format!(
                "replicas did not converge on commit index {} within {bound_ms} ms: {:?}",
                self.checker.committed_end,
                self.commit_indexes()
            );
            self.checker.violations.push(Violation::Liveness { detail });
            return;
        }
        // Replicas that applied the same log must hold the same store.
        let digests: Vec<(NodeId, u64)> = self.nodes.iter().map(|n| (n.id, n.kv.digest())).collect();
        if digests.windows(2).any(|w| w[0].1 != w[1].1) {
            let detail = format!("store digests differ at equal commit index: {digests:x?}");
            self.checker.violations.push(Violation::Divergence { detail });
        }
    }

    /// Heal, check liveness, then check the whole history; all violations so far.
    pub fn finish(&mut self, bound_ms: u64) -> Vec<Violation> {
        self.heal_and_check_liveness(bound_ms);
        let history = std::mem::take(&mut self.history);
        self.checker.check_history(&history);
        self.history = history;
        self.checker.violations.clone()
    }
}

/// Draw the safety phase's crashes and partitions from the seed.
fn plan_faults(cluster: &mut Cluster, plan: &FaultPlan, seed: u64) {
    if !plan.partitions && !plan.crashes {
        return;
    }
    let mut rng = Rng::new(seed ^ 0xFA17_5EED);
    let members = cluster.config.members();
    let end_us = plan.duration_ms * 1000;
    let mut t_us = 0u64;
    loop {
        let gap = (-(1.0 - rng.unit()).ln() * plan.fault_interval_ms as f64 * 1000.0) as u64;
        t_us += gap.max(1000);
        if t_us >= end_us {
            break;
        }
        let partition = match (plan.partitions, plan.crashes) {
            (true, true) => rng.chance(0.5),
            (p, _) => p,
        };
        if partition {
            let mut side_a = Vec::new();
            let mut side_b = Vec::new();
            for &m in &members {
                if rng.chance(0.5) {
                    side_a.push(m);
                } else {
                    side_b.push(m);
                }
            }
            if side_a.is_empty() || side_b.is_empty() {
                continue;
            }
            let one_way = rng.chance(0.3);
            cluster.schedule_fault(t_us, EventKind::Partition { side_a, side_b, one_way });
            let heal_at = t_us + rng.range_inclusive(100_000, 800_000);
            cluster.schedule_fault(heal_at, EventKind::Heal);
        } else {
            let node = members[rng.below(members.len() as u64) as usize];
            cluster.schedule_fault(t_us, EventKind::Crash { node });
            let restart_at = t_us + rng.range_inclusive(50_000, 1_000_000);
            cluster.schedule_fault(restart_at, EventKind::Restart { node });
        }
    }
}
