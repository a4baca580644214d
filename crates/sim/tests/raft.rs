//! Raft in the simulator: safe configurations never violate an invariant and produce
//! linearizable histories over many seeds; every teaching switch is caught on a bundled
//! scenario within a bounded number of seeds; and regression tests for the 2015 prototype's
//! bugs R1–R15 (docs of the prototype, §4.8) and its double client start.

mod common;
use common::*;

use coracle_sim::trace::Tracer;
use coracle_sim::{CheckOptions, RunOptions, load_file, run};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

fn with_unsafe(mut cfg: Value, switch: &str) -> Value {
    cfg["consensus"]["unsafe"] = json!([switch]);
    cfg
}

/// The results of one seeded run and its whole trace, one JSON value per record.
fn traced(cfg: &Value, seed: u64) -> (Value, Vec<Value>) {
    let opts = RunOptions {
        tracer: Some(Tracer::Ring {
            cap: usize::MAX,
            lines: Default::default(),
        }),
        ..RunOptions::seeded(seed)
    };
    let r = run(&scenario(cfg), opts, &CheckOptions::default()).expect("runs");
    let trace = r.outcome.tracer.expect("traced").kept();
    let trace = trace
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (r.results, trace)
}

#[test]
fn safe_configurations_hold_over_many_seeds() {
    for (name, seeds) in [
        ("raft-5.json", 10),
        ("hub-star.json", 10),
        ("one-way-link.json", 10),
        ("crash-recover.json", 10),
        ("teaching/storm.json", 30),
        ("teaching/double-vote.json", 5),
        ("teaching/figure-8.json", 5),
    ] {
        let cfg = example(name);
        for seed in 1..=seeds {
            let r = results(&cfg, seed);
            assert_safe(&r, &format!("{name} seed {seed}"));
        }
    }
}

#[test]
fn safe_raft_under_chaos_with_every_variant() {
    let base = example("teaching/storm.json");
    let variants = [
        json!({}),
        json!({"prevote": true}),
        json!({"prevote": true, "check_quorum": true}),
        json!({"leader_stickiness": true, "fast_backtrack": true}),
        json!({"candidate_timeout": [23, 46], "backoff": true}),
        json!({"lazy_voting": true}),
        json!({"term_bound": 3, "read_index": true}),
        json!({"prevote_without_leader_check": true, "batch_requests": true, "lazy_update": true}),
    ];
    for v in variants {
        let mut cfg = base.clone();
        for (k, x) in v.as_object().unwrap() {
            cfg["consensus"][k] = x.clone();
        }
        for seed in 1..=6 {
            let r = results(&cfg, seed);
            assert_safe(&r, &format!("{v} seed {seed}"));
        }
    }
}

/// The first seed in 1..=max on which the switch is caught, if any.
fn caught(cfg: &Value, max: u64) -> Option<(u64, Value)> {
    (1..=max).find_map(|seed| {
        let r = results(cfg, seed);
        let bad = r["checks"]["invariants"]["status"] == "violation"
            || r["checks"]["linearizability"]["status"] == "violation";
        bad.then_some((seed, r))
    })
}

#[test]
fn every_teaching_switch_is_caught() {
    for (switch, file, max) in [
        ("no_log_check", "teaching/storm.json", 5),
        ("reverse_apply", "teaching/storm.json", 5),
        ("no_backtrack", "teaching/stale-follower.json", 1),
        ("forget_vote_on_crash", "teaching/double-vote.json", 1),
        ("commit_old_terms", "teaching/figure-8.json", 1),
    ] {
        let (seed, r) = caught(&with_unsafe(example(file), switch), max)
            .unwrap_or_else(|| panic!("{switch} not caught in {max} seeds of {file}"));
        assert_eq!(r["termination_reason"], "violation", "{switch}");
        eprintln!(
            "{switch}: caught on seed {seed}: {}",
            r["checks"]["invariants"]["violation"]["message"]
        );
    }
    // The staged scenarios break with the switch on every seed, and name the right invariant.
    let r = results(
        &with_unsafe(example("teaching/double-vote.json"), "forget_vote_on_crash"),
        7,
    );
    assert_eq!(
        r["checks"]["invariants"]["violation"]["invariant"],
        "election_safety"
    );
    let r = results(
        &with_unsafe(example("teaching/figure-8.json"), "commit_old_terms"),
        7,
    );
    assert_eq!(
        r["checks"]["invariants"]["violation"]["invariant"],
        "leader_completeness"
    );
    let r = results(
        &with_unsafe(example("teaching/stale-follower.json"), "no_backtrack"),
        7,
    );
    assert_eq!(
        r["checks"]["invariants"]["violation"]["invariant"],
        "state_machine_safety"
    );
}

