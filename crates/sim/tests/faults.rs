//! Fault models: pauses, isolation, partitions, role-targeted actions, clocks, flapping links,
//! bursty loss, duplication, bandwidth and queues, random fault schedules.

mod common;
use common::*;

use serde_json::{Value, json};

fn count(r: &Value, node: usize, counter: &str) -> u64 {
    r["nodes"][node]["counters"][counter].as_u64().unwrap_or(0)
}

/// Servers 1..=n in a mesh (1 ms links), each saying hello to server 1 every 10 ms.
fn hellos(n: usize, termination: u64, timeline: Value) -> Value {
    json!({
        "termination": termination,
        "consensus": {"protocol": "dummy", "id": 1, "interval": 10},
        "network": {
            "defaults": {"latency": 1},
            "nodes": (1..=n).map(|i| json!({"id": i, "type": "server"})).collect::<Vec<_>>(),
            "mesh": true
        },
        "timeline": timeline
    })
}

#[test]
fn a_paused_node_handles_everything_it_missed_when_it_resumes() {
    // Server 1 paused from 105 to 305 ms: server 2's hellos sent at 110..300 (20 of them) wait;
    // 1's own timer (due at 110) waits too and fires once at resume, so its later ticks fall at
    // 315, 325, ...: 20 of its own hellos fewer in all.
    let tl = json!([{"at": 105, "action": "pause", "node": 1}, {"at": 305, "action": "resume", "node": 1}]);
    let r = results(&hellos(2, 1000, tl.clone()), 1);
    let base = results(&hellos(2, 1000, json!([])), 1);
    assert_eq!(count(&base, 0, "hellos_received"), 2 * 101 - 1);
    // Nothing is lost: server 2's hellos all arrive (late).
    assert_eq!(r["network"]["packets_dropped"]["node_down"], 0);
    assert_eq!(
        count(&r, 0, "hellos_received"),
        count(&base, 0, "hellos_received") - 20
    );
    assert_eq!(
        count(&r, 1, "hello_backs_received"),
        count(&base, 1, "hello_backs_received")
    );
    assert_eq!(r["actions"][0]["action"], "pause");
    assert_eq!(r["actions"][0]["node"], 1);
}

#[test]
fn isolation_in_and_out() {
    // Server 2 deaf from 100 to 200: its hellos reach 1, the hello-backs are lost.
    let r = results(
        &hellos(
            2,
            1000,
            json!([{"at": 100, "action": "isolate", "node": 2, "direction": "in"}, {"at": 200, "action": "rejoin", "node": 2}]),
        ),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["isolated"], 10);
    // Mute instead: its hellos are lost at the source.
    let r = results(
        &hellos(
            2,
            1000,
            json!([{"at": 100, "action": "isolate", "node": 2, "direction": "out"}, {"at": 200, "action": "rejoin", "node": 2}]),
        ),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["isolated"], 10);
    assert_eq!(count(&r, 0, "hellos_received"), 2 * 101 - 1 - 10);
}

#[test]
fn partitions_two_way_one_way_and_heal() {
    let tl = json!([
        {"at": 100, "action": "partition", "groups": [[1], [2, 3]]},
        {"at": 200, "action": "heal"},
        {"at": 300, "action": "partition", "from": [3], "to": [1]},
        {"at": 400, "action": "heal"}
    ]);
    let r = results(&hellos(3, 1000, tl), 1);
    // 100..200: hellos of 2 and 3 (10 each) cut; 300..400: 3's hellos cut (10), answers to 2 fine.
    assert_eq!(r["network"]["packets_dropped"]["partition"], 30);
    assert_eq!(r["actions"][0]["groups"], json!([[1], [2, 3]]));
}

