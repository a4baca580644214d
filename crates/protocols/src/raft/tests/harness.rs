//! A tiny deterministic driver for Raft's unit tests: one event queue ordered by (time, sequence
//! number), seeded latency and loss, directed link blocking, message filters, crashes and
//! recoveries with the disk-image and barrier semantics of `Output::Persist`, and safety checks
//! after every step (one leader per term, committed entries never change, leader completeness,
//! ordered apply, state machine safety). Violations are recorded, not panicked on, so tests of
//! the unsafe switches can assert that they happen.
//!
//! Snapshots: an `Output::Restored { index, entry }` moves the node's applied prefix to `index`
//! (the next `Applied` must be `index + 1`), must not exceed the node's commit index after the
//! step, and its entry is compared with what was committed and applied at `index`; entries it
//! covers are skipped by the checks (`entry()` returns `None` below `observe().compacted`).

use crate::raft::{
    Raft, RaftClient, RaftConfig, RaftDisk, RaftMsg, RaftServer, RaftTimer, RaftWrite,
};
use coracle_core::rng::{purpose, stream};
use coracle_core::{
    Cluster, Ctx, EntryId, Input, MS, Message, Node, NodeId, Observation, Op, OpResult, Out,
    Output, Protocol, Rng, Role, Time, TimerName,
};
use rand::RngExt;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

pub enum NodeBox {
    Server(Box<RaftServer>),
    Client(Box<RaftClient>),
}

enum Held {
    Send(usize, RaftMsg),
    Complete(u64, Option<OpResult>),
}

pub struct Slot {
    pub node: Option<NodeBox>,
    pub up: bool,
    pub is_server: bool,
    rng: Rng,
    gens: [u64; 4],
    pub disk: RaftDisk,
    issued: u64,
    done: u64,
    writes: VecDeque<RaftWrite>,
    last_write_at: Time,
    held: VecDeque<(u64, Held)>,
    incarnation: u64,
}

