//! Features where the data lives: the SQL that computes a [`FeatureSpec`]
//! inside PostgreSQL (cargo feature `postgres`).
//!
//! [`feature_select_sql`] turns a spec into one `SELECT` over a telemetry
//! table (the layout of [`TelemetryStore`](crate::TelemetryStore) by default)
//! with window functions over time-range frames per machine;
//! [`create_feature_view_sql`] wraps it as `CREATE VIEW` or
//! `CREATE MATERIALIZED VIEW`. The result has one row per table row —
//! `machine_id`, `time`, the order column (`seq`) and the spec's features in
//! column order — equal to [`FeatureSpec::compute`] within 1e-9 relative
//! (NaN where it gives NaN, ±inf where it gives ±inf), under the rules below.
//!
//! The rules that make the numbers equal are on [`feature_select_sql`].
//!
//! On TimescaleDB the view reads a hypertable like any table. A continuous
//! aggregate does not apply: it must `GROUP BY time_bucket(...)`, one row per
//! bucket, while these features are one row per sample over windows that
//! slide with each sample (a 5-minute mean at 10:00:10 and at 10:00:20 share
//! most rows but no bucket). A materialised view refreshed after each load is
//! the cached form.

use std::fmt::Write as _;

use ::postgres::Client;

use crate::error::{FeaturesError, Result};
use crate::plan::FeaturePlan;
use crate::postgres::Identifier;
use crate::spec::{Aggregation, FeatureKind, FeatureSpec};

/// Where [`feature_select_sql`] reads telemetry: a table (or view) with a
/// time column, a machine column, one column per spec sensor and an order
/// column for duplicate timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFeatureSource {
    /// Table or view, `name` or `schema.name`. Default `telemetry`.
    pub table: String,
    /// `TIMESTAMPTZ` or `TIMESTAMP` column. Default `time`.
    pub time_column: String,
    /// Machine id column. Default `machine_id`.
    pub machine_column: String,
    /// Column that orders rows with equal times (the first is admitted).
    /// Default `seq` (the store's identity column); `None` leaves the order
    /// of duplicates to the server, so use it only for tables without them.
    pub order_column: Option<String>,
}

impl Default for SqlFeatureSource {
    fn default() -> SqlFeatureSource {
        SqlFeatureSource {
            table: "telemetry".into(),
            time_column: "time".into(),
            machine_column: "machine_id".into(),
            order_column: Some("seq".into()),
        }
    }
}

impl SqlFeatureSource {
    /// The source reading `table` with the default column names.
    pub fn table(table: &str) -> SqlFeatureSource {
        SqlFeatureSource {
            table: table.into(),
            ..SqlFeatureSource::default()
        }
    }

    /// Checks that every name is a plain identifier (columns without schema).
    pub fn validate(&self) -> Result<()> {
        self.quoted().map(|_| ())
    }

    fn quoted(&self) -> Result<QuotedSource> {
        Ok(QuotedSource {
            table: Identifier::new(&self.table)?.quoted(),
            time: column(&self.time_column)?,
            machine: column(&self.machine_column)?,
            order: self.order_column.as_deref().map(column).transpose()?,
        })
    }
}

struct QuotedSource {
    table: String,
    time: String,
    machine: String,
    order: Option<String>,
}

/// A one-part identifier, quoted.
fn column(name: &str) -> Result<String> {
    let id = Identifier::new(name)?;
    if id.name() != name {
        return Err(FeaturesError::InvalidIdentifier {
            name: name.to_owned(),
            reason: "a column name takes no schema",
        });
    }
    Ok(id.quoted())
}

/// Whether [`create_feature_view_sql`] makes a view or a materialised view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// `CREATE VIEW`: computed on every read.
    View,
    /// `CREATE MATERIALIZED VIEW`: computed once, `REFRESH MATERIALIZED VIEW` to update.
    MaterializedView,
}

const NAN: &str = "'NaN'::float8";

/// `a / b` with IEEE rules (`x/0` = ±inf by the signs, `0/0` and NULL = NaN).
fn ieee_div(a: &str, b: &str) -> String {
    format!(
        "(CASE WHEN ({a}) IS NULL OR ({b}) IS NULL THEN {NAN} WHEN ({b}) <> 0 THEN ({a}) / ({b}) \
         WHEN ({a}) = 0 OR ({a}) = {NAN} THEN {NAN} \
         WHEN (({a}) > 0) = (CAST(({b}) AS text) NOT LIKE '-%') THEN 'Infinity'::float8 \
         ELSE '-Infinity'::float8 END)"
    )
}

