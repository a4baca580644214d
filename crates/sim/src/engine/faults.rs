//! The timeline: scripted and random faults.
//!
//! At the start of a run the scripted actions (with their random delays) and the random-fault
//! schedule (`chaos`) are drawn from the timeline's own random streams and merged into one plan,
//! so the same seed gives the same faults. Role targets (`"role": "leader"`) are resolved when
//! the action fires, and every fired action is recorded with the node it hit.

use super::net::{Cut, DropCause};
use super::{Engine, Kind};
use crate::config::spec::{ChaosTarget, NodeKind, RoleTarget, Which};
use crate::dist::Delay;
use crate::scenario::{Action, Group, LinkChange, Member, Target};
use coracle_core::{Protocol, Rng, Role, Time, rng, time_to_ms};
use rand::RngExt;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

/// What a random fault changed, for its undo: the node (or link) and which flags or
/// directions (`what`, a bit mask) it set.
#[derive(Copy, Clone, Debug)]
pub(super) struct Binding {
    target: usize,
    what: u8,
}

/// Binding kind of random link faults (beside CRASHED, PAUSED, ISOLATED).
const LINK: usize = 3;

/// Bit mask of the directions `which` names (bit 0 forward, bit 1 reverse).
fn which_bits(which: Which) -> u8 {
    match which {
        Which::Forward => 1,
        Which::Reverse => 2,
        _ => 3,
    }
}

/// A planned action; `bind` records the node (or partition) it hits for a later undo.
pub(super) struct Planned {
    pub action: Action,
    pub bind: Option<u32>,
}

/// A flapping link.
pub(super) struct Flap {
    link: usize,
    which: Which,
    up: Delay,
    down: Delay,
    until: Option<Time>,
    rng: Rng,
    is_up: bool,
}

/// Cap on recorded fired actions (the total is always exact).
pub const MAX_FIRED: usize = 10_000;

const CRASHED: usize = 0;
const PAUSED: usize = 1;
const ISOLATED: usize = 2;

/// Why an action whose role target (or partition member) found nobody was skipped.
const NO_ROLE: &str = "no node had that role";
/// Why the undo of a random fault was skipped: the fault changed nothing (its node was already
/// down, paused, isolated, or its link already down), or something else already ended it (a
/// scripted recover, resume, rejoin or link up), so the undo would end a later fault.
const UNDO_NOTHING: &str = "the fault it undoes changed nothing or is already over";

