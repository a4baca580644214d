//! Log compaction: snapshots at the threshold, log indexing at the snapshot boundary,
//! InstallSnapshot (lagging followers, matching suffixes, stale and known snapshots), recovery
//! from a snapshot on disk, client sessions across snapshots, and the randomized safety test
//! with tiny thresholds.

use super::*;
use crate::raft::Snapshot;
use coracle_core::{EntryId, KvStore, MS, Message, OpResult, Role};
use std::sync::Arc;

fn with_threshold(t: u64) -> RaftConfig {
    RaftConfig {
        snapshot_threshold: Some(t),
        ..cfg()
    }
}

/// The (success, match_index) of the first AppendEntries response in `outs`.
fn ae_result(outs: &Outs) -> Option<(bool, u64)> {
    sends(outs).into_iter().find_map(|(_, m)| match m {
        RaftMsg::AppendEntriesResponse {
            success,
            match_index,
            ..
        } => Some((success, match_index)),
        _ => None,
    })
}

fn snapshot_writes(outs: &Outs) -> Vec<Arc<Snapshot>> {
    writes(outs)
        .into_iter()
        .filter_map(|w| match w {
            RaftWrite::Snapshot { snapshot } => Some(snapshot),
            _ => None,
        })
        .collect()
}

fn restored(outs: &Outs) -> Vec<(u64, EntryId)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Restored { index, entry } => Some((*index, *entry)),
            _ => None,
        })
        .collect()
}

/// The state machine after applying `log`.
fn kv_of(log: &[Entry]) -> KvStore {
    let mut kv = KvStore::default();
    for e in log {
        if let Some(c) = &e.cmd {
            kv.apply(c);
        }
    }
    kv
}

/// A snapshot of `log[..index]`.
fn snap_of(log: &[Entry], index: u64) -> Arc<Snapshot> {
    let k = index as usize;
    Arc::new(Snapshot::new(index, log[k - 1].id(), kv_of(&log[..k])))
}

fn install(term: u64, snapshot: Arc<Snapshot>) -> RaftMsg {
    RaftMsg::InstallSnapshot {
        term,
        snapshot,
        round: 9,
    }
}

/// The first InstallSnapshot response in `outs`: (term, match_index, round).
fn install_response(outs: &Outs) -> Option<(u64, u64, u64)> {
    sends(outs).into_iter().find_map(|(_, m)| match m {
        RaftMsg::InstallSnapshotResponse {
            term,
            match_index,
            round,
        } => Some((term, match_index, round)),
        _ => None,
    })
}

#[test]
fn config_default_null_and_validation() {
    assert_eq!(cfg().snapshot_threshold, Some(10_000));
    let c: RaftConfig = serde_json::from_value(serde_json::json!({"snapshot_threshold": null}))
        .expect("null parses");
    assert_eq!(c.snapshot_threshold, None);
    let c: RaftConfig =
        serde_json::from_value(serde_json::json!({"snapshot_threshold": 7})).expect("parses");
    assert_eq!(c.snapshot_threshold, Some(7));
}

