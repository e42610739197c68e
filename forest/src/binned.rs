//! Fitting on bin codes instead of an `f64` matrix: for training sets larger
//! than memory, built a chunk (e.g. a machine) at a time.
//!
//! A Random Forest only ever looks at each value's bin (see `binning`), so a
//! caller that cannot hold the full `f64` matrix can fix the bin edges first
//! ([`BinEdges::from_sample`], from a sample of rows), then append each chunk's
//! rows as one byte per value ([`BinnedBuilder::push_rows`]) and fit on the
//! result ([`RandomForestParams::fit_binned`](crate::RandomForestParams::fit_binned)):
//! 1 byte per value instead of 8. The model's thresholds are the edges
//! themselves, so it predicts on raw rows as any other model does.
//!
//! Fitting on codes splits every node on bins; [`fit`](crate::RandomForestParams::fit)
//! on an `f64` matrix splits nodes of at most 2048 rows on their raw values
//! instead, so the two give different (similar) forests. Built from the same
//! edges, the codes do not depend on how the rows were chunked, and neither
//! does the forest.

use std::ops::Range;

use ndarray::Array2;

use crate::binning::{Binned, MAX_BINS, NAN_BIN, encode_into, pad_edges, sample_edges};
use crate::error::{ForestError, Result};
use crate::samples::{MAX_FEATURES, MAX_ROWS, Samples, check_finite_or_nan, check_training_x};

/// Each feature's bin edges: at most 254 per feature (255 bins, plus one for
/// missing values), the quantile midpoints `fit` would cut the same rows at.
///
/// ```
/// use ndarray::Array2;
/// use vigil_forest::{BinEdges, BinnedBuilder, RandomForestParams};
///
/// let x = Array2::from_shape_fn((600, 3), |(i, j)| ((i * 7 + j * 13) % 97) as f64 / 97.0);
/// let y: Vec<u8> = x.rows().into_iter().map(|r| u8::from(r[0] + r[1] > 1.0)).collect();
/// let edges = BinEdges::from_sample(&x, 7)?;
/// // Append the rows in chunks, as a stream of machines would.
/// let mut builder = BinnedBuilder::new(edges);
/// for chunk in x.axis_chunks_iter(ndarray::Axis(0), 250) {
///     builder.push_rows(chunk)?;
/// }
/// let binned = builder.finish();
/// assert_eq!(binned.n_rows(), 600);
/// let params = RandomForestParams { n_estimators: 20, seed: 7, ..Default::default() };
/// let model = params.fit_binned(&binned, &y, None, &|_, _| {})?;
/// assert!(model.score(&x, &y)? > 0.95);
/// # Ok::<(), vigil_forest::ForestError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BinEdges {
    edges: Vec<Vec<f64>>,
}

impl BinEdges {
    /// The edges `fit` with this `seed` would use for `x`: from a seeded sample
    /// of at most 131,072 rows (all rows when there are fewer). Errors: an empty
    /// `x`, an infinite value.
    pub fn from_sample<'a>(x: impl Into<Samples<'a>>, seed: u64) -> Result<BinEdges> {
        let x = x.into();
        check_training_x(&x)?;
        Ok(BinEdges {
            edges: sample_edges(&x.view(), seed),
        })
    }

    /// Features.
    pub fn n_features(&self) -> usize {
        self.edges.len()
    }

    /// Feature `f`'s edges, ascending (`None` past the last feature).
    pub fn edges(&self, f: usize) -> Option<&[f64]> {
        self.edges.get(f).map(Vec::as_slice)
    }
}

/// Rows appended a chunk at a time as bin codes; [`finish`](Self::finish) gives
/// the [`BinnedSamples`] to fit on.
#[derive(Debug, Clone)]
pub struct BinnedBuilder {
    edges: BinEdges,
    padded: Vec<[f64; MAX_BINS]>,
    /// One column of codes per feature.
    columns: Vec<Vec<u8>>,
    n_rows: usize,
}

impl BinnedBuilder {
    /// An empty builder for rows binned at `edges`.
    pub fn new(edges: BinEdges) -> BinnedBuilder {
        let padded = pad_edges(&edges.edges);
        let columns = vec![Vec::new(); edges.n_features()];
        BinnedBuilder {
            edges,
            padded,
            columns,
            n_rows: 0,
        }
    }

