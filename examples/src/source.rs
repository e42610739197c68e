//! Where telemetry comes from: the simulator (the default), a CSV file, or a
//! PostgreSQL / TimescaleDB table configured by the reference environment
//! variables (`POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USER`,
//! `POSTGRES_PASSWORD`, `POSTGRES_DB`).

use std::path::PathBuf;

use vigil_features::{
    CsvOptions, LoadQuery, PgConfig, SimulatorConfig, TelemetryFrame, TelemetryStore, read_csv,
    simulate,
};

use crate::error::PipelineError;

/// The telemetry table the pipeline reads and `simulate` writes.
pub const DEFAULT_TABLE: &str = "telemetry";

/// A telemetry source.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// The deterministic simulator.
    Simulated(SimulatorConfig),
    /// A CSV file: the reference header, or the columns, delimiter and time
    /// format that `options` name.
    Csv {
        /// The file.
        path: PathBuf,
        /// How to read it.
        options: CsvOptions,
    },
    /// A PostgreSQL / TimescaleDB table.
    Postgres {
        /// Connection settings (from the environment by default).
        config: Box<PgConfig>,
        /// The table.
        table: String,
        /// Time range and machines.
        query: LoadQuery,
    },
}

/// What loading produced: the frame and a one-line description of it.
#[derive(Debug)]
pub struct Loaded {
    /// The telemetry.
    pub frame: TelemetryFrame,
    /// Where it came from, for logs and tracking.
    pub description: String,
}

impl DataSource {
    /// The short name logged as the `data_source` parameter.
    pub fn kind(&self) -> &'static str {
        match self {
            DataSource::Simulated(_) => "sim",
            DataSource::Csv { .. } => "csv",
            DataSource::Postgres { .. } => "postgres",
        }
    }

    /// The reference pipeline's default: a few machines, a week at 10 s.
    pub fn default_simulation() -> DataSource {
        DataSource::Simulated(default_simulator_config())
    }

    /// PostgreSQL from the `POSTGRES_*` environment variables.
    pub fn postgres_from_env(table: &str) -> Result<DataSource, PipelineError> {
        Ok(DataSource::Postgres {
            config: Box::new(PgConfig::from_env()?),
            table: table.to_string(),
            query: LoadQuery::default(),
        })
    }

    /// This source from `from` (µs since the epoch) on, when it is a
    /// PostgreSQL table whose query names no start (a start the operator chose
    /// is kept); a CSV file or the simulator unchanged (they are read whole).
    pub fn starting_at(&self, from: i64) -> DataSource {
        let mut source = self.clone();
        if let DataSource::Postgres { query, .. } = &mut source
            && query.from.is_none()
        {
            query.from = Some(from);
        }
        source
    }

    /// Loads the telemetry.
    pub fn load(&self) -> Result<Loaded, PipelineError> {
        match self {
            DataSource::Simulated(config) => {
                let sim = simulate(config)?;
                Ok(Loaded {
                    description: format!(
                        "simulated telemetry: {} machines × {} days at {} s (seed {})",
                        config.machines, config.days, config.interval_seconds, config.seed
                    ),
                    frame: sim.frame,
                })
            }
            DataSource::Csv { path, options } => {
                let (frame, report) = read_csv(path, options)?;
                let mut description = format!(
                    "{} ({} rows; time `{}` as {}, machine id `{}`)",
                    path.display(),
                    report.rows,
                    report.time_column,
                    report.time_format,
                    report.machine_column
                );
                if !report.extra_columns.is_empty() {
                    description.push_str(&format!(
                        "; ignored columns: {}",
                        report.extra_columns.join(", ")
                    ));
                }
                if report.reordered_rows > 0 {
                    description.push_str(&format!("; {} rows re-sorted", report.reordered_rows));
                }
                Ok(Loaded { frame, description })
            }
            DataSource::Postgres {
                config,
                table,
                query,
            } => {
                let mut store = TelemetryStore::connect(config, table)?;
                let frame = store.load(query)?;
                Ok(Loaded {
                    description: format!("PostgreSQL table {table} ({} rows)", frame.len()),
                    frame,
                })
            }
        }
    }
}

/// Four machines for a week at 10 s: about 240,000 rows, enough for the
/// forests to learn the failure modes and small enough for a one-minute run.
pub fn default_simulator_config() -> SimulatorConfig {
    SimulatorConfig {
        machines: 4,
        days: 7.0,
        ..SimulatorConfig::default()
    }
}
