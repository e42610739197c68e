//! Reading telemetry CSV: header, then one record at a time into a [`FrameBuilder`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::csv_io::header::{Layout, resolve_layout};
use crate::csv_io::options::{CsvOptions, TimeFormat};
use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, FrameBuilder, TelemetryFrame};
use crate::time::{MICROS_PER_SECOND, parse_epoch, parse_timestamp};

/// What loading noticed without failing: nothing is dropped silently.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadReport {
    /// Data rows read.
    pub rows: usize,
    /// The header column the times were read from (e.g. `timestamp`).
    pub time_column: String,
    /// The header column the machine ids were read from (e.g. `asset_id`).
    pub machine_column: String,
    /// The time format used: the one asked for, or what
    /// [`TimeFormat::Auto`] decided from the first row.
    pub time_format: TimeFormat,
    /// Header columns that are neither required nor labels (ignored).
    pub extra_columns: Vec<String>,
    /// Rows that were out of (machine, time) order and were sorted.
    pub reordered_rows: usize,
    /// Per sensor: empty fields (missing values).
    pub missing: Vec<(String, usize)>,
    /// Per sensor: non-finite values (`inf`, `NaN` text) stored as missing.
    pub non_finite: Vec<(String, usize)>,
}

/// Reads a telemetry CSV file (see [`read_csv_from`]).
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
///
/// Columns are matched by name, in any order (see [`CsvOptions`] for the time
/// and machine-id names and the delimiter); an empty sensor field is a missing
/// value; labels `failure` (`0`/`1`/`true`/`false`, any case) and
/// `failure_mode` (`none`, `overheat`, ... in any case; empty is `none`) are
/// read when present. Every bad input is a typed error naming the line and column.
pub fn read_csv_from<R: Read>(
    reader: R,
    source_name: &str,
    options: &CsvOptions,
) -> Result<(TelemetryFrame, LoadReport)> {
    options.validate()?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(options.delimiter.as_byte())
        .from_reader(reader);
    let header = read_header(&mut csv, source_name)?;
    let layout = resolve_layout(&header, options, source_name)?;
    let mut rows = RowReader::new(&layout, options, source_name);
    let mut record = csv::ByteRecord::new();
    while csv
        .read_byte_record(&mut record)
        .map_err(|e| malformed(source_name, &e))?
    {
        rows.push(&record)?;
    }
    rows.finish()
}

fn malformed(source_name: &str, e: &csv::Error) -> FeaturesError {
    FeaturesError::MalformedCsv {
        source_name: source_name.to_owned(),
        line: e.position().map_or(0, csv::Position::line),
        message: e.to_string(),
    }
}

/// The trimmed header names; an absent or blank header is [`FeaturesError::EmptyInput`].
fn read_header<R: Read>(csv: &mut csv::Reader<R>, source_name: &str) -> Result<Vec<String>> {
    let header: Vec<String> = csv
        .byte_headers()
        .map_err(|e| malformed(source_name, &e))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(FeaturesError::EmptyInput {
            source_name: source_name.to_owned(),
        });
    }
    Ok(header)
}

/// Turns records into frame rows, counting what it tolerates.
struct RowReader<'a> {
    layout: &'a Layout,
    sensor_names: &'a [String],
    source_name: &'a str,
    /// [`TimeFormat::Auto`] until the first row decides.
    time_format: TimeFormat,
    builder: FrameBuilder,
    missing: Vec<usize>,
    values: Vec<f64>,
}

impl<'a> RowReader<'a> {
    fn new(layout: &'a Layout, options: &'a CsvOptions, source_name: &'a str) -> RowReader<'a> {
        let k = options.sensors.len();
        RowReader {
            layout,
            sensor_names: &options.sensors,
            source_name,
            time_format: options.time_format,
            builder: FrameBuilder::new(
                options.sensors.clone(),
                layout.failure.is_some(),
                layout.failure_mode.is_some(),
            ),
            missing: vec![0; k],
            values: vec![0.0; k],
        }
    }

    fn push(&mut self, record: &csv::ByteRecord) -> Result<()> {
        let line = record.position().map_or(0, csv::Position::line);
        let time = self.time(record, line)?;
        let (machine_col, ref machine_name) = self.layout.machine;
        let machine = field(record, machine_col)
            .map(str::trim)
            .unwrap_or_default();
        if machine.is_empty() {
            return Err(self.bad_label(
                record,
                line,
                machine_col,
                machine_name,
                "a non-empty machine id",
            ));
        }
        self.sensor_values(record, line)?;
        let failure = match self.layout.failure {
            Some(col) => Some(self.failure(record, line, col)?),
            None => None,
        };
        let mode = match self.layout.failure_mode {
            Some(col) => Some(self.failure_mode(record, line, col)?),
            None => None,
        };
        self.builder
            .push(machine, time, &self.values, failure, mode);
        Ok(())
    }

    fn time(&mut self, record: &csv::ByteRecord, line: u64) -> Result<i64> {
        let (col, ref name) = self.layout.time;
        let text = field(record, col).map(str::trim).unwrap_or_default();
        if self.time_format == TimeFormat::Auto {
            self.time_format = detect_time_format(text);
        }
        let parsed = match self.time_format {
            TimeFormat::Rfc3339 => parse_timestamp(text),
            TimeFormat::EpochSeconds => parse_epoch(text, MICROS_PER_SECOND),
            TimeFormat::EpochMillis => parse_epoch(text, MICROS_PER_SECOND / 1000),
            TimeFormat::Auto => None,
        };
        parsed.ok_or_else(|| FeaturesError::BadTimestamp {
            source_name: self.source_name.to_owned(),
            line,
            column: name.clone(),
            value: field_text(record, col),
            expected: self.time_format.expected(),
        })
    }

    /// Fills `self.values` in sensor order.
    fn sensor_values(&mut self, record: &csv::ByteRecord, line: u64) -> Result<()> {
        for (s, &col) in self.layout.sensors.iter().enumerate() {
            self.values[s] = match field(record, col).map(str::trim) {
                Some("") => {
                    self.missing[s] += 1;
                    f64::NAN
                }
                Some(text) => match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    Ok(_) => {
                        self.builder.count_non_finite(s);
                        f64::NAN
                    }
                    Err(_) => return Err(self.bad_number(record, line, s, col)),
                },
                None => return Err(self.bad_number(record, line, s, col)),
            };
        }
        Ok(())
    }

