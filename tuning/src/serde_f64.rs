//! JSON has no NaN or ±inf; these helpers write them as the strings `"NaN"`,
//! `"inf"` and `"-inf"` so that stored and exported trials round-trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` that survives JSON, including NaN and ±inf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct JsonF64(pub(crate) f64);

impl Serialize for JsonF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
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

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Num(f64),
            Str(String),
        }
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(JsonF64(v)),
            Repr::Str(s) => match s.as_str() {
                "NaN" | "nan" => Ok(JsonF64(f64::NAN)),
                "inf" | "Infinity" => Ok(JsonF64(f64::INFINITY)),
                "-inf" | "-Infinity" => Ok(JsonF64(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!("not a float: {other}"))),
            },
        }
    }
}

pub(crate) mod opt {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(JsonF64).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<JsonF64>::deserialize(d)?.map(|v| v.0))
    }
}

pub(crate) mod map {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &BTreeMap<u64, f64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<u64, JsonF64> = v.iter().map(|(k, x)| (*k, JsonF64(*x))).collect();
        m.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u64, f64>, D::Error> {
        let m = BTreeMap::<u64, JsonF64>::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}
