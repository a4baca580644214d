//! The replicated application: a key-value store with sessions.
//!
//! Every protocol replicates the same state machine so that the same workload, the same checks
//! and the same metrics apply to all of them. Commands carry the client's id and a per-client
//! sequence number; the store remembers each client's latest sequence number and result, so a
//! retried command is applied at most once and the original result is returned (Raft thesis
//! §6.3, VRR's client table).

use crate::NodeId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Keys are small integers: a workload names a key space `0..keys`.
pub type Key = u32;
/// Values are integers; workloads write values unique per (client, operation) so that a read
/// identifies the write it observed.
pub type Value = u64;

/// A client operation.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Read a key.
    Get { key: Key },
    /// Overwrite a key.
    Put { key: Key, value: Value },
    /// Set `key` to `new` if its current value is `expect` (`None`: the key is absent).
    Cas {
        key: Key,
        expect: Option<Value>,
        new: Value,
    },
}

impl Op {
    /// The key the operation touches (linearizability is checked per key).
    pub fn key(&self) -> Key {
        match *self {
            Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } => key,
        }
    }

    /// True for operations that cannot change the store.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. })
    }
}

/// The result of an operation, as the state machine computed it.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OpResult {
    /// A `Get`'s value (`None`: absent).
    Value { value: Option<Value> },
    /// A `Put` took effect.
    Written,
    /// A `Cas`: whether it swapped.
    Cas { ok: bool },
}

/// A command as replicated in a log: who asked, their sequence number, and the operation.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Command {
    pub client: NodeId,
    pub seq: u64,
    pub op: Op,
}

impl Command {
    /// A 64-bit digest of the command, used by checkers to compare log entries cheaply.
    pub fn digest(&self) -> u64 {
        let (tag, key, a, b) = match self.op {
            Op::Get { key } => (1u64, key, 0, 0),
            Op::Put { key, value } => (2, key, value, 0),
            Op::Cas { key, expect, new } => (3, key, expect.map_or(u64::MAX, |v| v), new),
        };
        // Two rounds of mixing over the fields: cheap (it is on the checks' hot path) and
        // collisions are astronomically unlikely for the few million entries of a run.
        let x =
            (self.client.0 as u64) ^ (tag << 32) ^ ((key as u64) << 35) ^ self.seq.rotate_left(17);
        let h = crate::rng::mix64(x ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.rotate_left(29));
        h | 1 // never 0: 0 is reserved for entries without a command (no-ops)
    }
}

/// What a session remembers about one client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    result: OpResult,
}

/// A map from small integers: those below `DENSE` in a vector indexed by them, the rest in a
/// B-tree. Workload key spaces are `0..keys` (usually hundreds or thousands of keys) and
/// clients are node indexes, and the store is applied on every server for every entry: an
/// index beats a B-tree search several times over, while the tree keeps a key space of
/// billions, or a client id out of a corrupt message, from allocating for ids never written.
/// (Written here because no well-kept crate offers exactly this; it is a few lines.)
#[derive(Clone, Debug)]
pub struct SmallIntMap<V> {
    /// `dense[k]` is `k`'s value; grown only by inserts.
    dense: Vec<Option<V>>,
    sparse: BTreeMap<u32, V>,
    len: usize,
}

const DENSE: usize = 1 << 12;

impl<V> Default for SmallIntMap<V> {
    fn default() -> Self {
        SmallIntMap {
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V: Copy> SmallIntMap<V> {
    /// The value of `k`, if any.
    pub fn get(&self, k: u32) -> Option<&V> {
        match self.dense.get(k as usize) {
            Some(v) => v.as_ref(),
            None if (k as usize) < DENSE => None,
            None => self.sparse.get(&k),
        }
    }

    /// Sets the value of `k`.
    pub fn insert(&mut self, k: u32, v: V) {
        let i = k as usize;
        let fresh = if i < DENSE {
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            self.dense[i].replace(v).is_none()
        } else {
            self.sparse.insert(k, v).is_none()
        };
        self.len += usize::from(fresh);
    }

    /// Removes `k`, returning its value.
    pub fn remove(&mut self, k: u32) -> Option<V> {
        let old = match self.dense.get_mut(k as usize) {
            Some(v) => v.take(),
            None => self.sparse.remove(&k),
        };
        self.len -= usize::from(old.is_some());
        old
    }

    /// Removes every entry (keeping the index's memory).
    pub fn clear(&mut self) {
        self.dense.iter_mut().for_each(|v| *v = None);
        self.sparse.clear();
        self.len = 0;
    }

    /// Entries in ascending order of their keys.
    fn iter(&self) -> impl Iterator<Item = (u32, V)> + '_ {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| (k as u32, v)));
        dense.chain(self.sparse.iter().map(|(k, v)| (*k, *v)))
    }
}

impl<V: Copy + PartialEq> PartialEq for SmallIntMap<V> {
    /// By content, not by how far the vector happens to have grown.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<V: Copy + Eq> Eq for SmallIntMap<V> {}

/// The key-value state machine with its client table.
///
/// Encoded (serde) as `{"data": {key: value}, "sessions": {client: {seq, result}}, "applied"}`,
/// keys ascending; the in-memory layout is tuned for [`KvStore::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    data: SmallIntMap<Value>,
    /// By the client's node index.
    sessions: SmallIntMap<Session>,
    applied: u64,
}

/// The encoded form (see [`KvStore`]), as read back.
#[derive(Deserialize)]
struct Encoded {
    data: BTreeMap<Key, Value>,
    sessions: BTreeMap<NodeId, Session>,
    applied: u64,
}

/// Serialises one of the store's maps in ascending key order, without building a copy.
struct AsMap<'a, V, K>(&'a SmallIntMap<V>, fn(u32) -> K);

impl<V: Copy + Serialize, K: Serialize> Serialize for AsMap<'_, V, K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| ((self.1)(k), v)))
    }
}

