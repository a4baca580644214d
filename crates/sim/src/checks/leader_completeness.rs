//! Leader Completeness (Raft §5.4, Figure 3): if a log entry is committed in a given term, that
//! entry is present in the logs of the leaders of all higher-numbered terms. Checked when a node
//! becomes leader, against every entry committed in an earlier term.

use super::{LogView, Prefix, Violation};
use coracle_core::{NodeId, Time};

pub const NAME: &str = "leader_completeness";

pub(super) fn check(
    committed: &Prefix,
    now: Time,
    me: NodeId,
    term: u64,
    compacted: u64,
    log: &impl LogView,
) -> Result<(), Violation> {
    for (index, c) in committed.iter() {
        // Entries below the leader's snapshot cannot be seen one by one; the snapshot's last
        // entry can.
        if c.term >= term || index < compacted {
            continue;
        }
        let have = log.entry(index);
        if have != Some(c.entry) {
            return Err(Violation {
                invariant: NAME,
                time: now,
                nodes: vec![me],
                message: format!(
                    "{me} became leader of term {term} without the entry committed at index {index} in term {} \
                     (committed: {}; its log has: {})",
                    c.term,
                    c.entry,
                    have.map_or("nothing".to_string(), |e| e.to_string())
                ),
            });
        }
    }
    Ok(())
}
