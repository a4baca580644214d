//! Viewstamped Replication Revisited in the simulator: the same scenarios, checks and metrics as
//! Raft. Every scenario of `examples/` that is not Raft-specific runs under VRR by changing
//! `consensus.protocol`, with zero invariant violations and linearizable histories over many
//! seeds, and the paper's view-change and recovery cases behave as the paper says.

mod common;
use common::*;

use serde_json::{Value, json};

fn vrr(mut cfg: Value) -> Value {
    cfg["consensus"]["protocol"] = json!("vrr");
    cfg
}

#[test]
fn every_protocol_neutral_example_runs_under_vrr() {
    for (name, seeds) in [
        ("raft-5.json", 3),
        ("hub-star.json", 3),
        ("one-way-link.json", 3),
        ("crash-recover.json", 3),
        ("compact-raft.json", 1),
        ("reliable/nontransitive-split.json", 3),
        ("reliable/redundant-links-fail-together.json", 3),
        ("reliable/asymmetric-nic.json", 3),
        ("reliable/gc-pauses.json", 3),
        ("reliable/transient-to-long-outage.json", 3),
        ("2015/simple_star.json", 3),
        ("2015/simple_triangle.json", 3),
        ("2015/split_brain.json", 2),
        ("2015/asym.json", 2),
        ("2015/hidden_pair.json", 2),
    ] {
        let cfg = vrr(example(name));
        for seed in 1..=seeds {
            let r = results(&cfg, seed);
            assert_safe(&r, &format!("{name} seed {seed}"));
            assert_eq!(r["protocol"], "vrr");
        }
    }
}

#[test]
fn diskless_and_durable_vrr_under_chaos() {
    let mut cfg = vrr(example("teaching/storm.json"));
    cfg["consensus"] = json!({"protocol": "vrr", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 50});
    for durable in [false, true] {
        cfg["consensus"]["durable"] = json!(durable);
        for seed in 1..=15 {
            let r = results(&cfg, seed);
            assert_safe(&r, &format!("durable {durable} seed {seed}"));
            // Diskless replicas cannot recover while more than f are down at once (the paper's
            // assumption), which random faults sometimes break; durable ones always do.
            if durable {
                assert!(
                    r["clients"]["ops_completed"].as_u64().unwrap() > 100,
                    "seed {seed}"
                );
            }
        }
    }
}

fn three(timeline: Value, durable: bool) -> Value {
    json!({
        "termination": 6000,
        "consensus": {"protocol": "vrr", "durable": durable},
        "network": {
            "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 3}},
            "nodes": [{"id": "r0", "type": "server"}, {"id": "r1", "type": "server"}, {"id": "r2", "type": "server"}, {"id": "c", "type": "client"}],
            "mesh": true
        },
        "workload": {"type": "closed", "think_time": 5, "keys": 3, "cas_fraction": 0.3},
        "timeline": timeline
    })
}

fn view_of_leader_at_end(r: &Value) -> u64 {
    r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "leader")
        .map(|n| n["term"].as_u64().unwrap())
        .max()
        .unwrap_or(0)
}

#[test]
fn primary_crash_moves_to_the_next_view_and_keeps_committed_operations() {
    // View 0's primary is r0 (the first server in configured order).
    for seed in 1..=5 {
        let r = results(
            &three(
                json!([{"at": 2000, "action": "crash", "node": "r0"}]),
                false,
            ),
            seed,
        );
        assert_safe(&r, &format!("seed {seed}"));
        assert_eq!(
            view_of_leader_at_end(&r),
            1,
            "seed {seed}: view 1, primary r1"
        );
        assert_eq!(r["nodes"][1]["role"], "leader");
        assert!(
            r["protocol_stats"]["counters"]["view_changes_completed"]
                .as_u64()
                .unwrap()
                >= 1
        );
        let ops = r["clients"]["ops_completed"].as_u64().unwrap();
        assert!(
            ops > 300,
            "seed {seed}: clients continue after the view change ({ops})"
        );
    }
}

