//! The human summary of a run, printed from the results document (so the terminal never says
//! anything the results file does not), plus the wall-clock speed, which only the terminal gets.

use coracle_sim::RunResult;
use coracle_sim::scenario::Scenario;
use serde_json::Value;
use std::io::{self, Write};
use std::time::Duration;

fn f(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                i.to_string()
            } else {
                let x = n.as_f64().unwrap_or(0.0);
                if x.abs() >= 100.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.2}")
                }
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lat(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    format!(
        "p50 {} ms, p99 {} ms, max {} ms",
        f(&v["p50"]),
        f(&v["p99"]),
        f(&v["max"])
    )
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0} ")
    }
}

/// Prints the summary table.
/// "1 key", "3 keys".
fn count(n: &Value, noun: &str) -> String {
    format!("{n} {noun}{}", if n.as_u64() == Some(1) { "" } else { "s" })
}

pub fn print(w: &mut dyn Write, s: &Scenario, r: &RunResult, wall: Duration) -> io::Result<()> {
    let res = &r.results;
    let title = s.title();
    writeln!(
        w,
        "{title}  ({}, protocol {}, seed {})",
        s.format.name(),
        s.protocol,
        res["seed"]
    )?;
    let events = res["events_processed"].as_u64().unwrap_or(0);
    let secs = wall.as_secs_f64().max(1e-9);
    let sim_ms = res["simulated_ms"].as_f64().unwrap_or(0.0);
    writeln!(
        w,
        "  simulated {} ms ({}), {} events in {:.3} s: {}events/s, {} real time",
        f(&res["simulated_ms"]),
        f(&res["termination_reason"]),
        events,
        secs,
        si(events as f64 / secs),
        speedup(sim_ms / 1000.0 / secs)
    )?;
    writeln!(
        w,
        "  network    {}; latency {}",
        network_counts(&res["network"]),
        lat(&res["network"]["latency_ms"])
    )?;
    let p = &res["protocol_stats"];
    let avail = p["available_ms"].as_f64().unwrap_or(0.0);
    // The dummy protocol has no leaders.
    if s.protocol != "dummy" {
        let share = if sim_ms > 0.0 {
            100.0 * avail / sim_ms
        } else {
            0.0
        };
        if p["time_to_first_leader_ms"].is_null() {
            writeln!(
                w,
                "  leaders    none elected, max term {}, a leader followed by a majority {share:.1}% of the time",
                p["max_term"]
            )?;
        } else {
            let changes = p["leader_changes"].as_u64().unwrap_or(0);
            writeln!(
                w,
                "  leaders    first after {} ms, elected in {} term{}, {changes} leader change{}, max term {}, a leader followed by a majority {share:.1}% of the time",
                f(&p["time_to_first_leader_ms"]),
                // Terms (views) in which a new leader arose: two leaders of one term, which only
                // a safety violation makes, count once (the `elections_won` counter counts both).
                p["leader_elections"],
                if p["leader_elections"] == 1 { "" } else { "s" },
                if changes == 1 { "" } else { "s" },
                p["max_term"],
            )?;
        }
    }
    let c = &res["clients"];
    if c["ops_issued"].as_u64().unwrap_or(0) > 0 {
        // Open-loop arrivals wait in their client's queue behind the one in flight: they are
        // outstanding but were never submitted (nor in the checked history).
        let queued = match c["ops_queued"].as_u64().unwrap_or(0) {
            0 => String::new(),
            q => format!(", {q} of them still queued at their client"),
        };
        // Issued = completed + failed + outstanding + lost with their client's crash.
        let lost = match c["ops_lost_in_crash"].as_u64().unwrap_or(0) {
            0 => String::new(),
            l => format!(", {l} lost when their client crashed"),
        };
        writeln!(
            w,
            "  clients    {} of {} operations completed ({} failed, {} outstanding{queued}{lost}, {} skipped); latency {}; {} ops/s",
            c["ops_completed"],
            c["ops_issued"],
            c["ops_failed"],
            c["ops_outstanding"],
            c["ops_skipped"],
            lat(&c["latency_ms"]),
            f(&c["throughput_ops_per_s"])
        )?;
    }
    let ch = &res["checks"];
    writeln!(
        w,
        "  checks     invariants {}, linearizability {} ({}, {})",
        f(&ch["invariants"]["status"]),
        f(&ch["linearizability"]["status"]),
        count(&ch["linearizability"]["operations"], "operation"),
        count(&ch["linearizability"]["keys_checked"], "key"),
    )?;
    // Why the history was not (fully) checked: the step budget, a stalled run, the cap on
    // recorded operations.
    if let Some(reason) = ch["linearizability"]["reason"].as_str() {
        writeln!(w, "             linearizability unknown: {reason}")?;
    }
    // Nodes table.
    let nodes = res["nodes"].as_array().cloned().unwrap_or_default();
    let rows: Vec<&Value> = nodes.iter().collect();
    if !rows.is_empty() && rows.len() <= 30 {
        writeln!(
            w,
            "  {:<10} {:<7} {:<5} {:<13} {:>6} {:>8} {:>8} {:>8}",
            "node", "type", "up", "role", "term", "log", "commit", "applied"
        )?;
        for n in rows {
            // A down server's term and log are those on its disk; its commit index and applied
            // entries were volatile: shown as "-".
            let down = n["role"] == "down";
            let volatile = |v: &Value| if down { "-".to_string() } else { f(v) };
            writeln!(
                w,
                "  {:<10} {:<7} {:<5} {:<13} {:>6} {:>8} {:>8} {:>8}",
                f(&n["id"]),
                f(&n["type"]),
                f(&n["up"]),
                f(&n["role"]),
                f(&n["term"]),
                f(&n["log_len"]),
                volatile(&n["commit_index"]),
                volatile(&n["applied"])
            )?;
        }
    }
    let counters = &p["counters"];
    if let Value::Object(m) = counters
        && !m.is_empty()
    {
        let list: Vec<String> = m
            .iter()
            .filter(|(_, v)| v.as_u64() != Some(0))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(w, "  counters   {}", list.join(", "))?;
    }
    for note in res["notes"].as_array().into_iter().flatten() {
        writeln!(w, "  note       {}", f(note))?;
    }
    Ok(())
}

