//! Online == batch, and the batch path's typed errors.

use std::collections::HashMap;

use proptest::prelude::*;
use vigil_features::{
    Admission, Aggregation, FeatureSpec, FeaturesError, OnlineFeatures, SimulatorConfig,
    TelemetryFrame, WindowLength, simulate,
};

/// Whether rows `i` and `j` of the matrix are the same bits.
fn same_row(m: &vigil_features::FeatureMatrix, i: usize, j: usize) -> bool {
    let bits = |r: usize| {
        m.values
            .row(r)
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    bits(i) == bits(j)
}

/// Pushes the frame online (machines interleaved in time order, as a live feed
/// would) and checks every row against batch: an admitted sample or a retry
/// gets the batch row; a sample online refuses as too close has, in batch, a
/// copy of its machine's previous row. Returns how many rows were not admitted.
#[allow(clippy::unwrap_used)] // a test helper: a panic is a failed test
fn assert_online_equals_batch(frame: &TelemetryFrame, spec: &FeatureSpec) -> usize {
    let batch = spec.compute(frame).unwrap();
    let mut online = OnlineFeatures::new(spec.clone()).unwrap();
    let columns: Vec<usize> = spec
        .sensors
        .iter()
        .map(|s| frame.sensor_index(s).unwrap())
        .collect();
    let mut order: Vec<usize> = (0..frame.len()).collect();
    order.sort_by_key(|&i| frame.time()[i]);
    let mut previous: HashMap<&str, usize> = HashMap::new();
    let mut not_admitted = 0;
    let mut row = vec![0.0; spec.len()];
    for i in order {
        let machine = frame.machine_id_of(i);
        let sample: Vec<f64> = columns.iter().map(|&k| frame.sensor(k)[i]).collect();
        match online.push_into(machine, frame.time()[i], &sample, &mut row) {
            Ok(pushed) => {
                for (j, (a, b)) in row.iter().zip(batch.values.row(i)).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits(),
                        "row {i}, {}: online {a} batch {b}",
                        batch.names[j]
                    );
                }
                if pushed.admission == Admission::Retry {
                    not_admitted += 1;
                    assert!(same_row(&batch, i, previous[machine]), "retry row {i}");
                }
            }
            Err(FeaturesError::TooClose { .. }) => {
                not_admitted += 1;
                assert!(same_row(&batch, i, previous[machine]), "too-close row {i}");
            }
            Err(e) => panic!("row {i}: {e}"),
        }
        previous.insert(machine, i);
    }
    not_admitted
}

#[test]
fn online_equals_batch_on_simulated_data() {
    let sim = simulate(&SimulatorConfig {
        machines: 3,
        days: 0.5,
        duplicate_probability: 0.01,
        ..Default::default()
    })
    .unwrap();
    let duplicates = assert_online_equals_batch(&sim.frame, &FeatureSpec::default());
    assert!(
        duplicates > 0,
        "the simulation should deliver some samples twice"
    );
}

fn custom_spec() -> FeatureSpec {
    FeatureSpec::new(["a", "b"])
        .with_raw("a")
        .with_rolling("a", Aggregation::Sum, WindowLength::seconds(7))
        .with_rolling("a", Aggregation::Count, WindowLength::seconds(7))
        .with_rolling("b", Aggregation::Var, WindowLength::seconds(3))
        .with_rolling("b", Aggregation::Min, WindowLength::seconds(20))
        .with_zscore("b", WindowLength::seconds(20))
        .with_diff("b")
        .with_pct_change("a")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn online_equals_batch_on_random_frames(
        rows in proptest::collection::vec((0u8..3, gap(), prop_oneof![Just(f64::NAN), Just(0.0), -5.0f64..5.0], -5.0f64..5.0), 1..120),
        spacing_ms in prop_oneof![Just(1i64), Just(1_000), Just(2_500)],
    ) {
        let mut t = [0i64; 3];
        let mut ids = Vec::new();
        let mut times = Vec::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (m, dt, x, y) in rows {
            t[m as usize] += dt;
            ids.push(["m1", "m2", "m3"][m as usize]);
            times.push(t[m as usize]);
            a.push(x);
            b.push(y);
        }
        let frame = TelemetryFrame::new(&ids, times, vec![("a".into(), a), ("b".into(), b)], None, None).unwrap();
        // Short histories included: single-sample machines, spans shorter than every window.
        let spec = custom_spec().with_min_spacing(WindowLength::from_micros(spacing_ms * 1_000));
        assert_online_equals_batch(&frame, &spec);
    }
}

/// Gaps between samples (µs): equal times, closer than the spacing, and wider.
fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(400_000),
        Just(999_999),
        (1i64..4).prop_map(|s| s * 1_000_000),
        1_000i64..3_000_000,
    ]
}

