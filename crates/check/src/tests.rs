use super::*;
use coracle_core::Value;
use coracle_core::kv::step_register;
use coracle_core::rng::mix64;
use coracle_core::time::MS;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Builders (times in milliseconds).

fn get(c: u32, key: Key, v: Option<Value>, a: u64, b: u64) -> Operation {
    Operation::completed(
        NodeId(c),
        Op::Get { key },
        a * MS,
        b * MS,
        OpResult::Value { value: v },
    )
}

fn put(c: u32, key: Key, value: Value, a: u64, b: u64) -> Operation {
    Operation::completed(
        NodeId(c),
        Op::Put { key, value },
        a * MS,
        b * MS,
        OpResult::Written,
    )
}

fn cas(c: u32, key: Key, expect: Option<Value>, new: Value, ok: bool, a: u64, b: u64) -> Operation {
    Operation::completed(
        NodeId(c),
        Op::Cas { key, expect, new },
        a * MS,
        b * MS,
        OpResult::Cas { ok },
    )
}

fn put_pending(c: u32, key: Key, value: Value, a: u64) -> Operation {
    Operation::pending(NodeId(c), Op::Put { key, value }, a * MS)
}

fn run(h: &[Operation]) -> Report {
    check(h, &Limits::default())
}

fn witness_of(r: &Report) -> &Witness {
    match &r.verdict {
        Verdict::Violation(w) => w,
        v => panic!("expected a violation, got {v:?}"),
    }
}

/// Found by review: a client's next operation dispatched in the instant its previous one
/// completed (think time 0) used to count as concurrent with it, so a stale read after the
/// client's own write passed. With the driver's event order the write comes first; without
/// orders, events at one time stay concurrent.
#[test]
fn simultaneous_events_follow_the_drivers_order() {
    let mut w = put(1, 0, 5, 0, 10);
    let mut r = get(1, 0, None, 10, 30);
    assert_eq!(run(&[w.clone(), r.clone()]).verdict, Verdict::Ok);
    (
        w.invoke_order,
        w.complete_order,
        r.invoke_order,
        r.complete_order,
    ) = (1, 2, 3, 4);
    let rep = run(&[w.clone(), r.clone()]);
    let wit = witness_of(&rep);
    assert_eq!(wit.operations.len(), 2, "{wit:?}");
    assert!(
        wit.explanation.contains("saw a stale value"),
        "{}",
        wit.explanation
    );
    // Another client's completion handled after the invocation stays concurrent with it.
    let mut other = put(2, 0, 7, 0, 10);
    (other.invoke_order, other.complete_order) = (5, 9);
    let mut late = get(3, 0, None, 10, 30);
    (late.invoke_order, late.complete_order) = (6, 10);
    assert_eq!(run(&[other, late]).verdict, Verdict::Ok);
}

fn assert_ok(h: &[Operation]) {
    let r = run(h);
    assert_eq!(r.verdict, Verdict::Ok, "history: {h:#?}");
    assert!(brute_linearizable(h));
}

/// Checks a violation and its witness: small as expected, drawn from the history, and itself
/// non-linearizable according to the brute-force checker.
fn assert_violation(h: &[Operation], witness_len: usize) -> Witness {
    let r = run(h);
    let w = witness_of(&r).clone();
    assert!(!brute_linearizable(h));
    assert_eq!(w.operations.len(), witness_len, "witness: {w:#?}");
    assert!(w.operations.iter().all(|o| h.contains(o)));
    assert!(w.operations.iter().all(|o| o.op.key() == w.key));
    assert!(!brute_linearizable(&w.operations), "witness: {w:#?}");
    w
}

// ---------------------------------------------------------------------------------------------
// Brute force: every order consistent with real time, every choice of which incomplete
// operations took effect.

#[derive(Clone, Copy)]
struct Bf {
    op: Op,
    invoke: Time,
    ret: Option<Time>,
    result: Option<OpResult>,
}

fn brute_linearizable(h: &[Operation]) -> bool {
    let mut by_key: BTreeMap<Key, Vec<Bf>> = BTreeMap::new();
    for o in h {
        let done = o.complete.is_some() && o.result.is_some();
        if !done && o.op.is_read() {
            continue;
        }
        by_key.entry(o.op.key()).or_default().push(Bf {
            op: o.op,
            invoke: o.invoke,
            ret: if done { o.complete } else { None },
            result: if done { o.result } else { None },
        });
    }
    by_key.values().all(|ops| {
        assert!(ops.len() <= 16, "brute force is for small histories");
        brute(ops, (1u32 << ops.len()) - 1, None)
    })
}

