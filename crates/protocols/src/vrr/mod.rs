//! Viewstamped Replication Revisited (Liskov & Cowling, "Viewstamped Replication Revisited",
//! MIT-CSAIL-TR-2012-021) as a pure sans-IO state machine.
//!
//! * [`VrrServer`] is a replica: normal operation (§4.1), view changes (§4.2), recovery of
//!   diskless replicas (§4.3), the client table (§4.1) and state transfer (§5.2). The primary of
//!   view `v` is the `(v mod n)`-th server in the configured order (`Cluster::servers`).
//! * [`VrrClient`] is the client proxy: it numbers its requests, sends them to the primary of the
//!   latest view it knows and retries.
//! * [`VrrConfig`] holds the timeouts, the state-transfer batch size, the client's retry budget,
//!   the checkpoint interval and the `durable` switch (disk-based replicas instead of the
//!   paper's diskless ones).
//!
//! # What the checkers see
//!
//! [`coracle_core::Observation`]: `role` is `Leader` for the primary in normal status,
//! `Follower` for a backup in normal status, `Candidate` in view-change status and `Recovering`
//! in recovering status; `term` is the view-number; `leader` the primary of the view when in
//! normal status; `commit_index` the commit-number; `log_len` the op-number; `last_log_term`
//! the view in which the last log entry was created. Every [`Entry`] records the view of the
//! primary that assigned its op-number, and keeps it through view changes, recovery and state
//! transfer, so `(op-number, view)` identifies an entry as `(index, term)` does in Raft. Ops
//! are executed in op-number order, each once per incarnation, and reported with
//! `Output::Applied`; a recovering replica rebuilds its state machine from op 1, or from a
//! checkpoint (reported with `Output::Restored`, and `compacted` is the checkpoint's op-number:
//! [`coracle_core::Node::entry`] is `None` below it and the checkpoint's last op at it).
//!
//! A diskless replica in recovering status holds no log at all: it is failed, in the paper's
//! model, until its recovery completes. A check that counts which servers still hold a
//! committed op (as the simulator's `committed_entries_durable`) must count it like a server
//! that is down, or it reports a loss whenever such a replica restarts while the op's other
//! copies are on exactly a majority.
//!
//! # Decisions where the paper is silent (or where this implementation departs from it)
//!
//! Quorums and timers
//! * A quorum is a majority, `n / 2 + 1` servers ("f + 1" for `n = 2f + 1`; for an even `n`
//!   "f + 1" would not intersect, so the majority is used). "f other replicas" means quorum - 1.
//! * The view-change timeout is drawn uniformly from `[view_change_timeout_min,
//!   view_change_timeout_max)` in whole nanoseconds at every (re)arm. It is the backup's
//!   primary-failure timeout (re-armed by every Prepare, Commit, StartView or NewState from
//!   the primary of its view), the limit on a view change (on expiry the replica moves to the
//!   next view) and the recovering replica's retry period.
//! * While in view-change status a replica re-broadcasts its StartViewChange, and re-sends its
//!   DoViewChange if it sent one, every `commit_interval` (the paper sends them once; with
//!   message loss a view change would otherwise often wait for the next timeout).
//!
//! Normal operation
//! * The primary's heartbeat ticks every `commit_interval`. At a tick, a backup that was sent
//!   nothing since the previous tick gets the Prepare of the first op it has not acknowledged
//!   (the paper does not say how lost Prepares are repaired), or a Commit(v, k) if it
//!   acknowledged everything; a busy backup gets a Commit only if it has not yet been sent the
//!   current commit-number. A backup that is further behind asks for state transfer.
//! * A backup answers a Prepare it already holds with a PrepareOK for its whole op-number
//!   (its log is a prefix of the primary's, so that acknowledges everything up to it). A
//!   Prepare that arrives ahead of a missing one is buffered (at most 1024 of them) and
//!   appended once the gap fills. A backup asks for state transfer (§5.2) when a Prepare or
//!   Commit carries a commit-number above its op-number, at most once per `commit_interval`
//!   (a NewState that leaves it still behind is followed at once by the next GetState).
//! * Every op in the primary's log, including ops inherited from earlier views, is committed
//!   once a quorum (the primary included) holds it: unlike Raft's §5.4.2, VRR's view change
//!   selects logs by last normal view, so counting replicas is safe for old ops too.
//! * Client table: besides the state machine's table (at-most-once execution and cached
//!   results), the primary scans its unexecuted ops, so a retried request that is already in
//!   the log is not appended twice (the paper updates the table when it appends). A request
//!   whose number is lower than the client's latest is dropped; an equal one gets the cached
//!   reply if executed, and is answered when executed otherwise. Only the primary that
//!   received a request (or its retry) while in normal status answers it.
//! * A backup in normal status answers a request with `Reply { result: None, view }`, a
//!   redirect to the primary of its view; replicas in view-change or recovering status drop
//!   requests.
//!
//! View changes
//! * The new primary needs f + 1 DoViewChange messages including its own, which it "sends"
//!   (records) under the same rule as everyone, after f StartViewChange messages from others.
//!   That rule is what makes a diskless replica that promised a view change and then crashed
//!   safe to recover: no f + 1 replicas can still be normal in the old view.
//! * The selected log is the one with the highest last normal view, then the highest
//!   op-number; ties go to the replica first in the configured order (such logs are equal). The
//!   new commit-number is the highest one received (the new primary's own included).
//! * Logs travel as suffixes, the paper's own suggestion at the end of §4.2 ("replicas include
//!   a suffix of their log in their DoViewChange messages"). StartViewChange carries the
//!   sender's commit-number. A DoViewChange carries the ops after the sender's commit-number,
//!   or after the new primary's if its StartViewChange reported a lower one: ops up to a
//!   replica's commit-number are committed, hence the same in every log that holds them, so
//!   the new primary completes the suffix with its own ops. A suffix that starts past the new
//!   primary's commit-number (it restarted) is not counted; the primary answers with its
//!   StartViewChange, and the sender sends one it can place. StartView carries the ops after
//!   the receiver's commit-number as the primary heard it in the view change, or after the
//!   primary's own commit-number if that is lower or it heard nothing, and `after_view`, the
//!   view of the primary's op it follows. The receiver attaches it if that op is within its
//!   commit-number, or if its own op there has the same view (only the primary of a view
//!   creates ops of that view, each op-number once, after a log it holds: logs that agree on
//!   an op's number and view agree up to it, Raft's Log Matching, which the simulator checks);
//!   otherwise (it was behind, restarted, or holds ops the view did not keep) it fetches the
//!   view's log by state transfer from its commit-number. A whole log crossed a slow link too
//!   slowly: with 1 Mbit/s links and a few hundred ops, view changes were abandoned again and
//!   again; and when StartView carried the whole log to the replicas the primary had not
//!   heard from, on 0.2 Mbit/s links (`examples/reliable/bufferbloat.json` as VRR) it delayed
//!   the view's Commits past the backups' timeouts, view after view, for good.
//! * View-change messages are limited to `max(max_entries_per_message, 64)` ops: StartView
//!   carries at most that many (a replica further behind transfers the rest), and a replica
//!   withholds its DoViewChange, as if lost, from a new primary that reported a commit-number
//!   more than that below its own (each sender's copy, and each retransmission, would carry
//!   the committed ops it lacks). That view fails on its timeout; the replicas with the
//!   highest commit-number are withheld from by no one, so the views they lead can complete,
//!   and their StartView and state transfer bring the lagging replica up to date. Withholding
//!   a message is as safe as losing it.
//! * Timeouts and retransmission (the paper is silent): a view abandoned for a later one before
//!   it was stable doubles the next view-change timeout and primary-failure timeout
//!   (`view_change_backoff`, up to 64×, as in PBFT): a view change that did not complete,
//!   unless its primary never spoke (a dead primary's view: waiting longer cannot help it), or
//!   a view left while still transferring its log or within the longest view-change timeout
//!   of starting. The count starts over once a view has been normal for the longest
//!   view-change timeout: reset whenever a view went normal, it never damped views that were
//!   ended again and again soon after they started;
//!   StartViewChange is resent every `commit_interval` and DoViewChange, whose uncommitted
//!   suffix can still be long (an old primary that kept appending in a minority), at rounds 1,
//!   2, 4, 8, … only.
//! * The new primary answers a DoViewChange of its current view that arrives after the view
//!   started with a StartView of its current log (a straggler's fast path) if that replica has
//!   not answered a Prepare of the view and was not sent one within the longest view-change
//!   timeout, and starts with
//!   every backup's acknowledged op-number at the new commit-number (only ops above it need
//!   acknowledgements; a backup that lacks committed ops learns it from the next Commit).
//! * A replica that adopts a StartView sends a PrepareOK when its log has uncommitted ops, as
//!   in the paper.
//!
//! State transfer (§5.2)
//! * A replica learns that view `v` is in normal operation from a Prepare or Commit of the
//!   primary of `v`, when its view is older, or equal while it is still in view-change status
//!   (its StartView was lost). It moves to view `v` in normal status but keeps its log and its
//!   last normal view until the transfer completes: it asks for the ops after its
//!   commit-number (GetState), collects the NewState batches aside, and only when it holds
//!   everything up to the responder's op-number replaces its uncommitted suffix and sets its
//!   last normal view to `v`. "Everything" is the responder's op-number at the *first* reply:
//!   past it the replica lags in its own view like any slow backup (uses Prepares, fetches the
//!   rest). Aiming at each reply's op-number never finished while the primary appended faster
//!   than one batch per round trip. The paper sets the op-number to the commit-number at once. Doing
//!   that and counting the replica as normal in `v` lets a later view change select a log that
//!   lacks an op committed in an older view (the randomized test finds such runs); truncating
//!   while keeping the old last normal view is unsafe too when f >= 2 (two replicas that
//!   acknowledged the op truncate it, and its other holders are down). Until the transfer
//!   completes the replica does not acknowledge, execute or answer Recovery messages; every
//!   Prepare or Commit of the primary re-arms its timer and, at most once per
//!   `commit_interval`, repeats its GetState.
//! * GetState is sent to the primary that revealed the gap; any replica in normal status,
//!   caught up, in the requested view answers it. A backup that is merely behind in its own
//!   view appends NewState batches directly (its log is a prefix of the primary's) and sends a
//!   PrepareOK for its new op-number.
//!
//! Recovery (§4.3, `durable: false`)
//! * The recovering replica needs f + 1 RecoveryResponses from other replicas with its nonce,
//!   including the primary's of the latest view among them; on timeout it sends Recovery
//!   again with the same nonce and keeps the responses it has (a response to an earlier
//!   retry is as fresh as a delayed one: a new nonce per retry made recovery impossible once
//!   the primary's log took longer than the retry interval to cross a slow link; a later
//!   response from the same replica replaces an older one). Only replicas in normal status that are
//!   caught up answer. After recovery it sends a PrepareOK when its new log has uncommitted
//!   ops, and executes from op 1 (or from the primary's checkpoint, which the response carries
//!   with the log after it). A single diskless replica can never recover (nobody can
//!   answer it); `Vrr::new` warns about that configuration.
//!
//! Disk-based replicas (`durable: true`)
//! * The view-number and last normal view ([`VrrWrite::View`]) and the log
//!   ([`VrrWrite::Append`], [`VrrWrite::Truncate`]) are persisted before any message that
//!   reveals them. When both change, the log is written first, so that a crash in between
//!   leaves an old last normal view on a newer log (harmless: the log holds everything
//!   committed before that view) rather than a new one on an older log. A replica that
//!   moves by StartView straight from normal status in an older view writes the new
//!   view-number (with its old last normal view) before the log, so that a crash in between
//!   cannot restart it as normal in the old view holding the new view's log.
//! * A restarted replica resumes from its disk: in normal status if its last normal view is
//!   its view (as the primary of that view if it is, re-learning the commit-number from
//!   PrepareOKs), in view-change status otherwise (re-broadcasting StartViewChange). This is
//!   safe because everything it ever acknowledged or promised was on disk before it said so.
//!   The state machine is volatile. Each log write also records the commit-number of the
//!   moment, so a restarted replica starts from that (committed, hence safe) commit-number and
//!   executes those ops at once; its view-change messages then carry the ops after it rather
//!   than its whole log, which on slow links decides whether a view change completes at all.
//! * A single durable replica commits an op only when its own write completed, learnt through
//!   a [`VrrMsg::Persisted`] note it sends itself.
//!
//! Checkpoints (§5.3, `checkpoint_interval`)
//! * Every replica, primary or backup, on its own, once it has executed `checkpoint_interval`
//!   ops beyond its last checkpoint, takes a [`Checkpoint`] at its last executed op: a clone of
//!   the store (client sessions included) and of the client table, with the view and digest of
//!   that op. It drops the log up to it (no trailing ops are kept). Only executed, hence
//!   committed, ops are ever compacted; the log holds the ops after the checkpoint
//!   (`op-number = checkpoint op + log length`).
//! * View changes only ever need ops above a commit-number, so they carry suffixes as before,
//!   with one more case of a withheld DoViewChange: a replica does not send it to a new primary
//!   that reported a commit-number below its checkpoint (it no longer holds the ops that
//!   primary lacks). The replicas with the highest commit-number are still withheld from by no
//!   one. A new primary skips the part of a chosen suffix at or below its own checkpoint, and
//!   StartView starts no lower than the primary's checkpoint (a replica that cannot attach it
//!   fetches the view's log by state transfer).
//! * The primary's heartbeat sends a backup whose acknowledged op-number is below the
//!   checkpoint the first op after the checkpoint (or a Commit); a backup that lacks committed
//!   ops asks for state transfer as before.
//! * State transfer: a GetState for ops the responder has compacted is answered with its
//!   checkpoint and the ops after it (a batch of them), but not again to the same replica
//!   within `view_change_timeout_min`, doubled with each copy in a row up to 64× (as Raft's
//!   InstallSnapshot; the count starts over once that replica asks for ops after the
//!   checkpoint): it repeats its GetState every commit interval, and on a slow link copies of
//!   a large store would queue faster than the link carries them. A backup behind in its view installs
//!   the checkpoint at once (its log is a prefix of the responder's: the ops after the
//!   checkpoint are kept if it holds them). A replica transferring into a newer view keeps the
//!   checkpoint aside with the batches and installs it when the transfer completes; its old log
//!   is kept after the checkpoint only if it holds the checkpoint's last op with the same view
//!   (then, by log matching, its log up to there is the committed prefix), and then replaced by
//!   the view's ops as before.
//! * Recovery: the primary's RecoveryResponse carries its checkpoint and the log after it.
//! * Disk-based replicas persist each checkpoint ([`VrrWrite::Checkpoint`], as Raft persists a
//!   snapshot); the disk image then drops the ops it covers (keeping the ops after it under the
//!   same rule as above), and a restarted replica resumes from the checkpoint (reported with
//!   `Restored`) and executes the log after it up to the commit-number on disk.
//! * A message's `wire_size` counts the checkpoint's encoded size (the JSON encoding of the
//!   store, plus 16 bytes per client-table row), computed once per checkpoint.
//!
//! Client proxy
//! * Requests go to the primary of the highest view the proxy has seen in a reply, or to a
//!   random server (seeded, uniform over all servers) when it knows none. On `client_timeout`
//!   it resends the same request number to a random server other than the last one and
//!   forgets the primary; a redirect names the view whose primary to try (a random other server
//!   if that is the replier). Every send counts as an attempt towards `client_max_attempts`.
//!   Requests are numbered from `max(1, local clock in ns)` at every (re)start, so that the
//!   client table never mistakes a restarted proxy for its previous incarnation. Queueing,
//!   numbering, retries and giving up are Raft's proxy's (shared code, `crate::proxy`).
//!
//! Counters live in the node value: a driver that rebuilds a node after a crash starts them
//! again from zero.

