//! The request body as a JSON tree that borrows its strings from the body.
//!
//! `serde_json::Value` allocates every key and string and a map per object:
//! about ten allocations per sample, which profiling showed to be a large part
//! of serve's cost per sample beyond the forests. This tree allocates one vector
//! per object or array and a string only where the body escapes one. It accepts
//! exactly the bodies `serde_json::from_slice::<Map<String, Value>>` accepts
//! (same parser, same limits); a key given twice means its last value, as there.

use std::borrow::Cow;
use std::fmt;

use axum::http::{HeaderMap, header};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// One JSON value, strings borrowed from the body where it has no escapes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum JsonValue<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<JsonValue<'a>>),
    Object(JsonObject<'a>),
}

/// An object's members in the body's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct JsonObject<'a> {
    members: Vec<(Cow<'a, str>, JsonValue<'a>)>,
}

impl<'a> JsonObject<'a> {
    /// The value of `key` (its last, if given more than once).
    pub(super) fn get(&self, key: &str) -> Option<&JsonValue<'a>> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Takes `key`'s value out (every occurrence goes; the last one is returned).
    pub(super) fn remove(&mut self, key: &str) -> Option<JsonValue<'a>> {
        let value = self.get(key).cloned();
        self.members.retain(|(k, _)| k != key);
        value
    }

    /// The keys, in the body's order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_ref())
    }
}

/// Parses a request body: a JSON object, or a message saying why not.
pub(super) fn parse_object(body: &[u8]) -> Result<JsonObject<'_>, String> {
    match serde_json::from_slice::<JsonValue<'_>>(body) {
        Ok(JsonValue::Object(object)) => Ok(object),
        Ok(other) => Err(format!(
            "the body must be a JSON object, got {}",
            other.kind()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the request says its body is JSON: `application/json` or an
/// `application/*+json` type, parameters allowed (the rule of axum's `Json`).
pub(super) fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        })
}

impl JsonValue<'_> {
    fn kind(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "a boolean",
            JsonValue::Number(_) => "a number",
            JsonValue::String(_) => "a string",
            JsonValue::Array(_) => "an array",
            JsonValue::Object(_) => "an object",
        }
    }

    /// The same value as a `serde_json::Value` (for messages).
    pub(super) fn to_value(&self) -> Value {
        match self {
            JsonValue::Null => Value::Null,
            JsonValue::Bool(b) => Value::Bool(*b),
            JsonValue::Number(n) => Value::Number(n.clone()),
            JsonValue::String(s) => Value::String(s.to_string()),
            JsonValue::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            JsonValue::Object(o) => Value::Object(
                o.members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Written as JSON, as `serde_json::Value` writes it.
impl fmt::Display for JsonValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_value().fmt(f)
    }
}

/// A key or string: borrowed when the body holds it without escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de> Deserialize<'de> for JsonValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = JsonValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonValue::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(JsonValue::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(JsonValue::Number(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(JsonValue::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // serde_json hands over finite numbers only; `Value` maps others to null.
        Ok(Number::from_f64(v).map_or(JsonValue::Null, JsonValue::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JsonValue::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JsonValue::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(JsonValue::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(Text(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(JsonValue::Object(JsonObject { members }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Map;

    use super::*;

    /// Accepts and rejects what `Map<String, Value>` does, with the same values.
    #[test]
    fn parses_as_serde_json_maps_do() {
        let bodies = [
            r#"{"samples":[{"machine_id":"M01","time":"2026-01-01T00:00:00Z","temperature":70.5}]}"#,
            r#"{"a":1,"a":2,"b":"x\ny","c":null,"d":[true,false,{"e":-3}],"f":1e300}"#,
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"esc":"\u00e9\ud83d\ude00"}"#,
            "{}",
            "[1,2]",
            "\"text\"",
            "{not json",
            r#"{"x":1e999}"#,
            r#"{"x":"\ud800"}"#,
            "{\"x\":1} trailing",
            "",
        ];
        for body in bodies {
            let ours = parse_object(body.as_bytes()).map(|o| JsonValue::Object(o).to_value());
            let reference = serde_json::from_slice::<Map<String, Value>>(body.as_bytes());
            match (ours, reference) {
                (Ok(ours), Ok(reference)) => assert_eq!(ours, Value::Object(reference), "{body}"),
                (Err(_), Err(_)) => {}
                (ours, reference) => panic!("{body}: ours {ours:?}, serde_json {reference:?}"),
            }
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed_and_duplicates_keep_the_last() {
        let body = r#"{"id":"M01","id":"M02","esc":"a\"b"}"#;
        let mut object = parse_object(body.as_bytes()).unwrap();
        assert!(matches!(
            object.get("id"),
            Some(JsonValue::String(Cow::Borrowed("M02")))
        ));
        assert!(matches!(object.get("esc"), Some(JsonValue::String(Cow::Owned(s))) if s == "a\"b"));
        assert_eq!(object.keys().collect::<Vec<_>>(), ["id", "id", "esc"]);
        assert!(object.remove("id").is_some());
        assert_eq!(object.keys().collect::<Vec<_>>(), ["esc"]);
    }

    #[test]
    fn json_content_types_follow_axums_rule() {
        let cases = [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/problem+json", true),
            ("APPLICATION/JSON", true),
            ("text/json", false),
            ("application/jsonx", false),
            ("application/", false),
            ("", false),
        ];
        for (value, want) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json_content_type(&headers), want, "{value:?}");
        }
        assert!(!is_json_content_type(&HeaderMap::new()));
    }
}
