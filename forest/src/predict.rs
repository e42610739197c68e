//! Batch prediction plumbing.
//!
//! Rows are split into tasks scored in parallel. Within a task, trees are taken a
//! block at a time, and every group of [`GROUP_ROWS`] rows walks each tree of the
//! block before the next group starts. Each row's sum over trees runs in tree
//! order, so results do not depend on the thread count or on the task size.
//!
//! Why blocks: a deep tree's nodes are tens of kilobytes, a forest's megabytes. A
//! task that walked its rows through all trees, one tree after the other, would
//! fetch every tree from far memory again for each task. A block of trees small
//! enough for the core's own cache instead serves all the task's rows, and a group
//! of rows stays in the nearest cache while it walks the block. On deep trees this
//! beat one tree at a time, and 4,096-row tasks beat smaller and larger ones. Small
//! Isolation Trees (those the heap layout of [`crate::heap`] does not take) gain
//! nothing, but groups of 64 rows keep them as fast as before (groups of 8 cost
//! them per-call overhead).
//!
//! Within a task, every tree after the first walks the rows sorted by the leaf they
//! reach in the first tree (see [`walk_in_blocks`]): faster on the same forest,
//! with identical results. (Measurements: see benches/RESULTS.md, forest section.)

use ndarray::{ArrayView2, Axis, Slice};
use rayon::prelude::*;

use crate::tree::{LOCKSTEP, Walk, for_each_leaf};

/// Most rows in one task.
const MAX_TASK_ROWS: usize = 4096;
/// Most bytes of row values in one task (wide rows give smaller tasks).
const MAX_TASK_BYTES: usize = 3 << 19;
/// Rows that walk a block of trees together (21 KB of rows of 42 features: within L1).
const GROUP_ROWS: usize = 8 * LOCKSTEP;
/// Tasks per thread to aim for, so threads finish together on small inputs.
const TASKS_PER_THREAD: usize = 4;
/// Node bytes in one block of trees (at least one tree per block): about half a
/// core's L2 cache on current x86 and ARM server parts.
const BLOCK_BYTES: usize = 256 << 10;

/// Rows per task for `n_rows` rows of `n_features` values.
fn task_rows(n_rows: usize, n_features: usize) -> usize {
    let balanced = n_rows.div_ceil(TASKS_PER_THREAD * rayon::current_num_threads());
    let by_bytes = MAX_TASK_BYTES / (n_features * size_of::<f64>()).max(1);
    balanced.min(by_bytes).clamp(LOCKSTEP, MAX_TASK_ROWS)
}

/// Calls `f(rows, out)` for tasks over `x` in parallel, where `rows` is the
/// task's rows, row-major, and `out` its `width` outputs per row.
pub(crate) fn for_row_tasks(
    x: &ArrayView2<'_, f64>,
    out: &mut [f64],
    width: usize,
    f: impl Fn(&[f64], &mut [f64]) + Sync,
) {
    for_row_tasks_indexed(x, out, width, |_, rows, out| f(rows, out));
}

