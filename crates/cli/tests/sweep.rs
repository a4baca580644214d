//! `coracle sweep`, `merge`, `experiment`, `plot` and `trace export`, driven as a user would.
//! Small sweeps with few trials and short horizons, so the whole file runs in seconds.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn coracle_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coracle"));
    c.args(args).current_dir(root());
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
        "CORACLE_SHARD_COUNT",
        "RAYON_NUM_THREADS",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("coracle runs")
}

fn coracle(args: &[&str]) -> Output {
    coracle_env(args, &[])
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("coracle-sweep-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Three servers; the leader crashes at a random point of a heartbeat interval after 1 s;
/// the time until every live server knows the new leader, for two timeout ranges.
const SPEC: &str = r#"{
  "name": "small",
  "seed": 7,
  "trials": 12,
  "base": {
    "termination": 4000,
    "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 50},
    "network": {"defaults": {"latency": {"dist": "uniform", "min": 1, "max": 2}},
                "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "c", "type": "server"}],
                "mesh": true},
    "timeline": [{"at": 1000, "delay": {"dist": "uniform", "min": 0, "max": 50}, "action": "crash", "role": "leader"}]
  },
  "vary": {"consensus.election_timeout_max": [200, 300]},
  "measure": {"from": {"action": "crash"}, "until": "leader_known", "within": 2000}
}"#;

fn write_spec(d: &Path, text: &str) -> PathBuf {
    let p = d.join("spec-in.json");
    std::fs::write(&p, text).unwrap();
    p
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file of a sweep output except shard manifests, relative path → bytes.
fn files(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(x) = stack.pop() {
        for e in std::fs::read_dir(&x).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(d).unwrap().display().to_string();
                if rel != "spec-in.json" && rel != "shard.json" {
                    v.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
    }
    v.sort();
    v
}

#[test]
fn same_output_whatever_the_thread_count() {
    let d1 = dir("t1");
    let d2 = dir("t2");
    let spec = write_spec(&d1, SPEC);
    let o1 = coracle_env(
        &["sweep", &s(&spec), "--output-dir", &s(&d1)],
        &[("RAYON_NUM_THREADS", "1")],
    );
    assert!(o1.status.success(), "{}", out(&o1));
    let o2 = coracle_env(
        &[
            "sweep",
            &s(&spec),
            "--output-dir",
            &s(&d2),
            "--threads",
            "2",
        ],
        &[],
    );
    assert!(o2.status.success(), "{}", out(&o2));
    assert_eq!(read(&d1.join("trials.csv")), read(&d2.join("trials.csv")));
    assert_eq!(
        read(&d1.join("summary.json")),
        read(&d2.join("summary.json"))
    );
    assert_eq!(files(&d1), files(&d2));
    // The CSV: header with the fixed columns and the varied parameter, 24 rows.
    let csv = read(&d1.join("trials.csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "point,trial,seed,value_ms,censored,status,violation,consensus.election_timeout_max,notes"
    );
    assert_eq!(lines.count(), 24);
    // The summary has every statistic.
    let sum: Value = serde_json::from_str(&read(&d1.join("summary.json"))).unwrap();
    let p0 = &sum["points"][0];
    for k in [
        "n",
        "censored",
        "mean",
        "sd",
        "p1",
        "p5",
        "p10",
        "p25",
        "p50",
        "p75",
        "p90",
        "p95",
        "p99",
        "max",
        "ci95_mean",
        "ci95_median",
    ] {
        assert!(p0.get(k).is_some(), "summary lacks {k}: {p0}");
    }
    assert_eq!(p0["n"], 12);
    // Downtime is at least part of a timeout and well under the censoring limit.
    let p50 = p0["p50"].as_f64().unwrap();
    assert!(p50 > 80.0 && p50 < 500.0, "p50 {p50}");
    for f in [
        "cdf.svg",
        "cdf-log.svg",
        "summary.svg",
        "by-consensus-election-timeout-max.svg",
    ] {
        assert!(read(&d1.join(f)).starts_with("<svg"), "{f}");
    }
}

/// Runs `spec` as `n` shards into directories `NAME1`..`NAMEn` (with `extra` arguments),
/// asserting each succeeds; the directories and the outputs.
fn run_shards(spec: &Path, name: &str, n: usize, extra: &[&str]) -> Vec<(PathBuf, Output)> {
    (1..=n)
        .map(|k| {
            let d = dir(&format!("{name}{k}"));
            let shard = format!("{k}/{n}");
            let mut args = vec!["sweep", "--output-dir"];
            let (spec, ds) = (s(spec), s(&d));
            args.extend([ds.as_str(), spec.as_str(), "--shard", shard.as_str()]);
            args.extend(extra);
            let o = coracle(&args);
            assert!(o.status.success(), "{}", out(&o));
            (d, o)
        })
        .collect()
}

#[test]
fn sharded_and_merged_is_byte_identical() {
    let whole = dir("whole");
    let spec = write_spec(&whole, SPEC);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&whole)]);
    assert!(o.status.success(), "{}", out(&o));
    let shards: Vec<PathBuf> = run_shards(&spec, "shard", 3, &[])
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    for d in &shards {
        assert!(!d.join("summary.json").exists());
    }
    // Shard 2 again from the Slurm variables (array 1-3) and the Kubernetes index (0-based).
    let slurm = dir("slurm");
    let o = coracle_env(
        &["sweep", &s(&spec), "--output-dir", &s(&slurm)],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        read(&slurm.join("trials.csv")),
        read(&shards[1].join("trials.csv"))
    );
    let k8s = dir("k8s");
    let o = coracle_env(
        &["sweep", &s(&spec), "--output-dir", &s(&k8s)],
        &[("JOB_COMPLETION_INDEX", "1"), ("CORACLE_SHARD_COUNT", "3")],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        read(&k8s.join("trials.csv")),
        read(&shards[1].join("trials.csv"))
    );
    // An array id without its count is an error, not every trial.
    let o = coracle_env(
        &["sweep", &s(&spec), "--output-dir", &s(&dir("nocount"))],
        &[("SLURM_ARRAY_TASK_ID", "2")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out(&o).contains("SLURM_ARRAY_TASK_COUNT is not"),
        "{}",
        out(&o)
    );
    // Merge in any order, into a directory that does not exist yet.
    let merged = dir("merged").join("new").join("out");
    let o = coracle(&[
        "merge",
        &s(&shards[2]),
        &s(&shards[0]),
        &s(&shards[1]),
        "--output-dir",
        &s(&merged),
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(files(&whole), files(&merged));
    // A missing shard is an error.
    let o = coracle(&[
        "merge",
        &s(&shards[0]),
        &s(&shards[1]),
        "--output-dir",
        &s(&dir("bad")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("missing shard(s) 3 of 3"), "{}", out(&o));
}

/// A copy of a sweep output directory (to tamper with).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Rewrites `file` with `edit` applied to its text.
fn edit(file: &Path, edit: impl FnOnce(String) -> String) {
    let text = edit(read(file));
    std::fs::write(file, text).unwrap();
}

/// Sets (or, with `None`, removes) the coracle_version of a shard's shard.json.
fn set_shard_version(d: &Path, v: Option<&str>) {
    let f = d.join("shard.json");
    let mut m: Value = serde_json::from_str(&read(&f)).unwrap();
    match v {
        Some(v) => m["coracle_version"] = Value::from(v),
        None => {
            m.as_object_mut().unwrap().remove("coracle_version");
        }
    }
    std::fs::write(&f, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// `coracle merge` checks what it combines: the shards' coracle version (recorded in
/// shard.json, and in summary.json, the same sharded or not), every row's seed against the one
/// its point and trial derive from the master seed, rows twice in one shard, rows of another
/// shard or missing, and directories that are not shards at all. Each refusal exits 2 and
/// names the directory or file.
#[test]
fn merge_checks_the_shards_versions_and_rows() {
    let version = env!("CARGO_PKG_VERSION");
    let whole = dir("check-whole");
    let spec = write_spec(&whole, SPEC);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&whole), "-q"]);
    assert!(o.status.success(), "{}", out(&o));
    let sum: Value = serde_json::from_str(&read(&whole.join("summary.json"))).unwrap();
    assert_eq!(sum["coracle_version"], version);
    let shards: Vec<PathBuf> = run_shards(&spec, "check-shard", 3, &["-q"])
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    for d in &shards {
        let m: Value = serde_json::from_str(&read(&d.join("shard.json"))).unwrap();
        assert_eq!(m["coracle_version"], version, "{m}");
    }
    let merge = |dirs: &[&Path], to: &Path| {
        let mut args = vec!["merge".to_string()];
        args.extend(dirs.iter().map(|d| s(d)));
        args.extend(["--output-dir".to_string(), s(to), "-q".to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        coracle(&args)
    };
    let refused = |o: &Output, says: &[&str]| {
        assert_eq!(o.status.code(), Some(2), "{}", out(o));
        for x in says {
            assert!(out(o).contains(x), "expected \"{x}\" in: {}", out(o));
        }
    };
    // A fresh copy of the shards, with the k-th (1-based) changed by `change`.
    let mut copies = 0;
    let mut tampered = |k: usize, change: &dyn Fn(&Path)| -> Vec<PathBuf> {
        copies += 1;
        let ds: Vec<PathBuf> = shards
            .iter()
            .enumerate()
            .map(|(i, from)| {
                let d = dir(&format!("check-copy{copies}-{}", i + 1));
                copy_dir(from, &d);
                d
            })
            .collect();
        change(&ds[k - 1]);
        ds
    };

    // The same version throughout: the merge matches the unsharded run, summary.json's
    // version included.
    let merged = dir("check-merged");
    let o = merge(&[&shards[0], &shards[1], &shards[2]], &merged);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(files(&whole), files(&merged));

    // Shards of two versions: refused, naming both versions and both directories.
    let ds = tampered(2, &|d| set_shard_version(d, Some("0.0.1-other")));
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &dir("check-out"));
    refused(
        &o,
        &[
            "the shards were run by different coracle versions",
            &format!("{} by coracle {version}", s(&ds[0])),
            &format!("{} by coracle 0.0.1-other", s(&ds[1])),
        ],
    );
    // A shard that records no version cannot be checked: refused.
    let ds = tampered(3, &|d| set_shard_version(d, None));
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &dir("check-out"));
    refused(&o, &[&s(&ds[2].join("shard.json")), "no coracle_version"]);
    // Shards all of another version than the merging coracle: merged, with a warning, and
    // summary.json records the version that ran the trials.
    let ds = tampered(1, &|_| {});
    for d in &ds {
        set_shard_version(d, Some("0.0.1-other"));
    }
    let to = dir("check-other-version");
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &to);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains(&format!(
            "warning: the shards were run by coracle 0.0.1-other, and this is coracle {version}"
        )),
        "{}",
        out(&o)
    );
    let sum: Value = serde_json::from_str(&read(&to.join("summary.json"))).unwrap();
    assert_eq!(sum["coracle_version"], "0.0.1-other");

    // A row whose seed is not the one its point and trial derive: refused, with the file,
    // the row, both seeds and the likely cause.
    let csv = read(&shards[1].join("trials.csv"));
    let row = csv.lines().nth(1).unwrap().to_string();
    let f = row.split(',').collect::<Vec<_>>();
    let (label, trial, seed) = (f[0].to_string(), f[1].to_string(), f[2].to_string());
    let forged: u64 = seed.parse::<u64>().unwrap() ^ 1;
    let ds = tampered(2, &|d| {
        let forged_row = row.replacen(&format!(",{seed},"), &format!(",{forged},"), 1);
        edit(&d.join("trials.csv"), |t| t.replacen(&row, &forged_row, 1));
    });
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &dir("check-out"));
    refused(
        &o,
        &[
            &format!(
                "{}:2: point {label} trial {trial}",
                s(&ds[1].join("trials.csv"))
            ),
            &format!("expected seed {seed}"),
            &format!("found {forged}"),
            "the shard's trials.csv was edited or comes from another sweep",
        ],
    );
    // A row twice in one shard: said so, with its file and both lines (not "two shards").
    let ds = tampered(1, &|d| {
        edit(&d.join("trials.csv"), |t| {
            let second = t.lines().nth(1).unwrap().to_string();
            format!("{t}{second}\n")
        })
    });
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &dir("check-out"));
    let n = read(&ds[0].join("trials.csv")).lines().count();
    refused(
        &o,
        &[
            &s(&ds[0].join("trials.csv")),
            "appears twice in this shard's trials.csv",
            &format!("(lines 2 and {n})"),
        ],
    );
    assert!(!out(&o).contains("two shards"), "{}", out(&o));
    // A row moved into another shard's file, and the shard that lost it.
    let ds = tampered(1, &|d| {
        let moved = read(&shards[1].join("trials.csv"))
            .lines()
            .nth(1)
            .unwrap()
            .to_string();
        edit(&d.join("trials.csv"), |t| format!("{t}{moved}\n"));
    });
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &dir("check-out"));
    refused(&o, &["belongs to shard 2/3, not 1/3"]);
    let ds = tampered(3, &|d| {
        edit(&d.join("trials.csv"), |t| {
            let mut l: Vec<&str> = t.lines().collect();
            l.remove(1);
            l.join("\n") + "\n"
        })
    });
    let o = merge(&[&ds[0], &ds[1], &ds[2]], &dir("check-out"));
    refused(
        &o,
        &[
            &s(&ds[2].join("trials.csv")),
            "1 of shard 3/3's 8 trials are missing",
            "truncated or edited",
        ],
    );

    // Directories that are not shards: an unsharded sweep's output, and no sweep output.
    let o = merge(&[&shards[0], &whole], &dir("check-out"));
    refused(
        &o,
        &[&format!(
            "{} is not a shard directory (no shard.json): it was written by an unsharded sweep",
            s(&whole)
        )],
    );
    assert!(!out(&o).contains("No such file"), "{}", out(&o));
    let empty = dir("check-empty");
    let o = merge(&[&empty, &shards[0]], &dir("check-out"));
    refused(
        &o,
        &[&format!(
            "{} is not a shard directory (no shard.json): not a sweep output",
            s(&empty)
        )],
    );
}

