//! The columnar telemetry frame.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{FeaturesError, Result};

/// The four sensors of the reference pipeline, in CSV column order.
pub const REFERENCE_SENSORS: [&str; 4] = [
    "temperature",
    "vibration",
    "spindle_speed",
    "power_consumption",
];

/// What kind of failure a machine suffered (or is about to).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// No failure.
    #[default]
    None,
    /// Overheating: temperature climbs, power rises.
    Overheat,
    /// Bearing wear: vibration grows and becomes erratic.
    BearingWear,
    /// Power surge: erratic power consumption spikes.
    PowerSurge,
    /// Tool wear: power per unit of spindle speed creeps up, vibration slightly.
    ToolWear,
}

impl FailureMode {
    /// All modes, in class-index order (`None` is class 0).
    pub const ALL: [FailureMode; 5] = [
        FailureMode::None,
        FailureMode::Overheat,
        FailureMode::BearingWear,
        FailureMode::PowerSurge,
        FailureMode::ToolWear,
    ];

    /// The CSV / database spelling (`none`, `overheat`, `bearing_wear`, `power_surge`, `tool_wear`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::None => "none",
            FailureMode::Overheat => "overheat",
            FailureMode::BearingWear => "bearing_wear",
            FailureMode::PowerSurge => "power_surge",
            FailureMode::ToolWear => "tool_wear",
        }
    }

    /// Parses the CSV / database spelling in any case (`none`, `None`, `NONE`,
    /// `Bearing_Wear`, ...); an empty string is `None`.
    pub fn parse(text: &str) -> Option<FailureMode> {
        let text = text.trim();
        if text.is_empty() {
            return Some(FailureMode::None);
        }
        FailureMode::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(text))
    }

    /// The class index for multi-class models: 0 = none, 1..=4 the modes in [`FailureMode::ALL`] order.
    pub fn class_index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for FailureMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Orders machine ids the way people expect: numerically when both are
/// integers (`2` before `10`), otherwise as strings (`M02` before `M10` when zero-padded).
pub fn compare_machine_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// Columnar machine telemetry, always sorted by (machine, time).
///
/// * `time`: microseconds since the Unix epoch, UTC (see [`parse_timestamp`](crate::parse_timestamp)).
/// * `machine`: per row, an index into [`machine_ids`](Self::machine_ids), which
///   are in [`compare_machine_ids`] order, so rows of one machine are contiguous.
/// * one `f64` column per sensor; a missing value is `NaN`. Non-finite inputs
///   (±inf, NaN text) are stored as missing and counted in [`non_finite_counts`](Self::non_finite_counts).
/// * optional `failure` (0/1: fails within the label horizon) and `failure_mode` labels.
///
/// Duplicate timestamps within a machine are kept, in input order (a stable sort).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryFrame {
    time: Vec<i64>,
    machine: Vec<u32>,
    machine_ids: Vec<String>,
    sensor_names: Vec<String>,
    sensors: Vec<Vec<f64>>,
    failure: Option<Vec<u8>>,
    failure_mode: Option<Vec<FailureMode>>,
    non_finite: Vec<usize>,
    reordered_rows: usize,
}

