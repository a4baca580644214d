//! Clients: the workload issues operations, queues them, and hands them one at a time to the
//! client proxy; completions are recorded for the metrics and the linearizability check.

use super::{Engine, Kind, OpRecord};
use crate::scenario::Arrival;
use crate::workload::Pending;
use coracle_core::{Input, NodeId, OpResult, Protocol, time_to_ms};
use serde_json::json;

impl<P: Protocol> Engine<'_, P> {
    pub(super) fn start_workload(&mut self, i: usize) {
        let now = self.now;
        let epoch = self.nodes[i].epoch;
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        let mut at = c.spec.start.max(now);
        if let Arrival::Open { .. } = c.spec.arrival {
            // A Poisson process: the first arrival, too, comes after an exponential gap (not
            // at `start`, with every client at the same instant).
            at = at.saturating_add(c.next_gap().unwrap_or(0));
        }
        self.push(
            at,
            Kind::Tick {
                node: i as u32,
                epoch,
            },
        );
    }

    pub(super) fn tick(&mut self, i: usize) {
        let now = self.now;
        let epoch = self.nodes[i].epoch;
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        if !c.active(now) {
            return;
        }
        let issue = match c.spec.arrival {
            Arrival::Closed { .. } => c.outstanding() == 0,
            Arrival::Open { .. } => {
                // Overload: arrivals beyond the queue are shed, or memory would grow with the
                // run (every issued operation is kept for the linearizability check).
                if c.queue.len() as u64 >= c.spec.queue_limit {
                    c.skipped += 1;
                    false
                } else {
                    true
                }
            }
            Arrival::Interval { .. } => {
                if c.outstanding() > 0 {
                    c.skipped += 1;
                    false
                } else {
                    true
                }
            }
        };
        if let Some(gap) = c.next_gap() {
            self.push(
                now.saturating_add(gap),
                Kind::Tick {
                    node: i as u32,
                    epoch,
                },
            );
        }
        if issue {
            let c = self.clients[i].as_mut().expect("client");
            let op = c.next_op();
            let id = self.next_op_id;
            self.next_op_id += 1;
            c.queue.push_back(Pending {
                id,
                op,
                arrival: now,
            });
            if self.record_history && self.history.len() >= super::MAX_HISTORY {
                self.history_capped = true; // later operations go unrecorded (and unchecked)
            } else if self.record_history {
                self.history.push(OpRecord {
                    client: NodeId(i as u32),
                    op,
                    arrival: now,
                    dispatch: None,
                    complete: None,
                    result: None,
                    dispatch_order: 0,
                    complete_order: 0,
                });
            }
            self.dispatch_next(i);
        }
    }

    /// Hands the client's next queued operation to its proxy, if none is in flight. The proxy
    /// sees one operation at a time; later arrivals (open loops) wait here, so an operation
    /// still queued at the end, or when its client crashes, provably never reached a server.
    fn dispatch_next(&mut self, i: usize) {
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        if c.in_flight.is_some() {
            return;
        }
        let Some(p) = c.queue.pop_front() else {
            return;
        };
        c.in_flight = Some(p);
        let (id, op) = (p.id, p.op);
        self.op_events += 1;
        if let Some(h) = self.history.get_mut(id as usize) {
            h.dispatch = Some(self.now);
            h.dispatch_order = self.op_events;
        }
        if self.tracer.is_some() {
            // Latency is measured from the arrival: an open loop's operation may have waited.
            let arrival = time_to_ms(p.arrival);
            self.trace(
                i,
                "request",
                json!({ "id": id, "op": op, "arrival": arrival }),
            );
        }
        self.step(i, Input::Request { id, op });
    }

    pub(super) fn complete(&mut self, i: usize, id: u64, result: Option<OpResult>) {
        let now = self.now;
        let epoch = self.nodes[i].epoch;
        let Some(c) = &mut self.clients[i] else {
            return;
        };
        let Some(p) = c.in_flight.filter(|p| p.id == id) else {
            return; // not this client's current operation: ignore
        };
        c.in_flight = None;
        let op = p.op;
        if let Some(r) = result {
            self.op_events += 1;
            if let Some(h) = self.history.get_mut(id as usize) {
                h.complete = Some(now);
                h.result = Some(r);
                h.complete_order = self.op_events;
            }
            c.completed += 1;
            c.latency.record(now - p.arrival);
            c.observe(&op, &r);
        } else {
            c.failed += 1;
        }
        let closed = match c.spec.arrival {
            Arrival::Closed { think } => Some(think),
            _ => None,
        };
        if self.tracer.is_some() {
            self.trace(i, "complete", json!({ "id": id, "result": result }));
        }
        if let Some(think) = closed {
            self.push(
                now.saturating_add(think),
                Kind::Tick {
                    node: i as u32,
                    epoch,
                },
            );
        }
        self.dispatch_next(i);
    }
}
