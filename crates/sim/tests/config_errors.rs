//! Bad configurations produce one message naming the file, the JSON path, what was expected
//! and what was found, with line and column where known; and no input makes the loader panic.

use coracle_sim::load_str;
use proptest::prelude::*;

fn err(text: &str) -> String {
    match load_str("bad.json", text) {
        Ok(_) => panic!("expected an error for {text}"),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = r#"{
  "termination": 1000,
  "consensus": {"protocol": "dummy"},
  "network": {
    "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "h", "type": "hub"}],
    "links": [{"from": "a", "to": "h"}, {"from": "h", "to": "b", "latency": {"dist": "uniform", "min": 1, "max": 2}}]
  },
  "timeline": [{"at": 10, "action": "crash", "node": "a"}]
}"#;

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn the_base_is_valid() {
    load_str("ok.json", BASE).unwrap();
}

#[test]
fn invalid_json_has_line_and_column() {
    let e = err("{\n  \"termination\": 1000,\n  \"network\": {\n}");
    assert!(e.starts_with("bad.json:4:"), "{e}");
    assert!(e.contains("invalid JSON"), "{e}");
}

#[test]
fn not_an_object() {
    assert_eq!(
        err("[1, 2]"),
        "bad.json:1:1: expected a JSON object at the top level, found an array"
    );
}

#[test]
fn wrong_type_names_path_expected_and_found() {
    let e = err(&with(r#""termination": 1000"#, r#""termination": "1000""#));
    assert_eq!(
        e,
        "bad.json:2:18: termination: expected a number, found a string (\"1000\")"
    );
}

#[test]
fn missing_key() {
    let e = err(&with(r#"{"from": "a", "to": "h"}"#, r#"{"from": "a"}"#));
    assert!(
        e.contains("network.links[0]: missing required key \"to\""),
        "{e}"
    );
}

#[test]
fn unknown_key_with_suggestion() {
    let e = err(&with(r#""latency": {"dist""#, r#""lantecy": {"dist""#));
    assert!(
        e.contains("network.links[1].lantecy: unknown key \"lantecy\""),
        "{e}"
    );
    assert!(e.contains("hint: did you mean \"latency\"?"), "{e}");
    let e = err(&with(r#""termination""#, r#""terminaton""#));
    assert!(e.contains("hint: did you mean \"termination\"?"), "{e}");
}

#[test]
fn min_above_max_points_at_max() {
    let e = err(&with(r#""min": 1, "max": 2"#, r#""min": 5, "max": 2"#));
    assert!(e.starts_with("bad.json:6:"), "{e}");
    assert!(
        e.contains("network.links[1].latency.max: expected max ≥ min (5), found 2"),
        "{e}"
    );
}

#[test]
fn negative_time() {
    let e = err(&with(r#""at": 10"#, r#""at": -10"#));
    assert!(
        e.contains("timeline[0].at: expected a time ≥ 0 (milliseconds), found -10"),
        "{e}"
    );
    let e = err(&with(r#""termination": 1000"#, r#""termination": -5"#));
    assert!(e.contains("termination: expected a time ≥ 0"), "{e}");
}

#[test]
fn loss_outside_unit_interval() {
    let e = err(&with(
        r#"{"from": "a", "to": "h"}"#,
        r#"{"from": "a", "to": "h", "loss": 1.5}"#,
    ));
    assert!(
        e.contains("network.links[0].loss: expected a probability in [0, 1], found 1.5"),
        "{e}"
    );
}

#[test]
fn link_to_missing_node_with_suggestion() {
    let e = err(&with(
        r#"{"from": "h", "to": "b""#,
        r#"{"from": "h", "to": "bb""#,
    ));
    assert!(e.contains("network.links[1].to: expected the id of a node, found \"bb\", which is not in network.nodes"), "{e}");
    assert!(e.contains("did you mean \"b\"?"), "{e}");
}

#[test]
fn duplicate_ids() {
    let e = err(&with(
        r#"{"id": "b", "type": "server"}"#,
        r#"{"id": "a", "type": "server"}"#,
    ));
    assert!(
        e.contains(
            "network.nodes[1].id: duplicate node id \"a\" (already used by network.nodes[0])"
        ),
        "{e}"
    );
    // 1 and "1" are the same name.
    let e = err(&with(
        r#"{"id": "a", "type": "server"}, {"id": "b", "type": "server"}"#,
        r#"{"id": 1, "type": "server"}, {"id": "1", "type": "server"}"#,
    ));
    assert!(e.contains("duplicate node id"), "{e}");
}

#[test]
fn unknown_node_type_and_protocol() {
    let e = err(&with(r#""type": "hub""#, r#""type": "router""#));
    assert!(
        e.contains("network.nodes[2].type: unknown value \"router\""),
        "{e}"
    );
    assert!(
        e.contains("allowed values here: \"server\", \"client\", \"hub\""),
        "{e}"
    );
    let e = err(&with(r#""protocol": "dummy""#, r#""protocol": "rafft""#));
    assert!(
        e.contains("consensus.protocol: unknown protocol \"rafft\""),
        "{e}"
    );
    assert!(e.contains("did you mean \"raft\"?"), "{e}");
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let e = err(r#"{"nodes": 4000000000, "consensus": {"protocol": "dummy"}}"#);
    assert!(
        e.contains("nodes: expected between 1 and 10000 nodes"),
        "{e}"
    );
    let e = err(r#"{"nodes": 3, "termination": 1e300, "consensus": {"protocol": "dummy"}}"#);
    assert!(e.contains("termination: expected at most"), "{e}");
    let e = err(&with(
        r#""at": 10, "action": "crash", "node": "a""#,
        r#""at": 10, "action": "link_down", "link": "zz""#,
    ));
    assert!(
        e.contains("timeline[0].link: expected the id of a link"),
        "{e}"
    );
}

#[test]
fn actions_reject_keys_they_do_not_use() {
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "crash", "node": "a", "loss": 0.1"#,
    ));
    assert!(
        e.contains("timeline[0].loss: key \"loss\" is not used by action \"crash\""),
        "{e}"
    );
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "crash""#,
    ));
    assert!(
        e.contains("timeline[0]: missing required key \"node\""),
        "{e}"
    );
}

#[test]
fn distribution_parameters_are_checked_per_family() {
    let e = err(&with(
        r#"{"dist": "uniform", "min": 1, "max": 2}"#,
        r#"{"dist": "normal", "min": 1, "max": 2}"#,
    ));
    assert!(e.contains("latency.min: key \"min\" is not a parameter of the normal distribution (it takes mean, sd)"), "{e}");
    let e = err(&with(
        r#"{"dist": "uniform", "min": 1, "max": 2}"#,
        r#"{"dist": "pareto", "scale": 1, "shape": 0.5}"#,
    ));
    assert!(e.contains("latency.shape: expected a shape > 1"), "{e}");
    let e = err(&with(
        r#"{"dist": "uniform", "min": 1, "max": 2}"#,
        r#""xl""#,
    ));
    assert!(
        e.contains("expected a latency class \"s\", \"m\" or \"l\""),
        "{e}"
    );
}

#[test]
fn compact_form_errors_use_compact_paths() {
    let e = err(r#"{"nodes": 3, "loss": 2, "consensus": {"protocol": "dummy"}}"#);
    assert!(
        e.starts_with("bad.json:1:22: loss: expected a probability"),
        "{e}"
    );
}

#[test]
fn legacy_format_errors_use_legacy_paths() {
    let text = r#"{"termination": 100, "consensus": {"protocol": "dummy"},
      "network": {"nodes": [{"id": 1, "type": "Server"}], "links": [{"id": 1, "start": 1, "end": 9, "direction": "bi"}],
                  "events": [{"time": 0, "links": [], "nodes": []}]}}"#;
    let e = err(text);
    assert!(
        e.contains("network.links[0].end: expected the id of a node, found 9"),
        "{e}"
    );
}

#[test]
fn legacy_timed_changes_name_the_time_and_the_class_key() {
    // 2015 test format: one time per event, the class under "type".
    let text = r#"{"termination": 100, "consensus": {"protocol": "dummy"},
      "network": {"nodes": [{"id": 1, "type": "Server"}, {"id": 2, "type": "Server"}],
                  "links": [{"id": 1, "start": 1, "end": 2, "direction": "bi"}],
                  "events": [{"time": -10,
                              "links": [{"id": 1, "type": "s", "active": true}], "nodes": []}]}}"#;
    let e = err(text);
    assert!(
        e.contains(":4:39: network.events[0].time: expected a time ≥ 0 (milliseconds), found -10"),
        "{e}"
    );
    // 2015 web-editor export: the class under "linkSize", at the value's position.
    let text = r#"{"nodes": [{"id": 1, "type": "Server", "cx": 0, "cy": 0, "events": []},
                    {"id": 2, "type": "Server", "cx": 1, "cy": 1, "events": []}],
         "links": [{"id": 1, "start": 1, "end": 2, "direction": "bi",
                    "events": [{"time": 0, "active": true, "linkSize": "XL"}]}]}"#;
    let e = err(text);
    assert!(
        e.contains(":4:72: links[0].events[0].linkSize: expected a link type"),
        "{e}"
    );
}

fn mutate(base: &str, pos: usize, len: usize, insert: &str) -> String {
    let b: Vec<char> = base.chars().collect();
    let pos = pos % (b.len() + 1);
    let end = (pos + len).min(b.len());
    let mut s: String = b[..pos].iter().collect();
    s.push_str(insert);
    s.extend(b[end..].iter());
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Mutated valid configs never panic the loader (and whatever loads, also validates).
    #[test]
    fn mutated_configs_never_panic(pos in 0usize..600, len in 0usize..8, insert in "[ -~]{0,6}|-1|1e999|null|\\{\\}|\\[\\]|\"s\"|0") {
        let text = mutate(BASE, pos, len, &insert);
        if let Ok(s) = load_str("m.json", &text) {
            let _ = coracle_sim::run::validate(&s);
        }
    }

    /// Arbitrary JSON values never panic the loader.
    #[test]
    fn random_json_never_panics(v in arb_json()) {
        let _ = load_str("r.json", &v.to_string());
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop_oneof![
            Just("server"),
            Just("hub"),
            Just("client"),
            Just("dummy"),
            Just("raft"),
            Just("bi"),
            Just("uni"),
            Just("s"),
            Just("crash")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let keys = prop_oneof![
            Just("nodes"),
            Just("links"),
            Just("network"),
            Just("consensus"),
            Just("protocol"),
            Just("id"),
            Just("type"),
            Just("from"),
            Just("to"),
            Just("timeline"),
            Just("at"),
            Just("action"),
            Just("node"),
            Just("events"),
            Just("start"),
            Just("end"),
            Just("direction"),
            Just("latency"),
            Just("termination"),
            Just("workload"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys.prop_map(String::from), inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn compact_form_with_a_wrong_type_is_not_taken_for_the_native_format() {
    let e = err(r#"{"nodes": "three", "consensus": {"protocol": "raft"}}"#);
    assert_eq!(
        e,
        "bad.json:1:11: nodes: expected a non-negative integer, found a string (\"three\")"
    );
}

#[test]
fn suggestions_only_for_likely_typos() {
    let e = err(
        r#"{"nodes": 3, "consensus": {"protocol": "raft"}, "timeline": [{"at": 5, "action": "crash", "node": 9}]}"#,
    );
    assert!(
        e.contains("hint: allowed node ids here: \"1\", \"2\", \"3\""),
        "{e}"
    );
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn a_node_in_two_partition_groups() {
    let e = err(&with(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 10, "action": "partition", "groups": [["a", "b"], ["b"]]}"#,
    ));
    assert!(
        e.contains("timeline[0].groups[1][0]: a node can be in one group only, found \"b\" in groups[0] and groups[1]"),
        "{e}"
    );
}

#[test]
fn a_flap_that_ends_before_it_starts() {
    let base = with(
        r#""links": [{"from": "a", "to": "h"},"#,
        r#""links": [{"id": "ah", "from": "a", "to": "h"},"#,
    );
    let text = base.replacen(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 1000, "action": "flap", "link": "ah", "up": 10, "down": 10, "until": 500}"#,
        1,
    );
    let e = err(&text);
    assert!(
        e.contains("timeline[0].until: expected a time at or after the action's \"at\" (1000 ms), found 500 ms"),
        "{e}"
    );
}

#[test]
fn a_sweep_spec_is_not_a_scenario() {
    let e = err(r#"{"base": "x.json", "measure": {"metric": "max_term"}}"#);
    assert!(e.contains("found a sweep spec"), "{e}");
    assert!(e.contains("coracle sweep FILE --output-dir DIR"), "{e}");
}

#[test]
fn two_links_with_the_same_explicit_id() {
    let e = err(&with(
        r#""links": [{"from": "a", "to": "h"},"#,
        r#""links": [{"id": "x", "from": "a", "to": "h"}, {"id": "x", "from": "b", "to": "a"},"#,
    ));
    assert!(
        e.contains("network.links[1].id: expected a link id not used before, found \"x\", the id of network.links[0]"),
        "{e}"
    );
}

#[test]
fn a_key_given_twice() {
    let e = err(&with(
        "\"termination\": 1000,",
        "\"termination\": 1000, \"termination\": 2000,",
    ));
    assert!(
        e.contains("expected each key once, found \"termination\" twice"),
        "{e}"
    );
    assert!(e.starts_with("bad.json:2:"), "{e}");
}

/// 2015-format files are checked under their own key names and positions.
#[test]
fn errors_in_the_2015_format_name_its_keys() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/coracle-2015/test/simple_pair.json"
    );
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut w = base.clone();
    w["workload_min"] = 100.into();
    w["workload_max"] = 50.into();
    let e = err(&serde_json::to_string_pretty(&w).unwrap());
    assert!(
        e.contains("workload_max: expected at least workload_min (100), found 50"),
        "{e}"
    );
    assert!(!e.contains(":1:1:"), "{e}");
    for (time, want) in [(-5.0, "expected a time ≥ 0"), (1e13, "expected at most")] {
        let mut w = base.clone();
        let n = w["network"]["events"].as_array().unwrap().len();
        w["network"]["events"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"time": time, "links": [], "nodes": []}));
        let e = err(&serde_json::to_string_pretty(&w).unwrap());
        assert!(
            e.contains(&format!("network.events[{n}].time: {want}")),
            "{e}"
        );
    }
}

#[test]
fn a_client_clock_cannot_be_set_back() {
    let clients = r#""nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "client", "clock": {"offset": -100}}, {"id": "h", "type": "hub"}],"#;
    let e = err(&with(
        r#""nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "h", "type": "hub"}],"#,
        clients,
    ));
    assert!(
        e.contains(
            "network.nodes[1].clock.offset: expected an offset ≥ 0 for a client, found -100"
        ),
        "{e}"
    );
    let e = err(&with(
        r#""nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "h", "type": "hub"}],"#,
        r#""nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "client"}, {"id": "h", "type": "hub"}],"#,
    )
    .replacen(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 10, "action": "clock", "node": "b", "offset": 5}"#,
        1,
    ));
    assert!(
        e.contains(
            "timeline[0].offset: a clock action on a client may change its rate, not its offset"
        ),
        "{e}"
    );
}

/// A server's clock cannot start behind 0 either: held at 0 it would stand still, and a
/// server whose clock stands still believes forever that it just heard from its leader.
#[test]
fn no_clock_offset_is_negative() {
    let nodes = r#""nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "h", "type": "hub"}],"#;
    let e = err(&with(
        nodes,
        r#""nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server", "clock": {"offset": -100000}}, {"id": "h", "type": "hub"}],"#,
    ));
    assert!(
        e.contains("network.nodes[1].clock.offset: expected a clock offset ≥ 0 ms, found -100000")
            && e.contains("give the others a larger offset"),
        "{e}"
    );
    let e = err(&with(nodes, nodes).replacen(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 10, "action": "clock", "node": "b", "offset": -5}"#,
        1,
    ));
    assert!(
        e.contains("timeline[0].offset: expected a clock offset ≥ 0 ms, found -5"),
        "{e}"
    );
}

#[test]
fn durations_and_bandwidths_are_bounded_both_ways() {
    let e = err(&with(
        r#"{"dist": "uniform", "min": 1, "max": 2}"#,
        r#"{"dist": "uniform", "min": 1, "max": 1e300}"#,
    ));
    assert!(
        e.contains("latency.max: expected at most 10000000000 ms (about 115 days), found 1e300"),
        "{e}"
    );
    let e = err(&with(
        r#""latency": {"dist""#,
        r#""bandwidth": 1e-300, "latency": {"dist""#,
    ));
    assert!(
        e.contains("bandwidth: expected a bandwidth from 0.000001 (1 bit/s) to 10000000 Mbit/s, found 1e-300"),
        "{e}"
    );
    let e = err(&with(
        r#""at": 10, "action": "crash", "node": "a""#,
        r#""at": 10, "action": "flap", "link": "a-h", "up": 1e-300, "down": 5"#,
    ));
    assert!(
        e.contains("timeline[0].up: expected a dwell time with a mean of at least 0.001 ms (1 µs), found 1e-300 ms"),
        "{e}"
    );
    // Protocol timers: from 1 µs to 10^10 ms.
    let raft = |hb: &str| {
        let text = format!(
            r#"{{"nodes": 3, "consensus": {{"protocol": "raft", "heartbeat_interval": {hb}}}}}"#
        );
        let s = load_str("t.json", &text).unwrap();
        coracle_sim::run::validate(&s).unwrap_err().to_string()
    };
    assert!(
        raft("0.000001").contains("consensus.heartbeat_interval: expected a duration from 0.001 ms (1 µs) to 10000000000 ms (about 115 days), found 0.000001 ms"),
        "{}",
        raft("0.000001")
    );
    assert!(
        raft("1e300").contains("found 1e300 ms"),
        "{}",
        raft("1e300")
    );
}

#[test]
fn partitions_name_endpoints_and_a_role_named_as_a_node_gets_a_hint() {
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "partition", "groups": [["h"], ["a", "b"]]"#,
    ));
    assert!(
        e.contains("timeline[0].groups[0][0]: expected a server or client, found hub \"h\""),
        "{e}"
    );
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "crash", "node": "leader""#,
    ));
    assert!(
        e.contains("write \"role\": \"leader\" instead of \"node\""),
        "{e}"
    );
}

#[test]
fn a_cluster_too_large_for_memory_is_refused() {
    let nodes: Vec<String> = (0..2001)
        .map(|i| format!(r#"{{"id": {i}, "type": "server"}}"#))
        .collect();
    let links: Vec<String> = (0..2001)
        .map(|i| format!(r#"{{"from": "h", "to": {i}}}"#))
        .collect();
    let text = format!(
        r#"{{"consensus": {{"protocol": "vrr"}}, "network": {{"nodes": [{{"id": "h", "type": "hub"}}, {}], "links": [{}]}}}}"#,
        nodes.join(","),
        links.join(",")
    );
    let s = load_str("big.json", &text).unwrap();
    let e = coracle_sim::run::validate(&s).unwrap_err().to_string();
    assert!(
        e.contains("consensus: expected at most 2000 servers in one cluster, found 2001"),
        "{e}"
    );
}

#[test]
fn likely_mistakes_are_named() {
    // A misspelt "protocol".
    let e = err(r#"{"nodes": 3, "consensus": {"protocl": "raft"}}"#);
    assert!(
        e.contains("consensus.protocl: unknown key \"protocl\", and the required key \"protocol\" is missing"),
        "{e}"
    );
    assert!(e.contains("did you mean \"protocol\"?"), "{e}");
    // A results file given as a scenario.
    let e = err(r#"{"schema_version": 1, "termination_reason": "horizon", "seed": 1}"#);
    assert!(e.contains("found a results file"), "{e}");
    // An integer out of its type's range.
    let e = err(&with(
        r#""termination": 1000,"#,
        r#""termination": 1000, "workload": {"keys": 1000000000000},"#,
    ));
    assert!(
        e.contains("workload.keys: expected between 1 and 1000000 keys, found 1000000000000"),
        "{e}"
    );
    let e = err(&with(
        r#"{"from": "a", "to": "h"}"#,
        r#"{"from": "a", "to": "h", "queue": 1000000000000}"#,
    ));
    assert!(
        e.contains("network.links[0].queue: expected a non-negative integer of at most 4294967295, found a number (1000000000000)"),
        "{e}"
    );
    // A sweep spec loader given a scenario.
    let e = coracle_sim::sweep::load_spec_str("s.json", BASE, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected a sweep spec"), "{e}");
}

#[test]
fn partitions_cut_something() {
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "partition", "groups": [["a"], []]"#,
    ));
    assert!(
        e.contains(
            "timeline[0].groups[1]: expected at least one node or role, found an empty group"
        ),
        "{e}"
    );
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "partition", "from": [], "to": ["b"]"#,
    ));
    assert!(
        e.contains("timeline[0].from: expected at least one node or role"),
        "{e}"
    );
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "partition", "from": ["a", "b"], "to": ["b"]"#,
    ));
    assert!(
        e.contains("timeline[0].to[0]: expected nodes not in \"from\""),
        "{e}"
    );
}

#[test]
fn too_many_listed_nodes_are_refused_before_the_tree_is_built() {
    let nodes: Vec<String> = (0..10_001)
        .map(|i| format!(r#"{{"id": {i}, "type": "server"}}"#))
        .collect();
    let text = format!(
        r#"{{"consensus": {{"protocol": "dummy"}}, "network": {{"nodes": [{}], "links": []}}}}"#,
        nodes.join(",")
    );
    let e = err(&text);
    assert!(
        e.contains("network.nodes: expected at most 10000 nodes, found 10001"),
        "{e}"
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    load_str("bom.json", &format!("\u{feff}{BASE}")).unwrap();
}

#[test]
fn a_hub_has_no_clock() {
    let e = err(&with(
        r#"{"id": "h", "type": "hub"}"#,
        r#"{"id": "h", "type": "hub", "clock": {"rate": 1.1}}"#,
    ));
    assert!(
        e.contains("network.nodes[2].clock: a hub has no clock"),
        "{e}"
    );
}

/// Two mesh links whose FROM-TO names coincide are blamed on `network.mesh` (they used to be
/// blamed on `network.links[0].id`, in a file without links); a mesh too large is refused
/// with its size, before any link is built.
#[test]
fn mesh_link_id_collisions_and_sizes_name_the_mesh() {
    let nodes = |ids: &[&str]| {
        ids.iter()
            .map(|i| format!(r#"{{"id": "{i}", "type": "server"}}"#))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let e = err(&format!(
        r#"{{"consensus": {{"protocol": "raft"}}, "network": {{"nodes": [{}], "mesh": true}}}}"#,
        nodes(&["a-b", "c", "a", "b-c"])
    ));
    assert!(
        e.contains("network.mesh: the mesh would give the links"),
        "{e}"
    );
    assert!(e.contains("same id \"a-b-c\""), "{e}");
    let many: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = err(&format!(
        r#"{{"consensus": {{"protocol": "raft"}}, "network": {{"nodes": [{}], "mesh": true}}}}"#,
        nodes(&many)
    ));
    assert!(
        e.contains("found 1500 non-hub nodes, whose full mesh has 1124250 links"),
        "{e}"
    );
}

/// Errors found after a 2015 file was translated name the file's own keys: a link's
/// `start`/`end` (not `from`/`to`), and the web export's top-level `nodes`.
#[test]
fn errors_in_2015_files_use_the_files_own_paths() {
    let e = err(
        r#"{"termination": 400, "consensus": {"protocol": "raft"}, "network": {"nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}], "links": [{"start": 1, "end": 1, "id": 1, "direction": "bi"}], "events": [{"time": 0, "links": [{"id": 1, "type": "s", "active": true}], "nodes": []}]}}"#,
    );
    assert!(
        e.starts_with("bad.json:1:168: network.links[0].end: expected a node other than \"start\""),
        "{e}"
    );
    let e = err(
        r#"{"nodes": [{"id": 1, "type": "Client", "events": [{"time": 0, "active": true}]}], "links": []}"#,
    );
    assert!(
        e.starts_with("bad.json:1:11: nodes: expected at least one node"),
        "{e}"
    );
}

/// A client's proxy numbers requests from its clock in ns: a client clock slower than 0.5
/// could reuse numbers after a restart (found by review at rate 0.01 with 10 ns links).
#[test]
fn a_client_clock_slower_than_half_is_refused() {
    let cfg = r#"{"consensus": {"protocol": "raft"},
      "network": {"nodes": [{"id": "s", "type": "server"}, {"id": "c", "type": "client", "clock": {"rate": 0.01}}], "mesh": true}}"#;
    let e = err(cfg);
    assert!(
        e.contains(
            "network.nodes[1].clock.rate: expected a clock rate ≥ 0.5 for a client, found 0.01"
        ),
        "{e}"
    );
    let e = err(&cfg.replace(
        r#""clock": {"rate": 0.01}}], "mesh": true}}"#,
        r#""clock": {"rate": 1}}], "mesh": true}, "timeline": [{"at": 5, "action": "clock", "node": "c", "rate": 0.2}]}"#,
    ));
    assert!(
        e.contains("timeline[0].rate: expected a clock rate ≥ 0.5 for a client"),
        "{e}"
    );
    // Servers may run that slow.
    load_str(
        "ok.json",
        &cfg.replace(
            r#""type": "server"}"#,
            r#""type": "server", "clock": {"rate": 0.01}}"#,
        )
        .replace("0.01}}], ", "1}}], "),
    )
    .unwrap();
}

/// An integer beyond u64 reaches the loader as a float; the message says it is too large,
/// not that it was written as floating point.
#[test]
fn an_integer_too_large_is_called_too_large() {
    let e = err(&with(
        r#""termination": 1000,"#,
        r#""termination": 1000, "seed": 18446744073709551616,"#,
    ));
    assert!(e.contains("seed: expected"), "{e}");
    assert!(e.contains("beyond any integer this key takes"), "{e}");
    assert!(!e.contains("decimal point"), "{e}");
    let e = err(&with(
        r#"{"id": "a", "type": "server"}"#,
        r#"{"id": 1180591620717411303424, "type": "server"}"#,
    ));
    assert!(e.contains("network.nodes[0].id"), "{e}");
    assert!(e.contains("beyond any integer this key takes"), "{e}");
    assert!(e.contains("as a string"), "{e}");
    let e = err(&with(
        r#""termination": 1000,"#,
        r#""termination": 1000, "seed": 1e2,"#,
    ));
    assert!(e.contains("decimal point"), "{e}");
    let e = err(&with(
        r#""termination": 1000,"#,
        r#""termination": 1000, "seed": -100000000000000000000,"#,
    ));
    assert!(e.contains("beyond any integer this key takes"), "{e}");
    assert!(!e.contains("decimal point"), "{e}");
}

/// Inside a timeline action, hints list what that action takes, not what any action takes.
#[test]
fn timeline_hints_are_those_of_the_action() {
    let e = err(&with(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 10, "action": "link_change", "link": "a-h", "queue": 3}"#,
    ));
    assert!(
        e.contains(r#"action "link_change" takes: "at", "delay", "action", "link""#),
        "{e}"
    );
    assert!(!e.contains(r#""groups""#), "{e}");
    let e = err(&with(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 10, "action": "isolate", "node": "a", "direction": "sideways"}"#,
    ));
    assert!(
        e.contains(r#"allowed values here: "in", "out", "both""#),
        "{e}"
    );
    let e = err(&with(
        r#"{"at": 10, "action": "crash", "node": "a"}"#,
        r#"{"at": 10, "action": "partition", "groups": [[{"role": "leeder"}], "rest"]}"#,
    ));
    assert!(e.contains(r#"did you mean "leader"?"#), "{e}");
    assert!(!e.contains(r#""last""#), "{e}");
}

/// Mistakes found by reading the messages as a new user would (each once gave a message that
/// pointed the wrong way, or none).
#[test]
fn audited_mistakes_get_precise_messages() {
    // A number beyond a 64-bit float names its key and the literal.
    let e = err(&with(r#""termination": 1000,"#, r#""termination": 1e400,"#));
    assert!(
        e.contains("termination: expected a number within the range of a 64-bit float (up to about 1.8e308), found 1e400"),
        "{e}"
    );
    // An empty file.
    assert!(err("  \n").contains("expected a JSON object, found an empty file"));
    // Control characters in an id.
    let e = err(&with(r#""id": "a""#, r#""id": "a\nb""#));
    assert!(
        e.contains("expected a string without control characters"),
        "{e}"
    );
    // The 2015 names of a link's ends.
    let e = err(&with(
        r#"{"from": "a", "to": "h"}"#,
        r#"{"start": "a", "to": "h"}"#,
    ));
    assert!(e.contains("did you mean \"from\"?"), "{e}");
    // Which form a file was read as, when a key belongs to another form.
    let e = err(&with(
        r#""termination": 1000,"#,
        r#""termination": 1000, "nodes": 3,"#,
    ));
    assert!(
        e.contains("read as the native format because the file has a \"network\" object"),
        "{e}"
    );
    let e = err(
        r#"{"nodes": [{"id": 1, "type": "server"}], "links": [], "consensus": {"protocol": "raft"}}"#,
    );
    assert!(
        e.contains("consensus: unknown key") && e.contains("read as the 2015 web editor's export"),
        "{e}"
    );
    // A partition member takes one key, "role".
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "partition", "groups": [[{"role": "leader", "node": "a"}], "rest"]"#,
    ));
    assert!(e.contains("a member is a node id, or {\"role\""), "{e}");
    // A partition with both forms says what it found.
    let e = err(&with(
        r#""action": "crash", "node": "a""#,
        r#""action": "partition", "groups": [["a"], "rest"], "from": ["a"]"#,
    ));
    assert!(e.contains("found \"groups\", \"from\" together"), "{e}");
}

/// A 2015 snapshot that lists one node twice with different states is refused (the 2015
/// simulator let the last win); the same state twice is harmless.
#[test]
fn contradictory_2015_snapshots_are_refused() {
    let cfg = |second: bool| {
        format!(
            r#"{{"termination": 100, "consensus": {{"protocol": "raft"}},
 "network": {{"nodes": [{{"type": "server", "id": 1}}, {{"type": "server", "id": 2}}],
  "links": [{{"start": 1, "end": 2, "id": 0, "direction": "bi"}}],
  "events": [{{"time": 0, "links": [{{"id": 0, "type": "s", "active": true}}],
    "nodes": [{{"id": 1, "active": true}}, {{"id": 2, "active": true}}, {{"id": 1, "active": {second}}}]}}]}}}}"#
        )
    };
    load_str("same.json", &cfg(true)).unwrap();
    let e = err(&cfg(false));
    assert!(
        e.contains("network.events[0].nodes[2]: expected one state for node 1 at 0 ms, found two that differ: this one and network.events[0].nodes[0]"),
        "{e}"
    );
}

/// The schema and the checker agree on every protocol setting's range: a value just outside a
/// bound the schema states is refused by `validate` too, naming the key (a file an editor's
/// schema rejects must not run, and the reverse).
#[test]
fn protocol_settings_outside_their_schema_range_are_refused() {
    let schema = coracle_sim::config::schema::schema();
    let mut checked = 0;
    for branch in schema["properties"]["consensus"]["oneOf"]
        .as_array()
        .unwrap()
    {
        let protocol = branch["properties"]["protocol"]["const"].as_str().unwrap();
        for (key, d) in branch["properties"].as_object().unwrap() {
            let mut outside = Vec::new();
            if let Some(max) = d["maximum"].as_f64() {
                outside.push(if d["type"].as_str() == Some("integer") {
                    serde_json::json!(max as u64 + 1)
                } else {
                    serde_json::json!(max * 1.5)
                });
            }
            if let Some(min) = d["minimum"].as_f64().filter(|m| *m > 0.0) {
                outside.push(serde_json::json!(min / 2.0));
                if min >= 1.0 {
                    outside.push(serde_json::json!(min as u64 - 1));
                }
            }
            for v in outside {
                let text = serde_json::json!({
                    "nodes": 3,
                    "consensus": {"protocol": protocol, key.as_str(): v}
                })
                .to_string();
                let refused = match load_str("r.json", &text) {
                    Err(e) => e.to_string(),
                    Ok(s) => match coracle_sim::run::validate(&s) {
                        Err(e) => e.to_string(),
                        Ok(_) => panic!("{protocol}.{key} = {v} is outside the schema but runs"),
                    },
                };
                // Named by its path (an alias such as VRR's `heartbeat_interval` by the key
                // it stands for).
                assert!(
                    refused.contains("consensus."),
                    "{protocol}.{key} = {v}: {refused}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} bounds checked");
}