#[test]
fn packets_in_flight_across_a_new_partition_are_lost() {
    let cfg = json!({
        "termination": 100,
        "consensus": {"protocol": "dummy", "id": 2},
        "network": {"nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}], "links": [{"from": 1, "to": 2, "latency": 10}]},
        "timeline": [{"at": 5, "action": "partition", "groups": [[1], [2]]}]
    });
    let r = results(&cfg, 1);
    assert_eq!(r["network"]["packets_dropped"]["partition"], 1);
}

fn raft_cluster(timeline: Value) -> Value {
    json!({
        "termination": 4000,
        "consensus": {"protocol": "raft"},
        "network": {
            "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}},
            "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "c", "type": "server"}, {"id": "k", "type": "client"}],
            "mesh": true
        },
        "workload": {"type": "closed", "think_time": 5},
        "timeline": timeline
    })
}

#[test]
fn role_targets_resolve_when_the_action_fires() {
    let tl = json!([
        {"at": 1000, "action": "crash", "role": "leader"},
        {"at": 2000, "action": "recover", "role": "last"},
        {"at": 3000, "action": "isolate", "role": "follower"},
        {"at": 3500, "action": "rejoin", "role": "last"}
    ]);
    for seed in 1..=5 {
        let r = results(&raft_cluster(tl.clone()), seed);
        let acts = r["actions"].as_array().unwrap();
        assert_eq!(acts.len(), 4);
        let crashed = &acts[0]["node"];
        assert_eq!(
            &acts[1]["node"], crashed,
            "recover hits the node the crash hit"
        );
        assert_eq!(&acts[3]["node"], &acts[2]["node"]);
        // The crashed node was the leader: a new leader was elected after 1000 ms.
        assert!(
            r["protocol_stats"]["leader_elections"].as_u64().unwrap() >= 2,
            "seed {seed}"
        );
        assert_eq!(r["checks"]["invariants"]["status"], "ok");
        assert_eq!(r["checks"]["linearizability"]["status"], "ok");
    }
}

#[test]
fn a_role_in_a_partition_group_takes_its_node_out_of_a_group_naming_it() {
    // "Cut the leader off from everyone": the leader is also listed in the second group.
    let tl = json!([{"at": 1000, "action": "partition", "groups": [[{"role": "leader"}], ["a", "b", "c"]]}]);
    for seed in 1..=5 {
        let r = results(&raft_cluster(tl.clone()), seed);
        let groups = r["actions"][0]["groups"].as_array().unwrap().clone();
        assert_eq!(
            groups[0].as_array().unwrap().len(),
            1,
            "seed {seed}: {groups:?}"
        );
        assert_eq!(
            groups[1].as_array().unwrap().len(),
            2,
            "seed {seed}: {groups:?}"
        );
        assert!(!groups[1].as_array().unwrap().contains(&groups[0][0]));
        // The majority elects a new leader.
        assert!(r["protocol_stats"]["leader_elections"].as_u64().unwrap() >= 2);
        assert_eq!(r["checks"]["linearizability"]["status"], "ok");
    }
}

#[test]
fn a_role_nobody_has_skips_the_action() {
    let r = results(
        &raft_cluster(json!([{"at": 0, "action": "crash", "role": "leader"}])),
        1,
    );
    assert_eq!(r["actions"][0]["skipped"], "no node had that role");
    // The same for a partition or a one-way partition naming a role nobody has.
    let r = results(
        &raft_cluster(json!([
            {"at": 0, "action": "partition", "groups": [[{"role": "leader"}], "rest"]},
            {"at": 0, "action": "partition", "from": [{"role": "candidate"}], "to": ["a"]}
        ])),
        1,
    );
    assert_eq!(r["actions"][0]["skipped"], "no node had that role");
    assert_eq!(r["actions"][1]["skipped"], "no node had that role");
    assert_eq!(r["network"]["packets_dropped"]["partition"], 0);
}

#[test]
fn actions_that_change_nothing_say_so() {
    let r = results(
        &raft_cluster(json!([
            {"at": 100, "action": "recover", "node": "a"},
            {"at": 200, "action": "resume", "node": "a"},
            {"at": 300, "action": "crash", "node": "b"},
            {"at": 400, "action": "crash", "node": "b"},
            {"at": 500, "action": "pause", "node": "b"}
        ])),
        1,
    );
    let skipped: Vec<&Value> = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["skipped"])
        .collect();
    assert_eq!(
        skipped,
        [
            &json!("already up"),
            &json!("not paused"),
            &Value::Null,
            &json!("already down"),
            &json!("down")
        ]
    );
}

