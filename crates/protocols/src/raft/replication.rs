//! Log replication (§5.3), commitment (§5.4.2), applying entries, client requests with sessions
//! (thesis §6.3) and ReadIndex reads (thesis §6.4).

use super::server::{HeldAppend, PendingRead, RaftServer};
use super::{Entry, EntryRun, Raft, RaftMsg, RaftTimer, RaftWrite};
use coracle_core::{Command, Ctx, NodeId, Op, OpResult, Out, Role};
use std::sync::Arc;

/// Why the leader sends AppendEntries: it decides what a follower that is not ready for
/// more entries (a paused probe, a full window) gets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Push {
    /// A heartbeat or ReadIndex round: every follower gets a request. One not ready for
    /// entries (a probe unanswered, a full window) gets an empty one checking the entry before
    /// its nextIndex: its answer says whether the entries sent made it, so that a lost probe
    /// is sent again only after that answer, never queued up once per heartbeat on a link
    /// slower than the heartbeats (etcd resends a probe on a heartbeat's answer, likewise).
    Round,
    /// New entries, or room made by an answer: only followers ready for entries.
    Entries,
}

impl RaftServer {
    /// Starts a round: AppendEntries to every peer (see [`Push`] for who is skipped).
    pub(crate) fn broadcast(&mut self, push: Push, out: &mut Out<Raft>) {
        self.broadcast_batch(push, None, out);
    }

    /// [`RaftServer::broadcast`], where `batch` (if any) is the shared copy of the log entries
    /// `prev + 1..=end` as `(prev, end, entries)`: requests carrying exactly those share it.
    pub(crate) fn broadcast_batch(
        &mut self,
        push: Push,
        batch: Option<(u64, u64, Arc<[Entry]>)>,
        out: &mut Out<Raft>,
    ) {
        self.round += 1;
        self.ae_cache = batch;
        for i in 0..self.p.servers.len() {
            if i != self.my_pos {
                self.send_append(i, push, out);
            }
        }
        // The log may change before the next broadcast: never reuse across broadcasts.
        self.ae_cache = None;
    }

    /// Sends the peer at position `i` the entries from its nextIndex (at most
    /// `max_entries_per_message`) with the consistency check of their predecessor, or the
    /// snapshot when nextIndex is inside it. Flow control as etcd's: a probing peer gets one
    /// request at a time (nextIndex moves only on its answer); a replicating peer gets each
    /// entry once, nextIndex moving past what was sent, with at most `max_inflight_messages`
    /// requests unacknowledged. Returns whether entries were sent.
    pub(crate) fn send_append(&mut self, i: usize, push: Push, out: &mut Out<Raft>) -> bool {
        if self.next_index[i] <= self.base {
            // What a replicating peer still needs was compacted away: probe with the snapshot.
            self.back_to_probing(i);
            if push != Push::Entries || !self.probe_paused[i] {
                self.send_snapshot(i, out);
            }
            return false;
        }
        let last = self.last_index();
        let m = self.match_index[i];
        let ready = if self.replicating[i] {
            self.inflight[i].len() < self.p.max_inflight
        } else {
            !self.probe_paused[i]
        };
        // `resend_unacknowledged`: everything after matchIndex again, when it fits in one
        // request (so that nextIndex passes the last entry: never the same batch twice).
        let resend = self.replicating[i]
            && ready
            && m >= self.base
            && last - m <= self.p.resend_unacked.min(self.p.max_entries);
        let prev = if resend {
            m
        } else {
            (self.next_index[i].max(1) - 1).min(last)
        };
        let mut end = last.min(prev.saturating_add(self.p.max_entries));
        if !self.replicating[i] && self.searching[i] && m + 1 < self.next_index[i] {
            end = prev; // still searching for the match: an empty probe
        }
        if !ready {
            if push == Push::Entries {
                self.capped[i] |= end > prev;
                return false;
            }
            end = prev;
        } else if end == prev && push == Push::Entries && self.replicating[i] {
            return false; // nothing new for it
        }
        let entries = if prev == end {
            self.no_entries.clone()
        } else {
            match &self.ae_cache {
                Some((p, e, shared)) if (*p, *e) == (prev, end) => shared.clone(),
                _ => {
                    let shared: Arc<[Entry]> =
                        self.log[(prev - self.base) as usize..(end - self.base) as usize].into();
                    self.ae_cache = Some((prev, end, shared.clone()));
                    shared
                }
            }
        };
        self.capped[i] = end < last;
        if self.replicating[i] {
            if end > prev {
                self.next_index[i] = end + 1;
                self.inflight[i].push_back(end);
            }
        } else {
            self.probe_paused[i] = true;
            self.probe_end[i] = end;
        }
        let msg = RaftMsg::AppendEntries {
            term: self.term,
            prev_log_index: prev,
            prev_log_term: self.term_at(prev),
            entries,
            leader_commit: self.commit_index,
            round: self.round,
        };
        let to = self.p.servers[i];
        self.send(out, to, msg);
        end > prev
    }