    /// Rows so far.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Appends the rows of `x` (NaN = missing). Errors, with nothing appended:
    /// another feature count than the edges', an infinite value (its row counted
    /// within `x`), more than 2^32 − 1 rows in all.
    pub fn push_rows<'a>(&mut self, x: impl Into<Samples<'a>>) -> Result<()> {
        let x = x.into();
        let view = x.view();
        if view.ncols() != self.edges.n_features() {
            return Err(ForestError::FeatureCountMismatch {
                expected: self.edges.n_features(),
                found: view.ncols(),
            });
        }
        check_finite_or_nan(&x)?;
        let total = self.n_rows + view.nrows();
        if total > MAX_ROWS {
            return Err(ForestError::TooLarge {
                what: "rows",
                value: total,
                max: MAX_ROWS,
            });
        }
        let n = view.nrows();
        let mut chunk = vec![0u8; n * self.columns.len()];
        encode_into(&view, &self.padded, &mut chunk, n, 0);
        for (column, codes) in self.columns.iter_mut().zip(chunk.chunks(n.max(1))) {
            column.extend_from_slice(codes);
        }
        self.n_rows = total;
        Ok(())
    }

    /// The binned rows, column-major in one buffer (each column is freed as it
    /// is copied, so the peak stays near one copy).
    pub fn finish(self) -> BinnedSamples {
        let n_rows = self.n_rows;
        let mut codes = Vec::with_capacity(n_rows * self.columns.len());
        for column in self.columns {
            codes.extend_from_slice(&column);
        }
        BinnedSamples {
            binned: Binned {
                n_features: self.edges.n_features(),
                codes,
                n_rows,
                edges: self.edges.edges,
            },
        }
    }
}

/// A training matrix as bin codes (1 byte per value), for
/// [`RandomForestParams::fit_binned`](crate::RandomForestParams::fit_binned).
#[derive(Debug)]
pub struct BinnedSamples {
    pub(crate) binned: Binned,
}

impl BinnedSamples {
    /// All rows of `x` binned at `edges` (what a [`BinnedBuilder`] fed the same
    /// rows in any chunks gives).
    pub fn from_matrix<'a>(x: impl Into<Samples<'a>>, edges: BinEdges) -> Result<BinnedSamples> {
        let mut builder = BinnedBuilder::new(edges);
        builder.push_rows(x)?;
        Ok(builder.finish())
    }

    /// Rows.
    pub fn n_rows(&self) -> usize {
        self.binned.n_rows
    }

    /// Features.
    pub fn n_features(&self) -> usize {
        self.binned.n_features
    }

    /// Bytes the codes take.
    pub fn code_bytes(&self) -> usize {
        self.binned.codes.len()
    }

    /// The bin code of `row` in feature `f` (255 = missing), `None` out of range.
    pub fn code(&self, row: usize, f: usize) -> Option<u8> {
        if row >= self.binned.n_rows || f >= self.binned.n_features {
            return None;
        }
        self.binned.codes.get(f * self.binned.n_rows + row).copied()
    }

    /// The bin codes of feature `f`, one per row (255 = missing); `None` out of
    /// range.
    pub fn column(&self, f: usize) -> Option<&[u8]> {
        let n = self.binned.n_rows;
        (f < self.binned.n_features).then(|| self.binned.codes.get(f * n..(f + 1) * n))?
    }

    /// `self`'s rows followed by `other`'s. Errors: other edges.
    pub fn concat(self, other: BinnedSamples) -> Result<BinnedSamples> {
        if self.binned.edges != other.binned.edges {
            return Err(ForestError::InvalidParameter {
                name: "other",
                value: format!("{} rows binned at other edges", other.n_rows()),
                reason: "both sets must be binned at the same edges",
            });
        }
        let (a, b) = (&self.binned, &other.binned);
        let n_rows = a.n_rows + b.n_rows;
        if n_rows > MAX_ROWS || a.n_features > MAX_FEATURES {
            return Err(ForestError::TooLarge {
                what: "rows",
                value: n_rows,
                max: MAX_ROWS,
            });
        }
        let mut codes = Vec::with_capacity(n_rows * a.n_features);
        for f in 0..a.n_features {
            codes.extend_from_slice(&a.codes[f * a.n_rows..(f + 1) * a.n_rows]);
            codes.extend_from_slice(&b.codes[f * b.n_rows..(f + 1) * b.n_rows]);
        }
        Ok(BinnedSamples {
            binned: Binned {
                n_features: a.n_features,
                codes,
                n_rows,
                edges: other.binned.edges,
            },
        })
    }

    /// Rows `rows` as `f64` values that fall in the same bins: a bin's upper
    /// edge (`f64::MAX` for the last bin, NaN for missing). A forest fitted on
    /// these codes splits only at edges, so it predicts on them exactly as on
    /// the rows the codes came from. `rows` is clamped to the rows there are.
    pub fn representatives(&self, rows: Range<usize>) -> Array2<f64> {
        let b = &self.binned;
        let start = rows.start.min(b.n_rows);
        let end = rows.end.clamp(start, b.n_rows);
        Array2::from_shape_fn((end - start, b.n_features), |(i, f)| {
            let code = b.codes[f * b.n_rows + start + i];
            let edges = &b.edges[f];
            match code {
                NAN_BIN => f64::NAN,
                c => edges.get(usize::from(c)).copied().unwrap_or(f64::MAX),
            }
        })
    }
}
