//! Seeded random streams.
//!
//! Every source of randomness in a run (each node's protocol timers, each link direction's
//! latency and loss, each client's workload, fault schedules) gets its own stream derived from
//! the master seed and a purpose label. Adding a client therefore does not shift any other
//! stream's draws, and results do not depend on the order in which streams are consumed.

use rand::SeedableRng;

/// The random number generator handed to protocols and used by the simulator:
/// xoshiro256++ (Blackman & Vigna), whose output is specified bit for bit on every platform.
/// Statistically strong for simulation (it passes BigCrush and PractRand), 32 bytes of state
/// and a few instructions per draw; not cryptographic, which nothing here needs. Every link
/// direction owns one, so size matters: ChaCha8, used before, kept about 300 bytes per stream
/// and made each packet's latency draw about twice as expensive.
pub type Rng = rand_xoshiro::Xoshiro256PlusPlus;

/// Purposes of derived streams. Stable numbers: changing them changes every result.
pub mod purpose {
    /// A server's or client proxy's protocol randomness (timeouts, random server choice).
    pub const PROTOCOL: u64 = 1;
    /// A link direction's latency, loss and duplication draws.
    pub const LINK: u64 = 2;
    /// A client's workload (arrival times, operations, keys).
    pub const WORKLOAD: u64 = 3;
    /// Timeline randomness (role-targeted choices, random fault schedules).
    pub const TIMELINE: u64 = 4;
    /// A node's storage latency draws.
    pub const STORAGE: u64 = 5;
    /// Drawing trial seeds in sweeps.
    pub const TRIAL: u64 = 6;
}

/// SplitMix64 finaliser: a cheap bijective mixer used to derive seeds.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives the seed of the stream for `purpose` and `index` from the master `seed`.
pub fn derive_seed(seed: u64, purpose: u64, index: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ purpose.wrapping_mul(0xD6E8_FEB8_6659_FD93)) ^ index)
}

/// A fresh stream for `purpose` and `index` under the master `seed`.
pub fn stream(seed: u64, purpose: u64, index: u64) -> Rng {
    Rng::seed_from_u64(derive_seed(seed, purpose, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a1 = stream(7, purpose::PROTOCOL, 0).next_u64();
        let a2 = stream(7, purpose::PROTOCOL, 0).next_u64();
        let b = stream(7, purpose::PROTOCOL, 1).next_u64();
        let c = stream(7, purpose::LINK, 0).next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn generator_output_is_pinned() {
        // Guards the claim that results are identical on every machine and release: if this
        // value changes, every recorded seed replays differently.
        assert_eq!(stream(1, purpose::PROTOCOL, 0).next_u64(), PINNED);
    }
    const PINNED: u64 = 1_779_270_783_713_526_557;
}
