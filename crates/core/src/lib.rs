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
pub mod strict;
pub mod text;
pub mod time;

pub use kv::{Command, Key, KvStore, Op, OpResult, SmallIntMap, Value};
pub use observe::{EntryId, Observation, Role};
pub use protocol::{
    Cluster, ConfigIssue, Ctx, Input, Message, Node, Out, Output, Protocol, Severity, TimerName,
};
pub use rng::Rng;
pub use time::{MS, Time, US, ms_to_time, time_to_ms};

use serde::{Deserialize, Serialize, Serializer};
use std::cell::RefCell;
use std::rc::Rc;

/// A node's identity inside one run: a dense index into the scenario's node list, in the order
/// the configuration declared them. The user's own names (integers or strings) live in the
/// driver; protocols only ever see these indices. It serialises as the index, or as the
/// user's name while a [`NodeNames`] guard is alive on the thread (for traces people read).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

thread_local! {
    static NODE_NAMES: RefCell<Option<Rc<[serde_json::Value]>>> = const { RefCell::new(None) };
}

/// While alive, [`NodeId`]s serialised on this thread come out as the given names (indexed by
/// node index). A driver holds one while it writes a trace, so that the node ids inside
/// messages and writes (`voted_for`, `leader_hint`, ...) read like the rest of the trace.
pub struct NodeNames {
    previous: Option<Rc<[serde_json::Value]>>,
}

impl NodeNames {
    /// Serialise node ids as `names[id]` until the guard is dropped.
    pub fn install(names: Vec<serde_json::Value>) -> Self {
        let previous = NODE_NAMES.with(|n| n.replace(Some(names.into())));
        NodeNames { previous }
    }
}

impl Drop for NodeNames {
    fn drop(&mut self) {
        let previous = self.previous.take();
        NODE_NAMES.with(|n| *n.borrow_mut() = previous);
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = NODE_NAMES.with(|n| {
            n.borrow()
                .as_ref()
                .and_then(|names| names.get(self.index()).cloned())
        });
        match name {
            Some(v) => v.serialize(s),
            None => s.serialize_u32(self.0),
        }
    }
}

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

#[cfg(test)]
mod node_id_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_ids_serialise_as_names_only_while_named() {
        let id = NodeId(1);
        assert_eq!(serde_json::to_value(id).unwrap(), json!(1));
        {
            let _names = NodeNames::install(vec![json!("a"), json!(7)]);
            assert_eq!(serde_json::to_value(id).unwrap(), json!(7));
            assert_eq!(serde_json::to_value(NodeId(0)).unwrap(), json!("a"));
            // Outside the table: the index.
            assert_eq!(serde_json::to_value(NodeId(5)).unwrap(), json!(5));
        }
        assert_eq!(serde_json::to_value(id).unwrap(), json!(1));
        let back: NodeId = serde_json::from_value(json!(3)).unwrap();
        assert_eq!(back, NodeId(3));
    }
}
