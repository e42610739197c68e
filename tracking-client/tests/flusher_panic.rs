//! A panic inside the background flusher (here: a store that panics on
//! `log_batch`) reaches the caller as `FlusherFailed` from `flush()` and
//! `finish()` — promptly, never a hang — and the values stay in the spool,
//! from where a replay delivers them.

// Helper fns outside #[test] may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vigil_tracking_client::{
    CreateModelVersion, CreateRun, Experiment, FileInfo, FileStore, Metric, ModelVersion, Page,
    Param, RegisteredModel, Result, Run, RunOptions, RunSearch, RunStatus, Stage, Tag, Tracker,
    TrackingConfig, TrackingError, TrackingStore, ViewType,
};

/// A file store whose `log_batch` panics while `armed`.
#[derive(Debug)]
struct PanickingStore {
    inner: FileStore,
    armed: AtomicBool,
}

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )*) => {
        $( fn $name(&self $(, $arg: $ty)*) -> $ret { self.inner.$name($($arg),*) } )*
    };
}

impl TrackingStore for PanickingStore {
    fn log_batch(&self, run_id: &str, m: &[Metric], p: &[Param], t: &[Tag]) -> Result<()> {
        if self.armed.load(Ordering::SeqCst) {
            panic!("store bug injected by the test");
        }
        self.inner.log_batch(run_id, m, p, t)
    }
    delegate! {
        fn uri(&self) -> String;
        fn create_experiment(&self, name: &str, tags: &[Tag]) -> Result<String>;
        fn get_experiment(&self, id: &str) -> Result<Experiment>;
        fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>>;
        fn search_experiments(&self, f: Option<&str>, n: u32, t: Option<&str>, v: ViewType) -> Result<Page<Experiment>>;
        fn set_experiment_tag(&self, id: &str, k: &str, v: &str) -> Result<()>;
        fn delete_experiment(&self, id: &str) -> Result<()>;
        fn restore_experiment(&self, id: &str) -> Result<()>;
        fn create_run(&self, r: &CreateRun) -> Result<Run>;
        fn get_run(&self, id: &str) -> Result<Run>;
        fn update_run(&self, id: &str, s: RunStatus, e: Option<i64>) -> Result<()>;
        fn delete_run(&self, id: &str) -> Result<()>;
        fn restore_run(&self, id: &str) -> Result<()>;
        fn search_runs(&self, s: &RunSearch) -> Result<Page<Run>>;
        fn set_tag(&self, id: &str, k: &str, v: &str) -> Result<()>;
        fn delete_tag(&self, id: &str, k: &str) -> Result<()>;
        fn get_metric_history(&self, id: &str, k: &str) -> Result<Vec<Metric>>;
        fn upload_artifact(&self, r: &str, p: &str, l: &Path) -> Result<()>;
        fn upload_artifact_bytes(&self, r: &str, p: &str, b: &[u8]) -> Result<()>;
        fn list_artifacts(&self, r: &str, p: &str) -> Result<Vec<FileInfo>>;
        fn download_artifact(&self, r: &str, p: &str, d: &Path, s: Option<u64>) -> Result<()>;
        fn create_registered_model(&self, n: &str, d: Option<&str>, t: &[Tag]) -> Result<RegisteredModel>;
        fn get_registered_model(&self, n: &str) -> Result<RegisteredModel>;
        fn search_registered_models(&self, f: Option<&str>, n: u32, t: Option<&str>) -> Result<Page<RegisteredModel>>;
        fn delete_registered_model(&self, n: &str) -> Result<()>;
        fn set_registered_model_tag(&self, n: &str, k: &str, v: &str) -> Result<()>;
        fn create_model_version(&self, r: &CreateModelVersion) -> Result<ModelVersion>;
        fn get_model_version(&self, n: &str, v: &str) -> Result<ModelVersion>;
        fn search_model_versions(&self, f: Option<&str>, n: u32, t: Option<&str>) -> Result<Page<ModelVersion>>;
        fn get_latest_versions(&self, n: &str, s: &[Stage]) -> Result<Vec<ModelVersion>>;
        fn transition_stage(&self, n: &str, v: &str, s: Stage, a: bool) -> Result<ModelVersion>;
        fn delete_model_version(&self, n: &str, v: &str) -> Result<()>;
        fn set_model_version_tag(&self, n: &str, v: &str, k: &str, val: &str) -> Result<()>;
        fn set_alias(&self, n: &str, a: &str, v: &str) -> Result<()>;
        fn delete_alias(&self, n: &str, a: &str) -> Result<()>;
        fn get_model_version_by_alias(&self, n: &str, a: &str) -> Result<ModelVersion>;
        fn get_model_version_download_uri(&self, n: &str, v: &str) -> Result<String>;
    }
}

#[test]
fn a_panicking_flusher_is_an_error_from_flush_and_finish_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mlruns = tmp.path().join("mlruns");
    let config = TrackingConfig::builder()
        .local_dir(&mlruns)
        .spool_dir(tmp.path().join("spool"))
        .build()
        .unwrap();
    let store = Arc::new(PanickingStore {
        inner: FileStore::open(&mlruns).unwrap(),
        armed: AtomicBool::new(false),
    });
    let t = Tracker::with_store(store.clone(), config.clone());
    let exp = t.get_or_create_experiment("panics").unwrap();
    let run = t.start_run(RunOptions::new(&exp.experiment_id)).unwrap();
    let run_id = run.run_id().to_string();
    run.log_metric_at("loss", 1.0, 0).unwrap();
    run.flush().unwrap();
    store.armed.store(true, Ordering::SeqCst);
    run.log_metric_at("loss", 2.0, 1).unwrap();
    run.log_param("depth", 7).unwrap();
    let err = run.flush().unwrap_err();
    assert!(matches!(err, TrackingError::FlusherFailed { .. }), "{err}");
    assert!(err.to_string().contains("store bug injected"), "{err}");
    let err = run.finish().unwrap_err();
    assert!(matches!(err, TrackingError::FlusherFailed { .. }), "{err}");

    // A healthy tracker on the same store delivers what the flusher held.
    let healthy = Tracker::new(config).unwrap();
    let report = healthy.replay_spools().unwrap();
    assert!(report.still_pending.is_empty(), "{report:?}");
    let s = healthy.store();
    let steps: Vec<i64> = s
        .get_metric_history(&run_id, "loss")
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert_eq!(steps, vec![0, 1], "every value exactly once");
    let run = s.get_run(&run_id).unwrap();
    assert_eq!(run.param("depth"), Some("7"));
    assert_eq!(
        run.info.status,
        RunStatus::Finished,
        "its logged end is delivered"
    );
}
