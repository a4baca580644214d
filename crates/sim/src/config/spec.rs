//! The native configuration schema, as deserialised from JSON.
//!
//! These types mirror the file one to one (unknown keys rejected) and derive the JSON Schema
//! printed by `coracle schema`. They are checked and resolved into a [`crate::Scenario`] by
//! [`super::resolve`]; nothing else reads them.

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A scenario: a network, a protocol, a timeline of faults and a client workload.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct NativeConfig {
    /// Short name of the scenario (shown in summaries).
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario shows and what to look at in its output.
    #[serde(default)]
    pub description: Option<String>,
    /// Master seed. Absent: one is drawn, printed and written into the results.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Simulated time at which the run stops, in milliseconds (default 10000).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub termination: Option<f64>,
    /// The protocol and its parameters: `{"protocol": "raft", ...}`.
    pub consensus: serde_json::Map<String, serde_json::Value>,
    /// Nodes and links.
    pub network: NetworkSpec,
    /// Actions at given times: crashes, recoveries, link changes.
    #[serde(default)]
    pub timeline: Vec<ActionSpec>,
    /// What the clients do.
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
    /// Durable-storage model of the servers.
    #[serde(default)]
    pub storage: Option<StorageSpec>,
    /// Random faults drawn from the run's seed: crashes, pauses, isolations, partitions and
    /// link failures at given rates.
    #[serde(default)]
    pub chaos: Option<ChaosSpec>,
}

/// Nodes and links.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Latency and loss of links that do not set their own.
    #[serde(default)]
    pub defaults: Option<ChannelSpec>,
    /// Every node: servers run the protocol, clients run the workload, hubs only route.
    pub nodes: Vec<NodeSpec>,
    /// Links between nodes. Only hubs forward packets, so two servers talk only over a direct
    /// link or through hubs.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// Also link every pair of servers and clients that `links` does not already connect, with
    /// the default latency and loss (ids `"A-B"`). Default false.
    #[serde(default)]
    pub mesh: bool,
}

/// A node.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Any integer or string, unique among nodes.
    pub id: Name,
    /// `server`, `client` or `hub` (case-insensitive).
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Whether the node is running at time 0 (default true). A node down at time 0 boots at
    /// its first `recover` action.
    #[serde(default)]
    pub up: Option<bool>,
    /// The node's clock: drift `rate` (1.05 = its timers run 5% fast) and `offset` (ms added to
    /// the local time it reports).
    #[serde(default)]
    pub clock: Option<ClockSpec>,
}

/// A node's clock.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// Local seconds per real second (default 1; 0.01 to 100, at least 0.5 on a client).
    /// Timers set for d local ms fire after d/rate ms.
    #[serde(default)]
    #[schemars(range(min = 0.01, max = 100.0))]
    pub rate: Option<f64>,
    /// Milliseconds added to the local time the node sees (default 0; ≥ 0: local time is never
    /// negative).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub offset: Option<f64>,
}

// The channel keys repeat `ChannelSpec`'s because serde's `flatten` cannot be combined with
// rejecting unknown keys.
/// A link. `bi` links carry packets both ways (each direction may have its own latency and
/// loss through `reverse`); `uni` links carry packets from `from` to `to` only.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Any integer or string, unique among links (default `"<from>-<to>"`).
    #[serde(default)]
    pub id: Option<Name>,
    /// One end (the sender of a `uni` link).
    pub from: Name,
    /// The other end.
    pub to: Name,
    /// `bi` (default) or `uni`.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Per-packet latency from `from` to `to` (and back, unless `reverse` sets it).
    #[serde(default)]
    pub latency: Option<Latency>,
    /// Probability that a packet is lost, independently per packet (default 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub loss: Option<f64>,
    /// Bursty loss (Gilbert–Elliott), applied after `loss`.
    #[serde(default)]
    pub burst_loss: Option<BurstLossSpec>,
    /// Probability that a packet is delivered twice (default 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub duplicate: Option<f64>,
    /// Capacity in Mbit/s (default unlimited). Packets are serialised one after another
    /// through a FIFO queue, so a burst of large messages delays what follows.
    #[serde(default)]
    #[schemars(range(min = 0.000001, max = 1e7))]
    pub bandwidth: Option<f64>,
    /// Longest FIFO queue, in packets waiting to be sent, before packets are dropped (tail
    /// drop; default unlimited). Only meaningful with `bandwidth`.
    #[serde(default)]
    pub queue: Option<u32>,
    /// Whether the link is up at time 0 (default true).
    #[serde(default)]
    pub up: Option<bool>,
    /// Latency and loss of the `to` → `from` direction of a `bi` link, when they differ.
    #[serde(default)]
    pub reverse: Option<ChannelSpec>,
}