#[test]
fn a_violation_replays_identically_and_shows_its_trace_tail() {
    let cfg = with_unsafe(example("teaching/double-vote.json"), "forget_vote_on_crash");
    let s = scenario(&cfg);
    let r = run(
        &s,
        RunOptions {
            seed: 3,
            until: None,
            tracer: None,
            stop_after: None,
            keep_going: false,
            record_history: true,
        },
        &CheckOptions::default(),
    )
    .unwrap();
    let v = r.outcome.violation.clone().unwrap();
    assert_eq!(v.message, "two leaders in term 1: a and b");
    let tail = coracle_sim::run::trace_tail(&s, 3, None, v.time, 10);
    assert_eq!(tail.len(), 10);
    assert!(
        tail.last().unwrap().contains("\"violation\""),
        "the violation comes last: {tail:?}"
    );
}

// ------------------------------------------------------------------ 2015 regressions (§4.8)

/// E5 of the prototype study: 3 servers on a hub, server 3 partitioned 300–1000 ms, leader 1
/// failed at 1000 ms. In 2015 stale server 3 won term 4 and overwrote committed entries (R1).
#[test]
fn r1_a_stale_server_cannot_win_or_overwrite_committed_entries() {
    let cfg = json!({
        "termination": 5000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 30, "client_timeout": 200},
        "network": {
            "defaults": {"latency": "s"},
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"}, {"id": 4, "type": "client"}, {"id": 5, "type": "hub"}],
            "links": [{"id": 1, "from": 1, "to": 5}, {"id": 2, "from": 2, "to": 5}, {"id": 3, "from": 3, "to": 5}, {"id": 4, "from": 4, "to": 5}]
        },
        "timeline": [
            {"at": 300, "action": "link_down", "link": 3}, {"at": 1000, "action": "link_up", "link": 3},
            {"at": 1000, "action": "crash", "role": "leader"}
        ],
        "workload": {"type": "interval", "min": 20, "max": 40}
    });
    for seed in 1..=20 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
    }
    // The same scenario with the election restriction removed is caught on some seed.
    assert!(caught(&with_unsafe(cfg, "no_log_check"), 40).is_some());
}

/// R3: votedFor survives a crash (the double-vote teaching scenario, safe configuration; R2
/// has its own test below).
#[test]
fn r2_r3_no_double_votes() {
    for seed in 1..=10 {
        assert_safe(
            &results(&example("teaching/double-vote.json"), seed),
            "double-vote",
        );
    }
}

/// R2: in 2015 a server that accepted the leader's AppendEntries forgot its vote of that term.
/// a wins term 1 (with c and e); b (a candidate, voted for itself) and c then follow it; d's
/// request of term 1 arrives only after that. `no_log_check` is on, so d's shorter log does
/// not stop it: only the kept votes do. The control forgets the votes by a crash instead.
#[test]
fn r2_a_follower_keeps_its_vote_after_accepting_the_leaders_append_entries() {
    // /tmp/audit-r15/r2-late-vote.json, stopped at 400 ms: at 420 ms d wins term 2 without
    // a's committed no-op, the leader-completeness break that `no_log_check` exists to show.
    let cfg = json!({
        "termination": 400,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 150,
                      "heartbeat_interval": 50, "unsafe": ["no_log_check"]},
        "network": {
            "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"},
                      {"id": "c", "type": "server", "clock": {"rate": 0.5}},
                      {"id": "d", "type": "server"},
                      {"id": "e", "type": "server", "clock": {"rate": 0.5}}],
            "links": [{"from": "a", "to": "b", "latency": 5}, {"from": "a", "to": "c", "latency": 5},
                      {"from": "a", "to": "e", "latency": 5}, {"from": "a", "to": "d", "latency": 200},
                      {"from": "d", "to": "b", "latency": 60}, {"from": "d", "to": "c", "latency": 60},
                      {"from": "d", "to": "e", "latency": 60},
                      {"from": "b", "to": "c", "latency": 200}, {"from": "b", "to": "e", "latency": 200},
                      {"from": "c", "to": "e", "latency": 5}]
        }
    });
    for seed in 1..=3 {
        let (r, trace) = traced(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let leaders: Vec<&Value> = trace
            .iter()
            .filter(|v| v["kind"] == "state" && v["role"] == "leader" && v["term"] == 1)
            .map(|v| &v["node"])
            .collect();
        assert!(
            !leaders.is_empty() && leaders.iter().all(|&n| n == "a"),
            "seed {seed}: leaders of term 1: {leaders:?}"
        );
        for voter in ["b", "c"] {
            // d's request reaches the voter after it followed a in term 1 ...
            let asked = trace
                .iter()
                .position(|v| {
                    v["kind"] == "recv"
                        && v["node"] == voter
                        && v["from"] == "d"
                        && v["msg"]["type"] == "request_vote"
                        && v["msg"]["term"] == 1
                })
                .unwrap_or_else(|| panic!("seed {seed}: d asked {voter}"));
            assert!(
                trace[..asked].iter().any(|v| v["kind"] == "state"
                    && v["node"] == voter
                    && v["term"] == 1
                    && v["leader"] == "a"),
                "seed {seed}: {voter} followed a before d asked"
            );
            // ... and is refused.
            let answer = trace[asked..]
                .iter()
                .find(|v| {
                    v["kind"] == "send"
                        && v["node"] == voter
                        && v["to"] == "d"
                        && v["msg"]["type"] == "request_vote_response"
                })
                .unwrap_or_else(|| panic!("seed {seed}: {voter} answered d"));
            assert_eq!(
                (&answer["msg"]["term"], &answer["msg"]["granted"]),
                (&json!(1), &json!(false)),
                "seed {seed}: {voter}"
            );
        }
    }
    // Control (/tmp/audit-r15/r2-late-vote-control.json): b and c restart between following
    // a and d's request, and forget their votes: d wins term 1 too.
    let mut control = cfg;
    control["consensus"]["unsafe"] = json!(["no_log_check", "forget_vote_on_crash"]);
    control["timeline"] = json!([
        {"at": 180, "action": "crash", "node": "b"}, {"at": 185, "action": "recover", "node": "b"},
        {"at": 180, "action": "crash", "node": "c"}, {"at": 185, "action": "recover", "node": "c"}
    ]);
    let r = results(&control, 1);
    let v = &r["checks"]["invariants"]["violation"];
    assert_eq!(v["invariant"], "election_safety", "{v}");
    assert_eq!(v["message"], "two leaders in term 1: a and d");
}

