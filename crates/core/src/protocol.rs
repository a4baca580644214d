//! The sans-IO protocol contract.
//!
//! ```text
//!            Input ──▶ Node::step(ctx, input, out) ──▶ Out (Send, SetTimer, CancelTimer,
//!   (Start, Recover,        │                               Persist, Applied, Complete)
//!    Packet, Timer,         ▼
//!    Request)         Node::observe() ──▶ checkers, metrics
//! ```
//!
//! A protocol has two kinds of node: servers (replicas) and client proxies (the library a client
//! links against: finds the leader, retries, numbers its requests). Both are driven through
//! [`Node`]. Durable state is explicit: a server describes every change to what must survive a
//! crash as a [`Protocol::Write`]; the driver applies completed writes to the node's disk image
//! ([`Protocol::Disk`]) and, after a crash, rebuilds the node from that image alone.

use crate::NodeId;
use crate::kv::{Op, OpResult};
use crate::observe::{EntryId, Observation};
use crate::rng::Rng;
use crate::time::Time;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// A wire message. `Default` is a cheap placeholder (no allocation): drivers leave it behind
/// when they move a message out of their output buffer, so the message moves as one block
/// instead of being taken apart and put together again.
pub trait Message: Clone + Debug + Default + Serialize + DeserializeOwned + Send + 'static {
    /// A short static name of the message type (`"append_entries"`), for per-type counters.
    fn kind(&self) -> &'static str;
    /// Approximate encoded size in bytes, for bandwidth models.
    fn wire_size(&self) -> u32 {
        64
    }
}

/// A protocol's set of named timers. Each name is one timer per node: setting it again re-arms
/// it, cancelling it disarms it. Drivers keep one slot per name, indexed by [`TimerName::index`].
pub trait TimerName: Copy + Eq + Debug + Send + 'static {
    /// Every timer name, in index order.
    const ALL: &'static [Self];
    /// Position of this name in [`TimerName::ALL`].
    fn index(self) -> usize;
    /// The name as shown in traces.
    fn name(self) -> &'static str;
}

/// One input to a node.
#[derive(Clone, Debug)]
pub enum Input<M, T> {
    /// The node boots for the first time.
    Start,
    /// The node restarts after a crash; its state was rebuilt from its disk image.
    Recover,
    /// A message arrived.
    Packet { from: NodeId, msg: M },
    /// A timer fired.
    Timer(T),
    /// (Client proxies only.) The application submits an operation; `id` is echoed in the
    /// matching [`Output::Complete`].
    Request { id: u64, op: Op },
}

/// One reaction of a node, written into the driver's [`Out`] buffer.
#[derive(Clone, Debug)]
pub enum Output<M, T, W> {
    /// Send `msg` to `to`.
    Send { to: NodeId, msg: M },
    /// Arm (or re-arm) `timer` to fire `after` nanoseconds of the node's local time from now.
    SetTimer { timer: T, after: Time },
    /// Disarm `timer`; a no-op when it is not armed.
    CancelTimer(T),
    /// Make `W` durable. **Barrier:** every `Send` and `Complete` written after a `Persist`
    /// (in this step or a later one) is held by the driver until that write, and every write
    /// before it, has completed. A crash discards writes not yet completed and the messages
    /// held behind them. This is how "persist before you answer" is expressed without I/O.
    Persist(W),
    /// (Servers.) The log entry at `index` was applied to the state machine. Drivers feed this
    /// to the state-machine-safety checks and to the commits-over-time series.
    Applied { index: u64, entry: EntryId },
    /// (Client proxies.) The operation `id` finished with `result`; `None` means the proxy gave
    /// up, so the operation may or may not have taken effect.
    Complete { id: u64, result: Option<OpResult> },
    /// (Servers.) The state machine was replaced by a snapshot covering entries `1..=index`,
    /// the last of which is `entry`; application continues at `index + 1`.
    Restored { index: u64, entry: EntryId },
}

/// The output buffer a driver lends to [`Node::step`]. It is cleared by the driver, so steady
/// state stepping does not allocate.
pub struct Out<P: Protocol> {
    buf: Vec<Output<P::Msg, P::Timer, P::Write>>,
}

impl<P: Protocol> Default for Out<P> {
    fn default() -> Self {
        Out { buf: Vec::new() }
    }
}

impl<P: Protocol> Debug for Out<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.buf.iter()).finish()
    }
}

impl<P: Protocol> Out<P> {
    /// Sends `msg` to `to`.
    #[inline]
    pub fn send(&mut self, to: NodeId, msg: P::Msg) {
        self.buf.push(Output::Send { to, msg });
    }
    /// Arms `timer` to fire after `after` (local time).
    #[inline]
    pub fn set_timer(&mut self, timer: P::Timer, after: Time) {
        self.buf.push(Output::SetTimer { timer, after });
    }
    /// Disarms `timer`.
    #[inline]
    pub fn cancel_timer(&mut self, timer: P::Timer) {
        self.buf.push(Output::CancelTimer(timer));
    }
    /// Makes `write` durable (see the barrier rule on [`Output::Persist`]).
    #[inline]
    pub fn persist(&mut self, write: P::Write) {
        self.buf.push(Output::Persist(write));
    }
    /// Reports that the entry at `index` was applied.
    #[inline]
    pub fn applied(&mut self, index: u64, entry: EntryId) {
        self.buf.push(Output::Applied { index, entry });
    }
    /// Reports that the state machine was restored from a snapshot up to `index`.
    #[inline]
    pub fn restored(&mut self, index: u64, entry: EntryId) {
        self.buf.push(Output::Restored { index, entry });
    }
    /// Reports that client operation `id` finished.
    #[inline]
    pub fn complete(&mut self, id: u64, result: Option<OpResult>) {
        self.buf.push(Output::Complete { id, result });
    }
    /// The outputs written so far.
    pub fn as_slice(&self) -> &[Output<P::Msg, P::Timer, P::Write>] {
        &self.buf
    }
    /// Takes the outputs out, leaving the buffer empty but keeping its capacity.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Output<P::Msg, P::Timer, P::Write>> {
        self.buf.drain(..)
    }
    /// The outputs written so far, for a driver that handles them in place (then `clear`s).
    pub fn as_mut_slice(&mut self) -> &mut [Output<P::Msg, P::Timer, P::Write>] {
        &mut self.buf
    }
    /// Number of outputs.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// The membership of a run: who the servers and clients are, in the configured order, and the
