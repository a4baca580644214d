//! Configuration errors written for people.
//!
//! Every problem with a scenario file becomes one [`ConfigError`]: the file, the JSON path of the
//! offending value (`network.links[3].latency.max`), what was expected and what was found, the
//! line and column when they can be located, and, for misspelt keys or names, a suggestion.

use super::locate;
use std::fmt;

/// One problem with a configuration file.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// The file as given on the command line (or `<inline>`).
    pub file: String,
    /// JSON path of the offending value; empty for the whole document.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// A suggestion ("did you mean ...").
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, col)) = self.position {
            // Columns are 1-based (serde_json reports 0 at the very start of a line).
            write!(f, ":{line}:{}", col.max(1))?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": {}: {}", self.path, self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Builds errors for one source text, locating paths in it.
#[derive(Clone, Debug)]
pub struct Source {
    pub file: String,
    pub text: String,
}

impl Source {
    /// An error at `path` with `message`, located in the text when possible.
    pub fn error(&self, path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let path = path.into();
        let position = locate::position(&self.text, &path);
        ConfigError {
            file: self.file.clone(),
            path,
            message: message.into(),
            position,
            hint: None,
        }
    }

    /// Turns a serde error from deserialising this text (with path tracking) into a
    /// [`ConfigError`], rewording serde's phrasing and adding suggestions. `prefix` is the path
    /// of the deserialised value inside the document (empty for the whole document).
    pub fn from_serde(
        &self,
        prefix: &str,
        path: &str,
        raw: &str,
        position: Option<(usize, usize)>,
    ) -> ConfigError {
        let raw = strip_position(raw);
        let mut path = join(prefix, if path == "." { "" } else { path });
        let (message, hint) = reword(raw);
        // Point at the start of the offending value (serde points at its end). For unknown keys
        // the path ends at the unknown key; for missing keys it is the enclosing object.
        let position = if path.is_empty() {
            position
        } else {
            locate::position(&self.text, &path).or(position)
        };
        if path.is_empty() {
            path = String::new();
        }
        ConfigError {
            file: self.file.clone(),
            path,
            message,
            position,
            hint,
        }
    }
}

/// `a` + `.b` / `[3]`.
pub fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        prefix.to_string()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

fn strip_position(raw: &str) -> &str {
    match raw.rfind(" at line ") {
        Some(i) if raw[i..].contains(" column ") => &raw[..i],
        _ => raw,
    }
}

/// Rewrites serde's messages into "expected ..., found ..." and adds suggestions.
fn reword(raw: &str) -> (String, Option<String>) {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (name, expected) = split_name(rest);
        let allowed = backticked(expected);
        let msg = format!("unknown key \"{name}\"");
        return (msg, Some(suggest(name, &allowed, "key")));
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (name, expected) = split_name(rest);
        let allowed = backticked(expected);
        let msg = format!("unknown value \"{name}\"");
        return (msg, Some(suggest(name, &allowed, "value")));
    }
    if let Some(rest) = raw.strip_prefix("duplicate field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (
            format!("expected each key once, found \"{name}\" twice"),
            Some(
                "JSON objects here take each key at most once: remove one of them (a key may \
                 also be given under another accepted name, such as VRR's heartbeat_interval \
                 for commit_interval or election_timeout_min for view_change_timeout_min)"
                    .into(),
            ),
        );
    }
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (format!("missing required key \"{name}\""), None);
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        // "floating point `100.0`" for an integer key: written 1e2 or 100.0, or too large (the
        // JSON parser reads an integer above u64 as a float).
        let float = found
            .strip_prefix("floating point `")
            .and_then(|f| f.strip_suffix('`'))
            .and_then(|f| f.parse::<f64>().ok());
        // Beyond ±2^63 (in either sign): an integer literal too long for the parser, or an
        // exponent; either way no integer key here takes it.
        let huge = float.is_some_and(|f| f.abs() >= 9_223_372_036_854_775_808.0);
        let integer_wanted = expected.starts_with('u') || expected.contains("integer");
        if huge && integer_wanted {
            return (
                format!(
                    "expected {}, found {}, beyond any integer this key takes",
                    describe_for_number(expected, found),
                    describe_found(found)
                ),
                expected
                    .contains("string")
                    .then(|| "write a long id as a string: \"123456789012345678901234\"".into()),
            );
        }
        let hint = if float.is_some() && expected.starts_with('u') {
            Some(
                "write the integer without a decimal point or exponent (100, not 1e2 or 100.0)"
                    .to_string(),
            )
        } else if found == "null" || found == "unit value" {
            Some("null is no value here: leave the key out to get its default".to_string())
        } else {
            None
        };
        return (
            format!(
                "expected {}, found {}",
                describe_for_number(expected, found),
                describe_found(found)
            ),
            hint,
        );
    }
    if let Some(rest) = raw.strip_prefix("invalid value: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return (
            format!(
                "expected {}, found {}",
                describe_for_number(expected, found),
                describe_found(found)
            ),
            None,
        );
    }
    if let Some(rest) = raw.strip_prefix("invalid length ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let n = if found == "1" { "element" } else { "elements" };
        return (
            format!(
                "expected {}, found {found} {n}",
                describe_expected(expected)
            ),
            None,
        );
    }
    (raw.to_string(), None)
}

