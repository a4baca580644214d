//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", extended
//! version, 2014; Ongaro's PhD thesis, 2014) as a pure sans-IO state machine.
//!
//! * [`RaftServer`] is a replica: leader election (§5.2), log replication (§5.3), the election
//!   restriction (§5.4.1), the commitment rule (§5.4.2), a no-op entry at the start of every term
//!   (thesis §6.4), client sessions (thesis §6.3), optional ReadIndex reads (thesis §6.4) and
//!   log compaction with snapshots and InstallSnapshot (§7, thesis chapter 5).
//! * [`RaftClient`] is the client proxy: it finds the leader, numbers its requests and retries.
//! * [`RaftConfig`] holds the switches: the two 2015 prototype options (`batch_requests`,
//!   `lazy_update`), the election variants practitioners argue about (`prevote`,
//!   `prevote_without_leader_check`, `check_quorum`, `leader_stickiness`, `candidate_timeout`,
//!   `backoff`, `lazy_voting`, `term_bound`), and teaching switches that break safety on purpose
//!   (`unsafe`).
//!
//! Durable state is `currentTerm`, `votedFor`, the latest [`Snapshot`] and the log after it
//! ([`RaftDisk`]). Every change is described by a [`RaftWrite`] and emitted as
//! `Output::Persist` *before* any message that reveals it, so that the driver's barrier holds
//! those messages until the write completed. The state machine ([`coracle_core::KvStore`]) is
//! volatile: after a crash it restarts from the snapshot (or empty), and the entries after it
//! are applied again as the commit index is re-learnt.
//!
//! # Decisions where the papers (or the design notes) leave a choice
//!
//! Elections
//! * Timeouts are drawn uniformly from `[min, max)` in whole nanoseconds at every (re)arm;
//!   `min == max` gives exactly `min`. Followers use the election range; candidates and
//!   pre-candidates use `candidate_timeout` (default: the election range) times `2^k` with
//!   `backoff`, where `k` counts failed attempts (a candidate's or pre-candidate's timer firing),
//!   capped at 6, and is reset on becoming follower or leader.
//! * A follower that adopts a higher term from anything but a valid AppendEntries keeps its
//!   election timer running (only a granted vote or the leader's AppendEntries reset it); a
//!   leader, candidate or pre-candidate that becomes follower arms a fresh follower timer.
//! * A retransmitted RequestVote from the candidate we already voted for is granted again (and
//!   resets the timer); `votedFor` is never cleared within a term.
//! * A term adoption and the vote that follows it are one `HardState` write, flushed before any
//!   send or log write of the same step.
//! * With pre-vote, every election attempt goes through pre-vote, including the retry after a
//!   failed candidacy (as etcd). Pre-vote responses echo the requested term; only grants for
//!   the current `term + 1` count. "Heard from a valid leader" means a valid AppendEntries of
//!   the current term less than `election_timeout_min` ago (a leader counts as hearing from
//!   itself); adopting a term by other means forgets it.
//! * `leader_stickiness` drops RequestVotes of a term >= ours without an answer; lower-term
//!   requests still get the usual refusal (it changes nothing). It applies to leaders too.
//! * `term_bound` answers its refusal with our term (the candidate ignores it); it is checked
//!   after stickiness and before lazy voting. A pre-vote is granted only if the vote would be,
//!   so the bound refuses pre-votes too (with H = 1 none is ever granted).
//! * `lazy_voting` defers any request it would grant now (same term and not yet voted, or a
//!   higher term), keeping the highest term (first on ties); requests it would refuse are
//!   handled as in basic Raft. The deferred vote is re-checked (term, vote, log) when the timer
//!   fires. A leader, having no election timer, never grants a deferred vote.
//! * `check_quorum` counts any AppendEntries or InstallSnapshot response of the leader's term (a
//!   rejection also proves the follower accepts the leader), checks every
//!   `election_timeout_min` from the election, and steps down to follower in the same term. It does not make followers ignore
//!   votes (etcd's CheckQuorum does; here that is `leader_stickiness`).
//!
//! Replication
//! * Flow control follows etcd's `Progress`. A follower is *probed* (one request at a time,
//!   nextIndex moving only on answers) until it answers a request with success; from then it is
//!   *replicated to* (an answer reaching the point probed: a late answer to an older request
//!   does not count): every entry is sent once, nextIndex runs ahead of matchIndex, and at most
//!   `max_inflight_messages` requests carrying entries are unacknowledged (a full window holds
//!   new entries back; an answer that frees room sends what waits, as many requests as fit).
//!   Heartbeats and ReadIndex rounds reach every follower; one not ready for entries (a probe
//!   unanswered, a full window) gets an empty request checking the entry before its nextIndex,
//!   whose answer tells whether what was sent made it. A replicated-to follower's rejection of
//!   an index above its matchIndex (a request lost, or overtaken by a later one: links with
//!   jitter reorder, beyond what the follower holds) sends it back to probing from
//!   matchIndex + 1 (the probe's entries beyond the answer that ends the probe count as the
//!   first request of the new window); this costs a round trip where resending every
//!   unacknowledged entry with each request (`resend_unacknowledged`) would not, and saves the
//!   bandwidth such resends take.
//! * A follower holds up to `reorder_buffer` requests carrying entries that arrive ahead of a
//!   gap in its log (after the term checks and the election timer reset every request of its
//!   leader gets) and handles them once the gap is filled, lowest first, exactly as if they
//!   arrived then: an in-order transport's behaviour, and a delay the network could have
//!   caused, so no safety argument changes. Empty requests are never held. After a success the leader sends
//!   what is ready at once: always for batches cut by the cap, for new entries only without
//!   `batch_requests`.
//! * A probe's rejection moves nextIndex only if it answers the probe we currently send
//!   (`prev_log_index + 1 == nextIndex`); older rejections are stale and ignored. nextIndex never
//!   drops to matchIndex or below. Once a probe was rejected, probes carry no entries until
//!   nextIndex is right after matchIndex (thesis §3.5). Followers always send the conflict hints;
//!   the leader uses them only with `fast_backtrack`.
//! * A single-server cluster has no follower whose acknowledgement proves the leader's own
//!   write completed, so its leader sends itself a [`RaftMsg::Persisted`] note after each
//!   append; the driver holds it behind the write and delivers it locally, and only then does
//!   the leader count its own copy. (With more servers any acknowledgement implies it, because
//!   the AppendEntries was itself held behind the write.)
//!
//! Clients
//! * The leader answers only requests it received while leading (plus retries): an applied
//!   `(client, seq)` is answered at once from the session table, one pending in the unapplied
//!   log is not appended twice and is answered when applied. A request older than the client's
//!   session is appended and applied as stale without an answer (its client has moved on).
//! * Non-leaders answer "not leader" with the leader of their current term (none while
//!   campaigning). Pending client replies and reads are dropped when a leader steps down.
//! * ReadIndex reads wait for an entry of the current term to be committed, then for the next
//!   heartbeat round (sent at once, or with the next heartbeat under `batch_requests`) to be
//!   acknowledged by a majority; they are answered in arrival order. Rounds only grow within
//!   an incarnation and start again after a restart (every request carries a round ≥ 1:
//!   leadership begins with a broadcast), so the answer to a request of an older term
//!   carries round 0 (with the replier's term): it confirms no round and counts for neither
//!   ReadIndex nor CheckQuorum.
//! * The proxy (its queue, numbering and retries are shared with VRR's, `crate::proxy`) counts
//!   every send of a request as an attempt (redirects included) and re-arms its retry timer on
//!   each; a hint naming the replier or a non-server is ignored. It numbers requests from
//!   `max(1, local clock in ns)` at every (re)start, so a restarted proxy is never mistaken for
//!   its previous incarnation by the session table.
//!
//! Log compaction (`snapshot_threshold`)
//! * Every server, leader or follower, snapshots on its own once it has applied
//!   `snapshot_threshold` entries beyond its last snapshot, at its last applied index, right
//!   after applying (the snapshot is a clone of the store, client sessions included). It
//!   persists a `RaftWrite::Snapshot`, which the disk image applies by storing the snapshot
//!   and dropping the log prefix it covers, and drops that prefix from memory. Like every
//!   write it is a barrier: later messages wait for it (snapshots are not written in the
//!   background). With `snapshot_trailing` N, a server keeps (in memory) the N entries below
//!   its own snapshot, so the log starts (`base`) up to N entries before the snapshot index;
//!   a leader then sends InstallSnapshot only to a follower whose next entry is at or below
//!   `base`.
//! * Indexing: the log holds the entries after the snapshot; `term_at(snapshot index)` is the
//!   snapshot's last term, and `entry(snapshot index)` its last entry's identity (`None`
//!   below). A follower skips the part of an AppendEntries at or below its snapshot (those
//!   entries are committed, hence the leader's) and checks consistency at the snapshot's last
//!   entry instead; its answer then acknowledges at least the snapshot index.
//! * The leader sends InstallSnapshot (the whole snapshot, shared, in one message) when a
//!   follower's nextIndex is at or below its snapshot index. Until it is answered it is not
//!   resent for `election_timeout_min`: heartbeats and broadcasts to that follower carry an
//!   empty AppendEntries anchored at the snapshot's last entry instead (it resets the
//!   follower's timer and its answer counts for CheckQuorum and ReadIndex; a rejection of it
//!   is stale and moves nothing). After that the snapshot goes again, as lost AppendEntries
//!   are resent with every heartbeat. Its answer moves matchIndex and nextIndex like a
//!   successful AppendEntries response, counts for CheckQuorum and for ReadIndex rounds
//!   (`round` is echoed), and the leader continues at once with the entries after it.
//! * A follower answers an InstallSnapshot of an older term with its term; otherwise it
//!   treats it like the leader's AppendEntries (term adoption, timer, leader contact). A
//!   snapshot at or below its commit index is already known; otherwise it keeps the log after
//!   the snapshot if it holds the snapshot's last entry with the same term and discards the
//!   log otherwise, replaces its state machine, sets commit index and last applied to the
//!   snapshot index, persists and emits `Output::Restored`. Either way it answers with its
//!   commit index as `match_index` (committed entries are in the leader's log).
//! * A server rebuilt from a disk image with a snapshot starts with commit index and last
//!   applied at the snapshot index and the snapshot's state machine, and emits
//!   `Output::Restored` when it handles `Start` or `Recover` (writing nothing).
//! * `wire_size` of an InstallSnapshot is 64 bytes plus the length of the store's JSON
//!   encoding, computed once per snapshot.
//!
//! Counters live in the node value: a driver that rebuilds a node after a crash starts them
//! again from zero.

