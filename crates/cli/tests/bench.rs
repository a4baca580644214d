//! The benchmark's quick mode is a regression guard: its event counts are deterministic and
//! pinned in `tests/fixtures/bench-quick-events.json`, so any change of behaviour shows up here
//! (timings are only printed). After an intended change, refresh the file with
//! `coracle bench --quick --json out.json` and copy the counts.

use std::path::Path;
use std::process::Command;

#[test]
fn quick_benchmark_event_counts_are_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let out = std::env::temp_dir().join(format!("coracle-bench-{}.json", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_coracle"))
        .args(["bench", "--quick", "--json", out.to_str().unwrap()])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/fixtures/bench-quick-events.json")).unwrap(),
    )
    .unwrap();
    let want = want.as_object().unwrap();
    let rows = got.as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "workloads: {rows:?}");
    for r in rows {
        let name = r["workload"].as_str().unwrap();
        assert_eq!(r["invariants"], "ok", "{name}");
        assert_eq!(
            &r["events"], &want[name],
            "{name}: event count changed (see this file's docs)"
        );
    }
}
