//! Why a machine was flagged: exact TreeSHAP values of the failure model's
//! probability (vigil-forest's path-dependent TreeSHAP, the game `shap`'s
//! `TreeExplainer` explains) — summarised over a sample of rows for the
//! pipeline's plots and `evaluate`'s comparison, and per sample as the
//! largest contributions `serve` returns.

use ndarray::{Array2, Axis};
use serde::Serialize;
use vigil_features::FeatureMatrix;
use vigil_forest::{ForestError, RandomForest, Samples};

use crate::bundle::FAILURE_CLASS;
use crate::error::PipelineError;

/// Rows of the test split the pipeline explains for its SHAP summary. A
/// sample, evenly spaced in time, because the summary's shape settles long
/// before every row is explained.
pub const DEFAULT_SHAP_ROWS: usize = 300;

/// One feature's mean |SHAP| over the explained rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureShap {
    /// The feature.
    pub feature: String,
    /// Mean absolute contribution to the failure probability.
    pub mean_abs_shap: f64,
}

/// The failure model explained over a sample of rows.
#[derive(Debug, Clone, Serialize)]
pub struct ShapSummary {
    /// The failure probability with no feature known (`expected_value`).
    pub expected_value: f64,
    /// Rows explained.
    pub rows: usize,
    /// Every feature, the largest mean |SHAP| first.
    pub features: Vec<FeatureShap>,
    /// The feature names, in model column order.
    #[serde(skip)]
    pub feature_names: Vec<String>,
    /// SHAP values, explained rows × features (model column order).
    #[serde(skip)]
    pub values: Array2<f64>,
    /// The explained rows' feature values, same shape.
    #[serde(skip)]
    pub feature_values: Array2<f64>,
}

impl ShapSummary {
    /// The `k` features with the largest mean |SHAP|.
    pub fn top(&self, k: usize) -> &[FeatureShap] {
        &self.features[..k.min(self.features.len())]
    }

    /// Mean |SHAP| of `feature`, if the model has it.
    pub fn mean_abs_of(&self, feature: &str) -> Option<f64> {
        self.features
            .iter()
            .find(|f| f.feature == feature)
            .map(|f| f.mean_abs_shap)
    }
}

/// `count` row indices spread evenly over `0..n` (all of them when
/// `count >= n`).
pub fn spread_rows(n: usize, count: usize) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    (0..count).map(|i| i * n / count).collect()
}

/// Explains the failure probability of `forest` on up to `max_rows` rows of
/// `features` (evenly spaced). `None` when there is nothing to explain: no
/// rows, a model without a failure class, or a model loaded from a format
/// without node covers (trained before explanations existed).
pub fn shap_summary(
    forest: &RandomForest,
    features: &FeatureMatrix,
    max_rows: usize,
) -> Result<Option<ShapSummary>, PipelineError> {
    let rows = spread_rows(features.nrows(), max_rows);
    if rows.is_empty() || !forest.classes().contains(&FAILURE_CLASS) {
        return Ok(None);
    }
    let feature_values = features.values.select(Axis(0), &rows);
    let samples = Samples::named(&feature_values, &features.names)?;
    let explanation = match forest.shap_values(samples, FAILURE_CLASS) {
        Ok(e) => e,
        Err(ForestError::NoCovers) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let n = rows.len() as f64;
    let mut ranked: Vec<FeatureShap> = features
        .names
        .iter()
        .zip(explanation.values.columns())
        .map(|(name, column)| FeatureShap {
            feature: name.clone(),
            mean_abs_shap: column.iter().map(|v| v.abs()).sum::<f64>() / n,
        })
        .collect();
    ranked.sort_by(|a, b| b.mean_abs_shap.total_cmp(&a.mean_abs_shap));
    Ok(Some(ShapSummary {
        expected_value: explanation.expected_value,
        rows: rows.len(),
        features: ranked,
        feature_names: features.names.clone(),
        values: explanation.values,
        feature_values,
    }))
}

/// One feature's part in one sample's failure probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// The feature.
    pub feature: String,
    /// The feature's value in the sample (`None`: missing).
    pub value: Option<f64>,
    /// Its SHAP value: what it adds to the failure probability.
    pub contribution: f64,
}

