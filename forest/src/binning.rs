//! Feature binning: each column is cut once per forest into at most
//! [`MAX_BINS`] bins and stored as `u8` codes, column-major (a node's histogram
//! pass over one feature then reads one byte per row from one column), so that
//! every split search in every tree is a histogram over bytes.
//!
//! Bin `b` of a feature holds the values `v` with `edge[b-1] < v <= edge[b]`, where
//! the edges are real midpoints between neighbouring training values. A split "after
//! bin `b`" therefore means `v <= edge[b]` on raw data, so a fitted tree predicts on
//! unbinned rows. When a column has at most [`MAX_BINS`] distinct values the edges are
//! all midpoints, and splits are exactly those an exact (sorting) learner would find.

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::rng::{below, tree_rng};

/// Regular bins per feature; code [`NAN_BIN`] is reserved for missing values.
pub(crate) const MAX_BINS: usize = 255;
/// The code of a missing (NaN) value.
pub(crate) const NAN_BIN: u8 = 255;
/// Above this many rows, bin edges come from a seeded sample of the rows.
const EDGE_SAMPLE: usize = 1 << 17;

/// The binned training matrix.
#[derive(Debug)]
pub(crate) struct Binned {
    pub n_features: usize,
    /// `codes[f * n_rows + i]` is the bin of row `i` in feature `f` (column-major).
    pub codes: Vec<u8>,
    /// Rows per column (the training row count).
    pub n_rows: usize,
    /// `edges[f][b]` is the upper edge of bin `b` (there are `edges[f].len() + 1` bins).
    pub edges: Vec<Vec<f64>>,
}

impl Binned {
    #[cfg(test)]
    fn code(&self, row: usize, f: usize) -> u8 {
        self.codes[f * self.n_rows + row]
    }
}

/// Midpoint of two neighbouring values, kept strictly below `hi` as scikit-learn does.
pub(crate) fn midpoint(lo: f64, hi: f64) -> f64 {
    let m = lo / 2.0 + hi / 2.0;
    if m >= hi || m.is_infinite() { lo } else { m }
}

