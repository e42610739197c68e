//! Proves the test harness: the services `scripts/test.sh` starts are real and reachable.
//!
//! Without the harness (a plain `cargo test`) these tests say they were skipped;
//! with `VIGIL_REQUIRE_SERVICES=1` a missing service fails them.

mod common;
use common::service;

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
