//! `coracle experiment`: the published leader-election experiments of
//! `docs/experiments.md`, as ordinary sweep specs (also written to `examples/experiments/`).
//!
//! * `raft-leader-crash`: the Raft paper's Figure 16 (time to replace a crashed leader);
//! * `raft-split-vote`: the thesis's abstract split-vote model beside its closed form;
//! * `raft-wan`: elections over a wide-area network (thesis §9.4–9.5);
//! * `raft-2014-optimisations`: the 2014 OCaml reproduction and its optimisations.
//!
//! The network and disk latencies of `raft-leader-crash` were calibrated once on the
//! 150–300 ms curve and frozen here ([`NET_MIN_MS`], [`NET_MAX_MS`], [`DISK_MS`]); every other
//! curve uses the same values.

use crate::EXIT_USAGE;
use crate::sweep::{RunOpts, execute};
use clap::Args;
use coracle_sim::sweep::output::sample_of;
use coracle_sim::sweep::splitvote;
use coracle_sim::sweep::{Spec, TrialRow};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// Calibrated one-way network latency of `raft-leader-crash`: uniform on [min, max] ms.
pub const NET_MIN_MS: f64 = 1.0;
/// See [`NET_MIN_MS`].
pub const NET_MAX_MS: f64 = 2.0;
/// Calibrated duration of one durable write (term, vote or log entries), ms.
pub const DISK_MS: f64 = 2.0;

#[derive(Args)]
pub struct ExperimentArgs {
    /// The experiment (see --list).
    #[arg(required_unless_present_any = ["list", "write_examples"])]
    pub name: Option<String>,
    /// List the experiments.
    #[arg(long)]
    pub list: bool,
    /// Trials per point (default: as published).
    #[arg(long, allow_negative_numbers = true)]
    pub trials: Option<i64>,
    /// Only these points (comma-separated labels).
    #[arg(long, value_delimiter = ',')]
    pub points: Option<Vec<String>>,
    /// (Calibration, raft-leader-crash) one-way latency U[MIN, MAX] ms instead of the frozen values.
    #[arg(long, value_name = "MIN,MAX", value_delimiter = ',')]
    pub net_ms: Option<Vec<f64>>,
    /// (Calibration, raft-leader-crash) duration of a durable write, ms, instead of the frozen value.
    #[arg(long, value_name = "MS")]
    pub disk_ms: Option<f64>,
    /// Write the experiment's sweep spec to this file instead of running it.
    #[arg(long, value_name = "FILE")]
    pub write_spec: Option<PathBuf>,
    /// (Maintenance) write every experiment's spec into this folder (examples/experiments).
    #[arg(long, value_name = "DIR", hide = true)]
    pub write_examples: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunOpts,
}

/// The experiments: name and one-line description.
pub const EXPERIMENTS: &[(&str, &str)] = &[
    (
        "raft-leader-crash",
        "Raft paper Figure 16: time to replace a crashed leader, 11 timeout ranges, 10,100 trials",
    ),
    (
        "raft-split-vote",
        "thesis §9.1-9.3: split-vote probability of the first election beside the closed form",
    ),
    (
        "raft-wan",
        "thesis §9.4-9.5: elections over a WAN (30-40 ms), 0/1/2 servers failed, same/different logs",
    ),
    (
        "raft-2014-optimisations",
        "2014 OCaml reproduction: original, fixed candidate timeout, backoff, both",
    ),
];

/// A number as an integer when it is one (so the specs read naturally).
fn num(x: f64) -> Value {
    let r = (x * 1e6).round() / 1e6;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        json!(r as i64)
    } else {
        json!(r)
    }
}

fn uniform(a: f64, b: f64) -> Value {
    json!({"dist": "uniform", "min": num(a), "max": num(b)})
}

/// The spec of experiment `name`.
pub fn spec_json(name: &str) -> Option<Value> {
    match name {
        "raft-leader-crash" => Some(leader_crash()),
        "raft-split-vote" => Some(split_vote()),
        "raft-wan" => Some(wan()),
        "raft-2014-optimisations" => Some(optimisations()),
        _ => None,
    }
}

