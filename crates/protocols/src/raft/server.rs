//! A Raft replica: state, input dispatch and observation. Elections live in `election.rs`,
//! replication, commitment, client requests and reads in `replication.rs`, log compaction and
//! InstallSnapshot in `snapshot.rs`.

use super::{Entry, Params, Raft, RaftDisk, RaftMsg, RaftTimer, RaftWrite, Snapshot};
use coracle_core::{
    Ctx, EntryId, Input, Key, KvStore, Node, NodeId, Observation, Out, Role, SmallIntMap, Time,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// Per-server counters, summed over nodes by drivers.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerCounters {
    /// Times this server became candidate (incremented its term to campaign).
    pub elections_started: u64,
    /// Times it became leader.
    pub elections_won: u64,
    /// Its election timer fired while it was still candidate in that term (the election failed).
    pub split_votes: u64,
    /// Pre-vote rounds started.
    pub prevotes_started: u64,
    /// Pre-vote rounds won (a majority including itself).
    pub prevotes_won: u64,
    /// Votes granted (a new `votedFor`; retransmitted grants are not counted).
    pub votes_granted: u64,
    /// RequestVotes deferred under `lazy_voting`.
    pub votes_deferred: u64,
    /// RequestVotes refused by `term_bound`.
    pub votes_rejected_term_bound: u64,
    /// RequestVotes ignored by `leader_stickiness`.
    pub stickiness_ignored: u64,
    /// Times it stepped down as leader because CheckQuorum failed.
    pub leader_stepdowns_check_quorum: u64,
    /// AppendEntries it rejected because the consistency check failed (stale terms excluded).
    pub append_rejections: u64,
    /// AppendEntries it held because they arrived ahead of a gap in its log (`reorder_buffer`).
    pub appends_held: u64,
    /// Entries it created as leader (client commands and no-ops).
    pub entries_appended: u64,
    /// Entries it stored as follower from AppendEntries.
    pub entries_replicated: u64,
    /// Log suffixes it discarded as follower because of a conflict.
    pub truncations: u64,
    /// Entries applied to its state machine (re-applications after a restart included).
    pub entries_applied: u64,
    /// Client requests it received.
    pub client_requests_received: u64,
    /// Client requests it answered with "not leader".
    pub redirects: u64,
    /// Client requests answered at once from the session table (retries of applied commands).
    pub duplicate_requests: u64,
    pub stale_requests: u64,
    /// Reads served with ReadIndex.
    pub reads_served: u64,
    /// Snapshots it took of its own state machine (`snapshot_threshold`).
    pub snapshots_taken: u64,
    /// InstallSnapshot messages it sent as leader.
    pub snapshots_sent: u64,
    /// Snapshots it installed as follower from a leader's InstallSnapshot.
    pub snapshots_installed: u64,
}

impl ServerCounters {
    pub fn visit(&self, v: &mut dyn FnMut(&'static str, u64)) {
        v("elections_started", self.elections_started);
        v("elections_won", self.elections_won);
        v("split_votes", self.split_votes);
        v("prevotes_started", self.prevotes_started);
        v("prevotes_won", self.prevotes_won);
        v("votes_granted", self.votes_granted);
        v("votes_deferred", self.votes_deferred);
        v("votes_rejected_term_bound", self.votes_rejected_term_bound);
        v("stickiness_ignored", self.stickiness_ignored);
        v(
            "leader_stepdowns_check_quorum",
            self.leader_stepdowns_check_quorum,
        );
        v("append_rejections", self.append_rejections);
        v("appends_held", self.appends_held);
        v("entries_appended", self.entries_appended);
        v("entries_replicated", self.entries_replicated);
        v("truncations", self.truncations);
        v("entries_applied", self.entries_applied);
        v("client_requests_received", self.client_requests_received);
        v("redirects", self.redirects);
        v("duplicate_requests", self.duplicate_requests);
        v("stale_requests", self.stale_requests);
        v("reads_served", self.reads_served);
        v("snapshots_taken", self.snapshots_taken);
        v("snapshots_sent", self.snapshots_sent);
        v("snapshots_installed", self.snapshots_installed);
    }
}

/// A RequestVote held back under `lazy_voting`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeferredVote {
    pub candidate: NodeId,
    pub term: u64,
    pub last_log_index: u64,
    pub last_log_term: u64,
}

/// A read waiting to be served with ReadIndex (thesis §6.4).
#[derive(Copy, Clone, Debug)]
pub(crate) struct PendingRead {
    pub client: NodeId,
    pub seq: u64,
    pub key: Key,
    /// The commit index recorded once the leader has committed an entry of its term.
    pub read_index: Option<u64>,
    /// The first heartbeat round that may confirm leadership for this read.
    pub need_round: u64,
}

