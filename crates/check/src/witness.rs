//! Shrinking a non-linearizable key history to a small witness, and explaining it.
//!
//! Shrinking only ever makes *sound* changes: each one maps a sub-history `S` to `S'` such that
//! `S'` not linearizable implies `S` not linearizable. Blindly dropping operations would not be
//! sound: from `put(5); get()=5` dropping the put leaves a "read of a value never written",
//! a non-linearizable sub-history that blames the wrong thing. The sound moves are:
//!
//! * cutting the history at a time `T`: drop everything invoked at or after `T` and treat the
//!   operations still running at `T` as incomplete (reads among them are dropped) — any
//!   linearization of the whole, restricted to these operations, still works, because every
//!   operation completed before `T` precedes everything invoked after it;
//! * dropping an operation that cannot change the register (a completed read or failed CAS);
//! * dropping a write `X` whose value no remaining operation observes, unless a completed
//!   failed CAS `F` could sit between `X` and the next write in a linearization (`F` does not
//!   complete before `X` starts, and no other completed write falls wholly between them).
//!   Given a linearization with `X`, take `X` out: only failed CASes can lie between `X` and
//!   the next write (a read or successful CAS there would observe `X`'s value), incomplete ones
//!   can move to the end, and no completed one is there, so every result still holds.
//!
//! The witness reports the original records of the operations that remain. Where a cut made
//! one incomplete, its record carries more constraints than the shrunk sub-history did, so the
//! records are not linearizable either.

use crate::Operation;
use crate::search::{KOp, Outcome, Search};
use coracle_core::time::MS;
use coracle_core::{Key, Op, OpResult, Time, Value};
use std::collections::HashMap;

/// Runs sub-history checks against a deterministic step allowance.
pub(crate) struct Shrinker {
    budget: u64,
    pub used: u64,
}

impl Shrinker {
    pub fn new(budget: u64) -> Self {
        Shrinker { budget, used: 0 }
    }

    fn exhausted(&self) -> bool {
        self.used >= self.budget
    }

    /// True only if `ops` was proven non-linearizable within the remaining allowance.
    fn violates(&mut self, ops: &[KOp]) -> bool {
        if self.exhausted() {
            return false;
        }
        let mut v = ops.to_vec();
        crate::search::prune_unobserved_incomplete_writes(&mut v);
        let mut s = Search::new(v);
        let outcome = s.run(self.budget - self.used);
        self.used += s.steps;
        outcome == Outcome::Violation
    }

    /// Shrinks `ops`, known to be non-linearizable, to a small non-linearizable sub-history.
    /// `furthest` is the latest completion the failed search was blocked at: cutting just after
    /// it usually still fails (checked, if worth it) and drops everything later at once. Then
    /// delta debugging over sound removals, with chunks halving until no single removal keeps
    /// the sub-history failing. A failing check costs about as much as exploring everything up to
    /// the failure point, so halving the history each time keeps the total near two searches.
    pub fn shrink(&mut self, ops: Vec<KOp>, furthest: Time) -> Vec<KOp> {
        let early = cut(&ops, furthest.saturating_add(1));
        // A failing check costs about a whole search, so only when the cut saves a good part.
        let worth = early.len() < ops.len() && early.len() <= ops.len() - ops.len() / 8;
        let mut cur = if worth && self.violates(&early) {
            early
        } else {
            ops
        };
        cur.sort_by_key(|o| (o.invoke, o.src));

        let mut size = (cur.len() / 2).max(1);
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < cur.len() && !self.exhausted() {
                let end = (i + size).min(cur.len());
                match remove_sound(&cur, i, end) {
                    Some(trial) if self.violates(&trial) => {
                        cur = trial;
                        progressed = true;
                    }
                    _ => i = end,
                }
            }
            if self.exhausted() || (!progressed && size == 1) {
                return cur;
            }
            if !progressed {
                size = (size / 2).max(1);
            }
        }
    }
}

