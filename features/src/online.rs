//! Incremental features: one sample at a time, per machine.
//!
//! [`OnlineFeatures`] keeps one [`MachineFeatureState`] per machine. Pushing a
//! sample yields its feature row, equal (bit for bit) to the batch row for the
//! same history, because the batch path ([`FeatureSpec::compute`]) drives this very
//! state machine over each machine's rows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::error::{FeaturesError, Result};
use crate::spec::{Aggregation, FeatureKind, FeatureSpec};
use crate::time::format_timestamp;
use crate::window::{RollingWindow, WindowStats};

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

/// The compiled form of a spec: window groups and one operation per output column.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) n_sensors: usize,
    groups: Vec<Group>,
    ops: Vec<Op>,
}

#[derive(Debug)]
struct Group {
    sensor: usize,
    window: i64,
    extremes: bool,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Raw(usize),
    Mean(usize),
    Std(usize),
    Var(usize),
    Min(usize),
    Max(usize),
    Sum(usize),
    Count(usize),
    Diff(usize),
    PctChange(usize),
    ZScore(usize, usize),
    Product(usize, usize),
    Ratio(usize, usize),
}

impl Op {
    /// The operation reading `aggregation` from window group `g`.
    fn rolling(aggregation: Aggregation, g: usize) -> Op {
        match aggregation {
            Aggregation::Mean => Op::Mean(g),
            Aggregation::Std => Op::Std(g),
            Aggregation::Var => Op::Var(g),
            Aggregation::Min => Op::Min(g),
            Aggregation::Max => Op::Max(g),
            Aggregation::Sum => Op::Sum(g),
            Aggregation::Count => Op::Count(g),
        }
    }
}

impl Plan {
    /// Validates and compiles `spec`; sensor indices follow `spec.sensors`.
    pub(crate) fn compile(spec: &FeatureSpec) -> Result<Plan> {
        spec.validate()?;
        let sensor = |name: &str| spec.sensors.iter().position(|s| s == name).unwrap_or(0);
        let mut groups: Vec<Group> = Vec::new();
        let mut group = |s: usize, window: i64, extremes: bool| {
            let i = match groups
                .iter()
                .position(|g| g.sensor == s && g.window == window)
            {
                Some(i) => i,
                None => {
                    groups.push(Group {
                        sensor: s,
                        window,
                        extremes: false,
                    });
                    groups.len() - 1
                }
            };
            groups[i].extremes |= extremes;
            i
        };
        let mut ops = Vec::with_capacity(spec.features.len());
        for f in &spec.features {
            ops.push(match &f.kind {
                FeatureKind::Raw { sensor: s } => Op::Raw(sensor(s)),
                FeatureKind::Rolling {
                    sensor: s,
                    aggregation,
                    window,
                } => {
                    let extremes = matches!(aggregation, Aggregation::Min | Aggregation::Max);
                    Op::rolling(*aggregation, group(sensor(s), window.as_micros(), extremes))
                }
                FeatureKind::Diff { sensor: s } => Op::Diff(sensor(s)),
                FeatureKind::PctChange { sensor: s } => Op::PctChange(sensor(s)),
                FeatureKind::ZScore { sensor: s, window } => {
                    let s = sensor(s);
                    Op::ZScore(group(s, window.as_micros(), false), s)
                }
                FeatureKind::Product { left, right } => Op::Product(sensor(left), sensor(right)),
                FeatureKind::Ratio {
                    numerator,
                    denominator,
                } => Op::Ratio(sensor(numerator), sensor(denominator)),
            });
        }
        Ok(Plan {
            n_sensors: spec.sensors.len(),
            groups,
            ops,
        })
    }

    pub(crate) fn n_features(&self) -> usize {
        self.ops.len()
    }
}

/// The rolling state of one machine: everything needed to turn its next
/// sample into a feature row.
#[derive(Debug, Clone)]
pub struct MachineFeatureState {
    windows: Vec<RollingWindow>,
    stats: Vec<WindowStats>,
    previous: Vec<f64>,
    last_time: Option<i64>,
}

impl MachineFeatureState {
    pub(crate) fn new(plan: &Plan) -> MachineFeatureState {
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
            last_time: None,
        }
    }

    /// The time of the last sample pushed, if any.
    pub fn last_time(&self) -> Option<i64> {
        self.last_time
    }

    /// Advances by one sample. `values` must hold finite values or NaN (the
    /// callers turn ±inf into NaN, as the frame does) and have the plan's width;
    /// `out` the plan's feature count.
    #[inline]
    pub(crate) fn step(&mut self, plan: &Plan, time: i64, values: &[f64], out: &mut [f64]) {
        for ((g, w), s) in plan
            .groups
            .iter()
            .zip(&mut self.windows)
            .zip(&mut self.stats)
        {
            *s = w.push(time, values[g.sensor]);
        }
        for (op, o) in plan.ops.iter().zip(out.iter_mut()) {
            *o = match *op {
                Op::Raw(s) => values[s],
                Op::Mean(g) => self.stats[g].mean,
                Op::Std(g) => self.stats[g].std,
                Op::Var(g) => self.stats[g].var,
                Op::Min(g) => self.stats[g].min,
                Op::Max(g) => self.stats[g].max,
                Op::Sum(g) => self.stats[g].sum,
                Op::Count(g) => self.stats[g].count as f64,
                Op::Diff(s) => values[s] - self.previous[s],
                Op::PctChange(s) => values[s] / self.previous[s] - 1.0,
                Op::ZScore(g, s) => (values[s] - self.stats[g].mean) / self.stats[g].std,
                Op::Product(a, b) => values[a] * values[b],
                Op::Ratio(a, b) => values[a] / values[b],
            };
        }
        self.previous.copy_from_slice(&values[..plan.n_sensors]);
        self.last_time = Some(time);
    }
}

