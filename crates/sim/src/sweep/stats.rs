//! Statistics of a point's trials: quantiles, mean and standard deviation, confidence intervals
//! for the mean and the median, and the two-sample Kolmogorov–Smirnov distance.
//!
//! Censored trials (the condition was not reached within the horizon) count as +∞: they take
//! part in the ranks, so a quantile that falls among them is unknown (`None`, "≥ horizon"),
//! and an empirical CDF of a point with censored trials never reaches 1. The mean and the
//! standard deviation are those of the uncensored values.

use serde_json::{Map, Value, json};

/// The quantiles reported for every point.
pub const QUANTILES: &[(&str, f64)] = &[
    ("p1", 0.01),
    ("p5", 0.05),
    ("p10", 0.10),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
];

/// A sample: sorted uncensored values and the number of censored ones (+∞).
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub values: Vec<f64>,
    pub censored: usize,
}

impl Sample {
    /// Builds a sample from values (`None` = censored).
    pub fn new(vals: impl IntoIterator<Item = Option<f64>>) -> Self {
        let mut s = Sample::default();
        for v in vals {
            match v {
                Some(x) if x.is_finite() => s.values.push(x),
                _ => s.censored += 1,
            }
        }
        s.values.sort_by(f64::total_cmp);
        s
    }

    /// All trials.
    pub fn n(&self) -> usize {
        self.values.len() + self.censored
    }

    /// The k-th order statistic (0-based) of the whole sample, censored ones last.
    fn order(&self, k: usize) -> Option<f64> {
        self.values.get(k).copied()
    }

    /// Quantile `q` by linear interpolation between order statistics (Hyndman and Fan's
    /// type 7, the default of R and NumPy): h = (n − 1)q, x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]).
    /// `None` when it involves a censored trial.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.n();
        if n == 0 {
            return None;
        }
        let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
        let lo = h.floor() as usize;
        let frac = h - lo as f64;
        let a = self.order(lo)?;
        if frac == 0.0 {
            return Some(a);
        }
        let b = self.order(lo + 1)?;
        Some(a + frac * (b - a))
    }

    /// Mean of the uncensored values.
    pub fn mean(&self) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        Some(self.values.iter().sum::<f64>() / self.values.len() as f64)
    }

    /// Sample standard deviation (n − 1) of the uncensored values.
    pub fn sd(&self) -> Option<f64> {
        let m = self.mean()?;
        let k = self.values.len();
        if k < 2 {
            return None;
        }
        let ss: f64 = self.values.iter().map(|x| (x - m) * (x - m)).sum();
        Some((ss / (k - 1) as f64).sqrt())
    }

    /// 95 % confidence interval for the mean: mean ± t(0.975, k−1) · sd / √k over the k
    /// uncensored values (`None` with censored trials, where it would be meaningless).
    pub fn ci_mean(&self) -> Option<(f64, f64)> {
        if self.censored > 0 {
            return None;
        }
        let (m, s) = (self.mean()?, self.sd()?);
        let k = self.values.len();
        let h = t975(k - 1) * s / (k as f64).sqrt();
        Some((m - h, m + h))
    }

    /// Distribution-free 95 % confidence interval for the median: the order statistics
    /// x(j), x(k) (1-based) with j the largest rank such that P(B < j) ≤ 0.025 for
    /// B ~ Binomial(n, 1/2), and k = n + 1 − j. Coverage is at least 95 %. `None` when n < 6
    /// (no such j) or when even x(j) is censored; the upper bound is `None` ("beyond the
    /// horizon") when only x(k) is censored: the interval is then [x(j), ∞), still a valid
    /// 95 % interval, and its finite bound is kept.
    pub fn ci_median(&self) -> Option<(f64, Option<f64>)> {
        let n = self.n();
        let j = median_rank(n)?;
        let k = n + 1 - j;
        Some((self.order(j - 1)?, self.order(k - 1)))
    }

    /// The summary object written to `summary.json` for this sample.
    pub fn summary(&self) -> Value {
        let mut m = Map::new();
        m.insert("n".into(), json!(self.n()));
        m.insert("censored".into(), json!(self.censored));
        m.insert("mean".into(), opt(self.mean()));
        m.insert("sd".into(), opt(self.sd()));
        m.insert("min".into(), opt(self.values.first().copied()));
        for (name, q) in QUANTILES {
            m.insert((*name).into(), opt(self.quantile(*q)));
        }
        m.insert(
            "max".into(),
            opt(if self.censored > 0 {
                None
            } else {
                self.values.last().copied()
            }),
        );
        m.insert("ci95_mean".into(), pair(self.ci_mean()));
        m.insert(
            "ci95_median".into(),
            self.ci_median()
                .map_or(Value::Null, |(a, b)| json!([round6(a), opt(b)])),
        );
        Value::Object(m)
    }

    /// The empirical CDF at `x`: the fraction of all trials (censored included) ≤ x.
    pub fn cdf(&self, x: f64) -> f64 {
        let n = self.n();
        if n == 0 {
            return 0.0;
        }
        self.values.partition_point(|v| *v <= x) as f64 / n as f64
    }
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, round6)
}

