//! Loading scenario files.
//!
//! Three forms are accepted and resolved into one [`Scenario`]:
//!
//! | form | recognised by |
//! |---|---|
//! | 2015 simulator format | a `network` object with an `events` list |
//! | 2015 web-editor export | top-level `nodes` and `links` lists and no `network` |
//! | compact form | top-level `nodes` is a number |
//! | native | anything else (a `network` object without `events`) |
//!
//! Every error is a [`ConfigError`] naming the file, the JSON path, what was expected and what
//! was found, and the line and column where they can be found.

pub mod error;
mod legacy;
pub mod locate;
pub mod schema;
mod size;
pub mod spec;
mod timeline;

use crate::dist::{Delay, latency_class};
use crate::scenario::*;
use coracle_core::{MS, Time, ms_to_time};
pub use error::{ConfigError, Source};
use serde::de::DeserializeOwned;
use spec::*;
use std::collections::BTreeMap;

/// Largest accepted number of nodes (routing tables grow with the square of it).
pub const MAX_NODES: usize = 10_000;
/// Largest accepted number of links.
pub const MAX_LINKS: usize = 1_000_000;
/// Largest scenario file read (a million links take about 60 MiB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Largest accepted number of timeline actions.
pub const MAX_ACTIONS: usize = 1_000_000;
/// Largest accepted key space.
pub const MAX_KEYS: u32 = 1_000_000;
/// Default and largest `workload.queue_limit` (operations waiting in one open-loop client).
pub const DEFAULT_QUEUE_LIMIT: u64 = 10_000;
pub const MAX_QUEUE_LIMIT: u64 = 1_000_000;
/// Largest accepted horizon: 10^10 ms (about 115 days of simulated time).
pub const MAX_TERMINATION_MS: f64 = 1e10;

/// A number for an error message: huge and tiny values in scientific notation rather than
/// 300 digits.
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() && (x.abs() >= 1e15 || (x != 0.0 && x.abs() < 1e-9)) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}
/// Default horizon of native and compact scenarios.
pub const DEFAULT_TERMINATION_MS: f64 = 10_000.0;
/// Default link latency when neither the link nor `network.defaults` gives one.
pub const DEFAULT_LATENCY_MS: f64 = 10.0;

/// Protocols the loader accepts in `consensus.protocol`.
pub const PROTOCOLS: &[&str] = &["dummy", "raft", "vrr"];

/// Reads and resolves a scenario file.
pub fn load_file(path: &std::path::Path) -> Result<Scenario, ConfigError> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    load_str(&file, &text)
}

/// Reads a config file as text; bytes that are not UTF-8 are an error located at the first
/// of them.
pub fn read_text(path: &std::path::Path) -> Result<String, ConfigError> {
    let error = |message: String, position| ConfigError {
        file: path.display().to_string(),
        path: String::new(),
        message,
        position,
        hint: None,
    };
    let cannot = |e: std::io::Error| error(format!("cannot read the file: {e}"), None);
    // Read through a limit: `/dev/zero` or a mistaken multi-gigabyte file would otherwise be
    // read until memory runs out.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(cannot)?,
            MAX_FILE_BYTES + 1,
        ),
        &mut bytes,
    )
    .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(error(
            format!(
                "expected a file of at most {} MiB, found a larger one",
                MAX_FILE_BYTES >> 20
            ),
            None,
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[start..]).chars().count() + 1;
        error(
            "expected UTF-8 text, found a byte that is not UTF-8 (save the file as UTF-8)".into(),
            Some((line, column)),
        )
    })
}

/// A 2015 web-editor export as the native config it means (its editor's defaults written
/// out), so that a sweep can vary native paths such as `consensus.heartbeat_interval` on it;
/// `None` for any other form (their own keys already reach every parameter). The text must
/// load (see [`load_str`]).
pub fn web_export_as_native(
    file: &str,
    text: &str,
) -> Result<Option<serde_json::Value>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let src = Source {
        file: file.to_string(),
        text: text.to_string(),
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| src.error("", e.to_string()))?;
    if !v.as_object().is_some_and(is_web_export) {
        return Ok(None);
    }
    let cfg: legacy::WebExport = parse(&src, "")?;
    let native = legacy::web_to_native(cfg, &src)?;
    let mut v = serde_json::to_value(native).map_err(|e| src.error("", e.to_string()))?;
    drop_nulls(&mut v);
    Ok(Some(v))
}

/// The 2015 web editor's export: top-level `nodes` and `links` lists, no `network`.
fn is_web_export(o: &serde_json::Map<String, serde_json::Value>) -> bool {
    !o.contains_key("network") && o.get("nodes").is_some_and(|n| n.is_array())
}

