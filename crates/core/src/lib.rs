//! The contract between Coracle's drivers (the simulator, the real-network runtime) and its
//! protocols.
//!
//! A protocol is a pure state machine: it receives one [`Input`] at a time through
//! [`Node::step`] and writes its reactions into an [`Out`] buffer owned by the driver. It never
//! reads a clock, opens a socket or touches a global random number generator: time, identity and
//! randomness come in through [`Ctx`]. This is what lets the same protocol code run under the
//! deterministic simulator and over real sockets.

pub mod kv;
pub mod observe;
pub mod protocol;
pub mod rng;
pub mod time;

pub use kv::{Command, Key, KvStore, Op, OpResult, Value};
pub use observe::{EntryId, Observation, Role};
pub use protocol::{
    Cluster, ConfigIssue, Ctx, Input, Message, Node, Out, Output, Protocol, Severity, TimerName,
};
pub use rng::Rng;
pub use time::{MS, Time, US, ms_to_time, time_to_ms};

use serde::{Deserialize, Serialize};

/// A node's identity inside one run: a dense index into the scenario's node list, in the order
/// the configuration declared them. The user's own names (integers or strings) live in the
/// driver; protocols only ever see these indices.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as a `usize`, for indexing per-node tables.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}
