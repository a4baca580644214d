//! Linearizability checking of key-value client histories.
//!
//! A driver records every client [`Operation`]: what was asked, when the application issued it
//! and, if it ever finished, when and with what result. [`check`] decides whether some total
//! order of the operations (a *linearization*) exists that respects real time (an operation
//! that completed before another was invoked comes first) and in which every result is what the
//! sequential key-value store ([`coracle_core::kv::step_register`]) would have returned. The
//! answer is a [`Report`] whose [`Verdict`] is `Ok`, a `Violation` with a small [`Witness`], or
//! `Unknown` when the deterministic search budget ran out.
//!
//! # Algorithm
//!
//! **Per-key decomposition.** Every operation touches exactly one key and keys are independent
//! registers, so the history is linearizable iff each key's sub-history is (linearizability is
//! compositional, Herlihy & Wing 1990). Keys are checked in ascending order; each starts absent.
//!
//! **Wing–Gong/Lowe search.** A key's operations become a list of *call* and *return* events
//! sorted by time (calls before returns at equal times: operations that merely touch are
//! concurrent; `a` precedes `b` only if `a.complete < b.invoke`). The search walks the list from
//! the head: at a call it tries to *linearize* that operation next — apply it to the register
//! and compare with the recorded result — and on success *lifts* its call and return entries
//! out of the doubly linked list and restarts from the head; at a return it has found an
//! operation that had to take effect already, so it backtracks: pops the last linearized
//! operation, restores the register and *unlifts* its entries (dancing links, O(1)). The key is
//! linearizable when every completed operation has been lifted, and not linearizable when a
//! return is reached with nothing left to undo. This is Wing & Gong's algorithm with Lowe's
//! refinements, as in Porcupine (Athalye) and Horn & Kroening, *Faster linearizability checking
//! via P-compositionality* (2015).
//!
//! **Memoisation.** A configuration is (set of linearized operations, register state); reaching
//! one twice cannot lead anywhere new, so visited configurations are cached and a lift into a
//! cached one is undone at once. The set is not stored as a bitset over the whole key history:
//! it is determined by the operations whose calls precede the first return still in the list
//! (everything else called before that return is linearized; nothing called after it can be),
//! and those pending operations number about the concurrency at that instant. The cache key is
//! that sorted id list (or a bitmap of it, whichever is smaller) plus the state, compared
//! exactly; a 64-bit fingerprint only picks the hash bucket. Memory is therefore proportional to
//! explored configurations times concurrency, not times history length.
//!
//! **Dead values.** A value that no operation still to be linearized observes (no pending read
//! returns it, no pending CAS expects it) is *dead*: nothing can tell it from any other dead
//! value, so the cache treats all dead states as one. This keeps configurations that differ
//! only in long-overwritten values from being explored separately.
//!
//! # Incomplete operations
//!
//! An operation without a completion time or without a result (the client crashed, gave up, or
//! the run ended) may or may not have taken effect, at any moment after its invocation. It is
//! treated as returning at +infinity with any result accepted, so it never constrains real-time
//! order or its own result: the search may linearize it wherever it helps, and "never took
//! effect" is the same as "took effect after everything else". Consequently:
//!
//! * incomplete reads are dropped — they cannot change the register;
//! * the search succeeds as soon as every *completed* operation is linearized;
//! * incomplete writes whose value no operation observes are dropped up front, unless a
//!   completed CAS that *failed* could come after them (it might only have failed because such
//!   a write had taken effect).
//!
//! Lost writes are the classic weak spot of this search: each one left pending could take effect
//! at any later point, multiplying the configurations. The search therefore only linearizes an
//! incomplete operation when that can matter — it changes the register, and if it writes a
//! dead value, a pending failed CAS needs the register to differ from its current value — and
//! the cache counts pending incomplete operations per class of interchangeable ones (same
//! operation; all puts of dead values) instead of naming them. A configuration met again with
//! fewer spare dead-value puts than before is pruned too, and the search spends those spares
//! last so configurations tend to be explored with the most spares first. Each of these rules
//! is justified where it is implemented (`search.rs`), and a test cross-checks the search
//! against a plain memoised search over thousands of generated histories.
//!
//! A completion time earlier than the invocation is treated as equal to it.
//!
//! # Budget and determinism
//!
//! [`Limits::max_steps`] bounds the total number of search steps (attempted lifts plus
//! backtracks; passing over an incomplete operation the rules above exclude is not a step, but
//! every entry visited counts against 50 visits per step, so that passes over lost writes
//! cannot take time out of proportion to the budget) over all keys, never wall-clock time, so
//! a report is byte-identical on every machine. Each
//! key first gets a fair share of what is left; keys that exhaust their share are resumed
//! afterwards, in key order, with everything that remains. A violation found on any key wins
//! over running out of budget on another; otherwise exhausting the budget yields
//! [`Verdict::Unknown`] naming the key. Output never depends on hash-map iteration order.
//!
//! For scale: a linearizable history costs a few steps per operation; a violation costs an
//! exhaustive search of everything before it, e.g. about 0.5 million steps for 20,000
//! operations by 5 clients on a single key, and ten times that if 1% of the writes lost their
//! reply. A step takes roughly 50–250 ns in a release build, a pass over an entry a few ns.
//!
//! # Witnesses
//!
//! Once a key fails, its sub-history is shrunk with an allowance of another `max_steps` steps:
//! first by cutting it just after the latest point the search was blocked at, then by delta
//! debugging — removing chunks of operations, then single ones, while it stays
//! non-linearizable. Only *sound* removals are tried (completed reads and failed CASes, writes
//! that no remaining operation observes and no failed CAS could have needed), so a
//! non-linearizable witness implies the full history is: naively dropping a `put(5)` would turn
//! a stale read of 5 into a bogus "read of a value never written". The witness lists the
//! original records of the remaining operations, with a one- or two-sentence explanation. If
//! the allowance runs out, the witness is still a failing sub-history, only a larger one.
//!
//! For external tools, [`to_porcupine_json`] exports a history in a plain JSON form.

