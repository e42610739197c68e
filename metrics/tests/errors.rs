//! Bad input gets a typed error, never a panic.

use vigil_metrics::*;

#[test]
fn length_mismatch() {
    let e = roc_auc_score(&[0u8, 1, 1], &[0.1, 0.2]).unwrap_err();
    assert_eq!(
        e,
        MetricsError::LengthMismatch {
            left_name: "y_true",
            left: 3,
            right_name: "y_score",
            right: 2
        }
    );
    assert!(
        e.to_string()
            .contains("y_true has 3 elements but y_score has 2")
    );
    assert!(matches!(
        f1_score(&[0u8, 1], &[1], Average::Macro),
        Err(MetricsError::LengthMismatch { .. })
    ));
    assert!(matches!(
        log_loss(&[0u8], &[0.1, 0.2]),
        Err(MetricsError::LengthMismatch { .. })
    ));
}

#[test]
fn empty_input() {
    let none: [u8; 0] = [];
    assert!(matches!(
        roc_auc_score(&none, &[]),
        Err(MetricsError::EmptyInput { name: "y_true" })
    ));
    assert!(matches!(
        precision_recall_curve(&none, &[]),
        Err(MetricsError::EmptyInput { .. })
    ));
    assert!(matches!(
        accuracy_score(&none, &none),
        Err(MetricsError::EmptyInput { .. })
    ));
    assert!(matches!(
        classification_report(&none, &none, &ReportParams::default()),
        Err(MetricsError::EmptyInput { .. })
    ));
    assert!(matches!(
        brier_score_loss(&none, &[]),
        Err(MetricsError::EmptyInput { .. })
    ));
    assert!(matches!(
        auc(&[0.0], &[1.0]),
        Err(MetricsError::InvalidParameter { .. })
    ));
}

#[test]
fn non_finite_scores() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = roc_auc_score(&[0u8, 1, 1], &[0.1, bad, 0.3]).unwrap_err();
        assert!(
            matches!(
                e,
                MetricsError::NonFinite {
                    name: "y_score",
                    index: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            roc_curve(&[0u8, 1], &[bad, 0.3]),
            Err(MetricsError::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            average_precision_score(&[0u8, 1], &[0.2, bad]),
            Err(MetricsError::NonFinite { .. })
        ));
        assert!(matches!(
            log_loss(&[0u8, 1], &[0.2, bad]),
            Err(MetricsError::NonFinite { .. })
        ));
    }
}

#[test]
fn single_class_where_auc_needs_two() {
    let e = roc_auc_score(&[1u8, 1, 1], &[0.1, 0.2, 0.3]).unwrap_err();
    assert!(matches!(e, MetricsError::SingleClass { .. }));
    assert!(e.to_string().contains("only positives"), "{e}");
    assert!(matches!(
        roc_curve(&[0u8, 0], &[0.1, 0.2]),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        best_threshold_f1(&[0u8, 0], &[0.1, 0.2]),
        Err(MetricsError::SingleClass { .. })
    ));
    // One-vs-rest with a class that has no samples.
    let e = roc_auc_ovr(
        &[0u8, 1, 0],
        &[0.5, 0.3, 0.2, 0.2, 0.7, 0.1, 0.6, 0.3, 0.1],
        Some(&[0, 1, 2]),
        OvrAverage::Macro,
    )
    .unwrap_err();
    assert!(matches!(e, MetricsError::SingleClass { .. }), "{e}");
    assert!(e.to_string().contains("class 2"), "{e}");
}

