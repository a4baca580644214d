//! Simulated time.
//!
//! Time is an integer number of nanoseconds since the start of the run, so that event order never
//! depends on floating-point rounding. Configurations speak milliseconds (fractions allowed) and
//! are converted once, at load time.

/// A point in time or a duration, in nanoseconds.
pub type Time = u64;

/// One microsecond.
pub const US: Time = 1_000;
/// One millisecond.
pub const MS: Time = 1_000_000;

/// 2^52: from here on every `f64` is an integer.
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;

/// Converts milliseconds (as written in configurations) to [`Time`], rounding to the nearest
/// nanosecond and saturating at the ends of the range.
pub fn ms_to_time(ms: f64) -> Time {
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        let ns = ms * MS as f64;
        if (1.0..TWO_POW_52).contains(&ns) {
            // The common case, without a call to `round` (no SSE4.1 in the baseline target):
            // below 2^52, `ns + 0.5` is exact, and truncating it rounds half away from zero
            // exactly as `round` does.
            (ns + 0.5) as u64
        } else if ns >= u64::MAX as f64 {
            u64::MAX
        } else {
            ns.round() as u64
        }
    }
}

/// Converts [`Time`] to milliseconds, for reports.
pub fn time_to_ms(t: Time) -> f64 {
    t as f64 / MS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_whole_and_fractional_milliseconds() {
        assert_eq!(ms_to_time(150.0), 150 * MS);
        assert_eq!(ms_to_time(0.5), 500 * US);
        assert_eq!(ms_to_time(-3.0), 0);
        assert_eq!(ms_to_time(f64::NAN), 0);
        assert_eq!(time_to_ms(2_500_000), 2.5);
    }

    proptest::proptest! {
        /// The fast path rounds exactly as `f64::round` does, ties and all.
        #[test]
        fn fast_rounding_equals_round(ms in 0.0f64..1e12, half in proptest::bool::ANY) {
            let ms = if half { (ms * 1e6).trunc() / 1e6 + 0.0000005 } else { ms };
            let exact = (ms * MS as f64).round();
            let expected = if exact >= u64::MAX as f64 { u64::MAX } else { exact as u64 };
            proptest::prop_assert_eq!(ms_to_time(ms), expected);
        }
    }
}
