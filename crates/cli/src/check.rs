//! `coracle check`: validate and print the normalised scenario.

use crate::config_error;
use coracle_core::time_to_ms;
use coracle_sim::config::spec::NodeKind;
use coracle_sim::scenario::Arrival;
use coracle_sim::topology::Topology;
use std::path::Path;
use std::process::ExitCode;

pub fn main(path: &Path) -> ExitCode {
    let s = match coracle_sim::load_file(path) {
        Ok(s) => s,
        Err(e) => return config_error(&e),
    };
    let (warnings, settings) = match coracle_sim::run::validate(&s) {
        Ok(x) => x,
        Err(e) => return config_error(&e),
    };
    let name = |i: usize| s.nodes[i].name.text();
    outln!("{}: valid ({})", path.display(), s.format.name());
    if let Some(n) = &s.name {
        outln!("name: {n}");
    }
    outln!(
        "seed: {}",
        s.seed
            .map_or("none (drawn at run time)".to_string(), |x| x.to_string())
    );
    outln!("termination: {} ms", time_to_ms(s.termination));
    outln!("protocol: {} {}", s.protocol, settings);
    let count = |kind: NodeKind, word: &str| {
        let n = s.count(kind);
        format!("{n} {word}{}", if n == 1 { "" } else { "s" })
    };
    outln!(
        "nodes: {}, {}, {}",
        count(NodeKind::Server, "server"),
        count(NodeKind::Client, "client"),
        count(NodeKind::Hub, "hub")
    );
    for n in &s.nodes {
        let mut clock = String::new();
        if n.clock_rate != 1.0 {
            clock.push_str(&format!("  clock rate {}", n.clock_rate));
        }
        if n.clock_offset != 0 {
            clock.push_str(&format!(
                "  clock offset {} ms",
                n.clock_offset as f64 / coracle_core::MS as f64
            ));
        }
        outln!(
            "  {:<8} {:<6}{}{clock}",
            n.name.text(),
            n.kind.name(),
            if n.up { "" } else { "  (down at start)" }
        );
    }
    outln!("links: {}", s.links.len());
    for l in &s.links {
        let arrow = if l.bidirectional { "<->" } else { "->" };
        let mut line = format!(
            "  {:<8} {} {arrow} {}: {}",
            l.id.text(),
            name(l.from),
            name(l.to),
            l.forward.describe()
        );
        if l.bidirectional && l.reverse != l.forward {
            line.push_str(&format!("; reverse: {}", l.reverse.describe()));
        }
        if !l.forward.up {
            line.push_str("  (down at start)");
        }
        outln!("{line}");
    }
    outln!("timeline: {} actions", s.timeline.len());
    for a in &s.timeline {
        let what = s.describe(&a.action);
        outln!(
            "  {:>10} ms{}  {what}",
            time_to_ms(a.at),
            a.delay
                .as_ref()
                .map_or(String::new(), |d| format!(" + {d}"))
        );
    }
    let clients: Vec<_> = s
        .workloads
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.as_ref().map(|w| (i, w)))
        .collect();
    outln!(
        "workload: {} client{} with operations",
        clients.len(),
        if clients.len() == 1 { "" } else { "s" }
    );
    for (i, w) in clients {
        let arrival = match &w.arrival {
            Arrival::Closed { think } => format!("closed loop, think {} ms", time_to_ms(*think)),
            Arrival::Open { rate } => format!("open loop, {rate} ops/s"),
            Arrival::Interval { min, max } => format!(
                "every U[{}, {}) ms (2015)",
                time_to_ms(*min),
                time_to_ms(*max)
            ),
        };
        let mut when = String::new();
        if w.start > 0 || w.stop.is_some() {
            when += &format!(
                "; from {} ms to {}",
                time_to_ms(w.start),
                w.stop
                    .map_or("the end".to_string(), |t| format!("{} ms", time_to_ms(t)))
            );
        }
        if let Some(m) = w.max_ops {
            when += &format!("; at most {m} ops");
        }
        if let Arrival::Open { .. } = w.arrival {
            when += &format!("; queue limit {}", w.queue_limit);
        }
        outln!(
            "  {:<8} {arrival}; {} keys, reads {}, cas {}{when}",
            name(i),
            w.keys,
            w.read_fraction,
            w.cas_fraction
        );
    }
    if let Some(c) = &s.chaos {
        outln!(
            "chaos (random faults drawn from the seed), from {} ms to {}:",
            time_to_ms(c.start),
            c.stop
                .map_or("the end".to_string(), |t| format!("{} ms", time_to_ms(t)))
        );
        for (name, f) in [
            ("crash", &c.crash),
            ("pause", &c.pause),
            ("isolate", &c.isolate),
            ("partition", &c.partition),
            ("link", &c.link),
        ] {
            if let Some(f) = f {
                let target = serde_json::to_value(f.target).unwrap_or_default();
                outln!(
                    "  {name:<9} {} per second, lasting {} (target: {})",
                    f.rate,
                    &f.duration.to_string(),
                    target.as_str().unwrap_or("?")
                );
            }
        }
    }
    outln!("storage: write latency {}", &s.storage.to_string());
    // Reachability at time 0 between servers.
    let mut topo = Topology::new(&s, 0);
    let servers: Vec<usize> = (0..s.nodes.len())
        .filter(|&i| s.nodes[i].kind == NodeKind::Server)
        .collect();
    if servers.len() <= 12 {
        outln!("routes at time 0 between servers (expected one-way latency, ms):");
        for &a in &servers {
            let row: Vec<String> = servers
                .iter()
                .map(|&b| {
                    if a == b {
                        "-".to_string()
                    } else {
                        topo.route_cost(a, b)
                            .map_or("x".into(), |c| format!("{}", time_to_ms(c)))
                    }
                })
                .collect();
            outln!("  {:<8} {}", name(a), row.join("  "));
        }
    }
    for w in warnings {
        eprintln!("warning: {}: {w}", crate::shown(path));
    }
    ExitCode::SUCCESS
}
