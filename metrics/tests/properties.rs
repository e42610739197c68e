//! Invariants that hold for any input (proptest).

use proptest::prelude::*;
use vigil_metrics::*;

/// Binary targets with both classes present, and scores with many ties.
fn binary_with_scores() -> impl Strategy<Value = (Vec<u8>, Vec<f64>)> {
    (2usize..200).prop_flat_map(|n| {
        (
            prop::collection::vec(0u8..2, n)
                .prop_filter("both classes", |y| y.contains(&0) && y.contains(&1)),
            prop::collection::vec((0i32..40).prop_map(|v| f64::from(v) / 40.0), n),
        )
    })
}

fn labels_pair() -> impl Strategy<Value = (Vec<u16>, Vec<u16>)> {
    (1usize..300).prop_flat_map(|n| {
        (
            prop::collection::vec(0u16..6, n),
            prop::collection::vec(0u16..6, n),
        )
    })
}

/// Exact AUC by counting pairs (O(n²)), ties counted one half.
fn pairwise_auc(y: &[u8], s: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &yi) in y.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            if yi == 1 && yj == 0 {
                den += 1.0;
                if s[i] > s[j] {
                    num += 1.0;
                } else if s[i] == s[j] {
                    num += 0.5;
                }
            }
        }
    }
    num / den
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn auc_is_invariant_under_increasing_transforms((y, s) in binary_with_scores()) {
        let auc = roc_auc_score(&y, &s).unwrap();
        let exp: Vec<f64> = s.iter().map(|v| (3.0 * v).exp() - 7.0).collect();
        let cube: Vec<f64> = s.iter().map(|v| v * v * v * 1e6 + 1.0).collect();
        prop_assert!((roc_auc_score(&y, &exp).unwrap() - auc).abs() < 1e-12);
        prop_assert!((roc_auc_score(&y, &cube).unwrap() - auc).abs() < 1e-12);
    }

    #[test]
    fn auc_of_flipped_scores_is_one_minus_auc((y, s) in binary_with_scores()) {
        let auc = roc_auc_score(&y, &s).unwrap();
        let flipped: Vec<f64> = s.iter().map(|v| 1.0 - v).collect();
        prop_assert!((roc_auc_score(&y, &flipped).unwrap() - (1.0 - auc)).abs() < 1e-12);
    }

    #[test]
    fn auc_equals_pair_counting_and_curve_area((y, s) in binary_with_scores()) {
        let auc = roc_auc_score(&y, &s).unwrap();
        prop_assert!((auc - pairwise_auc(&y, &s)).abs() < 1e-12);
        prop_assert!((roc_curve(&y, &s).unwrap().auc() - auc).abs() < 1e-12);
        let all = roc_curve_with(&y, &s, RocCurveOptions { drop_intermediate: false }).unwrap();
        prop_assert!((all.auc() - auc).abs() < 1e-12);
    }

    #[test]
    fn f1_lies_between_precision_and_recall((t, p) in labels_pair()) {
        for average in [Average::Micro, Average::Macro, Average::Weighted] {
            let per_class = precision_recall_fscore_support(&t, &p, &PrfParams::default()).unwrap();
            for i in 0..per_class.labels.len() {
                let (pr, re, f) = (per_class.precision[i], per_class.recall[i], per_class.f_score[i]);
                prop_assert!(f >= pr.min(re) - 1e-12 && f <= pr.max(re) + 1e-12);
            }
            let s = precision_recall_fscore(&t, &p, average, &PrfParams::default()).unwrap();
            prop_assert!((0.0..=1.0).contains(&s.f_score));
            if average == Average::Micro {
                prop_assert!(s.f_score >= s.precision.min(s.recall) - 1e-12);
                prop_assert!(s.f_score <= s.precision.max(s.recall) + 1e-12);
            }
        }
    }

    #[test]
    fn confusion_matrix_sums_to_n((t, p) in labels_pair()) {
        let cm = confusion_matrix(&t, &p, None).unwrap();
        prop_assert_eq!(cm.total(), t.len() as u64);
        prop_assert_eq!(cm.true_counts().iter().sum::<u64>(), t.len() as u64);
        let correct = cm.diagonal().iter().sum::<u64>() as f64 / t.len() as f64;
        prop_assert!((correct - accuracy_score(&t, &p).unwrap()).abs() < 1e-15);
    }

    #[test]
    fn pr_curve_is_well_formed((y, s) in binary_with_scores()) {
        let pr = precision_recall_curve(&y, &s).unwrap();
        prop_assert_eq!(pr.precision.len(), pr.thresholds.len() + 1);
        prop_assert!(pr.thresholds.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(pr.recall.windows(2).all(|w| w[0] >= w[1]));
        prop_assert_eq!(*pr.recall.last().unwrap(), 0.0);
        prop_assert_eq!(*pr.precision.last().unwrap(), 1.0);
        let ap = average_precision_score(&y, &s).unwrap();
        prop_assert!((0.0..=1.0).contains(&ap));
        let best = best_threshold_f1(&y, &s).unwrap();
        let pred: Vec<u8> = s.iter().map(|&v| u8::from(v >= best.threshold)).collect();
        let f1 = f1_score(&y, &pred, Average::binary()).unwrap();
        prop_assert!((f1 - best.f_score).abs() < 1e-12);
    }
}