/// Removes `null` members of objects (unset optional keys), recursively.
fn drop_nulls(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            o.retain(|_, x| !x.is_null());
            o.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Resolves a scenario from its text; `file` names it in messages.
pub fn load_str(file: &str, text: &str) -> Result<Scenario, ConfigError> {
    // A byte-order mark (some Windows editors write one) is not JSON; skip it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let src = Source {
        file: file.to_string(),
        text: text.to_string(),
    };
    if text.trim().is_empty() {
        return Err(src.error("", "expected a JSON object, found an empty file"));
    }
    // Absurd sizes are refused before the JSON tree is built: a million nodes took 1.9 GB to
    // refuse after it. (Invalid JSON fails here too; the tree's parse below reports it.)
    if let Ok(sizes) = serde_json::from_str::<size::Sizes>(text) {
        for (path, key, n, max) in [
            ("network.nodes", "nodes", sizes.nodes, MAX_NODES),
            ("network.links", "links", sizes.links, MAX_LINKS),
            ("timeline", "actions", sizes.timeline, MAX_ACTIONS),
        ] {
            if n > max {
                return Err(src.error(path, format!("expected at most {max} {key}, found {n}")));
            }
        }
    }
    // Parsed with path tracking, so that the one JSON error that is about a value rather than
    // the syntax (a number beyond the range of a 64-bit float, such as 1e400) names its key.
    let value: serde_json::Value =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text)).map_err(
            |e| {
                let (path, e) = (e.path().to_string(), e.into_inner());
                let (line, column) = (e.line(), e.column());
                let out_of_range = e.to_string().starts_with("number out of range");
                ConfigError {
                    file: file.to_string(),
                    message: if out_of_range {
                        format!(
                            "expected a number within the range of a 64-bit float (up to about 1.8e308), found {}",
                            number_before(text, line, column)
                        )
                    } else {
                        format!("invalid JSON: {}", strip_pos(&e.to_string()))
                    },
                    path: if out_of_range && path != "." {
                        path
                    } else {
                        String::new()
                    },
                    position: Some((line, column)),
                    hint: None,
                }
            },
        )?;
    let obj = match &value {
        serde_json::Value::Object(o) => o,
        other => {
            return Err(src.error(
                "",
                format!(
                    "expected a JSON object at the top level, found {}",
                    kind_of(other)
                ),
            ));
        }
    };
    if obj.contains_key("schema_version") && obj.contains_key("termination_reason") {
        return Err(src.error(
            "",
            "expected a scenario, found a results file (it has \"schema_version\" and \
             \"termination_reason\"); pass the scenario file the run was made from",
        ));
    }
    if obj.contains_key("base") && obj.contains_key("measure") {
        return Err(src.error(
            "",
            "expected a scenario, found a sweep spec (it has \"base\" and \"measure\"): run it with `coracle sweep FILE --output-dir DIR`",
        ));
    }
    if obj.contains_key("sweep") && !obj.contains_key("network") && !obj.contains_key("nodes") {
        return Err(src.error(
            "",
            "expected a scenario, found a benchmark workload that points at a sweep spec (it has \"sweep\"): time it with `coracle bench --one FILE`, or run the spec it names with `coracle sweep SPEC --output-dir DIR`",
        ));
    }
    let net_events = obj
        .get("network")
        .and_then(|n| n.as_object())
        .is_some_and(|n| n.contains_key("events"));
    if net_events {
        // A native file with a stray `network.events` would otherwise get messages about keys
        // of a format its author never meant.
        let why = |e| {
            format_hint(
                e,
                false,
                "read as the 2015 simulator format because `network` has an \"events\" key (the native format has a top-level \"timeline\")",
            )
        };
        let cfg: legacy::Legacy = parse(&src, "").map_err(why)?;
        return legacy::resolve_legacy(cfg, src.clone()).map_err(why);
    }
    if is_web_export(obj) {
        let why = |e| {
            format_hint(
                e,
                true,
                "read as the 2015 web editor's export because the top level has a \"nodes\" list and no \"network\" (the native format puts \"nodes\" and \"links\" inside \"network\")",
            )
        };
        let cfg: legacy::WebExport = parse(&src, "").map_err(why)?;
        return legacy::resolve_web(cfg, src);
    }
    // Compact form: a number of nodes (anything but a list, so that `"nodes": "three"` is
    // reported as a wrong type rather than as an unknown key of the native format).
    if !obj.contains_key("network") && obj.get("nodes").is_some_and(|n| !n.is_array()) {
        let why = |e| {
            format_hint(
                e,
                true,
                "read as the compact form because the top level has \"nodes\" (a number) and no \"network\"",
            )
        };
        let cfg: legacy::Compact = parse(&src, "").map_err(why)?;
        return legacy::resolve_compact(cfg, src);
    }
    let why = |e| {
        let e = timeline_hint(e, &value);
        if obj.contains_key("network") {
            format_hint(
                e,
                true,
                "read as the native format because the file has a \"network\" object (the compact form, \"nodes\": N, has none)",
            )
        } else {
            e
        }
    };
    let cfg: NativeConfig = parse(&src, "").map_err(why)?;
    resolve(cfg, src, Format::Native)
}

/// Adds to an unknown-key error which of the file forms it was read as and why: a key that
/// belongs to another form is otherwise reported against keys its author never meant.
/// `top_only`: only for keys at the top level (where the forms differ).
fn format_hint(mut e: ConfigError, top_only: bool, why: &str) -> ConfigError {
    let top = !e.path.contains(['.', '[']);
    if e.message.starts_with("unknown key") && (top || !top_only) {
        e.hint = Some(match e.hint.take() {
            Some(h) => format!("{h}\n  hint: {why}"),
            None => why.into(),
        });
    }
    e
}

