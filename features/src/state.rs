//! One machine's feature state and its admission clock (see
//! [Sample admission](crate::FeatureSpec#sample-admission-duplicates-and-spacing)).

use std::sync::Arc;

use crate::error::{FeaturesError, Result};
use crate::plan::{FeaturePlan, Op};
use crate::spec::WindowLength;
use crate::time::format_timestamp;
use crate::window::{RollingWindow, WindowStats};

/// How a sample's time relates to its machine's state, by the
/// [admission rule](crate::FeatureSpec#sample-admission-duplicates-and-spacing)
/// (the refused cases are errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Admission {
    /// A new sample: it enters the state and gets a new row.
    Advance,
    /// The same time as the machine's last admitted sample (a client retry):
    /// nothing changes and the row is the previous one again.
    Retry,
}

/// What a push did: whether the sample advanced the state or was a retry,
/// and whether its row is warm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Advance or retry.
    pub admission: Admission,
    /// Whether the row's windows are full: the sample is at least
    /// [`FeatureSpec::warm_after`](crate::FeatureSpec::warm_after) (the
    /// longest window, at least `min_spacing`) after the machine's first
    /// admitted sample. Rows before that are a warm-up over a shorter history.
    pub warm: bool,
}

/// Where a time falls relative to a machine's last admitted sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Admitted.
    Advance,
    /// Equal to the last admitted time.
    Retry,
    /// After the last admitted time, but by less than the minimum spacing.
    TooClose(i64),
    /// Before the last admitted time.
    OutOfOrder(i64),
}

/// A machine's admission clock: its first and last admitted times and the
/// plan's spacing rule. It is `Copy`, so a service can check a whole batch on
/// copies ([`MachineFeatureState::clock`], [`MachineClock::advance`]) before
/// changing any state; [`OnlineFeatures::check_batch`](crate::OnlineFeatures::check_batch)
/// does exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineClock {
    min_spacing: i64,
    warm_after: i64,
    first: Option<i64>,
    last: Option<i64>,
}

impl MachineClock {
    /// The clock of a machine with no sample yet.
    pub fn new(plan: &FeaturePlan) -> MachineClock {
        MachineClock {
            min_spacing: plan.min_spacing,
            warm_after: plan.warm_after,
            first: None,
            last: None,
        }
    }

    /// The time of the first admitted sample.
    pub fn first_time(&self) -> Option<i64> {
        self.first
    }

    /// The time of the last admitted sample.
    pub fn last_time(&self) -> Option<i64> {
        self.last
    }

    /// Whether a sample of `machine` at `time` would advance the state or be a
    /// retry; changes nothing. Errors: [`FeaturesError::TooClose`] and
    /// [`FeaturesError::OutOfOrder`] (`machine` only names it in them).
    pub fn admit(&self, machine: &str, time: i64) -> Result<Admission> {
        match self.classify(time) {
            Step::Advance => Ok(Admission::Advance),
            Step::Retry => Ok(Admission::Retry),
            Step::TooClose(previous) => Err(FeaturesError::TooClose {
                machine: machine.to_owned(),
                previous,
                time,
                min_spacing: WindowLength::from_micros(self.min_spacing),
            }),
            Step::OutOfOrder(previous) => Err(FeaturesError::OutOfOrder {
                machine: machine.to_owned(),
                previous: format_timestamp(previous),
                time: format_timestamp(time),
            }),
        }
    }

    /// As [`admit`](Self::admit), then records an admitted time as the last
    /// one: the clock's progression through a batch.
    pub fn advance(&mut self, machine: &str, time: i64) -> Result<Admission> {
        let admission = self.admit(machine, time)?;
        if admission == Admission::Advance {
            self.record(time);
        }
        Ok(admission)
    }

    /// Whether a row at `time` is warm (see [`Pushed::warm`]); false before
    /// any sample.
    pub fn is_warm_at(&self, time: i64) -> bool {
        self.first
            .is_some_and(|first| time.saturating_sub(first) >= self.warm_after)
    }