/// E4 of the prototype study: server 4 down 300–1500 ms, the leader down from 1000 ms. In 2015
/// nextIndex never decreased (R4), so the recovered follower never caught up.
#[test]
fn r4_r5_r6_a_lagging_follower_is_repaired() {
    let cfg = json!({
        "termination": 4000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 30},
        "network": {
            "defaults": {"latency": "s"},
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"}, {"id": 4, "type": "server"}, {"id": 5, "type": "server"},
                      {"id": 6, "type": "client"}, {"id": 7, "type": "hub"}],
            "links": [{"from": 1, "to": 7}, {"from": 2, "to": 7}, {"from": 3, "to": 7}, {"from": 4, "to": 7}, {"from": 5, "to": 7}, {"from": 6, "to": 7}]
        },
        "timeline": [{"at": 300, "action": "crash", "node": 4}, {"at": 1500, "action": "recover", "node": 4}, {"at": 1000, "action": "crash", "role": "leader"}],
        "workload": {"type": "closed", "think_time": 10, "stop": 3500}
    });
    for seed in 1..=10 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let s4 = &r["nodes"][3];
        let longest = r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["log_len"].as_u64())
            .max()
            .unwrap();
        assert_eq!(
            s4["log_len"].as_u64().unwrap(),
            longest,
            "seed {seed}: server 4 caught up"
        );
        assert_eq!(s4["commit_index"], s4["log_len"], "seed {seed}");
        assert_eq!(
            s4["applied"], s4["commit_index"],
            "seed {seed}: applied everything once, in order (R8, R9, R14)"
        );
    }
}

