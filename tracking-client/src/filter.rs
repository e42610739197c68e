//! MLflow's search filter language, for the local store: conjunctions of
//! `<entity>.<key> <op> <value>` clauses, e.g.
//! `metrics.f1 > 0.8 and params.model = 'rf' and attributes.status = 'FINISHED'`.

use std::cmp::Ordering;

use crate::error::{Result, TrackingError};

/// A value a clause compares against, or a field's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Num(f64),
    Str(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

/// One `entity.key op value` comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    /// `metrics`, `params`, `tags`, `attributes` (normalised), or empty for a bare key.
    pub(crate) entity: String,
    pub(crate) key: String,
    pub(crate) op: Op,
    pub(crate) value: Value,
}

/// Parses a filter into clauses that must all hold.
pub(crate) fn parse(filter: &str) -> Result<Vec<Clause>> {
    let tokens = tokenize(filter)?;
    let mut clauses = Vec::new();
    let mut i = 0;
    let bad = |why: &str| TrackingError::invalid("search filter", filter, why.to_string());
    while i < tokens.len() {
        let ident = match &tokens[i] {
            Tok::Ident(s) => s.clone(),
            _ => return Err(bad("expected a field like metrics.f1")),
        };
        i += 1;
        let (entity, key) = split_ident(&ident);
        let op = match tokens.get(i) {
            Some(Tok::Op(o)) => *o,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => match tokens.get(i + 1) {
                Some(Tok::Word(w2)) if w2.eq_ignore_ascii_case("in") => {
                    i += 1;
                    Op::NotIn
                }
                _ => return Err(bad("expected IN after NOT")),
            },
            _ => {
                return Err(bad(
                    "expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)",
                ));
            }
        };
        i += 1;
        let value = match tokens.get(i) {
            Some(Tok::Str(s)) => Value::Str(s.clone()),
            Some(Tok::Num(n)) => Value::Num(*n),
            Some(Tok::List(l)) => Value::List(l.clone()),
            _ => return Err(bad("expected a value (a number or a quoted string)")),
        };
        i += 1;
        if matches!(op, Op::In | Op::NotIn) != matches!(value, Value::List(_)) {
            return Err(bad(
                "IN takes a parenthesised list, other comparators a single value",
            ));
        }
        clauses.push(Clause {
            entity,
            key,
            op,
            value,
        });
        match tokens.get(i) {
            None => {}
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => i += 1,
            Some(_) => {
                return Err(bad(
                    "clauses must be joined with AND (OR is not supported by MLflow)",
                ));
            }
        }
        if i == tokens.len()
            && matches!(tokens.last(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and"))
        {
            return Err(bad("dangling AND"));
        }
    }
    Ok(clauses)
}

fn split_ident(ident: &str) -> (String, String) {
    let (entity, key) = match ident.split_once('.') {
        Some((e, k)) => (e, k),
        None => ("", ident),
    };
    let entity = match entity.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => "metrics",
        "param" | "params" | "parameter" | "parameters" => "params",
        "tag" | "tags" => "tags",
        "attribute" | "attributes" | "attr" | "run" => "attributes",
        "" => "",
        _ => return (String::new(), ident.to_string()),
    };
    let key = key.trim_matches('`').trim_matches('"').to_string();
    (entity.to_string(), key)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Word(String),
    Op(Op),
    Str(String),
    Num(f64),
    List(Vec<String>),
}

fn tokenize(s: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let bad = |why: String| TrackingError::invalid("search filter", s, why);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let (text, next) =
                quoted(&chars, i).ok_or_else(|| bad("unterminated string".into()))?;
            out.push(Tok::Str(text));
            i = next;
        } else if c == '(' {
            let mut items = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(bad("unterminated list".into()));
                }
                if chars[i] == ')' {
                    i += 1;
                    break;
                }
                let (text, next) =
                    quoted(&chars, i).ok_or_else(|| bad("lists hold quoted strings".into()))?;
                items.push(text);
                i = next;
            }
            out.push(Tok::List(items));
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, len) = match two.as_str() {
                "!=" => (Op::Ne, 2),
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                "==" => (Op::Eq, 2),
                _ => match c {
                    '=' => (Op::Eq, 1),
                    '<' => (Op::Lt, 1),
                    '>' => (Op::Gt, 1),
                    _ => return Err(bad(format!("invalid comparator at {i}"))),
                },
            };
            if i + len < chars.len() && "=<>!".contains(chars[i + len]) {
                return Err(bad(format!("invalid comparator at {i}")));
            }
            out.push(Tok::Op(op));
            i += len;
        } else if c.is_ascii_digit() || ((c == '-' || c == '+' || c == '.') && i + 1 < chars.len())
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ".+-".contains(chars[i]))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| bad(format!("invalid number {text:?}")))?;
            out.push(Tok::Num(n));
        } else {
            // An identifier: letters, digits, `.`, `_`, with `backtick` or
            // "double quoted" parts after a dot.
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"=!<>'(".contains(chars[i]) {
                if chars[i] == '`' || (chars[i] == '"' && i > start && chars[i - 1] == '.') {
                    let q = chars[i];
                    i += 1;
                    while i < chars.len() && chars[i] != q {
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(bad("unterminated quoted key".into()));
                    }
                }
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let is_word = ["and", "like", "ilike", "in", "not"]
                .iter()
                .any(|w| text.eq_ignore_ascii_case(w));
            out.push(if is_word {
                Tok::Word(text)
            } else {
                Tok::Ident(text)
            });
        }
    }
    Ok(out)
}