/// The job-array variables never make a sweep run every trial by mistake: a Kubernetes count
/// without its index, an empty variable, or Slurm and Kubernetes variables together are errors
/// (exit 2, before anything is written), unless `--shard` says which shard this is.
#[test]
fn shard_variables_that_cannot_select_a_shard_are_errors() {
    let d = dir("shard-env");
    let spec = write_spec(&d, SPEC);
    let out_dir = d.join("out");
    let sweep = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["sweep", &s(&spec), "--output-dir", &s(&out_dir), "-q"]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        args.extend(extra.iter().map(|x| x.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        coracle_env(&args, env)
    };
    for (env, says) in [
        (
            &[("CORACLE_SHARD_COUNT", "3")][..],
            "CORACLE_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not: a Kubernetes Job without `completionMode: Indexed` has no JOB_COMPLETION_INDEX",
        ),
        (
            &[("SLURM_ARRAY_TASK_ID", ""), ("SLURM_ARRAY_TASK_COUNT", "3")][..],
            "SLURM_ARRAY_TASK_ID is set but empty",
        ),
        (
            &[("JOB_COMPLETION_INDEX", "1"), ("CORACLE_SHARD_COUNT", "")][..],
            "CORACLE_SHARD_COUNT is set but empty",
        ),
        (
            &[("SLURM_ARRAY_TASK_COUNT", "3")][..],
            "SLURM_ARRAY_TASK_COUNT is set but SLURM_ARRAY_TASK_ID is not",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("JOB_COMPLETION_INDEX", "2"),
                ("CORACLE_SHARD_COUNT", "3"),
            ][..],
            "both Slurm (SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=3) and Kubernetes (JOB_COMPLETION_INDEX=2, CORACLE_SHARD_COUNT=3)",
        ),
    ] {
        let o = sweep(env, &[]);
        assert_eq!(o.status.code(), Some(2), "{env:?}: {}", out(&o));
        assert!(out(&o).contains(says), "{env:?}: {}", out(&o));
        assert!(out(&o).contains("--shard K/N"), "{}", out(&o));
        assert!(
            !out_dir.exists(),
            "{env:?}: the sweep wrote {}",
            s(&out_dir)
        );
    }
    // With both schedulers' variables, an explicit --shard decides.
    let both = [
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("JOB_COMPLETION_INDEX", "2"),
        ("CORACLE_SHARD_COUNT", "3"),
    ];
    let o = sweep(&both, &["--shard", "2/3"]);
    assert!(o.status.success(), "{}", out(&o));
    let m: Value = serde_json::from_str(&read(&out_dir.join("shard.json"))).unwrap();
    assert_eq!((m["shard"].as_u64(), m["of"].as_u64()), (Some(2), Some(3)));
    assert_eq!(read(&out_dir.join("trials.csv")).lines().count(), 1 + 8);
}