/// The SQL `SELECT` computing `spec` over `source`: columns `machine_id`,
/// `time`, the order column (when set) under its own name, then one float8
/// column per feature named as the feature, with the rules below. Errors: an invalid spec, a name that is not a plain identifier,
/// a feature named like one of the key columns.
///
/// # How the in-memory rules are kept
///
/// * **Window edges.** vigil-features' window at `t` is `(t − w, t]`. SQL's
///   `RANGE BETWEEN w PRECEDING AND CURRENT ROW` is closed on the left, so the
///   frame is `w − 1 µs` preceding: timestamps have microsecond resolution,
///   so `[t − w + 1 µs, t]` is the same set. Intervals are written in
///   microseconds only, so no day or month arithmetic (and no DST) enters.
/// * **Admission, duplicates.** Only admitted rows enter the windows and
///   `diff`/`pct_change`; a row that is not admitted gets the features of the
///   machine's last admitted row (as batch copies the previous row). Among rows
///   of one machine with the same time, the first by the order column (`seq`)
///   is admitted. This differs from pandas, whose time windows count every
///   duplicate (and an SQL `RANGE ... CURRENT ROW` frame, which would include
///   the *later* peers too): vigil-features' admission rule is followed instead.
///   The frame must hold duplicates in the same order for the numbers to agree;
///   [`TelemetryStore::load`](crate::TelemetryStore::load) and the streamed
///   reads order by `(machine_id, time, seq)`.
/// * **Spacing.** The in-memory rule admits a row at least `min_spacing` after
///   the last *admitted* row, a sequential rule window functions cannot follow.
///   The SQL admits a row at least `min_spacing` after the *previous row*. The
///   two agree unless two consecutive distinct times of a machine are closer
///   than `min_spacing` (and the spec's default of 1 s is far below any real
///   sampling interval); [`check_sql_spacing`] finds such a pair and returns
///   [`FeaturesError::SpacingNotSqlExact`] naming it.
/// * **Missing values.** NULL, `NaN` and `±Infinity` in a sensor column are
///   missing (the frame turns ±inf into NaN); aggregates skip them, and an
///   empty window gives NaN (count 0).
/// * **Standard deviation.** Sample (`stddev_samp`, ddof = 1), NaN for fewer
///   than two values, exactly 0 on a constant window (min = max: PostgreSQL's
///   running sums need not give exactly 0, and a z-score 0/0 = NaN would then
///   become a large finite number). Mean and sum of a constant window are exact too.
/// * **Division.** `pct_change`, `z-score` and ratios follow IEEE as in Rust:
///   `x/0` is ±inf by the signs of `x` and of the zero, `0/0` NaN (PostgreSQL
///   would raise `division by zero`).
/// * **Where exact equality is out of reach.** Rolling means and standard
///   deviations are computed by different algorithms (compensated running sums
///   in Rust, PostgreSQL's Youngs–Cramer), so they agree within 1e-9
///   relative (what the tests check), not bit for bit. On the test fleet
///   (3 simulated machines plus two edge-case ones, a few thousand rows) standard deviations differed by at most
///   3e-12 relative and z-scores by 2.4e-10: value − mean cancels, so the
///   z-score is the feature closest to the 1e-9 bound. PostgreSQL raises `value out of range` where
///   Rust overflows to ±inf (products or differences beyond 1.8e308).
/// * **TimescaleDB.** Continuous aggregates only take `time_bucket` grouping,
///   not per-row window functions, so these features are a (materialised)
///   view on TimescaleDB too; a hypertable source works unchanged.
pub fn feature_select_sql(spec: &FeatureSpec, source: &SqlFeatureSource) -> Result<String> {
    let plan = FeaturePlan::compile(spec)?;
    let src = source.quoted()?;
    let keys: Vec<&str> = [&source.machine_column, &source.time_column]
        .into_iter()
        .map(String::as_str)
        .chain(source.order_column.as_deref())
        .collect();
    let mut names = Vec::with_capacity(spec.len());
    for f in &spec.features {
        if keys.contains(&f.name.as_str()) {
            return Err(FeaturesError::InvalidSpec(format!(
                "feature `{}` has the name of a key column of the SQL output",
                f.name
            )));
        }
        names.push(column(&f.name)?);
    }
    let sensors = spec
        .sensors
        .iter()
        .map(|s| column(s))
        .collect::<Result<Vec<_>>>()?;

    let order = if src.order.is_some() { ", o" } else { "" };
    let order_select = src
        .order
        .as_deref()
        .map(|o| format!(", {o} AS o"))
        .unwrap_or_default();
    let mut sql = String::new();
    // Sensor values, missing as NULL.
    let _ = write!(
        sql,
        "WITH src AS (SELECT {} AS m, {} AS t{order_select}",
        src.machine, src.time
    );
    for (k, s) in sensors.iter().enumerate() {
        let _ = write!(
            sql,
            ", CASE WHEN {s}::float8 IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN NULL ELSE {s}::float8 END AS s{k}"
        );
    }
    let _ = write!(sql, " FROM {}), ", src.table);
    // Admission: the first row, and rows at least min_spacing after the previous row.
    let spacing = spec.min_spacing.as_micros();
    let _ = write!(
        sql,
        "flagged AS (SELECT *, CASE WHEN lag(t) OVER w IS NULL OR t - lag(t) OVER w >= INTERVAL '{spacing} microseconds' THEN 1 ELSE 0 END AS adm \
         FROM src WINDOW w AS (PARTITION BY m ORDER BY t{order})), \
         grouped AS (SELECT *, sum(adm) OVER (PARTITION BY m ORDER BY t{order} ROWS UNBOUNDED PRECEDING) AS g FROM flagged), "
    );
    // Aggregates over the admitted rows.
    let _ = write!(sql, "agg AS (SELECT m, g");
    for k in 0..sensors.len() {
        let _ = write!(sql, ", s{k} AS x{k}, lag(s{k}) OVER wl AS p{k}");
    }
    for (i, group) in plan.groups.iter().enumerate() {
        let s = format!("s{}", group.sensor);
        let w = format!("w{i}");
        let _ = write!(
            sql,
            ", count({s}) OVER {w} AS c{i}, min({s}) OVER {w} AS lo{i}, max({s}) OVER {w} AS hi{i}, \
             avg({s}) OVER {w} AS a{i}, stddev_samp({s}) OVER {w} AS sd{i}, var_samp({s}) OVER {w} AS v{i}, sum({s}) OVER {w} AS su{i}"
        );
    }
    let _ = write!(
        sql,
        " FROM grouped WHERE adm = 1 WINDOW wl AS (PARTITION BY m ORDER BY t)"
    );
    for (i, group) in plan.groups.iter().enumerate() {
        let _ = write!(
            sql,
            ", w{i} AS (PARTITION BY m ORDER BY t RANGE BETWEEN INTERVAL '{} microseconds' PRECEDING AND CURRENT ROW)",
            group.window - 1
        );
    }
    sql.push_str(") ");
    // One row per source row, with its admitted row's features.
    let _ = write!(
        sql,
        "SELECT grouped.m AS {}, grouped.t AS {}",
        src.machine, src.time
    );
    if let Some(o) = &src.order {
        let _ = write!(sql, ", grouped.o AS {o}");
    }
    for (f, name) in spec.features.iter().zip(&names) {
        let _ = write!(sql, ", {} AS {name}", feature_expression(&plan, &f.kind));
    }
    let _ = write!(sql, " FROM grouped JOIN agg USING (m, g)");
    Ok(sql)
}

