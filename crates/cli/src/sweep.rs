//! `coracle sweep`: many trials of a scenario over a grid or list of parameter values, in
//! parallel, with statistics, plots and reproduce commands. Also the output stage shared with
//! `coracle experiment` and `coracle merge`.

use crate::{EXIT_USAGE, EXIT_VIOLATION, shell_quote};
use clap::Args;
use coracle_report::plot;
use coracle_sim::sweep::output::{self, sample_of};
use coracle_sim::sweep::{Control, Spec, Status, TrialRow};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Exit status after Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep spec (docs/sweeps.md).
    pub spec: PathBuf,
    #[command(flatten)]
    pub run: RunOpts,
    /// Re-run one trial, POINT/TRIAL (point label or index), print its row and exit.
    #[arg(long, value_name = "POINT/TRIAL")]
    pub trial: Option<String>,
}

/// Options shared by `sweep` and `experiment`.
#[derive(Args, Clone)]
pub struct RunOpts {
    /// Where trials.csv, summary.json, the plots and points/*.json go.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Master seed (overrides the spec's).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
    /// Run only the K-th of N slices of the trials (1-based K). Default: from
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX/CORACLE_SHARD_COUNT
    /// when set; `--shard all` ignores them.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Published data to overlay and compare (CSV with columns point,value_ms).
    #[arg(long, value_name = "FILE.csv")]
    pub reference: Option<PathBuf>,
    /// Do not draw the SVG charts.
    #[arg(long)]
    pub no_plots: bool,
    /// No progress bar and a shorter report.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn main(args: SweepArgs) -> ExitCode {
    let spec = match coracle_sim::sweep::load_spec_file(&args.spec) {
        Ok(s) => s,
        Err(e) => return crate::config_error(&e),
    };
    if let Some(t) = &args.trial {
        return single_trial(spec, t, &args.run);
    }
    execute(spec, &args.run, &|_, _| {})
}

/// Applies `--seed` to a spec.
pub fn with_seed(mut spec: Spec, seed: Option<u64>) -> Spec {
    if let Some(s) = seed {
        spec.seed = s;
        spec.resolved["seed"] = Value::from(s);
    }
    spec
}

/// Parses `K/N` (1-based K) into a 0-based (k, n).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard: expected K/N such as 2/8, found \"{s}\""))?;
    let k: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard: expected a number K in K/N, found \"{k}\""))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard: expected a number N in K/N, found \"{n}\""))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard: expected 1 ≤ K ≤ N, found {k}/{n}"));
    }
    Ok((k - 1, n))
}

/// The variables of a Slurm job array that select a shard.
const SLURM_VARS: [&str; 3] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
];
/// The variables of a Kubernetes indexed Job that select a shard (the count is ours).
const KUBERNETES_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "CORACLE_SHARD_COUNT"];

/// The shard to run: `--shard`, else the job-array variables of Slurm or Kubernetes.
pub fn shard_of(opt: Option<&str>) -> Result<Option<(u64, u64)>, String> {
    shard_from(opt, &|k| {
        std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
    })
}

