//! What checkers and metrics may see of a node.
//!
//! Checkers never reach into a protocol's private state: after every step the driver asks the
//! node for its [`Observation`] (a small `Copy` value) and, when the checks need it, for the
//! identity of individual log entries through [`crate::Node::entry`]. Raft's term and VRR's view
//! number both appear as `term`, so that the same invariants and metrics apply to both.

use crate::NodeId;
use serde::{Deserialize, Serialize};

/// A node's role, in the vocabulary common to leader-based protocols.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
// A full word: an observation is built field by field and then copied whole, and a one-byte
// role read back inside a wide word cannot be forwarded from the store that wrote it (a stall
// after every step, measured on `raft-5`).
#[repr(u64)]
pub enum Role {
    /// Crashed (set by the driver, never by a protocol).
    Down,
    /// Following a leader (Raft follower, VRR backup in normal status).
    #[default]
    Follower,
    /// Asking for pre-votes before starting an election (Raft with pre-vote).
    PreCandidate,
    /// Running an election (Raft candidate, VRR replica in view-change status).
    Candidate,
    /// Leading (Raft leader, VRR primary in normal status).
    Leader,
    /// Rebuilding state after a restart (VRR recovering status).
    Recovering,
    /// A client proxy.
    Client,
    /// A router.
    Hub,
}

impl Role {
    /// A small number per role for plots of role over time (0 = down, 1 = follower, 2 =
    /// pre-candidate, 3 = candidate, 4 = leader, 5 = recovering), extending the 2015 prototype's
    /// mode figure (0 failed, 1 follower, 2 candidate, 3 leader) with the new roles.
    pub fn level(self) -> u8 {
        match self {
            Role::Down => 0,
            Role::Follower => 1,
            Role::PreCandidate => 2,
            Role::Candidate => 3,
            Role::Leader => 4,
            Role::Recovering => 5,
            Role::Client | Role::Hub => 0,
        }
    }

    /// The name used in results and traces.
    pub fn name(self) -> &'static str {
        match self {
            Role::Down => "down",
            Role::Follower => "follower",
            Role::PreCandidate => "pre_candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
            Role::Recovering => "recovering",
            Role::Client => "client",
            Role::Hub => "hub",
        }
    }
}

/// The identity of a log entry: the term (or view) it was created in and a digest of its
/// command (0 for entries without a command, such as a leader's no-op).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct EntryId {
    pub term: u64,
    pub digest: u64,
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.digest == 0 {
            write!(f, "no-op of term {}", self.term)
        } else {
            write!(f, "command {:08x} of term {}", self.digest >> 32, self.term)
        }
    }
}

/// A node's externally visible state after a step.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Observation {
    pub role: Role,
    /// Raft's current term; VRR's view number.
    pub term: u64,
    /// Who the node believes is the leader of `term`, if anyone.
    pub leader: Option<NodeId>,
    /// Highest log index known committed (Raft commitIndex, VRR commit-number).
    pub commit_index: u64,
    /// Index of the last log entry (Raft last log index, VRR op-number).
    pub log_len: u64,
    /// Term of the last log entry (0 when the log is empty).
    pub last_log_term: u64,
    /// Index of the last entry folded into a snapshot (0: none). [`crate::Node::entry`]
    /// returns `None` below it and the folded entry's identity at it, so checkers know which
    /// missing entries are compacted rather than lost.
    pub compacted: u64,
}

impl Observation {
    /// Copies `o` field by field. An observation is built field by field just before it is
    /// recorded, and a whole-struct copy reads it back in wide words that cannot be forwarded
    /// from those narrow stores (a stall after every step).
    #[inline(always)]
    pub fn assign(&mut self, o: &Observation) {
        self.role = o.role;
        self.term = o.term;
        self.leader = o.leader;
        self.commit_index = o.commit_index;
        self.log_len = o.log_len;
        self.last_log_term = o.last_log_term;
        self.compacted = o.compacted;
    }

    /// The observation of a crashed node.
    pub fn down() -> Self {
        Observation {
            role: Role::Down,
            ..Default::default()
        }
    }
}
