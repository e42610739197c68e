//! Optimisation-history plots (feature `plot`), drawn by vigil-metrics' line chart.
//!
//! The plot takes trials, not a study, so the trials of any storage (or a list kept
//! by a pipeline) plot the same way:
//!
//! ```
//! use std::sync::Arc;
//! use vigil_tuning::{Study, plot};
//!
//! let study = Study::builder().seed(1).build()?;
//! study.optimize(10, None, |t| Ok(t.suggest_float("x", -1.0, 1.0)?.powi(2)))?;
//! let trials = study.trials()?;
//! let chart = plot::optimization_history(trials.iter().map(Arc::as_ref), study.direction(), "x²")?
//!     .title("Optimisation history");
//! let png = chart.to_png().map_err(plot::plot_error)?; // or `save("history.png")`
//! assert_eq!(&png[1..4], b"PNG");
//! # Ok::<(), vigil_tuning::TuningError>(())
//! ```

use vigil_metrics::plot::{LineChart, Series};

use crate::error::{Result, TuningError};
use crate::study::Direction;
use crate::trial::{FrozenTrial, TrialState};

/// Optuna's `plot_optimization_history`, plus pruned trials: by trial number, the value
/// of every complete trial (dots), the best value so far in `direction` (a staircase)
/// and, when trials were pruned, the last intermediate value each pruned trial
/// reported (dots of their own: they are not objective values). Failed, running and
/// waiting trials are left out. `value_name` labels the y axis and the value series
/// (e.g. `"validation F1"`); the title is "Optimization history" until the chart's
/// `title` sets another. Render the chart with its `save`, `to_png` or `to_svg`.
///
/// `trials` may come in any order (a study's `trials()` gives `Arc`s: pass
/// `trials.iter().map(Arc::as_ref)`).
///
/// Errors: [`TuningError::NoCompletedTrial`] when no trial completed with a value.
pub fn optimization_history<'a>(
    trials: impl IntoIterator<Item = &'a FrozenTrial>,
    direction: Direction,
    value_name: &str,
) -> Result<LineChart> {
    let chart = LineChart::new("Optimization history", "trial", value_name);
    Ok(history_series(trials, direction, value_name)?
        .into_iter()
        .fold(chart, LineChart::series))
}

/// The series of [`optimization_history`]: values, best so far, pruned (if any).
fn history_series<'a>(
    trials: impl IntoIterator<Item = &'a FrozenTrial>,
    direction: Direction,
    value_name: &str,
) -> Result<Vec<Series>> {
    let mut complete: Vec<(f64, f64)> = Vec::new();
    let mut pruned: Vec<(f64, f64)> = Vec::new();
    for t in trials {
        let number = t.number as f64;
        match t.state {
            TrialState::Complete => complete.extend(t.value.map(|v| (number, v))),
            TrialState::Pruned => pruned.extend(
                t.intermediate_values
                    .last_key_value()
                    .map(|(_, &v)| (number, v)),
            ),
            TrialState::Fail | TrialState::Running | TrialState::Waiting => {}
        }
    }
    if complete.is_empty() {
        return Err(TuningError::NoCompletedTrial);
    }
    // The staircase runs in trial order.
    complete.sort_by(|a, b| a.0.total_cmp(&b.0));
    pruned.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (x, y): (Vec<f64>, Vec<f64>) = complete.into_iter().unzip();
    let best = Series::best_so_far(&y, direction == Direction::Maximize);
    let mut series = vec![
        Series::markers(value_name, x.clone(), y),
        Series::step("best so far", x, best),
    ];
    if !pruned.is_empty() {
        let (px, py): (Vec<f64>, Vec<f64>) = pruned.into_iter().unzip();
        series.push(Series::markers("pruned (last reported value)", px, py));
    }
    Ok(series)
}

/// Converts a vigil-metrics plotting error into this crate's [`TuningError::Plot`].
pub fn plot_error(e: vigil_metrics::MetricsError) -> TuningError {
    TuningError::Plot(e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{ObjectiveError, Study};

    fn trial(number: u64, state: TrialState, value: Option<f64>) -> FrozenTrial {
        let mut t = FrozenTrial::new(number, number, state);
        t.value = value;
        t
    }

    #[test]
    fn no_completed_trial_is_an_error() {
        let running = [trial(0, TrialState::Running, None)];
        assert!(matches!(
            optimization_history(&running, Direction::Minimize, "loss"),
            Err(TuningError::NoCompletedTrial)
        ));
        assert!(matches!(
            optimization_history(&[], Direction::Minimize, "loss"),
            Err(TuningError::NoCompletedTrial)
        ));
    }

    #[test]
    fn history_renders_values_best_so_far_and_pruned_trials() {
        let study = Study::builder().seed(3).build().unwrap();
        study
            .optimize(12, None, |t| {
                let x = t.suggest_float("x", -3.0, 3.0)?;
                if t.number() == 4 {
                    return Err(ObjectiveError::msg("skip"));
                }
                if t.number() == 7 {
                    t.report(0, 9.5)?;
                    return Err(ObjectiveError::Pruned);
                }
                Ok(x * x)
            })
            .unwrap();
        let trials = study.trials().unwrap();
        let chart = optimization_history(trials.iter().map(Arc::as_ref), study.direction(), "x²")
            .unwrap()
            .title("History of x²");
        let svg = chart.to_svg().map_err(plot_error).unwrap();
        for text in [
            "best so far",
            "x²",
            "pruned (last reported value)",
            "History of x²",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        let png = chart.size(400, 300).to_png().map_err(plot_error).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn best_so_far_follows_trial_number_and_direction() {
        // Out of order on purpose; a failed trial and a running one do not count, a
        // pruned one shows its last report on its own.
        let mut pruned = trial(3, TrialState::Pruned, None);
        pruned.intermediate_values.insert(0, -100.0);
        pruned.intermediate_values.insert(5, 0.2);
        let trials = [
            trial(2, TrialState::Complete, Some(0.5)),
            trial(0, TrialState::Complete, Some(0.7)),
            trial(1, TrialState::Fail, None),
            pruned,
            trial(5, TrialState::Running, None),
            trial(4, TrialState::Complete, Some(0.9)),
        ];
        let max = history_series(&trials, Direction::Maximize, "F1").unwrap();
        assert_eq!(max.len(), 3);
        assert_eq!(
            (max[0].name.as_str(), max[1].name.as_str()),
            ("F1", "best so far")
        );
        assert_eq!(max[0].x, [0.0, 2.0, 4.0]);
        assert_eq!(max[0].y, [0.7, 0.5, 0.9]);
        assert_eq!(max[1].y, [0.7, 0.7, 0.9]);
        assert_eq!(
            (max[2].x.as_slice(), max[2].y.as_slice()),
            (&[3.0][..], &[0.2][..])
        );
        let min = history_series(&trials, Direction::Minimize, "F1").unwrap();
        assert_eq!(min[1].y, [0.7, 0.5, 0.5]);
        // No pruned trial, no pruned series.
        assert_eq!(
            history_series(&trials[..3], Direction::Maximize, "F1")
                .unwrap()
                .len(),
            2
        );
    }
}
