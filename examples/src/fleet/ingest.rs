//! Per-machine ingestion: each machine's telemetry becomes features, is split
//! by the fleet's time cut-offs, and only what training and evaluation need is
//! kept: bin codes, labels, sample weights, and for the test split the anomaly
//! score, machine and time of each row.

use ndarray::{Array2, Axis};
use vigil_features::{
    FailureEvent, FailureMode, FeatureMatrix, FeatureSpec, TelemetryFrame, WindowLength,
    events_from_labels, split_by_time,
};
use vigil_forest::{
    BinEdges, BinnedBuilder, BinnedSamples, Contamination, IsolationForest, IsolationForestParams,
    Samples,
};

use super::sample::{DRIFT_SAMPLE_ROWS, TrainSample};
use crate::error::PipelineError;

/// The fleet's time cut-offs (µs since epoch UTC) and the embargo between splits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cuts {
    /// Validation rows are at or after it.
    pub validation: i64,
    /// Test rows are at or after it.
    pub test: i64,
    /// One label horizon: rows this close before a cut-off belong to no split.
    pub embargo: WindowLength,
}

/// How ingestion samples and bins.
#[derive(Debug, Clone)]
pub(crate) struct IngestRules {
    pub spec: FeatureSpec,
    pub cuts: Cuts,
    /// Share of far-from-failure training rows kept (1 = all).
    pub downsample: f64,
    /// Training rows gathered (from the first machines) before the bin edges are fixed.
    pub edge_rows: usize,
    pub seed: u64,
    pub contamination: f64,
}

/// One machine's rows of the three splits, as features (before the edges are known).
struct MachineRows {
    machine: u32,
    train: FeatureMatrix,
    train_y: Vec<u8>,
    train_w: Vec<f64>,
    validation: FeatureMatrix,
    validation_y: Vec<u8>,
    test: FeatureMatrix,
    test_y: Vec<u8>,
    /// Failure modes of the train, validation and test rows.
    modes: [Vec<FailureMode>; 3],
}

/// Bin codes with their labels (and weights).
#[derive(Debug)]
pub(crate) struct CodedSplit {
    pub x: BinnedBuilder,
    pub y: Vec<u8>,
    pub w: Vec<f64>,
    /// Failure mode per row (`none` where the table has no modes).
    pub modes: Vec<FailureMode>,
}

impl CodedSplit {
    fn new(edges: &BinEdges) -> CodedSplit {
        CodedSplit {
            x: BinnedBuilder::new(edges.clone()),
            y: Vec::new(),
            w: Vec::new(),
            modes: Vec::new(),
        }
    }
}

/// What is kept of the test split besides its codes.
#[derive(Debug, Default)]
pub(crate) struct TestFacts {
    /// Global machine index per row.
    pub machine: Vec<u32>,
    /// Time per row.
    pub time: Vec<i64>,
    /// Isolation Forest anomaly score per row (higher = more abnormal).
    pub anomaly: Vec<f64>,
    /// Rows the Isolation Forest flags.
    pub flagged: usize,
    /// The first test rows, raw, as the model's input example.
    pub example: Option<Array2<f64>>,
}

/// The coded fleet, once the edges are fixed.
#[derive(Debug)]
pub(crate) struct Coded {
    pub isolation_forest: IsolationForest,
    pub train: CodedSplit,
    pub validation: CodedSplit,
    pub test: CodedSplit,
    pub test_facts: TestFacts,
}

/// Everything ingestion keeps, machine by machine.
pub(crate) struct Fleet {
    rules: IngestRules,
    /// Machines seen, in stream order (a row's machine index points here).
    pub machine_ids: Vec<String>,
    /// Failure events recovered from the labels.
    pub failure_events: Vec<FailureEvent>,
    /// Rows read (all splits, before downsampling).
    pub rows: usize,
    /// Training rows left out by downsampling.
    pub dropped: usize,
    pub feature_names: Vec<String>,
    /// A bounded sample of the training rows (before downsampling), for the
    /// model's drift reference.
    sample: TrainSample,
    /// Machines waiting for the edges.
    pending: Vec<MachineRows>,
    pending_train_rows: usize,
    pub coded: Option<Coded>,
}

impl Fleet {
    pub(crate) fn new(rules: IngestRules) -> Fleet {
        Fleet {
            sample: TrainSample::new(rules.seed, DRIFT_SAMPLE_ROWS),
            rules,
            machine_ids: Vec::new(),
            failure_events: Vec::new(),
            rows: 0,
            dropped: 0,
            feature_names: Vec::new(),
            pending: Vec::new(),
            pending_train_rows: 0,
            coded: None,
        }
    }