    /// The admission rule, without errors.
    #[inline]
    pub(crate) fn classify(&self, time: i64) -> Step {
        match self.last {
            None => Step::Advance,
            Some(last) if time == last => Step::Retry,
            Some(last) if time < last => Step::OutOfOrder(last),
            // `time > last` here, so the difference is exact even across i64.
            Some(last) if time.abs_diff(last) < self.min_spacing.unsigned_abs() => {
                Step::TooClose(last)
            }
            Some(_) => Step::Advance,
        }
    }

    /// Records an admitted time.
    #[inline]
    pub(crate) fn record(&mut self, time: i64) {
        self.first.get_or_insert(time);
        self.last = Some(time);
    }
}

/// The rolling state of one machine: everything needed to turn its next
/// sample into a feature row, by the plan it shares with every other machine.
///
/// [`OnlineFeatures`](crate::OnlineFeatures) keeps one per machine; a service
/// with its own (e.g. sharded) maps keeps them itself: [`admit`](Self::admit)
/// checks a sample without changing anything, [`push`](Self::push) applies it.
/// Its size in bytes never exceeds [`FeaturePlan::max_state_bytes`].
///
/// ```
/// use std::sync::Arc;
/// use vigil_features::{Admission, FeaturePlan, FeatureSpec, MachineFeatureState};
/// let plan = Arc::new(FeaturePlan::compile(&FeatureSpec::default())?);
/// let mut state = MachineFeatureState::new(Arc::clone(&plan));
/// let mut row = vec![0.0; plan.n_features()];
/// let sample = [70.0, 0.5, 1500.0, 12.0];
/// assert_eq!(state.push("M01", 0, &sample, &mut row)?.admission, Admission::Advance);
/// // The same time again is a retry; 0.5 s later is too close (spacing 1 s).
/// assert_eq!(state.admit("M01", 0)?, Admission::Retry);
/// assert!(state.admit("M01", 500_000).is_err());
/// # Ok::<(), vigil_features::FeaturesError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MachineFeatureState {
    plan: Arc<FeaturePlan>,
    windows: Vec<RollingWindow>,
    stats: Vec<WindowStats>,
    /// The last admitted sample's values (`diff`, `pct_change`).
    previous: Vec<f64>,
    /// The last admitted sample's raw row, the answer to a retry.
    last_row: Vec<f64>,
    clock: MachineClock,
}

