//! Log Matching (Raft §5.3, Figure 3): if two logs contain an entry with the same index and
//! term, the logs are identical in all entries up through that index. Checked at the end of the
//! run over the logs of the servers that are up, with one chained hash per entry, so the cost is
//! linear in the total log length.

use super::Violation;
use coracle_core::{EntryId, NodeId, Time, rng::mix64};

pub const NAME: &str = "log_matching";

pub(super) fn check(
    is_server: &[bool],
    compacted: &[u64],
    now: Time,
    logs: &dyn Fn(usize, u64) -> Option<EntryId>,
    log_len: &dyn Fn(usize) -> Option<u64>,
) -> Result<(), Violation> {
    // Walk all logs index by index, keeping each one's chained hash of its prefix; at each
    // index, servers with the same term must have the same hash.
    let servers: Vec<(usize, u64)> = is_server
        .iter()
        .enumerate()
        .filter(|(_, s)| **s)
        .filter_map(|(n, _)| log_len(n).map(|l| (n, l)))
        .collect();
    let mut hash = vec![0u64; servers.len()];
    let longest = servers.iter().map(|s| s.1).max().unwrap_or(0);
    // Below the highest snapshot some logs cannot be read entry by entry: start there.
    let start = servers
        .iter()
        .map(|&(n, _)| compacted[n])
        .max()
        .unwrap_or(0)
        .max(1);
    let mut seen: Vec<(u64, u64, usize)> = Vec::with_capacity(servers.len());
    for i in start..=longest {
        seen.clear();
        for (k, &(n, len)) in servers.iter().enumerate() {
            if i > len {
                continue;
            }
            let Some(e) = logs(n, i) else { continue };
            hash[k] = mix64(hash[k] ^ mix64(e.term ^ e.digest.rotate_left(7)));
            match seen.iter().find(|(t, _, _)| *t == e.term) {
                Some(&(_, h, other)) if h != hash[k] => {
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
                None => seen.push((e.term, hash[k], n)),
            }
        }
    }
    Ok(())
}