impl<P: Protocol> Engine<'_, P> {
    /// Draws the plan: scripted actions with their delays, then the random faults.
    pub(super) fn plan(&mut self) {
        let s = self.scenario;
        let mut trng = rng::stream(self.seed, rng::purpose::TIMELINE, 0);
        let mut plan: Vec<(Time, Planned)> = Vec::with_capacity(s.timeline.len());
        for a in &s.timeline {
            let t =
                a.at.saturating_add(a.delay.as_ref().map_or(0, |d| d.sample(&mut trng)));
            plan.push((
                t,
                Planned {
                    action: a.action.clone(),
                    bind: None,
                },
            ));
        }
        if let Some(c) = &s.chaos {
            let end = c.stop.unwrap_or(self.horizon);
            let servers: Vec<usize> = (0..s.nodes.len())
                .filter(|&i| s.nodes[i].kind == NodeKind::Server)
                .collect();
            let procs: Vec<usize> = (0..s.nodes.len())
                .filter(|&i| s.nodes[i].kind != NodeKind::Hub)
                .collect();
            let mut next_bind = 0u32;
            let kinds = [
                (&c.crash, 0),
                (&c.pause, 1),
                (&c.isolate, 2),
                (&c.partition, 3),
                (&c.link, 4),
            ];
            for (fault, kind) in kinds {
                let Some(f) = fault else { continue };
                // One stream per kind, so that a kind's events do not depend on how many
                // the kinds before it drew (a shorter `--until` keeps the faults it covers).
                // Timeline streams: 0 scripted delays, 2 role picks, 10.. chaos, 1000.. flaps.
                let mut crng = rng::stream(self.seed, rng::purpose::TIMELINE, 10 + kind as u64);
                let mut t = c.start;
                loop {
                    let u: f64 = crng.random();
                    t = t.saturating_add(
                        coracle_core::ms_to_time(-(1.0 - u).ln() / f.rate * 1000.0).max(1),
                    );
                    if t >= end {
                        break;
                    }
                    let d = f.duration.sample(&mut crng);
                    let bind = next_bind;
                    next_bind += 1;
                    let target = match f.target {
                        ChaosTarget::Servers => {
                            Target::Node(servers[crng.random_range(0..servers.len())])
                        }
                        ChaosTarget::Any => Target::Node(procs[crng.random_range(0..procs.len())]),
                        ChaosTarget::Leader => Target::Role(RoleTarget::Leader),
                        ChaosTarget::Follower => Target::Role(RoleTarget::Follower),
                    };
                    let (first, undo) = match kind {
                        0 => (Action::Crash(target), Action::Recover(Target::Bound(bind))),
                        1 => (Action::Pause(target), Action::Resume(Target::Bound(bind))),
                        2 => (
                            Action::Isolate {
                                target,
                                inbound: true,
                                outbound: true,
                            },
                            Action::Rejoin(Target::Bound(bind)),
                        ),
                        3 => {
                            let mut sv = servers.clone();
                            sv.shuffle(&mut crng);
                            let m = crng.random_range(1..=((servers.len() - 1) / 2).max(1));
                            let minority: Vec<Member> =
                                sv[..m].iter().map(|&i| Member::Node(i)).collect();
                            let rest: Vec<Member> = procs
                                .iter()
                                .filter(|i| !sv[..m].contains(i))
                                .map(|&i| Member::Node(i))
                                .collect();
                            (
                                Action::Partition {
                                    groups: vec![Group::Members(minority), Group::Members(rest)],
                                },
                                Action::HealOne(bind),
                            )
                        }
                        _ => {
                            if s.links.is_empty() {
                                break;
                            }
                            let link = crng.random_range(0..s.links.len());
                            let down = LinkChange {
                                up: Some(false),
                                ..Default::default()
                            };
                            (
                                Action::Link {
                                    link,
                                    which: Which::Both,
                                    change: down,
                                },
                                Action::LinkUpOne(bind),
                            )
                        }
                    };
                    plan.push((
                        t,
                        Planned {
                            action: first,
                            bind: Some(bind),
                        },
                    ));
                    plan.push((
                        t.saturating_add(d),
                        Planned {
                            action: undo,
                            bind: None,
                        },
                    ));
                }
            }
            self.bindings = vec![None; next_bind as usize];
        }
        plan.sort_by_key(|p| p.0); // stable: scripted before random at equal times
        for (i, (t, p)) in plan.into_iter().enumerate() {
            self.planned.push(p);
            self.push(t, Kind::Action { index: i as u32 });
        }
    }

    /// The node a target names now, if any.
    fn resolve(&mut self, t: Target, last: usize) -> Option<usize> {
        self.resolve_among(t, last, &[], &[])
    }

    /// [`Self::resolve`] for one of several members of an action: roles are not the nodes in
    /// `taken` (what other roles of the same action picked: two followers in one partition
    /// are two different nodes), and a follower or candidate, drawn at random, is not one of
    /// the nodes the action names by id either (`[[1], [{"role": "follower"}]]` cuts node 1
    /// from a follower other than 1). The leader is whoever leads, named or not.
    fn resolve_among(
        &mut self,
        t: Target,
        last: usize,
        taken: &[usize],
        named: &[usize],
    ) -> Option<usize> {
        match t {
            Target::Node(i) => Some(i),
            Target::Bound(k) => self
                .bindings
                .get(k as usize)
                .copied()
                .flatten()
                .map(|b| b.target),
            Target::Role(RoleTarget::Last) => self.last_hit[last],
            Target::Role(RoleTarget::Leader) => (0..self.nodes.len())
                .filter(|&i| {
                    self.is_server[i]
                        && self.nodes[i].up
                        && self.nodes[i].obs.role == Role::Leader
                        && !taken.contains(&i)
                })
                .max_by_key(|&i| (self.nodes[i].obs.term, std::cmp::Reverse(i))),
            Target::Role(r) => {
                let want = |role: Role| match r {
                    RoleTarget::Follower => role == Role::Follower,
                    _ => matches!(role, Role::Candidate | Role::PreCandidate),
                };
                let pool: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| {
                        self.is_server[i]
                            && self.nodes[i].up
                            && want(self.nodes[i].obs.role)
                            && !taken.contains(&i)
                            && !named.contains(&i)
                    })
                    .collect();
                if pool.is_empty() {
                    None
                } else {
                    Some(pool[self.timeline_rng.random_range(0..pool.len())])
                }
            }
        }
    }

    /// The nodes `list` names now; roles are drawn from nodes no earlier role of the same
    /// action took (`taken`, which grows) and, for random roles, not named by id in the
    /// action (`named`).
    fn members(&mut self, list: &[Member], taken: &mut Vec<usize>, named: &[usize]) -> Vec<usize> {
        list.iter()
            .filter_map(|m| match *m {
                Member::Node(i) => Some(i),
                Member::Role(r) => {
                    let n = self.resolve_among(Target::Role(r), CRASHED, taken, named)?;
                    taken.push(n);
                    Some(n)
                }
            })
            .collect()
    }

    /// Records a fired action for the results (and the trace).
    fn fired(&mut self, what: &str, node: Option<usize>, mut extra: Value) {
        self.fired_total += 1;
        let mut rec = json!({ "t": time_to_ms(self.now), "action": what });
        if let Some(n) = node {
            rec["node"] = self.name(n);
        }
        if let (Value::Object(r), Value::Object(e)) = (&mut rec, &mut extra) {
            r.append(e);
        }
        if let Some(t) = &mut self.tracer {
            let mut line = rec.clone();
            line["kind"] = json!("action");
            t.record(&line);
        }
        if self.fired.len() < MAX_FIRED {
            self.fired.push(rec);
        }
    }

    /// Runs planned action `index`.
    pub(super) fn action(&mut self, index: usize) {
        let Planned { action, bind } = std::mem::replace(
            &mut self.planned[index],
            Planned {
                action: Action::Heal,
                bind: None,
            },
        );
        // Random faults carry a binding for their undo; scripted ones do not. Only scripted
        // faults are what `"role": "last"` refers to.
        let scripted = bind.is_none();
        // `fault`: a crash, pause or isolate (what a `"role": "last"` undo refers to), as
        // opposed to an undo or another node action.
        let hit =
            |e: &mut Self, t: Target, last: usize, what: &str, fault: bool| -> Option<usize> {
                let n = e.resolve(t, last);
                if n.is_none() {
                    let why = if matches!(t, Target::Bound(_)) {
                        UNDO_NOTHING
                    } else {
                        NO_ROLE
                    };
                    e.fired(what, None, noop(true, why));
                    if scripted && fault && matches!(t, Target::Role(_)) {
                        // This fault hit nobody: a following "last" undo has nothing to undo
                        // (not the node an earlier fault hit). Other actions that miss (a clock
                        // change, an undo) leave the memory alone.
                        e.last_hit[last] = None;
                    }
                }
                n
            };
        match action {
            Action::Crash(t) => {
                if let Some(n) = hit(self, t, CRASHED, "crash", true) {
                    let was_up = self.nodes[n].up;
                    self.fired("crash", Some(n), noop(!was_up, "already down"));
                    if scripted {
                        // The script owns the outage now: a random crash's recover must not
                        // end it.
                        self.release(CRASHED, n, 1);
                        self.last_hit[CRASHED] = Some(n);
                    }
                    if was_up {
                        self.bind(bind, CRASHED, n, 1);
                        // A crash ends a pause: a random pause's resume must not end a later one.
                        self.release(PAUSED, n, 1);
                    }
                    self.crash(n);
                }
            }
            Action::Recover(t) => {
                if let Some(n) = hit(self, t, CRASHED, "recover", false) {
                    let note = noop(self.nodes[n].up, "already up");
                    self.fired("recover", Some(n), note);
                    if !self.nodes[n].up {
                        self.boot(n);
                        // Whoever crashed it, that crash is over: a random crash's recover
                        // must not end a later one.
                        self.release(CRASHED, n, 1);
                    }
                }
            }
            Action::Pause(t) => {
                if let Some(n) = hit(self, t, PAUSED, "pause", true) {
                    let slot = &self.nodes[n];
                    let why = if slot.up { "already paused" } else { "down" };
                    let idle = !slot.up || slot.paused;
                    self.fired("pause", Some(n), noop(idle, why));
                    if scripted {
                        self.release(PAUSED, n, 1);
                    }
                    if !idle {
                        self.bind(bind, PAUSED, n, 1);
                        self.nodes[n].paused = true;
                    }
                    if scripted {
                        self.last_hit[PAUSED] = Some(n);
                    }
                }
            }
            Action::Resume(t) => {
                if let Some(n) = hit(self, t, PAUSED, "resume", false) {
                    let note = noop(!self.nodes[n].paused, "not paused");
                    self.fired("resume", Some(n), note);
                    self.resume(n);
                    self.release(PAUSED, n, 1);
                }
            }
            Action::Isolate {
                target,
                inbound,
                outbound,
            } => {
                if let Some(n) = hit(self, target, ISOLATED, "isolate", true) {
                    let dir = match (inbound, outbound) {
                        (true, true) => "both",
                        (true, false) => "in",
                        _ => "out",
                    };
                    // What this isolation adds (its undo takes away only that).
                    let slot = &self.nodes[n];
                    let added =
                        u8::from(inbound && !slot.deaf) | (u8::from(outbound && !slot.mute) << 1);
                    let mut details = json!({ "direction": dir });
                    if !scripted && added == 0 {
                        details["skipped"] = json!("already isolated");
                    }
                    self.fired("isolate", Some(n), details);
                    if scripted {
                        self.release(ISOLATED, n, u8::from(inbound) | (u8::from(outbound) << 1));
                    }
                    if added != 0 {
                        self.bind(bind, ISOLATED, n, added);
                    }
                    if scripted {
                        self.last_hit[ISOLATED] = Some(n);
                    }
                    self.nodes[n].deaf |= inbound;
                    self.nodes[n].mute |= outbound;
                }
            }
            Action::Rejoin(t) => {
                // A random isolation's rejoin clears only the directions it cut.
                let mask = match t {
                    Target::Bound(k) => self.bindings[k as usize].map_or(0, |b| b.what),
                    _ => 0b11,
                };
                if let Some(n) = hit(self, t, ISOLATED, "rejoin", false) {
                    let details = match mask {
                        1 => json!({ "direction": "in" }),
                        2 => json!({ "direction": "out" }),
                        _ => json!({}),
                    };
                    self.fired("rejoin", Some(n), details);
                    let slot = &mut self.nodes[n];
                    slot.deaf &= mask & 1 == 0;
                    slot.mute &= mask & 2 == 0;
                    self.release(ISOLATED, n, mask);
                }
            }
            Action::Partition { groups } => {
                // Nodes named by id first, then roles: a role resolved now to a node that is
                // also named in another group moves it to the role's group, so
                // `[[{"role": "leader"}], [1, 2, 3, 4, 5]]` cuts the leader off, whoever it is.
                let mut group_of = vec![0u16; self.nodes.len()];
                let mut rest = None;
                let mut unresolved = false;
                let mut taken = Vec::new();
                let named = named_ids(groups.iter().flat_map(|g| match g {
                    Group::Members(m) => m.as_slice(),
                    Group::Rest => &[],
                }));
                for roles in [false, true] {
                    for (g, group) in groups.iter().enumerate() {
                        match group {
                            Group::Members(members) => {
                                let picked: Vec<Member> = members
                                    .iter()
                                    .filter(|m| matches!(m, Member::Role(_)) == roles)
                                    .copied()
                                    .collect();
                                let found = self.members(&picked, &mut taken, &named);
                                unresolved |= found.len() < picked.len();
                                for n in found {
                                    group_of[n] = g as u16 + 1;
                                }
                            }
                            Group::Rest => rest = Some(g as u16 + 1),
                        }
                    }
                }
                if unresolved {
                    // As for every role target: a role nobody has skips the action.
                    self.fired("partition", None, noop(true, NO_ROLE));
                    return;
                }
                if let Some(r) = rest {
                    for (g, server) in group_of.iter_mut().zip(&self.is_server) {
                        if *server && *g == 0 {
                            *g = r;
                        }
                    }
                }
                let names: Vec<Value> = (1..=groups.len() as u16)
                    .map(|g| {
                        Value::Array(
                            (0..self.nodes.len())
                                .filter(|&n| group_of[n] == g)
                                .map(|n| self.name(n))
                                .collect(),
                        )
                    })
                    .collect();
                self.fired("partition", None, json!({ "groups": names }));
                self.cuts
                    .push((bind.unwrap_or(u32::MAX), Cut::Groups(group_of)));
            }
            Action::OneWay { from, to } => {
                let mut taken = Vec::new();
                let named = named_ids(from.iter().chain(&to));
                let f = self.members(&from, &mut taken, &named);
                let t = self.members(&to, &mut taken, &named);
                if f.len() < from.len() || t.len() < to.len() {
                    self.fired("partition", None, noop(true, NO_ROLE));
                    return;
                }
                let mut fm = vec![false; self.nodes.len()];
                let mut tm = vec![false; self.nodes.len()];
                f.iter().for_each(|&n| fm[n] = true);
                t.iter().for_each(|&n| tm[n] = true);
                let fj: Vec<Value> = f.iter().map(|&n| self.name(n)).collect();
                let tj: Vec<Value> = t.iter().map(|&n| self.name(n)).collect();
                self.fired("partition", None, json!({ "from": fj, "to": tj }));
                self.cuts
                    .push((bind.unwrap_or(u32::MAX), Cut::OneWay { from: fm, to: tm }));
            }
            Action::Heal => {
                self.fired("heal", None, json!({}));
                self.cuts.clear();
            }
            Action::HealOne(id) => {
                // A scripted heal may have removed this random partition already.
                let gone = !self.cuts.iter().any(|(c, _)| *c == id);
                self.fired("heal", None, noop(gone, UNDO_NOTHING));
                self.cuts.retain(|(c, _)| *c != id);
            }
            Action::Clock {
                target,
                rate,
                offset,
            } => {
                if let Some(n) = hit(self, target, CRASHED, "clock", false) {
                    self.fired(
                        "clock",
                        Some(n),
                        json!({ "rate": rate, "offset_ms": offset.map(|o| o as f64 / 1e6) }),
                    );
                    let now = self.now;
                    let slot = &mut self.nodes[n];
                    if let Some(r) = rate {
                        slot.clock.set_rate(now, r);
                    }
                    if let Some(o) = offset {
                        slot.clock.set_offset(o);
                    }
                }
            }
            Action::Link {
                link,
                which,
                change,
            } => {
                let id = self.scenario.links[link].id.to_json();
                let (name, mut details) = link_record(id, which, &change);
                if let Some(k) = bind {
                    // A random link fault: remember which directions it took down.
                    let mut took = 0u8;
                    for (bit, ch) in channels(link, which).enumerate() {
                        if self.net.channel_up(ch) {
                            took |= 1 << bit;
                        }
                    }
                    if took == 0 {
                        details["skipped"] = json!("already down");
                    } else {
                        self.bind(Some(k), LINK, link, took);
                    }
                }
                self.fired(name, None, details);
                for ch in channels(link, which) {
                    self.net.change_channel(ch, &change);
                }
                // A link brought up ends the random faults that took it down; a scripted
                // link_down takes their outage over.
                if change.up == Some(true) || (change.up == Some(false) && scripted) {
                    self.release(LINK, link, which_bits(which));
                }
            }
            Action::LinkUpOne(k) => {
                let Some(Binding {
                    target: link,
                    what: took,
                    ..
                }) = self.bindings[k as usize]
                else {
                    self.fired("link_up", None, noop(true, UNDO_NOTHING));
                    return;
                };
                let id = self.scenario.links[link].id.to_json();
                let up = LinkChange {
                    up: Some(true),
                    ..Default::default()
                };
                let which = match took {
                    1 => Which::Forward,
                    2 => Which::Reverse,
                    _ => Which::Both,
                };
                let (name, details) = link_record(id, which, &up);
                self.fired(name, None, details);
                for ch in channels(link, which) {
                    self.net.change_channel(ch, &up);
                }
                self.release(LINK, link, took);
            }
            Action::Flap {
                link,
                which,
                up,
                down,
                until,
            } => {
                let id = self.scenario.links[link].id.to_json();
                self.fired("flap", None, json!({ "link": id, "direction": which }));
                let rng = rng::stream(
                    self.seed,
                    rng::purpose::TIMELINE,
                    1000 + self.flaps.len() as u64,
                );
                self.flaps.push(Flap {
                    link,
                    which,
                    up,
                    down,
                    until,
                    rng,
                    is_up: true,
                });
                let k = self.flaps.len() - 1;
                self.flap(k);
            }
        }
    }

    /// Records what random fault `bind` changed (`what`: which flags or directions), for its undo.
    fn bind(&mut self, bind: Option<u32>, kind: usize, target: usize, what: u8) {
        if let Some(k) = bind {
            self.bindings[k as usize] = Some(Binding { target, what });
            self.holding.entry((kind, target)).or_default().push(k);
        }
    }

    /// Something restored `what` of `target` (a recover, resume, rejoin or link up, scripted or
    /// random): the random faults that had set it are over, and their undos must not end a
    /// fault that comes later.
    fn release(&mut self, kind: usize, target: usize, what: u8) {
        let Some(held) = self.holding.get_mut(&(kind, target)) else {
            return;
        };
        let bindings = &mut self.bindings;
        held.retain(|&k| {
            let b = &mut bindings[k as usize];
            if let Some(x) = b {
                x.what &= !what;
                if x.what == 0 {
                    *b = None;
                }
            }
            b.is_some()
        });
    }

    /// Toggles flapping link `k` and schedules its next toggle.
    pub(super) fn flap(&mut self, k: usize) {
        let now = self.now;
        let f = &mut self.flaps[k];
        let stop = f.until.is_some_and(|u| now >= u);
        let go_up = !f.is_up || stop;
        if stop && f.is_up {
            return;
        }
        f.is_up = go_up;
        let (link, which) = (f.link, f.which);
        let dwell = if go_up {
            f.up.sample(&mut f.rng)
        } else {
            f.down.sample(&mut f.rng)
        }
        .max(1);
        let change = LinkChange {
            up: Some(go_up),
            ..Default::default()
        };
        for ch in channels(link, which) {
            self.net.change_channel(ch, &change);
        }
        // Each toggle sets the link's state whatever brought it there: the random link
        // faults holding it are over (their undo must not cut a down phase short).
        self.release(LINK, link, which_bits(which));
        if !stop {
            let next = now.saturating_add(dwell);
            let next = match self.flaps[k].until {
                Some(u) if next > u && go_up => return,
                Some(u) if next > u => u,
                _ => next,
            };
            self.push(next, Kind::Flap { index: k as u32 });
        }
    }

    /// Unfreezes node `n`: everything it missed is handled now, in order.
    pub(super) fn resume(&mut self, n: usize) {
        let slot = &mut self.nodes[n];
        if !slot.paused {
            return;
        }
        slot.paused = false;
        let deferred = std::mem::take(&mut slot.deferred);
        for k in deferred {
            self.push(self.now, k);
        }
    }

    /// Drops what a paused node was holding when it crashes.
    pub(super) fn drop_deferred(&mut self, n: usize) {
        let slot = &mut self.nodes[n];
        slot.paused = false;
        let deferred = std::mem::take(&mut slot.deferred);
        for k in deferred {
            if let Kind::Deliver { packet, .. } = k {
                self.drop_packet(packet, DropCause::NodeDown);
            }
        }
    }
}

