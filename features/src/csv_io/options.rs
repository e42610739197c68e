//! What the CSV reader accepts: column mapping, delimiter and time format.

use std::fmt;
use std::str::FromStr;

use crate::error::{FeaturesError, Result};
use crate::frame::REFERENCE_SENSORS;

/// Names the time column may have when [`CsvOptions::time_column`] is `None`
/// (matched case-insensitively; `time` itself wins over the others).
pub const TIME_COLUMN_ALIASES: [&str; 5] = ["time", "timestamp", "ts", "datetime", "date_time"];

/// Names the machine-id column may have when [`CsvOptions::machine_column`] is
/// `None` (matched case-insensitively; `machine_id` itself wins over the others).
pub const MACHINE_COLUMN_ALIASES: [&str; 5] =
    ["machine_id", "asset_id", "machine", "asset", "device_id"];

/// How to read a telemetry CSV: which columns hold what, the delimiter, the time format.
///
/// ```
/// use vigil_features::{CsvOptions, Delimiter, TimeFormat, read_csv_from};
/// let text = "ts;asset_id;temperature\n1767225600;A7;70.5\n1767225610;A7;71\n";
/// let options = CsvOptions::with_sensors(["temperature"])
///     .with_delimiter(Delimiter::SEMICOLON)
///     .with_time_format(TimeFormat::EpochSeconds);
/// let (frame, _) = read_csv_from(text.as_bytes(), "export.csv", &options)?;
/// assert_eq!(frame.machine_ids(), ["A7"]);
/// assert_eq!(frame.time()[1] - frame.time()[0], 10_000_000); // µs
/// # Ok::<(), vigil_features::FeaturesError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// Sensor column names, in the order the frame stores them (the frame's
    /// sensors keep these names). Default: the four reference sensors.
    pub sensors: Vec<String>,
    /// The time column's exact name; `None` (the default) finds it among
    /// [`TIME_COLUMN_ALIASES`].
    pub time_column: Option<String>,
    /// The machine-id column's exact name; `None` (the default) finds it among
    /// [`MACHINE_COLUMN_ALIASES`].
    pub machine_column: Option<String>,
    /// The field delimiter (default `,`).
    pub delimiter: Delimiter,
    /// How the time column is written (default [`TimeFormat::Auto`]).
    pub time_format: TimeFormat,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions::with_sensors(REFERENCE_SENSORS)
    }
}

impl CsvOptions {
    /// Default options for these sensor columns.
    pub fn with_sensors<S: Into<String>>(sensors: impl IntoIterator<Item = S>) -> CsvOptions {
        CsvOptions {
            sensors: sensors.into_iter().map(Into::into).collect(),
            time_column: None,
            machine_column: None,
            delimiter: Delimiter::COMMA,
            time_format: TimeFormat::Auto,
        }
    }

    /// Reads the time from the column called `name`.
    pub fn with_time_column(mut self, name: impl Into<String>) -> CsvOptions {
        self.time_column = Some(name.into());
        self
    }

    /// Reads the machine id from the column called `name`.
    pub fn with_machine_column(mut self, name: impl Into<String>) -> CsvOptions {
        self.machine_column = Some(name.into());
        self
    }

    /// Uses `delimiter` between fields.
    pub fn with_delimiter(mut self, delimiter: Delimiter) -> CsvOptions {
        self.delimiter = delimiter;
        self
    }

    /// Reads times in `format`.
    pub fn with_time_format(mut self, format: TimeFormat) -> CsvOptions {
        self.time_format = format;
        self
    }

