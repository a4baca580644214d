//! Resolving the timeline and the random-fault (chaos) schedule.
//!
//! Each action is checked for the keys it needs and refuses the keys it does not use, so a
//! misplaced key is an error rather than silently ignored.

use super::spec::{
    self, ActionKind, ActionSpec, ChaosSpec, ChaosTarget, Name, NodeKind, RoleTarget, Which,
};
use super::{
    ConfigError, Source, bandwidth, burst, clock_offset, delay, error, probability, time_at,
};
use crate::dist::Delay;
use crate::scenario::{Action, Chaos, ChaosFault, LinkDef, Member, NodeDef, Target, TimedAction};
use coracle_core::{MS, Time};
use std::collections::BTreeMap;

/// What actions may refer to.
pub(super) struct Refs<'a> {
    pub src: &'a Source,
    pub nodes: &'a [NodeDef],
    pub index: &'a BTreeMap<String, usize>,
    pub links: &'a [LinkDef],
    pub link_index: &'a BTreeMap<String, usize>,
}

impl Refs<'_> {
    fn node(&self, path: String, name: &Name) -> Result<usize, ConfigError> {
        self.index.get(&name.text()).copied().ok_or_else(|| {
            let mut e = self.src.error(
                path,
                format!("expected the id of a node, found {name}, which is not in network.nodes"),
            );
            let text = name.text();
            e.hint = Some(
                if ["leader", "follower", "candidate"].contains(&text.as_str()) {
                    format!(
                        "to act on whichever node is the {text} when the action fires, write \
                     \"role\": \"{text}\" instead of \"node\""
                    )
                } else {
                    let known: Vec<String> = self.index.keys().cloned().collect();
                    error::suggest(&text, &known, "node id")
                },
            );
            e
        })
    }

    fn link(&self, path: String, name: &Name) -> Result<usize, ConfigError> {
        self.link_index.get(&name.text()).copied().ok_or_else(|| {
            let mut e = self.src.error(
                path,
                format!("expected the id of a link, found {name}, which is not in network.links"),
            );
            let known: Vec<String> = self.link_index.keys().cloned().collect();
            e.hint = Some(error::suggest(&name.text(), &known, "link id"));
            e
        })
    }

    fn members(&self, path: &str, list: &[spec::Member]) -> Result<Vec<Member>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, m)| match m {
                spec::Member::Node(n) => {
                    let at = format!("{path}[{i}]");
                    let k = self.node(at.clone(), n)?;
                    if self.nodes[k].kind == NodeKind::Hub {
                        // Partitions filter by the packet's endpoints; a hub is never one.
                        return Err(self.src.error(
                            at,
                            format!(
                                "expected a server or client, found hub {n}: a partition \
                                 separates endpoints, and a hub only relays (to cut a hub \
                                 off, crash it or take its links down)"
                            ),
                        ));
                    }
                    Ok(Member::Node(k))
                }
                spec::Member::Role {
                    role: RoleTarget::Last,
                } => Err(self.src.error(
                    format!("{path}[{i}].role"),
                    "role \"last\" is for recover, resume and rejoin, not for partitions",
                )),
                spec::Member::Role { role } => Ok(Member::Role(*role)),
            })
            .collect()
    }
}

/// Keys of an action, for "not used by" checks.
fn present(a: &ActionSpec) -> Vec<(&'static str, bool)> {
    vec![
        ("node", a.node.is_some()),
        ("role", a.role.is_some()),
        ("link", a.link.is_some()),
        ("direction", a.direction.is_some()),
        ("latency", a.latency.is_some()),
        ("loss", a.loss.is_some()),
        ("burst_loss", a.burst_loss.is_some()),
        ("duplicate", a.duplicate.is_some()),
        ("bandwidth", a.bandwidth.is_some()),
        ("groups", a.groups.is_some()),
        ("from", a.from.is_some()),
        ("to", a.to.is_some()),
        ("rate", a.rate.is_some()),
        ("offset", a.offset.is_some()),
        ("up", a.up.is_some()),
        ("down", a.down.is_some()),
        ("until", a.until.is_some()),
    ]
}

