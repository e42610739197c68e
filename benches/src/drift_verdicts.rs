//! Drift verdicts on the simulator: how often the served / evaluated drift
//! rule ([`vigil_examples::drift::drift_params`]) raises a false alarm on
//! the same fleet's next day, and how often it catches a shifted fleet and
//! names the shifted features.
//!
//! Per seed: 4 machines, 8 days. The reference is built as the pipeline
//! builds it ([`vigil_examples::drift::train_reference`]) from the features
//! of the first 5 days (a train split); the current batch is the features of
//! the last day (evaluate's default hold-out), computed from 30 minutes
//! before it so every window is full. Scenarios shift the raw telemetry of
//! that last day on every machine before the features are computed.

use vigil_examples::drift::{REFERENCE_MAX_ROWS, drift_params, drifted_names, train_reference};
use vigil_features::{
    FeatureSpec, FrameBuilder, SimulatorConfig, TelemetryFrame, TrainingSet, simulate,
};
use vigil_metrics::{DatasetDrift, DriftParams};

/// A drift rule and the reference size it reads.
#[derive(Debug, Clone)]
pub struct Rule {
    /// For the report.
    pub name: &'static str,
    /// Thresholds and methods.
    pub params: DriftParams,
    /// Rows per feature kept in the reference.
    pub reference_rows: usize,
}

/// The served rule, and evidently's default rule on the same reference
/// (normalised Wasserstein ≥ 0.1, share 0.5) and on a 1,000-row one (where
/// evidently switches to KS p ≤ 0.05).
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "served (Wasserstein >= 0.3, share >= 0.07)",
            params: drift_params(),
            reference_rows: REFERENCE_MAX_ROWS,
        },
        Rule {
            name: "evidently default, 2000-row reference (Wasserstein >= 0.1, share >= 0.5)",
            params: DriftParams::default(),
            reference_rows: REFERENCE_MAX_ROWS,
        },
        Rule {
            name: "evidently default, 1000-row reference (KS p <= 0.05, share >= 0.5)",
            params: DriftParams::default(),
            reference_rows: 1000,
        },
    ]
}

/// The scenarios the bench runs: the same fleet, a +5 °C temperature probe
/// on every machine, a vibration baseline 0.1 higher on every machine.
pub const SCENARIOS: [(&str, Shift); 3] = [
    ("same fleet, next day", Shift::None),
    ("temperature +5 °C", Shift::Temperature(5.0)),
    ("vibration baseline +0.1", Shift::VibrationBaseline(0.1)),
];

/// What is done to the last day's raw telemetry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    /// Nothing: the same fleet's next day.
    None,
    /// Every temperature reading plus this many °C (a recalibrated probe).
    Temperature(f64),
    /// Every vibration reading plus this much (a new sensor mounting).
    VibrationBaseline(f64),
}

impl Shift {
    /// The sensor shifted.
    pub fn sensor(self) -> Option<&'static str> {
        match self {
            Shift::None => None,
            Shift::Temperature(_) => Some("temperature"),
            Shift::VibrationBaseline(_) => Some("vibration"),
        }
    }

    /// Features that must be named drifted for a detection to count: the
    /// sensor's raw value and its 5- and 30-minute means.
    pub fn expected(self) -> Vec<String> {
        self.sensor().map_or_else(Vec::new, |s| {
            vec![
                s.to_string(),
                format!("{s}_mean_5m"),
                format!("{s}_mean_30m"),
            ]
        })
    }
}

/// One seed's verdict in one scenario.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The comparison.
    pub drift: DatasetDrift,
    /// Whether every [`Shift::expected`] feature drifted.
    pub named: bool,
}

const DAY: i64 = 86_400_000_000;
const REFERENCE_DAYS: i64 = 5;
const DAYS: i64 = 8;

fn frame_with_shift(frame: &TelemetryFrame, from: i64, shift: Shift) -> TelemetryFrame {
    let names = frame.sensor_names().to_vec();
    let (index, delta) = match shift {
        Shift::None => (usize::MAX, 0.0),
        Shift::Temperature(d) => (frame.sensor_index("temperature").unwrap_or(usize::MAX), d),
        Shift::VibrationBaseline(d) => (frame.sensor_index("vibration").unwrap_or(usize::MAX), d),
    };
    let mut builder = FrameBuilder::new(names.clone(), true, true);
    builder.reserve(frame.len());
    let (failure, mode) = (frame.failure(), frame.failure_mode());
    let mut values = vec![0.0; names.len()];
    for row in 0..frame.len() {
        for (k, v) in values.iter_mut().enumerate() {
            *v = frame.sensor(k)[row];
            if k == index && frame.time()[row] >= from {
                *v += delta;
            }
        }
        builder.push(
            frame.machine_id_of(row),
            frame.time()[row],
            &values,
            failure.map(|f| f[row]),
            mode.map(|m| m[row]),
        );
    }
    builder.finish()
}

fn rows_where(frame: &TelemetryFrame, keep: impl Fn(i64) -> bool) -> TelemetryFrame {
    let rows: Vec<usize> = (0..frame.len())
        .filter(|&i| keep(frame.time()[i]))
        .collect();
    frame.select_rows(&rows)
}

/// The verdicts of one seed in each of `shifts` (outer) under each of
/// `rules` (inner).
pub fn run_seed(
    seed: u64,
    shifts: &[Shift],
    rules: &[Rule],
) -> Result<Vec<Vec<Verdict>>, Box<dyn std::error::Error>> {
    let config = SimulatorConfig {
        seed,
        machines: 4,
        days: DAYS as f64,
        ..Default::default()
    };
    let frame = simulate(&config)?.frame;
    let spec = FeatureSpec::default();
    let start = config.start;
    let train = rows_where(&frame, |t| t < start + REFERENCE_DAYS * DAY);
    let reference = train_reference(&TrainingSet::build(&train, &spec)?.features)?;
    let references = rules
        .iter()
        .map(|r| reference.downsampled(r.reference_rows))
        .collect::<Result<Vec<_>, _>>()?;
    let current_from = start + (DAYS - 1) * DAY;
    let tail = rows_where(&frame, |t| t >= current_from - 30 * 60_000_000);
    shifts
        .iter()
        .map(|&shift| {
            let shifted = frame_with_shift(&tail, current_from, shift);
            let set = TrainingSet::build(&shifted, &spec)?;
            let rows: Vec<usize> = (0..set.len())
                .filter(|&i| set.features.time[i] >= current_from)
                .collect();
            let current = set.select_rows(&rows);
            rules
                .iter()
                .zip(&references)
                .map(|(rule, reference)| {
                    let drift = vigil_examples::drift::compare_rows(
                        reference,
                        current.features.values.view(),
                        &rule.params,
                    )?;
                    let drifted = drifted_names(&drift);
                    let named = shift
                        .expected()
                        .iter()
                        .all(|e| drifted.contains(&e.as_str()));
                    Ok(Verdict { drift, named })
                })
                .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()
        })
        .collect()
}
