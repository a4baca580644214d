//! Safety checks run during every simulation.
//!
//! The engine reports every node's [`Observation`] after each step, every `Applied` output, and
//! crashes; the checks keep a compact global view (the committed prefix, the leader of every
//! term) and compare. One module per invariant; each cites the rule it encodes. A violation
//! stops the run.
//!
//! The checks are written against the protocol-neutral observation (Raft's term and VRR's view
//! both appear as `term`; a VRR primary in normal status is a `Leader`), so they apply to every
//! log-based protocol. Protocols without a log (the dummy) pass trivially.

mod committed;
mod election_safety;
mod leader_append_only;
mod leader_completeness;
mod log_matching;
mod state_machine_safety;

use coracle_core::{EntryId, NodeId, Observation, Role, Time};
use serde::Serialize;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// Name of the invariant (`election_safety`, ...).
    pub invariant: &'static str,
    /// Simulated time, ns.
    pub time: Time,
    /// Nodes involved (indices).
    pub nodes: Vec<NodeId>,
    /// What happened.
    pub message: String,
}

impl Violation {
    /// Replaces node indices (`#3`) in the message by the nodes' names.
    pub fn render(&mut self, names: &[String]) {
        let mut out = String::with_capacity(self.message.len());
        let mut chars = self.message.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '#' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                    n.push(d);
                    chars.next();
                }
                match n.parse::<usize>().ok().and_then(|i| names.get(i)) {
                    Some(name) => out.push_str(name),
                    None => {
                        out.push('#');
                        out.push_str(&n);
                    }
                }
            } else {
                out.push(c);
            }
        }
        self.message = out;
    }
}

/// Names of all invariants, for the results file.
pub const INVARIANTS: &[&str] = &[
    election_safety::NAME,
    leader_append_only::NAME,
    log_matching::NAME,
    leader_completeness::NAME,
    state_machine_safety::NAME,
    committed::NAME,
];

/// A committed entry as first observed.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Committed {
    pub entry: EntryId,
    /// Term of the node that first reported it committed (the committing leader's term).
    pub term: u64,
    /// False when the entry was committed inside a snapshot that no checker saw: its
    /// identity is unknown and comparisons with it are skipped.
    pub known: bool,
}

/// The committed log prefix as the checks know it. Entries every server has folded into a
/// snapshot are dropped from the front, so memory stays flat in long runs.
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    /// Entries at indices `1..=base` were dropped.
    base: u64,
    entries: std::collections::VecDeque<Committed>,
}

impl Prefix {
    /// Index of the last committed entry.
    pub fn len(&self) -> u64 {
        self.base + self.entries.len() as u64
    }
    /// The committed entry at `index`, if known and kept.
    pub fn get(&self, index: u64) -> Option<Committed> {
        if index <= self.base {
            return None;
        }
        self.entries
            .get((index - self.base - 1) as usize)
            .copied()
            .filter(|c| c.known)
    }
    /// Appends the entry at index `len() + 1`.
    pub fn push(&mut self, c: Committed) {
        self.entries.push_back(c);
    }
    /// Kept entries with their indices.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Committed)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, c)| (self.base + 1 + i as u64, c))
            .filter(|(_, c)| c.known)
    }
    /// Drops entries below `floor`.
    fn trim(&mut self, floor: u64) {
        while self.base + 1 < floor && !self.entries.is_empty() {
            self.entries.pop_front();
            self.base += 1;
        }
    }
}

/// Read access to a node's log for the checks.
pub trait LogView {
    /// The entry at `index` (1-based).
    fn entry(&self, index: u64) -> Option<EntryId>;
}

impl<F: Fn(u64) -> Option<EntryId>> LogView for F {
    fn entry(&self, index: u64) -> Option<EntryId> {
        self(index)
    }
}

/// The checks' state.
pub struct Checker {
    is_server: Vec<bool>,
    servers: usize,
    prev: Vec<Observation>,
    up: Vec<bool>,
    committed: Prefix,
    /// Highest snapshot index seen per node (snapshots are durable, so it survives crashes).
    compacted: Vec<u64>,
    last_applied: Vec<u64>,
    leaders: std::collections::BTreeMap<u64, NodeId>,
    leader_tail: Vec<Option<(u64, EntryId)>>,
    /// Entries applied (or restored from a snapshot: `true`) this step, checked after the
    /// commit index is examined.
    pending_applied: Vec<(u64, EntryId, bool)>,
}