// ------------------------------------------------------------------ Figure 16

/// Timeline, workload and horizon of one Figure 16 point (times in ms); the procedure is
/// described in docs/experiments.md.
fn crash_schedule(tmin: f64, tmax: f64, net: (f64, f64), d: f64) -> (Value, Value, f64) {
    let (a, b) = net;
    let lc = 1.0;
    let h = tmin / 2.0;
    // Before the measured part, clocks are slowed so that nothing happens needlessly: s1 runs
    // at 1/4 speed (its election timeout and heartbeat interval are 4x longer) and s2..s5 at
    // 1/10, so s1 wins the first election (retrying if its own candidacy times out) long
    // before any of them times out, and sends few heartbeats.
    let start = 4.0 * tmax + 4.0 * d + 4.0 * b + 10.0;
    // The first write has completed (the client learns the leader) before the pause.
    let pause = start + 2.0 * d + 2.0 * b + 2.0 * lc + 5.0;
    // The pause lasts 4.5 (slow) heartbeat intervals: s1's heartbeat timer fires during it;
    // the second write reaches s1 after that, at 4.25 intervals.
    let period = pause + 4.25 * h - lc - start;
    let resume = pause + 4.5 * h;
    // Between the heartbeat round's arrival at s4/s5 (≤ resume + d + b) and the write
    // round's (≥ resume + 2d + a).
    let cut = resume + d + (d + a + b) / 2.0;
    let crash = resume + d;
    let within = 10_000.0;
    let termination = crash + h + within + 1.0;
    let mut timeline = vec![
        json!({"at": num(pause), "action": "pause", "node": "s1"}),
        json!({"at": num(pause), "action": "clock", "node": "s1", "rate": num(h / (h + d))}),
    ];
    for i in 2..=5 {
        // Normal speed from the synchronised round on (messages still in flight at the pause
        // re-arm slow timers).
        timeline.push(
            json!({"at": num(resume), "action": "clock", "node": format!("s{i}"), "rate": 1}),
        );
    }
    timeline.extend([
        json!({"at": num(resume), "action": "resume", "node": "s1"}),
        json!({"at": num(cut), "action": "partition", "from": ["s1"], "to": ["s4", "s5"]}),
        json!({"at": num(crash), "delay": uniform(0.0, h), "action": "crash", "node": "s1"}),
    ]);
    let workload = json!({"type": "interval", "min": num(period), "max": num(period),
        "start": num(start), "max_ops": 2, "read_fraction": 0, "keys": 1});
    (Value::Array(timeline), workload, termination)
}

fn leader_crash() -> Value {
    leader_crash_with((NET_MIN_MS, NET_MAX_MS), DISK_MS)
}