/// R5: in 2015 a follower cut its log back to `prev` whenever `prev` matched an entry before
/// its last one: a late heartbeat, or a reordered or duplicated request, lost entries. One
/// leader for the whole run (nothing ever conflicts) sends over links that reorder (1-40 ms)
/// and duplicate (30 %): hundreds of requests arrive behind the follower's log, none may cut it.
#[test]
fn r5_reordered_and_duplicated_appends_never_truncate() {
    // /tmp/audit-r15/r5-reorder-dup.json
    let cfg = json!({
        "termination": 10000,
        "consensus": {"protocol": "raft", "election_timeout_min": 1000, "election_timeout_max": 2000,
                      "heartbeat_interval": 20, "client_timeout": 25},
        "network": {
            "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 40}, "duplicate": 0.3},
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"},
                      {"id": "c1", "type": "client"}, {"id": "c2", "type": "client"}],
            "mesh": true
        },
        "workload": {"type": "closed", "think_time": 1, "keys": 3, "read_fraction": 0.0, "cas_fraction": 0.5}
    });
    for seed in 1..=3 {
        let (r, trace) = traced(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let p = &r["protocol_stats"];
        assert_eq!(p["leader_elections"], 1, "seed {seed}: one leader");
        assert_eq!(p["counters"]["truncations"], 0, "seed {seed}");
        // Requests arriving behind the receiver's last entry: each one cut the log in 2015.
        let mut log_len: HashMap<String, u64> = HashMap::new();
        let (mut behind, mut behind_with_entries) = (0, 0);
        for v in &trace {
            let node = v["node"].to_string();
            match v["kind"].as_str() {
                Some("state") if v["log_len"].is_u64() => {
                    let n = v["log_len"].as_u64().unwrap();
                    let before = log_len.insert(node, n).unwrap_or(0);
                    assert!(n >= before, "seed {seed}: a log shrank: {v}");
                }
                Some("persist") => {
                    assert_ne!(v["write"]["write"], "truncate", "seed {seed}: {v}")
                }
                Some("recv") if v["msg"]["type"] == "append_entries" => {
                    let prev = v["msg"]["prev_log_index"].as_u64().unwrap();
                    if prev < log_len.get(&node).copied().unwrap_or(0) {
                        behind += 1;
                        if !v["msg"]["entries"].as_array().unwrap().is_empty() {
                            behind_with_entries += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        assert!(
            behind > 300 && behind_with_entries > 100,
            "seed {seed}: {behind} requests behind a log, {behind_with_entries} with entries"
        );
        assert!(r["clients"]["ops_completed"].as_u64().unwrap() > 200);
    }
}

/// R9: in 2015 a recovered server kept its state machine but forgot how far it had applied
/// (and its client table), and applied the committed entries again on top. Servers crash and
/// recover under writes (E6 of the study); at the end every server, each recovered one
/// included, has applied exactly what the leader has, each command once.
#[test]
fn r9_a_recovered_server_rebuilds_its_state_machine_once() {
    // /tmp/audit-r15/r8-r9-recover.json
    let cfg = json!({
        "termination": 5000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 30},
        "network": {"defaults": {"latency": 5},
                    "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"},
                              {"id": "c", "type": "client"}],
                    "mesh": true},
        "timeline": [
            {"at": 1000, "action": "crash", "role": "follower"}, {"at": 1400, "action": "recover", "role": "last"},
            {"at": 2500, "action": "crash", "role": "leader"}, {"at": 2600, "action": "recover", "role": "last"},
            {"at": 3500, "action": "crash", "role": "leader"}, {"at": 3800, "action": "recover", "role": "last"}
        ],
        "workload": {"type": "closed", "think_time": 10, "keys": 2, "read_fraction": 0.2, "cas_fraction": 0.5, "stop": 4500}
    });
    for seed in 1..=5 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let recovered: HashSet<String> = r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == "recover")
            .map(|a| a["node"].to_string())
            .collect();
        assert!(recovered.len() >= 2, "seed {seed}: {recovered:?}");
        let servers: Vec<&Value> = r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "server")
            .collect();
        let leader = servers
            .iter()
            .find(|n| n["role"] == "leader")
            .unwrap_or_else(|| panic!("seed {seed}: a leader at the end"));
        let ops = &r["clients"]["ops_completed"];
        assert!(ops.as_u64().unwrap() > 100, "seed {seed}");
        // Every operation completed was applied once (reads go through the log too).
        assert_eq!(&leader["state"]["kv_commands_applied"], ops, "seed {seed}");
        for n in &servers {
            let (st, lst) = (&n["state"], &leader["state"]);
            let what = format!("seed {seed}, server {} (recovered: {recovered:?})", n["id"]);
            assert_eq!(n["up"], true, "{what}");
            assert_eq!(st["last_applied"], lst["last_applied"], "{what}");
            assert_eq!(st["last_applied"], lst["commit_index"], "{what}");
            assert_eq!(
                st["kv_commands_applied"], lst["kv_commands_applied"],
                "{what}: commands applied once each"
            );
            assert_eq!(st["kv_keys"], lst["kv_keys"], "{what}");
        }
    }
    // The replay after the restart at 1400 ms is one batch: applied backwards
    // (`reverse_apply`, R8) it is caught.
    let r = results(&with_unsafe(cfg, "reverse_apply"), 1);
    let v = &r["checks"]["invariants"]["violation"];
    assert_eq!(v["invariant"], "state_machine_safety", "{v}");
    assert!(v["time_ms"].as_f64().unwrap() >= 1400.0, "{v}");
}

