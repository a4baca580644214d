//! A small deterministic driver for any protocol's unit tests, written against the
//! [`coracle_core::Protocol`] contract only.
//!
//! * One event queue ordered by (time, sequence number); seeded latency (uniform), loss and
//!   duplication; directed link blocking and a message filter.
//! * Crashes and recoveries with the disk-image and barrier semantics of `Output::Persist`:
//!   writes of one node complete in FIFO order after `storage_latency`; every `Send` and
//!   `Complete` issued after a write is held until it completed; a crash drops unfinished
//!   writes and held outputs, and `recover` rebuilds the server from its disk image alone.
//! * Messages a node sends to itself are delivered locally (no loss, no latency).
//! * Client proxies fed by `submit` or by a closed-loop [`Workload`].
//! * Safety checks after every server step, using only `observe()`, `entry()` and `Applied`
//!   outputs: one leader per term, committed entries never change, leader completeness (a new
//!   leader holds every entry committed in an earlier term), applied entries are committed and
//!   applied in order once per incarnation, and applied entries agree across servers.
//!   Violations are recorded, not panicked on, so tests can assert that they happen.
//! * Snapshots: an `Output::Restored { index, entry }` moves the node's applied prefix to
//!   `index` (its next `Applied` must be `index + 1`); it must not exceed the node's commit
//!   index and its entry must match what was committed and applied at `index`. Entries below
//!   a node's `observe().compacted` (for which `entry()` is `None`) are skipped by every check.
//! * [`Solo`]: one server stepped by hand, for rule-level tests, and helpers that pick its
//!   outputs apart.
//!
//! Not every helper is used by every protocol's tests.
#![allow(dead_code)]

use coracle_core::rng::{purpose, stream};
use coracle_core::{
    Cluster, Ctx, EntryId, Input, MS, Message, Node, NodeId, Observation, Op, OpResult, Out,
    Output, Protocol, Rng, Role, Time, TimerName,
};
use rand::RngExt;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

pub enum NodeBox<P: Protocol> {
    Server(Box<P::Server>),
    Client(Box<P::Client>),
}

enum Held<M> {
    Send(usize, M),
    Complete(u64, Option<OpResult>),
}

pub struct Slot<P: Protocol> {
    pub node: Option<NodeBox<P>>,
    pub up: bool,
    pub is_server: bool,
    rng: Rng,
    gens: Vec<u64>,
    pub disk: P::Disk,
    issued: u64,
    done: u64,
    writes: VecDeque<P::Write>,
    last_write_at: Time,
    held: VecDeque<(u64, Held<P::Msg>)>,
    incarnation: u64,
}

enum Ev<M, T> {
    Deliver {
        from: usize,
        to: usize,
        msg: M,
    },
    Timer {
        node: usize,
        timer: T,
        generation: u64,
        inc: u64,
    },
    WriteDone {
        node: usize,
        inc: u64,
    },
    Request {
        client: usize,
        id: u64,
        op: Op,
    },
}

struct Queued<M, T> {
    time: Time,
    seq: u64,
    ev: Ev<M, T>,
}
impl<M, T> PartialEq for Queued<M, T> {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl<M, T> Eq for Queued<M, T> {}
impl<M, T> PartialOrd for Queued<M, T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<M, T> Ord for Queued<M, T> {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on (time, seq).
        (o.time, o.seq).cmp(&(self.time, self.seq))
    }
}

/// A completed client operation.
#[derive(Clone, Debug)]
pub struct Completion {
    pub client: usize,
    pub id: u64,
    pub op: Op,
    pub result: Option<OpResult>,
    pub time: Time,
}

/// Closed-loop clients: each runs `ops` operations, `gap` apart (every written value is unique
/// per client and operation).
#[derive(Clone, Debug)]
pub struct Workload {
    pub ops: u64,
    pub gap: Time,
    pub keys: u32,
    pub mix: Mix,
}

/// Which operations a closed-loop client issues; `k` counts them from 1.
#[derive(Copy, Clone, Debug)]
pub enum Mix {
    /// A Get when k % 3 == 0, else a Put (the mix Raft's scenario tests were written against).
    GetPut,
    /// A Get when k % 4 == 0, a Cas on an absent value when k % 4 == 1, else a Put.
    GetCasPut,
}

/// Filter on sends: `(now, from, to, msg) -> deliver?`.
pub type Filter<M> = Box<dyn FnMut(Time, usize, usize, &M) -> bool>;

/// A committed entry as first observed, with the term of the node that reported it.
#[derive(Copy, Clone, Debug)]
pub struct Committed {
    pub entry: EntryId,
    pub term: u64,
    /// False while the entry is known to be committed only through a snapshot that covers it
    /// (its identity is then unknown and `entry` is a placeholder).
    pub known: bool,
}

