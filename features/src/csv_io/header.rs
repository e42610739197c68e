//! Header to layout: which column holds the time, the machine id, each sensor
//! and the labels, with typed errors for absent and ambiguous columns.

use crate::csv_io::options::{CsvOptions, MACHINE_COLUMN_ALIASES, TIME_COLUMN_ALIASES};
use crate::error::{FeaturesError, Result};

/// Where each role's field is in a record (0-based column indices).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layout {
    /// The time column: index and header name.
    pub(super) time: (usize, String),
    /// The machine-id column: index and header name.
    pub(super) machine: (usize, String),
    /// One per [`CsvOptions::sensors`] entry, in that order.
    pub(super) sensors: Vec<usize>,
    pub(super) failure: Option<usize>,
    pub(super) failure_mode: Option<usize>,
    /// Header columns no role claims (reported, then ignored).
    pub(super) extra_columns: Vec<String>,
}

/// Matches `header` (trimmed names) against `options`.
pub(super) fn resolve_layout(
    header: &[String],
    options: &CsvOptions,
    source_name: &str,
) -> Result<Layout> {
    let resolver = Resolver {
        header,
        source_name,
        sensors: &options.sensors,
    };
    let time = match &options.time_column {
        Some(name) => resolver.exact(name.trim(), "time")?,
        None => resolver.by_alias("time", &TIME_COLUMN_ALIASES)?,
    };
    let machine = match &options.machine_column {
        Some(name) => resolver.exact(name.trim(), "machine id")?,
        None => resolver.by_alias("machine id", &MACHINE_COLUMN_ALIASES)?,
    };
    let sensors = options
        .sensors
        .iter()
        .map(|s| resolver.exact(s.trim(), &format!("sensor `{}`", s.trim())))
        .collect::<Result<Vec<usize>>>()?;
    let failure = resolver.optional("failure")?;
    let failure_mode = resolver.optional("failure_mode")?;
    let mut claimed: Vec<usize> = vec![time, machine];
    claimed.extend(&sensors);
    claimed.extend(failure);
    claimed.extend(failure_mode);
    if let Some(twice) = claimed
        .iter()
        .enumerate()
        .find_map(|(i, c)| claimed[..i].contains(c).then_some(*c))
    {
        // Only reachable through aliases: validated options never repeat a name.
        return Err(resolver.ambiguous("column mapping", vec![twice]));
    }
    let extra_columns = (0..header.len())
        .filter(|i| !claimed.contains(i))
        .map(|i| header[i].clone())
        .collect();
    Ok(Layout {
        time: (time, header[time].clone()),
        machine: (machine, header[machine].clone()),
        sensors,
        failure,
        failure_mode,
        extra_columns,
    })
}

struct Resolver<'a> {
    header: &'a [String],
    source_name: &'a str,
    sensors: &'a [String],
}

impl Resolver<'_> {
    /// The one column called exactly `name`.
    fn exact(&self, name: &str, role: &str) -> Result<usize> {
        let matches = self.positions(|h| h == name);
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(self.missing(name, &[name])),
            _ => Err(self.ambiguous(role, matches)),
        }
    }

    /// A label column, if the header has it (once).
    fn optional(&self, name: &str) -> Result<Option<usize>> {
        let matches = self.positions(|h| h == name);
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(self.ambiguous(name, matches)),
        }
    }

    /// The column named `aliases[0]` exactly, else the one column whose name
    /// is any alias in any case (sensor columns excluded).
    fn by_alias(&self, role: &str, aliases: &[&str]) -> Result<usize> {
        let canonical = aliases[0];
        let exact = self.positions(|h| h == canonical);
        if let [one] = exact.as_slice() {
            return Ok(*one);
        }
        let is_sensor = |h: &str| self.sensors.iter().any(|s| s.trim() == h);
        let matches =
            self.positions(|h| !is_sensor(h) && aliases.iter().any(|a| h.eq_ignore_ascii_case(a)));
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(self.missing(canonical, aliases)),
            _ => Err(self.ambiguous(role, matches)),
        }
    }

    fn positions(&self, matches: impl Fn(&str) -> bool) -> Vec<usize> {
        (0..self.header.len())
            .filter(|&i| matches(&self.header[i]))
            .collect()
    }

    fn missing(&self, column: &str, wanted: &[&str]) -> FeaturesError {
        FeaturesError::MissingColumn {
            source_name: self.source_name.to_owned(),
            column: column.to_owned(),
            found: self.header.to_vec(),
            suggestion: closest_name(self.header, wanted).map(str::to_owned),
        }
    }

    fn ambiguous(&self, role: &str, columns: Vec<usize>) -> FeaturesError {
        FeaturesError::AmbiguousColumn {
            source_name: self.source_name.to_owned(),
            role: role.to_owned(),
            candidates: columns
                .into_iter()
                .map(|i| (i + 1, self.header[i].clone()))
                .collect(),
        }
    }
}