/// Two of three diskless VRR replicas crash at once and recover: the cluster stalls for good with
/// every check ok. Each such trial (an interval measure run on the engine's outcome, a metric
/// measure read from the results) carries the results' note in trials.csv, summary.json counts
/// them per point, the report prints them, and shards merge back byte for byte.
const DISKLESS: &str = r#"{
  "name": "diskless",
  "seed": 3,
  "trials": 2,
  "base": {
    "termination": 4000,
    "consensus": {"protocol": "vrr"},
    "network": {"nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"},
                          {"id": "s3", "type": "server"}, {"id": "c1", "type": "client"}], "mesh": true},
    "workload": {"think_time": 10},
    "timeline": [{"at": 2000, "action": "crash", "node": "s1"}, {"at": 2000, "action": "crash", "node": "s2"},
                 {"at": 2500, "action": "recover", "node": "s1"}, {"at": 2500, "action": "recover", "node": "s2"}]
  },
  "points": [{"label": "interval"}, {"label": "metric", "measure": {"metric": "protocol_stats.leader_changes"}}],
  "vary": {"consensus.durable": [false, true]},
  "measure": {"from": {"action": "crash"}, "until": "client_op", "within": 1500}
}"#;

#[test]
fn trials_of_a_diskless_vrr_cluster_that_cannot_recover_carry_its_note() {
    const NOTE: &str = "2 of 3 replicas end recovering, more than f = 1: diskless VRR cannot recover once more than f replicas lost their state at once (the paper's assumption); see `durable` in docs/config.md";
    let whole = dir("diskless");
    let spec = write_spec(&whole, DISKLESS);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&whole), "--no-plots"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains(&format!("\n  note: 4 of 8 trials: {NOTE}\n")),
        "{}",
        out(&o)
    );
    let csv = read(&whole.join("trials.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "point,trial,seed,value_ms,censored,status,violation,consensus.durable,notes"
    );
    assert_eq!(lines.len(), 9);
    for l in &lines[1..] {
        if l.contains("durable=false") {
            // The interval is censored (no client operation completes), the metric is not.
            assert!(l.ends_with(&format!(",false,\"{NOTE}\"")), "{l}");
        } else {
            assert!(l.ends_with(",true,"), "no note: {l}");
        }
    }
    assert!(
        lines[1].starts_with("interval/durable=false,0,") && lines[1].contains(",true,censored,,")
    );
    let sum: Value = serde_json::from_str(&read(&whole.join("summary.json"))).unwrap();
    let points = sum["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for p in points {
        let label = p["point"].as_str().unwrap();
        let want = if label.ends_with("durable=false") {
            serde_json::json!({ NOTE: 2 })
        } else {
            serde_json::json!({})
        };
        assert_eq!(p["notes"], want, "{label}");
    }
    // `--trial` prints the row with its note.
    let o = coracle(&[
        "sweep",
        &s(&whole.join("spec.json")),
        "--trial",
        "metric/durable=false/1",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let row = String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(lines.contains(&row.as_str()), "{row}");
    // Sharded and merged, the notes come back from the shards' trials.csv.
    let mut shards = Vec::new();
    for (d, o) in run_shards(&spec, "diskless-shard", 2, &["--no-plots"]) {
        assert!(
            out(&o).contains(&format!("  note: 2 of 4 trials: {NOTE}\n")),
            "{}",
            out(&o)
        );
        shards.push(d);
    }
    let merged = dir("diskless-merged");
    let o = coracle(&[
        "merge",
        &s(&shards[1]),
        &s(&shards[0]),
        "--output-dir",
        &s(&merged),
        "--no-plots",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains(&format!("  note: 4 of 8 trials: {NOTE}\n")),
        "{}",
        out(&o)
    );
    assert_eq!(files(&whole), files(&merged));
}

/// The leader_known time computed from a results file (crash time from `actions`, role and
/// leader series), to check that `coracle run` replays the trial.
fn leader_known_from_results(r: &Value) -> f64 {
    let crash = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "crash" && a.get("skipped").is_none())
        .unwrap()["t"]
        .as_f64()
        .unwrap();
    let at = |pts: &Value, t: f64| -> Option<Value> {
        pts.as_array()
            .unwrap()
            .iter()
            .rfind(|p| p[0].as_f64().unwrap() <= t)
            .map(|p| p[1].clone())
    };
    let roles = r["series"]["role"].as_array().unwrap();
    let leaders = r["series"]["leader"].as_array().unwrap();
    let mut times: Vec<f64> = roles
        .iter()
        .chain(leaders)
        .flat_map(|s| {
            s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[0].as_f64().unwrap())
        })
        .filter(|&t| t >= crash)
        .collect();
    times.sort_by(f64::total_cmp);
    for t in times {
        let leader = roles.iter().find(|s| {
            let pts = s["points"].as_array().unwrap();
            let last = pts.iter().rfind(|p| p[0].as_f64().unwrap() <= t);
            last.is_some_and(|p| p[1] == 4 && p[0].as_f64().unwrap() >= crash)
        });
        let Some(l) = leader else { continue };
        let ok = roles
            .iter()
            .zip(leaders)
            .all(|(rs, ls)| match at(&rs["points"], t) {
                None => true,
                Some(v) if v == 0 => true,
                Some(_) => at(&ls["points"], t) == Some(l["node"].clone()),
            });
        if ok {
            return t - crash;
        }
    }
    panic!("condition never reached in the results");
}

#[test]
fn a_printed_trial_command_reproduces_its_value() {
    let d = dir("repro");
    let spec = write_spec(&d, SPEC);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d)]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    let line = text
        .lines()
        .find(|l| l.contains("largest value:"))
        .expect("a largest-value line");
    // "coracle run DIR/points/P.json --seed S    (value: coracle sweep DIR/spec.json --trial P/T)"
    let run_cmd: Vec<&str> = line
        .split("coracle run ")
        .nth(1)
        .unwrap()
        .split("    (")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let trial_arg = line.split("--trial ").nth(1).unwrap().trim_end_matches(')');
    let value: f64 = line
        .split(" = ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The sweep's own re-run prints the same row.
    let o = coracle(&["sweep", &s(&d.join("spec.json")), "--trial", trial_arg]);
    assert!(o.status.success(), "{}", out(&o));
    // Every file a re-run line names exists (on an output directory's spec, the points).
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let named = text
        .split_whitespace()
        .filter(|w| w.ends_with(".json"))
        .collect::<Vec<_>>();
    assert!(!named.is_empty(), "{text}");
    for f in named {
        assert!(Path::new(f).exists(), "{f} named in {text}");
    }
    let row = String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        read(&d.join("trials.csv")).lines().any(|l| l == row),
        "row {row} not in trials.csv"
    );
    // With --seed on the original spec, the printed --trial command carries the seed, and
    // running it gives the same row.
    let o = coracle(&["sweep", &s(&spec), "--trial", trial_arg, "--seed", "9"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let rerun = text.lines().find(|l| l.starts_with("re-run:")).unwrap();
    assert!(rerun.contains("--seed 9"), "{rerun}");
    let again = coracle(&["sweep", &s(&spec), "--trial", trial_arg, "--seed", "9"]);
    assert_eq!(text, String::from_utf8_lossy(&again.stdout));
    // `coracle run` of the printed command replays the trial: the same value from its results.
    let results = d.join("r.json");
    let mut args = vec!["run"];
    args.extend(run_cmd.iter().copied());
    let rs = s(&results);
    args.extend(["--output", &rs, "--quiet"]);
    let o = coracle(&args);
    assert!(o.status.success(), "{}", out(&o));
    let r: Value = serde_json::from_str(&read(&results)).unwrap();
    let again = leader_known_from_results(&r);
    assert!(
        (again - value).abs() < 1e-3,
        "run gives {again}, sweep gave {value}"
    );
}

#[test]
fn censored_and_faultless_trials_are_reported_not_dropped() {
    let d = dir("cens");
    // within 1 ms: no election completes that fast.
    let spec = write_spec(
        &d,
        &SPEC
            .replace("\"within\": 2000", "\"within\": 1")
            .replace("\"trials\": 12", "\"trials\": 4"),
    );
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d), "--no-plots"]);
    assert!(o.status.success(), "{}", out(&o));
    let csv = read(&d.join("trials.csv"));
    for l in csv.lines().skip(1) {
        assert!(l.contains(",1,true,censored,"), "{l}");
    }
    let sum: Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
    assert_eq!(sum["points"][0]["censored"], 4);
    assert_eq!(sum["points"][0]["p50"], Value::Null);
    // A fault that never happens (no candidate at 1 s): no_fault, with an empty value.
    let d = dir("nofault");
    let spec = write_spec(
        &d,
        &SPEC
            .replace("\"role\": \"leader\"", "\"role\": \"candidate\"")
            .replace("\"trials\": 12", "\"trials\": 2"),
    );
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d), "--no-plots"]);
    assert!(o.status.success(), "{}", out(&o));
    for l in read(&d.join("trials.csv")).lines().skip(1) {
        assert!(l.contains(",,true,no_fault,"), "{l}");
    }
}

