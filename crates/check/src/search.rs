//! The per-key Wing–Gong/Lowe search with memoisation (see the crate docs for the algorithm).

use coracle_core::kv::step_register;
use coracle_core::rng::mix64;
use coracle_core::{Op, OpResult, Time, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// End of a linked list / empty chain.
const NIL: u32 = u32::MAX;
/// Index of the sentinel entry heading the event list.
const HEAD: u32 = 0;

/// One operation of a key's sub-history, normalised for the search.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct KOp {
    /// Index of the operation in the caller's history (ties in invocation time break on it).
    pub src: usize,
    pub op: Op,
    pub invoke: Time,
    /// `None`: the operation may take effect at any point after `invoke`, or never.
    pub ret: Option<Time>,
    /// `Some` exactly when `ret` is: the result the linearization must reproduce.
    pub result: Option<OpResult>,
}

impl KOp {
    pub fn completed(&self) -> bool {
        self.ret.is_some()
    }

    /// The value this operation writes if it can change the register in some linearization.
    /// Completed operations whose recorded result says they did not write (failed CAS) or that
    /// no register could return (a put answered with a read result) never write.
    pub fn written_value(&self) -> Option<Value> {
        match (self.op, self.result) {
            (Op::Put { value, .. }, None | Some(OpResult::Written)) => Some(value),
            (Op::Cas { new, .. }, None | Some(OpResult::Cas { ok: true })) => Some(new),
            _ => None,
        }
    }

    /// The value this operation can only have observed by reading some write of it.
    pub fn observed_value(&self) -> Option<Value> {
        match (self.op, self.result) {
            (Op::Get { .. }, Some(OpResult::Value { value })) => value,
            (Op::Cas { expect, .. }, _) => expect,
            _ => None,
        }
    }

    /// A completed CAS that reported failure: it constrains the register to differ from its
    /// expectation, which is what makes removing unobserved writes unsound.
    pub fn is_failed_cas(&self) -> bool {
        matches!(self.op, Op::Cas { .. })
            && self.completed()
            && self.result == Some(OpResult::Cas { ok: false })
    }
}

/// Drops incomplete writes nobody can have observed. Such a write can be linearized at the very
/// end instead, so this does not change the verdict — unless a completed CAS that reported
/// failure could come after it: that CAS might rely on the register *not* holding its
/// expectation, which the write could have ensured. Iterates because a dropped CAS no longer
/// observes its expectation.
pub(crate) fn prune_unobserved_incomplete_writes(ops: &mut Vec<KOp>) {
    let last_failed_cas = ops
        .iter()
        .filter(|o| o.is_failed_cas())
        .filter_map(|o| o.ret)
        .max();
    loop {
        let mut observed: Vec<Value> = ops.iter().filter_map(KOp::observed_value).collect();
        observed.sort_unstable();
        let before = ops.len();
        ops.retain(|o| {
            o.completed()
                || last_failed_cas.is_some_and(|t| t >= o.invoke)
                || o.written_value()
                    .is_none_or(|v| observed.binary_search(&v).is_ok())
        });
        if ops.len() == before {
            return;
        }
    }
}

/// How a (possibly partial) search ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Linearizable,
    Violation,
    /// The step cap was reached; [`Search::run`] may be called again with a higher cap.
    OutOfSteps,
}

/// Identity hasher: memo keys are already well-mixed 64-bit fingerprints.
#[derive(Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix64(self.0 ^ b as u64);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct MemoEntry {
    next: u32,
    len: u32,
    start: usize,
    /// The most spare dead-value puts this configuration has been explored with.
    spare: u32,
}

/// Set of visited configurations (encoded as words, see [`Search::remember`]), compared
/// exactly: fingerprints only select a chain, so a hash collision can never prune a live branch.
/// Each also records how many interchangeable incomplete puts of dead values were pending: a
/// configuration with fewer such spares than an explored one can only do less, so it is
/// pruned too. (The explored one cannot be an ancestor still in progress: getting back to the
/// same configuration would need another lift that changes the state and then restores it,
/// consuming a counted operation.)
#[derive(Default)]
struct Memo {
    table: HashMap<u64, u32, BuildHasherDefault<Fingerprint>>,
    entries: Vec<MemoEntry>,
    words: Vec<u64>,
}

