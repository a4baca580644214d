//! The scenario gallery behaves as the protocol rules imply: each example of
//! `examples/variants/` (the scenarios of raft-variants.md), `examples/reliable/` (the five
//! failure modes of "The Network is Reliable") and `examples/2015/` run under basic Raft and the
//! variants its description names, over seeds 1 to 20, with assertions on leader changes,
//! terms, availability and client progress. Every run must also stay safe.

mod common;
use common::*;

use coracle_sim::{CheckOptions, RunOptions, load_str, run};
use serde_json::{Value, json};

/// Runs `name` with `variant` merged into its consensus object.
fn results(name: &str, variant: &Value, seed: u64) -> Value {
    let mut cfg = example(name);
    for (k, v) in variant.as_object().unwrap() {
        cfg["consensus"][k] = v.clone();
    }
    let s = load_str(name, &cfg.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, RunOptions::seeded(seed), &CheckOptions::default())
        .unwrap()
        .results;
    assert_eq!(
        r["checks"]["invariants"]["status"], "ok",
        "{name} {variant} seed {seed}: {}",
        r["checks"]["invariants"]["violation"]
    );
    assert_eq!(
        r["checks"]["linearizability"]["status"], "ok",
        "{name} {variant} seed {seed}"
    );
    r
}

fn leader_changes(r: &Value) -> u64 {
    r["protocol_stats"]["leader_changes"].as_u64().unwrap()
}

/// Elections won, the first one included.
fn elections(r: &Value) -> u64 {
    r["protocol_stats"]["leader_elections"].as_u64().unwrap()
}

fn max_term(r: &Value) -> u64 {
    r["protocol_stats"]["max_term"].as_u64().unwrap()
}

fn ops(r: &Value) -> u64 {
    r["clients"]["ops_completed"].as_u64().unwrap()
}

/// The largest term a given server reached (from the term series).
fn term_of(r: &Value, node: &Value) -> u64 {
    r["series"]["term"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| &s["node"] == node)
        .map(|s| {
            s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[1].as_u64().unwrap())
                .max()
                .unwrap_or(0)
        })
        .unwrap()
}

fn counter(r: &Value, node: usize, name: &str) -> u64 {
    r["nodes"][node]["counters"][name].as_u64().unwrap_or(0)
}

const SEEDS: [u64; 20] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
];

fn basic() -> Value {
    json!({})
}

#[test]
fn scenario1_healed_isolated_follower() {
    let f = "variants/healed-isolated-follower.json";
    for seed in SEEDS {
        let r = results(f, &basic(), seed);
        let victim = r["actions"][0]["node"].clone();
        // Isolated 10 s with timeouts averaging 225 ms: about 44 elections.
        assert!(
            (30..=60).contains(&term_of(&r, &victim)),
            "seed {seed}: {}",
            term_of(&r, &victim)
        );
        // The old leader may win the new election: count elections, not changes of leader.
        assert!(
            (2..=3).contains(&elections(&r)),
            "seed {seed}: healing forces one step-down and a new election"
        );
        let r = results(f, &json!({"prevote": true}), seed);
        let victim = r["actions"][0]["node"].clone();
        assert_eq!(
            term_of(&r, &victim),
            1,
            "seed {seed}: pre-vote keeps its term"
        );
        assert_eq!(leader_changes(&r), 0);
    }
}

#[test]
fn scenario2_partially_connected_followers() {
    let f = "variants/partially-connected-followers.json";
    for seed in SEEDS {
        let r = results(f, &basic(), seed);
        assert!(
            leader_changes(&r) > 20,
            "seed {seed}: basic Raft never settles ({})",
            leader_changes(&r)
        );
        let r = results(f, &json!({"prevote": true}), seed);
        assert_eq!(leader_changes(&r), 0, "seed {seed}");
        // One election won, ever: the start-up one (in term 1, or a little later after a split
        // vote at start-up, as with seeds 153 and 232); terms never climb after it.
        assert_eq!(elections(&r), 1, "seed {seed}");
        assert!(max_term(&r) <= 4, "seed {seed}: term {}", max_term(&r));
        assert_eq!(
            counter(&r, 3, "elections_started"),
            0,
            "server 4 never starts an election"
        );
        assert_eq!(
            counter(&r, 4, "elections_started"),
            0,
            "server 5 never starts an election"
        );
    }
}

