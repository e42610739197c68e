//! The crates compose without glue, as a service depending on them would use
//! them: vigil-features' `TrainingSet` goes into vigil-forest, and its
//! predictions into vigil-metrics, with no conversion of labels or matrices.

use vigil_features::{
    FeatureSpec, SimulatorConfig, TrainingSet, WindowLength, cutoff_at_fraction, simulate,
};
use vigil_forest::{IsolationForestParams, RandomForestParams, Samples};
use vigil_metrics::{Average, f1_score, roc_auc_score};

#[test]
fn training_set_to_forest_to_metrics() -> Result<(), Box<dyn std::error::Error>> {
    let sim = simulate(&SimulatorConfig {
        machines: 4,
        days: 5.0,
        ..Default::default()
    })?;
    let set = TrainingSet::build(&sim.frame, &FeatureSpec::default())?;
    let cut = cutoff_at_fraction(&set.features.time, 0.7)?;
    let (train, test) = set.split_at(cut, WindowLength::minutes(30));

    // Labels are u8, features carry their names (errors would name the feature).
    let x = Samples::named(&train.features.values, &train.features.names)?;
    let forest = RandomForestParams {
        n_estimators: 30,
        min_samples_leaf: 5,
        max_samples: Some(vigil_forest::MaxSamples::Count(20_000)),
        seed: 1,
        ..Default::default()
    }
    .fit(x, &train.failure)?;
    let p = forest.predict_proba_of(&test.features.values, 1)?;
    let predicted = forest.predict_as::<u8>(&test.features.values)?;

    let auc = roc_auc_score(&test.failure, p.as_slice().ok_or("not contiguous")?)?;
    let f1 = f1_score(
        &test.failure,
        predicted.as_slice().ok_or("not contiguous")?,
        Average::binary(),
    )?;
    assert!(auc > 0.8, "test ROC-AUC {auc}");
    assert!(f1 > 0.0, "test F1 {f1}");

    let anomalies = IsolationForestParams {
        seed: 1,
        ..Default::default()
    }
    .fit(&train.features.values)?;
    let flags = anomalies.is_anomaly(&test.features.values)?;
    assert_eq!(flags.len(), test.len());
    Ok(())
}
