//! Configuration parsing, defaults, validation, schema, and the wire vocabulary.

use super::*;
use crate::raft::UnsafeSwitch;
use crate::testkit::cluster;
use coracle_core::{ConfigIssue, MS, Message, Severity, TimerName, US};
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<RaftConfig, serde_json::Error> {
    serde_json::from_value(v)
}

fn build(v: serde_json::Value) -> Result<Raft, ConfigIssue> {
    Raft::new(parse(v).expect("parses"), &cluster(3, 0))
}

fn err(v: serde_json::Value) -> ConfigIssue {
    build(v).expect_err("invalid")
}

#[test]
fn defaults() {
    let c = parse(json!({})).unwrap();
    assert_eq!(c, RaftConfig::default());
    let r = Raft::new(c, &cluster(3, 0)).unwrap();
    let p = &r.params;
    assert_eq!(p.election, (150 * MS, 300 * MS));
    assert_eq!(p.candidate, p.election);
    assert_eq!(p.heartbeat, 50 * MS);
    assert_eq!(p.client_timeout, 300 * MS);
    assert_eq!(p.max_entries, 64);
    assert_eq!(p.client_max_attempts, None);
    assert_eq!(p.majority, 2);
    assert_eq!(p.snapshot_threshold, Some(10_000));
    assert!(!p.prevote && p.prevote_leader_check);
    assert!(r.warnings().is_empty());
}

#[test]
fn compact_timeout_fractions_and_client_timeout_default() {
    let r = build(json!({"timeout": 100, "heartbeat_interval": 12.5})).unwrap();
    assert_eq!(r.params.election, (100 * MS, 200 * MS));
    assert_eq!(r.params.client_timeout, 200 * MS);
    assert_eq!(r.params.heartbeat, 12 * MS + 500 * US);
    let e = err(json!({"timeout": 100, "election_timeout_min": 50}));
    assert_eq!(e.path, "timeout");
    assert!(e.message.contains("election_timeout_min"), "{}", e.message);
    let r = build(json!({"client_timeout": 0.25, "candidate_timeout": [23, 46]})).unwrap();
    assert_eq!(r.params.client_timeout, 250 * US);
    assert_eq!(r.params.candidate, (23 * MS, 46 * MS));
}

#[test]
fn validation_errors_name_expected_and_found() {
    let e = err(json!({"election_timeout_min": 300, "election_timeout_max": 150}));
    assert_eq!(
        (e.severity, e.path.as_str()),
        (Severity::Error, "election_timeout_min")
    );
    assert!(
        e.message.contains("300") && e.message.contains("150"),
        "{}",
        e.message
    );
    // Equal bounds are the 150-150 curve of Figure 16.
    let r = build(json!({"election_timeout_min": 150, "election_timeout_max": 150})).unwrap();
    assert_eq!(r.params.election, (150 * MS, 150 * MS));
    for (k, v) in [
        ("election_timeout_min", json!(0)),
        ("election_timeout_max", json!(-5)),
        ("heartbeat_interval", json!(0.0)),
        ("client_timeout", json!(-1)),
        ("timeout", json!(0)),
    ] {
        let e = err(json!({ k: v }));
        assert_eq!(e.path, k);
        assert!(e.message.contains("positive"), "{}", e.message);
    }
    // Non-finite values cannot be written in JSON; check the validation directly.
    let c = RaftConfig {
        heartbeat_interval: f64::INFINITY,
        ..RaftConfig::default()
    };
    assert_eq!(
        Raft::new(c, &cluster(3, 0)).unwrap_err().path,
        "heartbeat_interval"
    );
    let c = RaftConfig {
        election_timeout_min: Some(f64::NAN),
        ..RaftConfig::default()
    };
    assert_eq!(
        Raft::new(c, &cluster(3, 0)).unwrap_err().path,
        "election_timeout_min"
    );
    assert_eq!(
        err(json!({"candidate_timeout": [46, 23]})).path,
        "candidate_timeout"
    );
    assert_eq!(
        err(json!({"candidate_timeout": [0, 23]})).path,
        "candidate_timeout"
    );
    assert_eq!(err(json!({"term_bound": 0})).path, "term_bound");
    assert_eq!(
        err(json!({"snapshot_threshold": 0})).path,
        "snapshot_threshold"
    );
    assert_eq!(
        err(json!({"max_entries_per_message": 0})).path,
        "max_entries_per_message"
    );
    assert_eq!(
        err(json!({"client_max_attempts": 0})).path,
        "client_max_attempts"
    );
    assert_eq!(err(json!({"reorder_buffer": 1001})).path, "reorder_buffer");
    let e = err(json!({"max_inflight_messages": 0}));
    assert_eq!(e.path, "max_inflight_messages");
    assert!(
        e.message.contains("expected an integer >= 1, found 0"),
        "{}",
        e.message
    );
}