/// R7: Figure 8 is safe (and the unsafe counting rule is caught, see above).
#[test]
fn r7_old_terms_are_not_committed_by_counting() {
    for seed in 1..=5 {
        let r = results(&example("teaching/figure-8.json"), seed);
        assert_safe(&r, "figure-8");
        assert_eq!(r["protocol_stats"]["max_term"], 6);
    }
}

/// R10: retransmitted requests are not appended twice and are answered from the session.
#[test]
fn r10_retries_over_duplicating_lossy_links_apply_once() {
    let cfg = json!({
        "termination": 10000,
        "consensus": {"protocol": "raft", "client_timeout": 20},
        "network": {
            "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 15}, "loss": 0.05, "duplicate": 0.2},
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"}, {"id": "c", "type": "client"}],
            "mesh": true
        },
        "workload": {"type": "closed", "keys": 2, "read_fraction": 0.2, "cas_fraction": 0.5}
    });
    for seed in 1..=5 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let c = &r["protocol_stats"]["counters"];
        assert!(c["retries"].as_u64().unwrap() > 10, "{c}");
        // One log entry per operation at most (plus a no-op per term): retries are not appended.
        let committed = r["protocol_stats"]["committed_entries"].as_u64().unwrap();
        let ops = r["clients"]["ops_issued"].as_u64().unwrap();
        let terms = r["protocol_stats"]["leader_elections"].as_u64().unwrap();
        assert!(
            committed <= ops + terms,
            "{committed} entries for {ops} operations and {terms} terms"
        );
    }
}

/// R11: a one-server cluster elects itself and commits.
#[test]
fn r11_one_server_elects_itself() {
    let cfg = json!({"nodes": 1, "clients": 1, "termination": 2000, "consensus": {"protocol": "raft"}, "workload": {"type": "closed", "think_time": 10}});
    let r = results(&cfg, 1);
    assert_safe(&r, "one server");
    assert_eq!(r["protocol_stats"]["leader_elections"], 1);
    assert!(r["clients"]["ops_completed"].as_u64().unwrap() > 50);
}