impl Serialize for KvStore {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("KvStore", 3)?;
        st.serialize_field("data", &AsMap(&self.data, |k: u32| k))?;
        st.serialize_field("sessions", &AsMap(&self.sessions, NodeId))?;
        st.serialize_field("applied", &self.applied)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for KvStore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Encoded::deserialize(d)?;
        let mut kv = KvStore {
            applied: e.applied,
            ..KvStore::default()
        };
        for (k, v) in e.data {
            kv.data.insert(k, v);
        }
        for (c, s) in e.sessions {
            kv.sessions.insert(c.0, s);
        }
        Ok(kv)
    }
}

/// Outcome of [`KvStore::apply`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Applied {
    /// The command ran now and produced this result.
    Fresh(OpResult),
    /// The command had already run (a retry): this is its original result.
    Duplicate(OpResult),
    /// An older command of a client that has since moved on: nothing to do or answer.
    Stale,
}

impl Applied {
    /// The result to send back to the client, if any.
    pub fn result(self) -> Option<OpResult> {
        match self {
            Applied::Fresh(r) | Applied::Duplicate(r) => Some(r),
            Applied::Stale => None,
        }
    }
}

impl KvStore {
    /// Applies `cmd` at most once per (client, seq). Inlined: returned through memory, the
    /// result was written in narrow pieces and read back whole right away, a store-to-load
    /// forwarding stall on every applied command (a tenth of a 100-server run).
    #[inline(always)]
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        if let Some(s) = self.sessions.get(cmd.client.0) {
            if cmd.seq == s.seq {
                return Applied::Duplicate(s.result);
            }
            if cmd.seq < s.seq {
                return Applied::Stale;
            }
        }
        let result = self.execute(&cmd.op);
        self.sessions.insert(
            cmd.client.0,
            Session {
                seq: cmd.seq,
                result,
            },
        );
        self.applied += 1;
        Applied::Fresh(result)
    }

    /// Reads without going through the client table (for read paths that bypass the log).
    pub fn read(&self, key: Key) -> Option<Value> {
        self.data.get(key).copied()
    }

    /// The result `cmd` got if it has already been applied (a retry that can be answered at once).
    pub fn cached(&self, client: NodeId, seq: u64) -> Option<OpResult> {
        self.sessions
            .get(client.0)
            .filter(|s| s.seq == seq)
            .map(|s| s.result)
    }

    /// True if `client` has already had a command with a higher sequence number applied: a
    /// request with `seq` is a late copy its client no longer waits for.
    pub fn is_stale(&self, client: NodeId, seq: u64) -> bool {
        self.sessions.get(client.0).is_some_and(|s| seq < s.seq)
    }

    /// Number of commands that took effect (duplicates excluded).
    pub fn applied_commands(&self) -> u64 {
        self.applied
    }

    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.data.len
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.data.len == 0
    }

    /// Runs `op` on the data (inlined into [`KvStore::apply`] for the same reason).
    #[inline(always)]
    fn execute(&mut self, op: &Op) -> OpResult {
        match *op {
            Op::Get { key } => OpResult::Value {
                value: self.read(key),
            },
            Op::Put { key, value } => {
                self.data.insert(key, value);
                OpResult::Written
            }
            Op::Cas { key, expect, new } => {
                let ok = self.read(key) == expect;
                if ok {
                    self.data.insert(key, new);
                }
                OpResult::Cas { ok }
            }
        }
    }
}

