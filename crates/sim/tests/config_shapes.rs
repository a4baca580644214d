//! Shapes and types of what people write, everywhere a file is read: an array is never taken
//! for an object, `null` is no value (except where documented as "no limit" or "never"), and
//! a wrong type is reported at its own path in JSON words, never in serde's or Rust's.
//!
//! The documents below use every key of every object the loader reads (checked against the
//! JSON Schema for the native format), and the tests mutate each of their values in turn.

use coracle_sim::config::schema::schema;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A native scenario with every key of the native format (and Raft's).
fn native() -> Value {
    json!({
      "name": "every key",
      "description": "Every key of the native format, for tests/config_shapes.rs.",
      "seed": 7,
      "termination": 5000,
      "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300,
        "heartbeat_interval": 50, "client_timeout": 300, "batch_requests": false,
        "lazy_update": false, "fast_backtrack": true, "max_entries_per_message": 64,
        "max_inflight_messages": 8, "resend_unacknowledged": 0, "reorder_buffer": 8,
        "read_index": true, "client_max_attempts": 10, "prevote": true,
        "prevote_without_leader_check": false, "check_quorum": true, "leader_stickiness": false,
        "candidate_timeout": [150, 300], "backoff": true, "lazy_voting": false,
        "term_bound": 100, "snapshot_threshold": 1000, "snapshot_trailing": 10, "unsafe": []},
      "network": {
        "defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}, "loss": 0.01,
          "burst_loss": {"enter_bad": 0.01, "leave_bad": 0.5, "loss_good": 0, "loss_bad": 1},
          "duplicate": 0.001, "bandwidth": 100, "queue": 100},
        "nodes": [
          {"id": "s1", "type": "server", "up": true, "clock": {"rate": 1.01, "offset": 5}},
          {"id": "s2", "type": "server"},
          {"id": "s3", "type": "server"},
          {"id": "c1", "type": "client"},
          {"id": "c2", "type": "client"},
          {"id": "h", "type": "hub"}
        ],
        "links": [
          {"id": "l1", "from": "s1", "to": "h", "direction": "bi",
            "latency": {"dist": "normal", "mean": 5, "sd": 1}, "loss": 0,
            "burst_loss": {"enter_bad": 0.01, "leave_bad": 0.5}, "duplicate": 0,
            "bandwidth": 1000, "queue": 50, "up": true,
            "reverse": {"latency": {"dist": "lognormal", "mu": 1, "sigma": 0.5}, "loss": 0.001,
              "burst_loss": {"enter_bad": 0.02, "leave_bad": 0.5}, "duplicate": 0,
              "bandwidth": 500, "queue": 20}},
          {"from": "s2", "to": "h", "latency": {"dist": "exponential", "mean": 3}},
          {"from": "s3", "to": "h", "latency": {"dist": "pareto", "scale": 1, "shape": 2}},
          {"from": "c1", "to": "h", "latency": {"dist": "constant", "value": 2}},
          {"from": "c2", "to": "h", "latency": "m"},
          {"id": "u", "from": "s1", "to": "s2", "direction": "uni", "latency": 4}
        ],
        "mesh": false
      },
      "timeline": [
        {"at": 100, "delay": {"dist": "uniform", "min": 0, "max": 50}, "action": "crash", "node": "s1"},
        {"at": 200, "action": "recover", "role": "last"},
        {"at": 300, "action": "pause", "node": "s2"},
        {"at": 350, "action": "resume", "node": "s2"},
        {"at": 400, "action": "isolate", "role": "leader", "direction": "in"},
        {"at": 450, "action": "rejoin", "role": "last"},
        {"at": 500, "action": "partition", "groups": [["s1", {"role": "leader"}], "rest"]},
        {"at": 550, "action": "heal"},
        {"at": 600, "action": "partition", "from": ["s1"], "to": ["s2", "s3"]},
        {"at": 650, "action": "heal"},
        {"at": 700, "action": "clock", "node": "s3", "rate": 1.05, "offset": 10},
        {"at": 800, "action": "link_down", "link": "l1", "direction": "forward"},
        {"at": 850, "action": "link_up", "link": "l1"},
        {"at": 900, "action": "link_change", "link": "l1", "direction": "both", "latency": 7,
          "loss": 0.01, "burst_loss": {"enter_bad": 0.1, "leave_bad": 0.5}, "duplicate": 0.01,
          "bandwidth": 50},
        {"at": 1000, "action": "flap", "link": "u", "up": {"dist": "exponential", "mean": 100},
          "down": 20, "until": 2000}
      ],
      "workload": {"type": "closed", "think_time": 10, "keys": 5, "read_fraction": 0.5,
        "cas_fraction": 0.1, "start": 0, "stop": 4000, "max_ops": 1000, "queue_limit": 100,
        "clients": {"c1": {"type": "open", "rate": 50}, "c2": {"type": "interval", "min": 10, "max": 20}}},
      "storage": {"latency": {"dist": "uniform", "min": 0.1, "max": 0.2}},
      "chaos": {"start": 2000, "stop": 4000,
        "crash": {"rate": 0.5, "duration": 100, "target": "servers"},
        "pause": {"rate": 0.5, "duration": 50, "target": "any"},
        "isolate": {"rate": 0.5, "duration": 50, "target": "follower"},
        "partition": {"rate": 0.2, "duration": 100},
        "link": {"rate": 0.2, "duration": {"dist": "uniform", "min": 10, "max": 20}}}
    })
}

