//! When the scheduler runs the training job: cron expressions, fixed
//! intervals, retry back-off, and a lock that keeps two jobs from running at
//! once, also across processes.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What went wrong reading a schedule or taking the job lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron expression {expr:?}: {reason}")]
    Cron {
        /// The expression as given.
        expr: String,
        /// What the cron parser said.
        reason: String,
    },
    /// The cron expression never fires again.
    #[error("cron expression {0:?} has no future run time")]
    NeverFires(String),
    /// A duration such as `1h` or `90s` does not parse.
    #[error("invalid duration {0:?}: use a number with a unit, e.g. 90s, 30m, 1h, 1d or 1h30m")]
    Duration(String),
    /// A zero interval would run the job in a tight loop.
    #[error("the interval must be longer than zero")]
    ZeroInterval,
    /// The lock file could not be opened or locked.
    #[error("cannot use lock file {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// When to run: a cron expression (UTC) or a fixed interval.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression, evaluated in UTC.
    Cron {
        /// The parsed schedule.
        schedule: Box<cron::Schedule>,
        /// The expression as the user wrote it.
        expr: String,
    },
    /// Every `interval`, the first run one interval after start.
    Every(Duration),
}

impl Schedule {
    /// Parses a cron expression: the standard five fields
    /// (`minute hour day-of-month month day-of-week`, e.g. `0 2 * * *` for
    /// 02:00 daily) or the six/seven-field form with seconds (and year).
    pub fn cron(expr: &str) -> Result<Self, ScheduleError> {
        let fields = expr.split_whitespace().count();
        // The cron crate wants seconds first; the five-field form has none.
        let full = if fields == 5 {
            format!("0 {expr}")
        } else {
            expr.to_string()
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| ScheduleError::Cron {
            expr: expr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Schedule::Cron {
            schedule: Box::new(schedule),
            expr: expr.to_string(),
        })
    }

    /// A fixed interval such as `1h` (see [`parse_duration`]).
    pub fn every(text: &str) -> Result<Self, ScheduleError> {
        let interval = parse_duration(text)?;
        if interval.is_zero() {
            return Err(ScheduleError::ZeroInterval);
        }
        Ok(Schedule::Every(interval))
    }

    /// The first run time strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        match self {
            Schedule::Cron { schedule, expr } => schedule
                .after(&now)
                .next()
                .ok_or_else(|| ScheduleError::NeverFires(expr.clone())),
            Schedule::Every(interval) => {
                let step = chrono::Duration::from_std(*interval)
                    .map_err(|_| ScheduleError::Duration(format!("{interval:?}")))?;
                Ok(now + step)
            }
        }
    }

    /// A short human description, for log lines.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { expr, .. } => format!("cron `{expr}` (UTC)"),
            Schedule::Every(interval) => format!("every {}", format_duration(*interval)),
        }
    }
}

/// Parses `90s`, `30m`, `1h`, `1d`, `1h30m`, `500ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::Duration(text.to_string());
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| bad())?;
    }
    Ok(total)
}

/// Formats a duration as `1h30m`, `45s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Exponential back-off for retrying a failed job: `base · 2^attempt`, capped.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// An exclusive lock on a file, held while a job runs; released on drop (and
/// by the OS once the process and the children it handed the lock to
/// ([`for_child`](Self::for_child)) are gone, so a crash never leaves it stuck).
#[derive(Debug)]
pub struct JobLock {
    file: File,
    path: PathBuf,
}

impl JobLock {
    /// Takes the lock, or returns `Ok(None)` when another process holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<JobLock>, ScheduleError> {
        let lock_err = |source| ScheduleError::Lock {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(lock_err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(JobLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(lock_err(e)),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock as a child's standard input, so the child holds it too: a
    /// `flock` lock belongs to the open file, which every duplicate of the
    /// descriptor shares, and is released only when the last one closes. A
    /// job orphaned by a killed scheduler therefore keeps the lock until it
    /// exits, and no second job starts beside it.
    pub fn for_child(&self) -> Result<Stdio, ScheduleError> {
        let file = self
            .file
            .try_clone()
            .map_err(|source| ScheduleError::Lock {
                path: self.path.clone(),
                source,
            })?;
        Ok(Stdio::from(file))
    }
}

// No `Drop` that unlocks: `flock(LOCK_UN)` would release the lock for the
// children holding it as well. Closing this descriptor releases it once no
// child holds a duplicate.

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_field_cron_runs_daily_at_two() {
        let s = Schedule::cron("0 2 * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 21, 0, 0).unwrap();
        let next = s.next_after(now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap());
        let after = s.next_after(next).unwrap();
        assert_eq!(after, Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap());
    }

    #[test]
    fn six_field_cron_with_seconds() {
        let s = Schedule::cron("30 0 * * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 31).unwrap();
        assert_eq!(
            s.next_after(now).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 30).unwrap()
        );
    }

    #[test]
    fn bad_cron_is_a_typed_error() {
        let err = Schedule::cron("61 2 * * *").unwrap_err();
        assert!(matches!(err, ScheduleError::Cron { .. }), "{err}");
        assert!(err.to_string().contains("61 2 * * *"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        for bad in ["", "h", "1x", "-1s", "1h-", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(matches!(
            Schedule::every("0s"),
            Err(ScheduleError::ZeroInterval)
        ));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn every_schedules_one_interval_later() {
        let s = Schedule::every("1h").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        assert_eq!(
            s.next_after(now).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap()
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.delay(0), Duration::from_secs(10));
        assert_eq!(b.delay(1), Duration::from_secs(20));
        assert_eq!(b.delay(2), Duration::from_secs(40));
        assert_eq!(b.delay(3), Duration::from_secs(60));
        assert_eq!(b.delay(100), Duration::from_secs(60));
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/job.lock");
        let held = JobLock::try_acquire(&path).unwrap().expect("first lock");
        assert!(JobLock::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(JobLock::try_acquire(&path).unwrap().is_some());
    }
}
