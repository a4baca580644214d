//! The closed-form split-vote model of Ongaro's thesis (§9.1–9.3), for comparison with
//! simulated elections.
//!
//! Model: a cluster of `n` servers of which `s` are alive, all starting as followers at the
//! same instant with election timeouts drawn independently and uniformly from a range of
//! width `r`; a message takes a fixed one-way latency `l`. The first server to time out (at
//! t₁) becomes a candidate and collects the votes of the servers that time out later than
//! t₁ + l (the others have become candidates themselves and voted for themselves). It wins
//! the first round when it gets a majority, ⌊n/2⌋ + 1 votes including its own; otherwise the
//! vote is split.
//!
//! With λ = l / r, the density of the first timeout (in units of r) is s(1 − t)^{s−1}, and
//! given t each other server times out after t + λ with probability (1 − t − λ)/(1 − t), so
//!
//! ```text
//! P(win) = Σ_{j=k}^{s−1} C(s−1, j) · s/(j+1) · λ^{s−1−j} · (1 − λ)^{j+1},   k = ⌊n/2⌋
//! P(split) = 1 − P(win)
//! ```
//!
//! and the first timeout is at tmin + r/(s + 1) on average.

/// C(n, k) as a float.
fn choose(n: u64, k: u64) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Probability that the first candidate wins the first round (see the module docs). `lambda`
/// is the one-way latency as a fraction of the timeout range.
pub fn p_first_round_win(n: u64, s: u64, lambda: f64) -> f64 {
    let k = n / 2; // votes needed from others
    if s == 0 || s < k + 1 {
        return 0.0;
    }
    if lambda >= 1.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    let lambda = lambda.max(0.0);
    (k..s)
        .map(|j| {
            choose(s - 1, j) * s as f64 / (j + 1) as f64
                * lambda.powi((s - 1 - j) as i32)
                * (1.0 - lambda).powi((j + 1) as i32)
        })
        .sum()
}

/// Probability of a split vote in the first round.
pub fn p_split(n: u64, s: u64, lambda: f64) -> f64 {
    1.0 - p_first_round_win(n, s, lambda)
}

/// With the latency of each vote request drawn uniformly from [lo, hi] (fractions of the
/// range): the same probability by numerical integration over the first timeout (Simpson's
/// rule, 2000 panels), the per-voter grant probability being averaged over the latency.
pub fn p_split_uniform(n: u64, s: u64, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return p_split(n, s, lo);
    }
    let k = n / 2;
    if s < k + 1 {
        return 1.0;
    }
    // q(t): probability that a later-timing-out server grants, given the first at t.
    let q = |t: f64| -> f64 {
        let rest = 1.0 - t;
        if rest <= 0.0 {
            return 0.0;
        }
        // E_L[(rest - L)^+ / rest] for L ~ U[lo, hi].
        let f = |l: f64| (rest - l).max(0.0);
        let a = lo.min(rest);
        let b = hi.min(rest);
        // ∫_lo^hi (rest - L)^+ dL = ∫_a^b (rest - L) dL (zero beyond rest).
        let integral = (rest * (b - a)) - (b * b - a * a) / 2.0;
        let _ = f;
        integral / (hi - lo) / rest
    };
    let win_given = |t: f64| -> f64 {
        let p = q(t);
        (k..s)
            .map(|j| choose(s - 1, j) * p.powi(j as i32) * (1.0 - p).powi((s - 1 - j) as i32))
            .sum::<f64>()
    };
    let dens = |t: f64| s as f64 * (1.0 - t).powi(s as i32 - 1);
    let m = 2000;
    let h = 1.0 / m as f64;
    let mut acc = 0.0;
    for i in 0..=m {
        let t = i as f64 * h;
        let w = if i == 0 || i == m {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        acc += w * dens(t) * win_given(t);
    }
    1.0 - acc * h / 3.0
}

/// Expected first timeout of `s` servers with timeouts uniform on [tmin, tmin + r).
pub fn mean_first_timeout(s: u64, tmin: f64, r: f64) -> f64 {
    tmin + r / (s as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_servers_is_the_gap_probability() {
        // n = s = 2 (majority 2): the first wins iff |t1 - t2| > l: (1 - λ)².
        for l in [0.0, 0.1, 0.5] {
            let p = p_first_round_win(2, 2, l);
            assert!((p - (1.0 - l) * (1.0 - l)).abs() < 1e-12);
        }
    }

    #[test]
    fn closed_form_by_hand_and_by_integration() {
        // n = 5, s = 5, λ = 0.1: k = 2,
        // P = 5 [C(4,2)/3 λ² (1-λ)³ + C(4,3)/4 λ (1-λ)⁴ + C(4,4)/5 (1-λ)⁵]
        let l: f64 = 0.1;
        let by_hand = 5.0
            * (6.0 / 3.0 * l.powi(2) * (1.0 - l).powi(3)
                + 4.0 / 4.0 * l * (1.0 - l).powi(4)
                + 1.0 / 5.0 * (1.0 - l).powi(5));
        assert!((p_first_round_win(5, 5, l) - by_hand).abs() < 1e-12);
        // No latency: never split; the integration agrees with the closed form.
        assert!(p_split(5, 5, 0.0).abs() < 1e-12);
        let num = p_split_uniform(5, 5, 0.1, 0.1 + 1e-9);
        assert!((num - p_split(5, 5, 0.1)).abs() < 1e-6, "{num}");
        // Too few servers alive: always split.
        assert_eq!(p_first_round_win(5, 2, 0.1), 0.0);
        assert!((mean_first_timeout(5, 150.0, 150.0) - 175.0).abs() < 1e-12);
    }
}
