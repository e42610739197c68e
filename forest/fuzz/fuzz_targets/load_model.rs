//! Feeds arbitrary bytes to every loader. A loader may refuse the input with an
//! error; it must never panic, and a model it accepts must predict without
//! panicking, one row at a time and in batches (which walk prepared copies of the
//! trees: self-looping leaves carrying their payloads, heap-ordered Isolation Trees).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndarray::Array2;
use vigil_forest::{IsolationForest, RandomForest};

/// Widest model this harness predicts with: a loaded model may declare up to
/// 2^31 - 1 features, and rows that wide are the caller's memory, not the
/// loader's (loading itself allocates in proportion to the file).
const MAX_PREDICT_FEATURES: usize = 1 << 12;

/// Nine rows (a lockstep group and one more), every third value missing.
fn batch(n_features: usize) -> Array2<f64> {
    Array2::from_shape_fn((9, n_features), |(r, c)| {
        if (r + c) % 3 == 0 {
            f64::NAN
        } else {
            (r as f64 - 4.0) * 0.25
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = RandomForest::from_bytes(data)
        && model.n_features() <= MAX_PREDICT_FEATURES
    {
        let row = vec![0.5; model.n_features()];
        let p = model.predict_proba_row(&row).expect("valid row");
        assert_eq!(p.len(), model.classes().len());
        let x = batch(model.n_features());
        let batch_p = model.predict_proba(x.view()).expect("valid batch");
        for (r, row) in x.rows().into_iter().enumerate() {
            let one = model.predict_proba_row(&row.to_vec()).expect("valid row");
            assert_eq!(batch_p.row(r).to_vec(), one);
        }
        let again = RandomForest::from_bytes(&model.to_bytes()).expect("round trip");
        assert_eq!(again, model);
    }
    if let Ok(model) = IsolationForest::from_bytes(data)
        && model.n_features() <= MAX_PREDICT_FEATURES
    {
        let row = vec![f64::NAN; model.n_features()];
        model.score_row(&row).expect("valid row");
        let x = batch(model.n_features());
        let scores = model.score_samples(x.view()).expect("valid batch");
        for (r, row) in x.rows().into_iter().enumerate() {
            let one = model.score_row(&row.to_vec()).expect("valid row");
            assert_eq!(scores[r].to_bits(), one.to_bits());
        }
        let again = IsolationForest::from_bytes(&model.to_bytes()).expect("round trip");
        assert_eq!(again, model);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(model) = RandomForest::from_json(text)
            && model.n_features() <= MAX_PREDICT_FEATURES
        {
            let row = vec![0.5; model.n_features()];
            model.predict_proba_row(&row).expect("valid row");
        }
        let _ = IsolationForest::from_json(text);
    }
});