impl Memo {
    /// Records the configuration; false if it had been explored before with at least `spare`
    /// spare dead-value puts.
    fn insert(&mut self, key: &[u64], spare: u32) -> bool {
        let fp = key.iter().fold(0x6A09_E667_F3BC_C908, |h, &w| mix64(h ^ w));
        let head = self.table.get(&fp).copied().unwrap_or(NIL);
        let mut e = head;
        while e != NIL {
            let en = &mut self.entries[e as usize];
            if self.words[en.start..en.start + en.len as usize] == *key {
                if en.spare >= spare {
                    return false;
                }
                en.spare = spare;
                return true;
            }
            e = en.next;
        }
        let idx = u32::try_from(self.entries.len()).expect("memo exceeds 2^32 configurations");
        self.entries.push(MemoEntry {
            next: head,
            len: key.len() as u32,
            start: self.words.len(),
            spare,
        });
        self.words.extend_from_slice(key);
        self.table.insert(fp, idx);
        true
    }
}

/// Appends a canonical encoding of the sorted set of pending operation ids: a list of ids
/// packed two per word, or a bitmap from the smallest id, whichever is shorter (the choice
/// depends only on the set, so equal sets encode equally; the first word says which and how
/// long).
fn encode_pending(ids: &[u32], out: &mut Vec<u64>) {
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        out.push(0);
        return;
    };
    let dense_words = ((last - first) as usize / 64) + 1;
    let sparse_words = ids.len().div_ceil(2);
    if sparse_words <= dense_words {
        out.push(ids.len() as u64);
        for pair in ids.chunks(2) {
            let hi = pair.get(1).map_or(u32::MAX, |&x| x);
            out.push(((hi as u64) << 32) | pair[0] as u64);
        }
    } else {
        out.push((1 << 63) | first as u64);
        let base = out.len();
        out.resize(base + dense_words, 0);
        for &id in ids {
            let off = (id - first) as usize;
            out[base + off / 64] |= 1 << (off % 64);
        }
    }
}

/// A linearized operation and the scan state to restore when undoing it.
struct Frame {
    op: u32,
    state: Option<Value>,
    state_num: u32,
    spare_candidate: u32,
    /// Where the scan continues after undoing (`NIL`: just after the operation's call entry).
    resume: u32,
}

/// What to do with an incomplete operation met during a scan (see [`Search::choose`]).
enum Choice {
    Try,
    Skip,
    /// A put of a dead value: remember it, and lift it only when the scan is over.
    Defer,
}

/// Entries the search may visit per step of its budget: a pass costs a few comparisons, so
/// 50 of them keep the time of a budget-burning history near that of the steps themselves
/// (about 2.5 s for the default budget), while histories with thousands of lost writes still
/// finish (a 400 s chaos run with 3,700 failed operations needed 30 M visits for 70 k steps).
const VISITS_PER_STEP: u64 = 50;

