//! The declarative feature specification.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{FeaturesError, Result};
use crate::frame::REFERENCE_SENSORS;
use crate::time::{MICROS_PER_MINUTE, MICROS_PER_SECOND};

/// A window length, written like pandas offsets: `90s`, `5m` (or `5min`), `1h`, `1d`, `500ms`.
///
/// Serialised as that text, so a saved spec reads `"window": "5m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowLength {
    micros: i64,
}

impl WindowLength {
    /// A window of `minutes` minutes.
    pub const fn minutes(minutes: i64) -> WindowLength {
        WindowLength {
            micros: minutes * MICROS_PER_MINUTE,
        }
    }

    /// A window of `seconds` seconds.
    pub const fn seconds(seconds: i64) -> WindowLength {
        WindowLength {
            micros: seconds * MICROS_PER_SECOND,
        }
    }

    /// A window of `micros` microseconds.
    pub const fn from_micros(micros: i64) -> WindowLength {
        WindowLength { micros }
    }

    /// The length in microseconds.
    pub const fn as_micros(self) -> i64 {
        self.micros
    }
}

impl fmt::Display for WindowLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.micros;
        let units = [
            (86_400 * MICROS_PER_SECOND, "d"),
            (3_600 * MICROS_PER_SECOND, "h"),
            (MICROS_PER_MINUTE, "m"),
            (MICROS_PER_SECOND, "s"),
            (1_000, "ms"),
        ];
        for (size, unit) in units {
            if us != 0 && us % size == 0 {
                return write!(f, "{}{unit}", us / size);
            }
        }
        write!(f, "{us}us")
    }
}

impl FromStr for WindowLength {
    type Err = FeaturesError;

    fn from_str(text: &str) -> Result<WindowLength> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let bad = || {
            FeaturesError::InvalidSpec(format!(
                "window {text:?}: expected a positive length like 90s, 5m, 1h"
            ))
        };
        let value: i64 = digits.parse().map_err(|_| bad())?;
        let scale = match unit.trim() {
            "us" => 1,
            "ms" => 1_000,
            "s" => MICROS_PER_SECOND,
            "m" | "min" | "T" => MICROS_PER_MINUTE,
            "h" => 60 * MICROS_PER_MINUTE,
            "d" => 1_440 * MICROS_PER_MINUTE,
            _ => return Err(bad()),
        };
        let micros = value.checked_mul(scale).ok_or_else(bad)?;
        if micros <= 0 {
            return Err(bad());
        }
        Ok(WindowLength { micros })
    }
}

impl Serialize for WindowLength {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WindowLength {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A rolling aggregation over the valid values of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Arithmetic mean.
    Mean,
    /// Sample standard deviation (ddof = 1; one value gives NaN).
    Std,
    /// Sample variance (ddof = 1).
    Var,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum (NaN when the window has no valid value, as pandas with `min_periods=1`).
    Sum,
    /// Number of valid values.
    Count,
}

impl Aggregation {
    /// The name used in generated feature names (`mean`, `std`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Mean => "mean",
            Aggregation::Std => "std",
            Aggregation::Var => "var",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
        }
    }
}

/// How one feature is computed from the samples of one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FeatureKind {
    /// The sensor's current value.
    Raw {
        /// Sensor name.
        sensor: String,
    },
    /// An aggregation over the window `(t - window, t]`.
    Rolling {
        /// Sensor name.
        sensor: String,
        /// The aggregation.
        aggregation: Aggregation,
        /// The window length.
        window: WindowLength,
    },
    /// Current value minus the previous row's value (same machine).
    Diff {
        /// Sensor name.
        sensor: String,
    },
    /// Current value / previous row's value − 1 (same machine; x/0 → ±inf, 0/0 → NaN).
    PctChange {
        /// Sensor name.
        sensor: String,
    },
    /// (value − rolling mean) / rolling std over `window`.
    ZScore {
        /// Sensor name.
        sensor: String,
        /// The window length.
        window: WindowLength,
    },
    /// `left × right` of two sensors' current values.
    Product {
        /// First sensor.
        left: String,
        /// Second sensor.
        right: String,
    },
    /// `numerator / denominator` of two sensors' current values (x/0 → ±inf).
    Ratio {
        /// Sensor divided.
        numerator: String,
        /// Sensor dividing.
        denominator: String,
    },
}

