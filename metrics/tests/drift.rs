//! Drift statistics against scipy 1.17.1 and evidently 0.7.23 on the fixture
//! written by `tests/golden/make_drift_golden.py` (statistics to 1e-10,
//! verdicts and method choices equal), plus invariants.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test file

use proptest::prelude::*;
use serde_json::Value;
use vigil_metrics::*;

const TOL: f64 = 1e-10;

fn fixture() -> Value {
    serde_json::from_str(include_str!("golden/drift_golden.json")).unwrap()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        other => panic!("not a number: {other}"),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(num).collect()
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    let ok = (got.is_nan() && want.is_nan())
        || got == want
        || (got - want).abs() <= TOL * want.abs().max(1.0);
    assert!(ok, "{what}: got {got:e}, reference {want:e}");
}

fn kind(c: &Value) -> ColumnKind {
    if c["numerical"].as_bool().unwrap() {
        ColumnKind::Numerical
    } else {
        ColumnKind::Categorical
    }
}

fn method_by_name(name: &str) -> DriftMethod {
    match name {
        "ks" | "K-S p_value" => DriftMethod::Ks,
        "chisquare" | "chi-square p_value" => DriftMethod::ChiSquare,
        "z" | "Z-test p_value" => DriftMethod::ZTest,
        "wasserstein" | "Wasserstein distance (normed)" => DriftMethod::Wasserstein,
        "jensenshannon" | "Jensen-Shannon distance" => DriftMethod::JensenShannon,
        "psi" | "PSI" => DriftMethod::Psi,
        other => panic!("unknown evidently method {other}"),
    }
}

#[test]
fn per_feature_statistics_match_scipy_and_evidently() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (r, cur, k) = (nums(&c["reference"]), nums(&c["current"]), kind(c));
        for (key, m) in [
            ("ks_auto", KsMethod::Auto),
            ("ks_exact", KsMethod::Exact),
            ("ks_asymp", KsMethod::Asymp),
        ] {
            let want = &c[key];
            let got = ks_2samp(&r, &cur, m).unwrap();
            close(
                got.statistic,
                num(&want["statistic"]),
                &format!("{name} {key} D"),
            );
            close(got.pvalue, num(&want["pvalue"]), &format!("{name} {key} p"));
            // KS is symmetric in its arguments.
            let back = ks_2samp(&cur, &r, m).unwrap();
            assert_eq!(back.statistic, got.statistic, "{name} {key} symmetry");
        }
        close(
            wasserstein_distance(&r, &cur).unwrap(),
            num(&c["wasserstein"]),
            &format!("{name} W1"),
        );
        close(
            wasserstein_distance_norm(&r, &cur).unwrap(),
            num(&c["wasserstein_norm"]),
            &format!("{name} W1 norm"),
        );
        close(
            psi(&r, &cur, k).unwrap(),
            num(&c["psi"]),
            &format!("{name} psi"),
        );
        close(
            jensenshannon_drift(&r, &cur, k).unwrap(),
            num(&c["jensenshannon"]),
            &format!("{name} js"),
        );
        if let Some(want) = c.get("chisquare") {
            close(
                chisquare_drift(&r, &cur).unwrap(),
                num(want),
                &format!("{name} chi2"),
            );
        }
        if let Some(want) = c.get("z") {
            close(
                z_test_drift(&r, &cur).unwrap(),
                num(want),
                &format!("{name} z"),
            );
        }
        // evidently's default rule on this one column.
        let reference = DriftReference::new(vec![(name, k, r.as_slice())]).unwrap();
        let report = reference.compare(&[&cur], &DriftParams::default()).unwrap();
        let f = &report.features[0];
        let want_method = method_by_name(c["default_method"].as_str().unwrap());
        assert_eq!(f.method, want_method, "{name} method");
        close(
            f.statistic,
            num(&c["default_statistic"]),
            &format!("{name} default stat"),
        );
        close(
            f.threshold,
            num(&c["default_threshold"]),
            &format!("{name} threshold"),
        );
        assert_eq!(
            f.drifted,
            c["default_drifted"].as_bool().unwrap(),
            "{name} verdict"
        );
    }
}

#[test]
fn jensenshannon_and_chisquare_vectors_match_scipy() {
    let fx = fixture();
    for c in fx["jensenshannon"].as_array().unwrap() {
        let base = c["base"].as_f64();
        let got = jensenshannon(&nums(&c["p"]), &nums(&c["q"]), base).unwrap();
        close(got, num(&c["value"]), "jensenshannon");
    }
    for c in fx["chisquare"].as_array().unwrap() {
        let (s, p) = chisquare(&nums(&c["f_obs"]), &nums(&c["f_exp"])).unwrap();
        close(s, num(&c["statistic"]), "chisquare statistic");
        close(p, num(&c["pvalue"]), "chisquare p");
    }
}