/// An AppendEntries a follower holds until the entries before it arrive.
#[derive(Clone, Debug)]
pub(crate) struct HeldAppend {
    pub from: NodeId,
    pub prev: u64,
    pub prev_term: u64,
    pub entries: Arc<[Entry]>,
    pub leader_commit: u64,
    pub round: u64,
}

/// A Raft replica.
#[derive(Clone, Debug)]
pub struct RaftServer {
    pub(crate) p: Arc<Params>,
    pub(crate) me: NodeId,
    /// Position of `me` in the server list.
    pub(crate) my_pos: usize,

    // Durable (Figure 2).
    pub(crate) term: u64,
    pub(crate) voted_for: Option<NodeId>,
    /// `log[i - 1 - base]` is the entry at index `i`: the entries after `base`.
    pub(crate) log: Vec<Entry>,
    /// The latest snapshot (taken or installed), covering `1..=snapshot.index`, which is at
    /// least `base`.
    pub(crate) snapshot: Option<Arc<Snapshot>>,
    /// Index of the entry before the log's first: the snapshot's index, or up to
    /// `snapshot_trailing` entries below it (0 without a snapshot). Invariant:
    /// `base <= last_applied <= commit_index` (unsafe switches aside).
    pub(crate) base: u64,
    /// Term of the entry at `base` (0 without a snapshot).
    pub(crate) base_term: u64,
    /// Identity of the entry at `base` (none without a snapshot).
    pub(crate) base_id: Option<EntryId>,
    /// `term`/`voted_for` changed and are not yet persisted. Flushed before any send or log
    /// write, and at the end of every step, so one `HardState` write covers a term adoption
    /// and the vote that follows it.
    pub(crate) hard_state_dirty: bool,

    // Volatile.
    pub(crate) role: Role,
    /// The leader of the current term, if known.
    pub(crate) leader: Option<NodeId>,
    pub(crate) commit_index: u64,
    pub(crate) last_applied: u64,
    pub(crate) kv: KvStore,
    /// Local time at the start of the current step.
    pub(crate) now: Time,
    /// Local time of the last valid AppendEntries from the leader of the current term.
    pub(crate) leader_contact: Option<Time>,
    /// Votes (as candidate) or pre-votes (as pre-candidate), by server position.
    pub(crate) votes: Vec<bool>,
    /// Backoff exponent: failed election attempts since becoming follower or leader.
    pub(crate) backoff_exp: u32,
    pub(crate) deferred_vote: Option<DeferredVote>,

    // Leader (reinitialised at every election win).
    pub(crate) next_index: Vec<u64>,
    pub(crate) match_index: Vec<u64>,
    /// Flow control per peer, as etcd's `Progress`: `true` once the peer answered a request
    /// with success (nextIndex then runs ahead of matchIndex, each entry is sent once); `false`
    /// while probing for the point where its log matches ours (one request at a time).
    pub(crate) replicating: Vec<bool>,
    /// A probing peer has an unanswered request: new entries wait for its answer or for the
    /// next heartbeat, which sends the request again.
    pub(crate) probe_paused: Vec<bool>,
    /// A probe of this peer was rejected: probes carry no entries until one succeeds or
    /// nextIndex is right after matchIndex (thesis §3.5: "until the leader has discovered where
    /// it and the follower's logs match, the leader can send AppendEntries with no entries").
    pub(crate) searching: Vec<bool>,
    /// The last index carried by the latest probe to each peer (its prev index if empty).
    pub(crate) probe_end: Vec<u64>,

    // Follower.
    /// AppendEntries of the current term that arrived ahead of a gap in the log, handled once
    /// the gap is filled (`reorder_buffer`); volatile, and dropped when the term changes.
    pub(crate) held: Vec<HeldAppend>,
    /// The last index carried by each unacknowledged AppendEntries to a replicating peer,
    /// oldest first (at most `max_inflight_messages`).
    pub(crate) inflight: Vec<VecDeque<u64>>,
    /// Whether the last AppendEntries to each peer left entries behind (cut by
    /// `max_entries_per_message` or by a full window).
    pub(crate) capped: Vec<bool>,
    /// Highest heartbeat round each peer acknowledged in this term.
    pub(crate) acked_round: Vec<u64>,
    /// Peers that answered an AppendEntries (or InstallSnapshot) since the last CheckQuorum.
    pub(crate) recent_active: Vec<bool>,
    /// When the last InstallSnapshot still unanswered was sent to each peer (local time).
    pub(crate) snapshot_sent_at: Vec<Option<Time>>,
    /// Unanswered InstallSnapshots sent to each peer since its last answer (the resend wait
    /// doubles with each).
    pub(crate) snapshot_tries: Vec<u32>,
    /// The heartbeat round in which the last InstallSnapshot went to each peer.
    pub(crate) snapshot_round: Vec<u64>,
    /// Current heartbeat round (incremented at every broadcast).
    pub(crate) round: u64,
    /// Clients waiting for a reply from this leader: client -> sequence number.
    pub(crate) waiting: SmallIntMap<u64>,
    pub(crate) reads: Vec<PendingRead>,
    pub(crate) scratch: Vec<u64>,
    /// Followers whose matchIndex is above the commit index: with the leader's own copy, the
    /// commit index can move only once this reaches a majority, so most acknowledgements of a
    /// large cluster skip the selection in `advance_commit`.
    pub(crate) above_commit: usize,
    /// The entries of the last AppendEntries built during the current broadcast, shared by the
    /// followers at the same nextIndex (a 100-server leader would copy them 99 times).
    pub(crate) ae_cache: Option<(u64, u64, Arc<[Entry]>)>,
    pub(crate) no_entries: Arc<[Entry]>,