#[test]
fn random_delays_are_drawn_from_the_seed() {
    let tl = json!([{"at": 1000, "delay": {"dist": "uniform", "min": 0, "max": 50}, "action": "crash", "role": "leader"}]);
    let t = |seed| {
        results(&raft_cluster(tl.clone()), seed)["actions"][0]["t"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(t(1), t(1));
    assert_ne!(t(1), t(2));
    for seed in 1..10 {
        assert!((1000.0..1050.0).contains(&t(seed)));
    }
}

#[test]
fn clock_drift_speeds_up_timers() {
    let mut cfg = hellos(2, 1000, json!([]));
    cfg["network"]["nodes"][1]["clock"] = json!({"rate": 2.0});
    let r = results(&cfg, 1);
    // Server 2's 10 ms timer fires every 5 real ms: 201 hellos instead of 101.
    assert_eq!(count(&r, 1, "hello_backs_received"), 200);
    // A clock action halves it again at 500 ms.
    let mut cfg = hellos(
        2,
        1000,
        json!([{"at": 500, "action": "clock", "node": 2, "rate": 1.0}]),
    );
    cfg["network"]["nodes"][1]["clock"] = json!({"rate": 2.0});
    let r = results(&cfg, 1);
    assert_eq!(count(&r, 1, "hello_backs_received"), 150);
}

#[test]
fn flapping_links_alternate() {
    let cfg = json!({
        "termination": 10000,
        "consensus": {"protocol": "dummy", "id": 1, "interval": 1},
        "network": {"nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}], "links": [{"id": "l", "from": 1, "to": 2, "latency": 0.1}]},
        "timeline": [{"at": 0, "action": "flap", "link": "l", "up": 100, "down": 100, "until": 8000}]
    });
    let r = results(&cfg, 1);
    // Down half the time until 8 s, then up: roughly 4000 of server 2's 10001 hellos lost.
    let lost = r["network"]["packets_dropped"]["no_route"]
        .as_u64()
        .unwrap();
    assert!((3900..=4100).contains(&lost), "{lost}");
}

#[test]
fn bursty_loss_has_the_stationary_rate_and_comes_in_bursts() {
    let cfg = json!({
        "termination": 20000,
        "consensus": {"protocol": "dummy", "id": 1, "interval": 1},
        "network": {
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}],
            "links": [{"from": 1, "to": 2, "latency": 0.1, "burst_loss": {"enter_bad": 0.02, "leave_bad": 0.2}}]
        }
    });
    let r = results(&cfg, 3);
    let d = &r["network"];
    let lost = d["packets_dropped"]["burst_loss"].as_f64().unwrap();
    let sent = d["packets_sent"].as_f64().unwrap();
    // Stationary P(bad) = 0.02 / (0.02 + 0.2) = 0.0909, all lost in bad.
    assert!((lost / sent - 0.0909).abs() < 0.015, "{}", lost / sent);
}

#[test]
fn duplicating_links_deliver_twice() {
    let cfg = json!({
        "termination": 1000,
        "consensus": {"protocol": "dummy", "id": 1, "interval": 1},
        "network": {
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}],
            "links": [{"from": 1, "to": 2, "latency": 0.1, "duplicate": 0.1}]
        }
    });
    let r = results(&cfg, 3);
    let dup = r["network"]["packets_duplicated"].as_f64().unwrap();
    let sent = r["network"]["packets_sent"].as_f64().unwrap();
    assert!((dup / sent - 0.1).abs() < 0.02);
    let in_flight = r["network"]["packets_in_flight"].as_f64().unwrap();
    assert_eq!(
        r["network"]["packets_delivered"].as_f64().unwrap(),
        sent + dup - in_flight
    );
}

#[test]
fn bandwidth_serialises_and_queues_drop_the_tail() {
    // Ten servers say hello to server 1 at once through a hub whose link to 1 carries 16 bytes
    // (one dummy message) per ms.
    let mk = |queue: Option<u32>| {
        let mut nodes = vec![json!({"id": "h", "type": "hub"})];
        let mut links = vec![];
        for i in 1..=11 {
            nodes.push(json!({"id": i, "type": "server"}));
            if i == 1 {
                let mut l = json!({"from": "h", "to": 1, "direction": "uni", "latency": 1, "bandwidth": 0.128});
                if let Some(q) = queue {
                    l["queue"] = json!(q);
                }
                links.push(l);
                links.push(json!({"from": 1, "to": "h", "direction": "uni", "latency": 1}));
            } else {
                links.push(json!({"from": i, "to": "h", "latency": 1}));
            }
        }
        json!({"termination": 100, "consensus": {"protocol": "dummy", "id": 1}, "network": {"nodes": nodes, "links": links}})
    };
    let r = results(&mk(None), 1);
    // 2 ms to the far side of the hub plus 1..10 ms of transmission.
    assert_eq!(r["network"]["latency_ms"]["max"], 12.0);
    assert_eq!(r["network"]["latency_ms"]["min"], 2.0);
    let r = results(&mk(Some(3)), 1);
    // One in transmission, three waiting: the other six are dropped.
    assert_eq!(r["network"]["packets_dropped"]["queue"], 6);
}