/// The sub-history as seen by an observer who stopped watching at time `t`.
fn cut(ops: &[KOp], t: Time) -> Vec<KOp> {
    ops.iter()
        .filter(|o| o.invoke < t)
        .filter_map(|o| match o.ret {
            Some(r) if r < t => Some(*o),
            _ if o.op.is_read() => None,
            _ => Some(KOp {
                ret: None,
                result: None,
                ..*o
            }),
        })
        .collect()
}

/// Removes as many of `ops[start..end]` as sound single removals allow (repeating, since a
/// dropped read can free the write it observed). `None` if none could be removed.
///
/// A write whose value nobody observes can be dropped unless a completed failed CAS might have
/// needed it: one that can be linearized after the write with no other write forced in
/// between (see the module docs). Writes outside the range serve as the separators, so no
/// separator disappears during the call.
fn remove_sound(ops: &[KOp], start: usize, end: usize) -> Option<Vec<KOp>> {
    let mut keep = vec![true; ops.len()];
    let mut observers: HashMap<Value, usize> = HashMap::new();
    for o in ops {
        if let Some(v) = o.observed_value() {
            *observers.entry(v).or_default() += 1;
        }
    }
    // Completed writes outside the range by invocation, with the earliest completion among
    // each suffix: the first write certainly linearized after a given time.
    let mut seps: Vec<(Time, Time)> = ops
        .iter()
        .enumerate()
        .filter(|&(i, o)| (i < start || i >= end) && o.written_value().is_some())
        .filter_map(|(_, o)| o.ret.map(|r| (o.invoke, r)))
        .collect();
    seps.sort_unstable();
    let mut first_done = vec![Time::MAX; seps.len() + 1];
    for k in (0..seps.len()).rev() {
        first_done[k] = first_done[k + 1].min(seps[k].1);
    }
    let mut removed = false;
    loop {
        // Completed failed CASes still kept, by invocation, with the latest completion among
        // each prefix.
        let mut failed: Vec<(Time, Time)> = ops
            .iter()
            .zip(&keep)
            .filter(|&(o, &k)| k && o.is_failed_cas())
            .filter_map(|(o, _)| o.ret.map(|r| (o.invoke, r)))
            .collect();
        failed.sort_unstable();
        let mut last_done = Vec::with_capacity(failed.len());
        for &(_, r) in &failed {
            last_done.push(last_done.last().map_or(r, |&m: &Time| m.max(r)));
        }
        let threatened = |o: &KOp| {
            // The first write forced after `o` completes no earlier than this.
            let sep = match o.ret {
                None => Time::MAX,
                Some(r) => first_done[seps.partition_point(|&(inv, _)| inv <= r)],
            };
            // Failed CASes invoked before then, and able to come after `o`, could sit between.
            let n = failed.partition_point(|&(inv, _)| inv <= sep);
            n > 0 && last_done[n - 1] >= o.invoke
        };
        let mut changed = false;
        for i in start..end {
            if !keep[i] {
                continue;
            }
            let o = &ops[i];
            let ok = match o.written_value() {
                None => true,
                Some(v) => {
                    let own = (o.observed_value() == Some(v)) as usize;
                    observers.get(&v).copied().unwrap_or(0) == own && !threatened(o)
                }
            };
            if ok {
                keep[i] = false;
                if let Some(v) = o.observed_value() {
                    *observers.get_mut(&v).expect("counted above") -= 1;
                }
                changed = true;
                removed = true;
            }
        }
        if !changed {
            break;
        }
    }
    removed.then(|| {
        ops.iter()
            .zip(&keep)
            .filter(|&(_, &k)| k)
            .map(|(o, _)| *o)
            .collect()
    })
}

fn fmt_time(t: Time) -> String {
    let (whole, frac) = (t / MS, t % MS);
    if frac == 0 {
        format!("{whole}ms")
    } else {
        let digits = format!("{frac:06}");
        format!("{whole}.{}ms", digits.trim_end_matches('0'))
    }
}

