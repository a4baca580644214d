//! Raft's configuration: the scenario's `consensus` object without its `protocol` key.
//!
//! All durations are milliseconds (fractions allowed) and are converted to nanoseconds once, in
//! [`RaftConfig::resolve`], which also validates them.

use super::Params;
use crate::config::{check_cluster, check_limits, client_timeout, duration, positions};
use coracle_core::{Cluster, ConfigIssue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The largest backoff exponent: with `backoff`, the candidate timeout range is multiplied by at
/// most `2^6 = 64`.
pub const MAX_BACKOFF_EXPONENT: u32 = 6;

/// Teaching switches that break Raft's safety on purpose. Never use them outside a lesson.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnsafeSwitch {
    /// UNSAFE: grant votes (and pre-votes) without the election restriction (§5.4.1), so a
    /// server with a stale log can win and overwrite committed entries (2015 prototype bug R1).
    NoLogCheck,
    /// UNSAFE: `votedFor` is not durable: a restarted server forgets whom it voted for and can
    /// vote twice in one term, allowing two leaders in a term (2015 prototype bug R3).
    ForgetVoteOnCrash,
    /// UNSAFE: the leader advances its commit index over entries of older terms by counting
    /// replicas, which lets a committed entry be overwritten (Figure 8, §5.4.2; bug R7).
    CommitOldTerms,
    /// UNSAFE: the leader never decrements nextIndex after a rejected AppendEntries (bug R4),
    /// and, as the 2015 prototype did (bug R6), a follower whose consistency check failed still
    /// advances its commit index to min(leaderCommit, its last index), applying unchecked
    /// entries.
    NoBacktrack,
    /// UNSAFE: a batch of newly committed entries is applied in descending index order (bug
    /// R8), so the state machine sees commands out of order.
    ReverseApply,
}

fn default_heartbeat() -> f64 {
    50.0
}
fn default_max_entries() -> u64 {
    64
}
fn default_reorder_buffer() -> u64 {
    8
}
fn default_max_inflight() -> u64 {
    DEFAULT_MAX_INFLIGHT
}

/// Default for `max_inflight_messages`; see `RaftConfig::max_inflight_messages`.
pub const DEFAULT_MAX_INFLIGHT: u64 = 8;
/// Upper bound of `snapshot_trailing` (the schema's maximum, enforced by `validate` too).
const MAX_SNAPSHOT_TRAILING: u64 = 100_000_000;

fn default_snapshot_threshold() -> Option<u64> {
    Some(10_000)
}