/// A resumable WGL search over one key's sub-history.
///
/// The event list holds a call entry for every operation and a return entry for every
/// completed one (incomplete operations return "at infinity", after everything, so their
/// return entries would never be reached). Entry 0 is a sentinel head.
///
/// Values observed by some operation (a read's result, a CAS's expectation) are numbered; the
/// search tracks how many not-yet-linearized operations observe each. A value nobody left can
/// observe is *dead*: the rest of the search cannot tell it from any other dead or never
/// observed value, so the memo treats them all as one "junk" value.
pub(crate) struct Search {
    ops: Vec<KOp>,
    ent_op: Vec<u32>,
    ent_is_call: Vec<bool>,
    next: Vec<u32>,
    prev: Vec<u32>,
    call_ent: Vec<u32>,
    ret_ent: Vec<u32>,
    /// Per operation: the number of the value it observes, or `NIL`.
    observes: Vec<u32>,
    /// Per operation: the number of the value it may write, or `NIL` (none, or never observed).
    writes: Vec<u32>,
    /// Per value number: operations observing it that are not linearized.
    live: Vec<u32>,
    /// Per value number: operations that may write it and are not linearized.
    writers: Vec<u32>,
    /// For incomplete operations, the id of the first incomplete operation with the same `Op`;
    /// `NIL` for completed ones. Invoked incomplete operations of one class are interchangeable,
    /// so the memo counts them instead of naming them.
    class: Vec<u32>,
    /// Linearized operations, with what to restore when undoing each.
    stack: Vec<Frame>,
    state: Option<Value>,
    state_num: u32,
    cur: u32,
    /// The first incomplete put of a dead value worth lifting met in the current scan.
    spare_candidate: u32,
    /// Cached [`Search::failed_cas_expects_state`] for the current configuration.
    junk_wanted: Option<bool>,
    /// Completed operations not yet linearized: the search succeeds when this reaches 0 (the
    /// remaining incomplete operations then go last, or never, in any order).
    completed_left: usize,
    memo: Memo,
    pending: Vec<u32>,
    pending_classes: Vec<u64>,
    key_words: Vec<u64>,
    /// Steps taken so far (see [`Search::run`]).
    pub steps: u64,
    /// Entries visited, passes included (bounded by `VISITS_PER_STEP` × the step cap).
    visits: u64,
    /// Successful lifts (for tests of the search's efficiency).
    #[cfg(test)]
    pub lifts: u64,
    /// The latest completion time of an operation that blocked the search (a return entry it
    /// backtracked from): on a violation, nothing after it played a part.
    pub furthest: Time,
    done: Option<Outcome>,
}

impl Search {
    /// Prepares the search; `ops` may be in any order (they are sorted by invocation, then
    /// source index) and have already been pruned or not.
    pub fn new(mut ops: Vec<KOp>) -> Self {
        ops.sort_by_key(|o| (o.invoke, o.src));
        let n = ops.len();

        let mut values: Vec<Value> = ops.iter().filter_map(KOp::observed_value).collect();
        values.sort_unstable();
        values.dedup();
        let number = |v: Option<Value>| {
            v.and_then(|v| values.binary_search(&v).ok())
                .map_or(NIL, |i| i as u32)
        };
        let observes: Vec<u32> = ops.iter().map(|o| number(o.observed_value())).collect();
        let writes: Vec<u32> = ops.iter().map(|o| number(o.written_value())).collect();
        let mut live = vec![0u32; values.len()];
        for &v in observes.iter().filter(|&&v| v != NIL) {
            live[v as usize] += 1;
        }
        let mut writers = vec![0u32; values.len()];
        for &v in writes.iter().filter(|&&v| v != NIL) {
            writers[v as usize] += 1;
        }
        let mut class = vec![NIL; n];
        let mut first_of: HashMap<Op, u32> = HashMap::new();
        for (i, o) in ops.iter().enumerate() {
            if !o.completed() {
                class[i] = *first_of.entry(o.op).or_insert(i as u32);
            }
        }

        // (time, 0 = call / 1 = return, op id): at equal times calls come first, so operations
        // that touch at an instant are concurrent.
        let mut events: Vec<(Time, u8, u32)> = Vec::with_capacity(2 * n);
        for (i, o) in ops.iter().enumerate() {
            events.push((o.invoke, 0, i as u32));
            if let Some(r) = o.ret {
                events.push((r, 1, i as u32));
            }
        }
        events.sort_unstable();
        let m = events.len();
        let mut ent_op = Vec::with_capacity(m + 1);
        let mut ent_is_call = Vec::with_capacity(m + 1);
        let mut call_ent = vec![NIL; n];
        let mut ret_ent = vec![NIL; n];
        ent_op.push(NIL);
        ent_is_call.push(false);
        for (k, &(_, kind, id)) in events.iter().enumerate() {
            let e = (k + 1) as u32;
            ent_op.push(id);
            ent_is_call.push(kind == 0);
            if kind == 0 {
                call_ent[id as usize] = e;
            } else {
                ret_ent[id as usize] = e;
            }
        }
        let next: Vec<u32> = (1..=m as u32).chain(std::iter::once(NIL)).collect();
        let prev: Vec<u32> = std::iter::once(NIL).chain(0..m as u32).collect();
        let completed_left = ops.iter().filter(|o| o.completed()).count();
        Search {
            ops,
            ent_op,
            ent_is_call,
            cur: next[HEAD as usize],
            next,
            prev,
            call_ent,
            ret_ent,
            observes,
            writes,
            live,
            writers,
            class,
            stack: Vec::new(),
            state: None,
            state_num: NIL,
            spare_candidate: NIL,
            junk_wanted: None,
            completed_left,
            memo: Memo::default(),
            pending: Vec::new(),
            pending_classes: Vec::new(),
            key_words: Vec::new(),
            steps: 0,
            visits: 0,
            #[cfg(test)]
            lifts: 0,
            furthest: 0,
            done: None,
        }
    }

