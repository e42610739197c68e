//! The model file format: round trips, size, and a loader that refuses corrupted or
//! hostile input with an error instead of panicking. (The cargo-fuzz target in
//! `forest/fuzz` explores the same loader far longer; these run on stable in `cargo test`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Lcg, three_class, two_class};
use proptest::prelude::*;
use vigil_forest::{
    Contamination, ForestError, IsolationForest, IsolationForestParams, RandomForest,
    RandomForestParams,
};

fn rf() -> (RandomForest, ndarray::Array2<f64>) {
    let (mut x, y) = two_class(600, 4, 31);
    // Some gaps, so missing-value directions are stored too.
    for r in (0..600).step_by(7) {
        x[[r, 2]] = f64::NAN;
    }
    let model = RandomForestParams {
        n_estimators: 12,
        oob_score: true,
        seed: 5,
        ..Default::default()
    }
    .fit(x.view(), &y)
    .unwrap();
    (model, x)
}

fn iso() -> (IsolationForest, ndarray::Array2<f64>) {
    let (x, _) = two_class(600, 4, 32);
    let model = IsolationForestParams {
        n_estimators: 20,
        contamination: Contamination::Fraction(0.1),
        seed: 5,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    (model, x)
}

#[test]
fn binary_and_json_round_trips_predict_identically() {
    let (model, x) = rf();
    let p = model.predict_proba(x.view()).unwrap();
    let from_bytes = RandomForest::from_bytes(&model.to_bytes()).unwrap();
    let from_json = RandomForest::from_json(&model.to_json()).unwrap();
    assert_eq!(from_bytes.predict_proba(x.view()).unwrap(), p);
    assert_eq!(from_json.predict_proba(x.view()).unwrap(), p);
    assert_eq!(
        from_bytes.feature_importances(),
        model.feature_importances()
    );
    assert_eq!(from_bytes.oob_score(), model.oob_score());
    // Multi-class too.
    let (x3, y3) = three_class(500, 1);
    let m3 = RandomForestParams {
        n_estimators: 5,
        ..Default::default()
    }
    .fit(x3.view(), &y3)
    .unwrap();
    let back = RandomForest::from_bytes(&m3.to_bytes()).unwrap();
    assert_eq!(
        back.predict(x3.view()).unwrap(),
        m3.predict(x3.view()).unwrap()
    );
    assert_eq!(back.classes(), &[0, 10, 20]);

    let (iso, xi) = iso();
    let s = iso.decision_function(xi.view()).unwrap();
    assert_eq!(
        IsolationForest::from_bytes(&iso.to_bytes())
            .unwrap()
            .decision_function(xi.view())
            .unwrap(),
        s
    );
    assert_eq!(
        IsolationForest::from_json(&iso.to_json())
            .unwrap()
            .decision_function(xi.view())
            .unwrap(),
        s
    );
}

#[test]
fn fully_grown_forest_takes_at_most_32_bytes_per_node() {
    let (x, y) = two_class(5000, 8, 3);
    let model = RandomForestParams {
        n_estimators: 20,
        ..Default::default()
    }
    .fit(x.view(), &y)
    .unwrap();
    let per_node = model.to_bytes().len() as f64 / model.n_nodes() as f64;
    assert!(per_node <= 32.0, "{per_node} bytes per node");
}

#[test]
fn every_truncation_is_refused() {
    let bytes = rf().0.to_bytes();
    for cut in 0..bytes.len() {
        assert!(
            RandomForest::from_bytes(&bytes[..cut]).is_err(),
            "accepted a file cut at {cut}"
        );
    }
    let json = rf().0.to_json();
    for cut in (0..json.len()).step_by(97) {
        assert!(RandomForest::from_json(&json[..cut]).is_err());
    }
}

#[test]
fn byte_flips_never_panic() {
    let (model, x) = rf();
    let bytes = model.to_bytes();
    let (iso_model, _) = iso();
    let iso_bytes = iso_model.to_bytes();
    let mut rng = Lcg(99);
    for _ in 0..1000 {
        for (original, is_rf) in [(&bytes, true), (&iso_bytes, false)] {
            let mut b = original.clone();
            for _ in 0..1 + (rng.next_f64() * 4.0) as usize {
                let at = (rng.next_f64() * b.len() as f64) as usize;
                b[at] = (rng.next_f64() * 256.0) as u8;
            }
            if is_rf {
                if let Ok(m) = RandomForest::from_bytes(&b) {
                    // Whatever was accepted is internally consistent: it predicts.
                    if m.n_features() == x.ncols() {
                        m.predict_proba(x.view()).unwrap();
                    }
                }
            } else if let Ok(m) = IsolationForest::from_bytes(&b) {
                m.score_row(&vec![0.0; m.n_features()]).unwrap();
            }
        }
    }
}

#[test]
fn headers_and_kinds_are_checked() {
    let (model, _) = rf();
    let mut bytes = model.to_bytes();
    assert!(matches!(
        RandomForest::from_bytes(b"PK\x03\x04 not a model"),
        Err(ForestError::Decode { .. })
    ));
    // Envelope: magic, format string (length byte + 12 bytes), then the version varint.
    assert_eq!(bytes[4], 12);
    bytes[17] = 3;
    assert_eq!(
        RandomForest::from_bytes(&bytes).unwrap_err(),
        ForestError::UnsupportedVersion {
            found: 3,
            oldest: 1,
            supported: 2
        }
    );
    let (iso, _) = iso();
    assert!(matches!(
        RandomForest::from_bytes(&iso.to_bytes()),
        Err(ForestError::WrongModelKind {
            expected: "RandomForest",
            ..
        })
    ));
    assert!(matches!(
        IsolationForest::from_json(&model.to_json()),
        Err(ForestError::WrongModelKind { .. })
    ));
    let json = model.to_json().replace("\"version\":2", "\"version\":7");
    assert!(matches!(
        RandomForest::from_json(&json),
        Err(ForestError::UnsupportedVersion { found: 7, .. })
    ));
}

#[test]
fn inconsistent_json_is_refused_with_the_reason() {
    let tree = |nodes: &str| {
        format!(
            r#"{{"format":"vigil-forest","version":1,"model":{{"RandomForest":{{"n_features":2,"classes":[0,1],"feature_importances":[0.5,0.5],"oob_score":null,"trees":[[{nodes}]]}}}}}}"#
        )
    };
    let leaf = r#"{"Leaf":{"probabilities":[[0,1.0]]}}"#;
    let ok = tree(&format!(
        r#"{{"Split":{{"feature":1,"missing_left":false,"threshold":0.5,"left_offset":1}}}},{leaf},{leaf}"#
    ));
    assert!(RandomForest::from_json(&ok).is_ok());
    let cases = [
        // Child outside the tree.
        format!(
            r#"{{"Split":{{"feature":1,"missing_left":false,"threshold":0.5,"left_offset":5}}}},{leaf},{leaf}"#
        ),
        // Points to itself (a cycle).
        format!(
            r#"{{"Split":{{"feature":1,"missing_left":false,"threshold":0.5,"left_offset":0}}}},{leaf},{leaf}"#
        ),
        // Feature out of range.
        format!(
            r#"{{"Split":{{"feature":2,"missing_left":false,"threshold":0.5,"left_offset":1}}}},{leaf},{leaf}"#
        ),
        // Class out of range, probabilities not summing to 1, unreachable node.
        r#"{"Leaf":{"probabilities":[[2,1.0]]}}"#.to_string(),
        r#"{"Leaf":{"probabilities":[[0,0.4]]}}"#.to_string(),
        format!("{leaf},{leaf}"),
        String::new(),
    ];
    for nodes in cases {
        let e = RandomForest::from_json(&tree(&nodes)).unwrap_err();
        assert!(matches!(e, ForestError::CorruptModel(_)), "{nodes}: {e}");
    }
    let one_class = ok.replace("\"classes\":[0,1]", "\"classes\":[0]");
    assert!(matches!(
        RandomForest::from_json(&one_class),
        Err(ForestError::CorruptModel(_))
    ));
    let bad_importances = ok.replace("[0.5,0.5]", "[0.5]");
    assert!(matches!(
        RandomForest::from_json(&bad_importances),
        Err(ForestError::CorruptModel(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_refused_without_panicking(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), with_magic in any::<bool>()) {
        if with_magic {
            let mut b = b"VGLF".to_vec();
            b.append(&mut bytes);
            bytes = b;
        }
        let _ = RandomForest::from_bytes(&bytes);
        let _ = IsolationForest::from_bytes(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = RandomForest::from_json(&text);
        let _ = IsolationForest::from_json(&text);
    }
}
