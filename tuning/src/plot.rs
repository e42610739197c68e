//! Optimisation-history plots, drawn by vigil-metrics' line chart (feature `plot`).
//!
//! ```no_run
//! # use vigil_tuning::{Study, plot};
//! # let study = Study::builder().build()?;
//! plot::optimization_history(&study)?.save("history.png").map_err(plot::plot_error)?;
//! # Ok::<(), vigil_tuning::TuningError>(())
//! ```

use vigil_metrics::plot::{LineChart, Series};

use crate::error::{Result, TuningError};
use crate::trial::TrialState;
use crate::{Direction, Study};

/// The value of every complete trial (dots) and the best value so far (a staircase),
/// by trial number — Optuna's `plot_optimization_history`. Render it with the chart's
/// `save`, `to_png` or `to_svg`.
///
/// Errors: [`TuningError::NoCompletedTrial`] when no trial completed; storage errors.
pub fn optimization_history(study: &Study) -> Result<LineChart> {
    let trials = study.trials()?;
    let (x, y): (Vec<f64>, Vec<f64>) = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| Some((t.number as f64, t.value?)))
        .unzip();
    if x.is_empty() {
        return Err(TuningError::NoCompletedTrial);
    }
    let best = Series::best_so_far(&y, study.direction() == Direction::Maximize);
    Ok(LineChart::new(
        format!("Optimization history: {}", study.name()),
        "trial",
        "objective value",
    )
    .series(Series::markers("objective value", x.clone(), y))
    .series(Series::step("best so far", x, best)))
}

/// Converts a vigil-metrics plotting error into this crate's [`TuningError::Plot`].
pub fn plot_error(e: vigil_metrics::MetricsError) -> TuningError {
    TuningError::Plot(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_renders_values_and_best_so_far() {
        let study = Study::builder().seed(3).build().unwrap();
        assert!(matches!(
            optimization_history(&study),
            Err(TuningError::NoCompletedTrial)
        ));
        study
            .optimize(12, None, |t| {
                let x = t.suggest_float("x", -3.0, 3.0)?;
                if t.number() == 4 {
                    return Err(crate::ObjectiveError::msg("skip"));
                }
                Ok(x * x)
            })
            .unwrap();
        let chart = optimization_history(&study).unwrap();
        let svg = chart.to_svg().map_err(plot_error).unwrap();
        assert!(svg.contains("best so far") && svg.contains("objective value"));
        let png = chart.size(400, 300).to_png().map_err(plot_error).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