/// R12: the 2015 proxy drew a random server from [1, S-1], never the last one. The servers
/// here cannot reach each other, so no leader ever gives a hint: every retry goes to a random
/// server, and each of the three gets about a third of the requests.
#[test]
fn r12_clients_try_every_server() {
    // /tmp/audit-r15/r12-no-leader-random.json
    let cfg = json!({
        "termination": 5000,
        "consensus": {"protocol": "raft", "client_timeout": 20},
        "network": {
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"},
                      {"id": "c", "type": "client"}],
            "links": [{"from": "c", "to": 1, "latency": 1}, {"from": "c", "to": 2, "latency": 1},
                      {"from": "c", "to": 3, "latency": 1}]
        },
        "workload": {"type": "closed", "think_time": 10}
    });
    for seed in 1..=5 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        assert!(r["protocol_stats"]["time_to_first_leader_ms"].is_null());
        let got: Vec<u64> = (0..3)
            .map(|i| {
                r["nodes"][i]["counters"]["client_requests_received"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        let total: u64 = got.iter().sum();
        assert!(total > 500, "seed {seed}: {got:?}");
        for (i, &k) in got.iter().enumerate() {
            let share = k as f64 / total as f64;
            assert!(
                (0.25..=0.45).contains(&share),
                "seed {seed}: server {} got {share:.2} of the requests: {got:?}",
                i + 1
            );
        }
    }
}

/// The 2015 prototype started every client twice, doubling its rate. With one operation every
/// U[100, 150) ms, 1000 ms allow at most 10 ticks.
#[test]
fn clients_start_once() {
    let cfg = json!({"nodes": 3, "clients": 1, "termination": 1000, "workload_min": 100, "workload_max": 150,
                     "consensus": {"protocol": "raft", "client_timeout": 50}});
    for seed in 1..=5 {
        let r = results(&cfg, seed);
        let c = &r["clients"];
        let ticks = c["ops_issued"].as_u64().unwrap() + c["ops_skipped"].as_u64().unwrap();
        assert!((7..=10).contains(&ticks), "seed {seed}: {ticks} ticks");
    }
}

/// R15: the 2015 trace printed the client id under "seq #". Two clients, about twenty
/// operations each: the k-th operation a client is handed goes out (and is resent) with seq k,
/// and every log entry names the client and the seq of the request it came from.
#[test]
fn r15_traces_show_client_requests_faithfully() {
    // /tmp/audit-r15/r15-trace.json
    let cfg = json!({"name": "r15-trace", "nodes": 3, "clients": 2, "termination": 1500,
                     "consensus": {"protocol": "raft"}, "workload": {"type": "closed", "think_time": 10}});
    let (r, trace) = traced(&cfg, 1);
    assert_safe(&r, "r15");
    let clients = [json!(4), json!(5)];
    // Per client: the operations handed to it, in order, and the (seq, op) of what it sent.
    let mut handed: HashMap<String, Vec<&Value>> = HashMap::new();
    let mut sent: HashMap<String, Vec<(u64, &Value)>> = HashMap::new();
    for v in &trace {
        let node = v["node"].to_string();
        if v["kind"] == "request" {
            handed.entry(node).or_default().push(&v["op"]);
        } else if v["kind"] == "send" && v["msg"]["type"] == "client_request" {
            assert!(clients.contains(&v["node"]), "{v}");
            let seq = v["msg"]["seq"].as_u64().unwrap_or_else(|| panic!("{v}"));
            sent.entry(node).or_default().push((seq, &v["msg"]["op"]));
        }
    }
    for c in &clients {
        let c = c.to_string();
        let (handed, sent) = (&handed[&c], &sent[&c]);
        assert!(
            handed.len() >= 10,
            "client {c}: {} operations",
            handed.len()
        );
        // seq 1, 1, 2, 3, 3, 3, 4, ...: each new request one more, retries repeat it.
        let mut last = 0;
        for &(seq, op) in sent {
            assert!(
                seq == last || seq == last + 1,
                "client {c}: seq {seq} after {last}"
            );
            last = seq;
            assert_eq!(op, handed[seq as usize - 1], "client {c}: seq {seq}");
        }
        assert!(last as usize + 1 >= handed.len(), "client {c}: {last} sent");
    }
    // Log entries carry the client and seq of a request that client sent with that op.
    let mut entries = 0;
    for v in trace.iter().filter(|v| v["write"]["write"] == "append") {
        for e in v["write"]["entries"].as_array().unwrap() {
            let cmd = &e["cmd"];
            if cmd.is_null() {
                continue; // a new leader's no-op
            }
            entries += 1;
            let ok = sent
                .get(&cmd["client"].to_string())
                .is_some_and(|s| s.iter().any(|&(q, op)| cmd["seq"] == q && *op == cmd["op"]));
            assert!(ok, "an entry no request matches: {e}");
        }
    }
    assert!(entries >= 20, "{entries} entries");
}

/// The servers that were ever leader, from the results' role series (4 = leader).
fn ever_led(r: &Value) -> Vec<Value> {
    r["series"]["role"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["points"].as_array().unwrap().iter().any(|p| p[1] == 4))
        .map(|s| s["node"].clone())
        .collect()
}

/// The 2015 test and gallery fixtures, each with what it was drawn to show. The first leader
/// comes no earlier than the shortest election timeout plus a vote's round trip; asym's
/// one-way server (6) hears nothing, so it never leads and starts an election every timeout,
/// whose terms everyone adopts;
/// split_brain's halves never make a majority; hidden_pair's pair (5, 6) hears only server 2,
/// so it never leads, and any other leader is deposed by its ever higher terms.
#[test]
fn the_2015_fixtures_run_with_raft_and_report_sensible_results() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/coracle-2015");
    let mut checked = 0;
    for sub in ["test", "web-examples"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let s = load_file(&p).unwrap_or_else(|e| panic!("{e}"));
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let ms = |k: &str| s.consensus[k].as_f64().unwrap();
            let (emin, emax) = (ms("election_timeout_min"), ms("election_timeout_max"));
            checked += 1;
            for seed in 1..=3 {
                let r = run(&s, RunOptions::seeded(seed), &CheckOptions::default())
                    .unwrap()
                    .results;
                let what = format!("{sub}/{name} seed {seed}");
                assert_safe(&r, &what);
                let horizon = r["horizon_ms"].as_f64().unwrap();
                let p = &r["protocol_stats"];
                let first = p["time_to_first_leader_ms"].as_f64();
                if let Some(t) = first {
                    // A candidate waits a whole timeout, then needs a vote back.
                    let rtt = 2.0 * r["network"]["latency_ms"]["min"].as_f64().unwrap();
                    assert!(t >= emin + rtt, "{what}: first leader after {t} ms");
                }
                let led = ever_led(&r);
                let server = |id: u64| {
                    r["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|n| n["id"] == id)
                        .unwrap()
                };
                match (sub, name.as_str()) {
                    ("web-examples", "split_brain.json") => {
                        // No majority (4 of 6) can ever form: the halves meet only at clients.
                        assert!(first.is_none() && led.is_empty(), "{what}: {led:?}");
                        assert_eq!(p["available_ms"], 0.0, "{what}");
                        // Someone times out at least every emax (plus a delivery).
                        assert!(p["max_term"].as_u64().unwrap() >= 3, "{what}");
                    }
                    ("web-examples", "asym.json") => {
                        assert!(!led.contains(&json!(6)), "{what}: {led:?}");
                        // Server 6 hears nothing: every term it has is an election of its own.
                        let s6 = server(6);
                        let term = s6["term"].as_u64().unwrap();
                        assert!(
                            term as f64 >= (horizon / emax).floor(),
                            "{what}: term {term}"
                        );
                        assert_eq!(s6["counters"]["elections_started"], term, "{what}");
                        // Its requests reach everyone: all adopt its terms (its last request
                        // may still be on its way).
                        for n in r["nodes"].as_array().unwrap() {
                            if n["type"] == "server" {
                                let t = n["term"].as_u64().unwrap();
                                assert!(t + 1 >= term, "{what}: {} in term {t}", n["id"]);
                            }
                        }
                    }
                    ("web-examples", "hidden_pair.json") => {
                        assert!(
                            !led.contains(&json!(5)) && !led.contains(&json!(6)),
                            "{what}: {led:?}"
                        );
                        // A leader other than 2 is deposed by the pair's higher terms within
                        // two timeouts (the pair's timer may just have been reset), or the run
                        // ends first.
                        for ser in r["series"]["role"].as_array().unwrap() {
                            let node = &ser["node"];
                            if node == 2 {
                                continue;
                            }
                            let pts = ser["points"].as_array().unwrap();
                            for (k, pt) in pts.iter().enumerate().filter(|(_, pt)| pt[1] == 4) {
                                let from = pt[0].as_f64().unwrap();
                                let to = pts.get(k + 1).map(|q| q[0].as_f64().unwrap());
                                let held = to.unwrap_or(horizon) - from;
                                assert!(
                                    held <= 2.0 * emax,
                                    "{what}: {node} led {held} ms from {from}"
                                );
                                if to.is_some() {
                                    let led_in = term_at(&r, node, from);
                                    let now =
                                        server(node.as_u64().unwrap())["term"].as_u64().unwrap();
                                    assert!(
                                        now > led_in,
                                        "{what}: {node} led term {led_in}, ends in {now}"
                                    );
                                }
                            }
                        }
                    }
                    _ => {
                        let t = first.unwrap_or_else(|| panic!("{what}: no leader"));
                        assert!(t < 1000.0, "{what}: first leader after {t} ms");
                    }
                }
            }
        }
    }
    assert_eq!(checked, 11);
}

