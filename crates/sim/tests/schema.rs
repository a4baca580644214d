//! `coracle schema` against a standard JSON Schema validator (draft 2020-12): it accepts the
//! bundled examples, and refuses what the loader refuses wherever the rule concerns one value
//! or one object (the rules between keys and references are `coracle check`'s, and the
//! schema's description says so).

use coracle_sim::config::schema::schema;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema")
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn loads(doc: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).unwrap();
    let s = coracle_sim::load_str("doc.json", &text).map_err(|e| e.to_string())?;
    coracle_sim::run::validate(&s)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Every native scenario bundled (examples, and the bases of the experiments' sweeps) is
/// valid under the schema.
#[test]
fn the_bundled_examples_are_valid() {
    let v = validator();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    json_files(&root.join("examples"), &mut files);
    json_files(&root.join("bench"), &mut files);
    let mut n = 0;
    for f in files {
        let doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let scenario = if doc.get("base").is_some_and(Value::is_object) {
            doc["base"].clone()
        } else {
            doc
        };
        let native = scenario
            .get("network")
            .is_some_and(|n| n.is_object() && n.get("events").is_none());
        if !native {
            continue; // the 2015 and compact forms, sweeps over a base file
        }
        let errors = schema_errors(&v, &scenario);
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
        n += 1;
    }
    assert!(n >= 25, "native scenarios found: {n}");
}

fn base() -> Value {
    json!({
      "termination": 1000,
      "consensus": {"protocol": "raft"},
      "network": {
        "nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"},
          {"id": "s3", "type": "server"}, {"id": "h", "type": "hub"}],
        "links": [{"id": "l1", "from": "s1", "to": "h"}, {"from": "s2", "to": "h"},
          {"from": "s3", "to": "h"}, {"id": "u", "from": "s1", "to": "s2", "direction": "uni"}]
      }
    })
}

fn with_action(a: Value) -> Value {
    let mut d = base();
    d["timeline"] = json!([a]);
    d
}

/// The reviewer's five configurations that the schema took and the loader refuses.
#[test]
fn what_the_loader_refuses_for_one_value_the_schema_refuses() {
    let v = validator();
    let mut latency = base();
    latency["network"]["links"][0]["latency"] = json!(1e11);
    let mut snapshot = base();
    snapshot["consensus"]["snapshot_threshold"] = json!(0);
    let mut normal_max = base();
    normal_max["network"]["links"][0]["latency"] =
        json!({"dist": "normal", "mean": 5, "sd": 1, "max": 9});
    let mut null_termination = base();
    null_termination["termination"] = Value::Null;
    let mut array_storage = base();
    array_storage["storage"] = json!([50]);
    for (what, doc) in [
        (
            "heal with a node",
            with_action(json!({"at": 1, "action": "heal", "node": "s1"})),
        ),
        ("normal with max", normal_max),
        (
            "crash with a direction",
            with_action(json!({"at": 1, "action": "crash", "node": "s1", "direction": "in"})),
        ),
        (
            "crash without a node",
            with_action(json!({"at": 1, "action": "crash"})),
        ),
        ("snapshot_threshold 0", snapshot),
        ("latency 1e11", latency),
        ("termination null", null_termination),
        ("storage as an array", array_storage),
    ] {
        assert!(loads(&doc).is_err(), "{what}: the loader accepts it");
        assert!(
            !schema_errors(&v, &doc).is_empty(),
            "{what}: the schema accepts it"
        );
    }
    // And takes what the loader takes.
    let mut nulls = base();
    for k in ["snapshot_threshold", "term_bound", "client_max_attempts"] {
        nulls["consensus"][k] = Value::Null;
    }
    loads(&nulls).unwrap();
    assert_eq!(schema_errors(&v, &nulls), Vec::<String>::new());
}

