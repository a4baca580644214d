//! View changes (§4.2): StartViewChange, DoViewChange, StartView, and moving on to the next view
//! when one does not complete in time.

use super::server::{DvcInfo, Status, VrrServer};
use super::{Entry, Vrr, VrrMsg, VrrTimer};
use coracle_core::{Ctx, NodeId, Out, Time};

/// The least [`VrrServer::suffix_limit`]: the default `max_entries_per_message`.
pub(crate) const SUFFIX_LIMIT: u64 = 64;

impl VrrServer {
    /// The primary-failure timeout of a backup, or the limit on a view change.
    pub(crate) fn on_view_change_timeout(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        match self.status {
            Status::Normal if self.is_primary() => {}
            Status::Normal => self.start_view_change(ctx, self.view + 1, out),
            Status::ViewChange => {
                self.c.view_change_timeouts += 1;
                self.start_view_change(ctx, self.view + 1, out);
            }
            Status::Recovering => {}
        }
    }

    /// §4.2 step 1: move to view `view` (> current) in view-change status and tell everyone.
    pub(crate) fn start_view_change(&mut self, ctx: &mut Ctx<'_>, view: u64, out: &mut Out<Vrr>) {
        debug_assert!(view > self.view);
        let now = ctx.now;
        self.note_stable(now);
        let failed = match self.status {
            // The view change under way is abandoned (ours timed out, or another replica's
            // did): the next one waits longer (`view_change_backoff`), so that one whose
            // DoViewChanges are slow to reach a live primary can complete. Not when its
            // primary never spoke (crashed, recovering, cut off): waiting longer for the next
            // view cannot help this one, and the views of dead primaries would each wait
            // longer than the last.
            Status::ViewChange => {
                let primary = self.p.pos(self.p.primary(self.view));
                primary.is_some_and(|i| i == self.my_pos || self.svc[i])
            }
            // A view abandoned before it was stable (`note_stable`), or while we were still
            // fetching its log, failed too: views that started but were ended again and again
            // within a timeout or two (by catch-up traffic that delayed the primary's
            // Commits on a slow link, or by a replica that timed out while catching up) are
            // damped like view changes that do not complete.
            Status::Normal => {
                self.transferring()
                    || self
                        .normal_since
                        .is_some_and(|t| now.saturating_sub(t) < self.p.view_change.1)
            }
            Status::Recovering => false,
        };
        if failed {
            self.failed_view_changes = self.failed_view_changes.saturating_add(1);
        }
        self.view = view;
        self.c.view_changes_started += 1;
        // The new view is a promise not to accept Prepares of older views: durable first.
        self.persist_view(out);
        self.resume_view_change(ctx, out);
    }

    /// View-change status in the current view (also a disk-based replica's restart in it).
    pub(crate) fn resume_view_change(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        self.status = Status::ViewChange;
        self.normal_since = None;
        self.clear_view_state();
        self.peer_commit.fill(None);
        self.resends = 0;
        self.broadcast(out, &self.start_view_change_msg());
        out.cancel_timer(VrrTimer::Heartbeat);
        self.arm_view_change_timer(ctx, out);
        out.set_timer(VrrTimer::Resend, self.p.commit_interval);
        self.maybe_send_do_view_change(ctx.now, out);
    }

    /// Retransmission while the view change is in progress.
    pub(crate) fn on_resend(&mut self, out: &mut Out<Vrr>) {
        if self.status != Status::ViewChange {
            return;
        }
        self.broadcast(out, &self.start_view_change_msg());
        // DoViewChange carries the uncommitted suffix of the log, which is long after a
        // partition that kept an old primary appending: resent at rounds 1, 2, 4, 8, ...
        // (then every 64), not every round, so that copies of it do not pile up on a slow
        // link faster than it can carry them.
        self.resends = self.resends.saturating_add(1);
        let due = self.resends.is_power_of_two() || self.resends.is_multiple_of(64);
        if due && self.dvc_sent && self.p.primary(self.view) != self.me && !self.withhold_dvc() {
            let msg = self.do_view_change();
            out.send(self.p.primary(self.view), msg);
        }
        out.set_timer(VrrTimer::Resend, self.p.commit_interval);
    }

    pub(crate) fn on_start_view_change(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        commit: u64,
        out: &mut Out<Vrr>,
    ) {
        if self.status == Status::Recovering {
            return; // a recovering replica does not take part
        }
        if view > self.view {
            self.start_view_change(ctx, view, out);
        }
        if self.status == Status::ViewChange
            && view == self.view
            && let Some(i) = self.p.pos(from)
            && i != self.my_pos
        {
            self.svc[i] = true;
            self.peer_commit[i] = Some(commit);
            if self.dvc_sent
                && from == self.p.primary(view)
                && commit < self.dvc_after
                && !self.withhold_dvc()
            {
                // The new primary holds fewer committed ops than our suffix assumed (it
                // restarted, or answers a suffix it could not place): send one it can place.
                let msg = self.do_view_change();
                out.send(from, msg);
            }
            self.maybe_send_do_view_change(ctx.now, out);
        }
    }

