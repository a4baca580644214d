//! No committed entry is ever lost (Raft §5.4: committed entries are durable on a majority, and
//! followers only ever truncate conflicting, hence uncommitted, entries). Checked whenever a log
//! shrinks, a server recovers or a leader is elected, and at the end of the run: the last
//! committed entry must still be held, at its index, by enough servers that a majority can
//! hold it (servers that are down count as holding it, since their disks cannot be read).
//! Together with the prefix checks of state machine safety this covers every committed entry.

use super::{Prefix, Violation};
use coracle_core::{EntryId, NodeId, Time};

pub const NAME: &str = "committed_entries_durable";

#[allow(clippy::too_many_arguments)]
pub(super) fn check_majority(
    committed: &Prefix,
    servers: usize,
    is_server: &[bool],
    up: &[bool],
    compacted: &[u64],
    now: Time,
    logs: &dyn Fn(usize, u64) -> Option<EntryId>,
) -> Result<(), Violation> {
    let index = committed.len();
    let Some(last) = committed.get(index) else {
        return Ok(());
    };
    let majority = servers / 2 + 1;
    let mut missing = Vec::new();
    for n in 0..is_server.len() {
        // A server whose snapshot covers the index holds it too.
        if is_server[n] && up[n] && compacted[n] < index && logs(n, index) != Some(last.entry) {
            missing.push(NodeId(n as u32));
        }
    }
    if servers - missing.len() < majority {
        return Err(Violation {
            invariant: NAME,
            time: now,
            nodes: missing.clone(),
            message: format!(
                "the entry committed at index {index} ({}) is no longer held by a majority: {} of {servers} servers lost it",
                last.entry,
                missing.len()
            ),
        });
    }
    Ok(())
}