/// The behaviour of one direction of a link.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// Per-packet latency.
    #[serde(default)]
    pub latency: Option<Latency>,
    /// Independent per-packet loss probability.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub loss: Option<f64>,
    /// Bursty loss (Gilbert–Elliott).
    #[serde(default)]
    pub burst_loss: Option<BurstLossSpec>,
    /// Probability that a packet is delivered twice.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub duplicate: Option<f64>,
    /// Capacity in Mbit/s.
    #[serde(default)]
    #[schemars(range(min = 0.000001, max = 1e7))]
    pub bandwidth: Option<f64>,
    /// Longest FIFO queue in packets.
    #[serde(default)]
    pub queue: Option<u32>,
}

/// Gilbert–Elliott bursty loss: a two-state Markov chain stepped once per packet. In the good
/// state packets are lost with `loss_good`, in the bad state with `loss_bad`.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BurstLossSpec {
    /// Probability of moving from good to bad at each packet.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub enter_bad: f64,
    /// Probability of moving from bad to good at each packet (mean burst = 1/leave_bad packets).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub leave_bad: f64,
    /// Loss probability in the good state (default 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub loss_good: Option<f64>,
    /// Loss probability in the bad state (default 1).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub loss_bad: Option<f64>,
}

/// One timeline action. `action` says which; the keys each action takes are listed with it in
/// `docs/config.md`, and any other key is an error.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// When, in milliseconds of simulated time.
    #[schemars(range(min = 0.0, max = 1e10))]
    pub at: f64,
    /// A random extra delay added to `at`, drawn from the run's seed (for example a uniform
    /// point within a heartbeat interval).
    #[serde(default)]
    pub delay: Option<Latency>,
    /// What happens.
    pub action: ActionKind,
    /// The node (crash, recover, pause, resume, isolate, rejoin, clock).
    #[serde(default)]
    pub node: Option<Name>,
    /// Instead of `node`: a role resolved when the action fires: `leader` (the leader with
    /// the highest term), `follower` or `candidate` (one chosen at random), or `last` (the node
    /// the last crash, pause or isolate hit, for recover, resume and rejoin).
    #[serde(default)]
    pub role: Option<RoleTarget>,
    /// The link (link_down, link_up, link_change, flap).
    #[serde(default)]
    pub link: Option<Name>,
    /// Link actions: `forward` (from → to), `reverse`, `both` (default). `isolate`: `in` (the
    /// node hears nothing), `out` (nothing it sends leaves), `both` (default).
    #[serde(default)]
    pub direction: Option<Which>,
    /// New latency (link_change).
    #[serde(default)]
    pub latency: Option<Latency>,
    /// New loss probability (link_change).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub loss: Option<f64>,
    /// New bursty loss (link_change).
    #[serde(default)]
    pub burst_loss: Option<BurstLossSpec>,
    /// New duplication probability (link_change).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub duplicate: Option<f64>,
    /// New capacity, Mbit/s (link_change).
    #[serde(default)]
    #[schemars(range(min = 0.000001, max = 1e7))]
    pub bandwidth: Option<f64>,
    /// Groups that can no longer reach each other (partition): `[["a", "b"], ["c", "d", "e"]]`.
    /// A group may be `"rest"`: every server in no other group. Nodes in no group are not
    /// affected.
    #[serde(default)]
    pub groups: Option<Vec<GroupSpec>>,
    /// One-way partition: packets from these nodes ...
    #[serde(default)]
    pub from: Option<Vec<Member>>,
    /// ... to these nodes are lost.
    #[serde(default)]
    pub to: Option<Vec<Member>>,
    /// New clock drift rate (clock; 0.01 to 100, at least 0.5 on a client).
    #[serde(default)]
    #[schemars(range(min = 0.01, max = 100.0))]
    pub rate: Option<f64>,
    /// New clock offset, ms (clock; ≥ 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub offset: Option<f64>,
    /// How long the link stays up each time (flap).
    #[serde(default)]
    pub up: Option<Latency>,
    /// How long the link stays down each time (flap).
    #[serde(default)]
    pub down: Option<Latency>,
    /// When flapping stops, ms (flap; default: the end of the run). The link is left up.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub until: Option<f64>,
}