#[test]
fn a_follower_snapshots_at_the_threshold_and_trims_its_log() {
    let l = log_of(&[1, 1, 1, 2, 2, 2, 2], 0);
    let (mut s, _) = Solo::new(with_threshold(3), 3, 0, RaftDisk::default());
    // Two entries committed: below the threshold, nothing happens.
    let outs = s.recv(1, ae(2, 0, 0, l[..2].to_vec(), 2));
    assert_eq!(applied(&outs), vec![1, 2]);
    assert!(snapshot_writes(&outs).is_empty());
    // Five committed: the threshold is crossed, the snapshot is taken at the last applied
    // index (5), after the entries are applied, and persisted.
    let outs = s.recv(1, ae(2, 2, 1, l[2..6].to_vec(), 5));
    assert_eq!(applied(&outs), vec![3, 4, 5]);
    let w = snapshot_writes(&outs);
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].index, w[0].term), (5, 2));
    assert_eq!(w[0].last(), l[4].id());
    assert_eq!(w[0].kv, kv_of(&l[..5]));
    assert_eq!(counters(&s.node)["snapshots_taken"], 1);
    // The in-memory log keeps only entry 6; the disk image likewise.
    assert_eq!(s.node.snapshot_index(), 5);
    assert_eq!(s.node.log(), &l[5..6]);
    assert_eq!(s.disk.snapshot_index(), 5);
    assert_eq!(s.disk.log, l[5..6].to_vec());
    // Observation and entry identities across the boundary.
    let o = s.node.observe();
    assert_eq!((o.log_len, o.last_log_term, o.compacted), (6, 2, 5));
    assert_eq!((o.commit_index, s.node.last_applied()), (5, 5));
    assert_eq!(s.node.entry(4), None);
    assert_eq!(s.node.entry(5), Some(l[4].id()));
    assert_eq!(s.node.entry(6), Some(l[5].id()));
    assert_eq!(s.node.entry(7), None);
    assert_eq!(s.node.term_at(5), 2);
    assert_eq!(s.node.term_at(6), 2);
    assert_eq!(s.node.report(&|n| n.0.into())["snapshot_index"], 5);

    // A request anchored at the snapshot's last entry passes the consistency check.
    let outs = s.recv(1, ae(2, 5, 2, vec![], 5));
    assert_eq!(ae_result(&outs), Some((true, 5)));
    // One anchored inside the snapshot skips the entries it covers, checks the rest and
    // appends what is new.
    let outs = s.recv(1, ae(2, 3, 1, l[3..7].to_vec(), 5));
    assert_eq!(ae_result(&outs), Some((true, 7)));
    assert_eq!(
        writes(&outs),
        vec![RaftWrite::Append {
            first_index: 7,
            entries: vec![l[6]].into()
        }]
    );
    assert_eq!(s.node.log(), &l[5..7]);
    // One entirely inside the snapshot is acknowledged up to the snapshot.
    let outs = s.recv(1, ae(2, 1, 1, l[1..3].to_vec(), 5));
    assert_eq!(ae_result(&outs), Some((true, 5)));
    assert!(writes(&outs).is_empty());
    // A wrong term at the snapshot boundary + 1 is a real conflict: rejected with a hint
    // that stays above the snapshot.
    let outs = s.recv(1, ae(2, 6, 1, vec![], 5));
    assert_eq!(ae_result(&outs), Some((false, 0)));
    // Commit the rest: three more applied would be needed for the next snapshot.
    let outs = s.recv(1, ae(2, 7, 2, vec![], 7));
    assert_eq!(applied(&outs), vec![6, 7]);
    assert!(snapshot_writes(&outs).is_empty());
    assert!(s.node.log().len() == 2);
}

/// `snapshot_trailing`: the log keeps that many entries below the snapshot (in memory; the
/// disk image compacts to the snapshot).
#[test]
fn trailing_entries_stay_below_the_snapshot() {
    let l = log_of(&[1, 1, 1, 2, 2, 2, 2], 0);
    let mut c = with_threshold(3);
    c.snapshot_trailing = 2;
    let (mut s, _) = Solo::new(c, 3, 0, RaftDisk::default());
    let outs = s.recv(1, ae(2, 0, 0, l[..6].to_vec(), 5));
    assert_eq!(applied(&outs), vec![1, 2, 3, 4, 5]);
    assert_eq!(snapshot_writes(&outs).len(), 1);
    assert_eq!(s.node.snapshot_index(), 5);
    assert_eq!(s.node.log_base(), 3);
    assert_eq!(s.node.log(), &l[3..6]);
    assert_eq!(s.disk.snapshot_index(), 5);
    assert_eq!(s.disk.log, l[5..6].to_vec());
    let o = s.node.observe();
    assert_eq!((o.log_len, o.compacted), (6, 3));
    assert_eq!(s.node.entry(2), None);
    assert_eq!(s.node.entry(3), Some(l[2].id()));
    assert_eq!(s.node.entry(4), Some(l[3].id()));
    assert_eq!(s.node.term_at(3), 1);
    assert_eq!(s.node.report(&|n| n.0.into())["snapshot_index"], 5);
    // The next snapshot (three more applied) keeps two below it again.
    let outs = s.recv(1, ae(2, 6, 2, vec![l[6], entry(2, 8), entry(2, 9)], 8));
    assert_eq!(snapshot_writes(&outs).len(), 1);
    assert_eq!((s.node.snapshot_index(), s.node.log_base()), (8, 6));
}

