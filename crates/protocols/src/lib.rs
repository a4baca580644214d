//! Coracle's protocols. Each is a pure state machine implementing [`coracle_core::Protocol`];
//! nothing here knows about the simulator or sockets.

pub mod dummy;
pub mod raft;
#[cfg(test)]
mod testkit;
pub mod vrr;