mod client;
mod config;
mod election;
mod msg;
mod replication;
mod server;
mod snapshot;

#[cfg(test)]
mod tests;

pub use client::RaftClient;
pub use config::{MAX_BACKOFF_EXPONENT, RaftConfig, UnsafeSwitch};
pub use msg::RaftMsg;
pub use server::RaftServer;
pub use snapshot::Snapshot;

use coracle_core::{
    Cluster, Command, ConfigIssue, EntryId, NodeId, Protocol, Time, TimerName, time_to_ms,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One log entry: the term in which a leader created it and its command (`None` for the no-op a
/// leader appends at the start of its term, thesis §6.4).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(from = "EntryFields")]
pub struct Entry {
    pub term: u64,
    pub cmd: Option<Command>,
    /// `cmd`'s digest (0 for a no-op), computed once by the constructors: the engine's checks
    /// read entry identities after most steps. Not part of the encoding.
    #[serde(skip)]
    digest: u64,
}

/// An entry as encoded.
#[derive(Deserialize)]
struct EntryFields {
    term: u64,
    cmd: Option<Command>,
}

impl From<EntryFields> for Entry {
    fn from(f: EntryFields) -> Self {
        Entry::new(f.term, f.cmd)
    }
}

impl Entry {
    /// An entry of `term` carrying `cmd` (`None`: a no-op).
    pub fn new(term: u64, cmd: Option<Command>) -> Self {
        Entry {
            term,
            cmd,
            digest: cmd.map_or(0, |c| c.digest()),
        }
    }

    /// The entry's identity as checkers see it (digest 0 for a no-op).
    #[inline]
    pub fn id(&self) -> EntryId {
        EntryId {
            term: self.term,
            digest: self.digest,
        }
    }
}

/// A run of log entries that is a suffix of a shared batch: a follower that already holds the
/// first entries of an AppendEntries stores the rest without copying them out of the message
/// (with pipelined client requests most batches overlap what the follower has). Encodes as the
/// entries themselves.
#[derive(Clone, Debug)]
pub struct EntryRun {
    all: Arc<[Entry]>,
    from: usize,
}

impl EntryRun {
    /// The entries of `all` from position `from` on.
    pub fn suffix(all: Arc<[Entry]>, from: usize) -> Self {
        assert!(from <= all.len(), "suffix beyond the batch");
        EntryRun { all, from }
    }
}

impl std::ops::Deref for EntryRun {
    type Target = [Entry];
    fn deref(&self) -> &[Entry] {
        &self.all[self.from..]
    }
}

impl PartialEq for EntryRun {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl From<Arc<[Entry]>> for EntryRun {
    fn from(all: Arc<[Entry]>) -> Self {
        EntryRun { all, from: 0 }
    }
}

impl From<Vec<Entry>> for EntryRun {
    fn from(v: Vec<Entry>) -> Self {
        EntryRun::from(Arc::<[Entry]>::from(v))
    }
}

impl Serialize for EntryRun {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for EntryRun {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Entry>::deserialize(d).map(EntryRun::from)
    }
}

/// One change to a server's durable state (Figure 2, "Persistent state on all servers").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "write", rename_all = "snake_case")]
pub enum RaftWrite {
    /// `currentTerm` and `votedFor`, written together.
    HardState {
        term: u64,
        voted_for: Option<NodeId>,
    },
    /// Store `entries` at indexes `first_index..`; anything already stored at or after
    /// `first_index` is replaced.
    Append {
        first_index: u64,
        /// Shared with the AppendEntries it came from (no copy, even of part of a batch).
        entries: EntryRun,
    },
    /// Delete the entries at indexes `from..` (a follower discarding a conflicting suffix, §5.3).
    Truncate { from: u64 },
    /// Store `snapshot` in place of the one stored (if it is newer) and drop the log entries it
    /// covers (`1..=snapshot.index`). The entries after it are kept if the stored log holds
    /// the snapshot's last entry with the same term, and dropped otherwise (thesis §5.3: a
    /// follower installing a leader's snapshot discards a log that does not match it).
    Snapshot { snapshot: Arc<Snapshot> },
}

/// A server's disk image: what survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaftDisk {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    /// `log[i - 1 - s]` is the entry at index `i`, where `s` is the snapshot's index (0
    /// without a snapshot).
    pub log: Vec<Entry>,
    /// The latest snapshot, covering the entries `1..=s`.
    #[serde(default)]
    pub snapshot: Option<Arc<Snapshot>>,
}

impl RaftDisk {
    /// Index of the last entry covered by the stored snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }
}

/// Raft's timers. One slot per name and node.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum RaftTimer {
    /// Follower, pre-candidate and candidate election timeout (§5.2).
    Election,
    /// Leader heartbeat (periodic AppendEntries).
    Heartbeat,
    /// Leader's CheckQuorum period (thesis §6.2), armed only with `check_quorum`.
    CheckQuorum,
    /// Client proxy retry timer.
    ClientRetry,
}

impl TimerName for RaftTimer {
    const ALL: &'static [Self] = &[
        RaftTimer::Election,
        RaftTimer::Heartbeat,
        RaftTimer::CheckQuorum,
        RaftTimer::ClientRetry,
    ];
    fn index(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        match self {
            RaftTimer::Election => "election",
            RaftTimer::Heartbeat => "heartbeat",
            RaftTimer::CheckQuorum => "check_quorum",
            RaftTimer::ClientRetry => "client_retry",
        }
    }
}

