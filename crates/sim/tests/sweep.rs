//! Sweeps through the library: the split-vote model against its closed form (a unit-level
//! check of the timer and vote logic), seeds independent of thread count, spec errors.

use coracle_sim::sweep::output::sample_of;
use coracle_sim::sweep::{Control, Spec, TrialRow, load_spec_str, prepare, run_all, splitvote};
use std::sync::atomic::AtomicBool;

fn spec(alive: usize, latency: f64, trials: u64) -> String {
    let nodes: Vec<String> = (1..=5)
        .map(|i| {
            format!(
                "{{\"id\": \"s{i}\", \"type\": \"server\", \"up\": {}}}",
                i <= alive
            )
        })
        .collect();
    format!(
        r#"{{"seed": 5, "trials": {trials},
  "base": {{"termination": 1000,
    "consensus": {{"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300}},
    "network": {{"defaults": {{"latency": {latency}}}, "nodes": [{}], "mesh": true}}}},
  "measure": {{"until": "leader_elected", "within": {}}}}}"#,
        nodes.join(", "),
        300.0 + 2.0 * latency - 0.01
    )
}

/// Every trial of `sp`, on all cores, none cancelled.
fn run_every_trial(sp: &Spec) -> Vec<TrialRow> {
    let prepared = prepare(sp, &|_| sp.file.clone()).unwrap();
    let cancel = AtomicBool::new(false);
    let ctl = Control {
        shard: None,
        cancel: &cancel,
        progress: &|_| {},
    };
    let (rows, complete) = run_all(sp, &prepared, &ctl);
    assert!(complete);
    rows
}

#[test]
fn simulated_split_votes_match_the_closed_form() {
    for (alive, lambda) in [(5, 0.2), (4, 0.1), (3, 0.05)] {
        let n = 600;
        let sp = load_spec_str("split", &spec(alive, lambda * 150.0, n), None).unwrap();
        let rows = run_every_trial(&sp);
        let smp = sample_of(&rows, 0);
        let sim = smp.censored as f64 / n as f64;
        let cf = splitvote::p_split(5, alive as u64, lambda);
        let se = (cf * (1.0 - cf) / n as f64).sqrt().max(1e-3);
        assert!(
            ((sim - cf) / se).abs() < 4.0,
            "alive {alive}, lambda {lambda}: simulated {sim}, closed form {cf}"
        );
    }
}

#[test]
fn spec_errors_name_the_path() {
    let good = spec(5, 10.0, 3);
    let e = load_spec_str("x.json", &good.replace("\"within\"", "\"witin\""), None).unwrap_err();
    assert_eq!(e.path, "measure.witin");
    assert!(e.hint.unwrap().contains("within"));
    let e = load_spec_str(
        "x.json",
        &good.replace("\"trials\": 3", "\"trials\": 0"),
        None,
    )
    .unwrap_err();
    assert_eq!(e.path, "trials");
    let e = load_spec_str("x.json", "[1]", None).unwrap_err();
    assert!(e.message.contains("expected a JSON object"));
    let e = load_spec_str(
        "x.json",
        &good.replace("\"until\": \"leader_elected\", ", ""),
        None,
    )
    .unwrap_err();
    assert!(e.message.contains("\"until\""), "{}", e.message);
}

#[test]
fn a_link_action_is_a_fault_to_measure_from() {
    // The leader's links fail at 3 s (all four of s1's links in a mesh of three: two ids).
    let text = r#"{"seed": 2, "trials": 4,
  "base": {"termination": 8000,
    "consensus": {"protocol": "raft", "check_quorum": true},
    "network": {"defaults": {"latency": 1},
      "nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"}, {"id": "s3", "type": "server"}],
      "links": [{"id": "a", "from": "s1", "to": "s2"}, {"id": "b", "from": "s1", "to": "s3"}, {"id": "c", "from": "s2", "to": "s3"}]},
    "timeline": [{"at": 3000, "action": "link_down", "link": "a"}, {"at": 3000, "action": "link_down", "link": "b"}]},
  "measure": {"from": {"action": "link"}, "until": "leader_elected"}}"#;
    let sp = load_spec_str("link.json", text, None).unwrap();
    let rows = run_every_trial(&sp);
    // The fault is found in every trial (it was "no_fault" before link actions matched);
    // where s1 led, s2 or s3 is elected after it, otherwise the leader stays (censored).
    assert!(rows.iter().all(|r| r.status.name() != "no_fault"));
    assert!(rows.iter().any(|r| r.status.name() == "ok"));
}

