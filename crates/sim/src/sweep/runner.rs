//! Running the trials: one engine run per trial (or a few, when the horizon is grown), in
//! parallel with rayon, each trial's seed derived from the master seed and the trial's index.
//!
//! Runs are prefix-stable: running the same scenario and seed to a later horizon replays the
//! same events up to the earlier one. A trial therefore starts with a short horizon (just past
//! the last timeline action plus a window sized from the election timeout) and triples it only
//! while the condition is still pending, up to the measure's `within` or the scenario's
//! `termination`. The value is exactly what a run to the full horizon gives, which is what
//! `coracle run DIR/points/P.json --seed S` replays. (Scenarios with a random fault schedule
//! that stops "at the end of the run" are not prefix-stable; their trials always run to the
//! full horizon.)

use super::measure::{Eval, evaluate, fault_time};
use super::spec::{Condition, Measure, Point, Spec, get_path};
use crate::config::ConfigError;
use crate::engine::{Engine, Outcome, RunOptions, StopReason};
use crate::run::{CheckOptions, cluster_of};
use crate::scenario::Scenario;
use coracle_core::{Cluster, Protocol, Time, ms_to_time, rng, time_to_ms};
use coracle_protocols::raft::Raft;
use rayon::prelude::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a trial has the value it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The condition was reached.
    Ok,
    /// Not reached within the horizon: the value is a lower bound.
    Censored,
    /// The fault never happened (for example a role target nobody held): no value.
    NoFault,
}

impl Status {
    /// Name in `trials.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Censored => "censored",
            Status::NoFault => "no_fault",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Status::Ok),
            "censored" => Some(Status::Censored),
            "no_fault" => Some(Status::NoFault),
            _ => None,
        }
    }
}

/// One finished trial.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialRow {
    /// Point index.
    pub point: usize,
    /// Trial index within the point.
    pub trial: u64,
    pub seed: u64,
    /// Milliseconds (or the metric's value); for censored trials the time observed without
    /// the condition (a lower bound); `None` without a fault.
    pub value: Option<f64>,
    pub status: Status,
    /// The invariant a safety violation broke, if any.
    pub violation: Option<String>,
    /// What the results' `notes` say about how the trial's run ended (a diskless VRR cluster
    /// that cannot recover, say), in order.
    pub notes: Vec<String>,
}

impl TrialRow {
    /// The value when the condition was reached, `None` otherwise (for statistics).
    pub fn sample_value(&self) -> Option<f64> {
        match self.status {
            Status::Ok => self.value,
            _ => None,
        }
    }
}