impl TelemetryFrame {
    /// Builds a frame from columns: per-row machine ids, times (µs since epoch UTC),
    /// one column per named sensor, and optional labels. Sorts by (machine, time)
    /// when needed (see [`reordered_rows`](Self::reordered_rows)) and turns
    /// non-finite sensor values into missing ones (counted).
    pub fn new(
        machine_ids: &[&str],
        time: Vec<i64>,
        sensors: Vec<(String, Vec<f64>)>,
        failure: Option<Vec<u8>>,
        failure_mode: Option<Vec<FailureMode>>,
    ) -> Result<TelemetryFrame> {
        let n = time.len();
        let check = |column: &str, got: usize| {
            if got == n {
                Ok(())
            } else {
                Err(FeaturesError::LengthMismatch {
                    column: column.to_owned(),
                    expected: n,
                    got,
                })
            }
        };
        check("machine_id", machine_ids.len())?;
        for (name, values) in &sensors {
            check(name, values.len())?;
        }
        if let Some(f) = &failure {
            check("failure", f.len())?;
            if let Some(bad) = f.iter().find(|&&v| v > 1) {
                return Err(FeaturesError::InvalidParameter {
                    name: "failure",
                    reason: format!("labels must be 0 or 1, found {bad}"),
                });
            }
        }
        if let Some(m) = &failure_mode {
            check("failure_mode", m.len())?;
        }
        let names: Vec<String> = sensors.iter().map(|(name, _)| name.clone()).collect();
        let mut builder = FrameBuilder::new(names, failure.is_some(), failure_mode.is_some());
        let mut row = vec![0.0; sensors.len()];
        for i in 0..n {
            for (slot, (_, column)) in row.iter_mut().zip(&sensors) {
                *slot = column[i];
            }
            builder.push(
                machine_ids[i],
                time[i],
                &row,
                failure.as_ref().map(|f| f[i]),
                failure_mode.as_ref().map(|m| m[i]),
            );
        }
        Ok(builder.finish())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Whether the frame has no rows.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// Row times, µs since the epoch UTC, sorted within each machine.
    pub fn time(&self) -> &[i64] {
        &self.time
    }

    /// Per-row machine index into [`machine_ids`](Self::machine_ids); non-decreasing.
    pub fn machine(&self) -> &[u32] {
        &self.machine
    }

    /// Distinct machine ids, in [`compare_machine_ids`] order.
    pub fn machine_ids(&self) -> &[String] {
        &self.machine_ids
    }

    /// The machine id of row `row`.
    pub fn machine_id_of(&self, row: usize) -> &str {
        &self.machine_ids[self.machine[row] as usize]
    }

    /// Sensor column names, in column order.
    pub fn sensor_names(&self) -> &[String] {
        &self.sensor_names
    }

    /// The values of sensor column `index` (`NaN` = missing).
    pub fn sensor(&self, index: usize) -> &[f64] {
        &self.sensors[index]
    }

    /// The values of the sensor called `name`, if the frame has it.
    pub fn sensor_by_name(&self, name: &str) -> Option<&[f64]> {
        self.sensor_index(name).map(|i| self.sensors[i].as_slice())
    }

    /// The column index of sensor `name`.
    pub fn sensor_index(&self, name: &str) -> Option<usize> {
        self.sensor_names.iter().position(|s| s == name)
    }

    /// The `failure` label column (1 = fails within the label horizon), if present.
    pub fn failure(&self) -> Option<&[u8]> {
        self.failure.as_deref()
    }

    /// The `failure_mode` label column, if present.
    pub fn failure_mode(&self) -> Option<&[FailureMode]> {
        self.failure_mode.as_deref()
    }

    /// Per sensor, how many non-finite values (±inf, NaN) the input held; they are stored as missing.
    pub fn non_finite_counts(&self) -> &[usize] {
        &self.non_finite
    }

    /// How many input rows were out of (machine, time) order and had to be sorted (0 = input was sorted).
    pub fn reordered_rows(&self) -> usize {
        self.reordered_rows
    }

    /// The row range of each machine, in machine order: `(machine index, rows)`.
    pub fn machine_ranges(&self) -> Vec<(u32, Range<usize>)> {
        let mut out = Vec::with_capacity(self.machine_ids.len());
        let mut start = 0;
        while start < self.machine.len() {
            let m = self.machine[start];
            let end = start + self.machine[start..].partition_point(|&x| x == m);
            out.push((m, start..end));
            start = end;
        }
        out
    }

    /// A frame holding only `rows` (indices into this frame, in order).
    pub fn select_rows(&self, rows: &[usize]) -> TelemetryFrame {
        let mut builder = FrameBuilder::new(
            self.sensor_names.clone(),
            self.failure.is_some(),
            self.failure_mode.is_some(),
        );
        let mut row = vec![0.0; self.sensors.len()];
        for &i in rows {
            for (slot, column) in row.iter_mut().zip(&self.sensors) {
                *slot = column[i];
            }
            builder.push(
                self.machine_id_of(i),
                self.time[i],
                &row,
                self.failure.as_ref().map(|f| f[i]),
                self.failure_mode.as_ref().map(|m| m[i]),
            );
        }
        let mut frame = builder.finish();
        frame.non_finite = self.non_finite.clone();
        frame
    }

    pub(crate) fn set_labels(&mut self, failure: Vec<u8>, failure_mode: Vec<FailureMode>) {
        self.failure = Some(failure);
        self.failure_mode = Some(failure_mode);
    }
}

/// Builds a [`TelemetryFrame`] one row at a time (used by the CSV and PostgreSQL
/// loaders and the simulator); [`finish`](Self::finish) sorts when needed.
#[derive(Debug)]
pub struct FrameBuilder {
    ids: HashMap<String, u32>,
    id_names: Vec<String>,
    time: Vec<i64>,
    machine: Vec<u32>,
    sensor_names: Vec<String>,
    sensors: Vec<Vec<f64>>,
    failure: Option<Vec<u8>>,
    failure_mode: Option<Vec<FailureMode>>,
    non_finite: Vec<usize>,
}

impl FrameBuilder {
    /// A builder for the named sensor columns, with or without label columns.
    pub fn new(
        sensor_names: Vec<String>,
        with_failure: bool,
        with_failure_mode: bool,
    ) -> FrameBuilder {
        let k = sensor_names.len();
        FrameBuilder {
            ids: HashMap::new(),
            id_names: Vec::new(),
            time: Vec::new(),
            machine: Vec::new(),
            sensor_names,
            sensors: vec![Vec::new(); k],
            failure: with_failure.then(Vec::new),
            failure_mode: with_failure_mode.then(Vec::new),
            non_finite: vec![0; k],
        }
    }