/// The nodes among `members` named by id.
fn named_ids<'a>(members: impl Iterator<Item = &'a Member>) -> Vec<usize> {
    members
        .filter_map(|m| match *m {
            Member::Node(i) => Some(i),
            Member::Role(_) => None,
        })
        .collect()
}

/// The record details of an action that changes nothing: `{"skipped": why}` when `idle`.
fn noop(idle: bool, why: &str) -> Value {
    if idle {
        json!({ "skipped": why })
    } else {
        json!({})
    }
}

/// The channels of `link` that `which` selects.
fn channels(link: usize, which: Which) -> impl Iterator<Item = usize> {
    let (a, b) = match which {
        Which::Forward => (2 * link, 2 * link + 1),
        Which::Reverse => (2 * link + 1, 2 * link + 2),
        _ => (2 * link, 2 * link + 2),
    };
    a..b
}

/// A node's clock: local time runs at `rate` and is shifted by `offset`.
#[derive(Clone, Debug)]
pub(super) struct Clock {
    rate: f64,
    anchor_global: Time,
    anchor_local: i128,
    offset: i64,
    /// Local time equals global time (no drift or skew so far): the common case, read on
    /// every step, skips the 128-bit arithmetic.
    exact: bool,
}

impl Clock {
    pub fn new(rate: f64, offset: i64) -> Self {
        let mut c = Clock {
            rate,
            anchor_global: 0,
            anchor_local: 0,
            offset,
            exact: false,
        };
        c.refresh();
        c
    }

