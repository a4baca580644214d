//! The event queue: a timing wheel of 128-bit event keys.
//!
//! Keys order events by (time, insertion sequence) and are unique, so every correct priority
//! queue pops them in the same order: the choice of structure never changes a result, only
//! its speed. A binary or 4-ary heap spends most of a pop on comparisons whose outcome the CPU
//! cannot predict (a sift-down through three levels cost about a sixth of a `raft-5` event).
//! Most events here are due within a few milliseconds (packets on 1–2 ms links, workload
//! ticks), so they are spread over a ring of buckets by time instead:
//!
//! * the **current** bucket is kept sorted, latest first, and a pop takes its last key;
//! * the next [`SLOTS`]` - 1` buckets form a ring of unsorted lists with a bitmap of the
//!   non-empty ones; when the current bucket runs dry, the next non-empty one is found from the
//!   bitmap, becomes current and is sorted once (usually a handful of keys). The lists are
//!   linked through one shared pool of nodes, so a new queue allocates nothing per bucket
//!   (a sweep creates one queue per trial);
//! * keys beyond the ring's reach (long timers, timeline actions) wait in a 4-ary heap and move
//!   into the ring as it advances.
//!
//! Written here because no maintained crate offers a timing wheel that pops exact keys in
//! order; the far heap is `dary_heap`.

use dary_heap::QuaternaryHeap;
use std::cmp::Reverse;

/// Buckets in the ring (a power of two). With [`WIDTH_SHIFT`] the ring reaches about 33.5 ms
/// ahead: packets and think times fall inside it; heartbeats, election timeouts and timeline
/// actions mostly wait in the far heap until it comes round.
const SLOTS: usize = 1024;
const MASK: u64 = SLOTS as u64 - 1;
const WORDS: usize = SLOTS / 64;
/// A bucket spans 2^15 ns (about 32.8 µs): one or two events each at the densities of the
/// benchmark scenarios (16, 65 and 131 µs measured slower on `raft-5`).
const WIDTH_SHIFT: u32 = 15;

/// A min-queue of unique `u128` keys whose top 64 bits are a time in nanoseconds.
#[derive(Debug)]
pub(super) struct EventQueue {
    /// Absolute number of the current bucket (time >> WIDTH_SHIFT).
    cur: u64,
    /// Keys of the current bucket (or earlier), sorted latest first.
    current: Vec<u128>,
    /// `heads[b & MASK]` starts the list of the keys of bucket `b`, for
    /// `cur < b < cur + SLOTS` (NIL: empty).
    heads: Box<[u32; SLOTS]>,
    /// List nodes of all buckets; unused ones are linked from `free`.
    nodes: Vec<Node>,
    free: u32,
    /// Bit `s` set: `ring[s]` is not empty.
    bits: [u64; WORDS],
    /// Keys of buckets at or beyond `cur + SLOTS`.
    far: QuaternaryHeap<Reverse<u128>>,
    /// Bucket of the least far key (u64::MAX: none), so that advancing the ring tests one
    /// number instead of peeking into the heap.
    far_next: u64,
    len: usize,
}

const NIL: u32 = u32::MAX;

/// A key in a bucket's list.
#[derive(Copy, Clone, Debug)]
struct Node {
    key: u128,
    next: u32,
}

impl Default for EventQueue {
    fn default() -> Self {
        EventQueue {
            cur: 0,
            current: Vec::new(),
            heads: Box::new([NIL; SLOTS]),
            nodes: Vec::new(),
            free: NIL,
            bits: [0; WORDS],
            far: QuaternaryHeap::new(),
            far_next: u64::MAX,
            len: 0,
        }
    }
}

#[inline(always)]
fn bucket(key: u128) -> u64 {
    ((key >> 64) as u64) >> WIDTH_SHIFT
}

impl EventQueue {
    /// Number of queued keys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds `key`.
    #[inline]
    pub fn push(&mut self, key: u128) {
        self.len += 1;
        let b = bucket(key);
        if b <= self.cur {
            // Due within the current bucket: into its sorted list (after the later keys).
            let pos = self.current.partition_point(|&k| k > key);
            self.current.insert(pos, key);
        } else if b < self.cur + SLOTS as u64 {
            self.link(b, key);
        } else {
            self.far.push(Reverse(key));
            self.far_next = self.far_next.min(b);
        }
    }

    /// The least key, if any (moving the next bucket into place when the current one is
    /// empty).
    #[inline]
    pub fn peek(&mut self) -> Option<u128> {
        if let Some(&k) = self.current.last() {
            return Some(k);
        }
        self.refill();
        self.current.last().copied()
    }

    /// Removes the key [`EventQueue::peek`] returned (call `peek` first: it is what moves the
    /// next bucket into place).
    #[inline]
    pub fn pop(&mut self) {
        if self.current.pop().is_some() {
            self.len -= 1;
        }
    }

