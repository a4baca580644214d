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
    /// Every line to a writer.
    Writer(Box<dyn Write>),
    /// Only the last `cap` lines are kept.
    Ring { cap: usize, lines: VecDeque<String> },
}

impl Tracer {
    /// Writes one record.
    pub fn record(&mut self, v: &Value) -> std::io::Result<()> {
        match self {
            Tracer::Writer(w) => {
                serde_json::to_writer(&mut *w, v)?;
                w.write_all(b"\n")
            }
            Tracer::Ring { cap, lines } => {
                if lines.len() == *cap {
                    lines.pop_front();
                }
                lines.push_back(v.to_string());
                Ok(())
            }
        }
    }

    /// Writes one record already serialised (one JSON object, no newline).
    pub fn record_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Tracer::Writer(w) => {
                w.write_all(line)?;
                w.write_all(b"\n")
            }
            Tracer::Ring { cap, lines } => {
                if lines.len() == *cap {
                    lines.pop_front();
                }
                lines.push_back(String::from_utf8_lossy(line).into_owned());
                Ok(())
            }
        }
    }

    /// Flushes a writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Tracer::Writer(w) => w.flush(),
            Tracer::Ring { .. } => Ok(()),
        }
    }

    /// The lines kept by a ring buffer.
    pub fn kept(&self) -> Vec<String> {
        match self {
            Tracer::Ring { lines, .. } => lines.iter().cloned().collect(),
            Tracer::Writer(_) => Vec::new(),
        }
    }
}
