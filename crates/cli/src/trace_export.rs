//! `coracle trace export`: converts a run's trace (`coracle run --trace`) for Perfetto /
//! chrome://tracing or ShiViz.

use crate::EXIT_USAGE;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TraceCommand {
    /// Convert a trace for Perfetto / chrome://tracing (one track per node) or ShiViz (vector clocks).
    #[command(
        after_help = "Examples:\n  coracle run examples/raft-5.json --until 1000 --trace trace.jsonl\n  coracle trace export trace.jsonl --format perfetto --output trace.json   # open in ui.perfetto.dev\n  coracle trace export trace.jsonl --format shiviz --output trace.log      # paste into ShiViz"
    )]
    Export(ExportArgs),
}

#[derive(Copy, Clone, ValueEnum)]
pub enum Format {
    /// Trace Event JSON (Perfetto, chrome://tracing).
    Perfetto,
    /// ShiViz log with vector clocks.
    Shiviz,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The trace (JSON Lines).
    pub trace: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn main(cmd: TraceCommand) -> ExitCode {
    let TraceCommand::Export(a) = cmd;
    let text = match std::fs::read_to_string(&a.trace) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read: {e}", a.trace.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (text, cut) = coracle_report::trace::complete_lines(&text);
    if let Some(w) = cut {
        eprintln!("warning: {}: {w}", a.trace.display());
    }
    let out = match a.format {
        Format::Perfetto => coracle_report::trace::perfetto(text),
        Format::Shiviz => coracle_report::trace::shiviz(text),
    };
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}: {e}", a.trace.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match &a.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, out) {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(EXIT_USAGE);
            }
            match a.format {
                Format::Perfetto => eprintln!(
                    "wrote {}: open it in https://ui.perfetto.dev or chrome://tracing",
                    p.display()
                ),
                Format::Shiviz => eprintln!(
                    "wrote {}: paste it into ShiViz with the regular expression {}",
                    p.display(),
                    coracle_report::trace::SHIVIZ_REGEX
                ),
            }
        }
        None => out!("{out}"),
    }
    ExitCode::SUCCESS
}
