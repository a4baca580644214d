//! The deterministic discrete-event engine.
//!
//! One priority queue of events ordered by (time, insertion sequence). The queue holds only
//! 128-bit keys; an event's small `Copy` payload ([`Kind`]) sits in a side table, and a
//! packet's message in a slab whose slot the payload names. Timers are cancelled lazily: each
//! (node, timer name) slot records its deadline and the time of its queued wake-up, and a
//! wake-up that finds the deadline gone or moved later is dropped or re-queued. A crash bumps
//! the node's epoch, which invalidates its pending disk completions and workload ticks.
//!
//! Packets travel hop by hop. At each hop the current route is looked up, the channel's loss
//! and latency are drawn from its own stream, and the packet is scheduled to arrive at the far
//! end. What happens to packets in flight:
//!
//! * a channel that goes down (or down and up again) while a packet is on it loses the packet
//!   (`link_down`);
//! * a packet that reaches a hub that is down, or a destination that is down, is dropped
//!   (`node_down`); a destination that crashed and recovered in the meantime receives it;
//! * a hub forwards along the route that is current when the packet reaches it, so routes
//!   changed mid-flight are followed (or the packet is dropped as `no_route`);
//! * latency or loss changes affect only packets entering the channel afterwards.
//!
//! Durable writes (`Output::Persist`) take a storage delay; a server's writes complete in
//! order, and any `Send` or `Complete` issued after a write is held until that write is done.
//! A crash loses the node's volatile state, its unfinished writes and the outputs held behind
//! them; recovery rebuilds the node from its disk image.

mod clients;
mod faults;
mod net;
mod queue;

pub use faults::MAX_FIRED;
pub use net::DropCause;

use crate::checks::{Checker, Violation};
use crate::config::spec::NodeKind;
use crate::dist::Sampler;
use crate::metrics::{LeaderStats, NetStats, Series, cluster_available};
use crate::scenario::Scenario;
use crate::topology::Topology;
use crate::trace::Tracer;
use crate::workload::ClientDriver;
use coracle_check::Operation;
use coracle_core::{
    Cluster, Ctx, EntryId, Input, Message, Node, NodeId, Observation, OpResult, Out, Output,
    Protocol, Rng, Role, Time, TimerName, rng, time_to_ms,
};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Longest path a packet may take (a guard; shortest-path routes never loop).
const MAX_HOPS: u8 = 64;

/// Why the run stopped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The configured horizon was reached.
    Horizon,
    /// No events were left.
    NoEvents,
    /// A safety invariant was violated.
    Violation,
    /// [`stall_limit`] events in a row happened at one instant: a loop without delay (links
    /// of zero latency and a protocol that answers at once, or a zero think time), which
    /// would otherwise run forever without simulated time passing.
    Stalled,
}

/// Events in a row at one simulated instant after which a run stops as stalled: a million,
/// or four per pair of nodes in larger scenarios (every node sending to every other at once,
/// and the replies, on links of zero latency). Low enough to stop within a second and a few
/// hundred MB when clients loop without delay.
pub fn stall_limit(nodes: usize) -> u64 {
    let n = nodes as u64;
    n.saturating_mul(n).saturating_mul(4).max(1_000_000)
}

impl StopReason {
    /// Name in results.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Horizon => "horizon",
            StopReason::NoEvents => "no_events",
            StopReason::Violation => "violation",
            StopReason::Stalled => "stalled",
        }
    }
}

#[derive(Copy, Clone, Debug)]
enum Kind {
    /// A packet reaches the far end of its current channel (or, for loopback, its sender).
    Hop {
        packet: u32,
    },
    /// A timer's queued wake-up (see [`TimerSlot`]).
    Timer {
        node: u32,
        timer: u16,
    },
    /// A timer that expired while its node was paused, fired at resume (unless the node
    /// crashed since: `epoch`, or is paused again: then it waits for the next resume).
    TimerFire {
        node: u32,
        timer: u16,
        epoch: u32,
    },
    Action {
        index: u32,
    },
    Tick {
        node: u32,
        epoch: u32,
    },
    Disk {
        node: u32,
        epoch: u32,
    },
    /// Delivery to a node that was paused when the packet arrived, at resume (dropped if
    /// the node crashed since: `epoch`).
    Deliver {
        packet: u32,
        epoch: u32,
    },
    Flap {
        index: u32,
    },
}

/// Bits of an event key: simulated time (64) | insertion sequence (38) | slot of the event's
/// [`Kind`] in the side table (26). Ordering keys orders events by (time, insertion); the slot
/// only makes the key carry its payload. The heap then holds plain integers: no struct is
/// copied through the stack while sifting (copying 32-byte events stalled store-to-load
/// forwarding on every push), and one comparison orders two events.
const SLOT_BITS: u32 = 26;
const SEQ_BITS: u32 = 64 - SLOT_BITS;

#[cold]
#[inline(never)]
fn queue_overflow() -> ! {
    panic!(
        "event queue limits exceeded: more than 2^{SEQ_BITS} events in one run or 2^{SLOT_BITS} pending at once"
    )
}

enum State<P: Protocol> {
    Server(P::Server),
    Client(P::Client),
    None,
}

enum Held<P: Protocol> {
    Send { to: NodeId, msg: P::Msg },
    Complete { id: u64, result: Option<OpResult> },
}

