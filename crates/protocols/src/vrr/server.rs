//! A VRR replica: state, input dispatch and observation. Normal operation lives in
//! `normal.rs`, view changes in `view_change.rs`, recovery and state transfer in
//! `transfer.rs`.

use super::{Checkpoint, Entry, Params, Vrr, VrrDisk, VrrMsg, VrrTimer, VrrWrite};
use coracle_core::{Ctx, EntryId, Input, KvStore, Node, NodeId, Observation, Out, Role, Time};
use rand::RngExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A replica's status (§4).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Normal,
    ViewChange,
    Recovering,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Normal => "normal",
            Status::ViewChange => "view_change",
            Status::Recovering => "recovering",
        }
    }
}

/// Per-replica counters, summed over nodes by drivers.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerCounters {
    /// Times this replica moved to a higher view in view-change status (own timeout or a
    /// StartViewChange/DoViewChange of a higher view). Like Raft's `elections_started`.
    pub view_changes_started: u64,
    /// Times it became primary through a view change (like Raft's `elections_won`).
    pub view_changes_completed: u64,
    /// Its view-change timer fired while it was still in view-change status.
    pub view_change_timeouts: u64,
    /// Recovery protocols started (one per crash of a diskless replica).
    pub recoveries_started: u64,
    /// Recovery protocols completed.
    pub recoveries_completed: u64,
    /// GetState requests sent.
    pub state_transfers: u64,
    /// State transfers into a newer view completed (the replica's log was replaced).
    pub state_transfers_completed: u64,
    /// Prepare messages sent (retransmissions included).
    pub prepares_sent: u64,
    /// Commit messages sent.
    pub commits_sent: u64,
    /// Ops it assigned as primary.
    pub entries_appended: u64,
    /// Ops executed on its state machine (re-executions after a recovery included).
    pub entries_applied: u64,
    /// Client requests it received.
    pub client_requests_received: u64,
    /// Client requests answered with a redirect (backup in normal status).
    pub redirects: u64,
    /// Client requests answered at once from the client table (retries of executed ops).
    pub duplicate_requests: u64,
    /// Checkpoints taken (`checkpoint_interval`).
    pub checkpoints_taken: u64,
    /// Another replica's checkpoint installed (state transfer or recovery).
    pub checkpoints_installed: u64,
}

impl ServerCounters {
    pub fn visit(&self, v: &mut dyn FnMut(&'static str, u64)) {
        v("view_changes_started", self.view_changes_started);
        v("view_changes_completed", self.view_changes_completed);
        v("view_change_timeouts", self.view_change_timeouts);
        v("recoveries_started", self.recoveries_started);
        v("recoveries_completed", self.recoveries_completed);
        v("state_transfers", self.state_transfers);
        v("state_transfers_completed", self.state_transfers_completed);
        v("prepares_sent", self.prepares_sent);
        v("commits_sent", self.commits_sent);
        v("entries_appended", self.entries_appended);
        v("entries_applied", self.entries_applied);
        v("client_requests_received", self.client_requests_received);
        v("redirects", self.redirects);
        v("duplicate_requests", self.duplicate_requests);
        v("checkpoints_taken", self.checkpoints_taken);
        v("checkpoints_installed", self.checkpoints_installed);
    }
}

/// What a DoViewChange told the new primary: the sender's log is the primary's own ops
/// `1 ..= after` followed by `entries`.
#[derive(Clone, Debug)]
pub(crate) struct DvcInfo {
    pub last_normal: u64,
    pub op: u64,
    pub commit: u64,
    pub after: u64,
    pub entries: Vec<Entry>,
}

/// One RecoveryResponse.
#[derive(Clone, Debug)]
pub(crate) struct RecoveryInfo {
    pub view: u64,
    /// The primary's checkpoint, log (after the checkpoint) and commit-number; `None` from a
    /// backup.
    pub state: Option<(Option<Arc<Checkpoint>>, Vec<Entry>, u64)>,
}

/// Most out-of-order Prepares a backup buffers.
pub(crate) const MAX_BUFFERED: usize = 1024;

/// A VRR replica.
#[derive(Clone, Debug)]
pub struct VrrServer {
    pub(crate) p: Arc<Params>,
    pub(crate) me: NodeId,
    /// Replica number: position of `me` in the server list.
    pub(crate) my_pos: usize,

