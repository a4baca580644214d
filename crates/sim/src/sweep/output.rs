//! The sweep's files: `trials.csv`, `summary.json`, `spec.json`, `points/*.json`, and the shard
//! manifest; reading shard outputs back for `coracle merge`.
//!
//! Everything here is a pure function of the spec and the rows (no wall-clock values, rows
//! sorted by point and trial, numbers printed in their shortest round-trip form), so the
//! same spec and seed give the same bytes whatever the thread count or sharding.

use super::runner::{Status, TrialRow};
use super::spec::{Measure, Spec, load_spec_str, scalar_text};
use super::stats::{Sample, ks_distance, round6};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Quotes a CSV field when needed (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Splits one CSV line into fields (RFC 4180 quoting; no embedded newlines).
pub fn csv_split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// The version of coracle that writes these files, recorded in `shard.json` and
/// `summary.json` (the `coracle_version` of the results JSON).
pub const CORACLE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The fixed columns of `trials.csv`, before the parameters.
pub const FIXED_COLUMNS: &[&str] = &[
    "point",
    "trial",
    "seed",
    "value_ms",
    "censored",
    "status",
    "violation",
];

/// The last column of `trials.csv`, after the parameters: the trial's notes.
pub const NOTES_COLUMN: &str = "notes";

/// Between two notes in the `notes` cell.
pub const NOTES_SEPARATOR: &str = " | ";

/// `trials.csv` for `rows` (sorted).
pub fn trials_csv(spec: &Spec, rows: &[TrialRow]) -> String {
    let mut s = String::new();
    let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(spec.columns.iter().cloned());
    header.push(NOTES_COLUMN.to_string());
    s.push_str(
        &header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    s.push('\n');
    // Parameter cells are the same for every trial of a point.
    let cells: Vec<String> = spec
        .points
        .iter()
        .map(|p| {
            spec.columns
                .iter()
                .map(|c| {
                    p.params
                        .iter()
                        .find(|(k, _)| k == c)
                        .map(|(_, v)| csv_field(&scalar_text(v)))
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    for r in rows {
        let p = &spec.points[r.point];
        let _ = write!(
            s,
            "{},{},{},{},{},{},{}",
            csv_field(&p.label),
            r.trial,
            r.seed,
            r.value.map(|v| v.to_string()).unwrap_or_default(),
            r.status != Status::Ok,
            r.status.name(),
            r.violation.as_deref().unwrap_or("")
        );
        if !spec.columns.is_empty() {
            s.push(',');
            s.push_str(&cells[r.point]);
        }
        s.push(',');
        s.push_str(&csv_field(&r.notes.join(NOTES_SEPARATOR)));
        s.push('\n');
    }
    s
}

/// Reads the rows of a `trials.csv` written for `spec`.
pub fn read_trials_csv(spec: &Spec, file: &str, text: &str) -> Result<Vec<TrialRow>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or(format!("{file}: empty file"))?;
    let cols = csv_split(header);
    if cols.len() < FIXED_COLUMNS.len() || cols[..FIXED_COLUMNS.len()] != *FIXED_COLUMNS {
        return Err(format!(
            "{file}:1: expected the columns {}, found {header}",
            FIXED_COLUMNS.join(",")
        ));
    }
    // The notes are the last column (a file written before there was one has none).
    let notes_at = (cols.len() == FIXED_COLUMNS.len() + spec.columns.len() + 1
        && cols.last().is_some_and(|c| c == NOTES_COLUMN))
    .then(|| cols.len() - 1);
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let at = |m: &str| format!("{file}:{}: {m}", i + 2);
        let f = csv_split(line);
        if f.len() < FIXED_COLUMNS.len() {
            return Err(at("expected at least 7 fields"));
        }
        let point = spec
            .points
            .iter()
            .position(|p| p.label == f[0])
            .ok_or_else(|| at(&format!("unknown point \"{}\"", f[0])))?;
        let trial: u64 = f[1].parse().map_err(|_| at("expected a trial number"))?;
        let seed: u64 = f[2].parse().map_err(|_| at("expected a seed"))?;
        let value = if f[3].is_empty() {
            None
        } else {
            Some(
                f[3].parse::<f64>()
                    .map_err(|_| at("expected a number in value_ms"))?,
            )
        };
        let status = Status::parse(&f[5]).ok_or_else(|| at("unknown status"))?;
        let violation = (!f[6].is_empty()).then(|| f[6].clone());
        let notes = match notes_at.map(|k| f.get(k)) {
            Some(None) => return Err(at(&format!("expected {} fields", cols.len()))),
            Some(Some(cell)) if !cell.is_empty() => {
                cell.split(NOTES_SEPARATOR).map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        rows.push(TrialRow {
            point,
            trial,
            seed,
            value,
            status,
            violation,
            notes,
        });
    }
    Ok(rows)
}

/// The sample of point `p` in `rows`.
pub fn sample_of(rows: &[TrialRow], p: usize) -> Sample {
    Sample::new(
        rows.iter()
            .filter(|r| r.point == p && r.status != Status::NoFault)
            .map(|r| r.sample_value()),
    )
}

/// `summary.json`: per point n, censored count, mean, sd, quantiles, max and 95 % intervals;
/// `version` is the coracle that ran the trials ([`CORACLE_VERSION`], or the shards' when
/// merged).
pub fn summary_json(spec: &Spec, rows: &[TrialRow], complete: bool, version: &str) -> Value {
    let mut points = Vec::new();
    for p in &spec.points {
        let s = sample_of(rows, p.index);
        let mut o = Map::new();
        o.insert("point".into(), json!(p.label));
        let mut params = Map::new();
        for (k, v) in &p.params {
            params.insert(k.clone(), v.clone());
        }
        o.insert("params".into(), Value::Object(params));
        if p.measure != spec.measure {
            // The point's own measure (its `measure` overrides): the spec-level one would
            // mislabel its values.
            o.insert("measure".into(), json!(p.measure.describe()));
            o.insert("unit".into(), json!(unit_of(&p.measure)));
        }
        o.insert("trials".into(), json!(p.trials));
        let mine: Vec<&TrialRow> = rows.iter().filter(|r| r.point == p.index).collect();
        o.insert(
            "no_fault".into(),
            json!(mine.iter().filter(|r| r.status == Status::NoFault).count()),
        );
        o.insert(
            "violations".into(),
            json!(mine.iter().filter(|r| r.violation.is_some()).count()),
        );
        o.insert("notes".into(), json!(note_counts(mine.iter().copied())));
        if let Value::Object(m) = s.summary() {
            o.extend(m);
        }
        points.push(Value::Object(o));
    }
    json!({
        "name": spec.name,
        "coracle_version": version,
        "measure": spec.measure.describe(),
        "unit": unit_of(&spec.measure),
        "seed": spec.seed,
        "complete": complete,
        "trials": rows.len(),
        "points": points,
    })
}

/// Each distinct note of `rows` and the number of rows that have it, sorted by note.
pub fn note_counts<'a>(rows: impl Iterator<Item = &'a TrialRow>) -> BTreeMap<&'a str, u64> {
    let mut counts = BTreeMap::new();
    for r in rows {
        for (i, n) in r.notes.iter().enumerate() {
            if !r.notes[..i].contains(n) {
                *counts.entry(n.as_str()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// "ms" for times from a fault, "value" for a metric.
fn unit_of(m: &Measure) -> &'static str {
    match m {
        Measure::Metric { .. } => "value",
        _ => "ms",
    }
}

/// Pretty JSON with a final newline.
pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// Writes `trials.csv` and `summary.json` (unsharded) or `shard.json` (a shard) into `dir`;
/// `spec.json` and `points/*.json` are written before the trials run ([`write_points`]).
/// `version` is the coracle that ran the trials ([`summary_json`]).
pub fn write_tables(
    dir: &Path,
    spec: &Spec,
    rows: &[TrialRow],
    complete: bool,
    shard: Option<(u64, u64)>,
    version: &str,
) -> std::io::Result<()> {
    std::fs::write(dir.join("trials.csv"), trials_csv(spec, rows))?;
    match shard {
        Some((k, n)) => std::fs::write(
            dir.join("shard.json"),
            pretty(&json!({
                "shard": k + 1,
                "of": n,
                "trials": rows.len(),
                "complete": complete,
                "coracle_version": version,
            })),
        ),
        None => {
            let _ = std::fs::remove_file(dir.join("shard.json"));
            std::fs::write(
                dir.join("summary.json"),
                pretty(&summary_json(spec, rows, complete, version)),
            )
        }
    }
}

/// Writes `spec.json` (the resolved spec) and `points/*.json` (the materialised config of
/// every point) into `dir`, so that error messages and reproduce commands name files that exist.
pub fn write_points(dir: &Path, spec: &Spec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("points"))?;
    // Points of an earlier sweep written to the same directory would mix with this one's.
    for e in std::fs::read_dir(dir.join("points"))?.flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            std::fs::remove_file(e.path())?;
        }
    }
    std::fs::write(dir.join("spec.json"), pretty(&spec.resolved))?;
    for p in &spec.points {
        std::fs::write(
            dir.join(format!("points/{}.json", p.file_stem())),
            pretty(&p.config),
        )?;
    }
    Ok(())
}

/// Whether `name` is a file a sweep writes into its output directory besides `spec.json`
/// and `points/`: its results (`trials.csv`, `summary.json`, `shard.json`), its charts
/// (`cdf.svg`, `cdf-log.svg`, `summary.svg`, `by-*.svg`) and `comparison.json`.
pub fn is_result_file(name: &str) -> bool {
    matches!(
        name,
        "trials.csv"
            | "summary.json"
            | "shard.json"
            | "comparison.json"
            | "cdf.svg"
            | "cdf-log.svg"
            | "summary.svg"
    ) || (name.starts_with("by-") && name.ends_with(".svg"))
}

/// The result files in `dir` ([`is_result_file`]), sorted.
pub fn result_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_result_file(n))
        .collect();
    v.sort();
    v
}

/// Removes the results an earlier sweep left in `dir` ([`is_result_file`]), so that the
/// directory never holds one sweep's `spec.json` and `points/` beside another's results.
/// Other files are left alone; a directory that does not exist has nothing to remove.
pub fn clear_results(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_result_file(&name) && e.path().is_file() {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Shard outputs read back and checked.
pub struct Merged {
    pub spec: Spec,
    pub rows: Vec<TrialRow>,
    /// The coracle version that ran the shards (the same for all of them), which the merged
    /// `summary.json` records.
    pub version: String,
}

/// A shard's `shard.json`: which shard (1-based), of how many, and the coracle that ran it.
struct Manifest {
    k: u64,
    n: u64,
    version: String,
}

/// Reads `dir/shard.json`; a directory without one is named for what it is (an unsharded
/// sweep's output, or no sweep output at all).
fn read_manifest(d: &Path) -> Result<Manifest, String> {
    let file = d.join("shard.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(if !d.exists() {
                format!("{}: no such directory", d.display())
            } else if !d.is_dir() {
                format!(
                    "{}: not a directory (expected a shard's output directory)",
                    d.display()
                )
            } else if d.join("trials.csv").is_file() {
                format!(
                    "{} is not a shard directory (no shard.json): it was written by an unsharded sweep, whose trials.csv and summary.json already hold every trial (merge combines the outputs of --shard K/N runs)",
                    d.display()
                )
            } else {
                format!(
                    "{} is not a shard directory (no shard.json): not a sweep output (no trials.csv either)",
                    d.display()
                )
            });
        }
        Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
    };
    let m: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let k = m["shard"]
        .as_u64()
        .ok_or(format!("{}: no shard", file.display()))?;
    let n = m["of"]
        .as_u64()
        .ok_or(format!("{}: no count", file.display()))?;
    if k == 0 || k > n {
        return Err(format!("{}: shard {k} of {n} is out of range", d.display()));
    }
    if m["complete"] != json!(true) {
        return Err(format!(
            "{}: shard {k}/{n} was interrupted; run it again before merging",
            d.display()
        ));
    }
    let version = m["coracle_version"].as_str().ok_or(format!(
        "{}: no coracle_version: the shard was written by a coracle that did not record its version, so it cannot be checked against the others: run it again (this is coracle {CORACLE_VERSION})",
        file.display()
    ))?;
    Ok(Manifest {
        k,
        n,
        version: version.to_string(),
    })
}

/// Reads shard directories (each with `spec.json`, `shard.json`, `trials.csv`) and checks that
/// they are the complete, non-overlapping shards of one sweep, run by one coracle version,
/// and that every row is a trial of its shard with the seed its point and index derive from
/// the master seed (a row that is not was edited, or comes from another sweep).
pub fn merge_dirs(dirs: &[&Path]) -> Result<Merged, String> {
    if dirs.is_empty() {
        return Err("expected at least one shard directory".into());
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    // What each directory is, and which coracle wrote it, before its contents are compared:
    // shards of two versions may well have different spec.json files.
    let manifests = dirs
        .iter()
        .map(|d| read_manifest(d))
        .collect::<Result<Vec<_>, _>>()?;
    let version = manifests[0].version.clone();
    if let Some((d, m)) = dirs
        .iter()
        .zip(&manifests)
        .find(|(_, m)| m.version != version)
    {
        return Err(format!(
            "the shards were run by different coracle versions: {} by coracle {version}, {} by coracle {}: run every shard with the same version",
            dirs[0].display(),
            d.display(),
            m.version
        ));
    }
    let spec_text = read(&dirs[0].join("spec.json"))?;
    let spec_file = dirs[0].join("spec.json").display().to_string();
    let spec = load_spec_str(&spec_file, &spec_text, Some(dirs[0])).map_err(|e| e.to_string())?;
    // The global ordinal of a point's first trial: trial t of point p is shard
    // (first[p] + t) mod N (runner::selected).
    let first: Vec<u64> = spec
        .points
        .iter()
        .scan(0u64, |g, p| {
            let at = *g;
            *g += p.trials;
            Some(at)
        })
        .collect();
    // A seed that differs may also come from a change in how seeds are derived.
    let other_version = if version == CORACLE_VERSION {
        String::new()
    } else {
        format!(
            " (or this coracle, {CORACLE_VERSION}, derives seeds otherwise than coracle {version}, which ran the shards: merge with that version)"
        )
    };
    let mut seen: Vec<Option<String>> = Vec::new();
    let mut of = None;
    let mut rows = Vec::new();
    for (d, m) in dirs.iter().zip(&manifests) {
        let t = read(&d.join("spec.json"))?;
        if t != spec_text {
            return Err(format!(
                "{}: spec.json differs from {}: the shards come from different sweeps",
                d.display(),
                spec_file
            ));
        }
        let (k, n) = (m.k, m.n);
        if *of.get_or_insert(n) != n {
            return Err(format!(
                "{}: shard {k}/{n}, but other shards are of {}",
                d.display(),
                of.unwrap_or(0)
            ));
        }
        if seen.is_empty() {
            seen = vec![None; n as usize];
        }
        if let Some(prev) = &seen[(k - 1) as usize] {
            return Err(format!(
                "{}: shard {k}/{n} appears twice (also in {prev})",
                d.display()
            ));
        }
        seen[(k - 1) as usize] = Some(d.display().to_string());
        let file = d.join("trials.csv").display().to_string();
        let mine = read_trials_csv(&spec, &file, &read(&d.join("trials.csv"))?)?;
        // Line of each (point, trial) in the file (rows are read in file order, after the
        // header).
        let mut lines: std::collections::HashMap<(usize, u64), usize> =
            std::collections::HashMap::with_capacity(mine.len());
        for (i, r) in mine.iter().enumerate() {
            let line = i + 2;
            let p = &spec.points[r.point];
            let at = || format!("{file}:{line}: point {} trial {}", p.label, r.trial);
            if r.trial >= p.trials {
                return Err(format!(
                    "{}: the point has trials 0 to {}: the shard's trials.csv was edited or comes from another sweep",
                    at(),
                    p.trials.saturating_sub(1)
                ));
            }
            let expected = super::runner::trial_seed(spec.seed, &p.label, r.trial);
            if r.seed != expected {
                return Err(format!(
                    "{}: expected seed {expected} (from the master seed {}, the point and the trial), found {}: the shard's trials.csv was edited or comes from another sweep{other_version}",
                    at(),
                    spec.seed,
                    r.seed
                ));
            }
            let belongs = (first[r.point] + r.trial) % n + 1;
            if belongs != k {
                return Err(format!(
                    "{}: the trial belongs to shard {belongs}/{n}, not {k}/{n}: the shard's trials.csv was edited",
                    at()
                ));
            }
            if let Some(before) = lines.insert((r.point, r.trial), line) {
                return Err(format!(
                    "{file}: trial {} of point {} appears twice in this shard's trials.csv (lines {before} and {line})",
                    r.trial, p.label
                ));
            }
        }
        let planned = super::runner::selected(&spec, Some((k - 1, n)));
        if mine.len() < planned.len() {
            let (p, t) = planned
                .iter()
                .find(|key| !lines.contains_key(key))
                .copied()
                .unwrap_or_default();
            return Err(format!(
                "{file}: {} of shard {k}/{n}'s {} trials are missing (the first: trial {t} of point {}): the shard's trials.csv was truncated or edited",
                planned.len() - mine.len(),
                planned.len(),
                spec.points[p].label
            ));
        }
        rows.extend(mine);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{}", i + 1))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing shard(s) {} of {}",
            missing.join(", "),
            of.unwrap_or(0)
        ));
    }
    rows.sort_by_key(|r| (r.point, r.trial));
    // Every row is a trial of its own shard, once, and every shard is there once: together
    // they are every trial of the sweep (checked all the same).
    if rows.len() as u64 != spec.total_trials() {
        return Err(format!(
            "the shards hold {} trials, the sweep has {}",
            rows.len(),
            spec.total_trials()
        ));
    }
    Ok(Merged {
        spec,
        rows,
        version,
    })
}

/// A reference distribution per point label, from a CSV with columns `point,value_ms`.
pub fn read_reference(file: &str, text: &str) -> Result<Vec<(String, Sample)>, String> {
    // Spreadsheets save CSV with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    let header = lines.next().ok_or(format!("{file}: empty file"))?;
    let cols = csv_split(header);
    let pi = cols.iter().position(|c| c.trim() == "point");
    let vi = cols.iter().position(|c| c.trim() == "value_ms");
    let (Some(pi), Some(vi)) = (pi, vi) else {
        return Err(format!(
            "{file}:1: expected columns point,value_ms, found {header}"
        ));
    };
    let mut by: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_split(line);
        let (Some(p), Some(v)) = (f.get(pi), f.get(vi)) else {
            return Err(format!("{file}:{}: expected {} fields", i + 2, cols.len()));
        };
        let v = v.trim();
        let x = if v.is_empty() || v == "inf" || v == "censored" {
            None
        } else {
            let x = v.parse::<f64>().ok().filter(|x| x.is_finite());
            let hint = if f.len() > cols.len() {
                " (this line has more fields than the header: a point label with a comma, \
                 such as \"a=1,b=2\", must be in double quotes)"
            } else {
                ""
            };
            Some(x.ok_or_else(|| {
                format!(
                    "{file}:{}: value_ms: expected a number (or empty, inf or censored), \
                     found \"{v}\"{hint}",
                    i + 2
                )
            })?)
        };
        match by.iter_mut().find(|(k, _)| k == p.trim()) {
            Some((_, list)) => list.push(x),
            None => by.push((p.trim().to_string(), vec![x])),
        }
    }
    Ok(by.into_iter().map(|(k, v)| (k, Sample::new(v))).collect())
}

/// Comparison of each point with the reference of the same label: quantile differences
/// (ours − reference) and the KS distance.
pub fn compare_reference(spec: &Spec, rows: &[TrialRow], reference: &[(String, Sample)]) -> Value {
    let mut out = Vec::new();
    for p in &spec.points {
        let Some((_, r)) = reference.iter().find(|(k, _)| *k == p.label) else {
            continue;
        };
        let s = sample_of(rows, p.index);
        let mut diffs = Map::new();
        for (name, q) in super::stats::QUANTILES {
            let d = match (s.quantile(*q), r.quantile(*q)) {
                (Some(a), Some(b)) => round6(a - b),
                _ => Value::Null,
            };
            diffs.insert((*name).into(), d);
        }
        out.push(json!({
            "point": p.label,
            "n": s.n(),
            "reference_n": r.n(),
            "quantile_differences_ms": diffs,
            "ks_distance": ks_distance(&s, r).map_or(Value::Null, round6),
        }));
    }
    Value::Array(out)
}