mod checkpoint;
mod client;
mod config;
mod msg;
mod normal;
mod server;
mod transfer;
mod view_change;

#[cfg(test)]
mod tests;

pub use checkpoint::Checkpoint;
pub use client::VrrClient;
pub use config::VrrConfig;
pub use msg::VrrMsg;
pub use server::{Status, VrrServer};

use coracle_core::{
    Cluster, Command, ConfigIssue, EntryId, NodeId, Protocol, Time, TimerName, time_to_ms,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One log entry: the view of the primary that assigned its op-number, and the client's
/// request.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub view: u64,
    pub cmd: Command,
}

impl Entry {
    /// The entry's identity as checkers see it.
    pub fn id(&self) -> EntryId {
        EntryId {
            term: self.view,
            digest: self.cmd.digest(),
        }
    }
}

/// One change to a disk-based replica's durable state (`durable: true` only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "write", rename_all = "snake_case")]
pub enum VrrWrite {
    /// The view-number and the last view in which the replica's status was normal.
    View { view: u64, last_normal: u64 },
    /// Store `entries` at op-numbers `first_index..`; anything stored at or after
    /// `first_index` is replaced.
    Append {
        first_index: u64,
        entries: Vec<Entry>,
        /// The replica's commit-number when it wrote this: ops up to it are committed, so a
        /// restarted replica need not learn them again (free: it rides on a write made anyway).
        commit: u64,
    },
    /// Delete the ops at op-numbers `from..`.
    Truncate { from: u64 },
    /// Store `checkpoint` in place of the one stored (if it is newer) and drop the ops it
    /// covers (`1..=checkpoint.op`). The ops after it are kept if the stored log holds its last
    /// op with the same view, and dropped otherwise (`checkpoint::compact`).
    Checkpoint { checkpoint: Arc<Checkpoint> },
}

