//! Packets on the move: transmission, the link models (loss, bursty loss, duplication,
//! bandwidth and queueing), hop-by-hop forwarding, and delivery.

use super::{Engine, Kind, MAX_HOPS};
use crate::topology::NONE;
use coracle_core::{Input, Message, NodeId, Protocol, Time};
use rand::RngExt;
use serde_json::json;

/// A message in flight.
pub(super) struct Packet<M> {
    pub from: u32,
    pub to: u32,
    /// The channel the packet is on, or NONE for loopback.
    pub channel: u32,
    /// The channel's down counter when the packet entered it.
    pub downs: u32,
    pub hops: u8,
    /// Encoded size, bytes (for bandwidth).
    pub size: u32,
    pub sent_at: Time,
    /// The message, or a placeholder in a free slot ([`Message`]'s `Default`): taken and put
    /// back as one block, never through an `Option` that would be rebuilt around it.
    pub msg: M,
    /// In use (in flight, or held while its receiver is paused).
    pub live: bool,
}

/// Why a packet was dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DropCause {
    Loss,
    BurstLoss,
    Queue,
    NoRoute,
    NodeDown,
    LinkDown,
    Isolated,
    Partition,
}

impl DropCause {
    /// Name in results and traces.
    pub fn name(self) -> &'static str {
        match self {
            DropCause::Loss => "loss",
            DropCause::BurstLoss => "burst_loss",
            DropCause::Queue => "queue",
            DropCause::NoRoute => "no_route",
            DropCause::NodeDown => "node_down",
            DropCause::LinkDown => "link_down",
            DropCause::Isolated => "isolated",
            DropCause::Partition => "partition",
        }
    }
}

/// A partition in force.
pub(super) enum Cut {
    /// Nodes in different groups (group ids > 0) cannot reach each other.
    Groups(Vec<u16>),
    /// Packets from `from` nodes to `to` nodes are lost.
    OneWay { from: Vec<bool>, to: Vec<bool> },
}

impl Cut {
    pub(super) fn blocks(&self, a: usize, b: usize) -> bool {
        match self {
            Cut::Groups(g) => g[a] != 0 && g[b] != 0 && g[a] != g[b],
            Cut::OneWay { from, to } => from[a] && to[b],
        }
    }
}