#[test]
fn chaos_is_seeded_and_undone() {
    let mut cfg = raft_cluster(json!([]));
    cfg["termination"] = json!(20000);
    cfg["chaos"] = json!({
        "start": 1000, "stop": 18000,
        "crash": {"rate": 0.5, "duration": {"dist": "uniform", "min": 100, "max": 1000}},
        "partition": {"rate": 0.3, "duration": 500},
        "pause": {"rate": 0.2, "duration": 300, "target": "leader"}
    });
    let a = results(&cfg, 7);
    let b = results(&cfg, 7);
    let c = results(&cfg, 8);
    assert_eq!(a, b);
    assert_ne!(a["actions"], c["actions"]);
    let acts = a["actions"].as_array().unwrap();
    let n = |what: &str| acts.iter().filter(|x| x["action"] == what).count();
    assert_eq!(n("crash"), n("recover"));
    assert_eq!(n("partition"), n("heal"));
    assert!((3..=20).contains(&n("crash")), "{}", n("crash"));
    assert_eq!(a["checks"]["invariants"]["status"], "ok");
    assert_eq!(a["checks"]["linearizability"]["status"], "ok");
}

/// Messages held behind a pending disk write are traced as `held`, as `send` when they enter
/// the network, and as `discard` when a crash loses them: the trace's sends are exactly
/// `network.packets_sent`.
#[test]
fn trace_sends_match_the_network_counters_with_slow_disks_and_crashes() {
    let mut cfg = example("crash-recover.json");
    cfg["storage"] = json!({"latency": {"dist": "uniform", "min": 2, "max": 6}});
    cfg["timeline"] = json!([
        {"at": 1003, "action": "crash", "role": "leader"},
        {"at": 1500, "action": "recover", "role": "last"},
        {"at": 2501, "action": "crash", "role": "follower"},
        {"at": 2800, "action": "recover", "role": "last"},
        {"at": 3202, "action": "crash", "role": "leader"},
        {"at": 3900, "action": "recover", "role": "last"}
    ]);
    let mut discarded = 0;
    for seed in 1..=4 {
        let opts = coracle_sim::RunOptions {
            seed,
            until: None,
            tracer: Some(coracle_sim::trace::Tracer::Ring {
                cap: usize::MAX,
                lines: Default::default(),
            }),
            stop_after: None,
            keep_going: false,
            record_history: true,
        };
        let r =
            coracle_sim::run(&scenario(&cfg), opts, &coracle_sim::CheckOptions::default()).unwrap();
        let (mut sends, mut held) = (0, 0);
        for l in r.outcome.tracer.as_ref().unwrap().kept() {
            let v: Value = serde_json::from_str(&l).unwrap();
            match v["kind"].as_str().unwrap() {
                "send" if v["to"] != v["node"] => sends += 1,
                "held" => held += 1,
                "discard" => discarded += v["sends"].as_u64().unwrap(),
                _ => {}
            }
        }
        assert!(held > 0, "seed {seed}: slow disks hold messages");
        assert_eq!(
            sends,
            r.results["network"]["packets_sent"].as_u64().unwrap(),
            "seed {seed}"
        );
    }
    assert!(discarded > 0, "some crash lost held messages");
}

/// Packets that reached a paused node before it was isolated wait for it and are received at
/// resume: isolation `in` is checked on arrival, and they had arrived. Only those arriving
/// during the isolation are lost, exactly as without the pause.
#[test]
fn packets_held_by_a_paused_node_survive_an_isolation_that_begins_later() {
    let isolate = json!([
        {"at": 200, "action": "isolate", "node": 1, "direction": "in"},
        {"at": 400, "action": "rejoin", "node": 1}
    ]);
    let mut paused = isolate.clone();
    let p = paused.as_array_mut().unwrap();
    p.insert(0, json!({"at": 105, "action": "pause", "node": 1}));
    p.insert(2, json!({"at": 305, "action": "resume", "node": 1}));
    let plain = results(&hellos(2, 1000, isolate), 1);
    let r = results(&hellos(2, 1000, paused), 1);
    // Server 2's hellos arriving at 201, 211, ..., 391.
    assert_eq!(plain["network"]["packets_dropped"]["isolated"], 20);
    assert_eq!(r["network"]["packets_dropped"]["isolated"], 20);
}