/// The expression of one feature over the `agg` columns.
fn feature_expression(plan: &FeaturePlan, kind: &FeatureKind) -> String {
    let sensor = |name: &str| {
        plan.spec()
            .sensors
            .iter()
            .position(|s| s == name)
            .unwrap_or(0)
    };
    let group = |name: &str, window: i64| {
        let s = sensor(name);
        plan.groups
            .iter()
            .position(|g| g.sensor == s && g.window == window)
            .unwrap_or(0)
    };
    let mean = |g: usize| {
        format!("(CASE WHEN c{g} = 0 THEN {NAN} WHEN lo{g} = hi{g} THEN lo{g} ELSE a{g} END)")
    };
    let spread = |g: usize, column: &str| {
        format!(
            "(CASE WHEN c{g} < 2 THEN {NAN} WHEN lo{g} = hi{g} THEN 0::float8 ELSE {column}{g} END)"
        )
    };
    let value = |name: &str| format!("COALESCE(x{}, {NAN})", sensor(name));
    match kind {
        FeatureKind::Raw { sensor: s } => value(s),
        FeatureKind::Rolling {
            sensor: s,
            aggregation,
            window,
        } => {
            let g = group(s, window.as_micros());
            match aggregation {
                Aggregation::Mean => mean(g),
                Aggregation::Std => spread(g, "sd"),
                Aggregation::Var => spread(g, "v"),
                Aggregation::Min => format!("COALESCE(lo{g}, {NAN})"),
                Aggregation::Max => format!("COALESCE(hi{g}, {NAN})"),
                Aggregation::Sum => format!(
                    "(CASE WHEN c{g} = 0 THEN {NAN} WHEN lo{g} = hi{g} THEN lo{g} * c{g} ELSE su{g} END)"
                ),
                Aggregation::Count => format!("c{g}::float8"),
            }
        }
        FeatureKind::Diff { sensor: s } => {
            let k = sensor(s);
            format!("COALESCE(x{k} - p{k}, {NAN})")
        }
        FeatureKind::PctChange { sensor: s } => {
            let k = sensor(s);
            format!("({} - 1)", ieee_div(&format!("x{k}"), &format!("p{k}")))
        }
        FeatureKind::ZScore { sensor: s, window } => {
            let g = group(s, window.as_micros());
            let k = sensor(s);
            ieee_div(&format!("x{k} - {}", mean(g)), &spread(g, "sd"))
        }
        FeatureKind::Product { left, right } => {
            format!("COALESCE(x{} * x{}, {NAN})", sensor(left), sensor(right))
        }
        FeatureKind::Ratio {
            numerator,
            denominator,
        } => ieee_div(
            &format!("x{}", sensor(numerator)),
            &format!("x{}", sensor(denominator)),
        ),
        // FeatureKind is non_exhaustive only for other crates.
    }
}

