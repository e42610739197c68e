//! The generated SQL features against the in-memory ones, on the real
//! PostgreSQL the test harness starts.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use vigil_features::{
    Aggregation, FeatureSpec, FeaturesError, FrameBuilder, PgConfig, REFERENCE_SENSORS,
    SimulatorConfig, SqlFeatureSource, TelemetryFrame, TelemetryStore, ViewKind, WindowLength,
    check_sql_spacing, create_feature_view_sql, feature_select_sql, simulate,
};

#[allow(clippy::print_stderr)]
fn database() -> Option<PgConfig> {
    match std::env::var("VIGIL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(PgConfig::from_url(&url).unwrap()),
        _ => {
            if std::env::var("VIGIL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("VIGIL_TEST_DATABASE_URL is not set but VIGIL_REQUIRE_SERVICES=1");
            }
            eprintln!("skipped: VIGIL_TEST_DATABASE_URL not set (run scripts/test.sh)");
            None
        }
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("sqlfeat_{tag}_{}_{nanos}", std::process::id())
}

/// Simulated machines with gaps, outages, missing values and duplicates, plus
/// a machine with one sample and one whose sensors never change.
fn fleet() -> TelemetryFrame {
    let sim = simulate(&SimulatorConfig {
        machines: 3,
        days: 0.12,
        outages_per_day: 8.0,
        drop_probability: 0.05,
        duplicate_probability: 0.01,
        missing_probability: 0.02,
        ..Default::default()
    })
    .unwrap();
    let f = &sim.frame;
    let names: Vec<String> = REFERENCE_SENSORS.iter().map(|s| (*s).to_owned()).collect();
    let mut b = FrameBuilder::new(names, false, false);
    let mut row = [0.0; 4];
    for i in 0..f.len() {
        for (k, slot) in row.iter_mut().enumerate() {
            *slot = f.sensor(k)[i];
        }
        b.push(f.machine_id_of(i), f.time()[i], &row, None, None);
    }
    let t0 = f.time()[0];
    b.push(
        "SINGLE",
        t0 + 777_000_000,
        &[70.0, 0.5, 1500.0, 12.0],
        None,
        None,
    );
    for j in 0..400i64 {
        // Constant sensors, idle spindle (0/0 ratios), a duplicate every 50 rows.
        let t = t0 + j * 10_000_000;
        b.push("CONST", t, &[0.1, 0.3, 0.0, 0.0], None, None);
        if j % 50 == 7 {
            b.push("CONST", t, &[0.1, 0.3, 0.0, 0.0], None, None);
        }
    }
    b.finish()
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn sql_features_equal_the_in_memory_ones_on_every_row() {
    let Some(config) = database() else { return };
    let table = unique("src");
    let mut store = TelemetryStore::connect(&config, &table).unwrap();
    store.create_schema().unwrap();
    let frame = fleet();
    store.insert(&frame).unwrap();
    // What a user computes in memory: the frame as the store loads it.
    let loaded = store.load(&Default::default()).unwrap();
    assert_eq!(loaded.len(), frame.len());
    let spec = FeatureSpec::default();
    let expected = spec.compute(&loaded).unwrap();

    let source = SqlFeatureSource::table(&table);
    let client = store.client();
    check_sql_spacing(client, &spec, &source).unwrap();
    let select = feature_select_sql(&spec, &source).unwrap();
    let rows = client
        .query(
            &format!("SELECT * FROM ({select}) f ORDER BY machine_id, time, seq"),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), loaded.len());

    // Per machine, the SQL rows in order against the frame's rows in order.
    let mut by_machine: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..loaded.len() {
        by_machine
            .entry(loaded.machine_id_of(i).to_owned())
            .or_default()
            .push(i);
    }
    let mut next: HashMap<String, usize> = HashMap::new();
    let names = spec.feature_names();
    let (mut compared, mut nan, mut inf) = (0usize, 0usize, 0usize);
    for row in &rows {
        let machine: String = row.get(0);
        let time: chrono::DateTime<chrono::Utc> = row.get(1);
        let k = next.entry(machine.clone()).or_default();
        let i = by_machine[&machine][*k];
        *k += 1;
        assert_eq!(time.timestamp_micros(), loaded.time()[i], "{machine}");
        for (j, name) in names.iter().enumerate() {
            let got: f64 = row.get(3 + j);
            let want = expected.values[[i, j]];
            assert!(
                close(got, want),
                "{machine} at {time}, {name}: SQL {got} vs in-memory {want}"
            );
            compared += 1;
            nan += usize::from(want.is_nan());
            inf += usize::from(want.is_infinite());
        }
    }
    assert_eq!(compared, loaded.len() * 42);
    // The hard cases occurred: undefined values and divisions by zero.
    assert!(nan > 0 && inf > 0, "nan {nan}, inf {inf}");
    assert!(by_machine["SINGLE"].len() == 1);

    // Every aggregation, and a window shorter than the sampling interval.
    let every = FeatureSpec::new(["temperature", "spindle_speed"])
        .with_rolling("temperature", Aggregation::Var, WindowLength::minutes(2))
        .with_rolling("temperature", Aggregation::Sum, WindowLength::minutes(2))
        .with_rolling("temperature", Aggregation::Count, WindowLength::minutes(2))
        .with_rolling("spindle_speed", Aggregation::Min, WindowLength::seconds(5))
        .with_rolling("spindle_speed", Aggregation::Std, WindowLength::seconds(5))
        .with_zscore("spindle_speed", WindowLength::minutes(60));
    compare_all(client, &every, &source, &loaded);

    // The view forms run and give the same row count.
    for (kind, name) in [
        (ViewKind::View, unique("v")),
        (ViewKind::MaterializedView, unique("mv")),
    ] {
        let sql = create_feature_view_sql(&spec, &source, &name, kind).unwrap();
        client.batch_execute(&sql).unwrap();
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM \"{name}\""), &[])
            .unwrap()
            .get(0);
        assert_eq!(n as usize, loaded.len());
        let drop = if kind == ViewKind::View {
            "VIEW"
        } else {
            "MATERIALIZED VIEW"
        };
        client
            .batch_execute(&format!("DROP {drop} \"{name}\""))
            .unwrap();
    }
    client
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}