/// One valid action of each kind, its keys beyond `at` and `action`, and which of them it
/// needs.
fn actions() -> Vec<(Value, &'static [&'static str])> {
    vec![
        (json!({"at": 1, "action": "crash", "node": "s1"}), &["node"]),
        (
            json!({"at": 1, "action": "recover", "node": "s1"}),
            &["node"],
        ),
        (
            json!({"at": 1, "action": "pause", "role": "leader"}),
            &["role"],
        ),
        (
            json!({"at": 1, "action": "resume", "role": "last"}),
            &["role"],
        ),
        (
            json!({"at": 1, "action": "isolate", "node": "s1", "direction": "out"}),
            &["node"],
        ),
        (
            json!({"at": 1, "action": "rejoin", "node": "s1"}),
            &["node"],
        ),
        (
            json!({"at": 1, "action": "partition", "groups": [["s1"], "rest"]}),
            &["groups"],
        ),
        (
            json!({"at": 1, "action": "partition", "from": ["s1"], "to": ["s2"]}),
            &["from", "to"],
        ),
        (json!({"at": 1, "action": "heal", "delay": 5}), &[]),
        (
            json!({"at": 1, "action": "clock", "node": "s1", "rate": 1.1}),
            &["node", "rate"],
        ),
        (
            json!({"at": 1, "action": "link_down", "link": "l1", "direction": "reverse"}),
            &["link"],
        ),
        (
            json!({"at": 1, "action": "link_up", "link": "l1"}),
            &["link"],
        ),
        (
            json!({"at": 1, "action": "link_change", "link": "l1", "loss": 0.1}),
            &["link", "loss"],
        ),
        (
            json!({"at": 1, "action": "flap", "link": "l1", "up": 10, "down": 5, "until": 100}),
            &["link", "up", "down"],
        ),
    ]
}

/// A value of the right type for each key an action may have.
fn sample(key: &str) -> Value {
    match key {
        "node" => json!("s2"),
        "role" => json!("leader"),
        "link" => json!("l1"),
        "direction" => json!("both"),
        "latency" | "up" | "down" => json!(5),
        "loss" | "duplicate" => json!(0.1),
        "burst_loss" => json!({"enter_bad": 0.1, "leave_bad": 0.5}),
        "bandwidth" => json!(10),
        "groups" => json!([["s1"], ["s2"]]),
        "from" => json!(["s1"]),
        "to" => json!(["s3"]),
        "rate" => json!(1.2),
        "offset" => json!(3),
        "until" => json!(50),
        "delay" => json!(2),
        other => panic!("no sample for {other}"),
    }
}

const ACTION_KEYS: &[&str] = &[
    "node",
    "role",
    "link",
    "direction",
    "latency",
    "loss",
    "burst_loss",
    "duplicate",
    "bandwidth",
    "groups",
    "from",
    "to",
    "rate",
    "offset",
    "up",
    "down",
    "until",
];

