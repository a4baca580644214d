//! The client proxy logic Raft and VRR share, so that both protocols' clients queue, number,
//! retry and give up alike: a FIFO queue of operations, one outstanding at a time, numbered per
//! client; sent to the server believed to lead or to a random one; resent after a redirect or
//! a timeout under the same number (the servers apply it at most once); given up after
//! `client_max_attempts` sends. Each protocol's proxy keeps its own idea of the leader and
//! decides what an answer means.

use coracle_core::{Ctx, NodeId, Op, OpResult, Out, Protocol, Time};
use rand::RngExt;
use std::collections::VecDeque;
use std::sync::Arc;

/// What the shared proxy needs of a protocol.
pub(crate) trait ProxyProtocol: Protocol {
    /// The validated configuration shared by the nodes of a run.
    type Params: std::fmt::Debug;
    /// The proxy's retry timer.
    const RETRY: Self::Timer;
    /// The request carrying `op` under the number `seq`.
    fn request(seq: u64, op: Op) -> Self::Msg;
    /// The servers, in configured order.
    fn servers(p: &Self::Params) -> &[NodeId];
    /// The retry timeout.
    fn client_timeout(p: &Self::Params) -> Time;
    /// Sends of one request before giving up (`None`: retry forever).
    fn client_max_attempts(p: &Self::Params) -> Option<u32>;
}

#[derive(Clone, Debug, Default)]
struct Counters {
    /// Operations the application submitted.
    ops_submitted: u64,
    /// Operations completed with a result.
    ops_completed: u64,
    /// Resends of an outstanding request (after a redirect or a timeout).
    retries: u64,
    /// Retry-timer expiries.
    timeouts: u64,
    /// "Not leader" answers (Raft) or redirects from backups (VRR).
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
    /// Redirects without a leader hint since the last timeout: bounds blind hopping.
    blind: u32,
}

/// The queue, the outstanding request and the counters of one client proxy. Methods that may
/// start the next operation take `leader`: where to send it (a random server if `None`).
#[derive(Debug)]
pub(crate) struct Proxy<P: ProxyProtocol> {
    p: Arc<P::Params>,
    queue: VecDeque<(u64, Op)>,
    current: Option<Outstanding>,
    next_seq: u64,
    c: Counters,
}

// Not derived: that would require `P::Params: Clone`, and the parameters are shared.
impl<P: ProxyProtocol> Clone for Proxy<P> {
    fn clone(&self) -> Self {
        Proxy {
            p: self.p.clone(),
            queue: self.queue.clone(),
            current: self.current,
            next_seq: self.next_seq,
            c: self.c.clone(),
        }
    }
}

impl<P: ProxyProtocol> Proxy<P> {
    pub fn new(p: Arc<P::Params>) -> Self {
        Proxy {
            p,
            queue: VecDeque::new(),
            current: None,
            next_seq: 1,
            c: Counters::default(),
        }
    }

    pub fn params(&self) -> &P::Params {
        &self.p
    }

    /// Operations waiting behind the outstanding one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The number of the outstanding request.
    pub fn outstanding(&self) -> Option<u64> {
        self.current.map(|c| c.seq)
    }

    /// `Start` or `Recover`: numbers requests on from the local clock, then starts the next
    /// operation.
    pub fn start(&mut self, ctx: &mut Ctx<'_>, leader: Option<NodeId>, out: &mut Out<P>) {
        // A proxy has no disk, and a driver may restart one (a fresh proxy and `Start`) while
        // the servers still remember its old numbers. Number from the local clock in
        // nanoseconds plus one: an incarnation started at t0 numbers from t0 + 1 and sends at
        // most one request per round trip (at least a nanosecond), so by a restart at t1 > t0
        // it has used numbers up to t1 at most, below the new incarnation's t1 + 1. (Numbering
        // from the clock itself let an incarnation started at 0, whose first number was 1,
        // collide with one restarted 1 ns later: the servers answered the new request with the
        // old one's result.)
        self.next_seq = self.next_seq.max(ctx.now.saturating_add(1));
        self.next(ctx, leader, out);
    }

    /// Queues an operation of the application.
    pub fn submit(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u64,
        op: Op,
        leader: Option<NodeId>,
        out: &mut Out<P>,
    ) {
        self.c.ops_submitted += 1;
        self.queue.push_back((id, op));
        self.next(ctx, leader, out);
    }