    /// Follower `i` answered with success up to `match_index` (an AppendEntries or an
    /// InstallSnapshot): it replicates from now on, and gets what is ready for it, as many
    /// requests as its window holds (batches cut by the cap at once; new entries only without
    /// `batch_requests`, which sends them with the heartbeats).
    pub(crate) fn replicate_to(&mut self, i: usize, match_index: u64, out: &mut Out<Raft>) {
        self.record_match(i, match_index, out);
        if self.role != Role::Leader {
            return;
        }
        let m = self.match_index[i];
        let window = &mut self.inflight[i];
        while window.front().is_some_and(|&e| e <= m) {
            window.pop_front();
        }
        // A probing follower replicates once an answer reaches the point probed (as etcd's
        // `MaybeUpdate`): a late or duplicated answer to an older request says nothing about
        // the probe still on its way, and switching on it would send the probe's entries again.
        if !self.replicating[i] && match_index + 1 >= self.next_index[i] {
            self.replicating[i] = true;
            self.probe_paused[i] = false;
            self.searching[i] = false;
            self.inflight[i].clear();
            self.next_index[i] = m + 1;
            // Entries of the probe beyond this answer are on their way (typically an answer
            // to a request the probe resent, overtaken on the way): count the probe as the
            // first request of the window instead of sending its entries a third time.
            let end = self.probe_end[i].min(self.last_index());
            if end > m {
                self.next_index[i] = end + 1;
                self.inflight[i].push_back(end);
            }
        }
        while self.next_index[i] <= self.last_index()
            && (!self.p.batch_requests || self.capped[i])
            && self.send_append(i, Push::Entries, out)
        {}
    }

    /// A replicating peer goes back to probing (nextIndex stays where the caller puts it);
    /// a probing peer is left as it is.
    fn back_to_probing(&mut self, i: usize) {
        if self.replicating[i] {
            self.replicating[i] = false;
            self.inflight[i].clear();
            self.probe_paused[i] = false;
        }
    }

