//! Rule-level tests: one replica stepped by hand, one rule of the paper each.

use super::*;
use crate::vrr::Status;
use coracle_core::{MS, OpResult, Role};

fn request(seq: u64) -> VrrMsg {
    VrrMsg::Request {
        seq,
        op: Op::Put { key: 1, value: seq },
    }
}

/// A StartViewChange from a replica whose commit-number is 0.
fn svc(view: u64) -> VrrMsg {
    VrrMsg::StartViewChange { view, commit: 0 }
}

fn prepare(view: u64, e: Entry, op: u64, commit: u64) -> VrrMsg {
    VrrMsg::Prepare {
        view,
        entry: e,
        op,
        commit,
    }
}

fn disk(view: u64, last_normal: u64, log: Vec<Entry>) -> VrrDisk {
    VrrDisk {
        checkpoint: None,
        view,
        last_normal,
        log,
        commit: 0,
    }
}

/// Index of the first output matching `f`.
fn pos_of(outs: &Outs, f: impl Fn(&Output<VrrMsg, VrrTimer, VrrWrite>) -> bool) -> usize {
    outs.iter().position(f).expect("output present")
}

fn is_persist(o: &Output<VrrMsg, VrrTimer, VrrWrite>) -> bool {
    matches!(o, Output::Persist(_))
}

fn is_send(o: &Output<VrrMsg, VrrTimer, VrrWrite>) -> bool {
    matches!(o, Output::Send { .. })
}

#[test]
fn primary_assigns_op_numbers_prepares_and_commits_with_f_prepare_oks() {
    let (mut s, _) = Solo::new(cfg(), 5, 0, VrrDisk::default());
    let c = s.client();
    assert_eq!(s.node.observe().role, Role::Leader);
    let outs = s.recv(c, request(1));
    let prepares: Vec<(usize, VrrMsg)> = sends(&outs);
    assert_eq!(prepares.len(), 4, "one Prepare per backup");
    for (to, m) in &prepares {
        assert!(*to >= 1 && *to <= 4);
        match m {
            VrrMsg::Prepare {
                view,
                op,
                commit,
                entry,
            } => {
                assert_eq!((*view, *op, *commit, entry.view), (0, 1, 0, 0));
                assert_eq!(entry.cmd.seq, 1);
            }
            m => panic!("unexpected {m:?}"),
        }
    }
    assert!(writes(&outs).is_empty(), "diskless replicas write nothing");
    // f = 2 PrepareOKs commit (a quorum of 3 with the primary).
    let outs = s.recv(1, VrrMsg::PrepareOk { view: 0, op: 1 });
    assert!(applied(&outs).is_empty());
    let outs = s.recv(1, VrrMsg::PrepareOk { view: 0, op: 1 });
    assert!(
        applied(&outs).is_empty(),
        "the same backup twice is one acknowledgement"
    );
    let outs = s.recv(3, VrrMsg::PrepareOk { view: 0, op: 1 });
    assert_eq!(applied(&outs), vec![1]);
    assert_eq!(s.node.commit_number(), 1);
    assert_eq!(
        sent_to(&outs, c),
        vec![VrrMsg::Reply {
            view: 0,
            seq: 1,
            result: Some(OpResult::Written)
        }]
    );
    // A PrepareOK of another view is ignored.
    s.recv(c, request(2));
    let outs = s.recv(1, VrrMsg::PrepareOk { view: 1, op: 2 });
    let outs2 = s.recv(2, VrrMsg::PrepareOk { view: 1, op: 2 });
    assert!(applied(&outs).is_empty() && applied(&outs2).is_empty());
    // An acknowledgement of op 2 covers op 2 only when two backups sent it.
    s.recv(1, VrrMsg::PrepareOk { view: 0, op: 2 });
    let outs = s.recv(4, VrrMsg::PrepareOk { view: 0, op: 2 });
    assert_eq!(applied(&outs), vec![2]);
}

#[test]
fn the_heartbeat_sends_commit_to_idle_backups_and_repairs_unacknowledged_prepares() {
    let (mut s, outs) = Solo::new(cfg(), 3, 0, VrrDisk::default());
    assert_eq!(timers(&outs), vec![(VrrTimer::Heartbeat, 50 * MS)]);
    let c = s.client();
    s.recv(c, request(1));
    // Both backups were just sent a Prepare: nothing this tick.
    let outs = s.fire(VrrTimer::Heartbeat);
    assert!(sends(&outs).is_empty());
    assert_eq!(timers(&outs), vec![(VrrTimer::Heartbeat, 50 * MS)]);
    s.recv(1, VrrMsg::PrepareOk { view: 0, op: 1 });
    // Next tick: backup 1 acknowledged everything and gets a Commit; backup 2's Prepare is
    // re-sent.
    let outs = s.fire(VrrTimer::Heartbeat);
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::Commit { view: 0, commit: 1 }]
    );
    match sent_to(&outs, 2).as_slice() {
        [
            VrrMsg::Prepare {
                op: 1, commit: 1, ..
            },
        ] => {}
        m => panic!("unexpected {m:?}"),
    }
}

