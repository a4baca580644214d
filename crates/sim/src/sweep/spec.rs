//! Sweep specifications: the file format, its validation, and the expansion into points.
//!
//! A spec names a base scenario (inline or by path), the parameters to vary (a grid, an explicit
//! list of points, or both: every point crossed with the grid), the number of trials per point,
//! and what each trial measures. Errors are [`ConfigError`]s like the scenario loader's: the
//! file, the line and column, the JSON path, what was expected and what was found; unknown keys
//! are rejected with a suggestion.

use crate::config::error::{Source, join, suggest};
use crate::config::spec::Latency;
use crate::config::{ConfigError, kind_of, parse_value};
use crate::dist::Delay;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;

/// Largest accepted number of trials in one sweep. Each trial's row stays in memory for the
/// statistics (about 100 bytes with its place in the work list): 10^7 trials take about 1 GB,
/// and 10^8 (the former limit) needed 1.6 GB before the first trial and 9 GB by the end.
pub const MAX_TRIALS: u64 = 10_000_000;
/// Largest accepted number of points.
pub const MAX_POINTS: usize = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: Option<String>,
    description: Option<String>,
    base: Value,
    seed: Option<u64>,
    /// Checked by [`trials_of`], so that every wrong value gets the same message.
    trials: Option<Value>,
    vary: Option<Map<String, Value>>,
    points: Option<Vec<PointFile>>,
    measure: Option<Value>,
    published: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointFile {
    label: Option<String>,
    trials: Option<Value>,
    #[serde(default)]
    set: Map<String, Value>,
    #[serde(default)]
    params: Map<String, Value>,
    measure: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasureFile {
    from: Option<FromFile>,
    until: Option<Condition>,
    stable_for: Option<f64>,
    within: Option<f64>,
    subtract: Option<Latency>,
    metric: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FromFile {
    at: Option<f64>,
    action: Option<String>,
    node: Option<Value>,
    nth: Option<u64>,
}

/// What ends the measured interval.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A server became leader at or after the fault.
    LeaderElected,
    /// A leader elected at or after the fault is known as leader by every live server (all
    /// of them received its first AppendEntries).
    LeaderKnown,
    /// The first client operation completed (with a result) after the fault.
    ClientOp,
    /// A leader held its leadership without interruption for `stable_for` ms.
    Stable,
}

impl Condition {
    /// Name in specs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Condition::LeaderElected => "leader_elected",
            Condition::LeaderKnown => "leader_known",
            Condition::ClientOp => "client_op",
            Condition::Stable => "stable",
        }
    }
}

/// Where the measured interval starts.
#[derive(Clone, Debug, PartialEq)]
pub enum From {
    /// A fixed time, ms.
    At(f64),
    /// The `nth` (1-based) timeline action named `action` that fired (and was not skipped),
    /// optionally only those that hit `node`.
    Action {
        action: String,
        node: Option<String>,
        nth: u64,
    },
}

/// What a trial measures.
#[derive(Clone, Debug, PartialEq)]
pub enum Measure {
    /// Time from a fault to a condition.
    Interval {
        from: From,
        until: Condition,
        /// Required duration of the `stable` condition, ms.
        stable_for: f64,
        /// Give up (censor) this many ms after the fault; `None`: at the horizon.
        within: Option<f64>,
        /// A random amount subtracted from every value (drawn from the trial's seed).
        subtract: Option<Delay>,
    },
    /// A number from the run's results document, by JSON path (`protocol_stats.max_term`).
    Metric { path: String },
}

