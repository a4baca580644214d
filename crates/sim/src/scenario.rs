//! The resolved scenario: one model for all three configuration forms.
//!
//! Whatever the file looked like (native, 2015 simulator format, 2015 web-editor export, or the
//! compact `{"nodes": N, ...}` form), loading produces a [`Scenario`] with node references
//! resolved to indices, times in nanoseconds and distributions validated. The engine reads only
//! this.

use crate::config::error::Source;
use crate::config::spec::{ChaosTarget, Name, NodeKind, RoleTarget, Which};
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
    /// Clock drift rate (local seconds per real second).
    pub clock_rate: f64,
    /// Clock offset, ns (may be negative).
    pub clock_offset: i64,
}

/// One direction of a link.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDef {
    pub latency: Delay,
    pub loss: f64,
    pub burst: Option<BurstLoss>,
    pub duplicate: f64,
    /// Capacity in bytes per ns (`None`: unlimited).
    pub bandwidth: Option<f64>,
    /// Longest queue in packets (`None`: unlimited).
    pub queue: Option<u32>,
    pub up: bool,
}

impl ChannelDef {
    /// Everything about this direction, for `coracle check`: "latency 5 ms, loss 0.01,
    /// bandwidth 10 Mbit/s, queue 20".
    pub fn describe(&self) -> String {
        let mut s = format!("latency {}, loss {}", self.latency, self.loss);
        if let Some(b) = &self.burst {
            s.push_str(&format!(", {}", b.describe()));
        }
        if self.duplicate > 0.0 {
            s.push_str(&format!(", duplicate {}", self.duplicate));
        }
        if let Some(b) = self.bandwidth {
            s.push_str(&format!(", bandwidth {} Mbit/s", bytes_per_ns_to_mbps(b)));
        }
        if let Some(q) = self.queue {
            s.push_str(&format!(", queue {q}"));
        }
        s
    }

    /// A channel with only a latency and a loss probability.
    pub fn simple(latency: Delay, loss: f64) -> Self {
        ChannelDef {
            latency,
            loss,
            burst: None,
            duplicate: 0.0,
            bandwidth: None,
            queue: None,
            up: true,
        }
    }
}

/// Gilbert–Elliott parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BurstLoss {
    pub enter_bad: f64,
    pub leave_bad: f64,
    pub loss_good: f64,
    pub loss_bad: f64,
}

/// Converts Mbit/s to bytes per ns.
pub fn mbps_to_bytes_per_ns(mbps: f64) -> f64 {
    mbps * 1e6 / 8.0 / 1e9
}

/// Converts bytes per ns back to Mbit/s (for display).
pub fn bytes_per_ns_to_mbps(b: f64) -> f64 {
    // Rounded to 9 decimals so that 0.2 Mbit/s reads back as 0.2, not 0.19999999999999998.
    (b * 8.0 * 1e3 * 1e9).round() / 1e9
}

impl BurstLoss {
    /// "bursty loss (enter 0.01, leave 0.2, loss 0 / 1)".
    pub fn describe(&self) -> String {
        format!(
            "bursty loss (enter {}, leave {}, loss {} / {})",
            self.enter_bad, self.leave_bad, self.loss_good, self.loss_bad
        )
    }
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

/// Whom a node action hits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    Node(usize),
    Role(RoleTarget),
    /// (Internal, random faults.) The node an earlier action of the schedule resolved.
    Bound(u32),
}

/// A partition member.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Member {
    Node(usize),
    Role(RoleTarget),
}

/// A partition group.
#[derive(Clone, Debug, PartialEq)]
pub enum Group {
    Members(Vec<Member>),
    /// Every server in no other group.
    Rest,
}

/// Changes to a link direction (`None`: unchanged).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LinkChange {
    pub up: Option<bool>,
    pub latency: Option<Delay>,
    pub loss: Option<f64>,
    pub burst: Option<BurstLoss>,
    pub duplicate: Option<f64>,
    pub bandwidth: Option<f64>,
}

/// A timeline action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Crash(Target),
    Recover(Target),
    Pause(Target),
    Resume(Target),
    Isolate {
        target: Target,
        inbound: bool,
        outbound: bool,
    },
    Rejoin(Target),
    /// Traffic between different groups stops.
    Partition {
        groups: Vec<Group>,
    },
    /// Traffic from `from` to `to` stops.
    OneWay {
        from: Vec<Member>,
        to: Vec<Member>,
    },
    Heal,
    /// (Internal, random faults.) Remove the partition made by schedule entry `id`.
    HealOne(u32),
    /// (Internal, random faults.) Bring back up the link directions schedule entry `id` took down.
    LinkUpOne(u32),
    Clock {
        target: Target,
        rate: Option<f64>,
        offset: Option<i64>,
    },
    Link {
        link: usize,
        which: Which,
        change: LinkChange,
    },
    Flap {
        link: usize,
        which: Which,
        up: Delay,
        down: Delay,
        until: Option<Time>,
    },
}

impl Action {
    /// The node (or role) an action aimed at one node targets; `None` for partitions, heals
    /// and link actions.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Action::Crash(t)
            | Action::Recover(t)
            | Action::Pause(t)
            | Action::Resume(t)
            | Action::Rejoin(t)
            | Action::Isolate { target: t, .. }
            | Action::Clock { target: t, .. } => Some(t),
            _ => None,
        }
    }
}

/// An action and its time.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedAction {
    pub at: Time,
    /// Random extra delay drawn at the start of the run.
    pub delay: Option<Delay>,
    pub action: Action,
}

