//! The client proxy (§4.1): the shared [`Proxy`] (a FIFO queue, one request outstanding, each
//! with a request number, retried with the same number so that the replicas' client table
//! executes it at most once), sent to the primary of the latest view the proxy knows (replies
//! carry the view) or to a random server, and redirected by backups.

use super::{Params, Vrr, VrrMsg, VrrTimer};
use crate::proxy::{Proxy, ProxyProtocol};
use coracle_core::{Ctx, Input, Node, NodeId, Observation, Op, OpResult, Out, Role, Time};
use std::sync::Arc;

impl ProxyProtocol for Vrr {
    type Params = Params;
    const RETRY: VrrTimer = VrrTimer::ClientRetry;
    fn request(seq: u64, op: Op) -> VrrMsg {
        VrrMsg::Request { seq, op }
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

/// A VRR client proxy.
#[derive(Clone, Debug)]
pub struct VrrClient {
    me: NodeId,
    proxy: Proxy<Vrr>,
    /// Highest view seen in a reply.
    view: u64,
    /// The primary to send to (that of `view`), forgotten on timeout.
    primary: Option<NodeId>,
}

impl VrrClient {
    pub(crate) fn new(p: Arc<Params>, me: NodeId) -> VrrClient {
        VrrClient {
            me,
            proxy: Proxy::new(p),
            view: 0,
            primary: None,
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
        self.proxy.queued()
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
        let p = self.proxy.params();
        if p.pos(from).is_none() {
            return;
        }
        if view >= self.view {
            self.view = view;
            self.primary = Some(p.primary(view));
        }
        if self.proxy.outstanding() != Some(seq) {
            return; // an answer to an older request
        }
        match result {
            Some(r) => self.proxy.complete(ctx, r, self.primary, out),
            None => self.proxy.redirect(ctx, from, self.primary, out),
        }
    }
}

impl Node<Vrr> for VrrClient {
    fn step(&mut self, ctx: &mut Ctx<'_>, input: Input<VrrMsg, VrrTimer>, out: &mut Out<Vrr>) {
        match input {
            Input::Start | Input::Recover => self.proxy.start(ctx, self.primary, out),
            Input::Request { id, op } => self.proxy.submit(ctx, id, op, self.primary, out),
            Input::Packet {
                from,
                msg: VrrMsg::Reply { view, seq, result },
            } => self.on_reply(ctx, from, view, seq, result, out),
            Input::Timer(VrrTimer::ClientRetry) if self.proxy.outstanding().is_some() => {
                self.primary = None;
                self.proxy.timed_out(ctx, out);
            }
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
        self.proxy.counters(v);
    }

    fn report(&self, id: &dyn Fn(NodeId) -> serde_json::Value) -> serde_json::Value {
        let mut r = serde_json::json!({
            "role": "client",
            "id": id(self.me),
            "view": self.view,
            "primary": self.primary.map(id),
        });
        self.proxy.report_into(&mut r);
        r
    }
}
