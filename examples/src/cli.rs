//! Command-line pieces the binaries share, so `pipeline`, `evaluate` and the
//! scheduler's child jobs spell their options the same way.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use vigil_features::{CsvOptions, Delimiter, SimulatorConfig, TimeFormat};

use crate::error::PipelineError;
use crate::source::{DEFAULT_TABLE, DataSource, default_simulator_config};

/// Where telemetry comes from, as a command-line choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The built-in deterministic simulator.
    Sim,
    /// A CSV file (`--input`) with the header
    /// `time,machine_id,temperature,vibration,spindle_speed,power_consumption,failure[,failure_mode]`
    /// (other time / machine-id column names, delimiters and time formats: `--time-column`,
    /// `--machine-column`, `--delimiter`, `--time-format`).
    Csv,
    /// PostgreSQL / TimescaleDB from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
    /// POSTGRES_PASSWORD, POSTGRES_DB.
    Postgres,
}

/// `--source`, `--input` and `--table`, flattened into a binary's arguments.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Where telemetry comes from.
    #[arg(long, value_enum, default_value_t = SourceKind::Sim)]
    pub source: SourceKind,
    /// The CSV file for `--source csv`.
    #[arg(long, required_if_eq("source", "csv"))]
    pub input: Option<PathBuf>,
    /// The telemetry table for `--source postgres`.
    #[arg(long, default_value = DEFAULT_TABLE)]
    pub table: String,
    /// How to read the `--source csv` file.
    #[command(flatten)]
    pub csv: CsvArgs,
}

/// The data flags of `pipeline`: the source, and the simulated fleet's size
/// and seed. The scheduler reads them out of the pipeline's arguments (the
/// same struct parses both), so its drift check reads the data the job trains on.
#[derive(Debug, Clone, Args)]
pub struct TrainingDataArgs {
    /// `--source`, `--input`, `--table` and the CSV options.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Simulated machines (`--source sim`).
    #[arg(long, default_value_t = default_simulator_config().machines)]
    pub machines: usize,
    /// Simulated days (`--source sim`).
    #[arg(long, default_value_t = default_simulator_config().days)]
    pub days: f64,
    /// Seed of the simulator, the tuner and the forests.
    #[arg(long, default_value_t = default_simulator_config().seed)]
    pub seed: u64,
}

impl TrainingDataArgs {
    /// The source these flags name.
    pub fn resolve(&self) -> Result<DataSource, PipelineError> {
        self.source.resolve(SimulatorConfig {
            machines: self.machines,
            days: self.days,
            seed: self.seed,
            ..default_simulator_config()
        })
    }
}

/// `--time-column`, `--machine-column`, `--delimiter` and `--time-format`:
/// the [`CsvOptions`] of `--source csv` (the sensors are the reference four).
#[derive(Debug, Clone, Args)]
pub struct CsvArgs {
    /// The CSV column holding the time [default: `time`, else one of
    /// `timestamp`, `ts`, `datetime`, `date_time` in any case].
    #[arg(long, value_name = "NAME")]
    pub time_column: Option<String>,
    /// The CSV column holding the machine id [default: `machine_id`, else one
    /// of `asset_id`, `machine`, `asset`, `device_id` in any case].
    #[arg(long, value_name = "NAME")]
    pub machine_column: Option<String>,
    /// The CSV field delimiter: one character, or comma, semicolon, tab, pipe, space.
    #[arg(long, value_name = "CHAR", default_value_t = Delimiter::COMMA)]
    pub delimiter: Delimiter,
    /// How CSV times are written: auto (RFC 3339, or epoch seconds / milliseconds
    /// told apart by magnitude), rfc3339, epoch-s or epoch-ms.
    #[arg(long, value_name = "FORMAT", default_value_t = TimeFormat::Auto)]
    pub time_format: TimeFormat,
}

impl CsvArgs {
    /// The reader options these flags name.
    pub fn options(&self) -> CsvOptions {
        CsvOptions {
            time_column: self.time_column.clone(),
            machine_column: self.machine_column.clone(),
            delimiter: self.delimiter,
            time_format: self.time_format,
            ..CsvOptions::default()
        }
    }
}

impl SourceArgs {
    /// The data source these arguments name; `simulated` is used for `--source sim`.
    pub fn resolve(&self, simulated: SimulatorConfig) -> Result<DataSource, PipelineError> {
        Ok(match self.source {
            SourceKind::Sim => DataSource::Simulated(simulated),
            SourceKind::Csv => DataSource::Csv {
                path: self.input.clone().ok_or_else(|| {
                    PipelineError::Invalid("--source csv needs --input FILE".into())
                })?,
                options: self.csv.options(),
            },
            SourceKind::Postgres => DataSource::postgres_from_env(&self.table)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        source: SourceArgs,
    }

    #[test]
    fn csv_needs_an_input_file() {
        assert!(Cli::try_parse_from(["x", "--source", "csv"]).is_err());
        let cli = Cli::try_parse_from(["x", "--source", "csv", "--input", "a.csv"]).unwrap();
        match cli.source.resolve(SimulatorConfig::default()).unwrap() {
            DataSource::Csv { path, options } => {
                assert_eq!(path, PathBuf::from("a.csv"));
                assert_eq!(options, CsvOptions::default());
            }
            other => panic!("expected csv, got {other:?}"),
        }
    }

    #[test]
    fn csv_flags_map_into_the_reader_options() {
        let cli = Cli::try_parse_from([
            "x",
            "--source",
            "csv",
            "--input",
            "a.csv",
            "--time-column",
            "ts",
            "--machine-column",
            "asset_id",
            "--delimiter",
            ";",
            "--time-format",
            "epoch-ms",
        ])
        .unwrap();
        let expected = CsvOptions::default()
            .with_time_column("ts")
            .with_machine_column("asset_id")
            .with_delimiter(Delimiter::SEMICOLON)
            .with_time_format(TimeFormat::EpochMillis);
        match cli.source.resolve(SimulatorConfig::default()).unwrap() {
            DataSource::Csv { options, .. } => assert_eq!(options, expected),
            other => panic!("expected csv, got {other:?}"),
        }
        let tab = Cli::try_parse_from(["x", "--delimiter", "tab"]).unwrap();
        assert_eq!(tab.source.csv.delimiter, Delimiter::TAB);
        for bad in [["--delimiter", ";;"], ["--time-format", "epoch-us"]] {
            let err = Cli::try_parse_from(["x", bad[0], bad[1]]).unwrap_err();
            assert!(err.to_string().contains(bad[1]), "{err}");
        }
    }

    #[test]
    fn simulator_is_the_default() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.source.source, SourceKind::Sim);
        assert_eq!(cli.source.table, DEFAULT_TABLE);
        let config = SimulatorConfig {
            machines: 3,
            ..SimulatorConfig::default()
        };
        match cli.source.resolve(config).unwrap() {
            DataSource::Simulated(c) => assert_eq!(c.machines, 3),
            other => panic!("expected the simulator, got {other:?}"),
        }
    }
}