    fn start_view_change_msg(&self) -> VrrMsg {
        VrrMsg::StartViewChange {
            view: self.view,
            commit: self.commit,
        }
    }

    /// Our DoViewChange: the log after our commit-number, or after the new primary's if it
    /// reported a lower one (ops up to either are committed, hence the same in both logs).
    fn do_view_change(&mut self) -> VrrMsg {
        let primary = self.p.pos(self.p.primary(self.view));
        let theirs = primary.and_then(|i| self.peer_commit[i]);
        let after = theirs.map_or(self.commit, |c| c.min(self.commit));
        self.dvc_after = after;
        VrrMsg::DoViewChange {
            view: self.view,
            last_normal: self.last_normal,
            op: self.op(),
            commit: self.commit,
            after,
            entries: self.ops_after(after).to_vec(),
        }
    }

    /// The most ops a StartView carries, and how many committed ops a new primary may lack
    /// before DoViewChanges are withheld from it: `max_entries_per_message`, but at least
    /// [`SUFFIX_LIMIT`] (a small batch size paces state transfer; as a limit on view-change
    /// messages it turned catch-ups of a few dozen ops into many round trips and failed
    /// views: `examples/teaching/storm.json` as VRR, whose batches are 4 entries, had three
    /// times as many leaderless windows over 3 s).
    fn suffix_limit(&self) -> u64 {
        self.p.max_entries.max(SUFFIX_LIMIT)
    }

    /// Whether the new primary reported a commit-number more than [`Self::suffix_limit`] ops
    /// below ours: it lacks that many committed ops, which our DoViewChange would have to
    /// carry (each sender's, and each retransmission). On a slow link those copies queued for
    /// seconds ahead of everything else the primary was to receive, and the views of a
    /// replica that was catching up failed one after another. We withhold it, as if it were
    /// lost: the view change fails on its timeout and the next view's primary, which holds
    /// those ops, brings the replica up to date (StartView, then state transfer). The
    /// replicas with the highest commit-number are withheld from by no one, so a view whose
    /// primary is one of them can always complete.
    fn withhold_dvc(&self) -> bool {
        let primary = self.p.pos(self.p.primary(self.view));
        // Also when it lacks ops we have checkpointed (we no longer hold the ops it needs).
        primary
            .and_then(|i| self.peer_commit[i])
            .is_some_and(|c| c.saturating_add(self.suffix_limit()) < self.commit || c < self.base)
    }

    /// §4.2 step 2: after StartViewChange from f other replicas, DoViewChange to the new
    /// primary (recorded directly when that is us).
    fn maybe_send_do_view_change(&mut self, now: Time, out: &mut Out<Vrr>) {
        if self.dvc_sent || self.status != Status::ViewChange {
            return;
        }
        let others = self.svc.iter().filter(|&&b| b).count();
        if others + 1 < self.p.quorum {
            return;
        }
        self.dvc_sent = true;
        let primary = self.p.primary(self.view);
        if primary == self.me {
            self.dvcs[self.my_pos] = Some(DvcInfo {
                last_normal: self.last_normal,
                op: self.op(),
                commit: self.commit,
                after: self.op(),
                entries: Vec::new(),
            });
            self.maybe_start_view(now, out);
        } else if !self.withhold_dvc() {
            let msg = self.do_view_change();
            out.send(primary, msg);
        }
    }

    pub(crate) fn on_do_view_change(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        info: DvcInfo,
        out: &mut Out<Vrr>,
    ) {
        if self.status == Status::Recovering {
            return;
        }
        if view > self.view {
            self.start_view_change(ctx, view, out);
        }
        if view != self.view || self.p.primary(view) != self.me {
            return;
        }
        let Some(i) = self.p.pos(from) else { return };
        if i == self.my_pos {
            return;
        }
        match self.status {
            Status::ViewChange if info.after > self.commit => {
                // Its suffix starts past the ops we know to be committed (it assumed a
                // commit-number we no longer have): not counted; our StartViewChange tells it
                // where to start instead. Its commit-number is still news: should the view
                // start without it, its StartView carries only the ops after that point.
                self.peer_commit[i] = Some(info.commit);
                out.send(from, self.start_view_change_msg());
            }
            Status::ViewChange => {
                self.peer_commit[i] = Some(info.commit);
                self.dvcs[i] = Some(info);
                self.maybe_start_view(ctx.now, out);
            }
            Status::Normal if self.caught_up() => {
                // A straggler of the view change we completed: its StartView may have been
                // lost. Resent only to a replica that has not answered a Prepare of the view
                // yet, at most once per longest view-change timeout: the
                // retransmitted DoViewChanges of a slow link otherwise each drew a StartView
                // carrying the log's suffix, which queued ahead of the view's Prepares and
                // Commits until the backups timed out again.
                let now = ctx.now;
                let recent = self.start_view_sent[i]
                    .is_some_and(|t| now.saturating_sub(t) < self.p.view_change.1);
                if !recent && !self.in_view[i] {
                    self.start_view_sent[i] = Some(now);
                    out.send(from, self.start_view_msg(Some(info.commit)));
                }
            }
            _ => {}
        }
    }

