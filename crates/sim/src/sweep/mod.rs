//! Many trials: parameter sweeps over a base scenario, measurements of each trial (the time
//! from a fault to a condition, or a number from the results), statistics, and the files a
//! sweep writes.
//!
//! * [`spec`]: the sweep file (base config, points and grid, trials, measure) and its errors;
//! * [`runner`]: trial seeds, the per-trial horizon, the parallel run;
//! * [`axes`]: which parameters the charts are drawn against, and their series;
//! * [`measure`]: fault times and conditions read from a run;
//! * [`reach`]: measures that can never be met, found before the trials run;
//! * [`stats`]: quantiles, confidence intervals, the Kolmogorov–Smirnov distance;
//! * [`output`]: `trials.csv`, `summary.json`, shards and their merge, reference data;
//! * [`splitvote`]: the closed-form split-vote probabilities of Ongaro's thesis.
//!
//! The reference is `docs/sweeps.md`.

pub mod axes;
pub mod measure;
pub mod output;
pub mod reach;
pub mod runner;
pub mod spec;
pub mod splitvote;
pub mod stats;

pub use runner::{
    Control, Prepared, Status, TrialCost, TrialRow, prepare, prepare_with_warnings, run_all,
    run_trial, run_trial_costed, trial_seed,
};
pub use spec::{Condition, Measure, Point, Spec, load_spec_file, load_spec_str};