#[test]
fn warnings_for_questionable_settings() {
    let r = build(json!({"heartbeat_interval": 150})).unwrap();
    let w = r.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].severity, w[0].path.as_str()),
        (Severity::Warning, "heartbeat_interval")
    );
    // Contradictory pre-vote switches: said, not silently resolved.
    let r = build(json!({"prevote": false, "prevote_without_leader_check": true})).unwrap();
    let w = r.warnings();
    assert_eq!((w.len(), w[0].path.as_str()), (1, "prevote"));
    assert!(r.params.prevote);
    assert!(
        build(json!({"prevote_without_leader_check": true}))
            .unwrap()
            .warnings()
            .is_empty()
    );
    // Pre-vote with a term bound of 1 can elect no one.
    let r = build(json!({"prevote": true, "term_bound": 1})).unwrap();
    assert_eq!(r.warnings()[0].path, "term_bound");
    let r = build(json!({"unsafe": ["no_log_check", "reverse_apply"]})).unwrap();
    let w = r.warnings();
    assert_eq!(w[0].path, "unsafe");
    assert!(
        w[0].message.contains("no_log_check, reverse_apply"),
        "{}",
        w[0].message
    );
}

#[test]
fn unknown_keys_and_unsafe_names_are_serde_errors() {
    assert!(parse(json!({"election_timeout": 5})).is_err());
    assert!(
        parse(json!({"protocol": "raft"})).is_err(),
        "the driver strips `protocol`"
    );
    let e = parse(json!({"unsafe": ["no_log_chek"]}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_log_check"), "lists the expected names: {e}");
    let c = parse(json!({"unsafe": ["no_log_check", "forget_vote_on_crash", "commit_old_terms", "no_backtrack", "reverse_apply"]})).unwrap();
    assert_eq!(c.unsafe_switches.len(), 5);
    assert!(c.is_unsafe(UnsafeSwitch::NoBacktrack));
    let r = Raft::new(c, &cluster(3, 0)).unwrap();
    let p = &r.params;
    assert!(p.no_log_check && p.forget_vote_on_crash && p.commit_old_terms);
    assert!(p.no_backtrack && p.reverse_apply);
}

#[test]
fn variants_parse_and_combine() {
    let c = json!({
        "prevote_without_leader_check": true, "check_quorum": true, "leader_stickiness": true,
        "candidate_timeout": [23, 46], "backoff": true, "lazy_voting": true, "term_bound": 3,
        "batch_requests": true, "lazy_update": true, "fast_backtrack": true,
        "max_entries_per_message": 8, "read_index": true, "client_max_attempts": 4,
        "max_inflight_messages": 3, "resend_unacknowledged": 16
    });
    let r = build(c.clone()).unwrap();
    let p = &r.params;
    assert!(
        p.prevote && !p.prevote_leader_check,
        "without_leader_check implies prevote"
    );
    assert!(p.check_quorum && p.leader_stickiness && p.backoff && p.lazy_voting);
    assert_eq!(p.term_bound, Some(3));
    assert_eq!((p.max_inflight, p.resend_unacked), (3, 16));
    // Round trip through serde.
    let back = serde_json::to_value(r.config()).unwrap();
    assert_eq!(parse(back).unwrap(), parse(c).unwrap());
}

#[test]
fn schema_documents_every_key() {
    let s = serde_json::to_value(schemars::schema_for!(RaftConfig)).unwrap();
    let props = s["properties"].as_object().unwrap();
    for key in [
        "election_timeout_min",
        "election_timeout_max",
        "timeout",
        "heartbeat_interval",
        "client_timeout",
        "batch_requests",
        "lazy_update",
        "fast_backtrack",
        "max_entries_per_message",
        "read_index",
        "client_max_attempts",
        "prevote",
        "prevote_without_leader_check",
        "check_quorum",
        "leader_stickiness",
        "candidate_timeout",
        "backoff",
        "lazy_voting",
        "term_bound",
        "snapshot_threshold",
        "snapshot_trailing",
        "max_inflight_messages",
        "resend_unacknowledged",
        "reorder_buffer",
        "unsafe",
    ] {
        let d = props[key]["description"].as_str().unwrap_or("");
        assert!(d.len() > 20, "{key} lacks a description");
    }
    assert_eq!(props.len(), 25);
    assert_eq!(s["additionalProperties"], json!(false));
}

#[test]
fn message_kinds_sizes_and_serde() {
    let e = entry(1, 1);
    let mut kv = coracle_core::KvStore::default();
    if let Some(c) = e.cmd {
        kv.apply(&c);
    }
    let snap = std::sync::Arc::new(crate::raft::Snapshot::new(7, e.id(), kv));
    assert!(snap.size > 20, "{}", snap.size);
    let snap_size = 64 + snap.size;
    let msgs = [
        (
            RaftMsg::RequestVote {
                term: 1,
                last_log_index: 2,
                last_log_term: 1,
            },
            "request_vote",
        ),
        (
            RaftMsg::RequestVoteResponse {
                term: 1,
                granted: true,
            },
            "request_vote_response",
        ),
        (
            RaftMsg::PreVote {
                term: 1,
                last_log_index: 2,
                last_log_term: 1,
            },
            "pre_vote",
        ),
        (
            RaftMsg::PreVoteResponse {
                term: 1,
                request_term: 2,
                granted: false,
            },
            "pre_vote_response",
        ),
        (
            RaftMsg::AppendEntries {
                term: 1,
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![e, e].into(),
                leader_commit: 0,
                round: 3,
            },
            "append_entries",
        ),
        (
            RaftMsg::AppendEntriesResponse {
                term: 1,
                success: false,
                prev_log_index: 0,
                match_index: 0,
                conflict_term: Some(1),
                conflict_index: 1,
                round: 3,
            },
            "append_entries_response",
        ),
        (
            RaftMsg::InstallSnapshot {
                term: 2,
                snapshot: snap,
                round: 4,
            },
            "install_snapshot",
        ),
        (
            RaftMsg::InstallSnapshotResponse {
                term: 2,
                match_index: 7,
                round: 4,
            },
            "install_snapshot_response",
        ),
        (
            RaftMsg::ClientRequest {
                seq: 1,
                op: Op::Get { key: 1 },
            },
            "client_request",
        ),
        (
            RaftMsg::ClientResponse {
                seq: 1,
                result: Some(coracle_core::OpResult::Written),
                leader_hint: Some(NodeId(2)),
            },
            "client_response",
        ),
    ];
    for (m, k) in msgs {
        assert_eq!(m.kind(), k);
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<RaftMsg>(&j).unwrap(), m, "{j}");
        let expect = match k {
            "append_entries" => 64 + 2 * 48,
            "install_snapshot" => snap_size,
            _ => 64,
        };
        assert_eq!(m.wire_size(), expect);
    }
    for (i, t) in RaftTimer::ALL.iter().enumerate() {
        assert_eq!(t.index(), i);
    }
    assert_eq!(RaftTimer::CheckQuorum.name(), "check_quorum");
    assert_eq!(Raft::NAME, "raft");
}

#[test]
fn disk_writes_rebuild_the_image() {
    let mut d = RaftDisk::default();
    let l = log_of(&[1, 1, 2], 0);
    Raft::apply_write(
        &mut d,
        &RaftWrite::HardState {
            term: 2,
            voted_for: Some(NodeId(1)),
        },
    );
    Raft::apply_write(
        &mut d,
        &RaftWrite::Append {
            first_index: 1,
            entries: l.clone().into(),
        },
    );
    assert_eq!(d.log, l);
    Raft::apply_write(&mut d, &RaftWrite::Truncate { from: 2 });
    assert_eq!(d.log, l[..1]);
    Raft::apply_write(
        &mut d,
        &RaftWrite::Append {
            first_index: 2,
            entries: vec![l[2]].into(),
        },
    );
    assert_eq!(d.log, vec![l[0], l[2]]);
    // An append replaces whatever followed its first index.
    Raft::apply_write(
        &mut d,
        &RaftWrite::Append {
            first_index: 2,
            entries: vec![l[1]].into(),
        },
    );
    assert_eq!(d.log, l[..2]);
    assert_eq!((d.term, d.voted_for), (2, Some(NodeId(1))));
}

#[test]
fn report_and_counters() {
    let (mut s, _) = Solo::new(cfg(), 1, 0, RaftDisk::default());
    s.fire(RaftTimer::Election);
    s.recv(0, RaftMsg::Persisted { term: 1, index: 1 });
    let r = s.node.report(&|n| n.0.into());
    assert_eq!(r["role"], "leader");
    assert_eq!(r["term"], 1);
    assert_eq!(r["voted_for"], 0);
    assert_eq!(r["commit_index"], 1);
    assert_eq!(r["last_applied"], 1);
    assert_eq!(r["log_len"], 1);
    let mut names = Vec::new();
    s.node.counters(&mut |k, v| names.push((k, v)));
    for k in [
        "elections_started",
        "elections_won",
        "split_votes",
        "prevotes_started",
        "prevotes_won",
        "votes_granted",
        "votes_deferred",
        "votes_rejected_term_bound",
        "stickiness_ignored",
        "leader_stepdowns_check_quorum",
        "append_rejections",
        "entries_appended",
        "client_requests_received",
        "redirects",
    ] {
        assert!(names.iter().any(|(n, _)| *n == k), "{k}");
    }
    assert!(names.contains(&("elections_won", 1)));
}
