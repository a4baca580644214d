//! Rule-level tests: one server (or client proxy) stepped by hand, one rule of the paper each.

use super::*;
use coracle_core::{MS, OpResult, Role};

fn ok(term: u64, prev: u64, m: u64, round: u64) -> RaftMsg {
    RaftMsg::AppendEntriesResponse {
        term,
        success: true,
        prev_log_index: prev,
        match_index: m,
        conflict_term: None,
        conflict_index: 0,
        round,
    }
}

fn nack(term: u64, prev: u64, ct: Option<u64>, ci: u64) -> RaftMsg {
    RaftMsg::AppendEntriesResponse {
        term,
        success: false,
        prev_log_index: prev,
        match_index: 0,
        conflict_term: ct,
        conflict_index: ci,
        round: 1,
    }
}

fn granted(outs: &Outs) -> Option<bool> {
    sends(outs).iter().find_map(|(_, m)| match m {
        RaftMsg::RequestVoteResponse { granted, .. } => Some(*granted),
        _ => None,
    })
}

fn ae_response(outs: &Outs) -> Option<RaftMsg> {
    sends(outs)
        .into_iter()
        .map(|(_, m)| m)
        .find(|m| matches!(m, RaftMsg::AppendEntriesResponse { .. }))
}

fn appends_to(outs: &Outs, to: usize) -> Vec<(u64, Vec<Entry>)> {
    sends(outs)
        .into_iter()
        .filter(|(t, _)| *t == to)
        .filter_map(|(_, m)| match m {
            RaftMsg::AppendEntries {
                prev_log_index,
                entries,
                ..
            } => Some((prev_log_index, entries.to_vec())),
            _ => None,
        })
        .collect()
}

/// Index of the first output matching `f`.
fn pos_of(outs: &Outs, f: impl Fn(&Output<RaftMsg, RaftTimer, RaftWrite>) -> bool) -> usize {
    outs.iter().position(f).expect("output present")
}

#[test]
fn election_timer_is_redrawn_in_range_at_every_arm() {
    let (mut s, outs) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    let mut draws = vec![election_timer(&outs).unwrap()];
    for k in 0..20 {
        let outs = s.recv(1, ae(1, 0, 0, vec![], 0));
        draws.push(election_timer(&outs).unwrap());
        s.now += MS * (k + 1);
    }
    assert!(
        draws.iter().all(|&d| (150 * MS..300 * MS).contains(&d)),
        "{draws:?}"
    );
    draws.sort();
    draws.dedup();
    assert!(draws.len() > 15, "draws should differ: {draws:?}");
}

#[test]
fn single_server_elects_itself_and_commits_alone_once_durable() {
    let (mut s, _) = Solo::new(cfg(), 1, 0, RaftDisk::default());
    let outs = s.fire(RaftTimer::Election);
    assert_eq!(s.node.observe().role, Role::Leader);
    assert_eq!(s.node.observe().term, 1);
    // The no-op commits once the leader's own write is durable: it learns that from a note to
    // itself, held by the barrier behind the write.
    assert!(applied(&outs).is_empty());
    let note = RaftMsg::Persisted { term: 1, index: 1 };
    assert_eq!(sends(&outs), vec![(0, note.clone())]);
    let w = pos_of(&outs, |o| {
        matches!(o, Output::Persist(RaftWrite::Append { .. }))
    });
    let r = pos_of(&outs, |o| matches!(o, Output::Send { .. }));
    assert!(w < r);
    assert_eq!(applied(&s.recv(0, note)), vec![1]);
    let outs = s.recv(
        1,
        RaftMsg::ClientRequest {
            seq: 1,
            op: Op::Put { key: 3, value: 9 },
        },
    );
    assert!(applied(&outs).is_empty());
    let outs = s.recv(0, RaftMsg::Persisted { term: 1, index: 2 });
    assert_eq!(applied(&outs), vec![2]);
    assert_eq!(
        sends(&outs),
        vec![(
            1,
            RaftMsg::ClientResponse {
                seq: 1,
                result: Some(OpResult::Written),
                leader_hint: Some(NodeId(0))
            }
        )]
    );
    // A note from an older term is ignored.
    s.recv(
        1,
        RaftMsg::ClientRequest {
            seq: 2,
            op: Op::Get { key: 3 },
        },
    );
    assert!(applied(&s.recv(0, RaftMsg::Persisted { term: 0, index: 3 })).is_empty());
}

#[test]
fn vote_is_persisted_before_reply_granted_once_per_term_and_resets_timer() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    let outs = s.recv(1, rv(1, 0, 0));
    assert_eq!(granted(&outs), Some(true));
    let w = pos_of(&outs, |o| {
        matches!(
            o,
            Output::Persist(RaftWrite::HardState {
                term: 1,
                voted_for: Some(NodeId(1))
            })
        )
    });
    let r = pos_of(&outs, |o| matches!(o, Output::Send { .. }));
    assert!(w < r, "persist before the vote reply: {outs:?}");
    assert_eq!(writes(&outs).len(), 1, "term and vote in one write");
    assert!(election_timer(&outs).is_some(), "granting resets the timer");
    // Another candidate in the same term is refused, and the timer is left alone.
    let outs = s.recv(2, rv(1, 5, 5));
    assert_eq!(granted(&outs), Some(false));
    assert!(election_timer(&outs).is_none());
    assert_eq!(s.node.voted_for(), Some(NodeId(1)));
    // A retransmitted request from the same candidate is granted again.
    let outs = s.recv(1, rv(1, 0, 0));
    assert_eq!(granted(&outs), Some(true));
    assert_eq!(s.node.c.votes_granted, 1);
}