#[test]
fn bad_specs_exit_2_with_file_path_and_expected_found() {
    let d = dir("bad");
    let cases = [
        (
            SPEC.replace("\"trials\": 12", "\"trails\": 12"),
            "unknown key \"trails\"",
        ),
        (
            SPEC.replace(
                "\"vary\": {\"consensus.election_timeout_max\": [200, 300]}",
                "\"vary\": {\"consensus.election_timeout_max\": 300}",
            ),
            "vary.consensus.election_timeout_max: expected a list of values, found a number",
        ),
        (
            SPEC.replace("\"until\": \"leader_known\"", "\"until\": \"leader_know\""),
            "measure.until: unknown value \"leader_know\"",
        ),
        (
            SPEC.replace(
                "\"action\": \"crash\"}, \"until\"",
                "\"action\": \"crsh\"}, \"until\"",
            ),
            "measure.from.action: unknown action \"crsh\"",
        ),
        (
            SPEC.replace("[200, 300]", "[100, 300]"),
            "points/00-election_timeout_max_100.json:5:29: consensus.election_timeout_min: expected",
        ),
        (
            SPEC.replace(
                "\"timeline\": [",
                "\"timeline\": [{\"at\": -1, \"action\": \"heal\"}, ",
            ),
            "base.timeline[0].at",
        ),
        (
            SPEC.replace(
                "{\"from\": {\"action\": \"crash\"}, \"until\": \"leader_known\", \"within\": 2000}",
                "{\"metric\": \"protocol_stats.leader_chnges\"}",
            ),
            "measure.metric: expected a path into the results file, found \"protocol_stats.leader_chnges\": protocol_stats has no key \"leader_chnges\"",
        ),
        (
            SPEC.replace(
                "{\"from\": {\"action\": \"crash\"}, \"until\": \"leader_known\", \"within\": 2000}",
                "{\"metric\": \"protocol_stats\"}",
            ),
            "measure.metric: expected a path to a number (or a boolean) in the results file, found an object",
        ),
        (
            SPEC.replace(
                "\"measure\": {\"from\"",
                "\"published\": {\"points\": {\"election_timeout_max=3000\": {\"p50\": 1}}}, \"measure\": {\"from\"",
            ),
            "published.points.election_timeout_max=3000: expected the label of a point of this sweep",
        ),
        (
            SPEC.replace(
                "\"measure\": {\"from\"",
                "\"published\": {\"points\": {\"election_timeout_max=300\": {\"p5O\": 1}}}, \"measure\": {\"from\"",
            ),
            "did you mean \"p50\"?",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = d.join(format!("bad{i}.json"));
        std::fs::write(&p, text).unwrap();
        let o = coracle(&["sweep", &s(&p), "--output-dir", &s(&d)]);
        assert_eq!(o.status.code(), Some(2), "case {i}: {}", out(&o));
        let e = out(&o);
        assert!(e.contains(want), "case {i}: want {want:?} in {e}");
        assert!(e.contains("error: "), "{e}");
    }
    // Unknown keys come with a suggestion and a position.
    let p = d.join("bad0.json");
    let e = out(&coracle(&["sweep", &s(&p), "--output-dir", &s(&d)]));
    assert!(e.contains("bad0.json:4:"), "{e}");
    assert!(e.contains("did you mean \"trials\""), "{e}");
}

#[test]
fn split_vote_preset_agrees_with_the_closed_form() {
    let d = dir("split");
    let o = coracle(&[
        "experiment",
        "raft-split-vote",
        "--trials",
        "400",
        "--points",
        "alive5-lambda0.3,alive3-lambda0.1",
        "--output-dir",
        &s(&d),
        "--no-plots",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    let mut n = 0;
    for l in text.lines().filter(|l| l.trim_start().starts_with("alive")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 5 && f[2].contains('.') && f[3].contains('.') {
            let z: f64 = f[4].parse().unwrap();
            assert!(z.abs() < 4.0, "{l}");
            n += 1;
        }
    }
    assert_eq!(n, 2, "{text}");
}

#[test]
fn experiments_list_and_write_their_specs() {
    let o = coracle(&["experiment", "--list"]);
    assert!(o.status.success());
    for n in [
        "raft-leader-crash",
        "raft-split-vote",
        "raft-wan",
        "raft-2014-optimisations",
    ] {
        assert!(out(&o).contains(n));
    }
    let d = dir("write");
    let f = d.join("lc.json");
    let o = coracle(&["experiment", "raft-leader-crash", "--write-spec", &s(&f)]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        read(&f),
        read(&root().join("examples/experiments/raft-leader-crash.json"))
    );
    let o = coracle(&["experiment", "raft-nope", "--output-dir", &s(&d)]);
    assert_eq!(o.status.code(), Some(2));
}

/// Every point of every preset measures something: its fault fires in every trial and no
/// safety check fails. (The WAN preset's cold-start points once marked their start with a
/// `recover` of a server that was already up; such a no-op is skipped, so those points
/// silently measured nothing.)
#[test]
fn every_preset_point_fires_its_fault() {
    for name in [
        "raft-leader-crash",
        "raft-split-vote",
        "raft-wan",
        "raft-2014-optimisations",
    ] {
        let d = dir(&format!("fires-{name}"));
        let o = coracle(&[
            "experiment",
            name,
            "--trials",
            "4",
            "--output-dir",
            &s(&d),
            "--no-plots",
            "-q",
        ]);
        assert!(o.status.success(), "{name}: {}", out(&o));
        assert!(!out(&o).contains("never fired"), "{name}: {}", out(&o));
        let sum: Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
        for p in sum["points"].as_array().unwrap() {
            assert_eq!(p["no_fault"], 0, "{name} {}", p["point"]);
            assert_eq!(p["violations"], 0, "{name} {}", p["point"]);
            assert_eq!(p["trials"], 4, "{name} {}", p["point"]);
        }
    }
}

/// `raft-wan`'s different logs are different: just before the restart, the five servers' logs
/// have five lengths, s1's the longest (the clients' writes used to fail at a follower
/// instead of following its redirect to s1, leaving the logs equal in 40 % of the trials).
#[test]
fn raft_wan_builds_five_different_logs() {
    let d = dir("wan-logs");
    let o = coracle(&[
        "experiment",
        "raft-wan",
        "--trials",
        "8",
        "--output-dir",
        &s(&d),
        "--no-plots",
        "-q",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let csv = read(&d.join("trials.csv"));
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let point = d.join("points/03-0-failed_different-logs.json");
    let rows: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("0-failed/different-logs,"))
        .collect();
    assert_eq!(rows.len(), 8);
    for row in rows {
        let seed = row.split(',').nth(col("seed")).unwrap();
        let r = d.join("r.json");
        let o = coracle(&[
            "run",
            &s(&point),
            "--seed",
            seed,
            "--until",
            "499.9",
            "--output",
            &s(&r),
            "-q",
        ]);
        assert!(o.status.success(), "{}", out(&o));
        let v: Value = serde_json::from_str(&read(&r)).unwrap();
        let lens: Vec<u64> = v["nodes"].as_array().unwrap()[..5]
            .iter()
            .map(|n| n["log_len"].as_u64().unwrap())
            .collect();
        let mut sorted = lens.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "seed {seed}: logs {lens:?}");
        assert_eq!(lens, sorted, "seed {seed}: s1 longest, s5 shortest");
    }
}

#[test]
fn a_few_leader_crash_trials_run_as_published() {
    let d = dir("lc");
    let reference = s(&root().join("examples/experiments/reference/raft-leader-crash-150-300.csv"));
    let o = coracle(&[
        "experiment",
        "raft-leader-crash",
        "--trials",
        "60",
        "--points",
        "150-300,12-24",
        "--output-dir",
        &s(&d),
        "--reference",
        &reference,
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let sum: Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
    let p = &sum["points"][0];
    assert_eq!(p["point"], "150-300");
    assert_eq!(p["censored"], 0);
    // At least half the minimum timeout, and the median near the published 171 ms.
    assert!(p["min"].as_f64().unwrap() > 75.0);
    let p50 = p["p50"].as_f64().unwrap();
    assert!((130.0..220.0).contains(&p50), "{p50}");
    let cmp: Value = serde_json::from_str(&read(&d.join("comparison.json"))).unwrap();
    assert!(cmp[0]["ks_distance"].as_f64().unwrap() < 0.3);
    assert!(out(&o).contains("KS"));
}

/// A bad `--reference` is refused before any trial runs (it used to cost the whole sweep).
#[test]
fn a_bad_reference_is_refused_before_the_trials() {
    let d = dir("badref");
    let bad = d.join("ref.csv");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(&bad, "point,value_ms\nlan/a=1,b=2,300\n").unwrap();
    for (reference, says) in [
        (s(&bad), "must be in double quotes"),
        (s(&d.join("missing.csv")), "cannot read the file"),
    ] {
        let o = coracle(&[
            "experiment",
            "raft-leader-crash",
            "--output-dir",
            &s(&d),
            "--reference",
            &reference,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", out(&o));
        assert!(!d.join("trials.csv").exists(), "{}", out(&o));
        assert!(out(&o).contains(says), "{}", out(&o));
    }
}

/// With a duplicating link, every receipt in the Perfetto export is bound to the send of the
/// same packet (matching by message content bound copies to the wrong sends), each by a flow
/// of its own: a second copy's arrow starts at a `(copy)` slice of the send.
#[test]
fn perfetto_flows_follow_packets_through_duplication() {
    let d = dir("dupflows");
    std::fs::create_dir_all(&d).unwrap();
    let cfg = d.join("dup.json");
    std::fs::write(
        &cfg,
        r#"{"termination": 2000, "consensus": {"protocol": "raft"},
            "network": {"nodes": [{"id": "s1", "type": "server"}, {"id": "s2", "type": "server"},
                                  {"id": "s3", "type": "server"}, {"id": "c1", "type": "client"}],
                        "links": [{"from": "s1", "to": "s2", "duplicate": 1.0}, {"from": "s2", "to": "s3", "duplicate": 0.5},
                                  {"from": "s1", "to": "s3"}, {"from": "c1", "to": "s1"}, {"from": "c1", "to": "s2"}]},
            "workload": {"type": "closed", "think_time": 5}}"#,
    )
    .unwrap();
    let t = d.join("t.jsonl");
    let o = coracle(&["run", &s(&cfg), "--seed", "1", "--trace", &s(&t), "--quiet"]);
    assert!(o.status.success(), "{}", out(&o));
    let v = perfetto_of(&t, &d.join("t.perfetto.json"));
    let events = v["traceEvents"].as_array().unwrap();
    let sends: std::collections::HashMap<u64, &Value> = events
        .iter()
        .filter(|e| e["cat"] == "send")
        .map(|e| (e["bind_id"].as_u64().unwrap(), e))
        .collect();
    let mut receipts: std::collections::HashMap<u64, usize> = Default::default();
    for e in events.iter().filter(|e| e["cat"] == "recv") {
        let id = e["bind_id"].as_u64().expect("every receipt has a flow");
        assert_eq!(e["args"]["msg"], sends[&id]["args"]["msg"], "{e}");
        *receipts.entry(id).or_default() += 1;
    }
    assert!(receipts.values().all(|&n| n == 1), "one receipt per flow");
    let copies = events
        .iter()
        .filter(|e| e["cat"] == "send" && e["name"].as_str().unwrap().ends_with("(copy)"))
        .count();
    assert!(copies > 0, "some copies arrive twice");
}

/// `coracle trace export TRACE --format perfetto --output OUT`, parsed.
fn perfetto_of(trace: &Path, out_file: &Path) -> Value {
    let o = coracle(&[
        "trace",
        "export",
        &s(trace),
        "--format",
        "perfetto",
        "--output",
        &s(out_file),
    ]);
    assert!(o.status.success(), "{}", out(&o));
    serde_json::from_str(&read(out_file)).unwrap()
}

/// `coracle run examples/raft-5.json` with this seed and horizon, writing results and trace.
fn traced_raft5(seed: u64, until_ms: u64, results: &Path, trace: &Path) {
    let (seed, until) = (seed.to_string(), until_ms.to_string());
    let o = coracle(&[
        "run",
        "examples/raft-5.json",
        "--seed",
        &seed,
        "--until",
        &until,
        "--output",
        &s(results),
        "--trace",
        &s(trace),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", out(&o));
}

#[test]
fn plot_and_trace_export() {
    let d = dir("plot");
    let r = d.join("r.json");
    let t = d.join("t.jsonl");
    traced_raft5(3, 600, &r, &t);
    let o = coracle(&["plot", &s(&r), "--trace", &s(&t), "--output-dir", &s(&d)]);
    assert!(o.status.success(), "{}", out(&o));
    for f in ["term.svg", "roles.svg", "commits.svg", "latency.svg"] {
        assert!(read(&d.join(f)).starts_with("<svg"), "{f}");
    }
    let v = perfetto_of(&t, &d.join("p.json"));
    let ev = v["traceEvents"].as_array().unwrap();
    let tracks = ev.iter().filter(|e| e["name"] == "thread_name").count();
    assert_eq!(tracks, 8, "one track per node");
    let o = coracle(&["trace", "export", &s(&t), "--format", "shiviz"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines().nth(1).unwrap().contains("{\""),
        "{}",
        &text[..200.min(text.len())]
    );
    let o = coracle(&["plot", &s(&t), "--output-dir", &s(&d)]);
    assert_eq!(o.status.code(), Some(2));
    // Something that is not a trace, given as the trace: refused, not an empty chart.
    let o = coracle(&["plot", &s(&r), "--trace", &s(&r), "--output-dir", &s(&d)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("invalid JSON"), "{}", out(&o));
    // The trace of another run: refused.
    let other = d.join("other.jsonl");
    traced_raft5(4, 900, &d.join("other.json"), &other);
    let o = coracle(&[
        "plot",
        &s(&r),
        "--trace",
        &s(&other),
        "--output-dir",
        &s(&d),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out(&o).contains("expected the trace of the run"),
        "{}",
        out(&o)
    );
}

/// Metric paths into parts of the results that only fill in during a run are accepted.
#[test]
fn metric_paths_into_run_time_parts_are_accepted() {
    let d = dir("metric");
    for path in [
        "protocol_stats.unavailability_windows[0][1]",
        "nodes[1].counters.elections_started",
        "checks.invariants.violation.time_ms",
        "network.messages_by_type.request_vote",
    ] {
        let text = SPEC
            .replace(
                "{\"from\": {\"action\": \"crash\"}, \"until\": \"leader_known\", \"within\": 2000}",
                &format!("{{\"metric\": \"{path}\"}}"),
            )
            .replace("\"trials\": 12", "\"trials\": 2");
        let p = write_spec(&d, &text);
        let o = coracle(&["sweep", &s(&p), "--output-dir", &s(&d), "-q"]);
        assert!(o.status.success(), "{path}: {}", out(&o));
    }
}

/// A reused output directory keeps only the new sweep's outputs.
#[test]
fn a_reused_output_directory_holds_one_sweep() {
    let d = dir("reuse");
    let spec = write_spec(&d, SPEC);
    std::fs::create_dir_all(d.join("points")).unwrap();
    for stale in [
        "comparison.json",
        "by-old.svg",
        "points/99-old.json",
        "shard.json",
    ] {
        std::fs::write(d.join(stale), "stale").unwrap();
    }
    std::fs::write(d.join("notes.txt"), "mine").unwrap();
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d), "--threads", "1"]);
    assert!(o.status.success(), "{}", out(&o));
    for stale in [
        "comparison.json",
        "by-old.svg",
        "points/99-old.json",
        "shard.json",
    ] {
        assert!(!d.join(stale).exists(), "{stale} left over");
    }
    assert!(d.join("notes.txt").exists(), "other files are left alone");
    assert!(d.join("summary.json").exists());
}

/// A point measuring a metric in a sweep of times keeps its statistics but stays off the
/// charts' time axis (said on the terminal).
#[test]
fn a_point_measuring_another_quantity_is_left_out_of_the_charts() {
    let d = dir("mixed");
    let text = SPEC.replace(
        r#""vary": {"consensus.election_timeout_max": [200, 300]},"#,
        r#""points": [{"label": "time"}, {"label": "terms", "measure": {"metric": "protocol_stats.max_term"}}],"#,
    );
    let spec = write_spec(&d, &text);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d)]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains(
            "left out of the charts, measuring another quantity than the spec (ms): terms"
        ),
        "{}",
        out(&o)
    );
    let cdf = read(&d.join("cdf.svg"));
    assert!(!cdf.contains("terms"));
    let summary: Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
    assert_eq!(summary["points"][1]["unit"], "value");
}

/// The header names the base measure, and says when points set their own (a point's `within`
/// changes where it censors).
#[test]
fn the_header_says_when_points_set_their_own_measure() {
    let d = dir("pointmeasure");
    let base = SPEC
        .split("\"base\": ")
        .nth(1)
        .unwrap()
        .split(",\n  \"vary\"")
        .next()
        .unwrap();
    let spec = write_spec(
        &d,
        &format!(
            r#"{{"name": "pm", "seed": 7, "base": {base},
                "measure": {{"from": {{"action": "crash"}}, "until": "leader_known", "within": 2000}},
                "points": [{{"label": "a", "trials": 1}},
                           {{"label": "b", "trials": 1, "measure": {{"within": 1500}}}}]}}"#
        ),
    );
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d), "--no-plots"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("censored after 2000 ms (1 of 2 points set their own; see summary.json)"),
        "{}",
        out(&o)
    );
}

// ------------------------------------------------------------------ audit fixes

/// Runs `coracle` in the background (for signals), standard output and error piped.
#[cfg(unix)]
fn spawn(args: &[&str]) -> std::process::Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coracle"));
    c.args(args)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
        "CORACLE_SHARD_COUNT",
        "RAYON_NUM_THREADS",
    ] {
        c.env_remove(k);
    }
    c.spawn().expect("coracle starts")
}