/// The validated configuration shared by every node of a run (durations in nanoseconds).
#[derive(Debug)]
pub(crate) struct Params {
    /// Follower election timeout range `[min, max)`.
    pub election: (Time, Time),
    /// Candidate (and pre-candidate) timeout range before backoff.
    pub candidate: (Time, Time),
    pub heartbeat: Time,
    pub client_timeout: Time,
    pub batch_requests: bool,
    pub lazy_update: bool,
    pub fast_backtrack: bool,
    pub max_entries: u64,
    pub max_inflight: usize,
    pub resend_unacked: u64,
    pub reorder_buffer: usize,
    pub read_index: bool,
    pub client_max_attempts: Option<u32>,
    pub prevote: bool,
    pub prevote_leader_check: bool,
    pub check_quorum: bool,
    pub leader_stickiness: bool,
    pub backoff: bool,
    pub lazy_voting: bool,
    pub term_bound: Option<u64>,
    pub no_log_check: bool,
    pub forget_vote_on_crash: bool,
    pub commit_old_terms: bool,
    pub no_backtrack: bool,
    pub reverse_apply: bool,
    /// Applied entries beyond the last snapshot that trigger a new one (`None`: never).
    pub snapshot_threshold: Option<u64>,
    pub snapshot_trailing: u64,
    /// The servers, in configured order.
    pub servers: Vec<NodeId>,
    /// `pos[id.index()]`: the position of server `id` in `servers`.
    pub pos: Vec<Option<usize>>,
    pub majority: usize,
}