/// A better hint for a parse error inside `timeline[i]` of the raw document, where the
/// generic one (every key or value of any action) would mislead: the keys and values that
/// action takes. `key` is what follows `timeline[i].` in the error's path.
pub(super) fn action_hint(
    raw: &serde_json::Value,
    i: usize,
    key: &str,
    bad: &str,
) -> Option<String> {
    let name = raw["timeline"][i]["action"].as_str()?;
    let kind: ActionKind =
        serde_json::from_value(serde_json::json!(name.to_ascii_lowercase())).ok()?;
    let quoted = |l: &[&str]| {
        l.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let values: &[&str] = if key == "direction" {
        match kind {
            ActionKind::Isolate => &["in", "out", "both"],
            _ => &["forward", "reverse", "both"],
        }
    } else if key.ends_with(".role") || key.ends_with("].role") {
        &["leader", "follower", "candidate"] // partition members: no "last"
    } else if key == "role" {
        match kind {
            ActionKind::Recover | ActionKind::Resume | ActionKind::Rejoin => {
                &["last", "leader", "follower", "candidate"]
            }
            _ => &["leader", "follower", "candidate"],
        }
    } else if key.contains('[') {
        // A key inside a member of `groups`, `from` or `to`.
        return Some(
            "a member is a node id, or {\"role\": \"leader\"}, {\"role\": \"follower\"} or {\"role\": \"candidate\"} (one key, \"role\")".into(),
        );
    } else {
        let mut keys = vec!["at", "delay", "action"];
        keys.extend(allowed(kind));
        return Some(format!("action \"{name}\" takes: {}", quoted(&keys)));
    };
    let known: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    Some(error::suggest(bad, &known, "value"))
}

/// The keys action `kind` takes besides `at`, `delay` and `action` (also the schema's).
pub(super) fn allowed(kind: ActionKind) -> &'static [&'static str] {
    use ActionKind::*;
    match kind {
        Crash | Recover | Pause | Resume | Rejoin => &["node", "role"],
        Isolate => &["node", "role", "direction"],
        Clock => &["node", "role", "rate", "offset"],
        Partition => &["groups", "from", "to"],
        Heal => &[],
        LinkDown | LinkUp => &["link", "direction"],
        LinkChange => &[
            "link",
            "direction",
            "latency",
            "loss",
            "burst_loss",
            "duplicate",
            "bandwidth",
        ],
        Flap => &["link", "direction", "up", "down", "until"],
    }
}