/// The sequential specification of one key, shared with the linearizability checker.
pub fn step_register(state: Option<Value>, op: &Op) -> (Option<Value>, OpResult) {
    match *op {
        Op::Get { .. } => (state, OpResult::Value { value: state }),
        Op::Put { value, .. } => (Some(value), OpResult::Written),
        Op::Cas { expect, new, .. } => {
            if state == expect {
                (Some(new), OpResult::Cas { ok: true })
            } else {
                (state, OpResult::Cas { ok: false })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: u32, seq: u64, op: Op) -> Command {
        Command {
            client: NodeId(client),
            seq,
            op,
        }
    }

    #[test]
    fn put_get_cas() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.apply(&cmd(9, 1, Op::Get { key: 1 })),
            Applied::Fresh(OpResult::Value { value: None })
        );
        kv.apply(&cmd(9, 2, Op::Put { key: 1, value: 5 }));
        assert_eq!(
            kv.apply(&cmd(
                9,
                3,
                Op::Cas {
                    key: 1,
                    expect: Some(4),
                    new: 6
                }
            )),
            Applied::Fresh(OpResult::Cas { ok: false })
        );
        assert_eq!(
            kv.apply(&cmd(
                9,
                4,
                Op::Cas {
                    key: 1,
                    expect: Some(5),
                    new: 6
                }
            )),
            Applied::Fresh(OpResult::Cas { ok: true })
        );
        assert_eq!(kv.read(1), Some(6));
    }

    #[test]
    fn retried_command_applies_once_and_returns_original_result() {
        let mut kv = KvStore::default();
        let c = cmd(
            3,
            1,
            Op::Cas {
                key: 0,
                expect: None,
                new: 1,
            },
        );
        assert_eq!(kv.apply(&c), Applied::Fresh(OpResult::Cas { ok: true }));
        // Re-applying would now fail the compare; the session returns the original success.
        assert_eq!(kv.apply(&c), Applied::Duplicate(OpResult::Cas { ok: true }));
        assert_eq!(kv.applied_commands(), 1);
        assert_eq!(kv.apply(&cmd(3, 0, Op::Get { key: 0 })), Applied::Stale);
    }

    #[test]
    fn small_and_large_keys_encode_as_one_ascending_map() {
        let mut kv = KvStore::default();
        kv.apply(&cmd(4, 1, Op::Put { key: 7, value: 70 }));
        kv.apply(&cmd(
            2,
            1,
            Op::Put {
                key: 4_000_000_000,
                value: 1,
            },
        ));
        kv.apply(&cmd(4, 2, Op::Put { key: 3, value: 30 }));
        kv.apply(&cmd(4, 3, Op::Put { key: 7, value: 71 }));
        assert_eq!(kv.len(), 3);
        assert_eq!(kv.read(4_000_000_000), Some(1));
        assert_eq!(kv.read(5_000), None);
        let json = serde_json::to_string(&kv).unwrap();
        assert_eq!(
            json,
            r#"{"data":{"3":30,"7":71,"4000000000":1},"sessions":{"2":{"seq":1,"result":{"result":"written"}},"4":{"seq":3,"result":{"result":"written"}}},"applied":4}"#
        );
        let back: KvStore = serde_json::from_str(&json).unwrap();
        assert_eq!(back, kv);
        assert_eq!(back.cached(NodeId(4), 3), Some(OpResult::Written));
        assert!(back.is_stale(NodeId(4), 2));
        // A client id far outside the node range (from a corrupt message) costs one tree node,
        // not a table of four billion sessions.
        let mut kv = KvStore::default();
        kv.apply(&cmd(u32::MAX, 1, Op::Put { key: 1, value: 2 }));
        assert_eq!(kv.cached(NodeId(u32::MAX), 1), Some(OpResult::Written));
        assert!(kv.sessions.dense.is_empty());
    }

    #[test]
    fn small_int_map_inserts_removes_and_clears_on_both_sides() {
        let mut m = SmallIntMap::default();
        for k in [3u32, 70_000, 0, 4095, 4096] {
            m.insert(k, k as u64 + 1);
        }
        assert_eq!(m.len, 5);
        assert_eq!(m.remove(70_000), Some(70_001));
        assert_eq!(m.remove(3), Some(4));
        assert_eq!(m.remove(3), None);
        assert_eq!(m.remove(9), None);
        assert_eq!(m.len, 3);
        assert_eq!(m.get(4096), Some(&4097));
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            [(0, 1), (4095, 4096), (4096, 4097)]
        );
        m.clear();
        assert_eq!((m.len, m.get(0), m.get(4096)), (0, None, None));
    }

    #[test]
    fn digests_differ_by_client_seq_and_op() {
        let a = cmd(1, 1, Op::Put { key: 1, value: 1 }).digest();
        assert_ne!(a, cmd(2, 1, Op::Put { key: 1, value: 1 }).digest());
        assert_ne!(a, cmd(1, 2, Op::Put { key: 1, value: 1 }).digest());
        assert_ne!(a, cmd(1, 1, Op::Put { key: 1, value: 2 }).digest());
        assert_ne!(a, 0);
    }
}