/// A replica's disk image. Empty unless `durable` is on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrDisk {
    pub view: u64,
    pub last_normal: u64,
    /// `log[i - 1 - c]` is the op with op-number `i`, where `c` is the checkpoint's op-number
    /// (0 without one).
    pub log: Vec<Entry>,
    /// The latest checkpoint, covering ops `1..=c`.
    #[serde(default)]
    pub checkpoint: Option<Arc<Checkpoint>>,
    /// A commit-number the replica knew at its last append (a lower bound of what is
    /// committed).
    #[serde(default)]
    pub commit: u64,
}

impl VrrDisk {
    /// Op-number of the last op covered by the stored checkpoint (0 without one).
    pub fn checkpoint_op(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, |c| c.op)
    }
    /// The op-number of the last op stored.
    pub fn op(&self) -> u64 {
        self.checkpoint_op() + self.log.len() as u64
    }
}

/// VRR's timers. One slot per name and node.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum VrrTimer {
    /// The primary's commit interval (heartbeat).
    Heartbeat,
    /// A backup's primary-failure timeout, and the view-change timeout.
    ViewChange,
    /// Retransmission of StartViewChange and DoViewChange during a view change.
    Resend,
    /// A recovering replica's retry.
    Recovery,
    /// Client proxy retry timer.
    ClientRetry,
}