#[test]
fn election_restriction_refuses_stale_logs() {
    let d = disk(2, None, log_of(&[1, 2], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    // Longer log but older last term: refused. The term is still adopted (§5.1).
    let outs = s.recv(1, rv(3, 5, 1));
    assert_eq!(granted(&outs), Some(false));
    assert_eq!(s.node.term(), 3);
    assert!(
        election_timer(&outs).is_none(),
        "a refused vote does not reset the timer"
    );
    // Same last term, shorter log: refused.
    let outs = s.recv(1, rv(4, 1, 2));
    assert_eq!(granted(&outs), Some(false));
    // Same last term, same length: granted.
    let outs = s.recv(2, rv(4, 2, 2));
    assert_eq!(granted(&outs), Some(true));
    // Newer last term, shorter log: up to date.
    let outs = s.recv(1, rv(5, 1, 3));
    assert_eq!(granted(&outs), Some(true));
}

#[test]
fn voted_for_survives_a_restart() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    assert_eq!(granted(&s.recv(1, rv(1, 0, 0))), Some(true));
    s.restart();
    assert_eq!(s.node.voted_for(), Some(NodeId(1)));
    assert_eq!(granted(&s.recv(2, rv(1, 0, 0))), Some(false));
}

/// R2 of the 2015 prototype: accepting the leader's AppendEntries cleared `votedFor`, so a
/// follower could vote again in the same term. Here the second candidate's log is as up to
/// date as ours, so only the kept vote refuses it.
#[test]
fn a_follower_keeps_its_vote_after_accepting_the_leaders_append_entries() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    assert_eq!(granted(&s.recv(1, rv(1, 0, 0))), Some(true));
    let outs = s.recv(1, ae(1, 0, 0, log_of(&[1], 0), 0));
    assert!(matches!(
        ae_response(&outs),
        Some(RaftMsg::AppendEntriesResponse {
            success: true,
            match_index: 1,
            ..
        })
    ));
    let o = s.node.observe();
    assert_eq!(
        (o.role, o.term, o.leader),
        (Role::Follower, 1, Some(NodeId(1)))
    );
    assert_eq!(granted(&s.recv(2, rv(1, 1, 1))), Some(false));
    assert_eq!(s.node.voted_for(), Some(NodeId(1)));
    assert_eq!(s.node.c.votes_granted, 1);
}

#[test]
fn higher_term_makes_a_leader_step_down() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    s.make_leader();
    let outs = s.recv(1, ok(7, 0, 0, 0));
    let o = s.node.observe();
    assert_eq!((o.role, o.term, o.leader), (Role::Follower, 7, None));
    assert_eq!(s.node.voted_for(), None);
    assert_eq!(
        writes(&outs),
        vec![RaftWrite::HardState {
            term: 7,
            voted_for: None
        }]
    );
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::CancelTimer(RaftTimer::Heartbeat)))
    );
    assert!(election_timer(&outs).is_some());
}

#[test]
fn candidate_steps_down_on_append_entries_of_its_term() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    s.fire(RaftTimer::Election);
    assert_eq!(s.node.observe().role, Role::Candidate);
    s.recv(2, ae(1, 0, 0, vec![], 0));
    let o = s.node.observe();
    assert_eq!(
        (o.role, o.term, o.leader),
        (Role::Follower, 1, Some(NodeId(2)))
    );
    assert_eq!(
        s.node.voted_for(),
        Some(NodeId(0)),
        "votedFor kept within the term"
    );
}

#[test]
fn new_leader_appends_a_noop_and_replicates_it() {
    let d = disk(2, None, log_of(&[1, 2], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    let outs = s.make_leader();
    let log = s.node.log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2], Entry::new(3, None));
    assert_eq!(s.node.entry(3).unwrap().digest, 0);
    for p in [1, 2] {
        let a = appends_to(&outs, p);
        assert_eq!(a, vec![(2, vec![Entry::new(3, None)])]);
    }
    // The entry is persisted before the AppendEntries that carry it.
    let w = pos_of(&outs, |o| {
        matches!(o, Output::Persist(RaftWrite::Append { .. }))
    });
    let r = pos_of(&outs, |o| matches!(o, Output::Send { .. }));
    assert!(w < r);
}

