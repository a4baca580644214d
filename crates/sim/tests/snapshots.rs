//! Raft with log compaction in the simulator: bundled scenarios run with a small
//! `snapshot_threshold` over several seeds keep every invariant, produce linearizable
//! histories, and keep each server's log (the entries after its snapshot) short at every
//! checkpoint; without compaction the same runs grow their logs; and the teaching switches are
//! still caught with compaction on.

mod common;
use common::*;

use coracle_sim::{CheckOptions, RunOptions, RunResult, load_str, run};
use serde_json::{Value, json};

fn with_threshold(mut cfg: Value, t: Value) -> Value {
    cfg["consensus"]["snapshot_threshold"] = t;
    cfg
}

/// Runs `cfg` with `seed` up to `until_ms` (the scenario's horizon if `None`). Runs are
/// deterministic, so a run cut at `t` is the prefix of the full run up to `t`.
fn run_to(cfg: &Value, seed: u64, until_ms: Option<u64>) -> RunResult {
    let s = load_str("test.json", &cfg.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        until: until_ms.map(|ms| ms * 1_000_000),
        ..RunOptions::seeded(seed)
    };
    run(&s, opts, &CheckOptions::default()).expect("runs")
}

/// The longest log suffix after a snapshot (`log_len - compacted`) among the servers that are
/// up at the end of `run`, after checking that the results report the same snapshot index.
fn longest_suffix(run: &RunResult, what: &str) -> u64 {
    let mut longest = 0;
    for n in run.outcome.nodes.iter().filter(|n| n.up) {
        let o = n.obs;
        if n.state.get("snapshot_index").is_none() {
            continue; // not a server
        }
        assert_eq!(n.state["snapshot_index"], o.compacted, "{what}");
        assert!(o.compacted <= o.commit_index, "{what}: {o:?}");
        assert!(n.applied >= o.compacted, "{what}: applied {}", n.applied);
        longest = longest.max(o.log_len - o.compacted);
    }
    longest
}

fn counter(r: &Value, name: &str) -> u64 {
    r["protocol_stats"]["counters"][name].as_u64().unwrap_or(0)
}

/// Runs `file` with `threshold` over `seeds`, cut every `step_ms` up to the horizon: every
/// prefix is safe and no server's log suffix exceeds `threshold + slack`. Returns the summed
/// (snapshots taken, snapshots installed) of the full runs.
fn bounded(file: &str, threshold: u64, seeds: u64, step_ms: u64, slack: u64) -> (u64, u64) {
    let cfg = with_threshold(example(file), json!(threshold));
    let horizon = cfg["termination"].as_u64().unwrap();
    let (mut taken, mut installed) = (0, 0);
    for seed in 1..=seeds {
        let mut t = step_ms;
        loop {
            let what = format!("{file} threshold {threshold} seed {seed} at {t} ms");
            let full = t >= horizon;
            let r = run_to(&cfg, seed, (!full).then_some(t));
            assert_safe(&r.results, &what);
            let longest = longest_suffix(&r, &what);
            assert!(
                longest <= threshold + slack,
                "{what}: a log holds {longest} entries after its snapshot"
            );
            if full {
                taken += counter(&r.results, "snapshots_taken");
                installed += counter(&r.results, "snapshots_installed");
                break;
            }
            t += step_ms;
        }
    }
    (taken, installed)
}

#[test]
fn storm_with_frequent_snapshots_is_safe_and_keeps_logs_short() {
    // Leader crashes, isolations, pauses and partitions: servers restart from their snapshots
    // and lagging ones are brought up to date with InstallSnapshot. An isolated leader may
    // append a few requests it cannot commit, hence the slack.
    let mut installs = 0;
    for (threshold, seeds) in [(5, 4), (12, 3), (20, 3)] {
        let (taken, installed) = bounded("teaching/storm.json", threshold, seeds, 7500, 40);
        eprintln!("storm, threshold {threshold}: {taken} snapshots taken, {installed} installed");
        assert!(taken > 50, "threshold {threshold}: {taken} snapshots");
        installs += installed;
    }
    assert!(installs > 0, "no InstallSnapshot in any storm run");
}

#[test]
fn crash_recover_with_frequent_snapshots_is_safe_and_keeps_logs_short() {
    // Servers crash and recover from their disk images: snapshot plus log suffix.
    for threshold in [5, 10, 20] {
        let (taken, _) = bounded("crash-recover.json", threshold, 3, 2500, 10);
        assert!(taken > 20, "threshold {threshold}: {taken} snapshots");
    }
}

#[test]
fn without_compaction_the_logs_grow_with_it_they_do_not() {
    let base = example("teaching/storm.json");
    let off = run_to(&with_threshold(base.clone(), Value::Null), 1, None);
    let on = run_to(&with_threshold(base, json!(10)), 1, None);
    assert_safe(&off.results, "no compaction");
    assert_safe(&on.results, "threshold 10");
    let (grown, kept) = (
        longest_suffix(&off, "no compaction"),
        longest_suffix(&on, "threshold 10"),
    );
    assert_eq!(counter(&off.results, "snapshots_taken"), 0);
    assert!(grown > 500, "{grown}");
    assert!(kept < 50, "{kept}");
}

#[test]
fn teaching_switches_are_still_caught_with_compaction_on() {
    for (switch, file, max) in [
        ("no_log_check", "teaching/storm.json", 5),
        ("reverse_apply", "teaching/storm.json", 5),
        ("no_backtrack", "teaching/storm.json", 30),
        ("forget_vote_on_crash", "teaching/double-vote.json", 1),
        ("commit_old_terms", "teaching/figure-8.json", 1),
    ] {
        let mut cfg = with_threshold(example(file), json!(10));
        cfg["consensus"]["unsafe"] = json!([switch]);
        let seed = (1..=max).find(|&seed| {
            let r = run_to(&cfg, seed, None).results;
            r["checks"]["invariants"]["status"] == "violation"
                || r["checks"]["linearizability"]["status"] == "violation"
        });
        let seed = seed.unwrap_or_else(|| panic!("{switch} not caught in {max} seeds of {file}"));
        eprintln!("{switch}: caught on seed {seed} with snapshot_threshold 10");
    }
}