fn fmt_value(v: Option<Value>) -> String {
    v.map_or_else(|| "absent".to_string(), |v| v.to_string())
}

/// When `o` was invoked, with the driver's order among simultaneous events.
fn inv(o: &Operation) -> (Time, u64) {
    (o.invoke, o.invoke_order)
}

/// When `o` completed, likewise; after everything if it never did.
fn ret(o: &Operation) -> (Time, u64) {
    o.complete
        .map_or((Time::MAX, u64::MAX), |c| (c, o.complete_order))
}

fn completed(o: &Operation) -> bool {
    o.complete.is_some() && o.result.is_some()
}

/// Short description of an operation with its client and interval, e.g.
/// `get(3)=5 by #1 at [2ms, 3.5ms]`.
pub(crate) fn describe(o: &Operation) -> String {
    let result = if completed(o) { o.result } else { None };
    let body = match o.op {
        Op::Get { key } => match result {
            Some(OpResult::Value { value }) => format!("get({key})={}", fmt_value(value)),
            Some(r) => format!("get({key}) answered {r:?}"),
            None => format!("get({key})"),
        },
        Op::Put { key, value } => match result {
            None | Some(OpResult::Written) => format!("put({key}, {value})"),
            Some(r) => format!("put({key}, {value}) answered {r:?}"),
        },
        Op::Cas { key, expect, new } => {
            let head = format!("cas({key}, {}->{new})", fmt_value(expect));
            match result {
                None => head,
                Some(OpResult::Cas { ok: true }) => format!("{head}=ok"),
                Some(OpResult::Cas { ok: false }) => format!("{head}=failed"),
                Some(r) => format!("{head} answered {r:?}"),
            }
        }
    };
    let end = match o.complete {
        Some(c) if completed(o) => fmt_time(c),
        _ => "no reply".to_string(),
    };
    format!("{body} by {} at [{}, {end}]", o.client, fmt_time(o.invoke))
}

/// The value a completed operation says it found in the register, if the result pins one.
fn observed(o: &Operation) -> Option<Option<Value>> {
    if !completed(o) {
        return None;
    }
    match (o.op, o.result) {
        (Op::Get { .. }, Some(OpResult::Value { value })) => Some(value),
        (Op::Cas { expect, .. }, Some(OpResult::Cas { ok: true })) => Some(expect),
        _ => None,
    }
}

/// The value an operation may write (for incomplete ones: if it takes effect).
fn writes(o: &Operation) -> Option<Value> {
    let result = if completed(o) { o.result } else { None };
    match (o.op, result) {
        (Op::Put { value, .. }, None | Some(OpResult::Written)) => Some(value),
        (Op::Cas { new, .. }, None | Some(OpResult::Cas { ok: true })) => Some(new),
        _ => None,
    }
}