impl Measure {
    /// A one-line description for terminal output.
    pub fn describe(&self) -> String {
        match self {
            Measure::Metric { path } => format!("results {path}"),
            Measure::Interval {
                from,
                until,
                stable_for,
                within,
                subtract,
            } => {
                let f = match from {
                    From::At(t) => format!("t = {t} ms"),
                    From::Action { action, node, nth } => {
                        let mut s = if *nth == 1 {
                            format!("the first {action}")
                        } else {
                            format!("{action} #{nth}")
                        };
                        if let Some(n) = node {
                            s.push_str(&format!(" of {n}"));
                        }
                        s
                    }
                };
                let mut s = format!("time from {f} until {}", until.name());
                if *until == Condition::Stable {
                    s.push_str(&format!(" ({stable_for} ms)"));
                }
                if let Some(w) = within {
                    s.push_str(&format!(", censored after {w} ms"));
                }
                if let Some(d) = subtract {
                    s.push_str(&format!(", minus a draw with mean {:.3} ms", d.mean_ms()));
                }
                s
            }
        }
    }
}

/// One point of the sweep: the base config with some values set.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the sweep (0-based).
    pub index: usize,
    /// Unique label (the `point` column of `trials.csv`).
    pub label: String,
    pub trials: u64,
    /// `(path, value)` pairs applied to the base config, in order.
    pub set: Vec<(String, Value)>,
    /// Displayed parameters: column name → value.
    pub params: Vec<(String, Value)>,
    /// The materialised scenario config.
    pub config: Value,
    /// What each trial of this point measures (the spec's measure with the point's overrides).
    pub measure: Measure,
    /// Digits of the index in file names (all the sweep's files sort in point order).
    pub digits: usize,
    /// The position of the spec's `points` entry this point comes from (`None` for a spec
    /// without `points`), and the keys that entry's own `measure` sets: where an error about
    /// the point's measure is located in the spec file.
    pub origin: Option<usize>,
    pub measure_keys: Vec<String>,
}

impl Point {
    /// The spec file's JSON path of `key` of this point's measure: the point's own
    /// `measure` when it sets the key, else the spec's.
    pub fn measure_path(&self, key: &str) -> String {
        let top = key.split('.').next().unwrap_or(key);
        match self.origin {
            Some(i) if self.measure_keys.iter().any(|k| k == top) => {
                format!("points[{i}].measure.{key}")
            }
            _ => format!("measure.{key}"),
        }
    }
}

impl Point {
    /// File stem of the point's materialised config in `DIR/points/`.
    pub fn file_stem(&self) -> String {
        let slug: String = self
            .label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        format!("{:0w$}-{}", self.index, slug, w = self.digits)
    }
}

/// A validated, expanded sweep.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The spec file as named on the command line.
    pub file: String,
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    pub measure: Measure,
    pub points: Vec<Point>,
    /// Parameter columns of `trials.csv`, in order.
    pub columns: Vec<String>,
    /// Published reference numbers, as given (`{"source": ..., "points": {label: {stat: value}}}`).
    pub published: Option<Value>,
    /// The spec with the base inlined and every point expanded: written to `DIR/spec.json`,
    /// read back by `coracle merge`.
    pub resolved: Value,
}

impl Spec {
    /// Total number of trials.
    pub fn total_trials(&self) -> u64 {
        self.points.iter().map(|p| p.trials).sum()
    }

    /// The point with this label or index.
    pub fn point(&self, key: &str) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.label == key)
            .or_else(|| key.parse::<usize>().ok().and_then(|i| self.points.get(i)))
            .or_else(|| self.points.iter().find(|p| p.file_stem() == key))
    }
}

/// Reads a spec file.
pub fn load_spec_file(path: &Path) -> Result<Spec, ConfigError> {
    let file = path.display().to_string();
    let text = crate::config::read_text(path)?;
    load_spec_str(&file, &text, path.parent())
}

fn whole(file: &str, message: String, position: Option<(usize, usize)>) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        path: String::new(),
        message,
        position,
        hint: None,
    }
}