/// Bin edges for one feature from (a sample of) its non-missing values.
fn edges_for(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_unstable_by(f64::total_cmp);
    // Distinct values with their counts.
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for v in values.iter().copied() {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= MAX_BINS {
        return distinct
            .windows(2)
            .map(|w| midpoint(w[0].0, w[1].0))
            .collect();
    }
    // Quantile bins: close a bin once it holds its share of the values; a value that
    // alone exceeds the share gets a bin of its own.
    let total = values.len() as f64;
    let mut edges = Vec::with_capacity(MAX_BINS - 1);
    let mut seen = 0usize;
    for (j, w) in distinct.windows(2).enumerate() {
        seen += w[0].1;
        let bins_left = MAX_BINS - 1 - edges.len();
        let distinct_left = distinct.len() - 1 - j;
        let target = total * (edges.len() + 1) as f64 / MAX_BINS as f64;
        if bins_left > 0 && (seen as f64 >= target || distinct_left <= bins_left) {
            edges.push(midpoint(w[0].0, w[1].0));
        }
    }
    edges
}

/// Bins every column of `x` (the result does not depend on the thread count).
///
/// Both passes read `x` a row at a time: the edges come from a seeded sample of
/// rows copied out column by column, and the codes are computed in parallel
/// blocks of rows, each row searched against every feature's edges (all of which
/// fit in L2 cache), each block writing its stretch of every column. Reading `x`
/// column by column instead missed cache on every value of a row-major matrix.
pub(crate) fn bin_matrix(x: &ArrayView2<'_, f64>, seed: u64) -> Binned {
    let edges = sample_edges(x, seed);
    let padded = pad_edges(&edges);
    let (n_rows, n_features) = x.dim();
    let mut codes = vec![0u8; n_rows * n_features];
    encode_into(x, &padded, &mut codes, n_rows, 0);
    Binned {
        n_features,
        codes,
        n_rows,
        edges,
    }
}

/// Each feature's bin edges from a seeded sample of at most [`EDGE_SAMPLE`] rows
/// of `x` (all rows when there are fewer).
pub(crate) fn sample_edges(x: &ArrayView2<'_, f64>, seed: u64) -> Vec<Vec<f64>> {
    let (n_rows, n_features) = x.dim();
    let sample: Vec<usize> = if n_rows > EDGE_SAMPLE {
        // Partial Fisher-Yates: a seeded sample of rows without replacement, sorted for
        // cache-friendly reads.
        let mut rng = tree_rng(seed, 0xB1, 0);
        let mut idx: Vec<usize> = (0..n_rows).collect();
        for i in 0..EDGE_SAMPLE {
            let j = i + below(&mut rng, n_rows - i);
            idx.swap(i, j);
        }
        idx.truncate(EDGE_SAMPLE);
        idx.sort_unstable();
        idx
    } else {
        (0..n_rows).collect()
    };
    let mut columns: Vec<Vec<f64>> = vec![Vec::with_capacity(sample.len()); n_features];
    for &r in &sample {
        for (col, &v) in columns.iter_mut().zip(x.row(r).iter()) {
            if !v.is_nan() {
                col.push(v);
            }
        }
    }
    columns.into_par_iter().map(edges_for).collect()
}

/// Each feature's edges padded to [`MAX_BINS`] with +inf, for a branch-free search.
pub(crate) fn pad_edges(edges: &[Vec<f64>]) -> Vec<[f64; MAX_BINS]> {
    edges
        .iter()
        .map(|e| {
            let mut p = [f64::INFINITY; MAX_BINS];
            p[..e.len()].copy_from_slice(e);
            p
        })
        .collect()
}

/// The code of `v` against one feature's padded edges.
#[inline]
pub(crate) fn code_of(v: f64, padded: &[f64; MAX_BINS]) -> u8 {
    if v.is_nan() {
        return NAN_BIN;
    }
    // The number of edges below `v`.
    let mut pos = 0usize;
    for step in [128, 64, 32, 16, 8, 4, 2, 1] {
        pos += usize::from(padded[pos + step - 1] < v) * step;
    }
    pos as u8
}

/// Writes the codes of the rows of `x` into the column-major `codes` (columns of
/// `stride` rows), starting at row `offset` of each column, in parallel blocks.
pub(crate) fn encode_into(
    x: &ArrayView2<'_, f64>,
    padded: &[[f64; MAX_BINS]],
    codes: &mut [u8],
    stride: usize,
    offset: usize,
) {
    const BLOCK: usize = 4096;
    let n_rows = x.nrows();
    // blocks[b][f]: the stretch of column f that row block b writes.
    let mut blocks: Vec<Vec<&mut [u8]>> = (0..n_rows.div_ceil(BLOCK)).map(|_| Vec::new()).collect();
    for column in codes.chunks_mut(stride.max(1)) {
        let mine = &mut column[offset..offset + n_rows];
        for (block, stretch) in blocks.iter_mut().zip(mine.chunks_mut(BLOCK)) {
            block.push(stretch);
        }
    }
    blocks
        .into_par_iter()
        .enumerate()
        .for_each(|(block, mut out)| {
            let first = block * BLOCK;
            let n = out.first().map_or(0, |c| c.len());
            for j in 0..n {
                let row = x.row(first + j);
                for ((column, &v), padded) in out.iter_mut().zip(row.iter()).zip(padded) {
                    column[j] = code_of(v, padded);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn few_distinct_values_get_exact_midpoints() {
        assert_eq!(edges_for(vec![3.0, 1.0, 2.0, 1.0]), vec![1.5, 2.5]);
        assert!(edges_for(vec![5.0, 5.0]).is_empty());
    }

    #[test]
    fn many_distinct_values_get_at_most_max_bins() {
        let e = edges_for((0..10_000).map(f64::from).collect());
        assert_eq!(e.len(), MAX_BINS - 1);
        assert!(e.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn codes_agree_with_edges_on_raw_values() {
        let x = Array2::from_shape_fn((1000, 2), |(i, j)| {
            if j == 0 {
                (i * 7 % 1000) as f64
            } else if i % 10 == 0 {
                f64::NAN
            } else {
                (i % 3) as f64
            }
        });
        let b = bin_matrix(&x.view(), 1);
        for f in 0..2 {
            for i in 0..x.nrows() {
                let code = b.code(i, f);
                let v = x[[i, f]];
                if v.is_nan() {
                    assert_eq!(code, NAN_BIN);
                } else {
                    let e = &b.edges[f];
                    // v falls in bin `code`: above the previous edge, at or below its own.
                    assert!(code == 0 || v > e[code as usize - 1]);
                    assert!((code as usize) == e.len() || v <= e[code as usize]);
                }
            }
        }
    }
}
