//! Configuration parsing, defaults, validation, schema, and the wire vocabulary.

use super::*;
use crate::testkit::cluster;
use coracle_core::{ConfigIssue, MS, Message, OpResult, Severity, TimerName, US};
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<VrrConfig, serde_json::Error> {
    serde_json::from_value(v)
}

fn build(v: serde_json::Value) -> Result<Vrr, ConfigIssue> {
    Vrr::new(parse(v).expect("parses"), &cluster(3, 0))
}

fn err(v: serde_json::Value) -> ConfigIssue {
    build(v).expect_err("invalid")
}

#[test]
fn defaults() {
    let c = parse(json!({})).unwrap();
    assert_eq!(c, VrrConfig::default());
    let r = Vrr::new(c, &cluster(3, 0)).unwrap();
    let p = &r.params;
    assert_eq!(p.view_change, (150 * MS, 300 * MS));
    assert_eq!(p.commit_interval, 50 * MS);
    assert_eq!(p.client_timeout, 300 * MS);
    assert_eq!(p.max_entries, 64);
    assert_eq!(p.client_max_attempts, None);
    assert!(!p.durable);
    assert_eq!(p.quorum, 2);
    assert!(r.warnings().is_empty());
    assert_eq!(Vrr::NAME, "vrr");
}

#[test]
fn quorums_are_majorities_and_primaries_rotate_in_configured_order() {
    for (n, q) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)] {
        assert_eq!(Vrr::new(cfg(), &cluster(n, 0)).unwrap().params.quorum, q);
    }
    // The replica order is the configured server order, whatever the node ids.
    let c = Cluster {
        servers: vec![NodeId(4), NodeId(1), NodeId(2)],
        clients: vec![NodeId(0)],
        names: (0..5).map(|i| i.to_string()).collect(),
    };
    let r = Vrr::new(cfg(), &c).unwrap();
    let primaries: Vec<NodeId> = (0..5).map(|v| r.params.primary(v)).collect();
    assert_eq!(
        primaries,
        [4, 1, 2, 4, 1].map(NodeId).to_vec(),
        "view v -> servers[v mod n]"
    );
}

#[test]
fn fractions_and_client_timeout_default() {
    let r = build(
        json!({"view_change_timeout_min": 100, "view_change_timeout_max": 200,
                         "commit_interval": 12.5}),
    )
    .unwrap();
    assert_eq!(r.params.view_change, (100 * MS, 200 * MS));
    assert_eq!(r.params.client_timeout, 200 * MS);
    assert_eq!(r.params.commit_interval, 12 * MS + 500 * US);
    let r = build(
        json!({"client_timeout": 0.25, "durable": true, "client_max_attempts": 3,
                         "max_entries_per_message": 2}),
    )
    .unwrap();
    assert_eq!(r.params.client_timeout, 250 * US);
    assert!(r.params.durable);
    assert_eq!(r.params.client_max_attempts, Some(3));
    assert_eq!(r.params.max_entries, 2);
    // Equal bounds: no randomisation.
    let r = build(json!({"view_change_timeout_min": 150, "view_change_timeout_max": 150})).unwrap();
    assert_eq!(r.params.view_change, (150 * MS, 150 * MS));
}

#[test]
fn validation_errors_name_expected_and_found() {
    let e = err(json!({"view_change_timeout_min": 300, "view_change_timeout_max": 150}));
    assert_eq!(
        (e.severity, e.path.as_str()),
        (Severity::Error, "view_change_timeout_min")
    );
    assert!(
        e.message.contains("300") && e.message.contains("150"),
        "{}",
        e.message
    );
    for (k, v) in [
        ("view_change_timeout_min", json!(0)),
        ("view_change_timeout_max", json!(-5)),
        ("commit_interval", json!(0.0)),
        ("client_timeout", json!(-1)),
    ] {
        let e = err(json!({ k: v }));
        assert_eq!(e.path, k);
        assert!(e.message.contains("positive"), "{}", e.message);
    }
    let c = VrrConfig {
        commit_interval: f64::INFINITY,
        ..VrrConfig::default()
    };
    assert_eq!(
        Vrr::new(c, &cluster(3, 0)).unwrap_err().path,
        "commit_interval"
    );
    assert_eq!(
        err(json!({"max_entries_per_message": 0})).path,
        "max_entries_per_message"
    );
    assert_eq!(
        err(json!({"client_max_attempts": 0})).path,
        "client_max_attempts"
    );
}