/// Parses a spec from its text; `dir` resolves a `base` given as a relative path.
pub fn load_spec_str(file: &str, text: &str, dir: Option<&Path>) -> Result<Spec, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let src = Source {
        file: file.to_string(),
        text: text.to_string(),
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let m = e.to_string();
        let m = m
            .rfind(" at line ")
            .map_or(m.clone(), |i| m[..i].to_string());
        whole(
            file,
            format!("invalid JSON: {m}"),
            Some((e.line(), e.column())),
        )
    })?;
    if !value.is_object() {
        return Err(src.error(
            "",
            format!(
                "expected a JSON object at the top level, found {}",
                kind_of(&value)
            ),
        ));
    }
    if let Some(o) = value.as_object()
        && !o.contains_key("base")
        && (o.contains_key("consensus") || o.contains_key("network") || o.contains_key("nodes"))
    {
        return Err(src.error(
            "",
            "expected a sweep spec (with \"base\", \"vary\" and \"measure\"), found a \
             scenario: run it with `coracle run FILE`, or name it as a sweep's \"base\" \
             (docs/sweeps.md)",
        ));
    }
    let mut spec: SpecFile = parse_value(&src, "", value)?;
    // The base config.
    let (base, base_name) = match &spec.base {
        Value::Object(_) => (spec.base.clone(), format!("{file} (base)")),
        Value::String(p) => {
            let full = match dir {
                Some(d) if !Path::new(p).is_absolute() => d.join(p),
                _ => Path::new(p).to_path_buf(),
            };
            let text = std::fs::read_to_string(&full).map_err(|e| {
                src.error(
                    "base",
                    format!("cannot read the base config {}: {e}", full.display()),
                )
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                src.error(
                    "base",
                    format!("the base config {} is not valid JSON: {e}", full.display()),
                )
            })?;
            if !v.is_object() {
                return Err(src.error("base", "expected the base config to be a JSON object"));
            }
            (v, full.display().to_string())
        }
        other => {
            return Err(src.error(
                "base",
                format!(
                    "expected a config object or a path to one, found {}",
                    kind_of(other)
                ),
            ));
        }
    };
    // The base must itself be a valid scenario.
    let base_text = serde_json::to_string_pretty(&base).unwrap_or_default();
    let relocate = |mut e: ConfigError| {
        if matches!(spec.base, Value::Object(_)) {
            e.path = join("base", &e.path);
            e.file = file.to_string();
            e.position = crate::config::locate::position(text, &e.path);
        }
        e
    };
    crate::config::load_str(&base_name, &base_text).map_err(relocate)?;
    // A web-editor export has only nodes and links: its points are made from the native
    // config it means, so that `consensus.*`, `termination`, `workload` … can be varied.
    let base = crate::config::web_export_as_native(&base_name, &base_text)
        .map_err(relocate)?
        .unwrap_or(base);
    let trials = match &spec.trials {
        None => 100,
        Some(v) => trials_of(&src, "trials", v)?,
    };
    let measure_value = spec.measure.take();
    let measure_obj = match &measure_value {
        None => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(other) => {
            return Err(src.error(
                "measure",
                format!("expected an object, found {}", kind_of(other)),
            ));
        }
    };
    let measure = parse_measure(&src, "measure", measure_obj.clone())?;
    // Explicit points.
    type Explicit = (
        Option<String>,
        u64,
        Vec<(String, Value)>,
        Vec<(String, Value)>,
        Measure,
        Option<Map<String, Value>>,
    );
    let mut explicit: Vec<Explicit> = Vec::new();
    match &spec.points {
        Some(list) => {
            if list.is_empty() {
                return Err(src.error("points", "expected at least one point, found none"));
            }
            for (i, p) in list.iter().enumerate() {
                let at = format!("points[{i}]");
                if p.label.as_deref().is_some_and(|l| l.trim().is_empty()) {
                    return Err(src.error(
                        format!("{at}.label"),
                        "expected a label with some text, found an empty one (labels name \
                         points in trials.csv, --trial and --points)",
                    ));
                }
                let t = match &p.trials {
                    None => trials,
                    Some(v) => trials_of(&src, &format!("{at}.trials"), v)?,
                };
                let mut set = Vec::new();
                for (k, v) in &p.set {
                    check_path(&src, &format!("{at}.set"), k)?;
                    set.push((k.clone(), v.clone()));
                }
                let params = p
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let m = match &p.measure {
                    None => measure.clone(),
                    Some(over) => {
                        let mut all = measure_obj.clone().unwrap_or_default();
                        // A point may measure the other kind: a metric where the spec measures
                        // an interval, or the reverse. The spec's keys of the other kind go.
                        const INTERVAL: [&str; 5] =
                            ["from", "until", "stable_for", "within", "subtract"];
                        if over.contains_key("metric") {
                            all.retain(|k, _| !INTERVAL.contains(&k.as_str()));
                        } else if over.contains_key("from") || over.contains_key("until") {
                            all.remove("metric");
                        }
                        for (k, v) in over {
                            all.insert(k.clone(), v.clone());
                        }
                        parse_measure(&src, &format!("{at}.measure"), Some(all))?
                    }
                };
                explicit.push((p.label.clone(), t, set, params, m, p.measure.clone()));
            }
        }
        None => explicit.push((None, trials, Vec::new(), Vec::new(), measure.clone(), None)),
    }
    // The grid: the cartesian product, first key outermost.
    let mut grid: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    let mut grid_keys = Vec::new();
    if let Some(vary) = &spec.vary {
        for (k, vals) in vary {
            check_path(&src, "vary", k)?;
            let Value::Array(vals) = vals else {
                return Err(src.error(
                    format!("vary.{k}"),
                    format!("expected a list of values, found {}", kind_of(vals)),
                ));
            };
            if vals.is_empty() {
                return Err(src.error(
                    format!("vary.{k}"),
                    "expected at least one value, found an empty list",
                ));
            }
            grid_keys.push(k.clone());
            let mut next = Vec::with_capacity(grid.len() * vals.len());
            for g in &grid {
                for v in vals {
                    let mut g2 = g.clone();
                    g2.push((k.clone(), v.clone()));
                    next.push(g2);
                }
            }
            if next.len() > MAX_POINTS {
                return Err(src.error(
                    "vary",
                    format!("expected at most {MAX_POINTS} points, found {}", next.len()),
                ));
            }
            grid = next;
        }
    }
    let mut points = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut add_col = |c: &str| {
        if !columns.iter().any(|x| x == c) {
            columns.push(c.to_string());
        }
    };
    // A path both varied and set by a point would be set twice, the grid's value winning
    // silently while the point's labelled it.
    if let (Some(list), Some(vary)) = (&spec.points, &spec.vary) {
        for (i, p) in list.iter().enumerate() {
            if let Some(k) = p.set.keys().find(|k| vary.contains_key(*k)) {
                return Err(src.error(
                    format!("points[{i}].set.{k}"),
                    format!("\"{k}\" is also in \"vary\": set it in one place only"),
                ));
            }
        }
    }
    for (ei, (label, t, set, params, pmeasure, over)) in explicit.iter().enumerate() {
        for g in &grid {
            let index = points.len();
            if index >= MAX_POINTS {
                return Err(src.error("points", format!("expected at most {MAX_POINTS} points")));
            }
            let mut all_set = set.clone();
            all_set.extend(g.iter().cloned());
            let grid_label = g
                .iter()
                .map(|(k, v)| format!("{}={}", short(k), scalar_text(v)))
                .collect::<Vec<_>>()
                .join(",");
            let label = match (label, grid_label.is_empty()) {
                (Some(l), true) => l.clone(),
                (Some(l), false) => format!("{l}/{grid_label}"),
                (None, false) => grid_label,
                (None, true) => {
                    if explicit.len() == 1 {
                        "all".to_string()
                    } else {
                        format!("p{ei}")
                    }
                }
            };
            let mut shown = params.clone();
            for (k, v) in &all_set {
                if !v.is_object() && !v.is_array() && !shown.iter().any(|(s, _)| s == k) {
                    shown.push((k.clone(), v.clone()));
                }
            }
            for (k, _) in &shown {
                add_col(k);
            }
            let mut config = base.clone();
            let where_ = if spec.points.is_some() {
                format!("points[{ei}].set")
            } else {
                "vary".to_string()
            };
            for (k, v) in &all_set {
                set_path(&mut config, k, v.clone()).map_err(|m| {
                    let at = if grid_keys.contains(k) {
                        format!("vary.{k}")
                    } else {
                        format!("{where_}.{k}")
                    };
                    src.error(at, m)
                })?;
            }
            points.push(Point {
                index,
                label,
                trials: *t,
                set: all_set,
                params: shown,
                config,
                measure: pmeasure.clone(),
                digits: 2,
                origin: spec.points.is_some().then_some(ei),
                measure_keys: over
                    .as_ref()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            });
        }
    }
    let digits = points.len().saturating_sub(1).to_string().len().max(2);
    for p in &mut points {
        p.digits = digits;
    }
    for (i, p) in points.iter().enumerate() {
        if points[..i].iter().any(|q| q.label == p.label) {
            return Err(src.error(
                "points",
                format!("expected unique point labels, found \"{}\" twice", p.label),
            ));
        }
        if p.label.contains(['\n', '\r']) {
            return Err(src.error("points", "expected labels on one line"));
        }
    }
    let total: u64 = points.iter().map(|p| p.trials).sum();
    if total > MAX_TRIALS {
        return Err(src.error(
            "trials",
            format!("expected at most {MAX_TRIALS} trials in all, found {total}"),
        ));
    }
    let name = spec.name.clone().unwrap_or_else(|| {
        Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "sweep".into())
    });
    // Each point's scenario is named after the sweep and the point, so a re-run from a printed
    // command says which point it is (unless the point sets a name itself).
    if points.len() > 1 {
        for p in &mut points {
            if !p.set.iter().any(|(k, _)| k == "name")
                && let Value::Object(o) = &mut p.config
            {
                o.insert("name".into(), Value::String(format!("{name} {}", p.label)));
            }
        }
    }
    let seed = spec.seed.unwrap_or(1);
    let overrides: Vec<Option<Map<String, Value>>> = explicit
        .iter()
        .flat_map(|e| std::iter::repeat_n(e.5.clone(), grid.len()))
        .collect();
    let resolved = resolved_json(
        &name,
        &spec,
        measure_obj.map(Value::Object),
        seed,
        &points,
        &overrides,
        &base,
    );
    if let Some(p) = &spec.published {
        check_published(&src, p, &points)?;
    }
    Ok(Spec {
        file: file.to_string(),
        name,
        description: spec.description,
        seed,
        measure,
        points,
        columns,
        published: spec.published,
        resolved,
    })
}