    /// Takes one machine's frame.
    pub(crate) fn push_machine(&mut self, frame: &TelemetryFrame) -> Result<(), PipelineError> {
        if frame.is_empty() {
            return Ok(());
        }
        let id = frame.machine_ids().first().cloned().unwrap_or_default();
        let machine = u32::try_from(self.machine_ids.len())
            .map_err(|_| PipelineError::Invalid("more than 2^32 machines".into()))?;
        let labels = frame
            .failure()
            .ok_or_else(|| {
                PipelineError::Invalid(format!("machine {id}: the table has no failure labels"))
            })?
            .to_vec();
        let modes = match frame.failure_mode() {
            Some(m) => m.to_vec(),
            None => vec![FailureMode::None; frame.len()],
        };
        let mut features = self.rules.spec.compute(frame)?;
        features.sanitize(&self.rules.spec.sanitize);
        self.failure_events.extend(events_from_labels(frame));
        self.machine_ids.push(id);
        self.rows += features.nrows();
        if self.feature_names.is_empty() {
            self.feature_names = features.names.clone();
        }
        let rows = self.split_machine(
            machine,
            stream_key(&self.machine_ids[machine as usize]),
            &features,
            (&labels, &modes),
        );
        match self.coded.as_mut() {
            Some(coded) => code_machine(coded, rows),
            None => {
                self.pending_train_rows += rows.train_y.len();
                self.pending.push(rows);
                if self.pending_train_rows >= self.rules.edge_rows {
                    self.fix_edges()?;
                }
                Ok(())
            }
        }
    }

    /// Fixes the edges (if the stream ended before enough rows came) and returns the coded fleet.
    pub(crate) fn finish(mut self) -> Result<(Coded, FleetFacts), PipelineError> {
        if self.coded.is_none() {
            self.fix_edges()?;
        }
        let coded = self
            .coded
            .take()
            .ok_or_else(|| PipelineError::Invalid("no machine had rows".into()))?;
        Ok((
            coded,
            FleetFacts {
                drift_sample: self.sample,
                machine_ids: self.machine_ids,
                failure_events: self.failure_events,
                rows: self.rows,
                dropped: self.dropped,
                feature_names: self.feature_names,
            },
        ))
    }

    /// The bin edges and the Isolation Forest from the training rows gathered so
    /// far; then every pending machine is coded.
    fn fix_edges(&mut self) -> Result<(), PipelineError> {
        let pending = std::mem::take(&mut self.pending);
        let parts: Vec<_> = pending
            .iter()
            .map(|m| m.train.values.view())
            .filter(|v| v.nrows() > 0)
            .collect();
        if parts.is_empty() {
            return Err(PipelineError::Invalid(
                "the training split has no rows: the table's time range is too short for the split"
                    .into(),
            ));
        }
        let sample = ndarray::concatenate(Axis(0), &parts)
            .map_err(|e| PipelineError::Invalid(format!("training rows: {e}")))?;
        let names = &self.feature_names;
        let edges = BinEdges::from_sample(Samples::named(&sample, names)?, self.rules.seed)?;
        let isolation_forest = IsolationForestParams {
            contamination: Contamination::Fraction(self.rules.contamination),
            seed: self.rules.seed,
            ..Default::default()
        }
        .fit(Samples::named(&sample, names)?)?;
        let mut coded = Coded {
            train: CodedSplit::new(&edges),
            validation: CodedSplit::new(&edges),
            test: CodedSplit::new(&edges),
            isolation_forest,
            test_facts: TestFacts::default(),
        };
        for rows in pending {
            code_machine(&mut coded, rows)?;
        }
        self.coded = Some(coded);
        Ok(())
    }

    /// Splits one machine's rows by the fleet's cut-offs and downsamples its training rows.
    fn split_machine(
        &mut self,
        machine: u32,
        key: u64,
        f: &FeatureMatrix,
        (y, modes): (&[u8], &[FailureMode]),
    ) -> MachineRows {
        let cuts = self.rules.cuts;
        let outer = split_by_time(&f.time, cuts.test, cuts.embargo);
        let inner_time: Vec<i64> = outer.train.iter().map(|&r| f.time[r]).collect();
        let inner = split_by_time(&inner_time, cuts.validation, cuts.embargo);
        let train: Vec<usize> = inner.train.iter().map(|&i| outer.train[i]).collect();
        let validation: Vec<usize> = inner.test.iter().map(|&i| outer.train[i]).collect();
        for &r in &train {
            self.sample.offer(key, r, f.values.row(r));
        }
        let (train, train_w) = self.downsample(key, f, y, &train);
        let labels = |rows: &[usize]| rows.iter().map(|&r| y[r]).collect::<Vec<u8>>();
        let modes_of = |rows: &[usize]| rows.iter().map(|&r| modes[r]).collect::<Vec<_>>();
        MachineRows {
            modes: [
                modes_of(&train),
                modes_of(&validation),
                modes_of(&outer.test),
            ],
            machine,
            train_y: labels(&train),
            train_w,
            train: f.select_rows(&train),
            validation_y: labels(&validation),
            validation: f.select_rows(&validation),
            test_y: labels(&outer.test),
            test: f.select_rows(&outer.test),
        }
    }