struct Slot<P: Protocol> {
    kind: NodeKind,
    up: bool,
    /// Frozen: events for the node wait in `deferred` until it resumes.
    paused: bool,
    deferred: Vec<Kind>,
    /// Isolated inbound (hears nothing) / outbound (nothing it sends leaves).
    deaf: bool,
    mute: bool,
    clock: faults::Clock,
    started: bool,
    epoch: u32,
    state: State<P>,
    rng: Rng,
    storage_rng: Rng,
    timers: Vec<TimerSlot>,
    disk: P::Disk,
    pending_writes: VecDeque<(u64, Time, P::Write)>,
    writes_issued: u64,
    writes_done: u64,
    disk_free_at: Time,
    held: VecDeque<(u64, Held<P>)>,
    obs: Observation,
    /// Counters of previous incarnations (a crash discards the node value that held them).
    retired: Vec<(&'static str, u64)>,
    applied: u64,
    commits: Series,
    terms: Series,
    roles: Series,
    /// Who the node believes leads, at each change: node index + 1, or 0 for nobody.
    leaders: Series,
}

impl<P: Protocol> Slot<P> {
    /// The node's log entry at `index`, called with static dispatch (the checks look entries
    /// up after most steps).
    #[inline]
    fn entry(&self, index: u64) -> Option<EntryId> {
        match &self.state {
            State::Server(s) => s.entry(index),
            State::Client(c) => c.entry(index),
            State::None => None,
        }
    }
    fn node(&self) -> Option<&dyn Node<P>> {
        match &self.state {
            State::Server(s) => Some(s),
            State::Client(c) => Some(c),
            State::None => None,
        }
    }
}

fn add_counter(list: &mut Vec<(&'static str, u64)>, k: &'static str, v: u64) {
    match list.iter_mut().find(|(n, _)| *n == k) {
        Some(e) => e.1 += v,
        None => list.push((k, v)),
    }
}

/// One timer of one node. `deadline` is when it should fire (None: disarmed); `queued` is the
/// time of the wake-up event in the queue, if any. Re-arming later than `queued` only moves the
/// deadline; the wake-up then re-queues itself at the deadline.
#[derive(Copy, Clone, Debug, Default)]
struct TimerSlot {
    deadline: Option<Time>,
    queued: Option<Time>,
}

/// Options of one run.
pub struct RunOptions {
    /// The master seed.
    pub seed: u64,
    /// Overrides the scenario's horizon.
    pub until: Option<Time>,
    /// Where the trace goes, if anywhere.
    pub tracer: Option<Tracer>,
    /// Stop processing events after the first at or beyond this time (used to replay a run up
    /// to a violation).
    pub stop_after: Option<Time>,
    /// Run on after the first invariant violation (it is still reported, and the run still
    /// fails) to the horizon, so that the clients' history is checked too: did the clients see
    /// the broken invariant?
    pub keep_going: bool,
    /// Keep every client operation for the linearizability check (memory grows with the
    /// number of operations; benchmarks turn it off).
    pub record_history: bool,
}

impl RunOptions {
    /// A run with `seed`, the scenario's horizon, no trace, and the history recorded.
    pub fn seeded(seed: u64) -> Self {
        RunOptions {
            seed,
            until: None,
            tracer: None,
            stop_after: None,
            keep_going: false,
            record_history: true,
        }
    }
}

/// Everything a run produced, for the results and the summary.
pub struct Outcome {
    pub seed: u64,
    pub end: Time,
    pub horizon: Time,
    pub reason: StopReason,
    pub events: u64,
    pub violation: Option<Violation>,
    pub net: NetStats,
    pub leaders: LeaderStats,
    pub in_flight: u64,
    pub nodes: Vec<NodeReport>,
    pub counters: Vec<(&'static str, u64)>,
    pub history: Vec<OpRecord>,
    /// More operations were issued than [`MAX_HISTORY`]; the history stops there.
    pub history_capped: bool,
    pub clients: Vec<ClientReport>,
    pub route_computations: u64,
    pub route_repairs: u64,
    /// Timeline actions that fired (first MAX_FIRED), with the nodes they hit.
    pub fired: Vec<Value>,
    pub fired_total: u64,
    pub tracer: Option<Tracer>,
    pub committed: u64,
}

/// End-of-run state of one node.
pub struct NodeReport {
    pub index: usize,
    pub kind: NodeKind,
    pub up: bool,
    pub obs: Observation,
    pub applied: u64,
    /// A down server's disk: term and last log index (volatile state is gone).
    pub durable: Option<(u64, u64)>,
    pub counters: Vec<(&'static str, u64)>,
    pub state: Value,
    pub commits: Series,
    pub terms: Series,
    pub roles: Series,
    pub leaders: Series,
}

/// The most operations a run records for the linearizability check (about 100 bytes each):
/// a longer run goes on, and its check reports `unknown` instead of exhausting memory.
pub const MAX_HISTORY: usize = 10_000_000;

/// One client operation as the workload saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRecord {
    pub client: NodeId,
    pub op: coracle_core::Op,
    /// When the workload issued it (latency is measured from here).
    pub arrival: Time,
    /// When it was handed to the client proxy (`None`: never; it cannot have taken effect).
    pub dispatch: Option<Time>,
    /// Position of the dispatch and of the completion in the order the engine handled them
    /// (one counter for both): simultaneous events are not concurrent in a simulation, and a
    /// client's next operation, dispatched in the instant its previous one completed, follows it.
    pub dispatch_order: u64,
    pub complete_order: u64,
    pub complete: Option<Time>,
    pub result: Option<OpResult>,
}

/// The history the linearizability checker sees: operations that reached the client proxy,
/// invoked when they did (an operation cannot take effect before its proxy sends it, so this
/// is both sound and tighter than the arrival time).
pub fn checkable_history(records: &[OpRecord]) -> Vec<Operation> {
    records
        .iter()
        .filter_map(|r| {
            r.dispatch.map(|d| Operation {
                client: r.client,
                op: r.op,
                invoke: d,
                complete: r.complete,
                result: r.result,
                invoke_order: r.dispatch_order,
                complete_order: r.complete_order,
            })
        })
        .collect()
}

/// End-of-run workload counters of one client.
pub struct ClientReport {
    pub index: usize,
    pub issued: u64,
    pub completed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub outstanding: u64,
    /// Of the outstanding, those still waiting in the client's queue (not yet submitted).
    pub queued: u64,
    pub lost: u64,
    pub latency: crate::metrics::Histogram,
}

/// A simulation of protocol `P` over a scenario.
pub struct Engine<'s, P: Protocol> {
    scenario: &'s Scenario,
    proto: P,
    cluster: Cluster,
    is_server: Vec<bool>,
    servers: usize,
    now: Time,
    horizon: Time,
    stop_after: Option<Time>,
    keep_going: bool,
    seq: u64,
    /// Event keys (see [`SLOT_BITS`]).
    queue: queue::EventQueue,
    /// The kinds of queued events, by slot; `free_kinds` lists unused slots.
    kinds: Vec<Kind>,
    free_kinds: Vec<u32>,
    nodes: Vec<Slot<P>>,
    net: Topology,
    packets: Vec<net::Packet<P::Msg>>,
    /// Partitions in force (id, cut); id u32::MAX for scripted ones.
    cuts: Vec<(u32, net::Cut)>,
    planned: Vec<faults::Planned>,
    /// What each random fault hit and changed (node or link, flags), for its undo; `None` if
    /// it changed nothing (so its undo does not cancel someone else's fault).
    bindings: Vec<Option<faults::Binding>>,
    /// The bindings still in force, by (kind, node or link): what a restore releases.
    holding: std::collections::BTreeMap<(usize, usize), Vec<u32>>,
    last_hit: [Option<usize>; 3],
    timeline_rng: Rng,
    flaps: Vec<faults::Flap>,
    fired: Vec<Value>,
    fired_total: u64,
    free_packets: Vec<u32>,
    /// With a trace: each packet slot's identity (`pkt` in the trace, the n-th message sent),
    /// shared by a duplicate, so that viewers pair each receipt with its send.
    pkt_ids: Vec<u64>,
    /// The trace line being written (reused).
    trace_buf: Vec<u8>,
    out: Out<P>,
    /// The outputs of the event's first step, handled and released just before the next
    /// event is taken from the queue: a write that completed at once holds the last reference
    /// to a broadcast's entries, and releasing it right after the step (an atomic decrement,
    /// a barrier behind the step's stores) measured slower.
    spent: Out<P>,
    checker: Checker,
    stats: NetStats,
    leaders: LeaderStats,
    clients: Vec<Option<ClientDriver>>,
    history: Vec<OpRecord>,
    history_capped: bool,
    record_history: bool,
    next_op_id: u64,
    /// Counts dispatches and completions, in the order handled (see [`OpRecord`]).
    op_events: u64,
    tracer: Option<Tracer>,
    storage: Sampler,
    events: u64,
    violation: Option<Violation>,
    series_step: Time,
    seed: u64,
}

impl<'s, P: Protocol> Engine<'s, P> {
    /// Prepares a run. `proto` is the validated protocol instance for `cluster`.
    pub fn new(scenario: &'s Scenario, proto: P, cluster: Cluster, opts: RunOptions) -> Self {
        let seed = opts.seed;
        let horizon = opts.until.unwrap_or(scenario.termination);
        let is_server: Vec<bool> = scenario
            .nodes
            .iter()
            .map(|d| d.kind == NodeKind::Server)
            .collect();
        let nodes = scenario
            .nodes
            .iter()
            .enumerate()
            .map(|(i, d)| Slot {
                kind: d.kind,
                up: false,
                paused: false,
                deferred: Vec::new(),
                deaf: false,
                mute: false,
                clock: faults::Clock::new(d.clock_rate, d.clock_offset),
                started: false,
                epoch: 0,
                state: State::None,
                rng: rng::stream(seed, rng::purpose::PROTOCOL, i as u64),
                storage_rng: rng::stream(seed, rng::purpose::STORAGE, i as u64),
                timers: vec![TimerSlot::default(); P::Timer::ALL.len()],
                disk: P::Disk::default(),
                pending_writes: VecDeque::new(),
                writes_issued: 0,
                writes_done: 0,
                disk_free_at: 0,
                held: VecDeque::new(),
                obs: Observation::down(),
                retired: Vec::new(),
                applied: 0,
                commits: Vec::new(),
                terms: Vec::new(),
                roles: Vec::new(),
                leaders: Vec::new(),
            })
            .collect();
        let clients = scenario
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| {
                w.clone().map(|w| {
                    ClientDriver::new(w, rng::stream(seed, rng::purpose::WORKLOAD, i as u64), i)
                })
            })
            .collect();
        Engine {
            scenario,
            proto,
            cluster,
            servers: is_server.iter().filter(|s| **s).count(),
            checker: Checker::new(is_server.clone()),
            is_server,
            now: 0,
            horizon,
            stop_after: opts.stop_after,
            keep_going: opts.keep_going,
            seq: 0,
            queue: queue::EventQueue::default(),
            kinds: Vec::new(),
            free_kinds: Vec::new(),
            nodes,
            net: Topology::new(scenario, seed),
            packets: Vec::new(),
            cuts: Vec::new(),
            planned: Vec::new(),
            bindings: Vec::new(),
            holding: Default::default(),
            last_hit: [None; 3],
            timeline_rng: rng::stream(seed, rng::purpose::TIMELINE, 2),
            flaps: Vec::new(),
            fired: Vec::new(),
            fired_total: 0,
            free_packets: Vec::new(),
            pkt_ids: Vec::new(),
            trace_buf: Vec::new(),
            out: Out::default(),
            spent: Out::default(),
            stats: NetStats::default(),
            leaders: LeaderStats::new(),
            clients,
            history: Vec::new(),
            history_capped: false,
            record_history: opts.record_history,
            next_op_id: 0,
            op_events: 0,
            tracer: opts.tracer,
            storage: Sampler::new(scenario.storage.clone()),
            events: 0,
            violation: None,
            series_step: (horizon / 2000).max(coracle_core::MS),
            seed,
        }
    }

    /// Queues an event. Inlined into every caller so that `kind` is stored straight from
    /// registers (passed through memory, its narrow fields were re-read wide: a
    /// store-forwarding stall per event).
    #[inline(always)]
    fn push(&mut self, time: Time, kind: Kind) {
        self.seq += 1;
        let slot = match self.free_kinds.pop() {
            Some(s) => {
                self.kinds[s as usize] = kind;
                s
            }
            None => {
                self.kinds.push(kind);
                (self.kinds.len() - 1) as u32
            }
        };
        if self.seq >= 1 << SEQ_BITS || slot >= 1 << SLOT_BITS {
            queue_overflow();
        }
        let key = ((time as u128) << 64) | ((self.seq as u128) << SLOT_BITS) | slot as u128;
        self.queue.push(key);
    }

    /// Runs to the horizon, the end of events, or a violation.
    pub fn run(mut self) -> Outcome {
        // Node ids inside traced messages and writes read as the user's names.
        let _names = self.tracer.is_some().then(|| {
            coracle_core::NodeNames::install(
                self.scenario
                    .nodes
                    .iter()
                    .map(|d| d.name.to_json())
                    .collect(),
            )
        });
        self.plan();
        for i in 0..self.nodes.len() {
            if self.scenario.nodes[i].up {
                self.boot(i);
                if self.violation.is_some() && !self.keep_going {
                    break;
                }
            }
        }
        let mut reason = StopReason::NoEvents;
        if self.violation.is_some() && !self.keep_going {
            reason = StopReason::Violation;
        } else {
            let mut same_instant = 0u64;
            let stall_limit = stall_limit(self.nodes.len());
            while let Some(key) = self.queue.peek() {
                let time = (key >> 64) as Time;
                if time > self.horizon {
                    reason = StopReason::Horizon;
                    break;
                }
                if self.stop_after.is_some_and(|t| time > t) {
                    reason = StopReason::Violation;
                    break;
                }
                self.spent.clear();
                self.queue.pop();
                let slot = (key as u32) & ((1 << SLOT_BITS) - 1);
                let kind = self.kinds[slot as usize];
                self.free_kinds.push(slot);
                if time == self.now {
                    same_instant += 1;
                    if same_instant >= stall_limit {
                        reason = StopReason::Stalled;
                        break;
                    }
                } else {
                    same_instant = 0;
                }
                self.now = time;
                self.events += 1;
                self.dispatch(kind);
                if self.violation.is_some() && !self.keep_going {
                    reason = StopReason::Violation;
                    break;
                }
            }
        }
        let end = match reason {
            StopReason::Horizon => self.horizon,
            _ => self.now,
        };
        if reason != StopReason::Violation && (self.violation.is_none() || self.keep_going) {
            let before = self.violation.is_some();
            self.final_checks(end);
            if self.violation.is_some() && !before {
                reason = StopReason::Violation;
            }
        }
        self.finish(end, reason)
    }

    fn dispatch(&mut self, kind: Kind) {
        match kind {
            Kind::Hop { packet } => self.hop(packet),
            Kind::Deliver { packet, epoch } => self.deliver_held(packet, epoch),
            Kind::Timer { node, timer } => {
                let now = self.now;
                let slot = &mut self.nodes[node as usize];
                let ts = &mut slot.timers[timer as usize];
                if ts.queued != Some(now) {
                    return; // superseded by an earlier wake-up
                }
                ts.queued = None;
                let Some(deadline) = ts.deadline else {
                    return; // cancelled
                };
                if deadline > now {
                    // Re-armed later since this wake-up was queued: sleep again.
                    ts.queued = Some(deadline);
                    self.push(deadline, kind);
                    return;
                }
                if slot.paused {
                    let epoch = slot.epoch;
                    slot.deferred.push(Kind::TimerFire { node, timer, epoch });
                    return;
                }
                ts.deadline = None;
                self.fire(node as usize, timer as usize);
            }
            Kind::TimerFire { node, timer, epoch } => {
                let slot = &mut self.nodes[node as usize];
                if slot.up && slot.epoch == epoch && slot.paused {
                    slot.deferred.push(kind); // paused again at the instant it resumed
                    return;
                }
                let ts = &mut slot.timers[timer as usize];
                if slot.up && slot.epoch == epoch && ts.deadline.is_some_and(|d| d <= self.now) {
                    ts.deadline = None;
                    self.fire(node as usize, timer as usize);
                }
            }
            // A fault may stop a leader from acting or from reaching its followers without
            // any node's state changing.
            Kind::Action { index } => {
                self.action(index as usize);
                self.update_availability();
            }
            Kind::Flap { index } => {
                self.flap(index as usize);
                self.update_availability();
            }
            Kind::Tick { node, epoch } => {
                let slot = &mut self.nodes[node as usize];
                if slot.up && slot.epoch == epoch {
                    if slot.paused {
                        slot.deferred.push(kind);
                        return;
                    }
                    self.tick(node as usize);
                }
            }
            Kind::Disk { node, epoch } => {
                let slot = &mut self.nodes[node as usize];
                if slot.epoch == epoch {
                    if slot.paused {
                        // The write itself completes; the process acts on it when it resumes.
                        slot.deferred.push(kind);
                        return;
                    }
                    self.disk_done(node as usize);
                }
            }
        }
    }

    fn fire(&mut self, node: usize, timer: usize) {
        let t = P::Timer::ALL[timer];
        if self.tracer.is_some() {
            self.trace(node, "timer", json!({ "timer": t.name() }));
        }
        self.step(node, Input::Timer(t));
    }

    // ---------------------------------------------------------------- nodes

    fn boot(&mut self, i: usize) {
        let me = NodeId(i as u32);
        let first = !self.nodes[i].started;
        let slot = &mut self.nodes[i];
        slot.up = true;
        slot.started = true;
        match slot.kind {
            NodeKind::Hub => {
                self.net.set_hub(i, true);
                self.trace(i, if first { "start" } else { "recover" }, json!({}));
                return;
            }
            NodeKind::Server => slot.state = State::Server(self.proto.server(me, &slot.disk)),
            NodeKind::Client => slot.state = State::Client(self.proto.client(me)),
        }
        let input = if first || slot.kind == NodeKind::Client {
            Input::Start
        } else {
            Input::Recover
        };
        self.trace(i, if first { "start" } else { "recover" }, json!({}));
        self.step(i, input);
        if self.nodes[i].kind == NodeKind::Client {
            self.start_workload(i);
        }
    }

    fn crash(&mut self, i: usize) {
        if !self.nodes[i].up {
            return;
        }
        self.drop_deferred(i);
        if self.tracer.is_some() && !self.nodes[i].held.is_empty() {
            let held = &self.nodes[i].held;
            let sends = held
                .iter()
                .filter(|(_, h)| matches!(h, Held::Send { .. }))
                .count();
            let completions = held.len() - sends;
            self.trace(
                i,
                "discard",
                json!({ "sends": sends, "completions": completions }),
            );
        }
        let slot = &mut self.nodes[i];
        slot.up = false;
        slot.epoch = slot.epoch.wrapping_add(1);
        let mut retired = std::mem::take(&mut slot.retired);
        if let Some(n) = slot.node() {
            n.counters(&mut |k, v| add_counter(&mut retired, k, v));
        }
        slot.retired = retired;
        slot.state = State::None;
        slot.pending_writes.clear();
        slot.held.clear();
        slot.writes_done = slot.writes_issued;
        slot.disk_free_at = 0;
        for t in &mut slot.timers {
            t.deadline = None;
        }
        slot.applied = 0;
        let kind = slot.kind;
        if kind == NodeKind::Hub {
            self.net.set_hub(i, false);
        }
        if let Some(c) = &mut self.clients[i] {
            c.lost += c.outstanding();
            c.in_flight = None;
            c.queue.clear();
        }
        self.trace(i, "crash", json!({}));
        if kind == NodeKind::Server {
            self.checker.crashed(i);
        }
        // A down server keeps showing the term it had (on its disk, or lost with a diskless
        // replica until it recovers): the term series and the final table do not drop to 0.
        // Its log length is what its disk holds, as in the results' node table.
        let term = self.nodes[i].obs.term;
        let log_len = P::durable_position(&self.nodes[i].disk).map_or(0, |(_, l)| l);
        self.set_obs(
            i,
            Observation {
                term,
                log_len,
                ..Observation::down()
            },
        );
        self.update_availability();
    }

    /// Steps node `i` with `input` and processes its outputs and observation.
    fn step(&mut self, i: usize, input: Input<P::Msg, P::Timer>) {
        let slot = &mut self.nodes[i];
        let mut ctx = Ctx {
            me: NodeId(i as u32),
            now: slot.clock.local(self.now),
            rng: &mut slot.rng,
            cluster: &self.cluster,
        };
        match &mut slot.state {
            State::Server(s) => s.step(&mut ctx, input, &mut self.out),
            State::Client(c) => c.step(&mut ctx, input, &mut self.out),
            State::None => return,
        }
        self.outputs(i);
        self.observe(i);
    }

    fn outputs(&mut self, i: usize) {
        // Outputs are read in place, field by field; only messages and writes are moved out
        // (a placeholder is left behind). Draining moved every output through a stack
        // temporary written in narrow pieces and read back wide: a store-to-load forwarding
        // stall per output, measured at ~12 % of a 100-server mesh run.
        let mut out = std::mem::take(&mut self.out);
        for o in out.as_mut_slice() {
            match o {
                Output::Send { to, msg } => {
                    // What the network needs to know of a message is read where the protocol
                    // wrote it, and the message is taken as one block (a placeholder stays
                    // behind). Moving the whole output out took the message apart into
                    // registers and put it together again on the stack, in narrow stores
                    // read back wide: a store-to-load forwarding stall on every send.
                    let (to, kind, size) = (*to, msg.kind(), msg.wire_size());
                    let msg = std::mem::take(msg);
                    self.send_output(i, to, msg, kind, size);
                }
                Output::Persist(w) => {
                    if self.tracer.is_some() {
                        self.trace(i, "persist", json!({ "write": w }));
                    }
                    // A write that completes at once is applied where it lies (and dropped with
                    // the buffer); only a write that must wait moves out.
                    if let Some(d) = self.persist_now(i, w) {
                        let placeholder = Output::Applied {
                            index: 0,
                            entry: EntryId::default(),
                        };
                        if let Output::Persist(w) = std::mem::replace(o, placeholder) {
                            self.persist_later(i, d, w);
                        }
                    }
                }
                &mut Output::SetTimer { timer, after } => {
                    if self.tracer.is_some() {
                        self.trace(
                            i,
                            "set_timer",
                            json!({ "timer": timer.name(), "after_ms": time_to_ms(after) }),
                        );
                    }
                    let idx = timer.index();
                    let slot = &mut self.nodes[i];
                    let deadline = self.now.saturating_add(slot.clock.global(after));
                    let ts = &mut slot.timers[idx];
                    ts.deadline = Some(deadline);
                    // Only queue a wake-up if none is queued at or before the deadline: a timer
                    // re-armed again and again (an election timer reset by every heartbeat)
                    // costs no queue operation until its earliest wake-up comes round.
                    if ts.queued.is_none_or(|q| q > deadline) {
                        ts.queued = Some(deadline);
                        self.push(
                            deadline,
                            Kind::Timer {
                                node: i as u32,
                                timer: idx as u16,
                            },
                        );
                    }
                }
                &mut Output::CancelTimer(timer) => {
                    if self.tracer.is_some() {
                        self.trace(i, "cancel_timer", json!({ "timer": timer.name() }));
                    }
                    self.nodes[i].timers[timer.index()].deadline = None;
                }
                &mut Output::Restored { index, entry } => {
                    if self.tracer.is_some() {
                        self.trace(i, "restored", json!({ "index": index, "term": entry.term }));
                    }
                    self.checker.restored(index, entry);
                    self.nodes[i].applied = index;
                }
                &mut Output::Applied { index, entry } => {
                    if self.tracer.is_some() {
                        self.trace(i, "applied", json!({ "index": index, "term": entry.term }));
                    }
                    self.checker.applied(index, entry);
                    let slot = &mut self.nodes[i];
                    slot.applied += 1;
                    // Sampled: at most one point per series step keeps memory flat in time.
                    if slot
                        .commits
                        .last()
                        .is_none_or(|p| self.now >= p.0 + self.series_step)
                    {
                        slot.commits.push((self.now, slot.applied));
                    }
                }
                &mut Output::Complete { id, result } => {
                    let slot = &mut self.nodes[i];
                    if slot.writes_issued > slot.writes_done {
                        slot.held
                            .push_back((slot.writes_issued, Held::Complete { id, result }));
                    } else {
                        self.complete(i, id, result);
                    }
                }
            }
        }
        if self.spent.is_empty() {
            std::mem::swap(&mut self.spent, &mut out);
        } else {
            out.clear();
        }
        self.out = out;
    }

    /// Traces a message `i` sends to `to`: `send` when it enters the network, `held` while it
    /// waits for a disk write.
    fn trace_send(&mut self, i: usize, kind: &'static str, to: NodeId, msg: &P::Msg) {
        let mut details = json!({ "to": self.name(to.index()) });
        if kind == "send" {
            // The identity `transmit` is about to give it: the count of messages sent.
            details["pkt"] = json!(self.stats.sent + self.stats.loopback + 1);
        }
        self.trace_record(i, kind, details, Some(msg));
    }

    /// An `Output::Send`: transmitted now, or held behind the node's unfinished writes.
    #[inline(always)]
    fn send_output(&mut self, i: usize, to: NodeId, msg: P::Msg, kind: &'static str, size: u32) {
        let held = self.nodes[i].writes_issued > self.nodes[i].writes_done;
        if self.tracer.is_some() {
            self.trace_send(i, if held { "held" } else { "send" }, to, &msg);
        }
        let slot = &mut self.nodes[i];
        if held {
            slot.held
                .push_back((slot.writes_issued, Held::Send { to, msg }));
        } else {
            self.transmit_labelled(i, to.index(), msg, kind, size);
        }
    }

    /// Issues write `w` of node `i`: applied to its disk at once when the write takes no time
    /// and none is pending (`None`), or else its delay, for [`Engine::persist_later`].
    #[inline]
    fn persist_now(&mut self, i: usize, w: &P::Write) -> Option<Time> {
        let slot = &mut self.nodes[i];
        // A constant delay (the default, 0) draws nothing from the stream.
        let d = self.storage.sample(&mut slot.storage_rng);
        slot.writes_issued += 1;
        if d == 0 && slot.pending_writes.is_empty() {
            P::apply_write(&mut slot.disk, w);
            slot.writes_done = slot.writes_issued;
            return None;
        }
        Some(d)
    }

    /// Queues write `w` of node `i`, issued with delay `d`, behind the disk's earlier writes.
    fn persist_later(&mut self, i: usize, d: Time, w: P::Write) {
        let now = self.now;
        let slot = &mut self.nodes[i];
        let done = slot.disk_free_at.max(now).saturating_add(d);
        slot.disk_free_at = done;
        slot.pending_writes.push_back((slot.writes_issued, done, w));
        let epoch = slot.epoch;
        self.push(
            done,
            Kind::Disk {
                node: i as u32,
                epoch,
            },
        );
    }

    fn disk_done(&mut self, i: usize) {
        let now = self.now;
        let slot = &mut self.nodes[i];
        while let Some((seq, done, _)) = slot.pending_writes.front() {
            if *done > now {
                break;
            }
            let seq = *seq;
            let (_, _, w) = slot.pending_writes.pop_front().expect("front");
            P::apply_write(&mut slot.disk, &w);
            slot.writes_done = seq;
        }
        let done = slot.writes_done;
        let mut released = Vec::new();
        while slot.held.front().is_some_and(|(b, _)| *b <= done) {
            released.push(slot.held.pop_front().expect("front").1);
        }
        for h in released {
            match h {
                Held::Send { to, msg } => {
                    if self.tracer.is_some() {
                        self.trace_send(i, "send", to, &msg);
                    }
                    self.transmit(i, to.index(), msg)
                }
                Held::Complete { id, result } => self.complete(i, id, result),
            }
        }
    }

    fn observe(&mut self, i: usize) {
        let slot = &self.nodes[i];
        // Static dispatch: this runs after every step.
        let obs = match &slot.state {
            State::Server(s) => s.observe(),
            State::Client(c) => c.observe(),
            State::None => return,
        };
        // Compared in place: copying the previous observation out cost more than the test.
        let prev = &slot.obs;
        let same = obs == *prev;
        let headline = obs.role != prev.role || obs.term != prev.term || obs.leader != prev.leader;
        if headline || self.tracer.is_some() || slot.terms.is_empty() {
            self.set_obs(i, obs);
        } else if !same {
            // Most steps move only the log and commit index: no metric or series records
            // those (copied field by field, see `Observation::assign`).
            self.nodes[i].obs.assign(&obs);
        }
        if !self.is_server[i] {
            return;
        }
        if headline {
            self.update_availability();
        }
        // Nothing a check looks at changed.
        if same && !self.checker.has_pending() {
            return;
        }
        let Engine {
            nodes,
            checker,
            now,
            ..
        } = self;
        let log = |idx: u64| nodes[i].entry(idx);
        let all = |n: usize, idx: u64| nodes[n].entry(idx);
        if let Err(v) = checker.after_step(*now, i, &obs, &log, &all) {
            self.violate(v);
        }
    }

    /// Records a node's new observation: metrics, series, trace.
    fn set_obs(&mut self, i: usize, obs: Observation) {
        let prev = self.nodes[i].obs;
        if prev == obs {
            return;
        }
        let now = self.now;
        if self.is_server[i] {
            if obs.role == Role::Leader && (prev.role != Role::Leader || prev.term != obs.term) {
                self.leaders.elected(now, NodeId(i as u32), obs.term);
            }
            self.leaders.max_term = self.leaders.max_term.max(obs.term);
            let slot = &mut self.nodes[i];
            if prev.term != obs.term || slot.terms.is_empty() {
                slot.terms.push((now, obs.term));
            }
            if prev.role != obs.role || slot.roles.is_empty() {
                slot.roles.push((now, obs.role.level() as u64));
            }
            if prev.leader != obs.leader || slot.leaders.is_empty() {
                slot.leaders
                    .push((now, obs.leader.map_or(0, |l| l.0 as u64 + 1)));
            }
        }
        self.nodes[i].obs = obs;
        if self.tracer.is_some() {
            let leader = obs.leader.map(|l| self.name(l.index()));
            self.trace(
                i,
                "state",
                json!({
                    "role": obs.role.name(), "term": obs.term, "leader": leader,
                    "commit_index": obs.commit_index, "log_len": obs.log_len,
                }),
            );
        }
    }

    fn update_availability(&mut self) {
        let Engine {
            nodes,
            net,
            cuts,
            is_server,
            servers,
            ..
        } = self;
        let nodes = &*nodes;
        let sends = |net: &mut Topology, a: usize, b: usize| {
            !nodes[a].mute
                && !nodes[b].deaf
                && !cuts.iter().any(|(_, c)| c.blocks(a, b))
                && net.next_hop(a, b) != crate::topology::NONE
        };
        let a = cluster_available(
            |i| nodes[i].obs,
            is_server,
            *servers,
            |i| nodes[i].up && !nodes[i].paused,
            |i, j| sends(net, i, j) && sends(net, j, i),
        );
        self.leaders.set_available(self.now, a);
    }

    fn violate(&mut self, mut v: Violation) {
        if self.violation.is_none() {
            v.render(&self.cluster.names);
            if self.tracer.is_some() {
                let nodes: Vec<Value> = v.nodes.iter().map(|n| self.name(n.index())).collect();
                let rec = json!({ "t": time_to_ms(self.now), "kind": "violation", "invariant": v.invariant, "nodes": nodes, "message": v.message });
                if let Some(t) = &mut self.tracer {
                    t.record(&rec);
                }
            }
            self.violation = Some(v);
        }
    }

    // ---------------------------------------------------------------- end

    fn final_checks(&mut self, end: Time) {
        let Engine { nodes, checker, .. } = self;
        let logs = |n: usize, idx: u64| nodes[n].entry(idx);
        let lens = |n: usize| nodes[n].node().map(|x| x.observe().log_len);
        if let Err(v) = checker.finish(end, &logs, &lens) {
            self.violate(v);
        }
    }

    fn finish(mut self, end: Time, reason: StopReason) -> Outcome {
        // The trace's last record says how the run ended (a trace without it was cut short),
        // and viewers end the nodes' spans there rather than at the last event.
        if let Some(t) = &mut self.tracer {
            t.record(&json!({ "t": time_to_ms(end), "kind": "end", "reason": reason.name(), "events": self.events }));
        }
        self.leaders.finish(end);
        let mut counters: Vec<(&'static str, u64)> = Vec::new();
        let mut reports = Vec::with_capacity(self.nodes.len());
        let scenario = self.scenario;
        let id = |n: NodeId| {
            scenario
                .nodes
                .get(n.index())
                .map_or(Value::Null, |d| d.name.to_json())
        };
        for (i, slot) in self.nodes.iter_mut().enumerate() {
            let mut mine = std::mem::take(&mut slot.retired);
            let mut state = Value::Null;
            if let Some(n) = slot.node() {
                n.counters(&mut |k, v| add_counter(&mut mine, k, v));
                state = n.report(&id);
            }
            for (k, v) in &mine {
                add_counter(&mut counters, k, *v);
            }
            if let Some(last) = slot.commits.last()
                && last.0 < end
            {
                slot.commits.push((end, slot.applied));
            }
            reports.push(NodeReport {
                index: i,
                kind: slot.kind,
                up: slot.up,
                obs: slot.obs,
                applied: slot.applied,
                durable: if slot.up {
                    None
                } else {
                    P::durable_position(&slot.disk)
                },
                counters: mine,
                state,
                commits: std::mem::take(&mut slot.commits),
                terms: std::mem::take(&mut slot.terms),
                roles: std::mem::take(&mut slot.roles),
                leaders: std::mem::take(&mut slot.leaders),
            });
        }
        counters.sort_by(|a, b| a.0.cmp(b.0));
        let clients = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref().map(|c| ClientReport {
                    index: i,
                    issued: c.issued,
                    completed: c.completed,
                    failed: c.failed,
                    skipped: c.skipped,
                    outstanding: c.outstanding(),
                    queued: c.queue.len() as u64,
                    latency: c.latency.clone(),
                    lost: c.lost,
                })
            })
            .collect();
        // Packets that a link lost by going down are noticed when they would have arrived
        // (`hop`): those not yet due are counted as dropped now, not as in flight. (Not those
        // that arrived and wait for a paused receiver.)
        let held: std::collections::BTreeSet<u32> = self
            .nodes
            .iter()
            .flat_map(|n| &n.deferred)
            .filter_map(|k| match k {
                Kind::Deliver { packet, .. } => Some(*packet),
                _ => None,
            })
            .collect();
        let doomed: Vec<u32> = (0..self.packets.len() as u32)
            .filter(|&p| {
                let pk = &self.packets[p as usize];
                pk.live && pk.channel != crate::topology::NONE && !held.contains(&p) && {
                    let c = &self.net.channels[pk.channel as usize];
                    !c.up || c.downs != pk.downs
                }
            })
            .collect();
        for p in doomed {
            self.drop_packet(p, DropCause::LinkDown);
        }
        // Packets still on their way; a message to oneself (held by a paused node) is no
        // packet (`packets_sent` leaves it out too).
        let in_flight = self
            .packets
            .iter()
            .filter(|p| p.live && p.from != p.to)
            .count() as u64;
        if let Some(t) = &mut self.tracer {
            t.flush();
        }
        Outcome {
            seed: self.seed,
            end,
            horizon: self.horizon,
            reason,
            events: self.events,
            violation: self.violation,
            net: self.stats,
            leaders: self.leaders,
            in_flight,
            nodes: reports,
            counters,
            history: self.history,
            history_capped: self.history_capped,
            clients,
            route_computations: self.net.recomputations,
            route_repairs: self.net.repairs,
            fired: std::mem::take(&mut self.fired),
            fired_total: self.fired_total,
            tracer: self.tracer,
            committed: self.checker.committed_len(),
        }
    }