#[test]
fn scenario3_one_broken_link() {
    let f = "variants/one-broken-link.json";
    for seed in SEEDS {
        // Basic Raft and check_quorum alone lose the leader; the no-op of each new term soon
        // leaves the cut-off server's log behind, so it settles once the middle server leads.
        for v in [basic(), json!({"check_quorum": true})] {
            let r = results(f, &v, seed);
            assert!(leader_changes(&r) >= 1, "{v} seed {seed}");
        }
        for v in [
            json!({"prevote": true}),
            json!({"prevote": true, "check_quorum": true}),
        ] {
            let r = results(f, &v, seed);
            assert_eq!(leader_changes(&r), 0, "{v} seed {seed}");
            assert_eq!(max_term(&r), 1, "{v} seed {seed}");
        }
        for v in [
            json!({"leader_stickiness": true}),
            json!({"check_quorum": true, "leader_stickiness": true}),
        ] {
            let r = results(f, &v, seed);
            assert_eq!(
                leader_changes(&r),
                0,
                "{v} seed {seed}: the cut-off server's terms are ignored"
            );
        }
        let r = results(f, &json!({"prevote_without_leader_check": true}), seed);
        assert!(
            leader_changes(&r) >= 1,
            "seed {seed}: without the leader check the pre-vote is granted"
        );
    }
}

#[test]
fn scenario4_flapping_follower() {
    let f = "variants/flapping-follower.json";
    for seed in SEEDS {
        let basic_r = results(f, &basic(), seed);
        assert!(
            leader_changes(&basic_r) > 10,
            "seed {seed}: {}",
            leader_changes(&basic_r)
        );
        let r = results(f, &json!({"prevote": true, "check_quorum": true}), seed);
        assert!(
            leader_changes(&r) <= 1,
            "seed {seed}: {}",
            leader_changes(&r)
        );
        assert!(ops(&r) > ops(&basic_r), "seed {seed}: clients do better");
    }
}

#[test]
fn scenario5_deaf_follower() {
    let f = "variants/deaf-follower.json";
    for seed in SEEDS {
        // Its log falls behind, so its requests are refused, but the term is adopted.
        for v in [
            basic(),
            json!({"check_quorum": true}),
            json!({"term_bound": 3}),
            json!({"lazy_voting": true}),
        ] {
            let r = results(f, &v, seed);
            assert!(
                leader_changes(&r) > 20,
                "{v} seed {seed}: {}",
                leader_changes(&r)
            );
        }
        for v in [json!({"prevote": true}), json!({"leader_stickiness": true})] {
            let r = results(f, &v, seed);
            assert_eq!(leader_changes(&r), 0, "{v} seed {seed}");
        }
    }
}

#[test]
fn scenario5_mute_follower_is_harmless() {
    for v in [
        basic(),
        json!({"prevote": true}),
        json!({"check_quorum": true}),
        json!({"leader_stickiness": true}),
    ] {
        let r = results("variants/mute-follower.json", &v, 1);
        assert_eq!(leader_changes(&r), 0, "{v}");
        assert_eq!(max_term(&r), 1, "{v}");
    }
}

#[test]
fn scenario5_deaf_leader_needs_check_quorum() {
    let f = "variants/deaf-leader.json";
    for seed in SEEDS {
        // Nobody times out, nobody can commit: clients stop at 10 s.
        let stuck = results(f, &basic(), seed);
        assert_eq!(leader_changes(&stuck), 0);
        let r = results(f, &json!({"prevote": true, "check_quorum": true}), seed);
        assert_eq!(leader_changes(&r), 1, "seed {seed}");
        assert!(
            r["protocol_stats"]["counters"]["leader_stepdowns_check_quorum"]
                .as_u64()
                .unwrap()
                >= 1
        );
        assert!(
            ops(&r) > 5 * ops(&stuck),
            "seed {seed}: {} vs {}",
            ops(&r),
            ops(&stuck)
        );
    }
}

#[test]
fn scenario5_mute_leader_is_replaced_by_every_variant() {
    for v in [
        basic(),
        json!({"prevote": true}),
        json!({"check_quorum": true}),
        json!({"leader_stickiness": true}),
        json!({"lazy_voting": true}),
    ] {
        for seed in SEEDS {
            let r = results("variants/mute-leader.json", &v, seed);
            assert_eq!(leader_changes(&r), 1, "{v} seed {seed}");
            // Usually term 2; two followers whose timers expire within a round trip of each
            // other split the vote and the winner is elected a term or two later.
            assert!(
                (2..=4).contains(&max_term(&r)),
                "{v} seed {seed}: term {}",
                max_term(&r)
            );
        }
    }
}