    /// Configurations memoised so far, with the total words of their keys.
    #[cfg(test)]
    pub fn memo_size(&self) -> (usize, usize) {
        (self.memo.entries.len(), self.memo.words.len())
    }

    /// Runs until a verdict or until `self.steps` reaches `cap`.
    ///
    /// A step is one attempted lift or one backtrack. Passing over an incomplete operation that
    /// [`Search::choose`] rules out or defers is not a step (lost operations that stay pending
    /// would inflate every scan), but every entry visited counts against `VISITS_PER_STEP`
    /// times the cap, which bounds the time those passes can take.
    pub fn run(&mut self, cap: u64) -> Outcome {
        if let Some(d) = self.done {
            return d;
        }
        loop {
            if self.completed_left == 0 {
                self.done = Some(Outcome::Linearizable);
                return Outcome::Linearizable;
            }
            let e = self.cur;
            debug_assert_ne!(e, NIL, "a return entry always precedes the end of the list");
            let mut i = self.ent_op[e as usize] as usize;
            let is_call = self.ent_is_call[e as usize];
            let mut resume = NIL;
            // Passes count too, against a larger allowance: lost writes that can never be lifted
            // sit at the head of the list and are passed over on every rescan, so with lifts
            // alone counted the time grew with (lost × completed) under a fixed budget (a
            // review measured 155 s for 1.9 M steps).
            if self.visits >= cap.saturating_mul(VISITS_PER_STEP) {
                return Outcome::OutOfSteps;
            }
            self.visits += 1;
            if is_call && !self.ops[i].completed() {
                match self.choose(i) {
                    Choice::Try => {}
                    Choice::Skip => {
                        self.cur = self.next[e as usize];
                        continue;
                    }
                    Choice::Defer => {
                        if self.spare_candidate == NIL {
                            self.spare_candidate = i as u32;
                        }
                        self.cur = self.next[e as usize];
                        continue;
                    }
                }
            }
            if self.steps >= cap {
                return Outcome::OutOfSteps;
            }
            self.steps += 1;
            if !is_call && self.spare_candidate != NIL {
                // Every other lift of this configuration has been tried: now spend a spare
                // dead-value put, then come back here to backtrack.
                i = self.spare_candidate as usize;
                self.spare_candidate = NIL;
                resume = e;
            }
            if is_call || resume != NIL {
                if let Some((new_state, new_num)) = self.apply(i) {
                    let (old_state, old_num) = (self.state, self.state_num);
                    self.lift(i);
                    self.state = new_state;
                    self.state_num = new_num;
                    if self.completed_left == 0 || self.remember() {
                        #[cfg(test)]
                        {
                            self.lifts += 1;
                        }
                        self.stack.push(Frame {
                            op: i as u32,
                            state: old_state,
                            state_num: old_num,
                            spare_candidate: self.spare_candidate,
                            resume,
                        });
                        self.spare_candidate = NIL;
                        self.junk_wanted = None;
                        self.cur = self.next[HEAD as usize];
                        continue;
                    }
                    self.state = old_state;
                    self.state_num = old_num;
                    self.unlift(i);
                }
                if resume == NIL {
                    self.cur = self.next[e as usize];
                }
            } else {
                // Operation `i` must take effect before its return; nothing pending before it
                // can go next, so undo the latest choice.
                self.furthest = self.furthest.max(self.ops[i].ret.unwrap_or(0));
                match self.stack.pop() {
                    None => {
                        self.done = Some(Outcome::Violation);
                        return Outcome::Violation;
                    }
                    Some(f) => {
                        let j = f.op as usize;
                        self.state = f.state;
                        self.state_num = f.state_num;
                        self.spare_candidate = f.spare_candidate;
                        self.junk_wanted = None;
                        self.unlift(j);
                        self.cur = match f.resume {
                            NIL => self.next[self.call_ent[j] as usize],
                            r => r,
                        };
                    }
                }
            }
        }
    }

