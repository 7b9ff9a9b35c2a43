//! Seed sweeps: many simulated runs with every fault on, which must report
//! no violation, and the same sweeps with a protocol rule broken on
//! purpose, which must report violations (a checker that cannot fail
//! proves nothing). Failures print the seed and the replay command.
//!
//! Each injected bug is asserted caught by a fixed set of seeds of its
//! sweep (the sweep the README names); `soak_catch_rates` (ignored) runs
//! every sweep over many seeds and prints the rates the README states.

use paxoskv::paxos::InjectedBug;
use paxoskv::sim::{run_seeds, Drawn, FaultPlan, NetworkConfig, ReadMode, RunOptions, RunReport};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `paxoskv sim` with these flags, for failure messages.
struct Sweep {
    name: &'static str,
    flags: &'static str,
    options: RunOptions,
}

fn base(replicas: u32) -> RunOptions {
    let mut options = RunOptions { draw: Drawn::ALL, ..RunOptions::default() };
    options.sim.replicas = replicas;
    options
}

/// `--replicas R --loss L --partitions --crashes --disk-faults --stalls`
fn all_faults(replicas: u32, loss: f64) -> RunOptions {
    let mut options = base(replicas);
    options.sim.network = NetworkConfig { loss, duplicate: 0.05, ..NetworkConfig::default() };
    options.sim.disk_faults = true;
    options.faults =
        FaultPlan { duration_ms: 2_000, partitions: true, crashes: true, stalls: true, ..FaultPlan::default() };
    options
}

fn assert_no_violations(sweep: &Sweep, reports: &[RunReport]) {
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
                sweep.flags
            )
        })
        .collect();
    assert!(failed.is_empty(), "{}: {} failing seeds:\n{}", sweep.name, failed.len(), failed.join("\n"));
    let completed: usize = reports.iter().map(|r| r.ops_completed).sum();
    assert!(completed > reports.len() * 50, "the runs did real work ({completed} ops)");
}

#[test]
fn sweep_300_seeds_3_replicas_every_fault() {
    let sweep = Sweep {
        name: "3 replicas, every fault",
        flags:
            "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        options: all_faults(3, 0.1),
    };
    let reports = run_seeds(&sweep.options, 1..=300, threads());
    assert_no_violations(&sweep, &reports);
    let sum = |f: fn(&RunReport) -> u64| reports.iter().map(f).sum::<u64>();
    assert!(sum(|r| r.faults.torn_writes) > 30, "crashes tore writes in flight");
    assert!(sum(|r| r.faults.disk_losses) > 30, "disks were lost");
    assert!(sum(|r| r.recoveries) > 30, "replicas that lost their disk recovered");
    assert!(sum(|r| r.faults.stalls) > 300, "executors stalled");
    assert!(sum(|r| r.faults.reconnects) > 300, "clients reconnected (timeouts and session churn)");
}

/// A group of one (a one-node cluster): crashes, torn writes and stalls;
/// the fault schedule has no link to cut and no second member to crash
/// with the first (it drew a victim from an empty list: `Rng::below(0)`,
/// every seed), and never loses the only disk (that loses a majority).
#[test]
fn sweep_60_seeds_1_replica_every_fault() {
    let sweep = Sweep {
        name: "1 replica, every fault",
        flags:
            "--replicas 1 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        options: all_faults(1, 0.1),
    };
    let reports = run_seeds(&sweep.options, 1..=60, threads());
    assert_no_violations(&sweep, &reports);
    let sum = |f: fn(&RunReport) -> u64| reports.iter().map(f).sum::<u64>();
    assert!(sum(|r| r.faults.crashes) > 30 && sum(|r| r.faults.torn_writes) > 5, "crashes tore writes");
    assert!(sum(|r| r.faults.stalls) > 30, "the executor stalled");
    assert_eq!(sum(|r| r.faults.disk_losses), 0, "the only disk is never lost");
}