/// Two servers on one link `L`; `b` counts hellos from `a` every 100 ms.
fn pair(timeline: Value, chaos: Value) -> Value {
    json!({
        "termination": 5000,
        "consensus": {"protocol": "dummy", "id": "b", "interval": 100},
        "network": {
            "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}],
            "links": [{"id": "L", "from": "a", "to": "b", "latency": 1}]
        },
        "timeline": timeline,
        "chaos": chaos
    })
}

#[test]
fn a_random_fault_that_changes_nothing_undoes_nothing() {
    let skipped = |r: &Value, what: &str| {
        r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == what && a["skipped"].is_string())
            .count()
    };
    // `b` crashed for good at 10: random crashes find it down, and their recoveries must not
    // bring it back.
    let r = results(
        &pair(
            json!([{"at": 10, "action": "crash", "node": "b"}]),
            json!({"crash": {"rate": 2, "duration": 100}}),
        ),
        1,
    );
    assert_eq!(r["nodes"][1]["up"], false);
    assert!(skipped(&r, "recover") > 0);
    // The link cut for good at 10: random link faults find it down and leave it down.
    let r = results(
        &pair(
            json!([{"at": 10, "action": "link_down", "link": "L"}]),
            json!({"link": {"rate": 2, "duration": 100}}),
        ),
        1,
    );
    // The hello at 0 and its answer, before the cut.
    assert_eq!(r["network"]["packets_delivered"], 2);
    assert!(skipped(&r, "link_up") > 0);
    // `b` deaf from 10 on: a random isolation adds only the outbound direction, and its rejoin
    // takes away only that, so `b` never hears `a` again.
    let deaf = json!([{"at": 10, "action": "isolate", "node": "b", "direction": "in"}]);
    let quiet = results(&pair(deaf.clone(), json!({})), 1);
    let r = results(
        &pair(deaf, json!({"isolate": {"rate": 2, "duration": 100}})),
        1,
    );
    assert_eq!(quiet["network"]["packets_dropped"]["isolated"], 49);
    assert_eq!(
        count(&r, 1, "hellos_received"),
        count(&quiet, 1, "hellos_received")
    );
    // A random pause of a node a script paused ends with the script's resume, not before.
    let r = results(
        &pair(
            json!([{"at": 10, "action": "pause", "node": "a"}, {"at": 4000, "action": "resume", "node": "a"}]),
            json!({"pause": {"rate": 2, "duration": 100, "target": "servers"}}),
        ),
        1,
    );
    let early_resumes = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "resume" && x["node"] == "a" && x["skipped"].is_null())
        .filter(|x| (10.0..4000.0).contains(&x["t"].as_f64().unwrap()))
        .count();
    assert_eq!(early_resumes, 0);
    assert!(skipped(&r, "resume") > 0);
}

/// Each kind of random fault draws from its own stream: a shorter run has the same faults up
/// to its end (with one shared stream, the kinds after the first depended on the horizon).
#[test]
fn random_faults_before_a_shorter_horizon_do_not_depend_on_it() {
    let cfg = pair(
        json!([]),
        json!({"pause": {"rate": 1, "duration": 50}, "link": {"rate": 1, "duration": 50}}),
    );
    let long = results(&cfg, 1);
    let mut opts = coracle_sim::RunOptions::seeded(1);
    opts.until = Some(coracle_core::ms_to_time(3000.0));
    let short = coracle_sim::run(&scenario(&cfg), opts, &coracle_sim::CheckOptions::default())
        .unwrap()
        .results;
    let before = |r: &Value| -> Vec<Value> {
        r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["t"].as_f64().unwrap() < 3000.0)
            .cloned()
            .collect()
    };
    assert!(before(&long).iter().any(|a| a["action"] == "link_down"));
    assert_eq!(before(&long), before(&short));
}