/// FNV-1a hash of a point label.
fn label_hash(label: &str) -> u64 {
    label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seed of trial `trial` of the point labelled `label` under master seed `master`. It
/// depends on the label, not on the point's position, so removing, adding or reordering
/// points (`coracle experiment --points`) does not change any other point's trials.
pub fn trial_seed(master: u64, label: &str, trial: u64) -> u64 {
    let point = rng::derive_seed(master, rng::purpose::TRIAL, label_hash(label));
    rng::derive_seed(point, rng::purpose::TRIAL, trial)
}

enum Fast {
    Raft(Box<(Raft, Cluster)>),
    None,
}

/// A point ready to run.
pub struct Prepared {
    pub scenario: Scenario,
    fast: Fast,
    /// The scenario's termination.
    horizon: Time,
    /// Latest time a timeline action can fire (with its maximum delay).
    last_action: Time,
    /// First window after the last action.
    window: Time,
    prefix_stable: bool,
}

fn delay_max(d: &crate::dist::Delay) -> Time {
    use crate::dist::Delay::*;
    match *d {
        Constant { value } => ms_to_time(value),
        Uniform { max, .. } => ms_to_time(max),
        _ => ms_to_time(d.mean_ms() * 4.0),
    }
}

/// Resolves and validates every point's scenario. `file_of(point)` names the point in error
/// messages (the path its materialised config is written to). A measure that can never be
/// met is an error ([`super::reach`]); see [`prepare_with_warnings`] for the warnings.
pub fn prepare(
    spec: &Spec,
    file_of: &dyn Fn(&Point) -> String,
) -> Result<Vec<Prepared>, ConfigError> {
    prepare_with_warnings(spec, file_of).map(|(p, _)| p)
}

/// [`prepare`], and the warnings about measures whose fault depends on the random fault
/// schedule (to print before the trials run).
pub fn prepare_with_warnings(
    spec: &Spec,
    file_of: &dyn Fn(&Point) -> String,
) -> Result<(Vec<Prepared>, Vec<String>), ConfigError> {
    let prepared = prepare_points(spec, file_of)?;
    if let (Measure::Metric { path }, Some(first)) = (&spec.measure, prepared.first()) {
        check_metric_path(spec, first, path)?;
    }
    let warnings = super::reach::check(spec, &prepared)?;
    Ok((prepared, warnings))
}

/// Parts of the results document whose keys or length depend on what happened in the run
/// (message types seen, latency statistics once there is a sample, windows, a violation, the
/// counters and state of a node once it has started): a path through them cannot be checked
/// before the trials run.
const OPEN_ENDED: &[&str] = &[
    "messages_by_type",
    "latency_ms",
    "actions",
    "series",
    "warnings",
    "notes",
    "unavailability_windows",
    "violation",
];

/// An error at `path` of the spec file, located in its text when the file can be read again
/// (a preset's built-in spec has no file: no position).
pub(super) fn spec_error(spec: &Spec, path: &str, message: String) -> ConfigError {
    let text = std::fs::read_to_string(&spec.file).unwrap_or_default();
    crate::config::Source {
        file: spec.file.clone(),
        text,
    }
    .error(path, message)
}

/// Checks a `measure.metric` path against the results of the first point run for 0 ms, so a
/// typo is an error naming the nearest keys instead of every trial coming back censored. Only
/// the fixed parts are checked: the path is accepted once it enters an open-ended part or a
/// value that is still `null`.
fn check_metric_path(spec: &Spec, first: &Prepared, path: &str) -> Result<(), ConfigError> {
    use super::spec::Step;
    let error = |message: String, hint: Option<String>| ConfigError {
        hint,
        ..spec_error(spec, "measure.metric", message)
    };
    let steps = super::spec::parse_path(path).map_err(|e| error(e, None))?;
    let opts = RunOptions {
        until: Some(0),
        ..RunOptions::seeded(spec.seed)
    };
    let checks = CheckOptions {
        skip_linearizability: true,
        ..Default::default()
    };
    let doc = crate::run::run(&first.scenario, opts, &checks)?.results;
    let mut cur = &doc;
    let mut at = String::new();
    for (i, step) in steps.iter().enumerate() {
        let open =
            matches!(steps[..i].last(), Some(Step::Key(k)) if OPEN_ENDED.contains(&k.as_str()));
        // Inside `nodes[i]` (a node reports counters and state once it has started).
        let in_node = i >= 2
            && matches!((&steps[i - 2], &steps[i - 1]), (Step::Key(k), Step::Index(_)) if k == "nodes");
        if open || in_node || cur.is_null() {
            return Ok(());
        }
        let next = match step {
            Step::Key(k) => cur.get(k).ok_or_else(|| {
                let keys: Vec<String> = cur
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                let within = if at.is_empty() { "the results" } else { &at };
                error(
                    format!("expected a path into the results file, found \"{path}\": {within} has no key \"{k}\""),
                    Some(crate::config::error::suggest(k, &keys, "key")),
                )
            })?,
            Step::Index(n) => cur.get(*n).ok_or_else(|| {
                error(
                    format!("expected a path into the results file, found \"{path}\": {at} has no element {n}"),
                    None,
                )
            })?,
        };
        at.push_str(&match step {
            Step::Key(k) if at.is_empty() => k.clone(),
            Step::Key(k) => format!(".{k}"),
            Step::Index(n) => format!("[{n}]"),
        });
        cur = next;
    }
    match cur {
        Value::Number(_) | Value::Bool(_) | Value::Null => Ok(()),
        other => {
            let found = match other {
                Value::String(s) => format!("the string \"{s}\""),
                Value::Array(_) => "an array".to_string(),
                _ => "an object".to_string(),
            };
            Err(error(
                format!(
                    "expected a path to a number (or a boolean) in the results file, found {found} at \"{path}\""
                ),
                None,
            ))
        }
    }
}

fn prepare_points(
    spec: &Spec,
    file_of: &dyn Fn(&Point) -> String,
) -> Result<Vec<Prepared>, ConfigError> {
    spec.points
        .iter()
        .map(|p| {
            let text = serde_json::to_string_pretty(&p.config).unwrap_or_default();
            let scenario = crate::config::load_str(&file_of(p), &text)?;
            crate::run::validate(&scenario)?;
            // A fault filtered by a node the scenario does not have would never be found.
            if let Measure::Interval {
                from: super::spec::From::Action { node: Some(n), .. },
                ..
            } = &p.measure
                && scenario.node_index(n).is_none()
            {
                let known: Vec<String> = scenario.nodes.iter().map(|d| d.name.text()).collect();
                return Err(ConfigError {
                    hint: Some(crate::config::error::suggest(n, &known, "node id")),
                    ..spec_error(
                        spec,
                        "measure.from.node",
                        format!(
                            "expected the id of a node of the scenario, found \"{n}\" (point {})",
                            p.label
                        ),
                    )
                });
            }
            let fast = match scenario.protocol.as_str() {
                "raft" => {
                    let cluster = cluster_of(&scenario);
                    let cfg: <Raft as Protocol>::Config = crate::config::parse_value(
                        &scenario.source,
                        "consensus",
                        scenario.consensus.clone(),
                    )?;
                    match Raft::new(cfg, &cluster) {
                        Ok(r) => Fast::Raft(Box::new((r, cluster))),
                        Err(_) => Fast::None,
                    }
                }
                _ => Fast::None,
            };
            let last_action = scenario
                .timeline
                .iter()
                .map(|a| a.at + a.delay.as_ref().map_or(0, delay_max))
                .max()
                .unwrap_or(0);
            let tmax = p
                .config
                .get("consensus")
                .and_then(|c| c.get("election_timeout_max").or_else(|| c.get("timeout")))
                .and_then(|v| v.as_f64())
                .unwrap_or(300.0);
            let mut window = ms_to_time(tmax + 50.0);
            if let Measure::Interval {
                until: Condition::Stable,
                stable_for,
                ..
            } = &p.measure
            {
                window += ms_to_time(*stable_for);
            }
            let prefix_stable = scenario.chaos.as_ref().is_none_or(|c| c.stop.is_some());
            Ok(Prepared {
                horizon: scenario.termination,
                scenario,
                fast,
                last_action,
                window,
                prefix_stable,
            })
        })
        .collect()
}

fn run_once(p: &Prepared, seed: u64, until: Time, history: bool) -> Outcome {
    let opts = RunOptions {
        seed,
        until: Some(until),
        tracer: None,
        stop_after: None,
        keep_going: false,
        record_history: history,
    };
    match &p.fast {
        Fast::Raft(b) => Engine::new(&p.scenario, b.0.clone(), b.1.clone(), opts).run(),
        Fast::None => {
            let checks = CheckOptions {
                skip_linearizability: true,
                ..Default::default()
            };
            crate::run::run(&p.scenario, opts, &checks)
                .expect("validated when the sweep was prepared")
                .outcome
        }
    }
}

/// What a trial cost: events processed and time simulated, over all the simulations it ran
/// (a trial whose condition is not reached within its first horizon runs again, longer).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TrialCost {
    pub events: u64,
    pub simulated: Time,
}

