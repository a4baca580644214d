//! Leader election (§5.2, §5.4.1) with the variants of the design note `raft-variants.md`: pre-vote (thesis
//! §9.6), leader stickiness (thesis §4.2.3), CheckQuorum (thesis §6.2), candidate timeouts and
//! backoff (Howard 2014), lazy voting and term bounds (Tangaroa).

use super::config::MAX_BACKOFF_EXPONENT;
use super::replication::Push;
use super::server::{DeferredVote, RaftServer};
use super::{Entry, Raft, RaftMsg, RaftTimer, RaftWrite};
use coracle_core::{Ctx, NodeId, Out, Role, Time};
use rand::RngExt;
use std::collections::VecDeque;
use std::sync::Arc;

/// A uniform draw from `[lo, hi)` (exactly `lo` when the range is empty).
pub(crate) fn draw(ctx: &mut Ctx<'_>, lo: Time, hi: Time) -> Time {
    if hi > lo {
        ctx.rng.random_range(lo..hi)
    } else {
        lo
    }
}

impl RaftServer {
    /// (Re)arms the election timer with a fresh draw: the follower range for followers, the
    /// candidate range (times `2^backoff_exp` with `backoff`) for candidates and pre-candidates.
    pub(crate) fn arm_election_timer(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Raft>) {
        let (lo, hi) = match self.role {
            Role::Candidate | Role::PreCandidate => {
                let m = 1u64 << self.backoff_exp.min(MAX_BACKOFF_EXPONENT);
                let (a, b) = self.p.candidate;
                (a.saturating_mul(m), b.saturating_mul(m))
            }
            _ => self.p.election,
        };
        let after = draw(ctx, lo, hi);
        out.set_timer(RaftTimer::Election, after);
    }

    /// §5.4.1: the candidate's log is at least as up to date as ours.
    pub(crate) fn log_ok(&self, last_log_index: u64, last_log_term: u64) -> bool {
        if self.p.no_log_check {
            return true; // UNSAFE teaching switch
        }
        let my_term = self.last_term();
        last_log_term > my_term || (last_log_term == my_term && last_log_index >= self.last_index())
    }

    /// Heard from a valid leader of the current term within `election_timeout_min`; a leader
    /// counts as hearing from itself.
    pub(crate) fn heard_from_leader(&self, now: Time) -> bool {
        self.role == Role::Leader
            || self
                .leader_contact
                .is_some_and(|t| now.saturating_sub(t) < self.p.election.0)
    }

    /// Moves to `term` (> current): `votedFor` cleared, leader unknown. Persisted by the next
    /// send, log write or the end of the step.
    pub(crate) fn adopt_term(&mut self, term: u64) {
        debug_assert!(term > self.term);
        self.term = term;
        self.held.clear();
        self.voted_for = None;
        self.leader = None;
        self.leader_contact = None;
        self.hard_state_dirty = true;
    }

    /// Becomes follower of the current term. A server that was not already follower cancels
    /// its leader timers and arms a fresh election timer; a follower keeps its timer running.
    pub(crate) fn become_follower(
        &mut self,
        ctx: &mut Ctx<'_>,
        leader: Option<NodeId>,
        out: &mut Out<Raft>,
    ) {
        let was = self.role;
        if was == Role::Leader {
            out.cancel_timer(RaftTimer::Heartbeat);
            out.cancel_timer(RaftTimer::CheckQuorum);
            self.waiting.clear();
            self.reads.clear();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.backoff_exp = 0;
        if was != Role::Follower {
            self.arm_election_timer(ctx, out);
        }
    }

    /// Adopts a higher term seen in any message and becomes follower (§5.1).
    pub(crate) fn step_down(&mut self, ctx: &mut Ctx<'_>, term: u64, out: &mut Out<Raft>) {
        if term > self.term {
            self.adopt_term(term);
        }
        self.become_follower(ctx, None, out);
    }

    pub(crate) fn on_election_timeout(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Raft>) {
        match self.role {
            Role::Leader => return,
            Role::Candidate => {
                self.c.split_votes += 1;
                self.bump_backoff();
            }
            Role::PreCandidate => self.bump_backoff(),
            _ => {}
        }
        if self.p.lazy_voting && self.grant_deferred_vote(ctx, out) {
            return;
        }
        if self.p.prevote {
            self.start_prevote(ctx, out);
        } else {
            self.start_election(ctx, out);
        }
    }

    fn bump_backoff(&mut self) {
        if self.p.backoff {
            self.backoff_exp = (self.backoff_exp + 1).min(MAX_BACKOFF_EXPONENT);
        }
    }

    /// Thesis §9.6: ask for pre-votes for term + 1 without changing the term.
    pub(crate) fn start_prevote(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Raft>) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.fill(false);
        self.votes[self.my_pos] = true;
        self.c.prevotes_started += 1;
        if Self::count(&self.votes) >= self.p.majority {
            self.c.prevotes_won += 1;
            self.start_election(ctx, out);
            return;
        }
        self.arm_election_timer(ctx, out);
        let msg = RaftMsg::PreVote {
            term: self.term + 1,
            last_log_index: self.last_index(),
            last_log_term: self.last_term(),
        };
        for i in 0..self.p.servers.len() {
            if i != self.my_pos {
                let to = self.p.servers[i];
                self.send(out, to, msg.clone());
            }
        }
    }

