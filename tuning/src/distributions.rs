//! Parameter distributions (search-space dimensions) and parameter values.
//!
//! Every parameter has an *internal* representation, an `f64`, that samplers
//! work with: the value itself for floats and ints, the index of the choice for
//! categoricals (as Optuna does).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TuningError};

/// One choice of a categorical parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Choice {
    /// A string choice (`"sqrt"`).
    Str(String),
    /// An integer choice.
    Int(i64),
    /// A float choice.
    Float(f64),
    /// A boolean choice.
    Bool(bool),
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Str(s) => write!(f, "{s}"),
            Choice::Int(v) => write!(f, "{v}"),
            Choice::Float(v) => write!(f, "{v}"),
            Choice::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl From<&str> for Choice {
    fn from(value: &str) -> Self {
        Choice::Str(value.to_owned())
    }
}
impl From<String> for Choice {
    fn from(value: String) -> Self {
        Choice::Str(value)
    }
}
impl From<&String> for Choice {
    fn from(value: &String) -> Self {
        Choice::Str(value.clone())
    }
}
impl From<i64> for Choice {
    fn from(value: i64) -> Self {
        Choice::Int(value)
    }
}
impl From<i32> for Choice {
    fn from(value: i32) -> Self {
        Choice::Int(i64::from(value))
    }
}
impl From<usize> for Choice {
    fn from(value: usize) -> Self {
        Choice::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Choice {
    fn from(value: f64) -> Self {
        Choice::Float(value)
    }
}
impl From<bool> for Choice {
    fn from(value: bool) -> Self {
        Choice::Bool(value)
    }
}

/// The value of a parameter as the objective sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ParamValue {
    /// A float parameter's value.
    Float(f64),
    /// An int parameter's value.
    Int(i64),
    /// A categorical parameter's choice.
    Choice(Choice),
}

impl ParamValue {
    /// The value as `f64` (ints converted, numeric choices converted), if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Float(v) => Some(*v),
            ParamValue::Int(v) => Some(*v as f64),
            ParamValue::Choice(Choice::Int(v)) => Some(*v as f64),
            ParamValue::Choice(Choice::Float(v)) => Some(*v),
            ParamValue::Choice(_) => None,
        }
    }
    /// The value as `i64`, if it is an int (or an int choice).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ParamValue::Int(v) | ParamValue::Choice(Choice::Int(v)) => Some(*v),
            _ => None,
        }
    }
    /// The value as a string slice, if it is a string choice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Choice(Choice::Str(s)) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Choice(c) => write!(f, "{c}"),
        }
    }
}

impl From<f64> for ParamValue {
    fn from(value: f64) -> Self {
        ParamValue::Float(value)
    }
}
impl From<i64> for ParamValue {
    fn from(value: i64) -> Self {
        ParamValue::Int(value)
    }
}
impl From<i32> for ParamValue {
    fn from(value: i32) -> Self {
        ParamValue::Int(i64::from(value))
    }
}
impl From<&str> for ParamValue {
    fn from(value: &str) -> Self {
        ParamValue::Choice(Choice::Str(value.to_owned()))
    }
}
impl From<Choice> for ParamValue {
    fn from(value: Choice) -> Self {
        ParamValue::Choice(value)
    }
}

