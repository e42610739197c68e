//! Class labels: which types can be labels, and how a label set is resolved.

use std::collections::BTreeSet;
use std::fmt::Debug;

use crate::error::{MetricsError, Result};

/// A type usable as a class label: the integer types and `bool`.
///
/// Labels are compared through [`Label::to_i128`], which preserves each
/// type's own order, so label sets sort the way scikit-learn sorts them.
/// For string classes, map them to indices and pass their names to
/// [`ClassificationReport`](crate::ClassificationReport) as target names.
///
/// For binary metrics (ROC, precision–recall, log loss, ...) the positive class
/// is `1` (or `true`) and the negative class is `0` or `-1` (or `false`).
pub trait Label: Copy + Ord + Debug + Send + Sync + 'static {
    /// The label as a wide integer (order-preserving).
    fn to_i128(self) -> i128;
    /// The conventional positive label: `1` or `true`.
    fn positive() -> Self;
}

macro_rules! impl_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            #[inline]
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline]
            fn positive() -> Self {
                1
            }
        }
    )*};
}
impl_label!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Label for bool {
    #[inline]
    fn to_i128(self) -> i128 {
        i128::from(self)
    }
    #[inline]
    fn positive() -> Self {
        true
    }
}

/// Formats a label list for error messages, eliding the middle of long lists.
pub(crate) fn format_labels<L: Label>(labels: &[L]) -> String {
    if labels.len() <= 10 {
        format!("{labels:?}")
    } else {
        let head: Vec<String> = labels[..5].iter().map(|l| format!("{l:?}")).collect();
        let tail: Vec<String> = labels[labels.len() - 3..]
            .iter()
            .map(|l| format!("{l:?}"))
            .collect();
        format!(
            "[{}, ... ({} labels) ..., {}]",
            head.join(", "),
            labels.len(),
            tail.join(", ")
        )
    }
}

/// Maps labels to their position in a label list.
///
/// Small integer ranges use a dense lookup table (one array read per sample,
/// which keeps a 10-million-sample confusion matrix memory-bound); otherwise a
/// binary search over the sorted labels.
#[derive(Debug)]
pub(crate) struct LabelIndex<L: Label> {
    labels: Vec<L>,
    lookup: Lookup,
}

#[derive(Debug)]
enum Lookup {
    /// `table[label - min]` is the position plus one (0 = not a label).
    Dense { min: i128, table: Vec<u32> },
    /// Sorted `(label, position)` pairs.
    Sorted(Vec<(i128, usize)>),
}

/// Largest label range served by a dense lookup table.
const DENSE_RANGE: i128 = 1 << 20;

impl<L: Label> LabelIndex<L> {
    /// Index over an explicit label list (order kept, duplicates rejected).
    pub(crate) fn new(labels: Vec<L>) -> Result<Self> {
        if labels.is_empty() {
            return Err(MetricsError::InvalidLabels {
                reason: "the label list is empty".into(),
            });
        }
        let mut sorted: Vec<(i128, usize)> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.to_i128(), i))
            .collect();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(MetricsError::InvalidLabels {
                reason: format!("label {:?} appears more than once", labels[w[0].1]),
            });
        }
        let min = sorted[0].0;
        let max = sorted[sorted.len() - 1].0;
        let lookup = if max - min < DENSE_RANGE {
            let mut table = vec![0u32; (max - min + 1) as usize];
            for &(value, pos) in &sorted {
                table[(value - min) as usize] = pos as u32 + 1;
            }
            Lookup::Dense { min, table }
        } else {
            Lookup::Sorted(sorted)
        };
        Ok(Self { labels, lookup })
    }

    /// Index over the sorted union of labels found in the inputs.
    pub(crate) fn from_data(inputs: &[&[L]]) -> Result<Self> {
        let labels = unique_sorted(inputs);
        if labels.is_empty() {
            return Err(MetricsError::EmptyInput { name: "y_true" });
        }
        Self::new(labels)
    }

    /// The labels, in index order.
    pub(crate) fn labels(&self) -> &[L] {
        &self.labels
    }

    /// Number of labels.
    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    /// Position of `label`, or `None` when it is not in the set.
    #[inline]
    pub(crate) fn position(&self, label: L) -> Option<usize> {
        let value = label.to_i128();
        match &self.lookup {
            Lookup::Dense { min, table } => {
                let offset = value.checked_sub(*min)?;
                if offset < 0 {
                    return None;
                }
                match table.get(usize::try_from(offset).ok()?) {
                    Some(&p) if p > 0 => Some(p as usize - 1),
                    _ => None,
                }
            }
            Lookup::Sorted(sorted) => sorted
                .binary_search_by(|&(v, _)| v.cmp(&value))
                .ok()
                .map(|i| sorted[i].1),
        }
    }

    /// Encodes `values` as positions, failing on the first unknown label.
    pub(crate) fn encode(&self, name: &'static str, values: &[L]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(values.len());
        for (index, &v) in values.iter().enumerate() {
            match self.position(v) {
                Some(p) => out.push(p as u32),
                None => return Err(self.unknown(name, index, v)),
            }
        }
        Ok(out)
    }

    /// The error for an unknown label.
    pub(crate) fn unknown(&self, name: &'static str, index: usize, label: L) -> MetricsError {
        MetricsError::UnknownLabel {
            name,
            index,
            label: format!("{label:?}"),
            allowed: format_labels(&self.labels),
        }
    }
}

