//! The network: nodes, directed channels, and hop-by-hop shortest-path routing through hubs.
//!
//! Every link becomes two directed channels (the reverse one unused for `uni` links), each with
//! its own latency distribution, loss probability, up/down state and random stream. Only hubs
//! forward packets: a route from a server or client is either a direct channel to the
//! destination or a path whose intermediate nodes are all hubs that are up. That is what makes
//! non-transitive reachability expressible (A reaches B and B reaches C, yet A cannot reach C).
//!
//! Routing picks the path of least expected latency; ties go to fewer hops, then to the lowest
//! channel index (declaration order of the links), so routes never depend on hash order or on
//! the order in which the search visits nodes. Those rules make each table canonical (every
//! node's next hop is the lowest-index channel among those on a cheapest path), so a table can
//! be repaired in place and still equal a fresh computation.
//!
//! Next-hop tables are computed per destination on first use and then repaired when the network
//! changes, at a cost proportional to what changed (a dynamic shortest-path update in the manner
//! of Ramalingam and Reps). A channel going down or getting slower matters to a table only if
//! its sender routes over it (an O(1) test): then only the sender's subtree in the
//! shortest-path tree, the nodes whose route passed through it, is searched again, seeded from
//! its unaffected neighbours. A channel coming up or getting faster matters only if it beats the
//! route at its sender: then the improvement spreads upstream from the sender, as far as it
//! improves anything. A hub going down is a loss for the subtree it relayed; a hub coming up an
//! improvement spreading from it.
//!
//! A *leaf* (a server or client that only one channel reaches, such as a client on one access
//! link) gets no table of its own: every path to it ends with that channel, so its routes are
//! the routes to the node at the channel's other end. On an edge network most nodes are leaves,
//! and deriving their routes keeps the tables (n × 20 bytes each) to the hubs and the
//! multi-homed nodes.