#[test]
fn labels_outside_the_given_set() {
    let e = confusion_matrix(&[0u8, 1, 2], &[0, 1, 1], Some(&[0, 1])).unwrap_err();
    assert!(
        matches!(
            e,
            MetricsError::UnknownLabel {
                name: "y_true",
                index: 2,
                ..
            }
        ),
        "{e}"
    );
    let params = PrfParams {
        labels: Some(vec![0u8, 1]),
        ..PrfParams::default()
    };
    assert!(matches!(
        precision_recall_fscore(&[0u8, 1], &[0, 5], Average::Macro, &params),
        Err(MetricsError::UnknownLabel { name: "y_pred", .. })
    ));
    // Binary score metrics accept only 0/1 (or -1/1, or bool).
    let e = roc_auc_score(&[0i32, 1, 2], &[0.1, 0.2, 0.3]).unwrap_err();
    assert!(
        matches!(e, MetricsError::UnknownLabel { index: 2, .. }),
        "{e}"
    );
    assert!(matches!(
        roc_auc_score(&[0i32, 1, -1], &[0.1, 0.2, 0.3]),
        Err(MetricsError::UnknownLabel { .. })
    ));
    assert!(roc_auc_score(&[-1i32, 1, -1], &[0.1, 0.2, 0.3]).is_ok());
    assert!(roc_auc_score(&[false, true], &[0.1, 0.2]).is_ok());
    assert!(matches!(
        log_loss_multiclass(&[0u8, 3], &[0.5, 0.5, 0.5, 0.5], Some(&[0, 1])),
        Err(MetricsError::UnknownLabel { .. })
    ));
    assert!(matches!(
        confusion_matrix(&[0u8], &[0], Some(&[1, 1])),
        Err(MetricsError::InvalidLabels { .. })
    ));
}

#[test]
fn probabilities_outside_unit_interval() {
    let e = log_loss(&[0u8, 1], &[0.2, 1.5]).unwrap_err();
    assert_eq!(
        e,
        MetricsError::ProbabilityOutOfRange {
            name: "y_prob",
            index: 1,
            value: 1.5
        }
    );
    assert!(matches!(
        log_loss(&[0u8, 1], &[-0.1, 0.5]),
        Err(MetricsError::ProbabilityOutOfRange { index: 0, .. })
    ));
    assert!(matches!(
        brier_score_loss(&[0u8, 1], &[0.2, 1.01]),
        Err(MetricsError::ProbabilityOutOfRange { .. })
    ));
    assert!(matches!(
        log_loss_multiclass(
            &[0u8, 1, 2],
            &[0.2, 0.3, 0.5, 0.2, 0.3, 0.5, 0.1, 0.1, 0.1],
            None
        ),
        Err(MetricsError::ProbabilitiesDoNotSumToOne { row: 2, .. })
    ));
    assert!(matches!(
        roc_auc_ovr(
            &[0u8, 1, 2],
            &[0.2, 0.3, 0.5, 0.2, 0.3],
            None,
            OvrAverage::Macro
        ),
        Err(MetricsError::ShapeMismatch { .. })
    ));
}

#[test]
fn invalid_parameters() {
    assert!(matches!(
        fbeta_score(&[0u8, 1], &[0, 1], f64::NAN, Average::Macro),
        Err(MetricsError::InvalidParameter { .. })
    ));
    assert!(matches!(
        roc_auc_score_partial(&[0u8, 1], &[0.1, 0.2], 0.0),
        Err(MetricsError::InvalidParameter { .. })
    ));
    assert!(matches!(
        roc_auc_score_partial(&[0u8, 1], &[0.1, 0.2], 1.5),
        Err(MetricsError::InvalidParameter { .. })
    ));
    assert!(matches!(
        auc(&[0.0, 1.0, 0.5], &[0.0, 1.0, 1.0]),
        Err(MetricsError::InvalidParameter { .. })
    ));
    let report = ReportParams {
        target_names: Some(vec!["ok".into()]),
        ..ReportParams::default()
    };
    assert!(matches!(
        classification_report(&[0u8, 1], &[0, 1], &report),
        Err(MetricsError::InvalidLabels { .. })
    ));
}

#[test]
fn types_are_thread_safe() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<MetricsError>();
    is_send_sync::<ConfusionMatrix<u32>>();
    is_send_sync::<ClassificationReport>();
    is_send_sync::<RocCurve>();
    is_send_sync::<PrCurve>();
}

#[test]
fn report_serialises_and_prints_names() {
    let params = ReportParams {
        target_names: Some(vec!["healthy".into(), "failing".into()]),
        ..ReportParams::default()
    };
    let report = classification_report(&[0u8, 1, 1, 0], &[0, 1, 0, 0], &params).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("     healthy       0.67      1.00      0.80         2"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["classes"][1]["name"], "failing");
    assert_eq!(json["accuracy"], 0.75);
    let back: ClassificationReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}