/// `CREATE VIEW view AS ...` (or `CREATE MATERIALIZED VIEW`) of
/// [`feature_select_sql`]. `view` is `name` or `schema.name`.
pub fn create_feature_view_sql(
    spec: &FeatureSpec,
    source: &SqlFeatureSource,
    view: &str,
    kind: ViewKind,
) -> Result<String> {
    let view = Identifier::new(view)?.quoted();
    let select = feature_select_sql(spec, source)?;
    let what = match kind {
        ViewKind::View => "VIEW",
        ViewKind::MaterializedView => "MATERIALIZED VIEW",
    };
    Ok(format!("CREATE {what} {view} AS {select}"))
}

/// A query returning, for the first machine that has one, two consecutive
/// distinct times closer than the spec's `min_spacing` (`machine`, previous
/// time, time as µs since the epoch), or no row: where the SQL features could
/// differ from the in-memory ones (see [`feature_select_sql`]).
pub fn spacing_check_sql(spec: &FeatureSpec, source: &SqlFeatureSource) -> Result<String> {
    spec.validate()?;
    let src = source.quoted()?;
    let (m, t, table) = (src.machine, src.time, src.table);
    let spacing = spec.min_spacing.as_micros();
    Ok(format!(
        "SELECT m::text, (extract(epoch FROM p) * 1000000)::int8, (extract(epoch FROM t) * 1000000)::int8 FROM \
         (SELECT {m} AS m, {t} AS t, lag({t}) OVER (PARTITION BY {m} ORDER BY {t}) AS p FROM {table}) d \
         WHERE t > p AND t - p < INTERVAL '{spacing} microseconds' ORDER BY m, t LIMIT 1"
    ))
}

/// Runs [`spacing_check_sql`]: `Ok` when the SQL features follow the in-memory
/// admission rule exactly on this table, else
/// [`FeaturesError::SpacingNotSqlExact`] naming the first offending pair.
pub fn check_sql_spacing(
    client: &mut Client,
    spec: &FeatureSpec,
    source: &SqlFeatureSource,
) -> Result<()> {
    let sql = spacing_check_sql(spec, source)?;
    let rows = client
        .query(sql.as_str(), &[])
        .map_err(|e| FeaturesError::Database {
            operation: format!("spacing check of {}", source.table),
            message: crate::postgres::error_text(&e),
        })?;
    match rows.first() {
        None => Ok(()),
        Some(row) => Err(FeaturesError::SpacingNotSqlExact {
            table: source.table.clone(),
            machine: row.get(0),
            previous: row.get(1),
            time: row.get(2),
            min_spacing: spec.min_spacing,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_spec_becomes_one_select() {
        let sql =
            feature_select_sql(&FeatureSpec::default(), &SqlFeatureSource::default()).unwrap();
        assert!(sql.contains("FROM \"telemetry\""), "{sql}");
        assert!(sql.contains("INTERVAL '299999999 microseconds' PRECEDING AND CURRENT ROW"));
        assert!(sql.contains("AS \"power_per_speed\""));
        let view = create_feature_view_sql(
            &FeatureSpec::default(),
            &SqlFeatureSource::table("plant.telemetry"),
            "plant.features",
            ViewKind::MaterializedView,
        )
        .unwrap();
        assert!(view.starts_with("CREATE MATERIALIZED VIEW \"plant\".\"features\" AS WITH"));
    }

    #[test]
    fn bad_names_are_refused() {
        let spec = FeatureSpec::default();
        for source in [
            SqlFeatureSource::table("x; DROP TABLE y"),
            SqlFeatureSource {
                time_column: "a.b".into(),
                ..SqlFeatureSource::default()
            },
        ] {
            assert!(matches!(
                feature_select_sql(&spec, &source),
                Err(FeaturesError::InvalidIdentifier { .. })
            ));
        }
        let clash = FeatureSpec::new(["time"]).with_raw("time");
        assert!(matches!(
            feature_select_sql(&clash, &SqlFeatureSource::default()),
            Err(FeaturesError::InvalidSpec(_))
        ));
    }
}
