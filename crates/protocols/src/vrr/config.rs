//! VRR's configuration: the scenario's `consensus` object without its `protocol` key.
//!
//! All durations are milliseconds (fractions allowed) and are converted to nanoseconds once, in
//! [`VrrConfig::resolve`], which also validates them.

use super::Params;
use crate::config::{check_cluster, check_limits, client_timeout, duration, positions};
use coracle_core::{Cluster, ConfigIssue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_commit_interval() -> f64 {
    50.0
}
fn default_view_change_min() -> f64 {
    150.0
}
fn default_view_change_max() -> f64 {
    300.0
}
fn default_max_entries() -> u64 {
    64
}

/// VRR's `consensus` object (the driver removes the `protocol` key before deserialising).
/// Durations are in milliseconds; fractions are allowed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VrrConfig {
    /// Interval in ms of the primary's heartbeat (default 50): every commit_interval the
    /// primary sends a Commit(v, k) to each backup it sent nothing to since the previous tick
    /// (§4.1), or re-sends the first Prepare that backup has not acknowledged. Should be well
    /// below view_change_timeout_min.
    /// Also accepted as `heartbeat_interval`, Raft's name, so that one scenario runs under
    /// both protocols.
    #[serde(default = "default_commit_interval", alias = "heartbeat_interval")]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub commit_interval: f64,
    /// Lower bound in ms of the view-change timeout (default 150). A backup that hears nothing
    /// from the primary for this long starts a view change (§4.2); a view change that does not
    /// complete within it moves to the next view; a recovering replica retries after it
    /// (§4.3). Every (re)arm draws uniformly from [view_change_timeout_min,
    /// view_change_timeout_max) so that replicas do not time out in lockstep (the paper does
    /// not say how timeouts are chosen).
    /// Also accepted as `election_timeout_min`.
    #[serde(default, alias = "election_timeout_min")]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub view_change_timeout_min: Option<f64>,
    /// Upper bound (exclusive) in ms of the view-change timeout (default 300). May equal
    /// view_change_timeout_min (no randomisation).
    /// Also accepted as `election_timeout_max`.
    #[serde(default, alias = "election_timeout_max")]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub view_change_timeout_max: Option<f64>,
    /// Compact form (as Raft's): a view-change timeout range of [timeout, 2 * timeout) ms, in
    /// place of the two keys above. Default (absent): the two keys apply.
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub timeout: Option<f64>,
    /// Client proxy retry timeout in ms (default: view_change_timeout_max). On expiry the proxy
    /// resends the same request (same request number) to a random server; a backup answers
    /// with its view so that the proxy finds the primary.
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub client_timeout: Option<f64>,
    /// Most log entries carried by one NewState message of state transfer (§5.2) (default 64,
    /// at least 1). DoViewChange and StartView carry the log after the receiver's
    /// commit-number, StartView at most this many ops or 64, whichever is larger (a replica
    /// further behind fetches the rest by state transfer); the primary's RecoveryResponse
    /// carries its whole log (its checkpoint and the log after it), as in the paper.
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1))]
    pub max_entries_per_message: u64,
    /// Attempts (sends of one request, redirects included) after which the client proxy gives
    /// up and completes the operation with no result (it may or may not have taken effect).
    /// Default null: retry forever (null may also be written, as "no limit"). At least 1.
    #[serde(default, deserialize_with = "coracle_core::strict::nullable")]
    #[schemars(range(min = 1), extend("x-nullable" = true))]
    pub client_max_attempts: Option<u32>,
    /// Disk-based replicas instead of the paper's diskless ones (default false). When true the
    /// view number, the last normal view and the log are written to disk before any message
    /// that reveals them, and a restarted replica resumes from its disk (normal status if its
    /// last normal view is its view, view-change status otherwise) instead of running the
    /// recovery protocol of §4.3. When false nothing is written and a restarted replica
    /// recovers from the others.
    #[serde(default)]
    pub durable: bool,
    /// Double the view-change timeout after each view abandoned for a later one before it was
    /// stable: a view change that did not complete, or a view that ended within
    /// view_change_timeout_max of starting (up to 64×, for the primary-failure timeout too;
    /// back to the drawn timeout once a view has been in normal operation for
    /// view_change_timeout_max), and a recovering replica's wait between Recovery retries (up
    /// to 4×). Default
    /// true, as PBFT does (Castro & Liskov 1999 §4.5.2); the VRR paper does not say. Without it
    /// a view change whose DoViewChange takes longer to deliver than the timeout (a long
    /// uncommitted suffix on a slow link) is abandoned again and again. False: fixed timeouts, as in the paper
    /// (the retransmission spacing of DoViewChange and StartView applies either way).
    #[serde(default = "yes")]
    pub view_change_backoff: bool,
    /// Checkpoints (§5.3): a replica that has executed this many ops beyond its last checkpoint
    /// takes one of its state machine (store and client table) at its last executed op and
    /// drops the log prefix it covers; every replica does so on its own. A replica that needs
    /// ops another has compacted (state transfer, recovery) is sent the checkpoint and the
    /// log after it. An integer >= 1; default 10000; null: never (the log grows for ever).
    /// Also accepted as `snapshot_threshold`, Raft's name, so that one scenario compacts under
    /// both protocols.
    #[serde(
        default = "default_checkpoint_interval",
        alias = "snapshot_threshold",
        deserialize_with = "coracle_core::strict::nullable"
    )]
    #[schemars(range(min = 1), extend("x-nullable" = true))]
    pub checkpoint_interval: Option<u64>,
}

