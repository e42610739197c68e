//! PostgreSQL / TimescaleDB storage of telemetry (cargo feature `postgres`).
//!
//! One table per data set (default `telemetry`): `time TIMESTAMPTZ`,
//! `machine_id TEXT`, one `DOUBLE PRECISION` column per sensor (NULL = missing),
//! `failure SMALLINT` and `failure_mode TEXT` (NULL when unlabelled), and an
//! identity column `seq` that keeps duplicate timestamps in insertion order.
//! When the `timescaledb` extension is installed the table becomes a hypertable;
//! otherwise it stays a plain table. Either way it gets a `(machine_id, time)` index.
//!
//! Inserts use binary `COPY`; loads stream rows in (machine, time) order
//! straight into a [`FrameBuilder`], so the data is held once. Values are
//! always bound parameters and table/column names are validated identifiers.

use std::fmt;
use std::str::FromStr;

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, NoTls};
use chrono::{DateTime, Utc};

use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, FrameBuilder, REFERENCE_SENSORS, TelemetryFrame};

// The identifier rules and password scrubbing shared with vigil-tuning, which
// compiles the same file: the crates stay independent, the rules have one source.
#[path = "sql_ident.rs"]
mod sql_ident;

#[path = "pg_stream.rs"]
mod stream;
pub use stream::{LoadProgress, StreamOptions, StreamSummary};

/// Connection settings. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password (may be empty).
    pub password: String,
    /// Database name.
    pub dbname: String,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("dbname", &self.dbname)
            .finish()
    }
}

impl PgConfig {
    /// From the reference pipeline's variables: `POSTGRES_HOST` (default
    /// `localhost`), `POSTGRES_PORT` (5432), `POSTGRES_USER` (`postgres`),
    /// `POSTGRES_PASSWORD` (empty), `POSTGRES_DB` (`postgres`).
    pub fn from_env() -> Result<PgConfig> {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let port_text = var("POSTGRES_PORT", "5432");
        let port = port_text.trim().parse::<u16>().map_err(|_| {
            FeaturesError::DatabaseConfig(format!(
                "POSTGRES_PORT={port_text:?} is not a port number"
            ))
        })?;
        Ok(PgConfig {
            host: var("POSTGRES_HOST", "localhost"),
            port,
            user: var("POSTGRES_USER", "postgres"),
            password: std::env::var("POSTGRES_PASSWORD").unwrap_or_default(),
            dbname: var("POSTGRES_DB", "postgres"),
        })
    }