#[test]
fn warnings_for_questionable_settings() {
    let r = build(json!({"commit_interval": 150})).unwrap();
    let w = r.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].severity, w[0].path.as_str()),
        (Severity::Warning, "commit_interval")
    );
    assert!(w[0].message.contains("150"), "{}", w[0].message);
    // A single diskless replica cannot recover from a crash.
    let w = Vrr::new(cfg(), &cluster(1, 0)).unwrap().warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "durable");
    assert!(
        Vrr::new(durable(), &cluster(1, 0))
            .unwrap()
            .warnings()
            .is_empty()
    );
    // Nor can either of two (the other alone is not f + 1 responses); three can.
    let w = Vrr::new(cfg(), &cluster(2, 0)).unwrap().warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].message.contains("2 diskless replicas"),
        "{}",
        w[0].message
    );
    assert!(
        Vrr::new(cfg(), &cluster(3, 0))
            .unwrap()
            .warnings()
            .is_empty()
    );
}

#[test]
fn unknown_keys_are_serde_errors() {
    assert!(parse(json!({"view_change_timeout": 5})).is_err());
    // Raft's timing names are accepted as aliases, so one scenario runs under both protocols.
    assert_eq!(
        parse(json!({"election_timeout_min": 100, "election_timeout_max": 200, "heartbeat_interval": 20})).unwrap(),
        parse(json!({"view_change_timeout_min": 100, "view_change_timeout_max": 200, "commit_interval": 20})).unwrap()
    );
    assert!(
        build(json!({"timeout": 100, "view_change_timeout_min": 50})).is_err(),
        "not both forms"
    );
    assert!(
        build(json!({"timeout": 100, "election_timeout_min": 150})).is_err(),
        "not both forms, even when the explicit value is the default"
    );
    assert!(
        parse(json!({"protocol": "vrr"})).is_err(),
        "the driver strips `protocol`"
    );
    let c = json!({"commit_interval": 20, "view_change_timeout_min": 100,
                   "view_change_timeout_max": 200, "client_timeout": 300,
                   "max_entries_per_message": 8, "client_max_attempts": 4, "durable": true});
    let r = build(c.clone()).unwrap();
    let back = serde_json::to_value(r.config()).unwrap();
    assert_eq!(parse(back).unwrap(), parse(c).unwrap());
}

#[test]
fn schema_documents_every_key() {
    let s = serde_json::to_value(schemars::schema_for!(VrrConfig)).unwrap();
    let props = s["properties"].as_object().unwrap();
    let keys = [
        "commit_interval",
        "view_change_timeout_min",
        "view_change_timeout_max",
        "client_timeout",
        "max_entries_per_message",
        "client_max_attempts",
        "durable",
        "view_change_backoff",
        "timeout",
        "checkpoint_interval",
    ];
    assert_eq!(props.len(), keys.len());
    for key in keys {
        let d = props[key]["description"].as_str().unwrap_or("");
        assert!(d.len() > 40, "{key} lacks a description");
        assert!(
            d.to_lowercase().contains("default"),
            "{key}'s description names its default"
        );
    }
    assert_eq!(s["additionalProperties"], json!(false));
}