    /// Checks the options: column names non-empty, and no name given two roles
    /// (time, machine id, a sensor, the `failure` / `failure_mode` labels).
    pub fn validate(&self) -> Result<()> {
        // The label columns come first: they are always read when present.
        let mut roles: Vec<(&str, String)> = vec![
            ("failure", "the failure label".into()),
            ("failure_mode", "the failure-mode label".into()),
        ];
        if let Some(time) = &self.time_column {
            roles.push((time.trim(), "time".into()));
        }
        if let Some(machine) = &self.machine_column {
            roles.push((machine.trim(), "machine id".into()));
        }
        for sensor in &self.sensors {
            roles.push((sensor.trim(), format!("sensor `{sensor}`")));
        }
        for (i, (name, role)) in roles.iter().enumerate() {
            if name.is_empty() {
                return Err(FeaturesError::InvalidCsvOption {
                    option: "column name",
                    reason: format!("the {role} column name is empty"),
                });
            }
            let taken = roles[..i].iter().find(|(other, _)| other == name);
            if let Some((_, first)) = taken {
                return Err(FeaturesError::ColumnMappedTwice {
                    column: (*name).to_owned(),
                    first: first.clone(),
                    second: role.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A CSV field delimiter: one ASCII character other than `"`, CR, LF, a
/// letter, a digit or `.` `-` `+` (which appear inside values).
///
/// Parses from the character itself (`,` `;` `|` ...) or a name: `comma`,
/// `semicolon`, `tab` (also `\t` as two characters), `pipe`, `space`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiter(u8);

impl Delimiter {
    /// `,`
    pub const COMMA: Delimiter = Delimiter(b',');
    /// `;` (spreadsheet exports in locales whose decimal mark is a comma).
    pub const SEMICOLON: Delimiter = Delimiter(b';');
    /// Tab.
    pub const TAB: Delimiter = Delimiter(b'\t');
    /// `|`
    pub const PIPE: Delimiter = Delimiter(b'|');

    /// The delimiter `byte`, if CSV can use it.
    pub fn new(byte: u8) -> Result<Delimiter> {
        let reason = match byte {
            b'"' => "the quote character cannot separate fields",
            b'\n' | b'\r' => "line breaks end records",
            0x80.. => "not an ASCII character",
            b if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+' => {
                "letters, digits and number signs appear inside values"
            }
            _ => return Ok(Delimiter(byte)),
        };
        Err(FeaturesError::InvalidDelimiter {
            value: char::from(byte).to_string(),
            reason,
        })
    }

    /// The delimiter as a byte.
    pub fn as_byte(self) -> u8 {
        self.0
    }
}

impl Default for Delimiter {
    fn default() -> Delimiter {
        Delimiter::COMMA
    }
}

impl FromStr for Delimiter {
    type Err = FeaturesError;

    fn from_str(text: &str) -> Result<Delimiter> {
        let named = match text.to_ascii_lowercase().as_str() {
            "comma" => Some(b','),
            "semicolon" => Some(b';'),
            "tab" | "\\t" => Some(b'\t'),
            "pipe" => Some(b'|'),
            "space" => Some(b' '),
            _ => None,
        };
        match (named, text.as_bytes()) {
            (Some(byte), _) | (None, &[byte]) => Delimiter::new(byte),
            (None, []) => Err(FeaturesError::InvalidDelimiter {
                value: String::new(),
                reason: "empty",
            }),
            (None, _) => Err(FeaturesError::InvalidDelimiter {
                value: text.to_owned(),
                reason: "more than one character",
            }),
        }
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\t' => f.write_str("tab"),
            b' ' => f.write_str("space"),
            b => write!(f, "{}", char::from(b)),
        }
    }
}

/// How the time column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeFormat {
    /// Decided once per file from the first data row: RFC 3339 / ISO-8601
    /// text if it parses as such, otherwise a number read as epoch seconds
    /// when its magnitude is below 10^11 (before the year 5138) and epoch
    /// milliseconds below 10^14; larger numbers (micro- or nanoseconds) are an error.
    #[default]
    Auto,
    /// RFC 3339 / ISO-8601 text: `2026-01-01T00:00:10Z`, fractional seconds,
    /// offsets (converted to UTC), a space for `T`, no offset meaning UTC.
    Rfc3339,
    /// Seconds since the Unix epoch, integer or decimal (`1767225610.25`).
    EpochSeconds,
    /// Milliseconds since the Unix epoch, integer or decimal.
    EpochMillis,
}

impl TimeFormat {
    /// The spelling [`FromStr`] accepts and [`Display`](fmt::Display) prints.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeFormat::Auto => "auto",
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::EpochSeconds => "epoch-s",
            TimeFormat::EpochMillis => "epoch-ms",
        }
    }

    /// What a field of this format looks like (for error messages).
    pub(crate) fn expected(self) -> &'static str {
        match self {
            TimeFormat::Auto => {
                "RFC 3339 such as 2026-01-01T00:00:10Z, or epoch seconds or milliseconds"
            }
            TimeFormat::Rfc3339 => "RFC 3339 / ISO-8601 such as 2026-01-01T00:00:10Z",
            TimeFormat::EpochSeconds => "seconds since 1970-01-01T00:00:00Z",
            TimeFormat::EpochMillis => "milliseconds since 1970-01-01T00:00:00Z",
        }
    }
}