    /// Keeps every training row within one label horizon of a failure row, and
    /// a seeded share `downsample` of the others with weight `1 / downsample`.
    fn downsample(
        &mut self,
        key: u64,
        f: &FeatureMatrix,
        y: &[u8],
        rows: &[usize],
    ) -> (Vec<usize>, Vec<f64>) {
        let fraction = self.rules.downsample;
        if fraction >= 1.0 {
            return (rows.to_vec(), vec![1.0; rows.len()]);
        }
        let near = near_failure(&f.time, y, self.rules.cuts.embargo.as_micros());
        let mut rng = SplitMix(self.rules.seed ^ key);
        let mut kept = Vec::with_capacity(rows.len());
        let mut weights = Vec::with_capacity(rows.len());
        for &r in rows {
            if near[r] {
                kept.push(r);
                weights.push(1.0);
            } else if rng.unit() < fraction {
                kept.push(r);
                weights.push(1.0 / fraction);
            }
        }
        self.dropped += rows.len() - kept.len();
        (kept, weights)
    }
}

/// The machine's own random stream (FNV-1a of its id).
fn stream_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: a small seeded generator, one stream per machine (keyed by its id), so
/// which rows downsampling keeps does not depend on the order machines arrive in.
struct SplitMix(u64);

impl SplitMix {
    /// A uniform float in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the stream learnt about the fleet besides the codes.
#[derive(Debug)]
pub(crate) struct FleetFacts {
    /// The training rows' sample for the drift reference.
    pub drift_sample: TrainSample,
    pub machine_ids: Vec<String>,
    pub failure_events: Vec<FailureEvent>,
    pub rows: usize,
    pub dropped: usize,
    pub feature_names: Vec<String>,
}

/// Per row (time order): whether a failure row is within `within` µs of it.
fn near_failure(time: &[i64], y: &[u8], within: i64) -> Vec<bool> {
    let failures: Vec<i64> = time
        .iter()
        .zip(y)
        .filter(|(_, l)| **l == 1)
        .map(|(t, _)| *t)
        .collect();
    time.iter()
        .map(|&t| {
            let i = failures.partition_point(|&f| f < t.saturating_sub(within));
            failures
                .get(i)
                .is_some_and(|&f| f <= t.saturating_add(within))
        })
        .collect()
}

/// Appends one machine's rows to the coded splits; its test rows get their
/// anomaly scores now, while their raw features are at hand.
fn code_machine(coded: &mut Coded, rows: MachineRows) -> Result<(), PipelineError> {
    let push = |split: &mut CodedSplit,
                x: &FeatureMatrix,
                (y, w): (Vec<u8>, Vec<f64>),
                modes: Vec<FailureMode>| {
        split.x.push_rows(Samples::named(&x.values, &x.names)?)?;
        split.y.extend(y);
        split.w.extend(w);
        split.modes.extend(modes);
        Ok::<(), PipelineError>(())
    };
    let [train_modes, validation_modes, test_modes] = rows.modes;
    push(
        &mut coded.train,
        &rows.train,
        (rows.train_y, rows.train_w),
        train_modes,
    )?;
    let ones = vec![1.0; rows.validation_y.len()];
    push(
        &mut coded.validation,
        &rows.validation,
        (rows.validation_y, ones),
        validation_modes,
    )?;
    let test = &rows.test;
    if test.nrows() > 0 {
        let x = Samples::named(&test.values, &test.names)?;
        let facts = &mut coded.test_facts;
        facts
            .anomaly
            .extend(coded.isolation_forest.score_samples(x)?.iter().map(|s| -s));
        facts.flagged += coded
            .isolation_forest
            .predict(x)?
            .iter()
            .filter(|&&p| p == -1)
            .count();
        facts
            .machine
            .extend(std::iter::repeat_n(rows.machine, test.nrows()));
        facts.time.extend_from_slice(&test.time);
        if facts.example.is_none() {
            let n = test.nrows().min(5);
            facts.example = Some(test.values.slice_axis(Axis(0), (0..n).into()).to_owned());
        }
    }
    push(&mut coded.test, test, (rows.test_y, Vec::new()), test_modes)?;
    Ok(())
}

/// Finished codes of a split, and its rows' failure modes.
pub(crate) fn finish(split: CodedSplit) -> ((BinnedSamples, Vec<u8>, Vec<f64>), Vec<FailureMode>) {
    ((split.x.finish(), split.y, split.w), split.modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_near_a_failure_are_those_within_the_horizon() {
        let time = [0, 10, 20, 30, 40, 50, 60];
        let y = [0, 0, 0, 1, 0, 0, 0];
        assert_eq!(
            near_failure(&time, &y, 15),
            [false, false, true, true, true, false, false]
        );
        assert!(near_failure(&time, &[0; 7], 15).iter().all(|n| !n));
    }
}
