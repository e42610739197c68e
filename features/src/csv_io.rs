//! CSV in and out.
//!
//! Header: `time,machine_id,<sensors...>[,failure,failure_mode]` (the reference
//! sensors are `temperature,vibration,spindle_speed,power_consumption`). Reading
//! matches columns by name, in any order; `time` is ISO-8601 (offsets are
//! converted to UTC); an empty field is a missing value.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, FrameBuilder, REFERENCE_SENSORS, TelemetryFrame};
use crate::time::{format_timestamp, parse_timestamp};

/// Which sensor columns to read.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// Sensor column names, in the order the frame stores them.
    /// Default: the four reference sensors.
    pub sensors: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            sensors: REFERENCE_SENSORS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl CsvOptions {
    /// Options for these sensor columns.
    pub fn with_sensors<S: Into<String>>(sensors: impl IntoIterator<Item = S>) -> CsvOptions {
        CsvOptions {
            sensors: sensors.into_iter().map(Into::into).collect(),
        }
    }
}

/// What loading noticed without failing: nothing is dropped silently.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadReport {
    /// Data rows read.
    pub rows: usize,
    /// Header columns that are neither required nor labels (ignored).
    pub extra_columns: Vec<String>,
    /// Rows that were out of (machine, time) order and were sorted.
    pub reordered_rows: usize,
    /// Per sensor: empty fields (missing values).
    pub missing: Vec<(String, usize)>,
    /// Per sensor: non-finite values (`inf`, `NaN` text) stored as missing.
    pub non_finite: Vec<(String, usize)>,
}

/// Reads a telemetry CSV file.
pub fn read_csv(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<(TelemetryFrame, LoadReport)> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| FeaturesError::Io {
        path: path.to_owned(),
        source,
    })?;
    read_csv_from(
        BufReader::with_capacity(1 << 20, file),
        &path.display().to_string(),
        options,
    )
}

/// Reads telemetry CSV from any reader; `source_name` names it in errors.
pub fn read_csv_from<R: Read>(
    reader: R,
    source_name: &str,
    options: &CsvOptions,
) -> Result<(TelemetryFrame, LoadReport)> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let malformed = |e: csv::Error| {
        let line = e.position().map_or(0, csv::Position::line);
        FeaturesError::MalformedCsv {
            source_name: source_name.to_owned(),
            line,
            message: e.to_string(),
        }
    };
    let header: Vec<String> = csv
        .headers()
        .map_err(malformed)?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(FeaturesError::EmptyInput {
            source_name: source_name.to_owned(),
        });
    }
    let mut required: Vec<&str> = vec!["time", "machine_id"];
    required.extend(options.sensors.iter().map(String::as_str));
    let mut positions = Vec::with_capacity(required.len());
    for &column in &required {
        match header.iter().position(|h| h == column) {
            Some(p) => positions.push(p),
            None => {
                let suggestion = header
                    .iter()
                    .filter(|h| {
                        !required.contains(&h.as_str())
                            && !matches!(h.as_str(), "failure" | "failure_mode")
                    })
                    .find(|h| h.eq_ignore_ascii_case(column) || edit_distance(h, column) <= 2)
                    .cloned();
                return Err(FeaturesError::MissingColumn {
                    source_name: source_name.to_owned(),
                    column: column.to_owned(),
                    suggestion,
                });
            }
        }
    }
    let failure_col = header.iter().position(|h| h == "failure");
    let mode_col = header.iter().position(|h| h == "failure_mode");
    let extra_columns: Vec<String> = header
        .iter()
        .filter(|h| {
            !required.contains(&h.as_str()) && !matches!(h.as_str(), "failure" | "failure_mode")
        })
        .cloned()
        .collect();
    let (time_col, machine_col) = (positions[0], positions[1]);
    let sensor_cols = &positions[2..];
    let k = sensor_cols.len();
    let mut builder = FrameBuilder::new(
        options.sensors.clone(),
        failure_col.is_some(),
        mode_col.is_some(),
    );
    let mut missing = vec![0usize; k];
    let mut values = vec![0.0f64; k];
    let mut record = csv::ByteRecord::new();
    let field_text = |record: &csv::ByteRecord, col: usize| -> String {
        String::from_utf8_lossy(record.get(col).unwrap_or_default()).into_owned()
    };
    while csv.read_byte_record(&mut record).map_err(malformed)? {
        let line = record.position().map_or(0, csv::Position::line);
        let field = |col: usize| std::str::from_utf8(record.get(col).unwrap_or_default()).ok();
        let time = field(time_col).and_then(parse_timestamp).ok_or_else(|| {
            FeaturesError::BadTimestamp {
                source_name: source_name.to_owned(),
                line,
                column: "time".into(),
                value: field_text(&record, time_col),
            }
        })?;
        let machine = field(machine_col).map(str::trim).unwrap_or_default();
        if machine.is_empty() {
            return Err(FeaturesError::BadLabel {
                source_name: source_name.to_owned(),
                line,
                column: "machine_id".into(),
                value: field_text(&record, machine_col),
                expected: "a non-empty machine id",
            });
        }
        for (s, &col) in sensor_cols.iter().enumerate() {
            let text = field(col).map(str::trim);
            values[s] = match text {
                Some("") => {
                    missing[s] += 1;
                    f64::NAN
                }
                Some(t) => match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    Ok(_) => {
                        builder.count_non_finite(s);
                        f64::NAN
                    }
                    Err(_) => {
                        return Err(FeaturesError::BadNumber {
                            source_name: source_name.to_owned(),
                            line,
                            column: options.sensors[s].clone(),
                            value: field_text(&record, col),
                        });
                    }
                },
                None => {
                    return Err(FeaturesError::BadNumber {
                        source_name: source_name.to_owned(),
                        line,
                        column: options.sensors[s].clone(),
                        value: field_text(&record, col),
                    });
                }
            };
        }
        let failure = match failure_col {
            Some(col) => Some(match field(col).map(str::trim) {
                Some("0" | "0.0" | "false" | "False") => 0,
                Some("1" | "1.0" | "true" | "True") => 1,
                _ => {
                    return Err(FeaturesError::BadLabel {
                        source_name: source_name.to_owned(),
                        line,
                        column: "failure".into(),
                        value: field_text(&record, col),
                        expected: "0 or 1",
                    });
                }
            }),
            None => None,
        };
        let mode = match mode_col {
            Some(col) => Some(field(col).and_then(FailureMode::parse).ok_or_else(|| {
                FeaturesError::BadLabel {
                    source_name: source_name.to_owned(),
                    line,
                    column: "failure_mode".into(),
                    value: field_text(&record, col),
                    expected: "none, overheat, bearing_wear, power_surge or tool_wear",
                }
            })?),
            None => None,
        };
        builder.push(machine, time, &values, failure, mode);
    }
    if builder.is_empty() {
        return Err(FeaturesError::EmptyInput {
            source_name: source_name.to_owned(),
        });
    }
    let frame = builder.finish();
    let report = LoadReport {
        rows: frame.len(),
        extra_columns,
        reordered_rows: frame.reordered_rows(),
        missing: options.sensors.iter().cloned().zip(missing).collect(),
        non_finite: options
            .sensors
            .iter()
            .cloned()
            .zip(frame.non_finite_counts().iter().copied())
            .collect(),
    };
    Ok((frame, report))
}

