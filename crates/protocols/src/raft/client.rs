//! The client proxy (thesis §6.2-6.3): the shared [`Proxy`] (a FIFO queue, one request
//! outstanding, numbered per client, retried with the same number so that the servers' session
//! table applies it at most once), sent to the known leader or a random server and redirected
//! by leader hints.

use super::{Params, Raft, RaftMsg, RaftTimer};
use crate::proxy::{Proxy, ProxyProtocol};
use coracle_core::{Ctx, Input, Node, NodeId, Observation, Op, OpResult, Out, Role, Time};
use std::sync::Arc;

impl ProxyProtocol for Raft {
    type Params = Params;
    const RETRY: RaftTimer = RaftTimer::ClientRetry;
    fn request(seq: u64, op: Op) -> RaftMsg {
        RaftMsg::ClientRequest { seq, op }
    }
    fn servers(p: &Params) -> &[NodeId] {
        &p.servers
    }
    fn client_timeout(p: &Params) -> Time {
        p.client_timeout
    }
    fn client_max_attempts(p: &Params) -> Option<u32> {
        p.client_max_attempts
    }
}

/// A Raft client proxy.
#[derive(Clone, Debug)]
pub struct RaftClient {
    me: NodeId,
    proxy: Proxy<Raft>,
    leader: Option<NodeId>,
}

impl RaftClient {
    pub(crate) fn new(p: Arc<Params>, me: NodeId) -> RaftClient {
        RaftClient {
            me,
            proxy: Proxy::new(p),
            leader: None,
        }
    }

    /// The server this proxy believes leads.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Operations waiting behind the outstanding one.
    pub fn queued(&self) -> usize {
        self.proxy.queued()
    }

    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        seq: u64,
        result: Option<OpResult>,
        hint: Option<NodeId>,
        out: &mut Out<Raft>,
    ) {
        if self.proxy.outstanding() != Some(seq) {
            return; // an answer to an older request
        }
        match result {
            Some(r) => {
                self.leader = Some(from);
                self.proxy.complete(ctx, r, self.leader, out);
            }
            None => {
                let p = self.proxy.params();
                self.leader = hint.filter(|&h| h != from && p.pos(h).is_some());
                self.proxy.redirect(ctx, from, self.leader, out);
            }
        }
    }
}

impl Node<Raft> for RaftClient {
    fn step(&mut self, ctx: &mut Ctx<'_>, input: Input<RaftMsg, RaftTimer>, out: &mut Out<Raft>) {
        match input {
            Input::Start | Input::Recover => self.proxy.start(ctx, self.leader, out),
            Input::Request { id, op } => self.proxy.submit(ctx, id, op, self.leader, out),
            Input::Packet {
                from,
                msg:
                    RaftMsg::ClientResponse {
                        seq,
                        result,
                        leader_hint,
                    },
            } => self.on_response(ctx, from, seq, result, leader_hint, out),
            Input::Timer(RaftTimer::ClientRetry) if self.proxy.outstanding().is_some() => {
                self.leader = None;
                self.proxy.timed_out(ctx, out);
            }
            _ => {}
        }
    }

    fn observe(&self) -> Observation {
        Observation {
            role: Role::Client,
            leader: self.leader,
            ..Default::default()
        }
    }

    fn counters(&self, v: &mut dyn FnMut(&'static str, u64)) {
        self.proxy.counters(v);
    }

    fn report(&self, id: &dyn Fn(NodeId) -> serde_json::Value) -> serde_json::Value {
        let mut r = serde_json::json!({
            "role": "client",
            "id": id(self.me),
            "leader": self.leader.map(id),
        });
        self.proxy.report_into(&mut r);
        r
    }
}
