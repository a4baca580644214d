//! VRR's tests: rule-level tests on one replica driven by hand ([`Solo`]), scenario tests on
//! the shared deterministic driver ([`crate::testkit::Sim`]), and a randomized safety test.

mod cluster;
mod config;
mod random;
mod rules;

use super::{Entry, Status, Vrr, VrrConfig, VrrDisk, VrrMsg, VrrServer, VrrTimer, VrrWrite};
pub use crate::testkit::{applied, sends, sent_to, timers, writes};
use coracle_core::rng::{purpose, stream};
use coracle_core::{Cluster, Command, Node, NodeId, Op, Output, Protocol};

pub type Sim = crate::testkit::Sim<Vrr>;
pub type Solo = crate::testkit::Solo<Vrr>;
pub type Outs = crate::testkit::Outs<Vrr>;

/// All running servers are normal in one view with the same log and commit-number, and have
/// executed everything.
fn converged(sim: &Sim) -> bool {
    let up: Vec<usize> = (0..sim.n_servers).filter(|&i| sim.nodes[i].up).collect();
    let Some(&first) = up.first() else {
        return false;
    };
    let a = sim.server(first);
    up.iter().all(|&i| {
        let s = sim.server(i);
        s.status() == Status::Normal
            && s.view() == a.view()
            && s.last_normal() == s.view()
            && s.op_number() == a.op_number()
            && s.entry(s.op_number()) == a.entry(a.op_number())
            && s.commit_number() == s.op_number()
            && s.executed() == s.commit_number()
    })
}

/// An entry of `view` carrying a distinct command.
pub fn entry(view: u64, tag: u64) -> Entry {
    Entry {
        view,
        cmd: Command {
            client: NodeId(99),
            seq: tag,
            op: Op::Put { key: 0, value: tag },
        },
    }
}

/// A log with the given views (entry `i` tagged `tag_base + i`).
pub fn log_of(views: &[u64], tag_base: u64) -> Vec<Entry> {
    views
        .iter()
        .enumerate()
        .map(|(i, &v)| entry(v, tag_base + i as u64 + 1))
        .collect()
}

pub fn cfg() -> VrrConfig {
    VrrConfig::default()
}

/// Checkpoints every `k` ops.
pub fn ckpt(c: VrrConfig, k: u64) -> VrrConfig {
    VrrConfig {
        checkpoint_interval: Some(k),
        ..c
    }
}

pub fn durable() -> VrrConfig {
    VrrConfig {
        durable: true,
        ..VrrConfig::default()
    }
}
