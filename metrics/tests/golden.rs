//! Agreement with scikit-learn 1.9.1 on the fixture written by
//! `tests/golden/make_golden.py` (every value to 1e-12).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test file

use serde_json::Value;
use vigil_metrics::*;

const TOL: f64 = 1e-12;

fn fixture() -> Value {
    let text = include_str!("golden/sklearn_golden.json");
    serde_json::from_str(text).unwrap()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a number: {other}"),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().map(num).collect(),
        other => panic!("not an array: {other}"),
    }
}

fn ints(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                let f = num(x);
                assert!(f.fract() == 0.0, "not an integer: {x}");
                f as i64
            })
            .collect(),
        other => panic!("not an array: {other}"),
    }
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    let ok = (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= TOL;
    assert!(ok, "{what}: got {got:e}, scikit-learn {want:e}");
}

#[track_caller]
fn close_all(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs scikit-learn {}",
        got.len(),
        want.len()
    );
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        close(g, w, &format!("{what}[{i}]"));
    }
}

#[test]
fn binary_score_metrics_match_sklearn() {
    let fx = fixture();
    let cases = fx["binary_scores"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut checked = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let y = ints(&c["y_true"]);
        let s = nums(&c["y_score"]);
        if let Some(roc) = c.get("roc") {
            let got = roc_curve(&y, &s).unwrap();
            close_all(&got.fpr, &nums(&roc["fpr"]), &format!("{name} fpr"));
            close_all(&got.tpr, &nums(&roc["tpr"]), &format!("{name} tpr"));
            close_all(
                &got.thresholds,
                &nums(&roc["thresholds"]),
                &format!("{name} thresholds"),
            );
            let roc = &c["roc_all"];
            let got = roc_curve_with(
                &y,
                &s,
                RocCurveOptions {
                    drop_intermediate: false,
                },
            )
            .unwrap();
            close_all(&got.fpr, &nums(&roc["fpr"]), &format!("{name} fpr (all)"));
            close_all(&got.tpr, &nums(&roc["tpr"]), &format!("{name} tpr (all)"));
            close_all(
                &got.thresholds,
                &nums(&roc["thresholds"]),
                &format!("{name} thresholds (all)"),
            );
            close(
                roc_auc_score(&y, &s).unwrap(),
                num(&c["roc_auc"]),
                &format!("{name} auc"),
            );
            close(got.auc(), num(&c["roc_auc"]), &format!("{name} curve auc"));
            for (m, want) in c["roc_auc_partial"].as_object().unwrap() {
                let max_fpr: f64 = m.parse().unwrap();
                close(
                    roc_auc_score_partial(&y, &s, max_fpr).unwrap(),
                    num(want),
                    &format!("{name} partial auc {m}"),
                );
            }
            checked += 1;
        }
        if let Some(want) = c.get("pr") {
            let pr = precision_recall_curve(&y, &s).unwrap();
            close_all(
                &pr.precision,
                &nums(&want["precision"]),
                &format!("{name} precision"),
            );
            close_all(
                &pr.recall,
                &nums(&want["recall"]),
                &format!("{name} recall"),
            );
            close_all(
                &pr.thresholds,
                &nums(&want["thresholds"]),
                &format!("{name} pr thresholds"),
            );
        }
        if let Some(prd) = c.get("pr_drop") {
            let pr = precision_recall_curve_with(
                &y,
                &s,
                PrCurveOptions {
                    drop_intermediate: true,
                },
            )
            .unwrap();
            close_all(
                &pr.precision,
                &nums(&prd["precision"]),
                &format!("{name} precision (drop)"),
            );
            close_all(
                &pr.recall,
                &nums(&prd["recall"]),
                &format!("{name} recall (drop)"),
            );
            close_all(
                &pr.thresholds,
                &nums(&prd["thresholds"]),
                &format!("{name} pr thresholds (drop)"),
            );
        }
        if let Some(ap) = c.get("average_precision") {
            close(
                average_precision_score(&y, &s).unwrap(),
                num(ap),
                &format!("{name} AP"),
            );
        }
        for (key, beta) in [("best_f1", 1.0), ("best_f2", 2.0), ("best_f05", 0.5)] {
            if let Some(b) = c.get(key) {
                let got = best_threshold_fbeta(&y, &s, beta).unwrap();
                close(
                    got.threshold,
                    num(&b["threshold"]),
                    &format!("{name} {key} threshold"),
                );
                close(got.f_score, num(&b["f_score"]), &format!("{name} {key} f"));
                close(
                    got.precision,
                    num(&b["precision"]),
                    &format!("{name} {key} precision"),
                );
                close(
                    got.recall,
                    num(&b["recall"]),
                    &format!("{name} {key} recall"),
                );
            }
        }
        if let Some(ll) = c.get("log_loss") {
            close(
                log_loss(&y, &s).unwrap(),
                num(ll),
                &format!("{name} log loss"),
            );
            close(
                brier_score_loss(&y, &s).unwrap(),
                num(&c["brier"]),
                &format!("{name} brier"),
            );
        }
    }
    assert!(checked >= 10);
}