impl TimerName for VrrTimer {
    const ALL: &'static [Self] = &[
        VrrTimer::Heartbeat,
        VrrTimer::ViewChange,
        VrrTimer::Resend,
        VrrTimer::Recovery,
        VrrTimer::ClientRetry,
    ];
    fn index(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        match self {
            VrrTimer::Heartbeat => "heartbeat",
            VrrTimer::ViewChange => "view_change",
            VrrTimer::Resend => "resend",
            VrrTimer::Recovery => "recovery",
            VrrTimer::ClientRetry => "client_retry",
        }
    }
}

/// The validated configuration shared by every node of a run (durations in nanoseconds).
#[derive(Debug)]
pub(crate) struct Params {
    /// View-change timeout range `[min, max)`.
    pub view_change: (Time, Time),
    pub commit_interval: Time,
    pub client_timeout: Time,
    pub max_entries: u64,
    pub client_max_attempts: Option<u32>,
    pub durable: bool,
    pub view_change_backoff: bool,
    /// Ops executed beyond the last checkpoint that trigger a new one (`None`: never).
    pub checkpoint_interval: Option<u64>,
    /// The servers, in configured order: the replica order.
    pub servers: Vec<NodeId>,
    /// `pos[id.index()]`: the position (replica number) of server `id` in `servers`.
    pub pos: Vec<Option<usize>>,
    /// Replicas in a quorum (f + 1 for n = 2f + 1).
    pub quorum: usize,
}

