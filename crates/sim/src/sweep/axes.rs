//! Which parameters a sweep's charts are drawn against, and how their points are grouped.
//!
//! A sweep's points carry every scalar they set as a parameter (`trials.csv` has a column for
//! each), but many of those only follow others: Figure 16 sets the heartbeat to half the
//! minimum timeout and a horizon from both timeouts; the split-vote model sets the latency
//! from λ and marks servers down from the number alive. Charting against them, or splitting
//! the points into series by them, gives charts of single dots.
//!
//! The **axes** of a sweep are found greedily, in column order (a point's declared `params`
//! first, then what it sets, then the grid's keys): a parameter is an axis unless its value
//! is a function of the axes before it over the charted points (it is *derived*). The objects
//! and lists points set (a timeline, a latency distribution) count as one more axis when they
//! are not a function of the axes: such points are then told apart by their labels.
//!
//! A chart against a numeric axis X splits its points into series by the other axes, except
//! those that are a function of X and the axes already splitting it (they co-vary with X or
//! with the split). Derived parameters get no chart. Everything here depends only on the
//! points' parameters, settings and labels, so a merged sweep (read back from `spec.json`)
//! draws the same charts as the unsharded run.

use super::spec::{Point, scalar_text};
use serde_json::Value;
use std::collections::HashMap;

/// An axis: a parameter column, or the objects and lists the points set.
#[derive(Clone, Debug, PartialEq)]
enum Axis {
    Column(String),
    Settings,
}

/// A chart against one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ByChart {
    /// The parameter (a column of `trials.csv`).
    pub column: String,
    /// Per point (in the order given): its x value and its series, or `None` when the point
    /// has no number for the parameter (left off the chart). The series name is empty when
    /// nothing splits the chart.
    pub points: Vec<Option<(f64, String)>>,
}

fn column_value<'a>(p: &'a Point, c: &str) -> Option<&'a Value> {
    p.params.iter().find(|(k, _)| k == c).map(|(_, v)| v)
}

/// A point's value of an axis, as comparable text ("\u{1}" when it has none).
fn value(a: &Axis, p: &Point) -> String {
    match a {
        Axis::Column(c) => column_value(p, c).map_or("\u{1}".to_string(), Value::to_string),
        Axis::Settings => {
            let mut v: Vec<String> = p
                .set
                .iter()
                .filter(|(_, v)| v.is_object() || v.is_array())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            v.sort();
            v.join("\u{0}")
        }
    }
}

fn distinct(a: &Axis, pts: &[&Point]) -> usize {
    let mut v: Vec<String> = pts.iter().map(|p| value(a, p)).collect();
    v.sort();
    v.dedup();
    v.len()
}

/// Whether `target` is a function of `by` over `pts`.
fn determined(target: &Axis, by: &[&Axis], pts: &[&Point]) -> bool {
    let mut seen: HashMap<Vec<String>, String> = HashMap::new();
    for p in pts {
        let key: Vec<String> = by.iter().map(|a| value(a, p)).collect();
        let v = value(target, p);
        match seen.get(&key) {
            Some(prev) if *prev != v => return false,
            Some(_) => {}
            None => {
                seen.insert(key, v);
            }
        }
    }
    true
}

/// The axes of the sweep over `pts`, in order.
fn axes(pts: &[&Point], columns: &[String]) -> Vec<Axis> {
    let mut kept: Vec<Axis> = Vec::new();
    let candidates = columns
        .iter()
        .map(|c| Axis::Column(c.clone()))
        .chain(std::iter::once(Axis::Settings));
    for a in candidates {
        let by: Vec<&Axis> = kept.iter().collect();
        if distinct(&a, pts) >= 2 && !determined(&a, &by, pts) {
            kept.push(a);
        }
    }
    kept
}

/// A parameter path shortened for a legend: its last key (with the list element it is in,
/// `nodes[4].up`).
pub fn short_name(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        [.., a, b] if a.contains('[') => format!("{a}.{b}"),
        [.., b] => (*b).to_string(),
        [] => path.to_string(),
    }
}

pub use coracle_core::text::number_text;

fn scalar_shown(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_number() => number_text(x),
        _ => scalar_text(v),
    }
}