fn brute(ops: &[Bf], remaining: u32, state: Option<Value>) -> bool {
    let live = |j: usize| remaining & (1 << j) != 0;
    if (0..ops.len()).all(|j| !live(j) || ops[j].ret.is_none()) {
        return true;
    }
    for i in (0..ops.len()).filter(|&i| live(i)) {
        let rest = remaining & !(1 << i);
        if ops[i].ret.is_none() && brute(ops, rest, state) {
            return true; // never took effect
        }
        let blocked = (0..ops.len())
            .any(|j| j != i && live(j) && ops[j].ret.is_some_and(|r| r < ops[i].invoke));
        if blocked {
            continue;
        }
        let (next, result) = step_register(state, &ops[i].op);
        if ops[i].result.is_none_or(|e| e == result) && brute(ops, rest, next) {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Linearizable histories.

#[test]
fn sequential_history_is_ok() {
    let h = vec![
        get(0, 0, None, 0, 1),
        put(0, 0, 1, 2, 3),
        get(1, 0, Some(1), 4, 5),
        put(1, 0, 2, 6, 7),
        get(0, 0, Some(2), 8, 9),
        get(0, 1, None, 10, 11),
    ];
    assert_ok(&h);
    let r = run(&h);
    assert_eq!(r.keys_checked, 2);
    assert_eq!(r.operations, 6);
    assert_eq!(r.status(), "ok");
}

#[test]
fn overlapping_writes_may_be_seen_in_either_order() {
    for (first, last) in [(1, 2), (2, 1), (1, 1), (2, 2)] {
        let h = vec![
            put(0, 0, 1, 0, 10),
            put(1, 0, 2, 0, 10),
            get(2, 0, Some(first), 5, 6),
            get(2, 0, Some(last), 12, 13),
            get(3, 0, Some(last), 14, 15),
        ];
        assert_ok(&h);
    }
}

#[test]
fn cas_success_and_failure() {
    let h = vec![
        put(0, 0, 1, 0, 1),
        cas(1, 0, Some(1), 2, true, 2, 3),
        cas(2, 0, Some(1), 3, false, 4, 5),
        get(0, 0, Some(2), 6, 7),
        cas(0, 1, None, 5, true, 0, 1),
        cas(1, 1, None, 6, false, 2, 3),
        get(2, 1, Some(5), 4, 5),
        // Two concurrent CASes from the same expectation: exactly one may win.
        cas(0, 2, None, 7, true, 0, 10),
        cas(1, 2, None, 8, false, 0, 10),
        get(2, 2, Some(7), 11, 12),
    ];
    assert_ok(&h);
}

#[test]
fn incomplete_writes_may_or_may_not_have_taken_effect() {
    // Applied: a later read sees it.
    assert_ok(&[
        put(0, 0, 1, 0, 1),
        put_pending(1, 0, 2, 2),
        get(2, 0, Some(2), 30, 31),
    ]);
    // Not applied: later reads never see it.
    assert_ok(&[
        put(0, 0, 1, 0, 1),
        put_pending(1, 0, 2, 2),
        get(2, 0, Some(1), 30, 31),
        get(2, 0, Some(1), 40, 41),
    ]);
    // Applied late: it may take effect long after its invocation.
    assert_ok(&[
        put(0, 0, 1, 0, 1),
        put_pending(1, 0, 2, 2),
        get(2, 0, Some(1), 30, 31),
        get(2, 0, Some(2), 40, 41),
    ]);
    // A proxy that gave up: completion time but no result still means "possibly applied".
    let mut gave_up = put(1, 0, 2, 2, 3);
    gave_up.result = None;
    assert_ok(&[
        put(0, 0, 1, 0, 1),
        gave_up,
        get(2, 0, Some(1), 30, 31),
        get(2, 0, Some(2), 40, 41),
    ]);
    // An incomplete CAS observed by a read; an incomplete read is ignored whatever it says.
    assert_ok(&[
        put(0, 0, 1, 0, 1),
        Operation::pending(
            NodeId(1),
            Op::Cas {
                key: 0,
                expect: Some(1),
                new: 4,
            },
            2 * MS,
        ),
        get(2, 0, Some(4), 30, 31),
        Operation::pending(NodeId(3), Op::Get { key: 0 }, 32 * MS),
    ]);
}

#[test]
fn incomplete_write_cannot_take_effect_before_its_invocation() {
    let h = vec![get(0, 0, Some(2), 0, 1), put_pending(1, 0, 2, 5)];
    let w = assert_violation(&h, 1);
    assert!(
        w.explanation.contains("invoked after it completed"),
        "{}",
        w.explanation
    );
}

#[test]
fn reads_of_absent_keys() {
    assert_ok(&[get(0, 5, None, 0, 1), get(1, 6, None, 0, 1)]);
    // Concurrent with the first write: may precede it.
    assert_ok(&[
        put(0, 0, 1, 0, 10),
        get(1, 0, None, 1, 2),
        get(1, 0, Some(1), 3, 4),
    ]);
    // Touching intervals are concurrent...
    assert_ok(&[put(0, 0, 1, 0, 5), get(1, 0, None, 5, 6)]);
}

// ---------------------------------------------------------------------------------------------
// Violations.

#[test]
fn read_strictly_after_a_write_cannot_see_absence() {
    // ...but strictly later is not.
    let w = assert_violation(&[put(0, 0, 1, 0, 5), get(1, 0, None, 6, 7)], 2);
    assert!(w.explanation.contains("stale"), "{}", w.explanation);
}

#[test]
fn stale_read_after_completed_write() {
    let h = vec![
        put(0, 0, 7, 0, 1),
        get(1, 0, Some(7), 2, 3),
        put(0, 0, 1, 4, 5),
        get(1, 0, Some(1), 6, 7),
        get(2, 3, None, 6, 7),
        put(0, 0, 2, 8, 9),
        put(2, 3, 4, 8, 9),
        get(1, 0, Some(1), 10, 11),
        get(2, 0, Some(2), 12, 13),
    ];
    let w = assert_violation(&h, 3);
    assert_eq!(w.key, 0);
    assert_eq!(
        w.operations,
        vec![
            put(0, 0, 1, 4, 5),
            put(0, 0, 2, 8, 9),
            get(1, 0, Some(1), 10, 11)
        ]
    );
    assert_eq!(
        w.explanation,
        "get(0)=1 by #1 at [10ms, 11ms] saw a stale value: put(0, 2) by #0 at [8ms, 9ms] completed \
         before it began, and the only write of 1 it could have seen, put(0, 1) by #0 at \
         [4ms, 5ms], had completed before that write was invoked."
    );
}

#[test]
fn read_of_a_value_never_written() {
    let h = vec![
        put(0, 0, 1, 0, 1),
        get(1, 0, Some(1), 2, 3),
        get(1, 0, Some(9), 4, 5),
        put(0, 0, 2, 4, 5),
    ];
    let w = assert_violation(&h, 1);
    assert_eq!(w.operations, vec![get(1, 0, Some(9), 4, 5)]);
    assert_eq!(
        w.explanation,
        "get(0)=9 by #1 at [4ms, 5ms] observed value 9, but no operation ever writes 9 to key 0."
    );
}

#[test]
fn read_of_a_value_written_only_later() {
    let h = vec![get(1, 0, Some(5), 0, 1), put(0, 0, 5, 2, 3)];
    let w = assert_violation(&h, 1);
    assert!(
        w.explanation.contains("the only write of 5, put(0, 5)"),
        "{}",
        w.explanation
    );
}

#[test]
fn reads_observing_writes_in_contradictory_orders() {
    let h = vec![
        put(0, 0, 1, 0, 100),
        put(1, 0, 2, 0, 100),
        get(2, 0, Some(1), 10, 20),
        get(2, 0, Some(2), 30, 40),
        get(3, 0, Some(2), 10, 20),
        get(3, 0, Some(1), 30, 40),
    ];
    let w = assert_violation(&h, 6);
    assert!(
        w.explanation
            .starts_with("No order of these 6 operations on key 0")
    );
}

#[test]
fn cas_that_succeeded_when_it_could_not_have() {
    // Expected value overwritten before the CAS began.
    let h = vec![
        put(0, 0, 1, 0, 1),
        put(1, 0, 2, 2, 3),
        cas(2, 0, Some(1), 3, true, 4, 5),
    ];
    let w = assert_violation(&h, 3);
    assert!(w.explanation.contains("stale"), "{}", w.explanation);
    // Expected value never written at all.
    let h = vec![put(0, 0, 1, 0, 1), cas(2, 0, Some(7), 3, true, 4, 5)];
    assert_violation(&h, 1);
    // Two concurrent CASes from absence cannot both win.
    let h = vec![
        cas(0, 0, None, 1, true, 0, 10),
        cas(1, 0, None, 2, true, 0, 10),
    ];
    assert_violation(&h, 2);
}

#[test]
fn cas_that_failed_when_it_must_have_succeeded() {
    let h = vec![put(0, 0, 1, 0, 1), cas(1, 0, Some(1), 2, false, 2, 3)];
    let w = assert_violation(&h, 2);
    assert_eq!(
        w.explanation,
        "cas(0, 1->2)=failed by #1 at [2ms, 3ms] cannot have failed: the register must have \
         held 1, since put(0, 1) by #0 at [0ms, 1ms] completed at 1ms before it began and no \
         other write could have taken effect in between."
    );
    // A write concurrent with the CAS could have intervened.
    assert_ok(&[
        put(0, 0, 1, 0, 1),
        put(2, 0, 3, 1, 10),
        cas(1, 0, Some(1), 2, false, 2, 3),
    ]);
    let w = assert_violation(&[cas(1, 0, None, 2, false, 0, 1)], 1);
    assert!(
        w.explanation.contains("must still have been absent"),
        "{}",
        w.explanation
    );
}

#[test]
fn impossible_result_kind_is_a_violation() {
    let mut p = put(0, 0, 1, 0, 1);
    p.result = Some(OpResult::Cas { ok: true });
    let w = assert_violation(&[p, get(1, 0, None, 2, 3)], 1);
    assert!(w.explanation.contains("never returns"), "{}", w.explanation);
}

#[test]
fn violation_on_one_key_is_reported_with_that_key() {
    let mut h = Vec::new();
    for k in 0..5 {
        h.push(put(0, k, 1, 0, 1));
        h.push(get(1, k, Some(1), 2, 3));
    }
    h.push(get(1, 3, Some(2), 4, 5));
    let r = run(&h);
    assert_eq!(witness_of(&r).key, 3);
    assert_eq!(r.keys_checked, 4);
    assert_eq!(r.status(), "violation");
}

// ---------------------------------------------------------------------------------------------
// Budget.

/// `n` fully concurrent writes and reads of their values on `key`, plus a read of a value
/// nobody writes: not linearizable, and the search has to try every order to find out.
fn heavy(key: Key, n: u64) -> Vec<Operation> {
    let mut h = Vec::new();
    for v in 1..=n {
        h.push(put(v as u32, key, v, 0, 100));
        h.push(get(100 + v as u32, key, Some(n + 1 - v), 0, 100));
    }
    h.push(get(999, key, Some(1000), 0, 100));
    h
}

#[test]
fn exhausted_budget_is_unknown() {
    let r = check(&heavy(4, 12), &Limits { max_steps: 10_000 });
    match &r.verdict {
        Verdict::Unknown { reason } => {
            assert!(reason.contains("key 4"), "{reason}");
            assert!(reason.contains("10000 steps"), "{reason}");
        }
        v => panic!("expected unknown, got {v:?}"),
    }
    assert_eq!(r.steps, 10_000);
    assert_eq!(r.keys_checked, 0);
    assert_eq!(r.status(), "unknown");
    let j = r.to_json();
    assert_eq!(j["status"], "unknown");
    let mut two = heavy(1, 12);
    two.extend(heavy(2, 12));
    match check(&two, &Limits { max_steps: 10_000 }).verdict {
        Verdict::Unknown { reason } => {
            assert!(
                reason.contains("key 1") && reason.contains("1 more key"),
                "{reason}"
            )
        }
        v => panic!("expected unknown, got {v:?}"),
    }
    assert!(j["witness"].is_null());
    assert!(j["reason"].is_string());
}

#[test]
fn violation_elsewhere_wins_over_unknown() {
    for (hard, easy) in [(0, 1), (1, 0)] {
        let mut h = heavy(hard, 12);
        h.extend([put(0, easy, 1, 0, 1), get(1, easy, None, 2, 3)]);
        let r = check(&h, &Limits { max_steps: 10_000 });
        assert_eq!(witness_of(&r).key, easy);
        assert_eq!(witness_of(&r).operations.len(), 2);
    }
}

#[test]
fn budget_is_shared_fairly_and_resumed() {
    // Key 0 needs more than half the budget, key 1 almost none: the first pass defers key 0,
    // the second resumes it with what key 1 left over.
    let mut h = Vec::new();
    for i in 0..300 {
        h.push(put(0, 0, i + 1, 2 * i, 2 * i + 1));
        h.push(get(1, 0, Some(i + 1), 2 * i + 1, 2 * i + 2));
    }
    h.push(get(1, 1, None, 0, 1));
    let full = run(&h);
    assert_eq!(full.verdict, Verdict::Ok);
    let needed = full.steps;
    let r = check(&h, &Limits { max_steps: needed });
    assert_eq!(r.verdict, Verdict::Ok);
    assert_eq!(r.steps, needed);
    let r = check(
        &h,
        &Limits {
            max_steps: needed - 1,
        },
    );
    assert_eq!(r.status(), "unknown");
}

// ---------------------------------------------------------------------------------------------
// Serialization and export.

#[test]
fn report_json_form_round_trips() {
    let h = vec![put(0, 0, 1, 0, 1), get(1, 0, Some(2), 2, 3)];
    let r = run(&h);
    let j = r.to_json();
    assert_eq!(j["status"], "violation");
    assert_eq!(j["keys_checked"], 1);
    assert_eq!(j["operations"], 2);
    assert!(j["reason"].is_null());
    assert_eq!(j["witness"]["key"], 0);
    assert_eq!(j["witness"]["operations"][0]["op"]["op"], "get");
    let back: Report = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);

    let ok = run(&[put(0, 0, 1, 0, 1)]);
    let j = ok.to_json();
    assert_eq!(j["status"], "ok");
    assert!(j["witness"].is_null());
    assert_eq!(serde_json::from_value::<Report>(j).unwrap(), ok);
    assert!(
        serde_json::from_str::<Report>(
            r#"{"status":"violation","keys_checked":0,"operations":0,"steps":0,"witness":null,"reason":null}"#
        )
        .is_err()
    );
}

#[test]
fn porcupine_export() {
    let h = vec![put(2, 1, 7, 1, 2), put_pending(3, 1, 8, 3)];
    let j = to_porcupine_json(&h);
    assert_eq!(
        j,
        serde_json::json!([
            {"client": 2, "input": {"op": "put", "key": 1, "value": 7},
             "output": {"result": "written"}, "call": 1_000_000, "return": 2_000_000},
            {"client": 3, "input": {"op": "put", "key": 1, "value": 8},
             "output": null, "call": 3_000_000, "return": null},
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Property test against the brute-force checker.

fn arb_operation() -> impl Strategy<Value = Operation> {
    (
        0u32..3,                   // client
        0u32..2,                   // key
        0u8..3,                    // kind
        1u64..4,                   // written value
        prop::option::of(1u64..4), // CAS expectation
        0u64..12,                  // invoke
        0u64..6,                   // duration
        0u8..10,                   // completion: 0 none, 1 gave up, else completed
        any::<bool>(),             // CAS result
        prop::option::of(1u64..4), // read result
    )
        .prop_map(|(c, key, kind, v, expect, inv, dur, done, ok, read)| {
            let (op, result) = match kind {
                0 => (Op::Get { key }, OpResult::Value { value: read }),
                1 => (Op::Put { key, value: v }, OpResult::Written),
                _ => (
                    Op::Cas {
                        key,
                        expect,
                        new: v,
                    },
                    OpResult::Cas { ok },
                ),
            };
            Operation {
                client: NodeId(c),
                op,
                invoke: inv,
                complete: (done != 0).then_some(inv + dur),
                result: (done > 1).then_some(result),
                invoke_order: 0,
                complete_order: 0,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_brute_force(h in prop::collection::vec(arb_operation(), 1..=8)) {
        let r = run(&h);
        let expected = brute_linearizable(&h);
        match &r.verdict {
            Verdict::Ok => prop_assert!(expected, "checker says ok, brute force disagrees"),
            Verdict::Violation(w) => {
                prop_assert!(!expected, "checker says violation, brute force disagrees");
                prop_assert!(!w.operations.is_empty());
                prop_assert!(w.operations.iter().all(|o| h.contains(o) && o.op.key() == w.key));
                prop_assert!(!brute_linearizable(&w.operations), "witness is linearizable: {:?}", w);
            }
            Verdict::Unknown { .. } => prop_assert!(false, "tiny history ran out of budget"),
        }
        prop_assert_eq!(run(&h), r);
    }
}

// ---------------------------------------------------------------------------------------------
// Generated histories from a correct concurrent register.

trait Written {
    fn written(&self) -> Option<Value>;
}

impl Written for Op {
    fn written(&self) -> Option<Value> {
        match *self {
            Op::Get { .. } => None,
            Op::Put { value, .. } | Op::Cas { new: value, .. } => Some(value),
        }
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix64(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Clients issue operations one at a time against a correct register: each operation takes
/// effect at a random instant inside its interval. About 1% of writes lose their reply (and
/// took effect or not, at random).
fn generate(seed: u64, clients: u32, per_client: u64, keys: Key) -> Vec<Operation> {
    generate_lossy(seed, clients, per_client, keys, 100)
}

fn generate_lossy(
    seed: u64,
    clients: u32,
    per_client: u64,
    keys: Key,
    loss_one_in: u64,
) -> Vec<Operation> {
    let mut rng = SplitMix(mix64(seed));
    // (history index, linearization point) of every operation that took effect.
    let mut history = Vec::new();
    let mut points: Vec<(Time, usize)> = Vec::new();
    for c in 0..clients {
        let mut t = rng.below(MS);
        let mut last_seen: Vec<Option<Value>> = vec![None; keys as usize];
        for seq in 0..per_client {
            let key = rng.below(keys as u64) as Key;
            let value = (c as u64 + 1) * 1_000_000 + seq;
            let op = match rng.below(20) {
                0..10 => Op::Get { key },
                10..17 => Op::Put { key, value },
                _ => Op::Cas {
                    key,
                    expect: last_seen[key as usize],
                    new: value,
                },
            };
            let dur = 100 * 1_000 + rng.below(4 * MS);
            let lost = !op.is_read() && loss_one_in > 0 && rng.below(loss_one_in) == 0;
            let point = t + rng.below(dur + 1);
            if !lost || rng.below(2) == 0 {
                points.push((point, history.len()));
            }
            history.push(Operation {
                client: NodeId(c),
                op,
                invoke: t,
                complete: (!lost).then_some(t + dur),
                result: None,
                invoke_order: 0,
                complete_order: 0,
            });
            if let Op::Put { value, .. } | Op::Cas { new: value, .. } = op {
                last_seen[key as usize] = Some(value);
            }
            t += dur + rng.below(2 * MS);
        }
    }
    points.sort_unstable();
    let mut state: BTreeMap<Key, Value> = BTreeMap::new();
    for (_, i) in points {
        let o = &mut history[i];
        let (next, result) = step_register(state.get(&o.op.key()).copied(), &o.op);
        if let Some(v) = next {
            state.insert(o.op.key(), v);
        }
        if o.complete.is_some() {
            o.result = Some(result);
        }
    }
    history.sort_by_key(|o| (o.invoke, o.client));
    history
}

#[test]
fn generated_correct_histories_pass_and_corruptions_fail() {
    let h = generate(7, 6, 350, 4);
    assert_eq!(h.len(), 2100);
    assert!(h.iter().any(|o| !o.is_complete()));
    let r = run(&h);
    assert_eq!(r.verdict, Verdict::Ok);
    assert_eq!(r.keys_checked, 4);
    assert!(
        r.steps < Limits::default().max_steps / 100,
        "steps {}",
        r.steps
    );

    let reads: Vec<usize> = (0..h.len())
        .filter(|&i| h[i].op.is_read() && h[i].is_complete())
        .collect();

    // A read of a value nobody wrote.
    let mut bad = h.clone();
    let i = reads[reads.len() * 3 / 4];
    bad[i].result = Some(OpResult::Value { value: Some(42) });
    let r = run(&bad);
    let w = witness_of(&r);
    assert_eq!(w.operations, vec![bad[i].clone()]);
    assert!(w.explanation.contains("no operation ever writes 42"));

    // A stale read: the key's first value, long overwritten.
    let mut bad = h.clone();
    let i = reads[reads.len() * 3 / 4];
    let key = bad[i].op.key();
    let first = h
        .iter()
        .find_map(|o| match (o.op, o.result) {
            (Op::Put { key: k, value }, Some(OpResult::Written)) if k == key => Some(value),
            _ => None,
        })
        .unwrap();
    assert_ne!(bad[i].result, Some(OpResult::Value { value: Some(first) }));
    bad[i].result = Some(OpResult::Value { value: Some(first) });
    let r = run(&bad);
    let w = witness_of(&r);
    assert_eq!(w.key, key);
    assert!(w.operations.contains(&bad[i]));
    assert!(w.operations.len() <= 4, "witness: {w:#?}");
    assert!(!brute_linearizable(&w.operations));
    assert!(w.explanation.contains("stale"), "{}", w.explanation);
}

#[test]
fn large_generated_history_is_fast() {
    // 30k operations over 10 keys with 8 clients.
    let h = generate(11, 8, 3_750, 10);
    let r = run(&h);
    assert_eq!(r.verdict, Verdict::Ok);
    assert_eq!(r.operations, 30_000);
}

#[test]
fn single_key_long_history() {
    // A violation at the very end makes the search exhaust every alternative before it, and
    // then the witness must be shrunk out of the whole history: both must fit the default
    // budget for 20k operations on one key without lost writes and 10k with some.
    for h in [generate_lossy(3, 5, 4_000, 1, 0), generate(3, 5, 2_000, 1)] {
        let r = run(&h);
        assert_eq!(r.verdict, Verdict::Ok);
        let mut bad = h.clone();
        let i = (0..h.len())
            .rev()
            .find(|&i| h[i].op.is_read() && h[i].is_complete())
            .unwrap();
        bad[i].result = Some(OpResult::Value { value: Some(42) });
        let r = run(&bad);
        assert_eq!(witness_of(&r).operations, vec![bad[i].clone()]);
    }
}

#[test]
fn reports_are_deterministic() {
    let mut h = generate(5, 4, 200, 3);
    let i = h
        .iter()
        .rposition(|o| o.op.is_read() && o.is_complete())
        .unwrap();
    h[i].result = Some(OpResult::Value { value: Some(1) });
    let a = serde_json::to_string(&run(&h)).unwrap();
    let b = serde_json::to_string(&run(&h)).unwrap();
    assert_eq!(a, b);
}

/// Passes over lost writes are bounded too (50 visits per step of budget): 2,000 lost puts
/// at the head of the list, 200 sequential put/get pairs, and a failed CAS at the end that
/// keeps the lost puts from being pruned. The search needs 400 lifts but about 800,000
/// visits; with 1,000 steps it stops at 50,000 visits (it ran to the end, taking time in
/// proportion to lost × completed, when only lifts were counted).
#[test]
fn passes_over_lost_writes_count_against_the_budget() {
    let mut h: Vec<Operation> = (0..2000)
        .map(|i| put_pending(9, 0, 100_000 + i, 0))
        .collect();
    for k in 0..200u64 {
        h.push(put(1, 0, k + 1, 10 + 4 * k, 11 + 4 * k));
        h.push(get(1, 0, Some(k + 1), 12 + 4 * k, 13 + 4 * k));
    }
    h.push(cas(2, 0, Some(7), 8, false, 900, 901));
    let small = Limits { max_steps: 1000 };
    let r = check(&h, &small);
    assert!(
        matches!(r.verdict, Verdict::Unknown { .. }),
        "{:?}",
        r.verdict
    );
    assert_eq!(run(&h).verdict, Verdict::Ok);
}

/// Timing and step counts of whole-key searches; run with
/// `cargo test -p coracle-check --release bench_single_key -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_single_key() {
    for (clients, per, loss) in [
        (5u32, 4000u64, 0u64),
        (5, 4000, 100),
        (3, 4000, 100),
        (8, 500, 100),
    ] {
        let h = generate_lossy(3, clients, per, 1, loss);
        let t = std::time::Instant::now();
        let r = run(&h);
        let ok_time = t.elapsed();
        let mut bad = h.clone();
        let i = bad
            .iter()
            .rposition(|o| o.op.is_read() && o.is_complete())
            .unwrap();
        bad[i].result = Some(OpResult::Value { value: Some(42) });
        let idxs: Vec<usize> = (0..bad.len()).collect();
        let t = std::time::Instant::now();
        let mut s = crate::search::Search::new(prepare(&bad, &idxs));
        let out = s.run(u64::MAX);
        let detect_time = t.elapsed();
        let t = std::time::Instant::now();
        let rb = check(
            &bad,
            &Limits {
                max_steps: u64::MAX / 2,
            },
        );
        println!(
            "{clients} clients x {per}, lost writes: {}; ok in {} steps {ok_time:?}; violation \
             found in {} steps ({} lifts, memo {:?}) {detect_time:?}, with witness of {} in {} \
             steps {:?}",
            if loss == 0 {
                "none".to_string()
            } else {
                format!("1 in {loss}")
            },
            r.steps,
            s.steps,
            s.lifts,
            s.memo_size(),
            witness_of(&rb).operations.len(),
            rb.steps,
            t.elapsed()
        );
        assert_eq!(out, crate::search::Outcome::Violation);
    }
}

/// Many more, longer, single-key cases than [`agrees_with_brute_force`], with lost operations;
/// run with `cargo test -p coracle-check --release agrees_with_brute_force_long -- --ignored`.
fn arb_operation_hard() -> impl Strategy<Value = Operation> {
    (
        0u32..4,
        0u8..3,
        1u64..4,
        prop::option::of(1u64..4),
        0u64..14,
        0u64..6,
        0u8..10,
        any::<bool>(),
        prop::option::of(1u64..4),
    )
        .prop_map(|(c, kind, v, expect, inv, dur, done, ok, read)| {
            let key = 0;
            let (op, result) = match kind {
                0 => (Op::Get { key }, OpResult::Value { value: read }),
                1 => (Op::Put { key, value: v }, OpResult::Written),
                _ => (
                    Op::Cas {
                        key,
                        expect,
                        new: v,
                    },
                    OpResult::Cas { ok },
                ),
            };
            Operation {
                client: NodeId(c),
                op,
                invoke: inv,
                complete: (done > 2).then_some(inv + dur),
                result: (done > 2).then_some(result),
                invoke_order: 0,
                complete_order: 0,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300_000, ..ProptestConfig::default() })]

    #[test]
    #[ignore]
    fn agrees_with_brute_force_long(h in prop::collection::vec(arb_operation_hard(), 1..=11)) {
        let r = run(&h);
        let expected = brute_linearizable(&h);
        match &r.verdict {
            Verdict::Ok => prop_assert!(expected, "checker says ok, brute force disagrees"),
            Verdict::Violation(w) => {
                prop_assert!(!expected, "checker says violation, brute force disagrees");
                prop_assert!(!brute_linearizable(&w.operations), "witness is linearizable: {:?}", w);
            }
            Verdict::Unknown { .. } => prop_assert!(false, "tiny history ran out of budget"),
        }
    }
}

/// Plain WGL over bitmasks with a (set, state) memo and none of the checker's shortcuts: exact
/// for up to 64 operations per key and fast enough when concurrency is low.
fn reference_linearizable(h: &[Operation]) -> bool {
    let mut by_key: BTreeMap<Key, Vec<Bf>> = BTreeMap::new();
    for o in h {
        if !o.is_complete() && o.op.is_read() {
            continue;
        }
        by_key.entry(o.op.key()).or_default().push(Bf {
            op: o.op,
            invoke: o.invoke,
            ret: if o.is_complete() { o.complete } else { None },
            result: if o.is_complete() { o.result } else { None },
        });
    }
    fn go(
        ops: &[Bf],
        done: u64,
        state: Option<Value>,
        seen: &mut std::collections::HashSet<(u64, Option<Value>)>,
    ) -> bool {
        let n = ops.len();
        if (0..n).all(|j| done & (1 << j) != 0 || ops[j].ret.is_none()) {
            return true;
        }
        if !seen.insert((done, state)) {
            return false;
        }
        // The earliest return among pending completed operations bounds what can go next.
        let horizon = (0..n)
            .filter(|&j| done & (1 << j) == 0)
            .filter_map(|j| ops[j].ret)
            .min()
            .unwrap();
        for i in (0..n).filter(|&i| done & (1 << i) == 0 && ops[i].invoke <= horizon) {
            let (next, result) = step_register(state, &ops[i].op);
            if ops[i].result.is_none_or(|e| e == result) && go(ops, done | (1 << i), next, seen) {
                return true;
            }
        }
        false
    }
    by_key.values().all(|ops| {
        assert!(ops.len() <= 64);
        go(ops, 0, None, &mut Default::default())
    })
}

#[test]
fn agrees_with_plain_wgl_on_medium_histories() {
    // Lost writes, CASes expecting lost writes, failed CASes and corrupted results: the
    // checker's shortcuts (dead values, spare puts, hopeless CASes, pruning) must not change
    // any verdict.
    let (mut ok, mut bad) = (0, 0);
    for seed in 0..400u64 {
        let mut h = generate_lossy(seed, 4, 16, 1, 6);
        let mut rng = SplitMix(seed ^ 0xC0FFEE);
        for _ in 0..rng.below(3) {
            let i = rng.below(h.len() as u64) as usize;
            let other = h[rng.below(h.len() as u64) as usize].op.written();
            if let Some(r) = &mut h[i].result {
                *r = match *r {
                    OpResult::Value { .. } => OpResult::Value { value: other },
                    OpResult::Cas { ok } => OpResult::Cas { ok: !ok },
                    OpResult::Written => OpResult::Written,
                };
            }
        }
        let expected = reference_linearizable(&h);
        let r = run(&h);
        assert_eq!(r.verdict == Verdict::Ok, expected, "seed {seed}: {r:?}");
        if let Verdict::Violation(w) = &r.verdict {
            assert!(w.operations.len() <= 12, "seed {seed}: {w:#?}");
            assert!(!brute_linearizable(&w.operations), "seed {seed}: {w:#?}");
        }
        if expected {
            ok += 1;
        } else {
            bad += 1;
        }
    }
    assert!(ok > 100 && bad > 100, "ok {ok} bad {bad}");
}
