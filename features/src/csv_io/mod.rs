//! CSV in and out.
//!
//! Header: `time,machine_id,<sensors...>[,failure,failure_mode]` (the reference
//! sensors are `temperature,vibration,spindle_speed,power_consumption`), in any
//! column order. Exports as users have them work too: `timestamp` / `ts` for
//! `time`, `asset_id` for `machine_id` (or any name, via [`CsvOptions`]), `;` or
//! tab delimiters, RFC 3339 times with offsets (converted to UTC) or epoch
//! seconds / milliseconds, failure modes in any case. An empty sensor field is
//! a missing value.

mod header;
mod options;
mod read;
mod write;

pub use options::{CsvOptions, Delimiter, MACHINE_COLUMN_ALIASES, TIME_COLUMN_ALIASES, TimeFormat};
pub use read::{LoadReport, read_csv, read_csv_from};
pub use write::{write_csv, write_csv_to};

#[cfg(test)]
mod tests;