/// A random fault's undo never ends a later (or a taken-over) scripted fault: with `b` crashed
/// by the script from 600 to 2500 ms, whatever random crashes hit it before, nothing brings it
/// back in between.
#[test]
fn a_random_faults_undo_never_ends_a_scripted_fault() {
    let script = json!([
        {"at": 600, "action": "crash", "node": "b"},
        {"at": 2500, "action": "recover", "node": "b"}
    ]);
    let chaos = json!({"stop": 2400, "crash": {"rate": 4, "duration": {"dist": "uniform", "min": 100, "max": 2000}}});
    let mut caught = 0;
    for seed in 1..=20 {
        let r = results(&pair(script.clone(), chaos.clone()), seed);
        let acts = r["actions"].as_array().unwrap();
        let early = acts.iter().any(|a| {
            a["action"] == "recover"
                && a["node"] == "b"
                && a["skipped"].is_null()
                && (600.0..2500.0).contains(&a["t"].as_f64().unwrap())
        });
        assert!(
            !early,
            "seed {seed}: b recovered during the scripted outage: {acts:?}"
        );
        caught += acts
            .iter()
            .filter(|a| a["action"] == "recover" && a["skipped"].is_string())
            .count();
    }
    // Some random recovers did fall inside the outage (and were skipped).
    assert!(caught > 0);
}

/// A flap takes its link over like a scripted fault: a random link fault's undo does not cut
/// the flap's down phase short.
#[test]
fn a_flap_takes_its_link_over_from_random_faults() {
    let flap = json!([{"at": 500, "action": "flap", "link": "L",
        "down": {"dist": "constant", "value": 1500}, "up": {"dist": "constant", "value": 100000}}]);
    let alone = results(&pair(flap.clone(), json!({})), 1);
    for seed in 1..=5 {
        let r = results(
            &pair(
                flap.clone(),
                json!({"stop": 450, "link": {"rate": 3, "duration": 1000}}),
            ),
            seed,
        );
        // Random faults only take hellos away; none gets through during the down phase.
        assert!(
            count(&r, 1, "hellos_received") <= count(&alone, 1, "hellos_received"),
            "seed {seed}"
        );
    }
}

/// `"role": "last"` after a role-targeted fault that hit nobody has nothing to undo (it used
/// to name the node an earlier fault hit).
#[test]
fn last_after_a_fault_that_hit_nobody_is_nobody() {
    let r = results(
        &pair(
            json!([
                {"at": 500, "action": "crash", "node": "a"},
                {"at": 700, "action": "recover", "role": "last"},
                {"at": 1000, "action": "crash", "role": "leader"},
                {"at": 1200, "action": "recover", "role": "last"}
            ]),
            json!({}),
        ),
        1,
    );
    let last = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["t"] == 1200.0)
        .unwrap();
    assert_eq!(last["skipped"], "no node had that role", "{last}");
    assert!(last.get("node").is_none(), "{last}");
}

/// A pause, a resume and a pause again at one instant are one long pause: a timer that fell
/// due in the first pause waits for the second resume (it used to fire at the instant between).
#[test]
fn pausing_again_at_the_instant_of_resume_holds_timers_too() {
    let twice = json!([
        {"at": 15, "action": "pause", "node": 2}, {"at": 100, "action": "resume", "node": 2},
        {"at": 100, "action": "pause", "node": 2}, {"at": 200, "action": "resume", "node": 2}
    ]);
    let once = json!([
        {"at": 15, "action": "pause", "node": 2}, {"at": 200, "action": "resume", "node": 2}
    ]);
    let (a, b) = (
        results(&hellos(2, 1000, twice), 1),
        results(&hellos(2, 1000, once), 1),
    );
    assert_eq!(a["nodes"], b["nodes"]);
    assert_eq!(a["network"], b["network"]);
}

/// Packets a paused node held are lost if it crashes, even when it resumed, crashed and
/// recovered all at one instant (the new incarnation used to receive them).
#[test]
fn a_crash_at_the_instant_of_resume_loses_what_the_pause_held() {
    // Server 2's hello of 10 ms is answered at 11; the answer reaches it at 12, paused.
    let tl = json!([
        {"at": 11.5, "action": "pause", "node": 2}, {"at": 100, "action": "resume", "node": 2},
        {"at": 100, "action": "crash", "node": 2}, {"at": 100, "action": "recover", "node": 2}
    ]);
    let r = results(&hellos(2, 1000, tl), 1);
    let tl_plain = json!([
        {"at": 11.5, "action": "pause", "node": 2}, {"at": 100, "action": "crash", "node": 2},
        {"at": 100, "action": "recover", "node": 2}
    ]);
    let plain = results(&hellos(2, 1000, tl_plain), 1);
    assert_eq!(r["network"]["packets_dropped"]["node_down"], 1);
    assert_eq!(
        r["network"], plain["network"],
        "the same packets are lost whether or not the node resumed first"
    );
    assert_eq!(r["nodes"], plain["nodes"]);
}

