//! What both fuzz targets share: small models, trained once per fuzz process
//! (a few trees, so an iteration costs little), and cheap copies of them for a
//! fresh scoring core per input (an input's outcome must not depend on the
//! inputs before it, or libFuzzer could not reproduce a crash from it alone).

use std::sync::OnceLock;

use vigil_examples::bundle::{BUNDLE_FORMAT_VERSION, BundleMeta, ModelBundle};
use vigil_examples::scoring::LoadedModel;
use vigil_features::{FeatureSpec, Simulation, SimulatorConfig, TrainingSet, simulate};
use vigil_forest::{IsolationForestParams, RandomForestParams, Samples};

/// 2026-01-01T00:00:00Z in µs: the time the targets' sample times start from.
pub const T0: i64 = 1_767_225_600_000_000;

/// The machines the models were trained on.
pub const KNOWN_MACHINES: [&str; 2] = ["M01", "M02"];

/// The simulation every model is trained on (half a day of two machines).
fn simulation() -> &'static Simulation {
    static SIM: OnceLock<Simulation> = OnceLock::new();
    SIM.get_or_init(|| {
        simulate(&SimulatorConfig {
            machines: 2,
            days: 0.5,
            seed: 5,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("fuzz setup: simulation failed: {e}"))
    })
}

/// A small model for `spec` (as examples/tests/serve_http.rs builds one, with
/// fewer trees). Panics only on a setup failure, which is not a finding.
pub fn train(spec: &FeatureSpec, version: &str) -> LoadedModel {
    let sim = simulation();
    let setup =
        |what: &str, e: &dyn std::fmt::Display| -> ! { panic!("fuzz setup: {what} failed: {e}") };
    let set = TrainingSet::build(&sim.frame, spec).unwrap_or_else(|e| setup("features", &e));
    let x = Samples::named(&set.features.values, &set.features.names)
        .unwrap_or_else(|e| setup("samples", &e));
    let random_forest = RandomForestParams {
        n_estimators: 3,
        max_depth: Some(6),
        seed: 3,
        ..Default::default()
    }
    .fit(x, &set.failure)
    .unwrap_or_else(|e| setup("random forest", &e));
    let isolation_forest = IsolationForestParams {
        n_estimators: 5,
        seed: 3,
        ..Default::default()
    }
    .fit(x)
    .unwrap_or_else(|e| setup("isolation forest", &e));
    let bundle = ModelBundle {
        random_forest,
        isolation_forest,
        feature_spec: spec.clone(),
        meta: BundleMeta {
            format_version: BUNDLE_FORMAT_VERSION,
            feature_names: set.features.names.clone(),
            sensors: spec.sensors.clone(),
            threshold: 0.5,
            alarm_policy: Default::default(),
            alarm_smoothing: None,
            machines: KNOWN_MACHINES.iter().map(|m| m.to_string()).collect(),
            label_horizon_minutes: 30.0,
            trained_rows: set.len(),
            trained_at: "2026-01-01T00:00:00Z".into(),
            failure_modes: Vec::new(),
        },
        failure_modes: None,
        drift_reference: None,
    };
    let mut model = LoadedModel::unregistered(bundle);
    model.version = version.into();
    model
}

/// A copy of `model` (`LoadedModel` is not `Clone`; its bundle is).
pub fn copy(model: &LoadedModel) -> LoadedModel {
    LoadedModel {
        bundle: model.bundle.clone(),
        name: model.name.clone(),
        version: model.version.clone(),
        run_id: model.run_id.clone(),
        stage: model.stage.clone(),
        aliases: model.aliases.clone(),
        metrics: model.metrics.clone(),
        loaded_at: model.loaded_at.clone(),
    }
}

/// The reference model: the default 42-feature spec over the four sensors.
pub fn reference_model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| train(&FeatureSpec::default(), "1"))
}
