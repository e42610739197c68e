//! Concurrent `evaluate` promotions leave exactly one Production version, the
//! one `@champion` names: against the real MLflow server the test script
//! starts (no server lock: the registry is settled afterwards), and on a local
//! store (a file lock).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::service;
use vigil_examples::evaluate::{CHAMPION_ALIAS, all_versions, promote};
use vigil_tracking_client::{RunOptions, Stage, Tracker, TrackingConfig};

/// A registered model with `n` versions of one small logged model.
fn registered(tracker: &Tracker, name: &str, n: usize) {
    let exp = tracker.get_or_create_experiment("promotion-race").unwrap();
    let run = tracker
        .start_run(RunOptions::new(&exp.experiment_id))
        .unwrap();
    run.log_artifact_bytes("model/MLmodel", b"flavors: {}\n")
        .unwrap();
    let id = run.run_id().to_string();
    run.finish().unwrap();
    let artifact_uri = tracker.store().get_run(&id).unwrap().info.artifact_uri;
    for _ in 0..n {
        tracker
            .register_source(name, &format!("{artifact_uri}/model"), Some(&id))
            .unwrap();
    }
}

/// Four threads, each with its own tracker, promote four different versions
/// at once, five rounds; after each round one version is in Production and
/// it is the champion.
fn race(config: impl Fn() -> TrackingConfig + Sync, name: &str) {
    registered(&Tracker::new(config()).unwrap(), name, 4);
    for round in 0..5 {
        std::thread::scope(|scope| {
            for version in 1..=4 {
                let config = &config;
                scope.spawn(move || {
                    let tracker = Tracker::new(config()).unwrap();
                    promote(&tracker, name, &version.to_string()).unwrap();
                });
            }
        });
        let tracker = Tracker::new(config()).unwrap();
        let production: Vec<String> = all_versions(&tracker, name)
            .unwrap()
            .into_iter()
            .filter(|v| v.stage() == Stage::Production)
            .map(|v| v.version)
            .collect();
        let champion = tracker
            .store()
            .get_model_version_by_alias(name, CHAMPION_ALIAS)
            .unwrap();
        assert_eq!(production, [champion.version], "round {round}");
    }
}

#[test]
fn concurrent_promotions_on_the_server_leave_one_production_version() {
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let name = format!("promotion_race_{}", std::process::id());
    race(
        || {
            TrackingConfig::builder()
                .uri(&uri)
                .unwrap()
                .build()
                .unwrap()
        },
        &name,
    );
}

#[test]
fn concurrent_promotions_on_a_local_store_leave_one_production_version() {
    let dir = tempfile::tempdir().unwrap();
    let mlruns = dir.path().join("mlruns");
    race(
        || {
            TrackingConfig::builder()
                .local_dir(&mlruns)
                .build()
                .unwrap()
        },
        "local_race",
    );
}
