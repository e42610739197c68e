//! Class labels: the types a classifier can be fitted on, and their encoding.

use std::borrow::Cow;
use std::fmt::Display;

use ndarray::{Array1, ArrayView1};

use crate::error::{ForestError, Result};

/// Class labels a classifier can be fitted on.
///
/// Implemented for slices, arrays, `Vec`s, ndarray arrays and views of every
/// integer type (`u8` to `u64`, `usize`, `i8` to `i64`, `isize`), of `bool`
/// (`false` = 0, `true` = 1) and of `f64`. Labels must be non-negative, at most
/// `u32::MAX`, and for `f64` finite whole numbers; anything else is
/// [`ForestError::InvalidLabel`] naming its position. Labels need not be
/// contiguous: the model keeps the sorted distinct labels as its classes (as
/// `usize`, in the order of `predict_proba`'s columns), and `predict` returns
/// them as `usize`.
///
/// ```
/// use ndarray::Array2;
/// use vigil_forest::RandomForestParams;
///
/// // `u8` labels, as vigil-features' `TrainingSet::failure` holds them.
/// let x = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 7 + j * 3) % 20) as f64);
/// let failure: Vec<u8> = (0..200).map(|i| u8::from((i * 7) % 20 >= 10)).collect();
/// let model = RandomForestParams { n_estimators: 10, ..Default::default() }.fit(x.view(), &failure)?;
/// assert_eq!(model.classes(), [0, 1]);
///
/// // Predictions are the classes as `usize`.
/// let predicted = model.predict(x.view())?;
/// let hits = predicted.iter().zip(&failure).filter(|&(&p, &y)| p == usize::from(y)).count();
/// assert!(hits > 190);
/// # Ok::<(), vigil_forest::ForestError>(())
/// ```
pub trait Labels {
    /// The labels as `usize`, or the first invalid one.
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>>;
}

/// Labels of an integer type other than `usize`; negative ones are refused.
fn integer_labels<'a, T>(values: impl Iterator<Item = T>) -> Result<Cow<'a, [usize]>>
where
    T: Copy + Default + PartialOrd + Display + TryInto<usize>,
{
    let mut out = Vec::with_capacity(values.size_hint().0);
    for (index, v) in values.enumerate() {
        match v.try_into() {
            Ok(label) => out.push(label),
            Err(_) => {
                let reason = if v < T::default() {
                    "class labels must be non-negative"
                } else {
                    "class labels must be at most 4294967295"
                };
                return Err(ForestError::InvalidLabel {
                    index,
                    value: v.to_string(),
                    reason,
                });
            }
        }
    }
    Ok(Cow::Owned(out))
}

fn bool_labels<'a>(values: impl Iterator<Item = bool>) -> Result<Cow<'a, [usize]>> {
    Ok(Cow::Owned(values.map(usize::from).collect()))
}

fn f64_labels<'a>(values: impl Iterator<Item = f64>) -> Result<Cow<'a, [usize]>> {
    let mut out = Vec::with_capacity(values.size_hint().0);
    for (index, v) in values.enumerate() {
        let reason = if v.is_nan() {
            Some("NaN is not a class")
        } else if v.is_infinite() {
            Some("infinite is not a class")
        } else if v < 0.0 {
            Some("class labels must be non-negative")
        } else if v.fract() != 0.0 {
            Some("class labels must be whole numbers")
        } else if v > u32::MAX as f64 {
            Some("class labels must be at most 4294967295")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ForestError::InvalidLabel {
                index,
                value: v.to_string(),
                reason,
            });
        }
        out.push(v as usize);
    }
    Ok(Cow::Owned(out))
}

/// `Labels` for `[T]`, `[T; N]`, `Vec<T>`, `ArrayView1<T>` and `Array1<T>` of each
/// type `T`, converted by `$convert` (an iterator of `T` to the labels).
macro_rules! labels_converted_by {
    ($convert:ident: $($t:ty),+) => {$(
        impl Labels for [$t] {
            fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
                $convert(self.iter().copied())
            }
        }

        impl<const N: usize> Labels for [$t; N] {
            fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
                $convert(self.iter().copied())
            }
        }

        impl Labels for Vec<$t> {
            fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
                $convert(self.iter().copied())
            }
        }

        impl Labels for ArrayView1<'_, $t> {
            fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
                $convert(self.iter().copied())
            }
        }

        impl Labels for Array1<$t> {
            fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
                $convert(self.iter().copied())
            }
        }
    )+};
}

labels_converted_by!(integer_labels: u8, u16, u32, u64, i8, i16, i32, i64, isize);
labels_converted_by!(bool_labels: bool);
labels_converted_by!(f64_labels: f64);

// `usize` labels are used as they are (copied only from a non-contiguous view).

impl Labels for [usize] {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl<const N: usize> Labels for [usize; N] {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl Labels for Vec<usize> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl Labels for ArrayView1<'_, usize> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_vec()),
        })
    }
}

impl Labels for Array1<usize> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_vec()),
        })
    }
}

/// Labels mapped to dense class indices `0..classes.len()`.
#[derive(Debug)]
pub(crate) struct EncodedLabels {
    /// Sorted distinct original labels.
    pub classes: Vec<usize>,
    /// Class index of each sample.
    pub y: Vec<u32>,
}

