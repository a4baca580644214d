//! Checkpoints (§5.3 "efficient recovery"; §5.2 state transfer): a replica's state machine (the
//! key-value store and the client table) after executing ops `1..=op`, which lets it drop that
//! prefix of its log.

use super::server::VrrServer;
use super::{Vrr, VrrWrite};
use coracle_core::{EntryId, KvStore, NodeId, Out};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The state machine after executing ops `1..=op` (client sessions included), the client table
/// at that point, and the identity of op `op`, so that the log stays checkable at its boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Op-number of the last op covered.
    pub op: u64,
    /// View recorded in that op.
    pub view: u64,
    /// Digest of that op's command.
    pub digest: u64,
    /// The state machine after executing `1..=op`.
    #[serde(deserialize_with = "crate::stored::kv_via_value")]
    pub kv: KvStore,
    /// The client table: the highest request number executed per client.
    pub clients: Vec<(NodeId, u64)>,
    /// Estimated encoded size in bytes (the JSON encoding of the store and the table), computed
    /// once; counted by [`coracle_core::Message::wire_size`].
    pub size: u32,
}

impl Checkpoint {
    pub fn new(op: u64, last: EntryId, kv: KvStore, clients: Vec<(NodeId, u64)>) -> Checkpoint {
        let size = crate::stored::encoded_len(&kv).saturating_add(clients.len().saturating_mul(16));
        Checkpoint {
            op,
            view: last.term,
            digest: last.digest,
            kv,
            clients,
            size: u32::try_from(size).unwrap_or(u32::MAX),
        }
    }

    /// The identity of the last op covered.
    pub fn last(&self) -> EntryId {
        EntryId {
            term: self.view,
            digest: self.digest,
        }
    }
}

/// Drops from `log` (the ops after `base`, which is below `ck.op`) the ops `ck` covers. The ops
/// after it are kept if `log` holds op `ck.op` with the checkpoint's view (then, by log
/// matching, `log` up to there is the committed prefix the checkpoint covers); otherwise the
/// whole log goes. Shared by replicas and disk images, so that both make the same choice.
pub(crate) fn compact(log: &mut Vec<super::Entry>, base: u64, ck: &Checkpoint) {
    crate::stored::drop_covered(log, base, ck.op, |e| e.view == ck.view);
}

impl VrrServer {
    /// After executing: a checkpoint at the last executed op once `checkpoint_interval` ops
    /// were executed beyond the last one. Only executed (hence committed) ops are compacted.
    pub(crate) fn maybe_checkpoint(&mut self, out: &mut Out<Vrr>) {
        let Some(interval) = self.p.checkpoint_interval else {
            return;
        };
        if self.executed.saturating_sub(self.base) < interval || self.executed > self.op() {
            return;
        }
        let op = self.executed;
        let Some(e) = self.entry_at(op) else { return };
        let clients = self.client_table.iter().map(|(&c, &s)| (c, s)).collect();
        let ck = Arc::new(Checkpoint::new(op, e.id(), self.kv.clone(), clients));
        self.log.drain(..(op - self.base) as usize);
        self.base = op;
        self.ckpt = Some(ck.clone());
        self.c.checkpoints_taken += 1;
        self.persist(out, VrrWrite::Checkpoint { checkpoint: ck });
    }

    /// Replaces the state machine by `ck` (another replica's, of committed ops beyond what we
    /// executed): the log keeps the ops after it only if it holds `ck`'s last op.
    pub(crate) fn install_checkpoint(&mut self, ck: Arc<Checkpoint>, out: &mut Out<Vrr>) {
        debug_assert!(ck.op > self.executed);
        if ck.op > self.base {
            compact(&mut self.log, self.base, &ck);
        }
        self.base = ck.op;
        self.kv = ck.kv.clone();
        self.client_table = ck.clients.iter().copied().collect();
        self.executed = ck.op;
        self.commit = self.commit.max(ck.op);
        self.buffered.retain(|&i, _| i > ck.op);
        self.c.checkpoints_installed += 1;
        self.persist(
            out,
            VrrWrite::Checkpoint {
                checkpoint: ck.clone(),
            },
        );
        out.restored(ck.op, ck.last());
        self.ckpt = Some(ck);
    }
}