/// Waits until the sweep has written its spec.json (the trials start right after).
#[cfg(unix)]
fn wait_for_start(d: &Path) {
    let t0 = std::time::Instant::now();
    while !d.join("spec.json").exists() {
        assert!(t0.elapsed().as_secs() < 60, "the sweep did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
}

#[cfg(unix)]
fn sigint(c: &std::process::Child) {
    // SAFETY: kill(2) with the pid of a child we started and have not waited for.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGINT);
    }
}

/// Leaves the outputs of `SPEC` (a grid, with a by-parameter chart) in `d`.
fn another_sweeps_outputs(d: &Path) {
    let other = d.join("other-spec.json");
    std::fs::write(&other, SPEC.replace("\"trials\": 12", "\"trials\": 2")).unwrap();
    let o = coracle(&["sweep", &s(&other), "--output-dir", &s(d), "-q"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(d.join("by-consensus-election-timeout-max.svg").exists());
}

/// Many short trials of one point (to be interrupted).
const MANY: &str = r#"{
  "name": "many", "seed": 3, "trials": 2000000,
  "base": {
    "termination": 3000,
    "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 50},
    "network": {"defaults": {"latency": 1}, "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "c", "type": "server"}], "mesh": true},
    "timeline": [{"at": 1000, "action": "crash", "role": "leader"}]
  },
  "points": [{"label": "only"}],
  "measure": {"from": {"action": "crash"}, "until": "leader_known"}
}"#;

/// `timeout -s INT` signals the sweep and then its process group: two SIGINTs microseconds
/// apart are one interruption, which keeps what finished.
#[cfg(unix)]
#[test]
fn two_signals_at_once_are_one_interruption() {
    let d = dir("sig2");
    another_sweeps_outputs(&d);
    let spec = d.join("many.json");
    std::fs::write(&spec, MANY).unwrap();
    let c = spawn(&["sweep", &s(&spec), "--output-dir", &s(&d), "-q"]);
    wait_for_start(&d);
    sigint(&c);
    sigint(&c);
    let o = c.wait_with_output().unwrap();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(130), "{text}");
    assert!(!text.contains("quitting at once"), "{text}");
    let sum: Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
    assert_eq!(sum["complete"], false);
    assert_eq!(sum["points"][0]["point"], "only");
    let rows = read(&d.join("trials.csv")).lines().count() - 1;
    assert!(rows > 0, "{text}");
    assert_eq!(sum["trials"], rows);
    // The report says what an interruption means.
    assert!(text.contains("\"complete\": false"), "{text}");
    assert!(
        text.contains(&format!("partial points: only ({rows} of 2000000 trials)")),
        "{text}"
    );
    assert!(text.contains("there is no resume"), "{text}");
    // Nothing of the earlier sweep is left beside this one's.
    assert!(!d.join("by-consensus-election-timeout-max.svg").exists());
    assert!(!read(&d.join("trials.csv")).contains("election_timeout_max"));
}

/// A second signal more than a second after the first quits at once, says what is lost,
/// and leaves this sweep's spec and points only, never another sweep's results beside them.
#[cfg(unix)]
#[test]
fn a_later_second_signal_quits_at_once_and_says_what_is_lost() {
    let d = dir("sigq");
    another_sweeps_outputs(&d);
    // Trials of a simulated day with clients: many seconds each, so one is still running when
    // the second signal comes (a quit at once does not wait for it).
    let long = r#"{
      "name": "long", "seed": 3, "trials": 50,
      "base": {
        "termination": 86400000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 50},
        "network": {"defaults": {"latency": 1}, "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "c", "type": "server"}, {"id": "k", "type": "client"}, {"id": "l", "type": "client"}], "mesh": true},
        "workload": {"type": "closed", "think_time": 1}
      },
      "points": [{"label": "long"}],
      "measure": {"metric": "protocol_stats.max_term"}
    }"#;
    let spec = d.join("long.json");
    std::fs::write(&spec, long).unwrap();
    let c = spawn(&[
        "sweep",
        &s(&spec),
        "--output-dir",
        &s(&d),
        "-q",
        "--threads",
        "1",
    ]);
    wait_for_start(&d);
    sigint(&c);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sigint(&c);
    let o = c.wait_with_output().unwrap();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(130), "{text}");
    assert!(
        text.contains("quitting at once: the 0 finished trial(s) are lost"),
        "{text}"
    );
    assert!(
        text.contains("holds this sweep's spec.json and points/ only"),
        "{text}"
    );
    assert!(read(&d.join("spec.json")).contains("\"long\""));
    for f in [
        "trials.csv",
        "summary.json",
        "cdf.svg",
        "by-consensus-election-timeout-max.svg",
    ] {
        assert!(!d.join(f).exists(), "{f} of the earlier sweep left over");
    }
}

