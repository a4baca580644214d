//! The `coracle` binary, driven as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn coracle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coracle"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("coracle runs")
}

/// The workspace root (examples and fixtures are addressed from there).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A JSON file the binary wrote.
fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("coracle-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Every example in `examples/` (and its subfolders) runs and exits 0.
#[test]
fn every_example_runs() {
    let mut n = 0;
    for f in json_files(&root().join("examples")) {
        let rel = f
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.contains("experiments/") {
            continue; // sweep specs, not scenarios
        }
        let o = coracle(&["run", &rel, "--seed", "1", "--quiet"]);
        assert!(o.status.success(), "{rel}: {}", stderr(&o));
        n += 1;
    }
    assert!(n >= 4, "examples found: {n}");
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_gives_byte_identical_results_and_trace() {
    let (r1, t1, r2, t2) = (
        tmp("r1.json"),
        tmp("t1.jsonl"),
        tmp("r2.json"),
        tmp("t2.jsonl"),
    );
    for (r, t) in [(&r1, &t1), (&r2, &t2)] {
        let o = coracle(&[
            "run",
            "examples/hello-mesh.json",
            "--seed",
            "77",
            "-q",
            "-o",
            r.to_str().unwrap(),
            "--trace",
            t.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (a, b) = (std::fs::read(&r1).unwrap(), std::fs::read(&r2).unwrap());
    assert_eq!(a, b);
    assert_eq!(std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());
    assert!(!std::fs::read(&t1).unwrap().is_empty());
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["seed"], 77);
}

#[test]
fn a_drawn_seed_is_printed_and_recorded() {
    let r = tmp("drawn.json");
    let o = coracle(&["run", "examples/hello-mesh.json", "-o", r.to_str().unwrap()]);
    assert!(o.status.success());
    let out = stdout(&o);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
    let seed = v["seed"].as_u64().unwrap();
    assert!(out.contains(&format!("seed {seed} (drawn; repeat this run with: coracle run examples/hello-mesh.json --seed {seed})")), "{out}");
}

#[test]
fn bad_config_exits_2_with_a_located_message() {
    let f = tmp("bad.json");
    std::fs::write(
        &f,
        r#"{"nodes": 3, "loss": 7, "consensus": {"protocol": "dummy"}}"#,
    )
    .unwrap();
    let o = coracle(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.json:1:22: loss: expected a probability in [0, 1], found 7"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn missing_file_and_bad_usage_exit_2() {
    let o = coracle(&["run", "does/not/exist.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does/not/exist.json: cannot read the file"));
    let o = coracle(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    let o = coracle(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_prints_the_normalised_scenario() {
    let o = coracle(&["check", "examples/hello-mesh.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("valid (compact form)"), "{out}");
    assert!(out.contains("nodes: 5 servers, 0 clients, 0 hubs"), "{out}");
    assert!(out.contains("links: 10"), "{out}");

    // The protocol's parameters in effect: the compact "timeout": 300 is the range [300, 600).
    let o = coracle(&["check", "examples/compact-raft.json"]);
    let out = stdout(&o);
    assert!(
        out.contains("\"election_timeout_ms\":[300.0,600.0]"),
        "{out}"
    );
    assert!(out.contains("\"majority\":26"), "{out}");
    let o = coracle(&["check", "examples/hub-star.json"]);
    assert!(
        stdout(&o).contains("3 servers, 2 clients, 1 hub\n"),
        "{}",
        stdout(&o)
    );
    // Every link setting given is shown.
    let o = coracle(&["check", "examples/reliable/bufferbloat.json"]);
    assert!(
        stdout(&o).contains("latency 0.2 ms, loss 0, bandwidth 0.2 Mbit/s, queue 2000"),
        "{}",
        stdout(&o)
    );
}

/// A role target under the dummy protocol (whose servers have no roles) is warned about,
/// naming the action; a crash aimed at a node, or an undo aimed at "last", is not.
#[test]
fn a_role_target_under_the_dummy_protocol_is_warned_about() {
    let f = tmp("dummy-role.json");
    std::fs::write(
        &f,
        r#"{"termination": 1000, "consensus": {"protocol": "dummy", "id": 1},
 "network": {"nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}], "mesh": true},
 "timeline": [{"at": 10, "action": "crash", "node": 2}, {"at": 20, "action": "recover", "role": "last"},
              {"at": 100, "action": "partition", "groups": [[{"role": "leader"}], "rest"]}]}"#,
    )
    .unwrap();
    let o = coracle(&["check", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("dummy-role.json: timeline[2].groups: the dummy protocol has no leader"),
        "{}",
        stderr(&o)
    );
    let o = coracle(&["check", "examples/crash-recover.json"]);
    assert!(!stderr(&o).contains("has no leader"), "{}", stderr(&o));
}

/// A client with a workload but no two-way route to any server at the start is warned about.
#[test]
fn a_client_cut_off_from_every_server_is_warned_about() {
    let f = tmp("cutoff.json");
    std::fs::write(
        &f,
        r#"{"termination": 500, "consensus": {"protocol": "raft"},
 "network": {"nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"}, {"id": "s3", "type": "server"},
                       {"id": "c1", "type": "client"}, {"id": "c2", "type": "client"}],
             "links": [{"from": "s1", "to": "s2"}, {"from": "s2", "to": "s3"}, {"from": "s1", "to": "s3"},
                       {"from": "c1", "to": "s1"}, {"from": "c2", "to": "s2", "direction": "uni"}]},
 "workload": {"type": "closed", "think_time": 10}}"#,
    )
    .unwrap();
    let o = coracle(&["check", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(
            "cutoff.json: network.nodes[4]: client \"c2\" has no route back from any server"
        ),
        "{e}"
    );
    assert!(!e.contains("\"c1\""), "{e}");
}

/// A file that is not UTF-8 is refused at its first bad byte, with line and column.
#[test]
fn a_file_that_is_not_utf8_is_located() {
    let f = tmp("latin1.json");
    std::fs::write(&f, b"{\n  \"nodes\": 3,\n  \"name\": \"caf\xe9\"\n}\n").unwrap();
    let o = coracle(&["check", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("latin1.json:3:15: expected UTF-8 text"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn schema_is_json_schema_with_every_protocol() {
    let o = coracle(&["schema"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["$schema"].as_str().unwrap().contains("json-schema.org"));
    let names: Vec<&str> = v["properties"]["consensus"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["properties"]["protocol"]["const"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"dummy"), "{names:?}");
    assert!(v["properties"]["network"].is_object());
    // Ranges an editor can check: probabilities in [0, 1], times up to 10^10 ms.
    let link = &v["$defs"]["LinkSpec"]["properties"];
    assert_eq!(link["loss"]["minimum"], 0.0);
    assert_eq!(link["loss"]["maximum"], 1.0);
    assert_eq!(v["properties"]["termination"]["maximum"], 1e10);
    // Protocol timers are positive; clock rates within what the loader accepts.
    for p in v["properties"]["consensus"]["oneOf"].as_array().unwrap() {
        for (k, d) in p["properties"].as_object().unwrap() {
            // (VRR's `checkpoint_interval` is a number of ops, not a timer.)
            let timer = k.ends_with("interval") && k != "checkpoint_interval";
            if timer || k.contains("timeout") {
                let bound = d.get("minimum").unwrap_or(&d["items"]["minimum"]);
                assert_eq!(*bound, 0.001, "{k}: {d}");
            }
        }
    }
    assert_eq!(
        v["$defs"]["ClockSpec"]["properties"]["rate"]["minimum"],
        0.01
    );
    // One branch per timeline action, with that action's keys.
    let clock = v["$defs"]["ActionSpec"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["properties"]["action"]["const"] == "clock")
        .unwrap();
    assert_eq!(clock["properties"]["rate"]["maximum"], 100.0);
    assert_eq!(clock["additionalProperties"], false);
}

#[test]
fn help_has_examples() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
    ] {
        let o = coracle(&args);
        assert!(o.status.success());
        assert!(stdout(&o).contains("Example"), "{args:?}");
    }
}

/// The keys `value` uses that `schema` (a node of the JSON Schema `root`) does not allow, with
/// their paths. Checked: objects' keys, `const` and `enum` values, lower bounds, and that every
/// reference resolves; not types (the loader checks those). This catches a schema that lags
/// behind what the loader accepts, or that a standard validator could not load.
fn schema_misfits(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    path: &str,
) -> Vec<String> {
    use serde_json::Value;
    let mut s = schema;
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        s = &root["$defs"][name];
        assert!(s.is_object(), "{path}: \"$ref\": \"{r}\" points nowhere");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(value)
    {
        return vec![format!("{path}: {value} is not one of {e:?}")];
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), value.as_f64())
        && x < min
    {
        return vec![format!("{path}: {x} is below the minimum {min}")];
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let tries: Vec<Vec<String>> = alts
                .iter()
                .map(|a| schema_misfits(root, a, value, path))
                .collect();
            if tries.iter().any(Vec::is_empty) {
                return Vec::new();
            }
            return tries.into_iter().min_by_key(Vec::len).unwrap_or_default();
        }
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        return vec![format!("{path}: expected {c}, found {value}")];
    }
    match value {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties");
            let mut out = Vec::new();
            for (k, v) in m {
                let p = format!("{path}.{k}");
                match props.and_then(|ps| ps.get(k)) {
                    Some(sub) => out.extend(schema_misfits(root, sub, v, &p)),
                    None => match extra {
                        Some(Value::Bool(false)) => out.push(format!("{p}: not in the schema")),
                        Some(sub @ Value::Object(_)) => {
                            out.extend(schema_misfits(root, sub, v, &p))
                        }
                        _ => {}
                    },
                }
            }
            out
        }
        Value::Array(items) => match s.get("items") {
            Some(sub) => items
                .iter()
                .enumerate()
                .flat_map(|(i, v)| schema_misfits(root, sub, v, &format!("{path}[{i}]")))
                .collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Every native-format example fits `coracle schema` (so editors that validate with it accept
/// what coracle accepts), also with its protocol switched to VRR where that is documented to
/// work (Raft's timing names are VRR aliases).
#[test]
fn every_native_example_fits_the_schema() {
    let o = coracle(&["schema"]);
    assert!(o.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut n = 0;
    for f in json_files(&root().join("examples")) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        if v.get("network").is_none() || v.get("base").is_some() {
            continue; // 2015 and compact forms, sweep specs
        }
        let misfits = schema_misfits(&schema, &schema, &v, "");
        assert!(misfits.is_empty(), "{}: {misfits:?}", f.display());
        if v["consensus"]["protocol"] == "raft" {
            let mut w = v.clone();
            let c = w["consensus"].as_object_mut().unwrap();
            c.retain(|k, _| {
                [
                    "protocol",
                    "election_timeout_min",
                    "election_timeout_max",
                    "heartbeat_interval",
                    "timeout",
                    "client_timeout",
                ]
                .contains(&k.as_str())
            });
            c.insert("protocol".into(), "vrr".into());
            let misfits = schema_misfits(&schema, &schema, &w, "");
            assert!(misfits.is_empty(), "{} as vrr: {misfits:?}", f.display());
        }
        n += 1;
    }
    assert!(n >= 20, "native examples found: {n}");
    // The check itself catches an unknown key.
    let raft_example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("examples/raft-5.json")).unwrap())
            .unwrap();
    let mut bad = raft_example.clone();
    bad["network"]["lantency"] = serde_json::json!(3);
    assert_eq!(
        schema_misfits(&schema, &schema, &bad, ""),
        vec![".network.lantency: not in the schema".to_string()]
    );
    // A teaching switch goes through a reference to a definition shared at the root.
    let mut teaching = raft_example.clone();
    teaching["consensus"]["unsafe"] = serde_json::json!(["no_log_check", "no_such_switch"]);
    let misfits = schema_misfits(&schema, &schema, &teaching, "");
    assert_eq!(misfits.len(), 1, "{misfits:?}");
    assert!(
        misfits[0].starts_with(".consensus.unsafe[1]:") && misfits[0].contains("no_such_switch"),
        "{misfits:?}"
    );
    teaching["consensus"]["unsafe"] = serde_json::json!([]);
    teaching["consensus"]["max_entries_per_message"] = serde_json::json!(0);
    assert_eq!(
        schema_misfits(&schema, &schema, &teaching, ""),
        vec![".consensus.max_entries_per_message: 0 is below the minimum 1".to_string()]
    );
}

#[test]
fn a_run_whose_simulated_time_stops_passing_is_an_error_not_a_hang() {
    // Zero-latency link, a protocol that answers at once and no think time: an endless loop
    // at t = 0. It stops after a million events at one instant, quickly and with exit 2.
    let cfg = tmp("stall.json");
    std::fs::write(
        &cfg,
        r#"{"termination": 2000, "consensus": {"protocol": "raft"},
            "network": {"nodes": [{"id": "s1", "type": "server"}, {"id": "c1", "type": "client"}],
                        "links": [{"from": "s1", "to": "c1", "latency": 0}]},
            "workload": {}}"#,
    )
    .unwrap();
    let out = tmp("stall-results.json");
    let o = coracle(&[
        "run",
        cfg.to_str().unwrap(),
        "--seed",
        "1",
        "--quiet",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("simulated time stopped passing at 300 ms: 1000000 events"),
        "{}",
        stderr(&o)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r["termination_reason"], "stalled");
    assert_eq!(r["checks"]["linearizability"]["status"], "unknown");
    // The summary says why the history was not checked.
    let o = coracle(&["run", cfg.to_str().unwrap(), "--seed", "1"]);
    assert!(
        stdout(&o).contains("linearizability unknown: not checked: simulated time stopped passing"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn output_files_are_checked_before_the_run() {
    let cfg = tmp("own.json");
    std::fs::copy(root().join("examples/raft-5.json"), &cfg).unwrap();
    let before = std::fs::read(&cfg).unwrap();
    let c = cfg.to_str().unwrap();
    let o = coracle(&["run", c, "--seed", "1", "--quiet", "--output", c]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is the scenario file itself"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(&cfg).unwrap(),
        before,
        "the scenario survives"
    );
    let same = tmp("same.json");
    let s = same.to_str().unwrap();
    let o = coracle(&[
        "run", c, "--seed", "1", "--quiet", "--output", s, "--trace", s,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("name the same file"), "{}", stderr(&o));
    let o = coracle(&["run", c, "--quiet", "--output", "/nonexistent-dir/r.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot write the results"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("drawn"),
        "refused before a seed is drawn"
    );
}

/// Diskless VRR's dead end (more than f replicas lost their state at once) passes every check;
/// the summary says what happened instead of leaving it to the availability numbers.
#[test]
fn the_summary_names_a_diskless_vrr_cluster_that_cannot_recover() {
    let cfg = tmp("two-diskless.json");
    std::fs::write(
        &cfg,
        r#"{"termination": 5000, "consensus": {"protocol": "vrr", "durable": false},
            "network": {"nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"},
                                  {"id": "s3", "type": "server"}, {"id": "c1", "type": "client"}], "mesh": true},
            "workload": {"think_time": 10},
            "timeline": [{"at": 2000, "action": "crash", "node": "s1"}, {"at": 2000, "action": "crash", "node": "s2"},
                         {"at": 2500, "action": "recover", "node": "s1"}, {"at": 2500, "action": "recover", "node": "s2"}]}"#,
    )
    .unwrap();
    let out_json = tmp("two-diskless-results.json");
    let o = coracle(&[
        "run",
        cfg.to_str().unwrap(),
        "--seed",
        "1",
        "--output",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("note       2 of 3 replicas end recovering, more than f = 1"),
        "{}",
        stdout(&o)
    );
    // The results file says the same, in `notes`.
    let r = read_json(&out_json);
    let notes = r["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = notes[0].as_str().unwrap();
    assert!(
        stdout(&o).contains(&format!("  note       {note}\n")),
        "{note}"
    );
}

/// The network line counts the copies duplicating links made and the packets still on their
/// way, so that its numbers add up: sent + duplicated = delivered + dropped + in flight.
#[test]
fn the_network_line_adds_up_with_duplicates_and_packets_in_flight() {
    let cfg = tmp("dup-loss.json");
    std::fs::write(
        &cfg,
        r#"{"termination": 1000, "consensus": {"protocol": "raft"},
            "network": {"defaults": {"latency": {"dist": "uniform", "min": 5, "max": 40}, "loss": 0.1, "duplicate": 0.3},
                        "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"},
                                  {"id": 3, "type": "server"}, {"id": "c", "type": "client"}], "mesh": true},
            "workload": {"think_time": 1}}"#,
    )
    .unwrap();
    let out_json = tmp("dup-loss-results.json");
    let o = coracle(&[
        "run",
        cfg.to_str().unwrap(),
        "--seed",
        "2",
        "--output",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("network"))
        .expect("a network line");
    let r = read_json(&out_json);
    let n = &r["network"];
    let get = |k: &str| n[k].as_u64().unwrap();
    let (sent, dup, delivered, in_flight) = (
        get("packets_sent"),
        get("packets_duplicated"),
        get("packets_delivered"),
        get("packets_in_flight"),
    );
    let lost = n["packets_dropped"]["loss"].as_u64().unwrap();
    assert!(dup > 0 && lost > 0 && in_flight > 0, "{n}");
    assert_eq!(sent + dup, delivered + lost + in_flight, "{n}");
    assert!(
        line.contains(&format!(
            "sent {sent} (+{dup} duplicated), delivered {delivered}, dropped loss {lost}, {in_flight} in flight;"
        )),
        "{line}"
    );
}

/// `compare` of Raft and VRR says under its table what the rows count differently (Raft's
/// no-ops, VRR's primary in place from time 0), and the results bear it out; comparing one
/// protocol says nothing of it.
#[test]
fn compare_of_raft_and_vrr_notes_what_the_rows_count_differently() {
    let out_json = tmp("compare-raft-vrr.json");
    let o = coracle(&[
        "compare",
        "examples/raft-5.json",
        "--protocols",
        "vrr,raft",
        "--seed",
        "1",
        "--output",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("note: raft's committed entries include one no-op per leader term"),
        "{out}"
    );
    assert!(
        out.contains("note: vrr starts in view 0 with its primary in place"),
        "{out}"
    );
    let r = read_json(&out_json);
    let stat = |p: &str, k: &str| r[p]["protocol_stats"][k].as_f64().unwrap();
    let ops = |p: &str| r[p]["clients"]["ops_completed"].as_f64().unwrap();
    assert_eq!(stat("vrr", "time_to_first_leader_ms"), 0.0);
    assert!(stat("raft", "time_to_first_leader_ms") > 0.0);
    assert_eq!(stat("vrr", "unavailable_ms"), 0.0);
    // A fault-free run: everything committed was answered (or its answer is on its way at the
    // horizon), plus Raft's one no-op.
    let outstanding = |p: &str| r[p]["clients"]["ops_outstanding"].as_f64().unwrap();
    assert_eq!(stat("raft", "leader_elections"), 1.0);
    for (p, noops) in [("raft", 1.0), ("vrr", 0.0)] {
        let extra = stat(p, "committed_entries") - ops(p) - noops;
        assert!((0.0..=outstanding(p)).contains(&extra), "{p}: {extra}");
    }

    let o = coracle(&[
        "compare",
        "examples/raft-5.json",
        "--protocols",
        "raft",
        "--seed",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("note:"), "{}", stdout(&o));
}

/// With a disk-latency model, `compare` says that diskless VRR's latencies are not like for
/// like with Raft's, and `vrr-durable` runs VRR with durable replicas (which then write too).
#[test]
fn compare_names_the_disk_bias_and_runs_durable_vrr() {
    let out_json = tmp("compare-disk.json");
    let args = |protocols: &'static str, out: &str| {
        coracle(&[
            "compare",
            "examples/crash-recover.json",
            "--protocols",
            protocols,
            "--seed",
            "3",
            "--output",
            out,
        ])
    };
    let o = args("raft,vrr", out_json.to_str().unwrap());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("note: raft answers only after its disk writes"),
        "{}",
        stdout(&o)
    );
    let o = args("raft,vrr,vrr-durable", out_json.to_str().unwrap());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // With vrr-durable beside it, the diskless column is still not like for like: say which is.
    assert!(
        stdout(&o).contains("not like for like: compare raft with vrr-durable"),
        "{}",
        stdout(&o)
    );
    let r = read_json(&out_json);
    assert_eq!(r["vrr-durable"]["protocol"], "vrr");
    // The results say what ran: the parameters in effect.
    assert_eq!(r["vrr-durable"]["protocol_settings"]["durable"], true);
    assert_eq!(r["vrr"]["protocol_settings"]["durable"], false);
    let p50 = |p: &str| r[p]["clients"]["latency_ms"]["p50"].as_f64().unwrap();
    // Durable replicas wait for the disk (2 ms a write here) before answering.
    assert!(p50("vrr-durable") > p50("vrr") + 2.0, "{r:#}");
}

/// A server down at the end shows what its disk holds (durable term and log), not its last
/// volatile state or zeros; its commit index and applied entries read "-".
#[test]
fn a_down_server_shows_its_disk() {
    let out_json = tmp("down-disk.json");
    let o = coracle(&[
        "run",
        "examples/leader-crash.json",
        "--seed",
        "1",
        "--until",
        "6000",
        "--output",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = read_json(&out_json);
    let down: Vec<&serde_json::Value> = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "down")
        .collect();
    assert_eq!(down.len(), 1);
    let n = down[0];
    assert_eq!(n["term"], 1);
    // It led term 1 and appended (and persisted) what its clients sent.
    assert_eq!(n["log_len"], n["counters"]["entries_appended"]);
    assert!(n["log_len"].as_u64().unwrap() > 500, "{n}");
    assert_eq!(n["commit_index"], 0);
    assert_eq!(n["applied"], 0);
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains(" server ") && l.contains(" down "))
        .expect("a row for the down server")
        .to_string();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[4..],
        ["1", &n["log_len"].to_string(), "-", "-"],
        "{row}"
    );
}

/// The leaders line reads naturally with no leader and with one change.
#[test]
fn the_leaders_line_says_when_no_leader_was_elected() {
    let o = coracle(&["run", "examples/2015/split_brain.json", "--seed", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  leaders    none elected, max term "),
        "{}",
        stdout(&o)
    );
    let o = coracle(&["run", "examples/leader-crash.json", "--seed", "1"]);
    assert!(stdout(&o).contains(", 1 leader change, "), "{}", stdout(&o));
}

/// A results file given to `trace export` is refused with what a trace is.
#[test]
fn trace_export_says_what_a_trace_is() {
    let out_json = tmp("not-a-trace.json");
    let o = coracle(&[
        "run",
        "examples/raft-5.json",
        "--seed",
        "1",
        "--until",
        "100",
        "--quiet",
        "--output",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = coracle(&[
        "trace",
        "export",
        out_json.to_str().unwrap(),
        "--format",
        "perfetto",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "line 1: expected one trace record per line (the JSON Lines of coracle run --trace)"
        ),
        "{}",
        stderr(&o)
    );
}

/// A trace or standard output that cannot be written (a full disk) is an error with exit
/// status 2, not a silently truncated trace behind a successful run, and not a panic.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_outputs_are_errors() {
    let o = coracle(&[
        "run",
        "examples/raft-5.json",
        "--seed",
        "1",
        "--quiet",
        "--trace",
        "/dev/full",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write the trace to /dev/full"),
        "{}",
        stderr(&o)
    );
    let full = || std::fs::File::create("/dev/full").unwrap();
    for args in [
        &["schema"][..],
        &["check", "examples/raft-5.json"],
        &["run", "examples/raft-5.json", "--seed", "1"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_coracle"))
            .args(args)
            .current_dir(root())
            .stdout(full())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot write to standard output"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

/// `--set PATH=VALUE` overrides a value of the file before it is read; the reproduce command
/// keeps it, and a bad override is a usage error naming it.
#[test]
fn set_overrides_the_file_and_is_kept_in_the_reproduce_command() {
    let o = coracle(&[
        "run",
        "examples/teaching/storm.json",
        "--seed",
        "1",
        "--quiet",
        "--set",
        r#"consensus.unsafe=["no_log_check"]"#,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            r#"reproduce with: coracle run examples/teaching/storm.json --set 'consensus.unsafe=["no_log_check"]' --seed 1"#
        ),
        "{}",
        stderr(&o)
    );
    // Without the override the same run is safe.
    let o = coracle(&[
        "run",
        "examples/teaching/storm.json",
        "--seed",
        "1",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (set, says) in [
        ("consensus.prevote", "expected PATH=VALUE"),
        ("network.links[99].loss=1", "has no network.links"),
        ("consensus.prevote=maybe", "(with --set):"),
    ] {
        let o = coracle(&["run", "examples/raft-5.json", "--seed", "1", "--set", set]);
        assert_eq!(o.status.code(), Some(2), "{set}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{set}: {}", stderr(&o));
    }
}

/// `--keep-going` runs on after an invariant violation to the horizon, so the clients'
/// history is checked too: under `no_log_check` the clients see it (linearizability
/// violation); the run still fails, and the reproduce command keeps the flag.
#[test]
fn keep_going_checks_what_the_clients_saw() {
    let out = tmp("keep-going.json");
    let o = coracle(&[
        "run",
        "examples/teaching/storm.json",
        "--seed",
        "1",
        "--quiet",
        "--keep-going",
        "--set",
        r#"consensus.unsafe=["no_log_check"]"#,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--seed 1 --keep-going"),
        "{}",
        stderr(&o)
    );
    let r = read_json(&out);
    assert_eq!(r["termination_reason"], "horizon");
    assert_eq!(r["checks"]["invariants"]["status"], "violation");
    assert_eq!(r["checks"]["linearizability"]["status"], "violation");
}