#[test]
fn crash_during_a_view_change_moves_on_to_a_later_view() {
    // Five replicas (f = 2): r0 crashes; r1, the next primary, crashes while the view change to
    // view 1 is under way; r2, r3 and r4 complete a later view; r1 comes back later.
    let tl = json!([
        {"at": 2000, "action": "crash", "node": "r0"},
        {"at": 2160, "action": "crash", "node": "r1"},
        {"at": 3500, "action": "recover", "node": "r1"},
    ]);
    for durable in [false, true] {
        for seed in 1..=5 {
            let mut cfg = three(tl.clone(), durable);
            let nodes = cfg["network"]["nodes"].as_array_mut().unwrap();
            nodes.insert(3, json!({"id": "r3", "type": "server"}));
            nodes.insert(4, json!({"id": "r4", "type": "server"}));
            let r = results(&cfg, seed);
            assert_safe(&r, &format!("durable {durable} seed {seed}"));
            assert!(
                view_of_leader_at_end(&r) >= 2,
                "durable {durable} seed {seed}: a later view completes"
            );
        }
    }
}

#[test]
fn a_replica_recovering_without_disk_catches_up_and_never_votes_while_recovering() {
    let tl = json!([{"at": 2000, "action": "crash", "node": "r2"}, {"at": 3000, "action": "recover", "node": "r2"}]);
    for seed in 1..=5 {
        let r = results(&three(tl.clone(), false), seed);
        assert_safe(&r, &format!("seed {seed}"));
        let c = &r["protocol_stats"]["counters"];
        assert!(c["recoveries_completed"].as_u64().unwrap() >= 1, "{c}");
        let logs: Vec<u64> = r["nodes"].as_array().unwrap()[..3]
            .iter()
            .map(|n| n["log_len"].as_u64().unwrap())
            .collect();
        assert!(
            logs[2] + 5 >= logs[0],
            "seed {seed}: r2 caught up ({logs:?})"
        );
        assert_eq!(
            view_of_leader_at_end(&r),
            0,
            "seed {seed}: no view change was needed"
        );
    }
}

#[test]
fn partitions_and_lossy_links() {
    // The primary is cut into a minority: the majority side changes view and commits; after
    // healing everyone converges.
    let tl = json!([{"at": 2000, "action": "partition", "groups": [["r0"], "rest"]}, {"at": 4000, "action": "heal"}]);
    for seed in 1..=5 {
        let r = results(&three(tl.clone(), false), seed);
        assert_safe(&r, &format!("seed {seed}"));
        assert!(view_of_leader_at_end(&r) >= 1);
    }
    let mut lossy = three(json!([]), false);
    lossy["network"]["defaults"]["loss"] = json!(0.1);
    lossy["network"]["defaults"]["duplicate"] = json!(0.05);
    for seed in 1..=5 {
        let r = results(&lossy, seed);
        assert_safe(&r, &format!("lossy seed {seed}"));
        // One client in a closed loop: with 10 % loss about a third of its operations wait
        // out the client timeout (Raft fares the same), so 27-109 complete over seeds 1-200.
        let done = r["clients"]["ops_completed"].as_u64().unwrap();
        assert!(done > 20, "lossy seed {seed}: {done} operations");
    }
}

#[test]
fn metrics_line_up_with_raft() {
    let cfg = example("raft-5.json");
    let a = results(&cfg, 1);
    let b = results(&vrr(cfg), 1);
    for key in [
        "time_to_first_leader_ms",
        "leader_elections",
        "leader_changes",
        "max_term",
        "available_ms",
        "unavailability_windows",
    ] {
        assert!(
            a["protocol_stats"].get(key).is_some() && b["protocol_stats"].get(key).is_some(),
            "{key}"
        );
    }
    for key in ["ops_completed", "latency_ms", "throughput_ops_per_s"] {
        assert!(
            a["clients"].get(key).is_some() && b["clients"].get(key).is_some(),
            "{key}"
        );
    }
}

