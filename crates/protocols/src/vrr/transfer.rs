//! Recovery of diskless replicas (§4.3) and state transfer (§5.2).

use super::server::{RecoveryInfo, Status, VrrServer};
use super::{Checkpoint, Entry, Vrr, VrrMsg, VrrTimer, VrrWrite};
use coracle_core::{Ctx, KvStore, NodeId, Out, Time};
use rand::RngExt;
use std::sync::Arc;

impl VrrServer {
    // ----- recovery -----------------------------------------------------------------------

    /// §4.3: a diskless replica restarted with nothing. It does not take part in anything until
    /// it has the state of the latest view's primary.
    pub(crate) fn start_recovery(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        self.status = Status::Recovering;
        self.normal_since = None;
        self.view = 0;
        self.last_normal = 0;
        self.log.clear();
        self.ckpt = None;
        self.base = 0;
        self.kv = KvStore::default();
        self.client_table.clear();
        self.commit = 0;
        self.executed = 0;
        self.clear_view_state();
        self.c.recoveries_started += 1;
        self.recovery_attempts = 0;
        // One nonce per recovery, kept across retries with the responses gathered so far: a
        // response to an earlier retry was still sent after this restart, which is all the
        // nonce must show (to the recovering replica it is the same as a delayed answer).
        // A fresh nonce per retry would discard every answer slower than the retry interval,
        // and the primary's carries its whole log: on a slow link recovery would never end.
        self.nonce = ctx.rng.random::<u64>();
        self.responses.fill(None);
        self.send_recovery(ctx, out);
    }

    fn send_recovery(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        self.broadcast(out, &VrrMsg::Recovery { nonce: self.nonce });
        // Each retry doubles the wait (up to 4×, with `view_change_backoff`): the primary
        // answers every Recovery with its whole log, and on a slow link retries at a fixed
        // interval queued copies of it faster than the link carried them.
        let mut after = self.draw_timeout(ctx);
        if self.p.view_change_backoff {
            after = after.saturating_mul(1 << self.recovery_attempts.min(2));
        }
        self.recovery_attempts = self.recovery_attempts.saturating_add(1);
        out.set_timer(VrrTimer::Recovery, after);
    }

    pub(crate) fn on_recovery_timeout(&mut self, ctx: &mut Ctx<'_>, out: &mut Out<Vrr>) {
        if self.status == Status::Recovering {
            self.send_recovery(ctx, out);
        }
    }

    /// §4.3 step 2: replicas in normal status answer; the primary includes its state.
    pub(crate) fn on_recovery(&mut self, from: NodeId, nonce: u64, out: &mut Out<Vrr>) {
        if !self.caught_up() || from == self.me {
            return;
        }
        let primary = self.is_primary();
        out.send(
            from,
            VrrMsg::RecoveryResponse {
                view: self.view,
                nonce,
                checkpoint: if primary { self.ckpt.clone() } else { None },
                log: primary.then(|| self.log.clone()),
                op: if primary { self.op() } else { 0 },
                commit: if primary { self.commit } else { 0 },
            },
        );
    }