mod search;
mod witness;

use coracle_core::{Key, NodeId, Op, OpResult, Time};
use search::{KOp, Outcome, Search};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One client operation as recorded by a driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Who issued it (only reported; real-time order alone constrains the check).
    pub client: NodeId,
    pub op: Op,
    /// When the application issued it.
    pub invoke: Time,
    /// When the application got the answer; `None` if it never did (crash, gave up, run ended).
    pub complete: Option<Time>,
    /// The answer; `None` iff not completed (or the proxy gave up): possibly applied.
    pub result: Option<OpResult>,
    /// Order of the invocation among events at the same `invoke` time, when the driver knows it
    /// (a simulator processes simultaneous events one after another): larger is later. Events
    /// at one time with equal orders are concurrent; give orders to every operation or to none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invoke_order: u64,
    /// Order of the completion among events at the same `complete` time, as `invoke_order`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub complete_order: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

impl Operation {
    /// An operation that completed with `result`.
    pub fn completed(
        client: NodeId,
        op: Op,
        invoke: Time,
        complete: Time,
        result: OpResult,
    ) -> Self {
        Operation {
            client,
            op,
            invoke,
            complete: Some(complete),
            result: Some(result),
            invoke_order: 0,
            complete_order: 0,
        }
    }

    /// An operation with no answer: it may have taken effect at any time after `invoke`, or never.
    pub fn pending(client: NodeId, op: Op, invoke: Time) -> Self {
        Operation {
            client,
            op,
            invoke,
            complete: None,
            result: None,
            invoke_order: 0,
            complete_order: 0,
        }
    }

    /// Whether the operation has both a completion time and a result, i.e. constrains the check.
    pub fn is_complete(&self) -> bool {
        self.complete.is_some() && self.result.is_some()
    }
}

/// Deterministic search budget: a step count, not wall-clock time, so that results are
/// byte-identical across machines.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum search steps over all keys (witness shrinking gets a separate equal allowance).
    pub max_steps: u64,
}

impl Default for Limits {
    /// Five million steps (and 50 entry visits per step, see `search.rs`): far more than
    /// low-concurrency histories of 10^5 operations need, and a few seconds at most when a
    /// pathological history burns all of it (a 249,095-operation single-key history with
    /// 39,000 lost writes, whose passes over lost writes were not bounded before, took 79 s).
    fn default() -> Self {
        Limits {
            max_steps: 5_000_000,
        }
    }
}

/// The outcome of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every key's sub-history is linearizable.
    Ok,
    /// Some key's sub-history is not; the witness is a small failing part of it.
    Violation(Witness),
    /// The step budget ran out before every key was settled and no violation was found.
    Unknown { reason: String },
}