/// A quoted string starting at `chars[start]`; `''`/`\'` escape the quote.
fn quoted(chars: &[char], start: usize) -> Option<(String, usize)> {
    let q = *chars.get(start)?;
    if q != '\'' && q != '"' {
        return None;
    }
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
        } else if c == q {
            if i + 1 < chars.len() && chars[i + 1] == q {
                out.push(q);
                i += 2;
            } else {
                return Some((out, i + 1));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    None
}

/// SQL LIKE with `%` and `_`.
fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Dynamic programming over (text, pattern) positions.
    let mut dp = vec![vec![false; p.len() + 1]; t.len() + 1];
    dp[0][0] = true;
    for j in 1..=p.len() {
        dp[0][j] = dp[0][j - 1] && p[j - 1] == '%';
    }
    for i in 1..=t.len() {
        for j in 1..=p.len() {
            dp[i][j] = match p[j - 1] {
                '%' => dp[i][j - 1] || dp[i - 1][j],
                '_' => dp[i - 1][j - 1],
                c => dp[i - 1][j - 1] && t[i - 1] == c,
            };
        }
    }
    dp[t.len()][p.len()]
}

impl Clause {
    /// Does a field with value `field` (None = absent) satisfy this clause?
    pub(crate) fn matches(&self, field: Option<&Value>) -> bool {
        let Some(field) = field else { return false };
        match (&self.op, field, &self.value) {
            (Op::Like, Value::Str(f), Value::Str(p)) => like(f, p, false),
            (Op::ILike, Value::Str(f), Value::Str(p)) => like(f, p, true),
            (Op::In, Value::Str(f), Value::List(l)) => l.contains(f),
            (Op::NotIn, Value::Str(f), Value::List(l)) => !l.contains(f),
            (op, f, v) => match compare(f, v) {
                Some(ord) => match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                    _ => false,
                },
                None => false,
            },
        }
    }
}

/// Orders two values; numbers compare with numbers (a numeric string counts),
/// strings with strings.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Num(x), Value::Str(y)) => y.parse::<f64>().ok().and_then(|y| x.partial_cmp(&y)),
        (Value::Str(x), Value::Num(y)) => x.parse::<f64>().ok().and_then(|x| x.partial_cmp(y)),
        _ => None,
    }
}

/// One `order_by` clause: field and direction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderBy {
    pub(crate) entity: String,
    pub(crate) key: String,
    pub(crate) ascending: bool,
}

pub(crate) fn parse_order_by(clause: &str) -> Result<OrderBy> {
    let trimmed = clause.trim();
    let (field, dir) = match trimmed.rsplit_once(char::is_whitespace) {
        Some((f, d)) if d.eq_ignore_ascii_case("asc") || d.eq_ignore_ascii_case("desc") => {
            (f.trim(), Some(d))
        }
        _ => (trimmed, None),
    };
    if field.is_empty() {
        return Err(TrackingError::invalid(
            "order_by clause",
            clause,
            "empty field",
        ));
    }
    let (entity, key) = split_ident(field);
    Ok(OrderBy {
        entity: if entity.is_empty() {
            "attributes".into()
        } else {
            entity
        },
        key,
        ascending: dir.is_none_or(|d| d.eq_ignore_ascii_case("asc")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conjunctions_of_clauses() {
        let c = parse("metrics.f1 > 0.8 and params.model = 'rf' AND tags.`mlflow.user` != \"bob\"")
            .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            (c[0].entity.as_str(), c[0].key.as_str(), c[0].op),
            ("metrics", "f1", Op::Gt)
        );
        assert_eq!(c[0].value, Value::Num(0.8));
        assert_eq!(c[1].value, Value::Str("rf".into()));
        assert_eq!((c[2].key.as_str(), c[2].op), ("mlflow.user", Op::Ne));
        let c = parse("attributes.status IN ('FINISHED', 'FAILED')").unwrap();
        assert_eq!(
            c[0].value,
            Value::List(vec!["FINISHED".into(), "FAILED".into()])
        );
        let c = parse("name LIKE 'pm-%'").unwrap();
        assert_eq!(
            (c[0].entity.as_str(), c[0].key.as_str(), c[0].op),
            ("", "name", Op::Like)
        );
    }

    #[test]
    fn bad_filters_are_typed_errors() {
        for bad in [
            "metrics.f1 >> 2",
            "metrics.f1 >",
            "metrics.f1 > 1 or x = 2",
            "params.a = 'x",
            "and",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn like_matches_sql_semantics() {
        assert!(like("pm-model", "pm-%", false));
        assert!(like("PM-model", "pm-%", true));
        assert!(!like("PM-model", "pm-%", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("abcd", "a_c", false));
    }

    #[test]
    fn order_by_defaults_to_ascending_attributes() {
        let o = parse_order_by("metrics.f1 DESC").unwrap();
        assert_eq!(
            (o.entity.as_str(), o.key.as_str(), o.ascending),
            ("metrics", "f1", false)
        );
        let o = parse_order_by("start_time").unwrap();
        assert_eq!(
            (o.entity.as_str(), o.key.as_str(), o.ascending),
            ("attributes", "start_time", true)
        );
    }
}