/// user's names for them.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    /// Servers (replicas), in configured order. VRR uses this order as the replica order.
    pub servers: Vec<NodeId>,
    /// Client nodes.
    pub clients: Vec<NodeId>,
    /// The user's name of every node, indexed by [`NodeId`].
    pub names: Vec<String>,
}

impl Cluster {
    /// The id of the node the user called `name`.
    pub fn lookup(&self, name: &str) -> Option<NodeId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| NodeId(i as u32))
    }
    /// The user's name for `id`.
    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.index()]
    }
    /// Votes needed for a majority of the servers.
    pub fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }
    /// True if `id` is a server.
    pub fn is_server(&self, id: NodeId) -> bool {
        self.servers.contains(&id)
    }
}

/// What a node may know about its surroundings during one step.
pub struct Ctx<'a> {
    /// The node being stepped.
    pub me: NodeId,
    /// The node's local clock, in nanoseconds (it may drift from simulated time).
    pub now: Time,
    /// The node's own random stream.
    pub rng: &'a mut Rng,
    /// Who is in the run.
    pub cluster: &'a Cluster,
}

/// Whether a configuration remark stops the run.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Severity {
    Error,
    Warning,
}

/// A problem with a protocol's configuration, located by a path relative to the `consensus`
/// object (for example `election_timeout_max`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigIssue {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl ConfigIssue {
    /// An error at `path`.
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        }
    }
    /// A warning at `path`.
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A node driven by [`Input`]s.
pub trait Node<P: Protocol>: Send {
    /// Handles one input, writing reactions into `out`.
    fn step(&mut self, ctx: &mut Ctx<'_>, input: Input<P::Msg, P::Timer>, out: &mut Out<P>);

    /// The node's externally visible state.
    fn observe(&self) -> Observation;

    /// The identity of the log entry at `index` (1-based), if the node has one.
    fn entry(&self, _index: u64) -> Option<EntryId> {
        None
    }

    /// Protocol-specific counters of this node (elections started, messages dropped as stale,
    /// ...). Drivers sum them over nodes into the run's `protocol_stats`.
    fn counters(&self, _visit: &mut dyn FnMut(&'static str, u64)) {}

    /// The node's state for the end-of-run report (JSON). `id` renders a node as the user
    /// named it, so that reports name nodes as the rest of the results do.
    fn report(&self, _id: &dyn Fn(NodeId) -> serde_json::Value) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// A consensus protocol: its configuration, vocabulary and node constructors.
pub trait Protocol: Sized + Send + Sync + 'static {
    /// The `consensus.protocol` name.
    const NAME: &'static str;
    /// Whether client proxies carry out key-value operations. The dummy's fail each at once, so
    /// a workload would only spin (a closed loop without think time never lets time pass).
    const SERVES_CLIENTS: bool = true;
    /// Whether servers take roles (leader, follower, candidate) that timeline actions may
    /// target. The dummy's servers all report `follower`.
    const HAS_ROLES: bool = true;
    /// The `consensus` object (minus `protocol`), deserialised with unknown keys rejected.
    type Config: DeserializeOwned + Serialize + schemars::JsonSchema + Clone + Debug;
    /// Wire messages.
    type Msg: Message;
    /// Named timers.
    type Timer: TimerName;
    /// One change to durable state.
    type Write: Clone + Debug + Serialize + Send;
    /// The disk image: what a server restarts from after a crash.
    type Disk: Default + Clone + Debug + Serialize + Send;
    /// A replica.
    type Server: Node<Self>;
    /// A client proxy.
    type Client: Node<Self>;

    /// Validates the configuration against the cluster and prepares the protocol. Errors carry a
    /// path relative to the `consensus` object.
    fn new(config: Self::Config, cluster: &Cluster) -> Result<Self, ConfigIssue>;

    /// Remarks about a valid but questionable configuration.
    fn warnings(&self) -> Vec<ConfigIssue> {
        Vec::new()
    }

    /// The parameters in effect, defaults and derived values resolved (what `coracle check`
    /// prints). `Null` means "the configuration as given says it all".
    fn settings(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Applies a completed write to a disk image.
    fn apply_write(disk: &mut Self::Disk, write: &Self::Write);

    /// What a disk image holds, for reports on a crashed server: its term (view) and the index
    /// of its last log entry. `None` when the protocol keeps no such state (the dummy).
    fn durable_position(_disk: &Self::Disk) -> Option<(u64, u64)> {
        None
    }

    /// A server built from its disk image (empty at first boot). It receives [`Input::Start`]
    /// or [`Input::Recover`] next.
    fn server(&self, me: NodeId, disk: &Self::Disk) -> Self::Server;

    /// A client proxy. It receives [`Input::Start`] next.
    fn client(&self, me: NodeId) -> Self::Client;
}
