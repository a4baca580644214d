//! Latency distributions.
//!
//! Every delay in a scenario (a link direction's per-packet latency, a disk write) is drawn from
//! one of these. Draws are in milliseconds and converted to integer nanoseconds at once, so the
//! event order never depends on float comparisons. Negative draws of the normal distribution are
//! redrawn (truncation at 0), not clamped, so the shape of the remaining curve is preserved.

use coracle_core::{Rng, Time, ms_to_time};
use rand::{Rng as _, RngExt};
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto};
use serde::Serialize;

/// A validated delay distribution, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum Delay {
    Constant { value: f64 },
    Uniform { min: f64, max: f64 },
    Normal { mean: f64, sd: f64 },
    Lognormal { mu: f64, sigma: f64 },
    Exponential { mean: f64 },
    Pareto { scale: f64, shape: f64 },
}

impl Default for Delay {
    fn default() -> Self {
        Delay::Constant { value: 0.0 }
    }
}

/// A [`Delay`] prepared for drawing on a hot path (every packet's hop, every disk write).
///
/// Constant and uniform delays are converted to nanoseconds once, so a draw is one random
/// word and a multiply instead of a float range's set-up and a float-to-time conversion per
/// packet. A uniform delay is drawn as `lo + ⌊u · span / 2⁶⁴⌋` for a uniform 64-bit `u`:
/// uniform on the whole nanoseconds of `[min, max)` up to a relative bias below `span / 2⁶⁴`
/// (5·10⁻¹¹ for a one-second span, 5·10⁻⁶ for a day). Other shapes draw as [`Delay::sample`].
#[derive(Clone, Debug, PartialEq)]
pub struct Sampler {
    fast: Fast,
    delay: Delay,
}

#[derive(Copy, Clone, Debug, PartialEq)]
enum Fast {
    Constant(Time),
    Uniform { lo: Time, span: Time },
    Other,
}

impl Sampler {
    /// Prepares `delay`.
    pub fn new(delay: Delay) -> Self {
        let fast = match delay {
            Delay::Constant { value } => Fast::Constant(ms_to_time(value)),
            Delay::Uniform { min, max } => {
                let (lo, hi) = (ms_to_time(min), ms_to_time(max));
                if hi > lo {
                    Fast::Uniform { lo, span: hi - lo }
                } else {
                    Fast::Constant(lo)
                }
            }
            _ => Fast::Other,
        };
        Sampler { fast, delay }
    }

    /// The distribution as configured.
    pub fn delay(&self) -> &Delay {
        &self.delay
    }

    /// One draw, in nanoseconds.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> Time {
        match self.fast {
            Fast::Constant(t) => t,
            Fast::Uniform { lo, span } => {
                lo + ((u128::from(rng.next_u64()) * u128::from(span)) >> 64) as Time
            }
            Fast::Other => self.delay.sample(rng),
        }
    }
}

/// The 2015 prototype's link classes: small, medium, large.
pub fn latency_class(class: &str) -> Option<f64> {
    match class.to_ascii_lowercase().as_str() {
        "s" | "small" => Some(5.0),
        "m" | "medium" => Some(10.0),
        "l" | "large" => Some(20.0),
        _ => None,
    }
}

impl Delay {
    /// A constant delay.
    pub fn constant(ms: f64) -> Self {
        Delay::Constant { value: ms }
    }

    /// The expected value in milliseconds (used as the routing cost of a link).
    pub fn mean_ms(&self) -> f64 {
        match *self {
            Delay::Constant { value } => value,
            Delay::Uniform { min, max } => (min + max) / 2.0,
            Delay::Normal { mean, sd } => truncated_normal_mean(mean, sd),
            Delay::Lognormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Delay::Exponential { mean } => mean,
            Delay::Pareto { scale, shape } => shape * scale / (shape - 1.0),
        }
    }

    /// One draw, in nanoseconds.
    pub fn sample(&self, rng: &mut Rng) -> Time {
        let ms = match *self {
            Delay::Constant { value } => value,
            Delay::Uniform { min, max } => {
                if max > min {
                    rng.random_range(min..max)
                } else {
                    min
                }
            }
            Delay::Normal { mean, sd } => {
                if sd == 0.0 {
                    mean.max(0.0)
                } else {
                    truncated_normal(mean, sd, rng)
                }
            }
            Delay::Lognormal { mu, sigma } => {
                LogNormal::new(mu, sigma).expect("validated").sample(rng)
            }
            Delay::Exponential { mean } => Exp::new(1.0 / mean).expect("validated").sample(rng),
            Delay::Pareto { scale, shape } => {
                Pareto::new(scale, shape).expect("validated").sample(rng)
            }
        };
        ms_to_time(ms)
    }