#[test]
fn a_backup_processes_prepares_in_order_and_executes_committed_ops() {
    let (mut s, outs) = Solo::new(cfg(), 3, 1, VrrDisk::default());
    assert_eq!(s.node.observe().role, Role::Follower);
    assert_eq!(s.node.observe().leader, Some(NodeId(0)));
    let (lo, hi) = (150 * MS, 300 * MS);
    let t = timers(&outs);
    assert!(t.len() == 1 && t[0].0 == VrrTimer::ViewChange && (lo..hi).contains(&t[0].1));
    let e = log_of(&[0, 0, 0, 0], 0);
    let outs = s.recv(0, prepare(0, e[0], 1, 0));
    assert_eq!(
        sent_to(&outs, 0),
        vec![VrrMsg::PrepareOk { view: 0, op: 1 }]
    );
    assert!(
        timers(&outs)
            .iter()
            .any(|(t, _)| *t == VrrTimer::ViewChange)
    );
    // Op 3 before op 2: buffered, not acknowledged.
    let outs = s.recv(0, prepare(0, e[2], 3, 0));
    assert!(sends(&outs).is_empty());
    assert_eq!(s.node.op_number(), 1);
    let outs = s.recv(0, prepare(0, e[1], 2, 0));
    assert_eq!(
        sent_to(&outs, 0),
        vec![VrrMsg::PrepareOk { view: 0, op: 3 }]
    );
    assert_eq!(s.node.log(), &e[..3]);
    // A retransmission is acknowledged with everything held.
    let outs = s.recv(0, prepare(0, e[0], 1, 0));
    assert_eq!(
        sent_to(&outs, 0),
        vec![VrrMsg::PrepareOk { view: 0, op: 3 }]
    );
    // Prepares from anyone but the primary of the view are ignored.
    let outs = s.recv(2, prepare(0, e[3], 4, 0));
    assert!(outs.is_empty());
    // Commit executes in order.
    let outs = s.recv(0, VrrMsg::Commit { view: 0, commit: 2 });
    assert_eq!(applied(&outs), vec![1, 2]);
    assert_eq!(s.node.commit_number(), 2);
    assert!(sends(&outs).is_empty(), "backups do not answer clients");
    // A commit-number beyond the log asks for state transfer, at most once per interval.
    let outs = s.recv(0, VrrMsg::Commit { view: 0, commit: 6 });
    assert_eq!(applied(&outs), vec![3]);
    assert_eq!(sent_to(&outs, 0), vec![VrrMsg::GetState { view: 0, op: 3 }]);
    let outs = s.recv(0, VrrMsg::Commit { view: 0, commit: 6 });
    assert!(sends(&outs).is_empty());
    s.now += 50 * MS;
    let outs = s.recv(0, VrrMsg::Commit { view: 0, commit: 6 });
    assert_eq!(sent_to(&outs, 0), vec![VrrMsg::GetState { view: 0, op: 3 }]);
    // NewState appends what is missing and acknowledges it.
    let more = log_of(&[0, 0, 0], 10);
    let outs = s.recv(
        0,
        VrrMsg::NewState {
            checkpoint: None,
            view: 0,
            after: 3,
            entries: more.clone(),
            op: 6,
            commit: 6,
        },
    );
    assert_eq!(applied(&outs), vec![4, 5, 6]);
    assert_eq!(
        sent_to(&outs, 0),
        vec![VrrMsg::PrepareOk { view: 0, op: 6 }]
    );
    assert_eq!(s.node.log()[3..], more[..]);
}

#[test]
fn backups_redirect_and_the_primary_drops_stale_and_pending_requests() {
    let (mut s, _) = Solo::new(cfg(), 3, 2, VrrDisk::default());
    let c = s.client();
    let outs = s.recv(c, request(1));
    assert_eq!(
        sent_to(&outs, c),
        vec![VrrMsg::Reply {
            view: 0,
            seq: 1,
            result: None
        }]
    );
    let (mut p, _) = Solo::new(cfg(), 3, 0, VrrDisk::default());
    assert_eq!(sends(&p.recv(c, request(3))).len(), 2);
    assert!(
        sends(&p.recv(c, request(3))).is_empty(),
        "pending: not appended twice"
    );
    assert!(
        sends(&p.recv(c, request(2))).is_empty(),
        "older than the latest: dropped"
    );
    assert_eq!(p.node.op_number(), 1);
    let outs = p.recv(1, VrrMsg::PrepareOk { view: 0, op: 1 });
    assert_eq!(sent_to(&outs, c).len(), 1, "one reply for the two copies");
    let outs = p.recv(c, request(3));
    assert_eq!(
        sent_to(&outs, c),
        vec![VrrMsg::Reply {
            view: 0,
            seq: 3,
            result: Some(OpResult::Written)
        }]
    );
    assert_eq!(p.node.op_number(), 1);
    // Replicas in view-change status drop requests.
    p.fire(VrrTimer::ViewChange); // a primary has no view-change timer: nothing happens
    assert_eq!(p.node.status(), Status::Normal);
    p.recv(1, svc(1));
    assert_eq!(p.node.status(), Status::ViewChange);
    assert!(sends(&p.recv(c, request(4))).is_empty());
}