fn zero_division(s: &str) -> ZeroDivision {
    match s {
        "warn" | "0.0" => ZeroDivision::Zero,
        "1.0" => ZeroDivision::One,
        "nan" => ZeroDivision::Nan,
        other => panic!("zero_division {other}"),
    }
}

/// scikit-learn prints supports as floats ("4.0") when no sample at all is
/// predicted correctly (its multilabel_confusion_matrix then falls back to
/// float zeros). We print integers always; undo that quirk in the expectation.
fn integer_support(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches('\n');
            match body.strip_suffix(".0") {
                Some(head)
                    if body.len() >= 9
                        && head.rsplit(' ').next().is_some_and(|t| {
                            !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
                        }) =>
                {
                    let (left, field) = body.split_at(body.len() - 9);
                    format!("{left}{:>9}\n", field.trim().trim_end_matches(".0"))
                }
                _ => line.to_string(),
            }
        })
        .collect()
}

#[test]
fn label_metrics_match_sklearn() {
    let fx = fixture();
    let cases = fx["labels"].as_array().unwrap();
    let mut prf_checked = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let y = ints(&c["y_true"]);
        let p = ints(&c["y_pred"]);
        let labels = c["labels"].as_array().map(|_| ints(&c["labels"]));

        let cm = confusion_matrix(&y, &p, labels.as_deref()).unwrap();
        let want: Vec<Vec<u64>> = c["confusion_matrix"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(cm.rows(), want, "{name} confusion matrix");
        close(
            accuracy_score(&y, &p).unwrap(),
            num(&c["accuracy"]),
            &format!("{name} accuracy"),
        );
        if let Some(b) = c.get("balanced_accuracy") {
            close(
                balanced_accuracy_score(&y, &p, false).unwrap(),
                num(b),
                &format!("{name} balanced acc"),
            );
            if c["balanced_accuracy_adjusted"] != "skip" {
                close(
                    balanced_accuracy_score(&y, &p, true).unwrap(),
                    num(&c["balanced_accuracy_adjusted"]),
                    &format!("{name} adjusted balanced acc"),
                );
            }
            close(
                matthews_corrcoef(&y, &p).unwrap(),
                num(&c["mcc"]),
                &format!("{name} mcc"),
            );
        }

        for r in c["prf"].as_array().unwrap() {
            let params = PrfParams {
                beta: num(&r["beta"]),
                labels: labels.clone(),
                zero_division: zero_division(r["zero_division"].as_str().unwrap()),
            };
            let what = format!(
                "{name} {r}",
                r = serde_json::json!([
                    r["average"],
                    r["beta"],
                    r["zero_division"],
                    r["pos_label"]
                ])
            );
            let average = match r["average"].as_str().unwrap() {
                "None" => {
                    let got = precision_recall_fscore_support(&y, &p, &params).unwrap();
                    close_all(
                        &got.precision,
                        &nums(&r["precision"]),
                        &format!("{what} precision"),
                    );
                    close_all(&got.recall, &nums(&r["recall"]), &format!("{what} recall"));
                    close_all(&got.f_score, &nums(&r["f_score"]), &format!("{what} f"));
                    let support: Vec<u64> = got.support.clone();
                    let want: Vec<u64> = ints(&r["support"]).iter().map(|&v| v as u64).collect();
                    assert_eq!(support, want, "{what} support");
                    prf_checked += 1;
                    continue;
                }
                "micro" => Average::Micro,
                "macro" => Average::Macro,
                "weighted" => Average::Weighted,
                "binary" => Average::Binary {
                    pos_label: r["pos_label"].as_i64().unwrap(),
                },
                other => panic!("average {other}"),
            };
            let got = precision_recall_fscore(&y, &p, average, &params).unwrap();
            close(
                got.precision,
                num(&r["precision"]),
                &format!("{what} precision"),
            );
            close(got.recall, num(&r["recall"]), &format!("{what} recall"));
            close(got.f_score, num(&r["f_score"]), &format!("{what} f"));
            prf_checked += 1;
        }

        for rep in c["reports"].as_array().unwrap() {
            let params = ReportParams {
                labels: labels.clone(),
                target_names: None,
                digits: rep["digits"].as_u64().unwrap() as usize,
                zero_division: zero_division(rep["zero_division"].as_str().unwrap()),
            };
            let got = classification_report(&y, &p, &params).unwrap();
            assert_eq!(
                got.to_string(),
                integer_support(rep["text"].as_str().unwrap()),
                "{name} report text"
            );
            let d = &rep["dict"];
            for row in &got.classes {
                let w = &d[row.name.as_str()];
                close(
                    row.precision,
                    num(&w["precision"]),
                    &format!("{name} report {} p", row.name),
                );
                close(
                    row.recall,
                    num(&w["recall"]),
                    &format!("{name} report {} r", row.name),
                );
                close(
                    row.f1_score,
                    num(&w["f1-score"]),
                    &format!("{name} report {} f", row.name),
                );
                close(
                    row.support as f64,
                    num(&w["support"]),
                    &format!("{name} report {} n", row.name),
                );
            }
            close(
                got.accuracy,
                num(&d["accuracy"]),
                &format!("{name} report accuracy"),
            );
            for (row, key) in [
                (&got.macro_avg, "macro avg"),
                (&got.weighted_avg, "weighted avg"),
            ] {
                close(
                    row.precision,
                    num(&d[key]["precision"]),
                    &format!("{name} {key} p"),
                );
                close(
                    row.recall,
                    num(&d[key]["recall"]),
                    &format!("{name} {key} r"),
                );
                close(
                    row.f1_score,
                    num(&d[key]["f1-score"]),
                    &format!("{name} {key} f"),
                );
            }
        }
    }
    assert!(prf_checked > 300, "only {prf_checked} PRF cases checked");
}