#[test]
fn samples_closer_than_min_spacing_are_named() {
    let Some(config) = database() else { return };
    let table = unique("close");
    let mut store = TelemetryStore::connect(&config, &table).unwrap();
    store.create_schema().unwrap();
    let names: Vec<String> = REFERENCE_SENSORS.iter().map(|s| (*s).to_owned()).collect();
    let mut b = FrameBuilder::new(names, false, false);
    for t in [0i64, 600_000, 1_200_000, 10_000_000] {
        b.push(
            "M1",
            1_767_225_600_000_000 + t,
            &[1.0, 2.0, 3.0, 4.0],
            None,
            None,
        );
    }
    store.insert(&b.finish()).unwrap();
    let spec = FeatureSpec::default();
    let err =
        check_sql_spacing(store.client(), &spec, &SqlFeatureSource::table(&table)).unwrap_err();
    match &err {
        FeaturesError::SpacingNotSqlExact {
            machine,
            previous,
            time,
            ..
        } => {
            assert_eq!(machine, "M1");
            assert_eq!(time - previous, 600_000);
        }
        other => panic!("{other}"),
    }
    store
        .client()
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}

/// Every row and feature of `spec` in SQL against [`FeatureSpec::compute`].
fn compare_all(
    client: &mut postgres::Client,
    spec: &FeatureSpec,
    source: &SqlFeatureSource,
    loaded: &TelemetryFrame,
) {
    let expected = spec.compute(loaded).unwrap();
    let select = feature_select_sql(spec, source).unwrap();
    let rows = client
        .query(
            &format!("SELECT * FROM ({select}) f ORDER BY machine_id, time, seq"),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), loaded.len());
    let mut order: Vec<usize> = (0..loaded.len()).collect();
    order.sort_by(|&a, &b| {
        loaded
            .machine_id_of(a)
            .cmp(loaded.machine_id_of(b))
            .then(a.cmp(&b))
    });
    for (row, &i) in rows.iter().zip(&order) {
        let machine: String = row.get(0);
        assert_eq!(machine, loaded.machine_id_of(i));
        for j in 0..spec.len() {
            let got: f64 = row.get(3 + j);
            let want = expected.values[[i, j]];
            assert!(
                close(got, want),
                "{machine} row {i}, {}: SQL {got} vs {want}",
                spec.features[j].name
            );
        }
    }
}
