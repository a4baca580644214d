//! Normal operation (§4.1): client requests and the client table, Prepare/PrepareOK, commits,
//! the primary's heartbeat, and executing ops.

use super::server::{MAX_BUFFERED, Status, VrrServer};
use super::{Entry, Vrr, VrrMsg, VrrTimer, VrrWrite};
use coracle_core::{Command, Ctx, NodeId, Op, OpResult, Out, Time};

impl VrrServer {
    /// Status normal as the primary of the current view, with commit-number `commit` (which
    /// every backup is assumed to hold: only ops above it need acknowledgements).
    pub(crate) fn become_primary(&mut self, commit: u64, now: Time, out: &mut Out<Vrr>) {
        self.status = Status::Normal;
        self.normal_since = Some(now);
        self.commit = commit.min(self.op());
        self.acked.fill(self.commit);
        self.acked[self.my_pos] = self.op();
        if self.self_ack_by_note() {
            self.acked[self.my_pos] = self.commit;
            self.send_persisted_note(out);
        }
        self.sent_since_tick.fill(false);
        self.told_commit.fill(0);
        out.cancel_timer(VrrTimer::ViewChange);
        out.cancel_timer(VrrTimer::Resend);
        out.set_timer(VrrTimer::Heartbeat, self.p.commit_interval);
    }

    /// A single disk-based replica learns that its own writes completed through a note.
    fn self_ack_by_note(&self) -> bool {
        self.p.durable && self.n() == 1
    }

    fn send_persisted_note(&self, out: &mut Out<Vrr>) {
        out.send(
            self.me,
            VrrMsg::Persisted {
                view: self.view,
                op: self.op(),
            },
        );
    }

    pub(crate) fn on_persisted(&mut self, view: u64, op: u64, out: &mut Out<Vrr>) {
        if self.is_primary() && view == self.view {
            let m = op.min(self.op());
            if m > self.acked[self.my_pos] {
                self.acked[self.my_pos] = m;
                self.try_commit(out);
            }
        }
    }

    // ----- the primary --------------------------------------------------------------------

    pub(crate) fn on_request(&mut self, from: NodeId, seq: u64, op: Op, out: &mut Out<Vrr>) {
        self.c.client_requests_received += 1;
        if self.status != Status::Normal {
            return; // view change or recovery: no useful answer
        }
        if !self.is_primary() {
            self.c.redirects += 1;
            out.send(
                from,
                VrrMsg::Reply {
                    view: self.view,
                    seq,
                    result: None,
                },
            );
            return;
        }
        // The client table (§4.1): executed requests from the state machine's table, appended
        // but unexecuted ones from the log.
        if let Some(r) = self.kv.cached(from, seq) {
            self.c.duplicate_requests += 1;
            self.reply(out, from, seq, r);
            return;
        }
        let executed = self.client_table.get(&from).copied().unwrap_or(0);
        let pending = self
            .ops_after(self.executed)
            .iter()
            .filter(|e| e.cmd.client == from)
            .map(|e| e.cmd.seq)
            .max()
            .unwrap_or(0);
        let latest = executed.max(pending);
        if seq < latest || (seq == latest && executed == latest) {
            return; // an old request: the client has moved on
        }
        self.waiting.insert(from, seq);
        if seq == latest {
            return; // in the log already: answered when executed
        }
        let entry = Entry {
            view: self.view,
            cmd: Command {
                client: from,
                seq,
                op,
            },
        };
        self.log.push(entry);
        self.c.entries_appended += 1;
        let n = self.op();
        self.persist(
            out,
            VrrWrite::Append {
                first_index: n,
                entries: vec![entry],
                commit: self.commit,
            },
        );
        let msg = VrrMsg::Prepare {
            view: self.view,
            entry,
            op: n,
            commit: self.commit,
        };
        for i in 0..self.n() {
            if i != self.my_pos {
                out.send(self.p.servers[i], msg.clone());
                self.sent_since_tick[i] = true;
                self.told_commit[i] = self.commit;
                self.c.prepares_sent += 1;
            }
        }
        if self.self_ack_by_note() {
            self.send_persisted_note(out);
        } else {
            self.acked[self.my_pos] = n;
            self.try_commit(out);
        }
    }

    fn reply(&self, out: &mut Out<Vrr>, client: NodeId, seq: u64, result: OpResult) {
        out.send(
            client,
            VrrMsg::Reply {
                view: self.view,
                seq,
                result: Some(result),
            },
        );
    }

    pub(crate) fn on_prepare_ok(&mut self, from: NodeId, view: u64, op: u64, out: &mut Out<Vrr>) {
        if !self.is_primary() || view != self.view {
            return;
        }
        let Some(i) = self.p.pos(from) else { return };
        self.in_view[i] = true;
        let m = op.min(self.op());
        if m > self.acked[i] {
            self.acked[i] = m;
            self.try_commit(out);
        }
    }

    /// Commits the highest op-number a quorum (the primary included) holds.
    pub(crate) fn try_commit(&mut self, out: &mut Out<Vrr>) {
        let mut a = std::mem::take(&mut self.scratch);
        a.clear();
        a.extend_from_slice(&self.acked);
        a.sort_unstable_by(|x, y| y.cmp(x));
        let k = a[self.p.quorum - 1].min(self.op());
        self.scratch = a;
        if k > self.commit {
            self.commit = k;
            self.execute(out);
        }
    }