fn pair(v: Option<(f64, f64)>) -> Value {
    v.map_or(Value::Null, |(a, b)| json!([round6(a), round6(b)]))
}

/// Rounds to 6 decimals (nanoseconds in ms) so the output does not depend on the last bits
/// of a floating-point sum.
pub fn round6(x: f64) -> Value {
    let r = (x * 1e6).round() / 1e6;
    json!(r)
}

/// The two-sample Kolmogorov–Smirnov distance sup |F₁(x) − F₂(x)| (censored trials are +∞, so
/// they never count below any finite x).
pub fn ks_distance(a: &Sample, b: &Sample) -> Option<f64> {
    if a.n() == 0 || b.n() == 0 {
        return None;
    }
    let mut d: f64 = 0.0;
    let (mut i, mut j) = (0, 0);
    let (na, nb) = (a.n() as f64, b.n() as f64);
    while i < a.values.len() || j < b.values.len() {
        let x = match (a.values.get(i), b.values.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.values.len() && a.values[i] <= x {
            i += 1;
        }
        while j < b.values.len() && b.values[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    // Beyond every finite value the CDFs are (n − censored)/n.
    d = d.max((a.values.len() as f64 / na - b.values.len() as f64 / nb).abs());
    Some(d)
}

/// Largest 1-based rank j with P(Binomial(n, 1/2) < j) ≤ 0.025, if any.
pub fn median_rank(n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    // P(B = i) in log space, accumulated from i = 0.
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut log_c = 0.0f64; // ln C(n, i)
    let mut cum = 0.0f64; // P(B ≤ i - 1) before the update = P(B < i)
    let mut j = 0;
    for i in 0..=n {
        // cum = P(B < i) = P(B ≤ i − 1)
        if cum <= 0.025 {
            j = i;
        } else {
            break;
        }
        cum += (log_c - ln2n).exp();
        if i < n {
            log_c += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        }
    }
    // j is the largest i with P(B < i) ≤ 0.025; as a rank it must be ≥ 1.
    (j >= 1 && 2 * j <= n + 1).then_some(j)
}

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    // The 0.975 quantile of Student's t for 1..=30 degrees of freedom, to 9 significant digits
    // (computed from the regularised incomplete beta function with mpmath).
    const TABLE: [f64; 30] = [
        12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
        2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
        2.13144955, 2.1199053, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
        2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
        2.04522964, 2.04227246,
    ];
    if df == 0 {
        return f64::INFINITY;
    }
    if df <= 30 {
        return TABLE[df - 1];
    }
    // Cornish–Fisher expansion around the normal quantile (error < 2e-6 for df > 30).
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    let z7 = z5 * z * z;
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64], censored: usize) -> Sample {
        let mut x: Vec<Option<f64>> = v.iter().map(|&a| Some(a)).collect();
        x.extend(std::iter::repeat_n(None, censored));
        Sample::new(x)
    }

    #[test]
    fn quantiles_type_7() {
        // R: quantile(c(1,2,3,4,5,6,7,8,9,10), c(.1,.25,.5,.9)) = 1.9 3.25 5.5 9.1
        let a = s(&[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 0);
        let close = |x: Option<f64>, y: f64| (x.unwrap() - y).abs() < 1e-9;
        assert!(close(a.quantile(0.1), 1.9));
        assert!(close(a.quantile(0.25), 3.25));
        assert!(close(a.quantile(0.5), 5.5));
        assert!(close(a.quantile(0.9), 9.1));
        assert!(close(a.quantile(1.0), 10.0));
        // Censored trials are +inf: the median of 1,2,3,inf,inf is 3; p75 is unknown.
        let c = s(&[1.0, 2.0, 3.0], 2);
        assert!(close(c.quantile(0.5), 3.0));
        assert_eq!(c.quantile(0.75), None);
        assert_eq!(c.ci_mean(), None);
    }

    #[test]
    fn mean_sd_and_ci() {
        // 2,4,4,4,5,5,7,9: mean 5, sample sd sqrt(32/7) = 2.13809
        let a = s(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 0);
        assert!((a.mean().unwrap() - 5.0).abs() < 1e-12);
        assert!((a.sd().unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        // t(0.975, 7) = 2.36462425; half-width 2.36462425 * sqrt(32/7) / sqrt(8) = 1.78748...
        let (lo, hi) = a.ci_mean().unwrap();
        let half = 2.364_624_25 * (32.0f64 / 7.0).sqrt() / 8.0f64.sqrt();
        assert!((hi - 5.0 - half).abs() < 1e-9, "{hi}");
        assert!((5.0 - lo - half).abs() < 1e-9);
    }

    #[test]
    fn median_ci_ranks() {
        // Known values (e.g. from tables of binomial order-statistic intervals):
        // n = 6: j = 1; n = 10: j = 2; n = 20: j = 6; n = 100: j = 40.
        assert_eq!(median_rank(5), None);
        assert_eq!(median_rank(6), Some(1));
        assert_eq!(median_rank(10), Some(2));
        assert_eq!(median_rank(20), Some(6));
        assert_eq!(median_rank(100), Some(40));
        let a = s(&(1..=10).map(|x| x as f64).collect::<Vec<_>>(), 0);
        assert_eq!(a.ci_median(), Some((2.0, Some(9.0))));
        // Only the upper bound censored: the lower one is kept ([x(j), null] in summary.json).
        let b = s(&(1..=8).map(|x| x as f64).collect::<Vec<_>>(), 2);
        assert_eq!(b.ci_median(), Some((2.0, None)));
        assert_eq!(b.summary()["ci95_median"], json!([2.0, null]));
        // The lower bound censored too: no interval.
        let c = s(&[1.0], 9);
        assert_eq!(c.ci_median(), None);
        assert_eq!(c.summary()["ci95_median"], Value::Null);
    }

    #[test]
    fn t_quantiles() {
        // Exact values (R: qt(0.975, df)).
        assert!((t975(1) - 12.706_204_7).abs() < 1e-7);
        assert!((t975(30) - 2.042_272_46).abs() < 1e-8);
        assert!((t975(40) - 2.021_075_39).abs() < 1e-5);
        assert!((t975(120) - 1.979_930_41).abs() < 1e-5);
        assert!((t975(100_000) - 1.95998).abs() < 1e-4);
    }

    #[test]
    fn ks_by_hand() {
        // F1 steps at 1,2,3 (thirds); F2 at 2,4. At x = 1: 1/3 - 0; x = 2: 2/3 - 1/2;
        // x = 3: 1 - 1/2 = 1/2; x = 4: 0. sup = 1/2.
        let a = s(&[1.0, 2.0, 3.0], 0);
        let b = s(&[2.0, 4.0], 0);
        assert!((ks_distance(&a, &b).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(ks_distance(&a, &a), Some(0.0));
        // Disjoint samples are at distance 1.
        let c = s(&[10.0, 11.0], 0);
        assert_eq!(ks_distance(&a, &c), Some(1.0));
        // Censoring: 1, inf vs 1, 2: F differ by 1/2 after 2.
        let d = s(&[1.0], 1);
        let e = s(&[1.0, 2.0], 0);
        assert!((ks_distance(&d, &e).unwrap() - 0.5).abs() < 1e-12);
    }
}