#[test]
fn a_view_change_starts_on_timeout_and_sends_do_view_change_after_f_start_view_changes() {
    let (mut s, _) = Solo::new(cfg(), 5, 2, disk(0, 0, log_of(&[0, 0], 0)));
    let outs = s.fire(VrrTimer::ViewChange);
    let o = s.node.observe();
    assert_eq!((o.role, o.term, o.leader), (Role::Candidate, 1, None));
    let to: Vec<usize> = sends(&outs)
        .into_iter()
        .filter(|(_, m)| *m == svc(1))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(to, vec![0, 1, 3, 4]);
    let t = timers(&outs);
    assert!(t.iter().any(|(t, _)| *t == VrrTimer::ViewChange));
    assert!(t.contains(&(VrrTimer::Resend, 50 * MS)));
    assert_eq!(s.node.counters_value("view_changes_started"), 1);
    // One other StartViewChange is not enough (f = 2).
    let outs = s.recv(3, svc(1));
    assert!(sends(&outs).is_empty());
    let outs = s.recv(3, svc(1));
    assert!(sends(&outs).is_empty(), "the same sender counts once");
    let outs = s.recv(4, svc(1));
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::DoViewChange {
            view: 1,
            last_normal: 0,
            op: 2,
            commit: 0,
            after: 0,
            entries: log_of(&[0, 0], 0),
        }]
    );
    // The resend timer re-broadcasts both.
    let outs = s.fire(VrrTimer::Resend);
    assert_eq!(sent_to(&outs, 1).len(), 2);
    assert_eq!(sends(&outs).len(), 5);
    // Prepares of the old view are no longer accepted.
    let outs = s.recv(0, prepare(0, entry(0, 9), 3, 0));
    assert!(sends(&outs).is_empty());
    assert_eq!(s.node.op_number(), 2);
    // The view change does not complete: the next view.
    let outs = s.fire(VrrTimer::ViewChange);
    assert_eq!(s.node.observe().term, 2);
    assert_eq!(sends(&outs).len(), 4);
    // A StartViewChange of a higher view moves a replica along at once.
    let outs = s.recv(0, svc(7));
    assert_eq!(s.node.observe().term, 7);
    assert_eq!(sends(&outs).len(), 4);
}

/// `view_change_backoff` doubles the wait after a view change abandoned although its primary
/// was alive (it spoke, or it is us), not after one whose primary never spoke: the views of
/// dead primaries would each wait longer than the last.
#[test]
fn backoff_grows_only_after_view_changes_whose_primary_spoke() {
    let mut c = cfg();
    c.view_change_timeout_min = Some(200.0);
    c.view_change_timeout_max = Some(200.0);
    let (mut s, _) = Solo::new(c, 5, 2, disk(0, 0, vec![]));
    let wait = |outs: &Outs| {
        timers(outs)
            .into_iter()
            .find(|(t, _)| *t == VrrTimer::ViewChange)
            .map(|(_, d)| d)
            .unwrap()
    };
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 200 * MS); // view 1, primary 1
    // Primary 1 never spoke: view 2 waits no longer.
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 200 * MS);
    assert_eq!(s.node.observe().term, 2);
    // View 2 is ours, and it did not complete: view 3 waits twice as long.
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 400 * MS);
    // Primary 3 spoke in view 3: view 4 waits four times as long.
    s.recv(3, svc(3));
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 800 * MS);
    assert_eq!(s.node.observe().term, 4);
}

#[test]
fn the_new_primary_picks_the_highest_last_normal_view_then_the_longest_log() {
    // Replica 1 is the primary of view 6 in a cluster of 5.
    let e1 = entry(1, 1);
    let e2 = entry(4, 2);
    let e3 = entry(4, 3);
    let own = vec![e1, e2];
    let (mut s, outs) = Solo::new(cfg(), 5, 1, disk(5, 4, own.clone()));
    // Restarted in view-change status for view 5 (its disk image says it left view 4).
    assert_eq!(s.node.status(), Status::ViewChange);
    assert_eq!(sends(&outs).len(), 4);
    s.recv(2, svc(6));
    s.recv(3, svc(6));
    let outs = s.recv(4, svc(6));
    assert!(
        sends(&outs)
            .iter()
            .all(|(_, m)| matches!(m, VrrMsg::StartViewChange { .. })),
        "its own DoViewChange is recorded, not sent"
    );
    let dvc = |log: Vec<Entry>, last_normal: u64, commit: u64| VrrMsg::DoViewChange {
        view: 6,
        last_normal,
        op: log.len() as u64,
        commit,
        after: 0,
        entries: log,
    };
    // A longer log from an older normal view loses to a shorter one from a newer view.
    let stale = vec![e1, entry(2, 7), entry(2, 8), entry(2, 9), entry(2, 10)];
    let outs = s.recv(3, dvc(stale, 2, 1));
    assert!(sends(&outs).is_empty(), "two of three");
    let outs = s.recv(2, dvc(vec![e1, e2, e3], 4, 1));
    let o = s.node.observe();
    assert_eq!((o.role, o.term, o.log_len), (Role::Leader, 6, 3));
    assert_eq!(s.node.log(), &[e1, e2, e3]);
    assert_eq!(s.node.last_normal(), 6);
    assert_eq!(s.node.commit_number(), 1);
    assert_eq!(applied(&outs), vec![1]);
    // §4.2 step 4: the reply to the op it executed goes to its client (who asked the old
    // primary).
    assert!(
        matches!(
            sent_to(&outs, 99).as_slice(),
            [VrrMsg::Reply {
                view: 6,
                seq: 1,
                result: Some(_)
            }]
        ),
        "{:?}",
        sent_to(&outs, 99)
    );
    // Each StartView carries the log after the receiver's commit-number as heard in this view
    // change (its DoViewChange, else its StartViewChange: 0 for replica 4), or after ours if
    // that is lower or if we heard nothing (replica 0: not the whole log), with the view of
    // the op it follows.
    let sv: Vec<(usize, u64, u64)> = sends(&outs)
        .into_iter()
        .filter_map(|(t, m)| match m {
            VrrMsg::StartView {
                view: 6,
                op: 3,
                commit: 1,
                after,
                after_view,
                entries,
            } if entries[..] == [e1, e2, e3][after as usize..] => Some((t, after, after_view)),
            _ => None,
        })
        .collect();
    assert_eq!(sv, vec![(0, 1, 1), (2, 1, 1), (3, 1, 1), (4, 0, 0)]);
    assert_eq!(s.node.counters_value("view_changes_completed"), 1);
    // Inherited ops commit by counting replicas: two PrepareOKs of view 6 for op 3.
    s.recv(2, VrrMsg::PrepareOk { view: 6, op: 3 });
    let outs = s.recv(4, VrrMsg::PrepareOk { view: 6, op: 3 });
    assert_eq!(applied(&outs), vec![2, 3]);
    // A straggler's DoViewChange gets the current StartView again, but not while the first
    // may still be on its way (within the longest view-change timeout: on a slow link the
    // straggler's retransmissions would each draw a copy of the whole log), and never for a
    // replica that answered a Prepare of the view.
    let outs = s.recv(0, dvc(vec![e1], 4, 0));
    assert!(sent_to(&outs, 0).is_empty());
    s.now += 300 * coracle_core::MS;
    let outs = s.recv(2, dvc(vec![e1], 4, 2));
    assert!(sent_to(&outs, 2).is_empty());
    let outs = s.recv(0, dvc(vec![e1], 4, 0));
    match sent_to(&outs, 0).as_slice() {
        [
            VrrMsg::StartView {
                view: 6,
                op: 3,
                commit: 3,
                ..
            },
        ] => {}
        m => panic!("unexpected {m:?}"),
    }
}