/// Timeline action kinds.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Stop a node: a server loses its volatile state and unfinished disk writes, a client its
    /// proxy state and outstanding operations, a hub stops routing.
    #[default]
    Crash,
    /// Restart a crashed node (a server from its durable state).
    Recover,
    /// Freeze a server or client (a stop-the-world GC, a stalled disk): nothing is processed;
    /// packets, timers and disk completions wait.
    Pause,
    /// Unfreeze: everything that waited is handled at once, in order.
    Resume,
    /// Cut a node off the network (in, out or both directions) while it keeps running.
    Isolate,
    /// Undo `isolate`.
    Rejoin,
    /// Stop traffic between groups of nodes (`groups`), or one way (`from` → `to`).
    Partition,
    /// Remove every partition.
    Heal,
    /// Change a node's clock drift (`rate`) and/or offset.
    Clock,
    /// Take a link (or one direction) down; packets on it are lost.
    LinkDown,
    /// Bring a link (or one direction) back up.
    LinkUp,
    /// Change a link's latency, loss, bursty loss, duplication or bandwidth.
    LinkChange,
    /// Make a link alternate down and up with dwell times drawn from `down` and `up`.
    Flap,
}

/// A role a timeline action can target instead of a node.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleTarget {
    Leader,
    Follower,
    Candidate,
    Last,
}

/// A partition group member: a node id, or `{"role": "leader"}` (resolved when the action
/// fires).
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum Member {
    Node(Name),
    Role { role: RoleTarget },
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node id or {\"role\": ...}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Member, E> {
                Ok(Member::Node(Name::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Member, E> {
                i64::try_from(v)
                    .map(|i| Member::Node(Name::Int(i)))
                    .map_err(|_| E::custom("integer id too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Member, E> {
                Ok(Member::Node(Name::Str(v.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct RoleRef {
                    role: RoleTarget,
                }
                RoleRef::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|r| Member::Role { role: r.role })
            }
        }
        d.deserialize_any(V)
    }
}

/// A partition group: a list of members, or `"rest"` (every server in no other group).
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum GroupSpec {
    Members(Vec<Member>),
    Rest(String),
}

impl<'de> Deserialize<'de> for GroupSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GroupSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of node ids or roles, or \"rest\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GroupSpec, E> {
                if v == "rest" {
                    Ok(GroupSpec::Rest(v.to_string()))
                } else {
                    Err(E::invalid_value(
                        de::Unexpected::Str(v),
                        &"a list of node ids or roles, or \"rest\"",
                    ))
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<GroupSpec, A::Error> {
                Vec::<Member>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(GroupSpec::Members)
            }
        }
        d.deserialize_any(V)
    }
}

/// Random faults. Each kind is a Poisson process at `rate` events per second between `start`
/// and `stop`; each event lasts a draw from `duration`, then is undone.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ChaosSpec {
    /// When faults may start, ms (default 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub start: Option<f64>,
    /// When faults stop starting, ms (default: the end of the run).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub stop: Option<f64>,
    /// Crash and later recover a node.
    #[serde(default)]
    pub crash: Option<ChaosFault>,
    /// Pause and later resume a node.
    #[serde(default)]
    pub pause: Option<ChaosFault>,
    /// Isolate and later rejoin a node (both directions).
    #[serde(default)]
    pub isolate: Option<ChaosFault>,
    /// Split the servers into a random minority and the rest (clients stay with the rest), then
    /// heal.
    #[serde(default)]
    pub partition: Option<ChaosFault>,
    /// Take a random link down and later up.
    #[serde(default)]
    pub link: Option<ChaosFault>,
}

/// One kind of random fault.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ChaosFault {
    /// Events per second.
    #[schemars(range(min = 0.0001, max = 10000.0))]
    pub rate: f64,
    /// How long each lasts.
    pub duration: Latency,
    /// Whom node faults hit: `servers` (default, a random server), `any` (a random server or
    /// client), `leader` (the current leader) or `follower`.
    #[serde(default)]
    pub target: Option<ChaosTarget>,
}

/// Targets of random node faults.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChaosTarget {
    Servers,
    Any,
    Leader,
    Follower,
}