#[test]
fn message_kinds_sizes_and_timer_names() {
    let e = entry(0, 1);
    let mut kv = coracle_core::KvStore::default();
    for k in 0..50 {
        kv.apply(&entry(0, k).cmd);
    }
    let ck = std::sync::Arc::new(crate::vrr::Checkpoint::new(
        5,
        e.id(),
        kv,
        vec![(NodeId(99), 49)],
    ));
    assert!(ck.size > 50, "{}", ck.size);
    let msgs = [
        (
            VrrMsg::Request {
                seq: 1,
                op: Op::Get { key: 0 },
            },
            "request",
            64,
        ),
        (
            VrrMsg::Reply {
                view: 0,
                seq: 1,
                result: Some(OpResult::Written),
            },
            "reply",
            64,
        ),
        (
            VrrMsg::Prepare {
                view: 0,
                entry: e,
                op: 1,
                commit: 0,
            },
            "prepare",
            112,
        ),
        (VrrMsg::PrepareOk { view: 0, op: 1 }, "prepare_ok", 64),
        (VrrMsg::Commit { view: 0, commit: 1 }, "commit", 64),
        (
            VrrMsg::StartViewChange { view: 1, commit: 0 },
            "start_view_change",
            64,
        ),
        (
            VrrMsg::DoViewChange {
                view: 1,
                last_normal: 0,
                op: 3,
                commit: 1,
                after: 1,
                entries: vec![e, e],
            },
            "do_view_change",
            160,
        ),
        (
            VrrMsg::StartView {
                view: 1,
                op: 1,
                commit: 0,
                after: 0,
                after_view: 0,
                entries: vec![e],
            },
            "start_view",
            112,
        ),
        (VrrMsg::Recovery { nonce: 1 }, "recovery", 64),
        (
            VrrMsg::RecoveryResponse {
                checkpoint: None,
                view: 1,
                nonce: 1,
                log: Some(vec![e, e, e]),
                op: 3,
                commit: 0,
            },
            "recovery_response",
            208,
        ),
        (VrrMsg::GetState { view: 1, op: 0 }, "get_state", 64),
        (
            VrrMsg::NewState {
                checkpoint: None,
                view: 1,
                after: 0,
                entries: vec![e],
                op: 1,
                commit: 0,
            },
            "new_state",
            112,
        ),
        (VrrMsg::Persisted { view: 0, op: 1 }, "persisted", 64),
        // A checkpoint counts its encoded size (as Raft's InstallSnapshot).
        (
            VrrMsg::NewState {
                checkpoint: Some(ck.clone()),
                view: 1,
                after: 5,
                entries: vec![e],
                op: 6,
                commit: 5,
            },
            "new_state",
            112 + ck.size,
        ),
        (
            VrrMsg::RecoveryResponse {
                checkpoint: Some(ck.clone()),
                view: 1,
                nonce: 1,
                log: Some(vec![]),
                op: 5,
                commit: 5,
            },
            "recovery_response",
            64 + ck.size,
        ),
    ];
    for (m, kind, size) in msgs {
        assert_eq!(m.kind(), kind);
        assert_eq!(m.wire_size(), size, "{kind}");
        let back: VrrMsg = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(serde_json::to_value(&m).unwrap()["type"], json!(kind));
    }
    for (i, t) in VrrTimer::ALL.iter().enumerate() {
        assert_eq!(t.index(), i);
    }
    let names: Vec<&str> = VrrTimer::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "heartbeat",
            "view_change",
            "resend",
            "recovery",
            "client_retry"
        ]
    );
}

#[test]
fn disk_images_follow_the_writes() {
    let mut d = VrrDisk::default();
    let l = log_of(&[0, 0, 1], 0);
    Vrr::apply_write(
        &mut d,
        &VrrWrite::Append {
            first_index: 1,
            entries: l.clone(),
            commit: 0,
        },
    );
    Vrr::apply_write(
        &mut d,
        &VrrWrite::View {
            view: 2,
            last_normal: 1,
        },
    );
    assert_eq!((d.view, d.last_normal, d.log.clone()), (2, 1, l.clone()));
    Vrr::apply_write(
        &mut d,
        &VrrWrite::Append {
            first_index: 2,
            entries: vec![entry(2, 9)],
            commit: 2,
        },
    );
    assert_eq!(d.log, vec![l[0], entry(2, 9)]);
    // The commit-number rides on the append (and never exceeds the log).
    assert_eq!(d.commit, 2);
    Vrr::apply_write(&mut d, &VrrWrite::Truncate { from: 2 });
    assert_eq!(d.log, vec![l[0]]);
    assert_eq!(d.commit, 1);
    // Entries report the view in which their op-number was assigned.
    assert_eq!(entry(7, 1).id().term, 7);
    assert_ne!(entry(7, 1).id().digest, 0);
}