pub struct Sim<P: Protocol> {
    pub proto: P,
    pub cluster: Cluster,
    pub n_servers: usize,
    pub now: Time,
    seq: u64,
    queue: BinaryHeap<Queued<P::Msg, P::Timer>>,
    pub nodes: Vec<Slot<P>>,
    net_rng: Rng,
    /// One-way latency, uniform in `[lo, hi]`.
    pub latency: (Time, Time),
    pub loss: f64,
    /// Probability that a delivered message is delivered twice (with independent latencies).
    pub dup: f64,
    /// Latency of every durable write (writes of one node complete in FIFO order).
    pub storage_latency: Time,
    blocked: Vec<Vec<bool>>,
    pub filter: Option<Filter<P::Msg>>,
    /// Keep every sent message in `sent`.
    pub record: bool,
    pub sent: Vec<(Time, usize, usize, P::Msg)>,
    pub kinds: BTreeMap<&'static str, u64>,
    /// Every `Applied` output of each node, across incarnations.
    pub applied: Vec<Vec<(u64, EntryId)>>,
    /// Every `Restored` output of each node, across incarnations: (number of `Applied`
    /// outputs of the node before it, index, entry).
    pub restored: Vec<Vec<(usize, u64, EntryId)>>,
    pub completions: Vec<Completion>,
    /// Every client operation submitted: id -> (client, op, submission time).
    pub submitted: BTreeMap<u64, (usize, Op, Time)>,
    pub violations: Vec<String>,
    /// Also check, as the simulator's `committed_entries_durable` does, that the last committed
    /// entry is held by enough servers that a majority can hold it, whenever a server restarts,
    /// becomes leader or its log shrinks. Servers that are down, or rebuilding their state
    /// (role `Recovering`, as VRR's diskless replicas after a crash), count as holding it: they
    /// are failed, not wrong. Off by default.
    pub check_majority_held: bool,
    pub workload: Option<Workload>,
    issued_ops: Vec<u64>,
    next_op_id: u64,
    // Checker state.
    /// The node seen leading each term.
    pub leaders: BTreeMap<u64, usize>,
    /// The committed prefix, as first observed.
    pub committed: Vec<Committed>,
    prev: Vec<Observation>,
    applied_global: Vec<Option<EntryId>>,
    applied_upto: Vec<u64>,
    /// `Applied` (false) and `Restored` (true) outputs of the current step.
    step_applied: Vec<(u64, EntryId, bool)>,
}

impl<P: Protocol> Sim<P> {
    /// `servers` servers (nodes `0..servers`) and `clients` client proxies after them, all with
    /// empty disks.
    pub fn new(cfg: P::Config, servers: usize, clients: usize, seed: u64) -> Self {
        Self::with_disks(cfg, vec![P::Disk::default(); servers], clients, seed)
    }

    /// A cluster whose servers start from the given disk images.
    pub fn with_disks(cfg: P::Config, disks: Vec<P::Disk>, clients: usize, seed: u64) -> Self {
        let n = disks.len();
        let total = n + clients;
        let cluster = cluster(n, clients);
        let proto = P::new(cfg, &cluster).expect("valid config");
        let images = disks
            .into_iter()
            .chain(std::iter::repeat_n(P::Disk::default(), clients));
        let nodes = images
            .enumerate()
            .map(|(i, disk)| Slot {
                node: None,
                up: false,
                is_server: i < n,
                rng: stream(seed, purpose::PROTOCOL, i as u64),
                gens: vec![0; P::Timer::ALL.len()],
                disk,
                issued: 0,
                done: 0,
                writes: VecDeque::new(),
                last_write_at: 0,
                held: VecDeque::new(),
                incarnation: 0,
            })
            .collect();
        Sim {
            proto,
            cluster,
            n_servers: n,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            net_rng: stream(seed, purpose::LINK, 0),
            latency: (MS, 2 * MS),
            loss: 0.0,
            dup: 0.0,
            storage_latency: 0,
            blocked: vec![vec![false; total]; total],
            filter: None,
            record: false,
            sent: Vec::new(),
            kinds: BTreeMap::new(),
            applied: vec![Vec::new(); total],
            restored: vec![Vec::new(); total],
            completions: Vec::new(),
            submitted: BTreeMap::new(),
            violations: Vec::new(),
            check_majority_held: false,
            workload: None,
            issued_ops: vec![0; total],
            next_op_id: 1,
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            prev: vec![Observation::down(); total],
            applied_global: Vec::new(),
            applied_upto: vec![0; total],
            step_applied: Vec::new(),
        }
    }

    // ----- control -------------------------------------------------------------------------