/// A server's term at time `t`, from the results' term series.
fn term_at(r: &Value, node: &Value, t: f64) -> u64 {
    let s = r["series"]["term"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node"] == *node)
        .unwrap();
    let points = s["points"].as_array().unwrap();
    let p = points
        .iter()
        .take_while(|p| p[0].as_f64().unwrap() <= t)
        .last()
        .unwrap();
    p[1].as_u64().unwrap()
}

/// A new leader that must walk a follower's log back ~1,000 entries (one rejection per round
/// trip, far longer than an election timeout) keeps its leadership with `check_quorum`: the
/// follower's rejections are answers in its term. (Counting only accepted requests made it step
/// down every timeout and restart the repair: 270 elections in 100 s and no commit after 15 s.)
#[test]
fn check_quorum_does_not_stall_a_long_log_repair() {
    let cfg = json!({
        "termination": 25000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300,
                      "heartbeat_interval": 50, "check_quorum": true},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}},
                    "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"},
                              {"id": 3, "type": "server"}, {"id": "c1", "type": "client"}],
                    "mesh": true},
        "timeline": [{"at": 5000, "action": "crash", "node": 3},
                     {"at": 15000, "action": "crash", "node": 2},
                     {"at": 15000, "action": "recover", "node": 3}],
        "workload": {"type": "closed", "think_time": 5, "keys": 5}
    });
    for seed in [1, 3] {
        let r = results(&cfg, seed);
        assert_eq!(r["checks"]["invariants"]["status"], "ok");
        assert_eq!(r["checks"]["linearizability"]["status"], "ok");
        // Node 3 caught up (within the last heartbeat) and the pair committed again.
        let applied = |n: usize| r["nodes"][n]["state"]["last_applied"].as_u64().unwrap();
        assert!(
            applied(2) > 1500 && applied(0) - applied(2) <= 1,
            "seed {seed}: {} {}",
            applied(0),
            applied(2)
        );
        assert!(
            r["protocol_stats"]["leader_changes"].as_u64().unwrap() <= 3,
            "seed {seed}"
        );
        let stepdowns = r["nodes"][0]["counters"]["leader_stepdowns_check_quorum"]
            .as_u64()
            .unwrap_or(0);
        assert!(stepdowns <= 1, "seed {seed}: {stepdowns} step-downs");
    }
}

