//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use coracle_sim::{CheckOptions, RunOptions, Scenario, load_str, run};
use serde_json::Value;
use std::path::PathBuf;

/// A bundled example (`examples/NAME`) as JSON.
pub fn example(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// A scenario from JSON, or a panic with the configuration error.
pub fn scenario(cfg: &Value) -> Scenario {
    load_str("test.json", &cfg.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// The results document of one seeded run (history recorded, every check on).
pub fn results(cfg: &Value, seed: u64) -> Value {
    run(
        &scenario(cfg),
        RunOptions::seeded(seed),
        &CheckOptions::default(),
    )
    .expect("runs")
    .results
}

/// No invariant violated and a linearizable history.
pub fn assert_safe(r: &Value, what: &str) {
    assert_eq!(
        r["checks"]["invariants"]["status"], "ok",
        "{what}: {}",
        r["checks"]["invariants"]["violation"]
    );
    assert_eq!(
        r["checks"]["linearizability"]["status"], "ok",
        "{what}: {}",
        r["checks"]["linearizability"]
    );
}