fn default_checkpoint_interval() -> Option<u64> {
    Some(10_000)
}

fn yes() -> bool {
    true
}

impl Default for VrrConfig {
    fn default() -> Self {
        VrrConfig {
            commit_interval: default_commit_interval(),
            view_change_timeout_min: None,
            timeout: None,
            view_change_timeout_max: None,
            client_timeout: None,
            max_entries_per_message: default_max_entries(),
            client_max_attempts: None,
            durable: false,
            view_change_backoff: true,
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

impl VrrConfig {
    /// Validates the configuration and converts it to the form nodes use.
    pub(crate) fn resolve(
        &self,
        cluster: &Cluster,
    ) -> Result<(Params, Vec<ConfigIssue>), ConfigIssue> {
        check_cluster(cluster)?;
        let mut warnings = Vec::new();
        let (min_ms, max_ms) = match self.timeout {
            None => (
                self.view_change_timeout_min
                    .unwrap_or_else(default_view_change_min),
                self.view_change_timeout_max
                    .unwrap_or_else(default_view_change_max),
            ),
            Some(t) => {
                if self.view_change_timeout_min.is_some() || self.view_change_timeout_max.is_some()
                {
                    return Err(ConfigIssue::error(
                        "timeout",
                        "give either \"timeout\" or view_change_timeout_min/max (election_timeout_min/max), not both",
                    ));
                }
                (t, 2.0 * t)
            }
        };
        let (min_path, max_path) = if self.timeout.is_some() {
            ("timeout", "timeout")
        } else {
            ("view_change_timeout_min", "view_change_timeout_max")
        };
        let vmin = duration(min_path, min_ms)?;
        let vmax = duration(max_path, max_ms)?;
        if vmin > vmax {
            // One bound given, the other the default: say which is which.
            let shown = |v: Option<f64>, x: f64| match v {
                Some(_) => format!("{x}"),
                None => format!("{x} (the default)"),
            };
            return Err(ConfigIssue::error(
                "view_change_timeout_min",
                format!(
                    "expected view_change_timeout_min <= view_change_timeout_max, found {} > {} \
                     ms",
                    shown(self.view_change_timeout_min, min_ms),
                    shown(self.view_change_timeout_max, max_ms)
                ),
            ));
        }
        let commit_interval = duration("commit_interval", self.commit_interval)?;
        if commit_interval >= vmin {
            warnings.push(ConfigIssue::warning(
                "commit_interval",
                format!(
                    "expected commit_interval well below view_change_timeout_min, found {} ms >= \
                     {} ms: backups will start view changes between heartbeats",
                    self.commit_interval, min_ms
                ),
            ));
        }
        let client_timeout = client_timeout(self.client_timeout, vmax)?;
        check_limits(self.max_entries_per_message, self.client_max_attempts)?;
        let servers = cluster.servers.clone();
        if servers.len() == 1 && !self.durable {
            warnings.push(ConfigIssue::warning(
                "durable",
                "expected durable: true or at least 3 replicas, found a single diskless replica: \
                 after a crash it has lost everything and no other replica can help it recover, \
                 so it stays in recovering status",
            ));
        }
        if servers.len() == 2 && !self.durable {
            warnings.push(ConfigIssue::warning(
                "durable",
                "expected durable: true or at least 3 replicas, found 2 diskless replicas: a \
                 quorum of 2 is both, so after a crash the other alone cannot answer the \
                 recovering one (f + 1 = 2 responses are needed) and the cluster stops for good",
            ));
        }
        if self.checkpoint_interval == Some(0) {
            return Err(ConfigIssue::error(
                "checkpoint_interval",
                "expected an integer >= 1 (ops executed between checkpoints) or null (never), found 0",
            ));
        }
        let params = Params {
            view_change: (vmin, vmax),
            commit_interval,
            client_timeout,
            max_entries: self.max_entries_per_message,
            client_max_attempts: self.client_max_attempts,
            durable: self.durable,
            view_change_backoff: self.view_change_backoff,
            checkpoint_interval: self.checkpoint_interval,
            quorum: servers.len() / 2 + 1,
            servers,
            pos: positions(cluster),
        };
        Ok((params, warnings))
    }
}
