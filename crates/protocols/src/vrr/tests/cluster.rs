//! Scenario tests on the shared deterministic driver: normal operation, view changes, recovery,
//! state transfer, partitions, loss and disk-based restarts. The driver checks safety after
//! every step; each test also asserts what it is about.

use super::*;
use crate::testkit::{Mix, Workload};
use crate::vrr::Status;
use coracle_core::{MS, Message, OpResult, Role};

fn workload(ops: u64, gap_ms: u64) -> Option<Workload> {
    Some(Workload {
        ops,
        gap: gap_ms * MS,
        keys: 4,
        mix: Mix::GetCasPut,
    })
}

fn settle(sim: &mut Sim, limit_ms: u64) {
    let ok = sim.run_until_cond(limit_ms * MS, 10 * MS, converged);
    assert!(ok, "no convergence within {limit_ms} ms");
}

fn sent_by(sim: &Sim, from: usize) -> Vec<&'static str> {
    sim.sent
        .iter()
        .filter(|(_, f, _, _)| *f == from)
        .map(|(_, _, _, m)| m.kind())
        .collect()
}

#[test]
fn normal_operation_commits_executes_and_answers() {
    let mut sim = Sim::new(cfg(), 3, 1, 1);
    sim.start_all();
    // View 0 needs no election: the first server is its primary at once.
    assert_eq!(sim.obs(0).role, Role::Leader);
    for i in 1..3 {
        assert_eq!(sim.obs(i).role, Role::Follower);
        assert_eq!(sim.obs(i).leader, Some(NodeId(0)));
    }
    let put = sim.submit(3, Op::Put { key: 1, value: 7 });
    sim.run_for(10 * MS);
    assert_eq!(
        sim.completion(put).map(|c| c.result),
        Some(Some(OpResult::Written))
    );
    assert_eq!(sim.obs(0).commit_index, 1);
    assert_eq!(sim.obs(0).log_len, 1);
    assert_eq!(sim.obs(0).last_log_term, 0);
    let get = sim.submit(3, Op::Get { key: 1 });
    sim.run_for(10 * MS);
    assert_eq!(
        sim.completion(get).map(|c| c.result),
        Some(Some(OpResult::Value { value: Some(7) }))
    );
    // Backups learn the commit from the next Prepare or the heartbeat's Commit.
    sim.run_for(60 * MS);
    for i in 0..3 {
        assert_eq!(sim.obs(i).commit_index, 2, "server {i}");
        assert_eq!(sim.server(i).executed(), 2);
        assert_eq!(sim.applied[i].len(), 2);
    }
    assert_eq!(sim.counter(0, "prepares_sent"), 4);
    assert!(sim.counter(0, "commits_sent") >= 2);
    assert_eq!(sim.total("view_changes_started"), 0);
    sim.assert_safe();
}

#[test]
fn clusters_of_one_three_five_and_four_serve_a_workload() {
    for (n, durable_mode) in [(1, false), (1, true), (3, false), (5, false), (4, true)] {
        let c = VrrConfig {
            durable: durable_mode,
            ..cfg()
        };
        let mut sim = Sim::new(c, n, 2, 3);
        sim.storage_latency = if durable_mode { MS } else { 0 };
        sim.workload = workload(100, 2);
        sim.start_all();
        sim.run_for(3000 * MS);
        assert_eq!(sim.completions.len(), 200, "n = {n}");
        assert!(sim.completions.iter().all(|c| c.result.is_some()));
        settle(&mut sim, 200);
        assert_eq!(sim.obs(0).commit_index, 200);
        assert_eq!(sim.total("view_changes_started"), 0);
        sim.assert_safe();
        sim.assert_applied_prefixes();
        sim.assert_log_matching();
    }
}

