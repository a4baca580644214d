//! State Machine Safety (Raft §5.4.3, Figure 3): if a server has applied a log entry at a given
//! index, no other server ever applies a different entry at that index. Applied sequences are
//! therefore prefixes of one another. Checked three ways:
//! * whenever a node's commit index advances, the newly committed entries must equal those any
//!   node committed before at the same indices (the global committed prefix grows only by
//!   appending);
//! * every applied entry must be committed in the node's own view (index ≤ its commit index)
//!   and equal to the globally committed entry at that index;
//! * entries are applied in index order, each exactly once per incarnation of the node
//!   (`index == last applied + 1`).

use super::{Committed, LogView, Prefix, Violation};
use coracle_core::{EntryId, NodeId, Observation, Time};

pub const NAME: &str = "state_machine_safety";

pub(super) fn check_commits(
    committed: &mut Prefix,
    now: Time,
    me: NodeId,
    prev: &Observation,
    obs: &Observation,
    log: &impl LogView,
) -> Result<(), Violation> {
    if obs.commit_index <= prev.commit_index {
        return Ok(());
    }
    for index in prev.commit_index + 1..=obs.commit_index {
        let entry = log.entry(index);
        if entry.is_none() && index < obs.compacted {
            // Folded into a snapshot the node installed: nothing to compare.
            if index > committed.len() {
                committed.push(Committed {
                    entry: Default::default(),
                    term: obs.term,
                    known: false,
                });
            }
            continue;
        }
        let Some(entry) = entry else {
            return Err(Violation {
                invariant: NAME,
                time: now,
                nodes: vec![me],
                message: format!(
                    "{me} has commit index {} but no entry at index {index}",
                    obs.commit_index
                ),
            });
        };
        if index > committed.len() {
            committed.push(Committed {
                entry,
                term: obs.term,
                known: true,
            });
            continue;
        }
        if let Some(c) = committed.get(index)
            && c.entry != entry
        {
            {
                return Err(Violation {
                    invariant: NAME,
                    time: now,
                    nodes: vec![me],
                    message: format!(
                        "{me} committed {entry} at index {index}, but {} was committed there before (in term {})",
                        c.entry, c.term
                    ),
                });
            }
        }
    }
    Ok(())
}

pub(super) fn check_applied(
    committed: &Prefix,
    last_applied: &mut u64,
    now: Time,
    me: NodeId,
    obs: &Observation,
    applied: &[(u64, EntryId, bool)],
) -> Result<(), Violation> {
    for &(index, entry, restored) in applied {
        let fail = |message: String| Violation {
            invariant: NAME,
            time: now,
            nodes: vec![me],
            message,
        };
        if !restored && index != *last_applied + 1 {
            return Err(fail(format!(
                "{me} applied index {index} right after index {}: entries must be applied in order, once each",
                *last_applied
            )));
        }
        if index > obs.commit_index {
            let what = if restored {
                "restored a snapshot up to"
            } else {
                "applied"
            };
            return Err(fail(format!(
                "{me} {what} index {index} beyond its commit index {}",
                obs.commit_index
            )));
        }
        if let Some(c) = committed.get(index)
            && c.entry != entry
        {
            {
                return Err(fail(format!(
                    "{me} applied {entry} at index {index}, but {} is committed there",
                    c.entry
                )));
            }
        }
        *last_applied = index;
    }
    Ok(())
}
