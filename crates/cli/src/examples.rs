//! `coracle examples`: the scenario gallery.

use std::path::Path;
use std::process::ExitCode;

/// The first sentence of a description, or the first two when the first is only a label
/// ("raft-variants scenario 5.").
fn first_sentence(d: &str) -> &str {
    // A full stop followed by a space, not one closing an abbreviation such as "e.g.".
    let end = |from: usize| {
        let mut at = from;
        loop {
            let i = at + d[at..].find(". ")?;
            let word = d[..i].rsplit([' ', '(']).next().unwrap_or("");
            if !matches!(word, "e.g" | "i.e" | "etc" | "cf" | "vs") {
                return Some(i + 1);
            }
            at = i + 2;
        }
    };
    match end(0) {
        Some(i) if i < 40 => end(i + 1).map_or(d, |j| &d[..j]),
        Some(i) => &d[..i],
        None => d,
    }
}

pub fn main(dir: &Path) -> ExitCode {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if d == dir => {
                let hint = if dir == Path::new("examples") {
                    " (run coracle from the repository root, or pass --dir)"
                } else {
                    ""
                };
                eprintln!("error: cannot read {}: {e}{hint}", dir.display());
                return ExitCode::from(crate::EXIT_USAGE);
            }
            Err(_) => continue,
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let v: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                outln!("{}\n    (not valid JSON: {e})", f.display());
                continue;
            }
        };
        if v.get("sweep").is_some() || v.get("base").is_some() {
            continue; // sweep specs are listed by `coracle experiment --list`
        }
        let desc = v["description"]
            .as_str()
            .map(first_sentence)
            .unwrap_or("(no description)");
        outln!("{}\n    {desc}", f.display());
    }
    if dir.join("experiments").is_dir() {
        outln!(
            "\nSweep specs of the published election experiments are in {}/experiments: see `coracle experiment --list`.",
            dir.display()
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn abbreviations_do_not_end_a_sentence() {
        assert_eq!(
            first_sentence("One long enough thing (e.g. this) and i.e. that. Then more."),
            "One long enough thing (e.g. this) and i.e. that."
        );
        assert_eq!(
            first_sentence("raft-variants scenario 5. A leader that cannot send. More."),
            "raft-variants scenario 5. A leader that cannot send."
        );
        assert_eq!(first_sentence("No full stop"), "No full stop");
    }
}
