//! Permutation importance: how much accuracy drops when one feature's values are
//! shuffled (scikit-learn's `permutation_importance` with the default scorer).

use rayon::prelude::*;

use crate::error::{ForestError, Result, invalid};
use crate::labels::Labels;
use crate::random_forest::{RandomForest, argmax};
use crate::rng::{below, tree_rng};
use crate::samples::{Samples, check_predict_x};

/// Result of [`permutation_importance`].
#[derive(Clone, Debug, PartialEq)]
pub struct PermutationImportance {
    /// Accuracy on the unshuffled data.
    pub baseline: f64,
    /// Mean accuracy drop per feature.
    pub importances_mean: Vec<f64>,
    /// Standard deviation (population, as numpy's default) of the drop per feature.
    pub importances_std: Vec<f64>,
    /// `importances[feature][repeat]`: every drop measured.
    pub importances: Vec<Vec<f64>>,
}

/// For each feature, shuffles its column `n_repeats` times and records the drop in
/// accuracy of `model` on (`x`, `y`). Runs in parallel over (feature, repeat) pairs;
/// the result depends only on `seed`.
pub fn permutation_importance<'a, L: Labels + ?Sized>(
    model: &RandomForest,
    x: impl Into<Samples<'a>>,
    y: &L,
    n_repeats: usize,
    seed: u64,
) -> Result<PermutationImportance> {
    let samples = x.into();
    check_predict_x(&samples, model.n_features())?;
    let x = samples.view();
    let labels = y.to_usize_labels()?;
    if labels.len() != x.nrows() {
        return Err(ForestError::LengthMismatch {
            x_rows: x.nrows(),
            y_len: labels.len(),
        });
    }
    if x.nrows() == 0 {
        return Err(ForestError::EmptyData {
            rows: 0,
            columns: x.ncols(),
        });
    }
    if n_repeats == 0 {
        return Err(invalid("n_repeats", 0, "must be at least 1"));
    }
    let baseline = model.score(samples, &*labels)?;
    let nf = model.n_features();
    let n = x.nrows();
    let drops: Vec<f64> = (0..nf * n_repeats)
        .into_par_iter()
        .map(|job| {
            let (feature, repeat) = (job / n_repeats, job % n_repeats);
            let mut rng = tree_rng(seed, 3 + feature as u64, repeat);
            let mut perm: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                perm.swap(i, below(&mut rng, i + 1));
            }
            let mut row = vec![0.0; nf];
            let mut proba = vec![0.0; model.classes().len()];
            let mut hits = 0usize;
            for r in 0..n {
                for (v, src) in row.iter_mut().zip(x.row(r)) {
                    *v = *src;
                }
                row[feature] = x[[perm[r], feature]];
                // Rows were checked above, so this cannot fail.
                if model.predict_proba_row_into(&row, &mut proba).is_ok()
                    && model.classes()[argmax(&proba)] == labels[r]
                {
                    hits += 1;
                }
            }
            baseline - hits as f64 / n as f64
        })
        .collect();
    let importances: Vec<Vec<f64>> = drops.chunks(n_repeats).map(<[f64]>::to_vec).collect();
    let importances_mean: Vec<f64> = importances
        .iter()
        .map(|d| d.iter().sum::<f64>() / d.len() as f64)
        .collect();
    let importances_std = importances
        .iter()
        .zip(&importances_mean)
        .map(|(d, m)| (d.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / d.len() as f64).sqrt())
        .collect();
    Ok(PermutationImportance {
        baseline,
        importances_mean,
        importances_std,
        importances,
    })
}