enum Ev {
    Deliver {
        from: usize,
        to: usize,
        msg: RaftMsg,
    },
    Timer {
        node: usize,
        timer: RaftTimer,
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

struct Queued {
    time: Time,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
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
    pub result: Option<OpResult>,
    pub time: Time,
}

/// Closed-loop clients: each runs `ops` operations, `gap` apart.
#[derive(Clone, Debug)]
pub struct Workload {
    pub ops: u64,
    pub gap: Time,
    pub keys: u32,
}

/// Filter on sends: `(now, from, to, msg) -> deliver?`.
pub type Filter = Box<dyn FnMut(Time, usize, usize, &RaftMsg) -> bool>;

pub struct Sim {
    pub raft: Raft,
    pub cluster: Cluster,
    pub n_servers: usize,
    pub now: Time,
    seq: u64,
    queue: BinaryHeap<Queued>,
    pub nodes: Vec<Slot>,
    net_rng: Rng,
    /// One-way latency, uniform in `[lo, hi]`.
    pub latency: (Time, Time),
    pub loss: f64,
    /// Probability that a delivered message is delivered twice (with independent latencies).
    pub dup: f64,
    /// Latency of every durable write (writes of one node complete in FIFO order).
    pub storage_latency: Time,
    blocked: Vec<Vec<bool>>,
    pub filter: Option<Filter>,
    /// Keep every sent message in `sent`.
    pub record: bool,
    pub sent: Vec<(Time, usize, usize, RaftMsg)>,
    pub kinds: BTreeMap<&'static str, u64>,
    /// Every `Applied` output of each node, across incarnations.
    pub applied: Vec<Vec<(u64, EntryId)>>,
    /// Every `Restored` output of each node, across incarnations: (number of `Applied`
    /// outputs of the node before it, index, entry).
    pub restored: Vec<Vec<(usize, u64, EntryId)>>,
    pub completions: Vec<Completion>,
    /// Submission time of every client operation, by id.
    pub submitted: BTreeMap<u64, Time>,
    pub violations: Vec<String>,
    pub workload: Option<Workload>,
    issued_ops: Vec<u64>,
    next_op_id: u64,
    // Checker state.
    pub leaders: BTreeMap<u64, usize>,
    /// The committed prefix as first observed (`None`: folded into a snapshot before any
    /// check saw it, until another node shows it).
    pub committed: Vec<Option<EntryId>>,
    applied_global: Vec<Option<EntryId>>,
    applied_upto: Vec<u64>,
    commit_checked: Vec<u64>,
    /// Snapshot indexes restored during the current step (checked against the commit index).
    step_restored: Vec<u64>,
}

impl Sim {
    pub fn new(cfg: RaftConfig, servers: usize, clients: usize, seed: u64) -> Sim {
        Sim::with_disks(cfg, vec![RaftDisk::default(); servers], clients, seed)
    }

    /// A cluster whose servers start from the given disk images.
    pub fn with_disks(cfg: RaftConfig, disks: Vec<RaftDisk>, clients: usize, seed: u64) -> Sim {
        let n = disks.len();
        let total = n + clients;
        let cluster = Cluster {
            servers: (0..n as u32).map(NodeId).collect(),
            clients: (n as u32..total as u32).map(NodeId).collect(),
            names: (0..total)
                .map(|i| {
                    if i < n {
                        format!("s{}", i + 1)
                    } else {
                        format!("c{}", i - n + 1)
                    }
                })
                .collect(),
        };
        let raft = Raft::new(cfg, &cluster).expect("valid config");
        let mut nodes = Vec::new();
        let images = disks
            .into_iter()
            .chain(std::iter::repeat_n(RaftDisk::default(), clients));
        for (i, disk) in images.enumerate() {
            nodes.push(Slot {
                node: None,
                up: false,
                is_server: i < n,
                rng: stream(seed, purpose::PROTOCOL, i as u64),
                gens: [0; 4],
                disk,
                issued: 0,
                done: 0,
                writes: VecDeque::new(),
                last_write_at: 0,
                held: VecDeque::new(),
                incarnation: 0,
            });
        }
        Sim {
            raft,
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
            workload: None,
            issued_ops: vec![0; total],
            next_op_id: 1,
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            applied_global: Vec::new(),
            applied_upto: vec![0; total],
            commit_checked: vec![0; total],
            step_restored: Vec::new(),
        }
    }

    // ----- control -------------------------------------------------------------------------

    /// Boots node `i` (server from its disk image, or a client proxy) with `Input::Start`.
    pub fn start(&mut self, i: usize) {
        let me = NodeId(i as u32);
        let node = if self.nodes[i].is_server {
            NodeBox::Server(Box::new(self.raft.server(me, &self.nodes[i].disk)))
        } else {
            NodeBox::Client(Box::new(self.raft.client(me)))
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

    /// Crashes node `i`: volatile state, unfinished writes and held messages are lost.
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
        self.commit_checked[i] = 0;
    }

    /// Restarts server `i` from its disk image with `Input::Recover`.
    pub fn recover(&mut self, i: usize) {
        assert!(!self.nodes[i].up);
        let me = NodeId(i as u32);
        let node = self.raft.server(me, &self.nodes[i].disk);
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
    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.block(i, j);
            }
        }
    }
    pub fn heal(&mut self) {
        for row in &mut self.blocked {
            row.fill(false);
        }
    }

    /// Fires `timer` at node `i` now (a forced timeout).
    pub fn fire(&mut self, i: usize, timer: RaftTimer) {
        self.step(i, Input::Timer(timer));
    }

    /// Delivers `msg` from `from` to `to` now, bypassing the network.
    pub fn inject(&mut self, from: usize, to: usize, msg: RaftMsg) {
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
        self.submitted.insert(id, self.now);
        self.step(c, Input::Request { id, op });
        id
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
        let op = match k % 3 {
            0 => Op::Get {
                key: (k as u32) % w.keys,
            },
            _ => Op::Put {
                key: (k as u32 * 7 + c as u32) % w.keys,
                value: (c as u64) << 32 | k,
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
            let q = self.queue.pop().unwrap();
            self.now = q.time;
            self.process(q.ev);
        }
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, d: Time) {
        let t = self.now + d;
        self.run_until(t);
    }

    // ----- inspection ----------------------------------------------------------------------

    pub fn server(&self, i: usize) -> &RaftServer {
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Server(s)) => s,
            _ => panic!("node {i} is not a running server"),
        }
    }

