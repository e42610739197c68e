//! The 42 reference features of a PostgreSQL telemetry table computed two
//! ways, timed: in the database ([`feature_select_sql`] copied out to this
//! client in binary COPY format, and with `--materialize` also kept there as a
//! materialised view: 8 bytes × 42 per row of disk) and in memory (the table
//! streamed machine by machine, [`FeatureSpec::compute`] on each). Reads the
//! `POSTGRES_*` variables; prints one JSON object.
//!
//! ```text
//! fleet_features --table fleet_1000x1 [--materialize] [--work-mem 4GB]
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line driver: its output is the point

use std::io::Read;
use std::time::Instant;

use vigil_features::{
    FeatureSpec, LoadQuery, PgConfig, SqlFeatureSource, StreamOptions, TelemetryStore, ViewKind,
    create_feature_view_sql, feature_select_sql,
};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let table = args
        .iter()
        .position(|a| a == "--table")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "telemetry".to_string());
    let config = PgConfig::from_env()?;
    let spec = FeatureSpec::default();
    let source = SqlFeatureSource {
        table: table.clone(),
        ..SqlFeatureSource::default()
    };
    let mut store = TelemetryStore::connect(&config, &table)?;
    let client = store.client();
    // Window sorts in memory, not in temporary files (`--work-mem`, default 4GB).
    let work_mem = args
        .iter()
        .position(|a| a == "--work-mem")
        .and_then(|i| args.get(i + 1))
        .map_or("4GB", String::as_str);
    client.batch_execute(&format!("SET work_mem = '{}'", work_mem.replace('\'', "")))?;
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
        .get(0);

    // In the database, kept there: a materialised view of every feature.
    let materialised = if args.iter().any(|a| a == "--materialize") {
        let view = format!("{table}_features");
        client.batch_execute(&format!("DROP MATERIALIZED VIEW IF EXISTS {view}"))?;
        let started = Instant::now();
        client.batch_execute(&create_feature_view_sql(
            &spec,
            &source,
            &view,
            ViewKind::MaterializedView,
        )?)?;
        let seconds = started.elapsed().as_secs_f64();
        client.batch_execute(&format!("DROP MATERIALIZED VIEW {view}"))?;
        Some(seconds)
    } else {
        None
    };

    // In the database, delivered here: the same SELECT copied out (binary).
    let started = Instant::now();
    let mut reader = client.copy_out(&format!(
        "COPY ({}) TO STDOUT (FORMAT binary)",
        feature_select_sql(&spec, &source)?
    ))?;
    let mut bytes = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    drop(reader);
    let copied = started.elapsed().as_secs_f64();

    // In memory: raw rows streamed machine by machine, features computed here.
    let started = Instant::now();
    let mut computed = 0usize;
    let summary = store.for_each_machine(
        &LoadQuery::default(),
        &StreamOptions::default(),
        &mut |_| {},
        &mut |frame| {
            computed += spec.compute(&frame)?.nrows();
            Ok(())
        },
    )?;
    let in_memory = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "table": table,
            "rows": rows,
            "machines": summary.progress.machines_done,
            "features": spec.len(),
            "work_mem": work_mem,
            "in_database_materialized_view_seconds": materialised,
            "in_database_copy_out_seconds": copied,
            "copy_out_bytes": bytes,
            "in_memory_streamed_seconds": in_memory,
            "in_memory_rows": computed,
        })
    );
    Ok(())
}
