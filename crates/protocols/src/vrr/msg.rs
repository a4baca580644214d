//! VRR's wire messages (Liskov & Cowling 2012, §4 and §5.2). The sender's replica number `i`
//! of the paper is not carried: the driver tells the receiver who sent a message.

use super::{Checkpoint, Entry};
use coracle_core::{Message, Op, OpResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A VRR message.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VrrMsg {
    /// `Request(op, c, s)` (§4.1): a client proxy asks for `op`; `seq` is its request number.
    Request { seq: u64, op: Op },
    /// `Reply(v, s, x)` (§4.1). `result: None` is this implementation's redirect: the replier is
    /// a backup of view `view`, whose primary the client should ask instead.
    Reply {
        view: u64,
        seq: u64,
        result: Option<OpResult>,
    },
    /// `Prepare(v, m, n, k)` (§4.1): the primary of `view` assigned op-number `op` to `entry`;
    /// `commit` is its commit-number.
    Prepare {
        view: u64,
        entry: Entry,
        op: u64,
        commit: u64,
    },
    /// `PrepareOK(v, n, i)` (§4.1): the backup holds every op up to `op` of the view's log.
    PrepareOk { view: u64, op: u64 },
    /// `Commit(v, k)` (§4.1): the primary's heartbeat and commit notice.
    Commit { view: u64, commit: u64 },
    /// `StartViewChange(v, i)` (§4.2), plus the sender's commit-number `commit` (not in the
    /// paper): the replicas learn from it how much of a log the new primary already holds.
    StartViewChange { view: u64, commit: u64 },
    /// `DoViewChange(v, l, v', n, k, i)` (§4.2): sent to the primary of `view` with the last
    /// view in which the sender's status was normal, its op-number and commit-number, and its
    /// log as a suffix (the paper's own suggestion at the end of §4.2): `entries` are its ops
    /// `after + 1 ..= op`, where `after` is at most its commit-number and at most the new
    /// primary's (from the primary's StartViewChange), so the primary holds ops `1 ..= after`
    /// already (committed ops are the same everywhere).
    DoViewChange {
        view: u64,
        last_normal: u64,
        op: u64,
        commit: u64,
        after: u64,
        entries: Vec<Entry>,
    },
    /// `StartView(v, l, n, k)` (§4.2): the new primary's op-number and commit-number, and its
    /// log as a suffix: `entries` are ops `after + 1 ..= op`, where `after` is at most the
    /// primary's commit-number, and at most the receiver's as the primary heard it in this
    /// view change if it did. `after_view` is the view recorded in the primary's op `after`
    /// (0 when `after` is 0): a receiver whose commit-number is below `after` attaches the
    /// suffix only if its own op `after` has that view (then its log up to there is the
    /// primary's), and otherwise fetches the view's log by state transfer.
    StartView {
        view: u64,
        op: u64,
        commit: u64,
        after: u64,
        after_view: u64,
        entries: Vec<Entry>,
    },
    /// `Recovery(i, x)` (§4.3) with the recovering replica's fresh nonce.
    Recovery { nonce: u64 },
    /// `RecoveryResponse(v, x, l, n, k, j)` (§4.3). Only the primary fills in `log` (and its
    /// `op`, `commit`); backups send `log: None`. With a checkpoint (§5.3) the primary's state
    /// is its `checkpoint` and `log` holds the ops after it.
    RecoveryResponse {
        view: u64,
        nonce: u64,
        checkpoint: Option<Arc<Checkpoint>>,
        log: Option<Vec<Entry>>,
        op: u64,
        commit: u64,
    },
    /// `GetState(v, n', i)` (§5.2): send me the ops of view `view` after op-number `op`.
    GetState { view: u64, op: u64 },
    /// `NewState(v, l, n, k)` (§5.2): `entries` are the responder's ops `after + 1 ..` (at most
    /// `max_entries_per_message` of them; `after` echoes the request); `op` and `commit` are
    /// the responder's op-number and commit-number. When the responder no longer holds the op
    /// after `after` (it checkpointed past it) it sends its `checkpoint` and `after` is the
    /// checkpoint's op-number (§5.3).
    NewState {
        view: u64,
        after: u64,
        checkpoint: Option<Arc<Checkpoint>>,
        entries: Vec<Entry>,
        op: u64,
        commit: u64,
    },
    /// A single durable replica's note to itself that its log up to `op` is on disk: sent after
    /// the write, so the driver's barrier holds it until the write completed (as Raft's
    /// `Persisted`). With more replicas any PrepareOK implies the primary's own write
    /// completed, because the Prepare was held behind it.
    Persisted { view: u64, op: u64 },
}

/// The placeholder drivers leave behind when they move a message out (see [`Message`]).
impl Default for VrrMsg {
    fn default() -> Self {
        VrrMsg::Commit { view: 0, commit: 0 }
    }
}

impl Message for VrrMsg {
    fn kind(&self) -> &'static str {
        match self {
            VrrMsg::Request { .. } => "request",
            VrrMsg::Reply { .. } => "reply",
            VrrMsg::Prepare { .. } => "prepare",
            VrrMsg::PrepareOk { .. } => "prepare_ok",
            VrrMsg::Commit { .. } => "commit",
            VrrMsg::StartViewChange { .. } => "start_view_change",
            VrrMsg::DoViewChange { .. } => "do_view_change",
            VrrMsg::StartView { .. } => "start_view",
            VrrMsg::Recovery { .. } => "recovery",
            VrrMsg::RecoveryResponse { .. } => "recovery_response",
            VrrMsg::GetState { .. } => "get_state",
            VrrMsg::NewState { .. } => "new_state",
            VrrMsg::Persisted { .. } => "persisted",
        }
    }

    /// 64 bytes of header plus 48 per log entry carried, plus a checkpoint's encoded size.
    fn wire_size(&self) -> u32 {
        let ck = match self {
            VrrMsg::RecoveryResponse { checkpoint, .. } | VrrMsg::NewState { checkpoint, .. } => {
                checkpoint.as_ref().map_or(0, |c| c.size)
            }
            _ => 0,
        };
        let entries = match self {
            VrrMsg::Prepare { .. } => 1,
            VrrMsg::DoViewChange { entries, .. } | VrrMsg::StartView { entries, .. } => {
                entries.len()
            }
            VrrMsg::RecoveryResponse { log, .. } => log.as_ref().map_or(0, Vec::len),
            VrrMsg::NewState { entries, .. } => entries.len(),
            _ => 0,
        };
        64u32
            .saturating_add(48u32.saturating_mul(entries.min(u32::MAX as usize) as u32))
            .saturating_add(ck)
    }
}
