//! Randomized safety test: many seeds with crashes (of random replicas and of the primary),
//! partitions (clients split between the sides), isolated replicas, one-way link failures,
//! message loss and duplication, and storage latency, for diskless and disk-based replicas.
//! After every step the driver checks one primary per view, that committed ops never change,
//! leader completeness, ordered execution, that executed ops agree, and that the last
//! committed op is held by a majority (failed and recovering replicas excused). At the end of
//! each run, after healing, every replica must converge; logs must match; and every completed
//! client operation must have returned what the sequential key-value store returns when the
//! committed log is replayed.
//!
//! Diskless replicas follow the paper's failure model: at most f replicas are failed at a time,
//! where a replica counts as failed from its crash until its recovery protocol completes.
//! Disk-based replicas crash freely (all at once included).

use super::*;
use crate::testkit::{Mix, Workload};
use coracle_core::kv::Applied;
use coracle_core::{KvStore, MS, OpResult, Role};
use rand::RngExt;
use std::collections::BTreeMap;

/// Servers down or recovering.
fn failed(sim: &Sim) -> usize {
    (0..sim.n_servers)
        .filter(|&i| !sim.nodes[i].up || sim.obs(i).role == Role::Recovering)
        .count()
}

fn chaos(c: VrrConfig, n: usize, seed: u64) -> Sim {
    let durable_mode = c.durable;
    let mut sim = Sim::new(c, n, 2, seed);
    sim.check_majority_held = true;
    // Every fourth seed is a rough network.
    let rough = seed % 4 == 3;
    sim.loss = if rough { 0.15 } else { 0.02 };
    sim.dup = if rough { 0.1 } else { 0.02 };
    sim.latency = (MS / 2, 4 * MS);
    sim.storage_latency = if durable_mode { (seed % 3) * MS / 2 } else { 0 };
    sim.workload = Some(Workload {
        ops: 10_000,
        gap: 8 * MS,
        keys: 5,
        mix: Mix::GetCasPut,
    });
    sim.start_all();
    let f = (n - 1) / 2;
    let clients = sim.nodes.len() - n;
    let mut rng = stream(seed, purpose::TIMELINE, 0);
    for _ in 0..120 {
        sim.run_for(50 * MS);
        let i = rng.random_range(0..n);
        match rng.random_range(0..11) {
            0 | 1 => {
                if !sim.nodes[i].up {
                    sim.recover(i);
                } else if durable_mode || failed(&sim) < f {
                    sim.crash(i);
                }
            }
            2 => {
                if let Some(l) = sim.leader()
                    && (durable_mode || failed(&sim) < f)
                {
                    sim.crash(l);
                }
            }
            3 => sim.isolate(i),
            10 => {
                let j = rng.random_range(0..n);
                if j != i {
                    sim.block_dir(i, j, true);
                }
            }
            4 => {
                // Two sides, each with some of the servers and some of the clients: a primary
                // cut off from a majority may keep receiving requests.
                let side: Vec<usize> = (0..n + clients).filter(|_| rng.random_bool(0.5)).collect();
                sim.heal();
                sim.partition(&side);
            }
            5 | 6 => sim.heal(),
            _ => {}
        }
    }
    sim.heal();
    for i in 0..n {
        if !sim.nodes[i].up {
            sim.recover(i);
        }
    }
    sim.loss = 0.0;
    sim.dup = 0.0;
    sim.run_for(1000 * MS);
    sim.workload = None;
    sim.run_until_cond(5000 * MS, 10 * MS, converged);
    sim
}

/// Every completed operation returned what the sequential store returns when the committed
/// log is replayed: the i-th completion of a client is the i-th op of that client that took
/// effect (one op is outstanding at a time and nobody gives up).
fn check_results(sim: &Sim, what: &str) -> usize {
    let s = sim.server(0);
    if s.checkpoint_op() > 0 {
        return check_compacted(sim, what);
    }
    let log = &s.log()[..s.commit_number() as usize];
    for (i, e) in log.iter().enumerate() {
        if let Some(c) = sim.committed.get(i) {
            assert_eq!(c.entry, e.id(), "{what}: committed entry {}", i + 1);
        }
    }
    let mut kv = KvStore::default();
    let mut fresh: BTreeMap<usize, Vec<(Op, OpResult)>> = BTreeMap::new();
    for e in log {
        if let Applied::Fresh(r) = kv.apply(&e.cmd) {
            fresh
                .entry(e.cmd.client.index())
                .or_default()
                .push((e.cmd.op, r));
        }
    }
    let mut completed = 0;
    for c in sim.n_servers..sim.nodes.len() {
        let done = sim.completions_of(c);
        let took_effect = fresh.get(&c).map_or(&[][..], |v| &v[..]);
        assert!(
            took_effect.len() == done.len() || took_effect.len() == done.len() + 1,
            "{what}: client {c} completed {} ops but {} took effect",
            done.len(),
            took_effect.len()
        );
        for (k, d) in done.iter().enumerate() {
            assert_eq!(d.op, took_effect[k].0, "{what}: client {c} op {k}");
            assert_eq!(
                d.result,
                Some(took_effect[k].1),
                "{what}: client {c} op {k}"
            );
        }
        completed += done.len();
    }
    completed
}