/// What `expected` means for a number that was found: the integer type's range (an integer
/// that overflows it reads "found integer `10000000000`").
fn describe_for_number(e: &str, found: &str) -> String {
    let max = match e {
        "u64" => "18446744073709551615",
        "u32" => "4294967295",
        "u16" => "65535",
        "u8" => "255",
        _ => return describe_expected(e),
    };
    if found.starts_with("integer") || found.starts_with("floating point") {
        format!("a non-negative integer of at most {max}")
    } else {
        describe_expected(e)
    }
}

/// serde's "expected" (a Rust type or a visitor's `expecting`) in the words of a JSON file.
fn describe_expected(e: &str) -> String {
    let words = match e {
        "f64" | "f32" => "a number",
        "u128" | "u64" | "u32" | "u16" | "u8" | "usize" => "a non-negative integer",
        "i128" | "i64" | "i32" | "i16" | "i8" | "isize" => "an integer",
        "a boolean" | "bool" => "true or false",
        "a sequence" | "sequence" => "an array",
        "a map" | "map" => "an object",
        "a borrowed string" | "a string" | "string" => "a string",
        "a character" | "char" => "a one-character string",
        "unit" | "unit value" => "null",
        "option" | "any valid JSON value" => "a JSON value",
        "fewer elements in array" => "an array with fewer elements",
        "variant identifier" | "field identifier" => "a name",
        _ => "",
    };
    if !words.is_empty() {
        return words.to_string();
    }
    // Rust shapes, should any reach here without `Strict`'s own wording.
    if e.starts_with("struct ") || e.starts_with("struct variant ") {
        return "an object".into();
    }
    if let Some(n) = e
        .strip_prefix("tuple of ")
        .or_else(|| e.strip_prefix("a tuple of size "))
        .or_else(|| e.strip_prefix("tuple struct "))
        .and_then(|r| r.split(' ').find(|w| w.parse::<usize>().is_ok()))
    {
        return format!("an array of {n} elements");
    }
    if e.starts_with("enum ") || e.starts_with("unit variant ") {
        return "a name".into();
    }
    if e.starts_with("newtype struct ") || e.starts_with("newtype variant ") {
        return "a value".into();
    }
    if e.starts_with("unit struct ") {
        return "null".into();
    }
    e.to_string()
}

/// serde's "found" (a `serde::de::Unexpected`, or serde_json's `null`) in the words of a JSON
/// file: `a number (5)`, `a string ("s1")`, `an array`.
fn describe_found(f: &str) -> String {
    let quoted = |prefix: &str| {
        f.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('`'))
            .and_then(|r| r.strip_suffix('`'))
    };
    if let Some(n) = quoted("integer ").or_else(|| quoted("floating point ")) {
        return format!("a number ({n})");
    }
    if let Some(b) = quoted("boolean ") {
        return b.to_string();
    }
    if let Some(c) = quoted("character ") {
        return format!("a string (\"{c}\")");
    }
    if let Some(s) = f.strip_prefix("string ") {
        return format!("a string ({s})");
    }
    match f {
        "null" | "unit value" | "unit" => "null",
        "sequence" => "an array",
        "map" => "an object",
        "byte array" => "bytes",
        "Option value" | "newtype struct" | "enum" | "unit variant" | "newtype variant"
        | "tuple variant" | "struct variant" => "a value",
        other => other,
    }
    .to_string()
}