/// One named output column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The column name (unique within a spec).
    pub name: String,
    /// How it is computed.
    #[serde(flatten)]
    pub kind: FeatureKind,
}

/// What to do with non-finite feature values for models that need finite input.
///
/// Default (the reference pipeline's `replace([inf, -inf], nan).fillna(0)`):
/// NaN, +inf and −inf all become 0, no clipping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SanitizePolicy {
    /// Replacement for NaN (missing values, undefined windows).
    pub nan: f64,
    /// Replacement for +inf (e.g. `power_per_speed` while idle).
    pub pos_inf: f64,
    /// Replacement for −inf.
    pub neg_inf: f64,
    /// When set, finite values are clipped into `[-clip_abs, clip_abs]` afterwards.
    pub clip_abs: Option<f64>,
}

impl Default for SanitizePolicy {
    fn default() -> SanitizePolicy {
        SanitizePolicy {
            nan: 0.0,
            pos_inf: 0.0,
            neg_inf: 0.0,
            clip_abs: None,
        }
    }
}

impl SanitizePolicy {
    /// Checks that the replacements are finite and the clip bound positive.
    pub fn validate(&self) -> Result<()> {
        if !(self.nan.is_finite() && self.pos_inf.is_finite() && self.neg_inf.is_finite()) {
            return Err(FeaturesError::InvalidSpec(
                "sanitize replacements must be finite".into(),
            ));
        }
        if let Some(c) = self.clip_abs
            && !(c.is_finite() && c > 0.0)
        {
            return Err(FeaturesError::InvalidSpec(format!(
                "sanitize clip_abs must be positive and finite, got {c}"
            )));
        }
        Ok(())
    }

    /// The sanitised value of `x`.
    #[inline]
    pub fn apply(&self, x: f64) -> f64 {
        let y = if x.is_nan() {
            self.nan
        } else if x == f64::INFINITY {
            self.pos_inf
        } else if x == f64::NEG_INFINITY {
            self.neg_inf
        } else {
            x
        };
        match self.clip_abs {
            Some(c) => y.clamp(-c, c),
            None => y,
        }
    }

    /// Sanitises every value of `values` in place.
    pub fn apply_in_place(&self, values: &mut [f64]) {
        for v in values {
            *v = self.apply(*v);
        }
    }
}

