//! The small YAML subset MLflow's file store uses in `meta.yaml`: a flat
//! mapping of scalars, plus one nested mapping level (`aliases:`), written
//! the way PyYAML's `safe_dump` writes it and read back from files written by
//! either this crate or MLflow itself.

use std::collections::BTreeMap;

/// A scalar or nested mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    Null,
    Int(i64),
    Str(String),
    Map(BTreeMap<String, Yaml>),
    /// `[]`, or a list we do not interpret.
    List,
}

impl Yaml {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_map(&self) -> Option<&BTreeMap<String, Yaml>> {
        match self {
            Yaml::Map(m) => Some(m),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Yaml::Int(i) => Some(*i),
            Yaml::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// A document: ordered keys as MLflow writes them (sorted).
pub(crate) type Doc = BTreeMap<String, Yaml>;

/// Writes a scalar string so any YAML reader gets it back exactly: JSON string
/// syntax is valid YAML double-quoted syntax.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "''".to_string())
}

pub(crate) fn to_string(doc: &Doc) -> String {
    let mut out = String::new();
    for (k, v) in doc {
        write_entry(&mut out, k, v, 0);
    }
    out
}

fn write_entry(out: &mut String, key: &str, value: &Yaml, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Yaml::Null => out.push_str(&format!("{pad}{key}: null\n")),
        Yaml::Int(i) => out.push_str(&format!("{pad}{key}: {i}\n")),
        Yaml::Str(s) => out.push_str(&format!("{pad}{key}: {}\n", quote(s))),
        Yaml::List => out.push_str(&format!("{pad}{key}: []\n")),
        Yaml::Map(m) if m.is_empty() => out.push_str(&format!("{pad}{key}: {{}}\n")),
        Yaml::Map(m) => {
            out.push_str(&format!("{pad}{}:\n", quote_key(key)));
            for (k, v) in m {
                write_entry(out, &quote_key(k), v, indent + 2);
            }
        }
    }
}

fn quote_key(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !k.is_empty()
    {
        k.to_string()
    } else {
        quote(k)
    }
}

/// Parses the subset: nested mappings by indentation, scalars, `[]`.
/// Unknown constructs (block lists) are skipped rather than rejected, since
/// MLflow adds fields over time; a line that cannot be read is an error.
pub(crate) fn parse(text: &str) -> Result<Doc, String> {
    let mut root: Doc = BTreeMap::new();
    // Open nested mappings: (indent of their key line, path from the root).
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut last_scalar: Option<(Vec<String>, String)> = None;
    for (lineno, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line == "---" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let Some((key, rest)) = split_key(body) else {
            if body.starts_with("- ") || body == "-" {
                continue;
            }
            // A continuation of a folded long scalar.
            if let Some((path, key)) = &last_scalar
                && let Some(map) = map_at(&mut root, path)
                && let Some(Yaml::Str(s)) = map.get_mut(key)
            {
                s.push(' ');
                s.push_str(&scalar_text(body));
                continue;
            }
            return Err(format!("line {}: expected `key: value`", lineno + 1));
        };
        while stack.last().is_some_and(|(i, _)| indent <= *i) {
            stack.pop();
        }
        let path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
        let Some(map) = map_at(&mut root, &path) else {
            return Err(format!("line {}: bad nesting", lineno + 1));
        };
        let value = rest.trim();
        if value.is_empty() {
            map.insert(key.clone(), Yaml::Map(BTreeMap::new()));
            stack.push((indent, key));
            last_scalar = None;
        } else {
            map.insert(key.clone(), scalar(value));
            last_scalar = Some((path, key));
        }
    }
    Ok(root)
}

fn map_at<'a>(root: &'a mut Doc, path: &[String]) -> Option<&'a mut Doc> {
    let mut cur = root;
    for k in path {
        match cur.get_mut(k) {
            Some(Yaml::Map(m)) => cur = m,
            _ => return None,
        }
    }
    Some(cur)
}

/// Splits `key: value`, honouring a quoted key.
fn split_key(body: &str) -> Option<(String, &str)> {
    if body.starts_with('"') || body.starts_with('\'') {
        let q = body.chars().next()?;
        let end = body[1..].find(q)? + 1;
        let key = scalar_text(&body[..=end]);
        let rest = body[end + 1..].strip_prefix(':')?;
        return Some((key, rest));
    }
    let idx = body
        .find(": ")
        .or_else(|| body.strip_suffix(':').map(|s| s.len()))?;
    Some((body[..idx].to_string(), &body[idx + 1..]))
}

fn scalar(v: &str) -> Yaml {
    match v {
        "null" | "~" | "" => Yaml::Null,
        "[]" => Yaml::List,
        "{}" => Yaml::Map(BTreeMap::new()),
        _ if v.starts_with('[') => Yaml::List,
        _ => {
            if !v.starts_with('\'')
                && !v.starts_with('"')
                && let Ok(i) = v.parse::<i64>()
            {
                return Yaml::Int(i);
            }
            Yaml::Str(scalar_text(v))
        }
    }
}

/// The text of a plain, 'single' or "double" quoted scalar.
fn scalar_text(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1].replace("''", "'")
    } else if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        serde_json::from_str::<String>(v).unwrap_or_else(|_| v[1..v.len() - 1].to_string())
    } else if let Some(stripped) = v.strip_prefix('\'') {
        // The first line of a folded single-quoted scalar.
        stripped.replace("''", "'")
    } else if let Some(stripped) = v.strip_suffix('\'') {
        stripped.replace("''", "'")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_mlflow_writes() {
        let text = "aliases:\n  champion: '1'\ncreation_timestamp: 1795726391635\ndeployment_job_id: null\n\
                    description: d\nname: fs-model\ntags: []\nexperiment_id: '242412517853278918'\n";
        let doc = parse(text).unwrap();
        assert_eq!(doc["creation_timestamp"], Yaml::Int(1795726391635));
        assert_eq!(doc["experiment_id"].as_str(), Some("242412517853278918"));
        assert_eq!(doc["description"].as_str(), Some("d"));
        assert_eq!(doc["deployment_job_id"], Yaml::Null);
        match &doc["aliases"] {
            Yaml::Map(m) => assert_eq!(m["champion"].as_str(), Some("1")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_nested_mappings() {
        let doc = parse("flavors:\n  vigil:\n    format: postcard\n    format_version: 1\n  other:\n    a: b\nrun_id: r\n").unwrap();
        let flavors = doc["flavors"].as_map().unwrap();
        let vigil = flavors["vigil"].as_map().unwrap();
        assert_eq!(vigil["format"].as_str(), Some("postcard"));
        assert_eq!(vigil["format_version"], Yaml::Int(1));
        assert_eq!(flavors["other"].as_map().unwrap()["a"].as_str(), Some("b"));
        assert_eq!(doc["run_id"].as_str(), Some("r"));
    }

    #[test]
    fn round_trips_awkward_strings() {
        let mut doc = Doc::new();
        for (i, s) in [
            "a: b",
            "it's",
            "line\nbreak",
            "  pad",
            "123",
            "null",
            "é\"q\"",
        ]
        .iter()
        .enumerate()
        {
            doc.insert(format!("k{i}"), Yaml::Str(s.to_string()));
        }
        doc.insert("n".into(), Yaml::Int(-5));
        doc.insert("z".into(), Yaml::Null);
        let back = parse(&to_string(&doc)).unwrap();
        assert_eq!(back, doc);
    }
}