#[test]
fn multiclass_probability_metrics_match_sklearn() {
    let fx = fixture();
    for c in fx["multiclass_probs"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let y = ints(&c["y_true"]);
        let prob: Vec<f64> = c["y_prob"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(nums)
            .collect();
        let labels = c.get("labels").map(ints);
        let l = labels.as_deref();
        close(
            roc_auc_ovr(&y, &prob, l, OvrAverage::Macro).unwrap(),
            num(&c["roc_auc_ovr_macro"]),
            &format!("{name} ovr macro"),
        );
        close(
            roc_auc_ovr(&y, &prob, l, OvrAverage::Weighted).unwrap(),
            num(&c["roc_auc_ovr_weighted"]),
            &format!("{name} ovr weighted"),
        );
        if let Some(ap) = c.get("ap_macro") {
            close(
                average_precision_ovr(&y, &prob, l, OvrAverage::Macro).unwrap(),
                num(ap),
                &format!("{name} ap macro"),
            );
            close(
                average_precision_ovr(&y, &prob, l, OvrAverage::Weighted).unwrap(),
                num(&c["ap_weighted"]),
                &format!("{name} ap weighted"),
            );
        }
        close(
            log_loss_multiclass(&y, &prob, l).unwrap(),
            num(&c["log_loss"]),
            &format!("{name} log loss"),
        );
        close(
            brier_score_loss_multiclass(&y, &prob, l).unwrap(),
            num(&c["brier"]),
            &format!("{name} brier"),
        );
    }
}

#[test]
fn fixture_comes_from_the_pinned_sklearn() {
    assert_eq!(fixture()["sklearn_version"], "1.9.1");
}
