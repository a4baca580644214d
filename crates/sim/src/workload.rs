//! Client workloads: when each client issues an operation, and which.
//!
//! Operations are drawn from the client's own random stream: a key uniform over the key space,
//! then a read with probability `read_fraction`, a compare-and-set with `cas_fraction`,
//! otherwise a put. Written values are unique per (client, operation), so every read names the
//! write it saw. A compare-and-set expects the last value this client saw for the key.

use crate::scenario::{Arrival, ClientWorkload};
use coracle_core::{Op, Rng, SmallIntMap, Time, Value, ms_to_time};
use rand::RngExt;

/// An operation issued by the workload and not finished.
#[derive(Copy, Clone, Debug)]
pub struct Pending {
    pub id: u64,
    pub op: Op,
    pub arrival: Time,
}

/// One client's workload state.
pub struct ClientDriver {
    pub spec: ClientWorkload,
    rng: Rng,
    /// Operations handed to the client proxy.
    pub issued: u64,
    /// Operations completed with a result.
    pub completed: u64,
    /// Operations the proxy gave up on.
    pub failed: u64,
    /// `interval` ticks skipped because an operation was outstanding.
    pub skipped: u64,
    /// The operation the client proxy is working on.
    pub in_flight: Option<Pending>,
    /// Operations issued and waiting for the proxy (open loops).
    pub queue: std::collections::VecDeque<Pending>,
    /// Latency of completed operations, from issue to completion.
    pub latency: crate::metrics::Histogram,
    /// Operations lost to a crash of the client (never finished).
    pub lost: u64,
    tag: u64,
    /// The last value seen per key (for compare-and-set): indexed, as the store is.
    seen: SmallIntMap<Option<Value>>,
}

impl ClientDriver {
    /// A driver for the client with index `node`.
    pub fn new(spec: ClientWorkload, rng: Rng, node: usize) -> Self {
        ClientDriver {
            spec,
            rng,
            issued: 0,
            completed: 0,
            failed: 0,
            skipped: 0,
            in_flight: None,
            queue: Default::default(),
            latency: Default::default(),
            lost: 0,
            tag: (node as u64 + 1) << 40,
            seen: SmallIntMap::default(),
        }
    }

    /// Operations issued and not finished (in flight or queued).
    pub fn outstanding(&self) -> u64 {
        self.queue.len() as u64 + self.in_flight.is_some() as u64
    }

    /// Whether a new operation may be issued at `now`.
    pub fn active(&self, now: Time) -> bool {
        now >= self.spec.start
            && self.spec.stop.is_none_or(|s| now < s)
            && self.spec.max_ops.is_none_or(|m| self.issued < m)
    }

    /// Draws the next operation.
    pub fn next_op(&mut self) -> Op {
        let key = self.rng.random_range(0..self.spec.keys);
        let r: f64 = self.rng.random();
        self.issued += 1;
        let value = self.tag | self.issued;
        if r < self.spec.read_fraction {
            Op::Get { key }
        } else if r < self.spec.read_fraction + self.spec.cas_fraction {
            let expect = self.seen.get(key).copied().flatten();
            Op::Cas {
                key,
                expect,
                new: value,
            }
        } else {
            Op::Put { key, value }
        }
    }

    /// Learns from a completed operation (for later compare-and-sets).
    pub fn observe(&mut self, op: &Op, result: &coracle_core::OpResult) {
        use coracle_core::OpResult;
        match (op, result) {
            (Op::Get { key }, OpResult::Value { value }) => {
                self.seen.insert(*key, *value);
            }
            (Op::Put { key, value }, _) => {
                self.seen.insert(*key, Some(*value));
            }
            (Op::Cas { key, new, .. }, OpResult::Cas { ok: true }) => {
                self.seen.insert(*key, Some(*new));
            }
            _ => {}
        }
    }

    /// Delay before the next arrival of an open or interval workload (None for closed loops,
    /// which are driven by completions).
    pub fn next_gap(&mut self) -> Option<Time> {
        match self.spec.arrival {
            Arrival::Closed { .. } => None,
            Arrival::Open { rate } => {
                let u: f64 = self.rng.random();
                // Exponential inter-arrival time; never zero, so time always advances.
                Some(ms_to_time(-(1.0 - u).ln() / rate * 1000.0).max(1))
            }
            Arrival::Interval { min, max } => Some(if max > min {
                self.rng.random_range(min..max)
            } else {
                min
            }),
        }
    }
}