/// Three servers under a 300-operation workload with 1 ms disks; a follower is down for
/// 1.5 s (`while_down` looks at the cluster just before it recovers), then 2.5 s more run.
/// Safety and applied prefixes are checked; returns the simulation, the first leader and the
/// follower.
fn follower_down_for_a_while(
    c: RaftConfig,
    seed: u64,
    while_down: impl Fn(&Sim, usize, usize),
) -> (Sim, usize, usize) {
    let mut sim = Sim::new(c, 3, 2, seed);
    sim.storage_latency = MS;
    sim.workload = workload(150, 5);
    sim.start_all();
    let l = settle(&mut sim);
    let f = (l + 1) % 3;
    sim.crash(f);
    sim.run_for(1500 * MS);
    while_down(&sim, l, f);
    sim.recover(f);
    sim.run_for(2500 * MS);
    sim.assert_safe();
    sim.assert_applied_prefixes();
    (sim, l, f)
}

/// With trailing entries, a follower that fell a little behind the leader's snapshot is sent
/// entries, not the snapshot.
#[test]
fn trailing_entries_spare_a_slightly_late_follower_the_snapshot() {
    for seed in 0..5 {
        let mut c = with_threshold(10);
        c.snapshot_trailing = 1000;
        let (sim, _, f) = follower_down_for_a_while(c, seed, |sim, l, f| {
            assert!(
                sim.server(l).snapshot_index() > sim.nodes[f].disk.snapshot_index() + 50,
                "seed {seed}"
            );
        });
        assert_eq!(sim.kind("install_snapshot"), 0, "seed {seed}");
        assert_eq!(sim.completions.len(), 300, "seed {seed}");
        let l = sim.leader().expect("a leader");
        assert_eq!(sim.server(f).kv(), sim.server(l).kv(), "seed {seed}");
    }
}

#[test]
fn without_a_threshold_nothing_is_compacted() {
    let l = log_of(&[1; 40], 0);
    let c = RaftConfig {
        snapshot_threshold: None,
        ..cfg()
    };
    let (mut s, _) = Solo::new(c, 3, 0, RaftDisk::default());
    let outs = s.recv(1, ae(1, 0, 0, l.clone(), 40));
    assert_eq!(applied(&outs).len(), 40);
    assert!(snapshot_writes(&outs).is_empty());
    assert_eq!(s.node.observe().compacted, 0);
    assert_eq!(s.node.log().len(), 40);
}

