//! The network model's semantics, observed through the dummy protocol: what happens to packets
//! in flight when links, hubs and nodes fail, loss, routing, and determinism.

use coracle_sim::{CheckOptions, RunOptions, load_str, run};
use serde_json::{Value, json};

fn results(cfg: Value, seed: u64) -> Value {
    let s = load_str("test.json", &cfg.to_string()).expect("valid scenario");
    let opts = RunOptions {
        seed,
        until: None,
        tracer: None,
        stop_after: None,
        keep_going: false,
        record_history: true,
    };
    run(&s, opts, &CheckOptions::default())
        .expect("runs")
        .results
}

/// Server 1 says hello to server 2 over `links`; `timeline` scripts faults.
fn pair(links: Value, extra_nodes: Value, timeline: Value) -> Value {
    let mut nodes = vec![
        json!({"id": 1, "type": "server"}),
        json!({"id": 2, "type": "server"}),
    ];
    nodes.extend(extra_nodes.as_array().cloned().unwrap_or_default());
    json!({
        "termination": 1000,
        "consensus": {"protocol": "dummy", "id": 2},
        "network": {"nodes": nodes, "links": links},
        "timeline": timeline,
    })
}

fn counter(r: &Value, node: usize) -> u64 {
    r["nodes"][node]["state"]["counter"].as_u64().unwrap()
}

#[test]
fn hello_round_trip_over_a_direct_link() {
    let r = results(
        pair(
            json!([{"from": 1, "to": 2, "latency": 10}]),
            json!([]),
            json!([]),
        ),
        1,
    );
    assert_eq!(counter(&r, 0), 1, "server 1 heard hello-back from 2");
    assert_eq!(
        counter(&r, 1),
        1,
        "server 2 said hello to itself and heard back"
    );
    assert_eq!(r["network"]["packets_sent"], 2);
    assert_eq!(r["network"]["loopback"], 2);
    assert_eq!(r["simulated_ms"], 20.0);
    assert_eq!(r["termination_reason"], "no_events");
}

#[test]
fn a_link_that_fails_under_a_packet_loses_it() {
    let r = results(
        pair(
            json!([{"id": "l", "from": 1, "to": 2, "latency": 10}]),
            json!([]),
            json!([{"at": 5, "action": "link_down", "link": "l"}]),
        ),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["link_down"], 1);
    assert_eq!(counter(&r, 0), 0);
}

#[test]
fn a_link_that_fails_and_recovers_under_a_packet_still_loses_it() {
    let r = results(
        pair(
            json!([{"id": "l", "from": 1, "to": 2, "latency": 10}]),
            json!([]),
            json!([{"at": 4, "action": "link_down", "link": "l"}, {"at": 6, "action": "link_up", "link": "l"}]),
        ),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["link_down"], 1);
}

#[test]
fn one_direction_down_only_stops_that_direction() {
    // The hello reaches 2; the hello-back is lost on the failed reverse direction.
    let r = results(
        pair(
            json!([{"id": "l", "from": 1, "to": 2, "latency": 10}]),
            json!([]),
            json!([{"at": 0, "action": "link_down", "link": "l", "direction": "reverse"}]),
        ),
        1,
    );
    assert_eq!(r["nodes"][1]["counters"]["hellos_received"], 2);
    assert_eq!(r["network"]["packets_dropped"]["no_route"], 1);
    assert_eq!(counter(&r, 0), 0);
}

#[test]
fn a_destination_that_is_down_on_arrival_drops_the_packet() {
    let r = results(
        pair(
            json!([{"from": 1, "to": 2, "latency": 10}]),
            json!([]),
            json!([{"at": 5, "action": "crash", "node": 2}]),
        ),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["node_down"], 1);
}

#[test]
fn a_destination_that_crashed_and_recovered_receives_the_packet() {
    // Recovery makes 2 say hello again (to itself), so it has 2 hellos: its own and 1's.
    let r = results(
        pair(
            json!([{"from": 1, "to": 2, "latency": 10}]),
            json!([]),
            json!([{"at": 3, "action": "crash", "node": 2}, {"at": 6, "action": "recover", "node": 2}]),
        ),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["node_down"], 0);
    assert_eq!(counter(&r, 0), 1);
}

fn via_hub(timeline: Value) -> Value {
    pair(
        json!([{"id": "a", "from": 1, "to": "h", "latency": 10}, {"id": "b", "from": "h", "to": 2, "latency": 10}]),
        json!([{"id": "h", "type": "hub"}]),
        timeline,
    )
}

#[test]
fn hubs_relay_and_latency_adds_up() {
    let r = results(via_hub(json!([])), 1);
    assert_eq!(counter(&r, 0), 1);
    assert_eq!(r["network"]["latency_ms"]["max"], 20.0);
    assert_eq!(r["simulated_ms"], 40.0);
}