    pub(crate) c: ServerCounters,
}

impl RaftServer {
    pub(crate) fn from_disk(p: Arc<Params>, me: NodeId, disk: &RaftDisk) -> RaftServer {
        let n = p.servers.len();
        let my_pos = p.pos(me).unwrap_or(usize::MAX);
        let voted_for = if p.forget_vote_on_crash {
            None
        } else {
            disk.voted_for
        };
        // A snapshot on disk is the state machine up to its index: commit index and last
        // applied start there (the rest is re-learnt and re-applied, as without snapshots).
        let (base, base_term, kv) = match &disk.snapshot {
            Some(s) => (s.index, s.term, s.kv.clone()),
            None => (0, 0, KvStore::default()),
        };
        RaftServer {
            me,
            my_pos,
            term: disk.term,
            voted_for,
            log: disk.log.clone(),
            snapshot: disk.snapshot.clone(),
            base,
            base_term,
            base_id: disk.snapshot.as_ref().map(|s| s.last()),
            hard_state_dirty: false,
            role: Role::Follower,
            leader: None,
            commit_index: base,
            last_applied: base,
            kv,
            now: 0,
            leader_contact: None,
            votes: vec![false; n],
            backoff_exp: 0,
            deferred_vote: None,
            next_index: vec![1; n],
            match_index: vec![0; n],
            replicating: vec![false; n],
            probe_paused: vec![false; n],
            searching: vec![false; n],
            probe_end: vec![0; n],
            held: Vec::new(),
            inflight: vec![VecDeque::new(); n],
            capped: vec![false; n],
            acked_round: vec![0; n],
            recent_active: vec![false; n],
            snapshot_sent_at: vec![None; n],
            snapshot_tries: vec![0; n],
            snapshot_round: vec![0; n],
            round: 0,
            waiting: SmallIntMap::default(),
            reads: Vec::new(),
            scratch: Vec::with_capacity(n),
            above_commit: 0,
            ae_cache: None,
            no_entries: Arc::from(Vec::new()),
            c: ServerCounters::default(),
            p,
        }
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// Whom this server voted for in its current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// Index of the last entry applied to the state machine.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }
    /// The replicated key-value store.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }
    /// The log entries after `log_base()` (`log()[i - 1 - log_base()]` is the entry at index
    /// `i`; without a snapshot, `log()[i - 1]`).
    pub fn log(&self) -> &[Entry] {
        &self.log
    }
    /// Index of the entry before the log's first: the snapshot index, less the trailing
    /// entries kept (`snapshot_trailing`).
    pub fn log_base(&self) -> u64 {
        self.base
    }
    /// The latest snapshot, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_deref()
    }
    /// Index of the last entry folded into the snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.base + self.log.len() as u64
    }
    pub(crate) fn last_term(&self) -> u64 {
        self.log.last().map_or(self.base_term, |e| e.term)
    }
    /// Term of the entry at `i`: the snapshot's last term at its index, 0 for index 0, past
    /// the end, or inside the snapshot (unknown there: callers never ask).
    pub(crate) fn term_at(&self, i: u64) -> u64 {
        if i <= self.base {
            if i == self.base { self.base_term } else { 0 }
        } else {
            self.log
                .get((i - self.base - 1) as usize)
                .map_or(0, |e| e.term)
        }
    }
    /// The entry at `i` if the log (not the snapshot) holds it.
    pub(crate) fn entry_at(&self, i: u64) -> Option<&Entry> {
        if i <= self.base {
            None
        } else {
            self.log.get((i - self.base - 1) as usize)
        }
    }
    pub(crate) fn count(flags: &[bool]) -> usize {
        flags.iter().filter(|&&b| b).count()
    }

    /// Persists `term`/`votedFor` if they changed.
    pub(crate) fn flush(&mut self, out: &mut Out<Raft>) {
        if self.hard_state_dirty {
            self.hard_state_dirty = false;
            out.persist(RaftWrite::HardState {
                term: self.term,
                voted_for: self.voted_for,
            });
        }
    }
    /// Sends after persisting any pending hard-state change (so the barrier holds the message).
    pub(crate) fn send(&mut self, out: &mut Out<Raft>, to: NodeId, msg: RaftMsg) {
        self.flush(out);
        out.send(to, msg);
    }
    /// Persists a log change (after any pending hard-state change, keeping writes in order).
    pub(crate) fn persist_log(&mut self, out: &mut Out<Raft>, w: RaftWrite) {
        self.flush(out);
        out.persist(w);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: RaftMsg, out: &mut Out<Raft>) {
        // Only servers take part in the protocol; clients only send requests.
        let from_server = self.p.pos(from).is_some();
        match msg {
            RaftMsg::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } if from_server => {
                self.on_request_vote(ctx, from, term, last_log_index, last_log_term, out)
            }
            RaftMsg::RequestVoteResponse { term, granted } if from_server => {
                self.on_vote_response(ctx, from, term, granted, out)
            }
            RaftMsg::PreVote {
                term,
                last_log_index,
                last_log_term,
            } if from_server => {
                self.on_pre_vote(ctx, from, term, last_log_index, last_log_term, out)
            }
            RaftMsg::PreVoteResponse {
                term,
                request_term,
                granted,
            } if from_server => {
                self.on_pre_vote_response(ctx, from, term, request_term, granted, out)
            }
            RaftMsg::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
            } if from_server => self.on_append_entries(
                ctx,
                from,
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
                out,
            ),
            RaftMsg::AppendEntriesResponse {
                term,
                success,
                prev_log_index,
                match_index,
                conflict_term,
                conflict_index,
                round,
            } if from_server => self.on_append_response(
                ctx,
                from,
                term,
                success,
                prev_log_index,
                match_index,
                conflict_term,
                conflict_index,
                round,
                out,
            ),
            RaftMsg::InstallSnapshot {
                term,
                snapshot,
                round,
            } if from_server => self.on_install_snapshot(ctx, from, term, snapshot, round, out),
            RaftMsg::InstallSnapshotResponse {
                term,
                match_index,
                round,
            } if from_server => self.on_snapshot_response(ctx, from, term, match_index, round, out),
            RaftMsg::Persisted { term, index } if from == self.me => {
                self.on_persisted(term, index, out)
            }
            RaftMsg::ClientRequest { seq, op } => self.on_client_request(ctx, from, seq, op, out),
            _ => {}
        }
    }
}