/// Raft's `consensus` object (the driver removes the `protocol` key before deserialising).
/// Durations are in milliseconds; fractions are allowed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaftConfig {
    /// Lower bound of the election timeout in ms (default 150). Followers draw their timeout
    /// uniformly from [election_timeout_min, election_timeout_max) at every (re)arm (§5.2).
    /// Also the leader-recency window of `leader_stickiness` and pre-vote, and the CheckQuorum
    /// period.
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub election_timeout_min: Option<f64>,
    /// Upper bound (exclusive) of the election timeout in ms (default 300). May equal
    /// election_timeout_min (no randomisation, as in the 150-150 curve of Figure 16).
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub election_timeout_max: Option<f64>,
    /// Compact form: an election timeout range of [timeout, 2 * timeout) ms. Cannot be combined
    /// with election_timeout_min or election_timeout_max.
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub timeout: Option<f64>,
    /// Interval in ms between a leader's AppendEntries rounds (heartbeats) (default 50). Should be
    /// well below election_timeout_min.
    #[serde(default = "default_heartbeat")]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub heartbeat_interval: f64,
    /// Client proxy retry timeout in ms (default: the upper bound of the election timeout). On
    /// expiry the proxy forgets the leader and resends the request to a random server.
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1e10))]
    pub client_timeout: Option<f64>,
    /// 2015 option: the leader sends new entries only with the next heartbeat instead of at once
    /// (ReadIndex confirmation rounds are batched the same way). Default false.
    #[serde(default)]
    pub batch_requests: bool,
    /// 2015 option: after a rejected AppendEntries the leader retries at the next heartbeat
    /// instead of at once. Default false.
    #[serde(default)]
    pub lazy_update: bool,
    /// Faster log back-up (thesis §5.3, etcd style): a rejection carries the conflicting term
    /// and the first index the follower stores for it (or its log length + 1), and the leader
    /// jumps nextIndex past its own last entry of that term, or to that index. Default false:
    /// nextIndex is decremented by one per rejection.
    #[serde(default)]
    pub fast_backtrack: bool,
    /// Most entries carried by one AppendEntries (default 64, at least 1).
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1))]
    pub max_entries_per_message: u64,
    /// Flow control (etcd's `MaxInflightMsgs`): most AppendEntries carrying entries that the
    /// leader keeps unacknowledged towards one follower it replicates to optimistically
    /// (default 8, at least 1). A full window holds further entries back until answers
    /// arrive; heartbeats still go. Small, because a request lost or overtaken costs the whole
    /// window: the follower rejects everything after the gap.
    #[serde(default = "default_max_inflight")]
    #[schemars(range(min = 1))]
    pub max_inflight_messages: u64,
    /// A replicating follower with at most this many unacknowledged entries (values above
    /// `max_entries_per_message` act as that) gets them all again with every AppendEntries, so that a request
    /// lost or overtaken on the way is covered by the next one instead of being rejected and
    /// resent; more entries than that are sent once each. Default 0: every entry once (etcd).
    #[serde(default)]
    pub resend_unacknowledged: u64,
    /// A follower holds up to this many AppendEntries of its leader that arrive ahead of a gap
    /// in its log (a request overtaken on a link with jitter) and handles them once the gap is
    /// filled, as an in-order transport (TCP) would deliver them, instead of rejecting them and
    /// making the leader send everything after the gap again. Holding a message is what a
    /// slower network would do, so safety is unaffected; empty requests (heartbeats) are never
    /// held, so a lost request is still found by the next heartbeat. Default 8; 0 rejects at
    /// once.
    #[serde(default = "default_reorder_buffer")]
    #[schemars(range(max = 1000))]
    pub reorder_buffer: u64,
    /// Serve reads (Get) with the ReadIndex protocol (thesis §6.4) instead of through the log:
    /// once the leader has committed an entry of its term it records readIndex = commitIndex,
    /// confirms leadership with a heartbeat round (started after the read arrived) acknowledged
    /// by a majority, waits until lastApplied >= readIndex and answers from the state machine.
    /// Default false.
    #[serde(default)]
    pub read_index: bool,
    /// Attempts (sends of one request, redirects included) after which the client proxy gives
    /// up and completes the operation with no result (it may or may not have been applied).
    /// Default null: retry forever (null may also be written, as "no limit"). At least 1.
    #[serde(default, deserialize_with = "coracle_core::strict::nullable")]
    #[schemars(range(min = 1), extend("x-nullable" = true))]
    pub client_max_attempts: Option<u32>,
    /// Pre-vote (thesis §9.6): before incrementing its term a would-be candidate asks for
    /// pre-votes carrying term + 1; a server grants one iff term + 1 > its own term, the
    /// requester's log is at least as up to date, and it has not heard from a valid leader
    /// within election_timeout_min (a leader counts as hearing from itself). Receiving a
    /// pre-vote request never changes a term; every response carries the responder's current
    /// term, and a requester seeing a higher term adopts it. A pre-candidate becomes candidate
    /// after pre-votes from a majority including itself; if its timer fires first it starts a
    /// new pre-vote round. A candidate whose election fails also goes back through pre-vote.
    /// Default false (`prevote_without_leader_check` turns it on).
    #[serde(default)]
    pub prevote: Option<bool>,
    /// Pre-vote without the leader-recency condition (the etcd flavour when CheckQuorum is off):
    /// only the term and log conditions apply. Implies `prevote`. Default false.
    #[serde(default)]
    pub prevote_without_leader_check: bool,
    /// CheckQuorum (thesis §6.2): every election_timeout_min the leader checks that a majority,
    /// counting itself, answered it in its current term since the previous check (an
    /// AppendEntries or InstallSnapshot response of that term, accepted or not: a
    /// log-consistency rejection proves the follower hears the leader); otherwise it steps down
    /// to follower in the same term. Default false.
    #[serde(default)]
    pub check_quorum: bool,
    /// Leader stickiness (thesis §4.2.3): a server that has heard from a current leader within
    /// election_timeout_min (a leader counts as hearing from itself) ignores RequestVote entirely,
    /// whatever its term (no term change, no vote, no answer). Default false.
    #[serde(default)]
    pub leader_stickiness: bool,
    /// A separate timeout range [min, max] in ms for candidates and pre-candidates (Howard's
    /// optimisation, e.g. [23, 46]); followers keep the election timeout. Default (absent): the
    /// election timeout range.
    #[serde(default)]
    #[schemars(extend("items" = {"type": "number", "minimum": 0.001, "maximum": 1e10}))]
    pub candidate_timeout: Option<[f64; 2]>,
    /// Binary exponential backoff: after each failed election attempt (the timer of a
    /// candidate or pre-candidate fires) the candidate timeout range doubles, up to 2^6 = 64
    /// times its base; reset when the server becomes leader or follower. Default false.
    #[serde(default)]
    pub backoff: bool,
    /// Lazy voting (Tangaroa): a RequestVote the server would grant is not answered and its term
    /// not adopted; the server records it (keeping the highest term, the first one on ties). A
    /// valid AppendEntries from the current leader clears it. When the server's own election
    /// timer fires while it holds one that is still grantable, it adopts that term and grants
    /// that vote (sending the reply then) instead of starting an election. RequestVotes it would
    /// not grant are handled as in basic Raft. Default false.
    #[serde(default)]
    pub lazy_voting: bool,
    /// Term bound H (Tangaroa): a RequestVote whose term is >= currentTerm + H is rejected
    /// without adopting its term. An integer >= 1; default null (no bound; null may be written).
    #[serde(default, deserialize_with = "coracle_core::strict::nullable")]
    #[schemars(range(min = 1), extend("x-nullable" = true))]
    pub term_bound: Option<u64>,
    /// Log compaction (§7, thesis chapter 5): when a server has applied this many entries
    /// beyond its last snapshot, it snapshots its state machine (client sessions included) at
    /// its last applied index, persists it and drops the log entries it covers. Every server
    /// does so independently. A leader brings a follower whose next entry it no longer holds
    /// up to date with InstallSnapshot (the whole snapshot in one message). An integer >= 1;
    /// default 10000; null: never compact (the log grows for ever).
    #[serde(
        default = "default_snapshot_threshold",
        deserialize_with = "coracle_core::strict::nullable"
    )]
    #[schemars(range(min = 1), extend("x-nullable" = true))]
    pub snapshot_threshold: Option<u64>,
    /// Entries a server keeps in its log below its own snapshot (etcd keeps 5,000), so that a
    /// follower slightly behind the snapshot point is sent those entries rather than the
    /// whole snapshot; without them, a follower whose snapshot takes longer to arrive than the
    /// leader takes to apply `snapshot_threshold` more entries never catches up. Kept in
    /// memory only: a restarted server resumes from its snapshot. Default 0.
    #[serde(default)]
    #[schemars(range(max = 100000000))]
    pub snapshot_trailing: u64,
    /// UNSAFE teaching switches: "no_log_check", "forget_vote_on_crash", "commit_old_terms",
    /// "no_backtrack", "reverse_apply". Each breaks safety on purpose. Default empty.
    #[serde(default, rename = "unsafe")]
    pub unsafe_switches: Vec<UnsafeSwitch>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_min: None,
            election_timeout_max: None,
            timeout: None,
            heartbeat_interval: default_heartbeat(),
            client_timeout: None,
            batch_requests: false,
            lazy_update: false,
            fast_backtrack: false,
            max_entries_per_message: default_max_entries(),
            max_inflight_messages: default_max_inflight(),
            resend_unacknowledged: 0,
            reorder_buffer: default_reorder_buffer(),
            read_index: false,
            client_max_attempts: None,
            prevote: None,
            prevote_without_leader_check: false,
            check_quorum: false,
            leader_stickiness: false,
            candidate_timeout: None,
            backoff: false,
            lazy_voting: false,
            term_bound: None,
            snapshot_threshold: default_snapshot_threshold(),
            snapshot_trailing: 0,
            unsafe_switches: Vec::new(),
        }
    }
}

