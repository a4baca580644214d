//! Coracle's deterministic discrete-event simulator.
//!
//! Layers, from the file to the results:
//! [`config`] reads a scenario in any accepted form into a [`Scenario`]; [`topology`] holds
//! nodes, links and routes; the [`engine`] runs one protocol over them, driven by a single
//! event queue, a [`timeline`] of faults and client [`workload`]s; [`checks`] watch every step
//! for safety violations; [`metrics`] and [`results`] turn the run into a report and
//! [`trace`] into a JSON Lines log.

pub mod config;
pub mod dist;
pub mod scenario;

pub use config::{ConfigError, load_file, load_str};
pub use scenario::Scenario;
pub mod checks;
pub mod engine;
pub mod metrics;
pub mod results;
pub mod run;
pub mod sweep;
pub mod topology;
pub mod trace;
pub mod workload;

pub use engine::{Outcome, RunOptions, StopReason};
pub use run::{CheckOptions, RunResult, run};
