//! `coracle compare`: one seeded scenario under several protocols, metrics side by side.

use crate::{EXIT_USAGE, EXIT_VIOLATION, fresh_seed};
use clap::Args;
use coracle_sim::{CheckOptions, RunOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CompareArgs {
    /// The scenario file.
    pub config: PathBuf,
    /// Protocols to compare, comma-separated; `vrr-durable` is VRR with `"durable": true`
    /// (replicas that write to disk, like Raft's).
    #[arg(long, value_delimiter = ',', default_value = "raft,vrr")]
    pub protocols: Vec<String>,
    /// Master seed (the same for every protocol).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Override a value of the file first, as `coracle run --set` does. Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Write all results as one JSON object keyed by protocol.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The name under which `compare` runs VRR with durable replicas.
const DURABLE_VRR: &str = "vrr-durable";

/// Printed under the table when Raft and VRR are compared: what the rows count differently.
const RAFT_VRR_NOTE: [&str; 3] = [
    "note: raft's committed entries include one no-op per leader term; vrr commits only client ops",
    "note: vrr starts in view 0 with its primary in place (first leader at 0 ms, available from 0);",
    "      raft's first leader waits for an election timeout and a vote, and that time counts as unavailable",
];

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_u64() {
            Some(i) => i.to_string(),
            None => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn main(args: CompareArgs) -> ExitCode {
    let base = match crate::load_scenario(&args.config, &args.set) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = args.seed.or(base.seed).unwrap_or_else(fresh_seed);
    let mut all = serde_json::Map::new();
    let mut failed = Vec::new();
    for (k, p) in args.protocols.iter().enumerate() {
        if args.protocols[..k].contains(p) {
            eprintln!("error: --protocols: \"{p}\" is named twice");
            return ExitCode::from(EXIT_USAGE);
        }
        let mut s = base.clone();
        s.protocol = p.clone();
        if p == DURABLE_VRR {
            s.protocol = "vrr".into();
            if let Some(c) = s.consensus.as_object_mut() {
                c.insert("durable".into(), true.into());
            }
        } else if !coracle_sim::config::PROTOCOLS.contains(&p.as_str()) {
            eprintln!(
                "error: --protocols: unknown protocol \"{p}\" (known: {}, {DURABLE_VRR})",
                coracle_sim::config::PROTOCOLS.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
        let r = match coracle_sim::run(&s, RunOptions::seeded(seed), &CheckOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: under protocol \"{p}\": {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        if let Some(m) = r.stall() {
            eprintln!("error: under protocol \"{p}\": {m}");
            return ExitCode::from(EXIT_USAGE);
        }
        if r.outcome.violation.is_some()
            || matches!(
                r.linearizability.verdict,
                coracle_check::Verdict::Violation(_)
            )
        {
            failed.push(p.clone());
        }
        all.insert(p.clone(), r.results);
    }
    let rows: &[(&str, &[&str])] = &[
        (
            "first leader (ms)",
            &["protocol_stats", "time_to_first_leader_ms"],
        ),
        ("leader elections", &["protocol_stats", "leader_elections"]),
        ("leader changes", &["protocol_stats", "leader_changes"]),
        ("max term / view", &["protocol_stats", "max_term"]),
        ("available (ms)", &["protocol_stats", "available_ms"]),
        (
            "unavailable windows",
            &["protocol_stats", "unavailability_windows_total"],
        ),
        (
            "committed entries",
            &["protocol_stats", "committed_entries"],
        ),
        ("ops completed", &["clients", "ops_completed"]),
        ("ops outstanding", &["clients", "ops_outstanding"]),
        ("latency p50 (ms)", &["clients", "latency_ms", "p50"]),
        ("latency p99 (ms)", &["clients", "latency_ms", "p99"]),
        ("throughput (ops/s)", &["clients", "throughput_ops_per_s"]),
        ("packets sent", &["network", "packets_sent"]),
        ("invariants", &["checks", "invariants", "status"]),
        ("linearizability", &["checks", "linearizability", "status"]),
    ];
    outln!("{}  (seed {seed})", args.config.display());
    out!("  {:<22}", "metric");
    for p in &args.protocols {
        out!(" {p:>14}");
    }
    outln!();
    for (name, path) in rows {
        out!("  {name:<22}");
        for p in &args.protocols {
            let mut v = &all[p];
            for k in *path {
                v = &v[*k];
            }
            out!(" {:>14}", cell(v));
        }
        outln!();
    }
    let has = |name: &str| args.protocols.iter().any(|p| p == name);
    if has("raft") && (has("vrr") || has(DURABLE_VRR)) {
        for line in RAFT_VRR_NOTE {
            outln!("  {line}");
        }
    }
    let disk = base.storage.mean_ms();
    if has("raft") && has("vrr") && disk > 0.0 {
        outln!(
            "  note: raft answers only after its disk writes (storage: {disk} ms each on average); diskless vrr"
        );
        if has(DURABLE_VRR) {
            outln!(
                "        writes nothing, so its latencies are not like for like: compare raft with {DURABLE_VRR}"
            );
        } else {
            outln!(
                "        writes nothing, so its latencies are not like for like: add {DURABLE_VRR} to --protocols"
            );
        }
    }
    for p in &args.protocols {
        for note in all[p]["notes"].as_array().into_iter().flatten() {
            outln!("  note ({p}): {}", cell(note));
        }
    }
    if let Some(o) = &args.output
        && let Err(e) = std::fs::write(
            o,
            serde_json::to_string_pretty(&Value::Object(all)).unwrap_or_default() + "\n",
        )
    {
        eprintln!("error: cannot write {}: {e}", o.display());
        return ExitCode::from(EXIT_USAGE);
    }
    for p in &failed {
        let (protocol, durable) = match p.as_str() {
            DURABLE_VRR => ("vrr", " --set consensus.durable=true"),
            other => (other, ""),
        };
        eprintln!(
            "a safety check failed under {p}; reproduce with: coracle run {}{} --set consensus.protocol={protocol}{durable} --seed {seed}",
            crate::shell_quote(&crate::shown(&args.config)),
            crate::set_args(&args.set),
        );
    }
    if !failed.is_empty() {
        return ExitCode::from(EXIT_VIOLATION);
    }
    ExitCode::SUCCESS
}