/// Replaces the generic hint of an unknown key or value inside a timeline action with the
/// keys or values that action takes.
fn timeline_hint(mut e: ConfigError, raw: &serde_json::Value) -> ConfigError {
    let Some(rest) = e.path.strip_prefix("timeline[") else {
        return e;
    };
    let Some((i, key)) = rest.split_once("].") else {
        return e;
    };
    let bad = e
        .message
        .strip_prefix("unknown value \"")
        .or_else(|| e.message.strip_prefix("unknown key \""))
        .and_then(|b| b.split('"').next());
    if let (Ok(i), Some(bad)) = (i.parse::<usize>(), bad)
        && let Some(h) = timeline::action_hint(raw, i, key, bad)
    {
        e.hint = Some(h);
    }
    e
}

/// Deserialises `de` into `T` as people's files are read: through
/// [`Strict`](coracle_core::strict::Strict) (objects only where a struct is expected, no
/// `null` where a value is expected) and with path tracking. Every file a user writes (a
/// scenario in any form, a `consensus` object, a sweep spec) is read through here.
fn strict<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<T, serde_path_to_error::Error<D::Error>> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
    T::deserialize(coracle_core::strict::Strict::new(tracked, error::noun))
        .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
}

/// Deserialises the whole text into `T` (see [`strict`]).
fn parse<T: DeserializeOwned>(src: &Source, prefix: &str) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(&src.text);
    strict(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let pos = (inner.line() > 0).then(|| (inner.line(), inner.column()));
        src.from_serde(prefix, &path, &inner.to_string(), pos)
    })
}

/// Deserialises a sub-value (already parsed) found at `prefix` in `src` (see [`strict`]).
pub fn parse_value<T: DeserializeOwned>(
    src: &Source,
    prefix: &str,
    value: serde_json::Value,
) -> Result<T, ConfigError> {
    strict(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        src.from_serde(prefix, &path, &inner.to_string(), None)
    })
}

/// The number literal that ends at (or just before) a 1-based line and column, as serde_json
/// reports the position of an out-of-range number.
fn number_before(text: &str, line: usize, column: usize) -> String {
    let Some(l) = text.lines().nth(line.saturating_sub(1)) else {
        return "a number".into();
    };
    let end = l.char_indices().nth(column).map_or(l.len(), |(i, _)| i);
    let head = &l[..end];
    let is_num = |c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E');
    let head = head.trim_end_matches(|c: char| !is_num(c));
    let start = head
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_num(c))
        .last()
        .map_or(head.len(), |(i, _)| i);
    match &head[start..] {
        "" => "a number".into(),
        n => n.to_string(),
    }
}

fn strip_pos(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// "a string", "an array", ... for messages.
pub fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Checks a time in ms and converts it.
pub(crate) fn time_at(src: &Source, path: &str, ms: f64) -> Result<Time, ConfigError> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(src.error(
            path,
            format!("expected a time ≥ 0 (milliseconds), found {}", num(ms)),
        ));
    }
    if ms > MAX_TERMINATION_MS {
        return Err(src.error(
            path,
            format!(
                "expected at most {MAX_TERMINATION_MS} ms (about 115 days), found {}",
                num(ms)
            ),
        ));
    }
    Ok(ms_to_time(ms))
}

pub(crate) fn probability(src: &Source, path: &str, p: f64) -> Result<f64, ConfigError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(src.error(
            path,
            format!("expected a probability in [0, 1], found {}", num(p)),
        ));
    }
    Ok(p)
}

/// Resolves a latency spec at `path`.
pub(crate) fn delay(src: &Source, path: &str, l: &Latency) -> Result<Delay, ConfigError> {
    let d = match l {
        Latency::Ms(v) => Delay::Constant { value: *v },
        Latency::Class(c) => match latency_class(c) {
            Some(ms) => Delay::constant(ms),
            None => {
                let mut e = src.error(
                    path,
                    format!("expected a latency class \"s\", \"m\" or \"l\" (5, 10, 20 ms), found \"{c}\""),
                );
                e.hint = Some("a number is taken as milliseconds; objects such as {\"dist\": \"uniform\", \"min\": 1, \"max\": 2} give distributions".into());
                return Err(e);
            }
        },
        Latency::Dist(d) => dist(src, path, d)?,
    };
    d.validate().map_err(|(field, msg)| {
        let p = match l {
            Latency::Dist(_) => error::join(path, field),
            _ => path.to_string(),
        };
        src.error(p, msg)
    })?;
    Ok(d)
}