/// A replica catching up by state transfer over a duplicating network: each duplicated or stale
/// NewState used to start its own chain of GetState requests, and the chains multiplied (3
/// million requests within 300 ms of simulated time, memory exhausted). Now only a reply that
/// brings new entries asks for the next batch at once.
#[test]
fn state_transfer_requests_stay_bounded_on_a_duplicating_network() {
    let cfg = json!({
        "termination": 9000,
        "consensus": {"protocol": "vrr", "durable": true, "max_entries_per_message": 8},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}, "duplicate": 0.1},
                    "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"},
                              {"id": 3, "type": "server"}, {"id": "c1", "type": "client"}],
                    "mesh": true},
        "timeline": [{"at": 2000, "action": "crash", "node": 3}, {"at": 6000, "action": "recover", "node": 3}],
        "workload": {"type": "closed", "think_time": 0, "keys": 2}
    });
    for seed in 1..=3 {
        let r = results(&cfg, seed);
        assert_eq!(r["checks"]["invariants"]["status"], "ok");
        assert_eq!(r["checks"]["linearizability"]["status"], "ok");
        let gets = r["network"]["messages_by_type"]["get_state"]
            .as_u64()
            .unwrap();
        assert!(
            (1..1000).contains(&gets),
            "seed {seed}: {gets} GetState messages"
        );
        // The recovered replica caught up with the others.
        let ops: Vec<u64> = (0..3)
            .map(|n| {
                r["nodes"][n]["state"]["commit_number"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        assert!(
            ops[2] + 50 >= ops[0] && ops[2] > 1000,
            "seed {seed}: {ops:?}"
        );
    }
}

/// A replica transferring state into a newer view while the primary appends faster than one
/// batch per round trip completes the transfer (it aims at the op-number of the first reply)
/// and then catches up as a backup; it used to chase the moving op-number for ever.
#[test]
fn a_state_transfer_completes_while_the_primary_keeps_appending() {
    let nodes = servers_and_clients(5, 16);
    let cfg = json!({
        "termination": 45000,
        "consensus": {"protocol": "vrr", "max_entries_per_message": 4,
                      "view_change_timeout_min": 300, "view_change_timeout_max": 600},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 20, "max": 30}}, "nodes": nodes, "mesh": true},
        "timeline": [{"at": 2000, "action": "partition", "groups": [["s1"], "rest"]}, {"at": 12000, "action": "heal"}],
        "workload": {"type": "closed", "think_time": 0, "keys": 5}
    });
    let r = results(&cfg, 1);
    assert_eq!(r["checks"]["invariants"]["status"], "ok");
    assert_eq!(r["checks"]["linearizability"]["status"], "ok");
    let s1 = &r["nodes"][0]["state"];
    assert_eq!(s1["status"], "normal");
    assert_eq!(
        s1["last_normal_view"], r["nodes"][1]["state"]["last_normal_view"],
        "{s1}"
    );
    assert!(
        r["protocol_stats"]["counters"]["state_transfers_completed"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

/// A diskless replica recovering over a 2 Mbit/s link once the log holds ~1,900 entries: the
/// primary answers every Recovery with its whole log, so retries at a fixed 150-300 ms queued
/// copies faster than the link carried them and the replica never recovered. Retries now back
/// off.
#[test]
fn a_diskless_replica_recovers_over_a_slow_link() {
    let nodes = servers_and_clients(5, 2);
    let cfg = json!({
        "termination": 25000,
        "consensus": {"protocol": "vrr"},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}, "bandwidth": 2},
                    "nodes": nodes, "mesh": true},
        "timeline": [{"at": 15000, "action": "crash", "node": "s4"}, {"at": 16000, "action": "recover", "node": "s4"}],
        "workload": {"type": "open", "rate": 60, "keys": 5}
    });
    for seed in 1..=3 {
        let r = results(&cfg, seed);
        assert_eq!(r["checks"]["linearizability"]["status"], "ok");
        assert_eq!(r["nodes"][3]["state"]["status"], "normal", "seed {seed}");
    }
}

/// A log that takes longer to cross the link than the Recovery retry interval (about 2,000
/// ops of 48 bytes at 1 Mbit/s is 0.8 s, with retries every 0.15–1.2 s): recovery keeps its
/// nonce across retries, so the first RecoveryResponse to arrive counts. With a fresh nonce per
/// retry both replicas stayed `recovering` for good (found by review on 20 of 20 seeds).
#[test]
fn diskless_recovery_completes_when_the_log_crosses_slower_than_the_retry_interval() {
    let cfg = json!({
        "termination": 60000,
        "consensus": {"protocol": "vrr", "durable": false},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 3}, "bandwidth": 1.0},
                    "nodes": servers_and_clients(3, 3), "mesh": true},
        "workload": {"type": "open", "rate": 60, "keys": 4, "read_fraction": 0.3},
        "timeline": [{"at": 20000, "action": "crash", "node": "s3"}, {"at": 20500, "action": "recover", "node": "s3"},
                     {"at": 40000, "action": "crash", "node": "s1"}, {"at": 40500, "action": "recover", "node": "s1"}]
    });
    for seed in 1..=2 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let c = &r["protocol_stats"]["counters"];
        assert_eq!(c["recoveries_completed"], 2, "seed {seed}");
        for n in 0..3 {
            assert_eq!(
                r["nodes"][n]["state"]["status"],
                "normal",
                "seed {seed} s{}",
                n + 1
            );
        }
        assert!(
            r["clients"]["ops_completed"].as_u64().unwrap() > 10000,
            "seed {seed}"
        );
    }
}

