//! Batch prediction plumbing: rows are scored in parallel chunks; each row's sum
//! over trees runs in tree order, so results do not depend on the thread count.

use ndarray::{ArrayView2, Axis, Slice};
use rayon::prelude::*;

/// Rows per parallel chunk: small enough to balance two threads on small inputs,
/// large enough that each tree's top levels stay in cache across the chunk.
const CHUNK: usize = 256;

/// Calls `f(rows, out)` for chunks of `x` in parallel, where `rows` is the chunk
/// row-major and `out` its `width` outputs per row.
pub(crate) fn for_row_chunks(
    x: &ArrayView2<'_, f64>,
    out: &mut [f64],
    width: usize,
    f: impl Fn(&[f64], &mut [f64]) + Sync,
) {
    for_row_chunks_indexed(x, out, width, |_, rows, out| f(rows, out));
}

/// As [`for_row_chunks`], also passing the index of the chunk's first row.
pub(crate) fn for_row_chunks_indexed(
    x: &ArrayView2<'_, f64>,
    out: &mut [f64],
    width: usize,
    f: impl Fn(usize, &[f64], &mut [f64]) + Sync,
) {
    let nf = x.ncols();
    let contiguous = x.as_slice();
    out.par_chunks_mut(CHUNK * width)
        .enumerate()
        .for_each(|(c, out)| {
            let first = c * CHUNK;
            let n = out.len() / width;
            match contiguous {
                Some(all) => f(first, &all[first * nf..(first + n) * nf], out),
                None => {
                    let block = x.slice_axis(Axis(0), Slice::from(first..first + n));
                    let rows: Vec<f64> = block.iter().copied().collect();
                    f(first, &rows, out)
                }
            }
        });
}