/// A regular expression alternation matching any of `words` in any mix of letter cases.
pub(crate) fn any_case(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The schema of a case-insensitive string enum: the lower-case names (for editors'
/// completion) or any other spelling of them (a pattern, for validation).
fn case_insensitive(name: &str, words: &[&str], description: &str) -> schemars::Schema {
    let pattern = any_case(words);
    schemars::json_schema!({
        "title": name,
        "description": description,
        "type": "string",
        "anyOf": [{"enum": words}, {"pattern": format!("^(?:{pattern})$")}]
    })
}

/// Link direction (case-insensitive: the 2015 formats wrote `"Bi"` too).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Bi,
    Uni,
}

impl JsonSchema for Direction {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Direction".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        case_insensitive(
            "Direction",
            &["bi", "uni"],
            "Link direction, case-insensitive.",
        )
    }
}

/// A string for a case-insensitive name; a wrong type is "expected one of "a", "b" (in any
/// case), found …".
fn case_insensitive_name<'de, D: Deserializer<'de>>(
    d: D,
    names: &'static [&'static str],
) -> Result<String, D::Error> {
    struct V(&'static [&'static str]);
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let quoted: Vec<String> = self.0.iter().map(|n| format!("\"{n}\"")).collect();
            write!(f, "one of {} (in any case)", quoted.join(", "))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_str(V(names))
}

impl<'de> Deserialize<'de> for Direction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = case_insensitive_name(d, &["bi", "uni"])?;
        match s.to_ascii_lowercase().as_str() {
            "bi" => Ok(Direction::Bi),
            "uni" => Ok(Direction::Uni),
            _ => Err(de::Error::unknown_variant(&s, &["bi", "uni"])),
        }
    }
}

/// Which direction(s) of a link an action affects.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    Forward,
    Reverse,
    #[default]
    Both,
    In,
    Out,
}

/// Node type.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Server,
    Client,
    Hub,
}

impl JsonSchema for NodeKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NodeKind".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        case_insensitive(
            "NodeKind",
            &["server", "client", "hub"],
            "Node type, case-insensitive.",
        )
    }
}

impl NodeKind {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Server => "server",
            NodeKind::Client => "client",
            NodeKind::Hub => "hub",
        }
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    /// Case-insensitive, because the 2015 web editor wrote `"Server"`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = case_insensitive_name(d, &["server", "client", "hub"])?;
        match s.to_ascii_lowercase().as_str() {
            "server" => Ok(NodeKind::Server),
            "client" => Ok(NodeKind::Client),
            "hub" => Ok(NodeKind::Hub),
            _ => Err(de::Error::unknown_variant(&s, &["server", "client", "hub"])),
        }
    }
}

/// A node or link name: any integer or string. Integers and their decimal strings are the same
/// name (`1` and `"1"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Name {
    Int(i64),
    Str(String),
}

impl Name {
    /// The canonical text form.
    pub fn text(&self) -> String {
        match self {
            Name::Int(i) => i.to_string(),
            Name::Str(s) => s.clone(),
        }
    }
    /// As JSON, keeping the user's type.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Name::Int(i) => serde_json::Value::from(*i),
            Name::Str(s) => serde_json::Value::from(s.clone()),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Int(i) => write!(f, "{i}"),
            Name::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Name::Int(i) => s.serialize_i64(*i),
            Name::Str(x) => s.serialize_str(x),
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Name, E> {
                Ok(Name::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Name, E> {
                i64::try_from(v)
                    .map(Name::Int)
                    .map_err(|_| E::custom("integer id too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                if v.is_empty() {
                    return Err(E::invalid_value(
                        de::Unexpected::Str(v),
                        &"a non-empty string",
                    ));
                }
                // Ids are printed in tables and traces: a newline or a NUL in one breaks them.
                if v.chars().any(char::is_control) {
                    return Err(E::invalid_value(
                        de::Unexpected::Str(v),
                        &"a string without control characters (newlines, tabs, ...)",
                    ));
                }
                Ok(Name::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Name {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Name".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An integer or a non-empty string.",
            "type": ["integer", "string"]
        })
    }
}

/// A latency: a number of milliseconds (constant), a 2015 class (`"s"`, `"m"`, `"l"` = 5, 10,
/// 20 ms), or a distribution object such as `{"dist": "uniform", "min": 1, "max": 2}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Latency {
    Ms(f64),
    Class(String),
    Dist(DistSpec),
}

/// A latency distribution. Keys by `dist`: `constant` (value), `uniform` (min, max), `normal`
/// (mean, sd; negative draws are redrawn), `lognormal` (mu, sigma of ln(ms)), `exponential`
/// (mean), `pareto` (scale, shape > 1).
#[derive(Deserialize, Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistSpec {
    /// Which distribution.
    pub dist: DistKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<f64>,
}

/// Distribution families.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DistKind {
    Constant,
    Uniform,
    Normal,
    Lognormal,
    Exponential,
    Pareto,
}