/// Servers s1..=s`servers` and clients c1..=c`clients`, for a mesh.
fn servers_and_clients(servers: usize, clients: usize) -> Vec<Value> {
    let server = |i| json!({"id": format!("s{i}"), "type": "server"});
    let client = |i| json!({"id": format!("c{i}"), "type": "client"});
    (1..=servers)
        .map(server)
        .chain((1..=clients).map(client))
        .collect()
}

#[test]
fn a_view_change_completes_at_once_over_slow_links() {
    // Five replicas on 1 Mbit/s links, a few hundred ops in the log when the primary crashes:
    // DoViewChange and StartView carry log suffixes, so one view change suffices (with whole
    // logs most seeds went through dozens, see docs/config.md, "Slow links").
    let mut cfg = example("vrr-slow-links.json");
    cfg["termination"] = json!(15000);
    for seed in 1..=3 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let p = &r["protocol_stats"];
        assert_eq!(p["leader_changes"], 1, "seed {seed}");
        let gap = p["unavailability_windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w[0].as_f64().unwrap() >= 8000.0)
            .map(|w| w[1].as_f64().unwrap() - w[0].as_f64().unwrap())
            .unwrap();
        assert!(gap < 400.0, "seed {seed}: {gap} ms without a primary");
    }
}

/// Durable replicas restart from the commit-number written with their last log write, so
/// view changes after restarts carry short suffixes and complete on slow links: a primary is
/// back within a second of the last random fault (with a volatile commit-number the median
/// seed went 7.7 s without one; see docs/config.md, "Slow links").
#[test]
fn durable_replicas_restarting_on_slow_links_recover_quickly() {
    let cfg = example("vrr-restarts.json");
    for seed in 1..=4 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let last_fault = r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["t"].as_f64().unwrap())
            .fold(0.0, f64::max);
        let back = r["protocol_stats"]["unavailability_windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w[1].as_f64().unwrap())
            .fold(0.0, f64::max);
        assert!(
            back < last_fault + 1000.0,
            "seed {seed}: no primary until {back} ms, last fault at {last_fault} ms"
        );
    }
}

#[test]
fn a_disk_based_primary_restarting_in_its_old_view_is_not_a_new_leader() {
    // r0, primary of view 0, crashes; view 1 starts without it; r0 restarts from disk as
    // primary of view 0 for a few ms until it hears of view 1. Only two leaders count.
    let cfg = three(
        json!([
            {"at": 1000, "action": "crash", "node": "r0"},
            {"at": 3000, "action": "recover", "node": "r0"}
        ]),
        true,
    );
    for seed in 1..=3 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let p = &r["protocol_stats"];
        assert_eq!(p["counters"]["view_changes_completed"], 1, "seed {seed}");
        assert_eq!(p["leader_elections"], 2, "seed {seed}");
        assert_eq!(p["leader_changes"], 1, "seed {seed}");
    }
}

/// `entries_appended` counts the ops a replica assigned as primary, nothing else: a backup that
/// fills the gaps a lossy link left, in place within the view (GetState requests, no completed
/// transfer), appends many entries and counts none.
#[test]
fn entries_appended_counts_only_what_the_primary_assigns() {
    let cfg = json!({
        "termination": 6000,
        "consensus": {"protocol": "vrr"},
        "network": {
            "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 3}},
            "nodes": [{"id": "r0", "type": "server"}, {"id": "r1", "type": "server"}, {"id": "r2", "type": "server"}, {"id": "c", "type": "client"}],
            "links": [{"from": "r0", "to": "r2", "latency": 2, "loss": 0.2}],
            "mesh": true
        },
        "workload": {"type": "closed", "think_time": 5, "keys": 3}
    });
    let r = results(&cfg, 1);
    assert_safe(&r, "seed 1");
    let total = &r["protocol_stats"]["counters"];
    assert_eq!(total["view_changes_completed"], 0, "one view: r0 primary");
    let node = |i: usize, k: &str| r["nodes"][i]["counters"][k].as_u64().unwrap();
    let log_len = |i: usize| r["nodes"][i]["log_len"].as_u64().unwrap();
    assert_eq!(node(0, "entries_appended"), log_len(0));
    assert_eq!(total["entries_appended"].as_u64(), Some(log_len(0)));
    assert!(node(2, "state_transfers") > 0);
    assert_eq!(node(2, "state_transfers_completed"), 0);
    for b in [1, 2] {
        assert!(log_len(b) > 300, "backup {b} holds the log");
        assert_eq!(node(b, "entries_appended"), 0, "backup {b}");
    }
}