    /// §4.3 step 3: f + 1 responses with our nonce, including the primary's of the latest view
    /// among them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_recovery_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        nonce: u64,
        state: Option<(Option<Arc<Checkpoint>>, Vec<Entry>, u64)>,
        out: &mut Out<Vrr>,
    ) {
        if self.status != Status::Recovering || nonce != self.nonce {
            return;
        }
        let Some(i) = self.p.pos(from) else { return };
        if i == self.my_pos || self.responses[i].as_ref().is_some_and(|r| r.view > view) {
            return;
        }
        self.responses[i] = Some(RecoveryInfo { view, state });
        if self.responses.iter().flatten().count() < self.p.quorum {
            return;
        }
        let latest = self.responses.iter().flatten().map(|r| r.view).max();
        let Some(latest) = latest else { return };
        let Some(p) = self.p.pos(self.p.primary(latest)) else {
            return;
        };
        // Only the latest view's primary's answer with its state completes recovery; any
        // other stays gathered (answers are kept across retries).
        let ready = self.responses[p]
            .as_ref()
            .is_some_and(|r| r.view == latest && r.state.is_some());
        if !ready {
            return;
        }
        let Some(RecoveryInfo {
            state: Some((ck, log, k)),
            ..
        }) = self.responses[p].take()
        else {
            return;
        };
        self.responses.fill(None);
        self.view = latest;
        self.last_normal = latest;
        self.log = log;
        if let Some(c) = ck {
            // The primary's checkpoint, then its log after it (§5.3).
            self.base = c.op;
            self.kv = c.kv.clone();
            self.client_table = c.clients.iter().copied().collect();
            self.executed = c.op;
            self.c.checkpoints_installed += 1;
            out.restored(c.op, c.last());
            self.ckpt = Some(c);
        }
        self.commit = k.max(self.base).min(self.op());
        self.c.recoveries_completed += 1;
        out.cancel_timer(VrrTimer::Recovery);
        self.become_backup(ctx, out);
        if self.op() > self.commit {
            out.send(
                self.p.primary(latest),
                VrrMsg::PrepareOk {
                    view: latest,
                    op: self.op(),
                },
            );
        }
        self.execute(out);
    }

    // ----- state transfer -----------------------------------------------------------------

    /// §5.2: view `view` is in normal operation (we heard from its primary `from`) but we do not
    /// hold its log. Move to the view and fetch the ops after our commit-number; the log and the
    /// last normal view are replaced only when the transfer is complete.
    pub(crate) fn start_transfer(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        out: &mut Out<Vrr>,
    ) {
        self.view = view;
        self.clear_view_state();
        self.transfer_base = self.commit;
        self.transfer_target = None;
        self.persist_view(out);
        self.become_backup(ctx, out);
        self.request_state(ctx, from, true, out);
    }

    /// Sends GetState to `to` for what we lack; unless `now`, at most once per commit
    /// interval. `now` is for the first request and for the next batch after a reply that
    /// brought new entries, so at most one chain of requests is ever running.
    pub(crate) fn request_state(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: NodeId,
        now: bool,
        out: &mut Out<Vrr>,
    ) {
        let recent = self
            .get_state_at
            .is_some_and(|t| ctx.now.saturating_sub(t) < self.p.commit_interval);
        if recent && !now {
            return;
        }
        let after = if self.caught_up() {
            self.op()
        } else {
            self.staged_end()
        };
        self.get_state_at = Some(ctx.now);
        self.c.state_transfers += 1;
        out.send(
            to,
            VrrMsg::GetState {
                view: self.view,
                op: after,
            },
        );
    }

    /// §5.2: a replica in normal status in `view`, holding that view's log, sends the ops after
    /// `after` (at most `max_entries_per_message`), possibly none.
    pub(crate) fn on_get_state(
        &mut self,
        now: Time,
        from: NodeId,
        view: u64,
        after: u64,
        out: &mut Out<Vrr>,
    ) {
        if !self.caught_up() || view != self.view || after > self.op() || from == self.me {
            return;
        }
        let Some(i) = self.p.pos(from) else { return };
        // Ops we have checkpointed go as the checkpoint (§5.3), then the ops after it. Not
        // again to the same replica within `view_change_timeout_min`, doubled with each copy
        // in a row (up to 64×, as Raft's InstallSnapshot): the replica repeats its GetState
        // every commit interval, and on a slow link copies of a large store would otherwise
        // queue faster than the link carries them.
        // A GetState past the last copy's checkpoint shows that copy arrived: the next one is
        // not "in a row" (the others may have checkpointed again since, so `after` can be
        // below our checkpoint again; counting it as a repeat held a caught-up backup back
        // for up to 64 timeouts, 9.6 s with the defaults, in a review).
        if self.ckpt_sent[i].2 > 0 && after >= self.ckpt_sent[i].2 {
            self.ckpt_sent[i] = (None, 0, 0);
        }
        let (after, checkpoint) = if after < self.base {
            let (at, tries, _) = self.ckpt_sent[i];
            let wait = self
                .p
                .view_change
                .0
                .saturating_mul(1 << tries.saturating_sub(1).min(6));
            if at.is_some_and(|t| now.saturating_sub(t) < wait) {
                return;
            }
            self.ckpt_sent[i] = (Some(now), tries.saturating_add(1), self.base);
            (self.base, self.ckpt.clone())
        } else {
            // It holds our checkpoint's ops (it installed it, or never needed it).
            self.ckpt_sent[i] = (None, 0, 0);
            (after, None)
        };
        let end = self.op().min(after.saturating_add(self.p.max_entries));
        out.send(
            from,
            VrrMsg::NewState {
                view,
                after,
                checkpoint,
                entries: self.ops_after(after)[..(end - after) as usize].to_vec(),
                op: self.op(),
                commit: self.commit,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_new_state(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        view: u64,
        (after, ck): (u64, Option<Arc<Checkpoint>>),
        entries: Vec<Entry>,
        n: u64,
        k: u64,
        out: &mut Out<Vrr>,
    ) {
        if self.status != Status::Normal || view != self.view || self.is_primary() {
            return;
        }
        let primary = self.p.primary(view);
        if from == primary {
            // The primary is alive (as the module docs say: NewState re-arms the timer).
            self.arm_view_change_timer(ctx, out);
        }
        if self.caught_up() {
            // Behind in our own view: our log is a prefix of the responder's.
            let mut installed = false;
            if let Some(c) = ck
                && c.op > self.op()
            {
                // It checkpointed past our op-number: its state machine replaces ours.
                self.install_checkpoint(c, out);
                installed = true;
            }
            let op = self.op();
            if after > op {
                return;
            }
            let skip = (op - after) as usize;
            let progress = installed || skip < entries.len();
            if skip < entries.len() {
                self.log.extend_from_slice(&entries[skip..]);
                while let Some(e) = self.buffered.remove(&(self.op() + 1)) {
                    self.log.push(e);
                }
                let now_op = self.op();
                self.buffered.retain(|&i, _| i > now_op);
                self.persist(
                    out,
                    VrrWrite::Append {
                        first_index: op + 1,
                        entries: self.ops_after(op).to_vec(),
                        commit: self.commit,
                    },
                );
                out.send(
                    primary,
                    VrrMsg::PrepareOk {
                        view,
                        op: self.op(),
                    },
                );
            }
            let c = k.min(self.op());
            if c > self.commit {
                self.commit = c;
                self.execute(out);
            }
            if self.op() < n {
                // The next batch at once only after a reply that moved us on: a duplicated or
                // stale reply starting its own chain of requests multiplied the requests
                // without bound on a duplicating network.
                self.request_state(ctx, from, progress, out);
            }
            return;
        }
        // Transferring into the view: collect aside until we hold the responder's op-number.
        if let Some(c) = ck
            && c.op > self.staged_end()
        {
            // It checkpointed past what we collected: its checkpoint, then the ops after it,
            // replace our state when the transfer completes.
            self.staged.clear();
            self.staged_ckpt = Some(c);
        }
        let expected = self.staged_end();
        if after > expected {
            return;
        }
        let skip = (expected - after) as usize;
        let progress = skip < entries.len();
        if progress {
            self.staged.extend_from_slice(&entries[skip..]);
        }
        let end = self.staged_end();
        let target = *self.transfer_target.get_or_insert(n);
        if end < target {
            self.request_state(ctx, from, progress, out);
            return;
        }
        self.transfer_target = None;
        let staged = std::mem::take(&mut self.staged);
        match self.staged_ckpt.take() {
            Some(c) => {
                let at = c.op;
                self.install_checkpoint(c, out);
                self.replace_log_after(at, &staged, out);
            }
            None => self.replace_log_after(self.transfer_base, &staged, out),
        }
        self.last_normal = view;
        self.persist_view(out);
        self.commit = self.commit.max(k).min(self.op());
        self.c.state_transfers_completed += 1;
        self.get_state_at = None;
        self.normal_since = Some(ctx.now);
        self.arm_view_change_timer(ctx, out);
        out.send(
            primary,
            VrrMsg::PrepareOk {
                view,
                op: self.op(),
            },
        );
        self.execute(out);
        if self.op() < n {
            // The rest as a backup behind in its own view.
            self.request_state(ctx, from, true, out);
        }
    }
}

impl VrrServer {
    /// The op-number up to which a transfer into a newer view has collected the view's log.
    pub(crate) fn staged_end(&self) -> u64 {
        self.staged_ckpt
            .as_ref()
            .map_or(self.transfer_base, |c| c.op)
            + self.staged.len() as u64
    }
}
