//! Proves the test harness: the services `scripts/test.sh` starts are real and reachable.
//!
//! Without the harness (a plain `cargo test`) these tests say they were skipped;
//! with `VIGIL_REQUIRE_SERVICES=1` a missing service fails them.

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

#[test]
fn postgres_answers_a_query() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let row = client
        .query_one("SELECT 40 + $1::int4, current_database()", &[&2i32])
        .unwrap();
    let sum: i32 = row.get(0);
    let db: String = row.get(1);
    assert_eq!(sum, 42);
    assert_eq!(db, "vigil_test");
}

#[test]
fn mlflow_serves_the_default_experiment() {
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let url = format!("{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default");
    let body: serde_json::Value = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(body["experiment"]["experiment_id"], "0");
    assert_eq!(body["experiment"]["name"], "Default");
    assert_eq!(body["experiment"]["lifecycle_stage"], "active");
}
