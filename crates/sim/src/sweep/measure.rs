//! Measurements of one trial: the time from a fault to a condition, read from the run's step
//! series (role, believed leader per server), the timeline actions that fired and, for
//! `client_op`, the client history.

use super::spec::{Condition, From};
use crate::config::spec::NodeKind;
use crate::engine::Outcome;
use crate::metrics::Series;
use crate::scenario::Scenario;
use coracle_core::{Time, ms_to_time};

/// Role level of a leader in the role series.
const LEADER: u64 = 4;
/// Role level of a node that is down.
const DOWN: u64 = 0;

/// The outcome of evaluating a condition on a (possibly shortened) run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eval {
    /// The fault has not happened within the run (yet).
    NoFault,
    /// Reached at this time (`fault`, `at`).
    Reached { fault: Time, at: Time },
    /// Not reached by the end of the run (`fault`).
    NotYet { fault: Time },
}

/// The value of a step series at `t` (after every change at `t`), if it has started.
fn at(s: &Series, t: Time) -> Option<u64> {
    let i = s.partition_point(|p| p.0 <= t);
    if i == 0 { None } else { Some(s[i - 1].1) }
}

/// When the fault happened.
pub fn fault_time(from: &From, o: &Outcome, scenario: &Scenario) -> Option<Time> {
    match from {
        From::At(ms) => {
            let t = ms_to_time(*ms);
            (t <= o.end).then_some(t)
        }
        From::Action { action, node, nth } => {
            let mut k = 0;
            for f in &o.fired {
                let name = f.get("action").and_then(|a| a.as_str()).unwrap_or("");
                // "link" names the link actions, recorded as link_down, link_up, link_change.
                let matches = if action == "link" {
                    name.starts_with("link_")
                } else {
                    name == action
                };
                if !matches {
                    continue;
                }
                if f.get("skipped").is_some() {
                    continue;
                }
                if let Some(n) = node {
                    let hit = f.get("node").map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    if hit.as_deref() != Some(n.as_str()) {
                        continue;
                    }
                }
                k += 1;
                if k == *nth {
                    let ms = f.get("t").and_then(|t| t.as_f64())?;
                    return Some(ms_to_time(ms));
                }
            }
            let _ = scenario;
            None
        }
    }
}

/// Servers' indices.
fn servers(o: &Outcome) -> impl Iterator<Item = usize> + '_ {
    o.nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Server)
        .map(|n| n.index)
}

/// Evaluates `cond` from `fault` on the run `o` (which ended at `o.end`).
pub fn evaluate(cond: Condition, stable_for: f64, fault: Time, o: &Outcome) -> Eval {
    let end = o.end;
    let found = match cond {
        Condition::LeaderElected => servers(o)
            .filter_map(|i| {
                o.nodes[i]
                    .roles
                    .iter()
                    .find(|p| p.0 >= fault && p.1 == LEADER)
                    .map(|p| p.0)
            })
            .min(),
        Condition::LeaderKnown => leader_known(fault, o),
        Condition::ClientOp => o
            .history
            .iter()
            .filter(|r| r.result.is_some())
            .filter_map(|r| r.complete)
            .filter(|&c| c >= fault)
            .min(),
        Condition::Stable => {
            let need = ms_to_time(stable_for);
            let mut best: Option<Time> = None;
            for i in servers(o) {
                let r = &o.nodes[i].roles;
                for (k, p) in r.iter().enumerate() {
                    if p.1 != LEADER {
                        continue;
                    }
                    let stop = r.get(k + 1).map(|q| q.0);
                    if stop.is_some_and(|s| s <= fault) {
                        continue;
                    }
                    let start = p.0.max(fault);
                    let lasted = stop.unwrap_or(end).saturating_sub(start);
                    if lasted >= need && best.is_none_or(|b| start < b) {
                        best = Some(start);
                    }
                }
            }
            best
        }
    };
    match found {
        Some(t) if t <= end => Eval::Reached { fault, at: t },
        _ => Eval::NotYet { fault },
    }
}

/// The first time at or after `fault` when some server that became leader at or after `fault`
/// is still leader and every live server believes it leads.
fn leader_known(fault: Time, o: &Outcome) -> Option<Time> {
    let srv: Vec<usize> = servers(o).collect();
    let mut times: Vec<Time> = vec![fault];
    for &i in &srv {
        let n = &o.nodes[i];
        times.extend(n.roles.iter().map(|p| p.0).filter(|&t| t >= fault));
        times.extend(n.leaders.iter().map(|p| p.0).filter(|&t| t >= fault));
    }
    times.sort_unstable();
    times.dedup();
    for t in times {
        // A leader elected at or after the fault.
        let leader = srv.iter().copied().find(|&i| {
            let r = &o.nodes[i].roles;
            let k = r.partition_point(|p| p.0 <= t);
            k > 0 && r[k - 1].1 == LEADER && r[k - 1].0 >= fault
        });
        let Some(l) = leader else { continue };
        let ok = srv.iter().all(|&i| {
            let n = &o.nodes[i];
            match at(&n.roles, t) {
                None | Some(DOWN) => true,
                Some(_) => at(&n.leaders, t) == Some(l as u64 + 1),
            }
        });
        if ok {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_series_lookup() {
        let s: Series = vec![(10, 1), (20, 4), (20, 3), (30, 1)];
        assert_eq!(at(&s, 5), None);
        assert_eq!(at(&s, 10), Some(1));
        assert_eq!(at(&s, 20), Some(3));
        assert_eq!(at(&s, 29), Some(3));
        assert_eq!(at(&s, 31), Some(1));
    }
}
