//! Streamed, per-machine reads of a telemetry table with bounded memory.
//!
//! [`TelemetryStore::for_each_machine`] reads rows in `(machine_id, time, seq)`
//! order through a server-side portal, `fetch_rows` at a time, and hands each
//! machine's rows to the caller as one [`TelemetryFrame`] as soon as the next
//! machine starts: the client holds one machine plus one fetch, never the
//! table.

use ::postgres::types::ToSql;
use chrono::{DateTime, Utc};

use super::{FailureMode, FrameBuilder, LoadQuery, TelemetryStore, error_text, to_datetime};
use crate::error::{FeaturesError, Result};
use crate::frame::TelemetryFrame;

/// How [`TelemetryStore::for_each_machine`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Rows per fetch from the server-side portal. Default 10,000 (about 1 MB
    /// of client memory for the reference sensors).
    pub fetch_rows: usize,
}

impl Default for StreamOptions {
    fn default() -> StreamOptions {
        StreamOptions { fetch_rows: 10_000 }
    }
}

impl StreamOptions {
    /// `fetch_rows` must be between 1 and 2^31 − 1 (the protocol's limit).
    pub fn validate(&self) -> Result<()> {
        if self.fetch_rows == 0 || i32::try_from(self.fetch_rows).is_err() {
            return Err(FeaturesError::InvalidParameter {
                name: "fetch_rows",
                reason: format!("{} is not between 1 and 2^31 - 1", self.fetch_rows),
            });
        }
        Ok(())
    }
}

/// Progress of a stream, reported after every fetch and every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadProgress {
    /// Rows read from the server so far.
    pub rows_read: u64,
    /// Machines handed to the caller so far.
    pub machines_done: usize,
}

/// What a finished stream read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamSummary {
    /// Rows and machines read.
    pub progress: LoadProgress,
    /// Machines named in the query that had no row in its window.
    pub machines_without_rows: Vec<String>,
}

/// The table's columns that the stream needs.
struct Layout {
    time_has_zone: bool,
    has_seq: bool,
    has_labels: bool,
}

