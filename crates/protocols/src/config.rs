//! Validation helpers shared by the protocols' configurations (`RaftConfig`, `VrrConfig`), so
//! that the keys they have in common are checked alike, with the same messages.

use coracle_core::{Cluster, ConfigIssue, Time, ms_to_time};

/// Shortest protocol timer: 1 µs. Shorter periods only make a run crawl (a heartbeat of 1 ns
/// is 10^9 timer events per simulated second) and no real system has them.
const MIN_MS: f64 = 0.001;
/// Longest: 10^10 ms (about 115 days), the longest horizon a scenario may have.
const MAX_MS: f64 = 1e10;

/// A duration in ms from 1 µs to 10^10 ms, converted to nanoseconds.
pub(crate) fn duration(path: &str, ms: f64) -> Result<Time, ConfigIssue> {
    if !ms.is_finite() || ms <= 0.0 {
        return Err(ConfigIssue::error(
            path,
            format!("expected a positive, finite duration in milliseconds, found {ms}"),
        ));
    }
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        let shown = if !(1e-9..1e15).contains(&ms) {
            format!("{ms:e}")
        } else {
            ms.to_string()
        };
        return Err(ConfigIssue::error(
            path,
            format!(
                "expected a duration from {MIN_MS} ms (1 µs) to {MAX_MS} ms (about 115 days), \
                 found {shown} ms"
            ),
        ));
    }
    Ok(ms_to_time(ms))
}

/// The proxy's retry timeout: `client_timeout` if given, else `default`.
pub(crate) fn client_timeout(ms: Option<f64>, default: Time) -> Result<Time, ConfigIssue> {
    match ms {
        Some(ms) => duration("client_timeout", ms),
        None => Ok(default),
    }
}

/// `max_entries_per_message` and `client_max_attempts` (unless null) must be at least 1.
pub(crate) fn check_limits(
    max_entries_per_message: u64,
    client_max_attempts: Option<u32>,
) -> Result<(), ConfigIssue> {
    if max_entries_per_message == 0 {
        return Err(ConfigIssue::error(
            "max_entries_per_message",
            "expected an integer >= 1, found 0",
        ));
    }
    if client_max_attempts == Some(0) {
        return Err(ConfigIssue::error(
            "client_max_attempts",
            "expected an integer >= 1 or null (retry forever), found 0",
        ));
    }
    Ok(())
}

/// Most servers in one Raft or VRR cluster. Each server keeps state per peer (next and match
/// indexes, acknowledgements, votes), so memory grows with the square of the cluster: 10,000
/// servers took 3.7 GB before the first event. Real clusters have 3 to 7; large networks are
/// built from hubs and clients around them.
pub(crate) const MAX_SERVERS: usize = 2000;

/// The cluster is one a replicated protocol can hold in memory.
pub(crate) fn check_cluster(cluster: &Cluster) -> Result<(), ConfigIssue> {
    let n = cluster.servers.len();
    if n > MAX_SERVERS {
        return Err(ConfigIssue::error(
            "",
            format!(
                "expected at most {MAX_SERVERS} servers in one cluster, found {n}: every server \
                 keeps state per peer, so memory grows with the square of the cluster (use \
                 hubs and clients for large networks)"
            ),
        ));
    }
    Ok(())
}

/// `pos[id.index()]`: the position of server `id` in `cluster.servers` (`None` for clients).
pub(crate) fn positions(cluster: &Cluster) -> Vec<Option<usize>> {
    let servers = &cluster.servers;
    let mut pos = vec![
        None;
        cluster
            .names
            .len()
            .max(1 + servers.iter().map(|s| s.index()).max().unwrap_or(0))
    ];
    for (i, s) in servers.iter().enumerate() {
        pos[s.index()] = Some(i);
    }
    pos
}