#[test]
fn scenario5_leader_in_minority() {
    let f = "variants/leader-in-minority.json";
    for seed in SEEDS {
        let r = results(f, &basic(), seed);
        assert_eq!(
            leader_changes(&r),
            1,
            "seed {seed}: the majority side elects a new leader"
        );
        assert_eq!(
            r["protocol_stats"]["counters"]["leader_stepdowns_check_quorum"]
                .as_u64()
                .unwrap_or(0),
            0
        );
        let r = results(f, &json!({"prevote": true, "check_quorum": true}), seed);
        assert_eq!(leader_changes(&r), 1);
        assert_eq!(
            r["protocol_stats"]["counters"]["leader_stepdowns_check_quorum"], 1,
            "seed {seed}: the old leader steps down"
        );
    }
}

#[test]
fn tangaroa_term_bound_can_stall_after_healing() {
    let f = "variants/tangaroa-term-bound.json";
    let longest_after_heal = |r: &Value| {
        r["protocol_stats"]["unavailability_windows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w[1].as_f64().unwrap() > 20000.0)
            .map(|w| w[1].as_f64().unwrap() - w[0].as_f64().unwrap().max(20000.0))
            .fold(0.0, f64::max)
    };
    let stalls = SEEDS
        .iter()
        .map(|&s| longest_after_heal(&results(f, &json!({}), s)))
        .fold(0.0, f64::max);
    assert!(
        stalls > 5000.0,
        "term_bound 1 with lazy voting stalls for seconds after healing ({stalls} ms)"
    );
    for seed in SEEDS {
        let r = results(f, &json!({"term_bound": 3, "lazy_voting": false}), seed);
        assert!(
            longest_after_heal(&r) < 1000.0,
            "seed {seed}: a bound of 3 recovers at once ({} ms)",
            longest_after_heal(&r)
        );
    }
}

#[test]
fn network_is_reliable_failure_modes() {
    for seed in SEEDS {
        // 1. Partial partition: converges under basic Raft, untouched with pre-vote + check-quorum.
        let r = results(
            "reliable/nontransitive-split.json",
            &json!({"prevote": true, "check_quorum": true}),
            seed,
        );
        assert_eq!(leader_changes(&r), 0, "seed {seed}");
        let r = results("reliable/nontransitive-split.json", &basic(), seed);
        assert!(leader_changes(&r) <= 3, "seed {seed}");
        // 2. Correlated link failures partition the racks; the minority's client stalls.
        let r = results(
            "reliable/redundant-links-fail-together.json",
            &basic(),
            seed,
        );
        assert!(
            r["clients"]["latency_ms"]["max"].as_f64().unwrap() > 5000.0,
            "seed {seed}"
        );
        // Which side kept going depends on where the leader was at 15 s.
        let windows: Vec<(f64, f64)> = r["protocol_stats"]["unavailability_windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (w[0].as_f64().unwrap(), w[1].as_f64().unwrap()))
            .collect();
        let after_heal = windows.iter().any(|w| w.0 >= 25000.0);
        if max_term(&r) > 10 {
            // Leader in rack B: rack A's terms inflate and force an election at 25 s.
            assert!(after_heal, "seed {seed}: {windows:?}");
        } else {
            // Leader in rack A: rack B elects a new leader at once; no election at 25 s.
            assert!(
                windows
                    .iter()
                    .any(|w| (15000.0..16000.0).contains(&w.0) && w.1 < 16000.0),
                "seed {seed}: {windows:?}"
            );
            assert!(!after_heal, "seed {seed}: {windows:?}");
        }
        let p = results(
            "reliable/redundant-links-fail-together.json",
            &json!({"prevote": true}),
            seed,
        );
        assert!(
            !p["protocol_stats"]["unavailability_windows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w[0].as_f64().unwrap() >= 25000.0),
            "seed {seed}: with pre-vote nothing happens at 25 s"
        );
        // 3. Asymmetric NICs: many elections under basic Raft, far fewer with pre-vote.
        let b = results("reliable/asymmetric-nic.json", &basic(), seed);
        let p = results(
            "reliable/asymmetric-nic.json",
            &json!({"prevote": true}),
            seed,
        );
        // Basic Raft: 10 to 22 changes of leader over seeds 1-200 (the same server often wins
        // again after being deposed, so changes are fewer than elections).
        assert!(
            leader_changes(&b) >= 8 && leader_changes(&p) <= 2,
            "seed {seed}: {} vs {}",
            leader_changes(&b),
            leader_changes(&p)
        );
        // 4. A paused leader is replaced, and safety holds when it wakes up with its backlog.
        let r = results("reliable/gc-pauses.json", &basic(), seed);
        assert_eq!(leader_changes(&r), 1, "seed {seed}");
        // 5. Short flaps become many elections, unless pre-vote + check-quorum.
        let b = results("reliable/transient-to-long-outage.json", &basic(), seed);
        let p = results(
            "reliable/transient-to-long-outage.json",
            &json!({"prevote": true, "check_quorum": true}),
            seed,
        );
        assert!(
            leader_changes(&b) > 5 && leader_changes(&p) <= 1,
            "seed {seed}: {} vs {}",
            leader_changes(&b),
            leader_changes(&p)
        );
    }
}

#[test]
fn the_2015_gallery_in_native_format() {
    for seed in SEEDS {
        let r = results("2015/split_brain.json", &basic(), seed);
        assert!(
            r["protocol_stats"]["time_to_first_leader_ms"].is_null(),
            "no majority can form"
        );
        assert_eq!(ops(&r), 0);
        for f in ["2015/simple_triangle.json", "2015/simple_star.json"] {
            let r = results(f, &basic(), seed);
            assert_eq!(leader_changes(&r), 0, "{f} seed {seed}");
            assert!(ops(&r) > 20, "{f} seed {seed}");
        }
        let r = results("2015/asym.json", &basic(), seed);
        assert!(
            max_term(&r) > 5,
            "seed {seed}: the one-way server inflates terms"
        );
        let r = results("2015/asym.json", &json!({"prevote": true}), seed);
        assert_eq!(leader_changes(&r), 0, "seed {seed}");
        results("2015/hidden_pair.json", &basic(), seed);
    }
}

#[test]
fn bufferbloat_a_catch_up_delays_heartbeats_until_flow_control_is_tight() {
    let f = "reliable/bufferbloat.json";
    let mut tight = example(f);
    tight["consensus"]["max_inflight_messages"] = json!(1);
    tight["consensus"]["max_entries_per_message"] = json!(4);
    let tight = load_str(f, &tight.to_string()).unwrap();
    for seed in SEEDS {
        let deep = results(f, &basic(), seed);
        assert!(
            leader_changes(&deep) >= 2,
            "seed {seed}: the catch-up delays heartbeats"
        );
        assert!(deep["network"]["latency_ms"]["max"].as_f64().unwrap() > 500.0);
        let r = run(&tight, RunOptions::seeded(seed), &CheckOptions::default())
            .unwrap()
            .results;
        assert_eq!(r["checks"]["invariants"]["status"], "ok");
        assert_eq!(leader_changes(&r), 0, "seed {seed}");
        assert!(r["network"]["latency_ms"]["max"].as_f64().unwrap() < 100.0);
        let ops = |r: &Value| r["clients"]["ops_completed"].as_u64().unwrap();
        assert!(ops(&r) > ops(&deep) * 3 / 2, "seed {seed}");
    }
}

#[test]
fn leader_crash_costs_one_short_window_and_one_leader_change() {
    for seed in SEEDS {
        let r = results("leader-crash.json", &basic(), seed);
        assert_eq!(elections(&r), 2, "seed {seed}");
        assert_eq!(leader_changes(&r), 1, "seed {seed}");
        let w = r["protocol_stats"]["unavailability_windows"]
            .as_array()
            .unwrap();
        assert_eq!(
            w.len(),
            2,
            "seed {seed}: the first election, then the crash: {w:?}"
        );
        let (start, end) = (w[1][0].as_f64().unwrap(), w[1][1].as_f64().unwrap());
        assert_eq!(start, 5000.0);
        // The rest of an election timeout (at most 300 ms) plus a vote round; after a split
        // vote, one more election timeout.
        let split: u64 = r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["counters"]["split_votes"].as_u64())
            .sum();
        let bound = if split == 0 { 320.0 } else { 620.0 };
        assert!(end - start < bound, "seed {seed}: {w:?}");
    }
}
