//! The deterministic discrete-event engine.
//!
//! One priority queue of events ordered by (time, insertion sequence). Events are small `Copy`
//! values; a packet's payload lives in a slab and the event carries its slot. Timers are
//! cancelled lazily: each (node, timer name) has a generation counter, setting or cancelling
//! bumps it, and a firing event whose generation is stale is skipped. A crash bumps the node's
//! epoch, which invalidates its pending disk completions and workload ticks the same way.
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

use crate::checks::{Checker, Violation};
use crate::config::spec::NodeKind;
use crate::dist::Delay;
use crate::metrics::{LeaderStats, NetStats, Series, cluster_available};
use crate::scenario::{Action, Arrival, Scenario};
use crate::topology::{NONE, Topology};
use crate::trace::Tracer;
use crate::workload::ClientDriver;
use coracle_check::Operation;
use coracle_core::{
    Cluster, Ctx, Input, Message, Node, NodeId, Observation, OpResult, Out, Output, Protocol, Rng,
    Role, Time, TimerName, rng, time_to_ms,
};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

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
}

impl StopReason {
    /// Name in results.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Horizon => "horizon",
            StopReason::NoEvents => "no_events",
            StopReason::Violation => "violation",
        }
    }
}

#[derive(Copy, Clone, Debug)]
enum Kind {
    /// A packet reaches the far end of its current channel (or, for loopback, its sender).
    Hop {
        packet: u32,
    },
    Timer {
        node: u32,
        timer: u16,
        generation: u32,
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
}

#[derive(Copy, Clone, Debug)]
struct Event {
    time: Time,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.time == o.time && self.seq == o.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    /// Reversed, so the max-heap pops the earliest event; ties by insertion order.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.time, o.seq).cmp(&(self.time, self.seq))
    }
}