/// A number of trials: a whole number from 1 to [`MAX_TRIALS`]. Every other value (0, -3,
/// 2.5, 10^8, "10") gets the same message with the range.
fn trials_of(src: &Source, at: &str, v: &Value) -> Result<u64, ConfigError> {
    match v.as_u64() {
        Some(t) if (1..=MAX_TRIALS).contains(&t) => Ok(t),
        _ => {
            let found = match v {
                Value::Number(n) => n.to_string(),
                other => kind_of(other).to_string(),
            };
            Err(src.error(
                at,
                format!("expected a whole number of trials from 1 to {MAX_TRIALS}, found {found}"),
            ))
        }
    }
}

/// `published`: `{"source": text, "points": {label: {stat: number or text}}}`, where every label
/// is a point's and every stat one the sweep computes, so a typo is not silently dropped.
fn check_published(src: &Source, p: &Value, points: &[Point]) -> Result<(), ConfigError> {
    let Some(o) = p.as_object() else {
        return Err(src.error(
            "published",
            format!(
                "expected an object {{\"source\", \"points\"}}, found {}",
                kind_of(p)
            ),
        ));
    };
    for (k, v) in o {
        match (k.as_str(), v) {
            ("source", Value::String(_)) | ("points", Value::Object(_)) => {}
            ("source", other) => {
                return Err(src.error(
                    "published.source",
                    format!("expected text, found {}", kind_of(other)),
                ));
            }
            ("points", other) => {
                return Err(src.error(
                    "published.points",
                    format!(
                        "expected an object of point labels, found {}",
                        kind_of(other)
                    ),
                ));
            }
            (other, _) => {
                let mut e = src.error(
                    format!("published.{other}"),
                    format!("unknown key \"{other}\""),
                );
                e.hint = Some(crate::config::error::suggest(
                    other,
                    &["source".to_string(), "points".to_string()],
                    "key",
                ));
                return Err(e);
            }
        }
    }
    let labels: Vec<String> = points.iter().map(|p| p.label.clone()).collect();
    // Besides quantiles `p1` … `p100`.
    const STATS: [&str; 4] = ["mean", "min", "max", "censored_fraction"];
    let suggestions: Vec<String> = STATS
        .iter()
        .chain(&["p50", "p99"])
        .map(|s| s.to_string())
        .collect();
    for (label, st) in o
        .get("points")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let at = format!("published.points.{label}");
        if !labels.contains(label) {
            let mut e = src.error(
                at,
                format!("expected the label of a point of this sweep, found \"{label}\""),
            );
            e.hint = Some(crate::config::error::suggest(label, &labels, "point label"));
            return Err(e);
        }
        let Some(st) = st.as_object() else {
            return Err(src.error(
                at,
                format!("expected an object of statistics, found {}", kind_of(st)),
            ));
        };
        for (k, v) in st {
            let quantile = k
                .strip_prefix('p')
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q > 0.0 && q <= 100.0);
            if !(quantile || STATS.contains(&k.as_str())) {
                let mut e = src.error(
                    format!("{at}.{k}"),
                    format!("expected a statistic (mean, min, max, censored_fraction, or a quantile p1 … p100), found \"{k}\""),
                );
                // A near-quantile ("p101", "p0") needs no list of names: the range says it.
                if k.strip_prefix('p')
                    .is_none_or(|q| q.parse::<f64>().is_err())
                {
                    e.hint = Some(crate::config::error::suggest(k, &suggestions, "statistic"));
                }
                return Err(e);
            }
            if !(v.is_number() || v.is_string()) {
                return Err(src.error(
                    format!("{at}.{k}"),
                    format!("expected a number or text, found {}", kind_of(v)),
                ));
            }
        }
    }
    Ok(())
}