/// One dimension of the search space. Build them with the checked constructors
/// ([`Distribution::float`], [`Distribution::int`], …), which return typed errors.
///
/// Every parameter has an *internal* representation, an `f64`, that samplers work
/// with: the value itself for floats and ints, the index of the choice for
/// categoricals (as Optuna does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    /// Floats in `[low, high]`, optionally on a grid of `step` or log-scaled.
    Float {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (inclusive).
        high: f64,
        /// Grid step, if any (`high - low` must be a multiple of it).
        step: Option<f64>,
        /// Sample `ln x` uniformly / model it in log space.
        log: bool,
    },
    /// Integers in `[low, high]` on a grid of `step` (1 by default), optionally log-scaled.
    Int {
        /// Lower bound (inclusive).
        low: i64,
        /// Upper bound (inclusive).
        high: i64,
        /// Grid step (must divide `high - low`; must be 1 when `log`).
        step: i64,
        /// Model `ln x` rather than `x`.
        log: bool,
    },
    /// One of a list of choices (its internal value is the choice's index).
    Categorical {
        /// The choices, in order.
        choices: Vec<Choice>,
    },
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Float {
                low,
                high,
                step,
                log,
            } => {
                write!(f, "float[{low}, {high}]")?;
                if let Some(s) = step {
                    write!(f, " step {s}")?;
                }
                if *log {
                    write!(f, " log")?;
                }
                Ok(())
            }
            Distribution::Int {
                low,
                high,
                step,
                log,
            } => {
                write!(f, "int[{low}, {high}]")?;
                if *step != 1 {
                    write!(f, " step {step}")?;
                }
                if *log {
                    write!(f, " log")?;
                }
                Ok(())
            }
            Distribution::Categorical { choices } => {
                write!(f, "categorical{{")?;
                for (i, c) in choices.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{c}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

fn grid_ok(range: f64, step: f64) -> bool {
    let k = range / step;
    (k - k.round()).abs() <= 1e-8 * k.abs().max(1.0)
}

impl Distribution {
    /// A float in `[low, high]`. Errors: non-finite bounds, `low > high`.
    pub fn float(name: &str, low: f64, high: f64) -> Result<Self> {
        Self::float_with(name, low, high, None, false)
    }

    /// A log-scaled float in `[low, high]`. Errors as [`Distribution::float`], plus `low <= 0`.
    pub fn float_log(name: &str, low: f64, high: f64) -> Result<Self> {
        Self::float_with(name, low, high, None, true)
    }

    /// A float on the grid `low, low + step, …, high`. Errors as [`Distribution::float`],
    /// plus a step that is not positive or does not divide `high - low`.
    pub fn float_step(name: &str, low: f64, high: f64, step: f64) -> Result<Self> {
        Self::float_with(name, low, high, Some(step), false)
    }

    /// A float distribution with every option spelled out.
    pub fn float_with(
        name: &str,
        low: f64,
        high: f64,
        step: Option<f64>,
        log: bool,
    ) -> Result<Self> {
        if !low.is_finite() || !high.is_finite() {
            return Err(TuningError::NonFiniteBound {
                name: name.to_owned(),
                low,
                high,
            });
        }
        if low > high {
            return Err(TuningError::LowAboveHigh {
                name: name.to_owned(),
                low,
                high,
            });
        }
        if log && low <= 0.0 {
            return Err(TuningError::LogNonPositive {
                name: name.to_owned(),
                low,
            });
        }
        if let Some(step) = step {
            if log {
                return Err(TuningError::StepWithLog {
                    name: name.to_owned(),
                });
            }
            if !(step.is_finite() && step > 0.0) {
                return Err(TuningError::BadStep {
                    name: name.to_owned(),
                    step,
                });
            }
            if !grid_ok(high - low, step) {
                return Err(TuningError::StepDoesNotDivide {
                    name: name.to_owned(),
                    low,
                    high,
                    step,
                });
            }
        }
        Ok(Distribution::Float {
            low,
            high,
            step,
            log,
        })
    }

    /// An int in `[low, high]`. Errors: `low > high`.
    pub fn int(name: &str, low: i64, high: i64) -> Result<Self> {
        Self::int_with(name, low, high, 1, false)
    }

    /// A log-scaled int in `[low, high]`. Errors: `low > high`, `low <= 0`.
    pub fn int_log(name: &str, low: i64, high: i64) -> Result<Self> {
        Self::int_with(name, low, high, 1, true)
    }

    /// An int on the grid `low, low + step, …, high`. Errors: `low > high`, `step <= 0`,
    /// a step that does not divide `high - low`.
    pub fn int_step(name: &str, low: i64, high: i64, step: i64) -> Result<Self> {
        Self::int_with(name, low, high, step, false)
    }

    /// An int distribution with every option spelled out.
    pub fn int_with(name: &str, low: i64, high: i64, step: i64, log: bool) -> Result<Self> {
        if low > high {
            return Err(TuningError::LowAboveHigh {
                name: name.to_owned(),
                low: low as f64,
                high: high as f64,
            });
        }
        if log && low <= 0 {
            return Err(TuningError::LogNonPositive {
                name: name.to_owned(),
                low: low as f64,
            });
        }
        if step <= 0 {
            return Err(TuningError::BadStep {
                name: name.to_owned(),
                step: step as f64,
            });
        }
        if log && step != 1 {
            return Err(TuningError::StepWithLog {
                name: name.to_owned(),
            });
        }
        if (high - low) % step != 0 {
            return Err(TuningError::StepDoesNotDivide {
                name: name.to_owned(),
                low: low as f64,
                high: high as f64,
                step: step as f64,
            });
        }
        Ok(Distribution::Int {
            low,
            high,
            step,
            log,
        })
    }

    /// A categorical over `choices`. Errors: no choices, a repeated choice.
    pub fn categorical(name: &str, choices: Vec<Choice>) -> Result<Self> {
        if choices.is_empty() {
            return Err(TuningError::EmptyCategorical {
                name: name.to_owned(),
            });
        }
        for (i, c) in choices.iter().enumerate() {
            if choices[..i].contains(c) {
                return Err(TuningError::DuplicateChoice {
                    name: name.to_owned(),
                    choice: c.to_string(),
                });
            }
        }
        Ok(Distribution::Categorical { choices })
    }

    /// True when the distribution has only one possible value (nothing to sample).
    pub fn is_single(&self) -> bool {
        match self {
            Distribution::Float { low, high, .. } => low == high,
            Distribution::Int { low, high, .. } => low == high,
            Distribution::Categorical { choices } => choices.len() == 1,
        }
    }

    /// True when `internal` is a value of this distribution.
    pub fn contains(&self, internal: f64) -> bool {
        if !internal.is_finite() {
            return false;
        }
        match self {
            Distribution::Float {
                low, high, step, ..
            } => {
                if internal < *low || internal > *high {
                    return false;
                }
                match step {
                    Some(s) => grid_ok(internal - low, *s),
                    None => true,
                }
            }
            Distribution::Int {
                low, high, step, ..
            } => {
                internal.fract() == 0.0
                    && internal >= *low as f64
                    && internal <= *high as f64
                    && (internal as i64 - low) % step == 0
            }
            Distribution::Categorical { choices } => {
                internal.fract() == 0.0 && internal >= 0.0 && (internal as usize) < choices.len()
            }
        }
    }

    /// The external value for an internal one.
    pub fn to_external(&self, internal: f64) -> ParamValue {
        match self {
            Distribution::Float { .. } => ParamValue::Float(internal),
            Distribution::Int { .. } => ParamValue::Int(internal.round() as i64),
            Distribution::Categorical { choices } => {
                let i = (internal.max(0.0) as usize).min(choices.len().saturating_sub(1));
                ParamValue::Choice(choices[i].clone())
            }
        }
    }

    /// The internal value for an external one, or `None` when it does not belong here.
    pub fn to_internal(&self, value: &ParamValue) -> Option<f64> {
        let internal = match (self, value) {
            (Distribution::Categorical { choices }, ParamValue::Choice(c)) => {
                choices.iter().position(|x| x == c)? as f64
            }
            (Distribution::Categorical { choices }, ParamValue::Int(v)) => {
                choices.iter().position(|x| *x == Choice::Int(*v))? as f64
            }
            (Distribution::Categorical { choices }, ParamValue::Float(v)) => {
                choices.iter().position(|x| *x == Choice::Float(*v))? as f64
            }
            (_, v) => v.as_f64()?,
        };
        self.contains(internal).then_some(internal)
    }

    /// A short name of the kind, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Distribution::Float { .. } => "float",
            Distribution::Int { .. } => "int",
            Distribution::Categorical { .. } => "categorical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_give_typed_errors() {
        assert!(matches!(
            Distribution::float("x", 2.0, 1.0),
            Err(TuningError::LowAboveHigh { .. })
        ));
        assert!(matches!(
            Distribution::float_log("x", 0.0, 1.0),
            Err(TuningError::LogNonPositive { .. })
        ));
        assert!(matches!(
            Distribution::int_log("n", -3, 10),
            Err(TuningError::LogNonPositive { .. })
        ));
        assert!(matches!(
            Distribution::float_step("x", 0.0, 1.0, 0.3),
            Err(TuningError::StepDoesNotDivide { .. })
        ));
        assert!(matches!(
            Distribution::int_step("n", 0, 10, 3),
            Err(TuningError::StepDoesNotDivide { .. })
        ));
        assert!(matches!(
            Distribution::int_step("n", 0, 10, 0),
            Err(TuningError::BadStep { .. })
        ));
        assert!(matches!(
            Distribution::float_with("x", 1.0, 2.0, Some(0.5), true),
            Err(TuningError::StepWithLog { .. })
        ));
        assert!(matches!(
            Distribution::float("x", f64::NAN, 1.0),
            Err(TuningError::NonFiniteBound { .. })
        ));
        assert!(matches!(
            Distribution::categorical("c", vec![]),
            Err(TuningError::EmptyCategorical { .. })
        ));
        assert!(matches!(
            Distribution::categorical("c", vec!["a".into(), "a".into()]),
            Err(TuningError::DuplicateChoice { .. })
        ));
        // Floating-point grids that are exact up to rounding are accepted.
        assert!(Distribution::float_step("x", 0.0, 1.0, 0.1).is_ok());
    }

    #[test]
    fn internal_round_trip() {
        let c = Distribution::categorical("c", vec!["sqrt".into(), "log2".into()]).unwrap();
        assert_eq!(c.to_internal(&"log2".into()), Some(1.0));
        assert_eq!(c.to_external(1.0), ParamValue::Choice("log2".into()));
        let i = Distribution::int_step("n", 0, 10, 2).unwrap();
        assert!(i.contains(4.0) && !i.contains(5.0) && !i.contains(12.0));
        assert_eq!(i.to_internal(&ParamValue::Int(6)), Some(6.0));
        assert_eq!(i.to_internal(&ParamValue::Int(7)), None);
    }
}
