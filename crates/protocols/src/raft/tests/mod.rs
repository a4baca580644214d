//! Raft's tests: rule-level tests on one server driven by hand ([`Solo`]), scenario tests on
//! the shared deterministic driver ([`crate::testkit::Sim`]), and a randomized safety test.

mod cluster;
mod config;
mod random;
mod rules;
mod snapshots;
mod unsafe_switches;
mod variants;

use super::{Entry, Raft, RaftConfig, RaftDisk, RaftMsg, RaftServer, RaftTimer, RaftWrite};
pub use crate::testkit::{Mix, Workload, applied, sends, timers, writes};
use coracle_core::rng::{purpose, stream};
use coracle_core::{
    Cluster, Command, Ctx, Input, Node, NodeId, Op, Out, Output, Protocol, Rng, Time,
};

pub type Sim = crate::testkit::Sim<Raft>;
pub type Solo = crate::testkit::Solo<Raft>;
pub type Outs = crate::testkit::Outs<Raft>;

impl Solo {
    /// Makes this server leader of `term + 1` by winning an election (votes injected).
    pub fn make_leader(&mut self) -> Outs {
        self.fire(RaftTimer::Election);
        let term = self.node.term();
        let mut last = Vec::new();
        for i in 0..self.cluster.servers.len() {
            if i != self.me.index() && self.node.observe().role != coracle_core::Role::Leader {
                last = self.recv(
                    i,
                    RaftMsg::RequestVoteResponse {
                        term,
                        granted: true,
                    },
                );
            }
        }
        assert_eq!(self.node.observe().role, coracle_core::Role::Leader);
        last
    }
}

/// Closed-loop clients: `ops` operations each, `gap_ms` apart, on 4 keys.
pub fn workload(ops: u64, gap_ms: u64) -> Option<Workload> {
    Some(Workload {
        ops,
        gap: gap_ms * coracle_core::MS,
        keys: 4,
        mix: Mix::GetPut,
    })
}

/// Runs until some server leads (at most 5 s); returns it.
pub fn settle(sim: &mut Sim) -> usize {
    for _ in 0..100 {
        sim.run_for(50 * coracle_core::MS);
        if let Some(l) = sim.leader() {
            return l;
        }
    }
    panic!("no leader");
}

pub fn rv(term: u64, lli: u64, llt: u64) -> RaftMsg {
    RaftMsg::RequestVote {
        term,
        last_log_index: lli,
        last_log_term: llt,
    }
}

pub fn ae(term: u64, prev: u64, prev_term: u64, entries: Vec<Entry>, commit: u64) -> RaftMsg {
    RaftMsg::AppendEntries {
        term,
        prev_log_index: prev,
        prev_log_term: prev_term,
        entries: entries.into(),
        leader_commit: commit,
        round: 1,
    }
}

pub fn election_timer(outs: &Outs) -> Option<Time> {
    timers(outs)
        .into_iter()
        .filter(|(t, _)| *t == RaftTimer::Election)
        .map(|(_, a)| a)
        .next_back()
}

/// An entry of `term` carrying a distinct command.
pub fn entry(term: u64, tag: u64) -> Entry {
    Entry::new(
        term,
        Some(Command {
            client: NodeId(99),
            seq: tag,
            op: Op::Put { key: 0, value: tag },
        }),
    )
}

/// A log with the given terms (entry `i` tagged `tag_base + i`).
pub fn log_of(terms: &[u64], tag_base: u64) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(t, tag_base + i as u64 + 1))
        .collect()
}

pub fn disk(term: u64, voted_for: Option<usize>, log: Vec<Entry>) -> RaftDisk {
    RaftDisk {
        term,
        voted_for: voted_for.map(|v| NodeId(v as u32)),
        log,
        snapshot: None,
    }
}

pub fn cfg() -> RaftConfig {
    RaftConfig::default()
}

/// A server's counters by name.
pub fn counters(node: &RaftServer) -> std::collections::BTreeMap<&'static str, u64> {
    let mut m = std::collections::BTreeMap::new();
    node.counters(&mut |k, v| {
        m.insert(k, v);
    });
    m
}
