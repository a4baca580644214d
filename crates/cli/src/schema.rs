//! `coracle schema`: the JSON Schema of the native configuration, with each protocol's
//! `consensus` object (built by [`coracle_sim::config::schema`]).

use std::process::ExitCode;

pub fn main() -> ExitCode {
    outln!(
        "{}",
        serde_json::to_string_pretty(&coracle_sim::config::schema::schema())
            .expect("schema serialises")
    );
    ExitCode::SUCCESS
}