/// A declarative, serialisable feature set: which sensors are read (in what
/// order online samples supply them), which features are produced (in output
/// column order) and how they are sanitised for models.
///
/// [`FeatureSpec::default`] is the reference pipeline's 42 features; save the
/// spec with a trained model (serde) so serving computes exactly the same columns.
///
/// # Sample admission: duplicates and spacing
///
/// One rule, the same in batch ([`FeatureSpec::compute`],
/// [`TrainingSet::build`](crate::TrainingSet::build)) and online
/// ([`OnlineFeatures`](crate::OnlineFeatures),
/// [`MachineFeatureState`](crate::MachineFeatureState)), decides which samples
/// of a machine enter its state (windows, `diff`, `pct_change`). A machine's
/// first sample is admitted; after that, with `last` the time of the last
/// admitted sample, a sample at `time`
///
/// * with `time >= last + min_spacing` is admitted ([`Admission::Advance`](crate::Admission::Advance));
/// * with `time == last` is a **retry** ([`Admission::Retry`](crate::Admission::Retry)):
///   it changes nothing and its feature row is the previous row again;
/// * with `last < time < last + min_spacing` is **too close**: it does not enter
///   the state. Batch gives it a copy of the machine's previous row (so rows and
///   labels stay aligned); online refuses it with [`FeaturesError::TooClose`];
/// * with `time < last` is out of order (online: [`FeaturesError::OutOfOrder`];
///   a frame is sorted, so batch never sees one).
///
/// So in batch every row that is not admitted, duplicates included, repeats the
/// previous row of its machine, and online a retry gets the same answer again.
/// [`min_spacing`](Self::min_spacing) defaults to [`DEFAULT_MIN_SPACING`](Self::DEFAULT_MIN_SPACING)
/// (1 s) and may not be below [`MIN_SPACING_FLOOR`](Self::MIN_SPACING_FLOOR)
/// (1 ms): the floor bounds how many samples a window can hold, and so a
/// machine's state in bytes ([`FeaturePlan::max_state_bytes`](crate::FeaturePlan::max_state_bytes)).
/// Spec files written before the field existed read as the 1 s default, so
/// older models get this rule too (before it, duplicates entered the windows).
///
/// ```
/// use vigil_features::{FeatureSpec, Aggregation, WindowLength};
/// let spec = FeatureSpec::default();
/// assert_eq!(spec.len(), 42);
/// assert_eq!(spec.feature_names()[1], "temperature_mean_5m");
///
/// // A custom spec: one sensor, a 1-hour max and the default 42 untouched.
/// let custom = FeatureSpec::new(["pressure"])
///     .with_raw("pressure")
///     .with_rolling("pressure", Aggregation::Max, WindowLength::minutes(60));
/// custom.validate().unwrap();
/// assert_eq!(custom.feature_names(), ["pressure", "pressure_max_1h"]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Input sensors, in the order online samples supply their values.
    pub sensors: Vec<String>,
    /// Output features, in column order.
    pub features: Vec<Feature>,
    /// Policy of [`FeatureMatrix::sanitize`](crate::FeatureMatrix::sanitize) and
    /// [`OnlineFeatures::push_sanitized`](crate::OnlineFeatures::push_sanitized).
    #[serde(default)]
    pub sanitize: SanitizePolicy,
    /// The minimum time between two admitted samples of a machine (see
    /// [Sample admission](Self#sample-admission-duplicates-and-spacing)).
    /// Default 1 s, also for spec files written before the field existed; at
    /// least [`MIN_SPACING_FLOOR`](Self::MIN_SPACING_FLOOR).
    #[serde(default = "default_min_spacing")]
    pub min_spacing: WindowLength,
}

/// Serde's default for [`FeatureSpec::min_spacing`].
fn default_min_spacing() -> WindowLength {
    FeatureSpec::DEFAULT_MIN_SPACING
}

impl Default for FeatureSpec {
    /// The reference pipeline's 42 features over temperature, vibration,
    /// spindle_speed and power_consumption: for each sensor `m`, `m`,
    /// `m_mean_5m`, `m_std_5m`, `m_max_5m`, `m_min_5m`, `m_mean_30m`,
    /// `m_std_30m`, `m_diff`, `m_pct_change`, `m_zscore_30m`; then
    /// `temp_x_vibration` and `power_per_speed`.
    fn default() -> FeatureSpec {
        let five = WindowLength::minutes(5);
        let thirty = WindowLength::minutes(30);
        let mut spec = FeatureSpec::new(REFERENCE_SENSORS);
        for m in REFERENCE_SENSORS {
            spec = spec
                .with_raw(m)
                .with_rolling(m, Aggregation::Mean, five)
                .with_rolling(m, Aggregation::Std, five)
                .with_rolling(m, Aggregation::Max, five)
                .with_rolling(m, Aggregation::Min, five)
                .with_rolling(m, Aggregation::Mean, thirty)
                .with_rolling(m, Aggregation::Std, thirty)
                .with_diff(m)
                .with_pct_change(m)
                .with_zscore(m, thirty);
        }
        spec.with_feature(
            "temp_x_vibration",
            FeatureKind::Product {
                left: "temperature".into(),
                right: "vibration".into(),
            },
        )
        .with_feature(
            "power_per_speed",
            FeatureKind::Ratio {
                numerator: "power_consumption".into(),
                denominator: "spindle_speed".into(),
            },
        )
    }
}

impl FeatureSpec {
    /// The default [`min_spacing`](Self::min_spacing): 1 s.
    pub const DEFAULT_MIN_SPACING: WindowLength = WindowLength::seconds(1);

