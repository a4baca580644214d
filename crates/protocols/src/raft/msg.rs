//! Raft's wire messages (Figure 2, plus pre-vote and the client protocol).

use super::{Entry, Snapshot};
use coracle_core::{Message, NodeId, Op, OpResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A Raft message.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RaftMsg {
    /// A candidate asks for a vote in `term` (§5.2); the last log index and term let the voter
    /// apply the election restriction (§5.4.1).
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    /// A vote, or a refusal; `term` is the voter's current term.
    RequestVoteResponse { term: u64, granted: bool },
    /// A would-be candidate asks for a pre-vote (thesis §9.6). `term` is the term it would
    /// campaign in (its current term + 1); receiving this never changes the receiver's term.
    PreVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    /// A pre-vote answer. `term` is the responder's current term (a requester that sees a
    /// higher term adopts it); `request_term` echoes the request's term.
    PreVoteResponse {
        term: u64,
        request_term: u64,
        granted: bool,
    },
    /// Replication and heartbeat (§5.3). `round` numbers the leader's heartbeat rounds; the
    /// follower echoes it so that ReadIndex can tell a round started after a read arrived.
    AppendEntries {
        term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        /// Shared between the copies a broadcast sends to every follower.
        entries: Arc<[Entry]>,
        leader_commit: u64,
        round: u64,
    },
    /// The answer to an AppendEntries. On success `match_index` is the index of the last entry
    /// the request made consistent (`prev_log_index + entries`). On a failed consistency check
    /// `conflict_term` is the follower's term at `prev_log_index` (`None` when its log is
    /// shorter) and `conflict_index` the first index it stores for that term (or its last
    /// index + 1). `prev_log_index` and `round` echo the request (`round` is 0 in the answer
    /// to a request of an older term: such a round would confirm nothing).
    AppendEntriesResponse {
        term: u64,
        success: bool,
        prev_log_index: u64,
        match_index: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
        round: u64,
    },
    /// A leader brings a follower whose next entry it no longer holds up to date (thesis §5.3,
    /// the whole snapshot in one message: no chunking). `round` plays the same role as in
    /// AppendEntries. The snapshot is shared, not copied, between the leader and its messages.
    InstallSnapshot {
        term: u64,
        snapshot: Arc<Snapshot>,
        round: u64,
    },
    /// The answer to an InstallSnapshot: `term` is the follower's current term; `match_index`
    /// the index up to which its log now matches the leader's (its commit index after the
    /// install, or after finding the snapshot already known; 0 when the request was stale);
    /// `round` echoes the request.
    InstallSnapshotResponse {
        term: u64,
        match_index: u64,
        round: u64,
    },
    /// A single-server leader's note to itself that its log up to `index` is durable: sent to
    /// itself after the write, so the driver's barrier holds it until the write completed and
    /// then delivers it locally. (With more servers, any follower's acknowledgement already
    /// implies the leader's own write completed, since the AppendEntries was held behind it.)
    Persisted { term: u64, index: u64 },
    /// A client proxy's request; `seq` is its per-client sequence number (thesis §6.3).
    ClientRequest { seq: u64, op: Op },
    /// The answer to a request. `result: None` means "not the leader"; `leader_hint` then names
    /// the leader the server knows for its current term, if any.
    ClientResponse {
        seq: u64,
        result: Option<OpResult>,
        leader_hint: Option<NodeId>,
    },
}

/// The placeholder drivers leave behind when they move a message out (see [`Message`]).
impl Default for RaftMsg {
    fn default() -> Self {
        RaftMsg::Persisted { term: 0, index: 0 }
    }
}

impl Message for RaftMsg {
    fn kind(&self) -> &'static str {
        match self {
            RaftMsg::RequestVote { .. } => "request_vote",
            RaftMsg::RequestVoteResponse { .. } => "request_vote_response",
            RaftMsg::PreVote { .. } => "pre_vote",
            RaftMsg::PreVoteResponse { .. } => "pre_vote_response",
            RaftMsg::AppendEntries { .. } => "append_entries",
            RaftMsg::AppendEntriesResponse { .. } => "append_entries_response",
            RaftMsg::InstallSnapshot { .. } => "install_snapshot",
            RaftMsg::InstallSnapshotResponse { .. } => "install_snapshot_response",
            RaftMsg::Persisted { .. } => "persisted",
            RaftMsg::ClientRequest { .. } => "client_request",
            RaftMsg::ClientResponse { .. } => "client_response",
        }
    }

    /// 64 bytes of header plus 48 per log entry, or plus the snapshot's estimated size.
    fn wire_size(&self) -> u32 {
        match self {
            RaftMsg::AppendEntries { entries, .. } => {
                64u32.saturating_add(48u32.saturating_mul(entries.len() as u32))
            }
            RaftMsg::InstallSnapshot { snapshot, .. } => 64u32.saturating_add(snapshot.size),
            _ => 64,
        }
    }
}