    /// The heartbeat (§4.1): a Commit to backups that were sent nothing since the last tick or
    /// do not know the latest commit-number, or the first Prepare a backup has not
    /// acknowledged.
    pub(crate) fn on_heartbeat(&mut self, now: Time, out: &mut Out<Vrr>) {
        if !self.is_primary() {
            return;
        }
        self.note_stable(now);
        for i in 0..self.n() {
            if i == self.my_pos {
                continue;
            }
            let to = self.p.servers[i];
            // Ops at or below the checkpoint are committed: a backup that lacks them learns so
            // from the commit-number and fetches the checkpoint by state transfer.
            let a = self.acked[i].max(self.base);
            if !self.sent_since_tick[i]
                && let Some(&entry) = self.entry_at(a + 1)
            {
                self.c.prepares_sent += 1;
                out.send(
                    to,
                    VrrMsg::Prepare {
                        view: self.view,
                        entry,
                        op: a + 1,
                        commit: self.commit,
                    },
                );
                self.told_commit[i] = self.commit;
            } else if !self.sent_since_tick[i] || self.told_commit[i] < self.commit {
                self.c.commits_sent += 1;
                out.send(
                    to,
                    VrrMsg::Commit {
                        view: self.view,
                        commit: self.commit,
                    },
                );
                self.told_commit[i] = self.commit;
            }
            self.sent_since_tick[i] = false;
        }
        out.set_timer(VrrTimer::Heartbeat, self.p.commit_interval);
    }

    /// Executes committed ops in op-number order (§4.1 step 5 and 7); the primary answers the
    /// clients waiting for them.
    pub(crate) fn execute(&mut self, out: &mut Out<Vrr>) {
        while self.executed < self.commit {
            let i = self.executed + 1;
            let Some(&e) = self.entry_at(i) else {
                debug_assert!(false, "commit-number {} above the log", self.commit);
                break;
            };
            out.applied(i, e.id());
            self.executed = i;
            self.c.entries_applied += 1;
            let cmd = e.cmd;
            let result = self.kv.apply(&cmd).result();
            let t = self.client_table.entry(cmd.client).or_default();
            *t = (*t).max(cmd.seq);
            if self.is_primary()
                && self.waiting.get(&cmd.client) == Some(&cmd.seq)
                && let Some(r) = result
            {
                self.waiting.remove(&cmd.client);
                self.reply(out, cmd.client, cmd.seq, r);
            }
        }
        self.maybe_checkpoint(out);
    }

    // ----- backups ------------------------------------------------------------------------

    /// Handles the view of a Prepare or Commit from `from`. Returns true if the message should
    /// be processed as a backup of the current view; otherwise the message was stale, or
    /// revealed a newer view (or a completed view change) and started a state transfer.
    fn accept_from_primary(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        out: &mut Out<Vrr>,
    ) -> bool {
        if from != self.p.primary(view) || from == self.me || view < self.view {
            return false;
        }
        match self.status {
            Status::Recovering => false,
            Status::Normal if view == self.view => {
                if self.caught_up() && self.normal_since.is_none() {
                    self.normal_since = Some(ctx.now);
                }
                self.note_stable(ctx.now);
                self.arm_view_change_timer(ctx, out);
                if self.caught_up() {
                    true
                } else {
                    self.request_state(ctx, from, false, out);
                    false
                }
            }
            _ => {
                // A newer view, or the view we were changing to has started without us.
                self.start_transfer(ctx, from, view, out);
                false
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_prepare(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        entry: Entry,
        n: u64,
        k: u64,
        out: &mut Out<Vrr>,
    ) {
        if !self.accept_from_primary(ctx, from, view, out) {
            return;
        }
        let op = self.op();
        if n == op + 1 {
            self.log.push(entry);
            while let Some(e) = self.buffered.remove(&(self.op() + 1)) {
                self.log.push(e);
            }
            let now_op = self.op();
            self.buffered.retain(|&i, _| i > now_op);
            self.persist(
                out,
                VrrWrite::Append {
                    first_index: n,
                    entries: self.ops_after(op).to_vec(),
                    commit: self.commit,
                },
            );
        } else if n > op + 1 {
            if self.buffered.len() < MAX_BUFFERED {
                self.buffered.insert(n, entry);
            }
            self.learn_commit(ctx, from, k, out);
            return;
        }
        // New ops, or a retransmission of ops we hold: acknowledge everything we hold.
        out.send(
            from,
            VrrMsg::PrepareOk {
                view: self.view,
                op: self.op(),
            },
        );
        self.learn_commit(ctx, from, k, out);
    }

    pub(crate) fn on_commit(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        k: u64,
        out: &mut Out<Vrr>,
    ) {
        if self.accept_from_primary(ctx, from, view, out) {
            self.learn_commit(ctx, from, k, out);
        }
    }

    /// A backup learns the primary's commit-number: executes what it holds, and asks for state
    /// transfer if it lacks committed ops.
    fn learn_commit(&mut self, ctx: &mut Ctx<'_>, from: NodeId, k: u64, out: &mut Out<Vrr>) {
        let c = k.min(self.op());
        if c > self.commit {
            self.commit = c;
            self.execute(out);
        }
        if k > self.op() {
            self.request_state(ctx, from, false, out);
        }
    }
}
