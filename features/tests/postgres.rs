//! PostgreSQL round trips against the real server the test harness starts.
#![cfg(feature = "postgres")]

use vigil_features::{FeaturesError, SimulatorConfig, simulate};
use vigil_features::{Identifier, LoadQuery, PgConfig, SchemaKind, TelemetryStore};

/// The value of a service variable, or `None` (printing why) when the harness
/// did not start that service. Panics when services are required.
#[allow(clippy::print_stderr)] // the one line saying a test was skipped
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            if std::env::var("VIGIL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but VIGIL_REQUIRE_SERVICES=1: run scripts/test.sh");
            }
            eprintln!("skipped: {var} not set (run scripts/test.sh to start the services)");
            None
        }
    }
}

#[allow(clippy::unwrap_used)]
fn unique_table(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("telemetry_{tag}_{}_{nanos}", std::process::id())
}

#[allow(clippy::unwrap_used)]
fn drop_table(config: &PgConfig, table: &str) {
    let mut client = config.connect().unwrap();
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .unwrap();
}

#[test]
fn simulated_telemetry_round_trips_exactly() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let config = PgConfig::from_url(&url).unwrap();
    let table = unique_table("roundtrip");
    let mut store = TelemetryStore::connect(&config, &table).unwrap();
    // TimescaleDB is not installed on the test server: the plain-table path.
    assert_eq!(store.create_schema().unwrap(), SchemaKind::PlainTable);
    assert_eq!(
        store.create_schema().unwrap(),
        SchemaKind::PlainTable,
        "idempotent"
    );
    let sim = simulate(&SimulatorConfig {
        machines: 3,
        days: 0.5,
        duplicate_probability: 0.01,
        ..Default::default()
    })
    .unwrap();
    assert!(sim.frame.sensor(0).iter().any(|v| v.is_nan()));
    let written = store.insert(&sim.frame).unwrap();
    assert_eq!(written, sim.frame.len() as u64);

    let loaded = store.load(&LoadQuery::default()).unwrap();
    assert_eq!(loaded.len(), sim.frame.len());
    assert_eq!(loaded.time(), sim.frame.time());
    assert_eq!(loaded.machine_ids(), sim.frame.machine_ids());
    assert_eq!(loaded.machine(), sim.frame.machine());
    for k in 0..4 {
        let a: Vec<u64> = loaded.sensor(k).iter().map(|v| v.to_bits()).collect();
        let b: Vec<u64> = sim.frame.sensor(k).iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b, "sensor {k}");
    }
    assert_eq!(loaded.failure(), sim.frame.failure());
    assert_eq!(loaded.failure_mode(), sim.frame.failure_mode());

    // A time range and a subset of machines.
    let t = sim.frame.time();
    let (from, to) = (t[0] + 3_600_000_000, t[0] + 7_200_000_000);
    let query = LoadQuery {
        from: Some(from),
        to: Some(to),
        machines: Some(vec!["M02".into(), "M03".into()]),
    };
    let part = store.load(&query).unwrap();
    let expected = (0..sim.frame.len())
        .filter(|&i| t[i] >= from && t[i] < to && sim.frame.machine_id_of(i) != "M01")
        .count();
    assert_eq!(part.len(), expected);
    assert_eq!(part.machine_ids(), ["M02", "M03"]);
    assert!(part.time().iter().all(|&x| x >= from && x < to));

    // The index the plain-table fallback promises.
    let mut client = config.connect().unwrap();
    let row = client
        .query_one("SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexname LIKE '%machine_time_idx'", &[&table])
        .unwrap();
    let indexdef: String = row.get(0);
    assert!(
        indexdef.contains("(machine_id, \"time\", seq)"),
        "{indexdef}"
    );

    let empty = store
        .load(&LoadQuery {
            machines: Some(vec!["nobody".into()]),
            ..LoadQuery::default()
        })
        .unwrap_err();
    assert!(matches!(empty, FeaturesError::EmptyInput { .. }), "{empty}");
    drop_table(&config, &table);
}

#[test]
fn environment_variables_configure_the_connection() {
    let Some(_) = service("POSTGRES_HOST") else {
        return;
    };
    let config = PgConfig::from_env().unwrap();
    let mut client = config.connect().unwrap();
    let row = client.query_one("SELECT current_user::text", &[]).unwrap();
    let user: String = row.get(0);
    assert_eq!(user, config.user);
    assert!(
        !format!("{config:?}").contains(&config.password)
            || config.password.is_empty()
            || format!("{config:?}").contains("<redacted>")
    );
}

#[test]
fn refused_connection_names_host_and_port_not_password() {
    // Nothing listens on port 1; the password must not leak into the message.
    let config = PgConfig {
        host: "127.0.0.1".into(),
        port: 1,
        user: "vigil".into(),
        password: "s3cr3t-Pa55".into(),
        dbname: "db".into(),
    };
    let Err(err) = config.connect() else {
        panic!("connected")
    };
    let text = err.to_string();
    assert!(
        matches!(err, FeaturesError::Connect { port: 1, .. }),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!format!("{config:?}").contains("s3cr3t"));
    let Err(err) = PgConfig::from_url("postgres://vigil:s3cr3t-Pa55@127.0.0.1:1/db")
        .unwrap()
        .connect()
    else {
        panic!("connected")
    };
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn wrong_password_is_reported_without_it() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let mut config = PgConfig::from_url(&url).unwrap();
    config.password = "definitely-wrong-pw".into();
    let Err(err) = config.connect() else {
        panic!("connected")
    };
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}:{}", config.host, config.port)),
        "{text}"
    );
    assert!(!text.contains("definitely-wrong-pw"), "{text}");
}

#[test]
fn table_names_carrying_sql_are_rejected() {
    for bad in [
        "telemetry; DROP TABLE users",
        "t\"x",
        "1abc",
        "",
        "a.b.c",
        "tele metry",
        "x--",
    ] {
        let err = Identifier::new(bad).unwrap_err();
        assert!(
            matches!(err, FeaturesError::InvalidIdentifier { .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        Identifier::new("plant_a.telemetry").unwrap().quoted(),
        "\"plant_a\".\"telemetry\""
    );
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let client = PgConfig::from_url(&url).unwrap().connect().unwrap();
    let err = TelemetryStore::with_sensors(client, "telemetry; DROP TABLE x", &["temperature"])
        .unwrap_err();
    assert!(
        matches!(err, FeaturesError::InvalidIdentifier { .. }),
        "{err}"
    );
}
