//! Randomized safety test: many seeds, crashes, partitions, one-way link failures, message
//! loss and storage latency, under several combinations of switches. After every step the
//! driver checks one leader per term, that committed entries never change, leader
//! completeness, ordered apply and state machine safety; at the end we also check that the
//! applied sequences of all servers are prefixes of one another.

use super::*;
use crate::raft::MAX_BACKOFF_EXPONENT;
use coracle_core::MS;
use rand::RngExt;
use std::collections::BTreeMap;

/// Runs one seed of chaos, heals everything and lets the cluster settle. Returns the
/// simulation and when (after healing) a leader was first seen: liveness is "a leader is
/// elected after healing", not "a leader is in office at the final instant" (with 15 % loss
/// and CheckQuorum a leader may be stepping down at that very moment and be replaced a
/// moment later).
fn chaos(c: RaftConfig, n: usize, seed: u64, storage: bool) -> (Sim, Option<Time>) {
    // Time to elect a leader after healing: 3 s, plus two of the longest candidate timeouts
    // when `backoff` may have stretched them (a candidate that failed often waits up to
    // `2^MAX_BACKOFF_EXPONENT` times its range before trying again).
    let mut settle = 3000 * MS;
    if c.backoff {
        let top = c
            .candidate_timeout
            .map_or(c.election_timeout_max.unwrap_or(300.0), |r| r[1]);
        settle += 2 * (1 << MAX_BACKOFF_EXPONENT) * (top * MS as f64) as Time;
    }
    let mut sim = Sim::new(c, n, 2, seed);
    // Every fourth seed is a rough network.
    let rough = seed % 4 == 3;
    sim.loss = if rough { 0.15 } else { 0.02 };
    sim.dup = if rough { 0.1 } else { 0.02 };
    sim.latency = (MS / 2, 4 * MS);
    sim.storage_latency = if storage { (seed % 3) * MS / 2 } else { 0 };
    sim.workload = Some(Workload {
        ops: 10_000,
        gap: 8 * MS,
        keys: 5,
        mix: Mix::GetPut,
    });
    sim.start_all();
    let mut rng = stream(seed, purpose::TIMELINE, 0);
    for _ in 0..60 {
        sim.run_for(100 * MS);
        let i = rng.random_range(0..n);
        match rng.random_range(0..10) {
            0 | 1 => {
                if sim.nodes[i].up {
                    sim.crash(i);
                } else {
                    sim.recover(i);
                }
            }
            2 => sim.isolate(i),
            3 => {
                let j = rng.random_range(0..n);
                if j != i {
                    sim.block_dir(i, j, true);
                }
            }
            4 | 5 => sim.heal(),
            _ => {}
        }
    }
    sim.heal();
    for i in 0..n {
        if !sim.nodes[i].up {
            sim.recover(i);
        }
    }
    let healed = sim.now;
    let mut elected = None;
    while sim.now < healed + settle {
        sim.run_for(10 * MS);
        if elected.is_none() && sim.leader().is_some() {
            elected = Some(sim.now - healed);
        }
    }
    (sim, elected)
}

/// Counters summed over all seeds (last incarnations only), to show which paths ran.
const SHOWN: &[&str] = &[
    "elections_won",
    "split_votes",
    "prevotes_won",
    "votes_deferred",
    "votes_rejected_term_bound",
    "stickiness_ignored",
    "leader_stepdowns_check_quorum",
    "append_rejections",
    "truncations",
    "duplicate_requests",
    "reads_served",
    "snapshots_taken",
    "snapshots_installed",
    "retries",
    "gave_up",
];

