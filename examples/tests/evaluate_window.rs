//! `evaluate` on a PostgreSQL table reads only the hold-out and the features'
//! warm-up before it, not the whole table, and scores exactly as it does from
//! the whole fleet in memory (against the real PostgreSQL of the harness).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use vigil_examples::evaluate::{EvaluateConfig, evaluate};
use vigil_examples::source::DataSource;
use vigil_examples::train::{TrainConfig, train};
use vigil_features::{
    FeatureSpec, LoadQuery, PgConfig, SimulatorConfig, TelemetryStore, WindowLength, simulate,
};
use vigil_tracking_client::{Tracker, TrackingConfig};

#[test]
fn a_postgres_evaluation_reads_the_holdout_and_warmup_and_scores_as_a_whole_load() {
    let Some(url) = common::service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let pg = PgConfig::from_url(&url).unwrap();
    let fleet = SimulatorConfig {
        machines: 3,
        days: 3.0,
        failures_per_day: 3.0,
        seed: 11,
        ..Default::default()
    };
    let frame = simulate(&fleet).unwrap().frame;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let table = format!("eval_window_{}_{nanos}", std::process::id());
    let mut store = TelemetryStore::connect(&pg, &table).unwrap();
    store.create_schema().unwrap();
    store.insert(&frame).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let tracker = Tracker::new(
        TrackingConfig::builder()
            .local_dir(dir.path().join("mlruns"))
            .build()
            .unwrap(),
    )
    .unwrap();
    let model_name = "eval_window_model".to_string();
    let whole = DataSource::Simulated(fleet);
    let config = TrainConfig {
        n_trials: 2,
        max_samples_per_tree: Some(5_000),
        shap_rows: 0,
        model_name: model_name.clone(),
        output_dir: dir.path().join("train"),
        ..TrainConfig::default()
    };
    train(&whole, &config, &tracker, Arc::new(|_| {})).unwrap();

    let holdout = WindowLength::minutes(12 * 60);
    let evaluate_from = |source: &DataSource, out: &str| {
        let config = EvaluateConfig {
            model_name: model_name.clone(),
            holdout,
            shap_rows: 20,
            output_dir: dir.path().join(out),
            ..EvaluateConfig::default()
        };
        evaluate(&tracker, source, &config).unwrap()
    };
    let from_table = DataSource::Postgres {
        config: Box::new(pg),
        table,
        query: LoadQuery::default(),
    };
    let windowed = evaluate_from(&from_table, "windowed");
    let loaded = evaluate_from(&whole, "whole");

    // Read: the last 12 hours and the warm-up before them, not the table.
    let last = frame.time().iter().copied().max().unwrap();
    let from = last - holdout.as_micros() - FeatureSpec::default().warmup_span().as_micros();
    let expected = frame.time().iter().filter(|&&t| t >= from).count();
    assert_eq!(windowed.rows_read, expected);
    assert_eq!(loaded.rows_read, frame.len());
    assert!(
        windowed.rows_read < frame.len() / 4,
        "{}",
        windowed.rows_read
    );

    // Scored: the same rows, the same numbers, bit for bit.
    assert!(windowed.holdout_rows > 1_000, "{}", windowed.holdout_rows);
    assert_eq!(windowed.holdout_rows, loaded.holdout_rows);
    assert_eq!(
        json(&windowed.challenger),
        json(&loaded.challenger),
        "the challenger's held-out scores, events, modes and SHAP"
    );
    assert_eq!(json(&windowed.drift), json(&loaded.drift));
    assert!(windowed.challenger.is_some() && windowed.drift.is_some());
}

/// A value as JSON: f64s serialise in shortest round-trip form, so equal JSON
/// is equal bits.
fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}