    pub fn client(&self, i: usize) -> &RaftClient {
        match self.nodes[i].node.as_ref() {
            Some(NodeBox::Client(c)) => c,
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

    pub fn kind(&self, k: &str) -> u64 {
        self.kinds.get(k).copied().unwrap_or(0)
    }

    /// Mean time from submission to completion of the completed operations.
    pub fn mean_latency(&self) -> f64 {
        let l: Vec<f64> = self
            .completions
            .iter()
            .filter_map(|c| self.submitted.get(&c.id).map(|&s| (c.time - s) as f64))
            .collect();
        l.iter().sum::<f64>() / l.len().max(1) as f64
    }

    pub fn assert_safe(&self) {
        assert!(
            self.violations.is_empty(),
            "safety violations:\n{}",
            self.violations.join("\n")
        );
    }

    /// What server `i` applied, by index, over all its incarnations (`None`: covered by a
    /// snapshot it restored and never applied one by one). Panics if an incarnation applied a
    /// different entry at an index than an earlier one, or skipped an index without a
    /// snapshot covering it.
    pub fn applied_sequence(&self, i: usize) -> Vec<Option<EntryId>> {
        let mut v: Vec<Option<EntryId>> = Vec::new();
        let mut restores = self.restored[i].iter().peekable();
        let put = |v: &mut Vec<Option<EntryId>>, idx: u64, e: EntryId, what: &str| {
            let k = idx as usize - 1;
            match v.get(k).copied().flatten() {
                Some(x) => assert_eq!(x, e, "server {i} {what} a different entry at {idx}"),
                None => v[k] = Some(e),
            }
        };
        for (pos, &(idx, e)) in self.applied[i].iter().enumerate() {
            while let Some(&&(_, r, re)) = restores.peek().filter(|x| x.0 <= pos) {
                restores.next();
                if v.len() < r as usize {
                    v.resize(r as usize, None);
                }
                put(&mut v, r, re, "restored");
            }
            let k = idx as usize - 1;
            assert!(k <= v.len(), "server {i} skipped to {idx}");
            if k == v.len() {
                v.push(None);
            }
            put(&mut v, idx, e, "re-applied");
        }
        for &(_, r, re) in restores {
            if v.len() < r as usize {
                v.resize(r as usize, None);
            }
            put(&mut v, r, re, "restored");
        }
        v
    }

    /// The applied sequences of all servers agree wherever two of them applied (or restored)
    /// the same index.
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

    // ----- engine --------------------------------------------------------------------------

    fn push(&mut self, time: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            time,
            seq: self.seq,
            ev,
        });
    }