#[test]
fn a_leader_sends_its_snapshot_to_a_follower_whose_next_entry_it_compacted() {
    let mut c = with_threshold(3);
    c.fast_backtrack = true;
    let (mut s, _) = Solo::new(c, 3, 0, RaftDisk::default());
    s.make_leader(); // term 1, no-op at 1
    for seq in 1..=4 {
        s.recv(
            3,
            RaftMsg::ClientRequest {
                seq,
                op: Op::Put {
                    key: seq as u32,
                    value: seq,
                },
            },
        );
    }
    // Follower 1 acknowledges everything: entries 1..=5 commit, are applied, and the leader
    // snapshots at 5.
    let outs = s.recv(
        1,
        RaftMsg::AppendEntriesResponse {
            term: 1,
            success: true,
            prev_log_index: 0,
            match_index: 5,
            conflict_term: None,
            conflict_index: 0,
            round: 1,
        },
    );
    assert_eq!(applied(&outs), vec![1, 2, 3, 4, 5]);
    assert_eq!(snapshot_writes(&outs).len(), 1);
    assert_eq!(s.node.snapshot_index(), 5);
    assert!(s.node.log().is_empty());
    assert_eq!(s.node.observe().log_len, 5);
    // Follower 2 has an empty log: its rejection sends nextIndex to 1, inside the snapshot.
    let outs = s.recv(
        2,
        RaftMsg::AppendEntriesResponse {
            term: 1,
            success: false,
            prev_log_index: 0,
            match_index: 0,
            conflict_term: None,
            conflict_index: 1,
            round: 1,
        },
    );
    let m = sends(&outs);
    assert_eq!(m.len(), 1);
    let RaftMsg::InstallSnapshot {
        term: 1,
        snapshot,
        round,
    } = &m[0].1
    else {
        panic!("expected InstallSnapshot, got {m:?}");
    };
    assert_eq!(m[0].0, 2);
    assert_eq!((snapshot.index, snapshot.term), (5, 1));
    assert_eq!(&snapshot.kv, s.node.kv());
    assert_eq!(m[0].1.wire_size(), 64 + snapshot.size);
    assert_eq!(counters(&s.node)["snapshots_sent"], 1);
    let round = *round;
    // While it is on its way, heartbeats carry an empty AppendEntries anchored at the
    // snapshot instead of a second copy.
    let outs = s.fire(RaftTimer::Heartbeat);
    let to2: Vec<_> = sends(&outs).into_iter().filter(|(t, _)| *t == 2).collect();
    assert_eq!(to2.len(), 1);
    assert!(matches!(
        &to2[0].1,
        RaftMsg::AppendEntries { prev_log_index: 5, prev_log_term: 1, entries, .. } if entries.is_empty()
    ));
    // After election_timeout_min without an answer, the snapshot is sent again; the next
    // copy waits twice as long (a slow link must not queue copies ahead of heartbeats).
    let snapshot_to_2 = |outs: &Outs| {
        sends(outs)
            .iter()
            .any(|(t, m)| *t == 2 && matches!(m, RaftMsg::InstallSnapshot { .. }))
    };
    s.now += 150 * MS;
    assert!(snapshot_to_2(&s.fire(RaftTimer::Heartbeat)));
    s.now += 150 * MS;
    assert!(!snapshot_to_2(&s.fire(RaftTimer::Heartbeat)));
    s.now += 150 * MS;
    assert!(snapshot_to_2(&s.fire(RaftTimer::Heartbeat)));
    assert_eq!(counters(&s.node)["snapshots_sent"], 3);
    // The fourth would wait 4×; but an answer to a round sent after the last copy (the
    // follower is reachable: it was down, say) brings the wait back to 1×.
    assert!(!snapshot_to_2(&s.fire(RaftTimer::Heartbeat)));
    let later = s.node.round;
    s.recv(
        2,
        RaftMsg::AppendEntriesResponse {
            term: 1,
            success: false,
            prev_log_index: 5,
            match_index: 0,
            conflict_term: None,
            conflict_index: 1,
            round: later,
        },
    );
    s.now += 150 * MS;
    assert!(snapshot_to_2(&s.fire(RaftTimer::Heartbeat)));
    assert_eq!(counters(&s.node)["snapshots_sent"], 4);
    // A new entry, then the follower's answer: matchIndex and nextIndex move to the
    // snapshot and the leader continues at once with the entries after it.
    s.recv(
        3,
        RaftMsg::ClientRequest {
            seq: 5,
            op: Op::Get { key: 1 },
        },
    );
    let outs = s.recv(
        2,
        RaftMsg::InstallSnapshotResponse {
            term: 1,
            match_index: 5,
            round,
        },
    );
    assert_eq!(s.node.match_index[2], 5);
    // (nextIndex already moved past the entry sent optimistically below.)
    assert_eq!(s.node.next_index[2], 7);
    assert!(s.node.replicating[2]);
    assert!(s.node.recent_active[2]);
    // (The later round answered above stays the highest acknowledged.)
    assert!(round < later);
    assert_eq!(s.node.acked_round[2], later);
    let a: Vec<_> = sends(&outs)
        .into_iter()
        .filter_map(|(t, m)| match m {
            RaftMsg::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            } if t == 2 => Some((prev_log_index, prev_log_term, entries.len())),
            _ => None,
        })
        .collect();
    assert_eq!(a, vec![(5, 1, 1)]);
    // A response of a higher term makes the leader step down.
    s.recv(
        2,
        RaftMsg::InstallSnapshotResponse {
            term: 4,
            match_index: 0,
            round: 1,
        },
    );
    assert_eq!(s.node.observe().role, Role::Follower);
    assert_eq!(s.node.term(), 4);
}