    fn refresh(&mut self) {
        self.exact = self.rate == 1.0
            && self.offset == 0
            && self.anchor_local == i128::from(self.anchor_global);
    }

    pub fn set_offset(&mut self, offset: i64) {
        self.offset = offset;
        self.refresh();
    }

    /// Local time at global time `t` (never negative).
    #[inline]
    pub fn local(&self, t: Time) -> Time {
        if self.exact {
            return t;
        }
        let d = t - self.anchor_global;
        let d = if self.rate == 1.0 {
            d as i128
        } else {
            (d as f64 * self.rate) as i128
        };
        (self.anchor_local + d + self.offset as i128).max(0) as Time
    }

    /// Global duration of `d` local nanoseconds.
    #[inline]
    pub fn global(&self, d: Time) -> Time {
        if self.rate == 1.0 {
            d
        } else {
            (d as f64 / self.rate).ceil() as Time
        }
    }

    fn set_rate(&mut self, now: Time, rate: f64) {
        let d = now - self.anchor_global;
        self.anchor_local += if self.rate == 1.0 {
            d as i128
        } else {
            (d as f64 * self.rate) as i128
        };
        self.anchor_global = now;
        self.rate = rate;
        self.refresh();
    }
}

/// The action name and details recorded for a link action: what the user wrote
/// (`link_down`, `link_up` or `link_change`) and every field it set.
fn link_record(id: Value, which: impl serde::Serialize, c: &LinkChange) -> (&'static str, Value) {
    let mut d = json!({ "link": id, "direction": which });
    let name = match c.up {
        Some(up) => {
            d["up"] = json!(up);
            if up { "link_up" } else { "link_down" }
        }
        None => "link_change",
    };
    if let Some(l) = &c.latency {
        d["latency"] = json!(l);
    }
    if let Some(x) = c.loss {
        d["loss"] = json!(x);
    }
    if let Some(b) = &c.burst {
        d["burst_loss"] = json!({
            "enter_bad": b.enter_bad, "leave_bad": b.leave_bad,
            "loss_good": b.loss_good, "loss_bad": b.loss_bad,
        });
    }
    if let Some(x) = c.duplicate {
        d["duplicate"] = json!(x);
    }
    if let Some(b) = c.bandwidth {
        // Stored in bytes per nanosecond; recorded in the configuration's Mbit/s.
        d["bandwidth"] = json!(b * 8.0 * 1e9 / 1e6);
    }
    (name, d)
}