    /// Completes the outstanding request with the result of the answer to it.
    pub fn complete(
        &mut self,
        ctx: &mut Ctx<'_>,
        result: OpResult,
        leader: Option<NodeId>,
        out: &mut Out<P>,
    ) {
        let Some(cur) = self.current.take() else {
            return;
        };
        self.c.ops_completed += 1;
        out.cancel_timer(P::RETRY);
        out.complete(cur.id, Some(result));
        self.next(ctx, leader, out);
    }

    /// `from` answered the outstanding request without a result: resends it to `leader`, or to
    /// a random server other than `from` if `leader` is unknown or is `from`.
    ///
    /// Only an answer from the server the request was last sent to counts: a duplicated or late
    /// answer from an earlier target would otherwise start a second chain of resends, and on a
    /// duplicating link those chains multiply without bound. Without a hint the proxy hops at
    /// most once per server before it waits for the retry timer, so a cluster with no leader
    /// is not flooded with requests at network speed.
    pub fn redirect(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        leader: Option<NodeId>,
        out: &mut Out<P>,
    ) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if from != cur.target {
            return;
        }
        self.c.not_leader_replies += 1;
        let target = match leader.filter(|&l| l != from) {
            Some(l) => Some(l),
            None => {
                let servers = P::servers(&self.p).len();
                if cur.blind as usize >= servers {
                    return; // the retry timer set by the last send resends it
                }
                cur.blind += 1;
                self.random_server(ctx, Some(from))
            }
        };
        if let Some(t) = target {
            self.resend(ctx, t, leader, out);
        }
    }

    /// The retry timer fired: resends the outstanding request to a random server other than the
    /// last one. The caller forgets the leader, so the next operation (after a give-up) goes to
    /// a random server too.
    pub fn timed_out(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<P>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.blind = 0;
        let last = cur.target;
        self.c.timeouts += 1;
        if let Some(target) = self.random_server(ctx, Some(last)) {
            self.resend(ctx, target, None, out);
        }
    }

    /// Adds the proxy's state to a client's end-of-run report (after the protocol's fields).
    pub fn report_into(&self, report: &mut serde_json::Value) {
        report["next_seq"] = self.next_seq.into();
        report["outstanding"] = self.outstanding().into();
        report["queued"] = self.queued().into();
    }

    pub fn counters(&self, v: &mut dyn FnMut(&'static str, u64)) {
        v("ops_submitted", self.c.ops_submitted);
        v("ops_completed", self.c.ops_completed);
        v("retries", self.c.retries);
        v("timeouts", self.c.timeouts);
        v("not_leader_replies", self.c.not_leader_replies);
        v("gave_up", self.c.gave_up);
    }

    /// A uniformly random server, excluding `exclude` when there is more than one server.
    fn random_server(&self, ctx: &mut Ctx<'_>, exclude: Option<NodeId>) -> Option<NodeId> {
        let s = P::servers(&self.p);
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

    fn transmit(&mut self, out: &mut Out<P>) {
        let Some(cur) = self.current else { return };
        out.send(cur.target, P::request(cur.seq, cur.op));
        out.set_timer(P::RETRY, P::client_timeout(&self.p));
    }

    /// Starts the next queued operation, if nothing is outstanding.
    fn next(&mut self, ctx: &mut Ctx<'_>, leader: Option<NodeId>, out: &mut Out<P>) {
        if self.current.is_some() {
            return;
        }
        let Some((id, op)) = self.queue.pop_front() else {
            return;
        };
        let target = match leader.or_else(|| self.random_server(ctx, None)) {
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
            blind: 0,
        });
        self.transmit(out);
    }

    /// Resends the outstanding request to `target`, or gives up after `client_max_attempts`.
    fn resend(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: NodeId,
        leader: Option<NodeId>,
        out: &mut Out<P>,
    ) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if P::client_max_attempts(&self.p).is_some_and(|m| cur.attempts >= m) {
            let id = cur.id;
            self.current = None;
            self.c.gave_up += 1;
            out.cancel_timer(P::RETRY);
            out.complete(id, None);
            self.next(ctx, leader, out);
            return;
        }
        cur.attempts += 1;
        cur.target = target;
        self.c.retries += 1;
        self.transmit(out);
    }
}