fn resolved_json(
    name: &str,
    spec: &SpecFile,
    measure: Option<Value>,
    seed: u64,
    points: &[Point],
    overrides: &[Option<Map<String, Value>>],
    base: &Value,
) -> Value {
    let pts: Vec<Value> = points
        .iter()
        .zip(overrides)
        .map(|(p, over)| {
            let mut set = Map::new();
            for (k, v) in &p.set {
                set.insert(k.clone(), v.clone());
            }
            let mut params = Map::new();
            for (k, v) in &p.params {
                params.insert(k.clone(), v.clone());
            }
            let mut o = serde_json::json!({"label": p.label, "trials": p.trials, "set": set, "params": params});
            if let Some(m) = over {
                o["measure"] = Value::Object(m.clone());
            }
            o
        })
        .collect();
    let mut m = Map::new();
    m.insert("name".into(), Value::from(name));
    if let Some(d) = &spec.description {
        m.insert("description".into(), Value::from(d.clone()));
    }
    m.insert("base".into(), base.clone());
    m.insert("seed".into(), Value::from(seed));
    m.insert("points".into(), Value::Array(pts));
    if let Some(ms) = measure {
        m.insert("measure".into(), ms);
    }
    if let Some(p) = &spec.published {
        m.insert("published".into(), p.clone());
    }
    Value::Object(m)
}

