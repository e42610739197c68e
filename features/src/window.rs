//! The rolling-window kernel: one time-based window over one sensor.
//!
//! The window at time `t` covers `(t - w, t]` over the *valid* (finite) values
//! pushed so far, exactly as pandas' `rolling('5min', on='time')` with
//! `min_periods=1`. Each push is amortised O(1) whatever the window length:
//!
//! * sum and sum of squares are kept about a shift `K` with TwoSum-compensated
//!   add/remove, and recomputed exactly (two-pass, `K` = window mean) every
//!   `4 len + 64` updates and whenever cancellation could cost more than ~3 digits,
//!   so the standard deviation stays within 1e-9 relative of an exact two-pass
//!   computation;
//! * a run-length counter detects constant windows, whose std is exactly 0 and
//!   mean exactly the value;
//! * min and max come from monotonic deques.
//!
//! The batch path and the online path both drive this same type, so they agree bit for bit.
//!
//! **The state is a function of recent samples only.** Besides those refreshes,
//! the sums are recomputed exactly at the first push of every slot of absolute
//! time `[k w, (k + 1) w)` (times only grow, so that is the first push whose
//! `time.div_euclid(w)` differs from the previous push's). The recompute resets
//! shift, compensation and the refresh counter from the window's contents
//! alone, and the deques and the constant-window test already depend only on
//! them; so from the first push in the slot of the last push `t` on (after
//! `t − w`), the outputs equal those of a window that was only given the
//! samples after `t − 2 w`. Warm starts replay that much
//! ([`FeatureSpec::warmup_span`](crate::FeatureSpec::warmup_span)).

use std::collections::VecDeque;

/// The aggregates of one window after a push.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowStats {
    pub(crate) count: usize,
    pub(crate) mean: f64,
    pub(crate) std: f64,
    pub(crate) var: f64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// Cancellation guard: recompute when `n (mean - K)^2 > GUARD * M2`.
const CANCELLATION_GUARD: f64 = 1e3;
/// Exact refreshes happen every `REFRESH_FACTOR * len + REFRESH_SLACK` updates:
/// amortised O(1), and compensated sums drift far less than 1e-9 in between.
const REFRESH_FACTOR: usize = 4;
/// Extra updates allowed between exact refreshes.
const REFRESH_SLACK: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct RollingWindow {
    window: i64,
    track_extremes: bool,
    /// Valid values in the window, oldest first.
    values: VecDeque<(i64, f64)>,
    /// Candidates for the minimum: increasing values, oldest first.
    min_queue: VecDeque<(i64, f64)>,
    /// Candidates for the maximum: decreasing values, oldest first.
    max_queue: VecDeque<(i64, f64)>,
    shift: f64,
    sum: f64,
    sum_comp: f64,
    sum_sq: f64,
    sum_sq_comp: f64,
    updates_since_refresh: usize,
    /// The start of the next slot of absolute time (a multiple of `window`):
    /// the first push at or after it recomputes the sums exactly.
    next_slot: i64,
    /// How many of the most recent valid values equal `last_value`.
    run_length: usize,
    /// The most recent valid value (the newest, so that a window of `0.0` and
    /// `-0.0` reports the same sign whatever came before it).
    last_value: f64,
}

/// Compensated add: Knuth's branch-free TwoSum accumulates the exact rounding
/// error of every addition into `comp` (a data-dependent branch, as in
/// Neumaier's form, mispredicts half the time on sensor noise).
#[inline(always)]
fn compensated_add(sum: &mut f64, comp: &mut f64, x: f64) {
    let t = *sum + x;
    let x_part = t - *sum;
    *comp += (*sum - (t - x_part)) + (x - x_part);
    *sum = t;
}

impl RollingWindow {
    /// A window of `window` microseconds; `track_extremes` enables min/max.
    pub(crate) fn new(window: i64, track_extremes: bool) -> RollingWindow {
        RollingWindow {
            window,
            track_extremes,
            values: VecDeque::new(),
            min_queue: VecDeque::new(),
            max_queue: VecDeque::new(),
            shift: 0.0,
            sum: 0.0,
            sum_comp: 0.0,
            sum_sq: 0.0,
            sum_sq_comp: 0.0,
            updates_since_refresh: 0,
            next_slot: i64::MIN,
            run_length: 0,
            last_value: f64::NAN,
        }
    }

