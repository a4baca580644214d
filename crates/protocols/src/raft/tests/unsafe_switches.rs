//! Each unsafe teaching switch, in a hand-built scenario, produces the violation it promises;
//! the same scenario without the switch stays safe.

use super::*;
use crate::raft::UnsafeSwitch;
use coracle_core::{MS, Role};

fn with(u: UnsafeSwitch) -> RaftConfig {
    let mut c = cfg();
    c.unsafe_switches = vec![u];
    c
}

fn has(sim: &Sim, what: &str) -> bool {
    sim.violations.iter().any(|v| v.contains(what))
}

/// A follower is cut off while the others commit; on healing it campaigns at once.
fn stale_candidate(c: RaftConfig) -> (Sim, usize) {
    let mut sim = Sim::new(c, 3, 1, 21);
    sim.workload = Some(Workload {
        ops: 300,
        gap: 5 * MS,
        keys: 3,
        mix: Mix::GetPut,
    });
    sim.start_all();
    sim.run_until(500 * MS);
    let l = sim.leader().unwrap();
    let f = (l + 1) % 3;
    sim.isolate(f);
    sim.run_until(2500 * MS);
    assert!(sim.obs(f).log_len + 5 < sim.obs(l).log_len);
    sim.heal();
    sim.fire(f, RaftTimer::Election);
    sim.run_until(3000 * MS);
    (sim, f)
}

#[test]
fn no_log_check_lets_a_stale_server_win_and_overwrite_committed_entries() {
    let (sim, f) = stale_candidate(cfg());
    sim.assert_safe();
    assert!(sim.leaders.values().all(|&l| l != f));

    let (sim, f) = stale_candidate(with(UnsafeSwitch::NoLogCheck));
    assert!(
        sim.leaders.values().any(|&l| l == f),
        "the stale server won"
    );
    assert!(has(&sim, "leader completeness"), "{:?}", sim.violations);
    assert!(has(&sim, "committed entry"), "{:?}", sim.violations);
}

#[test]
fn forget_vote_on_crash_lets_a_server_vote_twice_in_a_term() {
    // Rule level: the vote is gone after a restart.
    let (mut s, _) = Solo::new(
        with(UnsafeSwitch::ForgetVoteOnCrash),
        3,
        0,
        RaftDisk::default(),
    );
    s.recv(
        1,
        RaftMsg::RequestVote {
            term: 1,
            last_log_index: 0,
            last_log_term: 0,
        },
    );
    s.restart();
    assert_eq!(s.node.term(), 1);
    assert_eq!(s.node.voted_for(), None);

    // Scenario: two leaders in term 1.
    for unsafe_on in [false, true] {
        let c = if unsafe_on {
            with(UnsafeSwitch::ForgetVoteOnCrash)
        } else {
            cfg()
        };
        let mut sim = Sim::new(c, 3, 0, 1);
        sim.start_all();
        sim.block(0, 2);
        // Server 1 votes for 0 but never gets 0's entries, so its log stays empty.
        sim.filter = Some(Box::new(|_, from, to, m| {
            !(from == 0 && to == 1 && matches!(m, RaftMsg::AppendEntries { .. }))
        }));
        sim.fire(0, RaftTimer::Election);
        sim.run_for(10 * MS);
        assert_eq!(sim.obs(0).role, Role::Leader);
        sim.crash(1);
        sim.recover(1);
        sim.fire(2, RaftTimer::Election);
        sim.run_for(10 * MS);
        assert_eq!(sim.obs(2).role == Role::Leader, unsafe_on);
        assert_eq!(
            has(&sim, "two leaders in term 1"),
            unsafe_on,
            "{:?}",
            sim.violations
        );
    }
}