    /// The smallest valid [`min_spacing`](Self::min_spacing): 1 ms. With it a
    /// window holds at most `window / 1 ms + 1` samples, so a machine's state
    /// is bounded whatever the input.
    pub const MIN_SPACING_FLOOR: WindowLength = WindowLength::from_micros(1_000);

    /// An empty spec over these sensors (add features with the `with_*` methods).
    pub fn new<S: Into<String>>(sensors: impl IntoIterator<Item = S>) -> FeatureSpec {
        FeatureSpec {
            sensors: sensors.into_iter().map(Into::into).collect(),
            features: Vec::new(),
            sanitize: SanitizePolicy::default(),
            min_spacing: FeatureSpec::DEFAULT_MIN_SPACING,
        }
    }

    /// The reference 42-feature spec (same as [`Default`]).
    pub fn reference() -> FeatureSpec {
        FeatureSpec::default()
    }

    /// Adds a feature with an explicit name.
    pub fn with_feature(mut self, name: impl Into<String>, kind: FeatureKind) -> FeatureSpec {
        self.features.push(Feature {
            name: name.into(),
            kind,
        });
        self
    }

    /// Adds the raw value of `sensor`, named `sensor`.
    pub fn with_raw(self, sensor: &str) -> FeatureSpec {
        self.with_feature(
            sensor,
            FeatureKind::Raw {
                sensor: sensor.into(),
            },
        )
    }

    /// Adds a rolling aggregation named `{sensor}_{aggregation}_{window}` (e.g. `vibration_max_5m`).
    pub fn with_rolling(
        self,
        sensor: &str,
        aggregation: Aggregation,
        window: WindowLength,
    ) -> FeatureSpec {
        let name = format!("{sensor}_{}_{window}", aggregation.as_str());
        self.with_feature(
            name,
            FeatureKind::Rolling {
                sensor: sensor.into(),
                aggregation,
                window,
            },
        )
    }

    /// Adds `{sensor}_diff`.
    pub fn with_diff(self, sensor: &str) -> FeatureSpec {
        self.with_feature(
            format!("{sensor}_diff"),
            FeatureKind::Diff {
                sensor: sensor.into(),
            },
        )
    }

    /// Adds `{sensor}_pct_change`.
    pub fn with_pct_change(self, sensor: &str) -> FeatureSpec {
        self.with_feature(
            format!("{sensor}_pct_change"),
            FeatureKind::PctChange {
                sensor: sensor.into(),
            },
        )
    }

    /// Adds `{sensor}_zscore_{window}`.
    pub fn with_zscore(self, sensor: &str, window: WindowLength) -> FeatureSpec {
        self.with_feature(
            format!("{sensor}_zscore_{window}"),
            FeatureKind::ZScore {
                sensor: sensor.into(),
                window,
            },
        )
    }

    /// Replaces the sanitising policy.
    pub fn with_sanitize(mut self, policy: SanitizePolicy) -> FeatureSpec {
        self.sanitize = policy;
        self
    }

    /// Replaces the [`min_spacing`](Self::min_spacing).
    pub fn with_min_spacing(mut self, min_spacing: WindowLength) -> FeatureSpec {
        self.min_spacing = min_spacing;
        self
    }

    /// Number of output features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether the spec produces no feature.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Output column names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// The longest window any feature uses (zero when none does).
    pub fn longest_window(&self) -> WindowLength {
        self.features
            .iter()
            .filter_map(|f| match &f.kind {
                FeatureKind::Rolling { window, .. } | FeatureKind::ZScore { window, .. } => {
                    Some(*window)
                }
                _ => None,
            })
            .max()
            .unwrap_or(WindowLength::from_micros(0))
    }

    /// How long after a machine's first admitted sample its rows are **warm**:
    /// every window then covers time the machine was observed in, and `diff` /
    /// `pct_change` have a previous sample. The longest window, and at least
    /// [`min_spacing`](Self::min_spacing) (so a spec without windows is warm
    /// from its second sample on). See [`Pushed::warm`](crate::Pushed::warm).
    pub fn warm_after(&self) -> WindowLength {
        self.longest_window().max(self.min_spacing)
    }

