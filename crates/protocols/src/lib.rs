//! Coracle's protocols. Each is a pure state machine implementing [`coracle_core::Protocol`];
//! nothing here knows about the simulator or sockets.

mod config;
pub mod dummy;
mod proxy;
pub mod raft;
mod stored;
#[cfg(test)]
mod testkit;
pub mod vrr;
