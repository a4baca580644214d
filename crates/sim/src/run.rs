//! Running a scenario: protocol dispatch, the checks after the run, and the replay that shows
//! what led to a violation.

use crate::config::spec::NodeKind;
use crate::config::{ConfigError, error::join, parse_value};
use crate::engine::{Engine, Outcome, RunOptions};
use crate::scenario::Scenario;
use crate::trace::Tracer;
use coracle_core::{Cluster, NodeId, Protocol, Severity, Time};
use coracle_protocols::dummy::Dummy;
use coracle_protocols::raft::Raft;
use coracle_protocols::vrr::Vrr;

/// A finished run.
pub struct RunResult {
    pub outcome: Outcome,
    pub linearizability: coracle_check::Report,
    /// Configuration warnings (scenario and protocol).
    pub warnings: Vec<String>,
    /// The results document.
    pub results: serde_json::Value,
}

impl RunResult {
    /// What went wrong when the run stopped because simulated time stopped passing.
    pub fn stall(&self) -> Option<String> {
        (self.outcome.reason == crate::engine::StopReason::Stalled).then(|| {
            format!(
                "simulated time stopped passing at {} ms: {} events in a row at that instant. \
                 Something answers at once in a loop: links of zero latency with a protocol \
                 that replies without delay, or clients with a zero think time or interval on \
                 such links. Give the links a latency above 0, or the workload a think time above 0",
                coracle_core::time_to_ms(self.outcome.end),
                crate::engine::stall_limit(self.outcome.nodes.len())
            )
        })
    }
}

/// Options beyond the engine's.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Skip the linearizability check (for benchmarks of the engine alone).
    pub skip_linearizability: bool,
    /// Search budget of the linearizability checker.
    pub limits: coracle_check::Limits,
}

/// The membership seen by protocols.
pub fn cluster_of(s: &Scenario) -> Cluster {
    let ids = |k| {
        s.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == k)
            .map(|(i, _)| NodeId(i as u32))
            .collect()
    };
    Cluster {
        servers: ids(NodeKind::Server),
        clients: ids(NodeKind::Client),
        names: s.nodes.iter().map(|n| n.name.text()).collect(),
    }
}

fn prepare<P: Protocol>(
    s: &Scenario,
) -> Result<(P, Cluster, Vec<String>, serde_json::Value), ConfigError> {
    if !P::SERVES_CLIENTS && s.workloads.iter().any(Option::is_some) {
        return Err(s.source.error(
            "workload",
            format!(
                "the {} protocol does not serve client operations: remove the workload (and workload_min/workload_max), or use \"raft\" or \"vrr\"",
                P::NAME
            ),
        ));
    }
    let cluster = cluster_of(s);
    let cfg: P::Config = parse_value(&s.source, "consensus", s.consensus.clone())?;
    let given = serde_json::to_value(&cfg).unwrap_or_default();
    let proto =
        P::new(cfg, &cluster).map_err(|i| s.source.error(join("consensus", &i.path), i.message))?;
    let settings = match proto.settings() {
        serde_json::Value::Null => given,
        resolved => resolved,
    };
    let mut warnings = s.warnings.clone();
    if !P::HAS_ROLES
        && let Some(path) = role_target_path(s)
    {
        warnings.push(format!(
            "{path}: the {} protocol has no leader, followers or candidates (every server \
                 reports \"follower\"): \"leader\" and \"candidate\" never match, so those \
                 actions are skipped, and \"follower\" picks any server; name a node instead",
            P::NAME
        ));
    }
    warnings.extend(cut_off_clients(s));
    for w in proto.warnings() {
        let p = join("consensus", &w.path);
        match w.severity {
            Severity::Warning => warnings.push(format!("{p}: {}", w.message)),
            Severity::Error => return Err(s.source.error(p, w.message)),
        }
    }
    Ok((proto, cluster, warnings, settings))
}