    /// The register state (and its value number) after applying operation `i`, if its
    /// recorded result allows it.
    fn apply(&self, i: usize) -> Option<(Option<Value>, u32)> {
        let o = &self.ops[i];
        let (next, result) = step_register(self.state, &o.op);
        if o.result.is_some_and(|expected| expected != result) {
            return None;
        }
        let num = if next == self.state {
            self.state_num
        } else {
            self.writes[i]
        };
        Some((next, num))
    }

    /// Whether to lift incomplete operation `i` in the current configuration. If any
    /// linearization of the rest exists, one exists that avoids the lifts refused here:
    ///
    /// * a lift that leaves the register unchanged, or replaces a dead value (one nobody left
    ///   observes) by another: leaving the operation pending instead keeps every option open;
    /// * a lift that writes a dead value, unless a pending completed failed CAS expects the
    ///   current value: between such a write and the next real write only failed CASes can be
    ///   linearized, so the write can be dropped, or moved to just before the first of them
    ///   that needs the register to differ from its previous value — which must then be
    ///   pending now.
    ///
    /// Puts of dead values are interchangeable, so one is tried per configuration, and last:
    /// configurations are then first explored with the most of them to spare, and meeting one
    /// again with fewer spare is pruned by the memo.
    fn choose(&mut self, i: usize) -> Choice {
        let o = &self.ops[i];
        let (next, _) = step_register(self.state, &o.op);
        if next == self.state {
            return Choice::Skip;
        }
        if self.is_live(self.writes[i]) {
            return Choice::Try;
        }
        if self.state.is_some() && !self.is_live(self.state_num) {
            return Choice::Skip;
        }
        let is_put = matches!(o.op, Op::Put { .. });
        if is_put && self.spare_candidate != NIL {
            return Choice::Skip;
        }
        let wanted = match self.junk_wanted {
            Some(w) => w,
            None => {
                let w = self.failed_cas_expects_state();
                self.junk_wanted = Some(w);
                w
            }
        };
        match (wanted, is_put) {
            (false, _) => Choice::Skip,
            (true, true) => Choice::Defer,
            (true, false) => Choice::Try,
        }
    }

    /// Whether a pending completed failed CAS expects the register's current value.
    fn failed_cas_expects_state(&self) -> bool {
        let mut e = self.next[HEAD as usize];
        while e != NIL && self.ent_is_call[e as usize] {
            let f = &self.ops[self.ent_op[e as usize] as usize];
            if f.is_failed_cas() && matches!(f.op, Op::Cas { expect, .. } if expect == self.state) {
                return true;
            }
            e = self.next[e as usize];
        }
        false
    }

    /// Whether value number `v` may still be observed by an operation not yet linearized.
    fn is_live(&self, v: u32) -> bool {
        v != NIL && self.live[v as usize] > 0
    }

    /// An incomplete CAS that can never succeed from here on (the register does not hold its
    /// expectation and nothing left can write it) is inert: whether it is still pending makes
    /// no difference, so the memo ignores it.
    fn hopeless(&self, i: usize) -> bool {
        match self.ops[i].op {
            Op::Cas { expect: None, .. } => self.state.is_some(),
            Op::Cas { .. } => {
                let e = self.observes[i];
                self.state_num != e && self.writers[e as usize] == 0
            }
            _ => false,
        }
    }