fn kind_name(k: ActionKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn resolve(
    r: &Refs<'_>,
    specs: &[ActionSpec],
    chaos: Option<&ChaosSpec>,
    termination: Time,
    warnings: &mut Vec<String>,
) -> Result<(Vec<TimedAction>, Option<Chaos>), ConfigError> {
    let src = r.src;
    if specs.len() > super::MAX_ACTIONS {
        return Err(src.error(
            "timeline",
            format!(
                "expected at most {} actions, found {}",
                super::MAX_ACTIONS,
                specs.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(specs.len());
    for (i, a) in specs.iter().enumerate() {
        let p = format!("timeline[{i}]");
        let at = time_at(src, &format!("{p}.at"), a.at)?;
        if at > termination {
            warnings.push(format!(
                "{p}: the action at {} ms comes after the end of the run ({} ms) and will not happen",
                a.at,
                termination as f64 / MS as f64
            ));
        }
        let name = kind_name(a.action);
        let ok = allowed(a.action);
        for (key, is) in present(a) {
            if is && !ok.contains(&key) {
                let mut e = src.error(
                    format!("{p}.{key}"),
                    format!("key \"{key}\" is not used by action \"{name}\""),
                );
                e.hint = Some(if ok.is_empty() {
                    format!("action \"{name}\" takes no keys besides \"at\" and \"delay\"")
                } else {
                    format!("action \"{name}\" takes: {}", ok.join(", "))
                });
                return Err(e);
            }
        }
        let delay_spec = match &a.delay {
            Some(d) => Some(delay(src, &format!("{p}.delay"), d)?),
            None => None,
        };
        let action = action(r, &p, &name, a)?;
        out.push(TimedAction {
            at,
            delay: delay_spec,
            action,
        });
    }
    // Stable: same-time actions keep file order.
    out.sort_by_key(|a| a.at);
    let chaos = match chaos {
        None => None,
        Some(c) => Some(resolve_chaos(src, c, termination)?),
    };
    Ok((out, chaos))
}

fn target(
    r: &Refs<'_>,
    p: &str,
    name: &str,
    a: &ActionSpec,
    kinds: &[NodeKind],
) -> Result<Target, ConfigError> {
    match (&a.node, a.role) {
        (Some(_), Some(_)) => Err(r.src.error(format!("{p}.role"), format!("action \"{name}\" takes \"node\" or \"role\", not both"))),
        (None, None) => Err(r.src.error(p, format!("missing required key \"node\" (or \"role\"): action \"{name}\" needs the node it applies to"))),
        (Some(n), None) => {
            let i = r.node(format!("{p}.node"), n)?;
            let k = r.nodes[i].kind;
            if !kinds.contains(&k) {
                let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                return Err(r.src.error(
                    format!("{p}.node"),
                    format!("action \"{name}\" applies to a {}, found {n}, which is a {}", names.join(" or "), k.name()),
                ));
            }
            Ok(Target::Node(i))
        }
        (None, Some(role)) => {
            let undo = matches!(a.action, ActionKind::Recover | ActionKind::Resume | ActionKind::Rejoin);
            if undo != (role == RoleTarget::Last) {
                return Err(r.src.error(
                    format!("{p}.role"),
                    if undo {
                        format!("action \"{name}\" can target a node or role \"last\" (the node the last matching fault hit), found a role of the running cluster")
                    } else {
                        format!("role \"last\" is for recover, resume and rejoin, not for \"{name}\"")
                    },
                ));
            }
            Ok(Target::Role(role))
        }
    }
}

fn action(r: &Refs<'_>, p: &str, name: &str, a: &ActionSpec) -> Result<Action, ConfigError> {
    use ActionKind::*;
    let src = r.src;
    let any = [NodeKind::Server, NodeKind::Client, NodeKind::Hub];
    let procs = [NodeKind::Server, NodeKind::Client];
    Ok(match a.action {
        Crash => Action::Crash(target(r, p, name, a, &any)?),
        Recover => Action::Recover(target(r, p, name, a, &any)?),
        Pause => Action::Pause(target(r, p, name, a, &procs)?),
        Resume => Action::Resume(target(r, p, name, a, &procs)?),
        Rejoin => Action::Rejoin(target(r, p, name, a, &procs)?),
        Isolate => {
            let t = target(r, p, name, a, &procs)?;
            let (inbound, outbound) = match a.direction.unwrap_or(Which::Both) {
                Which::Both => (true, true),
                Which::In => (true, false),
                Which::Out => (false, true),
                other => {
                    return Err(src.error(
                        format!("{p}.direction"),
                        format!(
                            "expected \"in\", \"out\" or \"both\" for isolate, found \"{}\"",
                            which_name(other)
                        ),
                    ));
                }
            };
            Action::Isolate {
                target: t,
                inbound,
                outbound,
            }
        }
        Clock => {
            let t = target(r, p, name, a, &procs)?;
            if let Target::Node(i) = t
                && r.nodes[i].kind == NodeKind::Client
                && a.offset.is_some()
            {
                return Err(src.error(
                    format!("{p}.offset"),
                    "a clock action on a client may change its rate, not its offset: a client proxy numbers its requests from its clock, and a clock set back would make a restarted client reuse numbers",
                ));
            }
            if a.rate.is_none() && a.offset.is_none() {
                return Err(src.error(p, "action \"clock\" needs \"rate\" and/or \"offset\""));
            }
            let rate = match a.rate {
                Some(x) => {
                    let rate = super::clock_rate(src, &format!("{p}.rate"), Some(x))?;
                    if let Target::Node(i) = t
                        && r.nodes[i].kind == NodeKind::Client
                    {
                        super::client_clock_rate(src, &format!("{p}.rate"), rate)?;
                    }
                    Some(rate)
                }
                None => None,
            };
            let offset = match a.offset {
                Some(o) => Some(clock_offset(src, &format!("{p}.offset"), Some(o))?),
                None => None,
            };
            Action::Clock {
                target: t,
                rate,
                offset,
            }
        }
        Partition => match (&a.groups, &a.from, &a.to) {
            (Some(g), None, None) => {
                if g.len() < 2 {
                    return Err(src.error(
                        format!("{p}.groups"),
                        format!("expected at least two groups, found {}", g.len()),
                    ));
                }
                let mut rest = 0;
                let mut groups = Vec::new();
                // Group of each node named by id (a role may still name it: see `faults.rs`).
                let mut named: std::collections::BTreeMap<usize, usize> = Default::default();
                for (j, m) in g.iter().enumerate() {
                    groups.push(match m {
                        spec::GroupSpec::Members(m) => {
                            let members = r.members(&format!("{p}.groups[{j}]"), m)?;
                            if members.is_empty() {
                                return Err(src.error(
                                    format!("{p}.groups[{j}]"),
                                    "expected at least one node or role, found an empty group \
                                     (list the nodes, or write \"rest\" for all the others)",
                                ));
                            }
                            for (i, member) in members.iter().enumerate() {
                                if let Member::Node(n) = *member
                                    && let Some(k) = named.insert(n, j)
                                {
                                    return Err(src.error(
                                        format!("{p}.groups[{j}][{i}]"),
                                        format!(
                                            "a node can be in one group only, found {} in groups[{k}] and groups[{j}]",
                                            r.nodes[n].name
                                        ),
                                    ));
                                }
                            }
                            crate::scenario::Group::Members(members)
                        }
                        spec::GroupSpec::Rest(_) => {
                            rest += 1;
                            crate::scenario::Group::Rest
                        }
                    });
                }
                if rest > 1 {
                    return Err(
                        src.error(format!("{p}.groups"), "at most one group can be \"rest\"")
                    );
                }
                Action::Partition { groups }
            }
            (None, Some(f), Some(t)) => {
                let from = r.members(&format!("{p}.from"), f)?;
                let to = r.members(&format!("{p}.to"), t)?;
                for (key, list) in [("from", &from), ("to", &to)] {
                    if list.is_empty() {
                        return Err(src.error(
                            format!("{p}.{key}"),
                            "expected at least one node or role, found an empty list (the \
                             partition would cut nothing)",
                        ));
                    }
                }
                if let Some(j) = to
                    .iter()
                    .position(|m| matches!(m, crate::scenario::Member::Node(_)) && from.contains(m))
                {
                    return Err(src.error(
                        format!("{p}.to[{j}]"),
                        "expected nodes not in \"from\", found one in both: a node cannot be \
                         cut off from itself",
                    ));
                }
                Action::OneWay { from, to }
            }
            (g, f, t) => {
                let given: Vec<&str> = [
                    ("groups", g.is_some()),
                    ("from", f.is_some()),
                    ("to", t.is_some()),
                ]
                .into_iter()
                .filter_map(|(k, set)| set.then_some(k))
                .collect();
                let found = match given.as_slice() {
                    [] => "none of them".to_string(),
                    [k] => format!("only \"{k}\""),
                    ks => format!(
                        "{} together",
                        ks.iter()
                            .map(|k| format!("\"{k}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(src.error(p, format!("action \"partition\" needs either \"groups\" or both \"from\" and \"to\" (a one-way partition), found {found}")));
            }
        },
        Heal => Action::Heal,
        LinkDown | LinkUp | LinkChange | Flap => {
            let lname = a.link.as_ref().ok_or_else(|| src.error(p, format!("missing required key \"link\": action \"{name}\" needs the link it applies to")))?;
            let link = r.link(format!("{p}.link"), lname)?;
            let which = a.direction.unwrap_or_default();
            match which {
                Which::In | Which::Out => {
                    return Err(src.error(format!("{p}.direction"), format!("expected \"forward\", \"reverse\" or \"both\" for a link, found \"{}\"", which_name(which))));
                }
                Which::Reverse if !r.links[link].bidirectional => {
                    return Err(src.error(
                        format!("{p}.direction"),
                        "link is \"uni\": it has no reverse direction",
                    ));
                }
                _ => {}
            }
            match a.action {
                LinkDown | LinkUp => Action::Link {
                    link,
                    which,
                    change: crate::scenario::LinkChange {
                        up: Some(a.action == LinkUp),
                        ..Default::default()
                    },
                },
                LinkChange => {
                    let mut c = crate::scenario::LinkChange::default();
                    if let Some(l) = &a.latency {
                        c.latency = Some(delay(src, &format!("{p}.latency"), l)?);
                    }
                    if let Some(x) = a.loss {
                        c.loss = Some(probability(src, &format!("{p}.loss"), x)?);
                    }
                    if let Some(b) = &a.burst_loss {
                        c.burst = Some(burst(src, &format!("{p}.burst_loss"), b)?);
                    }
                    if let Some(x) = a.duplicate {
                        c.duplicate = Some(probability(src, &format!("{p}.duplicate"), x)?);
                    }
                    if let Some(b) = a.bandwidth {
                        c.bandwidth = Some(bandwidth(src, &format!("{p}.bandwidth"), b)?);
                    }
                    if c == crate::scenario::LinkChange::default() {
                        return Err(src.error(p, "action \"link_change\" needs at least one of latency, loss, burst_loss, duplicate, bandwidth"));
                    }
                    Action::Link {
                        link,
                        which,
                        change: c,
                    }
                }
                _ => {
                    let up = a.up.as_ref().ok_or_else(|| {
                        src.error(
                            p,
                            "missing required key \"up\": how long the link stays up each time",
                        )
                    })?;
                    let down = a.down.as_ref().ok_or_else(|| {
                        src.error(
                            p,
                            "missing required key \"down\": how long the link stays down each time",
                        )
                    })?;
                    let up = positive_dwell(
                        src,
                        &format!("{p}.up"),
                        delay(src, &format!("{p}.up"), up)?,
                    )?;
                    let down = positive_dwell(
                        src,
                        &format!("{p}.down"),
                        delay(src, &format!("{p}.down"), down)?,
                    )?;
                    let until = match a.until {
                        Some(u) if u < a.at => {
                            return Err(src.error(
                                format!("{p}.until"),
                                format!("expected a time at or after the action's \"at\" ({} ms), found {u} ms: the link would never flap", a.at),
                            ));
                        }
                        Some(u) => Some(time_at(src, &format!("{p}.until"), u)?),
                        None => None,
                    };
                    Action::Flap {
                        link,
                        which,
                        up,
                        down,
                        until,
                    }
                }
            }
        }
    })
}

fn positive_dwell(src: &Source, path: &str, d: Delay) -> Result<Delay, ConfigError> {
    // At least 1 µs on average: shorter dwells only make the run crawl, one flip per event.
    if d.mean_ms() < 0.001 {
        return Err(src.error(
            path,
            format!(
                "expected a dwell time with a mean of at least 0.001 ms (1 µs), found {} ms \
                 (a link cannot flap in no time)",
                super::num(d.mean_ms())
            ),
        ));
    }
    Ok(d)
}

fn which_name(w: Which) -> &'static str {
    match w {
        Which::Forward => "forward",
        Which::Reverse => "reverse",
        Which::Both => "both",
        Which::In => "in",
        Which::Out => "out",
    }
}

fn resolve_chaos(src: &Source, c: &ChaosSpec, termination: Time) -> Result<Chaos, ConfigError> {
    let start = time_at(src, "chaos.start", c.start.unwrap_or(0.0))?;
    let stop = match c.stop {
        Some(s) => Some(time_at(src, "chaos.stop", s)?),
        None => None,
    };
    if let Some(s) = stop
        && s < start
    {
        return Err(src.error(
            "chaos.stop",
            format!(
                "expected stop ≥ start ({} ms), found {} ms",
                coracle_core::time_to_ms(start),
                coracle_core::time_to_ms(s)
            ),
        ));
    }
    let fault = |name: &str,
                 f: &Option<spec::ChaosFault>,
                 node_fault: bool|
     -> Result<Option<ChaosFault>, ConfigError> {
        let Some(f) = f else { return Ok(None) };
        let p = format!("chaos.{name}");
        if !f.rate.is_finite() || f.rate <= 0.0 || f.rate > 1e4 {
            return Err(src.error(
                format!("{p}.rate"),
                format!(
                    "expected a rate in (0, 10000] events per second, found {}",
                    f.rate
                ),
            ));
        }
        let span = stop.unwrap_or(termination).saturating_sub(start) as f64 / 1e9;
        if f.rate * span > 1e6 {
            return Err(src.error(
                format!("{p}.rate"),
                "this rate over this interval gives more than a million faults",
            ));
        }
        let target = f.target.unwrap_or(ChaosTarget::Servers);
        if !node_fault && f.target.is_some() {
            return Err(src.error(
                format!("{p}.target"),
                format!("\"target\" applies to node faults, not to chaos.{name}"),
            ));
        }
        Ok(Some(ChaosFault {
            rate: f.rate,
            duration: delay(src, &format!("{p}.duration"), &f.duration)?,
            target,
        }))
    };
    Ok(Chaos {
        start,
        stop,
        crash: fault("crash", &c.crash, true)?,
        pause: fault("pause", &c.pause, true)?,
        isolate: fault("isolate", &c.isolate, true)?,
        partition: fault("partition", &c.partition, false)?,
        link: fault("link", &c.link, false)?,
    })
}