fn dist(src: &Source, path: &str, d: &DistSpec) -> Result<Delay, ConfigError> {
    let given: Vec<(&str, Option<f64>)> = vec![
        ("value", d.value),
        ("min", d.min),
        ("max", d.max),
        ("mean", d.mean),
        ("sd", d.sd),
        ("mu", d.mu),
        ("sigma", d.sigma),
        ("scale", d.scale),
        ("shape", d.shape),
    ];
    let needs = d.dist.params();
    let name = d.dist.name();
    for (k, v) in &given {
        if v.is_some() && !needs.contains(k) {
            return Err(src.error(
                error::join(path, k),
                format!(
                    "key \"{k}\" is not a parameter of the {name} distribution (it takes {})",
                    needs.join(", ")
                ),
            ));
        }
    }
    let get = |k: &str| -> Result<f64, ConfigError> {
        given
            .iter()
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| *v)
            .ok_or_else(|| {
                src.error(
                    path,
                    format!(
                        "missing required key \"{k}\": the {name} distribution takes {}",
                        needs.join(", ")
                    ),
                )
            })
    };
    Ok(match d.dist {
        DistKind::Constant => Delay::Constant {
            value: get("value")?,
        },
        DistKind::Uniform => Delay::Uniform {
            min: get("min")?,
            max: get("max")?,
        },
        DistKind::Normal => Delay::Normal {
            mean: get("mean")?,
            sd: get("sd")?,
        },
        DistKind::Lognormal => Delay::Lognormal {
            mu: get("mu")?,
            sigma: get("sigma")?,
        },
        DistKind::Exponential => Delay::Exponential { mean: get("mean")? },
        DistKind::Pareto => Delay::Pareto {
            scale: get("scale")?,
            shape: get("shape")?,
        },
    })
}

/// Overlays the keys `spec` sets (at `path`) on `base`.
pub(crate) fn channel(
    src: &Source,
    path: &str,
    spec: &ChannelSpec,
    base: &ChannelDef,
) -> Result<ChannelDef, ConfigError> {
    let mut c = base.clone();
    if let Some(l) = &spec.latency {
        c.latency = delay(src, &error::join(path, "latency"), l)?;
    }
    if let Some(p) = spec.loss {
        c.loss = probability(src, &error::join(path, "loss"), p)?;
    }
    if let Some(b) = &spec.burst_loss {
        c.burst = Some(burst(src, &error::join(path, "burst_loss"), b)?);
    }
    if let Some(p) = spec.duplicate {
        c.duplicate = probability(src, &error::join(path, "duplicate"), p)?;
    }
    if let Some(b) = spec.bandwidth {
        c.bandwidth = Some(bandwidth(src, &error::join(path, "bandwidth"), b)?);
    }
    if let Some(q) = spec.queue {
        if spec.bandwidth.is_none() && base.bandwidth.is_none() {
            return Err(src.error(
                error::join(path, "queue"),
                "a queue limit needs a \"bandwidth\" (without one packets never wait)",
            ));
        }
        c.queue = Some(q);
    }
    Ok(c)
}

pub(crate) fn burst(src: &Source, path: &str, b: &BurstLossSpec) -> Result<BurstLoss, ConfigError> {
    Ok(BurstLoss {
        enter_bad: probability(src, &error::join(path, "enter_bad"), b.enter_bad)?,
        leave_bad: probability(src, &error::join(path, "leave_bad"), b.leave_bad)?,
        loss_good: probability(
            src,
            &error::join(path, "loss_good"),
            b.loss_good.unwrap_or(0.0),
        )?,
        loss_bad: probability(
            src,
            &error::join(path, "loss_bad"),
            b.loss_bad.unwrap_or(1.0),
        )?,
    })
}

pub(crate) fn bandwidth(src: &Source, path: &str, mbps: f64) -> Result<f64, ConfigError> {
    // From 1 bit/s: below it one packet would take longer to send than any run lasts.
    if !mbps.is_finite() || !(1e-6..=1e7).contains(&mbps) {
        return Err(src.error(
            path,
            format!(
                "expected a bandwidth from 0.000001 (1 bit/s) to 10000000 Mbit/s, found {}",
                num(mbps)
            ),
        ));
    }
    Ok(mbps_to_bytes_per_ns(mbps))
}

pub(crate) fn clock_rate(src: &Source, path: &str, rate: Option<f64>) -> Result<f64, ConfigError> {
    match rate {
        None => Ok(1.0),
        Some(r) if r.is_finite() && (0.01..=100.0).contains(&r) => Ok(r),
        Some(r) => Err(src.error(
            path,
            format!(
                "expected a clock rate in [0.01, 100] (1 = no drift), found {}",
                num(r)
            ),
        )),
    }
}

/// The slowest clock a client may have: its proxy numbers requests from its local clock in
/// ns, assuming at most one request per local ns, which links of at least 1 ns each way keep
/// at rates from 0.5. A review found a client at rate 0.01 with 10 ns links reusing numbers
/// after a restart, and getting earlier requests' cached replies.
pub(crate) const MIN_CLIENT_CLOCK_RATE: f64 = 0.5;

pub(crate) fn client_clock_rate(src: &Source, path: &str, rate: f64) -> Result<f64, ConfigError> {
    if rate < MIN_CLIENT_CLOCK_RATE {
        return Err(src.error(
            path,
            format!(
                "expected a clock rate ≥ {MIN_CLIENT_CLOCK_RATE} for a client, found {}: a client proxy numbers its requests from its clock, and a clock this slow would let a restarted client reuse numbers and receive earlier requests' cached replies",
                num(rate)
            ),
        ));
    }
    Ok(rate)
}