#[test]
fn install_snapshot_keeps_a_matching_suffix() {
    // The follower holds 1..=6; the leader's snapshot ends at 4 with the same term.
    let l = log_of(&[1, 1, 2, 2, 2, 2], 0);
    let (mut s, _) = Solo::new(cfg(), 3, 0, disk(2, None, l.clone()));
    let outs = s.recv(1, install(2, snap_of(&l, 4)));
    assert_eq!(restored(&outs), vec![(4, l[3].id())]);
    assert_eq!(install_response(&outs), Some((2, 4, 9)));
    assert_eq!(s.node.log(), &l[4..]);
    assert_eq!(s.node.observe().log_len, 6);
    assert_eq!(
        (s.node.observe().commit_index, s.node.last_applied()),
        (4, 4)
    );
    assert_eq!(s.node.kv(), &kv_of(&l[..4]));
    // The write reaches the disk image with the same outcome, before the answer.
    assert_eq!(s.disk.snapshot_index(), 4);
    assert_eq!(s.disk.log, l[4..].to_vec());
    let w = outs
        .iter()
        .position(|o| matches!(o, Output::Persist(RaftWrite::Snapshot { .. })))
        .unwrap();
    let r = outs
        .iter()
        .position(|o| matches!(o, Output::Send { .. }))
        .unwrap();
    assert!(w < r);
    assert_eq!(counters(&s.node)["snapshots_installed"], 1);
    // Later AppendEntries apply the kept suffix.
    let outs = s.recv(1, ae(2, 6, 2, vec![], 6));
    assert_eq!(applied(&outs), vec![5, 6]);
}

#[test]
fn install_snapshot_discards_a_log_that_does_not_match() {
    // Entry 4 has term 2 here, but the leader's snapshot ends at 4 with term 3.
    let mine = log_of(&[1, 1, 2, 2, 2], 0);
    let leader = log_of(&[1, 1, 3, 3], 50);
    let (mut s, _) = Solo::new(cfg(), 3, 0, disk(2, None, mine));
    let outs = s.recv(1, install(3, snap_of(&leader, 4)));
    assert_eq!(restored(&outs), vec![(4, leader[3].id())]);
    assert_eq!(install_response(&outs), Some((3, 4, 9)));
    assert!(s.node.log().is_empty());
    let o = s.node.observe();
    assert_eq!(
        (o.term, o.log_len, o.last_log_term, o.compacted),
        (3, 4, 3, 4)
    );
    assert_eq!(o.leader, Some(NodeId(1)));
    assert!(s.disk.log.is_empty());
    assert_eq!(s.disk.term, 3);
    // A log shorter than the snapshot goes too.
    let (mut s, _) = Solo::new(cfg(), 3, 0, disk(1, None, log_of(&[1], 0)));
    s.recv(1, install(3, snap_of(&leader, 4)));
    assert_eq!(s.node.observe().log_len, 4);
    assert!(s.disk.log.is_empty());
}

#[test]
fn stale_and_known_snapshots_change_nothing() {
    let l = log_of(&[1, 1, 1, 1], 0);
    let (mut s, _) = Solo::new(cfg(), 3, 0, disk(3, None, l.clone()));
    // A stale term: answered with our term and round 0 (an older term's round confirms
    // nothing), nothing installed.
    let outs = s.recv(1, install(2, snap_of(&l, 3)));
    assert_eq!(install_response(&outs), Some((3, 0, 0)));
    assert!(restored(&outs).is_empty() && writes(&outs).is_empty());
    assert_eq!(s.node.observe().commit_index, 0);
    // Commit up to 3, then a snapshot at 2: already known, acknowledged with the commit index.
    s.recv(1, ae(3, 4, 1, vec![], 3));
    let outs = s.recv(1, install(3, snap_of(&l, 2)));
    assert_eq!(install_response(&outs), Some((3, 3, 9)));
    assert!(restored(&outs).is_empty() && writes(&outs).is_empty());
    assert_eq!(s.node.observe().compacted, 0);
    assert_eq!(s.node.log().len(), 4);
}