/// Writes `frame` as CSV to a file (see [`write_csv_to`]).
pub fn write_csv(frame: &TelemetryFrame, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let io = |source| FeaturesError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    write_csv_to(frame, &mut writer).map_err(|e| match e {
        FeaturesError::Io { source, .. } => io(source),
        other => other,
    })?;
    writer.flush().map_err(io)
}

/// Writes `frame` as CSV: header `time,machine_id,<sensors>[,failure,failure_mode]`,
/// times as RFC 3339 UTC (`2026-01-01T00:00:10Z`), missing values as empty
/// fields, numbers in shortest round-trip form (reading them back is exact).
pub fn write_csv_to<W: Write>(frame: &TelemetryFrame, writer: W) -> Result<()> {
    let mut csv = csv::WriterBuilder::new().from_writer(writer);
    let io = |e: csv::Error| FeaturesError::Io {
        path: "<writer>".into(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut header: Vec<&str> = vec!["time", "machine_id"];
    header.extend(frame.sensor_names().iter().map(String::as_str));
    if frame.failure().is_some() {
        header.push("failure");
    }
    if frame.failure_mode().is_some() {
        header.push("failure_mode");
    }
    csv.write_record(&header).map_err(io)?;
    let mut fields: Vec<String> = vec![String::new(); header.len()];
    for i in 0..frame.len() {
        fields[0] = format_timestamp(frame.time()[i]);
        fields[1].clear();
        fields[1].push_str(frame.machine_id_of(i));
        for s in 0..frame.sensor_names().len() {
            let v = frame.sensor(s)[i];
            fields[2 + s] = if v.is_nan() {
                String::new()
            } else {
                format!("{v}")
            };
        }
        let mut next = 2 + frame.sensor_names().len();
        if let Some(f) = frame.failure() {
            fields[next] = f[i].to_string();
            next += 1;
        }
        if let Some(m) = frame.failure_mode() {
            fields[next] = m[i].as_str().to_owned();
        }
        csv.write_record(&fields).map_err(io)?;
    }
    csv.flush().map_err(|source| FeaturesError::Io {
        path: "<writer>".into(),
        source,
    })
}

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

    fn read(text: &str) -> Result<(TelemetryFrame, LoadReport)> {
        read_csv_from(text.as_bytes(), "test.csv", &CsvOptions::default())
    }

    const HEADER: &str = "time,machine_id,temperature,vibration,spindle_speed,power_consumption";

    #[test]
    fn reads_missing_offsets_extras_and_unsorted() {
        let text = format!(
            "{HEADER},failure,failure_mode,operator\n\
             2026-01-01T00:00:20Z,M2,70.5,,1500,12,0,none,bob\n\
             2026-01-01T02:00:10+02:00,M2,70,0.5,1500,inf,1,overheat,al\n\
             2026-01-01T00:00:10Z,M1,NaN,0.4,0,11.5,0,,x\n"
        );
        let (frame, report) = read(&text).unwrap();
        assert_eq!(frame.len(), 3);
        assert_eq!(frame.machine_ids(), ["M1", "M2"]);
        assert_eq!(report.extra_columns, ["operator"]);
        assert!(report.reordered_rows > 0);
        assert_eq!(report.missing[1], ("vibration".into(), 1));
        assert_eq!(report.non_finite[0], ("temperature".into(), 1));
        assert_eq!(report.non_finite[3], ("power_consumption".into(), 1));
        // 02:00:10+02:00 is 00:00:10Z: the first row of M2.
        assert_eq!(
            frame.time()[1],
            parse_timestamp("2026-01-01T00:00:10Z").unwrap()
        );
        assert_eq!(frame.failure().unwrap(), [0, 1, 0]);
        assert_eq!(frame.failure_mode().unwrap()[1], FailureMode::Overheat);
    }

    #[test]
    fn bad_inputs_name_file_line_and_column() {
        let err = read(&format!(
            "{HEADER}\n2026-01-01T00:00:10Z,M1,1,2,3,4\n2026-01-01T00:00:20Z,M1,1,two,3,4\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.csv, line 3, column `vibration`: cannot parse number \"two\""
        );
        let err = read(&format!("{HEADER}\nyesterday,M1,1,2,3,4\n")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "test.csv, line 2, column `time`: cannot parse timestamp \"yesterday\""
            ),
            "{err}"
        );
        let err = read("time,machine_id,temprature,vibration,spindle_speed,power_consumption\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.csv, line 1: missing required column `temperature` (found `temprature`; misspelt?)"
        );
        let err = read("time,machine_id\n").unwrap_err();
        assert!(
            matches!(err, FeaturesError::MissingColumn { ref column, suggestion: None, .. } if column == "temperature")
        );
        assert!(matches!(
            read("").unwrap_err(),
            FeaturesError::EmptyInput { .. }
        ));
        assert!(matches!(
            read(&format!("{HEADER}\n")).unwrap_err(),
            FeaturesError::EmptyInput { .. }
        ));
        let err = read(&format!("{HEADER}\n2026-01-01T00:00:10Z,M1,1,2,3\n")).unwrap_err();
        assert!(
            matches!(err, FeaturesError::MalformedCsv { line: 2, .. }),
            "{err}"
        );
        let err = read(&format!(
            "{HEADER},failure\n2026-01-01T00:00:10Z,M1,1,2,3,4,yes\n"
        ))
        .unwrap_err();
        assert!(
            matches!(err, FeaturesError::BadLabel { line: 2, .. }),
            "{err}"
        );
        let err = read(&format!(
            "{HEADER},failure_mode\n2026-01-01T00:00:10Z,M1,1,2,3,4,melted\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("failure_mode"), "{err}");
    }

    #[test]
    fn custom_sensors() {
        let text = "machine_id,pressure,time\nA,3.5,2026-01-01T00:00:00Z\n";
        let (frame, _) = read_csv_from(
            text.as_bytes(),
            "p.csv",
            &CsvOptions::with_sensors(["pressure"]),
        )
        .unwrap();
        assert_eq!(frame.sensor_by_name("pressure").unwrap(), [3.5]);
    }

    #[test]
    fn write_then_read_is_exact() {
        let text = format!(
            "{HEADER},failure,failure_mode\n2026-01-01T00:00:10.25Z,M1,0.1,,1e-7,3,1,tool_wear\n2026-01-01T00:00:20Z,M1,-0,2,3.3333333333333335,4,0,none\n"
        );
        let (frame, _) = read(&text).unwrap();
        let mut out = Vec::new();
        write_csv_to(&frame, &mut out).unwrap();
        let (again, _) = read(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(format!("{frame:?}"), format!("{again:?}"));
        assert!(std::str::from_utf8(&out).unwrap().starts_with(&format!(
            "{HEADER},failure,failure_mode\n2026-01-01T00:00:10.250Z,M1,"
        )));
    }
}