#[test]
fn a_hub_that_fails_before_the_packet_reaches_it_drops_it() {
    let r = results(
        via_hub(json!([{"at": 5, "action": "crash", "node": "h"}])),
        1,
    );
    assert_eq!(r["network"]["packets_dropped"]["node_down"], 1);
    assert_eq!(counter(&r, 0), 0);
}

#[test]
fn a_hub_that_fails_after_forwarding_does_not_affect_the_packet() {
    // The hello leaves the hub at 10; the hub fails at 15; the hello reaches 2 at 20, but the
    // hello-back finds no route.
    let r = results(
        via_hub(json!([{"at": 15, "action": "crash", "node": "h"}])),
        1,
    );
    assert_eq!(r["nodes"][1]["counters"]["hellos_received"], 2);
    assert_eq!(r["network"]["packets_dropped"]["no_route"], 1);
}

#[test]
fn a_hub_reroutes_packets_already_on_their_way() {
    // Two paths 1 -> h -> 2: a direct h-2 link (10 ms) and h -> g -> 2 (2 x 10 ms). The direct
    // one fails while the hello is on its first hop; the hub forwards it the long way.
    let cfg = pair(
        json!([
            {"id": "a", "from": 1, "to": "h", "latency": 10},
            {"id": "b", "from": "h", "to": 2, "latency": 10},
            {"id": "c", "from": "h", "to": "g", "latency": 10},
            {"id": "d", "from": "g", "to": 2, "latency": 10}
        ]),
        json!([{"id": "h", "type": "hub"}, {"id": "g", "type": "hub"}]),
        json!([{"at": 5, "action": "link_down", "link": "b"}]),
    );
    let r = results(cfg, 1);
    assert_eq!(counter(&r, 0), 1);
    assert_eq!(r["network"]["latency_ms"]["max"], 30.0);
}

#[test]
fn a_down_hub_stops_routing_and_recovers() {
    // The 2015 prototype routed through failed hubs.
    let cfg = json!({
        "termination": 1000,
        "consensus": {"protocol": "dummy", "id": 2, "interval": 100},
        "network": {
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": "h", "type": "hub"}],
            "links": [{"from": 1, "to": "h", "latency": 1}, {"from": "h", "to": 2, "latency": 1}]
        },
        "timeline": [{"at": 250, "action": "crash", "node": "h"}, {"at": 650, "action": "recover", "node": "h"}]
    });
    let r = results(cfg, 1);
    // Hellos at 0, 100, ..., 1000 (11); those at 300..600 find no route and the answer to the
    // one at 1000 would arrive after the horizon.
    assert_eq!(r["network"]["packets_dropped"]["no_route"], 4);
    assert_eq!(counter(&r, 0), 6);
}

#[test]
fn loss_is_per_packet_and_seeded() {
    // Compact form: nodes 1 and 2 say hello to 1 every 10 ms; 1 answers those that arrive.
    let cfg = json!({"nodes": 2, "loss": 0.25, "termination": 10000, "consensus": {"protocol": "dummy", "id": 1, "interval": 10}});
    let a = results(cfg.clone(), 5);
    let b = results(cfg.clone(), 5);
    let c = results(cfg, 6);
    assert_eq!(a, b, "same seed, same results");
    assert_ne!(
        a["network"]["packets_dropped"]["loss"],
        c["network"]["packets_dropped"]["loss"]
    );
    let sent = a["network"]["packets_sent"].as_f64().unwrap();
    let lost = a["network"]["packets_dropped"]["loss"].as_f64().unwrap();
    assert!(
        (lost / sent - 0.25).abs() < 0.05,
        "loss rate {}",
        lost / sent
    );
}

#[test]
fn nodes_down_at_start_boot_at_their_first_recovery() {
    let cfg = json!({
        "termination": 1000,
        "consensus": {"protocol": "dummy", "id": 2},
        "network": {
            "nodes": [{"id": 1, "type": "server", "up": false}, {"id": 2, "type": "server"}],
            "links": [{"from": 1, "to": 2, "latency": 10}]
        },
        "timeline": [{"at": 100, "action": "recover", "node": 1}]
    });
    let r = results(cfg, 1);
    assert_eq!(counter(&r, 0), 1);
    assert_eq!(r["simulated_ms"], 120.0);
}

#[test]
fn latency_distributions_vary_per_packet() {
    let cfg = json!({
        "nodes": 2,
        "latency": {"dist": "uniform", "min": 1, "max": 3},
        "termination": 2000,
        "consensus": {"protocol": "dummy", "id": 1, "interval": 1}
    });
    let r = results(cfg, 9);
    let l = &r["network"]["latency_ms"];
    assert!(l["min"].as_f64().unwrap() >= 1.0 && l["max"].as_f64().unwrap() < 3.0);
    assert!((l["mean"].as_f64().unwrap() - 2.0).abs() < 0.05);
}