    /// StartView for a replica whose commit-number is `theirs` (if it told us in this view
    /// change): the log after our commit-number, or after theirs if lower. Ops up to both are
    /// committed, hence the same in both logs, and the replica attaches the suffix. A replica
    /// we did not hear from gets the ops after our commit-number and attaches them if its own
    /// op there matches ours (`on_start_view`), which it does whenever it holds the committed
    /// ops: the whole log, which this sent before, took seconds to cross a slow link, and the
    /// view's Commits queued behind it until the backups started another view change.
    fn start_view_msg(&self, theirs: Option<u64>) -> VrrMsg {
        let base = theirs.map_or(self.commit, |c| c.min(self.commit));
        let after = base
            .max(self.op().saturating_sub(self.suffix_limit()))
            .max(self.base);
        VrrMsg::StartView {
            view: self.view,
            op: self.op(),
            commit: self.commit,
            after,
            after_view: self.view_of(after),
            entries: self.ops_after(after).to_vec(),
        }
    }

    /// §4.2 steps 3-4: with f + 1 DoViewChange messages (our own included), take the log with
    /// the highest last normal view, then the highest op-number, the highest commit-number,
    /// and start the view.
    fn maybe_start_view(&mut self, now: Time, out: &mut Out<Vrr>) {
        if self.status != Status::ViewChange
            || self.p.primary(self.view) != self.me
            || self.dvcs[self.my_pos].is_none()
        {
            return;
        }
        if self.dvcs.iter().filter(|d| d.is_some()).count() < self.p.quorum {
            return;
        }
        let mut best: Option<usize> = None;
        let mut commit = self.commit;
        for (i, d) in self.dvcs.iter().enumerate() {
            let Some(d) = d else { continue };
            commit = commit.max(d.commit);
            let better = best
                .and_then(|b| self.dvcs[b].as_ref())
                .is_none_or(|b| (d.last_normal, d.op) > (b.last_normal, b.op));
            if better {
                best = Some(i);
            }
        }
        // Our own ops up to `after` (committed), then the chosen replica's suffix.
        let chosen = best.and_then(|b| self.dvcs[b].take());
        self.clear_view_state();
        if let Some(b) = chosen {
            self.replace_log_after(b.after, &b.entries, out);
        }
        self.last_normal = self.view;
        self.persist_view(out);
        self.c.view_changes_completed += 1;
        self.become_primary(commit, now, out);
        for (i, &s) in self.p.servers.iter().enumerate() {
            if i != self.my_pos {
                out.send(s, self.start_view_msg(self.peer_commit[i]));
            }
        }
        self.start_view_sent.fill(Some(now));
        self.in_view.fill(false);
        self.sent_since_tick.fill(true);
        self.told_commit.fill(self.commit);
        // §4.2 step 4: execute the committed ops not executed yet and send their replies to
        // the clients (whose requests went to the old primary; a client takes a reply from any
        // replica).
        for i in self.executed + 1..=self.commit {
            if let Some(e) = self.entry_at(i) {
                self.waiting.insert(e.cmd.client, e.cmd.seq);
            }
        }
        self.execute(out);
    }

    /// §4.2 step 5: adopt the new primary's log and view.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_start_view(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        (after, after_view): (u64, u64),
        entries: Vec<Entry>,
        commit: u64,
        out: &mut Out<Vrr>,
    ) {
        if self.status == Status::Recovering
            || from != self.p.primary(view)
            || from == self.me
            || view < self.view
            || (view == self.view && self.caught_up())
        {
            return;
        }
        // The suffix attaches after our op `after` if that op is committed (ops up to our
        // commit-number and up to the primary's are the same in both logs), or if it is the
        // primary's op `after`: the same op-number and view. Only the primary of a view creates
        // ops of that view, each op-number once, after a log it holds, so two logs that agree
        // on an op agree on every op before it (Raft's Log Matching, which the simulator
        // checks on every run).
        let fits =
            after <= self.commit || (after <= self.op() && self.view_of(after) == after_view);
        // (A suffix that ends below our checkpoint cannot happen: the view's log holds every
        // committed op. Fetched by state transfer all the same.)
        let short = after.saturating_add(entries.len() as u64) < self.base;
        if !fits || short {
            // We lack some of the view's ops up to the suffix (we were behind, restarted since
            // we told the primary our commit-number, or hold ops the new view did not keep):
            // fetch the view's log after our commit-number by state transfer.
            self.start_transfer(ctx, from, view, out);
            return;
        }
        let jumped = view > self.view;
        self.view = view;
        self.clear_view_state();
        if jumped {
            // Straight from normal in an older view: the new view-number goes to disk before
            // the new log, so a crash in between restarts into this view's change instead of
            // normal in the old view with a log that was never that view's.
            self.persist_view(out);
        }
        self.replace_log_after(after, &entries, out);
        self.last_normal = view;
        self.persist_view(out);
        self.commit = self.commit.max(commit).min(self.op());
        self.become_backup(ctx, out);
        if self.op() > self.commit {
            out.send(
                from,
                VrrMsg::PrepareOk {
                    view,
                    op: self.op(),
                },
            );
        }
        self.execute(out);
    }
}