    // ---------------------------------------------------------------- trace

    fn name(&self, i: usize) -> Value {
        self.scenario.nodes[i].name.to_json()
    }

    fn trace(&mut self, node: usize, kind: &str, details: Value) {
        self.trace_record(node, kind, details, None);
    }

    /// Writes one trace line: `t`, `node`, `kind`, the fields of `details` in order, then
    /// `msg` if given. The line is written straight into a reused buffer, and the message
    /// serialised straight from its type: building each record as a JSON value first (a map
    /// with hashed keys, the message converted to a value tree) made a traced run about 30
    /// times slower than an untraced one.
    fn trace_record(&mut self, node: usize, kind: &str, details: Value, msg: Option<&P::Msg>) {
        if self.tracer.is_none() {
            return;
        }
        let mut buf = std::mem::take(&mut self.trace_buf);
        buf.clear();
        buf.extend_from_slice(b"{\"t\":");
        let _ = serde_json::to_writer(&mut buf, &time_to_ms(self.now));
        buf.extend_from_slice(b",\"node\":");
        let _ = serde_json::to_writer(&mut buf, &self.scenario.nodes[node].name.to_json());
        buf.extend_from_slice(b",\"kind\":");
        let _ = serde_json::to_writer(&mut buf, kind);
        if let Value::Object(d) = &details {
            for (k, v) in d {
                buf.push(b',');
                let _ = serde_json::to_writer(&mut buf, k);
                buf.push(b':');
                let _ = serde_json::to_writer(&mut buf, v);
            }
        }
        if let Some(m) = msg {
            buf.extend_from_slice(b",\"msg\":");
            let _ = serde_json::to_writer(&mut buf, m);
        }
        buf.push(b'}');
        if let Some(t) = &mut self.tracer {
            t.record_line(&buf);
        }
        self.trace_buf = buf;
    }
}