#[test]
fn a_backup_adopts_start_view_and_acknowledges_uncommitted_ops() {
    let old = log_of(&[0, 0, 0], 0);
    let (mut s, _) = Solo::new(cfg(), 3, 2, disk(0, 0, old.clone()));
    s.recv(0, VrrMsg::Commit { view: 0, commit: 1 });
    let new = [old[0], old[1], entry(1, 50)];
    let sv = |view: u64| VrrMsg::StartView {
        view,
        op: 3,
        commit: 2,
        after: 1,
        after_view: 0,
        entries: new[1..].to_vec(),
    };
    // Only the primary of the view may start it.
    assert!(s.recv(0, sv(1)).is_empty());
    let outs = s.recv(1, sv(1));
    let o = s.node.observe();
    assert_eq!(
        (o.role, o.term, o.leader),
        (Role::Follower, 1, Some(NodeId(1)))
    );
    assert_eq!(s.node.log(), &new[..]);
    assert_eq!((s.node.last_normal(), s.node.commit_number()), (1, 2));
    assert_eq!(applied(&outs), vec![2]);
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::PrepareOk { view: 1, op: 3 }]
    );
    assert_eq!(o.last_log_term, 1);
    assert_eq!(s.node.entry(3).map(|e| e.term), Some(1));
    // A repeated StartView is ignored.
    assert!(s.recv(1, sv(1)).is_empty());
}

#[test]
fn a_recovering_replica_takes_no_part_and_recovers_from_the_primary_of_the_latest_view() {
    let (mut s, _) = Solo::new(cfg(), 3, 2, VrrDisk::default());
    let outs = s.restart();
    let o = s.node.observe();
    assert_eq!((o.role, o.term, o.log_len), (Role::Recovering, 0, 0));
    let nonce = match sent_to(&outs, 0).as_slice() {
        [VrrMsg::Recovery { nonce }] => *nonce,
        m => panic!("unexpected {m:?}"),
    };
    assert_eq!(sent_to(&outs, 1), vec![VrrMsg::Recovery { nonce }]);
    assert!(timers(&outs).iter().any(|(t, _)| *t == VrrTimer::Recovery));
    // It neither votes nor answers nor accepts anything.
    let log = log_of(&[0, 3, 4], 0);
    for m in [
        svc(5),
        VrrMsg::DoViewChange {
            view: 5,
            last_normal: 0,
            op: 0,
            commit: 0,
            after: 0,
            entries: vec![],
        },
        VrrMsg::StartView {
            view: 4,
            op: 3,
            commit: 1,
            after: 0,
            after_view: 0,
            entries: log.clone(),
        },
        prepare(4, entry(4, 9), 1, 0),
        VrrMsg::Commit { view: 4, commit: 1 },
        VrrMsg::GetState { view: 0, op: 0 },
        VrrMsg::Recovery { nonce: 1 },
    ] {
        assert!(s.recv(1, m.clone()).is_empty(), "{m:?}");
    }
    assert!(s.recv(s.client(), request(1)).is_empty());
    assert_eq!(s.node.observe().role, Role::Recovering);
    // Responses: a backup of view 4 (whose primary is replica 1), then the primary.
    let resp = |view: u64, nonce: u64, log: Option<Vec<Entry>>| VrrMsg::RecoveryResponse {
        checkpoint: None,
        view,
        nonce,
        op: log.as_ref().map_or(0, |l| l.len() as u64),
        log,
        commit: 2,
    };
    assert!(
        s.recv(0, resp(4, nonce ^ 1, None)).is_empty(),
        "wrong nonce"
    );
    assert!(s.recv(0, resp(4, nonce, None)).is_empty());
    assert_eq!(s.node.observe().role, Role::Recovering);
    let outs = s.recv(1, resp(4, nonce, Some(log.clone())));
    let o = s.node.observe();
    assert_eq!((o.role, o.term, o.commit_index), (Role::Follower, 4, 2));
    assert_eq!(s.node.log(), &log[..]);
    assert_eq!(applied(&outs), vec![1, 2]);
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::PrepareOk { view: 4, op: 3 }]
    );
    assert_eq!(s.node.counters_value("recoveries_completed"), 1);
}

