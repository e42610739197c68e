//! Batch features: a whole frame at once, machines in parallel.

use std::ops::Range;
use std::sync::Arc;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use crate::error::{FeaturesError, Result};
use crate::frame::TelemetryFrame;
use crate::plan::FeaturePlan;
use crate::spec::{FeatureSpec, SanitizePolicy};
use crate::state::{MachineFeatureState, Step};

/// A feature matrix: one row per telemetry row, in the frame's (machine, time) order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// rows × features, standard (row-major) layout.
    pub values: Array2<f64>,
    /// Column names, in order.
    pub names: Vec<String>,
    /// Distinct machine ids; [`machine`](Self::machine) indexes into it.
    pub machine_ids: Vec<String>,
    /// Per row, the machine index.
    pub machine: Vec<u32>,
    /// Per row, the time (µs since epoch UTC).
    pub time: Vec<i64>,
}

impl FeatureMatrix {
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.values.nrows()
    }

    /// The index of column `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Replaces non-finite values according to `policy` (usually the spec's).
    pub fn sanitize(&mut self, policy: &SanitizePolicy) {
        match self.values.as_slice_mut() {
            Some(s) => s
                .par_chunks_mut(1 << 16)
                .for_each(|c| policy.apply_in_place(c)),
            None => self.values.map_inplace(|v| *v = policy.apply(*v)),
        }
    }

    /// A matrix holding only `rows` (indices into this one, in the given order).
    pub fn select_rows(&self, rows: &[usize]) -> FeatureMatrix {
        FeatureMatrix {
            values: self.values.select(Axis(0), rows),
            names: self.names.clone(),
            machine_ids: self.machine_ids.clone(),
            machine: rows.iter().map(|&i| self.machine[i]).collect(),
            time: rows.iter().map(|&i| self.time[i]).collect(),
        }
    }
}

impl FeatureSpec {
    /// Computes the spec's features for every row of `frame`, with pandas'
    /// `groupby('machine_id').rolling(w, on='time')` semantics (see the crate docs).
    ///
    /// Machines are computed in parallel in the caller's rayon pool; results do
    /// not depend on the number of threads. Values are raw (NaN/±inf kept); call
    /// [`FeatureMatrix::sanitize`] for models that need finite input.
    ///
    /// Samples are admitted by the spec's
    /// [admission rule](FeatureSpec#sample-admission-duplicates-and-spacing):
    /// a row whose time is less than `min_spacing` after the machine's last
    /// admitted row (duplicate times included) does not enter the windows and
    /// gets a copy of the machine's previous row, so there is still one row per
    /// telemetry row.
    ///
    /// Data shorter than a window is fine: as in pandas (`min_periods = 1`),
    /// the first rows of each machine are a warm-up whose windows hold only
    /// the rows so far (a single row: mean = value, std NaN, diff NaN), the
    /// same numbers [`OnlineFeatures`](crate::OnlineFeatures) gives for a
    /// short history. Minimum sizes for training are
    /// [`TrainingSet::build`](crate::TrainingSet::build)'s own check.
    ///
    /// Errors: an invalid spec, a spec sensor missing from the frame, an empty frame.
    pub fn compute(&self, frame: &TelemetryFrame) -> Result<FeatureMatrix> {
        let plan = Arc::new(FeaturePlan::compile(self)?);
        let columns = self.sensor_columns(frame)?;
        if frame.is_empty() {
            return Err(FeaturesError::EmptyInput {
                source_name: "telemetry frame".into(),
            });
        }
        let ranges = frame.machine_ranges();

        let n = frame.len();
        let f = plan.n_features();
        let time = frame.time();
        let mut buffer = vec![0.0f64; n * f];
        let mut chunks = Vec::with_capacity(ranges.len());
        let mut rest = buffer.as_mut_slice();
        for (_, range) in &ranges {
            let (head, tail) = rest.split_at_mut(range.len() * f);
            chunks.push((range.clone(), head));
            rest = tail;
        }
        chunks.into_par_iter().for_each(|(range, out)| {
            compute_machine(&plan, &columns, time, range, out);
        });
        let values = Array2::from_shape_vec((n, f), buffer).map_err(|e| {
            FeaturesError::InvalidParameter {
                name: "frame",
                reason: e.to_string(),
            }
        })?;
        Ok(FeatureMatrix {
            values,
            names: self.feature_names(),
            machine_ids: frame.machine_ids().to_vec(),
            machine: frame.machine().to_vec(),
            time: time.to_vec(),
        })
    }

    /// The frame's column of each spec sensor, in spec order.
    pub(crate) fn sensor_columns<'f>(&self, frame: &'f TelemetryFrame) -> Result<Vec<&'f [f64]>> {
        self.sensors
            .iter()
            .map(|s| {
                frame
                    .sensor_by_name(s)
                    .ok_or_else(|| FeaturesError::UnknownSensor {
                        feature: self
                            .features
                            .iter()
                            .find(|f| f.kind.sensors().contains(&s.as_str()))
                            .map(|f| f.name.clone())
                            .unwrap_or_default(),
                        sensor: s.clone(),
                        available: frame.sensor_names().join(", "),
                    })
            })
            .collect()
    }
}

/// One machine's rows (`range` of the frame) into `out`: admitted rows advance
/// the state, the others copy the previous row.
fn compute_machine(
    plan: &Arc<FeaturePlan>,
    columns: &[&[f64]],
    time: &[i64],
    range: Range<usize>,
    out: &mut [f64],
) {
    let f = plan.n_features();
    let mut state = MachineFeatureState::new(Arc::clone(plan));
    let mut sample = vec![0.0; columns.len()];
    for (j, i) in range.enumerate() {
        let row = j * f;
        let previous = row.checked_sub(f);
        match (state.clock().classify(time[i]), previous) {
            (Step::Advance, _) | (_, None) => {
                for (slot, column) in sample.iter_mut().zip(columns) {
                    *slot = column[i];
                }
                state.step(time[i], &sample, &mut out[row..row + f]);
                state.clock_mut().record(time[i]);
            }
            (Step::Retry | Step::TooClose(_) | Step::OutOfOrder(_), Some(previous)) => {
                out.copy_within(previous..row, row);
            }
        }
    }
}