    /// Reserves room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.time.reserve(rows);
        self.machine.reserve(rows);
        for column in &mut self.sensors {
            column.reserve(rows);
        }
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Whether no rows were pushed.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// Appends one row. `values` are in sensor order (extra values are ignored,
    /// missing ones are `NaN`); non-finite values become missing and are counted.
    /// Labels are ignored when the builder has no label columns, and default to
    /// 0 / `None` when it has them but the row gives none.
    pub fn push(
        &mut self,
        machine_id: &str,
        time: i64,
        values: &[f64],
        failure: Option<u8>,
        failure_mode: Option<FailureMode>,
    ) {
        let index = match self.ids.get(machine_id) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.id_names.len()).unwrap_or(u32::MAX);
                self.ids.insert(machine_id.to_owned(), i);
                self.id_names.push(machine_id.to_owned());
                i
            }
        };
        self.time.push(time);
        self.machine.push(index);
        for (k, column) in self.sensors.iter_mut().enumerate() {
            let v = values.get(k).copied().unwrap_or(f64::NAN);
            if v.is_finite() {
                column.push(v);
            } else {
                // NaN handed in is "missing"; ±inf is a glitch, counted.
                if v.is_infinite() {
                    self.non_finite[k] += 1;
                }
                column.push(f64::NAN);
            }
        }
        if let Some(f) = &mut self.failure {
            f.push(failure.unwrap_or(0));
        }
        if let Some(m) = &mut self.failure_mode {
            m.push(failure_mode.unwrap_or_default());
        }
    }

    /// Counts one non-finite value of sensor `k` that the caller already turned into `NaN`
    /// (the CSV reader does this for `NaN` text, which is a glitch, not a missing field).
    pub fn count_non_finite(&mut self, k: usize) {
        if let Some(c) = self.non_finite.get_mut(k) {
            *c += 1;
        }
    }

    /// Finishes the frame: renumbers machines in [`compare_machine_ids`] order and
    /// stably sorts rows by (machine, time) if they are not already.
    pub fn finish(self) -> TelemetryFrame {
        let FrameBuilder {
            id_names,
            mut time,
            mut machine,
            sensor_names,
            mut sensors,
            mut failure,
            mut failure_mode,
            non_finite,
            ..
        } = self;
        // Rank machine ids, then map first-seen indices to ranks.
        let mut order: Vec<u32> = (0..u32::try_from(id_names.len()).unwrap_or(u32::MAX)).collect();
        order.sort_by(|&a, &b| compare_machine_ids(&id_names[a as usize], &id_names[b as usize]));
        let mut rank = vec![0u32; id_names.len()];
        for (r, &old) in order.iter().enumerate() {
            rank[old as usize] = u32::try_from(r).unwrap_or(u32::MAX);
        }
        let machine_ids: Vec<String> = order
            .iter()
            .map(|&old| id_names[old as usize].clone())
            .collect();
        for m in &mut machine {
            *m = rank[*m as usize];
        }
        let key = |i: usize| (machine[i], time[i]);
        let out_of_order = (1..time.len()).filter(|&i| key(i) < key(i - 1)).count();
        if out_of_order > 0 {
            let mut perm: Vec<usize> = (0..time.len()).collect();
            perm.sort_by_key(|&i| (machine[i], time[i])); // stable: duplicates keep input order
            time = perm.iter().map(|&i| time[i]).collect();
            machine = perm.iter().map(|&i| machine[i]).collect();
            for column in &mut sensors {
                *column = perm.iter().map(|&i| column[i]).collect();
            }
            if let Some(f) = &mut failure {
                *f = perm.iter().map(|&i| f[i]).collect();
            }
            if let Some(m) = &mut failure_mode {
                *m = perm.iter().map(|&i| m[i]).collect();
            }
        }
        TelemetryFrame {
            time,
            machine,
            machine_ids,
            sensor_names,
            sensors,
            failure,
            failure_mode,
            non_finite,
            reordered_rows: out_of_order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_machine_then_time_stably() {
        let frame = TelemetryFrame::new(
            &["10", "2", "2", "10", "2"],
            vec![5, 3, 1, 4, 3],
            vec![("x".into(), vec![0.0, 1.0, 2.0, f64::INFINITY, 4.0])],
            None,
            None,
        )
        .unwrap();
        assert_eq!(frame.machine_ids(), ["2", "10"]);
        assert_eq!(frame.time(), [1, 3, 3, 4, 5]);
        let x = frame.sensor(0);
        assert_eq!(&x[..3], &[2.0, 1.0, 4.0]); // duplicate time 3 keeps input order
        assert!(x[3].is_nan());
        assert_eq!(frame.non_finite_counts(), [1]);
        assert!(frame.reordered_rows() > 0);
        assert_eq!(frame.machine_ranges(), vec![(0, 0..3), (1, 3..5)]);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = TelemetryFrame::new(&["a"], vec![1, 2], vec![], None, None).unwrap_err();
        assert!(matches!(err, FeaturesError::LengthMismatch { .. }), "{err}");
    }

    #[test]
    fn failure_modes_round_trip() {
        for mode in FailureMode::ALL {
            assert_eq!(FailureMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(FailureMode::parse("melted"), None);
        assert_eq!(FailureMode::parse(" NONE "), Some(FailureMode::None));
        assert_eq!(
            FailureMode::parse("Power_Surge"),
            Some(FailureMode::PowerSurge)
        );
    }
}