/// A node that crashes at the instant it starts loses the message it sent itself; that is no
/// network drop (messages to oneself never count as packets).
#[test]
fn a_message_to_oneself_lost_in_a_crash_is_not_a_network_drop() {
    let cfg = json!({
        "termination": 100,
        "consensus": {"protocol": "dummy", "id": 1},
        "network": {"nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}], "mesh": true},
        "timeline": [{"at": 0, "action": "crash", "node": 1}]
    });
    let r = results(&cfg, 1);
    let net = &r["network"];
    assert_eq!(net["packets_dropped"]["node_down"], 1, "{net}"); // 2's hello
    let dropped: u64 = net["packets_dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        net["packets_sent"].as_u64().unwrap() + net["packets_duplicated"].as_u64().unwrap(),
        net["packets_delivered"].as_u64().unwrap()
            + dropped
            + net["packets_in_flight"].as_u64().unwrap()
    );
}

/// A clock change aimed at a role nobody holds changes nothing, and in particular does not
/// make the next `"role": "last"` forget the node the last crash hit.
#[test]
fn a_clock_change_that_hits_nobody_leaves_last_alone() {
    let r = results(
        &pair(
            json!([
                {"at": 500, "action": "crash", "node": "a"},
                {"at": 600, "action": "clock", "role": "candidate", "rate": 1.01},
                {"at": 700, "action": "recover", "role": "last"}
            ]),
            json!({}),
        ),
        1,
    );
    let acts = r["actions"].as_array().unwrap();
    assert_eq!(acts[1]["skipped"], "no node had that role", "{}", acts[1]);
    assert_eq!(acts[2]["node"], "a", "{}", acts[2]);
    assert_eq!(r["nodes"][0]["up"], true);
}

/// Two `follower` roles in one partition are two different followers (they used to be drawn
/// independently, so on some seeds both named one node and nothing was cut).
#[test]
fn roles_in_one_partition_pick_different_nodes() {
    for seed in 1..=12 {
        let mut cfg = example("leader-crash.json");
        cfg["timeline"] = json!([
            {"at": 5000, "action": "partition", "groups": [[{"role": "follower"}], [{"role": "follower"}]]},
            {"at": 5100, "action": "partition", "from": [{"role": "follower"}], "to": [{"role": "follower"}]}
        ]);
        let r = results(&cfg, seed);
        let acts = r["actions"].as_array().unwrap();
        let g = &acts[0]["groups"];
        assert_eq!(g[0].as_array().unwrap().len(), 1, "seed {seed}: {g}");
        assert_eq!(g[1].as_array().unwrap().len(), 1, "seed {seed}: {g}");
        assert_ne!(g[0][0], g[1][0], "seed {seed}: {g}");
        assert_ne!(
            acts[1]["from"][0], acts[1]["to"][0],
            "seed {seed}: {}",
            acts[1]
        );
    }
}

/// The availability metric counts a leader only while it can act and reach a majority: a
/// paused leader, or one cut into a minority, makes the cluster unavailable from the fault's
/// instant, not from when the followers' timers run out (the state of no node changes then).
#[test]
fn a_paused_or_cut_off_leader_is_not_available() {
    let cfg = serde_json::json!({
        "termination": 12000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150,
                      "election_timeout_max": 300, "heartbeat_interval": 50},
        "network": {"nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"},
                              {"id": 3, "type": "server"}, {"id": 4, "type": "server"},
                              {"id": 5, "type": "server"}], "mesh": true},
        "timeline": [
            {"at": 2000, "action": "pause", "role": "leader"},
            {"at": 4000, "action": "resume", "role": "last"},
            {"at": 6000, "action": "partition",
             "groups": [[{"role": "leader"}, {"role": "follower"}], "rest"]},
            {"at": 9000, "action": "heal"}
        ]
    });
    for seed in 1..=5 {
        let r = results(&cfg, seed);
        assert_safe(&r, &format!("seed {seed}"));
        let starts: Vec<f64> = r["protocol_stats"]["unavailability_windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w[0].as_f64().unwrap())
            .collect();
        assert!(starts.contains(&2000.0), "seed {seed}: {starts:?}");
        assert!(starts.contains(&6000.0), "seed {seed}: {starts:?}");
    }
}
