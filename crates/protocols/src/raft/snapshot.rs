//! Log compaction (§7; thesis chapter 5): snapshots of the state machine taken by every server
//! on its own, persisted in place of the log prefix they cover, and InstallSnapshot for
//! followers that lag behind the leader's snapshot (thesis §5.3, one message, no chunking).

use super::server::RaftServer;
use super::{Entry, Raft, RaftMsg, RaftWrite};
use coracle_core::{Ctx, EntryId, KvStore, NodeId, Out, Role};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A snapshot: the state machine after applying the entries `1..=index` (client sessions
/// included, so at-most-once answers survive compaction), and the identity of the last entry
/// it covers, so that the log stays checkable (`term_at(index)`, `entry(index)`) at its
/// boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Index of the last entry covered.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Digest of that entry's command (0 for a no-op).
    pub digest: u64,
    /// The state machine after applying `1..=index`.
    #[serde(deserialize_with = "crate::stored::kv_via_value")]
    pub kv: KvStore,
    /// Estimated encoded size in bytes (the length of the state machine's JSON encoding),
    /// computed once when the snapshot is taken; used by [`coracle_core::Message::wire_size`].
    pub size: u32,
}

impl Snapshot {
    /// A snapshot of `kv` whose last entry, at `index`, is `last`.
    pub fn new(index: u64, last: EntryId, kv: KvStore) -> Snapshot {
        let n = crate::stored::encoded_len(&kv);
        Snapshot {
            index,
            term: last.term,
            digest: last.digest,
            kv,
            size: u32::try_from(n).unwrap_or(u32::MAX),
        }
    }

    /// The identity of the last entry covered.
    pub fn last(&self) -> EntryId {
        EntryId {
            term: self.term,
            digest: self.digest,
        }
    }
}

/// Drops from `log` (which starts after index `base`, below `snap.index`) the entries covered
/// by `snap`: the entries after the snapshot are kept if `log` holds its last entry with the
/// same term (thesis §5.3), otherwise the whole log goes. Shared by servers and disk images,
/// so that both make the same choice.
pub(crate) fn compact(log: &mut Vec<Entry>, base: u64, snap: &Snapshot) {
    crate::stored::drop_covered(log, base, snap.index, |e| e.term == snap.term);
}

impl RaftServer {
    /// After applying: snapshot the state machine once `snapshot_threshold` entries were applied
    /// since the last snapshot.
    pub(crate) fn maybe_snapshot(&mut self, out: &mut Out<Raft>) {
        let Some(threshold) = self.p.snapshot_threshold else {
            return;
        };
        if self.last_applied.saturating_sub(self.snapshot_index()) < threshold {
            return;
        }
        let index = self.last_applied;
        let Some(e) = self.entry_at(index) else {
            return; // only under an unsafe switch that truncated applied entries
        };
        let snap = Arc::new(Snapshot::new(index, e.id(), self.kv.clone()));
        self.install_own(snap.clone());
        self.c.snapshots_taken += 1;
        self.persist_log(out, RaftWrite::Snapshot { snapshot: snap });
    }

    /// Makes our own snapshot `snap` (of entries the log holds) the current one and drops the
    /// log entries it covers, but for the last `snapshot_trailing` of them.
    fn install_own(&mut self, snap: Arc<Snapshot>) {
        let keep_from = snap
            .index
            .saturating_sub(self.p.snapshot_trailing)
            .max(self.base);
        let k = (keep_from - self.base) as usize;
        if k > 0 {
            self.base_term = self.log[k - 1].term;
            self.base_id = Some(self.log[k - 1].id());
            self.log.drain(..k);
            self.base = keep_from;
        }
        self.snapshot = Some(snap);
    }

    /// Makes `snap` (a leader's) the current snapshot and drops the log entries it covers.
    fn install(&mut self, snap: Arc<Snapshot>) {
        compact(&mut self.log, self.base, &snap);
        self.base = snap.index;
        self.base_term = snap.term;
        self.base_id = Some(snap.last());
        self.snapshot = Some(snap);
    }

