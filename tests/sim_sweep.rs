//! Seed sweeps: many simulated runs with every fault on, which must report
//! no violation, and the same sweeps with a protocol rule broken on
//! purpose, which must report violations (a checker that cannot fail
//! proves nothing). Failures print the seed and the replay command.

use paxoskv::paxos::InjectedBug;
use paxoskv::sim::{run_seeds, FaultPlan, NetworkConfig, RunOptions, RunReport, SimConfig, Violation};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn all_faults(replicas: u32, loss: f64) -> RunOptions {
    RunOptions {
        sim: SimConfig {
            replicas,
            network: NetworkConfig { loss, duplicate: 0.05, ..NetworkConfig::default() },
            ..SimConfig::default()
        },
        faults: FaultPlan { duration_ms: 2_000, partitions: true, crashes: true, ..FaultPlan::default() },
    }
}

/// The CLI flags that replay a run of `options` (for failure messages).
fn flags(options: &RunOptions) -> String {
    let s = &options.sim;
    let mut out = format!(
        "--replicas {} --duration-ms {} --loss {} --duplicate {} --drift-permille {} --read-mode {}",
        s.replicas,
        options.faults.duration_ms,
        s.network.loss,
        s.network.duplicate,
        s.drift_permille,
        s.read_mode.as_str()
    );
    if options.faults.partitions {
        out.push_str(" --partitions");
    }
    if options.faults.crashes {
        out.push_str(" --crashes");
    }
    if s.disk_faults {
        out.push_str(" --disk-faults");
    }
    out.push_str(&format!(" --fault-interval-ms {} --fsync-us {}", options.faults.fault_interval_ms, s.fsync_us));
    out.push_str(&format!(" --snapshot-every {}", s.snapshot_every_slots));
    if let Some((min, max)) = s.election_timeout_ticks {
        out.push_str(&format!(" --election-timeout-ms {min}..{max}"));
    }
    out
}

fn assert_no_violations(options: &RunOptions, reports: &[RunReport]) {
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .map(|r| {
            let list: Vec<String> = r.violations.iter().map(|v| format!("    {v}")).collect();
            format!(
                "seed {}:\n{}\n  reproduce with: paxoskv sim --seed {} {}",
                r.seed,
                list.join("\n"),
                r.seed,
                flags(options)
            )
        })
        .collect();
    assert!(failed.is_empty(), "{} failing seeds:\n{}", failed.len(), failed.join("\n"));
    let completed: usize = reports.iter().map(|r| r.ops_completed).sum();
    assert!(completed > reports.len() * 50, "the runs did real work ({completed} ops)");
}

#[test]
fn sweep_500_seeds_3_replicas_all_faults() {
    let options = all_faults(3, 0.1);
    let reports = run_seeds(&options, 1..=500, threads());
    assert_no_violations(&options, &reports);
}

#[test]
fn sweep_500_seeds_5_replicas_all_faults() {
    let options = all_faults(5, 0.2);
    let reports = run_seeds(&options, 1..=500, threads());
    assert_no_violations(&options, &reports);
}

#[test]
fn sweep_500_seeds_3_replicas_crashes_with_disk_faults() {
    let mut options = all_faults(3, 0.1);
    options.sim.disk_faults = true;
    options.sim.snapshot_every_slots = 8;
    options.faults.fault_interval_ms = 200;
    let reports = run_seeds(&options, 1..=500, threads());
    assert_no_violations(&options, &reports);
    let torn: u64 = reports.iter().map(|r| r.faults.torn_writes).sum();
    assert!(torn > 500, "crashes tore writes in flight ({torn})");
}

#[test]
fn sweep_lease_under_maximum_drift_is_safe() {
    let mut options = all_faults(3, 0.0);
    options.sim.drift_permille = 200;
    options.sim.election_timeout_ticks = Some((101, 110));
    options.faults.crashes = false;
    let reports = run_seeds(&options, 1..=200, threads());
    assert_no_violations(&options, &reports);
}

fn count(reports: &[RunReport], matches: impl Fn(&Violation) -> bool) -> usize {
    reports.iter().flat_map(|r| &r.violations).filter(|v| matches(v)).count()
}

#[test]
fn broken_leader_recovery_is_caught() {
    // The new leader ignores accepted values in promises: values that were
    // chosen get overwritten by no-ops. Agreement must catch it.
    let mut options = all_faults(5, 0.0);
    options.faults.partitions = false;
    options.sim.injected_bug = InjectedBug::IgnorePromisedValues;
    // The learner's agreement assertion may fire too: a run's panic is
    // caught and reported as a violation (its message lands in the test output).
    let reports = run_seeds(&options, 1..=100, threads());
    let caught = count(&reports, |v| {
        matches!(v, Violation::Agreement { .. } | Violation::NotLinearizable { .. } | Violation::Panic { .. })
    });
    assert!(caught > 0, "no violation reported with a broken recovery rule");
}

#[test]
fn broken_lease_is_caught() {
    // The leader's lease ignores clock drift: a slow-clocked leader keeps
    // believing in its lease after the acceptors' grants ran out.
    let mut options = all_faults(3, 0.0);
    options.sim.drift_permille = 200;
    options.sim.election_timeout_ticks = Some((101, 110));
    options.faults.crashes = false;
    options.sim.injected_bug = InjectedBug::LeaseIgnoresDrift;
    let reports = run_seeds(&options, 1..=200, threads());
    let caught = count(&reports, |v| matches!(v, Violation::LeaseOverlap { .. } | Violation::StaleRead { .. }));
    assert!(caught > 0, "no violation reported with a lease that ignores drift");
}

#[test]
fn replies_sent_before_fsync_are_caught() {
    // Promise/Accepted leave before their state is durable: a crash makes
    // an acceptor forget what it promised or accepted.
    let mut options = all_faults(3, 0.0);
    options.faults.partitions = false;
    options.faults.fault_interval_ms = 100;
    options.sim.fsync_us = 3_000;
    options.sim.disk_faults = true;
    options.sim.injected_bug = InjectedBug::ReplyBeforePersist;
    let reports = run_seeds(&options, 1..=200, threads());
    let caught = reports.iter().filter(|r| !r.violations.is_empty()).count();
    assert!(caught > 0, "no violation reported with replies sent before fsync");
}

/// A longer soak: `cargo test --release --test sim_sweep -- --ignored`.
#[test]
#[ignore]
fn soak_5000_seeds_each() {
    for (replicas, loss) in [(3, 0.1), (5, 0.2), (7, 0.3)] {
        let mut options = all_faults(replicas, loss);
        options.faults.duration_ms = 5_000;
        let reports = run_seeds(&options, 1..=5_000, threads());
        assert_no_violations(&options, &reports);
    }
}
