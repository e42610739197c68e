//! Time-ordered train/test split.

use crate::error::{FeaturesError, Result};
use crate::spec::WindowLength;

/// Row indices of a time-ordered split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSplit {
    /// The cut-off, µs since epoch UTC: test rows are at or after it.
    pub cutoff: i64,
    /// Training rows: time < cutoff − embargo (every machine alike).
    pub train: Vec<usize>,
    /// Test rows: time ≥ cutoff.
    pub test: Vec<usize>,
}

/// Splits rows by one cut-off time across all machines: no training row is at
/// or after `cutoff - embargo`. Use the label horizon as `embargo` so no
/// training label looks into the test period.
pub fn split_by_time(time: &[i64], cutoff: i64, embargo: WindowLength) -> TimeSplit {
    let train_end = cutoff.saturating_sub(embargo.as_micros());
    let mut split = TimeSplit {
        cutoff,
        train: Vec::new(),
        test: Vec::new(),
    };
    for (i, &t) in time.iter().enumerate() {
        if t >= cutoff {
            split.test.push(i);
        } else if t < train_end {
            split.train.push(i);
        }
    }
    split
}

/// The cut-off that puts about `train_fraction` of the rows before it (a time quantile).
pub fn cutoff_at_fraction(time: &[i64], train_fraction: f64) -> Result<i64> {
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(FeaturesError::InvalidParameter {
            name: "train_fraction",
            reason: format!("must be in (0, 1), got {train_fraction}"),
        });
    }
    if time.is_empty() {
        return Err(FeaturesError::EmptyInput {
            source_name: "time column".into(),
        });
    }
    let mut sorted = time.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 * train_fraction) as usize).min(sorted.len() - 1);
    Ok(sorted[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_future_rows_in_training() {
        let time = [5, 1, 9, 3, 7, 2, 8];
        let cutoff = cutoff_at_fraction(&time, 0.5).unwrap();
        let split = split_by_time(&time, cutoff, WindowLength::from_micros(1));
        assert!(split.train.iter().all(|&i| time[i] < cutoff - 1));
        assert!(split.test.iter().all(|&i| time[i] >= cutoff));
        assert_eq!(
            split.train.len()
                + split.test.len()
                + time.iter().filter(|&&t| t == cutoff - 1).count(),
            time.len()
        );
        assert!(cutoff_at_fraction(&time, 1.0).is_err());
        assert!(cutoff_at_fraction(&[], 0.5).is_err());
    }
}