impl Checker {
    /// Checks for nodes `0..n`, of which those flagged are servers.
    pub fn new(is_server: Vec<bool>) -> Self {
        let n = is_server.len();
        Checker {
            servers: is_server.iter().filter(|s| **s).count(),
            is_server,
            prev: vec![Observation::down(); n],
            up: vec![false; n],
            committed: Prefix::default(),
            compacted: vec![0; n],
            last_applied: vec![0; n],
            leaders: Default::default(),
            leader_tail: vec![None; n],
            pending_applied: Vec::new(),
        }
    }

    /// Number of entries known committed.
    pub fn committed_len(&self) -> u64 {
        self.committed.len()
    }

    /// True when applied or restored entries wait to be checked.
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.pending_applied.is_empty()
    }

    /// Records an `Applied` output of `node` (checked in [`Checker::after_step`]).
    #[inline]
    pub fn applied(&mut self, index: u64, entry: EntryId) {
        self.pending_applied.push((index, entry, false));
    }

    /// Records a `Restored` output of `node`: its state machine now covers `1..=index`.
    pub fn restored(&mut self, index: u64, entry: EntryId) {
        self.pending_applied.push((index, entry, true));
    }

    /// The node crashed: its volatile state (commit index, applied prefix) is gone.
    pub fn crashed(&mut self, node: usize) {
        self.prev[node] = Observation::down();
        self.up[node] = false;
        self.last_applied[node] = 0;
        self.leader_tail[node] = None;
    }

    /// Checks a server after it stepped. `all` gives read access to every up server's log (for
    /// the majority check), `log` to this node's.
    pub fn after_step(
        &mut self,
        now: Time,
        node: usize,
        obs: &Observation,
        log: &impl LogView,
        all: &dyn Fn(usize, u64) -> Option<EntryId>,
    ) -> Result<(), Violation> {
        if !self.is_server[node] {
            self.pending_applied.clear();
            return Ok(());
        }
        let prev = self.prev[node];
        let recovered = !self.up[node];
        self.up[node] = true;
        let trim = obs.compacted > self.compacted[node];
        self.compacted[node] = self.compacted[node].max(obs.compacted);
        let me = NodeId(node as u32);
        let result = (|| {
            let became_leader =
                obs.role == Role::Leader && (prev.role != Role::Leader || prev.term != obs.term);
            if became_leader {
                election_safety::check(&mut self.leaders, now, me, obs.term)?;
                leader_completeness::check(&self.committed, now, me, obs.term, obs.compacted, log)?;
            }
            leader_append_only::check(&mut self.leader_tail[node], now, me, &prev, obs, log)?;
            state_machine_safety::check_commits(&mut self.committed, now, me, &prev, obs, log)?;
            if !self.pending_applied.is_empty() {
                let r = state_machine_safety::check_applied(
                    &self.committed,
                    &mut self.last_applied[node],
                    now,
                    me,
                    obs,
                    &self.pending_applied,
                );
                self.pending_applied.clear();
                r?;
            }
            if recovered || became_leader || obs.log_len < prev.log_len {
                let holding = self.holding(node, obs.role);
                committed::check_majority(
                    &self.committed,
                    self.servers,
                    &self.is_server,
                    &holding,
                    &self.compacted,
                    now,
                    all,
                )?;
            }
            Ok(())
        })();
        self.prev[node].assign(obs);
        if trim {
            self.trim();
        }
        result
    }

    /// Which servers' logs must hold the committed entries: those up and not rebuilding their
    /// state (a VRR replica in recovering status is failed until it has recovered; like a
    /// crashed one, it counts as holding them). `node` is being stepped and has role `role`.
    fn holding(&self, node: usize, role: Role) -> Vec<bool> {
        (0..self.up.len())
            .map(|n| {
                self.up[n] && (if n == node { role } else { self.prev[n].role }) != Role::Recovering
            })
            .collect()
    }

    /// Drops committed entries every server has compacted into a snapshot.
    fn trim(&mut self) {
        let floor = self
            .is_server
            .iter()
            .zip(&self.compacted)
            .filter(|(s, _)| **s)
            .map(|(_, c)| *c)
            .min()
            .unwrap_or(0);
        if floor > self.committed.base + 4096 {
            self.committed.trim(floor);
        }
    }

    /// End-of-run checks over the final logs of the servers that are up.
    pub fn finish(
        &mut self,
        now: Time,
        logs: &dyn Fn(usize, u64) -> Option<EntryId>,
        log_len: &dyn Fn(usize) -> Option<u64>,
    ) -> Result<(), Violation> {
        let holding = self.holding(usize::MAX, Role::Down);
        committed::check_majority(
            &self.committed,
            self.servers,
            &self.is_server,
            &holding,
            &self.compacted,
            now,
            logs,
        )?;
        log_matching::check(&self.is_server, &self.compacted, now, logs, log_len)
    }
}