#[test]
fn dataset_drift_matches_evidently_report() {
    let fx = fixture();
    let sets = fx["datasets"].as_array().unwrap();
    assert_eq!(sets.len(), 4);
    for ds in sets {
        let cols = ds["columns"].as_array().unwrap();
        let data: Vec<(String, ColumnKind, Vec<f64>, Vec<f64>)> = cols
            .iter()
            .map(|c| {
                let n = c["name"].as_str().unwrap().to_string();
                (n, kind(c), nums(&c["reference"]), nums(&c["current"]))
            })
            .collect();
        let reference = DriftReference::new(
            data.iter()
                .map(|(n, k, r, _)| (n.as_str(), *k, r.as_slice()))
                .collect(),
        )
        .unwrap();
        let current: Vec<&[f64]> = data.iter().map(|d| d.3.as_slice()).collect();
        let got = reference
            .compare(&current, &DriftParams::default())
            .unwrap();
        for (f, want) in got.features.iter().zip(ds["features"].as_array().unwrap()) {
            let what = format!("{} rows {}", f.name, ds["n_ref"]);
            assert_eq!(f.name, want["name"].as_str().unwrap());
            assert_eq!(
                f.method,
                method_by_name(want["method"].as_str().unwrap()),
                "{what}"
            );
            close(f.statistic, num(&want["statistic"]), &what);
            close(f.threshold, num(&want["threshold"]), &what);
            assert_eq!(f.drifted, want["drifted"].as_bool().unwrap(), "{what}");
        }
        assert_eq!(got.dataset_drift, ds["dataset_drift"].as_bool().unwrap());
        close(got.share_drifted, num(&ds["share_drifted"]), "share");
        // The report round-trips through JSON (drift_report.json).
        let json = serde_json::to_string(&got).unwrap();
        assert_eq!(serde_json::from_str::<DatasetDrift>(&json).unwrap(), got);
        let saved = serde_json::to_string(&reference).unwrap();
        let back: DriftReference = serde_json::from_str(&saved).unwrap();
        assert!(back == reference, "reference does not round-trip");
    }
}

#[test]
fn non_finite_and_empty_inputs_are_typed_errors() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let x = [1.0, bad, 2.0];
        let e = ks_2samp(&x, &[1.0, 2.0], KsMethod::Auto).unwrap_err();
        assert!(matches!(e, MetricsError::NonFinite { index: 1, .. }), "{e}");
        let e = wasserstein_distance(&[1.0], &x).unwrap_err();
        assert!(matches!(e, MetricsError::NonFinite { index: 1, .. }), "{e}");
        assert!(psi(&x, &[1.0], ColumnKind::Numerical).is_err());
        let err = DriftReference::new(vec![("a", ColumnKind::Numerical, &x[..])]).unwrap_err();
        assert!(matches!(err, MetricsError::NonFinite { .. }));
    }
    let e = ks_2samp(&[], &[1.0], KsMethod::Auto).unwrap_err();
    assert!(matches!(e, MetricsError::EmptyInput { .. }));
    let r = DriftReference::new(vec![("a", ColumnKind::Numerical, &[1.0, 2.0][..])]).unwrap();
    assert!(matches!(
        r.compare(&[&[]], &DriftParams::default()).unwrap_err(),
        MetricsError::EmptyInput { .. }
    ));
    assert!(matches!(
        r.compare(&[], &DriftParams::default()).unwrap_err(),
        MetricsError::LengthMismatch { .. }
    ));
    let bad = DriftParams {
        ks_threshold: 1.5,
        ..DriftParams::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(MetricsError::InvalidParameter { .. })
    ));
    assert!(chisquare(&[1.0], &[1.0]).is_err());
}

#[test]
fn constant_columns_do_not_drift_against_themselves() {
    let c = vec![3.0; 2000];
    let r = DriftReference::new(vec![("c", ColumnKind::Numerical, c.as_slice())]).unwrap();
    let rep = r.compare(&[&c], &DriftParams::default()).unwrap();
    assert!(!rep.features[0].drifted);
    assert_eq!(rep.features[0].statistic, 0.0);
    let small = &c[..100];
    let r = DriftReference::new(vec![("c", ColumnKind::Numerical, small)]).unwrap();
    let rep = r.compare(&[small], &DriftParams::default()).unwrap();
    assert_eq!(rep.features[0].method, DriftMethod::ZTest);
    assert_eq!(rep.features[0].statistic, 1.0);
}

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![(-50i32..50).prop_map(f64::from), -1e3..1e3f64],
        1..300,
    )
}

proptest! {
    #[test]
    fn identical_samples_never_drift(x in sample()) {
        prop_assert_eq!(psi(&x, &x, ColumnKind::Numerical).unwrap(), 0.0);
        prop_assert_eq!(psi(&x, &x, ColumnKind::Categorical).unwrap(), 0.0);
        let ks = ks_2samp(&x, &x, KsMethod::Auto).unwrap();
        prop_assert_eq!(ks.statistic, 0.0);
        prop_assert_eq!(ks.pvalue, 1.0);
        prop_assert_eq!(wasserstein_distance(&x, &x).unwrap(), 0.0);
        prop_assert_eq!(jensenshannon_drift(&x, &x, ColumnKind::Numerical).unwrap(), 0.0);
        let r = DriftReference::new(vec![("x", ColumnKind::Numerical, x.as_slice())]).unwrap();
        let rep = r.compare(&[&x], &DriftParams::default()).unwrap();
        prop_assert!(!rep.dataset_drift && !rep.features[0].drifted);
    }

    #[test]
    fn ks_and_wasserstein_are_symmetric(a in sample(), b in sample()) {
        for m in [KsMethod::Auto, KsMethod::Asymp] {
            let ab = ks_2samp(&a, &b, m).unwrap();
            let ba = ks_2samp(&b, &a, m).unwrap();
            prop_assert_eq!(ab.statistic, ba.statistic);
            prop_assert!((0.0..=1.0).contains(&ab.pvalue));
        }
        let w1 = wasserstein_distance(&a, &b).unwrap();
        let w2 = wasserstein_distance(&b, &a).unwrap();
        prop_assert!((w1 - w2).abs() <= 1e-12 * w1.max(1.0));
    }
}
