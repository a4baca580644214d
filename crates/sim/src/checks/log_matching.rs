//! Log Matching (Raft §5.3, Figure 3): if two logs contain an entry with the same index and
//! term, the logs are identical in all entries up through that index. Checked at the end of the
//! run over the logs of the servers that are up, with one chained hash per entry, so the cost is
//! linear in the total log length.

use super::Violation;
use coracle_core::{EntryId, NodeId, Time, rng::mix64};
use std::collections::HashMap;

pub const NAME: &str = "log_matching";

pub(super) fn check(
    is_server: &[bool],
    now: Time,
    logs: &dyn Fn(usize, u64) -> Option<EntryId>,
    log_len: &dyn Fn(usize) -> Option<u64>,
) -> Result<(), Violation> {
    // (index, term) -> (chained hash of the prefix, first node seen with it)
    let mut seen: HashMap<(u64, u64), (u64, usize)> = HashMap::new();
    for (n, _) in is_server.iter().enumerate().filter(|(_, s)| **s) {
        let Some(len) = log_len(n) else { continue };
        let mut h = 0u64;
        for i in 1..=len {
            let Some(e) = logs(n, i) else { break };
            h = mix64(h ^ mix64(e.term ^ mix64(e.digest)));
            match seen.get(&(i, e.term)) {
                Some(&(other_h, other)) if other_h != h => {
                    return Err(Violation {
                        invariant: NAME,
                        time: now,
                        nodes: vec![NodeId(other as u32), NodeId(n as u32)],
                        message: format!(
                            "{} and {} both have an entry of term {} at index {i}, but their logs differ at or before it",
                            NodeId(other as u32),
                            NodeId(n as u32),
                            e.term
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert((i, e.term), (h, n));
                }
            }
        }
    }
    Ok(())
}
