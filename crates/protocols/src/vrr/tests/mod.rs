//! VRR's tests: rule-level tests on one replica driven by hand ([`Solo`]), scenario tests on
//! the shared deterministic driver ([`crate::testkit::Sim`]), and a randomized safety test.

mod cluster;
mod config;
mod random;
mod rules;

use super::{Entry, Vrr, VrrConfig, VrrDisk, VrrMsg, VrrServer, VrrTimer, VrrWrite};
use coracle_core::rng::{purpose, stream};
use coracle_core::{
    Cluster, Command, Ctx, Input, Node, NodeId, Op, Out, Output, Protocol, Rng, Time,
};

pub type Sim = crate::testkit::Sim<Vrr>;
pub type Outs = Vec<Output<VrrMsg, VrrTimer, VrrWrite>>;

/// One replica stepped by hand, with a disk image kept up to date as if every write completed
/// at once.
pub struct Solo {
    pub vrr: Vrr,
    pub cluster: Cluster,
    pub node: VrrServer,
    rng: Rng,
    pub now: Time,
    pub disk: VrrDisk,
    pub me: NodeId,
}

impl Solo {
    /// Replica `me` of an `n`-replica cluster (plus one client, node `n`), booted from `disk`
    /// with `Input::Start`.
    pub fn new(cfg: VrrConfig, n: usize, me: usize, disk: VrrDisk) -> (Solo, Outs) {
        let cluster = Cluster {
            servers: (0..n as u32).map(NodeId).collect(),
            clients: vec![NodeId(n as u32)],
            names: (0..=n).map(|i| format!("n{i}")).collect(),
        };
        let vrr = Vrr::new(cfg, &cluster).expect("valid config");
        let me = NodeId(me as u32);
        let node = vrr.server(me, &disk);
        let mut s = Solo {
            vrr,
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

    pub fn step(&mut self, input: Input<VrrMsg, VrrTimer>) -> Outs {
        let mut out = Out::<Vrr>::default();
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
                Vrr::apply_write(&mut self.disk, w);
            }
        }
        outs
    }

    pub fn recv(&mut self, from: usize, msg: VrrMsg) -> Outs {
        self.step(Input::Packet {
            from: NodeId(from as u32),
            msg,
        })
    }

    pub fn fire(&mut self, t: VrrTimer) -> Outs {
        self.step(Input::Timer(t))
    }

    /// Crash and restart from the disk image.
    pub fn restart(&mut self) -> Outs {
        self.node = self.vrr.server(self.me, &self.disk);
        self.step(Input::Recover)
    }

    /// The client's node index.
    pub fn client(&self) -> usize {
        self.cluster.servers.len()
    }
}

pub fn sends(outs: &Outs) -> Vec<(usize, VrrMsg)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((to.index(), msg.clone())),
            _ => None,
        })
        .collect()
}

/// The messages sent to `to`.
pub fn sent_to(outs: &Outs, to: usize) -> Vec<VrrMsg> {
    sends(outs)
        .into_iter()
        .filter(|(t, _)| *t == to)
        .map(|(_, m)| m)
        .collect()
}

pub fn timers(outs: &Outs) -> Vec<(VrrTimer, Time)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SetTimer { timer, after } => Some((*timer, *after)),
            _ => None,
        })
        .collect()
}

pub fn writes(outs: &Outs) -> Vec<VrrWrite> {
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

pub fn durable() -> VrrConfig {
    VrrConfig {
        durable: true,
        ..VrrConfig::default()
    }
}