/// The nouns of [`coracle_core::strict::Strict`]'s "expected an object (NOUN)": every struct
/// read from a user's file, by its Rust name (the loader's tests check that each has one).
pub fn noun(name: &str) -> Option<&'static str> {
    Some(match name {
        "NativeConfig" | "Compact" => "a scenario",
        "Legacy" => "a 2015 scenario",
        "WebExport" => "a 2015 web-editor export",
        "NetworkSpec" | "LegacyNetwork" => "the network",
        "NodeSpec" | "LegacyNode" | "WebNode" => "a node",
        "ClockSpec" => "a clock",
        "LinkSpec" | "LegacyLink" | "WebLink" => "a link",
        "ChannelSpec" => "a link's latency and loss",
        "BurstLossSpec" => "bursty-loss parameters",
        "DistSpec" => "a distribution",
        "ActionSpec" => "a timeline action",
        "ChaosSpec" => "random faults",
        "ChaosFault" => "a random fault",
        "WorkloadSpec" => "a workload",
        "StorageSpec" => "storage settings",
        "RoleRef" => "a role",
        "LegacyEvent" | "WebNodeEvent" | "WebLinkEvent" => "an event",
        "LegacyLinkState" => "a link's state",
        "LegacyNodeState" => "a node's state",
        "RaftConfig" => "Raft's settings",
        "VrrConfig" => "VRR's settings",
        "DummyConfig" => "the dummy protocol's settings",
        "SpecFile" => "a sweep spec",
        "PointFile" => "a point",
        "MeasureFile" => "what to measure",
        "FromFile" => "where the measured interval starts",
        _ => return None,
    })
}

fn split_name(rest: &str) -> (&str, &str) {
    match rest.find('`') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    }
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Names of the 2015 formats (and of other simulators) with their native equivalent: no typo
/// distance links `start` to `from`.
const SYNONYMS: &[(&str, &str)] = &[
    ("start", "from"),
    ("end", "to"),
    ("source", "from"),
    ("target", "to"),
    ("src", "from"),
    ("dst", "to"),
    ("events", "timeline"),
];