/// Figure 16 with one-way latency U[net.0, net.1] and disk writes of `d` ms (the calibration
/// varies these).
pub fn leader_crash_with(net: (f64, f64), d: f64) -> Value {
    let (a, b) = net;
    let lat = uniform(a, b);
    let late = uniform(a + d, b + d);
    let mut nodes = vec![json!({"id": "s1", "type": "server", "clock": {"rate": 0.25}})];
    for i in 2..=5 {
        nodes.push(json!({"id": format!("s{i}"), "type": "server", "clock": {"rate": 0.1}}));
    }
    nodes.push(json!({"id": "c1", "type": "client"}));
    let mut links = Vec::new();
    for i in 1..=5 {
        for j in i + 1..=5 {
            if i == 1 && j >= 4 {
                links.push(json!({"from": "s1", "to": format!("s{j}"), "latency": late, "reverse": {"latency": lat}}));
            } else {
                links.push(json!({"from": format!("s{i}"), "to": format!("s{j}")}));
            }
        }
    }
    for j in 1..=5 {
        links.push(json!({"from": "c1", "to": format!("s{j}"), "latency": 1}));
    }
    let (timeline, workload, termination) = crash_schedule(150.0, 300.0, (a, b), d);
    let base = json!({
        "name": "raft-leader-crash 150-300",
        "description": "Figure 16 of the Raft paper, one trial: five servers, the leader s1 crashes uniformly within a heartbeat interval after a synchronised heartbeat round; s4 and s5 lack the newest entry, so only s2 or s3 can win. Measure: the time until every live server has received the new leader's first heartbeat.",
        "termination": num(termination),
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 75},
        "network": {"defaults": {"latency": lat}, "nodes": nodes, "links": links},
        "storage": {"latency": num(d)},
        "timeline": timeline,
        "workload": workload,
    });
    let ranges: &[(f64, f64, u64)] = &[
        (150.0, 150.0, 100),
        (150.0, 151.0, 1000),
        (150.0, 155.0, 1000),
        (150.0, 175.0, 1000),
        (150.0, 200.0, 1000),
        (150.0, 300.0, 1000),
        (12.0, 24.0, 1000),
        (25.0, 50.0, 1000),
        (50.0, 100.0, 1000),
        (100.0, 200.0, 1000),
        (150.0, 300.0, 1000),
    ];
    let points: Vec<Value> = ranges
        .iter()
        .enumerate()
        .map(|(k, &(lo, hi, n))| {
            let (timeline, workload, termination) = crash_schedule(lo, hi, (a, b), d);
            json!({
                // 150-300 is on both graphs of Figure 16: two independent runs.
                "label": if k == ranges.len() - 1 { format!("{lo}-{hi}-scale") } else { format!("{lo}-{hi}") },
                "trials": n,
                "set": {
                    "consensus.election_timeout_min": num(lo),
                    "consensus.election_timeout_max": num(hi),
                    "consensus.heartbeat_interval": num(lo / 2.0),
                    "termination": num(termination),
                    "timeline": timeline,
                    "workload": workload,
                }
            })
        })
        .collect();
    json!({
        "name": "raft-leader-crash",
        "description": format!("Raft paper §9.3 Figure 16 (Ongaro's thesis §9.4): time to replace a crashed leader. Five servers; one-way latency U[{a}, {b}] ms, {d} ms per durable write (calibrated once on the 150-300 curve, docs/experiments.md); heartbeat = half the minimum timeout; the leader crashes uniformly within a heartbeat interval after a synchronised heartbeat round; two of the four survivors lack the newest entry. Measure: from the crash until every live server has received the new leader's first heartbeat; censored after 10 s."),
        "seed": 2014,
        "base": base,
        "measure": {"from": {"action": "crash"}, "until": "leader_known", "within": 10000},
        "points": points,
        "published": {
            "source": "Ongaro & Ousterhout 2014, §9.3 (text of Figure 16)",
            "points": {
                "150-150": {"p1": "> 10000 (\"consistently took longer than 10 seconds\")"},
                "150-155": {"p50": 287},
                "150-200": {"max": 513},
                "12-24": {"mean": 35, "max": 152}
            }
        }
    })
}

// ------------------------------------------------------------------ split votes

/// Live servers and latency fractions of the split-vote experiment.
const SPLIT_S: &[u64] = &[5, 4, 3];
const SPLIT_LAMBDA: &[f64] = &[0.01, 0.05, 0.1, 0.2, 0.3];
const SPLIT_RANGE: (f64, f64) = (150.0, 300.0);