/// With checkpoints the early commands are gone: every replica's store is its checkpoint's
/// with the rest of the committed log replayed, the committed ops it holds are the ones first
/// observed, and all stores agree. (Client results are checked by the simulator's
/// linearizability checker in `crates/sim/tests/vrr.rs`.) Returns the completions.
fn check_compacted(sim: &Sim, what: &str) -> usize {
    let mut stores = Vec::new();
    for i in 0..sim.n_servers {
        let s = sim.server(i);
        let base = s.checkpoint_op();
        let mut kv = s
            .checkpoint()
            .map_or_else(KvStore::default, |c| c.kv.clone());
        for (k, e) in s.log()[..(s.commit_number() - base) as usize]
            .iter()
            .enumerate()
        {
            if let Some(c) = sim.committed.get(base as usize + k) {
                assert_eq!(
                    c.entry,
                    e.id(),
                    "{what}: committed entry {}",
                    base as usize + k + 1
                );
            }
            kv.apply(&e.cmd);
        }
        assert!(
            &kv == s.kv(),
            "{what}: replica {i}'s store is not its checkpoint plus its log"
        );
        stores.push(kv);
    }
    assert!(
        stores.windows(2).all(|w| w[0] == w[1]),
        "{what}: stores differ"
    );
    (sim.n_servers..sim.nodes.len())
        .map(|c| sim.completions_of(c).len())
        .sum()
}

/// Counters summed over all seeds (last incarnations only), to show which paths ran.
const SHOWN: &[&str] = &[
    "view_changes_completed",
    "view_change_timeouts",
    "recoveries_completed",
    "state_transfers",
    "state_transfers_completed",
    "duplicate_requests",
    "checkpoints_taken",
    "checkpoints_installed",
    "redirects",
    "retries",
];

fn run_config(name: &str, c: VrrConfig, n: usize, seeds: std::ops::Range<u64>) {
    let mut completed = 0;
    let mut sums = vec![0u64; SHOWN.len()];
    let count = seeds.end - seeds.start;
    for seed in seeds {
        let sim = chaos(c.clone(), n, seed);
        for (k, name) in SHOWN.iter().enumerate() {
            sums[k] += sim.total(name);
        }
        if !sim.violations.is_empty() {
            panic!("{name} seed {seed}:\n{}", sim.violations.join("\n"));
        }
        assert!(
            converged(&sim),
            "{name} seed {seed}: no convergence after healing"
        );
        sim.assert_applied_prefixes();
        sim.assert_log_matching();
        completed += check_results(&sim, &format!("{name} seed {seed}"));
    }
    eprintln!(
        "{name}: {completed} ops; {:?}",
        SHOWN.iter().zip(&sums).collect::<Vec<_>>()
    );
    assert!(
        completed as u64 > count * 100,
        "{name}: only {completed} operations completed"
    );
}

#[test]
fn random_faults_diskless_three_replicas() {
    run_config("diskless-3", cfg(), 3, 0..400);
}

#[test]
fn random_faults_diskless_five_and_seven_replicas() {
    run_config("diskless-5", cfg(), 5, 1000..1300);
    let c = VrrConfig {
        max_entries_per_message: 3,
        ..cfg()
    };
    run_config("diskless-7-small-batches", c, 7, 2000..2060);
}

#[test]
fn random_faults_durable() {
    run_config("durable-5", durable(), 5, 3000..3200);
    run_config("durable-3", durable(), 3, 4000..4200);
    let c = VrrConfig {
        max_entries_per_message: 1,
        ..durable()
    };
    run_config("durable-4-batches-of-1", c, 4, 5000..5100);
}

#[test]
fn random_faults_even_cluster_and_lockstep_timeouts() {
    run_config("diskless-4", cfg(), 4, 6000..6100);
    // No randomisation at all: VRR has no split votes (the new primary is fixed by the view
    // number), so lockstep timeouts still converge.
    let c = VrrConfig {
        view_change_timeout_min: Some(200.0),
        view_change_timeout_max: Some(200.0),
        ..cfg()
    };
    run_config("diskless-5-lockstep", c, 5, 7000..7060);
}

#[test]
fn random_faults_with_checkpoints() {
    run_config("ckpt-diskless-3", ckpt(cfg(), 7), 3, 8000..8150);
    run_config("ckpt-diskless-5", ckpt(cfg(), 5), 5, 8200..8300);
    run_config("ckpt-durable-5", ckpt(durable(), 10), 5, 8400..8500);
    let c = VrrConfig {
        max_entries_per_message: 2,
        ..ckpt(durable(), 6)
    };
    run_config("ckpt-durable-3-small-batches", c, 3, 8600..8700);
}

/// A longer soak, run only when asked: `VRR_SOAK_SEEDS=3000 cargo test -p coracle-protocols
/// random_faults_soak -- --nocapture` runs that many seeds of each configuration (diskless and
/// durable, with and without checkpoints).
#[test]
fn random_faults_soak() {
    let Some(k) = std::env::var("VRR_SOAK_SEEDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    run_config("soak-diskless-3", cfg(), 3, 10_000..10_000 + k);
    run_config("soak-diskless-5", cfg(), 5, 20_000..20_000 + k);
    run_config("soak-durable-5", durable(), 5, 30_000..30_000 + k);
    run_config(
        "soak-ckpt-diskless-3",
        ckpt(cfg(), 5),
        3,
        40_000..40_000 + k,
    );
    run_config(
        "soak-ckpt-durable-5",
        ckpt(durable(), 7),
        5,
        50_000..50_000 + k,
    );
}
