//! Leader Append-Only (Raft §5.3, Figure 3): a leader never overwrites or deletes entries in its
//! log; it only appends. Checked whenever a leader's observation changes within one term (every
//! append changes its last index) by remembering the index and identity of its last entry
//! (unless a snapshot has covered it since).

use super::{LogView, Violation};
use coracle_core::{EntryId, NodeId, Observation, Role, Time};

pub const NAME: &str = "leader_append_only";

pub(super) fn check(
    tail: &mut Option<(u64, EntryId)>,
    now: Time,
    me: NodeId,
    prev: &Observation,
    obs: &Observation,
    log: &impl LogView,
) -> Result<(), Violation> {
    if obs.role != Role::Leader {
        *tail = None;
        return Ok(());
    }
    let same_term = prev.role == Role::Leader && prev.term == obs.term;
    // An entry folded into a snapshot since (a VRR checkpoint can cover the previous last entry
    // in the step that appends, commits and executes the next one) is compacted, not removed:
    // only committed entries are compacted, and state machine safety covers those.
    let compacted = tail.is_some_and(|(index, _)| index < obs.compacted);
    if same_term
        && !compacted
        && let Some((index, entry)) = *tail
    {
        let now_there = log.entry(index);
        if obs.log_len < index || now_there != Some(entry) {
            return Err(Violation {
                invariant: NAME,
                time: now,
                nodes: vec![me],
                message: format!(
                    "leader {me} of term {} removed or changed its entry at index {index} (was {entry}, now {})",
                    obs.term,
                    now_there.map_or("nothing".to_string(), |e| e.to_string())
                ),
            });
        }
    }
    *tail = if obs.log_len > 0 {
        log.entry(obs.log_len).map(|e| (obs.log_len, e))
    } else {
        None
    };
    Ok(())
}
