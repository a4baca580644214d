//! `coracle plot`: draws a single run's time series from its results file as SVG: term per
//! server, role per server as a timeline, commits per server, and (with the run's trace)
//! client latency over time.

use crate::EXIT_USAGE;
use clap::Args;
use coracle_report::plot::{self, Steps};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct PlotArgs {
    /// The results file (`coracle run --output results.json`).
    pub results: PathBuf,
    /// Where the SVG files go.
    #[arg(long, value_name = "DIR")]
    pub output_dir: PathBuf,
    /// The run's trace (`coracle run --trace`), for client latency over time.
    #[arg(long, value_name = "TRACE.jsonl")]
    pub trace: Option<PathBuf>,
}

/// The intervals (ms) each node was down, from the role series (level 0), by node.
fn down_intervals(results: &Value, end: f64) -> HashMap<String, Vec<(f64, f64)>> {
    series(results, "role", &HashMap::new(), &HashMap::new())
        .into_iter()
        .map(|s| {
            let mut down = Vec::new();
            for (k, &(t, level)) in s.points.iter().enumerate() {
                if level == 0.0 {
                    down.push((t, s.points.get(k + 1).map_or(end, |p| p.0)));
                }
            }
            (s.node, down)
        })
        .collect()
}

fn series(
    results: &Value,
    name: &str,
    leader_ids: &HashMap<String, f64>,
    down: &HashMap<String, Vec<(f64, f64)>>,
) -> Vec<Steps> {
    results["series"][name]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| Steps {
            node: match &s["node"] {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            },
            points: s["points"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let t = p.get(0)?.as_f64()?;
                    let v = match p.get(1)? {
                        Value::Number(n) => n.as_f64()?,
                        Value::Null => 0.0,
                        Value::String(s) => *leader_ids.get(s).unwrap_or(&0.0),
                        _ => return None,
                    };
                    Some((t, v))
                })
                .collect(),
            down: Vec::new(),
        })
        .map(|mut st| {
            st.down = down.get(&st.node).cloned().unwrap_or_default();
            st
        })
        .collect()
}

pub fn main(a: PlotArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(EXIT_USAGE)
    };
    let text = match std::fs::read_to_string(&a.results) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: cannot read: {e}", a.results.display())),
    };
    let r: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(format!("{}: invalid JSON: {e}", a.results.display())),
    };
    if r.get("series").is_none() {
        return fail(format!(
            "{}: expected a results file of coracle run --output (no \"series\")",
            a.results.display()
        ));
    }
    let version = coracle_sim::results::SCHEMA_VERSION;
    if r["schema_version"].as_u64() != Some(version as u64) {
        return fail(format!(
            "{}: schema_version: expected {version} (this coracle's results format), found {}",
            a.results.display(),
            r["schema_version"]
        ));
    }
    let end = r["simulated_ms"].as_f64().unwrap_or(0.0);
    let name = r["scenario"]["name"].as_str().unwrap_or("run").to_string();
    let ids: HashMap<String, f64> = r["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, n)| {
            let id = match &n["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (id, i as f64 + 1.0)
        })
        .collect();
    if let Err(e) = std::fs::create_dir_all(&a.output_dir) {
        return fail(format!("{}: {e}", a.output_dir.display()));
    }
    let mut written = Vec::new();
    let mut out = |file: &str, svg: Result<String, String>| -> Result<(), String> {
        let svg = svg?;
        let p = a.output_dir.join(file);
        std::fs::write(&p, svg).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p.display().to_string());
        Ok(())
    };
    // VRR's words for Raft's: a view is its term, a primary its leader.
    let vrr = r["protocol"].as_str() == Some("vrr");
    let (term, server, roles) = if vrr {
        ("view", "replica", &plot::VRR_ROLES)
    } else {
        ("term", "server", &plot::ROLES)
    };
    let down = down_intervals(&r, end);
    let no_gaps = HashMap::new();
    let res = (|| -> Result<(), String> {
        out(
            "term.svg",
            plot::steps_chart(
                &format!("{name}: {term} per {server}"),
                term,
                &series(&r, "term", &ids, &down),
                end,
            ),
        )?;
        out(
            "roles.svg",
            plot::role_timeline(
                &format!("{name}: role per {server}"),
                roles,
                &series(&r, "role", &ids, &no_gaps),
                end,
            ),
        )?;
        out(
            "commits.svg",
            plot::steps_chart(
                &format!("{name}: entries applied per {server}"),
                "entries applied",
                &series(&r, "commits", &ids, &down),
                end,
            ),
        )?;
        Ok(())
    })();
    if let Err(e) = res {
        return fail(e);
    }
    match &a.trace {
        Some(t) => {
            let text = match std::fs::read_to_string(t) {
                Ok(x) => x,
                Err(e) => return fail(format!("{}: cannot read: {e}", t.display())),
            };
            let (text, cut) = coracle_report::trace::complete_lines(&text);
            if let Some(w) = cut {
                eprintln!("warning: {}: {w}", t.display());
            }
            let mut ops = match coracle_report::trace::client_latencies(text) {
                Ok(o) => o,
                Err(e) => return fail(format!("{}: {e}", t.display())),
            };
            // Clients in the file's order (the legend's), each's operations by completion.
            ops.sort_by(|a, b| {
                let at = |c: &str| ids.get(c).copied().unwrap_or(f64::MAX);
                at(&a.0).total_cmp(&at(&b.0))
            });
            // Every operation that ends (completed or failed) ends once in the trace: a
            // different count means the trace is of another run.
            let ended = ["ops_completed", "ops_failed"]
                .iter()
                .map(|k| r["clients"][k].as_u64().unwrap_or(0))
                .sum::<u64>();
            if ops.len() as u64 != ended {
                return fail(format!(
                    "{}: expected the trace of the run in the results file ({ended} client operations ended), found a trace with {} (give the trace written by the same `coracle run ... --trace`)",
                    t.display(),
                    ops.len()
                ));
            }
            if ops.is_empty() {
                eprintln!(
                    "note: no client operation completed in {}: latency.svg not drawn",
                    t.display()
                );
            } else if let Err(e) = out(
                "latency.svg",
                plot::latency_chart(&format!("{name}: client latency"), &ops, end),
            ) {
                return fail(e);
            }
        }
        None => eprintln!(
            "note: client latency over time needs the run's trace: coracle run ... --trace trace.jsonl, then --trace trace.jsonl"
        ),
    }
    for w in &written {
        outln!("wrote {w}");
    }
    ExitCode::SUCCESS
}