    /// Adds `key` to the list of ring bucket `b`.
    #[inline(always)]
    fn link(&mut self, b: u64, key: u128) {
        let s = (b & MASK) as usize;
        let node = Node {
            key,
            next: self.heads[s],
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.nodes[i as usize].next;
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        self.heads[s] = i;
        self.bits[s / 64] |= 1 << (s % 64);
    }

    /// The current bucket is empty: makes the next non-empty bucket current.
    #[cold] // called about once per event, but measured faster out of line
    fn refill(&mut self) {
        if self.len == 0 {
            return;
        }
        let next = match self.next_in_ring() {
            Some(b) => b,
            None if self.far_next != u64::MAX => self.far_next,
            None => return,
        };
        self.cur = next;
        let s = (next & MASK) as usize;
        if self.bits[s / 64] & (1 << (s % 64)) != 0 {
            self.bits[s / 64] &= !(1 << (s % 64));
            let mut i = std::mem::replace(&mut self.heads[s], NIL);
            while i != NIL {
                let n = self.nodes[i as usize];
                self.current.push(n.key);
                self.nodes[i as usize].next = self.free;
                self.free = i;
                i = n.next;
            }
        }
        // The ring now reaches further: bring in the far keys it covers.
        let end = self.cur + SLOTS as u64;
        if self.far_next < end {
            while let Some(&Reverse(k)) = self.far.peek() {
                let b = bucket(k);
                if b >= end {
                    break;
                }
                self.far.pop();
                if b <= self.cur {
                    self.current.push(k);
                } else {
                    self.link(b, k);
                }
            }
            self.far_next = self.far.peek().map_or(u64::MAX, |&Reverse(k)| bucket(k));
        }
        // Latest first. Most buckets hold one or two keys: no call into the sort for those.
        match self.current.len() {
            0 | 1 => {}
            2 => {
                if self.current[0] < self.current[1] {
                    self.current.swap(0, 1);
                }
            }
            _ => self.current.sort_unstable_by(|a, b| b.cmp(a)),
        }
    }

    /// The first non-empty bucket after `cur` in the ring, as an absolute bucket number.
    #[inline]
    fn next_in_ring(&self) -> Option<u64> {
        let start = ((self.cur + 1) & MASK) as usize;
        let (w0, b0) = (start / 64, start % 64);
        // Usually the next non-empty bucket is close: in the rest of the first word.
        let near = self.bits[w0] >> b0;
        if near != 0 {
            return Some(self.cur + 1 + u64::from(near.trailing_zeros()));
        }
        for i in 0..=WORDS {
            let w = (w0 + i) % WORDS;
            let mut word = self.bits[w];
            if i == 0 {
                word &= !0u64 << b0;
            } else if i == WORDS {
                word &= (1u64 << b0).wrapping_sub(1);
            }
            if word != 0 {
                let s = (w * 64 + word.trailing_zeros() as usize) as u64;
                let ahead = s.wrapping_sub(start as u64) & MASK;
                return Some(self.cur + 1 + ahead);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(time: u64, seq: u64) -> u128 {
        ((time as u128) << 64) | seq as u128
    }

    /// Runs `ops` against the queue and a sorted-set model: `Some(delay)` pushes an event
    /// `delay` ns after the last popped time, `None` pops.
    fn check(ops: Vec<Option<u64>>) -> Result<(), TestCaseError> {
        let mut q = EventQueue::default();
        let mut model = std::collections::BTreeSet::new();
        let mut now = 0;
        for (seq, op) in ops.into_iter().enumerate() {
            match op {
                Some(d) => {
                    let k = key(now + d, seq as u64);
                    q.push(k);
                    model.insert(k);
                }
                None => {
                    let want = model.pop_first();
                    prop_assert_eq!(q.peek(), want);
                    q.pop();
                    if let Some(k) = want {
                        now = (k >> 64) as u64;
                    }
                }
            }
            prop_assert_eq!(q.len(), model.len());
        }
        while let Some(want) = model.pop_first() {
            prop_assert_eq!(q.peek(), Some(want));
            q.pop();
        }
        prop_assert_eq!(q.peek(), None);
        Ok(())
    }

    /// Delays that hit the current bucket, the ring, its far edge and the far heap.
    fn delay() -> impl Strategy<Value = u64> {
        let w = 1u64 << WIDTH_SHIFT;
        prop_oneof![
            0..w,
            0..20 * w,
            (SLOTS as u64 - 2) * w..(SLOTS as u64 + 2) * w,
            0..50 * SLOTS as u64 * w,
            Just(0),
        ]
    }

    proptest! {
        #[test]
        fn pops_in_key_order(ops in proptest::collection::vec(proptest::option::weighted(0.6, delay()), 0..600)) {
            check(ops)?;
        }
    }

    #[test]
    fn equal_times_pop_in_insertion_order_and_long_gaps_are_crossed() {
        let mut q = EventQueue::default();
        for seq in [3, 1, 2] {
            q.push(key(5_000_000, seq));
        }
        q.push(key(10_000_000_000, 9)); // far beyond the ring
        q.push(key(0, 7));
        let mut got = Vec::new();
        while let Some(k) = q.peek() {
            q.pop();
            got.push(((k >> 64) as u64, k as u64));
        }
        assert_eq!(
            got,
            [
                (0, 7),
                (5_000_000, 1),
                (5_000_000, 2),
                (5_000_000, 3),
                (10_000_000_000, 9)
            ]
        );
    }
}