    /// Boots node `i` (server from its disk image, or a fresh client proxy) with
    /// `Input::Start`.
    pub fn start(&mut self, i: usize) {
        let me = NodeId(i as u32);
        let node = if self.nodes[i].is_server {
            NodeBox::Server(Box::new(self.proto.server(me, &self.nodes[i].disk)))
        } else {
            NodeBox::Client(Box::new(self.proto.client(me)))
        };
        self.nodes[i].node = Some(node);
        self.nodes[i].up = true;
        self.step(i, Input::Start);
        if !self.nodes[i].is_server {
            self.kick(i);
        }
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Crashes node `i`: volatile state, unfinished writes and held outputs are lost.
    pub fn crash(&mut self, i: usize) {
        let s = &mut self.nodes[i];
        s.up = false;
        s.node = None;
        s.incarnation += 1;
        s.writes.clear();
        s.held.clear();
        s.issued = 0;
        s.done = 0;
        s.last_write_at = self.now;
        self.applied_upto[i] = 0;
        self.prev[i] = Observation::down();
    }

    /// Restarts server `i` from its disk image with `Input::Recover`.
    pub fn recover(&mut self, i: usize) {
        assert!(!self.nodes[i].up, "node {i} is up");
        let me = NodeId(i as u32);
        let node = self.proto.server(me, &self.nodes[i].disk);
        self.nodes[i].node = Some(NodeBox::Server(Box::new(node)));
        self.nodes[i].up = true;
        self.step(i, Input::Recover);
    }

    pub fn block_dir(&mut self, from: usize, to: usize, blocked: bool) {
        self.blocked[from][to] = blocked;
    }
    pub fn block(&mut self, a: usize, b: usize) {
        self.block_dir(a, b, true);
        self.block_dir(b, a, true);
    }
    /// Cuts node `i` off from every other node (clients included).
    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.block(i, j);
            }
        }
    }
    /// Blocks every link between `side` and the other nodes (clients included).
    pub fn partition(&mut self, side: &[usize]) {
        for &a in side {
            for b in 0..self.nodes.len() {
                if !side.contains(&b) {
                    self.block(a, b);
                }
            }
        }
    }
    pub fn heal(&mut self) {
        for row in &mut self.blocked {
            row.fill(false);
        }
    }

    /// Fires `timer` at node `i` now (a forced timeout).
    pub fn fire(&mut self, i: usize, timer: P::Timer) {
        self.step(i, Input::Timer(timer));
    }

    /// Delivers `msg` from `from` to `to` now, bypassing the network.
    pub fn inject(&mut self, from: usize, to: usize, msg: P::Msg) {
        if self.nodes[to].up {
            self.step(
                to,
                Input::Packet {
                    from: NodeId(from as u32),
                    msg,
                },
            );
        }
    }

    /// Submits `op` to client `c` now; returns the operation id.
    pub fn submit(&mut self, c: usize, op: Op) -> u64 {
        let id = self.next_op_id;
        self.next_op_id += 1;
        self.submitted.insert(id, (c, op, self.now));
        self.step(c, Input::Request { id, op });
        id
    }

    /// The completion of operation `id`, if it completed.
    pub fn completion(&self, id: u64) -> Option<&Completion> {
        self.completions.iter().find(|c| c.id == id)
    }

    fn kick(&mut self, c: usize) {
        let Some(w) = self.workload.clone() else {
            return;
        };
        if self.issued_ops[c] >= w.ops {
            return;
        }
        self.issued_ops[c] += 1;
        let k = self.issued_ops[c];
        let value = (c as u64) << 32 | k;
        let op = match (w.mix, k % 3, k % 4) {
            (Mix::GetPut, 0, _) | (Mix::GetCasPut, _, 0) => Op::Get {
                key: (k as u32) % w.keys,
            },
            (Mix::GetCasPut, _, 1) => Op::Cas {
                key: (k as u32 * 3 + c as u32) % w.keys,
                expect: None,
                new: value,
            },
            _ => Op::Put {
                key: (k as u32 * 7 + c as u32) % w.keys,
                value,
            },
        };
        let id = self.next_op_id;
        self.next_op_id += 1;
        let t = self.now + w.gap;
        self.push(t, Ev::Request { client: c, id, op });
    }

    pub fn run_until(&mut self, t: Time) {
        while let Some(q) = self.queue.peek() {
            if q.time > t {
                break;
            }
            let q = self.queue.pop().expect("peeked");
            self.now = q.time;
            self.process(q.ev);
        }
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, d: Time) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Runs in steps of `step` until `cond` holds (true) or `limit` passed (false).
    pub fn run_until_cond(
        &mut self,
        limit: Time,
        step: Time,
        mut cond: impl FnMut(&Self) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.run_for(step);
        }
        cond(self)
    }

    // ----- inspection ----------------------------------------------------------------------

    pub fn server(&self, i: usize) -> &P::Server {
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Server(s)) if self.nodes[i].up => s,
            _ => panic!("node {i} is not a running server"),
        }
    }

    pub fn client(&self, i: usize) -> &P::Client {
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Client(c)) if self.nodes[i].up => c,
            _ => panic!("node {i} is not a running client"),
        }
    }

    pub fn obs(&self, i: usize) -> Observation {
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Server(s)) if self.nodes[i].up => s.observe(),
            Some(NodeBox::Client(c)) if self.nodes[i].up => c.observe(),
            _ => Observation::down(),
        }
    }

    /// The entry at `index` of server `i`'s log (None if down).
    pub fn entry(&self, i: usize, index: u64) -> Option<EntryId> {
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Server(s)) if self.nodes[i].up => s.entry(index),
            _ => None,
        }
    }

    /// The leader with the highest term among running servers.
    pub fn leader(&self) -> Option<usize> {
        (0..self.n_servers)
            .filter(|&i| self.obs(i).role == Role::Leader)
            .max_by_key(|&i| self.obs(i).term)
    }

    pub fn counter(&self, i: usize, name: &str) -> u64 {
        let mut v = 0;
        let mut f = |k: &'static str, x: u64| {
            if k == name {
                v = x
            }
        };
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Server(s)) => s.counters(&mut f),
            Some(NodeBox::Client(c)) => c.counters(&mut f),
            None => {}
        }
        v
    }

    pub fn total(&self, name: &str) -> u64 {
        (0..self.nodes.len()).map(|i| self.counter(i, name)).sum()
    }

    /// Messages of kind `k` sent so far (loopback included, before loss).
    pub fn kind(&self, k: &str) -> u64 {
        self.kinds.get(k).copied().unwrap_or(0)
    }

    /// Mean time from submission to completion of the completed operations.
    pub fn mean_latency(&self) -> f64 {
        let l: Vec<f64> = self
            .completions
            .iter()
            .filter_map(|c| {
                self.submitted
                    .get(&c.id)
                    .map(|&(_, _, s)| (c.time - s) as f64)
            })
            .collect();
        l.iter().sum::<f64>() / l.len().max(1) as f64
    }

    /// Completions of client `c`, in completion order.
    pub fn completions_of(&self, c: usize) -> Vec<&Completion> {
        self.completions.iter().filter(|x| x.client == c).collect()
    }

    pub fn assert_safe(&self) {
        assert!(
            self.violations.is_empty(),
            "safety violations:\n{}",
            self.violations.join("\n")
        );
    }

    /// What server `i` applied, by index, over all its incarnations (`None`: covered by a
    /// snapshot it restored and never applied one by one). Panics if an incarnation applied
    /// (or restored) a different entry at an index than an earlier one, or skipped an index
    /// that no snapshot covers.
    pub fn applied_sequence(&self, i: usize) -> Vec<Option<EntryId>> {
        fn put(v: &mut Vec<Option<EntryId>>, i: usize, idx: u64, e: EntryId, what: &str) {
            let k = idx as usize - 1;
            if v.len() <= k {
                v.resize(k + 1, None);
            }
            match v[k] {
                Some(x) => assert_eq!(x, e, "server {i} {what} a different entry at {idx}"),
                None => v[k] = Some(e),
            }
        }
        let mut v: Vec<Option<EntryId>> = Vec::new();
        let mut restores = self.restored[i].iter().peekable();
        for (pos, &(idx, e)) in self.applied[i].iter().enumerate() {
            while let Some(&&(_, r, re)) = restores.peek().filter(|x| x.0 <= pos) {
                restores.next();
                put(&mut v, i, r, re, "restored");
            }
            assert!(idx as usize <= v.len() + 1, "server {i} skipped to {idx}");
            put(&mut v, i, idx, e, "re-applied");
        }
        for &(_, r, re) in restores {
            put(&mut v, i, r, re, "restored");
        }
        v
    }

    /// Every server's applied sequence (over all its incarnations) agrees with every other's
    /// wherever both applied (or restored a snapshot ending at the same index), and
    /// re-applications after a restart repeat the same entries.
    pub fn assert_applied_prefixes(&self) {
        let seqs: Vec<_> = (0..self.n_servers)
            .map(|i| self.applied_sequence(i))
            .collect();
        for a in &seqs {
            for b in &seqs {
                for (x, y) in a.iter().zip(b) {
                    if let (Some(x), Some(y)) = (x, y) {
                        assert_eq!(x, y, "applied sequences diverge");
                    }
                }
            }
        }
    }

    /// Log matching over the running servers: two logs with an entry of the same term at the
    /// same index agree on every entry up to it (from the highest snapshot index on, below
    /// which some logs cannot be read entry by entry).
    pub fn assert_log_matching(&self) {
        let mut seen: HashMap<(u64, u64), (u64, usize)> = HashMap::new();
        let start = (0..self.n_servers)
            .map(|n| self.obs(n).compacted)
            .max()
            .unwrap_or(0)
            .max(1);
        for n in 0..self.n_servers {
            let len = self.obs(n).log_len;
            let mut h = 0u64;
            for i in start..=len {
                let Some(e) = self.entry(n, i) else { break };
                h = coracle_core::rng::mix64(h ^ coracle_core::rng::mix64(e.term ^ e.digest));
                match seen.get(&(i, e.term)) {
                    Some(&(other_h, other)) => assert_eq!(
                        other_h, h,
                        "log matching: servers {other} and {n} have an entry of term {} at {i} \
                         but differ at or before it",
                        e.term
                    ),
                    None => {
                        seen.insert((i, e.term), (h, n));
                    }
                }
            }
        }
    }

    // ----- engine --------------------------------------------------------------------------

    fn push(&mut self, time: Time, ev: Ev<P::Msg, P::Timer>) {
        self.seq += 1;
        self.queue.push(Queued {
            time,
            seq: self.seq,
            ev,
        });
    }

    fn process(&mut self, ev: Ev<P::Msg, P::Timer>) {
        match ev {
            Ev::Deliver { from, to, msg } => {
                if self.nodes[to].up {
                    self.step(
                        to,
                        Input::Packet {
                            from: NodeId(from as u32),
                            msg,
                        },
                    );
                }
            }
            Ev::Timer {
                node,
                timer,
                generation,
                inc,
            } => {
                let s = &self.nodes[node];
                if s.up && s.incarnation == inc && s.gens[timer.index()] == generation {
                    self.step(node, Input::Timer(timer));
                }
            }
            Ev::WriteDone { node, inc } => {
                if self.nodes[node].incarnation == inc {
                    let s = &mut self.nodes[node];
                    let w = s.writes.pop_front().expect("write in flight");
                    P::apply_write(&mut s.disk, &w);
                    s.done += 1;
                    self.release(node);
                }
            }
            Ev::Request { client, id, op } => {
                if self.nodes[client].up {
                    self.submitted.insert(id, (client, op, self.now));
                    self.step(client, Input::Request { id, op });
                }
            }
        }
    }

    fn release(&mut self, i: usize) {
        while let Some((barrier, _)) = self.nodes[i].held.front() {
            if *barrier > self.nodes[i].done {
                break;
            }
            let (_, h) = self.nodes[i].held.pop_front().expect("front");
            self.emit(i, h);
        }
    }

    fn emit(&mut self, i: usize, h: Held<P::Msg>) {
        match h {
            Held::Send(to, msg) => self.transmit(i, to, msg),
            Held::Complete(id, result) => {
                let op = self
                    .submitted
                    .get(&id)
                    .map(|&(_, op, _)| op)
                    .expect("completion of a submitted operation");
                self.completions.push(Completion {
                    client: i,
                    id,
                    op,
                    result,
                    time: self.now,
                });
                self.kick(i);
            }
        }
    }

    fn transmit(&mut self, from: usize, to: usize, msg: P::Msg) {
        *self.kinds.entry(msg.kind()).or_default() += 1;
        if self.record {
            self.sent.push((self.now, from, to, msg.clone()));
        }
        if from == to {
            // Loopback: delivered locally, as the simulator does (no loss, no latency).
            self.push(self.now, Ev::Deliver { from, to, msg });
            return;
        }
        if to >= self.nodes.len() || self.blocked[from][to] {
            return;
        }
        let now = self.now;
        if self
            .filter
            .as_mut()
            .is_some_and(|f| !f(now, from, to, &msg))
        {
            return;
        }
        if self.loss > 0.0 && self.net_rng.random_bool(self.loss) {
            return;
        }
        let copies = if self.dup > 0.0 && self.net_rng.random_bool(self.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.latency;
            let lat = if hi > lo {
                self.net_rng.random_range(lo..=hi)
            } else {
                lo
            };
            let t = self.now + lat;
            self.push(
                t,
                Ev::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
    }

    pub fn step(&mut self, i: usize, input: Input<P::Msg, P::Timer>) {
        if !self.nodes[i].up {
            return;
        }
        let mut out = Out::<P>::default();
        {
            let slot = &mut self.nodes[i];
            let mut ctx = Ctx {
                me: NodeId(i as u32),
                now: self.now,
                rng: &mut slot.rng,
                cluster: &self.cluster,
            };
            match slot.node.as_mut() {
                Some(NodeBox::Server(s)) => s.step(&mut ctx, input, &mut out),
                Some(NodeBox::Client(c)) => c.step(&mut ctx, input, &mut out),
                None => return,
            }
        }
        let outputs: Vec<_> = out.drain().collect();
        for o in outputs {
            self.output(i, o);
        }
        if self.nodes[i].is_server {
            self.check(i);
        }
    }

    fn output(&mut self, i: usize, o: Output<P::Msg, P::Timer, P::Write>) {
        match o {
            Output::Send { to, msg } => self.hold_or_emit(i, Held::Send(to.index(), msg)),
            Output::Complete { id, result } => self.hold_or_emit(i, Held::Complete(id, result)),
            Output::Persist(w) => {
                let s = &mut self.nodes[i];
                s.issued += 1;
                if self.storage_latency == 0 {
                    P::apply_write(&mut s.disk, &w);
                    s.done += 1;
                } else {
                    s.writes.push_back(w);
                    let t = s.last_write_at.max(self.now) + self.storage_latency;
                    s.last_write_at = t;
                    let inc = s.incarnation;
                    self.push(t, Ev::WriteDone { node: i, inc });
                }
            }
            Output::SetTimer { timer, after } => {
                let s = &mut self.nodes[i];
                s.gens[timer.index()] += 1;
                let (generation, inc) = (s.gens[timer.index()], s.incarnation);
                self.push(
                    self.now + after,
                    Ev::Timer {
                        node: i,
                        timer,
                        generation,
                        inc,
                    },
                );
            }
            Output::CancelTimer(timer) => self.nodes[i].gens[timer.index()] += 1,
            Output::Applied { index, entry } => self.step_applied.push((index, entry, false)),
            Output::Restored { index, entry } => self.step_applied.push((index, entry, true)),
        }
    }

    fn hold_or_emit(&mut self, i: usize, h: Held<P::Msg>) {
        let s = &mut self.nodes[i];
        if s.done < s.issued {
            let b = s.issued;
            s.held.push_back((b, h));
        } else {
            self.emit(i, h);
        }
    }

    fn violation(&mut self, what: String) {
        let t = self.now as f64 / MS as f64;
        self.violations.push(format!("t={t:.3}ms {what}"));
    }

    /// The safety checks after server `i` stepped (see the module documentation).
    fn check(&mut self, i: usize) {
        let applied = std::mem::take(&mut self.step_applied);
        let Some(NodeBox::Server(s)) = self.nodes[i].node.as_ref() else {
            return;
        };
        let o = s.observe();
        let prev = self.prev[i];
        let mut found = Vec::new();
        // One leader per term; leader completeness when a node becomes leader.
        let became_leader =
            o.role == Role::Leader && (prev.role != Role::Leader || prev.term != o.term);
        if became_leader {
            match self.leaders.get(&o.term) {
                Some(&l) if l != i => {
                    found.push(format!("two leaders in term {}: {l} and {i}", o.term))
                }
                _ => {
                    self.leaders.insert(o.term, i);
                }
            }
            for (k, c) in self.committed.iter().enumerate() {
                // Entries below the leader's snapshot cannot be seen one by one.
                if !c.known || (k as u64 + 1) < o.compacted {
                    continue;
                }
                if c.term < o.term && s.entry(k as u64 + 1) != Some(c.entry) {
                    found.push(format!(
                        "leader completeness: leader {i} of term {} lacks entry {} committed in \
                         term {} ({:?})",
                        o.term,
                        k + 1,
                        c.term,
                        c.entry
                    ));
                    break;
                }
            }
        }
        // Committed entries never change.
        for idx in prev.commit_index + 1..=o.commit_index {
            let k = idx as usize - 1;
            match (self.committed.get(k).copied(), s.entry(idx)) {
                (Some(c), Some(e)) if !c.known => {
                    self.committed[k] = Committed {
                        entry: e,
                        term: c.term,
                        known: true,
                    }
                }
                (Some(c), Some(e)) if c.entry != e => found.push(format!(
                    "committed entry {idx} changed: was {:?}, node {i} commits {e:?}",
                    c.entry
                )),
                (None, e) if k == self.committed.len() && (e.is_some() || idx < o.compacted) => {
                    self.committed.push(Committed {
                        entry: e.unwrap_or_default(),
                        term: o.term,
                        known: e.is_some(),
                    })
                }
                (_, None) if idx < o.compacted => {} // folded into its snapshot
                (_, None) => found.push(format!("node {i} commits {idx} beyond its log")),
                _ => {}
            }
        }
        // Applied entries: in order, committed, and the same everywhere. A restored snapshot
        // moves the applied prefix to its index.
        for &(index, entry, restored) in &applied {
            if restored {
                self.restored[i].push((self.applied[i].len(), index, entry));
            } else {
                self.applied[i].push((index, entry));
            }
            if !restored && index != self.applied_upto[i] + 1 {
                found.push(format!(
                    "node {i} applied index {index} after {}",
                    self.applied_upto[i]
                ));
            }
            self.applied_upto[i] = index;
            if index > o.commit_index {
                found.push(format!(
                    "node {i} applied index {index} beyond its commit index {}",
                    o.commit_index
                ));
            }
            if let Some(c) = self.committed.get(index as usize - 1)
                && c.known
                && c.entry != entry
            {
                found.push(format!(
                    "node {i} applied {entry:?} at {index}, but {:?} is committed there",
                    c.entry
                ));
            }
            let k = index as usize;
            if self.applied_global.len() <= k {
                self.applied_global.resize(k + 1, None);
            }
            match self.applied_global[k] {
                Some(e) if e != entry => found.push(format!(
                    "state machine safety: node {i} applied {entry:?} at {index}, another node \
                     applied {e:?}"
                )),
                Some(_) => {}
                None => self.applied_global[k] = Some(entry),
            }
        }
        if self.check_majority_held
            && (prev.role == Role::Down || became_leader || o.log_len < prev.log_len)
            && let Some(last) = self.committed.last().filter(|c| c.known)
        {
            let index = self.committed.len() as u64;
            // A server whose snapshot covers the index holds it too.
            let missing = (0..self.n_servers)
                .filter(|&j| {
                    self.nodes[j].up
                        && self.obs(j).role != Role::Recovering
                        && self.obs(j).compacted < index
                        && self.entry(j, index) != Some(last.entry)
                })
                .count();
            if self.n_servers - missing < self.n_servers / 2 + 1 {
                found.push(format!(
                    "committed entry {index} is held by too few servers ({missing} of {} running \
                     servers lack it)",
                    self.n_servers
                ));
            }
        }
        self.prev[i] = o;
        self.step_applied = applied;
        self.step_applied.clear();
        for f in found {
            self.violation(f);
        }
    }
}

/// Servers `0..servers` (named s1, s2, ...) and client proxies after them (c1, c2, ...).
pub fn cluster(servers: usize, clients: usize) -> Cluster {
    let total = servers + clients;
    Cluster {
        servers: (0..servers as u32).map(NodeId).collect(),
        clients: (servers as u32..total as u32).map(NodeId).collect(),
        names: (0..total)
            .map(|i| {
                if i < servers {
                    format!("s{}", i + 1)
                } else {
                    format!("c{}", i - servers + 1)
                }
            })
            .collect(),
    }
}

// ----- one server stepped by hand ----------------------------------------------------------

/// The outputs of one step.
pub type Outs<P> =
    Vec<Output<<P as Protocol>::Msg, <P as Protocol>::Timer, <P as Protocol>::Write>>;

/// One server stepped by hand, with a disk image kept up to date as if every write completed
/// at once.
pub struct Solo<P: Protocol> {
    pub proto: P,
    pub cluster: Cluster,
    pub node: P::Server,
    rng: Rng,
    pub now: Time,
    pub disk: P::Disk,
    pub me: NodeId,
}

impl<P: Protocol> Solo<P> {
    /// Server `me` of an `n`-server cluster (plus one client, node `n`), booted from `disk` with
    /// `Input::Start`.
    pub fn new(cfg: P::Config, n: usize, me: usize, disk: P::Disk) -> (Self, Outs<P>) {
        let cluster = cluster(n, 1);
        let proto = P::new(cfg, &cluster).expect("valid config");
        let me = NodeId(me as u32);
        let node = proto.server(me, &disk);
        let mut s = Solo {
            proto,
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

    pub fn step(&mut self, input: Input<P::Msg, P::Timer>) -> Outs<P> {
        let mut out = Out::<P>::default();
        let mut ctx = Ctx {
            me: self.me,
            now: self.now,
            rng: &mut self.rng,
            cluster: &self.cluster,
        };
        self.node.step(&mut ctx, input, &mut out);
        let outs: Outs<P> = out.drain().collect();
        for o in &outs {
            if let Output::Persist(w) = o {
                P::apply_write(&mut self.disk, w);
            }
        }
        outs
    }

    pub fn recv(&mut self, from: usize, msg: P::Msg) -> Outs<P> {
        self.step(Input::Packet {
            from: NodeId(from as u32),
            msg,
        })
    }

    pub fn fire(&mut self, t: P::Timer) -> Outs<P> {
        self.step(Input::Timer(t))
    }

    /// Crash and restart from the disk image.
    pub fn restart(&mut self) -> Outs<P> {
        self.node = self.proto.server(self.me, &self.disk);
        self.step(Input::Recover)
    }

    /// The client's node index.
    pub fn client(&self) -> usize {
        self.cluster.servers.len()
    }
}

/// The messages sent, with their destinations.
pub fn sends<M: Clone, T, W>(outs: &[Output<M, T, W>]) -> Vec<(usize, M)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((to.index(), msg.clone())),
            _ => None,
        })
        .collect()
}