/// For every action kind: the schema and the loader both take a valid action; both refuse it
/// with a key it does not take, without a key it needs, and with both `node` and `role`.
#[test]
fn the_schema_knows_what_each_action_takes_and_needs() {
    let v = validator();
    for (action, needs) in actions() {
        let name = action["action"].as_str().unwrap().to_string();
        let doc = with_action(action.clone());
        loads(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(schema_errors(&v, &doc), Vec::<String>::new(), "{name}");
        let has = |k: &str| action.get(k).is_some();
        for key in ACTION_KEYS {
            if has(key) {
                continue;
            }
            let mut a = action.clone();
            a[*key] = sample(key);
            let doc = with_action(a.clone());
            let loader = loads(&doc);
            let schema = schema_errors(&v, &doc);
            if loader.is_err() {
                // `node` and `role`, `groups` and `from`/`to` exclude each other.
                assert!(!schema.is_empty(), "{name} + {key}: {a}: schema accepts it");
            } else {
                assert!(
                    schema.is_empty(),
                    "{name} + {key}: {a}: loader accepts it, schema: {schema:?}"
                );
            }
        }
        for key in needs {
            let mut a = action.clone();
            a.as_object_mut().unwrap().remove(*key);
            let doc = with_action(a.clone());
            assert!(
                loads(&doc).is_err(),
                "{name} without {key}: loader accepts it"
            );
            assert!(
                !schema_errors(&v, &doc).is_empty(),
                "{name} without {key}: {a}: schema accepts it"
            );
        }
    }
    // Directions and roles by kind.
    for a in [
        json!({"at": 1, "action": "isolate", "node": "s1", "direction": "forward"}),
        json!({"at": 1, "action": "link_down", "link": "l1", "direction": "in"}),
        json!({"at": 1, "action": "crash", "role": "last"}),
        json!({"at": 1, "action": "recover", "role": "leader"}),
        json!({"at": 1, "action": "partition", "groups": [["s1"]]}),
        json!({"at": 1, "action": "partition", "groups": [["s1"], []]}),
        json!({"at": 1, "action": "partition", "groups": [["s1"], [{"role": "last"}]]}),
        json!({"at": 1, "action": "partition", "from": [], "to": ["s1"]}),
        json!({"at": 1, "action": "clock", "node": "s1"}),
        json!({"at": 1, "action": "link_change", "link": "l1"}),
    ] {
        let doc = with_action(a.clone());
        assert!(loads(&doc).is_err(), "{a}: loader accepts it");
        assert!(
            !schema_errors(&v, &doc).is_empty(),
            "{a}: schema accepts it"
        );
    }
}

/// Each distribution takes its own parameters, all of them, within the loader's ranges.
#[test]
fn the_schema_knows_each_distribution() {
    let v = validator();
    let families = [
        json!({"dist": "constant", "value": 2}),
        json!({"dist": "uniform", "min": 1, "max": 2}),
        json!({"dist": "normal", "mean": 5, "sd": 1}),
        json!({"dist": "lognormal", "mu": 1, "sigma": 0.5}),
        json!({"dist": "exponential", "mean": 3}),
        json!({"dist": "pareto", "scale": 1, "shape": 2}),
    ];
    let with_latency = |l: &Value| {
        let mut d = base();
        d["network"]["links"][0]["latency"] = l.clone();
        d
    };
    for f in &families {
        let doc = with_latency(f);
        loads(&doc).unwrap();
        assert_eq!(schema_errors(&v, &doc), Vec::<String>::new(), "{f}");
        let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
        for other in &families {
            for (k, x) in other.as_object().unwrap() {
                if keys.contains(&k) {
                    continue;
                }
                let mut g = f.clone();
                g[k] = x.clone();
                let doc = with_latency(&g);
                assert!(loads(&doc).is_err(), "{g}: loader accepts it");
                assert!(
                    !schema_errors(&v, &doc).is_empty(),
                    "{g}: schema accepts it"
                );
            }
        }
        for k in keys.iter().filter(|k| **k != "dist") {
            let mut g = f.clone();
            g.as_object_mut().unwrap().remove(*k);
            let doc = with_latency(&g);
            assert!(loads(&doc).is_err(), "{g}: loader accepts it");
            assert!(
                !schema_errors(&v, &doc).is_empty(),
                "{g}: schema accepts it"
            );
        }
    }
    for bad in [
        json!({"dist": "constant", "value": -1}),
        json!({"dist": "constant", "value": 2e10}),
        json!({"dist": "lognormal", "mu": 21, "sigma": 0.5}),
        json!({"dist": "lognormal", "mu": 1, "sigma": 6}),
        json!({"dist": "exponential", "mean": 0}),
        json!({"dist": "pareto", "scale": 1, "shape": 1}),
        json!(-3),
        json!("xl"),
    ] {
        let doc = with_latency(&bad);
        assert!(loads(&doc).is_err(), "{bad}: loader accepts it");
        assert!(
            !schema_errors(&v, &doc).is_empty(),
            "{bad}: schema accepts it"
        );
    }
    for good in [json!("S"), json!("large"), json!(0)] {
        let doc = with_latency(&good);
        loads(&doc).unwrap();
        assert_eq!(schema_errors(&v, &doc), Vec::<String>::new(), "{good}");
    }
}

/// The schema tells editors' users that `coracle check` enforces more.
#[test]
fn the_schema_says_check_enforces_more() {
    let s = schema();
    let d = s["description"].as_str().unwrap();
    assert!(d.contains("`coracle check` enforces more"), "{d}");
}
