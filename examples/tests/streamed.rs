//! The streamed pipeline (`pipeline --source postgres`) against the real
//! PostgreSQL the harness starts: a run that trains, tracks and registers from
//! a table with duplicate timestamps and a query naming a machine without
//! rows; the same model from a `TIMESTAMP` (zone-less) copy of the table; and
//! runs that fail — a missing sensor column, a connection dropped mid-stream —
//! ending FAILED with nothing registered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use vigil_examples::PipelineError;
use vigil_examples::fleet::{StreamConfig, StreamSource, StreamedOutcome, train_streamed};
use vigil_examples::train::TrainConfig;
use vigil_features::{
    FeaturesError, LoadQuery, PgConfig, SimulatorConfig, TelemetryStore, simulate,
};
use vigil_tracking_client::{RunSearch, RunStatus, Tracker, TrackingConfig};

const MODEL: &str = "streamed_model";

fn database() -> Option<PgConfig> {
    common::service("VIGIL_TEST_DATABASE_URL").map(|url| PgConfig::from_url(&url).unwrap())
}

/// 4 machines × 2 days with duplicate timestamps.
fn fleet_frame() -> vigil_features::TelemetryFrame {
    simulate(&SimulatorConfig {
        machines: 4,
        days: 2.0,
        failures_per_day: 3.0,
        duplicate_probability: 0.01,
        seed: 9,
        ..Default::default()
    })
    .unwrap()
    .frame
}

/// A table of [`fleet_frame`], named for the test.
fn table_with_fleet(config: &PgConfig, tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let table = format!("streamed_{tag}_{}_{nanos}", std::process::id());
    let frame = fleet_frame();
    let mut store = TelemetryStore::connect(config, &table).unwrap();
    store.create_schema().unwrap();
    store.insert(&frame).unwrap();
    table
}

struct Run {
    dir: tempfile::TempDir,
    tracker: Tracker,
}

fn local_tracker() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let tracker = Tracker::new(
        TrackingConfig::builder()
            .local_dir(dir.path().join("mlruns"))
            .build()
            .unwrap(),
    )
    .unwrap();
    Run { dir, tracker }
}

fn config(run: &Run, register: bool) -> TrainConfig {
    TrainConfig {
        n_trials: 2,
        max_samples_per_tree: Some(5_000),
        register,
        model_name: MODEL.into(),
        output_dir: run.dir.path().join("out"),
        ..TrainConfig::default()
    }
}

fn train(
    pg: &PgConfig,
    table: &str,
    query: LoadQuery,
    run: &Run,
    register: bool,
    on_stream: &mut dyn FnMut(vigil_examples::fleet::StreamProgress),
) -> Result<StreamedOutcome, PipelineError> {
    let source = StreamSource {
        config: pg.clone(),
        table: table.to_string(),
        query,
    };
    let stream = StreamConfig {
        fetch_rows: 2_000,
        ..StreamConfig::default()
    };
    train_streamed(
        &source,
        &config(run, register),
        &stream,
        &run.tracker,
        Arc::new(|_| {}),
        on_stream,
    )
}

/// The parent run ended FAILED, no run is left RUNNING, and no model was registered.
fn assert_failed_and_nothing_registered(run: &Run) {
    let experiment = run
        .tracker
        .store()
        .get_experiment_by_name("predictive_maintenance")
        .unwrap()
        .expect("the experiment exists");
    let runs = run
        .tracker
        .search_all_runs(RunSearch {
            experiment_ids: vec![experiment.experiment_id.clone()],
            ..Default::default()
        })
        .unwrap();
    let parent = runs
        .iter()
        .find(|r| r.info.run_name.starts_with("train-"))
        .expect("the parent run");
    assert_eq!(parent.info.status, RunStatus::Failed);
    assert!(runs.iter().all(|r| r.info.status != RunStatus::Running));
    assert!(
        run.tracker.store().get_registered_model(MODEL).is_err(),
        "a failed run registered a model"
    );
}

#[test]
fn a_streamed_run_trains_tracks_and_registers() {
    let Some(pg) = database() else { return };
    let table = table_with_fleet(&pg, "ok");
    let run = local_tracker();
    let mut machines_seen = 0;
    let query = LoadQuery {
        machines: Some(
            ["M01", "M02", "M03", "M04", "GHOST"]
                .map(String::from)
                .to_vec(),
        ),
        ..LoadQuery::default()
    };
    let outcome = train(&pg, &table, query, &run, true, &mut |p| {
        machines_seen = p.machines_done;
    })
    .unwrap();
    assert_eq!(outcome.machines, 4);
    assert_eq!(machines_seen, 4);
    assert_eq!(outcome.machines_without_rows, vec!["GHOST".to_string()]);
    assert_eq!(
        outcome.model_version.as_ref().map(|v| v.version.as_str()),
        Some("1")
    );
    assert!(
        outcome.test.roc_auc > 0.6,
        "test ROC-AUC {}",
        outcome.test.roc_auc
    );
    assert!(outcome.events.failures_total > 0);
    let [train_rows, validation, test] = outcome.split_rows;
    // The embargoes between the splits drop a few rows, nothing else does.
    assert!(train_rows + validation + test < outcome.rows);
    assert!(train_rows + validation + test > outcome.rows * 9 / 10);
    let bundle =
        vigil_examples::bundle::ModelBundle::load(&outcome.output_dir.join("model")).unwrap();
    assert_eq!(bundle.meta.threshold, outcome.threshold);
    assert_eq!(bundle.meta.machines.len(), 4);
    // Which failure is coming: a mode classifier fitted on the codes too.
    let modes = bundle.failure_modes.as_ref().expect("a failure-mode model");
    assert_eq!(modes.modes[0], "none");
    assert!(modes.modes.len() >= 3, "{:?}", modes.modes);
    assert_eq!(bundle.meta.failure_modes, modes.modes);
    let report = &outcome.failure_modes;
    assert!(report.trained, "{:?}", report.skipped_reason);
    assert!(report.macro_f1.is_some_and(|f| f > 0.2), "{report:?}");
    assert_drift_reference_of_the_training_rows(&bundle);
}