/// A sweep written into a directory that holds another sweep's outputs replaces them, and an
/// error in the new sweep's points leaves its spec and points, not the old results.
#[test]
fn a_sweep_replaces_another_sweeps_outputs() {
    let d = dir("replace");
    another_sweeps_outputs(&d);
    let pts = SPEC
        .replace(
            "\"vary\": {\"consensus.election_timeout_max\": [200, 300]},",
            "\"points\": [{\"label\": \"x\"}, {\"label\": \"y\", \"set\": {\"consensus.prevote\": true}}],",
        )
        .replace("\"trials\": 12", "\"trials\": 2");
    let spec = write_spec(&d, &pts);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d), "-q"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!d.join("by-consensus-election-timeout-max.svg").exists());
    let csv = read(&d.join("trials.csv"));
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.starts_with("x,") || l.starts_with("y,"))
    );
    // A point whose config is wrong: an error, and no results of the sweep before.
    another_sweeps_outputs(&d);
    let bad = pts.replace("\"consensus.prevote\": true", "\"consensus.prevote\": 3");
    let spec = write_spec(&d, &bad);
    let o = coracle(&["sweep", &s(&spec), "--output-dir", &s(&d), "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(read(&d.join("spec.json")).contains("\"label\": \"y\""));
    for f in [
        "trials.csv",
        "summary.json",
        "by-consensus-election-timeout-max.svg",
    ] {
        assert!(
            !d.join(f).exists(),
            "{f} left beside another sweep's spec.json"
        );
    }
}