#[test]
fn recovery_needs_the_primary_of_the_latest_view_and_retries_with_the_same_nonce() {
    let (mut s, _) = Solo::new(cfg(), 5, 4, VrrDisk::default());
    let recovery_nonce = |outs: &Outs| match sent_to(outs, 0).as_slice() {
        [VrrMsg::Recovery { nonce }] => *nonce,
        m => panic!("unexpected {m:?}"),
    };
    let nonce = recovery_nonce(&s.restart());
    let resp = |nonce: u64, view: u64, log: Option<Vec<Entry>>| VrrMsg::RecoveryResponse {
        checkpoint: None,
        view,
        nonce,
        op: 0,
        log,
        commit: 0,
    };
    // The primary of view 1 answered, but replica 3 knows view 2: its primary is needed.
    s.recv(1, resp(nonce, 1, Some(vec![])));
    s.recv(0, resp(nonce, 1, None));
    s.recv(3, resp(nonce, 2, None));
    assert_eq!(s.node.observe().role, Role::Recovering);
    // A retry repeats the nonce and keeps what was gathered: an answer to the first Recovery
    // that arrives late still counts (it was sent after the restart all the same).
    assert_eq!(recovery_nonce(&s.fire(VrrTimer::Recovery)), nonce);
    s.recv(2, resp(nonce, 2, Some(log_of(&[1], 1))));
    assert_eq!(s.node.observe().role, Role::Follower);
    assert_eq!(s.node.observe().term, 2);
    // A new recovery (another restart) draws a new nonce; answers to the old one are ignored.
    let fresh = recovery_nonce(&s.restart());
    assert_ne!(fresh, nonce);
    s.recv(0, resp(nonce, 2, None));
    s.recv(1, resp(nonce, 2, None));
    s.recv(2, resp(nonce, 2, Some(log_of(&[1], 1))));
    assert_eq!(s.node.observe().role, Role::Recovering);
}

#[test]
fn replicas_answer_recovery_only_in_normal_status_and_only_the_primary_sends_its_log() {
    let log = log_of(&[0, 0], 0);
    let (mut p, _) = Solo::new(cfg(), 3, 0, disk(0, 0, log.clone()));
    let (mut b, _) = Solo::new(cfg(), 3, 1, disk(0, 0, log.clone()));
    let outs = p.recv(2, VrrMsg::Recovery { nonce: 42 });
    assert_eq!(
        sent_to(&outs, 2),
        vec![VrrMsg::RecoveryResponse {
            checkpoint: None,
            view: 0,
            nonce: 42,
            log: Some(log.clone()),
            op: 2,
            commit: 0
        }]
    );
    let outs = b.recv(2, VrrMsg::Recovery { nonce: 42 });
    assert_eq!(
        sent_to(&outs, 2),
        vec![VrrMsg::RecoveryResponse {
            checkpoint: None,
            view: 0,
            nonce: 42,
            log: None,
            op: 0,
            commit: 0
        }]
    );
    b.fire(VrrTimer::ViewChange);
    assert!(b.recv(2, VrrMsg::Recovery { nonce: 42 }).is_empty());
}

#[test]
fn a_replica_that_learns_of_a_newer_view_keeps_its_log_until_the_transfer_completes() {
    let c = VrrConfig {
        max_entries_per_message: 2,
        ..cfg()
    };
    let old = log_of(&[0, 0, 0], 0);
    let (mut s, _) = Solo::new(c, 3, 1, disk(0, 0, old.clone()));
    s.recv(0, VrrMsg::Commit { view: 0, commit: 1 });
    // The primary of view 2 (replica 2) reveals the view.
    let outs = s.recv(2, VrrMsg::Commit { view: 2, commit: 4 });
    assert_eq!(sent_to(&outs, 2), vec![VrrMsg::GetState { view: 2, op: 1 }]);
    let o = s.node.observe();
    assert_eq!(
        (o.role, o.term, o.leader, o.log_len, o.commit_index),
        (Role::Follower, 2, Some(NodeId(2)), 3, 1)
    );
    assert!(s.node.transferring());
    assert_eq!(s.node.last_normal(), 0);
    // Nothing is acknowledged or executed meanwhile.
    let outs = s.recv(2, prepare(2, entry(2, 60), 5, 4));
    assert!(sends(&outs).is_empty() && applied(&outs).is_empty());
    let new = vec![entry(0, 40), entry(2, 41), entry(2, 42)];
    let outs = s.recv(
        2,
        VrrMsg::NewState {
            checkpoint: None,
            view: 2,
            after: 1,
            entries: new[..2].to_vec(),
            op: 4,
            commit: 4,
        },
    );
    assert_eq!(sent_to(&outs, 2), vec![VrrMsg::GetState { view: 2, op: 3 }]);
    assert_eq!(
        s.node.log(),
        &old[..],
        "the old log is kept while incomplete"
    );
    let outs = s.recv(
        2,
        VrrMsg::NewState {
            checkpoint: None,
            view: 2,
            after: 3,
            entries: new[2..].to_vec(),
            op: 4,
            commit: 4,
        },
    );
    let mut expect = vec![old[0]];
    expect.extend_from_slice(&new);
    assert_eq!(s.node.log(), &expect[..]);
    assert_eq!((s.node.last_normal(), s.node.commit_number()), (2, 4));
    assert_eq!(applied(&outs), vec![2, 3, 4]);
    assert_eq!(
        sent_to(&outs, 2),
        vec![VrrMsg::PrepareOk { view: 2, op: 4 }]
    );
    assert!(!s.node.transferring());
}

