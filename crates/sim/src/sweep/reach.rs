//! Measures that can never be met, found before any trial runs: a fault the timeline does
//! not contain (or contains fewer times than `nth`), a start after the run ends, `client_op`
//! without a client that issues operations, a `stable_for` longer than the run can hold, a
//! leader condition under a protocol without leaders. Each would otherwise run every trial
//! and report all of them censored or without the fault.
//!
//! What is certain from the scenario is an error. What depends on the random schedule (the
//! fault comes only from `chaos`) is a warning, printed before the trials run.

use super::runner::{Prepared, spec_error};
use super::spec::{Condition, From, Measure, Point, Spec};
use crate::config::ConfigError;
use crate::scenario::{Action, Chaos, Scenario, Target};
use coracle_core::{Time, ms_to_time, time_to_ms};

/// The action name a timeline action is recorded under when it fires (`link` in a measure
/// matches the three link names).
fn fired_name(a: &Action) -> &'static str {
    match a {
        Action::Crash(_) => "crash",
        Action::Recover(_) => "recover",
        Action::Pause(_) => "pause",
        Action::Resume(_) => "resume",
        Action::Isolate { .. } => "isolate",
        Action::Rejoin(_) => "rejoin",
        Action::Partition { .. } | Action::OneWay { .. } => "partition",
        Action::Heal | Action::HealOne(_) => "heal",
        Action::LinkUpOne(_) => "link_up",
        Action::Clock { .. } => "clock",
        Action::Link { change, .. } => match change.up {
            Some(true) => "link_up",
            Some(false) => "link_down",
            None => "link_change",
        },
        Action::Flap { .. } => "flap",
    }
}

fn name_matches(wanted: &str, fired: &str) -> bool {
    if wanted == "link" {
        fired.starts_with("link_")
    } else {
        wanted == fired
    }
}

/// The node an action is aimed at, when it is aimed at one (`None` for a role, resolved when
/// it fires); `Err(())` for actions that hit no node (partitions, heals, links, flaps).
fn aimed_at(a: &Action) -> Result<Option<usize>, ()> {
    let t = a.target().ok_or(())?;
    Ok(match t {
        Target::Node(i) => Some(*i),
        Target::Role(_) | Target::Bound(_) => None,
    })
}

/// Whether the random fault schedule can fire an action recorded as `name` (hitting a node,
/// when `node` is asked for).
fn chaos_makes(c: &Chaos, name: &str, node: bool) -> bool {
    let kind = match name {
        "crash" | "recover" => &c.crash,
        "pause" | "resume" => &c.pause,
        "isolate" | "rejoin" => &c.isolate,
        "partition" | "heal" if !node => &c.partition,
        "link" if !node => &c.link,
        _ => return false,
    };
    kind.as_ref().is_some_and(|f| f.rate > 0.0)
}

/// The scripted actions' names, for messages.
fn timeline_names(sc: &Scenario) -> String {
    let mut names: Vec<&str> = Vec::new();
    for a in &sc.timeline {
        let n = fired_name(&a.action);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        "no actions".to_string()
    } else {
        format!("only {}", names.join(", "))
    }
}

fn ms(t: Time) -> String {
    let x = time_to_ms(t);
    let r = (x * 1000.0).round() / 1000.0;
    format!("{r}")
}

/// One finding about one point.
struct Finding {
    path: String,
    message: String,
    certain: bool,
}

/// Checks every point's measure against its scenario. Returns the warnings (things that
/// depend on the random schedule), each once with the points it concerns, or the first
/// certain error.
pub fn check(spec: &Spec, prepared: &[Prepared]) -> Result<Vec<String>, ConfigError> {
    let mut warnings: Vec<(String, Vec<&str>)> = Vec::new();
    for (p, prep) in spec.points.iter().zip(prepared) {
        for f in findings(p, &prep.scenario) {
            let of_point = if spec.points.len() > 1 {
                format!(" (point {})", p.label)
            } else {
                String::new()
            };
            if f.certain {
                return Err(spec_error(
                    spec,
                    &f.path,
                    format!("{}{of_point}", f.message),
                ));
            }
            let text = format!("{}: {}: {}", spec.file, f.path, f.message);
            match warnings.iter_mut().find(|(t, _)| *t == text) {
                Some((_, pts)) => pts.push(&p.label),
                None => warnings.push((text, vec![&p.label])),
            }
        }
    }
    Ok(warnings
        .into_iter()
        .map(|(t, pts)| {
            if spec.points.len() > 1 {
                format!("{t} (points: {})", pts.join(", "))
            } else {
                t
            }
        })
        .collect())
}