impl Node<Raft> for RaftServer {
    fn step(&mut self, ctx: &mut Ctx<'_>, input: Input<RaftMsg, RaftTimer>, out: &mut Out<Raft>) {
        if self.my_pos == usize::MAX {
            return; // not a server of this cluster
        }
        self.now = ctx.now;
        match input {
            Input::Start | Input::Recover => {
                // Both start as follower: the state was just built from the disk image, so the
                // commit index and the state machine start from the snapshot (or from zero).
                self.role = Role::Follower;
                self.arm_election_timer(ctx, out);
                if let Some(s) = &self.snapshot {
                    out.restored(s.index, s.last());
                }
            }
            Input::Packet { from, msg } => self.on_message(ctx, from, msg, out),
            Input::Timer(RaftTimer::Election) => self.on_election_timeout(ctx, out),
            Input::Timer(RaftTimer::Heartbeat) => self.on_heartbeat(ctx, out),
            Input::Timer(RaftTimer::CheckQuorum) => self.on_check_quorum(ctx, out),
            Input::Timer(RaftTimer::ClientRetry) | Input::Request { .. } => {}
        }
        self.flush(out);
    }

    fn observe(&self) -> Observation {
        Observation {
            role: self.role,
            term: self.term,
            leader: if self.role == Role::Leader {
                Some(self.me)
            } else {
                self.leader
            },
            commit_index: self.commit_index,
            log_len: self.last_index(),
            last_log_term: self.last_term(),
            compacted: self.base,
        }
    }

    fn entry(&self, index: u64) -> Option<EntryId> {
        match &self.snapshot {
            _ if index == self.base && index > 0 => self.base_id,
            Some(s) if index == s.index => Some(s.last()),
            _ => self.entry_at(index).map(Entry::id),
        }
    }

    fn counters(&self, visit: &mut dyn FnMut(&'static str, u64)) {
        self.c.visit(visit);
    }

    fn report(&self, id: &dyn Fn(NodeId) -> serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "role": self.role.name(),
            "term": self.term,
            "voted_for": self.voted_for.map(id),
            "leader": self.observe().leader.map(id),
            "log_len": self.last_index(),
            "last_log_term": self.last_term(),
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "snapshot_index": self.snapshot_index(),
            "kv_keys": self.kv.len(),
            "kv_commands_applied": self.kv.applied_commands(),
        })
    }
}