/// The `k` contributions of largest magnitude (ties in column order), from
/// one row's SHAP values and feature values in model column order.
pub fn top_contributions(
    names: &[String],
    shap: &[f64],
    values: &[f64],
    k: usize,
) -> Vec<Contribution> {
    let mut order: Vec<usize> = (0..names.len().min(shap.len()).min(values.len())).collect();
    order.sort_by(|&a, &b| shap[b].abs().total_cmp(&shap[a].abs()).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|j| Contribution {
            feature: names[j].clone(),
            value: values[j].is_finite().then_some(values[j]),
            contribution: shap[j],
        })
        .collect()
}

/// How one feature's mean |SHAP| moved from the champion to the challenger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapChange {
    /// The feature.
    pub feature: String,
    /// Mean |SHAP| under the champion (`None`: the champion lacks the feature).
    pub champion: Option<f64>,
    /// Mean |SHAP| under the challenger.
    pub challenger: f64,
}

/// The challenger's `k` top features by mean |SHAP|, each with the
/// champion's value on the same rows.
pub fn shap_change(champion: &ShapSummary, challenger: &ShapSummary, k: usize) -> Vec<ShapChange> {
    challenger
        .top(k)
        .iter()
        .map(|f| ShapChange {
            feature: f.feature.clone(),
            champion: champion.mean_abs_of(&f.feature),
            challenger: f.mean_abs_shap,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use vigil_forest::RandomForestParams;

    fn toy_features(rows: usize) -> (FeatureMatrix, Vec<u8>) {
        // Independent features: splitmix64 of (row, column).
        let values = Array2::from_shape_fn((rows, 3), |(i, j)| {
            let mut z = ((i * 3 + j) as u64)
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        });
        let y = values
            .rows()
            .into_iter()
            .map(|r| u8::from(r[0] + r[1] > 1.0))
            .collect();
        let features = FeatureMatrix {
            values,
            names: ["speed", "power", "vibration"].map(String::from).to_vec(),
            machine_ids: vec!["m".into()],
            machine: vec![0; rows],
            time: (0..rows as i64).collect(),
        };
        (features, y)
    }

    #[test]
    fn the_summary_adds_up_to_the_failure_probability_and_ranks_the_informative_features() {
        let (features, y) = toy_features(400);
        let params = RandomForestParams {
            n_estimators: 20,
            seed: 3,
            ..Default::default()
        };
        let forest = params
            .fit(
                Samples::named(&features.values, &features.names).unwrap(),
                &y,
            )
            .unwrap();
        let summary = shap_summary(&forest, &features, 50).unwrap().unwrap();
        assert_eq!(summary.rows, 50);
        assert_eq!(summary.values.dim(), (50, 3));
        let proba = forest.predict_proba(summary.feature_values.view()).unwrap();
        for (i, row) in summary.values.rows().into_iter().enumerate() {
            let total = summary.expected_value + row.sum();
            assert!(
                (total - proba[[i, 1]]).abs() < 1e-9,
                "row {i}: {total} vs {}",
                proba[[i, 1]]
            );
        }
        // The label depends on speed and power only.
        let top: Vec<&str> = summary.top(2).iter().map(|f| f.feature.as_str()).collect();
        assert!(top.contains(&"speed") && top.contains(&"power"), "{top:?}");
        assert!(shap_summary(&forest, &features, 0).unwrap().is_none());
    }

    #[test]
    fn spread_rows_are_even_distinct_and_bounded() {
        assert_eq!(spread_rows(10, 4), vec![0, 2, 5, 7]);
        assert_eq!(spread_rows(3, 10), vec![0, 1, 2]);
        assert!(spread_rows(0, 5).is_empty());
        let rows = spread_rows(100_003, 500);
        assert_eq!(rows.len(), 500);
        assert!(rows.windows(2).all(|w| w[0] < w[1]) && rows[499] < 100_003);
    }

    #[test]
    fn top_contributions_rank_by_magnitude_and_mark_missing_values() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let top = top_contributions(
            &names,
            &[0.1, -0.4, 0.4, 0.0],
            &[1.0, f64::NAN, 3.0, 4.0],
            3,
        );
        let features: Vec<&str> = top.iter().map(|c| c.feature.as_str()).collect();
        assert_eq!(features, ["b", "c", "a"]);
        assert_eq!(top[0].value, None);
        assert_eq!(top[1].value, Some(3.0));
        assert_eq!(top[0].contribution, -0.4);
        assert!(top_contributions(&names, &[0.0; 4], &[0.0; 4], 0).is_empty());
    }
}