impl Params {
    pub fn pos(&self, id: NodeId) -> Option<usize> {
        self.pos.get(id.index()).copied().flatten()
    }
    /// The primary of `view`.
    pub fn primary(&self, view: u64) -> NodeId {
        self.servers[(view % self.servers.len() as u64) as usize]
    }
}

/// The VRR protocol: its validated configuration and node constructors.
#[derive(Clone, Debug)]
pub struct Vrr {
    config: VrrConfig,
    params: Arc<Params>,
    warnings: Vec<ConfigIssue>,
}

impl Vrr {
    /// The configuration as given (defaults filled in by serde).
    pub fn config(&self) -> &VrrConfig {
        &self.config
    }
}

impl Protocol for Vrr {
    const NAME: &'static str = "vrr";
    type Config = VrrConfig;
    type Msg = VrrMsg;
    type Timer = VrrTimer;
    type Write = VrrWrite;
    type Disk = VrrDisk;
    type Server = VrrServer;
    type Client = VrrClient;

    fn new(config: VrrConfig, cluster: &Cluster) -> Result<Self, ConfigIssue> {
        let (params, warnings) = config.resolve(cluster)?;
        Ok(Vrr {
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
        serde_json::json!({
            "view_change_timeout_ms": [time_to_ms(p.view_change.0), time_to_ms(p.view_change.1)],
            "commit_interval_ms": time_to_ms(p.commit_interval),
            "client_timeout_ms": time_to_ms(p.client_timeout),
            "client_max_attempts": p.client_max_attempts,
            "max_entries_per_message": p.max_entries,
            "durable": p.durable,
            "view_change_backoff": p.view_change_backoff,
            "checkpoint_interval": p.checkpoint_interval,
            "quorum": p.quorum,
        })
    }

    /// A diskless replica's image stays empty: it shows view 0 and no log while down.
    fn durable_position(disk: &VrrDisk) -> Option<(u64, u64)> {
        Some((disk.view, disk.op()))
    }

    fn apply_write(disk: &mut VrrDisk, write: &VrrWrite) {
        match write {
            VrrWrite::View { view, last_normal } => {
                disk.view = *view;
                disk.last_normal = *last_normal;
            }
            VrrWrite::Append {
                first_index,
                entries,
                commit,
            } => {
                // Ops at or below the checkpoint are committed, hence the same: skipped.
                let base = disk.checkpoint_op();
                let first = (*first_index).max(1);
                let skip = (base + 1).saturating_sub(first) as usize;
                let keep = first.saturating_sub(1).saturating_sub(base) as usize;
                debug_assert!(keep <= disk.log.len(), "append leaves a gap in the log");
                disk.log.truncate(keep);
                disk.log
                    .extend_from_slice(entries.get(skip..).unwrap_or_default());
                disk.commit = disk.commit.max(*commit).min(disk.op());
            }
            VrrWrite::Truncate { from } => {
                let base = disk.checkpoint_op();
                disk.log
                    .truncate(from.saturating_sub(1).saturating_sub(base) as usize);
                // Committed ops are never truncated; the bound only keeps the number in range.
                disk.commit = disk.commit.min(disk.op());
            }
            VrrWrite::Checkpoint { checkpoint } => {
                let base = disk.checkpoint_op();
                if checkpoint.op > base {
                    checkpoint::compact(&mut disk.log, base, checkpoint);
                    disk.checkpoint = Some(checkpoint.clone());
                    disk.commit = disk.commit.max(checkpoint.op);
                }
            }
        }
    }

    fn server(&self, me: NodeId, disk: &VrrDisk) -> VrrServer {
        VrrServer::from_disk(self.params.clone(), me, disk)
    }

    fn client(&self, me: NodeId) -> VrrClient {
        VrrClient::new(self.params.clone(), me)
    }
}
