//! The compiled form of a [`FeatureSpec`]: window groups and one operation per
//! output column, shared (behind an `Arc`) by every machine's state.

use crate::error::{FeaturesError, Result};
use crate::spec::{Aggregation, FeatureKind, FeatureSpec};
use crate::state::MachineFeatureState;
use crate::window::{RollingWindow, WindowStats};

/// A validated, compiled [`FeatureSpec`]: what every
/// [`MachineFeatureState`] runs. Compile once and share it with
/// `Arc<FeaturePlan>` (a service can keep states in its own sharded maps).
///
/// ```
/// use std::sync::Arc;
/// use vigil_features::{FeaturePlan, FeatureSpec, MachineFeatureState};
/// let plan = Arc::new(FeaturePlan::compile(&FeatureSpec::default())?);
/// let state = MachineFeatureState::new(Arc::clone(&plan));
/// assert!(state.memory_bytes() <= plan.max_state_bytes());
/// assert_eq!(plan.n_features(), 42);
/// # Ok::<(), vigil_features::FeaturesError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FeaturePlan {
    spec: FeatureSpec,
    pub(crate) n_sensors: usize,
    pub(crate) groups: Vec<Group>,
    pub(crate) ops: Vec<Op>,
    pub(crate) min_spacing: i64,
    pub(crate) warm_after: i64,
}

/// One rolling window over one sensor, shared by every feature that reads it.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) sensor: usize,
    pub(crate) window: i64,
    pub(crate) extremes: bool,
}

/// How one output column is computed from the sample and the window stats.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
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

impl FeaturePlan {
    /// Validates and compiles `spec`; sensor indices follow `spec.sensors`.
    pub fn compile(spec: &FeatureSpec) -> Result<FeaturePlan> {
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
        Ok(FeaturePlan {
            n_sensors: spec.sensors.len(),
            groups,
            ops,
            min_spacing: spec.min_spacing.as_micros(),
            warm_after: spec.warm_after().as_micros(),
            spec: spec.clone(),
        })
    }

    /// The spec this plan was compiled from.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// Sensor values per sample (`spec.sensors`, in order).
    pub fn n_sensors(&self) -> usize {
        self.n_sensors
    }

    /// Output features per row.
    pub fn n_features(&self) -> usize {
        self.ops.len()
    }

    /// An upper bound on [`MachineFeatureState::memory_bytes`] for this plan,
    /// whatever the input: what a service must budget per machine (the machine
    /// id and the map holding the states are the service's own).
    ///
    /// Admitted samples are at least [`FeatureSpec::min_spacing`] apart (see
    /// [Sample admission](FeatureSpec#sample-admission-duplicates-and-spacing)),
    /// so a window of length `w` holds at most `w / min_spacing + 1` samples,
    /// and each of its deques (values; min and max candidates when the window
    /// feeds a min or max) at most that many 16-byte entries. The bound allows
    /// each deque twice that capacity (at least 4), room for the standard
    /// library's doubling growth, plus the fixed parts: the state itself, per
    /// window its kernel and last stats, per sensor the previous value and per
    /// feature the cached last row.
    ///
    /// ```
    /// use vigil_features::{FeaturePlan, FeatureSpec};
    /// // The reference 42 features with the default 1 s spacing.
    /// let plan = FeaturePlan::compile(&FeatureSpec::default())?;
    /// assert!(plan.max_state_bytes() < 400_000);
    /// # Ok::<(), vigil_features::FeaturesError>(())
    /// ```
    pub fn max_state_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(i64, f64)>() as u128;
        let spacing = self.min_spacing.max(1) as u128;
        let mut bytes = std::mem::size_of::<MachineFeatureState>() as u128;
        bytes += self.groups.len() as u128
            * (std::mem::size_of::<RollingWindow>() + std::mem::size_of::<WindowStats>()) as u128;
        bytes += (self.n_sensors + self.n_features()) as u128 * 8;
        for g in &self.groups {
            let most = g.window.max(0) as u128 / spacing + 1;
            let deques = if g.extremes { 3 } else { 1 };
            bytes += deques * (2 * most).max(4) * entry;
        }
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// `WrongSampleWidth` / `WrongOutputWidth` unless the slices fit the plan.
    pub(crate) fn check_widths(&self, values: usize, out: usize) -> Result<()> {
        if values != self.n_sensors {
            return Err(FeaturesError::WrongSampleWidth {
                expected: self.n_sensors,
                got: values,
                sensors: self.spec.sensors.join(", "),
            });
        }
        if out != self.n_features() {
            return Err(FeaturesError::WrongOutputWidth {
                expected: self.n_features(),
                got: out,
            });
        }
        Ok(())
    }
}