impl<P: Protocol> Engine<'_, P> {
    /// Puts a new packet into the slab. Fields are written in place: building a `Packet` on
    /// the stack and moving it in copied the message twice more per send.
    #[inline(always)]
    fn alloc_packet(
        &mut self,
        from: usize,
        to: usize,
        size: u32,
        sent_at: Time,
        msg: P::Msg,
    ) -> u32 {
        let idx = match self.free_packets.pop() {
            Some(idx) => idx,
            None => {
                self.packets.push(Packet {
                    from: 0,
                    to: 0,
                    channel: NONE,
                    downs: 0,
                    hops: 0,
                    size: 0,
                    sent_at: 0,
                    msg: P::Msg::default(),
                    live: false,
                });
                (self.packets.len() - 1) as u32
            }
        };
        let pk = &mut self.packets[idx as usize];
        pk.from = from as u32;
        pk.to = to as u32;
        pk.channel = NONE;
        pk.downs = 0;
        pk.hops = 0;
        pk.size = size;
        pk.sent_at = sent_at;
        pk.msg = msg;
        pk.live = true;
        idx
    }

    /// Records packet slot `p`'s identity for the trace.
    #[cold]
    fn set_pkt_id(&mut self, p: u32, id: u64) {
        let p = p as usize;
        if self.pkt_ids.len() <= p {
            self.pkt_ids.resize(p + 1, 0);
        }
        self.pkt_ids[p] = id;
    }

    /// Packet slot `p`'s identity in the trace.
    fn pkt_id(&self, p: u32) -> u64 {
        self.pkt_ids.get(p as usize).copied().unwrap_or(0)
    }

    pub(super) fn free_packet(&mut self, idx: u32) -> P::Msg {
        self.free_packets.push(idx);
        let pk = &mut self.packets[idx as usize];
        debug_assert!(pk.live, "freeing a free packet slot");
        pk.live = false;
        std::mem::take(&mut pk.msg)
    }

    /// True when a partition stops traffic from `a` to `b`.
    #[inline]
    fn cut(&self, a: usize, b: usize) -> bool {
        !self.cuts.is_empty() && self.cuts.iter().any(|(_, c)| c.blocks(a, b))
    }

    /// A node hands `msg` to the network.
    #[inline(always)]
    pub(super) fn transmit(&mut self, from: usize, to: usize, msg: P::Msg) {
        let (kind, size) = (msg.kind(), msg.wire_size());
        self.transmit_labelled(from, to, msg, kind, size);
    }

    /// [`Engine::transmit`] with the message's kind and size already read.
    #[inline(always)]
    pub(super) fn transmit_labelled(
        &mut self,
        from: usize,
        to: usize,
        msg: P::Msg,
        kind: &'static str,
        size: u32,
    ) {
        self.stats.count_kind(kind);
        let p = self.alloc_packet(from, to, size, self.now, msg);
        if self.tracer.is_some() {
            self.set_pkt_id(p, self.stats.sent + self.stats.loopback + 1);
        }
        if from == to {
            self.stats.loopback += 1;
            self.push(self.now, Kind::Hop { packet: p });
            return;
        }
        self.stats.sent += 1;
        if self.nodes[from].mute {
            return self.drop_packet(p, DropCause::Isolated);
        }
        if self.cut(from, to) {
            return self.drop_packet(p, DropCause::Partition);
        }
        let ch = self.net.next_hop(from, to);
        if ch == NONE {
            return self.drop_packet(p, DropCause::NoRoute);
        }
        self.enter(p, ch);
    }

    /// Puts packet `p` on channel `ch`: loss, bursty loss, the FIFO queue, latency, and maybe
    /// a duplicate.
    fn enter(&mut self, p: u32, ch: u32) {
        let now = self.now;
        let size = self.packets[p as usize].size;
        let c = &mut self.net.channels[ch as usize];
        if c.loss > 0.0 && c.rng.random_bool(c.loss) {
            return self.drop_entering(p, ch, DropCause::Loss);
        }
        if let Some(ge) = &mut c.burst {
            let flip = if ge.bad {
                ge.spec.leave_bad
            } else {
                ge.spec.enter_bad
            };
            if flip > 0.0 && c.rng.random_bool(flip) {
                ge.bad = !ge.bad;
            }
            let q = if ge.bad {
                ge.spec.loss_bad
            } else {
                ge.spec.loss_good
            };
            if q > 0.0 && c.rng.random_bool(q) {
                return self.drop_entering(p, ch, DropCause::BurstLoss);
            }
        }
        let mut depart = now;
        if let Some(bw) = c.bandwidth {
            while c.waiting.front().is_some_and(|&s| s <= now) {
                c.waiting.pop_front();
            }
            let start = c.busy_until.max(now);
            // The limit counts packets waiting: one that can be sent at once never waits, so
            // `queue: 0` means no waiting room, not a closed link.
            if start > now && c.queue.is_some_and(|q| c.waiting.len() >= q as usize) {
                return self.drop_entering(p, ch, DropCause::Queue);
            }
            let tx = ((size as f64 / bw).ceil() as Time).max(1);
            c.busy_until = start.saturating_add(tx);
            if start > now {
                c.waiting.push_back(start);
            }
            depart = start.saturating_add(tx);
        }
        let lat = c.latency.sample(&mut c.rng);
        let downs = c.downs;
        let dup = c.duplicate > 0.0 && c.rng.random_bool(c.duplicate);
        let dup_lat = if dup {
            Some(c.latency.sample(&mut c.rng))
        } else {
            None
        };
        let pk = &mut self.packets[p as usize];
        pk.channel = ch;
        pk.downs = downs;
        pk.hops += 1;
        self.push(depart.saturating_add(lat), Kind::Hop { packet: p });
        if let Some(l2) = dup_lat {
            let orig = &self.packets[p as usize];
            let (from, to, hops, size, sent_at) = (
                orig.from as usize,
                orig.to as usize,
                orig.hops,
                orig.size,
                orig.sent_at,
            );
            let msg = orig.msg.clone();
            let q = self.alloc_packet(from, to, size, sent_at, msg);
            let copy = &mut self.packets[q as usize];
            copy.channel = ch;
            copy.downs = downs;
            copy.hops = hops;
            self.stats.duplicated += 1;
            if self.tracer.is_some() {
                let id = self.pkt_id(p);
                self.set_pkt_id(q, id);
                let at = self.net.channels[ch as usize].from as usize;
                self.trace(
                    at,
                    "duplicate",
                    json!({ "pkt": id, "from": self.name(from), "to": self.name(to) }),
                );
            }
            self.push(depart.saturating_add(l2), Kind::Hop { packet: q });
        }
    }

    /// A packet lost as it enters channel `ch`: the trace names the node it was leaving (a
    /// hub, for a hop after the first), not the one the previous channel came from.
    fn drop_entering(&mut self, p: u32, ch: u32, cause: DropCause) {
        self.packets[p as usize].channel = ch;
        self.drop_packet(p, cause);
    }

    pub(super) fn drop_packet(&mut self, p: u32, cause: DropCause) {
        // A message to oneself never went over a link: not a network drop (the node crashed
        // with it pending, at the instant it started).
        let pk = &self.packets[p as usize];
        if pk.from != pk.to {
            self.stats.drops.count(cause);
        }
        if self.tracer.is_some() {
            let pk = &self.packets[p as usize];
            let (from, to) = (pk.from as usize, pk.to as usize);
            let at = if pk.channel == NONE {
                from
            } else {
                self.net.channels[pk.channel as usize].from as usize
            };
            let pkt = self.pkt_id(p);
            let details = json!({ "cause": cause.name(), "from": self.name(from), "to": self.name(to), "pkt": pkt });
            let msg = self.free_packet(p);
            self.trace_record(at, "drop", details, Some(&msg));
        } else {
            self.free_packet(p);
        }
    }

    /// A packet reaches the end of its channel: forward it (hubs) or deliver it.
    pub(super) fn hop(&mut self, p: u32) {
        let pk = &self.packets[p as usize];
        let (to, ch) = (pk.to as usize, pk.channel);
        let at = if ch == NONE {
            to
        } else {
            let c = &self.net.channels[ch as usize];
            if !c.up || c.downs != pk.downs {
                return self.drop_packet(p, DropCause::LinkDown);
            }
            c.to as usize
        };
        if at != to {
            // At a hub on the way.
            if !self.net.hub_up(at) {
                return self.drop_packet(p, DropCause::NodeDown);
            }
            let next = self.net.next_hop(at, to);
            if next == NONE || self.packets[p as usize].hops >= MAX_HOPS {
                return self.drop_packet(p, DropCause::NoRoute);
            }
            return self.enter(p, next);
        }
        self.deliver(p);
    }

    /// Final delivery to the destination (also of deliveries deferred while it was paused).
    pub(super) fn deliver(&mut self, p: u32) {
        let pk = &self.packets[p as usize];
        let (from, to, ch) = (pk.from as usize, pk.to as usize, pk.channel);
        let slot = &self.nodes[to];
        if !slot.up {
            return self.drop_packet(p, DropCause::NodeDown);
        }
        if ch != NONE {
            if slot.deaf {
                return self.drop_packet(p, DropCause::Isolated);
            }
            if self.cut(from, to) {
                return self.drop_packet(p, DropCause::Partition);
            }
        }
        if slot.paused {
            let epoch = slot.epoch;
            self.nodes[to]
                .deferred
                .push(Kind::Deliver { packet: p, epoch });
            return;
        }
        self.hand_over(p);
    }

    /// A packet held while its receiver was paused, handed over at resume. It had already
    /// arrived, so an isolation or partition that began while the node was paused does not
    /// touch it; only a crash (even one followed by a recovery at the same instant) or another
    /// pause at the same instant does.
    pub(super) fn deliver_held(&mut self, p: u32, epoch: u32) {
        let to = self.packets[p as usize].to as usize;
        let slot = &self.nodes[to];
        if !slot.up || slot.epoch != epoch {
            return self.drop_packet(p, DropCause::NodeDown);
        }
        if slot.paused {
            self.nodes[to]
                .deferred
                .push(Kind::Deliver { packet: p, epoch });
            return;
        }
        self.hand_over(p);
    }

    /// The receiving node takes the packet: counted as delivered and stepped.
    fn hand_over(&mut self, p: u32) {
        let pk = &self.packets[p as usize];
        let (from, to, ch, sent_at) = (pk.from as usize, pk.to as usize, pk.channel, pk.sent_at);
        if ch != NONE {
            self.stats.delivered += 1;
            self.stats.latency.record(self.now - sent_at);
        }
        let pkt = if self.tracer.is_some() {
            self.pkt_id(p)
        } else {
            0
        };
        let msg = self.free_packet(p);
        if self.tracer.is_some() {
            self.trace_record(
                to,
                "recv",
                json!({ "from": self.name(from), "pkt": pkt }),
                Some(&msg),
            );
        }
        self.step(
            to,
            Input::Packet {
                from: NodeId(from as u32),
                msg,
            },
        );
    }
}