    /// Leader: the peer at position `i` needs entries the log no longer holds. Sends the
    /// snapshot, unless one is already on its way (sent and not answered less than
    /// `election_timeout_min` ago, doubled for each unanswered copy up to 64×): then a
    /// heartbeat anchored at the snapshot's last entry, which keeps the follower's election
    /// timer and the leader's CheckQuorum and ReadIndex rounds going without resending the
    /// whole state machine at every round. The doubling matters on slow links: a snapshot
    /// that takes longer to cross than the wait would otherwise queue copies faster than the
    /// link carries them, with the heartbeats stuck behind them. An answer to a round sent
    /// after the last copy brings the wait back to 1× (`follower_answered`): the follower is
    /// reachable and the copy did not arrive (it was down), or it did and the answer to it is
    /// on its way; a follower back from a crash is not made to wait up to 64×.
    pub(crate) fn send_snapshot(&mut self, i: usize, out: &mut Out<Raft>) {
        let Some(snap) = self.snapshot.clone() else {
            return;
        };
        let to = self.p.servers[i];
        let wait = self
            .p
            .election
            .0
            .saturating_mul(1 << self.snapshot_tries[i].saturating_sub(1).min(6));
        let in_flight = self.snapshot_sent_at[i].is_some_and(|t| self.now.saturating_sub(t) < wait);
        let msg = if in_flight {
            RaftMsg::AppendEntries {
                term: self.term,
                prev_log_index: self.base,
                prev_log_term: self.base_term,
                entries: self.no_entries.clone(),
                leader_commit: self.commit_index,
                round: self.round,
            }
        } else {
            self.snapshot_sent_at[i] = Some(self.now);
            self.snapshot_tries[i] = self.snapshot_tries[i].saturating_add(1);
            self.snapshot_round[i] = self.round;
            self.probe_paused[i] = true;
            self.c.snapshots_sent += 1;
            RaftMsg::InstallSnapshot {
                term: self.term,
                snapshot: snap,
                round: self.round,
            }
        };
        self.send(out, to, msg);
    }

    /// Follower side of InstallSnapshot (thesis Figure 5.3).
    pub(crate) fn on_install_snapshot(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        snap: Arc<Snapshot>,
        round: u64,
        out: &mut Out<Raft>,
    ) {
        if term < self.term {
            // Round 0, as for AppendEntries: an older term's round confirms nothing.
            let reply = RaftMsg::InstallSnapshotResponse {
                term: self.term,
                match_index: 0,
                round: 0,
            };
            self.send(out, from, reply);
            return;
        }
        // The leader of the term, as for AppendEntries.
        if term > self.term {
            self.adopt_term(term);
        } else if self.role == Role::Leader {
            return; // two leaders in one term: only under an unsafe switch
        }
        self.become_follower(ctx, Some(from), out);
        self.leader_contact = Some(ctx.now);
        self.deferred_vote = None;
        self.arm_election_timer(ctx, out);

        // A snapshot at or below the commit index tells us nothing new (a duplicate, or one
        // overtaken by AppendEntries): acknowledge what we have.
        if snap.index > self.commit_index {
            self.install(snap.clone());
            self.kv = snap.kv.clone();
            self.commit_index = snap.index;
            self.last_applied = snap.index;
            self.c.snapshots_installed += 1;
            self.persist_log(
                out,
                RaftWrite::Snapshot {
                    snapshot: snap.clone(),
                },
            );
            out.restored(snap.index, snap.last());
        }
        // Every entry up to our commit index is committed, hence in the leader's log.
        let reply = RaftMsg::InstallSnapshotResponse {
            term: self.term,
            match_index: self.commit_index,
            round,
        };
        self.send(out, from, reply);
    }

    /// Leader side: an answer moves matchIndex and nextIndex like a successful AppendEntries
    /// response, and counts for CheckQuorum and ReadIndex like any response of the term.
    pub(crate) fn on_snapshot_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        match_index: u64,
        round: u64,
        out: &mut Out<Raft>,
    ) {
        let Some(i) = self.follower_answered(ctx, from, term, round, out) else {
            return;
        };
        self.snapshot_sent_at[i] = None;
        self.snapshot_tries[i] = 0;
        // Continue at once with the entries after the snapshot (a catch-up, as for batches cut
        // by the per-message cap).
        self.capped[i] = true;
        self.replicate_to(i, match_index, out);
        self.serve_reads(out);
    }
}