/// The header name nearest to any of `wanted` (case-insensitive Levenshtein),
/// if it is near enough to be a misspelling: at most 2 edits, and at most a
/// third of the wanted name's length (so `ts` never suggests `id`).
fn closest_name<'h>(header: &'h [String], wanted: &[&str]) -> Option<&'h str> {
    let mut best: Option<(usize, &str)> = None;
    for h in header {
        // Very long names cannot be near a short one; skipping them bounds the work.
        if h.is_empty() || h.len() > 64 {
            continue;
        }
        let h_lower = h.to_ascii_lowercase();
        for w in wanted {
            let distance = edit_distance(&h_lower, &w.to_ascii_lowercase());
            let limit = 2.min(w.chars().count() / 3);
            if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, h.as_str()));
            }
        }
    }
    best.map(|(_, name)| name)
}

/// Levenshtein distance over chars (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            current[j + 1] = (previous[j] + usize::from(ca != cb))
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &str) -> Vec<String> {
        names.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("tmestamp", "timestamp"), 1);
        assert_eq!(edit_distance("temprature", "temperature"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        let h = header("tmestamp,machine_id,id");
        assert_eq!(closest_name(&h, &TIME_COLUMN_ALIASES), Some("tmestamp"));
        assert_eq!(closest_name(&header("Time_"), &["time"]), Some("Time_"));
        assert_eq!(closest_name(&header("id,tx,zeit"), &["ts", "time"]), None);
        assert_eq!(
            closest_name(&header("vibraton"), &["vibration"]),
            Some("vibraton")
        );
    }

    #[test]
    fn canonical_names_win_over_aliases_and_aliases_can_clash() {
        let options = CsvOptions::with_sensors(["x"]);
        let layout = resolve_layout(&header("ts,time,machine_id,x"), &options, "t").unwrap();
        assert_eq!(layout.time, (1, "time".into()));
        assert_eq!(layout.extra_columns, ["ts"]);
        let err = resolve_layout(&header("ts,Timestamp,asset_id,x"), &options, "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t, line 1: the time column is ambiguous: `ts` (column 1), `Timestamp` (column 2); name the one to use (CsvOptions, --time-column / --machine-column)"
        );
        let err = resolve_layout(&header("time,machine_id,x,x"), &options, "t").unwrap_err();
        assert!(
            matches!(err, FeaturesError::AmbiguousColumn { ref candidates, .. } if candidates.len() == 2),
            "{err}"
        );
        // A sensor called `ts` is not taken for the time.
        let options = CsvOptions::with_sensors(["ts"]);
        let layout = resolve_layout(&header("ts,TIME,asset,failure"), &options, "t").unwrap();
        assert_eq!(
            (layout.time.0, layout.machine.0, layout.sensors[0]),
            (1, 2, 0)
        );
        assert_eq!(layout.failure, Some(3));
    }
}