#[test]
fn get_state_is_answered_only_by_a_caught_up_replica_of_that_view_in_batches() {
    let c = VrrConfig {
        max_entries_per_message: 2,
        ..cfg()
    };
    let log = log_of(&[0, 0, 0, 0, 0], 0);
    let (mut s, _) = Solo::new(c, 3, 2, disk(0, 0, log.clone()));
    let outs = s.recv(1, VrrMsg::GetState { view: 0, op: 1 });
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::NewState {
            checkpoint: None,
            view: 0,
            after: 1,
            entries: log[1..3].to_vec(),
            op: 5,
            commit: 0
        }]
    );
    assert!(s.recv(1, VrrMsg::GetState { view: 1, op: 1 }).is_empty());
    assert!(s.recv(1, VrrMsg::GetState { view: 0, op: 6 }).is_empty());
    s.fire(VrrTimer::ViewChange);
    assert!(s.recv(1, VrrMsg::GetState { view: 1, op: 1 }).is_empty());
}

#[test]
fn durable_replicas_write_before_the_messages_that_reveal_the_write() {
    // The primary: log write, then Prepares.
    let (mut p, _) = Solo::new(durable(), 3, 0, VrrDisk::default());
    let c = p.client();
    let outs = p.recv(c, request(1));
    assert!(pos_of(&outs, is_persist) < pos_of(&outs, is_send));
    assert_eq!(p.disk.log.len(), 1);
    // A backup: log write, then PrepareOK.
    let (mut b, _) = Solo::new(durable(), 3, 2, VrrDisk::default());
    let outs = b.recv(0, prepare(0, entry(0, 1), 1, 0));
    assert!(pos_of(&outs, is_persist) < pos_of(&outs, is_send));
    // A view change: the new view, then StartViewChange.
    let outs = b.fire(VrrTimer::ViewChange);
    assert_eq!(
        writes(&outs),
        vec![VrrWrite::View {
            view: 1,
            last_normal: 0
        }]
    );
    assert!(pos_of(&outs, is_persist) < pos_of(&outs, is_send));
    // Adopting a StartView: the log first, then the view, then the PrepareOK.
    let outs = b.recv(
        1,
        VrrMsg::StartView {
            view: 1,
            op: 2,
            commit: 0,
            after: 0,
            after_view: 0,
            entries: vec![entry(0, 1), entry(1, 2)],
        },
    );
    assert_eq!(
        writes(&outs),
        vec![
            VrrWrite::Append {
                first_index: 2,
                entries: vec![entry(1, 2)],
                commit: 0
            },
            VrrWrite::View {
                view: 1,
                last_normal: 1
            }
        ]
    );
    let last_write = outs.iter().rposition(is_persist).unwrap();
    assert!(last_write < pos_of(&outs, is_send));
    assert_eq!(b.disk, disk(1, 1, vec![entry(0, 1), entry(1, 2)]));
    // A restart resumes from the disk: normal backup of view 1.
    let outs = b.restart();
    let o = b.node.observe();
    assert_eq!(
        (o.role, o.term, o.log_len, o.commit_index),
        (Role::Follower, 1, 2, 0)
    );
    assert!(sends(&outs).is_empty());
    assert_eq!(b.node.counters_value("recoveries_started"), 0);
    // A diskless replica never writes.
    let (mut d, _) = Solo::new(cfg(), 3, 1, VrrDisk::default());
    let outs = d.recv(0, prepare(0, entry(0, 1), 1, 0));
    assert!(writes(&outs).is_empty());
    let outs = d.fire(VrrTimer::ViewChange);
    assert!(writes(&outs).is_empty());
}

#[test]
fn a_durable_replica_restarted_in_view_change_status_resumes_the_view_change() {
    let (mut s, outs) = Solo::new(durable(), 3, 2, disk(4, 2, log_of(&[1, 2], 0)));
    let o = s.node.observe();
    assert_eq!((o.role, o.term, o.log_len), (Role::Candidate, 4, 2));
    assert_eq!(sends(&outs).len(), 2);
    assert!(writes(&outs).is_empty(), "nothing new to write");
    // The primary of view 4 is replica 1.
    let outs = s.recv(0, svc(4));
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::DoViewChange {
            view: 4,
            last_normal: 2,
            op: 2,
            commit: 0,
            after: 0,
            entries: log_of(&[1, 2], 0),
        }]
    );
    let _ = s.restart();
    assert_eq!(s.node.observe().role, Role::Candidate);
}

impl VrrServer {
    /// The value of one counter (tests only).
    fn counters_value(&self, name: &str) -> u64 {
        let mut v = 0;
        self.counters(&mut |k, x| {
            if k == name {
                v = x
            }
        });
        v
    }
}