/// One or two sentences saying what cannot be ordered. Recognised shapes (a result no register
/// gives, a value with no possible source, a stale read) are stated from facts of the whole
/// key history, so they hold whatever the witness; anything else is described generically.
pub(crate) fn explain(key: Key, witness: &[Operation], key_history: &[Operation]) -> String {
    for o in witness.iter().filter(|o| completed(o)) {
        let bad = !matches!(
            (o.op, o.result),
            (Op::Get { .. }, Some(OpResult::Value { .. }))
                | (Op::Put { .. }, Some(OpResult::Written))
                | (Op::Cas { .. }, Some(OpResult::Cas { .. }))
        );
        if bad {
            return format!(
                "{} is recorded with a result that kind of operation never returns.",
                describe(o)
            );
        }
    }
    // A value read (or CAS-matched) with no write of it invoked before the reader completed.
    for o in witness {
        let Some(Some(v)) = observed(o) else { continue };
        let end = ret(o);
        let sources: Vec<&Operation> = key_history
            .iter()
            .filter(|w| writes(w) == Some(v))
            .collect();
        if sources.iter().all(|w| inv(w) > end) {
            return match sources.as_slice() {
                [] => format!(
                    "{} observed value {v}, but no operation ever writes {v} to key {key}.",
                    describe(o)
                ),
                [w] => format!(
                    "{} observed value {v}, but the only write of {v}, {}, was invoked after it \
                     completed.",
                    describe(o),
                    describe(w)
                ),
                [w, ..] => format!(
                    "{} observed value {v}, but all {} writes of {v} were invoked after it \
                     completed (the first is {}).",
                    describe(o),
                    sources.len(),
                    describe(w)
                ),
            };
        }
    }
    // A failed CAS whose expectation the register must have held: absent with no write
    // invoked yet, or a value written before it began with no other write able to intervene.
    for f in witness {
        let (Op::Cas { expect, .. }, true) = (f.op, completed(f)) else {
            continue;
        };
        if f.result != Some(OpResult::Cas { ok: false }) {
            continue;
        }
        let (f_start, f_end) = (inv(f), ret(f));
        let Some(v) = expect else {
            if key_history
                .iter()
                .all(|w| writes(w).is_none() || inv(w) > f_end)
            {
                return format!(
                    "{} cannot have failed: key {key} must still have been absent, since no \
                     write to it was invoked before the CAS completed.",
                    describe(f)
                );
            }
            continue;
        };
        for w in witness
            .iter()
            .filter(|w| writes(w) == Some(v) && completed(w))
        {
            let Some(w_end) = w.complete.filter(|_| ret(w) < f_start) else {
                continue;
            };
            // Every write of another value precedes `w` or follows `f`.
            let undisturbed = key_history.iter().all(|o| {
                writes(o).is_none_or(|x| x == v)
                    || inv(o) > f_end
                    || (completed(o) && ret(o) < inv(w))
            });
            if undisturbed {
                return format!(
                    "{} cannot have failed: the register must have held {v}, since {} \
                     completed at {} before it began and no other write could have taken effect \
                     in between.",
                    describe(f),
                    describe(w),
                    fmt_time(w_end)
                );
            }
        }
    }
    // A stale read: a completed write of another value sits between every source and the reader.
    for r in witness {
        let Some(x) = observed(r) else { continue };
        let (r_start, r_end) = (inv(r), ret(r));
        for w2 in witness {
            let Some(w) = writes(w2) else { continue };
            if !completed(w2) || Some(w) == x || ret(w2) >= r_start {
                continue;
            }
            let Some(x) = x else {
                return format!(
                    "{} saw a stale value: {} had already completed before it began, and \
                     nothing removes a key.",
                    describe(r),
                    describe(w2)
                );
            };
            let sources: Vec<&Operation> = key_history
                .iter()
                .filter(|s| writes(s) == Some(x) && inv(s) <= r_end)
                .collect();
            let overwritten = sources.iter().all(|s| completed(s) && ret(s) < inv(w2));
            if let (true, Some(first)) = (overwritten, sources.first()) {
                let which = if sources.len() == 1 {
                    format!(
                        "the only write of {x} it could have seen, {}",
                        describe(first)
                    )
                } else {
                    format!(
                        "every write of {x} it could have seen (e.g. {})",
                        describe(first)
                    )
                };
                return format!(
                    "{} saw a stale value: {} completed before it began, and {which}, had \
                     completed before that write was invoked.",
                    describe(r),
                    describe(w2)
                );
            }
        }
    }
    let mut s = format!(
        "No order of these {} operations on key {key} respects both their real-time order and \
         the register's semantics",
        witness.len()
    );
    if witness.len() <= 6 {
        let list: Vec<String> = witness.iter().map(describe).collect();
        s.push_str(": ");
        s.push_str(&list.join("; "));
    }
    s.push('.');
    s
}
