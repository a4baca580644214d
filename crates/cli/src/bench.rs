//! `coracle bench`: the simulator's speed on fixed, seeded workloads.
//!
//! Each workload is a scenario file in `bench/` (so the same file can be timed on another
//! simulator) run in a child process of its own, so that its peak memory (the kernel's VmHWM)
//! is its own. A workload file with a `sweep` key instead names a sweep spec, whose trials run
//! in parallel on all cores as `coracle sweep` runs them (events and simulated time are summed
//! over the trials; nothing is written). The engine runs as in `coracle run` minus what only
//! serves correctness reporting after the run: no trace, no client history, no linearizability check (the
//! invariants are still checked on every step). `--quick` shortens every horizon so the whole
//! suite takes seconds; its event counts are deterministic and pinned by a test, so a
//! behavioural change shows up as a changed count while timings are only printed.

use crate::EXIT_USAGE;
use clap::Args;
use coracle_core::time_to_ms;
use coracle_sim::{CheckOptions, RunOptions};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Workloads to run (file stems in --dir); default all.
    pub names: Vec<String>,
    /// Short horizons (a few seconds in all), for CI.
    #[arg(long)]
    pub quick: bool,
    /// Folder of workload files.
    #[arg(long, default_value = "bench")]
    pub dir: PathBuf,
    /// Write the measurements as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// (Internal) run one workload in this process and print one JSON line.
    #[arg(long, hide = true)]
    pub one: Option<PathBuf>,
    /// Run every workload to this simulated time instead of its own horizon, ms (e.g.
    /// `coracle bench raft-5 --until 36000000`: 10 h, to see that memory stays flat).
    #[arg(long, value_name = "MS")]
    pub until: Option<f64>,
}

/// Trials per point of a sweep workload in quick mode.
pub const QUICK_TRIALS: u64 = 10;

/// Horizon of each workload in quick mode, ms.
pub const QUICK_MS: f64 = 2000.0;

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A workload file that points at a sweep spec: `{"name", "description", "sweep": PATH}`
/// (the path relative to the workload file).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepWorkload {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    description: String,
    sweep: PathBuf,
}

/// The sweep a workload file points at, if it is such a file (one with a `sweep` key).
fn sweep_workload(path: &Path) -> Result<Option<SweepWorkload>, String> {
    let Some(v) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|v| v.get("sweep").is_some())
    else {
        return Ok(None); // a scenario (the scenario loader reports its errors)
    };
    serde_json::from_value(v).map(Some).map_err(|e| {
        format!(
            "{}: a sweep workload is {{\"name\", \"description\", \"sweep\": PATH}}: {e}",
            path.display()
        )
    })
}