struct Packet<M> {
    from: u32,
    to: u32,
    /// The channel the packet is on, or NONE for loopback.
    channel: u32,
    /// The channel's down counter when the packet entered it.
    downs: u32,
    hops: u8,
    sent_at: Time,
    msg: Option<M>,
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
    started: bool,
    epoch: u32,
    state: State<P>,
    rng: Rng,
    storage_rng: Rng,
    timers: Vec<u32>,
    disk: P::Disk,
    pending_writes: VecDeque<(u64, Time, P::Write)>,
    writes_issued: u64,
    writes_done: u64,
    disk_free_at: Time,
    held: VecDeque<(u64, Held<P>)>,
    obs: Observation,
    /// Counters of previous incarnations (a crash discards the node value that held them).
    retired: Vec<(&'static str, u64)>,
    /// Term in which this node, as leader, committed an entry of its own term.
    established: Option<u64>,
    applied: u64,
    commits: Series,
    terms: Series,
    roles: Series,
}

impl<P: Protocol> Slot<P> {
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
    pub clients: Vec<ClientReport>,
    pub route_computations: u64,
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
    pub counters: Vec<(&'static str, u64)>,
    pub state: Value,
    pub commits: Series,
    pub terms: Series,
    pub roles: Series,
}

/// One client operation as the workload saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRecord {
    pub client: NodeId,
    pub op: coracle_core::Op,
    /// When the workload issued it (latency is measured from here).
    pub arrival: Time,
    /// When it was handed to the client proxy (`None`: never; it cannot have taken effect).
    pub dispatch: Option<Time>,
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
    pub lost: u64,
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
    seq: u64,
    queue: BinaryHeap<Event>,
    nodes: Vec<Slot<P>>,
    net: Topology,
    packets: Vec<Packet<P::Msg>>,
    free_packets: Vec<u32>,
    out: Out<P>,
    checker: Checker,
    stats: NetStats,
    leaders: LeaderStats,
    clients: Vec<Option<ClientDriver>>,
    history: Vec<OpRecord>,
    tracer: Option<Tracer>,
    storage: Delay,
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
                started: false,
                epoch: 0,
                state: State::None,
                rng: rng::stream(seed, rng::purpose::PROTOCOL, i as u64),
                storage_rng: rng::stream(seed, rng::purpose::STORAGE, i as u64),
                timers: vec![0; P::Timer::ALL.len()],
                disk: P::Disk::default(),
                pending_writes: VecDeque::new(),
                writes_issued: 0,
                writes_done: 0,
                disk_free_at: 0,
                held: VecDeque::new(),
                obs: Observation::down(),
                retired: Vec::new(),
                established: None,
                applied: 0,
                commits: Vec::new(),
                terms: Vec::new(),
                roles: Vec::new(),
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
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            net: Topology::new(scenario, seed),
            packets: Vec::new(),
            free_packets: Vec::new(),
            out: Out::default(),
            stats: NetStats::default(),
            leaders: LeaderStats::new(),
            clients,
            history: Vec::new(),
            tracer: opts.tracer,
            storage: scenario.storage.clone(),
            events: 0,
            violation: None,
            series_step: (horizon / 2000).max(coracle_core::MS),
            seed,
        }
    }

    #[inline]
    fn push(&mut self, time: Time, kind: Kind) {
        self.seq += 1;
        self.queue.push(Event {
            time,
            seq: self.seq,
            kind,
        });
    }

    /// Runs to the horizon, the end of events, or a violation.
    pub fn run(mut self) -> Outcome {
        for (i, a) in self.scenario.timeline.iter().enumerate() {
            self.push(a.at, Kind::Action { index: i as u32 });
        }
        for i in 0..self.nodes.len() {
            if self.scenario.nodes[i].up {
                self.boot(i);
                if self.violation.is_some() {
                    break;
                }
            }
        }
        let mut reason = StopReason::NoEvents;
        if self.violation.is_some() {
            reason = StopReason::Violation;
        } else {
            while let Some(ev) = self.queue.peek() {
                if ev.time > self.horizon {
                    reason = StopReason::Horizon;
                    break;
                }
                if self.stop_after.is_some_and(|t| ev.time > t) {
                    reason = StopReason::Violation;
                    break;
                }
                let ev = self.queue.pop().expect("peeked");
                self.now = ev.time;
                self.events += 1;
                self.dispatch(ev.kind);
                if self.violation.is_some() {
                    reason = StopReason::Violation;
                    break;
                }
            }
        }
        let end = match reason {
            StopReason::Horizon => self.horizon,
            _ => self.now,
        };
        if self.violation.is_none() && reason != StopReason::Violation {
            self.final_checks(end);
            if self.violation.is_some() {
                reason = StopReason::Violation;
            }
        }
        self.finish(end, reason)
    }

    fn dispatch(&mut self, kind: Kind) {
        match kind {
            Kind::Hop { packet } => self.hop(packet),
            Kind::Timer {
                node,
                timer,
                generation,
            } => {
                let slot = &self.nodes[node as usize];
                if slot.up && slot.timers[timer as usize] == generation {
                    let t = P::Timer::ALL[timer as usize];
                    if self.tracer.is_some() {
                        self.trace(node as usize, "timer", json!({ "timer": t.name() }));
                    }
                    self.step(node as usize, Input::Timer(t));
                }
            }
            Kind::Action { index } => self.action(index as usize),
            Kind::Tick { node, epoch } => {
                let slot = &self.nodes[node as usize];
                if slot.up && slot.epoch == epoch {
                    self.tick(node as usize);
                }
            }
            Kind::Disk { node, epoch } => {
                if self.nodes[node as usize].epoch == epoch {
                    self.disk_done(node as usize);
                }
            }
        }
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
        let slot = &mut self.nodes[i];
        if !slot.up {
            return;
        }
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
        for g in &mut slot.timers {
            *g = g.wrapping_add(1);
        }
        slot.applied = 0;
        slot.established = None;
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
        self.set_obs(i, Observation::down());
        self.update_availability();
    }

    /// Steps node `i` with `input` and processes its outputs and observation.
    fn step(&mut self, i: usize, input: Input<P::Msg, P::Timer>) {
        let slot = &mut self.nodes[i];
        let mut ctx = Ctx {
            me: NodeId(i as u32),
            now: self.now,
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
        let mut out = std::mem::take(&mut self.out);
        for o in out.drain() {
            match o {
                Output::Send { to, msg } => {
                    if self.tracer.is_some() {
                        self.trace(
                            i,
                            "send",
                            json!({ "to": self.name(to.index()), "msg": msg }),
                        );
                    }
                    let slot = &mut self.nodes[i];
                    if slot.writes_issued > slot.writes_done {
                        slot.held
                            .push_back((slot.writes_issued, Held::Send { to, msg }));
                    } else {
                        self.transmit(i, to.index(), msg);
                    }
                }
                Output::SetTimer { timer, after } => {
                    if self.tracer.is_some() {
                        self.trace(
                            i,
                            "set_timer",
                            json!({ "timer": timer.name(), "after_ms": time_to_ms(after) }),
                        );
                    }
                    let idx = timer.index();
                    let g = &mut self.nodes[i].timers[idx];
                    *g = g.wrapping_add(1);
                    let generation = *g;
                    self.push(
                        self.now.saturating_add(after),
                        Kind::Timer {
                            node: i as u32,
                            timer: idx as u16,
                            generation,
                        },
                    );
                }
                Output::CancelTimer(timer) => {
                    if self.tracer.is_some() {
                        self.trace(i, "cancel_timer", json!({ "timer": timer.name() }));
                    }
                    let g = &mut self.nodes[i].timers[timer.index()];
                    *g = g.wrapping_add(1);
                }
                Output::Persist(w) => {
                    if self.tracer.is_some() {
                        self.trace(i, "persist", json!({ "write": w }));
                    }
                    self.persist(i, w);
                }
                Output::Applied { index, entry } => {
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
                Output::Complete { id, result } => {
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
        self.out = out;
    }

    fn persist(&mut self, i: usize, w: P::Write) {
        let now = self.now;
        let slot = &mut self.nodes[i];
        let d = if self.storage.is_zero() {
            0
        } else {
            self.storage.sample(&mut slot.storage_rng)
        };
        slot.writes_issued += 1;
        if d == 0 && slot.pending_writes.is_empty() {
            P::apply_write(&mut slot.disk, &w);
            slot.writes_done = slot.writes_issued;
            return;
        }
        let done = slot.disk_free_at.max(now) + d;
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
                Held::Send { to, msg } => self.transmit(i, to.index(), msg),
                Held::Complete { id, result } => self.complete(i, id, result),
            }
        }
    }

    fn observe(&mut self, i: usize) {
        let slot = &self.nodes[i];
        let Some(node) = slot.node() else { return };
        let obs = node.observe();
        if self.is_server[i] {
            let Engine {
                nodes,
                checker,
                now,
                ..
            } = self;
            let log = |idx: u64| nodes[i].node().and_then(|n| n.entry(idx));
            let all = |n: usize, idx: u64| nodes[n].node().and_then(|x| x.entry(idx));
            if let Err(v) = checker.after_step(*now, i, obs, &log, &all) {
                self.violate(v);
            }
            // A leader that commits an entry of its own term is established.
            if obs.role == Role::Leader
                && obs.commit_index > 0
                && self.nodes[i].established != Some(obs.term)
            {
                let e = self.nodes[i].node().and_then(|n| n.entry(obs.commit_index));
                if e.is_some_and(|e| e.term == obs.term) {
                    self.nodes[i].established = Some(obs.term);
                    self.set_obs(i, obs);
                    self.update_availability();
                    return;
                }
            }
        }
        if obs != self.nodes[i].obs {
            let prev = self.nodes[i].obs;
            self.set_obs(i, obs);
            if self.is_server[i] && (prev.role != obs.role || prev.term != obs.term) {
                self.update_availability();
            }
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
                self.leaders.elected(now, NodeId(i as u32));
            }
            self.leaders.max_term = self.leaders.max_term.max(obs.term);
            let slot = &mut self.nodes[i];
            if prev.term != obs.term || slot.terms.is_empty() {
                slot.terms.push((now, obs.term));
            }
            if prev.role != obs.role || slot.roles.is_empty() {
                slot.roles.push((now, obs.role.level() as u64));
            }
            if prev.role != Role::Leader || obs.role != Role::Leader || prev.term != obs.term {
                slot.established = slot
                    .established
                    .filter(|t| obs.role == Role::Leader && *t == obs.term);
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
        let obs: Vec<Observation> = self.nodes.iter().map(|s| s.obs).collect();
        let est: Vec<Option<u64>> = self.nodes.iter().map(|s| s.established).collect();
        let a = cluster_available(&obs, &self.is_server, &est, self.servers);
        self.leaders.set_available(self.now, a);
    }

    fn violate(&mut self, mut v: Violation) {
        if self.violation.is_none() {
            v.render(&self.cluster.names);
            if self.tracer.is_some() {
                let nodes: Vec<Value> = v.nodes.iter().map(|n| self.name(n.index())).collect();
                let rec = json!({ "t": time_to_ms(self.now), "kind": "violation", "invariant": v.invariant, "nodes": nodes, "message": v.message });
                if let Some(t) = &mut self.tracer {
                    let _ = t.record(&rec);
                }
            }
            self.violation = Some(v);
        }
    }

    // ---------------------------------------------------------------- network

    fn alloc_packet(&mut self, p: Packet<P::Msg>) -> u32 {
        match self.free_packets.pop() {
            Some(idx) => {
                self.packets[idx as usize] = p;
                idx
            }
            None => {
                self.packets.push(p);
                (self.packets.len() - 1) as u32
            }
        }
    }

    fn free_packet(&mut self, idx: u32) -> Option<P::Msg> {
        self.free_packets.push(idx);
        self.packets[idx as usize].msg.take()
    }

    fn transmit(&mut self, from: usize, to: usize, msg: P::Msg) {
        self.stats.count_kind(msg.kind());
        if from == to {
            self.stats.loopback += 1;
            let p = self.alloc_packet(Packet {
                from: from as u32,
                to: to as u32,
                channel: NONE,
                downs: 0,
                hops: 0,
                sent_at: self.now,
                msg: Some(msg),
            });
            self.push(self.now, Kind::Hop { packet: p });
            return;
        }
        self.stats.sent += 1;
        let ch = self.net.next_hop(from, to);
        if ch == NONE {
            self.stats.drops.no_route += 1;
            if self.tracer.is_some() {
                self.trace(
                    from,
                    "drop",
                    json!({ "cause": "no_route", "to": self.name(to), "msg": msg }),
                );
            }
            return;
        }
        let p = self.alloc_packet(Packet {
            from: from as u32,
            to: to as u32,
            channel: NONE,
            downs: 0,
            hops: 0,
            sent_at: self.now,
            msg: Some(msg),
        });
        self.enter(p, ch);
    }

    /// Puts packet `p` on channel `ch`: loss, then latency.
    fn enter(&mut self, p: u32, ch: u32) {
        let c = &mut self.net.channels[ch as usize];
        if c.loss > 0.0 && rand::RngExt::random_bool(&mut c.rng, c.loss) {
            self.stats.drops.loss += 1;
            self.drop_packet(p, "loss");
            return;
        }
        let lat = c.latency.sample(&mut c.rng);
        let downs = c.downs;
        let pk = &mut self.packets[p as usize];
        pk.channel = ch;
        pk.downs = downs;
        pk.hops += 1;
        self.push(self.now.saturating_add(lat), Kind::Hop { packet: p });
    }

    fn drop_packet(&mut self, p: u32, cause: &'static str) {
        if self.tracer.is_some() {
            let pk = &self.packets[p as usize];
            let (from, to) = (pk.from as usize, pk.to as usize);
            let msg = serde_json::to_value(pk.msg.as_ref()).unwrap_or(Value::Null);
            let at = if pk.channel == NONE {
                from
            } else {
                self.net.channels[pk.channel as usize].from as usize
            };
            self.trace(
                at,
                "drop",
                json!({ "cause": cause, "from": self.name(from), "to": self.name(to), "msg": msg }),
            );
        }
        self.free_packet(p);
    }

    fn hop(&mut self, p: u32) {
        let pk = &self.packets[p as usize];
        let (to, ch) = (pk.to as usize, pk.channel);
        let at = if ch == NONE {
            to
        } else {
            let c = &self.net.channels[ch as usize];
            if !c.up || c.downs != pk.downs {
                self.stats.drops.link_down += 1;
                self.drop_packet(p, "link_down");
                return;
            }
            c.to as usize
        };
        if at != to {
            // At a hub on the way.
            if !self.net.hub_up(at) {
                self.stats.drops.node_down += 1;
                self.drop_packet(p, "node_down");
                return;
            }
            let next = self.net.next_hop(at, to);
            if next == NONE || self.packets[p as usize].hops >= MAX_HOPS {
                self.stats.drops.no_route += 1;
                self.drop_packet(p, "no_route");
                return;
            }
            self.enter(p, next);
            return;
        }
        if !self.nodes[to].up {
            self.stats.drops.node_down += 1;
            self.drop_packet(p, "node_down");
            return;
        }
        let (from, sent_at) = (
            self.packets[p as usize].from,
            self.packets[p as usize].sent_at,
        );
        if ch != NONE {
            self.stats.delivered += 1;
            self.stats.latency.record(self.now - sent_at);
        }
        let msg = self.free_packet(p).expect("packet in flight has a message");
        if self.tracer.is_some() {
            self.trace(
                to,
                "recv",
                json!({ "from": self.name(from as usize), "msg": msg }),
            );
        }
        self.step(
            to,
            Input::Packet {
                from: NodeId(from),
                msg,
            },
        );
    }

    // ---------------------------------------------------------------- timeline

    fn action(&mut self, index: usize) {
        let a = self.scenario.timeline[index].action.clone();
        if self.tracer.is_some() {
            let rec = match &a {
                Action::Crash(n) => json!({ "action": "crash", "node": self.name(*n) }),
                Action::Recover(n) => json!({ "action": "recover", "node": self.name(*n) }),
                Action::Link {
                    link,
                    which,
                    up,
                    latency,
                    loss,
                } => json!({
                    "action": "link", "link": self.scenario.links[*link].id.to_json(), "direction": which,
                    "up": up, "latency": latency, "loss": loss,
                }),
            };
            if let Some(t) = &mut self.tracer {
                let mut rec = rec;
                rec["t"] = json!(time_to_ms(self.now));
                rec["kind"] = json!("action");
                let _ = t.record(&rec);
            }
        }
        match a {
            Action::Crash(n) => self.crash(n),
            Action::Recover(n) => {
                if !self.nodes[n].up {
                    self.boot(n);
                }
            }
            Action::Link {
                link,
                which,
                up,
                latency,
                loss,
            } => {
                use crate::config::spec::Which;
                let chans: &[usize] = match which {
                    Which::Forward => &[2 * link],
                    Which::Reverse => &[2 * link + 1],
                    Which::Both => &[2 * link, 2 * link + 1],
                };
                for &ch in chans {
                    if let Some(up) = up {
                        self.net.set_channel_up(ch, up);
                    }
                    if latency.is_some() || loss.is_some() {
                        self.net.change_channel(ch, latency.as_ref(), loss);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- workload

    fn start_workload(&mut self, i: usize) {
        let now = self.now;
        let epoch = self.nodes[i].epoch;
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        let at = c.spec.start.max(now);
        self.push(
            at,
            Kind::Tick {
                node: i as u32,
                epoch,
            },
        );
    }

    fn tick(&mut self, i: usize) {
        let now = self.now;
        let epoch = self.nodes[i].epoch;
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        if !c.active(now) {
            return;
        }
        let issue = match c.spec.arrival {
            Arrival::Closed { .. } => c.outstanding() == 0,
            Arrival::Open { .. } => true,
            Arrival::Interval { .. } => {
                if c.outstanding() > 0 {
                    c.skipped += 1;
                    false
                } else {
                    true
                }
            }
        };
        if let Some(gap) = c.next_gap() {
            self.push(
                now.saturating_add(gap),
                Kind::Tick {
                    node: i as u32,
                    epoch,
                },
            );
        }
        if issue {
            let c = self.clients[i].as_mut().expect("client");
            let op = c.next_op();
            let id = self.history.len() as u64;
            c.queue.push_back(id);
            self.history.push(OpRecord {
                client: NodeId(i as u32),
                op,
                arrival: now,
                dispatch: None,
                complete: None,
                result: None,
            });
            self.dispatch_next(i);
        }
    }

    /// Hands the client's next queued operation to its proxy, if none is in flight. The proxy
    /// sees one operation at a time; later arrivals (open loops) wait here, so an operation
    /// still queued at the end, or when its client crashes, provably never reached a server.
    fn dispatch_next(&mut self, i: usize) {
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        if c.in_flight.is_some() {
            return;
        }
        let Some(id) = c.queue.pop_front() else {
            return;
        };
        c.in_flight = Some(id);
        let h = &mut self.history[id as usize];
        h.dispatch = Some(self.now);
        let op = h.op;
        if self.tracer.is_some() {
            self.trace(i, "request", json!({ "id": id, "op": op }));
        }
        self.step(i, Input::Request { id, op });
    }

    fn complete(&mut self, i: usize, id: u64, result: Option<OpResult>) {
        let now = self.now;
        let epoch = self.nodes[i].epoch;
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        if c.in_flight != Some(id) {
            return; // not this client's current operation: ignore
        }
        c.in_flight = None;
        let h = &mut self.history[id as usize];
        let op = h.op;
        if let Some(r) = result {
            h.complete = Some(now);
            h.result = Some(r);
            c.completed += 1;
            c.observe(&op, &r);
        } else {
            c.failed += 1;
        }
        let closed = match c.spec.arrival {
            Arrival::Closed { think } => Some(think),
            _ => None,
        };
        if self.tracer.is_some() {
            self.trace(i, "complete", json!({ "id": id, "result": result }));
        }
        if let Some(think) = closed {
            self.push(
                now.saturating_add(think),
                Kind::Tick {
                    node: i as u32,
                    epoch,
                },
            );
        }
        self.dispatch_next(i);
    }

    // ---------------------------------------------------------------- end

    fn final_checks(&mut self, end: Time) {
        let Engine { nodes, checker, .. } = self;
        let logs = |n: usize, idx: u64| nodes[n].node().and_then(|x| x.entry(idx));
        let lens = |n: usize| nodes[n].node().map(|x| x.observe().log_len);
        if let Err(v) = checker.finish(end, &logs, &lens) {
            self.violate(v);
        }
    }

    fn finish(mut self, end: Time, reason: StopReason) -> Outcome {
        self.leaders.finish(end);
        let mut counters: Vec<(&'static str, u64)> = Vec::new();
        let mut reports = Vec::with_capacity(self.nodes.len());
        for (i, slot) in self.nodes.iter_mut().enumerate() {
            let mut mine = std::mem::take(&mut slot.retired);
            let mut state = Value::Null;
            if let Some(n) = slot.node() {
                n.counters(&mut |k, v| add_counter(&mut mine, k, v));
                state = n.report();
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
                counters: mine,
                state,
                commits: std::mem::take(&mut slot.commits),
                terms: std::mem::take(&mut slot.terms),
                roles: std::mem::take(&mut slot.roles),
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
                    lost: c.lost,
                })
            })
            .collect();
        let in_flight = (self.packets.len() - self.free_packets.len()) as u64;
        if let Some(t) = &mut self.tracer {
            let _ = t.flush();
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
            clients,
            route_computations: self.net.recomputations,
            tracer: self.tracer,
            committed: self.checker.committed_len(),
        }
    }

    // ---------------------------------------------------------------- trace

    fn name(&self, i: usize) -> Value {
        self.scenario.nodes[i].name.to_json()
    }

    fn trace(&mut self, node: usize, kind: &str, mut details: Value) {
        if self.tracer.is_none() {
            return;
        }
        let mut rec = json!({ "t": time_to_ms(self.now), "node": self.name(node), "kind": kind });
        if let (Value::Object(r), Value::Object(d)) = (&mut rec, &mut details) {
            r.append(d);
        }
        if let Some(t) = &mut self.tracer {
            let _ = t.record(&rec);
        }
    }
}