#[test]
fn a_server_recovers_from_a_snapshot_on_disk() {
    let l = log_of(&[1, 1, 2, 2, 2, 3], 0);
    let snap = snap_of(&l, 4);
    let d = RaftDisk {
        term: 3,
        voted_for: Some(NodeId(2)),
        log: l[4..].to_vec(),
        snapshot: Some(snap.clone()),
    };
    let (mut s, outs) = Solo::new(cfg(), 3, 0, d);
    // Booting reports the state machine restored up to the snapshot.
    assert_eq!(restored(&outs), vec![(4, l[3].id())]);
    let check = |s: &Solo| {
        let o = s.node.observe();
        assert_eq!((o.commit_index, o.compacted, o.log_len), (4, 4, 6));
        assert_eq!(o.last_log_term, 3);
        assert_eq!(s.node.last_applied(), 4);
        assert_eq!(s.node.kv(), &snap.kv);
        assert_eq!(s.node.entry(4), Some(l[3].id()));
        assert_eq!(s.node.entry(6), Some(l[5].id()));
        assert_eq!(s.node.voted_for(), Some(NodeId(2)));
    };
    check(&s);
    // So does a restart: nothing new is persisted.
    let outs = s.restart();
    assert_eq!(restored(&outs), vec![(4, l[3].id())]);
    assert!(writes(&outs).is_empty());
    assert!(applied(&outs).is_empty());
    check(&s);
    // Application continues right after the snapshot.
    let outs = s.recv(1, ae(3, 6, 3, vec![], 6));
    assert_eq!(applied(&outs), vec![5, 6]);
    // The image survives a round trip through its JSON form.
    let j = serde_json::to_string(&s.disk).unwrap();
    assert_eq!(serde_json::from_str::<RaftDisk>(&j).unwrap(), s.disk);
    let w = RaftWrite::Snapshot { snapshot: snap };
    let j = serde_json::to_string(&w).unwrap();
    assert_eq!(serde_json::from_str::<RaftWrite>(&j).unwrap(), w);
}

#[test]
fn disk_image_applies_snapshot_writes() {
    let l = log_of(&[1, 1, 2, 2], 0);
    let mut d = RaftDisk::default();
    Raft::apply_write(
        &mut d,
        &RaftWrite::Append {
            first_index: 1,
            entries: l.clone().into(),
        },
    );
    Raft::apply_write(
        &mut d,
        &RaftWrite::Snapshot {
            snapshot: snap_of(&l, 2),
        },
    );
    assert_eq!((d.snapshot_index(), d.log.clone()), (2, l[2..].to_vec()));
    // Appends and truncations are indexed past the snapshot.
    Raft::apply_write(&mut d, &RaftWrite::Truncate { from: 4 });
    assert_eq!(d.log, l[2..3].to_vec());
    Raft::apply_write(
        &mut d,
        &RaftWrite::Append {
            first_index: 4,
            entries: vec![l[3]].into(),
        },
    );
    assert_eq!(d.log, l[2..].to_vec());
    // An older snapshot is ignored.
    Raft::apply_write(
        &mut d,
        &RaftWrite::Snapshot {
            snapshot: snap_of(&l, 1),
        },
    );
    assert_eq!(d.snapshot_index(), 2);
    Raft::apply_write(
        &mut d,
        &RaftWrite::Snapshot {
            snapshot: snap_of(&l, 4),
        },
    );
    assert_eq!(d.snapshot_index(), 4);
    assert!(d.log.is_empty());
}