    /// §5.2: increment the term, vote for self, ask everyone else.
    pub(crate) fn start_election(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Raft>) {
        self.term += 1;
        self.held.clear();
        self.voted_for = Some(self.me);
        self.hard_state_dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.leader_contact = None;
        self.votes.fill(false);
        self.votes[self.my_pos] = true;
        self.c.elections_started += 1;
        if Self::count(&self.votes) >= self.p.majority {
            self.become_leader(out);
            return;
        }
        self.arm_election_timer(ctx, out);
        let msg = RaftMsg::RequestVote {
            term: self.term,
            last_log_index: self.last_index(),
            last_log_term: self.last_term(),
        };
        for i in 0..self.p.servers.len() {
            if i != self.my_pos {
                let to = self.p.servers[i];
                self.send(out, to, msg.clone());
            }
        }
    }

    /// Figure 2 "Leaders": reinitialise nextIndex/matchIndex, append a no-op (thesis §6.4),
    /// send a round of AppendEntries, start heartbeats (and CheckQuorum).
    pub(crate) fn become_leader(&mut self, out: &mut Out<Raft>) {
        self.role = Role::Leader;
        self.leader = Some(self.me);
        self.c.elections_won += 1;
        self.backoff_exp = 0;
        self.deferred_vote = None;
        let next = self.last_index() + 1;
        self.next_index.fill(next);
        self.match_index.fill(0);
        self.above_commit = 0;
        self.replicating.fill(false);
        self.probe_paused.fill(false);
        self.probe_end.fill(0);
        self.searching.fill(false);
        self.inflight.iter_mut().for_each(VecDeque::clear);
        self.capped.fill(false);
        self.acked_round.fill(0);
        self.recent_active.fill(false);
        self.snapshot_sent_at.fill(None);
        self.snapshot_tries.fill(0);
        self.waiting.clear();
        self.reads.clear();
        out.cancel_timer(RaftTimer::Election);

        let noop = Entry::new(self.term, None);
        self.log.push(noop);
        self.c.entries_appended += 1;
        self.persist_log(
            out,
            RaftWrite::Append {
                first_index: next,
                entries: Arc::<[Entry]>::from([noop]).into(),
            },
        );
        self.note_durable(out);
        self.broadcast(Push::Round, out);
        out.set_timer(RaftTimer::Heartbeat, self.p.heartbeat);
        if self.p.check_quorum {
            out.set_timer(RaftTimer::CheckQuorum, self.p.election.0);
        }
    }

    pub(crate) fn on_request_vote(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        out: &mut Out<Raft>,
    ) {
        if self.p.leader_stickiness && self.heard_from_leader(ctx.now) {
            // Thesis §4.2.3: ignore the request entirely (whatever its term): neither adopt
            // the term nor vote; no answer either.
            self.c.stickiness_ignored += 1;
            return;
        }
        if term < self.term {
            let reply = RaftMsg::RequestVoteResponse {
                term: self.term,
                granted: false,
            };
            self.send(out, from, reply);
            return;
        }
        if self.beyond_term_bound(term) {
            self.c.votes_rejected_term_bound += 1;
            let reply = RaftMsg::RequestVoteResponse {
                term: self.term,
                granted: false,
            };
            self.send(out, from, reply);
            return;
        }
        let log_ok = self.log_ok(last_log_index, last_log_term);
        let already = term == self.term && self.voted_for == Some(from);
        let free = term > self.term || self.voted_for.is_none();
        if self.p.lazy_voting && log_ok && free && !already {
            // Tangaroa: hold the request back (highest term wins; first one on ties).
            if self.deferred_vote.is_none_or(|d| term > d.term) {
                self.deferred_vote = Some(DeferredVote {
                    candidate: from,
                    term,
                    last_log_index,
                    last_log_term,
                });
            }
            self.c.votes_deferred += 1;
            return;
        }
        if term > self.term {
            self.step_down(ctx, term, out);
        }
        if log_ok && (self.voted_for.is_none() || self.voted_for == Some(from)) {
            if self.voted_for.is_none() {
                self.voted_for = Some(from);
                self.hard_state_dirty = true;
                self.c.votes_granted += 1;
            }
            let reply = RaftMsg::RequestVoteResponse {
                term: self.term,
                granted: true,
            };
            self.send(out, from, reply);
            // Granting a vote resets the election timer (§5.2).
            self.arm_election_timer(ctx, out);
        } else {
            let reply = RaftMsg::RequestVoteResponse {
                term: self.term,
                granted: false,
            };
            self.send(out, from, reply);
        }
    }

