//! Floats that survive JSON, NaN and ±∞ included.
//!
//! JSON has no NaN or infinity: serde_json writes them as `null`, which does not
//! read back as an `f64` (a ROC curve's first threshold, `+∞`, broke its round
//! trip). Fields that may hold them use these helpers: in human-readable formats
//! (JSON) a non-finite value is the string `"NaN"`, `"inf"` or `"-inf"` (the
//! spelling vigil-tuning uses; `"Infinity"`, `"-Infinity"` and `"nan"` read too)
//! and finite values stay JSON numbers. Binary formats carry the `f64` as it is.
//!
//! `#[serde(with = "crate::serde_f64")]` for an `f64`,
//! `#[serde(with = "crate::serde_f64::vec")]` for a `Vec<f64>`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` with the encoding above (elements of [`vec`]).
#[derive(Debug, Clone, Copy)]
struct Float(f64);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() || !s.is_human_readable() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(FloatVisitor).map(Float)
        } else {
            d.deserialize_f64(FloatVisitor).map(Float)
        }
    }
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a number, or "NaN", "inf" or "-inf""#)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" | "nan" => Ok(f64::NAN),
            "inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }
}

/// Serialises one `f64` (see the module docs).
pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    Float(*v).serialize(s)
}

/// Deserialises one `f64` (see the module docs).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Float::deserialize(d).map(|f| f.0)
}

/// The same for `Vec<f64>`.
pub(crate) mod vec {
    use super::{Deserialize, Deserializer, Float, Serializer};

    /// Serialises a list of `f64`.
    pub(crate) fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| Float(x)))
    }

    /// Deserialises a list of `f64`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v = Vec::<Float>::deserialize(d)?;
        Ok(v.into_iter().map(|f| f.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        one: f64,
        #[serde(with = "super::vec")]
        many: Vec<f64>,
    }

    #[test]
    fn non_finite_values_are_strings_and_read_back() {
        let h = Holder {
            one: f64::INFINITY,
            many: vec![f64::NAN, f64::NEG_INFINITY, 0.1, -2.0, 1e300],
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            r#"{"one":"inf","many":["NaN","-inf",0.1,-2.0,1e+300]}"#
        );
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back.one, f64::INFINITY);
        assert!(back.many[0].is_nan());
        assert_eq!(&back.many[1..], &h.many[1..]);
    }

    #[test]
    fn other_spellings_and_integers_read() {
        let json = r#"{"one":"-Infinity","many":["Infinity","nan",3,-4]}"#;
        let back: Holder = serde_json::from_str(json).unwrap();
        assert_eq!(back.one, f64::NEG_INFINITY);
        assert_eq!(back.many[0], f64::INFINITY);
        assert!(back.many[1].is_nan());
        assert_eq!(&back.many[2..], &[3.0, -4.0]);
    }

    #[test]
    fn null_and_other_strings_are_errors() {
        for bad in [
            r#"{"one":null,"many":[]}"#,
            r#"{"one":"infinite","many":[]}"#,
            r#"{"one":1,"many":[null]}"#,
        ] {
            let err = serde_json::from_str::<Holder>(bad).unwrap_err();
            assert!(
                err.to_string().contains(r#""NaN", "inf" or "-inf""#),
                "{bad}: {err}"
            );
        }
    }
}