impl TelemetryStore {
    /// Streams the rows of `query` machine by machine: `per_machine` gets each
    /// machine's rows (time order, duplicates in `seq` order) as a frame of
    /// this store's sensors, `progress` the counts after every fetch and
    /// machine. Errors: invalid
    /// options, a missing sensor column, a lost connection, an error returned
    /// by `per_machine` (the stream stops there).
    ///
    /// * A sensor column the table lacks is [`FeaturesError::MissingTableColumn`]
    ///   (checked before any row is read, with the columns the table has).
    /// * A `TIMESTAMP` (without time zone) time column is read as UTC: the query
    ///   converts it with `AT TIME ZONE 'UTC'` whatever the session's `TimeZone`,
    ///   and compares the query's bounds with it in UTC too.
    /// * Duplicate timestamps stay in `seq` order (when the table has `seq`), the
    ///   order [`feature_select_sql`](crate::feature_select_sql) admits them in.
    /// * `failure` / `failure_mode` are read when the table has them.
    /// * Machines the query names that have no row in its window are not handed
    ///   over; [`StreamSummary::machines_without_rows`] lists them.
    /// * A connection lost mid-stream is [`FeaturesError::StreamInterrupted`],
    ///   saying how far the stream got; the machines already handed over were
    ///   complete, the one being read is never handed over.
    pub fn for_each_machine(
        &mut self,
        query: &LoadQuery,
        options: &StreamOptions,
        progress: &mut dyn FnMut(LoadProgress),
        per_machine: &mut dyn FnMut(TelemetryFrame) -> Result<()>,
    ) -> Result<StreamSummary> {
        options.validate()?;
        let layout = self.layout()?;
        let sql = self.stream_sql(&layout);
        let table = self.table.quoted();
        let from = query.from.map(to_datetime).transpose()?;
        let to = query.to.map(to_datetime).transpose()?;
        let sensor_names: Vec<String> = self.sensors.iter().map(|s| s.name().to_owned()).collect();
        let mut done = LoadProgress::default();
        let interrupted =
            |done: LoadProgress, e: &::postgres::Error| FeaturesError::StreamInterrupted {
                table: table.clone(),
                rows_read: done.rows_read,
                machines_done: done.machines_done,
                message: error_text(e),
            };
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| interrupted(done, &e))?;
        let params: [&(dyn ToSql + Sync); 3] = [&from, &to, &query.machines];
        let portal = tx
            .bind(sql.as_str(), &params)
            .map_err(|e| FeaturesError::Database {
                operation: format!("streamed SELECT FROM {table}"),
                message: error_text(&e),
            })?;
        let fetch = i32::try_from(options.fetch_rows).unwrap_or(i32::MAX);
        let k = sensor_names.len();
        let mut values = vec![f64::NAN; k];
        let mut current: Option<(String, FrameBuilder)> = None;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let rows = tx
                .query_portal(&portal, fetch)
                .map_err(|e| interrupted(done, &e))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let bad = |column: &str, e: ::postgres::Error| FeaturesError::Database {
                    operation: format!("reading column {column} of {table}"),
                    message: error_text(&e),
                };
                let time: DateTime<Utc> = row.try_get(0).map_err(|e| bad("time", e))?;
                let machine: &str = row.try_get(1).map_err(|e| bad("machine_id", e))?;
                for (s, slot) in values.iter_mut().enumerate() {
                    let v: Option<f64> =
                        row.try_get(2 + s).map_err(|e| bad(&sensor_names[s], e))?;
                    *slot = v.unwrap_or(f64::NAN);
                }
                let (failure, mode) = if layout.has_labels {
                    let f: Option<i16> = row.try_get(2 + k).map_err(|e| bad("failure", e))?;
                    let m: Option<&str> = row.try_get(3 + k).map_err(|e| bad("failure_mode", e))?;
                    (label(&table, f)?, mode_label(&table, m)?)
                } else {
                    (None, None)
                };
                if current.as_ref().is_none_or(|(m, _)| m != machine) {
                    if let Some((name, builder)) = current.take() {
                        per_machine(builder.finish())?;
                        seen.push(name);
                        done.machines_done += 1;
                        progress(done);
                    }
                    let builder = FrameBuilder::new(
                        sensor_names.clone(),
                        layout.has_labels,
                        layout.has_labels,
                    );
                    current = Some((machine.to_owned(), builder));
                }
                if let Some((_, builder)) = current.as_mut() {
                    builder.push(machine, time.timestamp_micros(), &values, failure, mode);
                }
            }
            done.rows_read += rows.len() as u64;
            progress(done);
        }
        if let Some((name, builder)) = current.take() {
            per_machine(builder.finish())?;
            seen.push(name);
            done.machines_done += 1;
            progress(done);
        }
        tx.commit().map_err(|e| interrupted(done, &e))?;
        let machines_without_rows = query
            .machines
            .iter()
            .flatten()
            .filter(|m| !seen.contains(m))
            .cloned()
            .collect();
        Ok(StreamSummary {
            progress: done,
            machines_without_rows,
        })
    }

    /// The first and last time (µs since epoch UTC) of the rows `query` selects,
    /// `None` when it selects none; a `TIMESTAMP` column is read as UTC, as
    /// [`for_each_machine`](Self::for_each_machine) reads it. Errors: a missing
    /// time, machine or sensor column, a failed query.
    pub fn time_span(&mut self, query: &LoadQuery) -> Result<Option<(i64, i64)>> {
        let row = self.query_window("SELECT min(time), max(time)", query, "time span")?;
        let first: Option<DateTime<Utc>> = row.get(0);
        let last: Option<DateTime<Utc>> = row.get(1);
        Ok(first
            .zip(last)
            .map(|(a, b)| (a.timestamp_micros(), b.timestamp_micros())))
    }

    /// How many rows `query` selects (a scan of its window: what a caller
    /// decides between loading and streaming on). Errors as [`time_span`](Self::time_span).
    pub fn count_rows(&mut self, query: &LoadQuery) -> Result<u64> {
        let row = self.query_window("SELECT count(*)", query, "row count")?;
        let rows: i64 = row.get(0);
        Ok(u64::try_from(rows).unwrap_or(0))
    }

    /// `select` (naming the column `time`, read as UTC) over the rows of
    /// `query`'s window: one row back.
    fn query_window(
        &mut self,
        select: &str,
        query: &LoadQuery,
        what: &str,
    ) -> Result<::postgres::Row> {
        let layout = self.layout()?;
        let table = self.table.quoted();
        let (time, lo, hi) = if layout.time_has_zone {
            ("time", "$1", "$2")
        } else {
            (
                "(time AT TIME ZONE 'UTC')",
                "($1 AT TIME ZONE 'UTC')",
                "($2 AT TIME ZONE 'UTC')",
            )
        };
        let select = select.replace("(time)", &format!("({time})"));
        let sql = format!(
            "{select} FROM {table} \
             WHERE ($1::timestamptz IS NULL OR time >= {lo}) AND ($2::timestamptz IS NULL OR time < {hi}) \
             AND ($3::text[] IS NULL OR machine_id = ANY($3))"
        );
        let from = query.from.map(to_datetime).transpose()?;
        let to = query.to.map(to_datetime).transpose()?;
        self.client
            .query_one(sql.as_str(), &[&from, &to, &query.machines])
            .map_err(|e| FeaturesError::Database {
                operation: format!("reading the {what} of {table}"),
                message: error_text(&e),
            })
    }

    /// The table's columns and types; a missing sensor, time or machine column is an error.
    fn layout(&mut self) -> Result<Layout> {
        let table = self.table.quoted();
        let rows = self
            .client
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&table],
            )
            .map_err(|e| FeaturesError::Database {
                operation: format!("reading the columns of {table}"),
                message: error_text(&e),
            })?;
        let columns: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let kind = |name: &str| {
            columns
                .iter()
                .find(|(c, _)| c == name)
                .map(|(_, t)| t.as_str())
        };
        let required = ["time", "machine_id"]
            .into_iter()
            .chain(self.sensors.iter().map(|s| s.name()));
        for name in required {
            if kind(name).is_none() {
                return Err(FeaturesError::MissingTableColumn {
                    table,
                    column: name.to_owned(),
                    found: columns.iter().map(|(c, _)| c.clone()).collect(),
                });
            }
        }
        Ok(Layout {
            time_has_zone: kind("time") == Some("timestamp with time zone"),
            has_seq: kind("seq").is_some(),
            has_labels: kind("failure").is_some() && kind("failure_mode").is_some(),
        })
    }

    fn stream_sql(&self, layout: &Layout) -> String {
        let table = self.table.quoted();
        let names: String = self
            .sensors
            .iter()
            .map(|s| format!(", {}::float8", s.quoted()))
            .collect();
        let labels = if layout.has_labels {
            ", failure::int2, failure_mode::text"
        } else {
            ""
        };
        let seq = if layout.has_seq { ", seq" } else { "" };
        let (time, bound) = if layout.time_has_zone {
            ("time", "time")
        } else {
            ("(time AT TIME ZONE 'UTC')", "time")
        };
        // For a zone-less column the bounds are turned into UTC wall-clock
        // times, so the comparison can use the (machine_id, time) index.
        let (lo, hi) = if layout.time_has_zone {
            ("$1", "$2")
        } else {
            ("($1 AT TIME ZONE 'UTC')", "($2 AT TIME ZONE 'UTC')")
        };
        format!(
            "SELECT {time}, machine_id::text{names}{labels} FROM {table} \
             WHERE ($1::timestamptz IS NULL OR {bound} >= {lo}) AND ($2::timestamptz IS NULL OR {bound} < {hi}) \
             AND ($3::text[] IS NULL OR machine_id = ANY($3)) ORDER BY machine_id, time{seq}"
        )
    }
}

fn label(table: &str, failure: Option<i16>) -> Result<Option<u8>> {
    match failure {
        None => Ok(None),
        Some(f @ 0..=1) => Ok(u8::try_from(f).ok()),
        Some(other) => Err(FeaturesError::Database {
            operation: format!("reading column failure of {table}"),
            message: format!("label {other} is not 0 or 1"),
        }),
    }
}

fn mode_label(table: &str, text: Option<&str>) -> Result<Option<FailureMode>> {
    text.map(|t| {
        FailureMode::parse(t).ok_or_else(|| FeaturesError::Database {
            operation: format!("reading column failure_mode of {table}"),
            message: format!("unknown failure mode {t:?}"),
        })
    })
    .transpose()
}