/// The name of the points sharing `p`'s settings in `peers`: their labels' common part up to
/// a `/` (`lan` of `lan/election_timeout_max=200` and `lan/election_timeout_max=300`), the
/// label of a point alone, else the settings themselves.
fn settings_name(p: &Point, peers: &[&Point]) -> String {
    let mine = value(&Axis::Settings, p);
    let group: Vec<&str> = peers
        .iter()
        .filter(|q| value(&Axis::Settings, q) == mine)
        .map(|q| q.label.as_str())
        .collect();
    if group.len() <= 1 {
        return p.label.clone();
    }
    let first = group[0];
    let mut n = first.len();
    for l in &group[1..] {
        let same = first
            .bytes()
            .zip(l.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        n = n.min(same);
    }
    while !first.is_char_boundary(n) {
        n -= 1;
    }
    let common = &first[..n];
    match common.rfind('/') {
        Some(i) if i > 0 => common[..i].to_string(),
        _ => p
            .set
            .iter()
            .filter(|(_, v)| v.is_object() || v.is_array())
            .map(|(k, v)| format!("{}={v}", short_name(k)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn part(a: &Axis, p: &Point, peers: &[&Point]) -> String {
    match a {
        Axis::Column(c) => match column_value(p, c) {
            Some(v) => format!("{}={}", short_name(c), scalar_shown(v)),
            // Set to an object or a list here (a latency distribution where others set a
            // constant): named like settings.
            None if p
                .set
                .iter()
                .any(|(k, v)| k == c && (v.is_object() || v.is_array())) =>
            {
                settings_name(p, peers)
            }
            None => format!("{} unset", short_name(c)),
        },
        Axis::Settings => settings_name(p, peers),
    }
}

/// The charts against parameters of the points `pts` (the charted points, in order), given
/// the sweep's parameter columns: one per numeric axis with at least two values, its points
/// split into series by the other axes that do not co-vary with it.
pub fn by_charts(pts: &[&Point], columns: &[String]) -> Vec<ByChart> {
    let kept = axes(pts, columns);
    let mut charts = Vec::new();
    for x in &kept {
        let Axis::Column(c) = x else { continue };
        let xs: Vec<Option<f64>> = pts
            .iter()
            .map(|p| column_value(p, c).and_then(Value::as_f64))
            .collect();
        let on: Vec<&Point> = pts
            .iter()
            .zip(&xs)
            .filter(|(_, x)| x.is_some())
            .map(|(p, _)| *p)
            .collect();
        let mut values: Vec<f64> = xs.iter().flatten().copied().collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        if values.len() < 2 {
            continue;
        }
        let mut split: Vec<&Axis> = Vec::new();
        for a in kept.iter().filter(|a| *a != x) {
            let mut by = vec![x];
            by.extend(split.iter().copied());
            if distinct(a, &on) >= 2 && !determined(a, &by, &on) {
                split.push(a);
            }
        }
        let points = pts
            .iter()
            .zip(&xs)
            .map(|(p, x)| {
                x.map(|x| {
                    let name = split
                        .iter()
                        .map(|a| part(a, p, &on))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (x, name)
                })
            })
            .collect();
        charts.push(ByChart {
            column: c.clone(),
            points,
        });
    }
    charts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::load_spec_str;

    fn charts_of(text: &str) -> Vec<ByChart> {
        let spec = load_spec_str("t.json", text, None).unwrap();
        let pts: Vec<&Point> = spec.points.iter().collect();
        by_charts(&pts, &spec.columns)
    }

    fn series(c: &ByChart) -> Vec<String> {
        let mut v: Vec<String> = c.points.iter().flatten().map(|(_, g)| g.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    const BASE: &str = r#"{"termination": 1000, "consensus": {"protocol": "raft", "election_timeout_min": 150, "election_timeout_max": 300},
        "network": {"nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "c", "type": "server"}], "mesh": true}}"#;

    #[test]
    fn a_grid_splits_by_its_other_key() {
        let c = charts_of(&format!(
            r#"{{"base": {BASE}, "vary": {{"consensus.election_timeout_max": [200, 300], "consensus.prevote": [false, true]}},
                "measure": {{"until": "leader_elected"}}}}"#
        ));
        assert_eq!(c.len(), 1, "prevote is not numeric: one chart");
        assert_eq!(c[0].column, "consensus.election_timeout_max");
        assert_eq!(series(&c[0]), ["prevote=false", "prevote=true"]);
    }

    #[test]
    fn derived_parameters_neither_split_nor_get_a_chart() {
        // lambda declared; latency = 150 lambda and the down flags follow alive.
        let mut points = Vec::new();
        for alive in [5, 4, 3] {
            for lam in [0.1, 0.15, 0.2] {
                let mut set = format!(r#""network.defaults.latency": {}"#, lam * 150.0);
                for k in alive..3 {
                    set.push_str(&format!(r#", "network.nodes[{k}].up": false"#));
                }
                points.push(format!(
                    r#"{{"label": "alive{alive}-lambda{lam}", "params": {{"alive": {alive}, "lambda": {lam}}}, "set": {{{set}}}}}"#
                ));
            }
        }
        let c = charts_of(&format!(
            r#"{{"base": {BASE}, "points": [{}], "measure": {{"until": "leader_elected"}}}}"#,
            points.join(",")
        ));
        let names: Vec<&str> = c.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(names, ["alive", "lambda"], "no chart against the latency");
        let by_lambda = &c[1];
        assert_eq!(series(by_lambda), ["alive=3", "alive=4", "alive=5"]);
        assert_eq!(series(&c[0]), ["lambda=0.1", "lambda=0.15", "lambda=0.2"]);
    }

    #[test]
    fn settings_that_differ_name_their_points() {
        // lan sets a constant latency, wan a distribution: the wan points are named by label.
        let c = charts_of(&format!(
            r#"{{"base": {BASE}, "vary": {{"consensus.election_timeout_max": [200, 300]}},
                "points": [{{"label": "lan", "set": {{"network.defaults.latency": 1}}}},
                           {{"label": "wan", "set": {{"network.defaults.latency": {{"dist": "uniform", "min": 30, "max": 40}}}}}}],
                "measure": {{"until": "leader_elected"}}}}"#
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(series(&c[0]), ["latency=1", "wan"]);
    }

    #[test]
    fn names_are_short() {
        assert_eq!(short_name("network.nodes[4].up"), "nodes[4].up");
        assert_eq!(short_name("consensus.prevote"), "prevote");
    }
}