    /// Checks the parameters; returns the name of the bad field and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // Durations are capped like the horizon: a longer delay than any run is a mistake.
        let max = crate::config::MAX_TERMINATION_MS;
        let at_most = |name: &'static str, v: f64| -> Result<(), (&'static str, String)> {
            if v > max {
                Err((
                    name,
                    format!(
                        "expected at most {max} ms (about 115 days), found {}",
                        crate::config::num(v)
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let finite_nonneg = |name: &'static str, v: f64| -> Result<(), (&'static str, String)> {
            if !v.is_finite() || v < 0.0 {
                return Err((
                    name,
                    format!("expected a finite number ≥ 0 (milliseconds), found {v}"),
                ));
            }
            at_most(name, v)
        };
        let positive = |name: &'static str, v: f64| -> Result<(), (&'static str, String)> {
            if !v.is_finite() || v <= 0.0 {
                return Err((name, format!("expected a finite number > 0, found {v}")));
            }
            at_most(name, v)
        };
        match *self {
            Delay::Constant { value } => finite_nonneg("value", value),
            Delay::Uniform { min, max } => {
                finite_nonneg("min", min)?;
                finite_nonneg("max", max)?;
                if min > max {
                    return Err(("max", format!("expected max ≥ min ({min}), found {max}")));
                }
                Ok(())
            }
            Delay::Normal { mean, sd } => {
                if !mean.is_finite() {
                    return Err(("mean", format!("expected a finite number, found {mean}")));
                }
                finite_nonneg("sd", sd)?;
                if mean < 0.0 && sd == 0.0 {
                    return Err((
                        "mean",
                        format!("expected mean ≥ 0 when sd is 0, found {mean}"),
                    ));
                }
                at_most("mean", mean)?;
                if mean + 3.0 * sd < 0.0 {
                    return Err((
                        "mean",
                        format!(
                            "a normal with mean {mean} and sd {sd} is almost always negative; \
                             truncated at 0 it would be meaningless"
                        ),
                    ));
                }
                Ok(())
            }
            Delay::Lognormal { mu, sigma } => {
                if !mu.is_finite() || mu > 20.0 {
                    return Err((
                        "mu",
                        format!(
                            "expected a finite number ≤ 20 (ln of ms), found {}",
                            crate::config::num(mu)
                        ),
                    ));
                }
                if !sigma.is_finite() || !(0.0..=5.0).contains(&sigma) {
                    return Err((
                        "sigma",
                        format!(
                            "expected a number in [0, 5], found {}",
                            crate::config::num(sigma)
                        ),
                    ));
                }
                Ok(())
            }
            Delay::Exponential { mean } => positive("mean", mean),
            Delay::Pareto { scale, shape } => {
                positive("scale", scale)?;
                if !shape.is_finite() || shape <= 1.0 {
                    return Err((
                        "shape",
                        format!(
                            "expected a shape > 1 (so the mean, used for routing, is finite), found {shape}"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Mean of a normal truncated below at 0.
/// A draw of N(mean, sd²) truncated to [0, ∞). While at least about 30 % of draws are
/// non-negative (the truncation point `a` at most half an sd above the mean) negatives are
/// simply redrawn; beyond, where redrawing would take many tries, Robert's exponential
/// rejection sampler for a normal tail (Robert 1995, "Simulation of truncated normal
/// variables") accepts at least ~76 % of its proposals. Both are exact. (Redrawing up to 64
/// times and then clamping at 0, as before, put a fifth of the draws at exactly 0 for a mean
/// of -2 sd.) Validation refuses a mean below -3 sd.
fn truncated_normal(mean: f64, sd: f64, rng: &mut Rng) -> f64 {
    let a = -mean / sd;
    if a <= 0.5 {
        let n = Normal::new(mean, sd).expect("validated");
        loop {
            let v = n.sample(rng);
            if v >= 0.0 {
                return v;
            }
        }
    }
    let lambda = (a + (a * a + 4.0).sqrt()) / 2.0;
    loop {
        let e: f64 = rand_distr::Exp1.sample(rng);
        let z = a + e / lambda;
        let u: f64 = rng.random();
        if u <= (-(z - lambda) * (z - lambda) / 2.0).exp() {
            return (mean + sd * z).max(0.0);
        }
    }
}

fn truncated_normal_mean(mean: f64, sd: f64) -> f64 {
    if sd == 0.0 {
        return mean.max(0.0);
    }
    let a = -mean / sd;
    let pdf = (-a * a / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let tail = 0.5 * erfc(a / std::f64::consts::SQRT_2);
    if tail <= 0.0 {
        0.0
    } else {
        mean + sd * pdf / tail
    }
}

/// Complementary error function (Abramowitz–Stegun 7.1.26; 1e-7 accuracy is plenty for a
/// routing cost). Written here because std has no erf and it is not worth a dependency.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// As `coracle check` and the timeline summary print it.
impl std::fmt::Display for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Delay::Constant { value } => write!(f, "{value} ms"),
            Delay::Uniform { min, max } => write!(f, "U({min}, {max}) ms"),
            Delay::Normal { mean, sd } => write!(f, "N({mean}, {sd}) ms, truncated at 0"),
            Delay::Lognormal { mu, sigma } => write!(
                f,
                "lognormal(mu {mu}, sigma {sigma}), mean {:.3} ms",
                self.mean_ms()
            ),
            Delay::Exponential { mean } => write!(f, "exponential, mean {mean} ms"),
            Delay::Pareto { scale, shape } => write!(
                f,
                "pareto(scale {scale}, shape {shape}), mean {:.3} ms",
                self.mean_ms()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_core::{MS, rng};

    fn draws(d: &Delay, n: usize) -> Vec<f64> {
        let mut r = rng::stream(1, rng::purpose::LINK, 0);
        (0..n)
            .map(|_| d.sample(&mut r) as f64 / MS as f64)
            .collect()
    }

    #[test]
    fn sampler_draws_uniform_nanoseconds_in_range() {
        let s = Sampler::new(Delay::Uniform { min: 1.0, max: 2.0 });
        let mut r = rng::stream(1, rng::purpose::LINK, 0);
        let xs: Vec<Time> = (0..200_000).map(|_| s.sample(&mut r)).collect();
        assert!(xs.iter().all(|&x| (MS..2 * MS).contains(&x)));
        let mean = xs.iter().sum::<Time>() as f64 / xs.len() as f64;
        assert!((mean / MS as f64 - 1.5).abs() < 0.01, "mean {mean}");
        // Both ends of the range are reached (to within a microsecond).
        assert!(xs.iter().any(|&x| x < MS + 1_000));
        assert!(xs.iter().any(|&x| x > 2 * MS - 1_000));
        // Degenerate and constant delays draw their value; the others fall back to Delay.
        let mut r = rng::stream(1, rng::purpose::LINK, 0);
        assert_eq!(
            Sampler::new(Delay::Uniform { min: 3.0, max: 3.0 }).sample(&mut r),
            3 * MS
        );
        assert_eq!(Sampler::new(Delay::constant(0.25)).sample(&mut r), MS / 4);
        let e = Sampler::new(Delay::Exponential { mean: 4.0 });
        let (mut a, mut b) = (rng::stream(2, 0, 0), rng::stream(2, 0, 0));
        assert_eq!(e.sample(&mut a), e.delay().sample(&mut b));
    }

    #[test]
    fn sample_means_match_expected_values() {
        for d in [
            Delay::constant(3.0),
            Delay::Uniform { min: 1.0, max: 2.0 },
            Delay::Normal { mean: 5.0, sd: 3.0 },
            Delay::Lognormal {
                mu: 1.0,
                sigma: 0.5,
            },
            Delay::Exponential { mean: 4.0 },
            Delay::Pareto {
                scale: 1.0,
                shape: 3.0,
            },
        ] {
            d.validate().unwrap();
            let xs = draws(&d, 200_000);
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            assert!(
                (mean - d.mean_ms()).abs() / d.mean_ms() < 0.02,
                "{d:?}: sample mean {mean} vs {}",
                d.mean_ms()
            );
            assert!(xs.iter().all(|&x| x >= 0.0));
        }
    }

    #[test]
    fn uniform_stays_in_range_and_classes_map() {
        assert!(
            draws(
                &Delay::Uniform {
                    min: 150.0,
                    max: 151.0
                },
                1000
            )
            .iter()
            .all(|&x| (150.0..=151.0).contains(&x))
        );
        assert_eq!(latency_class("S"), Some(5.0));
        assert_eq!(latency_class("m"), Some(10.0));
        assert_eq!(latency_class("l"), Some(20.0));
        assert_eq!(latency_class("xl"), None);
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(
            Delay::Uniform { min: 5.0, max: 2.0 }
                .validate()
                .unwrap_err()
                .0,
            "max"
        );
        assert_eq!(
            Delay::Pareto {
                scale: 1.0,
                shape: 1.0
            }
            .validate()
            .unwrap_err()
            .0,
            "shape"
        );
        assert_eq!(Delay::constant(-1.0).validate().unwrap_err().0, "value");
        assert!(
            Delay::Normal {
                mean: -100.0,
                sd: 1.0
            }
            .validate()
            .is_err()
        );
    }

    /// A normal far below zero is truncated, not clamped: no draw is exactly 0, and the mean
    /// is the truncated normal's (which routing uses).
    #[test]
    fn normal_is_truncated_not_clamped() {
        for mean in [-0.3, -1.0, -2.0, -3.0] {
            let d = Delay::Normal { mean, sd: 1.0 };
            let xs = draws(&d, 200_000);
            assert!(xs.iter().all(|&x| x > 0.0), "mean {mean}: a draw at 0");
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let want = d.mean_ms();
            assert!(
                (m - want).abs() < 0.01 * want.max(0.3),
                "mean {mean}: {m} vs {want}"
            );
        }
    }
}