/// More than f diskless replicas lost their state at once: the cluster stalls for good with
/// every check ok, as the paper predicts, and the results say so in `notes` (a run that ends
/// normally has none), so a sweep or a reader of `--output` can tell it from a liveness bug.
#[test]
fn the_results_note_a_diskless_cluster_that_cannot_recover() {
    let tl = json!([
        {"at": 2000, "action": "crash", "node": "r0"}, {"at": 2000, "action": "crash", "node": "r1"},
        {"at": 2500, "action": "recover", "node": "r0"}, {"at": 2500, "action": "recover", "node": "r1"}
    ]);
    let r = results(&three(tl.clone(), false), 1);
    assert_safe(&r, "diskless");
    assert_eq!(
        r["notes"],
        json!([
            "2 of 3 replicas end recovering, more than f = 1: diskless VRR cannot recover once more than f replicas lost their state at once (the paper's assumption); see `durable` in docs/config.md"
        ])
    );
    // Derived from the engine's outcome; read back from the document's nodes, the same.
    assert_eq!(
        coracle_sim::results::stall_note(&r, true).as_deref(),
        r["notes"][0].as_str()
    );
    assert!(
        r["warnings"].as_array().unwrap().is_empty(),
        "not a warning"
    );
    // Durable replicas restart from their disks: no stall, no note.
    let r = results(&three(tl, true), 1);
    assert_eq!(coracle_sim::results::stall_note(&r, false), None);
    assert_eq!(r["notes"], json!([]));
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.last().unwrap().as_str(),
        "notes",
        "last, after warnings"
    );
}

/// A diskless replica that is down lost its state as much as one that is recovering (it comes
/// back recovering): three of five lose it, one stays down and two end recovering. No progress
/// after the second crash, and the note says why (it counted only recovering replicas once).
#[test]
fn the_stall_note_counts_a_down_diskless_replica_against_f() {
    let cfg = |durable: bool| {
        json!({
            "termination": 20000,
            "consensus": {"protocol": "vrr", "durable": durable},
            "network": {
                "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}},
                "nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"},
                          {"id": "s3", "type": "server"}, {"id": "s4", "type": "server"},
                          {"id": "s5", "type": "server"}, {"id": "c1", "type": "client"}],
                "mesh": true
            },
            "timeline": [
                {"at": 3000, "action": "crash", "node": "s5"},
                {"at": 5000, "action": "crash", "node": "s3"}, {"at": 5000, "action": "crash", "node": "s4"},
                {"at": 6000, "action": "recover", "node": "s3"}, {"at": 6000, "action": "recover", "node": "s4"}
            ],
            "workload": {"type": "closed", "think_time": 10, "keys": 5}
        })
    };
    let r = results(&cfg(false), 1);
    assert_safe(&r, "diskless");
    let roles: Vec<&str> = r["nodes"].as_array().unwrap()[..5]
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["leader", "follower", "recovering", "recovering", "down"]
    );
    assert_eq!(
        r["notes"],
        json!([
            "3 of 5 replicas end without their state (2 recovering, 1 down), more than f = 2: diskless VRR cannot recover once more than f replicas lost their state at once (the paper's assumption); see `durable` in docs/config.md"
        ])
    );
    assert_eq!(
        coracle_sim::results::stall_note(&r, true).as_deref(),
        r["notes"][0].as_str()
    );
    // Durable: a down replica keeps its disk, and the two others resume from theirs.
    let r = results(&cfg(true), 1);
    assert_safe(&r, "durable");
    assert_eq!(r["notes"], json!([]));
    assert_eq!(coracle_sim::results::stall_note(&r, false), None);
}