/// Runs every trial of a sweep on all cores; `quick` keeps the first few trials of each point.
fn run_sweep(file: &Path, quick: bool) -> ExitCode {
    use rayon::prelude::*;
    let mut spec = match coracle_sim::sweep::load_spec_file(file) {
        Ok(s) => s,
        Err(e) => return crate::config_error(&e),
    };
    if quick {
        for p in &mut spec.points {
            p.trials = p.trials.min(QUICK_TRIALS);
        }
    }
    let t0 = Instant::now();
    let prepared =
        match coracle_sim::sweep::prepare(&spec, &|p| format!("{}#{}", spec.file, p.label)) {
            Ok(p) => p,
            Err(e) => return crate::config_error(&e),
        };
    let todo = coracle_sim::sweep::runner::selected(&spec, None);
    let (events, simulated, violations) = todo
        .par_iter()
        .map(|&(p, t)| {
            let (row, cost) = coracle_sim::sweep::run_trial_costed(&spec, &prepared, p, t);
            (
                cost.events,
                cost.simulated,
                u64::from(row.violation.is_some()),
            )
        })
        .reduce(|| (0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let wall = t0.elapsed().as_secs_f64();
    let line = json!({
        "events": events,
        "wall_s": wall,
        "simulated_ms": time_to_ms(simulated),
        "peak_rss_kib": peak_rss_kib(),
        "invariants": if violations > 0 { "violation" } else { "ok" },
        "trials": todo.len(),
        "threads": rayon::current_num_threads(),
    });
    outln!("{line}");
    ExitCode::SUCCESS
}

fn run_one(path: &Path, until: Option<f64>, quick: bool) -> ExitCode {
    match sweep_workload(path) {
        Ok(Some(w)) => {
            let base = path.parent().unwrap_or(Path::new("."));
            return run_sweep(&base.join(w.sweep), quick);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let s = match coracle_sim::load_file(path) {
        Ok(s) => s,
        Err(e) => return crate::config_error(&e),
    };
    let seed = s.seed.unwrap_or(1);
    let mut opts = RunOptions::seeded(seed);
    opts.until = until.map(coracle_core::ms_to_time);
    opts.record_history = false;
    let checks = CheckOptions {
        skip_linearizability: true,
        ..Default::default()
    };
    let t0 = Instant::now();
    let r = match coracle_sim::run(&s, opts, &checks) {
        Ok(r) => r,
        Err(e) => return crate::config_error(&e),
    };
    let wall = t0.elapsed().as_secs_f64();
    let o = &r.outcome;
    if o.reason == coracle_sim::engine::StopReason::Stalled {
        // Millions of events at one instant are not a speed worth reporting.
        eprintln!(
            "error: {}: simulated time stopped passing at {} ms (see `coracle run {}`)",
            path.display(),
            time_to_ms(o.end),
            path.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(v) = &o.violation {
        eprintln!(
            "error: {}: invariant {} violated at {} ms: {} (see `coracle run {} --seed {seed}`)",
            path.display(),
            v.invariant,
            time_to_ms(v.time),
            v.message,
            path.display()
        );
        return ExitCode::from(crate::EXIT_VIOLATION);
    }
    let line = json!({
        "events": o.events,
        "wall_s": wall,
        "simulated_ms": time_to_ms(o.end),
        "peak_rss_kib": peak_rss_kib(),
        "invariants": "ok",
    });
    outln!("{line}");
    ExitCode::SUCCESS
}

pub fn main(args: BenchArgs) -> ExitCode {
    if let Some(p) = &args.one {
        return run_one(p, args.until, args.quick);
    }
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&args.dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            eprintln!(
                "error: cannot read {}: {e} (run from the repository root or pass --dir)",
                args.dir.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    files.sort();
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if !args.names.is_empty() {
        for n in &args.names {
            if !files.iter().any(|f| &stem(f) == n) {
                let known: Vec<String> = files.iter().map(|f| stem(f)).collect();
                eprintln!(
                    "error: no workload \"{n}\" in {} (workloads: {})",
                    args.dir.display(),
                    known.join(", ")
                );
                return ExitCode::from(EXIT_USAGE);
            }
        }
        files.retain(|f| args.names.contains(&stem(f)));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the coracle executable: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    outln!(
        "{:<16} {:>12} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "workload",
        "events",
        "wall s",
        "sim s",
        "events/s",
        "sim/real",
        "peak MiB"
    );
    let mut all = Vec::new();
    for f in &files {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench").arg("--one").arg(f);
        if args.quick {
            cmd.arg("--quick");
        }
        if let Some(ms) = args.until.or(args.quick.then_some(QUICK_MS)) {
            cmd.arg("--until").arg(ms.to_string());
        }
        let out = match cmd.output() {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!(
                    "error: workload {} failed:\n{}",
                    f.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                // A safety violation keeps its exit status (1); anything else is bad input.
                let code = o
                    .status
                    .code()
                    .filter(|&c| c == i32::from(crate::EXIT_VIOLATION));
                return ExitCode::from(code.map_or(EXIT_USAGE, |_| crate::EXIT_VIOLATION));
            }
            Err(e) => {
                eprintln!("error: cannot run the workload {}: {e}", f.display());
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let events = v["events"].as_u64().unwrap_or(0);
        let wall = v["wall_s"].as_f64().unwrap_or(0.0).max(1e-9);
        let sim = v["simulated_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        let rss = v["peak_rss_kib"]
            .as_u64()
            .map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
        outln!(
            "{:<16} {:>12} {:>10.3} {:>10.1} {:>12} {:>12.0} {:>10}",
            stem(f),
            events,
            wall,
            sim,
            format!("{:.2} M", events as f64 / wall / 1e6),
            sim / wall,
            rss
        );
        let mut rec = v.clone();
        rec["workload"] = json!(stem(f));
        rec["events_per_s"] = json!(events as f64 / wall);
        all.push(rec);
    }
    if let Some(j) = &args.json
        && let Err(e) = std::fs::write(
            j,
            serde_json::to_string_pretty(&all).unwrap_or_default() + "\n",
        )
    {
        eprintln!("error: cannot write {}: {e}", j.display());
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}