    fn failure(&self, record: &csv::ByteRecord, line: u64, col: usize) -> Result<u8> {
        let text = field(record, col).map(str::trim).unwrap_or("?");
        match text {
            "0" | "0.0" => Ok(0),
            "1" | "1.0" => Ok(1),
            t if t.eq_ignore_ascii_case("false") => Ok(0),
            t if t.eq_ignore_ascii_case("true") => Ok(1),
            _ => Err(self.bad_label(record, line, col, "failure", "0, 1, true or false")),
        }
    }

    fn failure_mode(&self, record: &csv::ByteRecord, line: u64, col: usize) -> Result<FailureMode> {
        field(record, col)
            .and_then(FailureMode::parse)
            .ok_or_else(|| {
                self.bad_label(
                    record,
                    line,
                    col,
                    "failure_mode",
                    "none, overheat, bearing_wear, power_surge or tool_wear, in any case",
                )
            })
    }

    fn bad_number(
        &self,
        record: &csv::ByteRecord,
        line: u64,
        s: usize,
        col: usize,
    ) -> FeaturesError {
        FeaturesError::BadNumber {
            source_name: self.source_name.to_owned(),
            line,
            column: self.sensor_names[s].clone(),
            value: field_text(record, col),
        }
    }

    fn bad_label(
        &self,
        record: &csv::ByteRecord,
        line: u64,
        col: usize,
        column: &str,
        expected: &'static str,
    ) -> FeaturesError {
        FeaturesError::BadLabel {
            source_name: self.source_name.to_owned(),
            line,
            column: column.to_owned(),
            value: field_text(record, col),
            expected,
        }
    }

    fn finish(self) -> Result<(TelemetryFrame, LoadReport)> {
        if self.builder.is_empty() {
            return Err(FeaturesError::EmptyInput {
                source_name: self.source_name.to_owned(),
            });
        }
        let frame = self.builder.finish();
        let names = self.sensor_names.iter().cloned();
        let report = LoadReport {
            rows: frame.len(),
            time_column: self.layout.time.1.clone(),
            machine_column: self.layout.machine.1.clone(),
            time_format: self.time_format,
            extra_columns: self.layout.extra_columns.clone(),
            reordered_rows: frame.reordered_rows(),
            missing: names.clone().zip(self.missing).collect(),
            non_finite: names
                .zip(frame.non_finite_counts().iter().copied())
                .collect(),
        };
        Ok((frame, report))
    }
}

/// What [`TimeFormat::Auto`] makes of the first row's time: RFC 3339 text, or
/// an epoch whose unit the magnitude tells (seconds below 10^11, milliseconds
/// below 10^14); `Auto` again when it is neither (that row is then an error).
fn detect_time_format(text: &str) -> TimeFormat {
    if parse_timestamp(text).is_some() {
        return TimeFormat::Rfc3339;
    }
    match text.parse::<f64>() {
        Ok(v) if v.abs() < 1e11 => TimeFormat::EpochSeconds,
        Ok(v) if v.abs() < 1e14 => TimeFormat::EpochMillis,
        _ => TimeFormat::Auto,
    }
}

/// Field `col` as UTF-8 (`None` when absent or not UTF-8).
fn field(record: &csv::ByteRecord, col: usize) -> Option<&str> {
    std::str::from_utf8(record.get(col)?).ok()
}

/// Field `col` for an error message, whatever its bytes.
fn field_text(record: &csv::ByteRecord, col: usize) -> String {
    String::from_utf8_lossy(record.get(col).unwrap_or_default()).into_owned()
}