/// A forward read window of 2 (`NodeConfig::forward_read_window`, 64 on
/// servers): reads at followers wait for room, and so does everything that
/// arrives after them, and no request waits on one that waits behind it.
/// (With a window on writes too, a session's later write in the window
/// waited in the store for its `prev`, parked behind the window, until the
/// client's timeout.) A window of 1 also holds its reads and what follows
/// them behind a lost forward until its retry: 1 of 300 seeds then breaks
/// the latency bound, which assumes no such queue.
#[test]
fn sweep_200_seeds_3_replicas_forward_read_window_2() {
    let mut options = all_faults(3, 0.1);
    options.sim.forward_read_window = 2;
    let sweep = Sweep {
        name: "3 replicas, every fault, forward read window 2",
        flags:
            "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls \
                --forward-read-window 2",
        options,
    };
    let reports = run_seeds(&sweep.options, 1..=200, threads());
    assert_no_violations(&sweep, &reports);
    let waits: u64 = reports.iter().map(|r| r.forward_read_waits).sum();
    assert!(waits > 1_000, "reads waited for the window ({waits})");
}

/// A backpressure bound of a dozen commands: nodes hold client requests,
/// forwarded ones and a leader's entries while their disk is behind, and
/// drop entries over the bound (`Node::on_peer_frame`), under every
/// fault. Its first run, with a bound of 256 bytes, found a
/// checker wrong, the protocol right: seed 73's quiet-refusal check took
/// the last node to win an election for the leader, though it had stepped
/// down at once (it won with promises from before a stall), and so judged
/// a read forwarded from a follower (which this network may reorder) as
/// one sent to the leader. A bound under one Accept is too small once
/// held entries go a share per drain: a follower with a slow disk then
/// takes one Accept per fsync and never catches up (seed 30). A leader
/// with an append waiting 5 ms for its fsync hands leadership over, and a
/// node behind its bound does not campaign
/// (`NodeConfig::hand_over_after_us`), so leaders on a slow disk step
/// down often here, under every fault.
#[test]
fn sweep_200_seeds_3_replicas_small_backpressure_bound() {
    let mut options = all_faults(3, 0.1);
    options.sim.unsynced_bytes_max = 1_024;
    options.sim.hand_over_after_us = 5_000;
    options.draw.backpressure = false;
    options.draw.hand_over = false;
    let sweep = Sweep {
        name: "3 replicas, every fault, backpressure bound 1 KiB, hand-over after 5 ms",
        flags:
            "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls \
                --unsynced-bytes-max 1024 --hand-over-after-ms 5",
        options,
    };
    let reports = run_seeds(&sweep.options, 1..=200, threads());
    assert_no_violations(&sweep, &reports);
    let holds: u64 = reports.iter().map(|r| r.backpressure_holds).sum();
    let dropped: u64 = reports.iter().map(|r| r.peer_frames_dropped).sum();
    let hand_overs: u64 = reports.iter().map(|r| r.hand_overs).sum();
    assert!(holds > 1_000, "nodes held requests ({holds} times)");
    assert!(dropped > 1_000, "nodes dropped entries over the bound ({dropped})");
    assert!(hand_overs > 10, "leaders handed over ({hand_overs} times)");
}

#[test]
fn sweep_200_seeds_5_replicas_every_fault() {
    let sweep = Sweep {
        name: "5 replicas, every fault",
        flags:
            "--replicas 5 --duration-ms 2000 --loss 0.2 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        options: all_faults(5, 0.2),
    };
    let reports = run_seeds(&sweep.options, 1..=200, threads());
    assert_no_violations(&sweep, &reports);
}