/// The messages sent to `to`.
pub fn sent_to<M: Clone, T, W>(outs: &[Output<M, T, W>], to: usize) -> Vec<M> {
    sends(outs)
        .into_iter()
        .filter(|(t, _)| *t == to)
        .map(|(_, m)| m)
        .collect()
}

/// The timers set, with their delays.
pub fn timers<M, T: Copy, W>(outs: &[Output<M, T, W>]) -> Vec<(T, Time)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SetTimer { timer, after } => Some((*timer, *after)),
            _ => None,
        })
        .collect()
}

pub fn writes<M, T, W: Clone>(outs: &[Output<M, T, W>]) -> Vec<W> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

/// The indexes applied.
pub fn applied<M, T, W>(outs: &[Output<M, T, W>]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Applied { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The driver's own tests: its checks must catch Raft's teaching switches, which break
    //! safety on purpose, and must stay quiet for correct Raft.

    use super::*;
    use crate::raft::{Raft, RaftConfig, UnsafeSwitch};
    use coracle_core::rng::{purpose, stream};

    fn chaos(c: RaftConfig, seed: u64) -> Sim<Raft> {
        chaos_with(c, seed, false)
    }

    fn chaos_with(c: RaftConfig, seed: u64, check_majority_held: bool) -> Sim<Raft> {
        let mut sim = Sim::<Raft>::new(c, 5, 2, seed);
        sim.check_majority_held = check_majority_held;
        sim.loss = 0.02;
        sim.latency = (MS / 2, 4 * MS);
        sim.storage_latency = MS / 2;
        sim.workload = Some(Workload {
            ops: 10_000,
            gap: 8 * MS,
            keys: 5,
            mix: Mix::GetCasPut,
        });
        sim.start_all();
        let mut rng = stream(seed, purpose::TIMELINE, 0);
        for _ in 0..60 {
            sim.run_for(100 * MS);
            let i = rng.random_range(0..5);
            match rng.random_range(0..10) {
                0 | 1 => {
                    if sim.nodes[i].up {
                        sim.crash(i);
                    } else {
                        sim.recover(i);
                    }
                }
                2 => sim.isolate(i),
                3 | 4 => sim.heal(),
                _ => {}
            }
        }
        sim
    }

    #[test]
    fn the_checks_catch_raft_teaching_switches_and_pass_correct_raft() {
        let mut completed = 0;
        for seed in 0..20 {
            let sim = chaos(RaftConfig::default(), seed);
            sim.assert_safe();
            sim.assert_applied_prefixes();
            sim.assert_log_matching();
            completed += sim.completions.len();
        }
        assert!(completed > 1000, "{completed}");
        for (u, seeds) in [
            (UnsafeSwitch::ReverseApply, 10),
            (UnsafeSwitch::NoLogCheck, 40),
        ] {
            let c = RaftConfig {
                unsafe_switches: vec![u],
                ..RaftConfig::default()
            };
            let caught = (0..seeds)
                .filter(|&seed| !chaos(c.clone(), seed).violations.is_empty())
                .count();
            assert!(caught > 0, "{u:?} never caught");
        }
    }

    #[test]
    fn the_checks_follow_raft_snapshots() {
        // Snapshots every few entries: restored state machines, compacted log prefixes and
        // InstallSnapshot must neither hide violations nor raise false ones.
        let (mut restores, mut completed) = (0, 0);
        for seed in 0..20 {
            let c = RaftConfig {
                snapshot_threshold: Some(3 + seed % 4),
                ..RaftConfig::default()
            };
            let sim = chaos_with(c, seed, true);
            sim.assert_safe();
            sim.assert_applied_prefixes();
            sim.assert_log_matching();
            restores += sim.restored.iter().map(Vec::len).sum::<usize>();
            completed += sim.completions.len();
        }
        assert!(restores > 50, "{restores}");
        assert!(completed > 1000, "{completed}");
        // The teaching switches are still caught with snapshots on.
        for (u, seeds) in [
            (UnsafeSwitch::ReverseApply, 10),
            (UnsafeSwitch::NoLogCheck, 40),
        ] {
            let c = RaftConfig {
                unsafe_switches: vec![u],
                snapshot_threshold: Some(5),
                ..RaftConfig::default()
            };
            let caught = (0..seeds)
                .filter(|&seed| !chaos(c.clone(), seed).violations.is_empty())
                .count();
            assert!(caught > 0, "{u:?} never caught with snapshots");
        }
    }

    #[test]
    fn writes_hold_later_sends_until_done_and_a_crash_drops_them() {
        let mut sim = Sim::<Raft>::new(RaftConfig::default(), 3, 0, 1);
        sim.storage_latency = 5 * MS;
        sim.start_all();
        let rv = crate::raft::RaftMsg::RequestVote {
            term: 1,
            last_log_index: 0,
            last_log_term: 0,
        };
        sim.inject(0, 1, rv);
        assert_eq!(
            sim.kind("request_vote_response"),
            0,
            "held behind the write"
        );
        sim.run_for(6 * MS);
        assert_eq!(
            sim.kind("request_vote_response"),
            1,
            "released when it completed"
        );
        let rv2 = crate::raft::RaftMsg::RequestVote {
            term: 2,
            last_log_index: 0,
            last_log_term: 0,
        };
        sim.inject(0, 2, rv2);
        sim.run_for(MS);
        sim.crash(2);
        sim.run_for(10 * MS);
        assert_eq!(
            sim.kind("request_vote_response"),
            1,
            "dropped with the crash"
        );
        assert_eq!(sim.nodes[2].disk.term, 0, "the unfinished write is lost");
    }
}