    /// Adds the sample `(time, x)` (a non-finite `x` is missing: it only moves
    /// the window) and returns the window's aggregates.
    #[inline]
    pub(crate) fn push(&mut self, time: i64, x: f64) -> WindowStats {
        let cut = time.saturating_sub(self.window);
        while let Some(&(t, v)) = self.values.front() {
            if t > cut {
                break;
            }
            self.values.pop_front();
            let d = v - self.shift;
            compensated_add(&mut self.sum, &mut self.sum_comp, -d);
            compensated_add(&mut self.sum_sq, &mut self.sum_sq_comp, -(d * d));
            self.updates_since_refresh += 1;
        }
        if self.track_extremes {
            while self.min_queue.front().is_some_and(|&(t, _)| t <= cut) {
                self.min_queue.pop_front();
            }
            while self.max_queue.front().is_some_and(|&(t, _)| t <= cut) {
                self.max_queue.pop_front();
            }
        }
        if x.is_finite() {
            if self.values.is_empty() {
                // Start afresh around the new value: exact, and no stale compensation.
                self.shift = x;
                self.sum = 0.0;
                self.sum_comp = 0.0;
                self.sum_sq = 0.0;
                self.sum_sq_comp = 0.0;
                self.updates_since_refresh = 0;
            } else {
                let d = x - self.shift;
                compensated_add(&mut self.sum, &mut self.sum_comp, d);
                compensated_add(&mut self.sum_sq, &mut self.sum_sq_comp, d * d);
                self.updates_since_refresh += 1;
            }
            self.values.push_back((time, x));
            if self.run_length > 0 && x == self.last_value {
                self.run_length += 1;
            } else {
                self.run_length = 1;
            }
            self.last_value = x;
            if self.track_extremes {
                while self.min_queue.back().is_some_and(|&(_, v)| v >= x) {
                    self.min_queue.pop_back();
                }
                self.min_queue.push_back((time, x));
                while self.max_queue.back().is_some_and(|&(_, v)| v <= x) {
                    self.max_queue.pop_back();
                }
                self.max_queue.push_back((time, x));
            }
        }
        if time >= self.next_slot {
            // Times never decrease, so this is the first push of a new slot.
            self.next_slot = time
                .div_euclid(self.window)
                .saturating_add(1)
                .saturating_mul(self.window);
            self.refresh();
        } else if self.updates_since_refresh > REFRESH_FACTOR * self.values.len() + REFRESH_SLACK {
            self.refresh();
        }
        self.stats()
    }