fn parse_measure(
    src: &Source,
    at: &str,
    m: Option<Map<String, Value>>,
) -> Result<Measure, ConfigError> {
    let Some(m) = m else {
        return Err(src.error(
            "",
            "missing required key \"measure\" (what each trial reports: {\"from\": ..., \"until\": ...} or {\"metric\": PATH})",
        ));
    };
    let m: MeasureFile = parse_value(src, at, Value::Object(m))?;
    let err = |path: String, msg: &str| src.error(path.replacen("measure", at, 1), msg.to_string());
    if let Some(path) = m.metric {
        for (k, present) in [
            ("from", m.from.is_some()),
            ("until", m.until.is_some()),
            ("stable_for", m.stable_for.is_some()),
            ("within", m.within.is_some()),
        ] {
            if present {
                return Err(err(
                    format!("measure.{k}"),
                    "expected either \"metric\" or an interval (from/until), found both",
                ));
            }
        }
        if path.is_empty() {
            return Err(err(
                "measure.metric".to_string(),
                "expected a JSON path, found \"\"",
            ));
        }
        return Ok(Measure::Metric { path });
    }
    let Some(until) = m.until else {
        return Err(err(
            "measure".to_string(),
            "missing required key \"until\" (leader_elected, leader_known, client_op, stable)",
        ));
    };
    let from = match m.from {
        None => From::At(0.0),
        Some(f) => match (f.at, f.action) {
            (Some(t), None) => {
                if f.node.is_some() || f.nth.is_some() {
                    return Err(err(
                        "measure.from".to_string(),
                        "expected \"node\" and \"nth\" only with \"action\"",
                    ));
                }
                if !(t >= 0.0 && t.is_finite()) {
                    return Err(err(
                        "measure.from.at".to_string(),
                        &format!("expected a time ≥ 0, found {t}"),
                    ));
                }
                From::At(t)
            }
            (None, Some(a)) => {
                const ACTIONS: &[&str] = &[
                    "crash",
                    "recover",
                    "pause",
                    "resume",
                    "isolate",
                    "rejoin",
                    "partition",
                    "heal",
                    "clock",
                    "link",
                    "flap",
                ];
                if !ACTIONS.contains(&a.as_str()) {
                    let allowed: Vec<String> = ACTIONS.iter().map(|s| s.to_string()).collect();
                    let mut e = err(
                        "measure.from.action".to_string(),
                        &format!("unknown action \"{a}\""),
                    );
                    e.hint = Some(suggest(&a, &allowed, "action"));
                    return Err(e);
                }
                let node = match f.node {
                    None => None,
                    Some(Value::String(s)) => Some(s),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(other) => {
                        return Err(err(
                            "measure.from.node".to_string(),
                            &format!("expected a node id, found {}", kind_of(&other)),
                        ));
                    }
                };
                let nth = f.nth.unwrap_or(1);
                if nth == 0 {
                    return Err(err(
                        "measure.from.nth".to_string(),
                        "expected n ≥ 1, found 0",
                    ));
                }
                From::Action {
                    action: a,
                    node,
                    nth,
                }
            }
            (Some(_), Some(_)) => {
                return Err(err(
                    "measure.from".to_string(),
                    "expected either \"at\" or \"action\", found both",
                ));
            }
            (None, None) => {
                return Err(err(
                    "measure.from".to_string(),
                    "expected \"at\" (ms) or \"action\" (crash, partition, link, ...)",
                ));
            }
        },
    };
    let stable_for = match (until, m.stable_for) {
        (Condition::Stable, Some(d)) if d > 0.0 && d.is_finite() => d,
        (Condition::Stable, Some(d)) => {
            return Err(err(
                "measure.stable_for".to_string(),
                &format!("expected a duration > 0, found {d}"),
            ));
        }
        (Condition::Stable, None) => {
            return Err(err(
                "measure".to_string(),
                "missing required key \"stable_for\" (ms the leader must last) for until = stable",
            ));
        }
        (_, Some(_)) => {
            return Err(err(
                "measure.stable_for".to_string(),
                "expected \"stable_for\" only with until = stable",
            ));
        }
        (_, None) => 0.0,
    };
    if let Some(w) = m.within
        && !(w > 0.0 && w.is_finite())
    {
        return Err(err(
            "measure.within".to_string(),
            &format!("expected a duration > 0, found {w}"),
        ));
    }
    let subtract = match &m.subtract {
        None => None,
        Some(l) => Some(crate::config::delay(src, &format!("{at}.subtract"), l)?),
    };
    Ok(Measure::Interval {
        from,
        until,
        stable_for,
        within: m.within,
        subtract,
    })
}