/// [`shard_of`] with the environment given as a lookup. A variable that is set but empty, a
/// half-set array (an id without its count, a count without its id), and the variables of both
/// Slurm and Kubernetes at once are errors, never a silent run of every trial; an explicit
/// `--shard` ignores the environment.
fn shard_from(
    opt: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(u64, u64)>, String> {
    match opt {
        Some("all") => return Ok(None),
        Some(s) => return parse_shard(s).map(Some),
        None => {}
    }
    const ADVICE: &str = "pass --shard K/N, or --shard all to run every trial";
    let set = |vars: &[&str]| -> Vec<(String, String)> {
        vars.iter()
            .filter_map(|k| env(k).map(|v| (k.to_string(), v)))
            .collect()
    };
    let slurm = set(&SLURM_VARS);
    let k8s = set(&KUBERNETES_VARS);
    if let Some((k, _)) = slurm.iter().chain(&k8s).find(|(_, v)| v.trim().is_empty()) {
        return Err(format!(
            "{k} is set but empty (an empty value is not taken for unset, which would run every trial): give it a value, unset it, or {ADVICE}"
        ));
    }
    let listed = |vs: &[(String, String)]| {
        vs.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !slurm.is_empty() && !k8s.is_empty() {
        return Err(format!(
            "both Slurm ({}) and Kubernetes ({}) job-array variables are set, and they need not agree: pass --shard K/N to say which shard this is (or --shard all)",
            listed(&slurm),
            listed(&k8s)
        ));
    }
    let num = |k: &str, v: &str| -> Result<u64, String> {
        v.trim()
            .parse()
            .map_err(|_| format!("{k}: expected a number, found \"{v}\""))
    };
    if !slurm.is_empty() {
        let (Some(id), Some(count)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
        else {
            let (present, absent) = if env("SLURM_ARRAY_TASK_ID").is_some() {
                (
                    "SLURM_ARRAY_TASK_ID is".to_string(),
                    "SLURM_ARRAY_TASK_COUNT",
                )
            } else {
                let names: Vec<&str> = slurm.iter().map(|(k, _)| k.as_str()).collect();
                let verb = if names.len() > 1 { "are" } else { "is" };
                (
                    format!("{} {verb}", names.join(" and ")),
                    "SLURM_ARRAY_TASK_ID",
                )
            };
            return Err(format!(
                "{present} set but {absent} is not (Slurm sets both in a job array): {ADVICE}"
            ));
        };
        let id = num("SLURM_ARRAY_TASK_ID", &id)?;
        let n = num("SLURM_ARRAY_TASK_COUNT", &count)?;
        let min = match env("SLURM_ARRAY_TASK_MIN") {
            Some(m) => num("SLURM_ARRAY_TASK_MIN", &m)?,
            None => 0,
        };
        let k = id.checked_sub(min).filter(|k| *k < n).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID {id} is not within {min}..{min}+{n}: use --array=0-{} (or 1-{n})", n.saturating_sub(1))
        })?;
        return Ok(Some((k, n)));
    }
    if !k8s.is_empty() {
        let Some(idx) = env("JOB_COMPLETION_INDEX") else {
            return Err(format!(
                "CORACLE_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not: a Kubernetes Job without `completionMode: Indexed` has no JOB_COMPLETION_INDEX (docs/sweeps.md): {ADVICE}"
            ));
        };
        let k = num("JOB_COMPLETION_INDEX", &idx)?;
        let Some(count) = env("CORACLE_SHARD_COUNT") else {
            return Err(format!(
                "JOB_COMPLETION_INDEX is set but CORACLE_SHARD_COUNT is not: set it to the Job's completions (docs/sweeps.md), or {ADVICE}"
            ));
        };
        let n = num("CORACLE_SHARD_COUNT", &count)?;
        if n == 0 || k >= n {
            return Err(format!(
                "JOB_COMPLETION_INDEX {k} is not below CORACLE_SHARD_COUNT {n}"
            ));
        }
        return Ok(Some((k, n)));
    }
    Ok(None)
}

fn set_threads(n: Option<usize>) {
    if let Some(n) = n {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
}

fn points_file(dir: &Path, p: &coracle_sim::sweep::Point) -> String {
    dir.join("points")
        .join(format!("{}.json", p.file_stem()))
        .display()
        .to_string()
}

/// The commands that re-run one trial (from an output directory's spec.json).
pub fn reproduce(dir: &Path, spec: &Spec, r: &TrialRow) -> String {
    reproduce_with(
        dir,
        &dir.join("spec.json").display().to_string(),
        "",
        spec,
        r,
    )
}

/// The commands that re-run one trial: its point file in `dir`, and `spec_file --trial` with
/// `extra` options (a `--seed` the spec file does not hold).
fn reproduce_with(dir: &Path, spec_file: &str, extra: &str, spec: &Spec, r: &TrialRow) -> String {
    let p = &spec.points[r.point];
    format!(
        "coracle run {} --seed {}    (value: coracle sweep {} --trial {}/{}{extra})",
        shell_quote(&points_file(dir, p)),
        r.seed,
        shell_quote(spec_file),
        shell_quote(&p.label),
        r.trial
    )
}

static CANCEL: AtomicBool = AtomicBool::new(false);

/// What the sweep is doing, for the signal handler: what a quit at once would lose.
static STAGE: AtomicU8 = AtomicU8::new(STAGE_RUNNING);
/// Preparing and running the trials: nothing is written yet but `spec.json` and `points/`.
const STAGE_RUNNING: u8 = 0;
/// Writing `trials.csv` and `summary.json`: a quit waits until they are complete.
const STAGE_WRITING: u8 = 1;
/// The tables are written; the charts and the report follow.
const STAGE_REPORTING: u8 = 2;
/// Trials finished so far (for the message of a quit at once).
static FINISHED: AtomicU64 = AtomicU64::new(0);
/// A quit asked for while the tables were being written.
static QUIT_AFTER_WRITING: AtomicBool = AtomicBool::new(false);
/// Milliseconds from [`epoch`] to the first signal.
static FIRST_SIGNAL_MS: AtomicU64 = AtomicU64::new(0);
/// The output directory, for messages.
static OUT_DIR: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// A signal within this long of the first is the same interruption, not a request to quit at
/// once: `timeout -s INT` signals the process and then its process group, so the sweep
/// receives two SIGINTs microseconds apart; a shell's Ctrl-C reaching several processes does
/// the same.
const SIGNAL_GRACE: Duration = Duration::from_secs(1);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn out_dir() -> String {
    OUT_DIR.lock().map(|d| d.clone()).unwrap_or_default()
}

/// The first SIGINT, SIGTERM or SIGHUP stops starting new trials (the running ones finish and
/// what finished is written); a further one more than [`SIGNAL_GRACE`] later quits at once,
/// saying what that loses.
fn install_ctrlc(dir: &Path) {
    if let Ok(mut d) = OUT_DIR.lock() {
        *d = dir.display().to_string();
    }
    epoch();
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(on_signal);
    });
}