    /// Heap bytes held by the deques (by capacity, which never shrinks).
    pub(crate) fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(i64, f64)>();
        (self.values.capacity() + self.min_queue.capacity() + self.max_queue.capacity()) * slot
    }

    /// Recomputes the sums exactly (two-pass) about the current window mean.
    #[inline(never)]
    fn refresh(&mut self) {
        self.updates_since_refresh = 0;
        self.sum_comp = 0.0;
        self.sum_sq_comp = 0.0;
        let n = self.values.len();
        if n == 0 {
            self.sum = 0.0;
            self.sum_sq = 0.0;
            return;
        }
        let mean = self.values.iter().map(|&(_, v)| v).sum::<f64>() / n as f64;
        self.shift = mean;
        let (mut s, mut s2) = (0.0, 0.0);
        for &(_, v) in &self.values {
            let d = v - mean;
            s += d;
            s2 += d * d;
        }
        self.sum = s;
        self.sum_sq = s2;
    }

    #[inline(always)]
    fn stats(&mut self) -> WindowStats {
        let n = self.values.len();
        if n == 0 {
            return WindowStats {
                count: 0,
                mean: f64::NAN,
                std: f64::NAN,
                var: f64::NAN,
                sum: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let (min, max) = match (self.min_queue.front(), self.max_queue.front()) {
            (Some(&(_, lo)), Some(&(_, hi))) if self.track_extremes => (lo, hi),
            _ => (f64::NAN, f64::NAN),
        };
        let nf = n as f64;
        if self.run_length >= n {
            // Every valid value in the window is the same: exact answers.
            let v = self.last_value;
            let var = if n >= 2 { 0.0 } else { f64::NAN };
            return WindowStats {
                count: n,
                mean: v,
                std: var,
                var,
                sum: v * nf,
                min,
                max,
            };
        }
        let mut s1 = self.sum + self.sum_comp;
        let mut s2 = self.sum_sq + self.sum_sq_comp;
        let inv_n = 1.0 / nf;
        let mut offset = s1 * s1 * inv_n;
        let m2 = s2 - offset;
        if m2.is_nan() || m2 <= 0.0 || offset > CANCELLATION_GUARD * m2 {
            self.refresh();
            s1 = self.sum;
            s2 = self.sum_sq;
            offset = s1 * s1 * inv_n;
        }
        let mean = self.shift + s1 * inv_n;
        let var = if n >= 2 {
            ((s2 - offset) / (nf - 1.0)).max(0.0)
        } else {
            f64::NAN
        };
        WindowStats {
            count: n,
            mean,
            std: var.sqrt(),
            var,
            sum: self.shift * nf + s1,
            min,
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact brute force: every window from scratch, two-pass.
    fn brute(times: &[i64], xs: &[f64], w: i64, i: usize) -> (usize, f64, f64, f64, f64) {
        let vals: Vec<f64> = (0..=i)
            .filter(|&j| times[j] > times[i] - w && xs[j].is_finite())
            .map(|j| xs[j])
            .collect();
        let n = vals.len();
        if n == 0 {
            return (0, f64::NAN, f64::NAN, f64::NAN, f64::NAN);
        }
        let mean = vals.iter().sum::<f64>() / n as f64;
        let mean = mean + vals.iter().map(|v| v - mean).sum::<f64>() / n as f64;
        let std = if n < 2 {
            f64::NAN
        } else {
            (vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
        };
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (n, mean, std, min, max)
    }

    fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rel * a.abs().max(b.abs()) + abs
    }

    fn series() -> impl Strategy<Value = (Vec<i64>, Vec<f64>, i64)> {
        let step = prop_oneof![Just(0i64), 1i64..5, 5i64..40];
        let value = prop_oneof![
            3 => -1e3f64..1e3,
            1 => Just(f64::NAN),
            1 => Just(7.25f64),
            1 => 1e6f64..1e6 + 1.0,
            1 => Just(f64::INFINITY),
        ];
        (proptest::collection::vec((step, value), 1..300), 1i64..120).prop_map(|(pairs, w)| {
            let mut t = 0;
            let mut times = Vec::new();
            let mut xs = Vec::new();
            for (dt, x) in pairs {
                t += dt;
                times.push(t);
                xs.push(x);
            }
            (times, xs, w)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_exact_brute_force((times, xs, w) in series()) {
            let mut window = RollingWindow::new(w, true);
            for i in 0..times.len() {
                let got = window.push(times[i], xs[i]);
                let (n, mean, std, min, max) = brute(&times, &xs, w, i);
                prop_assert_eq!(got.count, n);
                prop_assert_eq!(got.min.to_bits(), min.to_bits());
                prop_assert_eq!(got.max.to_bits(), max.to_bits());
                let scale = max.abs().max(min.abs());
                prop_assert!(close(got.mean, mean, 1e-12, 1e-12 * scale), "mean {} vs {}", got.mean, mean);
                prop_assert!(close(got.std, std, 1e-9, 0.0), "std {} vs {} at {}", got.std, std, i);
                if n >= 2 && min == max {
                    prop_assert_eq!(got.std, 0.0);
                }
            }
        }
    }

    fn same_bits(a: &WindowStats, b: &WindowStats) -> bool {
        let bits = |s: &WindowStats| [s.mean, s.std, s.var, s.sum, s.min, s.max].map(f64::to_bits);
        a.count == b.count && bits(a) == bits(b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// A window given only the samples after `t - 2w` (`t` the last push)
        /// gives the same bits as one that saw everything, on every push after.
        #[test]
        fn state_depends_only_on_the_last_two_windows(
            (times, xs, w) in series(),
            split in 0.0f64..1.0,
            offset in -1_000_000i64..1_000_000,
            zeros in proptest::collection::vec(0u8..20, 300),
            zero_runs in proptest::bool::ANY,
        ) {
            let times: Vec<i64> = times.iter().map(|t| t + offset).collect();
            // Signed zeros compare equal: a constant window must not depend on
            // which of them started the run, long before the window.
            let zero_below = if zero_runs { 19 } else { 4 };
            let xs: Vec<f64> = xs
                .iter()
                .zip(&zeros)
                .map(|(&x, &z)| match z {
                    z if z < zero_below && z % 2 == 0 => 0.0,
                    z if z < zero_below => -0.0,
                    _ => x,
                })
                .collect();
            let k = ((times.len() as f64 * split) as usize).clamp(1, times.len());
            let mut full = RollingWindow::new(w, true);
            for i in 0..k {
                full.push(times[i], xs[i]);
            }
            let cut = times[k - 1] - 2 * w;
            let mut replay = RollingWindow::new(w, true);
            for i in (0..k).filter(|&i| times[i] > cut) {
                replay.push(times[i], xs[i]);
            }
            for i in k..times.len() {
                let (a, b) = (full.push(times[i], xs[i]), replay.push(times[i], xs[i]));
                prop_assert!(same_bits(&a, &b), "push {i}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn constant_window_has_exactly_zero_std() {
        let mut window = RollingWindow::new(50, false);
        let mut last = None;
        for i in 0..1000 {
            let x = if i < 500 { 0.1 + f64::from(i % 7) } else { 0.3 };
            last = Some(window.push(i64::from(i), x));
        }
        let s = last.unwrap();
        assert_eq!(s.std, 0.0);
        assert_eq!(s.mean, 0.3);
    }

    #[test]
    fn duplicate_timestamps_fall_in_the_later_window() {
        let mut window = RollingWindow::new(10, true);
        assert_eq!(window.push(5, 1.0).count, 1);
        let s = window.push(5, 3.0);
        assert_eq!((s.count, s.mean, s.max), (2, 2.0, 3.0));
        // Left edge is open: at t = 15 the samples at 5 leave.
        assert_eq!(window.push(15, 4.0).count, 1);
    }
}