#[test]
fn view_change_messages_carry_the_log_after_what_the_receiver_already_holds() {
    let log = log_of(&[0, 0, 0], 0);
    // A backup (replica 2 of 3) that knows ops 1-2 are committed starts a view change: its
    // StartViewChange reports that commit-number.
    let (mut b, _) = Solo::new(cfg(), 3, 2, disk(0, 0, log.clone()));
    b.recv(0, VrrMsg::Commit { view: 0, commit: 2 });
    let outs = b.fire(VrrTimer::ViewChange);
    assert_eq!(
        sent_to(&outs, 1),
        vec![VrrMsg::StartViewChange { view: 1, commit: 2 }]
    );
    // The new primary (replica 1) reports commit-number 1: the DoViewChange starts after op 1.
    let outs = b.recv(1, VrrMsg::StartViewChange { view: 1, commit: 1 });
    let dvc = |after: u64| VrrMsg::DoViewChange {
        view: 1,
        last_normal: 0,
        op: 3,
        commit: 2,
        after,
        entries: log[after as usize..].to_vec(),
    };
    assert_eq!(sent_to(&outs, 1), vec![dvc(1)]);
    // It restarted and knows of no committed op: the DoViewChange again, whole, at once.
    let outs = b.recv(1, VrrMsg::StartViewChange { view: 1, commit: 0 });
    assert_eq!(sent_to(&outs, 1), vec![dvc(0)]);
    assert!(b.recv(1, svc(1)).is_empty(), "nothing lower to start from");

    // The new primary, holding ops 1-2 with commit-number 2.
    let (mut p, _) = Solo::new(cfg(), 3, 1, disk(0, 0, log[..2].to_vec()));
    p.recv(0, VrrMsg::Commit { view: 0, commit: 2 });
    p.fire(VrrTimer::ViewChange);
    // A suffix starting past its commit-number cannot be placed: not counted, and the sender
    // is told where to start.
    let outs = p.recv(2, dvc(3));
    assert_eq!(
        sent_to(&outs, 2),
        vec![VrrMsg::StartViewChange { view: 1, commit: 2 }]
    );
    assert_eq!(p.node.status(), Status::ViewChange);
    // One it can place: its own ops 1-2, then the sender's op 3 (the longer log wins).
    p.recv(2, VrrMsg::StartViewChange { view: 1, commit: 2 });
    let outs = p.recv(2, dvc(2));
    assert!(p.node.is_primary());
    assert_eq!(p.node.log(), &log[..]);
    // StartView: replica 2 reported commit-number 2, replica 0 nothing: both get the ops
    // after the primary's commit-number (2), not the whole log.
    let sv = |after: u64| VrrMsg::StartView {
        view: 1,
        op: 3,
        commit: 2,
        after,
        after_view: 0,
        entries: log[after as usize..].to_vec(),
    };
    assert_eq!(sent_to(&outs, 2), vec![sv(2)]);
    assert_eq!(sent_to(&outs, 0), vec![sv(2)]);

    // A backup whose commit-number is below the suffix's start but whose op there is the
    // primary's (same op-number and view) attaches it: its log up to there is the primary's.
    let (mut a, _) = Solo::new(durable(), 3, 2, disk(1, 0, log[..2].to_vec()));
    a.recv(1, sv(2));
    assert!(a.node.status() == Status::Normal && !a.node.transferring());
    assert_eq!(a.node.log(), &log[..]);
    // One whose log does not reach it (it was behind, or restarted), or whose op there is of
    // another view, cannot place it: it fetches the view's log by state transfer instead,
    // from its commit-number on.
    let (mut r, _) = Solo::new(durable(), 3, 2, disk(1, 0, log[..1].to_vec()));
    let outs = r.recv(1, sv(2));
    assert!(r.node.transferring());
    assert_eq!(sent_to(&outs, 1), vec![VrrMsg::GetState { view: 1, op: 0 }]);
    let other = vec![log[0], entry(5, 9)];
    let (mut m, _) = Solo::new(durable(), 3, 2, disk(1, 0, other.clone()));
    let outs = m.recv(1, sv(2));
    assert!(m.node.transferring());
    assert_eq!(
        m.node.log(),
        &other[..],
        "kept until the transfer completes"
    );
    assert_eq!(sent_to(&outs, 1), vec![VrrMsg::GetState { view: 1, op: 0 }]);
    // A malformed suffix (entries that do not end at op) is dropped.
    let mut bad = sv(0);
    if let VrrMsg::StartView { op, .. } = &mut bad {
        *op = 7;
    }
    let (mut q, _) = Solo::new(cfg(), 3, 2, disk(0, 0, vec![]));
    assert!(q.recv(1, bad).is_empty());
    assert_eq!(q.node.observe().term, 0);
}