/// Validates labels against `x` and maps them to dense class indices.
pub(crate) fn encode_labels(labels: &[usize], x_rows: usize) -> Result<EncodedLabels> {
    if labels.len() != x_rows {
        return Err(ForestError::LengthMismatch {
            x_rows,
            y_len: labels.len(),
        });
    }
    if let Some(index) = labels.iter().position(|&l| l > u32::MAX as usize) {
        return Err(ForestError::InvalidLabel {
            index,
            value: labels[index].to_string(),
            reason: "class labels must be at most 4294967295",
        });
    }
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() == 1 {
        return Err(ForestError::SingleClass { class: classes[0] });
    }
    if classes.len() > u16::MAX as usize {
        return Err(ForestError::TooLarge {
            what: "distinct classes",
            value: classes.len(),
            max: u16::MAX as usize,
        });
    }
    // Small dense label ranges (the usual case) map through a table; others search.
    let max = *classes.last().unwrap_or(&0);
    let y = if max < 1 << 16 {
        let mut table = vec![0u32; max + 1];
        for (i, &c) in classes.iter().enumerate() {
            table[c] = i as u32;
        }
        labels.iter().map(|&l| table[l]).collect()
    } else {
        labels
            .iter()
            .map(|l| classes.binary_search(l).unwrap_or(0) as u32)
            .collect()
    };
    Ok(EncodedLabels { classes, y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Axis, Slice, array};

    #[test]
    fn labels_are_encoded_densely_in_sorted_order() {
        let e = encode_labels(&[7, 3, 7, 9], 4).unwrap();
        assert_eq!(e.classes, vec![3, 7, 9]);
        assert_eq!(e.y, vec![1, 0, 1, 2]);
    }

    #[test]
    fn bad_labels_are_named() {
        assert_eq!(
            encode_labels(&[1, 1], 2).unwrap_err(),
            ForestError::SingleClass { class: 1 }
        );
        assert!(matches!(
            encode_labels(&[1, 0], 3),
            Err(ForestError::LengthMismatch {
                x_rows: 3,
                y_len: 2
            })
        ));
        let e = [0.0, f64::NAN].to_usize_labels().unwrap_err();
        assert!(
            matches!(e, ForestError::InvalidLabel { index: 1, .. }),
            "{e}"
        );
        assert!([0.5].to_usize_labels().is_err());
        assert!([-1.0].to_usize_labels().is_err());
        assert_eq!(&*[1.0, 0.0].to_usize_labels().unwrap(), &[1, 0]);
    }

    /// `labels` as `usize` through every container, all agreeing.
    fn through_every_container<T>(labels: &[T]) -> Vec<usize>
    where
        T: Copy,
        [T]: Labels,
        Vec<T>: Labels,
        for<'a> ArrayView1<'a, T>: Labels,
        Array1<T>: Labels,
    {
        let from_slice = labels.to_usize_labels().unwrap().into_owned();
        assert_eq!(*labels.to_vec().to_usize_labels().unwrap(), *from_slice);
        let array = Array1::from(labels.to_vec());
        assert_eq!(*array.to_usize_labels().unwrap(), *from_slice);
        assert_eq!(*array.view().to_usize_labels().unwrap(), *from_slice);
        from_slice
    }

    #[test]
    fn every_integer_type_gives_the_same_labels() {
        let want = vec![0usize, 3, 1, 127, 0];
        assert_eq!(through_every_container(&[0u8, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0u16, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0u32, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0u64, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0usize, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0i8, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0i16, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0i32, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0i64, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0isize, 3, 1, 127, 0]), want);
        assert_eq!(through_every_container(&[0.0, 3.0, 1.0, 127.0, 0.0]), want);
        assert_eq!(through_every_container(&[false, true, true]), vec![0, 1, 1]);
        // Fixed-size arrays, as a literal `&[0u8, 1]` is.
        assert_eq!(*[2u8, 1].to_usize_labels().unwrap(), [2, 1]);
        assert_eq!(*[2usize, 1].to_usize_labels().unwrap(), [2, 1]);
        assert_eq!(*[true, false].to_usize_labels().unwrap(), [1, 0]);
        assert_eq!(*[-0.0, 4.0].to_usize_labels().unwrap(), [0, 4]);
    }

    #[test]
    fn non_contiguous_views_are_read_in_order() {
        let y = Array2::from_shape_vec((3, 2), vec![1u8, 9, 2, 9, 3, 9]).unwrap();
        assert_eq!(*y.column(0).to_usize_labels().unwrap(), [1, 2, 3]);
        let y = array![5usize, 0, 6, 0, 7];
        let every_other = y.slice_axis(Axis(0), Slice::new(0, None, 2));
        assert_eq!(*every_other.to_usize_labels().unwrap(), [5, 6, 7]);
    }

    #[test]
    fn negative_labels_are_refused_with_their_position_and_value() {
        fn refused(e: ForestError, index: usize, value: &str, reason: &str) {
            assert_eq!(
                e,
                ForestError::InvalidLabel {
                    index,
                    value: value.into(),
                    reason: match reason {
                        "negative" => "class labels must be non-negative",
                        _ => "class labels must be at most 4294967295",
                    },
                }
            );
        }
        refused(
            [0i8, 1, -1].to_usize_labels().unwrap_err(),
            2,
            "-1",
            "negative",
        );
        refused(
            vec![3i16, -300].to_usize_labels().unwrap_err(),
            1,
            "-300",
            "negative",
        );
        refused(
            array![-7i32].to_usize_labels().unwrap_err(),
            0,
            "-7",
            "negative",
        );
        refused(
            array![0i64, i64::MIN].view().to_usize_labels().unwrap_err(),
            1,
            "-9223372036854775808",
            "negative",
        );
        refused(
            [-1isize].to_usize_labels().unwrap_err(),
            0,
            "-1",
            "negative",
        );
        // Too large for a class: refused when the labels are encoded.
        let big = [0u64, 1 << 40].to_usize_labels().unwrap();
        refused(
            encode_labels(&big, 2).unwrap_err(),
            1,
            "1099511627776",
            "large",
        );
    }
}