    /// How much of a machine's history a warm start must replay so that its
    /// state then gives exactly (bit for bit) the rows of a state that saw the
    /// whole history: the admitted samples with `time > last − warmup_span`,
    /// where `last` is the machine's last admitted time, and the one admitted
    /// sample before them (see
    /// [`MachineFeatureState::restore`](crate::MachineFeatureState::restore)).
    ///
    /// It is twice the longest window plus [`min_spacing`](Self::min_spacing):
    /// each window recomputes its sums exactly at the first sample of every
    /// window-long slot of absolute time (`time.div_euclid(window)`), so from
    /// the first sample of the last sample's slot on — less than two windows
    /// before it — the window's state depends only on samples inside it. The
    /// extra `min_spacing` keeps the last sample in a spec without windows.
    pub fn warmup_span(&self) -> WindowLength {
        let twice = self.longest_window().as_micros().saturating_mul(2);
        WindowLength::from_micros(twice.saturating_add(self.min_spacing.as_micros()))
    }

    /// Checks the spec: sensors unique and non-empty, at least one feature,
    /// feature names unique, every sensor a feature uses declared, windows
    /// positive, [`min_spacing`](Self::min_spacing) at least
    /// [`MIN_SPACING_FLOOR`](Self::MIN_SPACING_FLOOR).
    pub fn validate(&self) -> Result<()> {
        if self.min_spacing < FeatureSpec::MIN_SPACING_FLOOR {
            return Err(FeaturesError::InvalidSpec(format!(
                "min_spacing {} is below the floor of {} (it bounds how many samples a window holds)",
                self.min_spacing,
                FeatureSpec::MIN_SPACING_FLOOR
            )));
        }
        if self.sensors.is_empty() {
            return Err(FeaturesError::InvalidSpec("no sensors declared".into()));
        }
        for (i, s) in self.sensors.iter().enumerate() {
            if s.trim().is_empty() {
                return Err(FeaturesError::InvalidSpec("empty sensor name".into()));
            }
            if self.sensors[..i].contains(s) {
                return Err(FeaturesError::InvalidSpec(format!(
                    "sensor `{s}` declared twice"
                )));
            }
        }
        if self.features.is_empty() {
            return Err(FeaturesError::InvalidSpec("no features".into()));
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.name.trim().is_empty() {
                return Err(FeaturesError::InvalidSpec(format!(
                    "feature #{i} has an empty name"
                )));
            }
            if self.features[..i].iter().any(|g| g.name == f.name) {
                return Err(FeaturesError::InvalidSpec(format!(
                    "feature name `{}` used twice",
                    f.name
                )));
            }
            for sensor in f.kind.sensors() {
                if !self.sensors.iter().any(|s| s == sensor) {
                    return Err(FeaturesError::UnknownSensor {
                        feature: f.name.clone(),
                        sensor: sensor.to_owned(),
                        available: self.sensors.join(", "),
                    });
                }
            }
            if let FeatureKind::Rolling { window, .. } | FeatureKind::ZScore { window, .. } =
                &f.kind
                && window.as_micros() <= 0
            {
                return Err(FeaturesError::InvalidSpec(format!(
                    "feature `{}`: window must be positive",
                    f.name
                )));
            }
        }
        self.sanitize.validate()
    }
}