/// "did you mean ..." for `name` among `allowed`.
pub fn suggest(name: &str, allowed: &[String], what: &str) -> String {
    let synonym = SYNONYMS
        .iter()
        .find(|(a, b)| name.eq_ignore_ascii_case(a) && allowed.iter().any(|x| x == b))
        .map(|(_, b)| (0, allowed.iter().find(|x| x == b).unwrap()));
    let best = synonym.or_else(|| {
        allowed
            .iter()
            .map(|a| {
                (
                    strsim::damerau_levenshtein(
                        &name.to_ascii_lowercase(),
                        &a.to_ascii_lowercase(),
                    ),
                    a,
                )
            })
            .min_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(y.1)))
    });
    // At most 30 names of at most 40 characters each: a hint, not a dump of 10,000 node ids.
    const SHOWN: usize = 30;
    let short = |a: &str| {
        if a.chars().count() > 40 {
            format!("{}…", a.chars().take(40).collect::<String>())
        } else {
            a.to_string()
        }
    };
    let list = if allowed.is_empty() {
        String::from("(none)")
    } else {
        let mut l = allowed
            .iter()
            .take(SHOWN)
            .map(|a| format!("{:?}", short(a)))
            .collect::<Vec<_>>()
            .join(", ");
        if allowed.len() > SHOWN {
            l.push_str(&format!(" and {} more", allowed.len() - SHOWN));
        }
        l
    };
    match best {
        // Close enough to be a typo, not another name altogether ("9" is no typo of "1").
        Some((d, a)) if d <= 1.max(name.chars().count() / 3) && d < name.chars().count() => {
            format!("did you mean {:?}? allowed {what}s here: {list}", short(a))
        }
        _ => format!("allowed {what}s here: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_list_a_few_short_names() {
        let ids: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
        let h = suggest("zz", &ids, "node id");
        assert!(h.ends_with("\"n29\" and 70 more"), "{h}");
        let long = vec!["x".repeat(1000), "esc\u{1b}[31m".to_string()];
        let h = suggest("y", &long, "node id");
        assert!(h.len() < 120, "{h}");
        assert!(h.contains("\\u{1b}"), "control characters escaped: {h}");
    }

    #[test]
    fn rewords_serde_messages() {
        let (m, h) = reword("unknown field `lentency`, expected one of `id`, `from`, `latency`");
        assert_eq!(m, "unknown key \"lentency\"");
        assert!(h.unwrap().starts_with("did you mean \"latency\"?"));
        let (m, _) = reword("invalid type: string \"1000\", expected f64");
        assert_eq!(m, "expected a number, found a string (\"1000\")");
        let (m, _) = reword("missing field `network`");
        assert_eq!(m, "missing required key \"network\"");
    }

    /// Whatever shape serde's message takes, what reaches a person is in JSON words.
    #[test]
    fn no_serde_phrasing_survives() {
        let found = [
            ("sequence", "an array"),
            ("map", "an object"),
            ("unit value", "null"),
            ("null", "null"),
            ("Option value", "a value"),
            ("newtype struct", "a value"),
            ("enum", "a value"),
            ("unit variant", "a value"),
            ("floating point `1.5`", "a number (1.5)"),
            ("integer `-3`", "a number (-3)"),
            ("boolean `true`", "true"),
            ("character `c`", "a string (\"c\")"),
            ("string \"x\"", "a string (\"x\")"),
            ("byte array", "bytes"),
        ];
        let expected = [
            ("struct LinkSpec", "an object"),
            ("struct NetworkSpec with 4 elements", "an object"),
            ("a sequence", "an array"),
            ("a map", "an object"),
            ("u64", "a non-negative integer"),
            ("u32", "a non-negative integer"),
            ("i64", "an integer"),
            ("f64", "a number"),
            ("f32", "a number"),
            ("a boolean", "true or false"),
            ("a borrowed string", "a string"),
            ("a character", "a one-character string"),
            ("unit", "null"),
            ("option", "a JSON value"),
            ("enum ActionKind", "a name"),
            ("variant identifier", "a name"),
            ("field identifier", "a name"),
            ("tuple of 2 elements", "an array of 2 elements"),
            ("a tuple of size 2", "an array of 2 elements"),
            (
                "tuple struct Pair with 2 elements",
                "an array of 2 elements",
            ),
            ("newtype struct Wrapper", "a value"),
            ("unit struct Nothing", "null"),
            ("fewer elements in array", "an array with fewer elements"),
        ];
        let rust = [
            "struct",
            "enum",
            "variant",
            "sequence",
            "map",
            "unit",
            "newtype",
            "tuple",
            "Option",
            "identifier",
            "u64",
            "u32",
            "i64",
            "f64",
            "f32",
            "floating",
            "`",
        ];
        for (f, f_words) in found {
            for (e, e_words) in expected {
                for raw in [
                    format!("invalid type: {f}, expected {e}"),
                    format!("invalid value: {f}, expected {e}"),
                ] {
                    let (m, _) = reword(&raw);
                    // (An integer type may add its range: "… of at most 4294967295".)
                    assert!(
                        m.starts_with(&format!("expected {e_words}")),
                        "{raw} -> {m}"
                    );
                    assert!(m.ends_with(&format!(", found {f_words}")), "{raw} -> {m}");
                    for w in m.split(|c: char| !(c.is_alphanumeric() || c == '`')) {
                        assert!(!rust.contains(&w), "{raw} -> {m}");
                    }
                }
            }
        }
        let (m, _) = reword("invalid length 3, expected struct NetworkSpec with 4 elements");
        assert_eq!(m, "expected an object, found 3 elements");
        let (m, _) = reword("invalid length 1, expected an array of length 2");
        assert_eq!(m, "expected an array of length 2, found 1 element");
    }

    #[test]
    fn display_has_file_position_path_and_hint() {
        let e = ConfigError {
            file: "x.json".into(),
            path: "network.links[3].latency.max".into(),
            message: "expected max ≥ min (5), found 2".into(),
            position: Some((12, 7)),
            hint: Some("swap them".into()),
        };
        assert_eq!(
            e.to_string(),
            "x.json:12:7: network.links[3].latency.max: expected max ≥ min (5), found 2\n  hint: swap them"
        );
    }
}
