//! Incremental features: one sample at a time, per machine.
//!
//! [`OnlineFeatures`] keeps one [`MachineFeatureState`] per machine. Pushing a
//! sample yields its feature row, equal (bit for bit) to the batch row for the
//! same history, because the batch path ([`FeatureSpec::compute`]) drives this very
//! state machine over each machine's rows, with the same
//! [admission rule](FeatureSpec#sample-admission-duplicates-and-spacing).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::error::{FeaturesError, Result};
use crate::frame::TelemetryFrame;
use crate::plan::FeaturePlan;
use crate::spec::FeatureSpec;
use crate::state::{Admission, MachineClock, MachineFeatureState, Pushed};

/// FNV-1a: machine ids are short and trusted to be few; SipHash's DoS
/// resistance costs more than the rest of a push's bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type MachineMap = HashMap<String, MachineFeatureState, BuildHasherDefault<Fnv>>;

/// One sample of a batch for [`OnlineFeatures::push_batch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineSample<'a> {
    /// The machine id.
    pub machine: &'a str,
    /// µs since epoch UTC.
    pub time: i64,
    /// Sensor values in `spec.sensors` order (NaN = missing).
    pub values: &'a [f64],
}

/// Online feature computation for many machines, one sample at a time, by the
/// [admission rule](FeatureSpec#sample-admission-duplicates-and-spacing):
/// a sample at the machine's last time is a retry (same row, nothing changes),
/// one closer than `min_spacing` after it is [`FeaturesError::TooClose`], an
/// earlier one [`FeaturesError::OutOfOrder`].
///
/// ```
/// use vigil_features::{Admission, FeatureSpec, OnlineFeatures};
/// let mut online = OnlineFeatures::new(FeatureSpec::default()).unwrap();
/// // temperature, vibration, spindle_speed, power_consumption at t = 0 s and 10 s
/// online.push("M01", 0, &[70.0, 0.5, 1500.0, 12.0]).unwrap();
/// let row = online.push("M01", 10_000_000, &[71.0, 0.5, 1500.0, 12.5]).unwrap();
/// assert_eq!(row.len(), 42);
/// assert_eq!(row[1], 70.5); // temperature_mean_5m
/// assert_eq!(row[7], 1.0);  // temperature_diff
///
/// // A retry of the last sample: the same row, and the state is unchanged.
/// let mut again = vec![0.0; 42];
/// let pushed = online.push_into("M01", 10_000_000, &[99.0, 0.5, 1500.0, 12.5], &mut again).unwrap();
/// assert_eq!((pushed.admission, pushed.warm), (Admission::Retry, false));
/// assert_eq!(again[1], 70.5);
/// ```
#[derive(Debug, Clone)]
pub struct OnlineFeatures {
    plan: Arc<FeaturePlan>,
    machines: MachineMap,
}

impl OnlineFeatures {
    /// Validates and compiles `spec`.
    pub fn new(spec: FeatureSpec) -> Result<OnlineFeatures> {
        Ok(OnlineFeatures::from_plan(Arc::new(FeaturePlan::compile(
            &spec,
        )?)))
    }

    /// Online features running an already compiled plan.
    pub fn from_plan(plan: Arc<FeaturePlan>) -> OnlineFeatures {
        OnlineFeatures {
            plan,
            machines: MachineMap::default(),
        }
    }

    /// The compiled plan every machine's state shares.
    pub fn plan(&self) -> &Arc<FeaturePlan> {
        &self.plan
    }

    /// The spec in use.
    pub fn spec(&self) -> &FeatureSpec {
        self.plan.spec()
    }

    /// Output column names.
    pub fn feature_names(&self) -> Vec<String> {
        self.spec().feature_names()
    }

    /// Number of output features.
    pub fn n_features(&self) -> usize {
        self.plan.n_features()
    }

    /// Machines seen so far.
    pub fn machines(&self) -> impl Iterator<Item = &str> {
        self.machines.keys().map(String::as_str)
    }

    /// How many machines have a state.
    pub fn machine_count(&self) -> usize {
        self.machines.len()
    }

    /// A machine's state, if it has one.
    pub fn machine(&self, machine: &str) -> Option<&MachineFeatureState> {
        self.machines.get(machine)
    }

    /// Forgets a machine's history (e.g. after maintenance); returns whether it was known.
    pub fn reset_machine(&mut self, machine: &str) -> bool {
        self.machines.remove(machine).is_some()
    }

