//! Feeds arbitrary bytes to every loader. A loader may refuse the input with an
//! error; it must never panic, and a model it accepts must predict without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_forest::{IsolationForest, RandomForest};

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = RandomForest::from_bytes(data) {
        let row = vec![0.5; model.n_features()];
        let p = model.predict_proba_row(&row).expect("valid row");
        assert_eq!(p.len(), model.classes().len());
        let again = RandomForest::from_bytes(&model.to_bytes()).expect("round trip");
        assert_eq!(again, model);
    }
    if let Ok(model) = IsolationForest::from_bytes(data) {
        let row = vec![f64::NAN; model.n_features()];
        model.score_row(&row).expect("valid row");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(model) = RandomForest::from_json(text) {
            let row = vec![0.5; model.n_features()];
            model.predict_proba_row(&row).expect("valid row");
        }
        let _ = IsolationForest::from_json(text);
    }
});