impl DistKind {
    /// Every family, in the order of the documentation.
    pub const ALL: [DistKind; 6] = [
        DistKind::Constant,
        DistKind::Uniform,
        DistKind::Normal,
        DistKind::Lognormal,
        DistKind::Exponential,
        DistKind::Pareto,
    ];

    /// The name in files.
    pub fn name(self) -> &'static str {
        match self {
            DistKind::Constant => "constant",
            DistKind::Uniform => "uniform",
            DistKind::Normal => "normal",
            DistKind::Lognormal => "lognormal",
            DistKind::Exponential => "exponential",
            DistKind::Pareto => "pareto",
        }
    }

    /// The keys the family takes besides `dist`, all required.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            DistKind::Constant => &["value"],
            DistKind::Uniform => &["min", "max"],
            DistKind::Normal => &["mean", "sd"],
            DistKind::Lognormal => &["mu", "sigma"],
            DistKind::Exponential => &["mean"],
            DistKind::Pareto => &["scale", "shape"],
        }
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Latency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a latency: milliseconds, \"s\"/\"m\"/\"l\", or {\"dist\": ..., ...}")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Latency, E> {
                Ok(Latency::Ms(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Latency, E> {
                Ok(Latency::Ms(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Latency, E> {
                Ok(Latency::Ms(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Latency, E> {
                Ok(Latency::Class(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Latency, A::Error> {
                // Deserialising through the caller's MapAccess keeps path tracking, so errors
                // inside the object name the exact key.
                DistSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(Latency::Dist)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Latency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Latency".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let dist = g.subschema_for::<DistSpec>();
        schemars::json_schema!({
            "description": "Milliseconds, a 2015 class (\"s\" = 5, \"m\" = 10, \"l\" = 20 ms), or a distribution object.",
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "enum": ["s", "m", "l", "S", "M", "L"]},
                dist
            ]
        })
    }
}

/// What clients do. Arrival `type`: `closed` (the next operation `think_time` ms after the
/// previous completes), `open` (Poisson arrivals at `rate` operations per second, queued in the
/// client), or `interval` (the 2015 form: every U[min, max) ms; a tick while an operation is
/// outstanding is skipped and counted).
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Arrival process: `closed`, `open` or `interval`.
    #[serde(default, rename = "type")]
    pub kind: Option<ArrivalKind>,
    /// `closed`: pause between a completion and the next operation, ms (default 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub think_time: Option<f64>,
    /// `open`: operations per second per client.
    #[serde(default)]
    #[schemars(range(min = 0.000001, max = 1000000.0))]
    pub rate: Option<f64>,
    /// `interval`: minimum gap between operations, ms.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub min: Option<f64>,
    /// `interval`: maximum gap between operations, ms.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub max: Option<f64>,
    /// Number of keys; operations pick one uniformly (default 5).
    #[serde(default)]
    // Read wide so that an out-of-range count gets the range check's message, not the integer
    // type's.
    #[schemars(range(min = 1, max = 1000000))]
    pub keys: Option<u64>,
    /// Fraction of operations that are reads (default 0.5).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub read_fraction: Option<f64>,
    /// Fraction of operations that are compare-and-set (default 0); the rest are puts.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub cas_fraction: Option<f64>,
    /// When clients start issuing operations, ms (default 0).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub start: Option<f64>,
    /// When clients stop issuing new operations, ms (default: never).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e10))]
    pub stop: Option<f64>,
    /// Stop after this many operations per client (default: no limit).
    #[serde(default)]
    pub max_ops: Option<u64>,
    /// Open loops: arrivals that find this many operations already waiting in the client are
    /// not issued (counted as skipped), so an overloaded run cannot queue without bound
    /// (default 10000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000000))]
    pub queue_limit: Option<u64>,
    /// Per-client overrides of any of the keys above, by client id.
    #[serde(default)]
    pub clients: BTreeMap<String, WorkloadSpec>,
}

/// Arrival processes.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalKind {
    Closed,
    Open,
    Interval,
}

/// The servers' durable storage.
#[derive(Deserialize, Serialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// Time one durable write takes (default 0). Writes of one server complete in order; a
    /// server answers only after the writes its answer depends on have completed.
    #[serde(default)]
    pub latency: Option<Latency>,
}
