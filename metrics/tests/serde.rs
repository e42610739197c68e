//! Every serialisable type reads back what it wrote (NaN and ±∞ included), and
//! reading checks the invariants the building functions guarantee.

use std::fmt::Debug;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vigil_metrics::*;

#[allow(clippy::unwrap_used)] // a helper of the tests: a panic is a failed test
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

fn from_json<T: DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// The value read back writes the same JSON and, when it holds no NaN (which
/// equals nothing), compares equal.
fn assert_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = to_json(value);
    let back: T = from_json(&json);
    assert_eq!(to_json(&back), json);
    if !json.contains(r#""NaN""#) {
        assert_eq!(&back, value, "{json}");
    }
}

/// The error message of reading `json` as a `T`.
fn read_error<T: DeserializeOwned + Debug>(json: &str) -> String {
    match serde_json::from_str::<T>(json) {
        Ok(v) => panic!("{json} read as {v:?}"),
        Err(e) => e.to_string(),
    }
}

const Y_TRUE: [u8; 8] = [0, 0, 1, 1, 0, 1, 0, 0];
const SCORE: [f64; 8] = [0.10, 0.40, 0.35, 0.80, 0.20, 0.90, 0.65, 0.05];

#[test]
fn roc_curve_keeps_its_infinite_first_threshold() {
    let curve = roc_curve(&Y_TRUE, &SCORE).unwrap();
    assert_eq!(curve.thresholds[0], f64::INFINITY);
    let json = to_json(&curve);
    assert!(json.contains(r#""thresholds":["inf",0.9,"#), "{json}");
    assert!(!json.contains("null"), "{json}");
    assert_round_trip(&curve);
    let all = roc_curve_with(
        &Y_TRUE,
        &SCORE,
        RocCurveOptions {
            drop_intermediate: false,
        },
    )
    .unwrap();
    assert_round_trip(&all);
}

#[test]
fn curves_choices_and_options_round_trip() {
    assert_round_trip(&precision_recall_curve(&Y_TRUE, &SCORE).unwrap());
    assert_round_trip(&best_threshold_f1(&Y_TRUE, &SCORE).unwrap());
    assert_round_trip(&best_threshold_fbeta(&Y_TRUE, &SCORE, 0.5).unwrap());
    assert_round_trip(&RocCurveOptions::default());
    assert_round_trip(&PrCurveOptions {
        drop_intermediate: true,
    });
    assert_round_trip(&OvrAverage::Weighted);
}

#[test]
fn matrices_and_counts_round_trip() {
    let y_pred: Vec<u8> = SCORE.iter().map(|&s| u8::from(s >= 0.5)).collect();
    let cm = confusion_matrix(&Y_TRUE, &y_pred, None).unwrap();
    assert_eq!(to_json(&cm), r#"{"labels":[0,1],"counts":[4,1,1,2]}"#);
    assert_round_trip(&cm);
    assert_round_trip(&cm.binary_counts().unwrap());
    let multi = confusion_matrix(&[-1i32, 3, 7, 3], &[3, 3, -1, 7], Some(&[7, 3, -1])).unwrap();
    assert_round_trip(&multi);
    assert_round_trip(&confusion_matrix(&[true, false], &[true, true], None).unwrap());
}

#[test]
fn scores_and_reports_round_trip_with_nan() {
    // Class 2 is never predicted: its precision is NaN under ZeroDivision::Nan.
    let y_true = [0u8, 1, 2, 2, 1, 0];
    let y_pred = [0u8, 1, 1, 0, 1, 0];
    let nan = PrfParams {
        zero_division: ZeroDivision::Nan,
        ..PrfParams::default()
    };
    let per_class = precision_recall_fscore_support(&y_true, &y_pred, &nan).unwrap();
    assert!(per_class.precision[2].is_nan());
    let json = to_json(&per_class);
    assert!(json.contains(r#""NaN""#), "{json}");
    assert_round_trip(&per_class);
    let back: ClassScores<u8> = from_json(&json);
    assert!(back.precision[2].is_nan());

    let macro_nan = Scores {
        precision: f64::NAN,
        recall: 0.5,
        f_score: f64::NAN,
    };
    assert_round_trip(&macro_nan);
    assert_round_trip(&precision_recall_fscore(&y_true, &y_pred, Average::Weighted, &nan).unwrap());

    let report_params = ReportParams {
        labels: Some(vec![0u8, 1, 2]),
        target_names: Some(vec!["ok".into(), "worn".into(), "failed".into()]),
        digits: 3,
        zero_division: ZeroDivision::Nan,
    };
    let report = classification_report(&y_true, &y_pred, &report_params).unwrap();
    assert!(report.classes[2].precision.is_nan());
    assert_round_trip(&report);
    assert_round_trip(&report_params);
    assert_round_trip(&classification_report(&y_true, &y_pred, &ReportParams::default()).unwrap());
}

#[test]
fn params_round_trip_with_an_infinite_beta() {
    let recall_only = PrfParams {
        beta: f64::INFINITY,
        labels: Some(vec![1u8, 0]),
        zero_division: ZeroDivision::One,
    };
    let json = to_json(&recall_only);
    assert!(json.contains(r#""beta":"inf""#), "{json}");
    assert_round_trip(&recall_only);
    assert_round_trip(&PrfParams::<i64>::default());
    for average in [
        Average::binary(),
        Average::Binary { pos_label: 0 },
        Average::Micro,
        Average::Macro,
        Average::Weighted,
    ] {
        assert_round_trip::<Average<i16>>(&average);
    }
    for z in [ZeroDivision::Zero, ZeroDivision::One, ZeroDivision::Nan] {
        assert_round_trip(&z);
    }
}

#[cfg(feature = "plot")]
#[test]
fn plot_series_round_trip_with_non_finite_values() {
    use vigil_metrics::plot::{ImageFormat, Series, SeriesStyle};
    let failed_trials = Series::markers(
        "value",
        vec![0.0, 1.0, 2.0, 3.0],
        vec![0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
    );
    let json = to_json(&failed_trials);
    assert!(json.contains(r#"[0.5,"NaN","inf","-inf"]"#), "{json}");
    assert_round_trip(&failed_trials);
    assert_round_trip(&Series::step("best", vec![0.0], vec![1.0]));
    assert_round_trip(&SeriesStyle::LineWithMarkers);
    assert_round_trip(&ImageFormat::Svg);
    let err = read_error::<Series>(r#"{"name":"s","x":[0,1],"y":[1],"style":"Line"}"#);
    assert!(
        err.contains("series x has 2 elements but series y has 1"),
        "{err}"
    );
}

#[test]
fn binary_formats_carry_non_finite_floats_as_they_are() {
    let curve = roc_curve(&Y_TRUE, &SCORE).unwrap();
    let bytes = postcard::to_allocvec(&curve).unwrap();
    let back: RocCurve = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, curve);
    let scores = Scores {
        precision: f64::NAN,
        recall: 1.0,
        f_score: 0.0,
    };
    let back: Scores = postcard::from_bytes(&postcard::to_allocvec(&scores).unwrap()).unwrap();
    assert!(back.precision.is_nan());
    assert_eq!((back.recall, back.f_score), (1.0, 0.0));
}

#[test]
fn a_confusion_matrix_reads_through_from_counts() {
    let cases = [
        (r#"{"labels":[0,1],"counts":[1]}"#, "counts has 1 values"),
        (
            r#"{"labels":[0,1],"counts":[1,2,3,4,5]}"#,
            "counts has 5 values",
        ),
        (
            r#"{"labels":[1,1],"counts":[1,2,3,4]}"#,
            "appears more than once",
        ),
        (r#"{"labels":[],"counts":[]}"#, "the label list is empty"),
    ];
    for (json, message) in cases {
        let err = read_error::<ConfusionMatrix<u8>>(json);
        assert!(err.contains(message), "{json}: {err}");
    }
    // Exactly what from_counts accepts reads.
    let cm: ConfusionMatrix<u8> = from_json(r#"{"labels":[3],"counts":[7]}"#);
    assert_eq!(cm, ConfusionMatrix::from_counts(vec![3], vec![7]).unwrap());
}

#[test]
fn curves_that_break_their_invariants_do_not_read() {
    let roc = |fpr: &str, tpr: &str, thresholds: &str| {
        format!(r#"{{"fpr":{fpr},"tpr":{tpr},"thresholds":{thresholds}}}"#)
    };
    let cases = [
        // What serde_json wrote for +inf before: null.
        (roc("[0,1]", "[0,1]", "[null,0.5]"), "invalid type: null"),
        (
            roc("[0,1]", "[0]", r#"["inf",0.5]"#),
            "fpr has 2 elements but tpr has 1",
        ),
        (roc("[0,1]", "[0,1]", r#"["inf"]"#), "thresholds has 1"),
        (roc("[]", "[]", "[]"), "fpr is empty"),
        (
            roc("[0,0.5,0.2]", "[0,1,1]", r#"["inf",0.5,0.1]"#),
            "fpr must not decrease",
        ),
        (
            roc("[0,1.5]", "[0,1]", r#"["inf",0.5]"#),
            "not a probability",
        ),
        (
            roc("[0,1]", "[0,1]", r#"["inf","NaN"]"#),
            "thresholds[1] is NaN",
        ),
        (
            roc("[0,1]", "[0,1]", "[0.1,0.5]"),
            "thresholds must not increase",
        ),
    ];
    for (json, message) in &cases {
        let err = read_error::<RocCurve>(json);
        assert!(err.contains(message), "{json}: {err}");
    }
    let pr = |precision: &str, recall: &str, thresholds: &str| {
        format!(r#"{{"precision":{precision},"recall":{recall},"thresholds":{thresholds}}}"#)
    };
    let cases = [
        (
            pr("[0.5,1]", "[1,0]", "[0.1,0.2]"),
            "2 thresholds for 2 points",
        ),
        (pr("[0.5,1]", "[0,1]", "[0.1]"), "recall must not increase"),
        (
            pr("[0.5,0.7,1]", "[1,0.5,0]", "[0.4,0.1]"),
            "thresholds must not decrease",
        ),
        // PR thresholds are scores, always finite: no string spelling reads.
        (pr("[0.5,1]", "[1,0]", r#"["inf"]"#), "invalid type: string"),
        (pr("[-0.5,1]", "[1,0]", "[0.1]"), "not a probability"),
        (
            pr("[0.5,1]", "[1]", "[0.1]"),
            "precision has 2 elements but recall has 1",
        ),
    ];
    for (json, message) in &cases {
        let err = read_error::<PrCurve>(json);
        assert!(err.contains(message), "{json}: {err}");
    }
    // Flat is not increasing (no positives above the lowest threshold).
    let flat: PrCurve = from_json(&pr("[0.5,1]", "[0,0]", "[0.1]"));
    assert_eq!(flat.recall, [0.0, 0.0]);
}

#[test]
fn scores_and_reports_that_break_their_invariants_do_not_read() {
    let choice = r#"{"threshold":0.5,"f_score":0.5,"precision":2.0,"recall":0.5,"beta":1.0}"#;
    assert!(read_error::<ThresholdChoice>(choice).contains("precision[0] = 2"));
    let choice = r#"{"threshold":0.5,"f_score":0.5,"precision":0.5,"recall":0.5,"beta":-1.0}"#;
    assert!(read_error::<ThresholdChoice>(choice).contains("beta must be finite"));

    let scores = r#"{"precision":"NaN","recall":1.5,"f_score":0.1}"#;
    assert!(read_error::<Scores>(scores).contains("recall[0] = 1.5"));

    let class_scores = |labels: &str, precision: &str| {
        format!(
            r#"{{"labels":{labels},"precision":{precision},"recall":[1,1],"f_score":[1,1],"support":[2,3]}}"#
        )
    };
    let err = read_error::<ClassScores<u8>>(&class_scores("[0,1]", "[1]"));
    assert!(
        err.contains("labels has 2 elements but precision has 1"),
        "{err}"
    );
    let err = read_error::<ClassScores<u8>>(&class_scores("[0,0]", "[1,1]"));
    assert!(err.contains("appears more than once"), "{err}");
    let err = read_error::<ClassScores<u8>>(&class_scores("[0,1]", "[1,-0.1]"));
    assert!(err.contains("precision[1] = -0.1"), "{err}");
    let ok: ClassScores<u8> = from_json(&class_scores("[0,1]", r#"["NaN",1]"#));
    assert!(ok.precision[0].is_nan());

    let row = |precision: &str| {
        format!(r#"{{"name":"a","precision":{precision},"recall":1,"f1_score":1,"support":1}}"#)
    };
    assert!(read_error::<ReportRow>(&row("1.01")).contains("precision[0] = 1.01"));
    let report = |classes: &str, accuracy: &str| {
        format!(
            r#"{{"classes":{classes},"accuracy":{accuracy},"macro_avg":{r},"weighted_avg":{r},"digits":2}}"#,
            r = row("1")
        )
    };
    let one = format!("[{}]", row("1"));
    assert!(read_error::<ClassificationReport>(&report("[]", "1")).contains("classes is empty"));
    assert!(read_error::<ClassificationReport>(&report(&one, "7")).contains("accuracy[0] = 7"));
    let bad_row = format!("[{}]", row("2"));
    assert!(
        read_error::<ClassificationReport>(&report(&bad_row, "1")).contains("precision[0] = 2")
    );
    let _: ClassificationReport = from_json(&report(&one, "1"));

    let params = r#"{"beta":"-inf","labels":null,"zero_division":"Zero"}"#;
    assert!(read_error::<PrfParams<u8>>(params).contains("beta"));
}

/// Binary targets with both classes and scores with ties (and one far outlier).
fn binary_with_scores() -> impl Strategy<Value = (Vec<u8>, Vec<f64>)> {
    (2usize..120).prop_flat_map(|n| {
        (
            prop::collection::vec(0u8..2, n)
                .prop_filter("both classes", |y| y.contains(&0) && y.contains(&1)),
            prop::collection::vec(
                prop_oneof![
                    (0i32..30).prop_map(|v| f64::from(v) / 30.0),
                    -1e300..1e300f64,
                ],
                n,
            ),
        )
    })
}

proptest! {
    #[test]
    fn curves_round_trip((y, s) in binary_with_scores(), drop in any::<bool>()) {
        let roc = roc_curve_with(&y, &s, RocCurveOptions { drop_intermediate: drop }).unwrap();
        let back: RocCurve = from_json(&to_json(&roc));
        prop_assert_eq!(back, roc);
        let pr = precision_recall_curve_with(&y, &s, PrCurveOptions { drop_intermediate: drop })
            .unwrap();
        let back: PrCurve = from_json(&to_json(&pr));
        prop_assert_eq!(back, pr);
        let choice = best_threshold_f1(&y, &s).unwrap();
        let back: ThresholdChoice = from_json(&to_json(&choice));
        prop_assert_eq!(back, choice);
    }

    #[test]
    fn matrices_and_scores_round_trip(
        pairs in prop::collection::vec((-3i64..4, -3i64..4), 1..200),
        zero in prop_oneof![Just(ZeroDivision::Zero), Just(ZeroDivision::One), Just(ZeroDivision::Nan)],
    ) {
        let (y_true, y_pred): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
        let cm = confusion_matrix(&y_true, &y_pred, None).unwrap();
        let back: ConfusionMatrix<i64> = from_json(&to_json(&cm));
        prop_assert_eq!(back, cm);
        let params = PrfParams { zero_division: zero, ..PrfParams::default() };
        let per_class = precision_recall_fscore_support(&y_true, &y_pred, &params).unwrap();
        let json = to_json(&per_class);
        let back: ClassScores<i64> = from_json(&json);
        prop_assert_eq!(to_json(&back), json);
        let report_params = ReportParams { zero_division: zero, ..ReportParams::default() };
        let report = classification_report(&y_true, &y_pred, &report_params).unwrap();
        let json = to_json(&report);
        let back: ClassificationReport = from_json(&json);
        prop_assert_eq!(to_json(&back), json);
    }

    #[test]
    fn from_counts_and_reading_agree(
        labels in prop::collection::vec(0u16..6, 0..5),
        counts in prop::collection::vec(0u64..1000, 0..30),
    ) {
        let json = format!(
            r#"{{"labels":{},"counts":{}}}"#,
            serde_json::to_string(&labels).unwrap(),
            serde_json::to_string(&counts).unwrap()
        );
        let read = serde_json::from_str::<ConfusionMatrix<u16>>(&json);
        match ConfusionMatrix::from_counts(labels, counts) {
            Ok(cm) => prop_assert_eq!(read.unwrap(), cm),
            Err(e) => {
                let message = read.unwrap_err().to_string();
                prop_assert!(message.contains(&e.to_string()), "{} vs {}", message, e);
            }
        }
    }
}