pub(crate) fn clock_offset(
    src: &Source,
    path: &str,
    offset: Option<f64>,
) -> Result<i64, ConfigError> {
    match offset {
        None => Ok(0),
        // Local time starts at the offset and never goes below 0: a negative offset would
        // hold the clock at 0, and a clock that stands still makes a server believe forever
        // that it heard from its leader a moment ago.
        Some(o) if o < 0.0 => Err(src.error(
            path,
            format!(
                "expected a clock offset ≥ 0 ms, found {}: local time cannot be negative, and a clock held at 0 would stand still; to set this node's clock behind the others', give the others a larger offset",
                num(o)
            ),
        )),
        Some(o) if o.is_finite() && o <= MAX_TERMINATION_MS => Ok((o * MS as f64).round() as i64),
        Some(o) => Err(src.error(
            path,
            format!(
                "expected a clock offset between 0 and {MAX_TERMINATION_MS} ms, found {}",
                num(o)
            ),
        )),
    }
}

/// Resolves the native schema (also the target of the other forms' conversions).
pub(crate) fn resolve(
    cfg: NativeConfig,
    src: Source,
    format: Format,
) -> Result<Scenario, ConfigError> {
    let mut warnings = Vec::new();
    let termination = time_at(
        &src,
        "termination",
        cfg.termination.unwrap_or(DEFAULT_TERMINATION_MS),
    )?;

    // Nodes.
    let net = &cfg.network;
    if net.nodes.len() > MAX_NODES {
        return Err(src.error(
            "network.nodes",
            format!(
                "expected at most {MAX_NODES} nodes, found {}",
                net.nodes.len()
            ),
        ));
    }
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes = Vec::with_capacity(net.nodes.len());
    for (i, n) in net.nodes.iter().enumerate() {
        if let Some(prev) = index.insert(n.id.text(), i) {
            return Err(src.error(
                format!("network.nodes[{i}].id"),
                format!(
                    "duplicate node id {} (already used by network.nodes[{prev}])",
                    n.id
                ),
            ));
        }
        let clock = n.clock.clone().unwrap_or_default();
        let p = format!("network.nodes[{i}].clock");
        if n.kind == NodeKind::Hub && n.clock.is_some() {
            // As for the clock action: a hub relays packets and runs no timers.
            return Err(src.error(
                p,
                "a hub has no clock (it only relays packets; it runs no protocol and no timers)",
            ));
        }
        if let Some(o) = clock.offset
            && n.kind == NodeKind::Client
            && o < 0.0
        {
            return Err(src.error(
                format!("{p}.offset"),
                format!(
                    "expected an offset ≥ 0 for a client, found {}: a client proxy numbers its requests from its clock, and a clock behind real time (held at 0) would make a restarted client reuse numbers and receive an earlier request's cached reply",
                    num(o)
                ),
            ));
        }
        nodes.push(NodeDef {
            name: n.id.clone(),
            kind: n.kind,
            up: n.up.unwrap_or(true),
            clock_rate: {
                let r = clock_rate(&src, &format!("{p}.rate"), clock.rate)?;
                if n.kind == NodeKind::Client {
                    client_clock_rate(&src, &format!("{p}.rate"), r)?
                } else {
                    r
                }
            },
            clock_offset: clock_offset(&src, &format!("{p}.offset"), clock.offset)?,
        });
    }
    if !nodes.iter().any(|n| n.kind == NodeKind::Server) {
        return Err(src.error(
            "network.nodes",
            "expected at least one node of type \"server\", found none",
        ));
    }
    let known_nodes: Vec<String> = index.keys().cloned().collect();
    let node_ref = |path: String, name: &Name| -> Result<usize, ConfigError> {
        index.get(&name.text()).copied().ok_or_else(|| {
            let mut e = src.error(
                path,
                format!("expected the id of a node, found {name}, which is not in network.nodes"),
            );
            e.hint = Some(error::suggest(&name.text(), &known_nodes, "node id"));
            e
        })
    };

    // Links.
    if net.links.len() > MAX_LINKS {
        return Err(src.error(
            "network.links",
            format!(
                "expected at most {MAX_LINKS} links, found {}",
                net.links.len()
            ),
        ));
    }
    let defaults = channel(
        &src,
        "network.defaults",
        &net.defaults.clone().unwrap_or_default(),
        &ChannelDef::simple(Delay::constant(DEFAULT_LATENCY_MS), 0.0),
    )?;
    let mut link_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut links = Vec::with_capacity(net.links.len());
    for (i, l) in net.links.iter().enumerate() {
        let p = format!("network.links[{i}]");
        let from = node_ref(format!("{p}.from"), &l.from)?;
        let to = node_ref(format!("{p}.to"), &l.to)?;
        if from == to {
            return Err(src.error(
                format!("{p}.to"),
                format!(
                    "expected a node other than \"from\", found {} at both ends",
                    l.to
                ),
            ));
        }
        let id =
            l.id.clone()
                .unwrap_or_else(|| Name::Str(format!("{}-{}", l.from.text(), l.to.text())));
        if let Some(prev) = link_index.insert(id.text(), i) {
            return Err(src.error(
                if l.id.is_some() { format!("{p}.id") } else { p.clone() },
                if l.id.is_some() {
                    format!("expected a link id not used before, found {id}, the id of network.links[{prev}]")
                } else {
                    format!("duplicate link id {id} (the id a link gets from its ends, already used by network.links[{prev}]); give one of them an \"id\"")
                },
            ));
        }
        let bidirectional = l.direction.unwrap_or(Direction::Bi) == Direction::Bi;
        let up = l.up.unwrap_or(true);
        let own = ChannelSpec {
            latency: l.latency.clone(),
            loss: l.loss,
            burst_loss: l.burst_loss.clone(),
            duplicate: l.duplicate,
            bandwidth: l.bandwidth,
            queue: l.queue,
        };
        let mut forward = channel(&src, &p, &own, &defaults)?;
        forward.up = up;
        let reverse = match &l.reverse {
            None => forward.clone(),
            Some(r) => {
                if !bidirectional {
                    return Err(src.error(
                        format!("{p}.reverse"),
                        "a \"uni\" link carries packets one way only, so it has no \"reverse\" direction",
                    ));
                }
                channel(&src, &format!("{p}.reverse"), r, &forward)?
            }
        };
        links.push(LinkDef {
            id,
            from,
            to,
            bidirectional,
            forward,
            reverse,
        });
    }
    if net.mesh {
        let mut linked = std::collections::BTreeSet::new();
        for l in &links {
            linked.insert((l.from.min(l.to), l.from.max(l.to)));
        }
        let ends: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].kind != NodeKind::Hub)
            .collect();
        // Refused before any link is built (2,000 nodes took 400 MB to refuse link by link).
        let pairs = ends.len() * ends.len().saturating_sub(1) / 2;
        if pairs > MAX_LINKS {
            return Err(src.error(
                "network.mesh",
                format!(
                    "expected at most {MAX_LINKS} links, found {} non-hub nodes, whose full mesh has {pairs} links",
                    ends.len()
                ),
            ));
        }
        let explicit = links.len();
        for (x, &a) in ends.iter().enumerate() {
            for &b in &ends[x + 1..] {
                if linked.contains(&(a, b)) {
                    continue;
                }
                if links.len() >= MAX_LINKS {
                    return Err(src.error(
                        "network.mesh",
                        format!("a full mesh of these nodes has more than {MAX_LINKS} links"),
                    ));
                }
                let id = Name::Str(format!("{}-{}", nodes[a].name.text(), nodes[b].name.text()));
                if let Some(prev) = link_index.insert(id.text(), links.len()) {
                    if prev < explicit {
                        return Err(src.error(
                            format!("network.links[{prev}].id"),
                            format!(
                                "link id {id} is also the id \"mesh\" gives the link between {} and {}",
                                nodes[a].name, nodes[b].name
                            ),
                        ));
                    }
                    let other = &links[prev];
                    return Err(src.error(
                        "network.mesh",
                        format!(
                            "the mesh would give the links {}–{} and {}–{} the same id {id} (a mesh link is named FROM-TO): rename a node, or list one of these links in network.links with an \"id\" of its own",
                            nodes[other.from].name, nodes[other.to].name, nodes[a].name, nodes[b].name
                        ),
                    ));
                }
                let ch = defaults.clone();
                links.push(LinkDef {
                    id,
                    from: a,
                    to: b,
                    bidirectional: true,
                    forward: ch.clone(),
                    reverse: ch,
                });
            }
        }
    }

    // Timeline and chaos.
    let refs = timeline::Refs {
        src: &src,
        nodes: &nodes,
        index: &index,
        links: &links,
        link_index: &link_index,
    };
    let (timeline, chaos) = timeline::resolve(
        &refs,
        &cfg.timeline,
        cfg.chaos.as_ref(),
        termination,
        &mut warnings,
    )?;

    // Workload.
    let mut workloads = vec![None; nodes.len()];
    // (The 2015 forms always carry a workload, client nodes or not, as 2015 did.)
    if cfg.workload.is_some()
        && matches!(format, Format::Native | Format::Compact)
        && !nodes.iter().any(|n| n.kind == NodeKind::Client)
    {
        warnings.push(
            "workload: there are no client nodes, so no operations are issued (add nodes of type \"client\", or \"clients\": N in the compact form)"
                .into(),
        );
    }
    if let Some(w) = &cfg.workload {
        let base = client_workload(&src, "workload", w, None)?;
        for (i, n) in nodes.iter().enumerate() {
            if n.kind == NodeKind::Client {
                workloads[i] = Some(base.clone());
            }
        }
        for (name, over) in &w.clients {
            let p = format!("workload.clients.{name}");
            let i = node_ref(p.clone(), &Name::Str(name.clone()))?;
            if nodes[i].kind != NodeKind::Client {
                return Err(src.error(
                    p,
                    format!(
                        "expected the id of a client, found \"{name}\", which is a {}",
                        nodes[i].kind.name()
                    ),
                ));
            }
            if !over.clients.is_empty() {
                return Err(src.error(
                    format!("{p}.clients"),
                    "per-client overrides cannot be nested",
                ));
            }
            // Without a `type`, an override's arrival keys must be of the workload's own type:
            // `min`/`max` on a closed workload's client would otherwise turn it into an
            // interval client (dropping the workload's think time) without a word.
            if over.kind.is_none() {
                let (own, keys): (&str, &[(&str, bool)]) = match base.arrival {
                    Arrival::Closed { .. } => (
                        "closed",
                        &[
                            ("rate", over.rate.is_some()),
                            ("min", over.min.is_some()),
                            ("max", over.max.is_some()),
                        ],
                    ),
                    Arrival::Open { .. } => (
                        "open",
                        &[
                            ("think_time", over.think_time.is_some()),
                            ("min", over.min.is_some()),
                            ("max", over.max.is_some()),
                        ],
                    ),
                    Arrival::Interval { .. } => (
                        "interval",
                        &[
                            ("think_time", over.think_time.is_some()),
                            ("rate", over.rate.is_some()),
                        ],
                    ),
                };
                if let Some((key, _)) = keys.iter().find(|k| k.1) {
                    return Err(src.error(
                        format!("{p}.{key}"),
                        format!(
                            "key \"{key}\" does not apply to the workload's type, \"{own}\" (an override keeps the workload's type unless it gives its own \"type\")"
                        ),
                    ));
                }
            }
            // An override of the workload's own type keeps the arrival keys it leaves out (an
            // override of only `min` keeps `max`; `"type": "closed"` alone keeps the think
            // time); one of another type (with its `type`) takes none of them.
            let mut over = over.clone();
            let same_type = match (over.kind, &base.arrival) {
                (None, _) => true,
                (Some(k), Arrival::Closed { .. }) => k == ArrivalKind::Closed,
                (Some(k), Arrival::Open { .. }) => k == ArrivalKind::Open,
                (Some(k), Arrival::Interval { .. }) => k == ArrivalKind::Interval,
            };
            if same_type {
                match base.arrival {
                    Arrival::Closed { .. } => over.think_time = over.think_time.or(w.think_time),
                    Arrival::Open { .. } => over.rate = over.rate.or(w.rate),
                    Arrival::Interval { .. } => {
                        over.min = over.min.or(w.min);
                        over.max = over.max.or(w.max);
                    }
                }
            }
            workloads[i] = Some(client_workload(&src, &p, &over, Some((w, &base)))?);
        }
    }

    // Storage.
    let storage = match cfg.storage.as_ref().and_then(|s| s.latency.as_ref()) {
        Some(l) => delay(&src, "storage.latency", l)?,
        None => Delay::constant(0.0),
    };

    // Consensus.
    let mut consensus = cfg.consensus.clone();
    let protocol = match consensus.remove("protocol") {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => {
            return Err(src.error(
                "consensus.protocol",
                format!(
                    "expected a protocol name (one of {}), found {}",
                    PROTOCOLS.join(", "),
                    kind_of(&other)
                ),
            ));
        }
        None => {
            // A misspelt "protocol" is the likely cause: say so rather than only "missing".
            let typo = consensus
                .keys()
                .find(|k| strsim::damerau_levenshtein(&k.to_ascii_lowercase(), "protocol") <= 2);
            let mut e = match typo {
                Some(k) => src.error(
                    format!("consensus.{k}"),
                    format!("unknown key \"{k}\", and the required key \"protocol\" is missing"),
                ),
                None => src.error("consensus", "missing required key \"protocol\""),
            };
            e.hint = Some(match typo {
                Some(_) => format!(
                    "did you mean \"protocol\"? (known protocols: {})",
                    PROTOCOLS.join(", ")
                ),
                None => format!("known protocols: {}", PROTOCOLS.join(", ")),
            });
            return Err(e);
        }
    };
    if !PROTOCOLS.contains(&protocol.as_str()) {
        let mut e = src.error(
            "consensus.protocol",
            format!("unknown protocol \"{protocol}\""),
        );
        let names: Vec<String> = PROTOCOLS.iter().map(|s| s.to_string()).collect();
        e.hint = Some(error::suggest(&protocol, &names, "protocol"));
        return Err(e);
    }

    Ok(Scenario {
        source: src,
        format,
        name: cfg.name.clone(),
        description: cfg.description.clone(),
        seed: cfg.seed,
        termination,
        nodes,
        links,
        timeline,
        workloads,
        storage,
        chaos,
        protocol,
        consensus: serde_json::Value::Object(consensus),
        warnings,
    })
}