    /// From a URL such as `postgres://user:password@host:5432/db` (or a
    /// `key=value` connection string). The password never appears in errors.
    pub fn from_url(url: &str) -> Result<PgConfig> {
        let parsed = ::postgres::Config::from_str(url).map_err(|e| {
            FeaturesError::DatabaseConfig(format!(
                "cannot parse the connection URL: {}",
                sql_ident::scrub_conninfo_password(&e.to_string(), url)
            ))
        })?;
        let host = match parsed.get_hosts().first() {
            Some(::postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(::postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        Ok(PgConfig {
            host,
            port: parsed.get_ports().first().copied().unwrap_or(5432),
            user: parsed.get_user().unwrap_or("postgres").to_owned(),
            password: parsed
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            dbname: parsed.get_dbname().unwrap_or("postgres").to_owned(),
        })
    }

    /// Opens a connection (10 s timeout). Errors name host, port, database and
    /// user, never the password.
    pub fn connect(&self) -> Result<Client> {
        let mut config = ::postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(&self.dbname)
            .connect_timeout(std::time::Duration::from_secs(10))
            .application_name("vigil-features");
        config.connect(NoTls).map_err(|e| FeaturesError::Connect {
            host: self.host.clone(),
            port: self.port,
            database: self.dbname.clone(),
            user: self.user.clone(),
            message: self.scrub(&error_text(&e)),
        })
    }

    fn scrub(&self, message: &str) -> String {
        sql_ident::scrub_password(message, &self.password)
    }
}

pub(crate) fn error_text(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// A validated SQL identifier (`telemetry`, `plant_a.telemetry`), always emitted double-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    parts: Vec<String>,
}

impl Identifier {
    /// Accepts one or two dot-separated parts, each `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes.
    /// Case is kept (names are always quoted).
    pub fn new(name: &str) -> Result<Identifier> {
        let invalid = |reason| FeaturesError::InvalidIdentifier {
            name: name.to_owned(),
            reason,
        };
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 2 {
            return Err(invalid("at most one dot (schema.table)"));
        }
        for part in &parts {
            sql_ident::check_identifier(part).map_err(|e| invalid(e.reason()))?;
        }
        Ok(Identifier {
            parts: parts.into_iter().map(str::to_owned).collect(),
        })
    }

    /// The quoted form for SQL text.
    pub fn quoted(&self) -> String {
        self.parts
            .iter()
            .map(|p| sql_ident::quote_identifier(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The last part (the table's own name).
    pub fn name(&self) -> &str {
        self.parts.last().map_or("", String::as_str)
    }
}

/// How [`TelemetryStore::create_schema`] laid out the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// A TimescaleDB hypertable partitioned on `time`.
    Hypertable,
    /// A plain PostgreSQL table (no `timescaledb` extension).
    PlainTable,
}

/// Which rows [`TelemetryStore::load`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadQuery {
    /// Inclusive lower bound on time (µs since epoch UTC).
    pub from: Option<i64>,
    /// Exclusive upper bound on time.
    pub to: Option<i64>,
    /// Only these machines (all when `None`).
    pub machines: Option<Vec<String>>,
}

/// A telemetry table on a PostgreSQL / TimescaleDB server.
pub struct TelemetryStore {
    client: Client,
    table: Identifier,
    sensors: Vec<Identifier>,
}

impl fmt::Debug for TelemetryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryStore")
            .field("table", &self.table)
            .field("sensors", &self.sensors)
            .finish_non_exhaustive()
    }
}

fn db_error(operation: impl Into<String>) -> impl FnOnce(::postgres::Error) -> FeaturesError {
    let operation = operation.into();
    move |e| FeaturesError::Database {
        operation,
        message: error_text(&e),
    }
}

fn to_datetime(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(|| FeaturesError::InvalidParameter {
        name: "time",
        reason: format!("{micros} µs is outside the representable range"),
    })
}

impl TelemetryStore {
    /// Connects and binds to `table` with the four reference sensors.
    pub fn connect(config: &PgConfig, table: &str) -> Result<TelemetryStore> {
        TelemetryStore::with_sensors(config.connect()?, table, &REFERENCE_SENSORS)
    }

    /// Uses an open connection, `table`, and these sensor columns.
    pub fn with_sensors(client: Client, table: &str, sensors: &[&str]) -> Result<TelemetryStore> {
        let table = Identifier::new(table)?;
        let sensors = sensors
            .iter()
            .map(|s| Identifier::new(s))
            .collect::<Result<Vec<_>>>()?;
        if sensors.iter().any(|s| s.parts.len() != 1) {
            return Err(FeaturesError::InvalidIdentifier {
                name: sensors.iter().map(Identifier::quoted).collect(),
                reason: "sensor columns take no schema",
            });
        }
        Ok(TelemetryStore {
            client,
            table,
            sensors,
        })
    }

    /// The underlying connection.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Whether the `timescaledb` extension is installed in this database.
    pub fn has_timescaledb(&mut self) -> Result<bool> {
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
                &[],
            )
            .map_err(db_error("extension check"))?;
        Ok(row.get(0))
    }

    /// Creates the table if needed: a hypertable when TimescaleDB is installed,
    /// else a plain table; plus the `(machine_id, time)` index.
    pub fn create_schema(&mut self) -> Result<SchemaKind> {
        let table = self.table.quoted();
        let sensor_columns: String = self
            .sensors
            .iter()
            .map(|s| format!("{} DOUBLE PRECISION, ", s.quoted()))
            .collect();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (time TIMESTAMPTZ NOT NULL, machine_id TEXT NOT NULL, {sensor_columns}\
             failure SMALLINT, failure_mode TEXT, seq BIGINT GENERATED ALWAYS AS IDENTITY)"
        );
        self.client
            .batch_execute(&create)
            .map_err(db_error(format!("CREATE TABLE {table}")))?;
        let kind = if self.has_timescaledb()? {
            let name = self.table.parts.join(".");
            self.client
                .execute("SELECT create_hypertable($1::text::regclass, 'time', if_not_exists => TRUE, migrate_data => TRUE)", &[&name])
                .map_err(db_error(format!("create_hypertable({table})")))?;
            SchemaKind::Hypertable
        } else {
            SchemaKind::PlainTable
        };
        let index = Identifier::new(
            &format!("{}_machine_time_idx", self.table.name())
                .chars()
                .take(sql_ident::MAX_IDENTIFIER_BYTES)
                .collect::<String>(),
        )?;
        let create_index = format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (machine_id, time, seq)",
            index.quoted()
        );
        self.client
            .batch_execute(&create_index)
            .map_err(db_error(format!("CREATE INDEX on {table}")))?;
        Ok(kind)
    }

