//! Labels: failure within a horizon, and failure-mode classes.

use serde::{Deserialize, Serialize};

use crate::frame::{FailureMode, TelemetryFrame};
use crate::spec::WindowLength;

/// One failure of one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureEvent {
    /// Machine id.
    pub machine: String,
    /// When it failed, µs since epoch UTC.
    pub time: i64,
    /// How it failed.
    pub mode: FailureMode,
}

/// For each row, the next failure of its machine within `horizon`: a row at
/// time `t` is labelled by a failure at `f` when `f - horizon <= t < f`.
fn next_failure_within(
    frame: &TelemetryFrame,
    events: &[FailureEvent],
    horizon: WindowLength,
) -> Vec<Option<FailureMode>> {
    let h = horizon.as_micros();
    let mut out = vec![None; frame.len()];
    for (m, range) in frame.machine_ranges() {
        let id = &frame.machine_ids()[m as usize];
        let mut failures: Vec<(i64, FailureMode)> = events
            .iter()
            .filter(|e| &e.machine == id)
            .map(|e| (e.time, e.mode))
            .collect();
        failures.sort_by_key(|f| f.0);
        let mut next = 0;
        for i in range {
            let t = frame.time()[i];
            while next < failures.len() && failures[next].0 <= t {
                next += 1;
            }
            if let Some(&(f, mode)) = failures.get(next)
                && f - t <= h
            {
                out[i] = Some(mode);
            }
        }
    }
    out
}

/// Binary labels: 1 when the row's machine fails within `horizon` after the row.
pub fn horizon_labels(
    frame: &TelemetryFrame,
    events: &[FailureEvent],
    horizon: WindowLength,
) -> Vec<u8> {
    next_failure_within(frame, events, horizon)
        .into_iter()
        .map(|m| u8::from(m.is_some()))
        .collect()
}

/// Multi-class labels: the mode of the failure within `horizon` after the row,
/// [`FailureMode::None`] otherwise (use [`FailureMode::class_index`] for class numbers).
pub fn failure_mode_labels(
    frame: &TelemetryFrame,
    events: &[FailureEvent],
    horizon: WindowLength,
) -> Vec<FailureMode> {
    next_failure_within(frame, events, horizon)
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

/// Recovers failure events from a labelled frame (e.g. one loaded from CSV):
/// each run of consecutive `failure = 1` rows of a machine ends just before a
/// failure, placed 1 µs after the run's last row, with the run's mode. The true
/// failure time may be later (up to the next sample); relabelling with the
/// original horizon therefore reproduces the labels up to one sample at the
/// start of each run.
pub fn events_from_labels(frame: &TelemetryFrame) -> Vec<FailureEvent> {
    let Some(failure) = frame.failure() else {
        return Vec::new();
    };
    let modes = frame.failure_mode();
    let mut events = Vec::new();
    for (m, range) in frame.machine_ranges() {
        let end = range.end;
        for i in range {
            let run_ends = failure[i] == 1 && (i + 1 == end || failure[i + 1] == 0);
            if run_ends {
                events.push(FailureEvent {
                    machine: frame.machine_ids()[m as usize].clone(),
                    time: frame.time()[i] + 1,
                    mode: modes.map_or(FailureMode::None, |md| md[i]),
                });
            }
        }
    }
    events
}

impl TelemetryFrame {
    /// Replaces (or adds) the `failure` and `failure_mode` columns with labels for `horizon`.
    pub fn relabel(&mut self, events: &[FailureEvent], horizon: WindowLength) {
        let modes = failure_mode_labels(self, events, horizon);
        let failure = modes
            .iter()
            .map(|m| u8::from(*m != FailureMode::None))
            .collect();
        self.set_labels(failure, modes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS_PER_MINUTE;

    #[test]
    fn horizon_is_half_open_before_the_failure() {
        let times: Vec<i64> = (0..10).map(|i| i * MICROS_PER_MINUTE).collect();
        let frame = TelemetryFrame::new(
            &["a"; 10],
            times,
            vec![("x".into(), vec![0.0; 10])],
            None,
            None,
        )
        .unwrap();
        let events = [FailureEvent {
            machine: "a".into(),
            time: 6 * MICROS_PER_MINUTE,
            mode: FailureMode::Overheat,
        }];
        let labels = horizon_labels(&frame, &events, WindowLength::minutes(3));
        assert_eq!(labels, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]);
        let modes = failure_mode_labels(&frame, &events, WindowLength::minutes(1));
        assert_eq!(modes[5], FailureMode::Overheat);
        assert_eq!(modes[4], FailureMode::None);
        let mut relabelled = frame.clone();
        relabelled.relabel(&events, WindowLength::minutes(3));
        let recovered = events_from_labels(&relabelled);
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].mode, FailureMode::Overheat);
        assert_eq!(
            horizon_labels(&frame, &recovered, WindowLength::minutes(3)),
            [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
        );
    }
}