impl Params {
    pub fn pos(&self, id: NodeId) -> Option<usize> {
        self.pos.get(id.index()).copied().flatten()
    }
}

/// The Raft protocol: its validated configuration and node constructors.
#[derive(Clone, Debug)]
pub struct Raft {
    config: RaftConfig,
    params: Arc<Params>,
    warnings: Vec<ConfigIssue>,
}

impl Raft {
    /// The configuration as given (defaults filled in by serde).
    pub fn config(&self) -> &RaftConfig {
        &self.config
    }
}

impl Protocol for Raft {
    const NAME: &'static str = "raft";
    type Config = RaftConfig;
    type Msg = RaftMsg;
    type Timer = RaftTimer;
    type Write = RaftWrite;
    type Disk = RaftDisk;
    type Server = RaftServer;
    type Client = RaftClient;

    fn new(config: RaftConfig, cluster: &Cluster) -> Result<Self, ConfigIssue> {
        let (params, warnings) = config.resolve(cluster)?;
        Ok(Raft {
            config,
            params: Arc::new(params),
            warnings,
        })
    }

    fn warnings(&self) -> Vec<ConfigIssue> {
        self.warnings.clone()
    }

    fn settings(&self) -> serde_json::Value {
        let p = &self.params;
        let range = |(lo, hi): (Time, Time)| [time_to_ms(lo), time_to_ms(hi)];
        let switches = [
            ("prevote", p.prevote),
            (
                "prevote_without_leader_check",
                p.prevote && !p.prevote_leader_check,
            ),
            ("check_quorum", p.check_quorum),
            ("leader_stickiness", p.leader_stickiness),
            ("candidate_timeout", self.config.candidate_timeout.is_some()),
            ("backoff", p.backoff),
            ("lazy_voting", p.lazy_voting),
        ];
        let unsafe_switches = [
            ("no_log_check", p.no_log_check),
            ("forget_vote_on_crash", p.forget_vote_on_crash),
            ("commit_old_terms", p.commit_old_terms),
            ("no_backtrack", p.no_backtrack),
            ("reverse_apply", p.reverse_apply),
        ];
        let on = |list: &[(&str, bool)]| -> Vec<String> {
            list.iter()
                .filter(|(_, b)| *b)
                .map(|(n, _)| n.to_string())
                .collect()
        };
        serde_json::json!({
            "election_timeout_ms": range(p.election),
            "candidate_timeout_ms": range(p.candidate),
            "heartbeat_interval_ms": time_to_ms(p.heartbeat),
            "client_timeout_ms": time_to_ms(p.client_timeout),
            "client_max_attempts": p.client_max_attempts,
            "batch_requests": p.batch_requests,
            "lazy_update": p.lazy_update,
            "fast_backtrack": p.fast_backtrack,
            "max_entries_per_message": p.max_entries,
            "max_inflight_messages": p.max_inflight,
            "resend_unacknowledged": p.resend_unacked,
            "reorder_buffer": p.reorder_buffer,
            "read_index": p.read_index,
            "variants": on(&switches),
            "term_bound": p.term_bound,
            "snapshot_threshold": p.snapshot_threshold,
            "snapshot_trailing": p.snapshot_trailing,
            "unsafe": on(&unsafe_switches),
            "majority": p.majority,
        })
    }