#[test]
fn single_durable_replica_commits_only_after_its_write_completed() {
    let mut sim = Sim::new(durable(), 1, 1, 1);
    sim.storage_latency = 5 * MS;
    sim.start_all();
    // The request arrives after 1-2 ms, its write completes 5 ms later.
    let id = sim.submit(1, Op::Put { key: 0, value: 1 });
    sim.run_for(4 * MS);
    assert_eq!(sim.obs(0).log_len, 1);
    assert_eq!(sim.obs(0).commit_index, 0, "its own write is not done yet");
    sim.run_for(4 * MS);
    assert_eq!(sim.obs(0).commit_index, 1);
    sim.run_for(3 * MS);
    assert!(sim.completion(id).is_some());
    // A crash before the next write completes loses the op, which was never committed.
    sim.submit(1, Op::Put { key: 0, value: 2 });
    sim.run_for(MS);
    sim.crash(0);
    sim.recover(0);
    assert_eq!(sim.obs(0).log_len, 1);
    assert_eq!(sim.obs(0).role, Role::Leader);
    sim.run_for(500 * MS);
    assert_eq!(sim.completions.len(), 2, "the proxy's retry succeeds");
    sim.assert_safe();
}

#[test]
fn a_duplicate_request_gets_the_cached_reply_and_executes_once() {
    let mut sim = Sim::new(cfg(), 3, 1, 2);
    sim.record = true;
    sim.start_all();
    let req = VrrMsg::Request {
        seq: 5,
        op: Op::Cas {
            key: 0,
            expect: None,
            new: 1,
        },
    };
    // A retransmission that arrives while the first copy is still being prepared is not
    // appended twice.
    sim.inject(3, 0, req.clone());
    sim.inject(3, 0, req.clone());
    assert_eq!(sim.obs(0).log_len, 1);
    sim.run_for(10 * MS);
    let replies = |sim: &Sim| -> Vec<Option<OpResult>> {
        sim.sent
            .iter()
            .filter_map(|(_, f, t, m)| match m {
                VrrMsg::Reply { seq: 5, result, .. } if *f == 0 && *t == 3 => Some(*result),
                _ => None,
            })
            .collect()
    };
    assert_eq!(replies(&sim), vec![Some(OpResult::Cas { ok: true })]);
    // Re-executing the compare-and-swap would fail; the client table returns the original.
    sim.inject(3, 0, req.clone());
    assert_eq!(replies(&sim).len(), 2);
    assert_eq!(replies(&sim)[1], Some(OpResult::Cas { ok: true }));
    assert_eq!(sim.counter(0, "duplicate_requests"), 1);
    assert_eq!(sim.obs(0).log_len, 1);
    // A lower request number is dropped without an answer.
    sim.inject(
        3,
        0,
        VrrMsg::Request {
            seq: 4,
            op: Op::Get { key: 0 },
        },
    );
    assert_eq!(replies(&sim).len(), 2);
    assert_eq!(sim.obs(0).log_len, 1);
    sim.run_for(100 * MS);
    for i in 0..3 {
        assert_eq!(sim.server(i).kv().applied_commands(), 1, "server {i}");
        assert_eq!(sim.server(i).kv().read(0), Some(1));
    }
    sim.assert_safe();
}

#[test]
fn backups_redirect_clients_to_the_primary_of_their_view() {
    let mut sim = Sim::new(cfg(), 3, 1, 4);
    sim.record = true;
    sim.start_all();
    sim.inject(
        3,
        2,
        VrrMsg::Request {
            seq: 1,
            op: Op::Get { key: 0 },
        },
    );
    let redirect = sim.sent.iter().find_map(|(_, f, t, m)| match m {
        VrrMsg::Reply { view, result, .. } if *f == 2 && *t == 3 => Some((*view, *result)),
        _ => None,
    });
    assert_eq!(redirect, Some((0, None)));
    assert_eq!(sim.counter(2, "redirects"), 1);
    assert_eq!(sim.obs(2).log_len, 0);
}