/// ReadIndex after a leader restarts (found by review: 65 of seeds 1–100 returned a stale
/// read). s1 leads term 1 for thousands of heartbeat rounds; one of its AppendEntries is held
/// back 3.9 s; s1 restarts (its round counter starts again at 0) and leads term 3. The old
/// request reaches s2, already in term 3: its rejection carries term 3, and used to echo the
/// old, high round, so s1 counted s2 as confirming every round up to it, and served reads
/// alone in a minority while a term-4 leader took writes. A rejection of an older term's
/// request now echoes round 0, which confirms nothing.
#[test]
fn a_rejection_of_an_older_terms_request_confirms_no_read_index_round() {
    let cfg = json!({
        "termination": 16000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300,
                      "heartbeat_interval": 50, "read_index": true},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}},
                    "nodes": [{"id": "s1", "type": "server", "clock": {"rate": 3}}, {"id": "s2", "type": "server"},
                              {"id": "s3", "type": "server"}, {"id": "c1", "type": "client"},
                              {"id": "c2", "type": "client"}, {"id": "c3", "type": "client"}],
                    "mesh": true},
        "timeline": [
            {"at": 1000, "action": "clock", "node": "s1", "rate": 1},
            {"at": 9900, "action": "clock", "node": "s3", "rate": 1.8},
            {"at": 10000, "action": "link_change", "link": "s1-s2", "direction": "forward", "latency": 3900},
            {"at": 10005, "action": "link_change", "link": "s1-s2", "direction": "forward",
             "latency": {"dist": "uniform", "min": 1, "max": 2}},
            {"at": 10010, "action": "crash", "node": "s1"}, {"at": 10100, "action": "recover", "node": "s1"},
            {"at": 10500, "action": "clock", "node": "s3", "rate": 1}, {"at": 10500, "action": "clock", "node": "s1", "rate": 1.8},
            {"at": 11000, "action": "crash", "node": "s3"}, {"at": 12000, "action": "clock", "node": "s1", "rate": 1},
            {"at": 14100, "action": "partition", "groups": [["s1", "c1"], ["s2", "s3", "c2", "c3"]]},
            {"at": 14100, "action": "recover", "node": "s3"}],
        "workload": {"type": "closed", "think_time": 20, "keys": 1, "read_fraction": 0.0,
                     "clients": {"c1": {"read_fraction": 1.0}, "c3": {"think_time": 0, "stop": 10000}}}
    });
    for seed in [1, 2, 4, 5] {
        assert_safe(&results(&cfg, seed), &format!("seed {seed}"));
    }
}

/// Flow control: a follower back from a crash behind a 1 Mbit/s link, under 300 writes/s,
/// keeps up when each entry crosses its link once (before flow control, every request carried
/// everything it had not acknowledged, the copies queued on the link and the follower ended
/// about 8,000 entries behind with 7,600 packets still queued).
#[test]
fn a_follower_behind_a_slow_link_catches_up_and_keeps_up() {
    let mut nodes = vec![];
    let mut links = vec![];
    for s in 1..=3 {
        nodes.push(json!({"id": s, "type": "server"}));
        let mut l = json!({"from": s, "to": "sw", "latency": 1});
        if s == 3 {
            l["bandwidth"] = json!(1);
        }
        links.push(l);
    }
    for c in 1..=3 {
        nodes.push(json!({"id": format!("c{c}"), "type": "client"}));
        links.push(json!({"from": format!("c{c}"), "to": "sw", "latency": 1}));
    }
    nodes.push(json!({"id": "sw", "type": "hub"}));
    let cfg = json!({
        "termination": 20000,
        "consensus": {"protocol": "raft", "snapshot_threshold": 200, "snapshot_trailing": 5000},
        "network": {"nodes": nodes, "links": links},
        "workload": {"type": "open", "rate": 100, "keys": 3000, "read_fraction": 0},
        "timeline": [{"at": 3000, "action": "crash", "node": 3},
                     {"at": 6000, "action": "recover", "node": 3}]
    });
    for seed in 1..=3 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let commit = |id: u64| {
            r["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["id"] == id)
                .unwrap()["commit_index"]
                .as_u64()
                .unwrap()
        };
        let leader = (1..=2).map(commit).max().unwrap();
        assert!(leader > 5000, "seed {seed}: {leader}");
        assert!(
            commit(3) + 20 >= leader,
            "seed {seed}: {} of {leader}",
            commit(3)
        );
        assert!(r["network"]["packets_in_flight"].as_u64().unwrap() < 50);
    }
}
