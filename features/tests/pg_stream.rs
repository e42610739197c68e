//! Streamed per-machine reads against the real PostgreSQL the harness starts.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vigil_features::{
    FeatureSpec, FeaturesError, LoadProgress, LoadQuery, PgConfig, SimulatorConfig, StreamOptions,
    TelemetryFrame, TelemetryStore, simulate,
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
    format!("stream_{tag}_{}_{nanos}", std::process::id())
}

fn fleet() -> TelemetryFrame {
    simulate(&SimulatorConfig {
        machines: 4,
        days: 0.05,
        duplicate_probability: 0.02,
        ..Default::default()
    })
    .unwrap()
    .frame
}

fn store_with(config: &PgConfig, tag: &str, frame: &TelemetryFrame) -> (TelemetryStore, String) {
    let table = unique(tag);
    let mut store = TelemetryStore::connect(config, &table).unwrap();
    store.create_schema().unwrap();
    store.insert(frame).unwrap();
    (store, table)
}

#[test]
fn machines_stream_one_by_one_and_give_the_features_of_a_full_load() {
    let Some(config) = database() else { return };
    let frame = fleet();
    let (mut store, table) = store_with(&config, "full", &frame);
    let spec = FeatureSpec::default();
    let full = spec
        .compute(&store.load(&LoadQuery::default()).unwrap())
        .unwrap();

    let mut reports: Vec<LoadProgress> = Vec::new();
    let mut streamed_rows: Vec<Vec<u64>> = Vec::new();
    let mut largest = 0;
    let options = StreamOptions { fetch_rows: 97 };
    let summary = store
        .for_each_machine(
            &LoadQuery::default(),
            &options,
            &mut |p| reports.push(p),
            &mut |m| {
                assert_eq!(m.machine_ids().len(), 1);
                largest = largest.max(m.len());
                let f = spec.compute(&m)?;
                streamed_rows.extend(
                    f.values
                        .rows()
                        .into_iter()
                        .map(|r| r.iter().map(|v| v.to_bits()).collect()),
                );
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(
        summary.progress,
        LoadProgress {
            rows_read: frame.len() as u64,
            machines_done: 4
        }
    );
    assert!(summary.machines_without_rows.is_empty());
    // Bit for bit the features of the whole table, duplicates included.
    let expected: Vec<Vec<u64>> = full
        .values
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect();
    assert_eq!(streamed_rows, expected);
    assert!(
        frame.time().windows(2).any(|w| w[0] == w[1]),
        "the fleet has duplicates"
    );
    // Progress after every fetch: monotone, ending at the totals.
    assert!(reports.len() > frame.len() / 97);
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].rows_read <= w[1].rows_read && w[0].machines_done <= w[1].machines_done)
    );
    assert_eq!(reports.last(), Some(&summary.progress));
    assert!(largest < frame.len());

    // A window and machines with no rows in it.
    let t0 = frame.time()[0];
    let query = LoadQuery {
        from: Some(t0 + 600_000_000),
        to: Some(t0 + 1_200_000_000),
        machines: Some(vec!["M02".into(), "nobody".into()]),
    };
    let mut got = Vec::new();
    let summary = store
        .for_each_machine(&query, &StreamOptions::default(), &mut |_| {}, &mut |m| {
            got.push((m.machine_ids()[0].clone(), m.len()));
            Ok(())
        })
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "M02");
    assert_eq!(summary.machines_without_rows, ["nobody"]);
    assert_eq!(store.count_rows(&query).unwrap(), got[0].1 as u64);
    assert_eq!(
        store.count_rows(&LoadQuery::default()).unwrap(),
        frame.len() as u64
    );
    let (first, last) = store.time_span(&query).unwrap().unwrap();
    assert!(first >= t0 + 600_000_000 && last < t0 + 1_200_000_000);
    assert!(StreamOptions { fetch_rows: 0 }.validate().is_err());
    store
        .client()
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}

#[test]
fn a_missing_sensor_column_is_named() {
    let Some(config) = database() else { return };
    let (mut store, table) = store_with(&config, "nosensor", &fleet());
    store
        .client()
        .batch_execute(&format!("ALTER TABLE \"{table}\" DROP COLUMN vibration"))
        .unwrap();
    let err = store
        .for_each_machine(
            &LoadQuery::default(),
            &StreamOptions::default(),
            &mut |_| {},
            &mut |_| Ok(()),
        )
        .unwrap_err();
    match &err {
        FeaturesError::MissingTableColumn { column, found, .. } => {
            assert_eq!(column, "vibration");
            assert!(found.iter().any(|c| c == "temperature"));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("no column `vibration`"), "{err}");
    store
        .client()
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}

#[test]
fn a_time_column_without_time_zone_is_read_as_utc() {
    let Some(config) = database() else { return };
    let frame = fleet();
    let (mut store, table) = store_with(&config, "notz", &frame);
    // Whatever the session's zone, the wall-clock values are taken as UTC.
    store
        .client()
        .batch_execute(&format!(
            "SET TIME ZONE 'UTC'; ALTER TABLE \"{table}\" ALTER COLUMN time TYPE timestamp; SET TIME ZONE 'America/New_York'"
        ))
        .unwrap();
    let mut times = Vec::new();
    let t0 = frame.time()[0];
    let query = LoadQuery {
        from: Some(t0),
        to: Some(t0 + 3_600_000_000),
        machines: Some(vec!["M01".into()]),
    };
    store
        .for_each_machine(&query, &StreamOptions::default(), &mut |_| {}, &mut |m| {
            times.extend_from_slice(m.time());
            Ok(())
        })
        .unwrap();
    let expected: Vec<i64> = (0..frame.len())
        .filter(|&i| frame.machine_id_of(i) == "M01" && frame.time()[i] < t0 + 3_600_000_000)
        .map(|i| frame.time()[i])
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(times, expected);
    store
        .client()
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}

#[test]
fn a_connection_dropped_mid_stream_is_a_typed_error() {
    let Some(config) = database() else { return };
    let (mut store, table) = store_with(&config, "drop", &fleet());
    let pid: i32 = store
        .client()
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut killer = config.connect().unwrap();
    let mut handed = 0;
    let err = store
        .for_each_machine(
            &LoadQuery::default(),
            &StreamOptions { fetch_rows: 50 },
            &mut |_| {},
            &mut |_| {
                handed += 1;
                if handed == 1 {
                    let killed: bool = killer
                        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                        .unwrap()
                        .get(0);
                    assert!(killed);
                }
                Ok(())
            },
        )
        .unwrap_err();
    match &err {
        FeaturesError::StreamInterrupted {
            machines_done,
            rows_read,
            ..
        } => {
            assert_eq!(*machines_done, 1);
            assert!(*rows_read > 0);
        }
        other => panic!("{other}"),
    }
    assert_eq!(handed, 1, "no machine after the drop");
    killer
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}