#[test]
fn a_path_is_varied_or_set_by_a_point_not_both() {
    let good = spec(5, 10.0, 3);
    let text = good.replacen(
        r#""measure""#,
        r#""vary": {"consensus.election_timeout_max": [300]},
  "points": [{"label": "p", "set": {"consensus.election_timeout_max": 250}}],
  "measure""#,
        1,
    );
    let e = load_spec_str("x.json", &text, None).unwrap_err();
    assert_eq!(e.path, "points[0].set.consensus.election_timeout_max");
    assert!(e.message.contains("also in \"vary\""), "{}", e.message);
}

#[test]
fn a_fault_filtered_by_a_missing_node_is_an_error() {
    let good = spec(5, 10.0, 3);
    let text = good.replacen(
        r#""measure": {"#,
        r#""measure": {"from": {"action": "crash", "node": "zz"}, "#,
        1,
    );
    let sp = load_spec_str("x.json", &text, None).unwrap();
    let e = prepare(&sp, &|_| "x".into()).err().expect("an error");
    assert_eq!(e.path, "measure.from.node");
    assert!(e.message.contains("\"zz\""), "{}", e.message);
}

#[test]
fn empty_point_labels_and_non_numbers_in_references_are_errors() {
    let good = spec(5, 10.0, 3);
    let text = good.replacen(
        r#""measure""#,
        r#""points": [{"label": " "}], "measure""#,
        1,
    );
    let e = load_spec_str("x.json", &text, None).unwrap_err();
    assert_eq!(e.path, "points[0].label");
    let e =
        coracle_sim::sweep::output::read_reference("r.csv", "point,value_ms\na,NaN\n").unwrap_err();
    assert!(e.contains("r.csv:2: value_ms: expected a number"), "{e}");
    // A byte-order mark (spreadsheets write one) is not part of the header.
    let r = coracle_sim::sweep::output::read_reference("r.csv", "\u{feff}point,value_ms\na,1\n")
        .unwrap();
    assert_eq!(r.len(), 1);
}

#[test]
fn a_point_with_its_own_measure_says_so_in_the_summary() {
    let good = spec(5, 10.0, 2);
    let text = good.replacen(
        r#""measure""#,
        r#""points": [{"label": "a"}, {"label": "b", "measure": {"until": "stable", "stable_for": 100}}], "measure""#,
        1,
    );
    let sp = load_spec_str("x.json", &text, None).unwrap();
    let rows = run_every_trial(&sp);
    let s = coracle_sim::sweep::output::summary_json(&sp, &rows, true, "test");
    assert!(s["points"][0].get("measure").is_none());
    assert!(
        s["points"][1]["measure"]
            .as_str()
            .unwrap()
            .contains("stable"),
        "{}",
        s["points"][1]
    );
    assert_eq!(s["points"][1]["unit"], "ms");
    // A point may measure a metric where the spec measures an interval: the spec's interval
    // keys do not apply to it.
    let text = good.replacen(
        r#""measure""#,
        r#""points": [{"label": "a"}, {"label": "b", "measure": {"metric": "protocol_stats.max_term"}}], "measure""#,
        1,
    );
    let sp = load_spec_str("x.json", &text, None).unwrap();
    let rows = run_every_trial(&sp);
    let s = coracle_sim::sweep::output::summary_json(&sp, &rows, true, "test");
    assert_eq!(s["points"][1]["unit"], "value");
    assert!(
        s["points"][1]["measure"]
            .as_str()
            .unwrap()
            .contains("max_term")
    );
    assert!(s["points"][1]["n"].as_u64().unwrap() > 0);
}

