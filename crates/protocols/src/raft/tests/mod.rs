//! Raft's tests: rule-level tests on one server driven by hand ([`Solo`]), scenario tests on
//! the deterministic [`harness::Sim`], and a randomized safety test.

mod cluster;
mod config;
pub mod harness;
mod random;
mod rules;
mod snapshots;
mod unsafe_switches;
mod variants;

use super::{Entry, Raft, RaftConfig, RaftDisk, RaftMsg, RaftServer, RaftTimer, RaftWrite};
use coracle_core::rng::{purpose, stream};
use coracle_core::{
    Cluster, Command, Ctx, Input, Node, NodeId, Op, Out, Output, Protocol, Rng, Time,
};

pub type Outs = Vec<Output<RaftMsg, RaftTimer, RaftWrite>>;

/// One server stepped by hand, with a disk image kept up to date as if every write completed
/// at once.
pub struct Solo {
    pub raft: Raft,
    pub cluster: Cluster,
    pub node: RaftServer,
    rng: Rng,
    pub now: Time,
    pub disk: RaftDisk,
    pub me: NodeId,
}

impl Solo {
    /// Server `me` of an `n`-server cluster (plus one client, node `n`), booted from `disk`.
    pub fn new(cfg: RaftConfig, n: usize, me: usize, disk: RaftDisk) -> (Solo, Outs) {
        let cluster = Cluster {
            servers: (0..n as u32).map(NodeId).collect(),
            clients: vec![NodeId(n as u32)],
            names: (0..=n).map(|i| format!("n{i}")).collect(),
        };
        let raft = Raft::new(cfg, &cluster).expect("valid config");
        let me = NodeId(me as u32);
        let node = raft.server(me, &disk);
        let mut s = Solo {
            raft,
            cluster,
            node,
            rng: stream(7, purpose::PROTOCOL, me.0 as u64),
            now: 0,
            disk,
            me,
        };
        let outs = s.step(Input::Start);
        (s, outs)
    }

    pub fn step(&mut self, input: Input<RaftMsg, RaftTimer>) -> Outs {
        let mut out = Out::<Raft>::default();
        let mut ctx = Ctx {
            me: self.me,
            now: self.now,
            rng: &mut self.rng,
            cluster: &self.cluster,
        };
        self.node.step(&mut ctx, input, &mut out);
        let outs: Outs = out.drain().collect();
        for o in &outs {
            if let Output::Persist(w) = o {
                Raft::apply_write(&mut self.disk, w);
            }
        }
        outs
    }

    pub fn recv(&mut self, from: usize, msg: RaftMsg) -> Outs {
        self.step(Input::Packet {
            from: NodeId(from as u32),
            msg,
        })
    }

    pub fn fire(&mut self, t: RaftTimer) -> Outs {
        self.step(Input::Timer(t))
    }

    /// Crash and restart from the disk image.
    pub fn restart(&mut self) -> Outs {
        self.node = self.raft.server(self.me, &self.disk);
        self.step(Input::Recover)
    }

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

pub fn sends(outs: &Outs) -> Vec<(usize, RaftMsg)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((to.index(), msg.clone())),
            _ => None,
        })
        .collect()
}

pub fn timers(outs: &Outs) -> Vec<(RaftTimer, Time)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SetTimer { timer, after } => Some((*timer, *after)),
            _ => None,
        })
        .collect()
}

pub fn election_timer(outs: &Outs) -> Option<Time> {
    timers(outs)
        .into_iter()
        .filter(|(t, _)| *t == RaftTimer::Election)
        .map(|(_, a)| a)
        .next_back()
}

pub fn writes(outs: &Outs) -> Vec<RaftWrite> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

pub fn applied(outs: &Outs) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Applied { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

/// An entry of `term` carrying a distinct command.
pub fn entry(term: u64, tag: u64) -> Entry {
    Entry {
        term,
        cmd: Some(Command {
            client: NodeId(99),
            seq: tag,
            op: Op::Put { key: 0, value: tag },
        }),
    }
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