impl TrialCost {
    fn add(&mut self, o: &Outcome) {
        self.events += o.events;
        self.simulated += o.end;
    }
}

/// Runs one trial.
pub fn run_trial(spec: &Spec, prepared: &[Prepared], point: usize, trial: u64) -> TrialRow {
    run_trial_costed(spec, prepared, point, trial).0
}

/// Runs one trial and reports its cost too (for `coracle bench`).
pub fn run_trial_costed(
    spec: &Spec,
    prepared: &[Prepared],
    point: usize,
    trial: u64,
) -> (TrialRow, TrialCost) {
    let mut cost = TrialCost::default();
    let row = trial_row(spec, prepared, point, trial, &mut cost);
    (row, cost)
}

fn trial_row(
    spec: &Spec,
    prepared: &[Prepared],
    point: usize,
    trial: u64,
    cost: &mut TrialCost,
) -> TrialRow {
    let seed = trial_seed(spec.seed, &spec.points[point].label, trial);
    let p = &prepared[point];
    let mut row = TrialRow {
        point,
        trial,
        seed,
        value: None,
        status: Status::NoFault,
        violation: None,
        notes: Vec::new(),
    };
    match &spec.points[point].measure {
        Measure::Metric { path } => {
            let opts = RunOptions {
                seed,
                until: None,
                tracer: None,
                stop_after: None,
                keep_going: false,
                record_history: path.starts_with("checks.linearizability"),
            };
            let checks = CheckOptions {
                skip_linearizability: !path.starts_with("checks.linearizability"),
                ..Default::default()
            };
            let r = crate::run::run(&p.scenario, opts, &checks)
                .expect("validated when the sweep was prepared");
            cost.add(&r.outcome);
            row.violation = r
                .outcome
                .violation
                .as_ref()
                .map(|v| v.invariant.to_string());
            row.notes = r.results["notes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            match get_path(&r.results, path).and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_bool().map(|b| if b { 1.0 } else { 0.0 }))
            }) {
                Some(x) => {
                    row.value = Some(x);
                    row.status = Status::Ok;
                }
                None => row.status = Status::Censored,
            }
            row
        }
        Measure::Interval {
            from,
            until,
            stable_for,
            within,
            subtract,
        } => {
            let history = *until == Condition::ClientOp;
            let extra = if *until == Condition::Stable {
                ms_to_time(*stable_for)
            } else {
                0
            };
            let mut horizon = if p.prefix_stable {
                (p.last_action + p.window).min(p.horizon)
            } else {
                p.horizon
            };
            loop {
                let o = run_once(p, seed, horizon, history);
                cost.add(&o);
                row.violation = o.violation.as_ref().map(|v| v.invariant.to_string());
                row.notes =
                    crate::results::notes(&o, crate::results::loses_state_on_crash(&p.scenario));
                let stopped = o.reason != StopReason::Horizon || horizon >= p.horizon;
                let Some(fault) = fault_time(from, &o, &p.scenario) else {
                    if stopped {
                        row.status = Status::NoFault;
                        return row;
                    }
                    horizon = horizon.saturating_mul(3).min(p.horizon);
                    continue;
                };
                let limit = within
                    .map(|w| fault.saturating_add(ms_to_time(w)))
                    .unwrap_or(p.horizon)
                    .min(p.horizon);
                let run_limit = limit.saturating_add(extra).min(p.horizon);
                match evaluate(*until, *stable_for, fault, &o) {
                    Eval::Reached { at, .. } if at <= limit => {
                        row.status = Status::Ok;
                        row.value = Some(time_to_ms(at - fault));
                    }
                    Eval::Reached { .. } => {
                        row.status = Status::Censored;
                        row.value = Some(time_to_ms(limit - fault));
                    }
                    Eval::NotYet { .. } | Eval::NoFault => {
                        if !stopped && horizon < run_limit {
                            horizon = horizon
                                .saturating_mul(3)
                                .max(fault.saturating_add(p.window))
                                .min(run_limit);
                            continue;
                        }
                        row.status = Status::Censored;
                        row.value = Some(time_to_ms(o.end.min(limit).saturating_sub(fault)));
                    }
                }
                if let (Some(d), Some(v)) = (subtract, row.value) {
                    let mut r = rng::stream(seed, rng::purpose::TRIAL, 0);
                    // Rounded to the nanosecond like every other value (no 382.16148400000003).
                    let x = v - time_to_ms(d.sample(&mut r));
                    row.value = Some((x * 1e6).round() / 1e6);
                }
                return row;
            }
        }
    }
}