fn on_signal() {
    let now = epoch().elapsed().as_millis() as u64;
    if !CANCEL.swap(true, Ordering::SeqCst) {
        FIRST_SIGNAL_MS.store(now, Ordering::SeqCst);
        if STAGE.load(Ordering::SeqCst) == STAGE_RUNNING {
            eprintln!(
                "\ninterrupted: finishing the running trials, then writing what finished to {} \
                 (signal again to quit at once and lose them)",
                out_dir()
            );
        } else {
            eprintln!(
                "\ninterrupted: the trials are done and their results written to {}; finishing \
                 the charts (signal again to quit at once)",
                out_dir()
            );
        }
        return;
    }
    let first = FIRST_SIGNAL_MS.load(Ordering::SeqCst);
    if now.saturating_sub(first) < SIGNAL_GRACE.as_millis() as u64 {
        // The same interruption delivered twice.
        return;
    }
    let d = out_dir();
    match STAGE.load(Ordering::SeqCst) {
        STAGE_WRITING => {
            QUIT_AFTER_WRITING.store(true, Ordering::SeqCst);
            eprintln!(
                "quitting once {d}/trials.csv and summary.json are written (a moment; they are not left half-written)"
            );
        }
        STAGE_REPORTING => {
            eprintln!(
                "quitting at once: {d}/trials.csv and summary.json are written; charts and comparison.json may be missing"
            );
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        _ => {
            let n = FINISHED.load(Ordering::SeqCst);
            eprintln!(
                "quitting at once: the {n} finished trial(s) are lost; {d} holds this sweep's spec.json and points/ only (no trials.csv or summary.json)"
            );
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    }
}

/// Runs a spec and writes everything. `extra(spec, rows)` prints preset-specific comparisons.
pub fn execute(spec: Spec, o: &RunOpts, extra: &dyn Fn(&Spec, &[TrialRow])) -> ExitCode {
    let Some(dir) = o.output_dir.clone() else {
        eprintln!(
            "error: --output-dir DIR is required (where trials.csv, summary.json and the plots go)"
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let spec = with_seed(spec, o.seed);
    let shard = match shard_of(o.shard.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(f) = &o.reference {
        if shard.is_some() {
            eprintln!(
                "error: --reference compares a whole sweep; give it to `coracle merge` after the shards, not to one shard"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        if let Err(e) = load_reference(f, &spec, false) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    // The directory is this sweep's from now on: the results of an earlier sweep go before
    // its spec.json and points/ are replaced, so the two never mix.
    if let Err(e) = output::clear_results(&dir).and_then(|()| output::write_points(&dir, &spec)) {
        eprintln!("error: cannot write {}: {e}", dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let prepared = match coracle_sim::sweep::prepare_with_warnings(&spec, &|p| points_file(&dir, p))
    {
        Ok((p, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            p
        }
        Err(e) => {
            if e.file != spec.file {
                eprintln!("  (in the materialised config of a point of {})", spec.file);
            }
            return crate::config_error(&e);
        }
    };
    set_threads(o.threads);
    install_ctrlc(&dir);
    let todo = coracle_sim::sweep::runner::selected(&spec, shard).len() as u64;
    if !o.quiet {
        outln!(
            "{}: {} point(s), {} trial(s){}, seed {}, {} thread(s)",
            spec.name,
            spec.points.len(),
            todo,
            shard.map_or(String::new(), |(k, n)| format!(" (shard {}/{n})", k + 1)),
            spec.seed,
            rayon::current_num_threads()
        );
        let described = spec.measure.describe();
        let differ = spec
            .points
            .iter()
            .filter(|p| p.measure.describe() != described)
            .count();
        if differ == 0 {
            outln!("  measure: {described}");
        } else {
            // A point may set its own horizon (`within`): the base measure alone would
            // misstate where those points censor.
            outln!(
                "  measure: {described} ({differ} of {} points set their own; see summary.json)",
                spec.points.len()
            );
        }
    }
    let pb = if o.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let pb = indicatif::ProgressBar::new(todo);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "  [{elapsed_precise}] {bar:40} {pos}/{len} trials, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    };
    let progress = |_: &TrialRow| {
        FINISHED.fetch_add(1, Ordering::Relaxed);
        pb.inc(1);
    };
    let ctl = Control {
        shard,
        cancel: &CANCEL,
        progress: &progress,
    };
    let t0 = Instant::now();
    let (rows, complete) = coracle_sim::sweep::run_all(&spec, &prepared, &ctl);
    let wall = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    outln!(
        "  ran {} trial(s) in {:.3} s ({:.0} trials/s on {} thread(s)){}",
        rows.len(),
        wall,
        rows.len() as f64 / wall.max(1e-9),
        rayon::current_num_threads(),
        if complete { "" } else { ", interrupted" }
    );
    let code = finish(
        &dir,
        &spec,
        &rows,
        complete,
        shard,
        output::CORACLE_VERSION,
        o,
        extra,
    );
    if !complete {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    code
}

/// Reads `--reference FILE` (columns `point,value_ms`); with `warn`, names the labels that are
/// not points of this sweep. Checked before any trial runs, so a typo does not cost the run.
pub fn load_reference(
    f: &Path,
    spec: &Spec,
    warn: bool,
) -> Result<Vec<(String, coracle_sim::sweep::stats::Sample)>, String> {
    // Read as a config file is: a byte that is not UTF-8 is located.
    let text = coracle_sim::config::read_text(f).map_err(|e| e.to_string())?;
    let r = output::read_reference(&f.display().to_string(), &text)?;
    for (label, _) in r.iter().filter(|_| warn) {
        if !spec.points.iter().any(|p| &p.label == label) {
            eprintln!(
                "warning: {}: point \"{label}\" is not a point of this sweep (points: {}); its rows are not compared",
                f.display(),
                spec.points
                    .iter()
                    .map(|p| p.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(r)
}

/// Writes the tables (and, unsharded, the summary, plots and comparisons) and prints the
/// report. Shared with `coracle merge`; `version` is the coracle that ran the trials (this
/// one, or the shards' when merged).
#[allow(clippy::too_many_arguments)]
pub fn finish(
    dir: &Path,
    spec: &Spec,
    rows: &[TrialRow],
    complete: bool,
    shard: Option<(u64, u64)>,
    version: &str,
    o: &RunOpts,
    extra: &dyn Fn(&Spec, &[TrialRow]),
) -> ExitCode {
    STAGE.store(STAGE_WRITING, Ordering::SeqCst);
    let written = output::write_tables(dir, spec, rows, complete, shard, version);
    STAGE.store(STAGE_REPORTING, Ordering::SeqCst);
    if QUIT_AFTER_WRITING.load(Ordering::SeqCst) {
        eprintln!(
            "quitting: {}/trials.csv and summary.json are written (\"complete\": false); no charts",
            dir.display()
        );
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
    if let Err(e) = written {
        eprintln!("error: cannot write {}: {e}", dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let violations: Vec<&TrialRow> = rows.iter().filter(|r| r.violation.is_some()).collect();
    if let Some((k, n)) = shard {
        print_notes(rows);
        if !complete {
            print_interrupted(dir, spec, rows, shard);
        }
        outln!(
            "  shard {}/{n}: wrote {}/trials.csv and shard.json; combine the shards with: coracle merge DIR... --output-dir OUT",
            k + 1,
            dir.display()
        );
    } else {
        let reference = match o
            .reference
            .as_deref()
            .map(|f| load_reference(f, spec, true))
        {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let mut svgs = Vec::new();
        if !o.no_plots {
            match plots(dir, spec, rows, reference.as_deref()) {
                Ok(w) => svgs = w,
                Err(e) => eprintln!("warning: plots not drawn: {e}"),
            }
        }
        print_summary(spec, rows, o.quiet);
        print_notes(rows);
        if !complete {
            print_interrupted(dir, spec, rows, shard);
        }
        if let Some(r) = &reference {
            let cmp = output::compare_reference(spec, rows, r);
            let _ = std::fs::write(dir.join("comparison.json"), output::pretty(&cmp));
            print_comparison(&cmp);
        }
        extra(spec, rows);
        let d = dir.display();
        let svgs: String = svgs.iter().map(|f| format!(", {d}/{f}")).collect();
        outln!("  wrote {d}/trials.csv, {d}/summary.json{svgs}, {d}/points/*.json");
    }
    // Reproduce commands: violations, a few censored trials, the slowest trial.
    for r in violations.iter().take(5) {
        outln!(
            "  VIOLATION ({}) in point {} trial {}: {}",
            r.violation.as_deref().unwrap_or(""),
            spec.points[r.point].label,
            r.trial,
            reproduce(dir, spec, r)
        );
    }
    if !o.quiet {
        let censored: Vec<&TrialRow> = rows
            .iter()
            .filter(|r| r.status != Status::Ok && r.violation.is_none())
            .collect();
        if !censored.is_empty() {
            outln!(
                "  {} trial(s) censored or without the fault; for example:",
                censored.len()
            );
            for r in censored.iter().take(3) {
                outln!(
                    "    {} trial {} ({}): {}",
                    spec.points[r.point].label,
                    r.trial,
                    r.status.name(),
                    reproduce(dir, spec, r)
                );
            }
        }
        if let Some(r) = rows
            .iter()
            .filter(|r| r.status == Status::Ok)
            .max_by(|a, b| a.value.unwrap_or(0.0).total_cmp(&b.value.unwrap_or(0.0)))
        {
            outln!(
                "  largest value: {} trial {} = {} : {}",
                spec.points[r.point].label,
                r.trial,
                r.value.unwrap_or(0.0),
                reproduce(dir, spec, r)
            );
        }
    }
    if !violations.is_empty() {
        eprintln!(
            "error: {} trial(s) violated a safety invariant (flagged in trials.csv)",
            violations.len()
        );
        return ExitCode::from(EXIT_VIOLATION);
    }
    ExitCode::SUCCESS
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x:.1}"),
        None => "≥hz".into(),
    }
}

fn print_summary(spec: &Spec, rows: &[TrialRow], quiet: bool) {
    let unit = match spec.measure {
        coracle_sim::sweep::Measure::Metric { .. } => "",
        _ => " (ms)",
    };
    // The label column is as wide as the longest label.
    let lw = spec
        .points
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(28);
    outln!(
        "  {:<lw$} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}{unit}",
        "point",
        "n",
        "cens",
        "mean",
        "p5",
        "p50",
        "p90",
        "p99",
        "max"
    );
    let mut faultless = Vec::new();
    let mut partial_mean = false;
    for p in &spec.points {
        let s = sample_of(rows, p.index);
        let max = if s.censored > 0 {
            None
        } else {
            s.values.last().copied()
        };
        if s.n() == 0 {
            let ran = rows.iter().filter(|r| r.point == p.index).count();
            if ran > 0
                && rows
                    .iter()
                    .filter(|r| r.point == p.index)
                    .all(|r| r.status == coracle_sim::sweep::Status::NoFault)
            {
                faultless.push(p.label.as_str());
            }
            outln!(
                "  {:<lw$} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                p.label,
                0,
                0,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-"
            );
            continue;
        }
        outln!(
            "  {:<lw$} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            p.label,
            s.n(),
            s.censored,
            match s.mean() {
                None => "-".into(),
                // The censored trials have no value: the mean is of the others only.
                Some(m) if s.censored > 0 => {
                    partial_mean = true;
                    format!("{m:.1}*")
                }
                Some(m) => format!("{m:.1}"),
            },
            fmt(s.quantile(0.05)),
            fmt(s.quantile(0.5)),
            fmt(s.quantile(0.9)),
            fmt(s.quantile(0.99)),
            fmt(max)
        );
    }
    if partial_mean {
        outln!(
            "  * mean of the uncensored trials only (the censored ones, counted in the cens column, have no value)"
        );
    }
    if !faultless.is_empty() {
        eprintln!(
            "warning: the measure's fault never fired in any trial of {} (does the scenario contain it? see `from` in docs/sweeps.md)",
            faultless.join(", ")
        );
    }
    if let Some(pubd) = &spec.published
        && let Some(pts) = pubd.get("points").and_then(|v| v.as_object())
        && !quiet
    {
        outln!(
            "  published ({}):",
            pubd.get("source")
                .and_then(|s| s.as_str())
                .unwrap_or("reference")
        );
        for (label, stats) in pts {
            let Some(p) = spec.points.iter().find(|p| &p.label == label) else {
                continue;
            };
            let s = sample_of(rows, p.index);
            let Some(o) = stats.as_object() else { continue };
            let mut parts = Vec::new();
            for (k, v) in o {
                let ours = match k.as_str() {
                    "mean" => s.mean(),
                    "max" => (s.censored == 0)
                        .then(|| s.values.last().copied())
                        .flatten(),
                    "min" => s.values.first().copied(),
                    "censored_fraction" => Some(s.censored as f64 / s.n().max(1) as f64),
                    q if q.starts_with('p') => q[1..]
                        .parse::<f64>()
                        .ok()
                        .and_then(|x| s.quantile(x / 100.0)),
                    _ => None,
                };
                parts.push(format!(
                    "{k} {} (ours {})",
                    match v {
                        Value::String(t) => t.clone(),
                        other => other.to_string(),
                    },
                    match ours {
                        Some(x) if k == "mean" && s.censored > 0 => {
                            format!("{x:.1}, of the uncensored trials only")
                        }
                        Some(x) => format!("{x:.1}"),
                        None if s.censored > 0 => "censored: beyond the horizon".into(),
                        None => "-".into(),
                    }
                ));
            }
            outln!("    {:<26} {}", label, parts.join("; "));
        }
    }
}

/// After an interruption: which points are partial or were not started, and that the
/// statistics describe only the trials that finished (there is no resume).
fn print_interrupted(dir: &Path, spec: &Spec, rows: &[TrialRow], shard: Option<(u64, u64)>) {
    let mut planned = vec![0u64; spec.points.len()];
    for (p, _) in coracle_sim::sweep::runner::selected(spec, shard) {
        planned[p] += 1;
    }
    let mut done = vec![0u64; spec.points.len()];
    for r in rows {
        done[r.point] += 1;
    }
    let mut partial = Vec::new();
    let mut untouched = Vec::new();
    for p in &spec.points {
        let (d, n) = (done[p.index], planned[p.index]);
        if d == 0 && n > 0 {
            untouched.push(p.label.as_str());
        } else if d < n {
            partial.push(format!("{} ({d} of {n} trials)", p.label));
        }
    }
    let file = if shard.is_some() {
        "shard.json"
    } else {
        "summary.json"
    };
    outln!(
        "  interrupted: {}/{file} says \"complete\": false; {} of {} trial(s) finished",
        dir.display(),
        rows.len(),
        planned.iter().sum::<u64>()
    );
    if !partial.is_empty() {
        outln!("    partial points: {}", partial.join(", "));
    }
    if !untouched.is_empty() {
        outln!("    points not started: {}", untouched.join(", "));
    }
    outln!(
        "    the statistics above describe only the trials that finished; running the command again starts over (there is no resume)"
    );
}

/// One line per distinct note of the trials (`notes` in trials.csv and summary.json), with
/// the number of trials that had it: what a table of censored values does not say.
fn print_notes(rows: &[TrialRow]) {
    for (note, n) in output::note_counts(rows.iter()) {
        outln!("  note: {n} of {} trials: {note}", rows.len());
    }
}

fn print_comparison(cmp: &Value) {
    outln!("  against the reference (ours − reference, ms; KS distance):");
    for c in cmp.as_array().into_iter().flatten() {
        let d = &c["quantile_differences_ms"];
        let g = |k: &str| d[k].as_f64().map_or("-".into(), |x| format!("{x:+.1}"));
        outln!(
            "    {:<26} p10 {} p50 {} p90 {} p99 {}  KS {} (n {} vs {})",
            c["point"].as_str().unwrap_or(""),
            g("p10"),
            g("p50"),
            g("p90"),
            g("p99"),
            c["ks_distance"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.3}")),
            c["n"],
            c["reference_n"]
        );
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The sweep's charts: CDFs (linear and log axis), the summary per point, and the measure
/// against every numeric parameter that varies.
pub fn plots(
    dir: &Path,
    spec: &Spec,
    rows: &[TrialRow],
    reference: Option<&[(String, coracle_sim::sweep::stats::Sample)]>,
) -> Result<Vec<String>, String> {
    let written = std::cell::RefCell::new(Vec::new());
    use coracle_sim::sweep::Measure;
    let unit = match &spec.measure {
        Measure::Metric { path } => path.clone(),
        _ => "ms".to_string(),
    };
    // One axis per chart: a point that measures another quantity than the spec (a metric where
    // the spec measures time, or another metric) is left out of the charts.
    let same_axis = |m: &Measure| match (m, &spec.measure) {
        (Measure::Metric { path: a }, Measure::Metric { path: b }) => a == b,
        (Measure::Metric { .. }, _) | (_, Measure::Metric { .. }) => false,
        _ => true,
    };
    let charted: Vec<&coracle_sim::sweep::Point> = spec
        .points
        .iter()
        .filter(|p| same_axis(&p.measure))
        .collect();
    if charted.len() < spec.points.len() {
        let left: Vec<&str> = spec
            .points
            .iter()
            .filter(|p| !same_axis(&p.measure))
            .map(|p| p.label.as_str())
            .collect();
        eprintln!(
            "note: left out of the charts, measuring another quantity than the spec ({unit}): {} (their statistics are in summary.json)",
            left.join(", ")
        );
    }
    let curves: Vec<plot::Curve> = charted
        .iter()
        .map(|p| {
            let s = sample_of(rows, p.index);
            plot::Curve {
                label: p.label.clone(),
                values: s.values.clone(),
                n: s.n(),
            }
        })
        .collect();
    let refs: Vec<plot::Curve> = reference
        .unwrap_or(&[])
        .iter()
        .filter(|(k, _)| charted.iter().any(|p| &p.label == k))
        .map(|(k, s)| plot::Curve {
            label: k.clone(),
            values: s.values.clone(),
            n: s.n(),
        })
        .collect();
    let w = |name: &str, svg: String| {
        std::fs::write(dir.join(name), svg).map_err(|e| format!("{name}: {e}"))?;
        written.borrow_mut().push(name.to_string());
        Ok::<(), String>(())
    };
    // The measure in the title, when every charted point has the same (a point may change its
    // horizon, for one).
    let described = spec.measure.describe();
    let title = if charted.iter().all(|p| p.measure.describe() == described) {
        format!("{}: {described}", spec.name)
    } else {
        spec.name.clone()
    };
    let title = if title.len() > 90 {
        spec.name.clone()
    } else {
        title
    };
    w(
        "cdf.svg",
        plot::cdf_chart(&title, &unit, &curves, &refs, false)?,
    )?;
    w(
        "cdf-log.svg",
        plot::cdf_chart(&title, &format!("{unit} (log scale)"), &curves, &refs, true)?,
    )?;
    let boxes = |x_group: &dyn Fn(usize) -> Option<(f64, String)>| -> Vec<plot::Box5> {
        charted
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let (x, group) = x_group(i)?;
                let s = sample_of(rows, p.index);
                Some(plot::Box5 {
                    label: p.label.clone(),
                    group,
                    x,
                    p5: s.quantile(0.05),
                    p25: s.quantile(0.25),
                    p50: s.quantile(0.5),
                    p75: s.quantile(0.75),
                    p95: s.quantile(0.95),
                    mean: s.mean(),
                    median_censored: s.n() > 0 && s.quantile(0.5).is_none(),
                })
            })
            .collect()
    };
    w(
        "summary.svg",
        plot::measure_chart(
            &spec.name,
            "point",
            &unit,
            &boxes(&|_| Some((0.0, String::new()))),
            true,
        )?,
    )?;
    // Against each parameter that is an axis of the sweep (not one that follows others),
    // one series per combination of the other axes that do not co-vary with it.
    for c in coracle_sim::sweep::axes::by_charts(&charted, &spec.columns) {
        let b = boxes(&|i| c.points[i].clone());
        w(
            &format!("by-{}.svg", slug(&c.column)),
            plot::measure_chart(
                &format!("{} against {}", spec.name, c.column),
                &c.column,
                &unit,
                &b,
                false,
            )?,
        )?;
    }
    Ok(written.into_inner())
}

fn single_trial(spec: Spec, which: &str, o: &RunOpts) -> ExitCode {
    let spec = with_seed(spec, o.seed);
    let Some((p, t)) = which.rsplit_once('/') else {
        eprintln!("error: --trial: expected POINT/TRIAL such as 150-300/17, found \"{which}\"");
        return ExitCode::from(EXIT_USAGE);
    };
    let Some(point) = spec.point(p) else {
        let labels: Vec<&str> = spec.points.iter().map(|p| p.label.as_str()).collect();
        eprintln!(
            "error: --trial: no point \"{p}\" in {} (points: {})",
            spec.file,
            labels.join(", ")
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let Ok(trial) = t.parse::<u64>() else {
        eprintln!("error: --trial: expected a trial number after /, found \"{t}\"");
        return ExitCode::from(EXIT_USAGE);
    };
    if trial >= point.trials {
        eprintln!(
            "error: --trial: point {} has trials 0 to {}, found {trial}",
            point.label,
            point.trials - 1
        );
        return ExitCode::from(EXIT_USAGE);
    }
    // The point files live beside an output directory's spec.json, or where --output-dir
    // says (written here); re-run commands name them only if they exist.
    let dir = o
        .output_dir
        .clone()
        .or_else(|| Path::new(&spec.file).parent().map(Path::to_path_buf))
        .unwrap_or_default();
    if o.output_dir.is_some() {
        // The point files go beside the results of the same sweep (re-running a trial of a
        // sweep in its own directory), never beside another sweep's: --trial writes no
        // results, so it does not replace them either.
        let results = output::result_files(&dir);
        let had = std::fs::read_to_string(dir.join("spec.json")).ok();
        if !results.is_empty() && had.as_deref() != Some(output::pretty(&spec.resolved).as_str()) {
            eprintln!(
                "error: --output-dir {}: it holds the results of another sweep ({}; its spec.json {}), and --trial writes only spec.json and points/, which would not match them: choose another directory (or run the whole sweep there, which replaces them)",
                dir.display(),
                results.join(", "),
                if had.is_some() {
                    "is not this sweep's"
                } else {
                    "is missing"
                }
            );
            return ExitCode::from(EXIT_USAGE);
        }
        if let Err(e) = output::write_points(&dir, &spec) {
            eprintln!("error: cannot write {}: {e}", dir.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let prepared = match coracle_sim::sweep::prepare(&spec, &|p| points_file(&dir, p)) {
        Ok(p) => p,
        Err(e) => return crate::config_error(&e),
    };
    let r = coracle_sim::sweep::run_trial(&spec, &prepared, point.index, trial);
    let csv = output::trials_csv(&spec, std::slice::from_ref(&r));
    out!("{csv}");
    let p = &spec.points[r.point];
    // A --seed given here is part of the command, unless it went into a spec.json written
    // with --output-dir.
    let seed = match o.seed {
        Some(s) if o.output_dir.is_none() => format!(" --seed {s}"),
        _ => String::new(),
    };
    if Path::new(&points_file(&dir, p)).exists() {
        let spec_file = if o.output_dir.is_some() {
            dir.join("spec.json").display().to_string()
        } else {
            spec.file.clone()
        };
        outln!(
            "re-run: {}",
            reproduce_with(&dir, &spec_file, &seed, &spec, &r)
        );
    } else {
        outln!(
            "re-run: coracle sweep {} --trial {}/{}{seed}    (add --output-dir DIR to get this \
             point's scenario as DIR/points/{}.json, for coracle run ... --seed {})",
            shell_quote(&spec.file),
            shell_quote(&p.label),
            r.trial,
            p.file_stem(),
            r.seed
        );
    }
    if r.violation.is_some() {
        return ExitCode::from(EXIT_VIOLATION);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(opt: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<(u64, u64)>, String> {
        shard_from(opt, &|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_job_array_variables_select_a_shard_or_are_an_error() {
        assert_eq!(shard(None, &[]), Ok(None));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ];
        assert_eq!(shard(None, &slurm), Ok(Some((2, 4))));
        let k8s = [("JOB_COMPLETION_INDEX", "0"), ("CORACLE_SHARD_COUNT", "2")];
        assert_eq!(shard(None, &k8s), Ok(Some((0, 2))));
        // Half an array, either way round.
        for (vars, says) in [
            (
                &[("SLURM_ARRAY_TASK_ID", "3")][..],
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                &[("SLURM_ARRAY_TASK_COUNT", "4")][..],
                "SLURM_ARRAY_TASK_COUNT is set but SLURM_ARRAY_TASK_ID is not",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                ][..],
                "SLURM_ARRAY_TASK_COUNT and SLURM_ARRAY_TASK_MIN are set but SLURM_ARRAY_TASK_ID is not",
            ),
            (
                &[("CORACLE_SHARD_COUNT", "3")][..],
                "a Kubernetes Job without `completionMode: Indexed` has no JOB_COMPLETION_INDEX",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "1")][..],
                "CORACLE_SHARD_COUNT is not",
            ),
        ] {
            let e = shard(None, vars).unwrap_err();
            assert!(e.contains(says), "{vars:?}: {e}");
            assert!(e.contains("--shard"), "{e}");
        }
        // An empty variable is not an unset one.
        for (i, (k, _)) in slurm.iter().chain(&k8s).enumerate() {
            let mut vars: Vec<(&str, &str)> = if i < slurm.len() {
                slurm.to_vec()
            } else {
                k8s.to_vec()
            };
            vars.iter_mut().find(|(n, _)| n == k).unwrap().1 = "";
            let e = shard(None, &vars).unwrap_err();
            assert!(e.starts_with(&format!("{k} is set but empty")), "{e}");
        }
        // Both schedulers at once: refused, naming both, unless --shard says which.
        let both: Vec<(&str, &str)> = slurm.iter().chain(&k8s).copied().collect();
        let e = shard(None, &both).unwrap_err();
        assert!(
            e.contains(
                "Slurm (SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_COUNT=4, SLURM_ARRAY_TASK_MIN=1)"
            ) && e.contains("Kubernetes (JOB_COMPLETION_INDEX=0, CORACLE_SHARD_COUNT=2)"),
            "{e}"
        );
        assert_eq!(shard(Some("2/5"), &both), Ok(Some((1, 5))));
        assert_eq!(shard(Some("all"), &both), Ok(None));
        // An explicit --shard ignores even malformed variables.
        assert_eq!(
            shard(Some("1/2"), &[("SLURM_ARRAY_TASK_ID", "")]),
            Ok(Some((0, 2)))
        );
    }
}