fn findings(p: &Point, sc: &Scenario) -> Vec<Finding> {
    let Measure::Interval {
        from,
        until,
        stable_for,
        ..
    } = &p.measure
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let end = sc.termination;
    // The earliest time the interval can start.
    let earliest: Option<Time> = match from {
        From::At(t) => {
            let at = ms_to_time(*t);
            if at >= end {
                out.push(Finding {
                    path: p.measure_path("from.at"),
                    message: format!(
                        "expected a time before the scenario's termination ({} ms), found {t}: the measured interval would start when the run has ended",
                        ms(end)
                    ),
                    certain: true,
                });
                return out;
            }
            Some(at)
        }
        From::Action { action, node, nth } => {
            let nth = *nth as usize;
            // Scripted actions that can fire as this fault (a role target may resolve to
            // the node asked for; an action past the termination never fires).
            let mut times: Vec<Time> = sc
                .timeline
                .iter()
                .filter(|a| a.at <= end && name_matches(action, fired_name(&a.action)))
                .filter(|a| match (node, aimed_at(&a.action)) {
                    (None, _) => true,
                    (Some(_), Err(())) => false,
                    (Some(_), Ok(None)) => true,
                    (Some(n), Ok(Some(i))) => sc.nodes[i].name.text() == *n,
                })
                .map(|a| a.at)
                .collect();
            times.sort_unstable();
            let chaos = sc
                .chaos
                .as_ref()
                .filter(|c| chaos_makes(c, action, node.is_some()));
            let of_node = node
                .as_ref()
                .map_or(String::new(), |n| format!(" hitting node {n}"));
            match (times.len(), chaos) {
                (k, _) if k >= nth => Some(times[nth - 1]),
                (k, Some(c)) => {
                    out.push(Finding {
                        path: p.measure_path("from"),
                        message: format!(
                            "the timeline has {k} \"{action}\" action(s){of_node}, fewer than the {nth} the measure waits for: the rest must come from the random fault schedule (chaos), so trials where they do not happen are reported as no_fault"
                        ),
                        certain: false,
                    });
                    Some(c.start.min(times.first().copied().unwrap_or(c.start)))
                }
                (0, None) => {
                    let why = if node.is_some() && times.is_empty() {
                        format!(
                            "no \"{action}\" action of the timeline hits node {}",
                            node.as_deref().unwrap_or("")
                        )
                    } else {
                        format!("the timeline has {}", timeline_names(sc))
                    };
                    out.push(Finding {
                        path: p.measure_path(if node.is_some() {
                            "from.node"
                        } else {
                            "from.action"
                        }),
                        message: format!(
                            "expected an action the scenario's timeline contains (before its termination at {} ms), found \"{action}\"{of_node}: {why} and no random fault schedule makes it, so the measured interval never starts",
                            ms(end)
                        ),
                        certain: true,
                    });
                    return out;
                }
                (k, None) => {
                    out.push(Finding {
                        path: p.measure_path("from.nth"),
                        message: format!(
                            "expected at most {k} (the scenario's timeline has {k} \"{action}\" action(s){of_node} and no random fault schedule makes more), found {nth}: the measured interval never starts"
                        ),
                        certain: true,
                    });
                    return out;
                }
            }
        }
    };
    let leaders = matches!(
        until,
        Condition::LeaderElected | Condition::LeaderKnown | Condition::Stable
    );
    if leaders && sc.protocol == "dummy" {
        out.push(Finding {
            path: p.measure_path("until"),
            message: format!(
                "expected a condition the scenario can reach, found \"{}\": the dummy protocol elects no leader",
                until.name()
            ),
            certain: true,
        });
        return out;
    }
    if *until == Condition::ClientOp && sc.workloads.iter().all(Option::is_none) {
        let clients = sc
            .nodes
            .iter()
            .filter(|n| n.kind == crate::config::spec::NodeKind::Client)
            .count();
        out.push(Finding {
            path: p.measure_path("until"),
            message: format!(
                "expected a condition the scenario can reach, found \"client_op\": {}, so no client operation ever completes (add clients and a \"workload\", or measure leader_known)",
                if clients == 0 {
                    "the scenario has no clients".to_string()
                } else {
                    format!("none of its {clients} client(s) has a workload")
                }
            ),
            certain: true,
        });
        return out;
    }
    if *until == Condition::Stable
        && let Some(f) = earliest
    {
        let room = end.saturating_sub(f);
        if ms_to_time(*stable_for) > room {
            out.push(Finding {
                path: p.measure_path("stable_for"),
                message: format!(
                    "expected at most {} ms (from the earliest start of the interval, {} ms, to the scenario's termination, {} ms), found {stable_for}: no leadership can last that long within the run",
                    ms(room),
                    ms(f),
                    ms(end)
                ),
                certain: true,
            });
        }
    }
    out
}
