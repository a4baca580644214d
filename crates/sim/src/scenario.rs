//! The resolved scenario: one model for all three configuration forms.
//!
//! Whatever the file looked like (native, 2015 simulator format, 2015 web-editor export, or the
//! compact `{"nodes": N, ...}` form), loading produces a [`Scenario`] with node references
//! resolved to indices, times in nanoseconds and distributions validated. The engine reads only
//! this.

use crate::config::error::Source;
use crate::config::spec::{Name, NodeKind, Which};
use crate::dist::Delay;
use coracle_core::Time;

/// Which configuration form a file used.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Coracle's own schema (`docs/config.md`).
    Native,
    /// The 2015 simulator's format (`network.events` snapshots).
    Legacy2015,
    /// The 2015 web editor's export (`nodes`/`links` with `cx`, `cy` and per-element `events`).
    WebEditor2015,
    /// `{"nodes": N, "loss": p, ...}`: a full mesh of N servers.
    Compact,
}

impl Format {
    /// Name used in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Legacy2015 => "2015 simulator format",
            Format::WebEditor2015 => "2015 web-editor export",
            Format::Compact => "compact form",
        }
    }
}

/// A node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDef {
    pub name: Name,
    pub kind: NodeKind,
    /// Running at time 0.
    pub up: bool,
}

/// One direction of a link.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDef {
    pub latency: Delay,
    pub loss: f64,
    pub up: bool,
}

/// A link between two nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkDef {
    pub id: Name,
    pub from: usize,
    pub to: usize,
    pub bidirectional: bool,
    /// from → to.
    pub forward: ChannelDef,
    /// to → from (unused for one-way links).
    pub reverse: ChannelDef,
}

/// A timeline action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Crash(usize),
    Recover(usize),
    Link {
        link: usize,
        which: Which,
        up: Option<bool>,
        latency: Option<Delay>,
        loss: Option<f64>,
    },
}

/// An action and its time.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedAction {
    pub at: Time,
    pub action: Action,
}

/// How a client's operations arrive.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrival {
    /// Next operation `think` after the previous completes.
    Closed { think: Time },
    /// Poisson arrivals, `rate` per second.
    Open { rate: f64 },
    /// 2015: a tick every U[min, max); skipped while an operation is outstanding.
    Interval { min: Time, max: Time },
}

/// One client's workload.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientWorkload {
    pub arrival: Arrival,
    pub keys: u32,
    pub read_fraction: f64,
    pub cas_fraction: f64,
    pub start: Time,
    pub stop: Option<Time>,
    pub max_ops: Option<u64>,
}

/// A fully resolved scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub source: Source,
    pub format: Format,
    pub name: Option<String>,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub termination: Time,
    pub nodes: Vec<NodeDef>,
    pub links: Vec<LinkDef>,
    /// Sorted by time; actions at the same time keep file order.
    pub timeline: Vec<TimedAction>,
    /// By node index; `Some` for clients with a workload.
    pub workloads: Vec<Option<ClientWorkload>>,
    /// Duration of one durable write.
    pub storage: Delay,
    /// `consensus.protocol`.
    pub protocol: String,
    /// The `consensus` object without `protocol`.
    pub consensus: serde_json::Value,
    /// Remarks about a valid but questionable scenario.
    pub warnings: Vec<String>,
}

impl Scenario {
    /// Number of nodes of `kind`.
    pub fn count(&self, kind: NodeKind) -> usize {
        self.nodes.iter().filter(|n| n.kind == kind).count()
    }

    /// The index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name.text() == name)
    }
}