impl FeatureKind {
    /// The sensors this feature reads.
    pub fn sensors(&self) -> Vec<&str> {
        match self {
            FeatureKind::Raw { sensor }
            | FeatureKind::Rolling { sensor, .. }
            | FeatureKind::Diff { sensor }
            | FeatureKind::PctChange { sensor }
            | FeatureKind::ZScore { sensor, .. } => vec![sensor.as_str()],
            FeatureKind::Product { left, right } => vec![left.as_str(), right.as_str()],
            FeatureKind::Ratio {
                numerator,
                denominator,
            } => vec![numerator.as_str(), denominator.as_str()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_reference_42() {
        let names = FeatureSpec::default().feature_names();
        let mut expected = Vec::new();
        for m in REFERENCE_SENSORS {
            for suffix in [
                "",
                "_mean_5m",
                "_std_5m",
                "_max_5m",
                "_min_5m",
                "_mean_30m",
                "_std_30m",
                "_diff",
                "_pct_change",
                "_zscore_30m",
            ] {
                expected.push(format!("{m}{suffix}"));
            }
        }
        expected.push("temp_x_vibration".into());
        expected.push("power_per_speed".into());
        assert_eq!(names, expected);
        assert_eq!(names.len(), 42);
        FeatureSpec::default().validate().unwrap();
    }

    #[test]
    fn round_trips_through_json() {
        let spec = FeatureSpec::default();
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""window":"30m""#), "{json}");
        let back: FeatureSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn spec_files_without_min_spacing_get_the_default() {
        let mut json = serde_json::to_value(FeatureSpec::default()).unwrap();
        assert_eq!(json["min_spacing"], "1s");
        json.as_object_mut().unwrap().remove("min_spacing");
        let older: FeatureSpec = serde_json::from_value(json).unwrap();
        assert_eq!(older.min_spacing, WindowLength::seconds(1));
        assert_eq!(older, FeatureSpec::default());
    }

    #[test]
    fn min_spacing_has_a_floor() {
        let spec = |us: i64| FeatureSpec::default().with_min_spacing(WindowLength::from_micros(us));
        for bad in [-1, 0, 1, 999] {
            let err = spec(bad).validate().unwrap_err();
            assert!(err.to_string().contains("below the floor of 1ms"), "{err}");
        }
        spec(1_000).validate().unwrap();
        let json = r#"{"sensors":["a"],"features":[{"name":"a","kind":"raw","sensor":"a"}],"min_spacing":"250ms"}"#;
        let parsed: FeatureSpec = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.min_spacing.as_micros(), 250_000);
        parsed.validate().unwrap();
    }

    #[test]
    fn warm_after_and_warmup_span_follow_the_windows() {
        let spec = FeatureSpec::default();
        assert_eq!(spec.warm_after(), WindowLength::minutes(30));
        assert_eq!(
            spec.warmup_span().as_micros(),
            60 * MICROS_PER_MINUTE + MICROS_PER_SECOND
        );
        // No window: warm from the second sample (diff needs one), and a warm
        // start replays the last sample.
        let diff = FeatureSpec::new(["a"]).with_diff("a");
        assert_eq!(diff.warm_after(), WindowLength::seconds(1));
        assert_eq!(diff.warmup_span(), WindowLength::seconds(1));
    }

    #[test]
    fn window_lengths_parse_and_print() {
        for (text, us, shown) in [
            ("5m", 300_000_000, "5m"),
            ("5min", 300_000_000, "5m"),
            ("90s", 90_000_000, "90s"),
            ("1h", 3_600_000_000, "1h"),
            ("60m", 3_600_000_000, "1h"),
            ("250ms", 250_000, "250ms"),
        ] {
            let w: WindowLength = text.parse().unwrap();
            assert_eq!(w.as_micros(), us);
            assert_eq!(w.to_string(), shown);
        }
        for bad in ["", "m", "0s", "-5m", "5 parsecs", "99999999999999999d"] {
            assert!(bad.parse::<WindowLength>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let spec = FeatureSpec::new(["a"]).with_raw("b");
        assert!(matches!(
            spec.validate(),
            Err(FeaturesError::UnknownSensor { .. })
        ));
        let spec = FeatureSpec::new(["a"]).with_raw("a").with_raw("a");
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("used twice")
        );
        assert!(FeatureSpec::new(["a"]).validate().is_err());
        let spec = FeatureSpec::new(["a"])
            .with_raw("a")
            .with_sanitize(SanitizePolicy {
                nan: f64::NAN,
                ..SanitizePolicy::default()
            });
        assert!(spec.validate().is_err());
    }

    #[test]
    fn sanitize_policy_applies() {
        let p = SanitizePolicy {
            nan: -1.0,
            pos_inf: 5.0,
            neg_inf: -5.0,
            clip_abs: Some(3.0),
        };
        assert_eq!(
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.0, 10.0].map(|x| p.apply(x)),
            [-1.0, 3.0, -3.0, 2.0, 3.0]
        );
    }
}