    fn process(&mut self, ev: Ev) {
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
                    Raft::apply_write(&mut s.disk, &w);
                    s.done += 1;
                    self.release(node);
                }
            }
            Ev::Request { client, id, op } => {
                if self.nodes[client].up {
                    self.submitted.insert(id, self.now);
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
            let (_, h) = self.nodes[i].held.pop_front().unwrap();
            self.emit(i, h);
        }
    }

    fn emit(&mut self, i: usize, h: Held) {
        match h {
            Held::Send(to, msg) => self.transmit(i, to, msg),
            Held::Complete(id, result) => {
                self.completions.push(Completion {
                    client: i,
                    id,
                    result,
                    time: self.now,
                });
                self.kick(i);
            }
        }
    }

    fn transmit(&mut self, from: usize, to: usize, msg: RaftMsg) {
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

    pub fn step(&mut self, i: usize, input: Input<RaftMsg, RaftTimer>) {
        if !self.nodes[i].up {
            return;
        }
        let mut out = Out::<Raft>::default();
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

    fn output(&mut self, i: usize, o: Output<RaftMsg, RaftTimer, RaftWrite>) {
        match o {
            Output::Send { to, msg } => self.hold_or_emit(i, Held::Send(to.index(), msg)),
            Output::Complete { id, result } => self.hold_or_emit(i, Held::Complete(id, result)),
            Output::Persist(w) => {
                let s = &mut self.nodes[i];
                s.issued += 1;
                if self.storage_latency == 0 {
                    Raft::apply_write(&mut s.disk, &w);
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
            Output::Restored { index, entry } => {
                let n = self.applied[i].len();
                self.restored[i].push((n, index, entry));
                self.applied_upto[i] = index;
                self.step_restored.push(index);
                self.check_global(i, index, entry);
            }
            Output::Applied { index, entry } => {
                self.applied[i].push((index, entry));
                if index != self.applied_upto[i] + 1 {
                    self.violation(format!(
                        "node {i} applied index {index} after {}",
                        self.applied_upto[i]
                    ));
                }
                self.applied_upto[i] = index;
                self.check_global(i, index, entry);
            }
        }
    }

    /// State machine safety: what node `i` applied (or restored from a snapshot) at `index`
    /// is what every other node applied there. Entries a snapshot covers are not seen.
    fn check_global(&mut self, i: usize, index: u64, entry: EntryId) {
        let k = index as usize;
        if self.applied_global.len() <= k {
            self.applied_global.resize(k + 1, None);
        }
        match self.applied_global[k] {
            Some(e) if e != entry => self.violation(format!(
                "state machine safety: node {i} applied {entry:?} at {index}, another node \
                 applied {e:?}"
            )),
            Some(_) => {}
            None => self.applied_global[k] = Some(entry),
        }
    }

    fn hold_or_emit(&mut self, i: usize, h: Held) {
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

    fn check(&mut self, i: usize) {
        let restored = std::mem::take(&mut self.step_restored);
        let Some(NodeBox::Server(s)) = self.nodes[i].node.as_ref() else {
            return;
        };
        let o = s.observe();
        let mut found = Vec::new();
        for r in restored {
            if r > o.commit_index {
                found.push(format!(
                    "node {i} restored a snapshot up to {r} beyond its commit index {}",
                    o.commit_index
                ));
            }
        }
        if o.role == Role::Leader {
            match self.leaders.get(&o.term) {
                Some(&l) if l != i => {
                    found.push(format!("two leaders in term {}: {l} and {i}", o.term))
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(o.term, i);
                    // Leader completeness (§5.4): a new leader holds every committed entry
                    // (those its snapshot covers cannot be seen one by one).
                    for (k, e) in self.committed.iter().enumerate() {
                        let Some(e) = e else { continue };
                        if (k as u64 + 1) < o.compacted {
                            continue;
                        }
                        if s.entry(k as u64 + 1) != Some(*e) {
                            found.push(format!(
                                "leader completeness: leader {i} of term {} lacks committed \
                                 entry {} ({e:?})",
                                o.term,
                                k + 1
                            ));
                            break;
                        }
                    }
                }
            }
        }
        let from = self.commit_checked[i] + 1;
        for idx in from..=o.commit_index {
            let e = s.entry(idx);
            let k = idx as usize - 1;
            match (self.committed.get(k).copied(), e) {
                (Some(Some(c)), Some(e)) if c != e => found.push(format!(
                    "committed entry {idx} changed: was {c:?}, node {i} has {e:?}"
                )),
                (Some(None), Some(e)) => self.committed[k] = Some(e),
                (None, e) if k == self.committed.len() && (e.is_some() || idx < o.compacted) => {
                    self.committed.push(e)
                }
                (_, None) if idx < o.compacted => {} // folded into its snapshot
                (_, None) => found.push(format!("node {i} commits {idx} beyond its log")),
                _ => {}
            }
        }
        self.commit_checked[i] = self.commit_checked[i].max(o.commit_index);
        for f in found {
            self.violation(f);
        }
    }
}
