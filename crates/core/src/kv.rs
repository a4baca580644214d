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
use std::collections::btree_map::Entry;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    result: OpResult,
}

/// The key-value state machine with its client table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<Key, Value>,
    sessions: BTreeMap<NodeId, Session>,
    applied: u64,
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
    /// Applies `cmd` at most once per (client, seq).
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        // One lookup of the session (this runs for every entry on every server).
        let session = Session {
            seq: cmd.seq,
            result: OpResult::Written,
        };
        let s = match self.sessions.entry(cmd.client) {
            Entry::Occupied(e) => {
                let s = e.into_mut();
                if cmd.seq == s.seq {
                    return Applied::Duplicate(s.result);
                }
                if cmd.seq < s.seq {
                    return Applied::Stale;
                }
                *s = session;
                s
            }
            Entry::Vacant(e) => e.insert(session),
        };
        s.result = execute(&mut self.data, &cmd.op);
        self.applied += 1;
        Applied::Fresh(s.result)
    }

    /// Reads without going through the client table (for read paths that bypass the log).
    pub fn read(&self, key: Key) -> Option<Value> {
        self.data.get(&key).copied()
    }

    /// The result `cmd` got if it has already been applied (a retry that can be answered at once).
    pub fn cached(&self, client: NodeId, seq: u64) -> Option<OpResult> {
        self.sessions
            .get(&client)
            .filter(|s| s.seq == seq)
            .map(|s| s.result)
    }

    /// True if `client` has already had a command with a higher sequence number applied: a
    /// request with `seq` is a late copy its client no longer waits for.
    pub fn is_stale(&self, client: NodeId, seq: u64) -> bool {
        self.sessions.get(&client).is_some_and(|s| seq < s.seq)
    }

    /// Number of commands that took effect (duplicates excluded).
    pub fn applied_commands(&self) -> u64 {
        self.applied
    }

    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Runs `op` on the data.
fn execute(data: &mut BTreeMap<Key, Value>, op: &Op) -> OpResult {
    match *op {
        Op::Get { key } => OpResult::Value {
            value: data.get(&key).copied(),
        },
        Op::Put { key, value } => {
            // Overwriting in place is much cheaper than `insert`, and keys are usually there.
            match data.get_mut(&key) {
                Some(v) => *v = value,
                None => {
                    data.insert(key, value);
                }
            }
            OpResult::Written
        }
        Op::Cas { key, expect, new } => {
            let ok = match data.get_mut(&key) {
                Some(v) if Some(*v) == expect => {
                    *v = new;
                    true
                }
                None if expect.is_none() => {
                    data.insert(key, new);
                    true
                }
                _ => false,
            };
            OpResult::Cas { ok }
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
    fn digests_differ_by_client_seq_and_op() {
        let a = cmd(1, 1, Op::Put { key: 1, value: 1 }).digest();
        assert_ne!(a, cmd(2, 1, Op::Put { key: 1, value: 1 }).digest());
        assert_ne!(a, cmd(1, 2, Op::Put { key: 1, value: 1 }).digest());
        assert_ne!(a, cmd(1, 1, Op::Put { key: 1, value: 2 }).digest());
        assert_ne!(a, 0);
    }
}