#[test]
fn string_and_integer_node_ids_in_any_order() {
    let cfg = json!({
        "termination": 100,
        "consensus": {"protocol": "dummy", "id": "zeta"},
        "network": {
            "nodes": [{"id": 42, "type": "server"}, {"id": "zeta", "type": "server"}, {"id": -7, "type": "server"}],
            "links": [{"from": "zeta", "to": 42}, {"from": -7, "to": "zeta"}]
        }
    });
    let r = results(cfg, 1);
    assert_eq!(r["nodes"][0]["id"], 42);
    assert_eq!(r["nodes"][1]["id"], "zeta");
    assert_eq!(r["nodes"][2]["id"], -7);
    assert_eq!(counter(&r, 0), 1);
    assert_eq!(counter(&r, 2), 1);
}

/// 2015 format: the scenario starts in the state of the time-0 event, not in the state the
/// events end in (a link that fails later starts up; a node that crashes later starts up; a
/// link first mentioned later starts down).
#[test]
fn a_2015_scenario_starts_in_its_time_zero_state() {
    let cfg = serde_json::json!({"termination": 50, "consensus": {"protocol": "dummy", "id": 1},
      "network": {"nodes": [{"type": "server", "id": 1}, {"type": "server", "id": 2},
                            {"type": "server", "id": 3}, {"type": "server", "id": 4}],
        "links": [{"start": 2, "end": 1, "id": 1, "direction": "bi"},
                  {"start": 3, "end": 1, "id": 2, "direction": "bi"},
                  {"start": 4, "end": 1, "id": 3, "direction": "bi"}],
        "events": [
          {"time": 0, "links": [{"id": 1, "active": true, "type": "s"}, {"id": 2, "active": true, "type": "s"}],
           "nodes": [{"id": 1, "active": true}, {"id": 2, "active": true}, {"id": 3, "active": true}, {"id": 4, "active": true}]},
          {"time": 20, "links": [{"id": 3, "active": true, "type": "s"}], "nodes": []},
          {"time": 30, "links": [{"id": 1, "active": false, "type": "l"}], "nodes": [{"id": 3, "active": false}]}]}});
    let r = results(cfg, 1);
    // 1 (its own), 2 and 3 reach 1; 4's hello at time 0 finds no route (its link is down
    // until 20).
    assert_eq!(r["network"]["packets_dropped"]["no_route"], 1);
    assert_eq!(r["nodes"][0]["counters"]["hellos_received"], 3);
    let acts = r["actions"].as_array().unwrap();
    assert!(acts.iter().all(|a| a.get("skipped").is_none()), "{acts:?}");
    assert!(
        acts.iter()
            .any(|a| a["action"] == "crash" && a["node"] == 3)
    );
    assert!(
        acts.iter()
            .any(|a| a["action"] == "link_up" && a["link"] == 3)
    );
}

