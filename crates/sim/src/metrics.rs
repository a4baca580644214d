//! Metrics accumulated during a run: protocol-neutral measures derived from observations
//! (leaders, terms, availability), network counters, and time series for plots.
//!
//! Everything here is cheap per event; the costly summaries (quantiles) are computed once at
//! the end.

use coracle_core::{NodeId, Observation, Role, Time};

/// A latency histogram with 1% relative precision and constant memory. Written here because the
/// only need is a few quantiles of positive integers; a log-bucketed array does it in 40 lines.
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Counts of buckets `base..base + counts.len()`: only the span between the smallest and
    /// the largest bucket used is kept (latencies in ns start thousands of buckets above 0,
    /// and a dense vector from bucket 0 cost every client about 23 KB).
    counts: Vec<u64>,
    base: usize,
    pub n: u64,
    pub sum: u128,
    pub min: u64,
    pub max: u64,
}

const SUB: u64 = 128; // buckets per power of two: < 1% relative error

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Vec::new(),
            base: 0,
            n: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    fn bucket(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros() as u64; // ≥ 7
        let shift = msb - 7;
        ((shift + 1) * SUB + ((v >> shift) - SUB)) as usize
    }

    fn lower(b: usize) -> u64 {
        let b = b as u64;
        if b < SUB {
            return b;
        }
        let shift = b / SUB - 1;
        (SUB + b % SUB) << shift
    }

    /// Adds a value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        let b = Self::bucket(v);
        // In the kept span (the common case: a packet's latency is recorded every hop) one
        // compare; below it the subtraction wraps to a large index and widens the span too.
        if b.wrapping_sub(self.base) >= self.counts.len() {
            self.cover(b, b);
        }
        self.counts[b - self.base] += 1;
        self.n += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Extends the kept span to cover buckets `lo..=hi`.
    #[cold]
    #[inline(never)]
    fn cover(&mut self, lo: usize, hi: usize) {
        if self.counts.is_empty() {
            self.base = lo;
        } else if lo < self.base {
            let extra = self.base - lo;
            self.counts.splice(0..0, std::iter::repeat_n(0, extra));
            self.base = lo;
        }
        if hi >= self.base + self.counts.len() {
            self.counts.resize(hi + 1 - self.base, 0);
        }
    }

    /// The q-quantile (0 ≤ q ≤ 1), to 1%; exact at the extremes.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        if q <= 0.0 {
            return self.min;
        }
        if q >= 1.0 {
            return self.max;
        }
        let rank = ((q * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower(self.base + b).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if !other.counts.is_empty() {
            self.cover(other.base, other.base + other.counts.len() - 1);
            let at = other.base - self.base;
            for (a, b) in self.counts[at..].iter_mut().zip(&other.counts) {
                *a += b;
            }
        }
        self.n += other.n;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }
}

/// Why packets were dropped.
#[derive(Clone, Debug, Default)]
pub struct Drops {
    pub loss: u64,
    pub burst_loss: u64,
    pub queue: u64,
    pub no_route: u64,
    pub node_down: u64,
    pub link_down: u64,
    pub isolated: u64,
    pub partition: u64,
}

impl Drops {
    /// Counts one drop.
    #[inline]
    pub fn count(&mut self, cause: crate::engine::DropCause) {
        use crate::engine::DropCause::*;
        *match cause {
            Loss => &mut self.loss,
            BurstLoss => &mut self.burst_loss,
            Queue => &mut self.queue,
            NoRoute => &mut self.no_route,
            NodeDown => &mut self.node_down,
            LinkDown => &mut self.link_down,
            Isolated => &mut self.isolated,
            Partition => &mut self.partition,
        } += 1;
    }

    /// All causes with their counts, in a fixed order.
    pub fn all(&self) -> [(&'static str, u64); 8] {
        [
            ("loss", self.loss),
            ("burst_loss", self.burst_loss),
            ("queue", self.queue),
            ("no_route", self.no_route),
            ("node_down", self.node_down),
            ("link_down", self.link_down),
            ("isolated", self.isolated),
            ("partition", self.partition),
        ]
    }
}

/// Network counters.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub sent: u64,
    pub delivered: u64,
    pub loopback: u64,
    /// Extra copies made by duplicating links.
    pub duplicated: u64,
    pub drops: Drops,
    pub latency: Histogram,
    /// Messages sent, by `Message::kind`.
    pub by_kind: Vec<(&'static str, u64)>,
}

impl NetStats {
    /// Counts one message of `kind`.
    #[inline]
    pub fn count_kind(&mut self, kind: &'static str) {
        // Pointer equality first: the names are static, so this nearly always hits without
        // comparing bytes (names of equal length made the one-pass version call memcmp).
        if let Some(e) = self.by_kind.iter_mut().find(|e| std::ptr::eq(e.0, kind)) {
            e.1 += 1;
        } else if let Some(e) = self.by_kind.iter_mut().find(|e| e.0 == kind) {
            e.1 += 1;
        } else {
            self.by_kind.push((kind, 1));
        }
    }
}

/// A step function sampled at changes: (time, value).
pub type Series = Vec<(Time, u64)>;

/// Leader, term and availability measures.
#[derive(Clone, Debug, Default)]
pub struct LeaderStats {
    pub first_leader: Option<Time>,
    pub leader_elections: u64,
    pub leader_changes: u64,
    pub last_leader: Option<NodeId>,
    /// The term of the newest leader so far.
    pub leader_term: Option<u64>,
    pub max_term: u64,
    /// Availability: some leader is followed by a majority of all servers (itself plus
    /// servers that are up, in its term, and name it as their leader).
    pub available_since: Option<Time>,
    pub available_total: Time,
    pub unavailable_since: Option<Time>,
    pub windows: Vec<(Time, Time)>,
    pub windows_total: u64,
}

/// Cap on recorded unavailability windows (the count and total time are always exact).
pub const MAX_WINDOWS: usize = 1000;

impl LeaderStats {
    /// Starts with the cluster unavailable at time 0.
    pub fn new() -> Self {
        LeaderStats {
            unavailable_since: Some(0),
            ..Default::default()
        }
    }