/// The streamed model's drift reference: one bounded column per feature; the
/// fleet's first day (training rows) does not drift from it, the same day
/// with its temperature level features 5 °C higher does, naming them.
fn assert_drift_reference_of_the_training_rows(bundle: &vigil_examples::bundle::ModelBundle) {
    use vigil_examples::drift::{REFERENCE_MAX_ROWS, compare_rows, drift_params, drifted_names};
    let reference = bundle.drift_reference.as_ref().expect("a drift reference");
    let names: Vec<&str> = reference.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, bundle.meta.feature_names);
    for c in reference.columns() {
        assert!((2..=REFERENCE_MAX_ROWS).contains(&c.sorted_values().len()));
    }
    let frame = fleet_frame();
    let day = 86_400_000_000;
    let first = frame.time().iter().copied().min().unwrap();
    let rows: Vec<usize> = (0..frame.len())
        .filter(|&i| frame.time()[i] < first + day)
        .collect();
    let mut features = bundle.feature_spec.compute(&frame).unwrap();
    features.sanitize(&bundle.feature_spec.sanitize);
    let mut first_day = features.select_rows(&rows).values;
    let same = compare_rows(reference, first_day.view(), &drift_params()).unwrap();
    assert!(!same.dataset_drift, "{:?}", drifted_names(&same));
    let level = ["temperature", "temperature_mean_5m", "temperature_mean_30m"];
    for (j, name) in bundle.meta.feature_names.iter().enumerate() {
        if level.contains(&name.as_str()) || name.starts_with("temperature_m") {
            first_day.column_mut(j).mapv_inplace(|v| v + 5.0);
        }
    }
    let hot = compare_rows(reference, first_day.view(), &drift_params()).unwrap();
    assert!(hot.dataset_drift);
    let drifted = drifted_names(&hot);
    assert!(level.iter().all(|f| drifted.contains(f)), "{drifted:?}");
}

#[test]
fn a_zone_less_time_column_gives_the_same_model() {
    let Some(pg) = database() else { return };
    let table = table_with_fleet(&pg, "tz");
    let plain = format!("{table}_plain");
    let mut client = pg.connect().unwrap();
    // The session's zone must not matter: the stream reads TIMESTAMP as UTC.
    client
        .batch_execute(&format!(
            "SET TimeZone = 'America/New_York'; \
             CREATE TABLE {plain} AS SELECT (time AT TIME ZONE 'UTC') AS time, machine_id, temperature, \
             vibration, spindle_speed, power_consumption, failure, failure_mode, seq FROM {table}; \
             CREATE INDEX ON {plain} (machine_id, time, seq)"
        ))
        .unwrap();
    let kind: String = client
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attname = 'time'",
            &[&plain],
        )
        .unwrap()
        .get(0);
    assert_eq!(kind, "timestamp without time zone");
    let (a, b) = (local_tracker(), local_tracker());
    let with_zone = train(&pg, &table, LoadQuery::default(), &a, false, &mut |_| {}).unwrap();
    let without = train(&pg, &plain, LoadQuery::default(), &b, false, &mut |_| {}).unwrap();
    assert_eq!(with_zone.split_rows, without.split_rows);
    assert_eq!(with_zone.threshold, without.threshold);
    assert_eq!(with_zone.test.f1, without.test.f1);
    assert_eq!(with_zone.test.roc_auc, without.test.roc_auc);
}

#[test]
fn a_missing_sensor_column_fails_the_run_and_registers_nothing() {
    let Some(pg) = database() else { return };
    let table = table_with_fleet(&pg, "missing");
    pg.connect()
        .unwrap()
        .batch_execute(&format!("ALTER TABLE {table} DROP COLUMN vibration"))
        .unwrap();
    let run = local_tracker();
    let e = train(&pg, &table, LoadQuery::default(), &run, true, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, PipelineError::Features(FeaturesError::MissingTableColumn { column, .. }) if column == "vibration"),
        "{e}"
    );
    assert_failed_and_nothing_registered(&run);
}

#[test]
fn a_connection_dropped_mid_stream_fails_the_run_and_registers_nothing() {
    let Some(pg) = database() else { return };
    let table = table_with_fleet(&pg, "dropped");
    let run = local_tracker();
    let mut killer = pg.connect().unwrap();
    let mut killed = false;
    let e = train(&pg, &table, LoadQuery::default(), &run, true, &mut |p| {
        // After the first fetch, end the streaming backend from outside.
        if !killed && p.rows_read > 0 {
            killed = true;
            let n: i64 = killer
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE pid <> pg_backend_pid() AND query LIKE '%ORDER BY machine_id%' \
                     AND query LIKE $1",
                    &[&format!("%{table}%")],
                )
                .unwrap()
                .get(0);
            assert_eq!(n, 1, "the streaming backend was not found");
        }
    })
    .unwrap_err();
    assert!(killed);
    assert!(
        matches!(&e, PipelineError::Features(FeaturesError::StreamInterrupted { rows_read, .. }) if *rows_read > 0),
        "{e}"
    );
    assert_failed_and_nothing_registered(&run);
}
