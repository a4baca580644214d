//! The 2015 prototype's dummy protocol: hello and hello-back.
//!
//! Config `{"protocol": "dummy", "id": N}`. At start every server sends `Hello` to node N (to
//! itself when `id` is absent, as in 2015; a node's message to itself is delivered locally).
//! A `Hello` is answered with `HelloBack`, and a `HelloBack` increments the receiver's counter.
//! Useful to check a topology (who can reach N and hear back) and to measure the engine: with
//! the optional `interval` (an extension; the 2015 protocol said hello once) every server says
//! hello again every `interval` ms.
//! Client proxies do nothing: an operation submitted to one completes at once with no result.

use coracle_core::{
    Cluster, ConfigIssue, Ctx, EntryId, Input, Message, Node, NodeId, Observation, Out, Protocol,
    Role, Time, TimerName,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The dummy protocol.
#[derive(Debug)]
pub struct Dummy {
    target: Option<NodeId>,
    interval: Option<Time>,
}

/// `consensus` object of the dummy protocol.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct DummyConfig {
    /// The node every server says hello to (an integer or string node id). Default: itself.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// Say hello again every this many milliseconds (default: once, at start).
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub interval: Option<f64>,
}

/// Messages.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DummyMsg {
    #[default]
    Hello,
    HelloBack,
}

impl Message for DummyMsg {
    fn kind(&self) -> &'static str {
        match self {
            DummyMsg::Hello => "hello",
            DummyMsg::HelloBack => "hello_back",
        }
    }
    fn wire_size(&self) -> u32 {
        16
    }
}

/// The dummy protocol's one timer: say hello again.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DummyTimer {
    Again,
}

impl TimerName for DummyTimer {
    const ALL: &'static [Self] = &[DummyTimer::Again];
    fn index(self) -> usize {
        0
    }
    fn name(self) -> &'static str {
        "again"
    }
}

/// A dummy server.
#[derive(Debug)]
pub struct DummyServer {
    target: Option<NodeId>,
    interval: Option<Time>,
    hello_backs: u64,
    hellos: u64,
}

/// A dummy client proxy.
#[derive(Debug)]
pub struct DummyClient;

impl Node<Dummy> for DummyServer {
    fn step(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: Input<DummyMsg, DummyTimer>,
        out: &mut Out<Dummy>,
    ) {
        match input {
            Input::Start | Input::Recover | Input::Timer(DummyTimer::Again) => {
                out.send(self.target.unwrap_or(ctx.me), DummyMsg::Hello);
                if let Some(i) = self.interval {
                    out.set_timer(DummyTimer::Again, i);
                }
            }
            Input::Packet {
                from,
                msg: DummyMsg::Hello,
            } => {
                self.hellos += 1;
                out.send(from, DummyMsg::HelloBack);
            }
            Input::Packet {
                msg: DummyMsg::HelloBack,
                ..
            } => self.hello_backs += 1,
            Input::Request { id, .. } => out.complete(id, None),
        }
    }

    fn observe(&self) -> Observation {
        Observation {
            role: Role::Follower,
            ..Default::default()
        }
    }

    fn counters(&self, visit: &mut dyn FnMut(&'static str, u64)) {
        visit("hellos_received", self.hellos);
        visit("hello_backs_received", self.hello_backs);
    }

    fn report(&self, _id: &dyn Fn(NodeId) -> serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "counter": self.hello_backs })
    }

    fn entry(&self, _: u64) -> Option<EntryId> {
        None
    }
}

impl Node<Dummy> for DummyClient {
    fn step(&mut self, _: &mut Ctx<'_>, input: Input<DummyMsg, DummyTimer>, out: &mut Out<Dummy>) {
        if let Input::Request { id, .. } = input {
            out.complete(id, None);
        }
    }
    fn observe(&self) -> Observation {
        Observation {
            role: Role::Client,
            ..Default::default()
        }
    }
}

impl Protocol for Dummy {
    const NAME: &'static str = "dummy";
    const SERVES_CLIENTS: bool = false;
    const HAS_ROLES: bool = false;
    type Config = DummyConfig;
    type Msg = DummyMsg;
    type Timer = DummyTimer;
    type Write = ();
    type Disk = ();
    type Server = DummyServer;
    type Client = DummyClient;

    fn new(config: DummyConfig, cluster: &Cluster) -> Result<Self, ConfigIssue> {
        let target = match config.id {
            None => None,
            Some(v) => {
                let name = match &v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    other => {
                        return Err(ConfigIssue::error(
                            "id",
                            format!("expected a node id (integer or string), found {other}"),
                        ));
                    }
                };
                match cluster.lookup(&name) {
                    Some(id) => Some(id),
                    None => {
                        return Err(ConfigIssue::error(
                            "id",
                            format!(
                                "expected the id of a node, found {v}, which is not in network.nodes"
                            ),
                        ));
                    }
                }
            }
        };
        let interval = match config.interval {
            None => None,
            Some(ms) => Some(crate::config::duration("interval", ms)?),
        };
        Ok(Dummy { target, interval })
    }

    fn apply_write(_: &mut (), _: &()) {}

    fn server(&self, _: NodeId, _: &()) -> DummyServer {
        DummyServer {
            target: self.target,
            interval: self.interval,
            hello_backs: 0,
            hellos: 0,
        }
    }

    fn client(&self, _: NodeId) -> DummyClient {
        DummyClient
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_core::{Output, rng};

    fn cluster() -> Cluster {
        Cluster {
            servers: vec![NodeId(0), NodeId(1)],
            clients: vec![],
            names: vec!["1".into(), "2".into()],
        }
    }

    #[test]
    fn hello_is_answered_and_hello_back_counted() {
        let c = cluster();
        let p = Dummy::new(
            DummyConfig {
                id: Some(serde_json::json!(2)),
                interval: None,
            },
            &c,
        )
        .unwrap();
        let mut a = p.server(NodeId(0), &());
        let mut out = Out::<Dummy>::default();
        let mut r = rng::stream(1, 1, 0);
        let mut ctx = Ctx {
            me: NodeId(0),
            now: 0,
            rng: &mut r,
            cluster: &c,
        };
        a.step(&mut ctx, Input::Start, &mut out);
        assert!(matches!(
            out.as_slice(),
            [Output::Send {
                to: NodeId(1),
                msg: DummyMsg::Hello
            }]
        ));
        out.clear();
        a.step(
            &mut ctx,
            Input::Packet {
                from: NodeId(1),
                msg: DummyMsg::Hello,
            },
            &mut out,
        );
        assert!(matches!(
            out.as_slice(),
            [Output::Send {
                to: NodeId(1),
                msg: DummyMsg::HelloBack
            }]
        ));
        a.step(
            &mut ctx,
            Input::Packet {
                from: NodeId(1),
                msg: DummyMsg::HelloBack,
            },
            &mut out,
        );
        assert_eq!(a.hello_backs, 1);
    }

    #[test]
    fn unknown_target_is_a_config_error() {
        let e = Dummy::new(
            DummyConfig {
                id: Some(serde_json::json!(9)),
                interval: None,
            },
            &cluster(),
        )
        .unwrap_err();
        assert_eq!(e.path, "id");
    }
}