/// The native scenario with another `consensus`.
fn with_consensus(c: Value) -> Value {
    let mut v = native();
    v["consensus"] = c;
    if v["consensus"]["protocol"] == "dummy" {
        v.as_object_mut().unwrap().remove("workload");
    }
    v
}

fn consensus_variants() -> Vec<Value> {
    vec![
        with_consensus(json!({"protocol": "raft", "timeout": 150})),
        with_consensus(json!({"protocol": "vrr", "commit_interval": 50,
            "view_change_timeout_min": 150, "view_change_timeout_max": 300, "client_timeout": 300,
            "max_entries_per_message": 64, "client_max_attempts": 5, "durable": true,
            "view_change_backoff": true, "checkpoint_interval": 1000})),
        with_consensus(json!({"protocol": "vrr", "timeout": 150})),
        with_consensus(json!({"protocol": "dummy", "id": "s1", "interval": 100})),
    ]
}

fn compact() -> Value {
    json!({"name": "compact", "description": "d", "seed": 1, "termination": 2000, "nodes": 3,
      "clients": 1, "loss": 0.01, "latency": {"dist": "uniform", "min": 1, "max": 2},
      "workload_min": 10, "workload_max": 20,
      "storage": {"latency": 1},
      "timeline": [{"at": 100, "action": "crash", "node": 1}],
      "chaos": {"crash": {"rate": 1, "duration": 50}},
      "consensus": {"protocol": "raft"}})
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join(path)).unwrap()).unwrap()
}

/// A 2015 simulator file with an event that changes links and nodes, and Coracle's extension
/// keys.
fn legacy() -> Value {
    let mut v = fixture("tests/fixtures/coracle-2015/test/simple_diff.json");
    v["name"] = json!("legacy");
    v["description"] = json!("d");
    v["workload_min"] = json!(10);
    v["workload_max"] = json!(20);
    v
}

fn web_export() -> Value {
    let mut v = fixture("tests/fixtures/coracle-2015/web-examples/asym.json");
    v["name"] = json!("web");
    v["description"] = json!("d");
    v
}

fn sweep_spec() -> Value {
    json!({
      "name": "sweep", "description": "d", "seed": 1, "trials": 2,
      "base": {"termination": 2000, "consensus": {"protocol": "raft"},
        "network": {"nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"},
          {"id": "c", "type": "server"}], "mesh": true},
        "timeline": [{"at": 500, "action": "crash", "role": "leader"}]},
      "vary": {"consensus.heartbeat_interval": [20, 50]},
      "measure": {"from": {"action": "crash", "nth": 1}, "until": "stable", "stable_for": 100,
        "within": 1000, "subtract": {"dist": "uniform", "min": 0, "max": 1}},
      "points": [
        {"label": "p", "trials": 1, "set": {"termination": 3000}, "params": {"x": 1},
          "measure": {"from": {"at": 0}, "within": 500}},
        {"label": "q", "measure": {"metric": "protocol_stats.max_term"}}
      ]
    })
}

/// Which reader a document goes to.
#[derive(Clone, Copy, PartialEq)]
enum Reader {
    Scenario,
    Sweep,
}

/// Loads `doc` as its reader would (the scenario with its protocol's settings).
fn load(reader: Reader, doc: &Value) -> Result<(), coracle_sim::ConfigError> {
    let text = serde_json::to_string_pretty(doc).unwrap();
    match reader {
        Reader::Scenario => {
            let s = coracle_sim::load_str("doc.json", &text)?;
            coracle_sim::run::validate(&s).map(|_| ())
        }
        Reader::Sweep => coracle_sim::sweep::load_spec_str("doc.json", &text, None).map(|_| ()),
    }
}