/// Warnings for clients with a workload that, as the run starts, cannot reach any server or
/// cannot be reached from one (missing or one-way links, links or hubs down at time 0). Their
/// operations can only time out until the timeline opens a way, which is rarely what a
/// scenario means, and nothing else would say why. Two searches over the links (out from the
/// servers, and back towards them), relaying only through hubs that are up; skipped when the
/// timeline acts at time 0 (a link or hub brought up at once).
fn cut_off_clients(s: &Scenario) -> Vec<String> {
    if s.workloads.iter().all(Option::is_none) || s.timeline.iter().any(|a| a.at == 0) {
        return Vec::new();
    }
    let n = s.nodes.len();
    let (mut out, mut back) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for l in &s.links {
        let mut add = |a: usize, b: usize| {
            out[a].push(b);
            back[b].push(a);
        };
        if l.forward.up {
            add(l.from, l.to);
        }
        if l.bidirectional && l.reverse.up {
            add(l.to, l.from);
        }
    }
    let relays = |v: usize| s.nodes[v].kind == NodeKind::Hub && s.nodes[v].up;
    let search = |adj: &[Vec<usize>]| {
        let mut seen = vec![false; n];
        let servers: Vec<usize> = (0..n)
            .filter(|&i| s.nodes[i].kind == NodeKind::Server)
            .collect();
        for &i in &servers {
            seen[i] = true;
        }
        // The servers start the search; beyond them only hubs relay.
        let mut stack = Vec::new();
        for &v in &servers {
            for &w in &adj[v] {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        while let Some(v) = stack.pop() {
            if !relays(v) {
                continue;
            }
            for &w in &adj[v] {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    };
    let (reached, reaching) = (search(&out), search(&back));
    let mut warnings = Vec::new();
    for (i, w) in s.workloads.iter().enumerate() {
        if w.is_none() || s.nodes[i].kind != NodeKind::Client || (reached[i] && reaching[i]) {
            continue;
        }
        let at = match s.format {
            crate::scenario::Format::Native => format!("network.nodes[{i}]"),
            _ => "network".into(),
        };
        warnings.push(format!(
            "{at}: client {} has no route {} any server when the run starts (its links, or \
             the hubs or links beyond them, are missing, one-way or down): its operations time \
             out until the timeline opens a way",
            s.nodes[i].name,
            if reaching[i] { "back from" } else { "to" }
        ));
    }
    warnings
}

/// The JSON path of the first timeline action or random fault that targets a role of the
/// running cluster (leader, follower, candidate), if any does.
fn role_target_path(s: &Scenario) -> Option<String> {
    use crate::config::spec::{ChaosTarget, RoleTarget};
    use crate::scenario::{Action, Group, Member, Target};
    let live = |r: &RoleTarget| *r != RoleTarget::Last;
    let member = |m: &Member| matches!(m, Member::Role(r) if live(r));
    let uses = s.timeline.iter().any(|a| match &a.action {
        x if x.target().is_some() => matches!(x.target(), Some(Target::Role(r)) if live(r)),
        Action::Partition { groups } => groups
            .iter()
            .any(|g| matches!(g, Group::Members(m) if m.iter().any(member))),
        Action::OneWay { from, to } => from.iter().chain(to).any(member),
        _ => false,
    });
    let chaos = s.chaos.as_ref().and_then(|c| {
        [
            ("crash", &c.crash),
            ("pause", &c.pause),
            ("isolate", &c.isolate),
            ("partition", &c.partition),
        ]
        .into_iter()
        .find(|(_, f)| {
            f.as_ref()
                .is_some_and(|f| matches!(f.target, ChaosTarget::Leader | ChaosTarget::Follower))
        })
        .map(|(k, _)| format!("chaos.{k}.target"))
    });
    if !uses {
        return chaos;
    }
    // Name the action in the file (native format: only it has roles).
    let raw: serde_json::Value = serde_json::from_str(&s.source.text).ok()?;
    let is_role = |v: &serde_json::Value| {
        v.get("role")
            .and_then(|r| r.as_str())
            .is_some_and(|r| !r.eq_ignore_ascii_case("last"))
    };
    let found = raw["timeline"].as_array().and_then(|list| {
        list.iter().enumerate().find_map(|(i, a)| {
            if is_role(a) {
                return Some(format!("timeline[{i}].role"));
            }
            ["groups", "from", "to"].iter().find_map(|k| {
                let v = a.get(*k)?.as_array()?;
                let hit = v
                    .iter()
                    .any(|g| is_role(g) || g.as_array().is_some_and(|m| m.iter().any(is_role)));
                hit.then(|| format!("timeline[{i}].{k}"))
            })
        })
    });
    Some(found.unwrap_or_else(|| "timeline".into()))
}

/// Validates the protocol configuration of `s` without running; returns all warnings and the
/// protocol settings in effect (defaults and derived values resolved).
pub fn validate(s: &Scenario) -> Result<(Vec<String>, serde_json::Value), ConfigError> {
    match s.protocol.as_str() {
        "dummy" => prepare::<Dummy>(s).map(|x| (x.2, x.3)),
        "raft" => prepare::<Raft>(s).map(|x| (x.2, x.3)),
        "vrr" => prepare::<Vrr>(s).map(|x| (x.2, x.3)),
        other => Err(s.source.error(
            "consensus.protocol",
            format!("protocol \"{other}\" is not available in this build"),
        )),
    }
}

/// Runs `s` with `opts`.
pub fn run(
    s: &Scenario,
    opts: RunOptions,
    checks: &CheckOptions,
) -> Result<RunResult, ConfigError> {
    match s.protocol.as_str() {
        "dummy" => run_with::<Dummy>(s, opts, checks),
        "raft" => run_with::<Raft>(s, opts, checks),
        "vrr" => run_with::<Vrr>(s, opts, checks),
        other => Err(s.source.error(
            "consensus.protocol",
            format!("protocol \"{other}\" is not available in this build"),
        )),
    }
}

fn run_with<P: Protocol>(
    s: &Scenario,
    opts: RunOptions,
    checks: &CheckOptions,
) -> Result<RunResult, ConfigError> {
    let (proto, cluster, warnings, settings) = prepare::<P>(s)?;
    let outcome = Engine::new(s, proto, cluster, opts).run();
    let unchecked = |reason: String| coracle_check::Report {
        verdict: coracle_check::Verdict::Unknown { reason },
        keys_checked: 0,
        operations: outcome.history.len(),
        steps: 0,
    };
    let linearizability = if checks.skip_linearizability {
        coracle_check::Report {
            verdict: coracle_check::Verdict::Ok,
            keys_checked: 0,
            operations: 0,
            steps: 0,
        }
    } else if outcome.history_capped {
        unchecked(format!(
            "not checked: the run issued more than {} operations (only that many are recorded); shorten it or lower the workload's rate",
            crate::engine::MAX_HISTORY
        ))
    } else if outcome.reason == crate::engine::StopReason::Stalled {
        // Millions of operations at one instant: not worth searching, the run is in error.
        unchecked("not checked: simulated time stopped passing".into())
    } else {
        coracle_check::check(
            &crate::engine::checkable_history(&outcome.history),
            &checks.limits,
        )
    };
    let results = crate::results::build(s, &outcome, &linearizability, &warnings, &settings);
    Ok(RunResult {
        outcome,
        linearizability,
        warnings,
        results,
    })
}

/// Re-runs `s` with the same seed up to `time`, keeping the last `lines` trace records: the
/// events that led to a violation at `time`.
pub fn trace_tail(
    s: &Scenario,
    seed: u64,
    until: Option<Time>,
    time: Time,
    lines: usize,
) -> Vec<String> {
    let opts = RunOptions {
        seed,
        until,
        tracer: Some(Tracer::Ring {
            cap: lines,
            lines: Default::default(),
        }),
        stop_after: Some(time),
        keep_going: false,
        record_history: false,
    };
    let checks = CheckOptions {
        skip_linearizability: true,
        ..Default::default()
    };
    match run(s, opts, &checks) {
        Ok(r) => r.outcome.tracer.map(|t| t.kept()).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}
