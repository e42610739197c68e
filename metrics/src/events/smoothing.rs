//! "Alarm only when k of the last n samples are flagged": a batch form for
//! evaluation and a streaming form for a scorer, built independently (prefix
//! sums vs. a ring buffer) so the property test comparing them can fail.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::validate::check_same_len;

/// k-of-n smoothing of one machine's flags: a sample alarms when at least `k`
/// of the last `n` samples of its machine (itself included) are flagged.
///
/// Before `n` samples have been seen the window is the samples seen so far.
/// The window counts samples, not time: a telemetry gap does not reset it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smoothing {
    /// Flagged samples needed, `1 <= k <= n`.
    pub k: usize,
    /// Window length in samples.
    pub n: usize,
}

impl Smoothing {
    /// Checks `1 <= k <= n`.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.k > self.n {
            return Err(MetricsError::InvalidParameter {
                name: "smoothing",
                reason: format!("needs 1 <= k <= n, got k = {}, n = {}", self.k, self.n),
            });
        }
        Ok(())
    }

    /// Smooths one machine's flags, given in time order.
    pub fn apply(&self, flags: &[bool]) -> Result<Vec<bool>> {
        self.validate()?;
        Ok(self.apply_unchecked(flags))
    }

    pub(crate) fn apply_unchecked(&self, flags: &[bool]) -> Vec<bool> {
        let mut prefix = Vec::with_capacity(flags.len() + 1);
        prefix.push(0usize);
        for &f in flags {
            let last = prefix[prefix.len() - 1];
            prefix.push(last + usize::from(f));
        }
        (0..flags.len())
            .map(|i| {
                let lo = (i + 1).saturating_sub(self.n);
                prefix[i + 1] - prefix[lo] >= self.k
            })
            .collect()
    }
}

impl fmt::Display for Smoothing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Parses `k/n` (`3/5`: alarm when 3 of the last 5 samples are flagged) and
/// checks it as [`Smoothing::validate`] does.
impl FromStr for Smoothing {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self> {
        let err = |reason: String| MetricsError::InvalidParameter {
            name: "smoothing",
            reason: format!("{s:?}: {reason}"),
        };
        let (k, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| err("expected k/n, e.g. 3/5".into()))?;
        let count = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|e| err(format!("{:?} is not a sample count: {e}", v.trim())))
        };
        let smoothing = Smoothing {
            k: count(k)?,
            n: count(n)?,
        };
        smoothing.validate()?;
        Ok(smoothing)
    }
}

/// Smooths flags of many machines, interleaved in any order: each machine's
/// samples are smoothed in the order they appear (give them in time order).
/// The same result as one [`SmoothingState`] per machine fed sample by sample.
pub fn smooth_flags(machine: &[u32], flags: &[bool], smoothing: Smoothing) -> Result<Vec<bool>> {
    check_same_len("machine", machine.len(), "flags", flags.len())?;
    smoothing.validate()?;
    let mut rows: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &m) in machine.iter().enumerate() {
        rows.entry(m).or_default().push(i);
    }
    let mut out = vec![false; flags.len()];
    for idx in rows.values() {
        let own: Vec<bool> = idx.iter().map(|&i| flags[i]).collect();
        for (&i, s) in idx.iter().zip(smoothing.apply_unchecked(&own)) {
            out[i] = s;
        }
    }
    Ok(out)
}

/// Streaming k-of-n smoothing for one machine: `push` each new flag, in time
/// order, and get whether the machine alarms now.
#[derive(Debug, Clone)]
pub struct SmoothingState {
    smoothing: Smoothing,
    window: Vec<bool>,
    next: usize,
    flagged: usize,
}

impl SmoothingState {
    /// A state that has seen no sample yet.
    pub fn new(smoothing: Smoothing) -> Result<Self> {
        smoothing.validate()?;
        Ok(Self {
            smoothing,
            // Grows to n as samples arrive: a huge n must not allocate up front.
            window: Vec::new(),
            next: 0,
            flagged: 0,
        })
    }

    /// Adds the machine's newest flag; true when `k` of the last `n` are flagged.
    pub fn push(&mut self, flag: bool) -> bool {
        if self.window.len() < self.smoothing.n {
            self.window.push(flag);
        } else {
            let old = std::mem::replace(&mut self.window[self.next], flag);
            self.flagged -= usize::from(old);
            self.next = (self.next + 1) % self.smoothing.n;
        }
        self.flagged += usize::from(flag);
        self.flagged >= self.smoothing.k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_of_three() -> Result<()> {
        let s = Smoothing { k: 2, n: 3 };
        let flags = [true, false, true, false, false, true, true];
        // Window counts: 1, 1, 2, 1, 1, 1, 2.
        let want = [false, false, true, false, false, false, true];
        assert_eq!(s.apply(&flags)?, want);
        let mut st = SmoothingState::new(s)?;
        let got: Vec<bool> = flags.iter().map(|&f| st.push(f)).collect();
        assert_eq!(got, want);
        Ok(())
    }

    #[test]
    fn bad_k_and_n_are_errors() {
        for (k, n) in [(0, 3), (4, 3), (0, 0)] {
            let s = Smoothing { k, n };
            assert!(matches!(
                SmoothingState::new(s),
                Err(MetricsError::InvalidParameter {
                    name: "smoothing",
                    ..
                })
            ));
            assert!(smooth_flags(&[1], &[true], s).is_err());
        }
    }
}