/// The last segment of a path, for labels.
fn short(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A scalar as text (strings without quotes).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One step of a parameter path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into steps.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    if path.is_empty() {
        return Err("expected a path such as consensus.election_timeout_min, found \"\"".into());
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && (steps.is_empty() || rest.is_empty()) {
            return Err(format!(
                "expected a path such as a.b[2].c, found \"{path}\""
            ));
        }
        if !name.is_empty() {
            steps.push(Step::Key(name.to_string()));
        }
        while !rest.is_empty() {
            let Some(end) = rest.find(']') else {
                return Err(format!("expected a closing ] in \"{path}\""));
            };
            let idx: usize = rest[1..end]
                .parse()
                .map_err(|_| format!("expected an index such as [2] in \"{path}\""))?;
            steps.push(Step::Index(idx));
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("expected . or [ after ] in \"{path}\""));
            }
        }
    }
    Ok(steps)
}

fn check_path(src: &Source, at: &str, path: &str) -> Result<(), ConfigError> {
    parse_path(path).map(|_| ()).map_err(|m| src.error(at, m))
}

/// Sets `value` at `path` in `doc`. Missing object keys are created (so a variant switch
/// absent from the base can be turned on); list indexes must exist.
pub fn set_path(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let steps = parse_path(path)?;
    let mut cur = doc;
    let mut walked = String::new();
    for (i, s) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match s {
            Step::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Map::new());
                }
                let Value::Object(o) = cur else {
                    return Err(format!(
                        "cannot set \"{path}\": {} is {}, not an object",
                        if walked.is_empty() {
                            "the config"
                        } else {
                            &walked
                        },
                        kind_of(cur)
                    ));
                };
                if last {
                    o.insert(k.clone(), value);
                    return Ok(());
                }
                cur = o.entry(k.clone()).or_insert(Value::Null);
                walked = join(&walked, k);
            }
            Step::Index(n) => {
                if cur.is_null() && !walked.is_empty() {
                    return Err(format!(
                        "cannot set \"{path}\": the base config has no {walked} (an index needs \
                         an existing list; the config may describe it another way, e.g. \
                         network.mesh instead of network.links)"
                    ));
                }
                let Value::Array(a) = cur else {
                    return Err(format!(
                        "cannot set \"{path}\": {} is {}, not a list",
                        if walked.is_empty() {
                            "the config"
                        } else {
                            &walked
                        },
                        kind_of(cur)
                    ));
                };
                let len = a.len();
                let Some(slot) = a.get_mut(*n) else {
                    return Err(format!(
                        "cannot set \"{path}\": {walked} has {len} elements, found index {n}"
                    ));
                };
                if last {
                    *slot = value;
                    return Ok(());
                }
                cur = slot;
                walked = format!("{walked}[{n}]");
            }
        }
    }
    Ok(())
}

/// The value at `path` in `doc`, if any.
pub fn get_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let steps = parse_path(path).ok()?;
    let mut cur = doc;
    for s in &steps {
        cur = match s {
            Step::Key(k) => cur.get(k)?,
            Step::Index(n) => cur.get(*n)?,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_set_and_create() {
        let mut d = json!({"consensus": {"protocol": "raft"}, "timeline": [{"at": 1}]});
        set_path(&mut d, "consensus.prevote", json!(true)).unwrap();
        set_path(&mut d, "timeline[0].at", json!(5)).unwrap();
        set_path(&mut d, "storage.latency", json!(2)).unwrap();
        assert_eq!(d["consensus"]["prevote"], json!(true));
        assert_eq!(d["timeline"][0]["at"], json!(5));
        assert_eq!(d["storage"]["latency"], json!(2));
        assert!(set_path(&mut d, "timeline[3].at", json!(1)).is_err());
        assert!(set_path(&mut d, "consensus.protocol.x", json!(1)).is_err());
        let e = set_path(&mut d, "network.links[2].latency", json!(1)).unwrap_err();
        assert!(e.contains("the base config has no network.links"), "{e}");
        assert_eq!(get_path(&d, "timeline[0].at"), Some(&json!(5)));
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
    }
}