/// Figure 8 of the paper, built by hand (servers 0..4 are S1..S5).
fn figure8(c: RaftConfig) -> Sim {
    let mut c = c;
    c.max_entries_per_message = 1;
    // The schedule below is of messages as they arrive: nothing held.
    c.reorder_buffer = 0;
    let disks = vec![
        disk(3, None, log_of(&[1, 2], 0)), // S1: will lead term 4
        disk(3, None, log_of(&[1, 2], 0)), // S2
        disk(3, None, log_of(&[1], 0)),    // S3
        disk(3, None, log_of(&[1], 0)),    // S4
        disk(4, None, log_of(&[1, 3], 0)), // S5: an entry of term 3 at index 2
    ];
    let mut sim = Sim::with_disks(c, disks, 0, 1);
    // S3 may receive the term-4 leader's index 3 only in its first message (which it rejects
    // because it lacks index 2); later copies are lost.
    let mut seen = 0;
    sim.filter = Some(Box::new(move |_, from, to, m| {
        if let RaftMsg::AppendEntries {
            prev_log_index,
            entries,
            ..
        } = m
        {
            let covers3 = *prev_log_index < 3 && prev_log_index + entries.len() as u64 >= 3;
            if from == 0 && to == 2 && covers3 {
                seen += 1;
                return seen == 1;
            }
        }
        true
    }));
    for i in 0..3 {
        sim.start(i);
    }
    // S1 leads term 4 with votes from S2 and S3; S4 and S5 are down.
    sim.fire(0, RaftTimer::Election);
    sim.run_for(20 * MS);
    assert_eq!(sim.obs(0).role, Role::Leader);
    assert_eq!(sim.server(2).log().len(), 2, "S3 got index 2 but not 3");
    // S1 crashes; S5 (last term 3) wins term 5 with S3 and S4, and overwrites index 2.
    sim.crash(0);
    sim.start(3);
    sim.start(4);
    sim.fire(4, RaftTimer::Election);
    sim.run_for(100 * MS);
    assert_eq!(sim.obs(4).role, Role::Leader);
    assert_eq!(sim.obs(4).term, 5);
    assert_eq!(sim.server(2).log()[1].term, 3, "index 2 overwritten on S3");
    sim
}

#[test]
fn commit_old_terms_reproduces_figure_8() {
    let sim = figure8(cfg());
    sim.assert_safe();
    assert_eq!(
        sim.applied[0],
        vec![],
        "S1 never committed index 2 by counting"
    );

    let sim = figure8(with(UnsafeSwitch::CommitOldTerms));
    assert_eq!(
        sim.applied[0].len(),
        2,
        "S1 committed index 2 (term 2) by counting"
    );
    assert!(has(&sim, "state machine safety"), "{:?}", sim.violations);
    assert!(has(&sim, "leader completeness"), "{:?}", sim.violations);
}

fn stuck_follower(c: RaftConfig) -> Sim {
    let good = disk(3, None, log_of(&[1, 3, 3], 0));
    let bad = disk(2, None, log_of(&[1, 2, 2], 100));
    let mut bad = bad;
    bad.log[0] = good.log[0];
    let mut sim = Sim::with_disks(c, vec![good.clone(), good, bad], 0, 3);
    sim.start_all();
    sim.fire(0, RaftTimer::Election);
    sim.run_for(500 * MS);
    sim
}

#[test]
fn no_backtrack_leaves_followers_stuck_applying_unchecked_entries() {
    let sim = stuck_follower(cfg());
    sim.assert_safe();
    assert_eq!(sim.server(2).log(), sim.server(0).log());

    let sim = stuck_follower(with(UnsafeSwitch::NoBacktrack));
    assert_ne!(sim.server(2).log(), sim.server(0).log(), "never repaired");
    // The same failing request again with every heartbeat (50 ms) for 500 ms.
    let rejections = sim.counter(2, "append_rejections");
    assert!((8..=12).contains(&rejections), "{rejections}");
    assert!(has(&sim, "state machine safety"), "{:?}", sim.violations);
}

#[test]
fn reverse_apply_applies_a_batch_in_descending_order() {
    let d = disk(1, None, log_of(&[1, 1, 1, 1], 0));
    let (mut s, _) = Solo::new(with(UnsafeSwitch::ReverseApply), 3, 0, d);
    let outs = s.recv(
        1,
        RaftMsg::AppendEntries {
            term: 1,
            prev_log_index: 4,
            prev_log_term: 1,
            entries: vec![].into(),
            leader_commit: 3,
            round: 1,
        },
    );
    assert_eq!(applied(&outs), vec![3, 2, 1]);

    // In a cluster: a recovering follower re-applies its log backwards.
    let mut sim = Sim::new(with(UnsafeSwitch::ReverseApply), 3, 1, 2);
    sim.workload = Some(Workload {
        ops: 10,
        gap: 5 * MS,
        keys: 2,
        mix: Mix::GetPut,
    });
    sim.start_all();
    sim.run_until(1500 * MS);
    let l = sim.leader().unwrap();
    let f = (l + 1) % 3;
    sim.crash(f);
    sim.recover(f);
    sim.run_for(200 * MS);
    assert!(
        has(&sim, &format!("node {f} applied index")),
        "{:?}",
        sim.violations
    );
}
