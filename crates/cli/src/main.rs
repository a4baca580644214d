//! `coracle`: run, check and explore consensus simulations.
//!
//! A thin layer over `coracle-sim`: argument parsing, files, the terminal summary and exit
//! codes (0 success, 1 a safety check failed, 2 bad input or usage).

/// `println!` that reports a failed write to standard output (a full disk, `> /dev/full`) as an
/// error with exit status 2 instead of panicking. A closed pipe (`| head`) ends the process
/// through SIGPIPE before a write can fail (see `main`).
macro_rules! outln {
    () => { $crate::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` with the same error handling as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => { $crate::out(format_args!($($t)*)) };
}

mod bench;
mod check;
mod compare;
mod examples;
mod experiment;
mod merge;
mod plot;
mod run;
mod schema;
mod summary;
mod sweep;
mod trace_export;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: a safety check failed.
pub const EXIT_VIOLATION: u8 = 1;
/// Exit status: bad input or usage.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "coracle",
    version,
    about = "Coracle: a deterministic simulator and testbed for consensus protocols on real-world networks",
    long_about = "Coracle simulates consensus protocols (Raft with its election variants, Viewstamped \
                  Replication Revisited, and a hello/hello-back dummy) over networks described in one JSON \
                  file: servers, clients and routing hubs, one-way and two-way links with latency \
                  distributions, loss and other link models, and a timeline of crashes, pauses, partitions \
                  and link failures. Runs are \
                  deterministic: the same file and seed give byte-identical results.",
    after_help = "Examples:\n  coracle run examples/raft-5.json\n  coracle run examples/hub-star.json --seed 7 --output results.json --trace trace.jsonl\n  coracle check examples/hub-star.json\n  coracle schema > coracle.schema.json\n\nExit status: 0 success, 1 a safety check failed, 2 bad input or usage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulation and print a summary.
    #[command(
        after_help = "Examples:\n  coracle run examples/raft-5.json\n  coracle run examples/raft-5.json --seed 42 --until 5000 --output results.json\n  coracle run examples/hub-star.json --trace trace.jsonl --quiet"
    )]
    Run(run::RunArgs),
    /// Validate a scenario and print it normalised (nodes, links, timeline, protocol settings).
    #[command(
        after_help = "Examples:\n  coracle check examples/hub-star.json\n  coracle check tests/fixtures/coracle-2015/test/simple_star.json"
    )]
    Check {
        /// The scenario file.
        config: PathBuf,
    },
    /// Print the JSON Schema of the native configuration format.
    #[command(after_help = "Example:\n  coracle schema > coracle.schema.json")]
    Schema,
    /// List the scenario gallery in examples/ with one-line descriptions.
    #[command(after_help = "Examples:\n  coracle examples\n  coracle examples --dir my-scenarios")]
    Examples {
        /// The folder to list.
        #[arg(long, default_value = "examples")]
        dir: std::path::PathBuf,
    },
    /// Run one scenario under several protocols with the same seed and compare the metrics.
    #[command(
        after_help = "Example:\n  coracle compare examples/raft-5.json --protocols raft,vrr --seed 7"
    )]
    Compare(compare::CompareArgs),
    /// Measure the simulator's speed on fixed, seeded workloads.
    #[command(
        after_help = "Examples:\n  coracle bench\n  coracle bench --quick\n  coracle bench raft-5 raft-100-hub\n  coracle bench leader-crash-sweep      # the 10,100 Figure 16 trials on all cores"
    )]
    Bench(bench::BenchArgs),
    /// Run many trials over a grid or list of parameter values; statistics, CDF plots, reproduce commands.
    #[command(
        after_help = "Examples:\n  coracle sweep examples/experiments/raft-leader-crash.json --output-dir out\n  coracle sweep spec.json --output-dir out --shard 2/8\n  coracle sweep out/spec.json --trial 150-300/17\n  coracle sweep spec.json --output-dir out --reference published.csv"
    )]
    Sweep(sweep::SweepArgs),
    /// Reproduce a published election experiment (Raft paper Figure 16, thesis §9).
    #[command(
        after_help = "Examples:\n  coracle experiment --list\n  coracle experiment raft-leader-crash --output-dir out\n  coracle experiment raft-split-vote --trials 500 --output-dir out\n  coracle experiment raft-wan --points 0-failed/same-logs --output-dir out"
    )]
    Experiment(experiment::ExperimentArgs),
    /// Combine the outputs of sharded sweeps (--shard K/N) into one.
    #[command(after_help = "Example:\n  coracle merge out-1 out-2 out-3 out-4 --output-dir out")]
    Merge(merge::MergeArgs),
    /// Draw a run's time series (term, roles, commits, client latency) as SVG.
    #[command(
        after_help = "Examples:\n  coracle run examples/raft-5.json --output r.json --trace t.jsonl\n  coracle plot r.json --trace t.jsonl --output-dir plots"
    )]
    Plot(plot::PlotArgs),
    /// Work with traces (coracle run --trace).
    #[command(
        subcommand,
        after_help = "Examples:\n  coracle trace export trace.jsonl --format perfetto --output trace.json\n  coracle trace export trace.jsonl --format shiviz --output trace.log"
    )]
    Trace(trace_export::TraceCommand),
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `coracle check x | head` into a panic on the next
    // print; the default action ends the process quietly, as other command-line tools do.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Run(args) => run::main(args),
        Command::Check { config } => check::main(&config),
        Command::Schema => schema::main(),
        Command::Examples { dir } => examples::main(&dir),
        Command::Compare(args) => compare::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Sweep(args) => sweep::main(args),
        Command::Experiment(args) => experiment::main(args),
        Command::Merge(args) => merge::main(args),
        Command::Plot(args) => plot::main(args),
        Command::Trace(cmd) => trace_export::main(cmd),
    }
}

/// Writes to standard output; a failed write ends the process with an error and exit status 2.
pub fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush()) {
        stdout_failed(&e);
    }
}

/// Reports a failed write to standard output and exits with the usage status.
pub fn stdout_failed(e: &std::io::Error) -> ! {
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(i32::from(EXIT_USAGE))
}

/// Prints a configuration error and returns the usage exit code.
pub fn config_error(e: &coracle_sim::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// Loads a scenario file with `--set PATH=VALUE` overrides applied to its JSON first (paths
/// as in sweep specs, in the file's own form; a value that is not JSON is taken as a string).
/// Errors are printed; the exit code is returned.
pub fn load_scenario(
    path: &std::path::Path,
    sets: &[String],
) -> Result<coracle_sim::Scenario, ExitCode> {
    if sets.is_empty() {
        return coracle_sim::load_file(path).map_err(|e| config_error(&e));
    }
    let text = coracle_sim::config::read_text(path).map_err(|e| config_error(&e))?;
    let mut doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(d) => d,
        // The loader's own message (line, column, what was found).
        Err(_) => return coracle_sim::load_file(path).map_err(|e| config_error(&e)),
    };
    // A web-editor export carries no settings: `--set` changes the native config it means (the
    // editor's defaults written out), as a sweep over such a base does.
    coracle_sim::load_file(path).map_err(|e| config_error(&e))?;
    if let Some(native) = coracle_sim::config::web_export_as_native(&shown(path), &text)
        .map_err(|e| config_error(&e))?
    {
        doc = native;
    }
    for set in sets {
        let Some((at, raw)) = set.split_once('=') else {
            eprintln!("error: --set {set}: expected PATH=VALUE, e.g. consensus.prevote=true");
            return Err(ExitCode::from(EXIT_USAGE));
        };
        let value = serde_json::from_str(raw).unwrap_or_else(|_| raw.into());
        if let Err(m) = coracle_sim::sweep::spec::set_path(&mut doc, at.trim(), value) {
            eprintln!("error: --set {set}: {m}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    let name = format!("{} (with --set)", shown(path));
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    coracle_sim::load_str(&name, &text).map_err(|e| config_error(&e))
}

/// `--set` arguments as they would be typed again, for reproduce commands.
pub fn set_args(sets: &[String]) -> String {
    sets.iter()
        .map(|s| format!(" --set {}", shell_quote(s)))
        .collect()
}

/// The path as typed, for messages and reproduce commands.
pub fn shown(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Quotes an argument for a shell command line when needed.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Draws a seed when none is given: from the clock and the process id (the seed is then
/// printed and recorded, so the run can be repeated).
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    coracle_core::rng::mix64(t ^ ((std::process::id() as u64) << 32)) % 1_000_000_000
}