/// One kind of random fault.
#[derive(Clone, Debug, PartialEq)]
pub struct ChaosFault {
    /// Events per second.
    pub rate: f64,
    pub duration: Delay,
    pub target: ChaosTarget,
}

/// Random fault schedule, expanded into timeline actions from the run's seed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Chaos {
    pub start: Time,
    pub stop: Option<Time>,
    pub crash: Option<ChaosFault>,
    pub pause: Option<ChaosFault>,
    pub isolate: Option<ChaosFault>,
    pub partition: Option<ChaosFault>,
    pub link: Option<ChaosFault>,
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
    /// Open loops: the most operations waiting in the client; later arrivals are skipped.
    pub queue_limit: u64,
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
    /// Random faults.
    pub chaos: Option<Chaos>,
    /// `consensus.protocol`.
    pub protocol: String,
    /// The `consensus` object without `protocol`.
    pub consensus: serde_json::Value,
    /// Remarks about a valid but questionable scenario.
    pub warnings: Vec<String>,
}

impl Scenario {
    /// The scenario's `name`, or else its file name without the extension.
    pub fn title(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            std::path::Path::new(&self.source.file)
                .file_stem()
                .map_or_else(
                    || self.source.file.clone(),
                    |s| s.to_string_lossy().into_owned(),
                )
        })
    }

    /// Number of nodes of `kind`.
    pub fn count(&self, kind: NodeKind) -> usize {
        self.nodes.iter().filter(|n| n.kind == kind).count()
    }

    /// The index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name.text() == name)
    }
}

impl Scenario {
    fn target_text(&self, t: &Target) -> String {
        match t {
            Target::Node(i) => self.nodes[*i].name.text(),
            Target::Role(RoleTarget::Last) => "the node the last such fault hit".into(),
            Target::Role(r) => format!(
                "the {}",
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            Target::Bound(_) => "the node the matching fault hit".into(),
        }
    }

    fn members_text(&self, m: &[Member]) -> String {
        let v: Vec<String> = m
            .iter()
            .map(|x| match x {
                Member::Node(i) => self.nodes[*i].name.text(),
                Member::Role(r) => format!(
                    "({})",
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
            })
            .collect();
        format!("[{}]", v.join(", "))
    }

    /// A one-line description of an action, for `coracle check`.
    pub fn describe(&self, a: &Action) -> String {
        let link = |l: &usize, w: &Which| {
            let def = &self.links[*l];
            if !def.bidirectional {
                // A one-way link has one direction: "(both)" would mislead.
                return format!("link {} (one-way)", def.id.text());
            }
            format!(
                "link {} ({})",
                def.id.text(),
                serde_json::to_value(w)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )
        };
        match a {
            Action::Crash(t) => format!("crash {}", self.target_text(t)),
            Action::Recover(t) => format!("recover {}", self.target_text(t)),
            Action::Pause(t) => format!("pause {}", self.target_text(t)),
            Action::Resume(t) => format!("resume {}", self.target_text(t)),
            Action::Isolate {
                target,
                inbound,
                outbound,
            } => format!(
                "isolate {} ({})",
                self.target_text(target),
                match (inbound, outbound) {
                    (true, true) => "deaf and mute",
                    (true, false) => "deaf: hears nothing",
                    _ => "mute: nothing it sends leaves",
                }
            ),
            Action::Rejoin(t) => format!("rejoin {}", self.target_text(t)),
            Action::Partition { groups } => format!(
                "partition {}",
                groups
                    .iter()
                    .map(|g| match g {
                        Group::Members(m) => self.members_text(m),
                        Group::Rest => "[the other servers]".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            Action::OneWay { from, to } => format!(
                "partition one way: {} -> {}",
                self.members_text(from),
                self.members_text(to)
            ),
            Action::Heal | Action::HealOne(_) => "heal partitions".into(),
            Action::LinkUpOne(_) => "bring the link back up".into(),
            Action::Clock {
                target,
                rate,
                offset,
            } => {
                let mut parts = Vec::new();
                if let Some(r) = rate {
                    parts.push(format!("rate {r}"));
                }
                if let Some(o) = offset {
                    parts.push(format!("offset {} ms", *o as f64 / 1e6));
                }
                format!(
                    "clock of {}: {}",
                    self.target_text(target),
                    parts.join(", ")
                )
            }
            Action::Link {
                link: l,
                which,
                change,
            } => {
                let mut parts = vec![];
                if let Some(u) = change.up {
                    parts.push(if u {
                        "up".to_string()
                    } else {
                        "down".to_string()
                    });
                }
                if let Some(x) = &change.latency {
                    parts.push(format!("latency {x}"));
                }
                if let Some(p) = change.loss {
                    parts.push(format!("loss {p}"));
                }
                if let Some(b) = &change.burst {
                    parts.push(b.describe());
                }
                if let Some(d) = change.duplicate {
                    parts.push(format!("duplicate {d}"));
                }
                if let Some(b) = change.bandwidth {
                    parts.push(format!("bandwidth {} Mbit/s", bytes_per_ns_to_mbps(b)));
                }
                format!("{}: {}", link(l, which), parts.join(", "))
            }
            Action::Flap {
                link: l,
                which,
                up,
                down,
                until,
            } => format!(
                "{} flaps: down {:.1} ms, up {:.1} ms on average{}",
                link(l, which),
                down.mean_ms(),
                up.mean_ms(),
                until.map_or(String::new(), |u| format!(
                    ", until {} ms",
                    coracle_core::time_to_ms(u)
                ))
            ),
        }
    }
}