#[test]
fn follower_truncates_only_on_a_real_conflict() {
    let d = disk(1, None, log_of(&[1, 1, 1], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    let l = log_of(&[1, 1, 1], 0);
    // A stale (reordered) request carrying a matching prefix: nothing changes.
    let outs = s.recv(1, ae(1, 0, 0, l[..2].to_vec(), 0));
    assert!(writes(&outs).is_empty());
    assert_eq!(s.node.log().len(), 3);
    assert!(matches!(
        ae_response(&outs),
        Some(RaftMsg::AppendEntriesResponse {
            success: true,
            match_index: 2,
            ..
        })
    ));
    // An empty heartbeat in the middle of the log: nothing changes.
    let outs = s.recv(1, ae(1, 1, 1, vec![], 0));
    assert!(writes(&outs).is_empty());
    assert_eq!(s.node.log().len(), 3);
    // A duplicate of everything: nothing changes.
    let outs = s.recv(1, ae(1, 0, 0, l.clone(), 0));
    assert!(writes(&outs).is_empty());
    // A conflicting entry at index 2 from a term-2 leader: truncate from 2, then append.
    let new = log_of(&[2], 100);
    let outs = s.recv(2, ae(2, 1, 1, new.clone(), 0));
    assert_eq!(
        writes(&outs),
        vec![
            RaftWrite::HardState {
                term: 2,
                voted_for: None
            },
            RaftWrite::Truncate { from: 2 },
            RaftWrite::Append {
                first_index: 2,
                entries: new.clone().into()
            }
        ]
    );
    assert_eq!(s.node.log(), &[l[0], new[0]]);
    assert_eq!(s.disk.log, vec![l[0], new[0]]);
}

#[test]
fn follower_commit_is_min_of_leader_commit_and_last_new_entry() {
    let d = disk(1, None, log_of(&[1, 1, 1], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    let outs = s.recv(1, ae(1, 1, 1, vec![], 3));
    assert_eq!(s.node.observe().commit_index, 1);
    assert_eq!(applied(&outs), vec![1]);
    // A failed check never advances the commit index.
    let outs = s.recv(1, ae(1, 3, 9, vec![], 3));
    assert!(matches!(
        ae_response(&outs),
        Some(RaftMsg::AppendEntriesResponse { success: false, .. })
    ));
    assert_eq!(s.node.observe().commit_index, 1);
    let outs = s.recv(1, ae(1, 3, 1, vec![], 3));
    assert_eq!(applied(&outs), vec![2, 3]);
}

#[test]
fn rejection_carries_the_conflict_hint() {
    let d = disk(3, None, log_of(&[1, 2, 2, 2], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    let outs = s.recv(1, ae(3, 4, 3, vec![], 0));
    assert_eq!(ae_response(&outs), Some(nack(3, 4, Some(2), 2)));
    let outs = s.recv(1, ae(3, 6, 3, vec![], 0));
    assert_eq!(ae_response(&outs), Some(nack(3, 6, None, 5)));
    assert_eq!(s.node.c.append_rejections, 2);
    // A stale leader is refused with our term.
    let outs = s.recv(2, ae(2, 0, 0, vec![], 0));
    assert!(matches!(
        ae_response(&outs),
        Some(RaftMsg::AppendEntriesResponse {
            term: 3,
            success: false,
            ..
        })
    ));
    assert_eq!(s.node.observe().leader, Some(NodeId(1)));
}

#[test]
fn leader_backs_up_by_one_or_by_conflict_term_and_ignores_stale_rejections() {
    for fast in [false, true] {
        let mut c = cfg();
        c.fast_backtrack = fast;
        // Leader log: [1, 1, 3, 3] + no-op of term 4.
        let d = disk(3, None, log_of(&[1, 1, 3, 3], 0));
        let (mut s, _) = Solo::new(c, 3, 0, d);
        s.make_leader();
        assert_eq!(s.node.next_index[1], 5);
        // Follower holds [1, 1, 2, 2, 2, 2]: conflict at 4 with term 2 whose first index is 3.
        let outs = s.recv(1, nack(4, 4, Some(2), 3));
        let expect_next = if fast { 3 } else { 4 };
        assert_eq!(s.node.next_index[1], expect_next);
        assert_eq!(appends_to(&outs, 1).len(), 1, "retried at once");
        // The same rejection again is stale now: ignored.
        let outs = s.recv(1, nack(4, 4, Some(2), 3));
        assert_eq!(s.node.next_index[1], expect_next);
        assert!(appends_to(&outs, 1).is_empty());
        // A conflict term the leader also has: jump past the leader's last entry of it.
        let mut c = cfg();
        c.fast_backtrack = fast;
        let d = disk(4, None, log_of(&[1, 1, 2, 2, 4, 4, 4, 4], 0));
        let (mut s, _) = Solo::new(c, 3, 0, d);
        s.make_leader(); // term 5, next = 9
        // Follower: [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]; term 2 at 8, first stored at 3.
        s.recv(1, nack(5, 8, Some(2), 3));
        assert_eq!(s.node.next_index[1], if fast { 5 } else { 8 });
    }
}

/// A follower rejecting a request of an older term answers with our term once it adopted it,
/// but with round 0: the leader takes it as no confirmation and no log information (an old
/// round echoed back once let a restarted leader serve ReadIndex reads from a minority).
#[test]
fn an_answer_to_an_older_terms_request_confirms_nothing() {
    let d = disk(3, None, log_of(&[1, 1, 3, 3], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    s.make_leader(); // term 4
    let before = (s.node.next_index[1], s.node.acked_round[1]);
    // What a follower in term 4 sends for a term-1 request (see on_append_entries).
    let outs = s.recv(
        1,
        RaftMsg::AppendEntriesResponse {
            term: 4,
            success: false,
            prev_log_index: 4,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
            round: 0,
        },
    );
    assert_eq!((s.node.next_index[1], s.node.acked_round[1]), before);
    assert!(appends_to(&outs, 1).is_empty());
    // The follower side: a stale request is answered with round 0.
    let (mut f, _) = Solo::new(cfg(), 3, 1, disk(4, None, vec![]));
    let mut stale = ae(1, 0, 0, vec![], 0);
    if let RaftMsg::AppendEntries { round, .. } = &mut stale {
        *round = 2667;
    }
    let outs = f.recv(0, stale);
    assert!(matches!(
        sends(&outs).as_slice(),
        [(
            0,
            RaftMsg::AppendEntriesResponse {
                term: 4,
                success: false,
                round: 0,
                ..
            }
        )]
    ));
}

#[test]
fn leader_counts_itself_and_commits_only_entries_of_its_term() {
    // §5.4.2: an entry of term 2 replicated on a majority is not committed by counting.
    let d = disk(2, None, log_of(&[1, 2], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    s.make_leader(); // term 3, no-op at 3
    let outs = s.recv(1, ok(3, 0, 2, 1));
    assert_eq!(s.node.observe().commit_index, 0);
    assert!(applied(&outs).is_empty());
    let outs = s.recv(1, ok(3, 2, 3, 1));
    assert_eq!(s.node.observe().commit_index, 3);
    assert_eq!(applied(&outs), vec![1, 2, 3]);
    // matchIndex is monotonic: a reordered older response does not move it back.
    s.recv(1, ok(3, 0, 1, 1));
    assert_eq!(s.node.match_index[1], 3);
    assert_eq!(s.node.next_index[1], 4);
}

#[test]
fn entries_per_message_are_capped() {
    let mut c = cfg();
    c.max_entries_per_message = 4;
    let d = disk(1, None, log_of(&[1; 10], 0));
    let (mut s, _) = Solo::new(c, 3, 0, d);
    s.make_leader();
    s.recv(1, nack(2, 10, None, 1));
    assert_eq!(s.node.next_index[1], 10);
    // Pretend the follower is empty: back up to 1 by rejecting repeatedly. While searching,
    // the probes are empty; right after matchIndex (0) they carry entries again.
    let mut a = vec![];
    for _ in 0..9 {
        let p = s.node.next_index[1] - 1;
        a = appends_to(&s.recv(1, nack(2, p, None, 1)), 1);
        if s.node.next_index[1] > 1 {
            assert_eq!(a, vec![(s.node.next_index[1] - 1, vec![])]);
        }
    }
    assert_eq!(s.node.next_index[1], 1);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].0, a[0].1.len()), (0, 4));
    // That probe is unanswered: the heartbeat checks the same place, empty.
    let outs = s.fire(RaftTimer::Heartbeat);
    assert_eq!(appends_to(&outs, 1), vec![(0, vec![])]);
    // A success for a capped message continues at once with the next batch.
    let outs = s.recv(1, ok(2, 0, 4, 2));
    let a = appends_to(&outs, 1);
    assert_eq!((a[0].0, a[0].1.len()), (4, 4));
}

#[test]
fn duplicate_requests_are_appended_once_and_answered_from_the_session() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    s.make_leader();
    let req = RaftMsg::ClientRequest {
        seq: 1,
        op: Op::Cas {
            key: 0,
            expect: None,
            new: 5,
        },
    };
    s.recv(3, req.clone());
    assert_eq!(s.node.log().len(), 2);
    // Pending in the log: not appended again, no answer yet.
    let outs = s.recv(3, req.clone());
    assert_eq!(s.node.log().len(), 2);
    assert!(sends(&outs).iter().all(|(to, _)| *to != 3));
    // Commit: one answer.
    let outs = s.recv(1, ok(1, 0, 2, 1));
    let replies: Vec<_> = sends(&outs)
        .into_iter()
        .filter(|(to, _)| *to == 3)
        .collect();
    assert_eq!(
        replies,
        vec![(
            3,
            RaftMsg::ClientResponse {
                seq: 1,
                result: Some(OpResult::Cas { ok: true }),
                leader_hint: Some(NodeId(0))
            }
        )]
    );
    // Applied already: answered at once with the original result, nothing appended.
    let outs = s.recv(3, req);
    assert_eq!(s.node.log().len(), 2);
    assert_eq!(sends(&outs), replies);
}

#[test]
fn non_leaders_redirect_with_their_leader_hint() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    let req = RaftMsg::ClientRequest {
        seq: 4,
        op: Op::Get { key: 1 },
    };
    let outs = s.recv(3, req.clone());
    assert_eq!(
        sends(&outs),
        vec![(
            3,
            RaftMsg::ClientResponse {
                seq: 4,
                result: None,
                leader_hint: None
            }
        )]
    );
    s.recv(2, ae(1, 0, 0, vec![], 0));
    let outs = s.recv(3, req);
    assert_eq!(
        sends(&outs),
        vec![(
            3,
            RaftMsg::ClientResponse {
                seq: 4,
                result: None,
                leader_hint: Some(NodeId(2))
            }
        )]
    );
    assert_eq!(s.node.c.redirects, 2);
}

#[test]
fn batch_requests_sends_new_entries_with_the_next_heartbeat() {
    for batch in [false, true] {
        let mut c = cfg();
        c.batch_requests = batch;
        let (mut s, _) = Solo::new(c, 3, 0, RaftDisk::default());
        s.make_leader();
        s.recv(1, ok(1, 0, 1, 1));
        s.recv(2, ok(1, 0, 1, 1));
        let outs = s.recv(
            3,
            RaftMsg::ClientRequest {
                seq: 1,
                op: Op::Put { key: 1, value: 1 },
            },
        );
        let immediate = appends_to(&outs, 1);
        if batch {
            assert!(immediate.is_empty());
        } else {
            assert_eq!(immediate, vec![(1, vec![s.node.log()[1]])]);
        }
        // The heartbeat carries it under batching; otherwise it was sent: an empty request.
        let outs = s.fire(RaftTimer::Heartbeat);
        if batch {
            assert_eq!(appends_to(&outs, 1), vec![(1, vec![s.node.log()[1]])]);
        } else {
            assert_eq!(appends_to(&outs, 1), vec![(2, vec![])]);
        }
    }
}

#[test]
fn lazy_update_retries_a_rejected_append_at_the_next_heartbeat() {
    for lazy in [false, true] {
        let mut c = cfg();
        c.lazy_update = lazy;
        let d = disk(1, None, log_of(&[1, 1], 0));
        let (mut s, _) = Solo::new(c, 3, 0, d);
        s.make_leader();
        let outs = s.recv(1, nack(2, 2, None, 2));
        assert_eq!(s.node.next_index[1], 2);
        let a = appends_to(&outs, 1);
        if lazy {
            assert!(a.is_empty());
        } else {
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].0, 1);
        }
        let outs = s.fire(RaftTimer::Heartbeat);
        assert_eq!(appends_to(&outs, 1)[0].0, 1);
    }
}

fn get(seq: u64) -> RaftMsg {
    RaftMsg::ClientRequest {
        seq,
        op: Op::Get { key: 1 },
    }
}

fn read_reply(outs: &Outs) -> Option<OpResult> {
    sends(outs).into_iter().find_map(|(to, m)| match m {
        RaftMsg::ClientResponse { result, .. } if to == 3 => result,
        _ => None,
    })
}

#[test]
fn read_index_serves_reads_without_appending_after_a_fresh_round() {
    let mut c = cfg();
    c.read_index = true;
    let (mut s, _) = Solo::new(c, 3, 0, RaftDisk::default());
    s.make_leader();
    let r0 = s.node.round;
    // No entry of this term committed yet: the read waits, nothing is appended.
    let outs = s.recv(3, get(1));
    assert!(read_reply(&outs).is_none());
    assert_eq!(s.node.log().len(), 1);
    // The no-op commits (response to round r0); a fresh round is started for the read.
    let outs = s.recv(1, ok(1, 0, 1, r0));
    assert!(
        read_reply(&outs).is_none(),
        "a round older than the read does not confirm"
    );
    let r1 = s.node.round;
    assert!(r1 > r0);
    assert_eq!(
        appends_to(&outs, 1).len(),
        1,
        "confirmation round sent at once"
    );
    // A stale ack (old round) does not confirm; a fresh one does.
    let outs = s.recv(2, ok(1, 1, 1, r0));
    assert!(read_reply(&outs).is_none());
    let outs = s.recv(2, ok(1, 1, 1, r1));
    assert_eq!(read_reply(&outs), Some(OpResult::Value { value: None }));
    assert_eq!(s.node.log().len(), 1, "reads never touch the log");
    assert_eq!(s.node.c.reads_served, 1);
}

#[test]
fn reverse_apply_off_applies_in_order_after_restart() {
    // After a restart the commit index is relearnt and everything is applied again, in order.
    let d = disk(1, None, log_of(&[1, 1, 1], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    let outs = s.recv(1, ae(1, 3, 1, vec![], 3));
    assert_eq!(applied(&outs), vec![1, 2, 3]);
    s.restart();
    assert_eq!(s.node.last_applied(), 0);
    let outs = s.recv(1, ae(1, 3, 1, vec![], 3));
    assert_eq!(applied(&outs), vec![1, 2, 3]);
}

// ----- client proxy -----------------------------------------------------------------------

struct SoloClient {
    raft: Raft,
    cluster: Cluster,
    node: super::super::RaftClient,
    rng: Rng,
}

impl SoloClient {
    fn new(c: RaftConfig, n: usize) -> SoloClient {
        let cluster = crate::testkit::cluster(n, 1);
        let raft = Raft::new(c, &cluster).unwrap();
        let node = raft.client(NodeId(n as u32));
        SoloClient {
            raft,
            cluster,
            node,
            rng: stream(3, purpose::PROTOCOL, 0),
        }
    }
    fn step(&mut self, input: Input<RaftMsg, RaftTimer>) -> Outs {
        let _ = &self.raft;
        let mut out = Out::<Raft>::default();
        let mut ctx = Ctx {
            me: NodeId(self.cluster.servers.len() as u32),
            now: 0,
            rng: &mut self.rng,
            cluster: &self.cluster,
        };
        self.node.step(&mut ctx, input, &mut out);
        out.drain().collect()
    }
    fn reply(
        &mut self,
        from: usize,
        seq: u64,
        result: Option<OpResult>,
        hint: Option<usize>,
    ) -> Outs {
        self.step(Input::Packet {
            from: NodeId(from as u32),
            msg: RaftMsg::ClientResponse {
                seq,
                result,
                leader_hint: hint.map(|h| NodeId(h as u32)),
            },
        })
    }
}

fn request_to(outs: &Outs) -> Option<(usize, u64)> {
    sends(outs).into_iter().find_map(|(to, m)| match m {
        RaftMsg::ClientRequest { seq, .. } => Some((to, seq)),
        _ => None,
    })
}

fn completes(outs: &Outs) -> Vec<(u64, Option<OpResult>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Complete { id, result } => Some((*id, *result)),
            _ => None,
        })
        .collect()
}

#[test]
fn client_proxy_follows_hints_retries_on_timeout_and_keeps_fifo_order() {
    let mut c = SoloClient::new(cfg(), 5);
    c.step(Input::Start);
    let outs = c.step(Input::Request {
        id: 10,
        op: Op::Put { key: 1, value: 1 },
    });
    let (first, seq) = request_to(&outs).unwrap();
    assert_eq!(seq, 1);
    assert!(
        timers(&outs)
            .iter()
            .any(|(t, a)| *t == RaftTimer::ClientRetry && *a == 300 * MS)
    );
    // A second operation waits behind the first.
    let outs = c.step(Input::Request {
        id: 11,
        op: Op::Get { key: 1 },
    });
    assert!(request_to(&outs).is_none());
    // "Not leader, try h" -> resent to h with the same seq.
    let h = (first + 1) % 5;
    let outs = c.reply(first, 1, None, Some(h));
    assert_eq!(request_to(&outs), Some((h, 1)));
    // Timeout -> leader forgotten, resent to another server with the same seq.
    let outs = c.step(Input::Timer(RaftTimer::ClientRetry));
    let (t, seq) = request_to(&outs).unwrap();
    assert_ne!(t, h);
    assert_eq!(seq, 1);
    // "Not leader" without a hint -> another random server, excluding the one that said no.
    let outs = c.reply(t, 1, None, None);
    let (t2, _) = request_to(&outs).unwrap();
    assert_ne!(t2, t);
    // Replies to old sequence numbers are ignored.
    assert!(c.reply(2, 0, Some(OpResult::Written), None).is_empty());
    // Success: complete, remember the replier, start the next operation there with seq 2.
    let outs = c.reply(4, 1, Some(OpResult::Written), None);
    assert_eq!(completes(&outs), vec![(10, Some(OpResult::Written))]);
    assert_eq!(request_to(&outs), Some((4, 2)));
    assert_eq!(c.node.leader(), Some(NodeId(4)));
    let mut v = Vec::new();
    c.node.counters(&mut |k, x| v.push((k, x)));
    assert!(v.contains(&("ops_submitted", 2)));
    assert!(v.contains(&("retries", 3)));
    assert!(v.contains(&("timeouts", 1)));
}

#[test]
fn client_proxy_picks_every_server_at_random() {
    // The 2015 prototype never picked the last server; every server must be reachable.
    let mut seen = [0u32; 3];
    let mut c = SoloClient::new(cfg(), 3);
    c.step(Input::Start);
    c.step(Input::Request {
        id: 1,
        op: Op::Get { key: 0 },
    });
    for _ in 0..300 {
        let outs = c.step(Input::Timer(RaftTimer::ClientRetry));
        seen[request_to(&outs).unwrap().0] += 1;
    }
    assert!(seen.iter().all(|&k| k > 50), "{seen:?}");
    // A one-server cluster works (the 2015 draw crashed).
    let mut c = SoloClient::new(cfg(), 1);
    let outs = c.step(Input::Request {
        id: 1,
        op: Op::Get { key: 0 },
    });
    assert_eq!(request_to(&outs), Some((0, 1)));
    let outs = c.step(Input::Timer(RaftTimer::ClientRetry));
    assert_eq!(request_to(&outs), Some((0, 1)));
}

#[test]
fn client_proxy_gives_up_after_max_attempts() {
    let mut k = cfg();
    k.client_max_attempts = Some(2);
    let mut c = SoloClient::new(k, 3);
    c.step(Input::Request {
        id: 7,
        op: Op::Put { key: 0, value: 1 },
    });
    c.step(Input::Request {
        id: 8,
        op: Op::Put { key: 0, value: 2 },
    });
    let outs = c.step(Input::Timer(RaftTimer::ClientRetry));
    assert_eq!(request_to(&outs).map(|r| r.1), Some(1));
    let outs = c.step(Input::Timer(RaftTimer::ClientRetry));
    assert_eq!(completes(&outs), vec![(7, None)]);
    assert_eq!(
        request_to(&outs).map(|r| r.1),
        Some(2),
        "moves on with a new seq"
    );
}

/// An entry's identity is computed once, at construction, and an entry read back from its
/// encoding (which does not carry the digest) has the same identity.
#[test]
fn entry_identity_survives_encoding() {
    let e = entry(4, 17);
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 2, "{json}");
    let back: Entry = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
    assert_eq!(back.id(), e.id());
    assert_eq!(e.id().digest, e.cmd.unwrap().digest());
    assert_eq!(Entry::new(4, None).id().digest, 0);
}

/// A follower's write of part of a batch shares the message's entries and encodes as just the
/// entries it stores.
#[test]
fn a_suffix_of_a_batch_encodes_as_its_entries() {
    let batch: std::sync::Arc<[Entry]> = vec![entry(1, 1), entry(1, 2), entry(2, 3)].into();
    let run = crate::raft::EntryRun::suffix(batch.clone(), 1);
    assert_eq!(&*run, &batch[1..]);
    assert_eq!(
        serde_json::to_value(&run).unwrap(),
        serde_json::to_value(&batch[1..]).unwrap()
    );
    let back: crate::raft::EntryRun =
        serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
    assert_eq!(back, run);
    assert!(crate::raft::EntryRun::suffix(batch, 3).is_empty());
}

fn put(seq: u64) -> RaftMsg {
    RaftMsg::ClientRequest {
        seq,
        op: Op::Put { key: 1, value: seq },
    }
}

/// A three-server leader of term 1 (empty log, no-op at 1) whose follower 1 acknowledged the
/// no-op, so that it replicates to it optimistically.
fn replicating_leader(c: RaftConfig) -> Solo {
    let (mut s, _) = Solo::new(c, 3, 0, RaftDisk::default());
    s.make_leader();
    s.recv(1, ok(1, 0, 1, 1));
    assert!(s.node.replicating[1] && !s.node.replicating[2]);
    s
}

#[test]
fn a_replicating_follower_gets_each_entry_once() {
    let mut s = replicating_leader(cfg());
    for seq in 1..=3 {
        let outs = s.recv(3, put(seq));
        // Only the new entry, after the one sent before it (not yet acknowledged).
        assert_eq!(
            appends_to(&outs, 1),
            vec![(seq, vec![s.node.log()[seq as usize]])]
        );
    }
    assert_eq!(s.node.next_index[1], 5);
    assert_eq!(s.node.inflight[1].len(), 3);
    // A heartbeat carries nothing new: an empty request checking the last entry sent.
    let outs = s.fire(RaftTimer::Heartbeat);
    assert_eq!(appends_to(&outs, 1), vec![(4, vec![])]);
    // The probing follower 2 (no answer yet) gets an empty request checking the same place.
    assert_eq!(appends_to(&outs, 2), vec![(0, vec![])]);
    // Answers free the window.
    s.recv(1, ok(1, 3, 4, 2));
    assert!(s.node.inflight[1].is_empty());
    assert_eq!(s.node.match_index[1], 4);
}

#[test]
fn a_probing_follower_gets_one_request_at_a_time() {
    let (mut s, _) = Solo::new(cfg(), 3, 0, RaftDisk::default());
    s.make_leader();
    // The election's round probed follower 1 with the no-op; new entries wait for its answer.
    let outs = s.recv(3, put(1));
    assert!(appends_to(&outs, 1).is_empty());
    // A heartbeat checks the same place without entries (the probe may still be on its way).
    let outs = s.fire(RaftTimer::Heartbeat);
    assert_eq!(appends_to(&outs, 1), vec![(0, vec![])]);
    // Its answer (the probe was lost) turns the follower to replicating, and everything after
    // the match goes at once.
    let outs = s.recv(1, ok(1, 0, 0, 2));
    assert!(s.node.replicating[1]);
    assert_eq!(appends_to(&outs, 1), vec![(0, s.node.log().to_vec())]);
    assert_eq!(s.node.next_index[1], 3);
}

#[test]
fn a_full_window_holds_entries_back_until_answers_arrive() {
    let mut c = cfg();
    c.max_inflight_messages = 2;
    let mut s = replicating_leader(c);
    assert_eq!(appends_to(&s.recv(3, put(1)), 1).len(), 1);
    assert_eq!(appends_to(&s.recv(3, put(2)), 1).len(), 1);
    // Window full: the third entry waits; a heartbeat still goes, empty.
    assert!(appends_to(&s.recv(3, put(3)), 1).is_empty());
    let outs = s.fire(RaftTimer::Heartbeat);
    assert_eq!(appends_to(&outs, 1), vec![(3, vec![])]);
    // The answer to the first request makes room: the held entry goes at once.
    let outs = s.recv(1, ok(1, 1, 2, 2));
    assert_eq!(appends_to(&outs, 1), vec![(3, vec![s.node.log()[3]])]);
    assert_eq!(
        s.node.inflight[1].iter().copied().collect::<Vec<_>>(),
        [3, 4]
    );
}

#[test]
fn a_gap_sends_a_replicating_follower_back_to_probing_from_its_match_index() {
    let mut s = replicating_leader(cfg());
    for seq in 1..=3 {
        s.recv(3, put(seq));
    }
    // The request carrying entry 2 was lost: the follower rejects the next one (prev 2).
    let outs = s.recv(1, nack(1, 2, None, 2));
    assert!(!s.node.replicating[1]);
    assert_eq!(s.node.next_index[1], 2);
    assert_eq!(appends_to(&outs, 1), vec![(1, s.node.log()[1..4].to_vec())]);
    // Its rejection of the request after that is stale now, and new entries wait.
    let outs = s.recv(1, nack(1, 3, None, 2));
    assert!(appends_to(&outs, 1).is_empty());
    assert!(appends_to(&s.recv(3, put(4)), 1).is_empty());
    assert_eq!(s.node.next_index[1], 2);
    // The probe's answer resumes replication with what came since.
    let outs = s.recv(1, ok(1, 1, 4, 2));
    assert!(s.node.replicating[1]);
    assert_eq!(appends_to(&outs, 1), vec![(4, vec![s.node.log()[4]])]);
    // A rejection at or below matchIndex is older than what the follower told since: ignored.
    s.recv(1, nack(1, 3, None, 2));
    assert!(s.node.replicating[1]);
}

#[test]
fn resend_unacknowledged_repeats_the_entries_not_yet_acknowledged() {
    // Resending 2 entries; and 16 with batches of 2, which acts as 2 (a larger value would send
    // the same capped batch again and again).
    for (cap, resend) in [(64, 2), (2, 16)] {
        let mut c = cfg();
        c.max_entries_per_message = cap;
        c.resend_unacknowledged = resend;
        let mut s = replicating_leader(c);
        let log = |s: &Solo| s.node.log().to_vec();
        assert_eq!(
            appends_to(&s.recv(3, put(1)), 1),
            vec![(1, log(&s)[1..2].to_vec())]
        );
        assert_eq!(
            appends_to(&s.recv(3, put(2)), 1),
            vec![(1, log(&s)[1..3].to_vec())]
        );
        // Three unacknowledged entries are more than 2: the next is sent once, after the others.
        assert_eq!(
            appends_to(&s.recv(3, put(3)), 1),
            vec![(3, log(&s)[3..4].to_vec())]
        );
        assert_eq!(s.node.inflight[1].len(), 3);
    }
}

#[test]
fn a_full_window_is_checked_after_what_was_sent_even_when_resending() {
    // The empty request of a full window checks nextIndex - 1: checking matchIndex would always
    // succeed, never reopen the window, and never reveal the lost request.
    let mut c = cfg();
    c.max_inflight_messages = 1;
    c.resend_unacknowledged = 4;
    let mut s = replicating_leader(c);
    assert_eq!(
        appends_to(&s.recv(3, put(1)), 1),
        vec![(1, vec![s.node.log()[1]])]
    );
    assert!(appends_to(&s.recv(3, put(2)), 1).is_empty());
    let outs = s.fire(RaftTimer::Heartbeat);
    assert_eq!(appends_to(&outs, 1), vec![(2, vec![])]);
    // The request was lost: the follower rejects, and gets everything after its match.
    let outs = s.recv(1, nack(1, 2, None, 2));
    assert_eq!(appends_to(&outs, 1), vec![(1, s.node.log()[1..3].to_vec())]);
}

#[test]
fn a_late_answer_to_an_older_request_does_not_end_a_probe() {
    // Leader of term 2 over a log of two entries: it probes at index 2 (with its no-op, 3).
    let d = disk(1, None, log_of(&[1, 1], 0));
    let (mut s, _) = Solo::new(cfg(), 3, 0, d);
    s.make_leader();
    assert_eq!(s.node.next_index[1], 3);
    // A success up to 1 (an answer to an older request of this term) raises matchIndex only.
    let outs = s.recv(1, ok(2, 0, 1, 1));
    assert_eq!(s.node.match_index[1], 1);
    assert!(!s.node.replicating[1]);
    assert!(appends_to(&outs, 1).is_empty());
    // The probe's own answer ends it.
    s.recv(1, ok(2, 2, 3, 1));
    assert!(s.node.replicating[1]);
}

#[test]
fn a_probe_on_its_way_counts_as_the_first_request_of_the_window() {
    let mut s = replicating_leader(cfg());
    for seq in 1..=3 {
        s.recv(3, put(seq));
    }
    // The request with entry 3 overtook the one with entry 2: rejected, and the probe from
    // matchIndex carries entries 2 to 4 again.
    let outs = s.recv(1, nack(1, 2, None, 2));
    assert_eq!(appends_to(&outs, 1), vec![(1, s.node.log()[1..4].to_vec())]);
    // The overtaken request's answer ends the probe; its entries 3 and 4 are not sent a third
    // time: the probe is in the window.
    let outs = s.recv(1, ok(1, 1, 2, 2));
    assert!(s.node.replicating[1]);
    assert!(appends_to(&outs, 1).is_empty());
    assert_eq!(s.node.next_index[1], 5);
    assert_eq!(s.node.inflight[1].iter().copied().collect::<Vec<_>>(), [4]);
    assert_eq!(
        appends_to(&s.recv(3, put(4)), 1),
        vec![(4, vec![s.node.log()[4]])]
    );
}

fn ae_responses(outs: &Outs) -> Vec<(bool, u64, u64)> {
    sends(outs)
        .into_iter()
        .filter_map(|(_, m)| match m {
            RaftMsg::AppendEntriesResponse {
                success,
                prev_log_index,
                match_index,
                ..
            } => Some((success, prev_log_index, match_index)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_holds_requests_that_arrive_ahead_of_a_gap() {
    let l = log_of(&[1, 1, 1, 1], 0);
    let (mut s, _) = Solo::new(cfg(), 3, 0, disk(1, None, l[..1].to_vec()));
    // Entries 3-4 overtook entry 2: held, no answer yet.
    let outs = s.recv(1, ae(1, 2, 1, l[2..4].to_vec(), 0));
    assert!(ae_responses(&outs).is_empty());
    assert_eq!(counters(&s.node)["appends_held"], 1);
    // An empty request with a gap is never held (a lost request must show).
    let outs = s.recv(1, ae(1, 3, 1, vec![], 0));
    assert_eq!(ae_responses(&outs), vec![(false, 3, 0)]);
    // Entry 2 arrives: both requests are answered, in order, as if they had come in order.
    let outs = s.recv(1, ae(1, 1, 1, l[1..2].to_vec(), 0));
    assert_eq!(ae_responses(&outs), vec![(true, 1, 2), (true, 2, 4)]);
    assert_eq!(s.node.log(), &l[..]);
    // A new term forgets what is held.
    s.recv(1, ae(1, 5, 1, log_of(&[1], 50), 0));
    assert_eq!(s.node.held.len(), 1);
    s.recv(2, rv(2, 4, 1));
    assert!(s.node.held.is_empty());
    // With no room to hold, the request is rejected at once.
    let mut c = cfg();
    c.reorder_buffer = 0;
    let (mut s, _) = Solo::new(c, 3, 0, disk(1, None, l[..1].to_vec()));
    let outs = s.recv(1, ae(1, 2, 1, l[2..4].to_vec(), 0));
    assert_eq!(ae_responses(&outs), vec![(false, 2, 0)]);
}