#[test]
fn start_view_carries_at_most_64_ops_and_a_far_behind_replica_transfers_the_rest() {
    // max_entries_per_message below 64 paces state transfer only; view-change messages are
    // limited to 64 ops (above it, to max_entries_per_message).
    let mut c = cfg();
    c.max_entries_per_message = 2;
    let log = log_of(&[0; 70], 0);
    // Replica 1 of 3, the primary of view 1, holds ops 1-70, all committed.
    let (mut p, _) = Solo::new(c.clone(), 3, 1, disk(0, 0, log.clone()));
    p.recv(
        0,
        VrrMsg::Commit {
            view: 0,
            commit: 70,
        },
    );
    p.fire(VrrTimer::ViewChange);
    p.recv(2, VrrMsg::StartViewChange { view: 1, commit: 0 });
    let outs = p.recv(
        2,
        VrrMsg::DoViewChange {
            view: 1,
            last_normal: 0,
            op: 0,
            commit: 0,
            after: 0,
            entries: vec![],
        },
    );
    assert!(p.node.is_primary());
    let sv = |after: u64| VrrMsg::StartView {
        view: 1,
        op: 70,
        commit: 70,
        after,
        after_view: 0,
        entries: log[after as usize..].to_vec(),
    };
    // Replica 2 holds nothing: its StartView carries the last 64 ops only (it cannot attach
    // them and fetches the log by state transfer); replica 0, unheard, the ops after the
    // commit-number: none.
    assert_eq!(sent_to(&outs, 2), vec![sv(6)]);
    assert_eq!(sent_to(&outs, 0), vec![sv(70)]);
    let (mut b, _) = Solo::new(c, 3, 2, disk(0, 0, vec![]));
    let outs = b.recv(1, sv(6));
    assert!(b.node.transferring());
    assert_eq!(sent_to(&outs, 1), vec![VrrMsg::GetState { view: 1, op: 0 }]);
    // Each NewState from the primary re-arms its timer: the primary is alive.
    let outs = b.recv(
        1,
        VrrMsg::NewState {
            checkpoint: None,
            view: 1,
            after: 0,
            entries: log[..2].to_vec(),
            op: 70,
            commit: 70,
        },
    );
    assert!(
        timers(&outs)
            .iter()
            .any(|(t, _)| *t == VrrTimer::ViewChange)
    );
    assert_eq!(sent_to(&outs, 1), vec![VrrMsg::GetState { view: 1, op: 2 }]);
}

#[test]
fn a_do_view_change_is_withheld_from_a_primary_that_lacks_many_committed_ops() {
    let log = log_of(&[0; 100], 0);
    let setup = || {
        // Replica 2 of 3 holds ops 1-100, all committed, and starts view 1 (primary: 1).
        let (mut b, _) = Solo::new(cfg(), 3, 2, disk(0, 0, log.clone()));
        b.recv(
            0,
            VrrMsg::Commit {
                view: 0,
                commit: 100,
            },
        );
        b.fire(VrrTimer::ViewChange);
        b
    };
    let dvcs = |outs: &Outs| {
        sent_to(outs, 1)
            .into_iter()
            .filter(|m| matches!(m, VrrMsg::DoViewChange { .. }))
            .count()
    };
    // The primary reports commit-number 10: 90 committed ops (more than 64, or than
    // max_entries_per_message if larger) would have to cross in each copy. Withheld, as if lost; so
    // are the retransmissions.
    let mut b = setup();
    assert_eq!(
        dvcs(&b.recv(
            1,
            VrrMsg::StartViewChange {
                view: 1,
                commit: 10
            }
        )),
        0
    );
    for _ in 0..4 {
        assert_eq!(dvcs(&b.fire(VrrTimer::Resend)), 0);
    }
    // Commit-number 40: sent, with the ops after it.
    let mut b = setup();
    let outs = b.recv(
        1,
        VrrMsg::StartViewChange {
            view: 1,
            commit: 40,
        },
    );
    match sent_to(&outs, 1).as_slice() {
        [
            VrrMsg::DoViewChange {
                view: 1,
                after: 40,
                entries,
                ..
            },
        ] => assert_eq!(entries.len(), 60),
        m => panic!("unexpected {m:?}"),
    }
}

/// The view-change backoff counts views abandoned before they were stable (in normal
/// operation for the longest view-change timeout), not only view changes that never
/// completed, and applies to the primary-failure timeout as well; a stable view resets it.
#[test]
fn backoff_counts_views_abandoned_before_they_were_stable() {
    let mut c = cfg();
    c.view_change_timeout_min = Some(200.0);
    c.view_change_timeout_max = Some(200.0);
    let (mut s, _) = Solo::new(c, 5, 2, disk(0, 0, vec![]));
    let wait = |outs: &Outs| {
        timers(outs)
            .into_iter()
            .find(|(t, _)| *t == VrrTimer::ViewChange)
            .map(|(_, d)| d)
            .unwrap()
    };
    let sv = |view: u64| VrrMsg::StartView {
        view,
        op: 0,
        commit: 0,
        after: 0,
        after_view: 0,
        entries: vec![],
    };
    // View 0 at boot: its primary never spoke, abandoning it is no failure.
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 200 * MS);
    s.now += 50 * MS;
    assert_eq!(wait(&s.recv(1, sv(1))), 200 * MS);
    // View 1 started but is abandoned 100 ms later: the next view change waits twice as long,
    // and so does the primary-failure timeout of the view that follows.
    s.now += 100 * MS;
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 400 * MS);
    assert_eq!(s.node.observe().term, 2);
    assert_eq!(wait(&s.recv(3, sv(3))), 400 * MS);
    let commit = VrrMsg::Commit { view: 3, commit: 0 };
    s.now += 100 * MS;
    assert_eq!(wait(&s.recv(3, commit.clone())), 400 * MS);
    // 200 ms (the longest timeout) of normal operation in view 3: stable, back to 200 ms.
    s.now += 100 * MS;
    assert_eq!(wait(&s.recv(3, commit)), 200 * MS);
    // Abandoning a stable view is no failure either.
    s.now += 100 * MS;
    assert_eq!(wait(&s.fire(VrrTimer::ViewChange)), 200 * MS);
}