fn split_vote() -> Value {
    let (tmin, tmax) = SPLIT_RANGE;
    let r = tmax - tmin;
    let nodes: Vec<Value> = (1..=5)
        .map(|i| json!({"id": format!("s{i}"), "type": "server"}))
        .collect();
    let base = json!({
        "name": "raft-split-vote",
        "description": "The thesis's abstract split-vote model: 5 servers start together as followers with timeouts U[150, 300) ms, constant one-way latency, no disk delay. The first election is split exactly when no leader exists by tmax + 2 x latency.",
        "termination": 2000,
        "consensus": {"protocol": "raft", "election_timeout_min": num(tmin), "election_timeout_max": num(tmax), "heartbeat_interval": 75},
        "network": {"defaults": {"latency": 15}, "nodes": nodes, "mesh": true},
    });
    let mut points = Vec::new();
    for &s in SPLIT_S {
        for &lam in SPLIT_LAMBDA {
            let l = lam * r;
            let mut set = Map::new();
            set.insert("network.defaults.latency".into(), num(l));
            for k in s + 1..=5 {
                set.insert(format!("network.nodes[{}].up", k - 1), json!(false));
            }
            points.push(json!({
                "label": format!("alive{s}-lambda{lam}"),
                "trials": 2000,
                "params": {"alive": s, "lambda": lam},
                "set": set,
                "measure": {"within": num(tmax + 2.0 * l - 0.01)},
            }));
        }
    }
    json!({
        "name": "raft-split-vote",
        "description": "Ongaro's thesis §9.1-9.3: probability that the first election of a cluster of 5 (s alive) is split, for one-way latency = lambda x the timeout range. A trial is censored exactly when the first round split; the censored fraction is compared with the closed form.",
        "seed": 93,
        "base": base,
        "measure": {"from": {"at": 0}, "until": "leader_elected", "within": 300},
        "points": points,
    })
}

fn split_vote_report(spec: &Spec, rows: &[TrialRow]) {
    outln!("  split votes, simulated (censored fraction) against the closed form:");
    outln!(
        "    {:<22} {:>8} {:>10} {:>10} {:>8}",
        "point",
        "trials",
        "simulated",
        "closed",
        "z"
    );
    for p in &spec.points {
        let alive = p
            .params
            .iter()
            .find(|(k, _)| k == "alive")
            .and_then(|(_, v)| v.as_u64());
        let lam = p
            .params
            .iter()
            .find(|(k, _)| k == "lambda")
            .and_then(|(_, v)| v.as_f64());
        let (Some(s), Some(lam)) = (alive, lam) else {
            continue;
        };
        let smp = sample_of(rows, p.index);
        let n = smp.n() as f64;
        if n == 0.0 {
            continue;
        }
        let sim = smp.censored as f64 / n;
        let cf = splitvote::p_split(5, s, lam);
        let se = (cf * (1.0 - cf) / n).sqrt();
        let z = if se > 0.0 { (sim - cf) / se } else { 0.0 };
        outln!(
            "    {:<22} {:>8} {:>10.4} {:>10.4} {:>8.2}",
            p.label,
            n,
            sim,
            cf,
            z
        );
    }
    outln!(
        "    (closed form: P(split) = 1 - s Σ_j C(s-1,j)/(j+1) λ^(s-1-j) (1-λ)^(j+1), j ≥ ⌊n/2⌋; |z| < 2 is agreement within sampling error)"
    );
}

// ------------------------------------------------------------------ WAN