#[test]
fn primary_crash_elects_the_next_primary_and_committed_ops_survive() {
    for n in [3, 5] {
        let mut sim = Sim::new(cfg(), n, 2, 5);
        sim.workload = workload(1000, 5);
        sim.start_all();
        sim.run_for(500 * MS);
        let committed = sim.obs(0).commit_index;
        assert!(committed > 50);
        let done = sim.completions.len();
        sim.crash(0);
        sim.run_for(1000 * MS);
        // The primary of view 1 is the second server in the configured order.
        assert_eq!(sim.leader(), Some(1), "n = {n}");
        assert_eq!(sim.obs(1).term, 1);
        assert_eq!(sim.leaders.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        for (k, c) in sim.committed.iter().enumerate().take(committed as usize) {
            assert_eq!(sim.entry(1, k as u64 + 1), Some(c.entry));
        }
        assert!(sim.completions.len() > done + 50, "clients continue");
        assert!(sim.total("view_changes_completed") == 1);
        // The old primary comes back without its memory and recovers from the others.
        sim.recover(0);
        assert_eq!(sim.obs(0).role, Role::Recovering);
        settle_with_load(&mut sim);
        assert_eq!(sim.counter(0, "recoveries_completed"), 1);
        sim.assert_safe();
        sim.assert_applied_prefixes();
    }
}

#[test]
fn a_new_primary_that_crashes_before_start_view_is_replaced_by_a_later_view() {
    // (a) The primary of view 1 crashes while still collecting DoViewChange messages.
    let mut sim = Sim::new(cfg(), 5, 1, 6);
    sim.workload = workload(1000, 5);
    sim.start_all();
    sim.run_for(300 * MS);
    sim.crash(0);
    let entered = sim.run_until_cond(1000 * MS, MS / 10, |s| s.obs(1).role == Role::Candidate);
    assert!(entered);
    assert_eq!(sim.obs(1).term, 1);
    sim.crash(1);
    sim.run_for(1500 * MS);
    assert_eq!(sim.leader(), Some(2));
    assert_eq!(sim.obs(2).term, 2);
    assert!(!sim.leaders.contains_key(&1), "view 1 never started");
    let done = sim.completions.len();
    sim.run_for(500 * MS);
    assert!(sim.completions.len() > done + 20);
    sim.assert_safe();

    // (b) It collects its quorum and becomes primary, but its StartView messages are lost
    // (the filter drops them) and it crashes right away.
    let mut sim = Sim::new(cfg(), 5, 1, 7);
    sim.workload = workload(1000, 5);
    sim.filter = Some(Box::new(|_, _, _, m| {
        !matches!(m, VrrMsg::StartView { .. })
    }));
    sim.start_all();
    sim.run_for(300 * MS);
    sim.crash(0);
    let won = sim.run_until_cond(1000 * MS, MS / 10, |s| s.obs(1).role == Role::Leader);
    assert!(won);
    sim.crash(1);
    sim.run_for(1500 * MS);
    let l = sim.leader().expect("a later view completes");
    assert!(sim.obs(l).term >= 2);
    // No StartView is ever delivered in this run: the backups of the later view join it
    // through the new primary's Commit heartbeats and state transfer.
    assert!(sim.total("state_transfers_completed") >= 2);
    let done = sim.completions.len();
    sim.run_for(500 * MS);
    assert!(sim.completions.len() > done + 20);
    sim.assert_safe();
}

#[test]
fn a_lost_start_view_is_repaired_without_another_view_change() {
    let mut sim = Sim::new(cfg(), 3, 1, 8);
    sim.workload = workload(1000, 5);
    // Server 2 never receives a StartView.
    sim.filter = Some(Box::new(|_, _, to, m| {
        !(to == 2 && matches!(m, VrrMsg::StartView { .. }))
    }));
    sim.start_all();
    sim.run_for(300 * MS);
    sim.crash(0);
    sim.run_for(1000 * MS);
    assert_eq!(sim.leader(), Some(1));
    let s2 = sim.server(2);
    assert_eq!(
        (s2.status(), s2.view(), s2.last_normal()),
        (Status::Normal, 1, 1)
    );
    assert_eq!(sim.counter(2, "state_transfers_completed"), 1);
    assert_eq!(sim.total("view_changes_completed"), 1);
    assert_eq!(sim.counter(2, "view_changes_started"), 1);
    sim.assert_safe();
}

#[test]
fn a_diskless_backup_recovers_from_the_others_and_never_votes_while_recovering() {
    let mut sim = Sim::new(cfg(), 5, 1, 9);
    sim.workload = workload(10_000, 5);
    sim.record = true;
    sim.start_all();
    sim.run_for(300 * MS);
    assert!(sim.server(4).executed() > 10);
    sim.crash(4);
    sim.run_for(100 * MS);
    // The recovering replica cannot hear from the primary, so it stays recovering.
    sim.block(0, 4);
    sim.recover(4);
    assert_eq!(sim.obs(4).role, Role::Recovering);
    assert_eq!(sim.obs(4).log_len, 0);
    sim.run_for(500 * MS);
    assert_eq!(sim.obs(4).role, Role::Recovering);
    assert!(sim.counter(4, "recoveries_started") >= 1);
    assert!(sim.kind("recovery_response") > 0, "the backups answer");
    // The primary fails: the three others change view without the recovering replica, which
    // can complete its recovery only once the primary of view 1 answers.
    sim.crash(0);
    let changed = sim.run_until_cond(1000 * MS, MS, |s| s.leader() == Some(1));
    assert!(changed);
    assert_eq!(
        sim.obs(4).role,
        Role::Recovering,
        "view 1 started without it"
    );
    settle_with_load(&mut sim);
    assert_eq!(sim.counter(4, "recoveries_completed"), 1);
    assert_eq!(sim.obs(4).term, 1);
    let kinds = sent_by(&sim, 4);
    assert!(!kinds.contains(&"start_view_change") && !kinds.contains(&"do_view_change"));
    // It executed everything again from op 1 in its new incarnation.
    let ones = sim.applied[4].iter().filter(|(i, _)| *i == 1).count();
    assert_eq!(ones, 2);
    assert_eq!(sim.server(4).executed(), sim.server(4).commit_number());
    sim.assert_safe();
    sim.assert_applied_prefixes();
}

/// Stops the workload and waits for convergence.
fn settle_with_load(sim: &mut Sim) {
    sim.workload = None;
    settle(sim, 2000);
}

#[test]
fn a_lagging_backup_catches_up_by_state_transfer_in_batches() {
    let c = VrrConfig {
        max_entries_per_message: 4,
        ..cfg()
    };
    let mut sim = Sim::new(c, 3, 3, 10);
    sim.workload = workload(10_000, 4);
    // Server 2 hears nothing from the primary for 120 ms (less than any view-change timeout).
    sim.filter = Some(Box::new(|now, from, to, _| {
        !(from == 0 && to == 2 && (100 * MS..220 * MS).contains(&now))
    }));
    sim.start_all();
    sim.run_for(220 * MS);
    let behind = sim.obs(0).log_len - sim.obs(2).log_len;
    assert!(behind > 20, "behind by {behind}");
    sim.run_for(100 * MS);
    assert!(sim.counter(2, "state_transfers") >= behind / 4);
    assert!(sim.kind("new_state") >= behind / 4, "batches of at most 4");
    assert_eq!(sim.total("view_changes_started"), 0);
    let (a, b) = (sim.obs(0), sim.obs(2));
    assert!(
        a.log_len - b.log_len < 5,
        "caught up: {} vs {}",
        a.log_len,
        b.log_len
    );
    sim.assert_safe();
    sim.assert_log_matching();
}

#[test]
fn partitions_minority_primary_cannot_commit_majority_changes_view_and_healing_converges() {
    let mut sim = Sim::new(cfg(), 5, 2, 11);
    sim.workload = workload(10_000, 5);
    sim.start_all();
    sim.run_for(300 * MS);
    // Old primary 0, backup 1 and client 5 on one side; 2, 3, 4 and client 6 on the other.
    sim.partition(&[0, 1, 5]);
    let commit0 = sim.obs(0).commit_index;
    let done6 = sim.completions_of(6).len();
    sim.run_for(2000 * MS);
    assert_eq!(
        sim.obs(0).role,
        Role::Leader,
        "nobody tells the old primary"
    );
    assert_eq!(sim.obs(0).term, 0);
    assert!(
        sim.obs(0).commit_index <= commit0 + 2,
        "the minority primary cannot commit (beyond acknowledgements already in flight)"
    );
    assert!(
        sim.obs(0).log_len > sim.obs(0).commit_index,
        "it did prepare ops"
    );
    // View 1's primary (server 1) is in the minority: the majority moves on to view 2.
    let l = sim.leader().expect("majority primary");
    assert!(l >= 2 && sim.obs(l).term >= 2, "leader {l}");
    assert!(sim.completions_of(6).len() > done6 + 100);
    sim.heal();
    let done5 = sim.completions_of(5).len();
    sim.run_for(1000 * MS);
    assert!(
        sim.completions_of(5).len() > done5 + 10,
        "the minority client is served again"
    );
    settle_with_load(&mut sim);
    let v = sim.obs(l).term;
    for i in 0..5 {
        assert_eq!(sim.obs(i).term, v);
    }
    assert!(sim.counter(0, "state_transfers") >= 1);
    sim.assert_safe();
    sim.assert_applied_prefixes();
    sim.assert_log_matching();
}

#[test]
fn lossy_links_still_make_progress_and_converge() {
    for (n, seed) in [(3, 12), (5, 13)] {
        let c = VrrConfig {
            client_timeout: Some(100.0),
            ..cfg()
        };
        let mut sim = Sim::new(c, n, 2, seed);
        sim.loss = 0.2;
        sim.dup = 0.05;
        sim.latency = (MS / 2, 5 * MS);
        sim.workload = workload(10_000, 5);
        sim.start_all();
        sim.run_for(5000 * MS);
        assert!(sim.completions.len() > 40, "{}", sim.completions.len());
        assert!(sim.total("retries") > 0);
        sim.loss = 0.0;
        sim.dup = 0.0;
        sim.workload = None;
        settle(&mut sim, 3000);
        sim.assert_safe();
        sim.assert_applied_prefixes();
        sim.assert_log_matching();
    }
}

#[test]
fn durable_replicas_restart_from_disk() {
    let mut sim = Sim::new(durable(), 3, 1, 14);
    sim.storage_latency = MS;
    sim.workload = workload(10_000, 5);
    sim.start_all();
    sim.run_for(500 * MS);
    // The disk holds the view and the log (minus writes still in flight).
    for i in 0..3 {
        let (d, s) = (&sim.nodes[i].disk, sim.server(i));
        assert_eq!((d.view, d.last_normal), (0, 0));
        assert!(s.log().starts_with(&d.log) && s.log().len() - d.log.len() <= 2);
    }
    // Everyone crashes at once: diskless VR would have lost everything.
    let committed = sim.committed.len();
    for i in 0..3 {
        sim.crash(i);
    }
    sim.run_for(50 * MS);
    for i in 0..3 {
        sim.recover(i);
        assert_ne!(sim.obs(i).role, Role::Recovering);
    }
    assert_eq!(
        sim.obs(0).role,
        Role::Leader,
        "the primary of view 0 resumes"
    );
    // The client's request was lost with the crash: it retries after its timeout.
    let done = sim.completions.len();
    sim.run_for(1000 * MS);
    assert!(sim.completions.len() > done + 50);
    assert!(sim.committed.len() > committed);
    assert_eq!(sim.total("recoveries_started"), 0);
    // A backup that restarts alone resumes as a backup from the commit-number written with
    // its last append (a lower bound: it learns the rest from the primary), and has executed
    // those ops already.
    let on_disk = sim.nodes[2].disk.commit;
    assert!(on_disk > 0 && on_disk <= sim.server(2).commit_number());
    sim.crash(2);
    sim.recover(2);
    assert_eq!(sim.obs(2).role, Role::Follower);
    assert_eq!(sim.obs(2).commit_index, on_disk);
    assert_eq!(sim.server(2).executed(), on_disk);
    settle_with_load(&mut sim);
    sim.assert_safe();
    sim.assert_applied_prefixes();
}

#[test]
fn durable_replica_restarted_mid_view_change_resumes_it() {
    let mut sim = Sim::new(durable(), 3, 1, 15);
    sim.storage_latency = MS;
    sim.workload = workload(10_000, 5);
    sim.start_all();
    sim.run_for(300 * MS);
    sim.crash(0);
    let in_vc = sim.run_until_cond(1000 * MS, MS / 10, |s| {
        s.obs(2).role == Role::Candidate && s.nodes[2].disk.view == 1
    });
    assert!(in_vc);
    sim.crash(2);
    sim.recover(2);
    assert_eq!(sim.obs(2).role, Role::Candidate);
    assert_eq!(sim.obs(2).term, 1);
    sim.run_for(1000 * MS);
    let l = sim.leader().expect("a primary");
    assert!(sim.obs(l).term >= 1);
    sim.recover(0);
    settle_with_load(&mut sim);
    sim.assert_safe();
    sim.assert_applied_prefixes();
}

#[test]
fn a_restarted_client_proxy_is_not_mistaken_for_its_previous_incarnation() {
    let mut sim = Sim::new(cfg(), 3, 1, 16);
    sim.start_all();
    sim.submit(3, Op::Put { key: 0, value: 1 });
    sim.run_for(10 * MS);
    assert_eq!(sim.completions.len(), 1);
    sim.crash(3);
    sim.run_for(MS);
    sim.start(3);
    let id = sim.submit(3, Op::Put { key: 0, value: 2 });
    sim.run_for(10 * MS);
    assert_eq!(
        sim.completion(id).map(|c| c.result),
        Some(Some(OpResult::Written))
    );
    assert_eq!(sim.server(0).kv().read(0), Some(2));
}

#[test]
fn the_proxy_gives_up_after_client_max_attempts() {
    let c = VrrConfig {
        client_max_attempts: Some(3),
        client_timeout: Some(20.0),
        ..cfg()
    };
    let mut sim = Sim::new(c, 3, 1, 17);
    sim.start_all();
    sim.isolate(3);
    let id = sim.submit(3, Op::Get { key: 0 });
    sim.run_for(100 * MS);
    assert_eq!(sim.completion(id).map(|c| c.result), Some(None));
    assert_eq!(sim.counter(3, "gave_up"), 1);
    assert_eq!(sim.counter(3, "retries"), 2);
    assert_eq!(sim.counter(3, "timeouts"), 3);
}

/// `checkpoint_interval`: every replica checkpoints on its own and drops the log it covers; a
/// backup cut off from the primary while the others compacted past its op-number catches up
/// from the primary's checkpoint (state transfer), with the same store as everyone.
#[test]
fn a_backup_behind_the_checkpoints_catches_up_from_one() {
    let c = VrrConfig {
        max_entries_per_message: 4,
        ..ckpt(cfg(), 10)
    };
    let mut sim = Sim::new(c, 3, 3, 10);
    sim.workload = workload(10_000, 4);
    sim.filter = Some(Box::new(|now, from, to, _| {
        !(from == 0 && to == 2 && (100 * MS..220 * MS).contains(&now))
    }));
    sim.start_all();
    sim.run_for(220 * MS);
    let behind = sim.obs(0).log_len - sim.obs(2).log_len;
    assert!(behind > 20, "behind by {behind}");
    assert!(sim.server(0).checkpoint_op() > sim.obs(2).log_len);
    assert!(sim.server(0).log().len() <= 10 + 3);
    sim.run_for(100 * MS);
    assert!(sim.counter(2, "checkpoints_installed") >= 1);
    assert!(!sim.restored[2].is_empty(), "reported as Restored");
    assert_eq!(sim.total("view_changes_started"), 0);
    settle_with_load(&mut sim);
    for i in 0..3 {
        assert_eq!(sim.server(i).kv(), sim.server(0).kv(), "server {i}");
        assert!(sim.counter(i, "checkpoints_taken") > 0, "server {i}");
    }
    sim.assert_safe();
    sim.assert_applied_prefixes();
    sim.assert_log_matching();
}

/// A diskless replica recovers from the primary's checkpoint and the log after it (it does
/// not execute from op 1), and the primary crashing after compaction changes the view.
#[test]
fn recovery_and_view_changes_after_compaction() {
    let mut sim = Sim::new(ckpt(cfg(), 7), 5, 2, 9);
    sim.workload = workload(10_000, 5);
    sim.start_all();
    sim.run_for(300 * MS);
    assert!(sim.server(4).checkpoint_op() > 0);
    sim.crash(4);
    sim.run_for(100 * MS);
    sim.recover(4);
    let ok = sim.run_until_cond(1000 * MS, MS, |s| s.obs(4).role != Role::Recovering);
    assert!(ok);
    assert_eq!(sim.counter(4, "recoveries_completed"), 1);
    assert!(sim.counter(4, "checkpoints_installed") >= 1);
    let ones = sim.applied[4].iter().filter(|(i, _)| *i == 1).count();
    assert_eq!(ones, 1, "not executed from op 1 again");
    // The primary fails after compacting: view 1 completes with the others' suffixes.
    sim.run_for(200 * MS);
    sim.crash(0);
    let changed = sim.run_until_cond(1000 * MS, MS, |s| s.leader() == Some(1));
    assert!(changed);
    sim.run_for(300 * MS);
    sim.recover(0);
    settle_with_load(&mut sim);
    assert!(sim.server(0).checkpoint_op() > 0);
    for i in 0..5 {
        assert_eq!(sim.server(i).kv(), sim.server(1).kv(), "server {i}");
    }
    sim.assert_safe();
    sim.assert_applied_prefixes();
    sim.assert_log_matching();
}

/// Disk-based replicas persist their checkpoints and restart from them.
#[test]
fn durable_replicas_restart_from_their_checkpoints() {
    let mut sim = Sim::new(ckpt(durable(), 10), 3, 1, 14);
    sim.storage_latency = MS;
    sim.workload = workload(10_000, 5);
    sim.start_all();
    sim.run_for(500 * MS);
    for i in 0..3 {
        let d = &sim.nodes[i].disk;
        let c = d.checkpoint.as_ref().expect("a checkpoint on disk");
        assert!(c.op > 0 && c.op <= sim.server(i).checkpoint_op());
        assert!(d.op() <= sim.server(i).op_number());
    }
    let committed = sim.committed.len();
    for i in 0..3 {
        sim.crash(i);
    }
    sim.run_for(50 * MS);
    for i in 0..3 {
        sim.recover(i);
        let base = sim.nodes[i].disk.checkpoint_op();
        assert_eq!(sim.server(i).checkpoint_op(), base);
        assert!(sim.server(i).executed() >= base);
        assert_eq!(sim.restored[i].last().map(|r| r.1), Some(base));
    }
    sim.run_for(1000 * MS);
    assert!(sim.committed.len() > committed);
    settle_with_load(&mut sim);
    sim.assert_safe();
    sim.assert_applied_prefixes();
}