    pub(crate) fn on_heartbeat(&mut self, _ctx: &mut Ctx<'_>, out: &mut Out<Raft>) {
        if self.role != Role::Leader {
            return;
        }
        self.broadcast(Push::Round, out);
        out.set_timer(RaftTimer::Heartbeat, self.p.heartbeat);
        // ReadIndex reads waiting for a round (batched with `batch_requests`) got one now.
        self.serve_reads(out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append_entries(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        prev: u64,
        prev_term: u64,
        entries: Arc<[Entry]>,
        leader_commit: u64,
        round: u64,
        out: &mut Out<Raft>,
    ) {
        if term < self.term {
            // Round 0: the request's round belongs to an older term (perhaps an earlier life
            // of the node that leads now, whose rounds restarted from 0), so echoing it would
            // confirm rounds of the current leader that this answer never saw.
            let reply = RaftMsg::AppendEntriesResponse {
                term: self.term,
                success: false,
                prev_log_index: prev,
                match_index: 0,
                conflict_term: None,
                conflict_index: 0,
                round: 0,
            };
            self.send(out, from, reply);
            return;
        }
        if term > self.term {
            self.adopt_term(term);
        } else if self.role == Role::Leader {
            // Two leaders in one term: impossible unless an unsafe switch allowed it. Ignore.
            return;
        }
        self.become_follower(ctx, Some(from), out);
        self.leader_contact = Some(ctx.now);
        self.deferred_vote = None;
        self.arm_election_timer(ctx, out);

        // Entries up to our snapshot are committed, hence the same as the leader's: skip them
        // and check consistency at the snapshot's last entry instead. The request then makes
        // the log consistent up to its last entry, or up to the snapshot if that is further.
        let last_new = (prev + entries.len() as u64).max(self.base);
        let (at, at_term, skip) = if prev < self.base {
            let skip = ((self.base - prev) as usize).min(entries.len());
            (self.base, self.base_term, skip)
        } else {
            (prev, prev_term, 0)
        };
        let batch = &entries[skip..];

        // Consistency check (§5.3).
        let last = self.last_index();
        if at > last
            && !batch.is_empty()
            && self.held.len() < self.p.reorder_buffer
            && self.term_at(last) == self.term
        {
            // Ahead of a gap: hold it until the entries before it arrive (`reorder_buffer`).
            // Only once we hold an entry of this leader's term: before that, a gap means our
            // log is behind (a new leader's first request), and only a rejection starts the
            // repair.
            self.c.appends_held += 1;
            self.held.push(HeldAppend {
                from,
                prev,
                prev_term,
                entries,
                leader_commit,
                round,
            });
            return;
        }
        if at > last || self.term_at(at) != at_term {
            self.c.append_rejections += 1;
            let (conflict_term, conflict_index) = if at > last {
                (None, last + 1)
            } else {
                // Terms never decrease along a log: binary search for the first entry of t.
                let t = self.term_at(at);
                let first = self.base + self.log.partition_point(|e| e.term < t) as u64 + 1;
                (Some(t), first.min(at))
            };
            if self.p.no_backtrack {
                // UNSAFE (2015 bug R6): advance the commit index despite the failed check.
                let c = leader_commit.min(last);
                if c > self.commit_index {
                    self.commit_index = c;
                    self.apply_committed(out);
                }
            }
            let reply = RaftMsg::AppendEntriesResponse {
                term: self.term,
                success: false,
                prev_log_index: prev,
                match_index: 0,
                conflict_term,
                conflict_index,
                round,
            };
            self.send(out, from, reply);
            return;
        }

        // Append what is new; truncate only at a real conflict, never for a matching prefix,
        // an empty heartbeat or a stale (reordered, duplicated) request.
        // The first entry we lack or that conflicts (`last` is still our last index).
        let new_from = batch.iter().enumerate().position(|(k, e)| {
            let idx = at + 1 + k as u64;
            idx > last || self.term_at(idx) != e.term
        });
        if let Some(k) = new_from {
            let idx = at + 1 + k as u64;
            if idx <= last {
                self.log.truncate((idx - self.base - 1) as usize);
                self.c.truncations += 1;
                self.persist_log(out, RaftWrite::Truncate { from: idx });
                // Only possible below the commit index under an unsafe switch.
                self.commit_index = self.commit_index.min(idx - 1);
            }
            // The new part of the batch moves into the write still inside the message's
            // allocation: no copy, even when the batch overlaps what we hold.
            let new = EntryRun::suffix(entries, skip + k);
            self.c.entries_replicated += new.len() as u64;
            self.log.extend_from_slice(&new);
            self.persist_log(
                out,
                RaftWrite::Append {
                    first_index: idx,
                    entries: new,
                },
            );
        }
        let c = leader_commit.min(last_new);
        if c > self.commit_index {
            self.commit_index = c;
            self.apply_committed(out);
        }
        let reply = RaftMsg::AppendEntriesResponse {
            term: self.term,
            success: true,
            prev_log_index: prev,
            match_index: last_new,
            conflict_term: None,
            conflict_index: 0,
            round,
        };
        self.send(out, from, reply);
        // Held requests the log now reaches, lowest first, as if they arrived now.
        while let Some(k) = (0..self.held.len())
            .filter(|&k| self.held[k].prev <= self.last_index())
            .min_by_key(|&k| self.held[k].prev)
        {
            let h = self.held.swap_remove(k);
            let term = self.term;
            self.on_append_entries(
                ctx,
                h.from,
                term,
                h.prev,
                h.prev_term,
                h.entries,
                h.leader_commit,
                h.round,
                out,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        success: bool,
        prev: u64,
        match_index: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
        round: u64,
        out: &mut Out<Raft>,
    ) {
        let Some(i) = self.follower_answered(ctx, from, term, round, out) else {
            return;
        };
        if success {
            self.replicate_to(i, match_index, out);
        } else if self.replicating[i] {
            // A gap behind what we sent optimistically (a request lost, or overtaken by a later
            // one): probe again from the last entry known to match, as etcd does. A rejection
            // at or below matchIndex is older than that knowledge: stale.
            if prev > self.match_index[i] {
                self.back_to_probing(i);
                self.next_index[i] = self.match_index[i] + 1;
                if !self.p.lazy_update {
                    self.send_append(i, Push::Entries, out);
                }
            }
        } else if prev + 1 == self.next_index[i] {
            // A rejection of the probe we currently send (older rejections are stale: ignored).
            if !self.p.no_backtrack {
                let old = self.next_index[i];
                let hint = if self.p.fast_backtrack {
                    match conflict_term {
                        Some(t) => match self.last_index_of_term(t, prev) {
                            Some(j) => j + 1,
                            None => conflict_index,
                        },
                        None => conflict_index,
                    }
                } else {
                    old - 1
                };
                self.next_index[i] = hint.min(old - 1).max(self.match_index[i] + 1).max(1);
                self.probe_paused[i] = false;
                self.searching[i] = true;
            }
            // UNSAFE `no_backtrack` (bug R4): nextIndex unchanged and the probe stays paused,
            // so the same failing check goes again with every heartbeat (an empty request at
            // the same place): resent at once it would ping-pong at the round-trip time for as
            // long as the follower lacks the entry, and every duplicated packet would double
            // the traffic (the run then looks hung instead of unsafe).
            if !self.p.lazy_update && !self.p.no_backtrack {
                self.send_append(i, Push::Entries, out);
            }
        }
        self.serve_reads(out);
    }

    /// The last index `<= below` holding an entry of term `t` (terms never decrease along a
    /// log, so a binary search finds it).
    fn last_index_of_term(&self, t: u64, below: u64) -> Option<u64> {
        let j = (self.base + self.log.partition_point(|e| e.term <= t) as u64).min(below);
        (j > 0 && self.term_at(j) == t).then_some(j)
    }

    /// After the leader appended to its log: in a single-server cluster, send ourselves a
    /// `Persisted` note that the barrier releases once the write completed (see [`RaftMsg`]).
    pub(crate) fn note_durable(&mut self, out: &mut Out<Raft>) {
        if self.p.servers.len() == 1 {
            let msg = RaftMsg::Persisted {
                term: self.term,
                index: self.last_index(),
            };
            self.send(out, self.me, msg);
        }
    }

    pub(crate) fn on_persisted(&mut self, term: u64, index: u64, out: &mut Out<Raft>) {
        if self.role == Role::Leader && term == self.term {
            let m = index.min(self.last_index());
            if m > self.match_index[self.my_pos] {
                self.match_index[self.my_pos] = m;
                self.advance_commit(out);
            }
        }
    }

    /// The common part of a follower's answer (AppendEntries or InstallSnapshot response): a
    /// higher term deposes us; an answer of our term proves the follower hears us and accepts
    /// our term, which is what ReadIndex rounds and CheckQuorum (raft-variants.md, thesis
    /// §6.2) count. A log-consistency rejection counts too, as in etcd: counting only accepted
    /// requests made a leader that repairs a follower far behind (one rejection per round
    /// trip) step down every election timeout and restart the repair in the next term, so a
    /// connected majority never committed again. An answer with round 0 is to a request of an
    /// older term (rounds start at 1): it may carry our term, as the follower adopted it since,
    /// but says nothing about this leader, nor about the follower's log. Returns the follower's
    /// position when the answer is for this leader.
    pub(crate) fn follower_answered(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        term: u64,
        round: u64,
        out: &mut Out<Raft>,
    ) -> Option<usize> {
        if term > self.term {
            self.step_down(ctx, term, out);
            return None;
        }
        if self.role != Role::Leader || term != self.term || round == 0 {
            return None;
        }
        let i = self.p.pos(from)?;
        self.acked_round[i] = self.acked_round[i].max(round);
        if round > self.snapshot_round[i] {
            self.snapshot_tries[i] = self.snapshot_tries[i].min(1);
        }
        self.recent_active[i] = true;
        Some(i)
    }

    /// Follower `i` holds our log up to `match_index`: matchIndex is monotonic (a reordered
    /// answer never moves it back) and nextIndex follows it.
    pub(crate) fn record_match(&mut self, i: usize, match_index: u64, out: &mut Out<Raft>) {
        let m = match_index.min(self.last_index());
        if m > self.match_index[i] {
            self.raise_match(i, m, out);
        }
        self.next_index[i] = self.next_index[i].max(self.match_index[i] + 1);
    }

    /// Raises follower `i`'s matchIndex to `m` and commits what that allows. The commit index
    /// can only move once a majority holds an entry above it, which `above_commit` counts.
    pub(crate) fn raise_match(&mut self, i: usize, m: u64, out: &mut Out<Raft>) {
        let old = self.match_index[i];
        self.match_index[i] = m;
        if i == self.my_pos || m <= self.commit_index {
            return;
        }
        if old <= self.commit_index {
            self.above_commit += 1;
        }
        let me = if self.p.servers.len() > 1 {
            self.last_index()
        } else {
            self.match_index[self.my_pos]
        };
        if self.above_commit + usize::from(me > self.commit_index) >= self.p.majority {
            self.advance_commit(out);
        }
    }

    /// §5.4.2: commit the highest index stored on a majority (the leader counting itself) if it
    /// is an entry of the current term.
    pub(crate) fn advance_commit(&mut self, out: &mut Out<Raft>) {
        if self.role != Role::Leader {
            return;
        }
        // Any follower's acknowledgement implies our own write completed.
        let mine = if self.p.servers.len() > 1 {
            self.last_index()
        } else {
            self.match_index[self.my_pos]
        };
        let n = if self.match_index.len() <= 9 {
            // Small clusters: an insertion sort (descending) on the stack, no selection
            // algorithm.
            let mut m = [0u64; 9];
            let len = self.match_index.len();
            for (j, &x) in self.match_index.iter().enumerate() {
                let x = if j == self.my_pos { mine } else { x };
                let mut k = j;
                while k > 0 && m[k - 1] < x {
                    m[k] = m[k - 1];
                    k -= 1;
                }
                m[k] = x;
            }
            m[..len][self.p.majority - 1]
        } else {
            let mut m = std::mem::take(&mut self.scratch);
            m.clear();
            m.extend_from_slice(&self.match_index);
            m[self.my_pos] = mine;
            // The majority-th largest match index: O(n) selection, not a sort (100-server
            // clusters do this on every acknowledgement).
            let k = self.p.majority - 1;
            let n = *m.select_nth_unstable_by(k, |a, b| b.cmp(a)).1;
            self.scratch = m;
            n
        };
        if n > self.commit_index && (self.p.commit_old_terms || self.term_at(n) == self.term) {
            self.commit_index = n;
            let (me, commit) = (self.my_pos, self.commit_index);
            self.above_commit = self
                .match_index
                .iter()
                .enumerate()
                .filter(|&(j, &x)| j != me && x > commit)
                .count();
            self.apply_committed(out);
        }
    }

    /// Applies entries up to the commit index, in index order (descending with the unsafe
    /// `reverse_apply`). The leader answers the clients waiting for them.
    pub(crate) fn apply_committed(&mut self, out: &mut Out<Raft>) {
        let (from, to) = (self.last_applied + 1, self.commit_index);
        if from > to {
            return;
        }
        if self.p.reverse_apply {
            for i in (from..=to).rev() {
                self.apply_one(i, out);
            }
        } else {
            for i in from..=to {
                self.apply_one(i, out);
            }
        }
        self.last_applied = to;
        self.serve_reads(out);
        self.maybe_snapshot(out);
    }

    fn apply_one(&mut self, i: u64, out: &mut Out<Raft>) {
        let e = self.log[(i - self.base - 1) as usize];
        out.applied(i, e.id());
        self.c.entries_applied += 1;
        let Some(cmd) = e.cmd else { return };
        let result = self.kv.apply(&cmd).result();
        let waited = self.role == Role::Leader && self.waiting.get(cmd.client.0) == Some(&cmd.seq);
        if let (true, Some(r)) = (waited, result) {
            self.waiting.remove(cmd.client.0);
            self.reply(out, cmd.client, cmd.seq, Some(r));
        }
    }

    fn reply(&mut self, out: &mut Out<Raft>, client: NodeId, seq: u64, result: Option<OpResult>) {
        let leader_hint = if self.role == Role::Leader {
            Some(self.me)
        } else {
            self.leader
        };
        let msg = RaftMsg::ClientResponse {
            seq,
            result,
            leader_hint,
        };
        self.send(out, client, msg);
    }

    pub(crate) fn on_client_request(
        &mut self,
        _ctx: &mut Ctx<'_>,
        from: NodeId,
        seq: u64,
        op: Op,
        out: &mut Out<Raft>,
    ) {
        self.c.client_requests_received += 1;
        if self.role != Role::Leader {
            self.c.redirects += 1;
            self.reply(out, from, seq, None);
            return;
        }
        if self.p.read_index && op.is_read() {
            self.reads.push(PendingRead {
                client: from,
                seq,
                key: op.key(),
                read_index: None,
                need_round: 0,
            });
            self.serve_reads(out);
            return;
        }
        // Sessions (thesis §6.3): an applied command is answered from the client table, a
        // pending one is not appended twice.
        if let Some(r) = self.kv.cached(from, seq) {
            self.c.duplicate_requests += 1;
            self.reply(out, from, seq, Some(r));
            return;
        }
        if self.kv.is_stale(from, seq) {
            // A late copy (a duplicated or delayed retry) of a request its client has moved
            // past: nobody waits for it, so it is not appended.
            self.c.stale_requests += 1;
            return;
        }
        self.waiting.insert(from.0, seq);
        let pending = self
            .log
            .get(self.last_applied.saturating_sub(self.base) as usize..)
            .unwrap_or(&[])
            .iter()
            .any(|e| e.cmd.is_some_and(|c| c.client == from && c.seq == seq));
        if pending {
            return;
        }
        let entry = Entry::new(
            self.term,
            Some(Command {
                client: from,
                seq,
                op,
            }),
        );
        self.log.push(entry);
        self.c.entries_appended += 1;
        let first_index = self.last_index();
        let shared = Arc::<[Entry]>::from([entry]);
        self.persist_log(
            out,
            RaftWrite::Append {
                first_index,
                entries: shared.clone().into(),
            },
        );
        self.note_durable(out);
        if !self.p.batch_requests {
            // Followers that are up to date get this very entry: the requests share the
            // write's copy instead of copying it out of the log again.
            self.broadcast_batch(
                Push::Entries,
                Some((first_index - 1, first_index, shared)),
                out,
            );
        }
    }

    /// ReadIndex (thesis §6.4): assign read indexes once an entry of this term is committed,
    /// and answer the reads whose leadership round a majority acknowledged and whose read
    /// index has been applied.
    pub(crate) fn serve_reads(&mut self, out: &mut Out<Raft>) {
        if self.reads.is_empty() || self.role != Role::Leader {
            return;
        }
        let committed_in_term =
            self.commit_index > 0 && self.term_at(self.commit_index) == self.term;
        if !committed_in_term {
            return;
        }
        let mut need_round = false;
        for r in &mut self.reads {
            if r.read_index.is_none() {
                r.read_index = Some(self.commit_index);
                r.need_round = self.round + 1;
                need_round = true;
            }
        }
        if need_round && !self.p.batch_requests {
            self.broadcast(Push::Round, out);
        }
        let mut k = 0;
        while k < self.reads.len() {
            let r = self.reads[k];
            let confirmed = self.round >= r.need_round && self.round_confirmed(r.need_round);
            if confirmed && r.read_index.is_some_and(|ri| self.last_applied >= ri) {
                self.reads.remove(k); // keep arrival order
                self.c.reads_served += 1;
                let value = self.kv.read(r.key);
                self.reply(out, r.client, r.seq, Some(OpResult::Value { value }));
            } else {
                k += 1;
            }
        }
    }

    /// A majority (counting ourselves) acknowledged heartbeat round `round` or a later one.
    fn round_confirmed(&self, round: u64) -> bool {
        let acks = 1 + self
            .acked_round
            .iter()
            .enumerate()
            .filter(|&(i, &r)| i != self.my_pos && r >= round)
            .count();
        acks >= self.p.majority
    }
}