    // Durable with `durable` (Figure 2 of the paper, plus the last normal view of §4.2).
    pub(crate) view: u64,
    /// The latest view in which this replica's status was normal *and* it held that view's log.
    pub(crate) last_normal: u64,
    /// `log[i - 1 - base]` is op-number `i`; the op-number is `base` plus the log's length.
    pub(crate) log: Vec<Entry>,
    /// The latest checkpoint (§5.3): the state machine after ops `1..=base`.
    pub(crate) ckpt: Option<Arc<Checkpoint>>,
    /// Op-number of the last op covered by `ckpt` (0 without one): the log holds the ops after.
    pub(crate) base: u64,
    /// By position: when we last sent that replica our checkpoint in a NewState, how many
    /// copies in a row, and the op-number that copy covered (`on_get_state`).
    pub(crate) ckpt_sent: Vec<(Option<Time>, u32, u64)>,

    // Volatile.
    pub(crate) status: Status,
    /// Commit-number (never above the op-number).
    pub(crate) commit: u64,
    /// Op-number of the last op executed.
    pub(crate) executed: u64,
    pub(crate) kv: KvStore,
    /// Highest request number executed per client (the request-number column of the paper's
    /// client table; results live in `kv`).
    pub(crate) client_table: BTreeMap<NodeId, u64>,

    // Primary.
    /// Highest op-number each replica acknowledged in this view (by position).
    pub(crate) acked: Vec<u64>,
    /// Whether the primary sent each backup a Prepare (or StartView) since the last tick.
    pub(crate) sent_since_tick: Vec<bool>,
    /// The highest commit-number the primary sent each backup in this view.
    pub(crate) told_commit: Vec<u64>,
    /// Clients waiting for this primary's reply: client -> request number.
    pub(crate) waiting: BTreeMap<NodeId, u64>,
    /// Reused buffer for the commit computation.
    pub(crate) scratch: Vec<u64>,

    // Backup.
    /// Prepares of the current view that arrived ahead of a missing one: op-number -> entry.
    pub(crate) buffered: BTreeMap<u64, Entry>,
    /// Local time of the last GetState sent.
    pub(crate) get_state_at: Option<Time>,
    /// State transfer into a newer view (`status == Normal && last_normal < view`): the ops
    /// after `transfer_base` collected so far.
    pub(crate) transfer_base: u64,
    /// The op-number the transfer completes at: the responder's at the first reply. Aiming at
    /// each reply's op-number instead never completed while the primary appended faster than
    /// one batch per round trip; past this target the replica is an ordinary backup that lags
    /// in its own view and catches up as one.
    pub(crate) transfer_target: Option<u64>,
    pub(crate) staged: Vec<Entry>,
    /// A checkpoint the responder sent in place of ops it had compacted: `staged` then holds the
    /// ops after it.
    pub(crate) staged_ckpt: Option<Arc<Checkpoint>>,

