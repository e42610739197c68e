//! Command-line pieces the binaries share, so `pipeline`, `evaluate` and the
//! scheduler's child jobs spell their options the same way.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use vigil_features::SimulatorConfig;

use crate::error::PipelineError;
use crate::source::{DEFAULT_TABLE, DataSource};

/// Where telemetry comes from, as a command-line choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The built-in deterministic simulator.
    Sim,
    /// A CSV file (`--input`) with the header
    /// `time,machine_id,temperature,vibration,spindle_speed,power_consumption,failure[,failure_mode]`.
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
}

impl SourceArgs {
    /// The data source these arguments name; `simulated` is used for `--source sim`.
    pub fn resolve(&self, simulated: SimulatorConfig) -> Result<DataSource, PipelineError> {
        Ok(match self.source {
            SourceKind::Sim => DataSource::Simulated(simulated),
            SourceKind::Csv => {
                DataSource::Csv(self.input.clone().ok_or_else(|| {
                    PipelineError::Invalid("--source csv needs --input FILE".into())
                })?)
            }
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
            DataSource::Csv(p) => assert_eq!(p, PathBuf::from("a.csv")),
            other => panic!("expected csv, got {other:?}"),
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
