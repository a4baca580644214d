//! Election Safety (Raft §5.2, Figure 3): at most one leader can be elected in a given term.
//! For VRR: at most one primary per view.

use super::Violation;
use coracle_core::{NodeId, Time};
use std::collections::BTreeMap;

pub const NAME: &str = "election_safety";

pub(super) fn check(
    leaders: &mut BTreeMap<u64, NodeId>,
    now: Time,
    me: NodeId,
    term: u64,
) -> Result<(), Violation> {
    match leaders.get(&term) {
        Some(&other) if other != me => Err(Violation {
            invariant: NAME,
            time: now,
            nodes: vec![other, me],
            message: format!("two leaders in term {term}: {other} and {me}"),
        }),
        _ => {
            leaders.insert(term, me);
            Ok(())
        }
    }
}
