//! A bounded, seeded sample of the streamed training rows' features, for the
//! model's drift reference: bottom-k sampling, each row ranked by a hash of
//! (seed, machine, row), so the sample is the same whatever order the machines
//! arrive in and however they are chunked, and holds at most `capacity` rows.

use std::collections::BinaryHeap;

use ndarray::ArrayView1;
use vigil_metrics::DriftReference;

use crate::error::PipelineError;

/// Training rows kept for the drift reference: 42 features × 100,000 rows
/// are 34 MB while streaming; the reference itself keeps
/// [`REFERENCE_MAX_ROWS`](crate::drift::REFERENCE_MAX_ROWS) order statistics
/// of them (the same bound as the in-memory path's).
pub(crate) const DRIFT_SAMPLE_ROWS: usize = 100_000;

/// One kept row, ordered by its rank (ties broken by machine and row).
#[derive(Debug)]
struct Ranked {
    rank: (u64, u64, usize),
    values: Box<[f64]>,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// The `capacity` lowest-ranked rows offered so far.
#[derive(Debug)]
pub(crate) struct TrainSample {
    seed: u64,
    capacity: usize,
    /// A max-heap: the top is the first row to give up its place.
    kept: BinaryHeap<Ranked>,
}

impl TrainSample {
    pub(crate) fn new(seed: u64, capacity: usize) -> TrainSample {
        TrainSample {
            seed,
            capacity,
            kept: BinaryHeap::new(),
        }
    }

    /// Offers row `index` of the machine whose stream key is `machine`.
    /// The row's values are copied only when it is kept.
    pub(crate) fn offer(&mut self, machine: u64, index: usize, values: ArrayView1<'_, f64>) {
        let rank = (row_hash(self.seed, machine, index), machine, index);
        if self.kept.len() >= self.capacity {
            match self.kept.peek() {
                Some(top) if rank < top.rank => drop(self.kept.pop()),
                _ => return,
            }
        }
        self.kept.push(Ranked {
            rank,
            values: values.iter().copied().collect(),
        });
    }

    /// The drift reference of the kept rows (every feature numerical), cut
    /// to [`REFERENCE_MAX_ROWS`](crate::drift::REFERENCE_MAX_ROWS) order
    /// statistics like the in-memory path's.
    /// (The heap's order does not matter: each column is sorted.)
    pub(crate) fn reference(&self, names: &[String]) -> Result<DriftReference, PipelineError> {
        let columns: Vec<Vec<f64>> = (0..names.len())
            .map(|j| self.kept.iter().map(|r| r.values[j]).collect())
            .collect();
        crate::drift::reference_of_columns(names, &columns)
    }
}

/// SplitMix64's finaliser over the seed, the machine's key and the row.
fn row_hash(seed: u64, machine: u64, index: usize) -> u64 {
    let mut z = seed ^ machine.rotate_left(29) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(order: &[u64], capacity: usize) -> Vec<Vec<f64>> {
        let mut sample = TrainSample::new(7, capacity);
        for &machine in order {
            for index in 0..50 {
                sample.offer(
                    machine,
                    index,
                    ndarray::aview1(&[machine as f64, index as f64]),
                );
            }
        }
        assert!(sample.kept.len() <= capacity);
        let mut rows: Vec<Vec<f64>> = sample
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.values.to_vec())
            .collect();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        rows
    }

    #[test]
    fn the_sample_is_bounded_and_the_same_in_any_machine_order() {
        let forward = offered(&[1, 2, 3, 4], 60);
        assert_eq!(forward.len(), 60);
        assert_eq!(forward, offered(&[4, 2, 1, 3], 60));
        // Every machine is represented (50 rows each, 60 kept of 200).
        for m in 1..=4 {
            assert!(forward.iter().any(|r| r[0] == m as f64), "machine {m}");
        }
        // Below the capacity every row is kept.
        assert_eq!(offered(&[1, 2], 1_000).len(), 100);
    }

    #[test]
    fn the_reference_has_one_column_per_feature() {
        let mut sample = TrainSample::new(1, 10);
        for i in 0..40 {
            sample.offer(9, i, ndarray::aview1(&[i as f64, 2.0 * i as f64]));
        }
        let names = ["a".to_string(), "b".to_string()];
        let reference = sample.reference(&names).unwrap();
        let columns = reference.columns();
        assert_eq!(columns.len(), 2);
        assert_eq!(columns[0].name(), "a");
        assert_eq!(columns[0].sorted_values().len(), 10);
    }
}
