//! The CSV reader on arbitrary bytes with arbitrary options: it must return a
//! frame or a typed error, never panic, and never allocate beyond what the
//! input's size explains (libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb`
//! catch that).
//!
//! Input layout (simple, so plain CSV files make good seeds):
//! * byte 0, flags: bits 0-2 the delimiter (0 `,` 1 `;` 2 tab 3 `|`, else
//!   byte 1 taken as a raw delimiter byte, usually rejected), bits 3-4 the
//!   time format (auto, rfc3339, epoch-s, epoch-ms), bit 5 an explicit time
//!   column, bit 6 an explicit machine column, bit 7 custom sensors;
//! * when bits 5-7 ask for names: a segment up to the first NUL, split at
//!   0x1f: the time column, the machine column, then the sensor names (in
//!   that order, each only when its bit is set; the sensors take the rest);
//! * the rest: the CSV bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_features::{CsvOptions, Delimiter, TimeFormat, read_csv_from};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let delimiter = match flags & 0b111 {
        0 => Delimiter::COMMA,
        1 => Delimiter::SEMICOLON,
        2 => Delimiter::TAB,
        3 => Delimiter::PIPE,
        _ => {
            let Some((&byte, tail)) = rest.split_first() else {
                return;
            };
            rest = tail;
            match Delimiter::new(byte) {
                Ok(d) => d,
                // A typed rejection: exercise its message, then stop.
                Err(e) => return drop(e.to_string()),
            }
        }
    };
    let time_format = match (flags >> 3) & 0b11 {
        0 => TimeFormat::Auto,
        1 => TimeFormat::Rfc3339,
        2 => TimeFormat::EpochSeconds,
        _ => TimeFormat::EpochMillis,
    };
    let mut options = CsvOptions::default()
        .with_delimiter(delimiter)
        .with_time_format(time_format);
    let csv = if flags & 0b1110_0000 != 0 {
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let text = String::from_utf8_lossy(&rest[..end]);
        let mut names = text.split('\u{1f}').map(str::to_owned);
        if flags & 0b0010_0000 != 0 {
            options.time_column = names.next();
        }
        if flags & 0b0100_0000 != 0 {
            options.machine_column = names.next();
        }
        if flags & 0b1000_0000 != 0 {
            options.sensors = names.collect();
        }
        &rest[(end + 1).min(rest.len())..]
    } else {
        rest
    };
    match read_csv_from(csv, "fuzz.csv", &options) {
        Ok((frame, report)) => {
            assert_eq!(report.rows, frame.len());
            assert!(!frame.is_empty());
            // Every row comes from its own input line.
            let lines = csv.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
            assert!(frame.len() < lines, "{} rows from {lines} lines", frame.len());
            let sorted = frame
                .time()
                .windows(2)
                .zip(frame.machine().windows(2))
                .all(|(t, m)| m[0] < m[1] || (m[0] == m[1] && t[0] <= t[1]));
            assert!(sorted, "rows not in (machine, time) order");
        }
        // Typed errors only; formatting them must not panic either.
        Err(e) => drop(e.to_string()),
    }
});