impl MachineFeatureState {
    /// The state of a machine with no sample yet.
    pub fn new(plan: Arc<FeaturePlan>) -> MachineFeatureState {
        let windows: Vec<RollingWindow> = plan
            .groups
            .iter()
            .map(|g| RollingWindow::new(g.window, g.extremes))
            .collect();
        let empty = WindowStats {
            count: 0,
            mean: f64::NAN,
            std: f64::NAN,
            var: f64::NAN,
            sum: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
        MachineFeatureState {
            stats: vec![empty; windows.len()],
            windows,
            previous: vec![f64::NAN; plan.n_sensors],
            last_row: vec![f64::NAN; plan.n_features()],
            clock: MachineClock::new(&plan),
            plan,
        }
    }

    /// The plan this state runs.
    pub fn plan(&self) -> &Arc<FeaturePlan> {
        &self.plan
    }

    /// A copy of the admission clock (to check a batch without changing anything).
    pub fn clock(&self) -> MachineClock {
        self.clock
    }

    /// The time of the last admitted sample, if any.
    pub fn last_time(&self) -> Option<i64> {
        self.clock.last
    }

    /// The time of the first admitted sample (or the one given to
    /// [`restore`](Self::restore)), if any.
    pub fn first_time(&self) -> Option<i64> {
        self.clock.first
    }

    /// The raw (unsanitised) row of the last admitted sample: what a retry returns.
    pub fn last_row(&self) -> Option<&[f64]> {
        self.clock.last.map(|_| self.last_row.as_slice())
    }

    /// Whether a sample of `machine` at `time` would advance the state or be
    /// a retry, by the [admission rule](crate::FeatureSpec#sample-admission-duplicates-and-spacing);
    /// changes nothing. Errors: [`FeaturesError::TooClose`],
    /// [`FeaturesError::OutOfOrder`] (`machine` only names it in them).
    pub fn admit(&self, machine: &str, time: i64) -> Result<Admission> {
        self.clock.admit(machine, time)
    }

    /// Feeds one sample at `time` (µs since epoch UTC) with sensor `values` in
    /// `spec.sensors` order (NaN = missing; ±inf is treated as missing, as in
    /// batch) and writes its raw feature row into `out`. A retry writes the
    /// previous row and changes nothing; a refused sample (too close, out of
    /// order, wrong widths) is an error and changes nothing.
    pub fn push(
        &mut self,
        machine: &str,
        time: i64,
        values: &[f64],
        out: &mut [f64],
    ) -> Result<Pushed> {
        self.plan.check_widths(values.len(), out.len())?;
        let admission = self.clock.admit(machine, time)?;
        if admission == Admission::Advance {
            if values.iter().any(|v| v.is_infinite()) {
                let finite: Vec<f64> = values
                    .iter()
                    .map(|&v| if v.is_finite() { v } else { f64::NAN })
                    .collect();
                self.step(time, &finite, out);
            } else {
                self.step(time, values, out);
            }
            self.last_row.copy_from_slice(out);
            self.clock.record(time);
        } else {
            out.copy_from_slice(&self.last_row);
        }
        Ok(Pushed {
            admission,
            warm: self.clock.is_warm_at(time),
        })
    }

    /// A warm start: the state rebuilt from a machine's stored telemetry
    /// `samples` (`(time, values)` in time order), equal in every row that
    /// follows, bit for bit, to the state of a service that saw the whole
    /// history.
    ///
    /// * Give at least the samples with `time > last − warmup_span`
    ///   ([`FeatureSpec::warmup_span`](crate::FeatureSpec::warmup_span)) and
    ///   the last admitted sample before them (after an outage the last row's
    ///   `diff` needs it); earlier ones are fine (replayed too, same result).
    ///   [`OnlineFeatures::restore_from`](crate::OnlineFeatures::restore_from)
    ///   picks exactly these from a frame.
    /// * They must be the samples the service admitted; stored retries
    ///   (equal times) and too-close samples are skipped as in batch. With raw
    ///   telemetry that holds samples closer than `min_spacing`, which ones a
    ///   replay admits can depend on where it starts, so replay from the
    ///   machine's first sample then (as batch does).
    /// * `first_time` is the machine's first admitted time, if it is earlier
    ///   than the first sample given: it decides [`Pushed::warm`].
    ///
    /// Errors: a sample older than the one before it ([`FeaturesError::OutOfOrder`],
    /// naming `machine`), a sample of the wrong width.
    pub fn restore<'a>(
        plan: Arc<FeaturePlan>,
        machine: &str,
        first_time: Option<i64>,
        samples: impl IntoIterator<Item = (i64, &'a [f64])>,
    ) -> Result<MachineFeatureState> {
        let mut state = MachineFeatureState::new(plan);
        let mut row = std::mem::take(&mut state.last_row);
        let n_features = row.len();
        let mut finite = vec![0.0; state.plan.n_sensors];
        for (time, values) in samples {
            state.plan.check_widths(values.len(), n_features)?;
            match state.clock.classify(time) {
                Step::Advance => {
                    for (slot, &v) in finite.iter_mut().zip(values) {
                        *slot = if v.is_finite() { v } else { f64::NAN };
                    }
                    state.step(time, &finite, &mut row);
                    state.clock.record(time);
                }
                Step::Retry | Step::TooClose(_) => {}
                Step::OutOfOrder(_) => {
                    state.clock.admit(machine, time)?;
                }
            }
        }
        state.last_row = row;
        if let Some(first) = first_time {
            state.clock.first = Some(state.clock.first.map_or(first, |f| f.min(first)));
        }
        Ok(state)
    }

    /// Bytes this state occupies: itself plus its heap (by capacity), not
    /// counting the shared plan. Never more than [`FeaturePlan::max_state_bytes`].
    pub fn memory_bytes(&self) -> usize {
        let windows: usize = self.windows.iter().map(RollingWindow::heap_bytes).sum();
        std::mem::size_of::<MachineFeatureState>()
            + self.windows.capacity() * std::mem::size_of::<RollingWindow>()
            + self.stats.capacity() * std::mem::size_of::<WindowStats>()
            + (self.previous.capacity() + self.last_row.capacity()) * 8
            + windows
    }

    /// The admission clock, for the batch path.
    pub(crate) fn clock_mut(&mut self) -> &mut MachineClock {
        &mut self.clock
    }

    /// Advances by one admitted sample (the clock is the caller's). `values`
    /// must hold finite values or NaN and have the plan's width; `out` the
    /// plan's feature count.
    #[inline]
    pub(crate) fn step(&mut self, time: i64, values: &[f64], out: &mut [f64]) {
        let plan = &*self.plan;
        for ((g, w), s) in plan
            .groups
            .iter()
            .zip(&mut self.windows)
            .zip(&mut self.stats)
        {
            *s = w.push(time, values[g.sensor]);
        }
        let stats = &self.stats;
        let previous = &self.previous;
        for (op, o) in plan.ops.iter().zip(out.iter_mut()) {
            *o = match *op {
                Op::Raw(s) => values[s],
                Op::Mean(g) => stats[g].mean,
                Op::Std(g) => stats[g].std,
                Op::Var(g) => stats[g].var,
                Op::Min(g) => stats[g].min,
                Op::Max(g) => stats[g].max,
                Op::Sum(g) => stats[g].sum,
                Op::Count(g) => stats[g].count as f64,
                Op::Diff(s) => values[s] - previous[s],
                Op::PctChange(s) => values[s] / previous[s] - 1.0,
                Op::ZScore(g, s) => (values[s] - stats[g].mean) / stats[g].std,
                Op::Product(a, b) => values[a] * values[b],
                Op::Ratio(a, b) => values[a] / values[b],
            };
        }
        self.previous.copy_from_slice(&values[..plan.n_sensors]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Aggregation, FeatureSpec};

    const SECOND: i64 = 1_000_000;

    fn plan(spec: &FeatureSpec) -> Arc<FeaturePlan> {
        Arc::new(FeaturePlan::compile(spec).unwrap())
    }

    fn small_spec() -> FeatureSpec {
        FeatureSpec::new(["a"])
            .with_raw("a")
            .with_rolling("a", Aggregation::Mean, WindowLength::seconds(10))
            .with_diff("a")
    }

    #[test]
    fn the_clock_applies_the_admission_rule() {
        let plan = plan(&small_spec());
        let mut clock = MachineClock::new(&plan);
        assert_eq!(clock.admit("m", 5 * SECOND).unwrap(), Admission::Advance);
        clock.advance("m", 5 * SECOND).unwrap();
        assert_eq!(clock.admit("m", 5 * SECOND).unwrap(), Admission::Retry);
        assert_eq!(clock.admit("m", 6 * SECOND).unwrap(), Admission::Advance);
        let err = clock.admit("m", 5 * SECOND + 999_999).unwrap_err();
        match &err {
            FeaturesError::TooClose {
                machine,
                previous,
                time,
                min_spacing,
            } => {
                assert_eq!((machine.as_str(), *previous), ("m", 5 * SECOND));
                assert_eq!(*time, 5 * SECOND + 999_999);
                assert_eq!(*min_spacing, WindowLength::seconds(1));
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("only 999999us after"), "{err}");
        assert!(matches!(
            clock.admit("m", 4 * SECOND),
            Err(FeaturesError::OutOfOrder { .. })
        ));
        // A refused time leaves the clock as it was.
        assert_eq!(clock.last_time(), Some(5 * SECOND));
        // Near the end of time the spacing saturates instead of overflowing.
        let mut late = MachineClock::new(&plan);
        late.advance("m", i64::MAX - 10).unwrap();
        assert!(late.admit("m", i64::MAX).is_err());
        assert!(!late.is_warm_at(i64::MAX));
    }

    #[test]
    fn rows_are_warm_once_the_longest_window_is_covered() {
        let plan = plan(&small_spec());
        let mut state = MachineFeatureState::new(Arc::clone(&plan));
        let mut row = [0.0; 3];
        let warm: Vec<bool> = [0, 4, 9, 10, 10, 11]
            .iter()
            .map(|&s| state.push("m", s * SECOND, &[1.0], &mut row).unwrap().warm)
            .collect();
        assert_eq!(warm, [false, false, false, true, true, true]);
        assert_eq!(state.first_time(), Some(0));
    }

    #[test]
    fn a_retry_returns_the_cached_row_and_a_refusal_changes_nothing() {
        let plan = plan(&small_spec());
        let mut state = MachineFeatureState::new(Arc::clone(&plan));
        let mut reference = MachineFeatureState::new(Arc::clone(&plan));
        let (mut row, mut expected) = ([0.0; 3], [0.0; 3]);
        assert!(state.last_row().is_none());
        state.push("m", 0, &[1.0], &mut row).unwrap();
        reference.push("m", 0, &[1.0], &mut expected).unwrap();
        state.push("m", SECOND, &[3.0], &mut row).unwrap();
        reference.push("m", SECOND, &[3.0], &mut expected).unwrap();
        assert_eq!(row, [3.0, 2.0, 2.0]);

        // A retry with other values: the previous row again.
        let mut again = [0.0; 3];
        let pushed = state.push("m", SECOND, &[50.0], &mut again).unwrap();
        assert_eq!(pushed.admission, Admission::Retry);
        assert_eq!(again, row);
        assert_eq!(state.last_row(), Some(&row[..]));
        // Refused: too close, out of order, wrong widths.
        assert!(state.push("m", SECOND + 1, &[9.0], &mut again).is_err());
        assert!(state.push("m", 0, &[9.0], &mut again).is_err());
        assert!(
            state
                .push("m", 5 * SECOND, &[9.0, 1.0], &mut again)
                .is_err()
        );
        assert!(state.push("m", 5 * SECOND, &[9.0], &mut [0.0; 2]).is_err());

        // None of that entered the state.
        state.push("m", 2 * SECOND, &[5.0], &mut row).unwrap();
        reference
            .push("m", 2 * SECOND, &[5.0], &mut expected)
            .unwrap();
        assert_eq!(row.map(f64::to_bits), expected.map(f64::to_bits));
        assert_eq!(row, [5.0, 3.0, 2.0]);
    }

    #[test]
    fn infinities_are_missing_values() {
        let plan = plan(&small_spec());
        let mut state = MachineFeatureState::new(plan);
        let mut row = [0.0; 3];
        state.push("m", 0, &[2.0], &mut row).unwrap();
        state
            .push("m", SECOND, &[f64::NEG_INFINITY], &mut row)
            .unwrap();
        assert!(row[0].is_nan() && row[2].is_nan());
        assert_eq!(row[1], 2.0);
    }

    #[test]
    fn memory_stays_within_the_bound_on_a_worst_case_stream() {
        // Samples at the 1 ms floor: the 2 s windows fill to 2000 samples.
        let spec = FeatureSpec::new(["a", "b"])
            .with_rolling("a", Aggregation::Min, WindowLength::seconds(2))
            .with_rolling("a", Aggregation::Max, WindowLength::seconds(2))
            .with_rolling("b", Aggregation::Count, WindowLength::seconds(2))
            .with_rolling("b", Aggregation::Std, WindowLength::seconds(5))
            .with_diff("a")
            .with_min_spacing(FeatureSpec::MIN_SPACING_FLOOR);
        let plan = plan(&spec);
        let bound = plan.max_state_bytes();
        let mut state = MachineFeatureState::new(Arc::clone(&plan));
        let mut row = vec![0.0; plan.n_features()];
        let (mut most, mut fullest) = (0, 0.0f64);
        for i in 0..12_000i64 {
            // Rising, then falling: each of the min and max deques holds a
            // whole window at some point.
            let a = if i < 6_000 { i as f64 } else { -(i as f64) };
            state.push("m", i * 1_000, &[a, 1.0], &mut row).unwrap();
            most = most.max(state.memory_bytes());
            fullest = fullest.max(row[2]);
        }
        assert_eq!(fullest, 2_000.0);
        assert!(most <= bound, "{most} > {bound}");
        // The bound is not vacuous: the stream comes within a factor 4 of it.
        assert!(most * 4 >= bound, "{most} vs {bound}");
    }
}