fn wan() -> Value {
    let nodes: Vec<Value> = (1..=5)
        .map(|i| json!({"id": format!("s{i}"), "type": "server", "up": false}))
        .chain((1..=4).map(|i| json!({"id": format!("c{i}"), "type": "client"})))
        .collect();
    let mut links = Vec::new();
    for i in 1..=5 {
        for j in i + 1..=5 {
            links.push(json!({"from": format!("s{i}"), "to": format!("s{j}")}));
        }
    }
    for c in 1..=4 {
        for j in 1..=5 {
            links.push(json!({"from": format!("c{c}"), "to": format!("s{j}"), "latency": 0.01}));
        }
    }
    // Same logs: the servers are down at time 0 and the live ones boot together at 0 (a cold
    // start; the `recover` actions that boot them are the measured start). The failed ones
    // never boot. (A `recover` of a server that is already up does nothing and is recorded as
    // skipped, so it cannot serve as the marker.)
    let same = |failed: usize| -> Value {
        Value::Array(
            (1..=5 - failed)
                .map(|i| json!({"at": 0, "action": "recover", "node": format!("s{i}")}))
                .collect(),
        )
    };
    let servers_up = |up: bool| -> serde_json::Map<String, Value> {
        (0..5)
            .map(|i| (format!("network.nodes[{i}].up"), Value::Bool(up)))
            .collect()
    };
    // Different logs: s1 (fast clock) leads term 1 and appends four entries while cutting
    // s5, s4, s3, s2 off one after another, so the logs have five different lengths; then
    // every server restarts at once with fresh timers (the measured start).
    let end = 500.0;
    let diff = |failed: usize| -> Value {
        let mut tl = Vec::new();
        let cuts = [(350.0, "s5"), (393.0, "s4"), (436.0, "s3"), (479.0, "s2")];
        let mut cut_so_far: Vec<&str> = Vec::new();
        for (t, n) in cuts {
            cut_so_far.push(n);
            tl.push(json!({"at": num(t), "action": "partition", "from": ["s1"], "to": cut_so_far.clone()}));
        }
        for i in 1..=5 {
            tl.push(json!({"at": num(end), "action": "crash", "node": format!("s{i}")}));
        }
        tl.push(json!({"at": num(end), "action": "heal"}));
        tl.push(json!({"at": num(end), "action": "clock", "node": "s1", "rate": 1}));
        for i in 1..=(5 - failed) {
            tl.push(json!({"at": num(end), "action": "recover", "node": format!("s{i}")}));
        }
        Value::Array(tl)
    };
    let diff_workload = json!({"type": "interval", "min": 1000, "max": 1000, "max_ops": 1, "read_fraction": 0, "keys": 1,
    "clients": {
        "c1": {"type": "interval", "min": 1000, "max": 1000, "max_ops": 1, "read_fraction": 0, "keys": 1, "start": 351},
        "c2": {"type": "interval", "min": 1000, "max": 1000, "max_ops": 1, "read_fraction": 0, "keys": 1, "start": 394},
        "c3": {"type": "interval", "min": 1000, "max": 1000, "max_ops": 1, "read_fraction": 0, "keys": 1, "start": 437},
        "c4": {"type": "interval", "min": 1000, "max": 1000, "max_ops": 1, "read_fraction": 0, "keys": 1, "start": 480}
    }});
    let base = json!({
        "name": "raft-wan",
        "description": "Elections over a wide-area network: 5 servers, one-way latency U(30, 40) ms, election timeouts U(300, 600) ms, heartbeat 150 ms, no disk delay. Measure: the time at which the eventual stable leader (leader for 1 s) wins.",
        "termination": 20000,
        "consensus": {"protocol": "raft", "election_timeout_min": 300, "election_timeout_max": 600, "heartbeat_interval": 150, "client_max_attempts": 1},
        "network": {"defaults": {"latency": uniform(30.0, 40.0)}, "nodes": nodes, "links": links},
        "timeline": same(0),
    });
    let mut points = Vec::new();
    for failed in 0..=2usize {
        points.push(json!({
            "label": format!("{failed}-failed/same-logs"),
            "trials": 10000,
            "params": {"failed": failed, "logs": "same"},
            "set": {"timeline": same(failed)},
        }));
    }
    for failed in 0..=2usize {
        // All servers up at 0: s1 leads a first term that builds the different logs.
        let mut set = servers_up(true);
        set.insert("timeline".into(), diff(failed));
        set.insert("network.nodes[0].clock".into(), json!({"rate": 4}));
        set.insert("workload".into(), diff_workload.clone());
        set.insert("termination".into(), json!(20500));
        // A write sent to a follower is redirected to s1 (its second send); with one send it
        // failed there and s1's log did not grow (an audit found the five logs equal in 40 %
        // of the trials and all different in 1 of 400).
        set.insert("consensus.client_max_attempts".into(), json!(2));
        points.push(json!({
            "label": format!("{failed}-failed/different-logs"),
            "trials": 10000,
            "params": {"failed": failed, "logs": "different"},
            "set": set,
        }));
    }
    json!({
        "name": "raft-wan",
        "description": "Ongaro's thesis §9.4-9.5: elections over a WAN. 0, 1 or 2 servers failed from the start (s5, then s4); same logs (a cold start: the live servers boot together at 0) or five different log lengths (s1 > s2 > s3 > s4 > s5, built by a first term, then every server restarted at once). Measure: from the start (the first recover action) to the election of the leader that then lasts 1 s.",
        "seed": 945,
        "base": base,
        "measure": {"from": {"action": "recover"}, "until": "stable", "stable_for": 1000, "within": 15000},
        "points": points,
    })
}

