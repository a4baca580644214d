//! The event trace: one JSON object per line, in chronological order.
//!
//! Tracing is off unless asked for; when off, the engine does not build a single string for it.
//! A trace can go to a file, or into a ring buffer that keeps only the last lines (used to show
//! what led to a safety violation).

use serde_json::Value;
use std::collections::VecDeque;
use std::io::Write;

/// Where trace lines go.
pub enum Tracer {
    /// Every line to a writer. The first write error is kept (and nothing more is written):
    /// the run goes on, and its driver reports the error afterwards instead of leaving a
    /// truncated trace behind a run that looks successful.
    Writer {
        out: Box<dyn Write>,
        error: Option<std::io::Error>,
    },
    /// Only the last `cap` lines are kept.
    Ring { cap: usize, lines: VecDeque<String> },
}

impl Tracer {
    /// A tracer writing every line to `out`.
    pub fn writer(out: Box<dyn Write>) -> Tracer {
        Tracer::Writer { out, error: None }
    }

    /// Writes one record.
    pub fn record(&mut self, v: &Value) {
        match self {
            Tracer::Writer { out, error } => {
                if error.is_none() {
                    let r = serde_json::to_writer(&mut *out, v)
                        .map_err(std::io::Error::from)
                        .and_then(|()| out.write_all(b"\n"));
                    *error = r.err();
                }
            }
            Tracer::Ring { cap, lines } => {
                if lines.len() == *cap {
                    lines.pop_front();
                }
                lines.push_back(v.to_string());
            }
        }
    }

    /// Writes one record already serialised (one JSON object, no newline).
    pub fn record_line(&mut self, line: &[u8]) {
        match self {
            Tracer::Writer { out, error } => {
                if error.is_none() {
                    *error = out
                        .write_all(line)
                        .and_then(|()| out.write_all(b"\n"))
                        .err();
                }
            }
            Tracer::Ring { cap, lines } => {
                if lines.len() == *cap {
                    lines.pop_front();
                }
                lines.push_back(String::from_utf8_lossy(line).into_owned());
            }
        }
    }

    /// Flushes a writer (keeping its error, if any).
    pub fn flush(&mut self) {
        if let Tracer::Writer { out, error } = self
            && error.is_none()
        {
            *error = out.flush().err();
        }
    }

    /// The first error writing the trace, if there was one.
    pub fn error(&self) -> Option<&std::io::Error> {
        match self {
            Tracer::Writer { error, .. } => error.as_ref(),
            Tracer::Ring { .. } => None,
        }
    }

    /// The lines kept by a ring buffer.
    pub fn kept(&self) -> Vec<String> {
        match self {
            Tracer::Ring { lines, .. } => lines.iter().cloned().collect(),
            Tracer::Writer { .. } => Vec::new(),
        }
    }
}