impl RaftConfig {
    /// True if the teaching switch `s` is on.
    pub fn is_unsafe(&self, s: UnsafeSwitch) -> bool {
        self.unsafe_switches.contains(&s)
    }

    /// The election timeout range in ms after defaults and the compact `timeout` key.
    pub fn election_range_ms(&self) -> (f64, f64) {
        match self.timeout {
            Some(t) => (t, 2.0 * t),
            None => (
                self.election_timeout_min.unwrap_or(150.0),
                self.election_timeout_max.unwrap_or(300.0),
            ),
        }
    }

    /// Validates the configuration and converts it to the form nodes use.
    pub(crate) fn resolve(
        &self,
        cluster: &Cluster,
    ) -> Result<(Params, Vec<ConfigIssue>), ConfigIssue> {
        check_cluster(cluster)?;
        for (k, sw) in self.unsafe_switches.iter().enumerate() {
            if self.unsafe_switches[..k].contains(sw) {
                return Err(ConfigIssue::error(
                    format!("unsafe[{k}]"),
                    "expected each teaching switch once, found one named twice",
                ));
            }
        }
        let mut warnings = Vec::new();
        let (min_path, max_path) = if let Some(t) = self.timeout {
            for (k, v) in [
                ("election_timeout_min", self.election_timeout_min),
                ("election_timeout_max", self.election_timeout_max),
            ] {
                if v.is_some() {
                    return Err(ConfigIssue::error(
                        "timeout",
                        format!(
                            "expected either `timeout` or `{k}`, found both (timeout: {t} means an \
                             election timeout range of [{t}, {}) ms)",
                            2.0 * t
                        ),
                    ));
                }
            }
            ("timeout", "timeout")
        } else {
            ("election_timeout_min", "election_timeout_max")
        };
        let (min_ms, max_ms) = self.election_range_ms();
        let emin = duration(min_path, min_ms)?;
        let emax = duration(max_path, max_ms)?;
        if emin > emax {
            // One bound given, the other the default: say which is which.
            let shown = |v: Option<f64>, x: f64| match v {
                Some(_) => format!("{x}"),
                None => format!("{x} (the default)"),
            };
            return Err(ConfigIssue::error(
                "election_timeout_min",
                format!(
                    "expected election_timeout_min <= election_timeout_max, found {} > {} ms",
                    shown(self.election_timeout_min, min_ms),
                    shown(self.election_timeout_max, max_ms)
                ),
            ));
        }
        let heartbeat = duration("heartbeat_interval", self.heartbeat_interval)?;
        if heartbeat >= emin {
            warnings.push(ConfigIssue::warning(
                "heartbeat_interval",
                format!(
                    "expected heartbeat_interval well below election_timeout_min, found {} ms >= \
                     {min_ms} ms: followers will time out between heartbeats",
                    self.heartbeat_interval
                ),
            ));
        }
        let client_timeout = client_timeout(self.client_timeout, emax)?;
        let candidate = match self.candidate_timeout {
            Some([lo, hi]) => {
                let a = duration("candidate_timeout", lo)?;
                let b = duration("candidate_timeout", hi)?;
                if a > b {
                    return Err(ConfigIssue::error(
                        "candidate_timeout",
                        format!("expected [min, max] with min <= max, found [{lo}, {hi}] ms"),
                    ));
                }
                (a, b)
            }
            None => (emin, emax),
        };
        check_limits(self.max_entries_per_message, self.client_max_attempts)?;
        if self.reorder_buffer > 1000 {
            return Err(ConfigIssue::error(
                "reorder_buffer",
                format!(
                    "expected an integer from 0 to 1000, found {}",
                    self.reorder_buffer
                ),
            ));
        }
        if self.max_inflight_messages == 0 {
            return Err(ConfigIssue::error(
                "max_inflight_messages",
                "expected an integer >= 1, found 0",
            ));
        }
        if self.term_bound == Some(0) {
            return Err(ConfigIssue::error(
                "term_bound",
                "expected an integer H >= 1 or null, found 0 (a bound of 0 would refuse every \
                 RequestVote)",
            ));
        }
        if self.term_bound == Some(1)
            && (self.prevote == Some(true) || self.prevote_without_leader_check)
            && cluster.servers.len() > 1
        {
            warnings.push(ConfigIssue::warning(
                "term_bound",
                "expected a bound of 2 or more with prevote, found 1: a pre-vote is granted only \
                 if the vote would be, and a bound of 1 refuses every vote for the next term, so \
                 no leader is ever elected",
            ));
        }
        if self.prevote == Some(false) && self.prevote_without_leader_check {
            warnings.push(ConfigIssue::warning(
                "prevote",
                "expected prevote true or left out with prevote_without_leader_check, found \
                 false: prevote_without_leader_check is a kind of pre-vote, so pre-vote is on",
            ));
        }
        if self.snapshot_trailing > MAX_SNAPSHOT_TRAILING {
            return Err(ConfigIssue::error(
                "snapshot_trailing",
                format!(
                    "expected an integer from 0 to {MAX_SNAPSHOT_TRAILING} (entries kept below the \
                     snapshot), found {}",
                    self.snapshot_trailing
                ),
            ));
        }
        if self.snapshot_threshold == Some(0) {
            return Err(ConfigIssue::error(
                "snapshot_threshold",
                "expected an integer >= 1 (entries applied between snapshots) or null (never \
                 snapshot), found 0",
            ));
        }
        if !self.unsafe_switches.is_empty() {
            let names: Vec<String> = self
                .unsafe_switches
                .iter()
                .map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            warnings.push(ConfigIssue::warning(
                "unsafe",
                format!(
                    "expected no unsafe switches in a production-like run, found [{}]: this \
                     Raft breaks safety on purpose",
                    names.join(", ")
                ),
            ));
        }

        let servers = cluster.servers.clone();
        let params = Params {
            election: (emin, emax),
            candidate,
            heartbeat,
            client_timeout,
            batch_requests: self.batch_requests,
            lazy_update: self.lazy_update,
            fast_backtrack: self.fast_backtrack,
            max_entries: self.max_entries_per_message,
            max_inflight: usize::try_from(self.max_inflight_messages).unwrap_or(usize::MAX),
            resend_unacked: self.resend_unacknowledged,
            reorder_buffer: self.reorder_buffer as usize,
            read_index: self.read_index,
            client_max_attempts: self.client_max_attempts,
            prevote: self.prevote == Some(true) || self.prevote_without_leader_check,
            prevote_leader_check: !self.prevote_without_leader_check,
            check_quorum: self.check_quorum,
            leader_stickiness: self.leader_stickiness,
            backoff: self.backoff,
            lazy_voting: self.lazy_voting,
            term_bound: self.term_bound,
            no_log_check: self.is_unsafe(UnsafeSwitch::NoLogCheck),
            forget_vote_on_crash: self.is_unsafe(UnsafeSwitch::ForgetVoteOnCrash),
            commit_old_terms: self.is_unsafe(UnsafeSwitch::CommitOldTerms),
            no_backtrack: self.is_unsafe(UnsafeSwitch::NoBacktrack),
            reverse_apply: self.is_unsafe(UnsafeSwitch::ReverseApply),
            snapshot_threshold: self.snapshot_threshold,
            snapshot_trailing: self.snapshot_trailing,
            majority: servers.len() / 2 + 1,
            servers,
            pos: positions(cluster),
        };
        Ok((params, warnings))
    }
}