impl FromStr for TimeFormat {
    type Err = FeaturesError;

    /// `auto`, `rfc3339` (or `iso8601`), `epoch-s`, `epoch-ms` (`_` for `-`,
    /// any case; `epoch:s`, `epoch-sec`, `epoch-millis` too).
    fn from_str(text: &str) -> Result<TimeFormat> {
        let lower = text.trim().to_ascii_lowercase().replace('_', "-");
        let unit = lower
            .strip_prefix("epoch-")
            .or_else(|| lower.strip_prefix("epoch:"));
        match (lower.as_str(), unit) {
            ("auto", _) => Ok(TimeFormat::Auto),
            ("rfc3339" | "rfc-3339" | "iso8601" | "iso-8601", _) => Ok(TimeFormat::Rfc3339),
            (_, Some("s" | "sec" | "secs" | "seconds")) => Ok(TimeFormat::EpochSeconds),
            (_, Some("ms" | "millis" | "milliseconds")) => Ok(TimeFormat::EpochMillis),
            (_, Some(other)) => Err(FeaturesError::InvalidTimeFormat {
                value: text.to_owned(),
                reason: format!("unknown epoch unit `{other}` (expected `s` or `ms`)"),
            }),
            _ => Err(FeaturesError::InvalidTimeFormat {
                value: text.to_owned(),
                reason: "expected auto, rfc3339, epoch-s or epoch-ms".into(),
            }),
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_parse_from_characters_and_names() {
        for (text, byte) in [
            (",", b','),
            (";", b';'),
            ("semicolon", b';'),
            ("TAB", b'\t'),
            ("\\t", b'\t'),
            ("\t", b'\t'),
            ("|", b'|'),
            ("space", b' '),
        ] {
            assert_eq!(text.parse::<Delimiter>().unwrap().as_byte(), byte, "{text}");
        }
        for bad in ["", ";;", "\"", "\n", "a", "7", ".", "é"] {
            let err = bad.parse::<Delimiter>().unwrap_err();
            assert!(
                matches!(err, FeaturesError::InvalidDelimiter { .. }),
                "{bad}: {err}"
            );
        }
        assert!(Delimiter::new(0xff).is_err());
        assert_eq!(Delimiter::TAB.to_string(), "tab");
    }

    #[test]
    fn time_formats_parse_and_name_bad_units() {
        for (text, format) in [
            ("auto", TimeFormat::Auto),
            ("RFC3339", TimeFormat::Rfc3339),
            ("iso8601", TimeFormat::Rfc3339),
            ("epoch-s", TimeFormat::EpochSeconds),
            ("epoch_ms", TimeFormat::EpochMillis),
            ("epoch:millis", TimeFormat::EpochMillis),
        ] {
            assert_eq!(text.parse::<TimeFormat>().unwrap(), format, "{text}");
            assert_eq!(format.as_str().parse::<TimeFormat>().unwrap(), format);
        }
        let err = "epoch-us".parse::<TimeFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid time format \"epoch-us\": unknown epoch unit `us` (expected `s` or `ms`)"
        );
        assert!(matches!(
            "unix".parse::<TimeFormat>(),
            Err(FeaturesError::InvalidTimeFormat { .. })
        ));
    }

    #[test]
    fn validation_rejects_empty_and_doubly_mapped_columns() {
        let options = CsvOptions::default().with_time_column("temperature");
        assert_eq!(
            options.validate().unwrap_err().to_string(),
            "CSV options map column `temperature` to both time and sensor `temperature`"
        );
        let options = CsvOptions::default().with_machine_column(" ");
        assert!(matches!(
            options.validate(),
            Err(FeaturesError::InvalidCsvOption { .. })
        ));
        let options = CsvOptions::with_sensors(["failure"]);
        assert!(matches!(
            options.validate(),
            Err(FeaturesError::ColumnMappedTwice { .. })
        ));
        CsvOptions::default()
            .with_time_column("ts")
            .with_machine_column("asset_id")
            .validate()
            .unwrap();
    }
}
