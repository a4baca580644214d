//! Validation helpers shared by the protocols' configurations (`RaftConfig`, `VrrConfig`), so
//! that the keys they have in common are checked alike, with the same messages.

use coracle_core::{Cluster, ConfigIssue, Time, ms_to_time};

/// A positive, finite duration in ms converted to nanoseconds.
pub(crate) fn duration(path: &str, ms: f64) -> Result<Time, ConfigIssue> {
    if !ms.is_finite() || ms <= 0.0 {
        return Err(ConfigIssue::error(
            path,
            format!("expected a positive, finite duration in milliseconds, found {ms}"),
        ));
    }
    let t = ms_to_time(ms);
    if t == 0 {
        return Err(ConfigIssue::error(
            path,
            format!("expected a duration of at least 1 ns (0.000001 ms), found {ms} ms"),
        ));
    }
    Ok(t)
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