    /// Whether a sample of `machine` at `time` would advance its state or be a
    /// retry; changes nothing (see [`MachineFeatureState::admit`]).
    pub fn admit(&self, machine: &str, time: i64) -> Result<Admission> {
        self.clock_of(machine).admit(machine, time)
    }

    /// Checks a whole batch of `(machine, time)` against the stored state,
    /// following each machine's time through the batch (it may hold several
    /// samples per machine, a retry of one of them included), and changes
    /// nothing: the admission of every sample, or the first refusal as
    /// [`FeaturesError::BatchSample`] with its index. Pushing the batch in
    /// order afterwards gives exactly these admissions.
    pub fn check_batch<'a>(
        &self,
        samples: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<Vec<Admission>> {
        let mut clocks: HashMap<&str, MachineClock, BuildHasherDefault<Fnv>> = HashMap::default();
        samples
            .into_iter()
            .enumerate()
            .map(|(index, (machine, time))| {
                clocks
                    .entry(machine)
                    .or_insert_with(|| self.clock_of(machine))
                    .advance(machine, time)
                    .map_err(|e| FeaturesError::BatchSample {
                        index,
                        source: Box::new(e),
                    })
            })
            .collect()
    }

    /// Feeds one sample of `machine` at `time` (µs since epoch UTC) with sensor
    /// `values` in `spec.sensors` order (NaN = missing; ±inf is treated as
    /// missing, as in batch) and returns its raw feature row.
    pub fn push(&mut self, machine: &str, time: i64, values: &[f64]) -> Result<Vec<f64>> {
        let mut out = vec![0.0; self.plan.n_features()];
        self.push_into(machine, time, values, &mut out)?;
        Ok(out)
    }

    /// As [`push`](Self::push), then sanitised with the spec's policy (model input).
    pub fn push_sanitized(&mut self, machine: &str, time: i64, values: &[f64]) -> Result<Vec<f64>> {
        let mut out = self.push(machine, time, values)?;
        self.spec().sanitize.apply_in_place(&mut out);
        Ok(out)
    }

    /// As [`push`](Self::push), writing the raw row into `out` (no allocation
    /// once the machine is known), and saying whether the sample advanced the
    /// state or was a retry, and whether the row is warm
    /// ([`MachineFeatureState::push`]).
    pub fn push_into(
        &mut self,
        machine: &str,
        time: i64,
        values: &[f64],
        out: &mut [f64],
    ) -> Result<Pushed> {
        if let Some(state) = self.machines.get_mut(machine) {
            return state.push(machine, time, values, out);
        }
        let mut state = MachineFeatureState::new(Arc::clone(&self.plan));
        let pushed = state.push(machine, time, values, out)?;
        self.machines.insert(machine.to_owned(), state);
        Ok(pushed)
    }

