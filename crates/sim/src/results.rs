//! The results file: a versioned, fully deterministic JSON document (`docs/results.md`).
//!
//! Nothing here depends on wall-clock time; the same scenario and seed give the same bytes.

use crate::config::spec::NodeKind;
use crate::engine::{NodeReport, Outcome};
use crate::metrics::Histogram;
use crate::scenario::Scenario;
use coracle_core::{Role, Time, time_to_ms};
use serde_json::{Map, Value, json};

/// Version of the results schema. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

fn ms(t: Time) -> Value {
    json!(time_to_ms(t))
}

fn latency_json(h: &Histogram) -> Value {
    if h.n == 0 {
        return Value::Null;
    }
    json!({
        "min": time_to_ms(h.min),
        "mean": h.mean().round() / 1e6,
        "p50": time_to_ms(h.quantile(0.5)),
        "p90": time_to_ms(h.quantile(0.9)),
        "p99": time_to_ms(h.quantile(0.99)),
        "max": time_to_ms(h.max),
    })
}

fn series_json(s: &[(Time, u64)]) -> Value {
    Value::Array(s.iter().map(|(t, v)| json!([time_to_ms(*t), v])).collect())
}

fn counters_json(c: &[(&'static str, u64)]) -> Value {
    let mut m = Map::new();
    for (k, v) in c {
        m.insert((*k).to_string(), json!(v));
    }
    Value::Object(m)
}

fn node_json(s: &Scenario, n: &NodeReport) -> Value {
    let d = &s.nodes[n.index];
    let mut o = json!({
        "id": d.name.to_json(),
        "type": d.kind.name(),
        "up": n.up,
    });
    if n.kind == NodeKind::Server {
        o["role"] = json!(n.obs.role.name());
        if let Some((term, log_len)) = n.durable {
            // Down: what its disk holds; commit index and applied entries were volatile (0,
            // as at a restart).
            o["term"] = json!(term);
            o["commit_index"] = json!(0);
            o["log_len"] = json!(log_len);
            o["applied"] = json!(0);
        } else {
            o["term"] = json!(n.obs.term);
            o["commit_index"] = json!(n.obs.commit_index);
            o["log_len"] = json!(n.obs.log_len);
            o["applied"] = json!(n.applied);
        }
    }
    if !n.counters.is_empty() {
        o["counters"] = counters_json(&n.counters);
    }
    if !n.state.is_null() {
        o["state"] = n.state.clone();
    }
    o
}

/// The results document of a run of `s`; `warnings` are the scenario's and the protocol's, and
/// `notes` (said about how the run ended) are derived from the outcome ([`notes`]).
/// The checker's explanation of a witness with the user's client ids: the checker knows
/// clients only by index and writes `by #3 at [..]`.
pub fn witness_explanation(s: &Scenario, w: &coracle_check::Witness) -> String {
    let mut out = String::with_capacity(w.explanation.len());
    let mut rest = w.explanation.as_str();
    while let Some(i) = rest.find("by #") {
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 4..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let name = after[..digits]
            .parse::<usize>()
            .ok()
            .filter(|_| after[digits..].starts_with(" at ["))
            .and_then(|n| s.nodes.get(n));
        match name {
            Some(node) => {
                out.push_str(&node.name.text());
                rest = &after[digits..];
            }
            None => {
                out.push('#');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `checks.linearizability`: the checker's report, with a witness's clients named by their
/// ids and its times in milliseconds, as everywhere else in the results.
fn linearizability_json(s: &Scenario, lin: &coracle_check::Report) -> Value {
    let mut v = lin.to_json();
    if let coracle_check::Verdict::Violation(w) = &lin.verdict {
        v["witness"]["explanation"] = json!(witness_explanation(s, w));
        v["witness"]["operations"] = w
            .operations
            .iter()
            .zip(
                v["witness"]["operations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            )
            .map(|(o, mut j)| {
                j["client"] = s.nodes[o.client.index()].name.to_json();
                j["invoke"] = ms(o.invoke);
                j["complete"] = o.complete.map_or(Value::Null, ms);
                j
            })
            .collect();
    }
    v
}

/// `settings`: the protocol's parameters in effect (every default resolved), as `coracle check`
/// prints them, so that a results file says what ran.
pub fn build(
    s: &Scenario,
    o: &Outcome,
    lin: &coracle_check::Report,
    warnings: &[String],
    settings: &Value,
) -> Value {
    let net = &o.net;
    let mut by_kind: Vec<_> = net.by_kind.clone();
    by_kind.sort_by(|a, b| a.0.cmp(b.0));
    let l = &o.leaders;
    let windows: Vec<Value> = l
        .windows
        .iter()
        .map(|(a, b)| json!([time_to_ms(*a), time_to_ms(*b)]))
        .collect();

    // Clients.
    let mut lat = Histogram::default();
    for c in &o.clients {
        lat.merge(&c.latency);
    }
    let secs = time_to_ms(o.end) / 1000.0;
    let per_client: Vec<Value> = o
        .clients
        .iter()
        .map(|c| {
            json!({
                "id": s.nodes[c.index].name.to_json(),
                "ops_issued": c.issued,
                "ops_completed": c.completed,
                "ops_failed": c.failed,
                "ops_skipped": c.skipped,
                "ops_outstanding": c.outstanding,
                "ops_queued": c.queued,
                "ops_lost_in_crash": c.lost,
                "latency_ms": latency_json(&c.latency),
                "throughput_ops_per_s": if secs > 0.0 { c.completed as f64 / secs } else { 0.0 },
            })
        })
        .collect();
    let sum = |f: fn(&crate::engine::ClientReport) -> u64| o.clients.iter().map(f).sum::<u64>();
    let completed = sum(|c| c.completed);

    let servers: Vec<&NodeReport> = o
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Server)
        .collect();
    let series_of = |f: fn(&NodeReport) -> &Vec<(Time, u64)>| -> Value {
        Value::Array(servers.iter().map(|n| json!({ "node": s.nodes[n.index].name.to_json(), "points": series_json(f(n)) })).collect())
    };

    let mut doc = json!({
        "schema_version": SCHEMA_VERSION,
        "coracle_version": env!("CARGO_PKG_VERSION"),
        "scenario": {
            "file": s.source.file,
            "name": s.title(),
            "format": s.format.name(),
            "servers": s.count(NodeKind::Server),
            "clients": s.count(NodeKind::Client),
            "hubs": s.count(NodeKind::Hub),
            "links": s.links.len(),
        },
        "seed": o.seed,
        "protocol": s.protocol,
        "protocol_settings": settings,
        "simulated_ms": time_to_ms(o.end),
        "horizon_ms": time_to_ms(o.horizon),
        "termination_reason": o.reason.name(),
        "events_processed": o.events,
        "network": {
            "packets_sent": net.sent,
            "packets_delivered": net.delivered,
            "packets_dropped": net.drops.all().iter().map(|(k, v)| ((*k).to_string(), json!(v))).collect::<Map<String, Value>>(),
            "packets_duplicated": net.duplicated,
            "packets_in_flight": o.in_flight,
            "loopback": net.loopback,
            "latency_ms": latency_json(&net.latency),
            "messages_by_type": counters_json(&by_kind),
            "route_computations": o.route_computations,
            "route_repairs": o.route_repairs,
        },
        "nodes": o.nodes.iter().map(|n| node_json(s, n)).collect::<Vec<_>>(),
        "protocol_stats": {
            "time_to_first_leader_ms": l.first_leader.map(ms),
            "leader_elections": l.leader_elections,
            "leader_changes": l.leader_changes,
            "max_term": l.max_term,
            "committed_entries": o.committed,
            "available_ms": time_to_ms(l.available_total),
            "unavailable_ms": time_to_ms(o.end.saturating_sub(l.available_total)),
            "unavailability_windows": windows,
            "unavailability_windows_total": l.windows_total,
            "counters": counters_json(&o.counters),
        },
        "clients": {
            "ops_issued": sum(|c| c.issued),
            "ops_completed": completed,
            "ops_failed": sum(|c| c.failed),
            "ops_skipped": sum(|c| c.skipped),
            "ops_outstanding": sum(|c| c.outstanding),
            "ops_queued": sum(|c| c.queued),
            "ops_lost_in_crash": sum(|c| c.lost),
            "latency_ms": latency_json(&lat),
            "throughput_ops_per_s": if secs > 0.0 { completed as f64 / secs } else { 0.0 },
            "per_client": per_client,
        },
        "checks": {
            "invariants": {
                "status": if o.violation.is_some() { "violation" } else { "ok" },
                "checked": crate::checks::INVARIANTS,
                "violation": o.violation.as_ref().map(|v| json!({
                    "invariant": v.invariant,
                    "time_ms": time_to_ms(v.time),
                    "nodes": v.nodes.iter().map(|n| s.nodes[n.index()].name.to_json()).collect::<Vec<_>>(),
                    "message": v.message,
                })),
            },
            "linearizability": linearizability_json(s, lin),
        },
        "series": {
            "term": series_of(|n| &n.terms),
            "role": series_of(|n| &n.roles),
            "leader": Value::Array(servers.iter().map(|n| json!({
                "node": s.nodes[n.index].name.to_json(),
                "points": n.leaders.iter().map(|(t, l)| json!([time_to_ms(*t), if *l == 0 { Value::Null } else { s.nodes[*l as usize - 1].name.to_json() }])).collect::<Vec<_>>(),
            })).collect()),
            "commits": series_of(|n| &n.commits),
        },
        "actions": o.fired,
        "actions_total": o.fired_total,
        "warnings": warnings,
    });
    doc["notes"] = json!(notes(o, loses_state_on_crash(s)));
    doc
}

/// Whether the servers of `s` lose their state when they crash: diskless VRR replicas
/// (`durable` absent or false). A down one holds nothing, and comes back recovering.
pub fn loses_state_on_crash(s: &Scenario) -> bool {
    s.protocol == "vrr" && s.consensus.get("durable").and_then(Value::as_bool) != Some(true)
}

/// What is said in words about how a run ended: the results' `notes`, and the `notes` of a
/// sweep's trial (which often has only the engine's outcome). Read from the final roles of
/// the servers; `diskless` is [`loses_state_on_crash`] of the scenario.
pub fn notes(o: &Outcome, diskless: bool) -> Vec<String> {
    let servers = o.nodes.iter().filter(|n| n.kind == NodeKind::Server);
    let count = |role: Role| servers.clone().filter(|n| n.obs.role == role).count();
    let down = if diskless { count(Role::Down) } else { 0 };
    recovering_note(servers.clone().count(), count(Role::Recovering), down)
        .into_iter()
        .collect()
}

/// [`recovering_note`] read from a results document's `nodes` (a results file read back);
/// `diskless` as for [`notes`] (the document does not say whether the replicas were durable).
pub fn stall_note(doc: &Value, diskless: bool) -> Option<String> {
    let nodes = doc["nodes"].as_array()?;
    let servers: Vec<&Value> = nodes.iter().filter(|n| n["type"] == "server").collect();
    let count = |role: &str| servers.iter().filter(|n| n["role"] == role).count();
    let down = if diskless { count("down") } else { 0 };
    recovering_note(servers.len(), count("recovering"), down)
}

/// VRR's known dead end (§4.3 assumes at most f replicas fail at once), said in words: the
/// checks are all ok and only the availability numbers show it, which a liveness bug would show
/// too. `servers` is the cluster's size; `recovering` how many of its replicas end in the
/// recovering role and `down` how many diskless ones end down: both lost their state (a down
/// one comes back recovering), so together they count against f.
pub fn recovering_note(servers: usize, recovering: usize, down: usize) -> Option<String> {
    let f_max = servers.saturating_sub(1) / 2;
    let lost = recovering + down;
    (lost > f_max).then(|| {
        let what = if down == 0 {
            format!("{recovering} of {servers} replicas end recovering")
        } else {
            format!(
                "{lost} of {servers} replicas end without their state ({recovering} recovering, {down} down)"
            )
        };
        format!(
            "{what}, more than f = {f_max}: diskless VRR cannot recover once more than f replicas lost their state at once (the paper's assumption); see `durable` in docs/config.md"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::recovering_note;

    #[test]
    fn the_recovering_note_needs_more_than_f_recovering_replicas() {
        // f = 1 of 3, 2 of 5 (and of 6: f = (n - 1) / 2).
        for (servers, f) in [(1, 0), (3, 1), (5, 2), (6, 2)] {
            assert_eq!(recovering_note(servers, f, 0), None, "{f} of {servers}");
            let note = recovering_note(servers, f + 1, 0).expect("more than f");
            assert!(
                note.starts_with(&format!(
                    "{} of {servers} replicas end recovering, more than f = {f}: diskless VRR",
                    f + 1
                )),
                "{note}"
            );
        }
        assert_eq!(recovering_note(0, 0, 0), None, "no servers");
        assert_eq!(
            recovering_note(3, 2, 0).unwrap(),
            "2 of 3 replicas end recovering, more than f = 1: diskless VRR cannot recover once more than f replicas lost their state at once (the paper's assumption); see `durable` in docs/config.md"
        );
    }

    /// A diskless replica that is down lost its state as much as a recovering one (it comes
    /// back recovering): both count against f.
    #[test]
    fn the_recovering_note_counts_down_diskless_replicas_too() {
        assert_eq!(recovering_note(5, 2, 0), None);
        assert_eq!(recovering_note(5, 1, 1), None);
        assert_eq!(
            recovering_note(5, 2, 1).unwrap(),
            "3 of 5 replicas end without their state (2 recovering, 1 down), more than f = 2: diskless VRR cannot recover once more than f replicas lost their state at once (the paper's assumption); see `durable` in docs/config.md"
        );
        assert!(recovering_note(3, 0, 2).unwrap().starts_with(
            "2 of 3 replicas end without their state (0 recovering, 2 down), more than f = 1"
        ));
    }
}
