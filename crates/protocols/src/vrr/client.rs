//! The client proxy (§4.1): a FIFO queue of operations, one outstanding at a time, each with a
//! request number; sent to the primary of the latest view the proxy knows (replies carry the
//! view) or to a random server; redirected by backups; retried on timeout with the same
//! request number so that the replicas' client table executes it at most once.

use super::{Params, Vrr, VrrMsg, VrrTimer};
use coracle_core::{Ctx, Input, Node, NodeId, Observation, Op, OpResult, Out, Role};
use rand::RngExt;
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
struct ClientCounters {
    /// Operations the application submitted.
    ops_submitted: u64,
    /// Operations completed with a result.
    ops_completed: u64,
    /// Resends of an outstanding request (after a redirect or a timeout).
    retries: u64,
    /// Retry-timer expiries.
    timeouts: u64,
    /// Redirects received from backups (as Raft's "not leader" answers).
    not_leader_replies: u64,
    /// Operations completed without a result after `client_max_attempts`.
    gave_up: u64,
}

#[derive(Copy, Clone, Debug)]
struct Outstanding {
    id: u64,
    op: Op,
    seq: u64,
    target: NodeId,
    attempts: u32,
}

/// A VRR client proxy.
#[derive(Clone, Debug)]
pub struct VrrClient {
    p: Arc<Params>,
    me: NodeId,
    queue: VecDeque<(u64, Op)>,
    current: Option<Outstanding>,
    next_seq: u64,
    /// Highest view seen in a reply.
    view: u64,
    /// The primary to send to (that of `view`), forgotten on timeout.
    primary: Option<NodeId>,
    c: ClientCounters,
}

impl VrrClient {
    pub(crate) fn new(p: Arc<Params>, me: NodeId) -> VrrClient {
        VrrClient {
            p,
            me,
            queue: VecDeque::new(),
            current: None,
            next_seq: 1,
            view: 0,
            primary: None,
            c: ClientCounters::default(),
        }
    }

    /// The server this proxy believes is the primary.
    pub fn primary(&self) -> Option<NodeId> {
        self.primary
    }

    /// The highest view seen in a reply.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// Operations waiting behind the outstanding one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// A uniformly random server, excluding `exclude` when there is more than one server.
    fn random_server(&self, ctx: &mut Ctx<'_>, exclude: Option<NodeId>) -> Option<NodeId> {
        let s = &self.p.servers;
        if s.is_empty() {
            return None;
        }
        let skip = exclude
            .filter(|_| s.len() > 1)
            .and_then(|x| s.iter().position(|&y| y == x));
        Some(match skip {
            Some(x) => {
                let k = ctx.rng.random_range(0..s.len() - 1);
                s[if k >= x { k + 1 } else { k }]
            }
            None => s[ctx.rng.random_range(0..s.len())],
        })
    }

    fn transmit(&mut self, out: &mut Out<Vrr>) {
        let Some(cur) = self.current else { return };
        out.send(
            cur.target,
            VrrMsg::Request {
                seq: cur.seq,
                op: cur.op,
            },
        );
        out.set_timer(VrrTimer::ClientRetry, self.p.client_timeout);
    }

    /// Starts the next queued operation, if nothing is outstanding.
    fn next(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        if self.current.is_some() {
            return;
        }
        let Some((id, op)) = self.queue.pop_front() else {
            return;
        };
        let target = match self.primary.or_else(|| self.random_server(ctx, None)) {
            Some(t) => t,
            None => {
                // No servers at all: nothing can ever answer.
                self.c.gave_up += 1;
                out.complete(id, None);
                return;
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.current = Some(Outstanding {
            id,
            op,
            seq,
            target,
            attempts: 1,
        });
        self.transmit(out);
    }

    /// Resends the outstanding request to `target`, or gives up after `client_max_attempts`.
    fn resend(&mut self, ctx: &mut Ctx<'_>, target: NodeId, out: &mut Out<Vrr>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if self
            .p
            .client_max_attempts
            .is_some_and(|m| cur.attempts >= m)
        {
            let id = cur.id;
            self.current = None;
            self.c.gave_up += 1;
            out.cancel_timer(VrrTimer::ClientRetry);
            out.complete(id, None);
            self.next(ctx, out);
            return;
        }
        cur.attempts += 1;
        cur.target = target;
        self.c.retries += 1;
        self.transmit(out);
    }

    fn on_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        seq: u64,
        result: Option<OpResult>,
        out: &mut Out<Vrr>,
    ) {
        if self.p.pos(from).is_none() {
            return;
        }
        if view >= self.view {
            self.view = view;
            self.primary = Some(self.p.primary(view));
        }
        let Some(cur) = self.current else { return };
        if cur.seq != seq {
            return; // an answer to an older request
        }
        match result {
            Some(r) => {
                self.current = None;
                self.c.ops_completed += 1;
                out.cancel_timer(VrrTimer::ClientRetry);
                out.complete(cur.id, Some(r));
                self.next(ctx, out);
            }
            None => {
                self.c.not_leader_replies += 1;
                let target = match self.primary.filter(|&p| p != from) {
                    Some(p) => Some(p),
                    None => self.random_server(ctx, Some(from)),
                };
                if let Some(t) = target {
                    self.resend(ctx, t, out);
                }
            }
        }
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        let Some(cur) = self.current else { return };
        self.c.timeouts += 1;
        self.primary = None;
        if let Some(target) = self.random_server(ctx, Some(cur.target)) {
            self.resend(ctx, target, out);
        }
    }
}

impl Node<Vrr> for VrrClient {
    fn step(&mut self, ctx: &mut Ctx<'_>, input: Input<VrrMsg, VrrTimer>, out: &mut Out<Vrr>) {
        match input {
            Input::Start | Input::Recover => {
                // A proxy has no disk, and a driver may restart one (a fresh proxy and `Start`)
                // while the replicas' client table still remembers its old request numbers.
                // Number from the local clock in nanoseconds: 1 at time 0, and above anything
                // an earlier incarnation can have used (at most one request per nanosecond).
                self.next_seq = self.next_seq.max(ctx.now.max(1));
                self.next(ctx, out);
            }
            Input::Request { id, op } => {
                self.c.ops_submitted += 1;
                self.queue.push_back((id, op));
                self.next(ctx, out);
            }
            Input::Packet {
                from,
                msg: VrrMsg::Reply { view, seq, result },
            } => self.on_reply(ctx, from, view, seq, result, out),
            Input::Timer(VrrTimer::ClientRetry) => self.on_timeout(ctx, out),
            _ => {}
        }
    }

    fn observe(&self) -> Observation {
        Observation {
            role: Role::Client,
            leader: self.primary,
            ..Default::default()
        }
    }

    fn counters(&self, v: &mut dyn FnMut(&'static str, u64)) {
        v("ops_submitted", self.c.ops_submitted);
        v("ops_completed", self.c.ops_completed);
        v("retries", self.c.retries);
        v("timeouts", self.c.timeouts);
        v("not_leader_replies", self.c.not_leader_replies);
        v("gave_up", self.c.gave_up);
    }

    fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "role": "client",
            "id": self.me.0,
            "view": self.view,
            "primary": self.primary.map(|n| n.0),
            "next_seq": self.next_seq,
            "outstanding": self.current.map(|c| c.seq),
            "queued": self.queue.len(),
        })
    }
}
