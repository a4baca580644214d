//! `coracle run`.

use crate::{EXIT_USAGE, EXIT_VIOLATION, config_error, fresh_seed, shell_quote, shown, summary};
use clap::Args;
use coracle_core::{ms_to_time, time_to_ms};
use coracle_sim::trace::Tracer;
use coracle_sim::{CheckOptions, RunOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct RunArgs {
    /// The scenario file (native, 2015 or compact form).
    pub config: PathBuf,
    /// Master seed; overrides the file's `seed`. Without either, a seed is drawn and printed.
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Stop at this simulated time (ms) instead of the file's `termination`.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub until: Option<f64>,
    /// Write the results JSON here.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the event trace (JSON Lines) here.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Override a value of the file before it is read: PATH=VALUE, with PATH as in sweep
    /// specs (consensus.prevote, network.links[2].loss, workload.clients.c1.rate) and VALUE
    /// JSON (a bare word is a string). Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Do not stop at the first invariant violation: run to the horizon (still failing, exit 1)
    /// and check the clients' history too, to see whether the clients noticed.
    #[arg(long)]
    pub keep_going: bool,
    /// Print nothing but errors, warnings and, when no --seed was given, the drawn seed (on
    /// stderr: without it the run could not be repeated).
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn main(args: RunArgs) -> ExitCode {
    let scenario = match crate::load_scenario(&args.config, &args.set) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let max = coracle_sim::config::MAX_TERMINATION_MS;
    if let Some(u) = args.until
        && (!u.is_finite() || !(0.0..=max).contains(&u))
    {
        eprintln!(
            "error: --until: expected a time in milliseconds from 0 to {max} (about 115 days), found {u}"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    // The protocol settings too, before a seed is drawn and announced for a run that will not
    // happen.
    if let Err(e) = coracle_sim::run::validate(&scenario) {
        return config_error(&e);
    }
    if let Err(m) = check_outputs(&args) {
        eprintln!("error: {m}");
        return ExitCode::from(EXIT_USAGE);
    }
    let until = args.until.map(ms_to_time);
    let (seed, drawn) = match args.seed.or(scenario.seed) {
        Some(s) => (s, false),
        None => (fresh_seed(), true),
    };
    let tracer = match &args.trace {
        None => None,
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(Tracer::writer(Box::new(BufWriter::with_capacity(
                1 << 16,
                f,
            )))),
            Err(e) => {
                eprintln!("error: cannot write the trace to {}: {e}", shown(p));
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let mut reproduce = format!(
        "coracle run {}{} --seed {seed}",
        shell_quote(&shown(&args.config)),
        crate::set_args(&args.set)
    );
    if let Some(u) = args.until {
        reproduce.push_str(&format!(" --until {u}"));
    }
    if args.keep_going {
        reproduce.push_str(" --keep-going");
    }
    if drawn {
        // Even when quiet (on stderr then): without it the run could not be repeated.
        let line = format!("seed {seed} (drawn; repeat this run with: {reproduce})");
        if args.quiet {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
    }
    let started = Instant::now();
    let result = coracle_sim::run(
        &scenario,
        RunOptions {
            seed,
            until,
            tracer,
            stop_after: None,
            keep_going: args.keep_going,
            record_history: true,
        },
        &CheckOptions::default(),
    );
    let wall = started.elapsed();
    let r = match result {
        Ok(r) => r,
        Err(e) => return config_error(&e),
    };
    for w in &r.warnings {
        eprintln!("warning: {}: {w}", shown(&args.config));
    }
    if let (Some(p), Some(e)) = (
        &args.trace,
        r.outcome.tracer.as_ref().and_then(|t| t.error()),
    ) {
        eprintln!("error: cannot write the trace to {}: {e}", shown(p));
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(p) = &args.output {
        let text = serde_json::to_string_pretty(&r.results).expect("results serialise") + "\n";
        if let Err(e) = std::fs::write(p, text) {
            eprintln!("error: cannot write the results to {}: {e}", shown(p));
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if !args.quiet {
        let mut out = std::io::stdout().lock();
        if let Err(e) = summary::print(&mut out, &scenario, &r, wall).and_then(|()| out.flush()) {
            crate::stdout_failed(&e);
        }
    }
    let mut failed = false;
    if let Some(v) = &r.outcome.violation {
        failed = true;
        let names: Vec<String> = v
            .nodes
            .iter()
            .map(|n| scenario.nodes[n.index()].name.text())
            .collect();
        eprintln!(
            "\nSAFETY VIOLATION: {} at {} ms (nodes {}): {}",
            v.invariant,
            time_to_ms(v.time),
            names.join(", "),
            v.message
        );
        let tail = coracle_sim::run::trace_tail(&scenario, seed, until, v.time, 30);
        if !tail.is_empty() {
            eprintln!("last trace events before the violation:");
            for l in tail {
                eprintln!("  {l}");
            }
        }
    }
    if let coracle_check::Verdict::Violation(w) = &r.linearizability.verdict {
        failed = true;
        eprintln!(
            "\nLINEARIZABILITY VIOLATION on key {}: {}",
            w.key,
            coracle_sim::results::witness_explanation(&scenario, w)
        );
        for op in &w.operations {
            eprintln!(
                "  client {} {:?} invoked {} ms, completed {}, result {:?}",
                scenario.nodes[op.client.index()].name.text(),
                op.op,
                time_to_ms(op.invoke),
                op.complete
                    .map_or("never".to_string(), |c| format!("{} ms", time_to_ms(c))),
                op.result
            );
        }
    }
    if failed {
        eprintln!("reproduce with: {reproduce}");
        return ExitCode::from(EXIT_VIOLATION);
    }
    if let Some(m) = r.stall() {
        eprintln!("error: {}: {m}", shown(&args.config));
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::SUCCESS
}

/// The output files are writable and distinct from each other and from the scenario, checked
/// before the run rather than after it (a results file written over the scenario destroyed it).
fn check_outputs(args: &RunArgs) -> Result<(), String> {
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    if let Some(o) = &args.output {
        if same(o, &args.config) {
            return Err(format!(
                "--output {} is the scenario file itself: it would be overwritten",
                shown(o)
            ));
        }
        if args.trace.as_deref().is_some_and(|t| same(o, t)) {
            return Err(format!(
                "--output and --trace name the same file ({})",
                shown(o)
            ));
        }
        // Opened without truncating: an existing file is replaced only after the run.
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(o)
            .map_err(|e| format!("cannot write the results to {}: {e}", shown(o)))?;
    }
    if let Some(t) = &args.trace
        && same(t, &args.config)
    {
        return Err(format!(
            "--trace {} is the scenario file itself: it would be overwritten",
            shown(t)
        ));
    }
    Ok(())
}