#[test]
fn sessions_survive_a_snapshot_so_a_retry_is_answered_once() {
    // A single server: it commits alone once its writes are durable.
    let (mut s, _) = Solo::new(with_threshold(2), 1, 0, RaftDisk::default());
    s.fire(RaftTimer::Election);
    s.recv(0, RaftMsg::Persisted { term: 1, index: 1 });
    let put = RaftMsg::ClientRequest {
        seq: 1,
        op: Op::Cas {
            key: 1,
            expect: None,
            new: 7,
        },
    };
    s.recv(1, put.clone());
    let outs = s.recv(0, RaftMsg::Persisted { term: 1, index: 2 });
    assert_eq!(applied(&outs), vec![2]);
    assert_eq!(snapshot_writes(&outs).len(), 1, "two applied: snapshot");
    assert!(s.node.log().is_empty());
    let answered = |outs: &Outs| {
        sends(outs)
            .into_iter()
            .filter_map(|(t, m)| match m {
                RaftMsg::ClientResponse { seq, result, .. } if t == 1 => Some((seq, result)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(answered(&outs), vec![(1, Some(OpResult::Cas { ok: true }))]);
    // Crash and restart from the disk image (the snapshot); win again.
    s.restart();
    assert_eq!(s.node.kv().applied_commands(), 1);
    s.fire(RaftTimer::Election);
    s.recv(0, RaftMsg::Persisted { term: 2, index: 3 });
    // The retry (same sequence number) is answered from the session table in the snapshot:
    // the original result, nothing appended, nothing applied twice.
    let len = s.node.observe().log_len;
    let outs = s.recv(1, put);
    assert_eq!(answered(&outs), vec![(1, Some(OpResult::Cas { ok: true }))]);
    assert_eq!(s.node.observe().log_len, len);
    assert_eq!(s.node.kv().applied_commands(), 1);
    assert_eq!(s.node.kv().read(1), Some(7));
    assert_eq!(counters(&s.node)["duplicate_requests"], 1);
}

#[test]
fn a_follower_down_for_many_entries_is_caught_up_with_install_snapshot() {
    for seed in 0..5 {
        let (sim, _, f) = follower_down_for_a_while(with_threshold(10), seed, |sim, l, f| {
            let lo = sim.obs(l);
            assert!(lo.compacted > 50, "seed {seed}: leader compacted {lo:?}");
            assert!(sim.nodes[f].disk.snapshot_index() + 50 < lo.compacted);
        });
        let l = sim.leader().expect("a leader");
        assert!(sim.kind("install_snapshot") >= 1, "seed {seed}");
        assert!(sim.counter(f, "snapshots_installed") >= 1, "seed {seed}");
        assert_eq!(sim.completions.len(), 300, "seed {seed}");
        // Everyone ends with the same state machine and a short log.
        for i in 0..3 {
            let o = sim.obs(i);
            assert_eq!(o.commit_index, sim.obs(l).commit_index, "seed {seed}");
            assert_eq!(
                sim.server(i).kv(),
                sim.server(l).kv(),
                "seed {seed} server {i}"
            );
            assert!(o.log_len - o.compacted < 10 + 3, "seed {seed}: {o:?}");
            let d = &sim.nodes[i].disk;
            assert_eq!(d.snapshot_index(), o.compacted);
            assert_eq!(d.log.len() as u64, o.log_len - o.compacted);
        }
    }
}

#[test]
fn a_partitioned_leader_whose_log_diverged_installs_the_snapshot() {
    // The old leader keeps appending (uncommitted) entries in its minority; the majority moves
    // on and compacts past them. On healing, the old leader installs the new leader's snapshot
    // and its conflicting suffix goes.
    for seed in 0..5 {
        let mut sim = Sim::new(with_threshold(8), 3, 2, seed);
        sim.workload = workload(120, 5);
        sim.start_all();
        let l = settle(&mut sim);
        // Cut the leader off from the other servers only: the clients keep writing to it for
        // a while, and it appends entries it can never commit.
        for j in 0..3 {
            if j != l {
                sim.block(l, j);
            }
        }
        sim.run_for(2000 * MS);
        sim.heal();
        sim.run_for(3000 * MS);
        sim.assert_safe();
        sim.assert_applied_prefixes();
        let n = sim.leader().expect("a leader");
        for i in 0..3 {
            assert_eq!(sim.server(i).kv(), sim.server(n).kv(), "seed {seed}");
        }
        assert!(sim.counter(l, "snapshots_installed") >= 1, "seed {seed}");
    }
}

/// Randomized safety with snapshots taken every few entries: crashes (recoveries from
/// snapshots), partitions, loss, duplication, storage latency, under several switch sets.
#[test]
fn random_faults_with_tiny_snapshot_thresholds() {
    let mut taken = 0;
    let mut installed = 0;
    // (threshold, switches, a leader must exist at the end): leader stickiness without
    // CheckQuorum may be between leaders at the last instant on a lossy network (a follower
    // that missed heartbeats ends the leader's term and the others ignore its candidacy).
    for (k, (t, mut c, live)) in [
        (3, cfg(), true),
        (5, cfg(), true),
        (
            4,
            RaftConfig {
                prevote: Some(true),
                check_quorum: true,
                read_index: true,
                fast_backtrack: true,
                max_entries_per_message: 3,
                ..cfg()
            },
            true,
        ),
        (
            4,
            RaftConfig {
                snapshot_trailing: 3,
                ..cfg()
            },
            true,
        ),
        (
            8,
            RaftConfig {
                batch_requests: true,
                lazy_update: true,
                read_index: true,
                leader_stickiness: true,
                ..cfg()
            },
            false,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        c.snapshot_threshold = Some(t);
        let sums = super::random::run_config(&format!("snapshots-{t}-{k}"), c, 40, 5, live);
        taken += sums["snapshots_taken"];
        installed += sums["snapshots_installed"];
    }
    assert!(taken > 1000, "{taken}");
    assert!(installed > 20, "{installed}");
}