    /// Pushes a whole batch, all or nothing: every sample is checked first
    /// (widths and [`check_batch`](Self::check_batch)); on any error nothing
    /// changes. `out` receives the raw rows, row-major (`samples.len()` ×
    /// [`n_features`](Self::n_features)).
    pub fn push_batch(
        &mut self,
        samples: &[OnlineSample<'_>],
        out: &mut [f64],
    ) -> Result<Vec<Pushed>> {
        let f = self.plan.n_features();
        if Some(out.len()) != samples.len().checked_mul(f) {
            return Err(FeaturesError::InvalidParameter {
                name: "out",
                reason: format!(
                    "holds {} values; {} samples of {f} features need {}",
                    out.len(),
                    samples.len(),
                    samples.len().saturating_mul(f)
                ),
            });
        }
        for (index, s) in samples.iter().enumerate() {
            self.plan
                .check_widths(s.values.len(), f)
                .map_err(|e| FeaturesError::BatchSample {
                    index,
                    source: Box::new(e),
                })?;
        }
        self.check_batch(samples.iter().map(|s| (s.machine, s.time)))?;
        samples
            .iter()
            .zip(out.chunks_exact_mut(f.max(1)))
            .map(|(s, row)| self.push_into(s.machine, s.time, s.values, row))
            .collect()
    }

    /// Replaces `machine`'s state with one rebuilt from its stored telemetry
    /// (a warm start; see [`MachineFeatureState::restore`] for what to pass).
    /// Nothing changes on error.
    pub fn restore_machine<'a>(
        &mut self,
        machine: &str,
        first_time: Option<i64>,
        samples: impl IntoIterator<Item = (i64, &'a [f64])>,
    ) -> Result<()> {
        let state =
            MachineFeatureState::restore(Arc::clone(&self.plan), machine, first_time, samples)?;
        self.machines.insert(machine.to_owned(), state);
        Ok(())
    }

    /// Warm-starts every machine of `frame` (the telemetry the service
    /// admitted, e.g. loaded from its store after a restart), replacing any
    /// state it had; returns how many machines were restored. Each machine
    /// replays only what [`MachineFeatureState::restore`] needs: its rows
    /// after `last − warmup_span` ([`FeatureSpec::warmup_span`]) and the last
    /// row at or before that (the first of its time, if repeated).
    ///
    /// Each machine's first row in the frame is taken as its first sample,
    /// which decides [`Pushed::warm`]: for the same warm flags as a service
    /// that never stopped, the frame must start at each machine's first
    /// sample or at or before `last − warmup_span` (or use
    /// [`restore_machine`](Self::restore_machine) with the first time).
    ///
    /// Errors: a spec sensor missing from the frame. Nothing changes on error.
    pub fn restore_from(&mut self, frame: &TelemetryFrame) -> Result<usize> {
        let columns = self.spec().sensor_columns(frame)?;
        let span = self.spec().warmup_span().as_micros();
        let time = frame.time();
        let mut restored = Vec::new();
        for (_, range) in frame.machine_ranges() {
            let machine = frame.machine_id_of(range.start);
            let times = &time[range.clone()];
            let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
                continue;
            };
            let start = range.start + replay_start(times, last.saturating_sub(span));
            let values: Vec<f64> = (start..range.end)
                .flat_map(|i| columns.iter().map(move |c| c[i]))
                .collect();
            let samples = time[start..range.end]
                .iter()
                .copied()
                .zip(values.chunks_exact(columns.len().max(1)));
            let plan = Arc::clone(&self.plan);
            let state = MachineFeatureState::restore(plan, machine, Some(first), samples)?;
            restored.push((machine.to_owned(), state));
        }
        let count = restored.len();
        self.machines.extend(restored);
        Ok(count)
    }

    /// The stored clock of `machine`, or a fresh one.
    fn clock_of(&self, machine: &str) -> MachineClock {
        self.machines
            .get(machine)
            .map_or_else(|| MachineClock::new(&self.plan), MachineFeatureState::clock)
    }
}