/// As [`for_row_tasks`], also passing the index of the task's first row.
pub(crate) fn for_row_tasks_indexed(
    x: &ArrayView2<'_, f64>,
    out: &mut [f64],
    width: usize,
    f: impl Fn(usize, &[f64], &mut [f64]) + Sync,
) {
    let nf = x.ncols();
    let task = task_rows(x.nrows(), nf);
    let contiguous = x.as_slice();
    if x.nrows() <= task {
        // One task: run it here. Handing it to the pool would only add a
        // thread wake-up per call (a serving loop's small batches).
        if let Some(all) = contiguous {
            f(0, all, out);
            return;
        }
    }
    out.par_chunks_mut(task * width)
        .enumerate()
        .for_each(|(c, out)| {
            let first = c * task;
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

/// Walks every row of `rows` (row-major, `n_features` values each) through trees
/// `0..n_trees` (tree `t` prepared as `walk_of(t)`) and calls `visit(t, i, payload)`
/// with the payload of the leaf row `i` falls in (see [`Walk::new`]). For each row,
/// trees are visited in their order; rows are not visited in their order.
pub(crate) fn for_each_leaf_in_forest<'a>(
    n_trees: usize,
    walk_of: impl Fn(usize) -> &'a Walk,
    rows: &[f64],
    n_features: usize,
    visit: impl FnMut(usize, usize, u64),
) {
    walk_in_blocks(n_trees, walk_of, rows, n_features, BLOCK_BYTES, visit);
}

/// [`for_each_leaf_in_forest`] with blocks of at most `block_bytes` of nodes.
///
/// The first tree is walked on the rows as given; the other trees walk a copy of
/// the rows sorted by the leaf each row reached in the first tree. Rows that share
/// a leaf of one tree are alike in the features it split on, so in the other trees
/// they tend to share most of their path too: the walks stepped in lockstep end
/// closer together (fewer wasted lockstep steps, see benches/RESULTS.md, forest section), and they read the same nodes.
fn walk_in_blocks<'a>(
    n_trees: usize,
    walk_of: impl Fn(usize) -> &'a Walk,
    rows: &[f64],
    n_features: usize,
    block_bytes: usize,
    mut visit: impl FnMut(usize, usize, u64),
) {
    if n_trees == 0 || n_features == 0 {
        return;
    }
    let has_nan = rows.iter().any(|v| v.is_nan());
    // (leaf node in the first tree, row): sorted, the order the other trees use.
    let first_tree = walk_of(0);
    let mut order: Vec<(u32, usize)> = Vec::with_capacity(rows.len() / n_features);
    for_each_leaf(first_tree, rows, n_features, has_nan, |i, leaf| {
        visit(0, i, first_tree.payload(leaf));
        order.push((leaf, i));
    });
    order.sort_unstable();
    let mut sorted = Vec::with_capacity(order.len() * n_features);
    for &(_, i) in &order {
        sorted.extend_from_slice(&rows[i * n_features..(i + 1) * n_features]);
    }
    let mut start = 1;
    while start < n_trees {
        // The block: trees from `start` while their nodes fit in `block_bytes`.
        let mut end = start + 1;
        let mut bytes = walk_of(start).bytes();
        while end < n_trees && bytes + walk_of(end).bytes() <= block_bytes {
            bytes += walk_of(end).bytes();
            end += 1;
        }
        for (g, group) in sorted.chunks(n_features * GROUP_ROWS).enumerate() {
            let first = g * GROUP_ROWS;
            for t in start..end {
                let walk = walk_of(t);
                for_each_leaf(walk, group, n_features, has_nan, |i, leaf| {
                    visit(t, order[first + i].1, walk.payload(leaf))
                });
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RandomForestParams;
    use crate::tree::find_leaf;
    use ndarray::Array2;

    #[test]
    fn every_blocking_visits_each_row_once_per_tree_in_tree_order() {
        // 150 rows (groups of 64 and a remainder), some with NaN; 12 trees.
        let n = 150;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| {
            if (i + j) % 11 == 0 {
                f64::NAN
            } else {
                ((i * 7 + j * 13) % 29) as f64
            }
        });
        let y: Vec<usize> = (0..n).map(|i| usize::from((i * 7) % 29 > 14)).collect();
        let params = RandomForestParams {
            n_estimators: 12,
            seed: 3,
            ..Default::default()
        };
        let model = params.fit(x.view(), &y).unwrap();
        let trees = &model.trees;
        // Walks whose leaves report their row in `values` (the model's own walks
        // carry the probabilities instead).
        let walks: Vec<Walk> = trees
            .iter()
            .map(|t| Walk::new(&t.nodes, |_, leaf| u64::from(leaf.child)))
            .collect();
        let rows = x.as_slice().unwrap();
        let largest = walks.iter().map(|w| w.bytes()).max().unwrap();
        // One tree per block, a few per block, all in one block.
        for block_bytes in [1, 3 * largest, usize::MAX] {
            let mut next_tree = vec![0; n];
            walk_in_blocks(
                trees.len(),
                |t| &walks[t],
                rows,
                3,
                block_bytes,
                |t, i, leaf| {
                    assert_eq!(t, next_tree[i], "row {i} visits tree {t} out of order");
                    next_tree[i] += 1;
                    let expected = find_leaf(&trees[t].nodes, &rows[i * 3..i * 3 + 3]).child;
                    assert_eq!(leaf, u64::from(expected), "tree {t}, row {i}");
                },
            );
            assert!(next_tree.iter().all(|&v| v == trees.len()));
        }
    }

    #[test]
    fn tasks_are_bounded_and_never_empty() {
        assert_eq!(task_rows(0, 42), LOCKSTEP);
        assert_eq!(task_rows(10_000_000, 42), MAX_TASK_ROWS);
        assert_eq!(task_rows(10_000_000, 100_000), LOCKSTEP);
        assert!(task_rows(10_000_000, 1_000) * 1_000 * 8 <= MAX_TASK_BYTES);
    }
}