    // View change.
    /// StartViewChange received for the current view, by position.
    pub(crate) svc: Vec<bool>,
    /// The commit-number each replica reported in this view change (StartViewChange or
    /// DoViewChange), by position: where the DoViewChange and StartView suffixes start.
    pub(crate) peer_commit: Vec<Option<u64>>,
    pub(crate) dvc_sent: bool,
    /// Where the suffix of our last DoViewChange started.
    pub(crate) dvc_after: u64,
    /// Views in a row abandoned for a later one before they were stable
    /// (`view_change_backoff`); 0 once a view has been in normal operation for the longest
    /// view-change timeout.
    pub(crate) failed_view_changes: u32,
    /// Local time since which this replica has been in normal status in its view with the
    /// view's log, having heard from its primary (or being it); `None` otherwise.
    pub(crate) normal_since: Option<Time>,
    /// Retransmission rounds in the current view change (`on_resend`).
    pub(crate) resends: u32,
    /// Recovery messages sent in the current recovery (`send_recovery`).
    pub(crate) recovery_attempts: u32,
    /// When this primary last sent each replica a StartView of its view.
    pub(crate) start_view_sent: Vec<Option<Time>>,
    /// Replicas that sent this primary a PrepareOk in its view (so they hold its StartView).
    pub(crate) in_view: Vec<bool>,
    /// DoViewChange received for the current view (as its primary), by position.
    pub(crate) dvcs: Vec<Option<DvcInfo>>,

    // Recovery.
    pub(crate) nonce: u64,
    pub(crate) responses: Vec<Option<RecoveryInfo>>,

    pub(crate) c: ServerCounters,
}

impl VrrServer {
    pub(crate) fn from_disk(p: Arc<Params>, me: NodeId, disk: &VrrDisk) -> VrrServer {
        let n = p.servers.len();
        let my_pos = p.pos(me).unwrap_or(usize::MAX);
        let base = disk.checkpoint_op();
        let (kv, client_table) = match &disk.checkpoint {
            Some(c) => (c.kv.clone(), c.clients.iter().copied().collect()),
            None => (KvStore::default(), BTreeMap::new()),
        };
        VrrServer {
            me,
            my_pos,
            view: disk.view,
            last_normal: disk.last_normal,
            log: disk.log.clone(),
            ckpt: disk.checkpoint.clone(),
            base,
            ckpt_sent: vec![(None, 0, 0); n],
            status: Status::Normal,
            commit: disk.commit.max(base).min(disk.op()),
            executed: base,
            kv,
            client_table,
            acked: vec![0; n],
            sent_since_tick: vec![false; n],
            told_commit: vec![0; n],
            waiting: BTreeMap::new(),
            scratch: Vec::with_capacity(n),
            buffered: BTreeMap::new(),
            get_state_at: None,
            transfer_base: 0,
            transfer_target: None,
            staged: Vec::new(),
            staged_ckpt: None,
            svc: vec![false; n],
            peer_commit: vec![None; n],
            dvc_sent: false,
            dvc_after: 0,
            failed_view_changes: 0,
            normal_since: None,
            resends: 0,
            recovery_attempts: 0,
            start_view_sent: vec![None; n],
            in_view: vec![false; n],
            dvcs: vec![None; n],
            nonce: 0,
            responses: vec![None; n],
            c: ServerCounters::default(),
            p,
        }
    }

    /// View-number.
    pub fn view(&self) -> u64 {
        self.view
    }
    /// The latest view in which this replica was normal with that view's log.
    pub fn last_normal(&self) -> u64 {
        self.last_normal
    }
    /// Status.
    pub fn status(&self) -> Status {
        self.status
    }
    /// Op-number.
    pub fn op_number(&self) -> u64 {
        self.op()
    }
    /// Op-number of the last op covered by the latest checkpoint (0: none); the log holds the
    /// ops after it.
    pub fn checkpoint_op(&self) -> u64 {
        self.base
    }
    /// The latest checkpoint.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.ckpt.as_deref()
    }
    /// Commit-number.
    pub fn commit_number(&self) -> u64 {
        self.commit
    }
    /// Op-number of the last executed op.
    pub fn executed(&self) -> u64 {
        self.executed
    }
    /// The replicated key-value store.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }
    /// The log after the checkpoint (`log()[i - 1 - checkpoint_op()]` is op-number `i`).
    pub fn log(&self) -> &[Entry] {
        &self.log
    }
    /// True for the primary of the current view in normal status.
    pub fn is_primary(&self) -> bool {
        self.status == Status::Normal && self.p.primary(self.view) == self.me
    }
    /// True while transferring state into the current view (normal status, log not yet
    /// replaced).
    pub fn transferring(&self) -> bool {
        self.status == Status::Normal && self.last_normal < self.view
    }

