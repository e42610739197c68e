//! Writing telemetry frames and feature matrices as CSV.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::batch::FeatureMatrix;
use crate::error::{FeaturesError, Result};
use crate::frame::TelemetryFrame;
use crate::time::format_timestamp;

/// Writes `frame` as CSV to a file (see [`write_csv_to`]).
pub fn write_csv(frame: &TelemetryFrame, path: impl AsRef<Path>) -> Result<()> {
    to_file(path.as_ref(), |writer| write_csv_to(frame, writer))
}

/// Writes `frame` as CSV: header `time,machine_id,<sensors>[,failure,failure_mode]`,
/// times as RFC 3339 UTC (`2026-01-01T00:00:10Z`), missing values as empty
/// fields, numbers in shortest round-trip form (reading them back is exact).
pub fn write_csv_to<W: Write>(frame: &TelemetryFrame, writer: W) -> Result<()> {
    let mut csv = csv::WriterBuilder::new().from_writer(writer);
    let mut header: Vec<&str> = vec!["time", "machine_id"];
    header.extend(frame.sensor_names().iter().map(String::as_str));
    if frame.failure().is_some() {
        header.push("failure");
    }
    if frame.failure_mode().is_some() {
        header.push("failure_mode");
    }
    csv.write_record(&header).map_err(writer_error)?;
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
        csv.write_record(&fields).map_err(writer_error)?;
    }
    csv.flush().map_err(|source| FeaturesError::Io {
        path: "<writer>".into(),
        source,
    })
}

impl FeatureMatrix {
    /// Writes the matrix as CSV to a file (see [`write_csv_to`](Self::write_csv_to)).
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        to_file(path.as_ref(), |writer| self.write_csv_to(writer))
    }

    /// Writes the matrix as CSV, one line per row in the matrix's order.
    ///
    /// Header `time,machine_id,<feature names>`. Times are RFC 3339 UTC
    /// (`2026-01-01T00:00:10Z`, fractional seconds only when needed). Values
    /// are in shortest round-trip form (`0.1`, `1e-7`, `-0.0`), so parsing
    /// them back gives the same bits; NaN is an empty field, ±infinity is
    /// `inf` / `-inf`. pandas reads this back as it is:
    /// `pd.read_csv(path, dtype={"machine_id": str})` gives float64 feature
    /// columns with NaN and ±inf (its default float parser returns the same
    /// doubles), and `pd.to_datetime(df["time"], format="ISO8601", utc=True)`
    /// the times.
    ///
    /// Errors: a feature named `time` or `machine_id` (the header would be
    /// ambiguous), and write failures.
    ///
    /// ```
    /// use vigil_features::{FeatureSpec, SimulatorConfig, simulate};
    /// let sim = simulate(&SimulatorConfig { machines: 1, days: 0.01, ..Default::default() })?;
    /// let features = FeatureSpec::default().compute(&sim.frame)?;
    /// let mut out = Vec::new();
    /// features.write_csv_to(&mut out)?;
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.starts_with("time,machine_id,temperature,temperature_mean_5m,"));
    /// assert_eq!(text.lines().count(), features.nrows() + 1);
    /// # Ok::<(), vigil_features::FeaturesError>(())
    /// ```
    pub fn write_csv_to<W: Write>(&self, writer: W) -> Result<()> {
        if let Some(clash) = self
            .names
            .iter()
            .find(|n| matches!(n.as_str(), "time" | "machine_id"))
        {
            return Err(FeaturesError::InvalidParameter {
                name: "names",
                reason: format!(
                    "a feature named `{clash}` clashes with the CSV's own `{clash}` column"
                ),
            });
        }
        let mut csv = csv::WriterBuilder::new().from_writer(writer);
        let header = ["time", "machine_id"]
            .into_iter()
            .chain(self.names.iter().map(String::as_str));
        csv.write_record(header).map_err(writer_error)?;
        let mut fields: Vec<String> = vec![String::new(); self.names.len() + 2];
        for (i, row) in self.values.rows().into_iter().enumerate() {
            fields[0] = format_timestamp(self.time[i]);
            fields[1].clear();
            fields[1].push_str(&self.machine_ids[self.machine[i] as usize]);
            for (slot, &v) in fields[2..].iter_mut().zip(row) {
                *slot = format_feature(v);
            }
            csv.write_record(&fields).map_err(writer_error)?;
        }
        csv.flush().map_err(|source| FeaturesError::Io {
            path: "<writer>".into(),
            source,
        })
    }
}

/// Shortest round-trip text (`Debug` switches to exponents for tiny and huge
/// values, which keeps the file short); NaN empty, infinities `inf` / `-inf`.
fn format_feature(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:?}")
    }
}

/// Creates `path`, runs `write` on a buffered writer and flushes it; IO errors name the file.
fn to_file(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let io = |source| FeaturesError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    write(&mut writer).map_err(|e| match e {
        FeaturesError::Io { source, .. } => io(source),
        other => other,
    })?;
    writer.flush().map_err(io)
}

fn writer_error(e: csv::Error) -> FeaturesError {
    let source = match e.into_kind() {
        csv::ErrorKind::Io(source) => source,
        other => std::io::Error::other(format!("{other:?}")),
    };
    FeaturesError::Io {
        path: "<writer>".into(),
        source,
    }
}