/// Seeds of soaks (every fault) that once failed, each clean since. In
/// the first two the checkers were wrong, the protocol right:
/// - 799, 5 replicas, 5 s: a stalled acceptor stepped a deposed leader's
///   heartbeat from its backlog, granting it a lease, then the new
///   leader's, moving the grant there, and later promised the new leader's
///   next ballot; the *grant honoured* watch counted the grant to the
///   deposed ballot, which no majority could back (`src/sim/watch.rs`);
/// - 1078, 3 replicas, 5 s: a leader took a read in under its lease and
///   stalled before its output was collected; read freshness judged the
///   read as of the collection, 290 ms later, after the next leader had
///   committed 20 more slots (`NodeEvent::ReadRegistered` now carries its
///   time);
/// - 788, 3 replicas, 2 s, caught by the latency checker: a GET waited
///   1.8 s at the leader behind a write of its session. Two causes, both
///   fixed. The model let a client keep a connection to a node that was
///   down (every node was when it reconnected): its commands there were
///   dropped unanswered, so its session never settled them, and its next
///   write, chained to one of them, waited in the store, and at the
///   leader until the leader's deadline (a down node now refuses the
///   connection, `on_client_arrive`). And the node held a read behind
///   every earlier write of its session, even one its client had settled
///   (`SessionWaiting::holds` now reads the read's `ack`; the node test
///   `a_read_does_not_wait_for_a_write_its_client_gave_up_on`);
/// - 748, 3 replicas, 2 s, caught by the linearizability checker once a
///   leader handed over whenever an append waited (stop 57, drawn 5 or
///   20 ms): a leader released a lease read and stepped down in the same
///   step, and the shell, no longer seeing the leader's batches in flight,
///   judged the read after a SET stamped before it that the next leader
///   then chose (the core now caps a released read's time itself; core
///   test `a_released_read_is_judged_no_later_than_a_batch_in_flight`);
/// - 1687, 3 replicas, 2 s, caught by the linearizability checker once a
///   leader that handed over named its successor (stop 58: the next leader
///   took office 2 ms later, not after a lease and an election timeout):
///   the new leader answered a forwarded read right after its write ran
///   there, judged at its log's time, which ended with its predecessor's
///   last batch, stamped before reads that predecessor had judged (the
///   shell now answers such a read there only at a log time no earlier
///   than `Replica::elected_floor`, and only under its lease; else it
///   is a read like any other).
#[test]
fn soak_seeds_that_once_failed_stay_clean() {
    let runs = [
        (
            5,
            0.2,
            799,
            5_000,
            "--replicas 5 --duration-ms 5000 --loss 0.2 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
        (
            3,
            0.1,
            1078,
            5_000,
            "--replicas 3 --duration-ms 5000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
        (
            3,
            0.1,
            788,
            2_000,
            "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
        (
            3,
            0.1,
            748,
            2_000,
            "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
        (
            3,
            0.1,
            1687,
            2_000,
            "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
    ];
    for (replicas, loss, seed, duration_ms, flags) in runs {
        let mut options = all_faults(replicas, loss);
        options.faults.duration_ms = duration_ms;
        let sweep = Sweep { name: "every fault", flags, options };
        let reports = run_seeds(&sweep.options, seed..=seed, 1);
        assert_no_violations(&sweep, &reports);
    }
}

#[test]
fn sweep_200_seeds_read_index_and_log_reads() {
    for (mode, flags) in [
        (ReadMode::ReadIndex, "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls --read-mode read-index"),
        (ReadMode::Log, "--replicas 3 --duration-ms 2000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls --read-mode log"),
    ] {
        let mut options = all_faults(3, 0.1);
        options.sim.read_mode = mode;
        let sweep = Sweep { name: "reads without a lease", flags, options };
        let reports = run_seeds(&sweep.options, 1..=200, threads());
        assert_no_violations(&sweep, &reports);
    }
}

/// A connection's order when its node holds requests back: with a read
/// window of one, a follower parks most reads, so a command parked behind
/// another client's meets a write of its own connection held behind a
/// forwarded read. Before the fix, a read parked there went out ahead of
/// that write when the read holding it was answered (12 violations in
/// seeds 1..300 of the first sweep below, 49 with loss and 8 clients).
#[test]
fn sweep_120_seeds_a_read_window_of_one() {
    for (loss, clients, flags) in [
        (0.0, 4, "--duration-ms 2000 --pipeline 4 --forward-read-window 1 --partitions"),
        (0.1, 8, "--duration-ms 2000 --pipeline 4 --forward-read-window 1 --clients 8 --partitions --loss 0.1"),
    ] {
        let mut options = base(3);
        options.faults.duration_ms = 2_000;
        options.faults.partitions = true;
        options.draw.pipeline = false;
        options.sim.pipeline = 4;
        options.sim.forward_read_window = 1;
        options.sim.clients = clients;
        options.sim.network.loss = loss;
        let sweep = Sweep { name: "a read window of one", flags, options };
        let reports = run_seeds(&sweep.options, 1..=120, threads());
        assert_no_violations(&sweep, &reports);
    }
}

/// A bug sweep: `paxoskv sim --duration-ms 2000` with these faults.
fn bug_sweep(name: &'static str, flags: &'static str, tweak: impl FnOnce(&mut RunOptions)) -> Sweep {
    let mut options = base(3);
    options.faults.duration_ms = 2_000;
    tweak(&mut options);
    Sweep { name, flags, options }
}

/// Each injected bug, its sweep (README: "Injected bugs"), and seeds of
/// that sweep that each catch it.
fn bug_sweeps() -> Vec<(InjectedBug, Sweep, Vec<u64>)> {
    vec![
        (
            InjectedBug::IgnorePromisedValues,
            bug_sweep("ignore-promised-values", "--duration-ms 2000 --replicas 5 --crashes", |o| {
                o.sim.replicas = 5;
                o.faults.crashes = true;
            }),
            vec![5, 7, 9, 11],
        ),
        (
            InjectedBug::LeaseIgnoresDrift,
            bug_sweep("lease-ignores-drift", "--duration-ms 2000 --partitions", |o| o.faults.partitions = true),
            vec![1, 2, 3, 4],
        ),
        (
            InjectedBug::ReplyBeforePersist,
            bug_sweep("reply-before-persist", "--duration-ms 2000 --crashes", |o| o.faults.crashes = true),
            vec![1, 2, 3, 4],
        ),
        (
            InjectedBug::StaleGrantClock,
            bug_sweep("stale-grant-clock", "--duration-ms 2000 --partitions --stalls", |o| {
                o.faults.partitions = true;
                o.faults.stalls = true;
            }),
            vec![4, 5, 9, 11],
        ),
        (
            InjectedBug::EmptyReplicaVotes,
            bug_sweep("empty-replica-votes", "--duration-ms 2000 --crashes --disk-faults", |o| {
                o.faults.crashes = true;
                o.sim.disk_faults = true;
            }),
            vec![4, 5, 9, 12],
        ),
        (
            InjectedBug::CountOwnVoteBeforePersist,
            bug_sweep("count-own-vote-before-persist", "--duration-ms 2000 --crashes", |o| o.faults.crashes = true),
            vec![1, 3, 7, 9],
        ),
        (
            InjectedBug::NoRestartQuarantine,
            bug_sweep("no-restart-quarantine", "--duration-ms 2000 --partitions --crashes", |o| {
                o.faults.partitions = true;
                o.faults.crashes = true;
            }),
            vec![6, 13, 39, 62],
        ),
        (
            InjectedBug::ReadIndexWithoutRound,
            bug_sweep(
                "read-index-without-round",
                "--duration-ms 2000 --partitions --stalls --read-mode read-index",
                |o| {
                    o.faults.partitions = true;
                    o.faults.stalls = true;
                    o.sim.read_mode = ReadMode::ReadIndex;
                },
            ),
            vec![48, 59, 73, 132],
        ),
        (
            InjectedBug::StampIgnoresHorizon,
            bug_sweep("stamp-ignores-horizon", "--duration-ms 2000 --partitions", |o| o.faults.partitions = true),
            vec![5, 27, 113, 132],
        ),
        (
            InjectedBug::SplitMultiKeyWrites,
            bug_sweep("split-multi-key-writes", "--duration-ms 2000", |_| {}),
            vec![1, 2, 3, 4],
        ),
        (
            InjectedBug::LeaderLeavesWindowOpen,
            bug_sweep("leader-leaves-window-open", "--duration-ms 2000 --partitions", |o| o.faults.partitions = true),
            // Rare in this sweep: 2 of seeds 1..4000 (stop 54). The scenario
            // test `a_deposed_leaders_batches_cannot_come_back_behind_its_
            // successors_reads` catches it on 19 of seeds 1..150.
            vec![1440, 1853],
        ),
        (
            InjectedBug::StaleLeaseReads,
            bug_sweep("stale-lease-reads", "--duration-ms 2000 --partitions", |o| o.faults.partitions = true),
            vec![1, 2, 3, 4],
        ),
        (
            InjectedBug::LateTickDeadline,
            bug_sweep("late-tick-deadline", "--duration-ms 2000", |_| {}),
            vec![1, 2, 3, 4],
        ),
        (
            InjectedBug::SessionOrderIgnored,
            bug_sweep("session-order-ignored", "--duration-ms 2000", |_| {}),
            vec![1, 2, 3, 4],
        ),
        (
            InjectedBug::WalIndexEpochs,
            bug_sweep("wal-index-epochs", "--duration-ms 2000 --crashes --disk-faults", |o| {
                o.faults.crashes = true;
                o.sim.disk_faults = true;
            }),
            vec![53, 56, 66, 70],
        ),
        (
            InjectedBug::AfterWriteReadRefused,
            bug_sweep("after-write-read-refused", "--duration-ms 2000 --pipeline 4", |o| {
                o.draw.pipeline = false;
                o.sim.pipeline = 4;
            }),
            vec![3, 4, 6, 8],
        ),
        (
            InjectedBug::PeersUnreadWhileBehind,
            bug_sweep("peers-unread-while-behind", "--duration-ms 2000 --unsynced-bytes-max 2048", |o| {
                o.sim.unsynced_bytes_max = 2_048;
                o.draw.backpressure = false;
            }),
            // Each caught by the latency checker (`the_latency_checker_...`).
            vec![63, 81, 109, 668],
        ),
        (
            InjectedBug::HandOverWhileLeading,
            bug_sweep("hand-over-while-leading", "--duration-ms 2000", |_| {}),
            // 5, 57 and 86 also by the lease-overlap checker
            // (`a_leader_that_hands_over_and_leads_on_overlaps_its_successors_lease`).
            vec![5, 6, 12, 20, 57, 86],
        ),
    ]
}

/// The hand-over's own injected bug: a leader that gives its followers'
/// grants up and leads on. The grant watch catches it at the first
/// release; these seeds show the end-to-end lease-overlap checker does too
/// (its successor took office while it still held its lease), so the
/// watch is not the only line.
#[test]
fn a_leader_that_hands_over_and_leads_on_overlaps_its_successors_lease() {
    let (bug, mut sweep, _) =
        bug_sweeps().into_iter().find(|(bug, ..)| *bug == InjectedBug::HandOverWhileLeading).expect("listed");
    sweep.options.sim.injected_bug = bug;
    for seed in [5, 57, 86] {
        let report = &run_seeds(&sweep.options, seed..=seed, 1)[0];
        assert!(
            report.violations.iter().any(|v| v.checker() == "grant_broken")
                && report.violations.iter().any(|v| v.checker() == "lease_overlap"),
            "seed {seed}: not caught by both the grant watch and the lease-overlap checker \
             (paxoskv sim --seed {seed} {} --inject-bug {}): {:?}",
            sweep.flags,
            bug.name(),
            report.violations
        );
    }
}

/// The latency checker's own injected bug: a follower whose disk cannot
/// keep up leaves its peers' frames unread, its clients' answers with
/// them, as servers did until stop 55. Its sweep's seeds fail the latency
/// checker, not only another one.
#[test]
fn the_latency_checker_catches_a_node_that_leaves_its_clients_answers_unread() {
    let (bug, mut sweep, seeds) =
        bug_sweeps().into_iter().find(|(bug, ..)| *bug == InjectedBug::PeersUnreadWhileBehind).expect("listed");
    sweep.options.sim.injected_bug = bug;
    for seed in seeds {
        let report = &run_seeds(&sweep.options, seed..=seed, 1)[0];
        assert!(
            report.violations.iter().any(|v| v.checker() == "latency"),
            "seed {seed}: no latency violation (paxoskv sim --seed {seed} {} --inject-bug {}): {:?}",
            sweep.flags,
            bug.name(),
            report.violations
        );
    }
}

#[test]
fn every_injected_bug_is_caught_by_its_sweep() {
    for (bug, mut sweep, seeds) in bug_sweeps() {
        sweep.options.sim.injected_bug = bug;
        for seed in seeds {
            let report = &run_seeds(&sweep.options, seed..=seed, 1)[0];
            assert!(
                !report.violations.is_empty(),
                "{}: seed {seed} no longer catches it (paxoskv sim --seed {seed} {} --inject-bug {})",
                sweep.name,
                sweep.flags,
                bug.name()
            );
        }
    }
}

/// Catch rates for the README: `cargo test --release --test sim_sweep -- --ignored --nocapture`.
#[test]
#[ignore]
fn soak_catch_rates() {
    for (bug, mut sweep, _) in bug_sweeps() {
        sweep.options.sim.injected_bug = bug;
        let reports = run_seeds(&sweep.options, 1..=1_000, threads());
        let caught = reports.iter().filter(|r| !r.violations.is_empty()).count();
        println!(
            "{}: {caught} of {} seeds of `paxoskv sim --seeds 1..=1000 {}`",
            bug.name(),
            reports.len(),
            sweep.flags
        );
        sweep.options.sim.injected_bug = InjectedBug::None;
        let clean = run_seeds(&sweep.options, 1..=1_000, threads());
        assert_no_violations(&sweep, &clean);
    }
}

/// A longer soak: `cargo test --release --test sim_sweep -- --ignored`.
#[test]
#[ignore]
fn soak_5000_seeds_each() {
    for (replicas, loss, flags) in [
        (
            3,
            0.1,
            "--replicas 3 --duration-ms 5000 --loss 0.1 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
        (
            5,
            0.2,
            "--replicas 5 --duration-ms 5000 --loss 0.2 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
        (
            7,
            0.3,
            "--replicas 7 --duration-ms 5000 --loss 0.3 --duplicate 0.05 --partitions --crashes --disk-faults --stalls",
        ),
    ] {
        let mut options = all_faults(replicas, loss);
        options.faults.duration_ms = 5_000;
        let sweep = Sweep { name: "soak", flags, options };
        let reports = run_seeds(&sweep.options, 1..=5_000, threads());
        assert_no_violations(&sweep, &reports);
    }
}

/// Found by the time-aware checker: `paxoskv sim --seed 145 --duration-ms
/// 2000 --partitions`. A leader sealed a batch (stamp T) that only it
/// accepted, then lost office; the next leader, which never heard of it,
/// raised its floor to the horizon its promises reported (above T) and
/// served reads judged after T; a later leader recovered the batch, which
/// Paxos requires unchanged, so it was chosen with its old stamp after reads
/// judged later. Fixed by closing the window at election
/// (`paxos::leader::become_leader`); `leader-leaves-window-open` undoes it.
#[test]
fn a_batch_a_deposed_leader_sealed_is_never_recovered_after_reads_judged_later() {
    let mut options = base(3);
    options.faults.duration_ms = 2_000;
    options.faults.partitions = true;
    for seed in [145, 2644, 3809, 4383, 6182] {
        let report = &run_seeds(&options, seed..=seed, 1)[0];
        assert!(report.violations.is_empty(), "seed {seed}: {:#?}", report.violations);
    }
}

/// Found by the latency checker: `paxoskv sim --seed 64 --duration-ms 2000
/// --crashes --disk-faults` (at the commit that closed the window). A
/// client kept its session across its entry node's crash; the two writes
/// the crash lost were never answered, so every later write of the session
/// waited in the store for them (its `prev`) until the client timed out,
/// 2 s in a fault-free stretch. A real connection dies with the process:
/// the simulator now reconnects a crashed node's clients (new session).
#[test]
fn a_crashed_nodes_clients_reconnect_rather_than_wait_for_what_the_crash_lost() {
    let mut options = base(3);
    options.faults.duration_ms = 2_000;
    options.faults.crashes = true;
    options.sim.disk_faults = true;
    let report = &run_seeds(&options, 64..=64, 1)[0];
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}