/// Where a warm start replays from in a machine's sorted `times`: the last
/// time at or before `cut` (its first row, if repeated: the admitted one), or 0.
fn replay_start(times: &[i64], cut: i64) -> usize {
    let after = times.partition_point(|&t| t <= cut);
    match after.checked_sub(1) {
        Some(before) => times.partition_point(|&t| t < times[before]),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_samples() {
        let mut online = OnlineFeatures::new(FeatureSpec::default()).unwrap();
        assert!(matches!(
            online.push("a", 0, &[1.0]),
            Err(FeaturesError::WrongSampleWidth { .. })
        ));
        assert_eq!(
            online.machine_count(),
            0,
            "a refused first sample adds no machine"
        );
        online.push("a", 10, &[1.0; 4]).unwrap();
        let err = online.push("a", 5, &[1.0; 4]).unwrap_err();
        assert!(matches!(err, FeaturesError::OutOfOrder { .. }), "{err}");
        let err = online.push("a", 11, &[1.0; 4]).unwrap_err();
        assert!(matches!(err, FeaturesError::TooClose { .. }), "{err}");
        // Another machine has its own clock; the same time again is a retry.
        online.push("b", 5, &[1.0; 4]).unwrap();
        online.push("a", 10, &[1.0; 4]).unwrap();
        let mut short = [0.0; 3];
        assert!(matches!(
            online.push_into("a", 1_000_010, &[1.0; 4], &mut short),
            Err(FeaturesError::WrongOutputWidth { .. })
        ));
        assert_eq!(online.machine_count(), 2);
        assert!(online.reset_machine("a"));
        assert_eq!(online.machine_count(), 1);
        assert!(online.machine("a").is_none());
    }

    const SECOND: i64 = 1_000_000;

    /// Machine `a` at 10 s, machine `b` unknown.
    fn online_with_a() -> OnlineFeatures {
        let mut online = OnlineFeatures::new(FeatureSpec::default()).unwrap();
        online.push("a", 10 * SECOND, &[1.0; 4]).unwrap();
        online
    }

    #[test]
    fn check_batch_follows_each_machine_through_the_batch() {
        let online = online_with_a();
        let batch = [
            ("a", 10 * SECOND), // a retry of the stored last sample
            ("a", 11 * SECOND),
            ("b", 0),
            ("a", 11 * SECOND), // a retry of the sample before in the batch
            ("b", SECOND),
        ];
        let admissions = online.check_batch(batch).unwrap();
        use Admission::{Advance, Retry};
        assert_eq!(admissions, [Retry, Advance, Advance, Retry, Advance]);
        // Nothing changed.
        assert_eq!(online.machine_count(), 1);
        assert_eq!(online.machine("a").unwrap().last_time(), Some(10 * SECOND));

        let too_close = [("a", 11 * SECOND), ("b", 0), ("a", 11 * SECOND + 500_000)];
        match online.check_batch(too_close).unwrap_err() {
            FeaturesError::BatchSample { index: 2, source } => {
                assert!(
                    matches!(*source, FeaturesError::TooClose { .. }),
                    "{source}"
                );
            }
            other => panic!("{other}"),
        }
        let err = online.check_batch([("a", 9 * SECOND)]).unwrap_err();
        assert!(
            err.to_string().starts_with("batch sample 0: machine `a`"),
            "{err}"
        );
    }

    #[test]
    fn push_batch_is_all_or_nothing() {
        let mut online = online_with_a();
        let values = [[2.0; 4], [3.0; 4], [4.0; 4]];
        let sample = |machine, time, k: usize| OnlineSample {
            machine,
            time,
            values: &values[k],
        };
        let mut out = vec![0.0; 3 * 42];
        let bad = [
            sample("b", 0, 0),
            sample("a", 11 * SECOND, 1),
            sample("a", 10 * SECOND, 2), // older than the batch's own 11 s
        ];
        let err = online.push_batch(&bad, &mut out).unwrap_err();
        assert!(
            matches!(err, FeaturesError::BatchSample { index: 2, .. }),
            "{err}"
        );
        let narrow = [
            sample("b", 0, 0),
            OnlineSample {
                machine: "b",
                time: SECOND,
                values: &[1.0],
            },
        ];
        let err = online.push_batch(&narrow, &mut out[..84]).unwrap_err();
        assert!(
            matches!(err, FeaturesError::BatchSample { index: 1, .. }),
            "{err}"
        );
        assert!(
            online.push_batch(&bad[..2], &mut out).is_err(),
            "output too long"
        );
        assert_eq!(online.machine_count(), 1);
        assert_eq!(online.machine("a").unwrap().last_time(), Some(10 * SECOND));

        // A good batch gives the rows of pushing one by one.
        let good = [
            sample("b", 0, 0),
            sample("a", 11 * SECOND, 1),
            sample("a", 11 * SECOND, 2),
        ];
        let pushed = online.push_batch(&good, &mut out).unwrap();
        let mut one_by_one = online_with_a();
        let expected: Vec<f64> = [("b", 0, 0), ("a", 11, 1), ("a", 11, 2)]
            .iter()
            .flat_map(|&(m, s, k)| one_by_one.push(m, s * SECOND, &values[k]).unwrap())
            .collect();
        assert_eq!(
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let admissions: Vec<Admission> = pushed.iter().map(|p| p.admission).collect();
        assert_eq!(
            admissions,
            [Admission::Advance, Admission::Advance, Admission::Retry]
        );
        assert_eq!(out[42..84], out[84..]);
    }

    #[test]
    fn pct_change_and_ratio_follow_ieee() {
        let mut online = OnlineFeatures::new(FeatureSpec::default()).unwrap();
        online.push("a", 0, &[0.0, 1.0, 0.0, 0.0]).unwrap();
        let row = online
            .push("a", 1_000_000, &[2.0, f64::INFINITY, 0.0, -3.0])
            .unwrap();
        let names = online.feature_names();
        let get = |n: &str| row[names.iter().position(|x| x == n).unwrap()];
        assert_eq!(get("temperature_pct_change"), f64::INFINITY); // 2/0 - 1
        assert!(get("spindle_speed_pct_change").is_nan()); // 0/0
        assert!(get("vibration").is_nan()); // inf is a glitch = missing
        assert!(get("vibration_diff").is_nan());
        assert_eq!(get("power_per_speed"), f64::NEG_INFINITY); // -3/0
        let sanitized = {
            let mut r = row.clone();
            FeatureSpec::default().sanitize.apply_in_place(&mut r);
            r
        };
        assert!(sanitized.iter().all(|v| v.is_finite()));
    }
}