// ------------------------------------------------------------------ 2014 optimisations

fn optimisations() -> Value {
    let nodes: Vec<Value> = (1..=5)
        .map(|i| {
            if i == 5 {
                // Never times out (not eligible to win), but votes.
                json!({"id": "s5", "type": "server", "clock": {"rate": 0.01}})
            } else {
                json!({"id": format!("s{i}"), "type": "server"})
            }
        })
        .collect();
    let base = json!({
        "name": "raft-2014-optimisations",
        "description": "Cold start of 5 servers (s5 never times out: four of five can win), packet delay normal(5, 3) ms (negative draws redrawn), heartbeat tmin/2, no loss, no disk delay.",
        "termination": 20000,
        "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300, "heartbeat_interval": 75},
        "network": {"defaults": {"latency": {"dist": "normal", "mean": 5, "sd": 3}}, "nodes": nodes, "mesh": true},
    });
    let ranges: &[(f64, f64)] = &[
        (150.0, 151.0),
        (150.0, 155.0),
        (150.0, 175.0),
        (150.0, 200.0),
        (150.0, 300.0),
        (12.0, 24.0),
        (25.0, 50.0),
        (50.0, 100.0),
        (100.0, 200.0),
    ];
    let variants: &[(&str, Value)] = &[
        ("original", json!({})),
        (
            "candidate-timeout",
            json!({"consensus.candidate_timeout": [23, 46]}),
        ),
        ("backoff", json!({"consensus.backoff": true})),
        (
            "both",
            json!({"consensus.candidate_timeout": [23, 46], "consensus.backoff": true}),
        ),
    ];
    let mut points = Vec::new();
    for (v, set) in variants {
        for &(lo, hi) in ranges {
            let mut s = set.as_object().cloned().unwrap_or_default();
            s.insert("consensus.election_timeout_min".into(), num(lo));
            s.insert("consensus.election_timeout_max".into(), num(hi));
            s.insert("consensus.heartbeat_interval".into(), num(lo / 2.0));
            points.push(json!({
                "label": format!("{v}/{lo}-{hi}"),
                "trials": 1000,
                "params": {"variant": v},
                "set": s,
                "measure": {"subtract": uniform(0.0, lo / 2.0)},
            }));
        }
    }
    json!({
        "name": "raft-2014-optimisations",
        "description": "The 2014 OCaml reproduction of Figure 16 and its optimisations: cold start, the time until every live server has received the first leader's first heartbeat, minus U[0, tmin/2) (imitating a crash inside the heartbeat interval). Variants: original; fixed candidate timeout U(23, 46) ms; binary exponential backoff; both.",
        "seed": 2015,
        "base": base,
        "measure": {"from": {"at": 0}, "until": "leader_known", "within": 15000},
        "points": points,
    })
}

// ------------------------------------------------------------------ command

fn filtered(mut v: Value, a: &ExperimentArgs) -> Result<Value, String> {
    if let Some(keep) = &a.points {
        let pts = v["points"].as_array().cloned().unwrap_or_default();
        let labels: Vec<String> = pts
            .iter()
            .filter_map(|p| p["label"].as_str().map(str::to_string))
            .collect();
        for k in keep {
            if !labels.contains(k) {
                return Err(format!(
                    "--points: no point \"{k}\"; points: {}",
                    labels.join(", ")
                ));
            }
        }
        v["points"] = Value::Array(
            pts.into_iter()
                .filter(|p| keep.iter().any(|k| p["label"] == json!(k)))
                .collect(),
        );
        // Published numbers of the points left out go too (a sweep point's label is the
        // point's, or the point's followed by "/" and its varied parameters).
        if let Some(Value::Object(published)) = v.pointer_mut("/published/points") {
            published.retain(|label, _| {
                keep.iter()
                    .any(|k| label == k || label.starts_with(&format!("{k}/")))
            });
        }
    }
    if let Some(n) = a.trials {
        let max = coracle_sim::sweep::spec::MAX_TRIALS;
        if !(1..=max as i64).contains(&n) {
            return Err(format!(
                "--trials: expected a whole number of trials from 1 to {max}, found {n}"
            ));
        }
        for p in v["points"].as_array_mut().into_iter().flatten() {
            p["trials"] = json!(n);
        }
    }
    // The master seed too, so that a written spec runs what the command would have.
    if let Some(seed) = a.run.seed {
        v["seed"] = json!(seed);
    }
    Ok(v)
}