    /// Appends every row of `frame` with one binary `COPY`; returns the rows written.
    /// The frame must have this store's sensor columns; missing values become NULL.
    pub fn insert(&mut self, frame: &TelemetryFrame) -> Result<u64> {
        let columns: Vec<&[f64]> = self
            .sensors
            .iter()
            .map(|s| {
                frame
                    .sensor_by_name(s.name())
                    .ok_or_else(|| FeaturesError::UnknownSensor {
                        feature: format!("table {}", self.table.quoted()),
                        sensor: s.name().to_owned(),
                        available: frame.sensor_names().join(", "),
                    })
            })
            .collect::<Result<_>>()?;
        let table = self.table.quoted();
        let names: String = self
            .sensors
            .iter()
            .map(|s| format!("{}, ", s.quoted()))
            .collect();
        let sql = format!(
            "COPY {table} (time, machine_id, {names}failure, failure_mode) FROM STDIN (FORMAT binary)"
        );
        let mut types = vec![Type::TIMESTAMPTZ, Type::TEXT];
        types.extend(std::iter::repeat_n(Type::FLOAT8, self.sensors.len()));
        types.extend([Type::INT2, Type::TEXT]);
        let operation = format!("COPY INTO {table}");
        let writer = self
            .client
            .copy_in(&sql)
            .map_err(db_error(operation.clone()))?;
        let mut writer = BinaryCopyInWriter::new(writer, &types);
        let mut values: Vec<Option<f64>> = vec![None; columns.len()];
        for i in 0..frame.len() {
            let time = to_datetime(frame.time()[i])?;
            for (slot, column) in values.iter_mut().zip(&columns) {
                let v = column[i];
                *slot = if v.is_nan() { None } else { Some(v) };
            }
            let failure: Option<i16> = frame.failure().map(|f| i16::from(f[i]));
            let mode: Option<&str> = frame.failure_mode().map(|m| m[i].as_str());
            let machine = frame.machine_id_of(i);
            let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(types.len());
            row.push(&time);
            row.push(&machine);
            for v in &values {
                row.push(v);
            }
            row.push(&failure);
            row.push(&mode);
            writer.write(&row).map_err(db_error(operation.clone()))?;
        }
        writer.finish().map_err(db_error(operation))
    }

    /// Loads rows in `query`'s time range (and machines), streamed in
    /// (machine, time) order into a frame. Labels are loaded when the first row
    /// has them.
    pub fn load(&mut self, query: &LoadQuery) -> Result<TelemetryFrame> {
        let table = self.table.quoted();
        let names: String = self
            .sensors
            .iter()
            .map(|s| format!("{}, ", s.quoted()))
            .collect();
        let sql = format!(
            "SELECT time, machine_id, {names}failure, failure_mode FROM {table} \
             WHERE ($1::timestamptz IS NULL OR time >= $1) AND ($2::timestamptz IS NULL OR time < $2) \
             AND ($3::text[] IS NULL OR machine_id = ANY($3)) ORDER BY machine_id, time, seq"
        );
        let from = query.from.map(to_datetime).transpose()?;
        let to = query.to.map(to_datetime).transpose()?;
        let params: [&(dyn ToSql + Sync); 3] = [&from, &to, &query.machines];
        let operation = format!("SELECT FROM {table}");
        let mut rows = self
            .client
            .query_raw(&sql, params.iter().copied())
            .map_err(db_error(operation.clone()))?;
        let k = self.sensors.len();
        let sensor_names: Vec<String> = self.sensors.iter().map(|s| s.name().to_owned()).collect();
        let mut builder: Option<FrameBuilder> = None;
        let mut values = vec![f64::NAN; k];
        let bad_value = |column: &str, e: ::postgres::Error| FeaturesError::Database {
            operation: format!("reading column {column} of {table}"),
            message: error_text(&e),
        };
        while let Some(row) = rows.next().map_err(db_error(operation.clone()))? {
            let time: DateTime<Utc> = row.try_get(0).map_err(|e| bad_value("time", e))?;
            let machine: &str = row.try_get(1).map_err(|e| bad_value("machine_id", e))?;
            for (s, slot) in values.iter_mut().enumerate() {
                let v: Option<f64> = row
                    .try_get(2 + s)
                    .map_err(|e| bad_value(&sensor_names[s], e))?;
                *slot = v.unwrap_or(f64::NAN);
            }
            let failure: Option<i16> = row.try_get(2 + k).map_err(|e| bad_value("failure", e))?;
            let mode_text: Option<&str> = row
                .try_get(3 + k)
                .map_err(|e| bad_value("failure_mode", e))?;
            let mode = match mode_text {
                Some(text) => {
                    Some(
                        FailureMode::parse(text).ok_or_else(|| FeaturesError::Database {
                            operation: format!("reading column failure_mode of {table}"),
                            message: format!("unknown failure mode {text:?}"),
                        })?,
                    )
                }
                None => None,
            };
            let failure = match failure {
                Some(f @ 0..=1) => Some(u8::try_from(f).unwrap_or(0)),
                Some(other) => {
                    return Err(FeaturesError::Database {
                        operation: format!("reading column failure of {table}"),
                        message: format!("label {other} is not 0 or 1"),
                    });
                }
                None => None,
            };
            let b = builder.get_or_insert_with(|| {
                FrameBuilder::new(sensor_names.clone(), failure.is_some(), mode.is_some())
            });
            b.push(machine, time.timestamp_micros(), &values, failure, mode);
        }
        match builder {
            Some(b) => Ok(b.finish()),
            None => Err(FeaturesError::EmptyInput {
                source_name: format!("table {table} (query {query:?})"),
            }),
        }
    }
}