    /// Memoises the current configuration (just after a lift); false if seen before.
    ///
    /// The linearized set is determined by the call entries that precede the first return entry
    /// of the list: every operation called before that return and no longer listed has been
    /// linearized, and nothing called after it can have been. Those pending calls are few (the
    /// concurrency at that instant), so they make a compact exact key: the completed ones by
    /// id, the incomplete ones as a count per class of interchangeable operations (a write of a
    /// dead value is interchangeable with any other), which keeps a handful of lost writes from
    /// multiplying the configurations by every subset of them. The state enters as absent,
    /// junk (dead or never observed) or its live value.
    fn remember(&mut self) -> bool {
        self.pending.clear();
        self.pending_classes.clear();
        let mut spare = 0u32;
        let mut e = self.next[HEAD as usize];
        while e != NIL && self.ent_is_call[e as usize] {
            let i = self.ent_op[e as usize] as usize;
            if self.class[i] == NIL {
                self.pending.push(i as u32);
            } else if !self.hopeless(i) {
                let live_write = self.is_live(self.writes[i]);
                let code = match self.ops[i].op {
                    Op::Put { .. } if !live_write => {
                        spare += 1;
                        e = self.next[e as usize];
                        continue;
                    }
                    Op::Cas { .. } if !live_write => {
                        // Same expectation, junk result: the expectation is live (this
                        // operation observes it), so its number identifies it.
                        2 | ((self.observes[i].wrapping_add(1) as u64) << 2)
                    }
                    _ => 1 | ((self.class[i] as u64) << 2),
                };
                self.pending_classes.push(code);
            }
            e = self.next[e as usize];
        }
        self.key_words.clear();
        match self.state {
            None => self.key_words.push(0),
            Some(_) if !self.is_live(self.state_num) => self.key_words.push(1),
            Some(v) => self.key_words.extend([2, v]),
        }
        encode_pending(&self.pending, &mut self.key_words);
        self.pending_classes.sort_unstable();
        for run in self.pending_classes.chunk_by(|a, b| a == b) {
            self.key_words.extend([run[0], run.len() as u64]);
        }
        self.memo.insert(&self.key_words, spare)
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    /// Takes operation `i` out of the list (it is now linearized).
    fn lift(&mut self, i: usize) {
        self.unlink(self.call_ent[i]);
        if self.ret_ent[i] != NIL {
            self.unlink(self.ret_ent[i]);
            self.completed_left -= 1;
        }
        if self.observes[i] != NIL {
            self.live[self.observes[i] as usize] -= 1;
        }
        if self.writes[i] != NIL {
            self.writers[self.writes[i] as usize] -= 1;
        }
    }

    /// Exact inverse of [`Search::lift`] (lifts are undone in LIFO order: dancing links).
    fn unlift(&mut self, i: usize) {
        if self.observes[i] != NIL {
            self.live[self.observes[i] as usize] += 1;
        }
        if self.writes[i] != NIL {
            self.writers[self.writes[i] as usize] += 1;
        }
        if self.ret_ent[i] != NIL {
            self.relink(self.ret_ent[i]);
            self.completed_left += 1;
        }
        self.relink(self.call_ent[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_encoding_is_canonical_and_compact() {
        let mut a = Vec::new();
        encode_pending(&[3, 900], &mut a);
        assert_eq!(a.len(), 2, "two far-apart ids pack into one word");
        let mut b = Vec::new();
        encode_pending(&(100..200).collect::<Vec<_>>(), &mut b);
        assert_eq!(b.len(), 3, "a dense run becomes a bitmap");
        let mut c = Vec::new();
        encode_pending(&[3], &mut c);
        let mut d = Vec::new();
        encode_pending(&[3, u32::MAX - 1], &mut d);
        assert_ne!(c, d);
    }
}
