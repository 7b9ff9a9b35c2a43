//! Failure scenarios over the simulator, each a few readable lines: the
//! real core and store, simulated clients, and every checker (agreement,
//! read freshness, lease overlap, linearizability, liveness) at the end.

use paxoskv::sim::{Cluster, NetworkConfig, SimConfig, Violation};

const LIVENESS_MS: u64 = 10_000;

fn cluster(replicas: u32, seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> Cluster {
    let mut config = SimConfig { replicas, ..SimConfig::default() };
    tweak(&mut config);
    let mut c = Cluster::new(config, seed);
    c.start_clients();
    c
}

fn elect(c: &mut Cluster) -> u32 {
    assert!(c.run_until(3_000, |c| c.leader().is_some()), "no leader elected");
    c.leader().unwrap()
}

/// Heal, finish every client operation, converge, check the history.
fn assert_finishes_clean(c: &mut Cluster) {
    let violations: Vec<Violation> = c.finish(LIVENESS_MS);
    assert!(violations.is_empty(), "seed {}: violations: {violations:#?}", c.seed);
    assert!(c.history.completed() > 20, "the clients made progress");
}

#[test]
fn leader_crash_elects_a_new_leader_and_loses_no_acknowledged_write() {
    let mut c = cluster(3, 11, |_| {});
    let old = elect(&mut c);
    c.run_for_ms(500);
    let done_before = c.history.completed();
    c.crash(old);
    assert!(c.run_until(3_000, |c| c.leader().is_some_and(|l| l != old)), "a new leader takes over");
    c.run_for_ms(500);
    assert!(c.history.completed() > done_before, "writes resume under the new leader");
    assert_finishes_clean(&mut c);
}

/// Tell leader `old` to leave; another node must lead within a quarter of
/// a lease (the wait for its lease and an election timeout is longer).
fn leave_and_see_the_successor_take_office(c: &mut Cluster, old: u32) {
    let seed = c.seed;
    let left_at_us = c.now_us;
    assert!(c.leave(old));
    assert!(c.run_until(1_000, |c| c.leader().is_some_and(|l| l != old)), "seed {seed}: no new leader");
    let gap_us = c.now_us - left_at_us;
    let lease_us = c.paxos_config.lease_ticks * 1_000;
    assert!(gap_us < lease_us / 4, "seed {seed}: a new leader {gap_us} us after the old one left");
}

/// A leader asked to stop (`Node::leave`: a server on SIGTERM) hands its
/// leadership over before it goes down: the follower it names takes office
/// within a few milliseconds, not after the lease it granted runs out and
/// an election timeout, and nothing acknowledged is lost when it then
/// crashes.
#[test]
fn a_leader_told_to_leave_hands_over_before_it_goes_down() {
    for seed in [31, 32, 33] {
        let mut c = cluster(3, seed, |_| {});
        let old = elect(&mut c);
        c.run_for_ms(300);
        leave_and_see_the_successor_take_office(&mut c, old);
        let done_before = c.history.completed();
        c.crash(old);
        c.run_for_ms(300);
        assert!(c.history.completed() > done_before, "seed {seed}: writes go on under the new leader");
        assert_finishes_clean(&mut c);
    }
}

#[test]
fn message_loss_of_30_percent_still_commits() {
    let mut c = cluster(3, 12, |s| s.network = NetworkConfig { loss: 0.3, ..NetworkConfig::default() });
    elect(&mut c);
    c.run_for_ms(3_000);
    assert!(c.checker.committed_end > 50, "committed {} slots", c.checker.committed_end);
    assert!(c.faults.messages_lost > 100);
    assert_finishes_clean(&mut c);
}

#[test]
fn dueling_proposers_converge_on_one_leader() {
    // No drift and equal election timeouts: after the leader dies every
    // follower times out within the same millisecond and campaigns.
    // Seed 7: all four survivors campaign at once (the seed fixes only who
    // and when; a change to what the node proposes moves it).
    let mut c = cluster(5, 7, |s| {
        s.drift_permille = 0;
        s.election_timeout_ticks = Some((150, 150));
    });
    let old = elect(&mut c);
    c.run_for_ms(200);
    c.crash(old);
    let campaigns_before = c.elections_started.len();
    assert!(c.run_until(5_000, |c| c.leader().is_some_and(|l| l != old)));
    let campaigners: std::collections::BTreeSet<u32> =
        c.elections_started[campaigns_before..].iter().map(|e| e.node).collect();
    assert!(campaigners.len() >= 2, "proposers dueled: {campaigners:?}");
    assert_finishes_clean(&mut c);
}

#[test]
fn leader_isolated_in_a_minority_stops_committing_and_serving_lease_reads() {
    let mut c = cluster(5, 14, |_| {});
    let old = elect(&mut c);
    c.run_for_ms(300);
    let buddy = (1..=5).find(|&n| n != old).unwrap();
    let majority: Vec<u32> = (1..=5).filter(|&n| n != old && n != buddy).collect();
    c.partition(&[old, buddy], &majority);
    c.run_for_ms(20); // acks already on the wire may still land
    let stuck_at = c.replica(old).unwrap().commit_index();
    c.run_for_ms(1_500);
    let old_replica = c.replica(old).unwrap();
    assert_eq!(old_replica.commit_index(), stuck_at, "a minority leader cannot commit");
    assert!(!old_replica.is_leader(), "it stepped down without a majority");
    assert!(!old_replica.holds_lease());
    let new = c.leader().expect("the majority elected a leader");
    assert!(majority.contains(&new));
    assert!(c.checker.committed_end > stuck_at, "the majority kept committing");
    assert!(c.checker.violations.is_empty(), "no stale lease read: {:?}", c.checker.violations);
    assert_finishes_clean(&mut c);
}

#[test]
fn one_way_partition_that_deafens_the_leader_moves_leadership() {
    let mut c = cluster(3, 15, |_| {});
    let old = elect(&mut c);
    c.run_for_ms(300);
    let others: Vec<u32> = (1..=3).filter(|&n| n != old).collect();
    c.block_one_way(&others, &[old]); // the leader talks but never hears back
    assert!(c.run_until(3_000, |c| c.leader().is_some_and(|l| l != old)));
    assert_finishes_clean(&mut c);
}

#[test]
fn lagging_replica_catches_up_after_restart() {
    let mut c = cluster(3, 16, |_| {});
    let leader = elect(&mut c);
    let lagging = (1..=3).find(|&n| n != leader).unwrap();
    c.crash(lagging);
    c.run_for_ms(2_000);
    let leader_commit = c.replica(leader).unwrap().commit_index();
    assert!(leader_commit > 100, "the majority went on without it");
    c.restart(lagging);
    assert!(
        c.run_until(3_000, |c| c.replica(lagging).unwrap().commit_index() >= leader_commit),
        "caught up to {leader_commit}"
    );
    assert_finishes_clean(&mut c);
    assert_eq!(c.kv(lagging).unwrap().digest(), c.kv(leader).unwrap().digest(), "same store after catch-up");
}

#[test]
fn full_cluster_restart_keeps_every_acknowledged_write() {
    let mut c = cluster(3, 17, |_| {});
    elect(&mut c);
    c.run_for_ms(1_000);
    c.stop_clients();
    assert!(c.run_until(2_000, |c| c.pending_clients().is_empty()));
    let committed = c.checker.committed_end;
    assert!(c.run_until(1_000, |c| (1..=3).all(|n| c.applied(n) == committed)), "converged");
    let digest_before = c.kv(1).unwrap().digest();
    for node in 1..=3 {
        c.crash(node);
    }
    c.run_for_ms(100);
    for node in 1..=3 {
        c.restart(node);
    }
    elect(&mut c);
    assert!(c.run_until(1_000, |c| c.applied(1) >= committed), "replayed the log");
    // New slots since the restart can only be the new leader's no-ops.
    assert_eq!(c.kv(1).unwrap().digest(), digest_before, "the store came back from disk intact");
    c.start_clients();
    c.run_for_ms(1_000);
    // Reads after the restart are checked against writes before it.
    assert_finishes_clean(&mut c);
    assert!(c.checker.committed_end > committed);
}

#[test]
fn lease_reads_stay_fresh_under_maximum_drift_and_tight_timeouts() {
    // Election timeouts barely above the lease and clocks 20% apart: only
    // the drift-corrected leader lease keeps reads fresh here (see
    // tests/sim_sweep.rs for the broken variant being caught).
    for seed in 1..=20 {
        let mut c = cluster(3, seed, |s| {
            s.drift_permille = 200;
            s.election_timeout_ticks = Some((101, 110));
        });
        elect(&mut c);
        c.run_for_ms(300);
        let leader = c.leader().unwrap();
        let others: Vec<u32> = (1..=3).filter(|&n| n != leader).collect();
        c.partition(&[leader], &others);
        c.run_for_ms(600);
        c.heal();
        c.run_for_ms(300);
        assert_finishes_clean(&mut c);
    }
}

/// Seeds that once found a bug: the leader stopped asking for catch-up
/// after one lost reply, and never learned slots a peer knew chosen.
#[test]
fn regression_lost_catch_up_reply_stalled_the_leader() {
    use paxoskv::sim::{run_seed, Drawn, FaultPlan, RunOptions, Tracer};
    let options = RunOptions {
        sim: SimConfig {
            replicas: 5,
            network: NetworkConfig { loss: 0.2, ..NetworkConfig::default() },
            ..SimConfig::default()
        },
        faults: FaultPlan { partitions: true, crashes: true, ..FaultPlan::default() },
        draw: Drawn::NONE,
    };
    for seed in [30, 104, 157, 178] {
        let report = run_seed(&options, seed, Tracer::default());
        assert!(report.violations.is_empty(), "seed {seed}: {:#?}", report.violations);
    }
}

#[test]
fn replica_down_during_compaction_gets_a_snapshot_then_the_log() {
    let mut c = cluster(3, 18, |s| s.snapshot_every_slots = 16);
    let leader = elect(&mut c);
    let lagging = (1..=3).find(|&n| n != leader).unwrap();
    c.crash(lagging);
    c.run_for_ms(1_500);
    let leader_replica = c.replica(leader).unwrap();
    assert!(leader_replica.log_start() > 100, "the others compacted past what the lagging replica has");
    c.restart(lagging);
    assert!(c.run_until(3_000, |c| c.snapshots_installed > 0), "a snapshot was sent");
    assert!(c.replica(lagging).unwrap().log_start() > 0);
    assert_finishes_clean(&mut c);
    assert_eq!(c.kv(lagging).unwrap().digest(), c.kv(leader).unwrap().digest());
}

#[test]
fn log_stays_bounded_under_endless_writes() {
    let every = 32;
    let mut c = cluster(3, 19, |s| s.snapshot_every_slots = every);
    elect(&mut c);
    let mut peak = 0;
    for _ in 0..50 {
        c.run_for_ms(100);
        for n in &c.nodes {
            let memory = n.replica().unwrap().log_len();
            let disk = n.disk.state().chosen.len() + n.disk.state().accepted.len();
            peak = peak.max(memory).max(disk);
        }
    }
    let slots = c.checker.committed_end;
    assert!(slots > 40 * every, "many times the compaction threshold was written ({slots} slots)");
    let window = c.paxos_config.window_slots;
    assert!(
        peak <= 2 * every as usize + window,
        "log held {peak} entries at most (bound {})",
        2 * every as usize + window
    );
    assert_finishes_clean(&mut c);
}

/// Found in review: under load the others compacted faster than a lagging
/// replica could download a snapshot, and every new snapshot restarted the
/// transfer from byte 0, so it never finished until the load stopped.
#[test]
fn snapshot_transfer_finishes_while_the_others_keep_compacting() {
    let mut c = cluster(3, 3, |s| {
        s.snapshot_every_slots = 4;
        s.keys = 3_000; // a large store: hundreds of 64-byte chunks per snapshot
        s.clients = 16;
    });
    let leader = elect(&mut c);
    let lagging = (1..=3).find(|&n| n != leader).unwrap();
    c.crash(lagging);
    c.run_for_ms(1_000);
    c.restart(lagging);
    assert!(c.run_until(5_000, |c| c.snapshots_installed > 0), "installed under load");
    assert!(c.pending_clients().len() + c.history.completed() > 0);
    assert_finishes_clean(&mut c);
}

#[test]
fn a_command_larger_than_a_batch_is_refused() {
    use bytes::Bytes;
    use paxoskv::paxos::{Config, ProposeError, Replica};
    let mut config = Config::new(vec![1]);
    config.batch_bytes_max = 1024;
    let mut r = Replica::new(config, 1, 1).unwrap();
    while !r.is_leader() {
        r.tick();
        let ready = r.ready();
        r.on_persisted(ready.number);
    }
    assert_eq!(r.propose(vec![Bytes::from(vec![0u8; 1025])]), Err(ProposeError::TooLarge));
    assert_eq!(r.propose(vec![Bytes::from(vec![0u8; 1024])]), Ok(()));
}

#[test]
fn expiring_keys_go_at_the_same_log_position_on_every_replica_whatever_their_clocks() {
    use paxoskv::sim::linearizability::{RegisterInput, RegisterOutput};
    // Wall clocks up to seconds apart, running at the ends of a wide drift
    // bound, and a failover between them: expiry follows the stamps in the
    // log, never a replica's own clock.
    let mut c = cluster(3, 21, |s| {
        s.clock_offset_ms = 5_000;
        s.drift_permille = 200;
        s.drift_extremes = true;
    });
    let offsets: Vec<i64> = (1..=3).map(|id| c.node(id).wall_offset_ms).collect();
    assert!(offsets.iter().max().unwrap() - offsets.iter().min().unwrap() > 1_000, "clocks apart: {offsets:?}");
    let old = elect(&mut c);
    c.run_for_ms(1_000);
    c.crash(old);
    assert!(c.run_until(3_000, |c| c.leader().is_some_and(|l| l != old)), "a new leader takes over");
    c.run_for_ms(1_000);
    let expiring = c.history.ops.iter().filter(|r| matches!(r.op.input, RegisterInput::SetExpiring { .. })).count();
    let gone = c
        .history
        .ops
        .iter()
        .filter(|r| r.op.input == RegisterInput::Get && r.op.output == Some(RegisterOutput::Value(None)))
        .count();
    assert!(expiring > 20 && gone > 20, "{expiring} expiring writes, {gone} reads of a missing key");
    // The end-of-run checks: every replica at the same commit index holds
    // the same store (expired entries and reclaims included), and the
    // history is linearizable with time (reads never see a key past its
    // expiry, and no write runs at a time before a read that came first).
    assert_finishes_clean(&mut c);
}

/// The window a new leader closes (`paxos::leader::become_leader`), as a
/// scenario. The leader, isolated, seals batches only it accepts; the
/// majority elects another, which serves reads (its floor, from the old
/// leader's horizon, is above those batches' stamps) and is cut off in
/// turn; the third node, elected with the first one's promise, recovers
/// the batches with their old stamps, after those reads. Closing the
/// window makes the second leader choose no-ops there before it reads.
fn deposed_leaders_batches_outlive_its_successor(seed: u64, bug: paxoskv::paxos::InjectedBug) -> Vec<Violation> {
    let mut c = cluster(3, seed, |s| {
        s.injected_bug = bug;
        s.pipeline = 4;
        s.clients = 8;
        s.window_slots = 64;
        s.think_us = 200;
    });
    let first = elect(&mut c);
    c.run_for_ms(200);
    let others: Vec<u32> = (1..=3).filter(|&n| n != first).collect();
    c.partition(&[first], &others);
    assert!(c.run_until(3_000, |c| c.leader().is_some_and(|l| l != first)), "the majority elects a leader");
    let second = c.leader().unwrap();
    c.run_for_ms(5); // it serves a few reads
    let third = others.iter().copied().find(|&n| n != second).unwrap();
    c.heal();
    c.partition(&[second], &[first, third]);
    c.run_for_ms(1_000);
    c.finish(LIVENESS_MS)
}

#[test]
fn a_deposed_leaders_batches_cannot_come_back_behind_its_successors_reads() {
    use paxoskv::paxos::InjectedBug;
    // Seeds 9 and 15 catch the injected bug (19 of seeds 1..=150 do: the
    // second leader must serve a read before its own writes cover the
    // first one's batches); a change to the schedule may move them (the
    // leader's commit records stopped asking for syncs of their own, and
    // 2 and 6 stopped catching it; syncs beside one another, issue 11,
    // and 10 stopped, 6 came back; a client's commands reaching its node
    // in the order sent, and 6 stopped, 23 started; a connection's order
    // kept, which sends a follower's reads behind its writes through the
    // log, and 8 and 23 stopped; released requests going before parked
    // ones, and 100 stopped, 24 and 26 started; the leader keeping the
    // order of forwarded commands, and 24 and 26 stopped, 10 and 13
    // started; a read behind a chosen write waiting for its read index,
    // and 10 and 13 stopped, 6 and 9 started; a snapshot's copy of the
    // store taken a share per drain, and 6 stopped, 15 started).
    for seed in [9, 15] {
        let caught = deposed_leaders_batches_outlive_its_successor(seed, InjectedBug::LeaderLeavesWindowOpen);
        assert!(!caught.is_empty(), "seed {seed} no longer catches leader-leaves-window-open");
    }
    for seed in [1, 2, 3, 4, 5, 6, 8, 10] {
        let clean = deposed_leaders_batches_outlive_its_successor(seed, InjectedBug::None);
        assert!(clean.is_empty(), "seed {seed}: {clean:#?}");
    }
}

/// Three nodes with a 256-byte backpressure bound under clients that
/// pipeline 4 commands with no think time, a leader elected and 300 ms
/// run: the setup of the slow-disk scenarios. Returns it and the leader.
fn loaded_with_a_small_bound(seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> (Cluster, u32) {
    let mut c = cluster(3, seed, |s| {
        s.unsynced_bytes_max = 256;
        s.pipeline = 4;
        s.think_us = 0;
        tweak(s);
    });
    let leader = elect(&mut c);
    c.run_for_ms(300);
    (c, leader)
}

/// From now on each of `node`'s fsyncs takes 400 ms (2,000 times 200 us).
fn slow_disk(c: &mut Cluster, node: u32) {
    c.config.fsync_factors = (1..=3).map(|n| if n == node { 2_000 } else { 1 }).collect();
}

/// A leader whose disk falls behind (its fsyncs take 400 ms, longer than
/// an election timeout; its backpressure bound is small) for 3 s, with
/// `hand_over_after_us` as given. Returns the leaders elected meanwhile
/// and the commands committed meanwhile.
fn leader_behind_its_disk(seed: u64, hand_over_after_us: u64) -> (u32, Vec<u32>, u64) {
    let (mut c, leader) = loaded_with_a_small_bound(seed, |s| s.hand_over_after_us = hand_over_after_us);
    slow_disk(&mut c, leader);
    let changes = c.leader_changes.len();
    let committed = c.checker.committed_end;
    c.run_for_ms(3_000);
    let leaders = c.leader_changes[changes..].iter().map(|change| change.node).collect();
    let progress = c.checker.committed_end - committed;
    c.config.fsync_factors.clear();
    assert_finishes_clean(&mut c);
    (leader, leaders, progress)
}

/// Such a leader hands its leadership over: it keeps hearing its
/// followers (a server that stopped reading every peer frame while its
/// disk was behind, `server/links.rs` until stop 53, lost its leadership to
/// the first slow fsync), so it knows they can elect a leader without it,
/// and steps down once an append has waited `hand_over_after_us` for its
/// fsync;
/// it does not campaign again while behind, and a follower with a healthy
/// disk leads from then on. Without the rule (`hand_over_after_us = 0`)
/// it keeps leading and holds every request until its disk catches up:
/// the cluster commits at that disk's pace.
#[test]
fn a_leader_whose_disk_is_behind_hands_its_leadership_over() {
    // Seeds 21-23 committed 6,065 / 5,850 / 5,401 commands with the rule
    // and 15 / 15 / 19 without it (stop 58, the successor named by the
    // hand-over; 5,078 / 4,836 / 5,099 with stop 57's rule, whose
    // followers waited out a lease and an election timeout first).
    for seed in [21, 22] {
        let (slow, leaders, progress) = leader_behind_its_disk(seed, 200_000);
        let (slow_off, leaders_off, progress_off) = leader_behind_its_disk(seed, 0);
        assert_eq!(slow, slow_off, "seed {seed}: the same first leader");
        assert!(!leaders.is_empty(), "seed {seed}: the leader on the slow disk kept leading");
        assert!(!leaders.contains(&slow), "seed {seed}: the node on the slow disk led again: {leaders:?}");
        assert!(
            leaders_off.is_empty(),
            "seed {seed}: without the rule the leader kept its leadership: {leaders_off:?}"
        );
        assert!(progress_off > 0, "seed {seed}: without the rule the cluster still committed");
        assert!(
            progress > 10 * progress_off,
            "seed {seed}: {progress} commands committed with the hand-over, {progress_off} without"
        );
    }
}

/// A follower whose disk falls far behind (its fsyncs take 400 ms, its
/// backpressure bound is small) still serves its clients at the pace of
/// the leader and the other follower: it forwards their requests
/// whatever its own disk does and reads its leader's answers, dropping
/// the entries over its bound. With the rule servers had until stop 55
/// (`--inject-bug peers-unread-while-behind`: past the bound, no peer
/// frame is read, its clients' answers included), its clients waited for
/// its disk. Returns the operations its clients and the other
/// follower's completed over 2 s of that (sent and answered in it).
fn ops_at_a_follower_behind_its_disk(seed: u64, bug: paxoskv::paxos::InjectedBug) -> (usize, usize) {
    let (mut c, leader) = loaded_with_a_small_bound(seed, |s| s.injected_bug = bug);
    let slow = (1..=3).find(|&n| n != leader).expect("a follower");
    let other = (1..=3).find(|&n| n != leader && n != slow).expect("another follower");
    slow_disk(&mut c, slow);
    // Past the first slow fsyncs: from here on the node is behind.
    c.run_for_ms(1_000);
    let since = c.now_us;
    c.run_for_ms(2_000);
    let done =
        |node| c.history.ops.iter().filter(|r| r.node == node && r.op.call >= since && r.op.ret.is_some()).count();
    let counts = (done(slow), done(other));
    assert_eq!(c.leader(), Some(leader), "seed {seed}: the leader kept its leadership");
    if bug == paxoskv::paxos::InjectedBug::None {
        c.config.fsync_factors.clear();
        assert_finishes_clean(&mut c);
    }
    counts
}

#[test]
fn a_follower_whose_disk_is_behind_still_serves_its_clients() {
    use paxoskv::paxos::InjectedBug;
    for seed in [1, 2, 3] {
        let (slow, other) = ops_at_a_follower_behind_its_disk(seed, InjectedBug::None);
        let (slow_bug, other_bug) = ops_at_a_follower_behind_its_disk(seed, InjectedBug::PeersUnreadWhileBehind);
        assert!(
            slow * 2 >= other,
            "seed {seed}: the slow follower's clients completed {slow} operations, the other's {other}"
        );
        assert!(
            slow_bug * 10 < other_bug,
            "seed {seed}: with its peers unread the slow follower's clients still completed {slow_bug} operations \
             (the other's {other_bug}): the scenario no longer tells the two rules apart"
        );
    }
}

/// A leader whose fsyncs take 400 ms under a load too light to put its
/// disk behind the backpressure bound (64 MiB) hands its leadership over
/// too: every write it leads waits 400 ms for its disk. The rule until
/// stop 57 asked for the disk to be behind the bound, and such a leader
/// kept leading. Seeds 21-23 committed 5,941 / 6,128 / 6,129 commands in
/// the 3 s with the rule (5,643 / 5,676 / 5,163 before stop 58 named the
/// successor) and 4,476 / 4,507 / 4,712 with the rule asking for the
/// bound. The next leader took office 3.1 / 2.5 / 3.1 ms after the
/// hand-over (208 ms on seed 21 before stop 58: a lease to run out, then
/// an election timeout).
#[test]
fn a_leader_whose_fsyncs_are_slow_hands_over_under_the_bound() {
    for seed in [21, 22] {
        let mut c = cluster(3, seed, |s| {
            s.unsynced_bytes_max = 64 << 20;
            s.pipeline = 4;
            s.think_us = 0;
        });
        let leader = elect(&mut c);
        c.run_for_ms(300);
        slow_disk(&mut c, leader);
        let changes = c.leader_changes.len();
        c.run_for_ms(3_000);
        let leaders: Vec<u32> = c.leader_changes[changes..].iter().map(|change| change.node).collect();
        assert!(!leaders.is_empty(), "seed {seed}: the leader on the slow disk kept leading");
        assert!(!leaders.contains(&leader), "seed {seed}: the node on the slow disk led again: {leaders:?}");
        // The successor it named takes office at once: no lease to wait
        // out, no election timeout (`Message::HandOver`).
        let handed_over_us = c.last_hand_over_us.expect("a hand-over");
        let successor = &c.leader_changes[changes];
        let gap_us = successor.t_us - handed_over_us;
        let lease_us = c.paxos_config.lease_ticks * 1_000;
        assert!(
            gap_us < lease_us / 4,
            "seed {seed}: the next leader took office {gap_us} us after the hand-over (lease {lease_us} us)"
        );
        c.config.fsync_factors.clear();
        assert_finishes_clean(&mut c);
    }
}

/// The same after a follower restarted: its restart quarantine (it
/// refuses every candidate for a lease) let the leader it heard extend
/// the quarantine instead of granting that leader a lease of its own, so
/// it refused every candidate, itself included, for as long as it heard
/// the leader, and the hand-over, which releases only that leader's own
/// grant, did not free it: the next leader took office 176-575 ms after
/// the leave in 18 of seeds 31..50, and 3-13 ms since the grant and the
/// quarantine are apart (`LeaseGrant`), except seed 39: 574 ms, its
/// successor's commit index a few slots behind the leader's, which had
/// compacted them into a snapshot, so its campaign gave way to a catch-up;
/// since the hand-over carries the leader's commit index
/// (`HandOver::commit`), 3-13 ms there too.
#[test]
fn a_leader_told_to_leave_after_a_follower_restarted_hands_over_as_fast() {
    for seed in 31..41 {
        let mut c = cluster(3, seed, |_| {});
        let old = elect(&mut c);
        c.run_for_ms(300);
        let follower = (1..=3).find(|&n| n != old).expect("a follower");
        c.crash(follower);
        c.run_for_ms(100);
        c.restart(follower);
        c.run_for_ms(2_000);
        let old = c.leader().expect("a leader");
        leave_and_see_the_successor_take_office(&mut c, old);
        c.crash(old);
        assert_finishes_clean(&mut c);
    }
}