    /// Lazy voting: on our own timeout, grant the held-back vote if it is still grantable.
    fn grant_deferred_vote(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Raft>) -> bool {
        let Some(d) = self.deferred_vote.take() else {
            return false;
        };
        let free = d.term > self.term
            || (d.term == self.term
                && (self.voted_for.is_none() || self.voted_for == Some(d.candidate)));
        if !free || !self.log_ok(d.last_log_index, d.last_log_term) {
            return false;
        }
        if d.term > self.term {
            self.adopt_term(d.term);
        }
        if self.voted_for.is_none() {
            self.voted_for = Some(d.candidate);
            self.hard_state_dirty = true;
            self.c.votes_granted += 1;
        }
        self.become_follower(ctx, None, out);
        let reply = RaftMsg::RequestVoteResponse {
            term: self.term,
            granted: true,
        };
        self.send(out, d.candidate, reply);
        self.arm_election_timer(ctx, out);
        true
    }

    pub(crate) fn on_vote_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        granted: bool,
        out: &mut Out<Raft>,
    ) {
        if term > self.term {
            self.step_down(ctx, term, out);
            return;
        }
        if self.role != Role::Candidate || term != self.term || !granted {
            return;
        }
        if let Some(i) = self.p.pos(from) {
            self.votes[i] = true;
        }
        if Self::count(&self.votes) >= self.p.majority {
            self.become_leader(out);
        }
    }

    /// `term_bound` (Tangaroa): a vote request of this term is refused.
    fn beyond_term_bound(&self, term: u64) -> bool {
        self.p
            .term_bound
            .is_some_and(|h| term >= self.term.saturating_add(h))
    }

    /// Thesis §9.6: grant iff term + 1 > our term, the log is up to date, the vote itself
    /// would not be refused by `term_bound`, and (unless `prevote_without_leader_check`) we
    /// have not heard from a leader recently. Never changes our state; always answers with our
    /// current term.
    pub(crate) fn on_pre_vote(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        out: &mut Out<Raft>,
    ) {
        // Granted only if the vote itself would be (thesis §9.6): the term bound included,
        // or pre-votes would let terms climb where the bound then refuses every vote.
        let granted = term > self.term
            && !self.beyond_term_bound(term)
            && self.log_ok(last_log_index, last_log_term)
            && (!self.p.prevote_leader_check || !self.heard_from_leader(ctx.now));
        let reply = RaftMsg::PreVoteResponse {
            term: self.term,
            request_term: term,
            granted,
        };
        self.send(out, from, reply);
    }

    pub(crate) fn on_pre_vote_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        request_term: u64,
        granted: bool,
        out: &mut Out<Raft>,
    ) {
        if term > self.term {
            self.step_down(ctx, term, out);
            return;
        }
        if self.role != Role::PreCandidate || request_term != self.term + 1 || !granted {
            return;
        }
        if let Some(i) = self.p.pos(from) {
            self.votes[i] = true;
        }
        if Self::count(&self.votes) >= self.p.majority {
            self.c.prevotes_won += 1;
            self.start_election(ctx, out);
        }
    }

    /// CheckQuorum (thesis §6.2): step down unless a majority (counting ourselves) answered an
    /// AppendEntries of this term since the last check.
    pub(crate) fn on_check_quorum(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Raft>) {
        if self.role != Role::Leader {
            return;
        }
        let active = 1 + self
            .recent_active
            .iter()
            .enumerate()
            .filter(|&(i, &a)| a && i != self.my_pos)
            .count();
        if active >= self.p.majority {
            self.recent_active.fill(false);
            out.set_timer(RaftTimer::CheckQuorum, self.p.election.0);
        } else {
            self.c.leader_stepdowns_check_quorum += 1;
            self.become_follower(ctx, None, out);
        }
    }
}