fn documents() -> Vec<(&'static str, Reader, Value)> {
    let mut docs = vec![("native", Reader::Scenario, native())];
    for c in consensus_variants() {
        docs.push(("native (consensus variant)", Reader::Scenario, c));
    }
    docs.extend([
        ("compact", Reader::Scenario, compact()),
        ("2015 simulator", Reader::Scenario, legacy()),
        ("2015 web export", Reader::Scenario, web_export()),
        ("sweep spec", Reader::Sweep, sweep_spec()),
    ]);
    docs
}

/// Subtrees read as free JSON (their contents are checked elsewhere, or ignored as the 2015
/// simulator ignored them): arrays in them may be legitimate.
fn free_json(doc: &str, path: &str) -> bool {
    match doc {
        // (`network` with `events` is what makes a file this format.)
        "2015 simulator" => path == "network" || path.contains("].events"),
        "sweep spec" => {
            path.starts_with("vary.") || path.contains(".set.") || path.contains(".params.")
        }
        _ => false,
    }
}

/// Every value of `v` with its path, in the loader's notation (`a.b[2].c`).
fn paths(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    if !at.is_empty() {
        out.push((at.clone(), v.clone()));
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                paths(x, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `doc` with the value at `path` replaced.
fn replaced(doc: &Value, path: &str, with: Value) -> Value {
    let mut d = doc.clone();
    let mut cur = &mut d;
    for seg in path.split('.') {
        let (key, idx) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        cur = &mut cur[key];
        for n in idx.split(['[', ']']).filter(|s| !s.is_empty()) {
            cur = &mut cur[n.parse::<usize>().unwrap()];
        }
    }
    *cur = with;
    d
}

/// Words of serde and Rust that must not reach a person.
fn rust_words(text: &str) -> Vec<String> {
    const WORDS: &[&str] = &[
        "struct",
        "enum",
        "variant",
        "sequence",
        "map",
        "unit",
        "newtype",
        "tuple",
        "Option",
        "identifier",
        "u8",
        "u16",
        "u32",
        "u64",
        "u128",
        "usize",
        "i8",
        "i16",
        "i32",
        "i64",
        "i128",
        "isize",
        "f32",
        "f64",
        "floating",
    ];
    let mut out = Vec::new();
    for w in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let camel = w.chars().next().is_some_and(char::is_uppercase)
            && w.chars().skip(1).any(char::is_uppercase)
            && w.chars().any(char::is_lowercase);
        if WORDS.contains(&w) || camel {
            out.push(w.to_string());
        }
    }
    for phrase in [
        "invalid type",
        "invalid value",
        "invalid length",
        "expected value",
        "trailing characters",
    ] {
        if text.contains(phrase) {
            out.push(phrase.to_string());
        }
    }
    out
}

#[test]
fn the_documents_load() {
    for (name, reader, doc) in documents() {
        if let Err(e) = load(reader, &doc) {
            panic!("{name}: {e}");
        }
    }
}

/// The documents use every key of every object of the native schema (so the tests below
/// reach every struct the loader reads), and fit the schema.
#[test]
fn the_documents_use_every_key_of_the_schema() {
    let s = schema();
    let mut wanted = BTreeSet::new();
    let mut objects = vec![("".to_string(), &s)];
    for (name, def) in s["$defs"].as_object().unwrap() {
        objects.push((name.clone(), def));
    }
    for (i, p) in s["properties"]["consensus"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        objects.push((format!("consensus#{i}"), p));
    }
    for (name, o) in objects {
        let mut props: Vec<&Value> = vec![o];
        for key in ["oneOf", "anyOf"] {
            props.extend(o[key].as_array().into_iter().flatten());
        }
        for p in props {
            for k in p["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|x| x.0)
            {
                wanted.insert((name.clone(), k.clone()));
            }
        }
    }
    let mut used = BTreeSet::new();
    for (_, reader, doc) in documents() {
        if reader == Reader::Scenario && doc.get("network").is_some() {
            let mut all = Vec::new();
            paths(&doc, String::new(), &mut all);
            used.extend(
                all.into_iter()
                    .map(|(p, _)| p.rsplit(['.', ']']).next().unwrap_or_default().to_string()),
            );
        }
    }
    let missing: Vec<_> = wanted
        .iter()
        .filter(|(_, k)| !used.contains(k.as_str()))
        .collect();
    assert!(missing.is_empty(), "keys no document uses: {missing:?}");
    let validator = jsonschema::validator_for(&s).unwrap();
    for (name, _, doc) in documents() {
        if doc
            .get("network")
            .is_some_and(|n| n.get("events").is_none())
        {
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
    }
}

/// Every object, in every form, refuses an array, whether empty or holding the object's
/// values in order (which serde would read field by field).
#[test]
fn an_array_is_never_taken_for_an_object() {
    let mut checked = 0;
    for (name, reader, doc) in documents() {
        let mut all = Vec::new();
        paths(&doc, String::new(), &mut all);
        for (path, v) in all {
            let Value::Object(o) = &v else { continue };
            if free_json(name, &path) {
                continue;
            }
            let values: Vec<Value> = o.values().cloned().collect();
            for arr in [json!([]), Value::Array(values)] {
                let bad = replaced(&doc, &path, arr.clone());
                let e = match load(reader, &bad) {
                    Ok(()) => panic!("{name}: {path} = {arr} was accepted"),
                    Err(e) => e,
                };
                let shown = e.to_string();
                assert_eq!(e.path, path, "{name}: {path} = {arr}: {shown}");
                assert!(e.message.contains("found an array"), "{name}: {shown}");
                assert!(rust_words(&shown).is_empty(), "{name}: {shown}");
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
}

/// Where the loader takes `null` as a value: documented "no limit" / "never" values.
const NULL_MEANS_SOMETHING: &[&str] = &[
    "consensus.client_max_attempts",
    "consensus.term_bound",
    "consensus.snapshot_threshold",
    "consensus.checkpoint_interval",
];

/// Every value of every document replaced by values of every JSON type: what is refused is
/// refused in JSON words, at the path of the value when its type is the reason, and an
/// explicit `null` is refused everywhere but where it is documented to mean something.
#[test]
fn wrong_types_are_named_in_json_words_at_their_path() {
    let wrong = [
        (json!(null), "null"),
        (json!(true), "true"),
        (json!(5), "a number (5)"),
        (json!(-1.5), "a number (-1.5)"),
        (json!("x"), "a string (\"x\")"),
        (json!([]), "an array"),
        (json!([1, "a"]), "an array"),
        (json!({}), "an object"),
        (json!({"zz": 1}), "an object"),
    ];
    let mut refused = 0;
    for (name, reader, doc) in documents() {
        let mut all = Vec::new();
        paths(&doc, String::new(), &mut all);
        for (path, _) in all {
            if free_json(name, &path) {
                continue;
            }
            for (w, found) in &wrong {
                let bad = replaced(&doc, &path, w.clone());
                let e = match load(reader, &bad) {
                    Ok(()) => {
                        assert!(
                            !w.is_null() || NULL_MEANS_SOMETHING.contains(&path.as_str()),
                            "{name}: {path} = null was accepted"
                        );
                        continue;
                    }
                    Err(e) => e,
                };
                refused += 1;
                let shown = e.to_string();
                assert!(
                    rust_words(&shown).is_empty(),
                    "{name}: {path} = {w}: {shown} (words {:?})",
                    rust_words(&shown)
                );
                if e.message.ends_with(&format!("found {found}")) && !path.starts_with("base") {
                    assert_eq!(e.path, path, "{name}: {path} = {w}: {shown}");
                }
                if w.is_null() && e.path == path {
                    assert!(e.message.contains("found null"), "{name}: {shown}");
                }
            }
        }
    }
    assert!(refused > 1000, "{refused}");
}

/// The reviewer's examples, with the exact messages.
#[test]
fn messages_for_wrong_shapes() {
    let three = r#""nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "server"}]"#;
    let cases = [
        (
            format!(
                r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "storage": [50], "termination": 1000}}"#
            ),
            "storage: expected an object (storage settings), found an array",
        ),
        (
            format!(
                r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "chaos": [1000, 5000]}}"#
            ),
            "chaos: expected an object (random faults), found an array",
        ),
        (
            r#"{"consensus": {"protocol": "raft"}, "network": {"nodes": [[1, "server"], [2, "server"]], "links": [[null, 1, 2]]}}"#.to_string(),
            "network.nodes[0]: expected an object (a node), found an array",
        ),
        (
            r#"{"consensus": {"protocol": "raft"}, "network": []}"#.to_string(),
            "network: expected an object (the network), found an array",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}, "links": [5]}}}}"#),
            "network.links[0]: expected an object (a link), found a number (5)",
        ),
        (
            r#"{"consensus": {"protocol": "raft"}, "network": {"nodes": ["s1"]}}"#.to_string(),
            "network.nodes[0]: expected an object (a node), found a string (\"s1\")",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "storage": 5}}"#),
            "storage: expected an object (storage settings), found a number (5)",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "timeline": [5]}}"#),
            "timeline[0]: expected an object (a timeline action), found a number (5)",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}, "defaults": 3}}}}"#),
            "network.defaults: expected an object (a link's latency and loss), found a number (3)",
        ),
        (
            format!(
                r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "timeline": [{{"at": 1, "action": "partition", "groups": "a"}}]}}"#
            ),
            "timeline[0].groups: expected an array, found a string (\"a\")",
        ),
        (
            format!(
                r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "workload": {{"clients": [1]}}}}"#
            ),
            "workload.clients: expected an object, found an array",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "workload": [1]}}"#),
            "workload: expected an object (a workload), found an array",
        ),
        (
            r#"{"consensus": {"protocol": "raft"}, "network": [[{"id": 1, "type": "server"}], [], []]}"#.to_string(),
            "network: expected an object (the network), found an array",
        ),
        (
            r#"{"consensus": {"protocol": "raft"}, "nodes": 3, "clients": 5000000}"#.to_string(),
            "clients: expected between 1 and 10000 nodes in all, found 3 servers and 5000000 clients",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "termination": null}}"#),
            "termination: expected a number, found null",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft", "lazy_voting": null}}, "network": {{{three}}}}}"#),
            "consensus.lazy_voting: expected true or false, found null",
        ),
        (
            format!(r#"{{"consensus": ["raft"], "network": {{{three}}}}}"#),
            "consensus: expected an object, found an array",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft", "candidate_timeout": {{"min": 1}}}}, "network": {{{three}}}}}"#),
            "consensus.candidate_timeout: expected an array of length 2, found an object",
        ),
        (
            format!(r#"{{"consensus": {{"protocol": "raft"}}, "network": {{{three}}}, "timeline": [{{"at": 1, "action": 5}}]}}"#),
            "timeline[0].action: expected one of \"crash\", \"recover\", \"pause\", \"resume\", \"isolate\", \"rejoin\", \"partition\", \"heal\", \"clock\", \"link_down\", \"link_up\", \"link_change\", \"flap\", found a number (5)",
        ),
    ];
    for (text, want) in cases {
        let e = match coracle_sim::load_str("bad.json", &text) {
            Ok(s) => coracle_sim::run::validate(&s)
                .err()
                .unwrap_or_else(|| panic!("accepted: {text}")),
            Err(e) => e,
        };
        let got = format!("{}: {}", e.path, e.message);
        assert_eq!(got, want, "{text}");
        assert!(e.position.is_some(), "{text}");
    }
}

