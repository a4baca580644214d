//! `coracle schema`: the JSON Schema of the native configuration, with each protocol's
//! `consensus` object.

use coracle_protocols::dummy::DummyConfig;
use coracle_protocols::raft::RaftConfig;
use coracle_protocols::vrr::VrrConfig;
use coracle_sim::config::spec::NativeConfig;
use serde_json::{Value, json};
use std::process::ExitCode;

/// The schema of one protocol's `consensus` object. `aliases` are (alias, key) pairs the
/// protocol's serde parser also accepts (schemars does not list serde aliases).
fn protocol_schema<T: schemars::JsonSchema>(name: &str, aliases: &[(&str, &str)]) -> Value {
    let mut s = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut s {
        o.remove("$schema");
        let props = o.entry("properties").or_insert_with(|| json!({}));
        props["protocol"] = json!({ "const": name, "description": "The protocol." });
        for (alias, key) in aliases {
            let mut p = props[*key].clone();
            p["description"] = json!(format!("Another name for `{key}`."));
            props[*alias] = p;
        }
        let req = o.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(a) = req {
            a.insert(0, json!("protocol"));
        }
    }
    s
}

/// The complete schema.
pub fn schema() -> Value {
    let mut root = serde_json::to_value(schemars::schema_for!(NativeConfig)).unwrap_or(Value::Null);
    let mut protocols = vec![
        protocol_schema::<RaftConfig>("raft", &[]),
        protocol_schema::<VrrConfig>(
            "vrr",
            &[
                ("heartbeat_interval", "commit_interval"),
                ("election_timeout_min", "view_change_timeout_min"),
                ("election_timeout_max", "view_change_timeout_max"),
            ],
        ),
        protocol_schema::<DummyConfig>("dummy", &[]),
    ];
    // Each protocol's schema was generated on its own, with its own `$defs` and references
    // to `#/$defs/...`: move those definitions to the root, where the references point.
    for p in &mut protocols {
        let Some(Value::Object(defs)) = p.as_object_mut().and_then(|o| o.remove("$defs")) else {
            continue;
        };
        for (name, def) in defs {
            let slot = &mut root["$defs"][&name];
            assert!(
                slot.is_null() || *slot == def,
                "two protocols define different schemas named {name}"
            );
            *slot = def;
        }
    }
    root["properties"]["consensus"] = json!({
        "description": "The protocol and its parameters.",
        "oneOf": protocols,
    });
    root["title"] = json!("Coracle scenario (native format)");
    root
}

pub fn main() -> ExitCode {
    println!(
        "{}",
        serde_json::to_string_pretty(&schema()).expect("schema serialises")
    );
    ExitCode::SUCCESS
}