/// Sorted distinct labels over several inputs.
pub(crate) fn unique_sorted<L: Label>(inputs: &[&[L]]) -> Vec<L> {
    // Fast path: a small integer range is counted in a bitmap.
    let mut min = i128::MAX;
    let mut max = i128::MIN;
    for input in inputs {
        for &v in input.iter() {
            let x = v.to_i128();
            min = min.min(x);
            max = max.max(x);
        }
    }
    if min > max {
        return Vec::new();
    }
    if max - min < DENSE_RANGE {
        let mut seen: Vec<Option<L>> = vec![None; (max - min + 1) as usize];
        for input in inputs {
            for &v in input.iter() {
                seen[(v.to_i128() - min) as usize] = Some(v);
            }
        }
        seen.into_iter().flatten().collect()
    } else {
        let set: BTreeSet<L> = inputs.iter().flat_map(|s| s.iter().copied()).collect();
        set.into_iter().collect()
    }
}

/// Reads a binary target: `1`/`true` is positive, `0`/`-1`/`false` negative.
///
/// Mixing `0` and `-1` as negatives is rejected, as is any other value.
#[derive(Debug)]
pub(crate) struct BinaryTarget {
    negative: Option<i128>,
}

impl BinaryTarget {
    pub(crate) fn new() -> Self {
        Self { negative: None }
    }

    /// Whether `label` at `index` is positive, or an error naming it.
    #[inline]
    pub(crate) fn is_positive<L: Label>(
        &mut self,
        name: &'static str,
        index: usize,
        label: L,
    ) -> Result<bool> {
        let v = label.to_i128();
        if v == 1 {
            return Ok(true);
        }
        if v == 0 || v == -1 {
            match self.negative {
                None => {
                    self.negative = Some(v);
                    return Ok(false);
                }
                Some(n) if n == v => return Ok(false),
                Some(_) => {}
            }
        }
        Err(MetricsError::UnknownLabel {
            name,
            index,
            label: format!("{label:?}"),
            allowed: match self.negative {
                Some(-1) => "[-1, 1] (binary target)".into(),
                _ => "[0, 1] (binary target)".into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sorted_lookups_agree() {
        let dense = LabelIndex::new(vec![5i64, -2, 9]).unwrap();
        let sparse = LabelIndex::new(vec![5i64, -2, 9, 1 << 40]).unwrap();
        for (l, want) in [
            (5i64, Some(0)),
            (-2, Some(1)),
            (9, Some(2)),
            (3, None),
            (-100, None),
        ] {
            assert_eq!(dense.position(l), want);
            assert_eq!(sparse.position(l), want);
        }
        assert_eq!(sparse.position(1 << 40), Some(3));
    }

    #[test]
    fn duplicate_and_empty_label_lists_are_rejected() {
        assert!(matches!(
            LabelIndex::new(vec![1u8, 2, 1]),
            Err(MetricsError::InvalidLabels { .. })
        ));
        assert!(matches!(
            LabelIndex::<u8>::new(vec![]),
            Err(MetricsError::InvalidLabels { .. })
        ));
    }

    #[test]
    fn unique_sorted_handles_wide_ranges() {
        assert_eq!(unique_sorted(&[&[3u64, 1, 3][..], &[2][..]]), vec![1, 2, 3]);
        assert_eq!(
            unique_sorted(&[&[u64::MAX, 0, 7][..]]),
            vec![0, 7, u64::MAX]
        );
    }

    #[test]
    fn binary_target_rejects_mixed_negatives() {
        let mut t = BinaryTarget::new();
        assert!(!t.is_positive("y", 0, 0i32).unwrap());
        assert!(t.is_positive("y", 1, 1i32).unwrap());
        assert!(t.is_positive("y", 2, -1i32).is_err());
        assert!(t.is_positive("y", 3, 2i32).is_err());
    }
}