/// The values documented as meaning something when null are read as such.
#[test]
fn documented_nulls_are_values() {
    let mut v = native();
    // (VRR's `checkpoint_interval` is set on the VRR variant below.)
    for k in NULL_MEANS_SOMETHING
        .iter()
        .filter(|k| **k != "consensus.checkpoint_interval")
    {
        let key = k.trim_start_matches("consensus.");
        v["consensus"][key] = Value::Null;
    }
    load(Reader::Scenario, &v).unwrap();
    let text = serde_json::to_string(&v).unwrap();
    let s = coracle_sim::load_str("x.json", &text).unwrap();
    let (_, settings) = coracle_sim::run::validate(&s).unwrap();
    assert_eq!(settings["snapshot_threshold"], Value::Null, "{settings}");
    assert_eq!(settings["term_bound"], Value::Null, "{settings}");
    assert_eq!(settings["client_max_attempts"], Value::Null, "{settings}");
    let mut vrr = consensus_variants()[1].clone();
    vrr["consensus"]["client_max_attempts"] = Value::Null;
    vrr["consensus"]["checkpoint_interval"] = Value::Null;
    load(Reader::Scenario, &vrr).unwrap();
    let s = coracle_sim::load_str("x.json", &serde_json::to_string(&vrr).unwrap()).unwrap();
    let (_, settings) = coracle_sim::run::validate(&s).unwrap();
    assert_eq!(settings["checkpoint_interval"], Value::Null, "{settings}");
}

/// Every struct the schema describes has a noun for "expected an object (…)".
#[test]
fn every_object_of_the_schema_has_a_noun() {
    let s = schema();
    for (name, def) in s["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            assert!(
                coracle_sim::config::error::noun(name).is_some(),
                "no noun for {name}"
            );
        }
    }
    for name in ["RaftConfig", "VrrConfig", "DummyConfig", "NativeConfig"] {
        assert!(coracle_sim::config::error::noun(name).is_some(), "{name}");
    }
}