    pub(crate) fn op(&self) -> u64 {
        self.base + self.log.len() as u64
    }
    /// Op `op` if the log holds it (not at or below the checkpoint).
    pub(crate) fn entry_at(&self, op: u64) -> Option<&Entry> {
        op.checked_sub(self.base + 1)
            .and_then(|i| self.log.get(i as usize))
    }
    /// The ops after `after` (which must be at least the checkpoint's op-number).
    pub(crate) fn ops_after(&self, after: u64) -> &[Entry] {
        debug_assert!(after >= self.base);
        let i = (after.saturating_sub(self.base) as usize).min(self.log.len());
        &self.log[i..]
    }
    /// In normal status with the current view's log.
    pub(crate) fn caught_up(&self) -> bool {
        self.status == Status::Normal && self.last_normal == self.view
    }
    /// The view recorded in op `op` of our log (0 for op 0, the empty prefix, and for ops below
    /// the checkpoint's, which are committed).
    pub(crate) fn view_of(&self, op: u64) -> u64 {
        match &self.ckpt {
            Some(c) if op == c.op => c.view,
            _ => self.entry_at(op).map_or(0, |e| e.view),
        }
    }
    pub(crate) fn n(&self) -> usize {
        self.p.servers.len()
    }

    /// Persists `w` when disk-based (diskless replicas write nothing).
    pub(crate) fn persist(&self, out: &mut Out<Vrr>, w: VrrWrite) {
        if self.p.durable {
            out.persist(w);
        }
    }
    pub(crate) fn persist_view(&self, out: &mut Out<Vrr>) {
        self.persist(
            out,
            VrrWrite::View {
                view: self.view,
                last_normal: self.last_normal,
            },
        );
    }

    /// Replaces the ops after `after` by `new` (ops `after + 1 ..`), persisting only what
    /// differs. Ops at or below the checkpoint are committed, hence the same: those of `new`
    /// are skipped.
    pub(crate) fn replace_log_after(&mut self, after: u64, new: &[Entry], out: &mut Out<Vrr>) {
        let skip = (self.base.saturating_sub(after) as usize).min(new.len());
        let new = &new[skip..];
        let after = after.max(self.base);
        let keep = ((after - self.base) as usize).min(self.log.len());
        let common = self.log[keep..]
            .iter()
            .zip(new.iter())
            .take_while(|(a, b)| a == b)
            .count();
        let first = after + common as u64 + 1;
        if common < new.len() {
            self.persist(
                out,
                VrrWrite::Append {
                    first_index: first,
                    entries: new[common..].to_vec(),
                    commit: self.commit,
                },
            );
        } else if keep + new.len() < self.log.len() {
            self.persist(out, VrrWrite::Truncate { from: first });
        }
        self.log.truncate(keep + common);
        self.log.extend_from_slice(&new[common..]);
        self.buffered.clear();
    }

    /// Sends `msg` to every other server.
    pub(crate) fn broadcast(&self, out: &mut Out<Vrr>, msg: &VrrMsg) {
        for (i, &s) in self.p.servers.iter().enumerate() {
            if i != self.my_pos {
                out.send(s, msg.clone());
            }
        }
    }

    /// A uniform draw from the view-change range.
    pub(crate) fn draw_timeout(&self, ctx: &mut Ctx<'_>) -> Time {
        let (lo, hi) = self.p.view_change;
        if hi > lo {
            ctx.rng.random_range(lo..hi)
        } else {
            lo
        }
    }
    /// Arms the view-change timer: in view-change status the limit on the view change, in
    /// normal status a backup's primary-failure timeout. Both grow with the views abandoned
    /// before they were stable (`view_change_backoff`).
    pub(crate) fn arm_view_change_timer(&self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        let mut after = self.draw_timeout(ctx);
        if self.p.view_change_backoff {
            after = after.saturating_mul(1 << self.failed_view_changes.min(6));
        }
        out.set_timer(VrrTimer::ViewChange, after);
    }