/// `--trial` with `--output-dir` writes only the spec and the points: into its own sweep's
/// directory it is fine, into another sweep's it refuses rather than mix them.
#[test]
fn a_single_trial_refuses_another_sweeps_directory() {
    let d = dir("trialdir");
    another_sweeps_outputs(&d);
    let before = read(&d.join("spec.json"));
    // Its own sweep: accepted, the results stay.
    let o = coracle(&[
        "sweep",
        &s(&d.join("spec.json")),
        "--trial",
        "election_timeout_max=200/1",
        "--output-dir",
        &s(&d),
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(d.join("trials.csv").exists());
    assert_eq!(read(&d.join("spec.json")), before);
    // Another sweep: refused, nothing changed.
    let other = write_spec(&d, &SPEC.replace("\"seed\": 7", "\"seed\": 8"));
    let o = coracle(&[
        "sweep",
        &s(&other),
        "--trial",
        "election_timeout_max=200/1",
        "--output-dir",
        &s(&d),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        out(&o).contains("holds the results of another sweep"),
        "{}",
        out(&o)
    );
    assert_eq!(read(&d.join("spec.json")), before);
    // The range of trials, as a person counts it.
    let o = coracle(&[
        "sweep",
        &s(&other),
        "--trial",
        "election_timeout_max=200/12",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out(&o).contains("has trials 0 to 11, found 12"),
        "{}",
        out(&o)
    );
}

/// Measures that can never be met are errors before any trial runs (exit 2, file, path,
/// expected, found); a fault that only the random schedule can make is a warning, before.
#[test]
fn measures_that_can_never_be_met_are_refused_before_running() {
    let d = dir("reach");
    let measure =
        "{\"from\": {\"action\": \"crash\"}, \"until\": \"leader_known\", \"within\": 2000}";
    let no_clients = SPEC.replace(
        measure,
        "{\"from\": {\"action\": \"crash\"}, \"until\": \"client_op\"}",
    );
    let cases = [
        (
            no_clients.clone(),
            "measure.until: expected a condition the scenario can reach, found \"client_op\": the scenario has no clients",
        ),
        (
            SPEC.replace(measure, "{\"from\": {\"action\": \"crash\"}, \"until\": \"stable\", \"stable_for\": 999999}"),
            "measure.stable_for: expected at most 3000 ms (from the earliest start of the interval, 1000 ms, to the scenario's termination, 4000 ms), found 999999",
        ),
        (
            SPEC.replace(measure, "{\"from\": {\"action\": \"partition\"}, \"until\": \"leader_known\"}"),
            "measure.from.action: expected an action the scenario's timeline contains (before its termination at 4000 ms), found \"partition\": the timeline has only crash",
        ),
        (
            SPEC.replace(measure, "{\"from\": {\"action\": \"crash\", \"nth\": 3}, \"until\": \"leader_known\"}"),
            "measure.from.nth: expected at most 1 (the scenario's timeline has 1 \"crash\" action(s)",
        ),
        (
            SPEC.replace(measure, "{\"from\": {\"at\": 20000}, \"until\": \"leader_known\"}"),
            "measure.from.at: expected a time before the scenario's termination (4000 ms), found 20000",
        ),
        (
            SPEC.replace("\"trials\": 12", "\"trials\": -3"),
            "trials: expected a whole number of trials from 1 to 10000000, found -3",
        ),
        (
            SPEC.replace("\"trials\": 12", "\"trials\": 0"),
            "trials: expected a whole number of trials from 1 to 10000000, found 0",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = d.join(format!("never{i}.json"));
        std::fs::write(&p, text).unwrap();
        let o = coracle(&[
            "sweep",
            &s(&p),
            "--output-dir",
            &s(&d.join(format!("o{i}"))),
        ]);
        assert_eq!(o.status.code(), Some(2), "case {i}: {}", out(&o));
        let e = out(&o);
        assert!(e.contains(want), "case {i}: want {want:?} in {e}");
        assert!(e.contains(&format!("never{i}.json:")), "case {i}: {e}");
        assert!(!e.contains("ran "), "case {i}: no trial runs: {e}");
    }
    // The error names the point when the spec has several.
    let o = coracle(&["sweep", &s(&d.join("never0.json")), "--output-dir", &s(&d)]);
    assert!(
        out(&o).contains("(point election_timeout_max=200)"),
        "{}",
        out(&o)
    );
    // Partitions only from the random schedule: a warning before the trials run.
    let chaos = SPEC
        .replace(
            "\"timeline\": [",
            "\"chaos\": {\"start\": 500, \"partition\": {\"rate\": 1, \"duration\": 100}}, \"timeline\": [",
        )
        .replace(measure, "{\"from\": {\"action\": \"partition\"}, \"until\": \"leader_known\"}")
        .replace("\"trials\": 12", "\"trials\": 2");
    let p = write_spec(&d, &chaos);
    let o = coracle(&["sweep", &s(&p), "--output-dir", &s(&d), "--no-plots"]);
    assert!(o.status.success(), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: ")
            && err.contains("measure.from: the timeline has 0 \"partition\" action(s)"),
        "{err}"
    );
    assert!(err.contains("random fault schedule (chaos)"), "{err}");
    // Before the run: the header line comes after the warning on the terminal; here, the
    // warning is on standard error and mentions both points once.
    assert_eq!(err.matches("random fault schedule").count(), 1, "{err}");
}

/// The terminal table marks a mean of the uncensored trials only, and the median's 95 %
/// interval keeps its finite lower bound when the upper one is censored.
#[test]
fn censored_points_mark_their_mean_and_keep_the_median_bound() {
    let d = dir("cimed");
    let o = coracle(&[
        "experiment",
        "raft-split-vote",
        "--points",
        "alive3-lambda0.2",
        "--output-dir",
        &s(&d),
        "--no-plots",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("alive3-lambda0.2") && l.contains("≥hz"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("240.1*"), "{row}");
    assert!(
        text.contains("* mean of the uncensored trials only"),
        "{text}"
    );
    let sum: Value = serde_json::from_str(&read(&d.join("summary.json"))).unwrap();
    let ci = &sum["points"][0]["ci95_median"];
    assert_eq!(ci[0].as_f64(), Some(290.263997), "{ci}");
    assert_eq!(ci[1], Value::Null, "{ci}");
    // --trials says the same range as the spec's trials.
    let o = coracle(&[
        "experiment",
        "raft-split-vote",
        "--trials",
        "0",
        "--output-dir",
        &s(&d),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out(&o).contains("--trials: expected a whole number of trials from 1 to 10000000, found 0"),
        "{}",
        out(&o)
    );
}

/// Charts against a parameter split their points only by the sweep's other axes: raft-wan
/// against `failed` has two lines (same and different logs), the split-vote model one per
/// number alive and no chart against its derived latency; a merged sweep draws the same.
#[test]
fn charts_against_parameters_split_by_the_other_axes_only() {
    let d = dir("axes-wan");
    let o = coracle(&[
        "experiment",
        "raft-wan",
        "--trials",
        "3",
        "--output-dir",
        &s(&d),
        "-q",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let svg = read(&d.join("by-failed.svg"));
    let medians: Vec<&str> = svg
        .lines()
        .filter(|l| l.trim_start().starts_with("median,"))
        .collect();
    assert_eq!(
        medians,
        ["median, logs=same", "median, logs=different"],
        "{svg}"
    );
    let charts: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("by-"))
        .collect();
    assert_eq!(charts, ["by-failed.svg"]);
    // Sharded and merged: the same chart.
    let (a, b, m) = (dir("axes-s1"), dir("axes-s2"), dir("axes-m"));
    for (k, sd) in [("1/2", &a), ("2/2", &b)] {
        let o = coracle(&[
            "experiment",
            "raft-wan",
            "--trials",
            "3",
            "--shard",
            k,
            "--output-dir",
            &s(sd),
            "-q",
        ]);
        assert!(o.status.success(), "{}", out(&o));
    }
    let o = coracle(&["merge", &s(&a), &s(&b), "--output-dir", &s(&m), "-q"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(read(&m.join("by-failed.svg")), svg);

    let d = dir("axes-split");
    let o = coracle(&[
        "experiment",
        "raft-split-vote",
        "--trials",
        "20",
        "--output-dir",
        &s(&d),
        "-q",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!d.join("by-network-defaults-latency.svg").exists());
    let svg = read(&d.join("by-lambda.svg"));
    let medians: Vec<&str> = svg
        .lines()
        .filter(|l| l.trim_start().starts_with("median,"))
        .collect();
    assert_eq!(
        medians,
        ["median, alive=5", "median, alive=4", "median, alive=3"]
    );
    // Tick labels without floating-point noise.
    assert!(!svg.contains("0.15000000000000002"));
    assert!(
        svg.contains(">\n0.15\n<") || svg.contains(">0.15<"),
        "no 0.15 tick"
    );

    let d = dir("axes-crash");
    let o = coracle(&[
        "experiment",
        "raft-leader-crash",
        "--trials",
        "2",
        "--output-dir",
        &s(&d),
        "-q",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    for derived in ["by-termination.svg", "by-consensus-heartbeat-interval.svg"] {
        assert!(!d.join(derived).exists(), "{derived}");
    }
    assert!(d.join("by-consensus-election-timeout-max.svg").exists());
}

/// ShiViz: a node literally called `node_a` keeps its name; `node a` is renamed around it.
#[test]
fn shiviz_keeps_names_that_need_no_change() {
    let d = dir("shiviz");
    let cfg = d.join("sp.json");
    std::fs::write(
        &cfg,
        r#"{"termination": 1000, "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 50},
 "network": {"defaults": {"latency": 1}, "nodes": [{"id": "node a", "type": "server"}, {"id": "node_a", "type": "server"}, {"id": "s 3", "type": "server"}], "mesh": true}}"#,
    )
    .unwrap();
    let t = d.join("t.jsonl");
    let o = coracle(&["run", &s(&cfg), "--seed", "1", "--trace", &s(&t), "--quiet"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = coracle(&["trace", "export", &s(&t), "--format", "shiviz"]);
    assert!(o.status.success(), "{}", out(&o));
    let log = String::from_utf8_lossy(&o.stdout);
    let mut hosts: Vec<&str> = log
        .lines()
        .skip(1)
        .step_by(2)
        .filter_map(|l| l.split_once(' ').map(|x| x.0))
        .collect();
    // Each host is the node it names: the first event's host is the first traced node's.
    let first: Value = serde_json::from_str(read(&t).lines().next().unwrap()).unwrap();
    let expected = match first["node"].as_str().unwrap() {
        "node a" => "node_a~2",
        "node_a" => "node_a",
        _ => "s_3",
    };
    assert_eq!(hosts[0], expected, "{log}");
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts, ["node_a", "node_a~2", "s_3"], "{log}");
}

/// The bundled 150–300 reference is the figure's 1000 trials, and docs/experiments.md quotes
/// its quantiles as `coracle` computes them.
#[test]
fn the_reference_curve_has_the_quantiles_the_docs_quote() {
    let f = root().join("examples/experiments/reference/raft-leader-crash-150-300.csv");
    let r = coracle_sim::sweep::output::read_reference(&s(&f), &read(&f)).unwrap();
    let labels: Vec<&str> = r.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["150-300", "150-300-scale"]);
    let smp = &r[0].1;
    assert_eq!((smp.n(), smp.censored), (1000, 0));
    assert_eq!(smp.values, r[1].1.values, "both points have the same curve");
    let q = |p: f64| format!("{:.1}", smp.quantile(p).unwrap());
    let quoted = format!(
        "min {}, p1 {}, p5 {}, p10 {}, p25 {}, p50 {}, p75 {}, p90 {}, p95 {}, p99 {}, max {} ms",
        q(0.0),
        q(0.01),
        q(0.05),
        q(0.1),
        q(0.25),
        q(0.5),
        q(0.75),
        q(0.9),
        q(0.95),
        q(0.99),
        q(1.0)
    );
    let docs = read(&root().join("docs/experiments.md")).replace('\n', " ");
    assert!(
        docs.contains(&quoted),
        "docs/experiments.md should quote: {quoted}"
    );
}