/// The text of a spec file.
pub fn spec_text(v: &Value) -> String {
    coracle_sim::sweep::output::pretty(v)
}

pub fn main(a: ExperimentArgs) -> ExitCode {
    if a.list {
        for (n, d) in EXPERIMENTS {
            outln!("{n:<26} {d}");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &a.write_examples {
        for (n, _) in EXPERIMENTS {
            let p = dir.join(format!("{n}.json"));
            if let Err(e) = std::fs::write(&p, spec_text(&spec_json(n).unwrap_or_default())) {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(EXIT_USAGE);
            }
            outln!("wrote {}", p.display());
        }
        return ExitCode::SUCCESS;
    }
    let name = a.name.clone().unwrap_or_default();
    if a.net_ms
        .as_ref()
        .is_some_and(|v| v.len() != 2 || v[0] > v[1])
    {
        eprintln!("error: --net-ms: expected MIN,MAX with MIN ≤ MAX, such as 1,3");
        return ExitCode::from(EXIT_USAGE);
    }
    let calibrating = a.net_ms.is_some() || a.disk_ms.is_some();
    let v = if calibrating && name == "raft-leader-crash" {
        let net = a
            .net_ms
            .as_ref()
            .map_or((NET_MIN_MS, NET_MAX_MS), |v| (v[0], v[1]));
        Some(leader_crash_with(net, a.disk_ms.unwrap_or(DISK_MS)))
    } else if calibrating {
        eprintln!("error: --net-ms and --disk-ms apply to raft-leader-crash only");
        return ExitCode::from(EXIT_USAGE);
    } else {
        spec_json(&name)
    };
    let Some(v) = v else {
        let names: Vec<&str> = EXPERIMENTS.iter().map(|e| e.0).collect();
        eprintln!(
            "error: unknown experiment \"{name}\"; experiments: {}",
            names.join(", ")
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let v = match filtered(v, &a) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let text = spec_text(&v);
    if let Some(p) = &a.write_spec {
        if let Err(e) = std::fs::write(p, &text) {
            eprintln!("error: {}: {e}", p.display());
            return ExitCode::from(EXIT_USAGE);
        }
        outln!("wrote {}", p.display());
        return ExitCode::SUCCESS;
    }
    let spec = match coracle_sim::sweep::load_spec_str(&format!("<experiment {name}>"), &text, None)
    {
        Ok(s) => s,
        Err(e) => return crate::config_error(&e),
    };
    let extra: &dyn Fn(&Spec, &[TrialRow]) = match name.as_str() {
        "raft-split-vote" => &split_vote_report,
        _ => &|_, _| {},
    };
    execute(spec, &a.run, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presets in examples/experiments/ are exactly what `coracle experiment` runs.
    #[test]
    fn examples_match_the_presets() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/experiments");
        for (n, _) in EXPERIMENTS {
            let want = spec_text(&spec_json(n).unwrap());
            let have = std::fs::read_to_string(dir.join(format!("{n}.json")))
                .unwrap_or_else(|e| panic!("examples/experiments/{n}.json: {e}"));
            assert_eq!(
                have, want,
                "examples/experiments/{n}.json is stale: regenerate with coracle experiment --write-examples examples/experiments"
            );
            coracle_sim::sweep::load_spec_str(n, &want, None).unwrap();
        }
    }
}