/// Evidence of a violation: a small sub-history of one key that is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    pub key: Key,
    /// The original records of the failing operations, by invocation time.
    pub operations: Vec<Operation>,
    /// What cannot be ordered, in a sentence or two.
    pub explanation: String,
}

/// The result of [`check`].
///
/// Serializes as a flat results-file record:
/// `{"status": "ok"|"violation"|"unknown", "keys_checked": n, "operations": n, "steps": n,
/// "witness": {...}|null, "reason": "..."|null}` (`reason` is set only for `unknown`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ReportRecord", try_from = "ReportRecord")]
pub struct Report {
    pub verdict: Verdict,
    /// Keys whose verdict was settled (all of them when the verdict is `Ok`).
    pub keys_checked: usize,
    /// Operations in the history given to [`check`].
    pub operations: usize,
    /// Search steps spent, including witness shrinking.
    pub steps: u64,
}

impl Report {
    /// `"ok"`, `"violation"` or `"unknown"`.
    pub fn status(&self) -> &'static str {
        match self.verdict {
            Verdict::Ok => "ok",
            Verdict::Violation(_) => "violation",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    /// The results-file form (see [`Report`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Flat serialized form of [`Report`].
#[derive(Clone, Serialize, Deserialize)]
struct ReportRecord {
    status: String,
    keys_checked: usize,
    operations: usize,
    steps: u64,
    witness: Option<Witness>,
    reason: Option<String>,
}

impl From<Report> for ReportRecord {
    fn from(r: Report) -> Self {
        let status = r.status().to_string();
        let (witness, reason) = match r.verdict {
            Verdict::Ok => (None, None),
            Verdict::Violation(w) => (Some(w), None),
            Verdict::Unknown { reason } => (None, Some(reason)),
        };
        ReportRecord {
            status,
            keys_checked: r.keys_checked,
            operations: r.operations,
            steps: r.steps,
            witness,
            reason,
        }
    }
}

impl TryFrom<ReportRecord> for Report {
    type Error = String;

    fn try_from(r: ReportRecord) -> Result<Self, String> {
        let verdict = match (r.status.as_str(), r.witness, r.reason) {
            ("ok", None, None) => Verdict::Ok,
            ("violation", Some(w), _) => Verdict::Violation(w),
            ("unknown", None, Some(reason)) => Verdict::Unknown { reason },
            (s, ..) => return Err(format!("inconsistent report with status {s:?}")),
        };
        Ok(Report {
            verdict,
            keys_checked: r.keys_checked,
            operations: r.operations,
            steps: r.steps,
        })
    }
}

/// Normalises one key's operations for the search (see the crate docs on incomplete ones).
/// The search sees ranks of `(time, order)` stamps rather than times, so that simultaneous
/// events a driver ordered (a client's completion, then its next invocation in the same
/// instant) are ordered, and all others at one time stay concurrent.
fn prepare(history: &[Operation], idxs: &[usize]) -> Vec<KOp> {
    let stamp_of = |o: &Operation| {
        let inv = (o.invoke, o.invoke_order);
        let ret = o.complete.map(|c| (c, o.complete_order).max(inv));
        (inv, ret)
    };
    let mut stamps: Vec<(Time, u64)> = Vec::with_capacity(2 * idxs.len());
    for &i in idxs {
        let (inv, ret) = stamp_of(&history[i]);
        stamps.push(inv);
        stamps.extend(ret);
    }
    stamps.sort_unstable();
    stamps.dedup();
    let rank = |s: (Time, u64)| stamps.partition_point(|&x| x < s) as Time;
    let mut ops: Vec<KOp> = idxs
        .iter()
        .filter_map(|&i| {
            let o = &history[i];
            let (inv, ret) = stamp_of(o);
            match (ret, o.result) {
                (Some(c), Some(r)) => Some(KOp {
                    src: i,
                    op: o.op,
                    invoke: rank(inv),
                    ret: Some(rank(c)),
                    result: Some(r),
                }),
                _ if o.op.is_read() => None,
                _ => Some(KOp {
                    src: i,
                    op: o.op,
                    invoke: rank(inv),
                    ret: None,
                    result: None,
                }),
            }
        })
        .collect();
    search::prune_unobserved_incomplete_writes(&mut ops);
    ops
}

/// Checks `history` for linearizability against the key-value store's sequential semantics.
pub fn check(history: &[Operation], limits: &Limits) -> Report {
    let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, o) in history.iter().enumerate() {
        by_key.entry(o.op.key()).or_default().push(i);
    }
    let max = limits.max_steps;
    let mut used = 0u64;
    let mut settled = 0usize;
    let report = |verdict, settled, steps| Report {
        verdict,
        keys_checked: settled,
        operations: history.len(),
        steps,
    };

    // First pass: every key gets a fair share of what is left, so one hard key cannot starve
    // the search for a violation elsewhere.
    let n_keys = by_key.len();
    let mut deferred: Vec<(Key, Search)> = Vec::new();
    for (n, (&key, idxs)) in by_key.iter().enumerate() {
        let mut search = Search::new(prepare(history, idxs));
        let share = (max - used) / (n_keys - n) as u64;
        let outcome = search.run(share);
        used += search.steps;
        match outcome {
            Outcome::Linearizable => settled += 1,
            Outcome::Violation => {
                let (w, steps) = build_witness(history, key, idxs, search.furthest, max);
                return report(Verdict::Violation(w), settled + 1, used + steps);
            }
            Outcome::OutOfSteps => deferred.push((key, search)),
        }
    }

    // Second pass: resume the hard keys, in key order, with everything that remains.
    let n_deferred = deferred.len();
    for (n, (key, mut search)) in deferred.into_iter().enumerate() {
        let before = search.steps;
        let outcome = search.run(before + (max - used));
        used += search.steps - before;
        match outcome {
            Outcome::Linearizable => settled += 1,
            Outcome::Violation => {
                let (w, steps) = build_witness(history, key, &by_key[&key], search.furthest, max);
                return report(Verdict::Violation(w), settled + 1, used + steps);
            }
            Outcome::OutOfSteps => {
                let others = n_deferred - n - 1;
                let mut reason = format!(
                    "search budget of {max} steps (or 50 entry visits per step) exhausted \
                     while checking key {key} ({} operations)",
                    by_key[&key].len()
                );
                if others > 0 {
                    reason.push_str(&format!("; {others} more key(s) left unsettled"));
                }
                return report(Verdict::Unknown { reason }, settled, used);
            }
        }
    }
    report(Verdict::Ok, settled, used)
}

/// Shrinks key `key`'s failing sub-history and explains it; also returns the steps spent.
fn build_witness(
    history: &[Operation],
    key: Key,
    idxs: &[usize],
    furthest: Time,
    allowance: u64,
) -> (Witness, u64) {
    let mut shrinker = witness::Shrinker::new(allowance);
    let mut kept = shrinker.shrink(prepare(history, idxs), furthest);
    kept.sort_by_key(|o| (o.invoke, o.src));
    let operations: Vec<Operation> = kept.iter().map(|o| history[o.src].clone()).collect();
    let key_history: Vec<Operation> = idxs.iter().map(|&i| history[i].clone()).collect();
    let explanation = witness::explain(key, &operations, &key_history);
    (
        Witness {
            key,
            operations,
            explanation,
        },
        shrinker.used,
    )
}

/// Exports `history` for external tools (e.g. a Porcupine model or a visualiser): a JSON array
/// with one object per operation, in history order:
///
/// ```json
/// {"client": 2, "input": {"op": "put", "key": 1, "value": 7},
///  "output": {"result": "written"}, "call": 1000000, "return": 2500000}
/// ```
///
/// `input` and `output` use the same encoding as [`Op`] and [`OpResult`]; `call` and `return`
/// are nanoseconds. An operation that never completed has `"output": null` and
/// `"return": null`; tools that need a number should use a time after every other event (and
/// accept any output), which is how [`check`] treats it. `invoke_order`/`complete_order` are
/// not exported: events at one time are concurrent for such a tool, which is weaker than
/// [`check`] with orders (a violation that needs the order may pass there).
pub fn to_porcupine_json(history: &[Operation]) -> serde_json::Value {
    serde_json::Value::Array(
        history
            .iter()
            .map(|o| {
                let done = o.is_complete();
                serde_json::json!({
                    "client": o.client,
                    "input": o.op,
                    "output": if done { o.result } else { None },
                    "call": o.invoke,
                    "return": if done { o.complete } else { None },
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