/// Online feature computation for many machines, one sample at a time.
///
/// ```
/// use vigil_features::{FeatureSpec, OnlineFeatures};
/// let mut online = OnlineFeatures::new(FeatureSpec::default()).unwrap();
/// // temperature, vibration, spindle_speed, power_consumption at t = 0 s and 10 s
/// online.push("M01", 0, &[70.0, 0.5, 1500.0, 12.0]).unwrap();
/// let row = online.push("M01", 10_000_000, &[71.0, 0.5, 1500.0, 12.5]).unwrap();
/// assert_eq!(row.len(), 42);
/// assert_eq!(row[1], 70.5); // temperature_mean_5m
/// assert_eq!(row[7], 1.0);  // temperature_diff
/// ```
#[derive(Debug, Clone)]
pub struct OnlineFeatures {
    spec: FeatureSpec,
    plan: Arc<Plan>,
    machines: MachineMap,
    scratch: Vec<f64>,
}

impl OnlineFeatures {
    /// Validates and compiles `spec`.
    pub fn new(spec: FeatureSpec) -> Result<OnlineFeatures> {
        let plan = Arc::new(Plan::compile(&spec)?);
        Ok(OnlineFeatures {
            scratch: vec![0.0; plan.n_sensors],
            spec,
            plan,
            machines: MachineMap::default(),
        })
    }

    /// The spec in use.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// Output column names.
    pub fn feature_names(&self) -> Vec<String> {
        self.spec.feature_names()
    }

    /// Number of output features.
    pub fn n_features(&self) -> usize {
        self.plan.n_features()
    }

    /// Machines seen so far.
    pub fn machines(&self) -> impl Iterator<Item = &str> {
        self.machines.keys().map(String::as_str)
    }

    /// Forgets a machine's history (e.g. after maintenance); returns whether it was known.
    pub fn reset_machine(&mut self, machine: &str) -> bool {
        self.machines.remove(machine).is_some()
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
        self.spec.sanitize.apply_in_place(&mut out);
        Ok(out)
    }

    /// As [`push`](Self::push), writing the row into `out` (no allocation once the machine is known).
    pub fn push_into(
        &mut self,
        machine: &str,
        time: i64,
        values: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        let plan = &self.plan;
        if values.len() != plan.n_sensors {
            return Err(FeaturesError::WrongSampleWidth {
                expected: plan.n_sensors,
                got: values.len(),
                sensors: self.spec.sensors.join(", "),
            });
        }
        if out.len() != plan.n_features() {
            return Err(FeaturesError::WrongOutputWidth {
                expected: plan.n_features(),
                got: out.len(),
            });
        }
        let state = match self.machines.get_mut(machine) {
            Some(state) => state,
            None => self
                .machines
                .entry(machine.to_owned())
                .or_insert_with(|| MachineFeatureState::new(plan)),
        };
        if let Some(previous) = state.last_time
            && time < previous
        {
            return Err(FeaturesError::OutOfOrder {
                machine: machine.to_owned(),
                previous: format_timestamp(previous),
                time: format_timestamp(time),
            });
        }
        for (slot, &v) in self.scratch.iter_mut().zip(values) {
            *slot = if v.is_finite() { v } else { f64::NAN };
        }
        state.step(plan, time, &self.scratch, out);
        Ok(())
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
        online.push("a", 10, &[1.0; 4]).unwrap();
        let err = online.push("a", 5, &[1.0; 4]).unwrap_err();
        assert!(matches!(err, FeaturesError::OutOfOrder { .. }), "{err}");
        // Another machine has its own clock; equal timestamps are fine.
        online.push("b", 5, &[1.0; 4]).unwrap();
        online.push("a", 10, &[1.0; 4]).unwrap();
        let mut short = [0.0; 3];
        assert!(matches!(
            online.push_into("a", 11, &[1.0; 4], &mut short),
            Err(FeaturesError::WrongOutputWidth { .. })
        ));
    }

    #[test]
    fn pct_change_and_ratio_follow_ieee() {
        let mut online = OnlineFeatures::new(FeatureSpec::default()).unwrap();
        online.push("a", 0, &[0.0, 1.0, 0.0, 0.0]).unwrap();
        let row = online
            .push("a", 1, &[2.0, f64::INFINITY, 0.0, -3.0])
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
