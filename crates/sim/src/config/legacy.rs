//! The 2015 prototype's formats and the seed's compact form, converted to the native schema.
//!
//! * The 2015 simulator format describes the network as a list of snapshot deltas
//!   (`network.events`): the first (at time 0) is the initial state, later ones change links and
//!   nodes. Per-element `events`, `cx` and `cy` written by the web editor are accepted and
//!   ignored, as the 2015 simulator did. A link never mentioned at time 0 starts down; a link
//!   event without a `type` means `"l"` (the 2015 fix for issue #89).
//! * The 2015 web editor's export has top-level `nodes` and `links`, capitalised types, and the
//!   timeline inside each element (`events` with `time`, `active`, `linkSize`). It carries no
//!   protocol settings, so the web editor's own defaults are used (see `docs/config.md`).
//! * The compact form `{"nodes": N, "loss": p, ...}` is a full mesh of N servers.
//!
//! Converters check references with their own paths, so a message points into the file the
//! user wrote.

use super::spec::*;
use super::{ConfigError, Format, Source, error, resolve};
use crate::scenario::Scenario;
use serde::Deserialize;
use std::collections::BTreeMap;

/// 2015 default horizon when `termination` is absent (the prototype's default).
pub const LEGACY_DEFAULT_TERMINATION_MS: f64 = 100.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Legacy {
    /// Coracle's extension (a sweep names each point's scenario): not in the 2015 format.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    termination: Option<f64>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    workload_min: Option<f64>,
    #[serde(default)]
    workload_max: Option<f64>,
    consensus: serde_json::Map<String, serde_json::Value>,
    network: LegacyNetwork,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyNetwork {
    nodes: Vec<LegacyNode>,
    links: Vec<LegacyLink>,
    events: Vec<LegacyEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyNode {
    id: Name,
    #[serde(rename = "type")]
    kind: NodeKind,
    #[serde(default)]
    #[allow(dead_code)]
    cx: Option<f64>,
    #[serde(default)]
    #[allow(dead_code)]
    cy: Option<f64>,
    #[serde(default)]
    #[allow(dead_code)]
    events: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyLink {
    id: Name,
    start: Name,
    end: Name,
    direction: Direction,
    #[serde(default)]
    #[allow(dead_code)]
    events: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyEvent {
    time: f64,
    links: Vec<LegacyLinkState>,
    nodes: Vec<LegacyNodeState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyLinkState {
    id: Name,
    active: bool,
    #[serde(default, rename = "type")]
    class: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyNodeState {
    id: Name,
    active: bool,
}

/// A change at a time, common to both 2015 formats.
struct Change {
    at: f64,
    /// The changed element (errors about it name it).
    path: String,
    /// Where its time is written (the 2015 test format shares one time per event).
    time_path: String,
    /// The key of a link's latency class in this format.
    class_key: &'static str,
    what: ChangeKind,
}

enum ChangeKind {
    Link {
        link: usize,
        active: bool,
        class: Option<String>,
    },
    Node {
        node: usize,
        active: bool,
    },
}

/// Refuses two changes of one element at one time that disagree (say a node listed twice in
/// the time-0 event, once up and once down): the 2015 simulator let the last one win
/// silently. Repeating the same state is harmless and accepted. `changes` is sorted by time.
fn contradictions(
    src: &Source,
    changes: &[Change],
    nodes: &[(Name, NodeKind)],
    links: &[(Name, usize, usize, Direction)],
) -> Result<(), ConfigError> {
    let state = |c: &Change| match &c.what {
        ChangeKind::Node { node, active } => ((0, *node), *active, None),
        ChangeKind::Link {
            link,
            active,
            class,
        } => (
            (1, *link),
            *active,
            Some(class.as_deref().unwrap_or("l").to_ascii_lowercase()),
        ),
    };
    for group in changes.chunk_by(|a, b| a.at == b.at) {
        let mut seen: BTreeMap<(u8, usize), (&Change, bool, Option<String>)> = BTreeMap::new();
        for c in group {
            let (key, active, class) = state(c);
            if let Some((first, a, k)) = seen.get(&key) {
                if *a != active || *k != class {
                    let what = match key {
                        (0, n) => format!("node {}", nodes[n].0),
                        (_, l) => format!("link {}", links[l].0),
                    };
                    return Err(src.error(
                        c.path.clone(),
                        format!(
                            "expected one state for {what} at {} ms, found two that differ: this one and {}",
                            c.at, first.path
                        ),
                    ));
                }
            } else {
                seen.insert(key, (c, active, class));
            }
        }
    }
    Ok(())
}

/// A 2015 link's state: up, and its latency class.
type LinkState = (bool, String);

/// Builds the native config from 2015 nodes, links and a list of timed changes.
#[allow(clippy::too_many_arguments)]
fn assemble(
    src: &Source,
    nodes: Vec<(Name, NodeKind)>,
    links: Vec<(Name, usize, usize, Direction)>,
    mut changes: Vec<Change>,
    termination: f64,
    seed: Option<u64>,
    workload: Option<WorkloadSpec>,
    consensus: serde_json::Map<String, serde_json::Value>,
) -> Result<NativeConfig, ConfigError> {
    changes.sort_by(|a, b| a.at.total_cmp(&b.at));
    contradictions(src, &changes, &nodes, &links)?;
    let mut node_up = vec![true; nodes.len()];
    let mut link_state: Vec<LinkState> = vec![(false, "l".to_string()); links.len()];
    let mut timeline = Vec::new();
    // The state at time 0, taken before the first later change is applied (the running state
    // below ends as the *last* state, which is not where the scenario starts).
    let mut at_start: Option<(Vec<bool>, Vec<LinkState>)> = None;
    for c in &changes {
        super::time_at(src, &c.time_path, c.at)?;
        let initial = c.at == 0.0;
        if !initial && at_start.is_none() {
            at_start = Some((node_up.clone(), link_state.clone()));
        }
        match &c.what {
            ChangeKind::Node { node, active } => {
                if initial {
                    node_up[*node] = *active;
                } else if node_up[*node] != *active {
                    node_up[*node] = *active;
                    timeline.push(ActionSpec {
                        at: c.at,
                        action: if *active {
                            ActionKind::Recover
                        } else {
                            ActionKind::Crash
                        },
                        node: Some(nodes[*node].0.clone()),
                        link: None,
                        direction: None,
                        latency: None,
                        loss: None,
                        ..Default::default()
                    });
                }
            }
            ChangeKind::Link {
                link,
                active,
                class,
            } => {
                let class = class.clone().unwrap_or_else(|| "l".to_string());
                if crate::dist::latency_class(&class).is_none() {
                    return Err(src.error(
                        format!("{}.{}", c.path, c.class_key),
                        format!("expected a link type \"s\", \"m\" or \"l\", found \"{class}\""),
                    ));
                }
                let (was_up, was_class) = link_state[*link].clone();
                if initial {
                    link_state[*link] = (*active, class);
                    continue;
                }
                let id = links[*link].0.clone();
                let mk = |action, latency| ActionSpec {
                    at: c.at,
                    action,
                    node: None,
                    link: Some(id.clone()),
                    direction: None,
                    latency,
                    loss: None,
                    ..Default::default()
                };
                if !class.eq_ignore_ascii_case(&was_class) {
                    timeline.push(mk(
                        ActionKind::LinkChange,
                        Some(Latency::Class(class.clone())),
                    ));
                }
                if *active != was_up {
                    timeline.push(mk(
                        if *active {
                            ActionKind::LinkUp
                        } else {
                            ActionKind::LinkDown
                        },
                        None,
                    ));
                }
                link_state[*link] = (*active, class);
            }
        }
    }
    let (node_up, link_state) = at_start.unwrap_or((node_up, link_state));
    let native_nodes = nodes
        .iter()
        .zip(&node_up)
        .map(|((id, kind), up)| NodeSpec {
            id: id.clone(),
            kind: *kind,
            up: Some(*up),
            clock: None,
        })
        .collect();
    let native_links = links
        .iter()
        .enumerate()
        .map(|(i, (id, from, to, direction))| LinkSpec {
            id: Some(id.clone()),
            from: nodes[*from].0.clone(),
            to: nodes[*to].0.clone(),
            direction: Some(*direction),
            latency: Some(Latency::Class(link_state[i].1.clone())),
            loss: None,
            up: Some(link_state[i].0),
            reverse: None,
            burst_loss: None,
            duplicate: None,
            bandwidth: None,
            queue: None,
        })
        .collect();
    Ok(NativeConfig {
        name: None,
        description: None,
        seed,
        termination: Some(termination),
        consensus,
        network: NetworkSpec {
            defaults: None,
            nodes: native_nodes,
            links: native_links,
            mesh: false,
        },
        timeline,
        workload,
        storage: None,
        chaos: None,
    })
}

fn index_nodes(
    src: &Source,
    ids: &[(String, Name)],
) -> Result<BTreeMap<String, usize>, ConfigError> {
    let mut m = BTreeMap::new();
    for (i, (path, id)) in ids.iter().enumerate() {
        if m.insert(id.text(), i).is_some() {
            return Err(src.error(path, format!("duplicate node id {id}")));
        }
    }
    Ok(m)
}

fn lookup(
    src: &Source,
    map: &BTreeMap<String, usize>,
    path: String,
    name: &Name,
    what: &str,
) -> Result<usize, ConfigError> {
    map.get(&name.text()).copied().ok_or_else(|| {
        let mut e = src.error(
            path,
            format!("expected the id of a {what}, found {name}, which does not exist"),
        );
        let known: Vec<String> = map.keys().cloned().collect();
        e.hint = Some(error::suggest(&name.text(), &known, &format!("{what} id")));
        e
    })
}

/// The 2015 `workload_min`/`workload_max` (top-level keys, checked under their own names).
fn legacy_workload(
    src: &Source,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<Option<WorkloadSpec>, ConfigError> {
    if min.is_none() && max.is_none() {
        return Ok(None);
    }
    for (key, v) in [("workload_min", min), ("workload_max", max)] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(src.error(
                key,
                format!(
                    "expected an interval ≥ 0 (milliseconds), found {}",
                    super::num(v)
                ),
            ));
        }
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(src.error(
            "workload_max",
            format!(
                "expected at least workload_min ({}), found {}",
                super::num(lo),
                super::num(hi)
            ),
        ));
    }
    Ok(Some(WorkloadSpec {
        kind: Some(ArrivalKind::Interval),
        min,
        max,
        ..Default::default()
    }))
}

/// The 2015 simulator format.
pub fn resolve_legacy(cfg: Legacy, src: Source) -> Result<Scenario, ConfigError> {
    let net = &cfg.network;
    let node_ids: Vec<(String, Name)> = net
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("network.nodes[{i}].id"), n.id.clone()))
        .collect();
    let nmap = index_nodes(&src, &node_ids)?;
    let mut lmap = BTreeMap::new();
    let mut links = Vec::new();
    for (i, l) in net.links.iter().enumerate() {
        let p = format!("network.links[{i}]");
        if lmap.insert(l.id.text(), i).is_some() {
            return Err(src.error(format!("{p}.id"), format!("duplicate link id {}", l.id)));
        }
        let from = lookup(&src, &nmap, format!("{p}.start"), &l.start, "node")?;
        let to = lookup(&src, &nmap, format!("{p}.end"), &l.end, "node")?;
        links.push((l.id.clone(), from, to, l.direction));
    }
    if net.events.is_empty() {
        return Err(src.error(
            "network.events",
            "expected at least one event (the state at time 0), found none",
        ));
    }
    let mut changes = Vec::new();
    for (e, ev) in net.events.iter().enumerate() {
        // Checked here too: an event that changes nothing produces no change to check.
        super::time_at(&src, &format!("network.events[{e}].time"), ev.time)?;
        for (j, ls) in ev.links.iter().enumerate() {
            let p = format!("network.events[{e}].links[{j}]");
            let link = lookup(&src, &lmap, format!("{p}.id"), &ls.id, "link")?;
            changes.push(Change {
                at: ev.time,
                path: p,
                time_path: format!("network.events[{e}].time"),
                class_key: "type",
                what: ChangeKind::Link {
                    link,
                    active: ls.active,
                    class: ls.class.clone(),
                },
            });
        }
        for (j, ns) in ev.nodes.iter().enumerate() {
            let p = format!("network.events[{e}].nodes[{j}]");
            let node = lookup(&src, &nmap, format!("{p}.id"), &ns.id, "node")?;
            changes.push(Change {
                at: ev.time,
                path: p,
                time_path: format!("network.events[{e}].time"),
                class_key: "type",
                what: ChangeKind::Node {
                    node,
                    active: ns.active,
                },
            });
        }
    }
    let nodes = net.nodes.iter().map(|n| (n.id.clone(), n.kind)).collect();
    let mut native = assemble(
        &src,
        nodes,
        links,
        changes,
        cfg.termination.unwrap_or(LEGACY_DEFAULT_TERMINATION_MS),
        cfg.seed,
        legacy_workload(&src, cfg.workload_min, cfg.workload_max)?,
        cfg.consensus,
    )?;
    native.name = cfg.name;
    native.description = cfg.description;
    let text = src.text.clone();
    resolve(native, src, Format::Legacy2015).map_err(|e| in_2015_terms(e, &text, "network."))
}

/// An error found in the native config a 2015 file was translated into, with its path put
/// back in the file's own terms where they differ (links' `start`/`end` are the native
/// `from`/`to`; the web export's `nodes`/`links` are top-level): a user must find the place.
fn in_2015_terms(mut e: ConfigError, text: &str, network: &str) -> ConfigError {
    let Some(rest) = e.path.strip_prefix("network.") else {
        return e;
    };
    let mut path = format!("{network}{rest}");
    if path.starts_with(&format!("{network}links[")) {
        path = path.replace("].from", "].start").replace("].to", "].end");
        e.message = e
            .message
            .replace("\"from\"", "\"start\"")
            .replace("\"to\"", "\"end\"");
    }
    if path != e.path {
        e.position = super::locate::position(text, &path).or(e.position);
        e.path = path;
    }
    e
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebExport {
    /// Coracle's extension (a sweep names each point's scenario): not in the export format.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    nodes: Vec<WebNode>,
    links: Vec<WebLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebNode {
    id: Name,
    #[serde(rename = "type")]
    kind: NodeKind,
    #[serde(default)]
    #[allow(dead_code)]
    cx: Option<f64>,
    #[serde(default)]
    #[allow(dead_code)]
    cy: Option<f64>,
    #[serde(default)]
    events: Vec<WebNodeEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebNodeEvent {
    time: f64,
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebLink {
    id: Name,
    start: Name,
    end: Name,
    direction: Direction,
    #[serde(default)]
    events: Vec<WebLinkEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebLinkEvent {
    time: f64,
    active: bool,
    #[serde(default, rename = "linkSize")]
    link_size: Option<String>,
}

/// The 2015 web editor's defaults, applied to its exports (which carry no settings).
pub mod web_defaults {
    pub const TERMINATION_MS: f64 = 1000.0;
    pub const WORKLOAD_MIN_MS: f64 = 100.0;
    pub const WORKLOAD_MAX_MS: f64 = 150.0;
    pub const ELECTION_MIN_MS: f64 = 150.0;
    pub const ELECTION_MAX_MS: f64 = 300.0;
    pub const HEARTBEAT_MS: f64 = 30.0;
    pub const CLIENT_TIMEOUT_MS: f64 = 50.0;
}

/// The 2015 web editor's export.
pub fn resolve_web(cfg: WebExport, src: Source) -> Result<Scenario, ConfigError> {
    let native = web_to_native(cfg, &src)?;
    let text = src.text.clone();
    resolve(native, src, Format::WebEditor2015).map_err(|e| in_2015_terms(e, &text, ""))
}

/// The native config a web-editor export means (with the editor's defaults written out).
pub fn web_to_native(cfg: WebExport, src: &Source) -> Result<NativeConfig, ConfigError> {
    use web_defaults::*;
    let src = src.clone();
    let node_ids: Vec<(String, Name)> = cfg
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("nodes[{i}].id"), n.id.clone()))
        .collect();
    let nmap = index_nodes(&src, &node_ids)?;
    let mut changes = Vec::new();
    for (i, n) in cfg.nodes.iter().enumerate() {
        for (j, e) in n.events.iter().enumerate() {
            changes.push(Change {
                at: e.time,
                path: format!("nodes[{i}].events[{j}]"),
                time_path: format!("nodes[{i}].events[{j}].time"),
                class_key: "linkSize",
                what: ChangeKind::Node {
                    node: i,
                    active: e.active,
                },
            });
        }
    }
    let mut lmap = BTreeMap::new();
    let mut links = Vec::new();
    for (i, l) in cfg.links.iter().enumerate() {
        let p = format!("links[{i}]");
        if lmap.insert(l.id.text(), i).is_some() {
            return Err(src.error(format!("{p}.id"), format!("duplicate link id {}", l.id)));
        }
        let from = lookup(&src, &nmap, format!("{p}.start"), &l.start, "node")?;
        let to = lookup(&src, &nmap, format!("{p}.end"), &l.end, "node")?;
        links.push((l.id.clone(), from, to, l.direction));
        for (j, e) in l.events.iter().enumerate() {
            changes.push(Change {
                at: e.time,
                path: format!("{p}.events[{j}]"),
                time_path: format!("{p}.events[{j}].time"),
                class_key: "linkSize",
                what: ChangeKind::Link {
                    link: i,
                    active: e.active,
                    class: e.link_size.clone(),
                },
            });
        }
    }
    let mut consensus = serde_json::Map::new();
    consensus.insert("protocol".into(), "raft".into());
    consensus.insert("election_timeout_min".into(), ELECTION_MIN_MS.into());
    consensus.insert("election_timeout_max".into(), ELECTION_MAX_MS.into());
    consensus.insert("heartbeat_interval".into(), HEARTBEAT_MS.into());
    consensus.insert("client_timeout".into(), CLIENT_TIMEOUT_MS.into());
    let nodes = cfg.nodes.iter().map(|n| (n.id.clone(), n.kind)).collect();
    let mut native = assemble(
        &src,
        nodes,
        links,
        changes,
        TERMINATION_MS,
        None,
        legacy_workload(&src, Some(WORKLOAD_MIN_MS), Some(WORKLOAD_MAX_MS))?,
        consensus,
    )?;
    native.name = cfg.name;
    native.description = cfg.description;
    Ok(native)
}

/// The compact form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compact {
    nodes: u64,
    #[serde(default)]
    clients: Option<u64>,
    #[serde(default)]
    loss: Option<f64>,
    #[serde(default)]
    latency: Option<Latency>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    termination: Option<f64>,
    #[serde(default)]
    workload_min: Option<f64>,
    #[serde(default)]
    workload_max: Option<f64>,
    #[serde(default)]
    workload: Option<WorkloadSpec>,
    #[serde(default)]
    storage: Option<StorageSpec>,
    #[serde(default)]
    timeline: Vec<ActionSpec>,
    #[serde(default)]
    chaos: Option<ChaosSpec>,
    consensus: serde_json::Map<String, serde_json::Value>,
}

/// The compact form: servers `1..=nodes`, clients `nodes+1..` (the 2015 numbering), every pair
/// of nodes linked.
pub fn resolve_compact(cfg: Compact, src: Source) -> Result<Scenario, ConfigError> {
    let servers = cfg.nodes as usize;
    let clients = cfg.clients.unwrap_or(0) as usize;
    if servers == 0 || servers + clients > super::MAX_NODES {
        // The key that went too far (a million clients are no fault of "nodes": 3).
        let key = if servers == 0 || servers > super::MAX_NODES {
            "nodes"
        } else {
            "clients"
        };
        return Err(src.error(
            key,
            format!(
                "expected between 1 and {} nodes in all, found {} servers and {} clients",
                super::MAX_NODES,
                servers,
                clients
            ),
        ));
    }
    let n = servers + clients;
    if n * (n - 1) / 2 > super::MAX_LINKS {
        return Err(src.error(
            if servers * servers.saturating_sub(1) / 2 > super::MAX_LINKS {
                "nodes"
            } else {
                "clients"
            },
            format!(
                "expected at most {} nodes in all for the compact form's full mesh (at most {} links), found {n} ({} links)",
                (1..).take_while(|k: &usize| k * (k - 1) / 2 <= super::MAX_LINKS).last().unwrap_or(1),
                super::MAX_LINKS,
                n * (n - 1) / 2
            ),
        ));
    }
    if cfg.workload.is_some() && (cfg.workload_min.is_some() || cfg.workload_max.is_some()) {
        return Err(src.error(
            "workload",
            "give either \"workload\" or the 2015 keys \"workload_min\"/\"workload_max\", not both",
        ));
    }
    let total = servers + clients;
    let mut nodes = Vec::with_capacity(total);
    for i in 1..=total {
        nodes.push(NodeSpec {
            id: Name::Int(i as i64),
            kind: if i <= servers {
                NodeKind::Server
            } else {
                NodeKind::Client
            },
            up: None,
            clock: None,
        });
    }
    let mut links = Vec::new();
    for a in 1..=total {
        for b in a + 1..=total {
            links.push(LinkSpec {
                id: None,
                from: Name::Int(a as i64),
                to: Name::Int(b as i64),
                direction: None,
                latency: None,
                loss: None,
                up: None,
                reverse: None,
                burst_loss: None,
                duplicate: None,
                bandwidth: None,
                queue: None,
            });
        }
    }
    let native = NativeConfig {
        name: cfg.name,
        description: cfg.description,
        seed: cfg.seed,
        termination: cfg.termination,
        consensus: cfg.consensus,
        network: NetworkSpec {
            defaults: Some(ChannelSpec {
                latency: cfg.latency,
                loss: cfg.loss,
                ..Default::default()
            }),
            nodes,
            links,
            mesh: false,
        },
        timeline: cfg.timeline,
        workload: match cfg.workload {
            Some(w) => Some(w),
            None => legacy_workload(&src, cfg.workload_min, cfg.workload_max)?,
        },
        storage: cfg.storage,
        chaos: cfg.chaos,
    };
    // Paths of the compact form: "network.defaults.loss" becomes "loss".
    let text = src.text.clone();
    resolve(native, src, Format::Compact).map_err(|mut e| {
        if let Some(rest) = e.path.strip_prefix("network.defaults.") {
            e.path = rest.to_string();
            e.position = super::locate::position(&text, &e.path).or(e.position);
        }
        e
    })
}