use crate::config::spec::NodeKind;
use crate::dist::{Delay, Sampler};
use crate::scenario::{BurstLoss, ChannelDef, LinkChange, Scenario};
use coracle_core::{Rng, Time, ms_to_time, rng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::VecDeque;

/// No channel.
pub const NONE: u32 = u32::MAX;

/// One direction of a link.
#[derive(Debug)]
pub struct Channel {
    pub from: u32,
    pub to: u32,
    /// Index of the link in the scenario.
    pub link: u32,
    /// False for the unused reverse direction of a one-way link.
    pub exists: bool,
    pub up: bool,
    pub latency: Sampler,
    pub loss: f64,
    /// Gilbert–Elliott state.
    pub burst: Option<Burst>,
    pub duplicate: f64,
    /// Bytes per ns, when limited.
    pub bandwidth: Option<f64>,
    /// Longest queue (packets waiting), when limited.
    pub queue: Option<u32>,
    /// When the transmitter is next free.
    pub busy_until: Time,
    /// Transmission start times of packets still waiting in the queue.
    pub waiting: VecDeque<Time>,
    /// Expected latency in ns: the routing cost.
    pub cost: Time,
    /// How many times this channel went down; a packet remembers the value it saw when it
    /// entered the channel, so a change means the channel failed under it.
    pub downs: u32,
    pub rng: Rng,
}

/// Gilbert–Elliott loss state of a channel.
#[derive(Debug, Clone)]
pub struct Burst {
    pub spec: BurstLoss,
    pub bad: bool,
}

impl Channel {
    fn new(from: usize, to: usize, link: usize, exists: bool, def: &ChannelDef, rng: Rng) -> Self {
        Channel {
            from: from as u32,
            to: to as u32,
            link: link as u32,
            exists,
            up: def.up,
            latency: Sampler::new(def.latency.clone()),
            loss: def.loss,
            burst: def.burst.clone().map(|spec| Burst { spec, bad: false }),
            duplicate: def.duplicate,
            bandwidth: def.bandwidth,
            queue: def.queue,
            busy_until: 0,
            waiting: VecDeque::new(),
            cost: cost_of(&def.latency),
            downs: 0,
            rng,
        }
    }
}

fn cost_of(d: &Delay) -> Time {
    ms_to_time(d.mean_ms())
}

/// Per-destination next-hop table with the shortest-path tree's (cost, hops) per node.
#[derive(Debug)]
struct Routes {
    valid: bool,
    /// For a leaf: the only channel reaching it ([`NONE`] otherwise); the table stays empty.
    last: u32,
    next: Vec<u32>,
    dist: Vec<(Time, u32)>,
}

const FAR: (Time, u32) = (Time::MAX, u32::MAX);

/// The network state.
#[derive(Debug)]
pub struct Topology {
    kinds: Vec<NodeKind>,
    /// Whether hubs are up (servers' and clients' state lives in the engine; it does not
    /// affect routes because they never forward).
    hub_up: Vec<bool>,
    pub channels: Vec<Channel>,
    incoming: Vec<Vec<u32>>,
    outgoing: Vec<Vec<u32>>,
    routes: Vec<Routes>,
    /// Working space of the repairs, kept to avoid allocating per change.
    scratch: Scratch,
    /// Destinations whose table is valid.
    computed: Vec<u32>,
    /// Number of route tables computed from scratch (for benchmarks and tests).
    pub recomputations: u64,
    /// Number of route tables repaired in place after a change.
    pub repairs: u64,
}

/// Working space of a table repair.
#[derive(Debug, Default)]
struct Scratch {
    /// `mark[x] == epoch`: node `x` is in the subtree being searched again.
    mark: Vec<u32>,
    epoch: u32,
    stack: Vec<u32>,
    affected: Vec<u32>,
    heap: BinaryHeap<Reverse<(Time, u32, u32)>>,
}

/// Dijkstra backwards from the nodes in `heap` (their distances already set in `r`): each node
/// taken from the heap offers itself over its incoming channels that are up to the senders
/// `may_change` allows, which take it if it `beats` what they have. Only hubs that are up
/// relay, so only they go on the heap (the destination was put there by the caller).
fn settle(
    r: &mut Routes,
    heap: &mut BinaryHeap<Reverse<(Time, u32, u32)>>,
    channels: &[Channel],
    incoming: &[Vec<u32>],
    hub_up: &[bool],
    may_change: impl Fn(usize) -> bool,
) {
    while let Some(Reverse((c, h, x))) = heap.pop() {
        let x = x as usize;
        if (c, h) != r.dist[x] {
            continue; // superseded by a shorter path
        }
        for &chi in &incoming[x] {
            let ch = &channels[chi as usize];
            let y = ch.from as usize;
            if !ch.up || !may_change(y) {
                continue;
            }
            let cand = (c.saturating_add(ch.cost), h + 1);
            if cand < r.dist[y] {
                r.dist[y] = cand;
                r.next[y] = chi;
                if hub_up[y] {
                    heap.push(Reverse((cand.0, cand.1, y as u32)));
                }
            } else if cand == r.dist[y] && chi < r.next[y] {
                r.next[y] = chi;
            }
        }
    }
}

/// Whether reaching a node at `cand` over channel `ch` beats its current `(dist, next)`: lower
/// (cost, hops), then the lower channel index.
#[inline]
fn beats(cand: (Time, u32), ch: u32, dist: (Time, u32), next: u32) -> bool {
    cand < dist || (cand == dist && ch < next)
}

impl Topology {
    /// Builds the network of `scenario`; link `i`'s directions are channels `2i` and `2i+1`.
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        let n = scenario.nodes.len();
        let mut channels = Vec::with_capacity(scenario.links.len() * 2);
        let mut incoming = vec![Vec::new(); n];
        let mut outgoing = vec![Vec::new(); n];
        for (i, l) in scenario.links.iter().enumerate() {
            let f = Channel::new(
                l.from,
                l.to,
                i,
                true,
                &l.forward,
                rng::stream(seed, rng::purpose::LINK, 2 * i as u64),
            );
            let r = Channel::new(
                l.to,
                l.from,
                i,
                l.bidirectional,
                &l.reverse,
                rng::stream(seed, rng::purpose::LINK, 2 * i as u64 + 1),
            );
            incoming[l.to].push(2 * i as u32);
            outgoing[l.from].push(2 * i as u32);
            if l.bidirectional {
                incoming[l.from].push(2 * i as u32 + 1);
                outgoing[l.to].push(2 * i as u32 + 1);
            }
            channels.push(f);
            channels.push(r);
        }
        Topology {
            kinds: scenario.nodes.iter().map(|n| n.kind).collect(),
            hub_up: scenario
                .nodes
                .iter()
                .map(|n| n.kind == NodeKind::Hub && n.up)
                .collect(),
            channels,
            computed: Vec::new(),
            routes: (0..n)
                .map(|d| Routes {
                    valid: false,
                    last: match incoming[d][..] {
                        [only] if scenario.nodes[d].kind != NodeKind::Hub => only,
                        _ => NONE,
                    },
                    next: Vec::new(),
                    dist: Vec::new(),
                })
                .collect(),
            incoming,
            outgoing,
            scratch: Scratch {
                mark: vec![0; n],
                ..Scratch::default()
            },
            recomputations: 0,
            repairs: 0,
        }
    }

    /// True if `node` is a hub that is up.
    pub fn hub_up(&self, node: usize) -> bool {
        self.hub_up[node]
    }

    /// Marks a hub up or down.
    pub fn set_hub(&mut self, node: usize, up: bool) {
        if self.kinds[node] != NodeKind::Hub || self.hub_up[node] == up {
            return;
        }
        self.hub_up[node] = up;
        for k in 0..self.computed.len() {
            let d = self.computed[k] as usize;
            if up {
                let dh = self.routes[d].dist[node];
                if dh != FAR && node != d {
                    self.improve_from(d, node);
                }
            } else if node != d {
                // The hub keeps its own route (it may still send); what it relayed is lost.
                self.reroute_below(d, node, false);
            }
        }
    }

    /// Whether a channel exists and is up.
    pub fn channel_up(&self, ch: usize) -> bool {
        let c = &self.channels[ch];
        c.exists && c.up
    }

    /// Brings a channel up or down.
    pub fn set_channel_up(&mut self, ch: usize, up: bool) {
        let c = &mut self.channels[ch];
        if !c.exists || c.up == up {
            return;
        }
        c.up = up;
        if up {
            self.after_gain(ch);
        } else {
            c.downs = c.downs.wrapping_add(1);
            // What was queued or being sent is lost (at its arrival, through `downs`); it no
            // longer holds the link: a packet after the link comes back does not wait for it.
            c.busy_until = 0;
            c.waiting.clear();
            self.after_loss(ch);
        }
    }

    /// Repairs the tables whose shortest-path tree uses channel `ch`, which went down or got
    /// slower.
    fn after_loss(&mut self, ch: usize) {
        let u = self.channels[ch].from as usize;
        for k in 0..self.computed.len() {
            let d = self.computed[k] as usize;
            if self.routes[d].next[u] == ch as u32 {
                self.reroute_below(d, u, true);
            }
        }
    }

    /// Repairs the tables in which channel `ch`, which came up or got faster, beats the route
    /// at its sender.
    fn after_gain(&mut self, ch: usize) {
        let c = &self.channels[ch];
        let (u, v, cost) = (c.from as usize, c.to as usize, c.cost);
        for k in 0..self.computed.len() {
            let d = self.computed[k] as usize;
            if v != d && !self.hub_up[v] {
                continue;
            }
            let r = &mut self.routes[d];
            let dv = r.dist[v];
            if dv == FAR {
                continue;
            }
            let cand = (dv.0.saturating_add(cost), dv.1 + 1);
            if cand < r.dist[u] {
                r.dist[u] = cand;
                r.next[u] = ch as u32;
                if self.hub_up[u] {
                    self.improve_from(d, u);
                }
            } else if cand == r.dist[u] && (ch as u32) < r.next[u] {
                r.next[u] = ch as u32; // same cost, so nothing upstream changes
            }
        }
    }

    /// Spreads an improvement of relay `from`'s distance in table `d` upstream, as far as it
    /// improves anything.
    fn improve_from(&mut self, d: usize, from: usize) {
        self.repairs += 1;
        let r = &mut self.routes[d];
        let heap = &mut self.scratch.heap;
        heap.clear();
        heap.push(Reverse((r.dist[from].0, r.dist[from].1, from as u32)));
        settle(
            r,
            heap,
            &self.channels,
            &self.incoming,
            &self.hub_up,
            |_| true,
        );
    }

    /// Searches again, in table `d`, the routes of the nodes whose path goes through `root`
    /// (with `root` itself when `with_root`), seeded from the rest of the tree, which the
    /// change cannot have touched.
    fn reroute_below(&mut self, d: usize, root: usize, with_root: bool) {
        let r = &mut self.routes[d];
        let sc = &mut self.scratch;
        sc.epoch = sc.epoch.wrapping_add(1);
        if sc.epoch == 0 {
            sc.mark.fill(0);
            sc.epoch = 1;
        }
        let epoch = sc.epoch;
        // 1. The subtree: a node is a child of `y` if its next hop is a channel into `y`.
        sc.affected.clear();
        sc.stack.clear();
        if with_root {
            sc.mark[root] = epoch;
            sc.affected.push(root as u32);
        }
        sc.stack.push(root as u32);
        while let Some(y) = sc.stack.pop() {
            for &chi in &self.incoming[y as usize] {
                let x = self.channels[chi as usize].from as usize;
                if r.next[x] == chi && sc.mark[x] != epoch {
                    sc.mark[x] = epoch;
                    sc.affected.push(x as u32);
                    sc.stack.push(x as u32);
                }
            }
        }
        if sc.affected.is_empty() {
            return;
        }
        self.repairs += 1;
        for &x in &sc.affected {
            r.dist[x as usize] = FAR;
            r.next[x as usize] = NONE;
        }
        // 2. Seeds: the best way out of the subtree from each of its nodes.
        sc.heap.clear();
        for &x in &sc.affected {
            let x = x as usize;
            for &chi in &self.outgoing[x] {
                let ch = &self.channels[chi as usize];
                let w = ch.to as usize;
                if !ch.up || sc.mark[w] == epoch || (w != d && !self.hub_up[w]) {
                    continue;
                }
                let dw = r.dist[w];
                if dw == FAR {
                    continue;
                }
                let cand = (dw.0.saturating_add(ch.cost), dw.1 + 1);
                if beats(cand, chi, r.dist[x], r.next[x]) {
                    r.dist[x] = cand;
                    r.next[x] = chi;
                }
            }
            if r.dist[x] != FAR && self.hub_up[x] {
                sc.heap.push(Reverse((r.dist[x].0, r.dist[x].1, x as u32)));
            }
        }
        // 3. Dijkstra inside the subtree.
        let mark = &sc.mark;
        settle(
            r,
            &mut sc.heap,
            &self.channels,
            &self.incoming,
            &self.hub_up,
            |y| mark[y] == epoch,
        );
    }

    /// Applies a timeline change to a channel.
    pub fn change_channel(&mut self, ch: usize, change: &LinkChange) {
        if let Some(up) = change.up {
            self.set_channel_up(ch, up);
        }
        let c = &mut self.channels[ch];
        if !c.exists {
            return;
        }
        if let Some(l) = &change.latency {
            let cost = cost_of(l);
            c.latency = Sampler::new(l.clone());
            if cost != c.cost {
                let slower = cost > c.cost;
                c.cost = cost;
                let up = c.up;
                if up {
                    if slower {
                        self.after_loss(ch);
                    } else {
                        // Tables using it improve below its sender; others may now take it.
                        self.after_gain(ch);
                    }
                }
            }
        }
        let c = &mut self.channels[ch];
        if let Some(p) = change.loss {
            c.loss = p;
        }
        if let Some(b) = &change.burst {
            c.burst = Some(Burst {
                spec: b.clone(),
                bad: false,
            });
        }
        if let Some(d) = change.duplicate {
            c.duplicate = d;
        }
        if let Some(b) = change.bandwidth {
            c.bandwidth = Some(b);
        }
    }

    /// The channel a packet at `at` heading for `dst` takes next, or [`NONE`] if there is no
    /// route.
    #[inline]
    pub fn next_hop(&mut self, at: usize, dst: usize) -> u32 {
        let r = &self.routes[dst];
        if r.valid {
            return r.next[at];
        }
        if r.last != NONE {
            return self.leaf_hop(at, dst, r.last);
        }
        self.compute(dst);
        self.routes[dst].next[at]
    }

    /// Next hop towards a leaf reached only by channel `last`: that channel from its sender,
    /// and from anywhere else the route to the sender, which must then relay (be a hub that
    /// is up). The same choice [`Topology::compute`] would make, at no cost in memory.
    fn leaf_hop(&mut self, at: usize, dst: usize, last: u32) -> u32 {
        let c = &self.channels[last as usize];
        let via = c.from as usize;
        if at == dst || !c.up {
            NONE
        } else if at == via {
            last
        } else if !self.hub_up[via] {
            NONE
        } else {
            self.next_hop(at, via)
        }
    }

    /// Reverse Dijkstra from `dst` over up channels, extending paths backwards only through
    /// hubs that are up.
    fn compute(&mut self, dst: usize) {
        self.recomputations += 1;
        let n = self.kinds.len();
        let routes = &mut self.routes[dst];
        routes.next.clear();
        routes.next.resize(n, NONE);
        routes.dist.clear();
        routes.dist.resize(n, FAR);
        routes.valid = true;
        self.computed.push(dst as u32);
        routes.dist[dst] = (0, 0);
        let heap = &mut self.scratch.heap;
        heap.clear();
        heap.push(Reverse((0, 0u32, dst as u32)));
        settle(
            routes,
            heap,
            &self.channels,
            &self.incoming,
            &self.hub_up,
            |_| true,
        );
        routes.next[dst] = NONE;
    }

    /// The full path from `src` to `dst` as node indices (for `coracle check` and tests).
    pub fn path(&mut self, src: usize, dst: usize) -> Option<Vec<usize>> {
        let mut at = src;
        let mut path = vec![src];
        while at != dst {
            let ch = self.next_hop(at, dst);
            if ch == NONE || path.len() > self.kinds.len() {
                return None;
            }
            at = self.channels[ch as usize].to as usize;
            path.push(at);
        }
        Some(path)
    }

    /// Expected one-way latency along the current route, ns.
    pub fn route_cost(&mut self, src: usize, dst: usize) -> Option<Time> {
        let p = self.path(src, dst)?;
        let mut total = 0;
        for w in p.windows(2) {
            let ch = self.next_hop(w[0], dst);
            total += self.channels[ch as usize].cost;
            debug_assert_eq!(self.channels[ch as usize].to as usize, w[1]);
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn topo(json: &str) -> (Scenario, Topology) {
        let s = load_str("t.json", json).unwrap();
        let t = Topology::new(&s, 1);
        (s, t)
    }

    const DIRECT_VS_HUB: &str = r#"{
        "consensus": {"protocol": "dummy"},
        "network": {
            "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "hub"}],
            "links": [
                {"from": 1, "to": 3, "latency": 5},
                {"from": 3, "to": 2, "latency": 5},
                {"from": 1, "to": 2, "latency": 20}
            ]
        }
    }"#;

    #[test]
    fn cheapest_route_wins_whatever_the_link_order() {
        // The 2015 prototype let link order decide between a direct link and a cheaper hub path.
        let (_, mut t) = topo(DIRECT_VS_HUB);
        assert_eq!(t.path(0, 1), Some(vec![0, 2, 1]));
        assert_eq!(t.route_cost(0, 1), Some(10 * coracle_core::MS));
        let reordered = DIRECT_VS_HUB.replace(
            r#"{"from": 1, "to": 3, "latency": 5},
                {"from": 3, "to": 2, "latency": 5},
                {"from": 1, "to": 2, "latency": 20}"#,
            r#"{"from": 1, "to": 2, "latency": 20},
                {"from": 3, "to": 2, "latency": 5},
                {"from": 1, "to": 3, "latency": 5}"#,
        );
        let (_, mut t2) = topo(&reordered);
        assert_eq!(t2.path(0, 1), Some(vec![0, 2, 1]));
    }

    #[test]
    fn servers_do_not_relay_and_down_hubs_do_not_route() {
        let json = r#"{
            "consensus": {"protocol": "dummy"},
            "network": {
                "nodes": [{"id": "a", "type": "server"}, {"id": "b", "type": "server"}, {"id": "c", "type": "server"}, {"id": "h", "type": "hub"}],
                "links": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "a", "to": "h"}, {"from": "h", "to": "c"}]
            }
        }"#;
        let (_, mut t) = topo(json);
        assert_eq!(
            t.path(0, 2),
            Some(vec![0, 3, 2]),
            "a reaches c only through the hub, not through server b"
        );
        t.set_hub(3, false);
        assert_eq!(t.path(0, 2), None);
        assert_eq!(t.path(0, 1), Some(vec![0, 1]));
        t.set_hub(3, true);
        assert_eq!(t.path(0, 2), Some(vec![0, 3, 2]));
    }

    #[test]
    fn one_way_links_route_one_way() {
        let json = r#"{
            "consensus": {"protocol": "dummy"},
            "network": {
                "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}],
                "links": [{"from": 1, "to": 2, "direction": "uni"}]
            }
        }"#;
        let (_, mut t) = topo(json);
        assert_eq!(t.path(0, 1), Some(vec![0, 1]));
        assert_eq!(t.path(1, 0), None);
    }

    #[test]
    fn ties_go_to_fewer_hops_then_to_the_first_declared_link() {
        let json = r#"{
            "consensus": {"protocol": "dummy"},
            "network": {
                "nodes": [{"id": 1, "type": "server"}, {"id": 2, "type": "server"}, {"id": 3, "type": "hub"}, {"id": 4, "type": "hub"}],
                "links": [
                    {"id": "via4a", "from": 1, "to": 4, "latency": 5}, {"id": "via4b", "from": 4, "to": 2, "latency": 5},
                    {"id": "via3a", "from": 1, "to": 3, "latency": 5}, {"id": "via3b", "from": 3, "to": 2, "latency": 5},
                    {"id": "direct", "from": 1, "to": 2, "latency": 10}
                ]
            }
        }"#;
        let (_, mut t) = topo(json);
        assert_eq!(
            t.path(0, 1),
            Some(vec![0, 1]),
            "equal cost: the direct link has fewer hops"
        );
        let ch = t.next_hop(0, 1) as usize;
        t.set_channel_up(ch, false);
        // Two equal two-hop paths: the one whose first channel was declared first (via hub 4).
        assert_eq!(t.path(0, 1), Some(vec![0, 3, 1]));
    }

    #[test]
    fn routes_change_only_after_a_change() {
        let (_, mut t) = topo(DIRECT_VS_HUB);
        t.next_hop(0, 1);
        t.next_hop(2, 1);
        t.next_hop(0, 1);
        assert_eq!(t.recomputations, 1);
        t.change_channel(
            0,
            &LinkChange {
                loss: Some(0.5),
                ..Default::default()
            },
        ); // loss does not change routes
        t.next_hop(0, 1);
        assert_eq!(t.recomputations, 1);
        assert_eq!(t.repairs, 0);
        t.set_channel_up(0, false);
        t.next_hop(0, 1);
        assert_eq!(
            (t.recomputations, t.repairs),
            (1, 1),
            "repaired, not recomputed"
        );
        assert_eq!(t.path(0, 1), Some(vec![0, 1]));
        t.set_channel_up(3, false); // the unused 2 -> 3 direction
        assert_eq!(
            t.repairs, 1,
            "a channel no route uses going down changes nothing"
        );
    }

    #[test]
    fn leaves_take_their_routes_from_the_node_that_reaches_them() {
        // Clients c1, c2 hang off hub h1; h1 and h2 are joined twice (a slow and a fast link);
        // server s is on h2 and on h1 (multi-homed).
        let json = r#"{
            "consensus": {"protocol": "dummy"},
            "network": {
                "nodes": [{"id": "h1", "type": "hub"}, {"id": "h2", "type": "hub"}, {"id": "s", "type": "server"},
                          {"id": "c1", "type": "client"}, {"id": "c2", "type": "client"}],
                "links": [
                    {"id": "slow", "from": "h1", "to": "h2", "latency": 9}, {"id": "fast", "from": "h1", "to": "h2", "latency": 1},
                    {"from": "s", "to": "h2", "latency": 1}, {"from": "s", "to": "h1", "latency": 5},
                    {"from": "c1", "to": "h1"}, {"from": "c2", "to": "h1"}
                ]
            }
        }"#;
        let (_, mut t) = topo(json);
        assert_eq!(t.path(2, 3), Some(vec![2, 1, 0, 3]));
        assert_eq!(t.path(4, 3), Some(vec![4, 0, 3]));
        assert_eq!(t.route_cost(2, 3), Some(12 * coracle_core::MS));
        assert_eq!(
            t.recomputations, 1,
            "one table (for h1) serves both clients"
        );
        t.set_channel_up(3, false); // the fast h2 -> h1 direction: s now goes directly to h1
        assert_eq!(t.path(2, 3), Some(vec![2, 0, 3]));
        t.set_hub(0, false);
        assert_eq!(t.path(2, 3), None, "a leaf's only hub is down");
        assert_eq!(
            t.path(0, 3),
            Some(vec![0, 3]),
            "the hub itself still has the link"
        );
        t.set_hub(0, true);
        t.set_channel_up(9, true); // c1's link, h1 -> c1: already up
        t.set_channel_up(8, false);
        assert_eq!(t.path(3, 2), None, "c1 -> h1 is down");
        assert_eq!(t.path(2, 3), Some(vec![2, 0, 3]), "h1 -> c1 still works");
        t.set_channel_up(9, false);
        assert_eq!(t.path(2, 3), None);
    }

    mod incremental {
        use super::*;
        use crate::dist::Delay;
        use proptest::prelude::*;

        fn graph(n_hubs: usize, n_ends: usize, edges: &[(usize, usize, u8, bool)]) -> String {
            let mut nodes = vec![];
            for i in 0..n_hubs {
                nodes.push(serde_json::json!({"id": format!("h{i}"), "type": "hub"}));
            }
            for i in 0..n_ends {
                nodes.push(serde_json::json!({"id": format!("s{i}"), "type": "server"}));
            }
            let total = n_hubs + n_ends;
            let name = |i: usize| {
                if i < n_hubs {
                    format!("h{i}")
                } else {
                    format!("s{}", i - n_hubs)
                }
            };
            let mut links = vec![];
            for (k, &(a, b, lat, bi)) in edges.iter().enumerate() {
                let (a, b) = (a % total, b % total);
                if a == b {
                    continue;
                }
                links.push(serde_json::json!({"id": k, "from": name(a), "to": name(b), "latency": lat as f64,
                    "direction": if bi { "bi" } else { "uni" }}));
            }
            serde_json::json!({"consensus": {"protocol": "dummy"}, "network": {"nodes": nodes, "links": links}}).to_string()
        }

        fn all_routes(t: &mut Topology, n: usize) -> Vec<u32> {
            let mut v = vec![];
            for d in 0..n {
                for a in 0..n {
                    v.push(t.next_hop(a, d));
                }
            }
            v
        }

        /// Every table computed from scratch by Dijkstra, leaves included (no derivation);
        /// the topology's own tables are left as they were.
        fn full_recomputation(t: &mut Topology, n: usize) -> Vec<u32> {
            let fresh = (0..n)
                .map(|_| Routes {
                    valid: false,
                    last: NONE,
                    next: vec![],
                    dist: vec![],
                })
                .collect();
            let routes = std::mem::replace(&mut t.routes, fresh);
            let computed = std::mem::take(&mut t.computed);
            let v = all_routes(t, n);
            t.routes = routes;
            t.computed = computed;
            v
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

            /// Incremental invalidation and leaf derivation give exactly the routes of
            /// recomputing everything.
            #[test]
            fn incremental_routes_equal_full_recomputation(
                hubs in 1usize..4,
                ends in 2usize..6,
                edges in prop::collection::vec((0usize..10, 0usize..10, 1u8..20, any::<bool>()), 3..20),
                changes in prop::collection::vec((0usize..40, 0u8..4, 1u8..20), 1..25),
            ) {
                let json = graph(hubs, ends, &edges);
                let s = crate::config::load_str("g.json", &json).unwrap();
                let n = s.nodes.len();
                let mut t = Topology::new(&s, 1);
                all_routes(&mut t, n);
                for (k, what, lat) in changes {
                    let ch = k % t.channels.len().max(1);
                    if t.channels.is_empty() { break; }
                    match what {
                        0 => t.set_channel_up(ch, false),
                        1 => t.set_channel_up(ch, true),
                        2 => t.change_channel(ch, &LinkChange { latency: Some(Delay::constant(lat as f64)), ..Default::default() }),
                        _ => { let h = k % hubs; let up = !t.hub_up(h); t.set_hub(h, up); }
                    }
                    let incremental = all_routes(&mut t, n);
                    let full = full_recomputation(&mut t, n);
                    prop_assert_eq!(incremental, full);
                }
            }
        }
    }
}