    /// Forgets the state of a view change, a transfer and the clients waiting for a reply.
    pub(crate) fn clear_view_state(&mut self) {
        self.svc.fill(false);
        self.dvc_sent = false;
        self.dvcs.fill(None);
        self.buffered.clear();
        self.staged.clear();
        self.staged_ckpt = None;
        self.transfer_target = None;
        self.waiting.clear();
        self.get_state_at = None;
    }

    /// A view that has been in normal operation for the longest view-change timeout is
    /// stable: the view-change backoff starts over. Not earlier: views that a stream of
    /// retransmissions or catch-up traffic ended within a timeout or two of their start
    /// reset it each time and it never damped anything.
    pub(crate) fn note_stable(&mut self, now: Time) {
        if self
            .normal_since
            .is_some_and(|t| now.saturating_sub(t) >= self.p.view_change.1)
        {
            self.failed_view_changes = 0;
        }
    }

    /// Status normal as a backup of the current view (primary-failure timer armed). Counts as
    /// the start of normal operation only with the view's log (not while transferring it).
    pub(crate) fn become_backup(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        self.status = Status::Normal;
        self.normal_since = (self.last_normal == self.view).then_some(ctx.now);
        out.cancel_timer(VrrTimer::Heartbeat);
        out.cancel_timer(VrrTimer::Resend);
        self.arm_view_change_timer(ctx, out);
    }