/// Which trials to run and how to report progress.
pub struct Control<'a> {
    /// Run only the trials whose global ordinal `g` has `g % n == k` (`(k, n)`, 0-based k).
    pub shard: Option<(u64, u64)>,
    /// Set (by a Ctrl-C handler) to stop starting new trials.
    pub cancel: &'a AtomicBool,
    /// Called after each trial (from worker threads).
    pub progress: &'a (dyn Fn(&TrialRow) + Sync),
}

/// The trials of this shard, as (point, trial).
pub fn selected(spec: &Spec, shard: Option<(u64, u64)>) -> Vec<(usize, u64)> {
    let mut v = Vec::new();
    let mut g = 0u64;
    for p in &spec.points {
        for t in 0..p.trials {
            if shard.is_none_or(|(k, n)| g % n == k) {
                v.push((p.index, t));
            }
            g += 1;
        }
    }
    v
}

/// Runs the selected trials in parallel; returns the finished rows sorted by (point, trial)
/// and whether every selected trial ran (false after a cancel).
pub fn run_all(spec: &Spec, prepared: &[Prepared], ctl: &Control) -> (Vec<TrialRow>, bool) {
    let todo = selected(spec, ctl.shard);
    let mut rows: Vec<TrialRow> = todo
        .par_iter()
        .with_max_len(64)
        .filter_map(|&(p, t)| {
            if ctl.cancel.load(Ordering::Relaxed) {
                return None;
            }
            let r = run_trial(spec, prepared, p, t);
            (ctl.progress)(&r);
            Some(r)
        })
        .collect();
    rows.sort_by_key(|r| (r.point, r.trial));
    let complete = rows.len() == todo.len();
    (rows, complete)
}
