//! How storage operations that fail transiently (a dropped connection, a restarting
//! server, a deadlock) are retried: one policy for heartbeats, `tell` and the
//! PostgreSQL storage's reconnects.

use std::time::Duration;

use crate::error::{Result, TuningError};

/// Retries with exponential backoff: attempt 1 runs at once, attempt `k + 1` waits
/// `min(initial_backoff * multiplier^(k-1), max_backoff)` after attempt `k` failed.
///
/// Defaults: 8 attempts, 100 ms first wait, doubling, at most 5 s between attempts
/// (about 16 s in all before the error surfaces), long enough to ride out a database
/// restart and short enough that a dead server is reported within a minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1; 1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt (more than zero).
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (at least `initial_backoff`).
    pub max_backoff: Duration,
    /// Factor by which the wait grows (finite, at least 1).
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// No retry: the first failure is the result.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Check the fields; [`TuningError::InvalidSetting`] naming `retry` otherwise.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(TuningError::InvalidSetting {
                name: "retry",
                reason,
            })
        };
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1".into());
        }
        if self.initial_backoff.is_zero() {
            return bad("initial_backoff must be more than zero".into());
        }
        if self.max_backoff < self.initial_backoff {
            return bad(format!(
                "max_backoff ({:?}) is below initial_backoff ({:?})",
                self.max_backoff, self.initial_backoff
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return bad(format!(
                "multiplier must be finite and at least 1, got {}",
                self.multiplier
            ));
        }
        Ok(())
    }

    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        let max = self.max_backoff.as_secs_f64();
        // `min` first: a huge power must never reach `from_secs_f64`.
        Duration::from_secs_f64(if secs.is_finite() { secs.min(max) } else { max })
    }

    /// Run `op` until it succeeds, fails with an error that is not transient
    /// ([`TuningError::is_transient`]), or `max_attempts` ran out. Returns the value, or
    /// the last error with the number of attempts made.
    pub(crate) fn run<T>(
        &self,
        op: impl FnMut(u32) -> Result<T>,
    ) -> std::result::Result<T, (u32, TuningError)> {
        self.run_if(TuningError::is_transient, op)
    }

    /// [`RetryPolicy::run`] retrying the errors for which `retry_if` holds.
    pub(crate) fn run_if<T>(
        &self,
        retry_if: impl Fn(&TuningError) -> bool,
        mut op: impl FnMut(u32) -> Result<T>,
    ) -> std::result::Result<T, (u32, TuningError)> {
        let mut attempt = 1;
        loop {
            match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) if retry_if(&e) && attempt < self.max_attempts => {
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err((attempt, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(7), Duration::from_secs(5));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(5));
        let huge = RetryPolicy {
            multiplier: 1e300,
            ..p
        };
        assert_eq!(huge.backoff(40), Duration::from_secs(5));
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert!(RetryPolicy::default().validate().is_ok());
        assert!(RetryPolicy::none().validate().is_ok());
        for bad in [
            RetryPolicy {
                max_attempts: 0,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                initial_backoff: Duration::ZERO,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                max_backoff: Duration::from_millis(1),
                ..RetryPolicy::default()
            },
            RetryPolicy {
                multiplier: f64::NAN,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                multiplier: 0.5,
                ..RetryPolicy::default()
            },
        ] {
            assert!(
                matches!(
                    bad.validate(),
                    Err(TuningError::InvalidSetting { name: "retry", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn run_retries_transient_errors_only() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let io = || TuningError::Io {
            path: "j".into(),
            source: std::io::Error::other("disk hiccup"),
        };
        let mut calls = 0;
        let r = p.run(|_| {
            calls += 1;
            if calls < 3 { Err(io()) } else { Ok(calls) }
        });
        assert_eq!(r.unwrap(), 3);
        let r: std::result::Result<(), _> = p.run(|_| Err(io()));
        assert!(matches!(r, Err((3, TuningError::Io { .. }))));
        let r: std::result::Result<(), _> = p.run(|_| Err(TuningError::UnknownTrial(4)));
        assert!(matches!(r, Err((1, TuningError::UnknownTrial(4)))));
    }
}