    fn durable_position(disk: &RaftDisk) -> Option<(u64, u64)> {
        Some((disk.term, disk.snapshot_index() + disk.log.len() as u64))
    }

    fn apply_write(disk: &mut RaftDisk, write: &RaftWrite) {
        match write {
            RaftWrite::HardState { term, voted_for } => {
                disk.term = *term;
                disk.voted_for = *voted_for;
            }
            RaftWrite::Append {
                first_index,
                entries,
            } => {
                let base = disk.snapshot_index();
                debug_assert!(*first_index > base, "append inside the snapshot");
                let keep = first_index.saturating_sub(base + 1) as usize;
                debug_assert!(keep <= disk.log.len(), "append leaves a gap in the log");
                disk.log.truncate(keep);
                disk.log.extend_from_slice(entries);
            }
            RaftWrite::Truncate { from } => {
                let base = disk.snapshot_index();
                disk.log.truncate(from.saturating_sub(base + 1) as usize);
            }
            RaftWrite::Snapshot { snapshot } => {
                let base = disk.snapshot_index();
                if snapshot.index > base {
                    snapshot::compact(&mut disk.log, base, snapshot);
                    disk.snapshot = Some(snapshot.clone());
                }
            }
        }
    }

    fn server(&self, me: NodeId, disk: &RaftDisk) -> RaftServer {
        RaftServer::from_disk(self.params.clone(), me, disk)
    }

    fn client(&self, me: NodeId) -> RaftClient {
        RaftClient::new(self.params.clone(), me)
    }
}