    /// First boot, or restart of a disk-based replica: resume in the status the disk implies.
    fn resume(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        // The state machine starts from the checkpoint on disk; the ops up to the
        // commit-number on disk are committed: execute them now.
        if let Some(c) = &self.ckpt
            && self.executed == c.op
        {
            out.restored(c.op, c.last());
        }
        self.execute(out);
        if self.view == self.last_normal {
            if self.p.primary(self.view) == self.me {
                // Everything in the log came from disk: it is durable.
                let commit = self.commit;
                self.become_primary(commit, ctx.now, out);
            } else {
                self.become_backup(ctx, out);
                // Not heard from the primary yet: its first Prepare or Commit starts the
                // clock (should it never speak, abandoning its view is no failed view change).
                self.normal_since = None;
            }
        } else {
            self.resume_view_change(ctx, out);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: VrrMsg, out: &mut Out<Vrr>) {
        // Only servers take part in the protocol; clients only send requests.
        let from_server = self.p.pos(from).is_some();
        match msg {
            VrrMsg::Request { seq, op } => self.on_request(from, seq, op, out),
            VrrMsg::Prepare {
                view,
                entry,
                op,
                commit,
            } if from_server => self.on_prepare(ctx, from, view, entry, op, commit, out),
            VrrMsg::PrepareOk { view, op } if from_server => {
                self.on_prepare_ok(from, view, op, out)
            }
            VrrMsg::Commit { view, commit } if from_server => {
                self.on_commit(ctx, from, view, commit, out)
            }
            VrrMsg::StartViewChange { view, commit } if from_server => {
                self.on_start_view_change(ctx, from, view, commit, out)
            }
            VrrMsg::DoViewChange {
                view,
                last_normal,
                op,
                commit,
                after,
                entries,
            } if from_server && suffix_fits(after, op, &entries) => self.on_do_view_change(
                ctx,
                from,
                view,
                DvcInfo {
                    last_normal,
                    op,
                    commit,
                    after,
                    entries,
                },
                out,
            ),
            VrrMsg::StartView {
                view,
                op,
                commit,
                after,
                after_view,
                entries,
            } if from_server && suffix_fits(after, op, &entries) => {
                self.on_start_view(ctx, from, view, (after, after_view), entries, commit, out)
            }
            VrrMsg::Recovery { nonce } if from_server => self.on_recovery(from, nonce, out),
            VrrMsg::RecoveryResponse {
                view,
                nonce,
                checkpoint,
                log,
                op: _,
                commit,
            } if from_server => self.on_recovery_response(
                ctx,
                from,
                view,
                nonce,
                log.map(|l| (checkpoint, l, commit)),
                out,
            ),
            VrrMsg::GetState { view, op } if from_server => {
                self.on_get_state(ctx.now, from, view, op, out)
            }
            VrrMsg::NewState {
                view,
                after,
                checkpoint,
                entries,
                op,
                commit,
            } if from_server && checkpoint.as_ref().is_none_or(|c| c.op == after) => self
                .on_new_state(
                    ctx,
                    from,
                    view,
                    (after, checkpoint),
                    entries,
                    op,
                    commit,
                    out,
                ),
            VrrMsg::Persisted { view, op } if from == self.me => self.on_persisted(view, op, out),
            _ => {}
        }
    }
}

/// A log suffix message is well formed: its entries are exactly ops `after + 1 ..= op`.
fn suffix_fits(after: u64, op: u64, entries: &[Entry]) -> bool {
    after.checked_add(entries.len() as u64) == Some(op)
}

impl Node<Vrr> for VrrServer {
    fn step(&mut self, ctx: &mut Ctx<'_>, input: Input<VrrMsg, VrrTimer>, out: &mut Out<Vrr>) {
        if self.my_pos == usize::MAX {
            return; // not a server of this cluster
        }
        match input {
            // First boot: normal status in view 0 with an empty log (or whatever a disk image
            // given to the driver says).
            Input::Start => self.resume(ctx, out),
            Input::Recover => {
                if self.p.durable {
                    self.resume(ctx, out)
                } else {
                    self.start_recovery(ctx, out)
                }
            }
            Input::Packet { from, msg } => self.on_message(ctx, from, msg, out),
            Input::Timer(VrrTimer::Heartbeat) => self.on_heartbeat(ctx.now, out),
            Input::Timer(VrrTimer::ViewChange) => self.on_view_change_timeout(ctx, out),
            Input::Timer(VrrTimer::Resend) => self.on_resend(out),
            Input::Timer(VrrTimer::Recovery) => self.on_recovery_timeout(ctx, out),
            Input::Timer(VrrTimer::ClientRetry) | Input::Request { .. } => {}
        }
    }

    fn observe(&self) -> Observation {
        let role = match self.status {
            Status::Normal if self.p.primary(self.view) == self.me => Role::Leader,
            Status::Normal => Role::Follower,
            Status::ViewChange => Role::Candidate,
            Status::Recovering => Role::Recovering,
        };
        Observation {
            role,
            term: self.view,
            leader: (self.status == Status::Normal).then(|| self.p.primary(self.view)),
            commit_index: self.commit,
            log_len: self.op(),
            last_log_term: self.view_of(self.op()),
            compacted: self.base,
        }
    }

    fn entry(&self, index: u64) -> Option<EntryId> {
        match &self.ckpt {
            Some(c) if index == c.op => Some(c.last()),
            _ => self.entry_at(index).map(Entry::id),
        }
    }

    fn counters(&self, visit: &mut dyn FnMut(&'static str, u64)) {
        self.c.visit(visit);
    }

    fn report(&self, id: &dyn Fn(NodeId) -> serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "role": self.observe().role.name(),
            "status": self.status.name(),
            "view": self.view,
            "last_normal_view": self.last_normal,
            "primary": id(self.p.primary(self.view)),
            "op_number": self.op(),
            "commit_number": self.commit,
            "executed": self.executed,
            "log_len": self.log.len(),
            "checkpoint_op": self.base,
            "kv_keys": self.kv.len(),
            "kv_commands_applied": self.kv.applied_commands(),
        })
    }
}