#[test]
fn rows_not_admitted_repeat_the_previous_row() {
    let s = 1_000_000i64;
    let times = vec![0, 0, s / 2, s, s + s / 5, 5 * s / 2];
    let values = vec![1.0, 100.0, 200.0, 3.0, 300.0, 6.0];
    let frame = TelemetryFrame::new(
        &["m"; 6],
        times,
        vec![("a".into(), values.clone()), ("b".into(), values)],
        None,
        None,
    )
    .unwrap();
    let spec = custom_spec();
    let features = spec.compute(&frame).unwrap();
    // 0 s admitted; the duplicate and 0.5 s repeat it; 1 s admitted; 1.2 s
    // repeats it; 2.5 s admitted.
    for (row, source) in [(1, 0), (2, 0), (4, 3)] {
        assert!(same_row(&features, row, source), "row {row}");
    }
    let get = |row: usize, name: &str| features.values[[row, features.column_index(name).unwrap()]];
    assert_eq!(get(3, "a_count_7s"), 2.0);
    assert_eq!(get(3, "a_sum_7s"), 4.0);
    assert_eq!(get(5, "b_diff"), 3.0); // against the last admitted sample (3.0)
    assert_eq!(get(5, "a_pct_change"), 1.0);
    assert_eq!(assert_online_equals_batch(&frame, &spec), 3);
}

#[test]
fn default_simulation_duplicates_repeat_the_previous_row() {
    let sim = simulate(&SimulatorConfig {
        machines: 4,
        days: 7.0,
        ..Default::default()
    })
    .unwrap();
    let frame = &sim.frame;
    let features = FeatureSpec::default().compute(frame).unwrap();
    let mut repeated = 0;
    for (_, range) in frame.machine_ranges() {
        let mut last = frame.time()[range.start];
        for i in range.start + 1..range.end {
            let t = frame.time()[i];
            if t < last + 1_000_000 {
                repeated += 1;
                assert!(same_row(&features, i, i - 1), "row {i}");
            } else {
                last = t;
            }
        }
    }
    assert!(repeated > 0);
    println!("{repeated} of {} rows repeat the previous row", frame.len());
}

#[test]
fn bad_batch_inputs_are_typed_errors() {
    let spec = FeatureSpec::default();
    let sensors = |n: usize| {
        vigil_features::REFERENCE_SENSORS
            .iter()
            .map(|s| ((*s).to_owned(), vec![1.0; n]))
            .collect::<Vec<_>>()
    };
    let hour = 3_600_000_000i64;

    let empty = TelemetryFrame::new(&[], vec![], sensors(0), None, None).unwrap();
    assert!(matches!(
        spec.compute(&empty),
        Err(FeaturesError::EmptyInput { .. })
    ));

    let other = TelemetryFrame::new(
        &["a", "a"],
        vec![0, hour],
        vec![("pressure".into(), vec![1.0, 2.0])],
        None,
        None,
    )
    .unwrap();
    let err = spec.compute(&other).unwrap_err();
    assert!(
        matches!(err, FeaturesError::UnknownSensor { ref sensor, .. } if sensor == "temperature"),
        "{err}"
    );
}

#[test]
fn data_shorter_than_a_window_is_a_warm_up() {
    let spec = FeatureSpec::default();
    let column = |values: [f64; 3]| {
        vigil_features::REFERENCE_SENSORS
            .iter()
            .map(|s| ((*s).to_owned(), values.to_vec()))
            .collect::<Vec<_>>()
    };
    // Machine `a`: two samples a minute apart (shorter than 5 and 30 minutes);
    // machine `b`: one sample.
    let frame = TelemetryFrame::new(
        &["a", "a", "b"],
        vec![0, 60_000_000, 0],
        column([1.0, 3.0, 5.0]),
        None,
        None,
    )
    .unwrap();
    let features = spec.compute(&frame).unwrap();
    let get = |row: usize, name: &str| features.values[[row, features.column_index(name).unwrap()]];
    // pandas' rolling('5min', on='time') with min_periods=1 on [1, 3] and [5].
    assert_eq!(get(0, "temperature_mean_5m"), 1.0);
    assert!(get(0, "temperature_std_5m").is_nan());
    assert!(get(0, "temperature_diff").is_nan());
    assert_eq!(get(1, "temperature_mean_30m"), 2.0);
    assert_eq!(get(1, "temperature_std_30m"), std::f64::consts::SQRT_2);
    assert_eq!(get(1, "temperature_max_5m"), 3.0);
    assert_eq!(get(1, "temperature_diff"), 2.0);
    assert_eq!(get(2, "temperature_min_5m"), 5.0);
    assert!(get(2, "temperature_zscore_30m").is_nan());
    assert_online_equals_batch(&frame, &spec);
}

#[test]
fn training_set_checks_size_and_is_finite() {
    let sim = simulate(&SimulatorConfig {
        machines: 2,
        days: 0.05,
        ..Default::default()
    })
    .unwrap();
    assert!(sim.frame.len() < 1000);
    let err = vigil_features::TrainingSet::build(&sim.frame, &FeatureSpec::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Insufficient data for training (need at least 1000 samples)"
    );

    let sim = simulate(&SimulatorConfig {
        machines: 2,
        days: 1.0,
        ..Default::default()
    })
    .unwrap();
    let set = vigil_features::TrainingSet::build(&sim.frame, &FeatureSpec::default()).unwrap();
    assert!(set.features.values.iter().all(|v| v.is_finite()));
    assert!(set.features.values.is_standard_layout());
    let cutoff = vigil_features::cutoff_at_fraction(&set.features.time, 0.7).unwrap();
    let (train, test) = set.split_at(cutoff, WindowLength::minutes(30));
    assert!(
        train
            .features
            .time
            .iter()
            .all(|&t| t < cutoff - 1_800_000_000)
    );
    assert!(test.features.time.iter().all(|&t| t >= cutoff));
    assert!(train.len() > test.len());
}