/// "sent S (+D duplicated), delivered R, dropped X, F in flight": every packet sent and every
/// copy a duplicating link made was delivered, dropped or still in flight at the end, so
/// S + D = R + X + F. The duplicated and in-flight parts are left out when they are zero.
fn network_counts(n: &Value) -> String {
    let count = |k: &str| n[k].as_u64().unwrap_or(0);
    let drops: Vec<String> = n["packets_dropped"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!("sent {}", count("packets_sent"));
    let dup = count("packets_duplicated");
    if dup > 0 {
        s += &format!(" (+{dup} duplicated)");
    }
    s += &format!(", delivered {}, dropped ", count("packets_delivered"));
    if drops.is_empty() {
        s += "none";
    } else {
        s += &drops.join(", ");
    }
    let in_flight = count("packets_in_flight");
    if in_flight > 0 {
        s += &format!(", {in_flight} in flight");
    }
    s
}

/// "1234x", or "0.05x" for a run slower than real time (rather than "0x").
fn speedup(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}x")
    } else {
        format!("{:.2}x", x)
    }
}

#[cfg(test)]
mod tests {
    use super::network_counts;
    use serde_json::json;

    #[test]
    fn the_network_line_names_duplicates_and_packets_in_flight_when_there_are_any() {
        let drops = |loss: u64| json!({"loss": loss, "burst_loss": 0, "node_down": 0});
        let plain = json!({"packets_sent": 10, "packets_delivered": 10, "packets_dropped": drops(0),
                           "packets_duplicated": 0, "packets_in_flight": 0});
        assert_eq!(
            network_counts(&plain),
            "sent 10, delivered 10, dropped none"
        );
        let busy = json!({"packets_sent": 291, "packets_delivered": 430, "packets_dropped": drops(5),
                          "packets_duplicated": 147, "packets_in_flight": 3});
        assert_eq!(
            network_counts(&busy),
            "sent 291 (+147 duplicated), delivered 430, dropped loss 5, 3 in flight"
        );
    }
}
