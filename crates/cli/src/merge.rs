//! `coracle merge`: combines the outputs of sharded sweep runs (`--shard K/N`) into the files a
//! single unsharded run writes, byte for byte.

use crate::EXIT_USAGE;
use crate::sweep::{RunOpts, finish};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct MergeArgs {
    /// The shard output directories (each with spec.json, shard.json and trials.csv).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged trials.csv, summary.json, points/ and plots go.
    #[arg(long, value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Published data to overlay and compare (CSV with columns point,value_ms).
    #[arg(long, value_name = "FILE.csv")]
    pub reference: Option<PathBuf>,
    /// Do not draw the SVG charts.
    #[arg(long)]
    pub no_plots: bool,
    /// A shorter report.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn main(a: MergeArgs) -> ExitCode {
    // Writing into a shard would overwrite the input it was merged from.
    let same = |x: &PathBuf| {
        x == &a.output_dir
            || matches!((x.canonicalize(), a.output_dir.canonicalize()), (Ok(p), Ok(q)) if p == q)
    };
    if let Some(d) = a.dirs.iter().find(|d| same(d)) {
        eprintln!(
            "error: --output-dir {} is one of the shard directories being merged: choose another",
            d.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let dirs: Vec<&std::path::Path> = a.dirs.iter().map(|d| d.as_path()).collect();
    let m = match coracle_sim::sweep::output::merge_dirs(&dirs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let this = coracle_sim::sweep::output::CORACLE_VERSION;
    if m.version != this {
        eprintln!(
            "warning: the shards were run by coracle {}, and this is coracle {this}: summary.json records {} (the version that ran the trials), but the statistics and charts are this version's, the same as an unsharded run of coracle {} only if they did not change between the two",
            m.version, m.version, m.version
        );
    }
    outln!(
        "{}: merged {} trial(s) from {} shard(s)",
        m.spec.name,
        m.rows.len(),
        dirs.len()
    );
    // As for a sweep: the output directory's earlier results go first.
    if let Err(e) = coracle_sim::sweep::output::clear_results(&a.output_dir)
        .and_then(|()| coracle_sim::sweep::output::write_points(&a.output_dir, &m.spec))
    {
        eprintln!("error: cannot write {}: {e}", a.output_dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let o = RunOpts {
        output_dir: Some(a.output_dir.clone()),
        seed: None,
        threads: None,
        shard: None,
        reference: a.reference,
        no_plots: a.no_plots,
        quiet: a.quiet,
    };
    finish(
        &a.output_dir,
        &m.spec,
        &m.rows,
        true,
        None,
        &m.version,
        &o,
        &|_, _| {},
    )
}