/// Packets queued on a link that goes down are lost and stop holding the link: after it comes
/// back a packet is sent at once (it used to wait behind the lost ones, and to be tail-dropped
/// by them). Five hellos reach the hub at 1 ms over a 0.128 Mbit/s link (1 ms per 16-byte
/// packet) with room for 2 waiting: s1 is sent, s2 and s3 wait, s4 and s5 are dropped; the link
/// is down from 1.5 to 1.6 ms (s1, s2, s3 lost); s6, s7, s8 reach the hub at 1.7 and arrive at
/// 3.7, 4.7 and 5.7.
#[test]
fn a_link_going_down_empties_its_queue() {
    let cfg: Value = serde_json::from_str(r#"{"seed": 1, "termination": 30, "consensus": {"protocol": "dummy", "id": "a"}, "network": {"nodes": [{"id": "a", "type": "server"}, {"id": "s1", "type": "server"}, {"id": "s2", "type": "server"}, {"id": "s3", "type": "server"}, {"id": "s4", "type": "server"}, {"id": "s5", "type": "server"}, {"id": "s6", "type": "server"}, {"id": "s7", "type": "server"}, {"id": "s8", "type": "server"}, {"id": "h", "type": "hub"}], "links": [{"id": "B", "from": "h", "to": "a", "latency": 1, "bandwidth": 0.128, "queue": 2}, {"from": "s1", "to": "h", "latency": 1}, {"from": "s2", "to": "h", "latency": 1}, {"from": "s3", "to": "h", "latency": 1}, {"from": "s4", "to": "h", "latency": 1}, {"from": "s5", "to": "h", "latency": 1}, {"from": "s6", "to": "h", "latency": 1.7}, {"from": "s7", "to": "h", "latency": 1.7}, {"from": "s8", "to": "h", "latency": 1.7}]}, "timeline": [{"at": 1.5, "action": "link_down", "link": "B", "direction": "forward"}, {"at": 1.6, "action": "link_up", "link": "B", "direction": "forward"}]}"#).unwrap();
    let r = results(cfg, 1);
    assert_eq!(r["network"]["packets_dropped"]["queue"], 2);
    assert_eq!(r["network"]["packets_dropped"]["link_down"], 3);
    assert_eq!(r["network"]["latency_ms"]["min"], 3.7);
    assert_eq!(r["network"]["latency_ms"]["max"], 5.7);
}

/// `queue: 0` is no waiting room: a packet on an idle link is sent.
#[test]
fn a_queue_of_zero_still_sends_on_an_idle_link() {
    let cfg = json!({"termination": 30, "consensus": {"protocol": "dummy", "id": "a"},
        "network": {"nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}],
                    "links": [{"from": "b", "to": "a", "latency": 1, "bandwidth": 0.128, "queue": 0}]}});
    let r = results(cfg, 1);
    assert_eq!(r["network"]["packets_dropped"]["queue"], 0);
    assert_eq!(
        r["network"]["packets_delivered"],
        r["network"]["packets_sent"]
    );
}

/// A packet dropped as it leaves a hub (here: tail drop on the hub's slow link to server 1)
/// is traced at the hub, the node it last left; it used to name the original sender.
#[test]
fn drops_on_a_hubs_outgoing_link_are_traced_at_the_hub() {
    let mut links: Vec<Value> = (2..=6)
        .flat_map(|i| {
            [
                json!({"from": i, "to": "h", "direction": "uni", "latency": 1}),
                json!({"from": "h", "to": i, "direction": "uni", "latency": 1}),
            ]
        })
        .collect();
    links.push(json!({"from": "h", "to": 1, "direction": "uni", "latency": 5, "bandwidth": 0.128, "queue": 2}));
    links.push(json!({"from": 1, "to": "h", "direction": "uni", "latency": 1}));
    let mut nodes: Vec<Value> = (1..=6)
        .map(|i| json!({"id": i, "type": "server"}))
        .collect();
    nodes.push(json!({"id": "h", "type": "hub"}));
    let cfg = json!({"termination": 100, "consensus": {"protocol": "dummy", "id": 1},
                     "network": {"nodes": nodes, "links": links}});
    let opts = coracle_sim::RunOptions {
        seed: 1,
        until: None,
        tracer: Some(coracle_sim::trace::Tracer::Ring {
            cap: 10_000,
            lines: Default::default(),
        }),
        stop_after: None,
        keep_going: false,
        record_history: false,
    };
    let s = load_str("test.json", &cfg.to_string()).unwrap();
    let r = run(&s, opts, &CheckOptions::default()).unwrap();
    let drops: Vec<Value> = r
        .outcome
        .tracer
        .unwrap()
        .kept()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "drop")
        .collect();
    assert_eq!(drops.len(), 2, "{drops:?}");
    for d in &drops {
        assert_eq!(
            (&d["node"], &d["cause"]),
            (&json!("h"), &json!("queue")),
            "{d}"
        );
    }
}

/// Packets waiting in a link's queue when the link goes down are lost (`link_down`), and a run
/// that ends before they would have arrived counts them as dropped, not as in flight.
#[test]
fn a_queue_lost_to_a_link_down_is_not_in_flight_at_the_end() {
    let cfg = |termination: f64| {
        serde_json::json!({
            "termination": termination,
            "consensus": {"protocol": "dummy", "id": "b", "interval": 1},
            "network": {"nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}],
                        // 16 bytes at 0.016 Mbit/s: 8 ms a packet, one sent every ms.
                        "links": [{"from": "a", "to": "b", "latency": 1, "bandwidth": 0.016}]},
            "timeline": [
                {"at": 100.5, "action": "link_down", "link": "a-b", "direction": "forward"},
                {"at": 110.5, "action": "link_up", "link": "a-b", "direction": "forward"}
            ]
        })
    };
    for termination in [200.0, 1000.0] {
        let r = results(cfg(termination), 1);
        let n = &r["network"];
        // The 89 packets queued at 100.5 (and the one on the wire) are lost whenever the run ends.
        assert_eq!(n["packets_dropped"]["link_down"], 89, "{termination}: {n}");
        let dropped: u64 = n["packets_dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        let (sent, dup, delivered, flight) = (
            n["packets_sent"].as_u64().unwrap(),
            n["packets_duplicated"].as_u64().unwrap(),
            n["packets_delivered"].as_u64().unwrap(),
            n["packets_in_flight"].as_u64().unwrap(),
        );
        assert_eq!(sent + dup, delivered + dropped + flight, "{n}");
    }
}