/// Checkpoints (`checkpoint_interval`, §5.3) taken every few ops: a partitioned replica comes
/// back after the others compacted past its op-number and catches up through state transfer
/// (the checkpoint, then the ops after it); a diskless replica recovers from the primary's
/// checkpoint and log; a disk-based one resumes from its own; the primary crashes after
/// compaction and the view changes; all with every invariant and a linearizable history.
#[test]
fn checkpoints_under_partitions_crashes_and_view_changes() {
    let tl = json!([
        {"at": 1000, "action": "partition", "groups": [["r2"], "rest"]},
        {"at": 2500, "action": "heal"},
        {"at": 3000, "action": "crash", "node": "r1"},
        {"at": 3600, "action": "recover", "node": "r1"},
        {"at": 4200, "action": "crash", "node": "r0"},
        {"at": 4800, "action": "recover", "node": "r0"},
    ]);
    for durable in [false, true] {
        let mut installed = 0;
        for seed in 1..=20 {
            let mut cfg = three(tl.clone(), durable);
            cfg["consensus"]["checkpoint_interval"] = json!(5 + seed % 6);
            let r = results(&cfg, seed);
            let what = format!("durable {durable} seed {seed}");
            assert_safe(&r, &what);
            let c = &r["protocol_stats"]["counters"];
            assert!(c["checkpoints_taken"].as_u64().unwrap() > 10, "{what}: {c}");
            installed += c["checkpoints_installed"].as_u64().unwrap();
            assert!(view_of_leader_at_end(&r) >= 1, "{what}: a view change");
            let logs: Vec<u64> = r["nodes"].as_array().unwrap()[..3]
                .iter()
                .map(|n| n["log_len"].as_u64().unwrap())
                .collect();
            let top = *logs.iter().max().unwrap();
            assert!(
                logs.iter().all(|&l| l + 5 >= top),
                "{what}: every replica caught up ({logs:?})"
            );
            let ops = r["clients"]["ops_completed"].as_u64().unwrap();
            assert!(ops > 300, "{what}: {ops} operations");
        }
        // The partitioned replica (and the diskless ones recovering) needed the checkpoint.
        assert!(
            installed >= 20,
            "durable {durable}: {installed} checkpoints installed"
        );
    }
}

/// The same chaos as `diskless_and_durable_vrr_under_chaos`, compacting every 8 ops.
#[test]
fn checkpoints_under_chaos() {
    let mut cfg = vrr(example("teaching/storm.json"));
    cfg["consensus"] = json!({"protocol": "vrr", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 50, "checkpoint_interval": 8});
    for durable in [false, true] {
        cfg["consensus"]["durable"] = json!(durable);
        for seed in 1..=15 {
            let r = results(&cfg, seed);
            assert_safe(&r, &format!("durable {durable} seed {seed}"));
        }
    }
}

/// A backup that installed a checkpoint copy and asks for the ops after it is sent the next
/// copy at once: a copy counts as "in a row" for the resend backoff only while the replica has
/// not got past it. (A review found the count never reset when the others had checkpointed
/// again meanwhile: after seven partitions of s3, the primary ignored its GetStates for 9.6 s,
/// and when the other backup was then cut off, nothing committed for 3.2 s on seeds 1 and 29.)
#[test]
fn a_caught_up_backup_is_not_held_back_by_the_checkpoint_resend_backoff() {
    let mut timeline = Vec::new();
    for k in 0..9 {
        let at = 2000 + 6000 * k;
        timeline.push(json!({"at": at, "action": "partition", "groups": [["s3"], "rest"]}));
        timeline.push(json!({"at": at + 3000, "action": "heal"}));
    }
    timeline.push(json!({"at": 53500, "action": "partition",
        "groups": [["s3", {"role": "leader"}, "c1", "c2", "c3"], [{"role": "follower"}]]}));
    let cfg = json!({
        "termination": 60000,
        "consensus": {"protocol": "vrr", "checkpoint_interval": 100},
        "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 3}},
                    "nodes": servers_and_clients(3, 3), "mesh": true},
        "timeline": timeline,
        "workload": {"type": "open", "rate": 30, "keys": 20, "read_fraction": 0.3}
    });
    for seed in [1, 29] {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        // The longest time without any server's applied count moving, after the start.
        let mut times: Vec<f64> = r["series"]["commits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["points"].as_array().unwrap().iter())
            .map(|p| p[0].as_f64().unwrap())
            .filter(|t| *t > 1000.0)
            .collect();
        times.sort_by(f64::total_cmp);
        let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(gap < 1000.0, "seed {seed}: {gap} ms without a commit");
    }
}