    /// A node became leader of `term`. Counted only when `term` is newer than every earlier
    /// leader's: a leader resuming an older term (a disk-based VRR primary restarting in its
    /// stored view until it hears of the newer one) is not the newest leader.
    pub fn elected(&mut self, now: Time, node: NodeId, term: u64) {
        if self.leader_term.is_some_and(|t| term <= t) {
            return;
        }
        self.leader_term = Some(term);
        self.first_leader.get_or_insert(now);
        self.leader_elections += 1;
        if self.last_leader.is_some_and(|l| l != node) {
            self.leader_changes += 1;
        }
        self.last_leader = Some(node);
    }

    /// Recomputes availability after a change.
    pub fn set_available(&mut self, now: Time, available: bool) {
        match (available, self.available_since) {
            (true, None) => {
                self.available_since = Some(now);
                if let Some(s) = self.unavailable_since.take() {
                    self.close_window(s, now);
                }
            }
            (false, Some(s)) => {
                self.available_total += now - s;
                self.available_since = None;
                self.unavailable_since = Some(now);
            }
            _ => {}
        }
    }

    fn close_window(&mut self, start: Time, end: Time) {
        if end <= start {
            return;
        }
        self.windows_total += 1;
        if self.windows.len() < MAX_WINDOWS {
            self.windows.push((start, end));
        }
    }

    /// Closes open intervals at the end of the run.
    pub fn finish(&mut self, end: Time) {
        if let Some(s) = self.available_since.take() {
            self.available_total += end - s;
            self.available_since = Some(s);
        }
        if let Some(s) = self.unavailable_since
            && end > s
        {
            self.close_window(s, end);
        }
    }
}

/// Whether some leader is followed by a majority of all servers: itself plus servers that
/// are up, in its term, and name it as their leader (see [`LeaderStats`]), counting only
/// servers that can act and exchange messages with it: `able(i)` says a server is running
/// (up and not paused), `linked(i, j)` that messages get from `i` to `j` and back (a route
/// exists, no partition or isolation stops them). Without these a leader paused by a GC or
/// cut into a minority would count as available until its followers' timers ran out.
pub fn cluster_available(
    obs: impl Fn(usize) -> Observation,
    is_server: &[bool],
    servers: usize,
    able: impl Fn(usize) -> bool,
    mut linked: impl FnMut(usize, usize) -> bool,
) -> bool {
    let majority = servers / 2 + 1;
    (0..is_server.len()).any(|i| {
        let o = obs(i);
        if !(is_server[i] && o.role == Role::Leader && able(i)) {
            return false;
        }
        let mut n = 0;
        for (j, &server) in is_server.iter().enumerate() {
            let p = obs(j);
            if server
                && p.term == o.term
                && (j == i || p.leader == Some(NodeId(i as u32)))
                && p.role != Role::Down
                && (j == i || (able(j) && linked(i, j)))
            {
                n += 1;
                if n >= majority {
                    return true;
                }
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_within_one_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for q in [0.5, 0.9, 0.99] {
            let exact = (q * 100_000.0) * 1000.0;
            let got = h.quantile(q) as f64;
            assert!(
                (got - exact).abs() / exact < 0.01,
                "q={q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(0.0), 1000);
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.n, 100_000);
    }

    /// Only the span of buckets in use is kept, whatever the order of the values, and merging
    /// histograms of disjoint spans gives what recording every value in one would.
    #[test]
    fn a_histogram_keeps_only_the_span_in_use() {
        let values: Vec<u64> = (0..5000u64)
            .map(|i| 6_000_000 + (i * 7919 % 5000) * 60_000)
            .collect();
        let (mut up, mut down) = (Histogram::default(), Histogram::default());
        for &v in &values {
            up.record(v);
        }
        for &v in values.iter().rev() {
            down.record(v);
        }
        // 6 ms to 306 ms in ns: under six octaves of 128 buckets, not the 2,900 from 0.
        assert!(up.counts.len() < 6 * 128, "{}", up.counts.len());
        let (mut low, mut high) = (Histogram::default(), Histogram::default());
        for &v in &values {
            if v < 100_000_000 {
                low.record(v)
            } else {
                high.record(v)
            }
        }
        let mut merged = high.clone();
        merged.merge(&low);
        let mut empty = Histogram::default();
        empty.merge(&merged);
        for h in [&down, &merged, &empty] {
            assert_eq!((h.n, h.sum, h.min, h.max), (up.n, up.sum, up.min, up.max));
            for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0] {
                assert_eq!(h.quantile(q), up.quantile(q), "q={q}");
            }
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in [3, 1, 2] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 2);
        assert_eq!(h.mean(), 2.0);
    }
}
