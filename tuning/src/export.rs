//! CSV and JSON export of a study's trials.

use std::collections::BTreeSet;
use std::io::Write;

use serde::Serialize;

use crate::Study;
use crate::error::{Result, TuningError};
use crate::storage::TrialList;
use crate::trial::FrozenTrial;

/// RFC 3339 UTC time of a Unix timestamp (seconds), to the millisecond.
pub(crate) fn rfc3339(unix: f64) -> String {
    let total_ms = (unix * 1000.0).round() as i64;
    let (secs, ms) = (total_ms.div_euclid(1000), total_ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn csv_err(e: impl std::fmt::Display) -> TuningError {
    TuningError::Export(e.to_string())
}

pub(crate) fn write_csv<W: Write>(trials: &TrialList, writer: W) -> Result<()> {
    let names: BTreeSet<&str> = trials
        .iter()
        .flat_map(|t| t.params.keys().map(String::as_str))
        .collect();
    let mut w = csv::Writer::from_writer(writer);
    let mut header = vec![
        "number".to_owned(),
        "state".to_owned(),
        "value".to_owned(),
        "datetime_start".to_owned(),
        "datetime_complete".to_owned(),
        "duration_secs".to_owned(),
    ];
    header.extend(names.iter().map(|n| format!("params_{n}")));
    header.push("fail_reason".to_owned());
    w.write_record(&header).map_err(csv_err)?;
    for t in trials.iter() {
        let mut row = vec![
            t.number.to_string(),
            t.state.as_str().to_owned(),
            t.value.map(|v| v.to_string()).unwrap_or_default(),
            t.datetime_start.map(rfc3339).unwrap_or_default(),
            t.datetime_complete.map(rfc3339).unwrap_or_default(),
            t.duration_secs()
                .map(|d| format!("{d:.6}"))
                .unwrap_or_default(),
        ];
        row.extend(
            names
                .iter()
                .map(|n| t.param(n).map(|v| v.to_string()).unwrap_or_default()),
        );
        row.push(t.fail_reason.clone().unwrap_or_default());
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush().map_err(csv_err)
}

#[derive(Serialize)]
struct StudyJson<'a> {
    study_name: &'a str,
    direction: crate::Direction,
    trials: Vec<&'a FrozenTrial>,
}

pub(crate) fn write_json<W: Write>(study: &Study, trials: &TrialList, writer: W) -> Result<()> {
    let doc = StudyJson {
        study_name: study.name(),
        direction: study.direction(),
        trials: trials.iter().map(AsRef::as_ref).collect(),
    };
    serde_json::to_writer_pretty(writer, &doc).map_err(csv_err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
        assert_eq!(super::rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }
}