/// Runs `seeds` seeds of chaos and checks them; returns the counters of [`SHOWN`] summed.
pub(super) fn run_config(
    name: &str,
    c: RaftConfig,
    seeds: u64,
    n: usize,
    live: bool,
) -> BTreeMap<&'static str, u64> {
    let mut completed = 0;
    let mut sums = vec![0u64; SHOWN.len()];
    for seed in 0..seeds {
        let (sim, elected) = chaos(c.clone(), n, seed, true);
        for (k, name) in SHOWN.iter().enumerate() {
            sums[k] += sim.total(name);
        }
        if !sim.violations.is_empty() {
            panic!("{name} seed {seed}:\n{}", sim.violations.join("\n"));
        }
        sim.assert_applied_prefixes();
        if live {
            assert!(
                elected.is_some(),
                "{name} seed {seed}: no leader elected after healing"
            );
        }
        completed += sim.completions.len();
    }
    eprintln!(
        "{name}: {completed} ops; {:?}",
        SHOWN.iter().zip(&sums).collect::<Vec<_>>()
    );
    assert!(
        completed as u64 > seeds * 50,
        "{name}: only {completed} operations completed"
    );
    SHOWN.iter().copied().zip(sums).collect()
}

#[test]
fn random_faults_basic() {
    run_config("basic-5", cfg(), 150, 5, true);
    run_config("basic-3", cfg(), 100, 3, true);
    // A single server learns that its own writes completed through a loopback note.
    run_config("basic-1", cfg(), 50, 1, true);
}

#[test]
fn random_faults_prevote_check_quorum_stickiness() {
    let mut c = cfg();
    c.prevote = Some(true);
    c.check_quorum = true;
    run_config("prevote+check_quorum", c, 80, 5, true);
    let mut c = cfg();
    c.leader_stickiness = true;
    c.check_quorum = true;
    run_config("stickiness+check_quorum", c, 80, 5, true);
    let mut c = cfg();
    c.prevote_without_leader_check = true;
    c.leader_stickiness = true;
    run_config("prevote_wlc+stickiness", c, 80, 3, true);
}

#[test]
fn random_faults_timeouts_voting_and_replication_options() {
    let mut c = cfg();
    c.candidate_timeout = Some([23.0, 46.0]);
    c.backoff = true;
    c.lazy_voting = true;
    c.fast_backtrack = true;
    c.max_entries_per_message = 3;
    c.read_index = true;
    run_config(
        "candidate_timeout+backoff+lazy_voting+fast+read_index",
        c,
        30,
        5,
        true,
    );
    let mut c = cfg();
    c.batch_requests = true;
    c.lazy_update = true;
    c.term_bound = Some(4);
    c.read_index = true;
    c.client_max_attempts = Some(5);
    // A term bound may stall a healed cluster (that is the point of simulating it).
    run_config("batch+lazy_update+term_bound+read_index", c, 80, 5, false);
}

#[test]
fn random_faults_everything_on_seven_servers() {
    let mut c = cfg();
    c.prevote = Some(true);
    c.check_quorum = true;
    c.leader_stickiness = true;
    c.candidate_timeout = Some([30.0, 60.0]);
    c.backoff = true;
    c.lazy_voting = true;
    c.fast_backtrack = true;
    c.max_entries_per_message = 5;
    c.read_index = true;
    c.lazy_update = true;
    run_config("everything", c, 60, 7, true);
}

#[test]
fn random_faults_catch_the_unsafe_switches() {
    // The same chaos finds the violations of the two switches whose bad behaviour is common.
    // The others need rare interleavings (a crash between a vote and a second candidate of the
    // same term; Figure 8; a divergent suffix below the leader's commit index), which random
    // faults did not hit in 60 seeds: their hand-built scenarios are in `unsafe_switches`.
    for (u, seeds) in [
        (crate::raft::UnsafeSwitch::NoLogCheck, 40),
        (crate::raft::UnsafeSwitch::ReverseApply, 10),
    ] {
        let mut c = cfg();
        c.unsafe_switches = vec![u];
        let caught = (0..seeds)
            .filter(|&seed| !chaos(c.clone(), 5, seed, true).0.violations.is_empty())
            .count();
        eprintln!("{u:?}: {caught}/{seeds} seeds with a violation");
        assert!(caught > 0, "{u:?} never caught");
    }
}