/// Resolves one client's workload; `parent` supplies values an override leaves out.
fn client_workload(
    src: &Source,
    p: &str,
    w: &WorkloadSpec,
    parent: Option<(&WorkloadSpec, &ClientWorkload)>,
) -> Result<ClientWorkload, ConfigError> {
    let inherit = parent.map(|x| x.1);
    let has_arrival = w.kind.is_some()
        || w.rate.is_some()
        || w.min.is_some()
        || w.max.is_some()
        || w.think_time.is_some();
    let arrival = if let Some(parent) = inherit.filter(|_| !has_arrival) {
        parent.arrival.clone()
    } else {
        let kind = w.kind.unwrap_or(if w.rate.is_some() {
            ArrivalKind::Open
        } else if w.min.is_some() || w.max.is_some() {
            ArrivalKind::Interval
        } else {
            ArrivalKind::Closed
        });
        let not_for = |key: &str, present: bool, kind: &str| -> Result<(), ConfigError> {
            if present {
                Err(src.error(
                    error::join(p, key),
                    format!(
                        "key \"{key}\" does not apply to {} \"{kind}\" workload",
                        if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        }
                    ),
                ))
            } else {
                Ok(())
            }
        };
        match kind {
            ArrivalKind::Closed => {
                not_for("rate", w.rate.is_some(), "closed")?;
                not_for("min", w.min.is_some(), "closed")?;
                not_for("max", w.max.is_some(), "closed")?;
                Arrival::Closed {
                    think: time_at(
                        src,
                        &error::join(p, "think_time"),
                        w.think_time.unwrap_or(0.0),
                    )?,
                }
            }
            ArrivalKind::Open => {
                not_for("think_time", w.think_time.is_some(), "open")?;
                not_for("min", w.min.is_some(), "open")?;
                not_for("max", w.max.is_some(), "open")?;
                let rate = w.rate.ok_or_else(|| src.error(p, "missing required key \"rate\" (operations per second) for an \"open\" workload"))?;
                if !rate.is_finite() || rate <= 0.0 || rate > 1e6 {
                    return Err(src.error(
                        error::join(p, "rate"),
                        format!(
                            "expected a rate in (0, 1000000] operations per second, found {rate}"
                        ),
                    ));
                }
                Arrival::Open { rate }
            }
            ArrivalKind::Interval => {
                not_for("think_time", w.think_time.is_some(), "interval")?;
                not_for("rate", w.rate.is_some(), "interval")?;
                let (min, max) = match (w.min, w.max) {
                    (Some(a), Some(b)) => (a, b),
                    (Some(a), None) | (None, Some(a)) => (a, a),
                    (None, None) => return Err(src.error(p, "missing required key \"min\" and/or \"max\" (ms between operations) for an \"interval\" workload")),
                };
                let min_t = time_at(src, &error::join(p, "min"), min)?;
                let max_t = time_at(src, &error::join(p, "max"), max)?;
                if min > max {
                    return Err(src.error(
                        error::join(p, "max"),
                        format!("expected max ≥ min ({min}), found {max}"),
                    ));
                }
                if max_t == 0 {
                    return Err(src.error(
                        error::join(p, "max"),
                        "expected an interval > 0 ms, found 0",
                    ));
                }
                Arrival::Interval {
                    min: min_t,
                    max: max_t,
                }
            }
        }
    };
    let keys = w.keys.or(inherit.map(|x| u64::from(x.keys))).unwrap_or(5);
    if keys == 0 || keys > u64::from(MAX_KEYS) {
        return Err(src.error(
            error::join(p, "keys"),
            format!("expected between 1 and {MAX_KEYS} keys, found {keys}"),
        ));
    }
    let keys = keys as u32;
    let read_fraction = probability(
        src,
        &error::join(p, "read_fraction"),
        w.read_fraction
            .or(inherit.map(|x| x.read_fraction))
            .unwrap_or(0.5),
    )?;
    let cas_fraction = probability(
        src,
        &error::join(p, "cas_fraction"),
        w.cas_fraction
            .or(inherit.map(|x| x.cas_fraction))
            .unwrap_or(0.0),
    )?;
    if read_fraction + cas_fraction > 1.0 + 1e-12 {
        return Err(src.error(
            error::join(p, "cas_fraction"),
            format!(
                "expected read_fraction + cas_fraction ≤ 1, found {read_fraction} + {cas_fraction}"
            ),
        ));
    }
    let start = match w.start {
        Some(s) => time_at(src, &error::join(p, "start"), s)?,
        None => inherit.map_or(0, |x| x.start),
    };
    let stop = match w.stop {
        Some(s) => Some(time_at(src, &error::join(p, "stop"), s)?),
        None => inherit.and_then(|x| x.stop),
    };
    if let Some(stop) = stop
        && stop < start
    {
        return Err(src.error(
            error::join(p, "stop"),
            format!(
                "expected stop ≥ start ({} ms), found {} ms",
                coracle_core::time_to_ms(start),
                coracle_core::time_to_ms(stop)
            ),
        ));
    }
    let queue_limit = w
        .queue_limit
        .or(inherit.map(|x| x.queue_limit))
        .unwrap_or(DEFAULT_QUEUE_LIMIT);
    if !(1..=MAX_QUEUE_LIMIT).contains(&queue_limit) {
        return Err(src.error(
            error::join(p, "queue_limit"),
            format!(
                "expected between 1 and {MAX_QUEUE_LIMIT} queued operations, found {queue_limit}"
            ),
        ));
    }
    Ok(ClientWorkload {
        arrival,
        queue_limit,
        keys,
        read_fraction,
        cas_fraction,
        start,
        stop,
        max_ops: w.max_ops.or(inherit.and_then(|x| x.max_ops)),
    })
}