/// A 2015 base (either format) can be swept: the sweep names each point's scenario (an
/// extension both 2015 loaders accept), and a web-editor export, which has only nodes and
/// links, is swept as the native config it means, so `consensus.*` paths exist.
#[test]
fn bases_in_the_2015_formats_can_be_varied() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/coracle-2015");
    for base in ["test/simple_star.json", "web-examples/simple_star.json"] {
        let spec = format!(
            r#"{{"trials": 3, "base": "{}", "vary": {{"consensus.election_timeout_min": [100, 140]}},
              "measure": {{"until": "leader_elected"}}}}"#,
            root.join(base).display()
        );
        let sp = load_spec_str("spec.json", &spec, None).unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(sp.points.len(), 2);
        let rows = run_every_trial(&sp);
        assert_eq!(rows.len(), 6, "{base}");
        assert!(rows.iter().all(|r| r.violation.is_none()), "{base}");
    }
    // The web export's native equivalent runs exactly as the export does.
    let web = std::fs::read_to_string(root.join("web-examples/hidden_pair.json")).unwrap();
    let native = coracle_sim::config::web_export_as_native("w.json", &web)
        .unwrap()
        .unwrap();
    let run = |text: &str| {
        let s = coracle_sim::load_str("x.json", text).unwrap();
        let mut r = coracle_sim::run(&s, coracle_sim::RunOptions::seeded(3), &Default::default())
            .unwrap()
            .results;
        r["scenario"].as_object_mut().unwrap().remove("format");
        r.to_string()
    };
    assert!(run(&web) == run(&native.to_string()), "{native}");
    assert_eq!(
        coracle_sim::config::web_export_as_native("n.json", &native.to_string()).unwrap(),
        None
    );
}

/// A trial's notes go into `trials.csv` as its last column (quoted: notes hold commas; several
/// joined by " | ") and come back the same from it, as `coracle merge` reads shards; the
/// summary counts the trials of each point that had each note.
#[test]
fn trial_notes_round_trip_through_trials_csv_and_are_counted_in_the_summary() {
    use coracle_sim::sweep::Status;
    use coracle_sim::sweep::output::{
        csv_field, csv_split, read_trials_csv, summary_json, trials_csv,
    };
    let text = spec(5, 10.0, 3).replacen(
        r#""measure""#,
        r#""points": [{"label": "a,1", "params": {"k": "x,y"}}, {"label": "b"}], "measure""#,
        1,
    );
    let sp = load_spec_str("x.json", &text, None).unwrap();
    let row = |point: usize, trial: u64, notes: &[&str]| TrialRow {
        point,
        trial,
        seed: trial + 10,
        value: Some(1.5),
        status: Status::Censored,
        violation: None,
        notes: notes.iter().map(|n| n.to_string()).collect(),
    };
    let (one, two) = (
        "2 of 3 end \"recovering\", more than f = 1",
        "another, note",
    );
    let rows = vec![
        row(0, 0, &[one]),
        row(0, 1, &[]),
        row(0, 2, &[one, two]),
        row(1, 0, &[]),
    ];
    let csv = trials_csv(&sp, &rows);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "point,trial,seed,value_ms,censored,status,violation,k,notes"
    );
    assert_eq!(
        lines[1],
        r#""a,1",0,10,1.5,true,censored,,"x,y","2 of 3 end ""recovering"", more than f = 1""#
    );
    assert!(lines[2].ends_with(r#","x,y","#), "empty: {}", lines[2]);
    assert!(
        lines[3].ends_with(r#"more than f = 1 | another, note""#),
        "{}",
        lines[3]
    );
    assert_eq!(read_trials_csv(&sp, "t.csv", &csv).unwrap(), rows);
    // A file from before the notes column reads as trials without notes.
    let old: String = csv
        .lines()
        .map(|l| {
            let f = csv_split(l);
            let kept: Vec<String> = f[..f.len() - 1].iter().map(|x| csv_field(x)).collect();
            kept.join(",") + "\n"
        })
        .collect();
    let back = read_trials_csv(&sp, "t.csv", &old).unwrap();
    assert!(back.iter().all(|r| r.notes.is_empty()));
    let s = summary_json(&sp, &rows, true, "test");
    assert_eq!(
        s["points"][0]["notes"],
        serde_json::json!({"2 of 3 end \"recovering\", more than f = 1": 2, "another, note": 1})
    );
    let keys: Vec<&String> = s["points"][0]["notes"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys[0], "2 of 3 end \"recovering\", more than f = 1",
        "sorted"
    );
    assert_eq!(s["points"][1]["notes"], serde_json::json!({}));
}
