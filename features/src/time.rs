//! Timestamps: microseconds since the Unix epoch, UTC, as `i64`.
//!
//! The frame stores times as plain integers so the window kernels compare and
//! subtract integers; these helpers convert to and from ISO-8601.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// Microseconds in one minute.
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;

/// Parses an ISO-8601 / RFC 3339 timestamp into microseconds since the epoch (UTC).
///
/// Accepts `2026-01-01T00:00:10Z`, fractional seconds, explicit offsets
/// (`+02:00`, converted to UTC), a space instead of `T`, and a timestamp with
/// no offset, which is taken as UTC. Returns `None` for anything else.
///
/// ```
/// use vigil_features::{parse_timestamp, format_timestamp};
/// let t = parse_timestamp("2026-01-01T02:00:10+02:00").unwrap();
/// assert_eq!(format_timestamp(t), "2026-01-01T00:00:10Z");
/// ```
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(t) = parse_fast_utc(text) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_micros());
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

/// Parses a number of `unit_micros`-long units since the Unix epoch (e.g.
/// `1_000_000` for seconds) into microseconds: an integer, a decimal
/// (`1767225610.25`; digits below a microsecond are dropped) or scientific
/// notation (`1.76722561e9`, rounded to the microsecond). Returns `None` for
/// anything else and for times outside the years -262143..=262142 that chrono
/// can represent.
///
/// ```
/// use vigil_features::{parse_epoch, parse_timestamp};
/// let t = parse_epoch("1767225610.5", 1_000_000).unwrap();
/// assert_eq!(Some(t), parse_timestamp("2026-01-01T00:00:10.5Z"));
/// assert_eq!(parse_epoch("1767225610500", 1_000), Some(t));
/// ```
pub fn parse_epoch(text: &str, unit_micros: i64) -> Option<i64> {
    let text = text.trim();
    let micros = if text.contains(['e', 'E']) {
        parse_scientific(text, unit_micros)?
    } else {
        parse_decimal(text, unit_micros)?
    };
    DateTime::<Utc>::from_timestamp_micros(micros).map(|_| micros)
}

/// `[+-]digits[.digits]`, exactly: the integer part times the unit plus the
/// fraction's first digits down to a microsecond.
fn parse_decimal(text: &str, unit_micros: i64) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let mut micros: i64 = 0;
    for b in whole.bytes() {
        micros = micros.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    micros = micros.checked_mul(unit_micros)?;
    let mut scale = unit_micros;
    for b in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        micros = micros.checked_add(i64::from(b - b'0') * scale)?;
    }
    Some(if negative { -micros } else { micros })
}

/// Scientific notation through `f64` (spreadsheets write large epochs this way).
fn parse_scientific(text: &str, unit_micros: i64) -> Option<i64> {
    let value: f64 = text.parse().ok()?;
    let micros = (value * unit_micros as f64).round();
    // Beyond 2^62 µs no time is representable anyway; the bound keeps the cast exact.
    (micros.is_finite() && micros.abs() < 4.6e18).then_some(micros as i64)
}

/// Formats microseconds since the epoch as RFC 3339 in UTC with a `Z` suffix,
/// with only as many fractional digits as needed (so parsing it back is exact).
pub fn format_timestamp(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("{micros}us"),
    }
}

/// The common case `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, parsed without chrono's
/// general machinery (CSV loading spends most of its time here otherwise).
fn parse_fast_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    if b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut micros = 0i64;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() < 2 || rest.len() > 7 {
            return None;
        }
        let digits = num(20..19 + rest.len())?;
        micros = digits * 10i64.pow(u32::try_from(7 - rest.len()).ok()?);
    }
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(
        ((days * 24 + hour) * 60 + minute) * MICROS_PER_MINUTE
            + second * MICROS_PER_SECOND
            + micros,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(month - 1).ok()?)?;
    if day < 1 || day > max_day {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_chrono() {
        for text in [
            "2026-01-01T00:00:10Z",
            "2024-02-29T23:59:59.5Z",
            "1999-12-31T12:34:56.123456Z",
            "2026-03-01 00:00:00Z",
            "1970-01-01T00:00:00Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(&text.replace(' ', "T"))
                .unwrap()
                .timestamp_micros();
            assert_eq!(parse_fast_utc(text), Some(chrono), "{text}");
        }
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(
            parse_timestamp("2026-01-01T02:00:10+02:00"),
            parse_timestamp("2026-01-01T00:00:10Z")
        );
        assert_eq!(
            parse_timestamp("2026-01-01 00:00:10-01:30"),
            parse_timestamp("2026-01-01T01:30:10Z")
        );
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:10"),
            parse_timestamp("2026-01-01T00:00:10Z")
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for text in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "12",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn epochs_parse_exactly() {
        let t = 1_767_225_610_000_000;
        let s = MICROS_PER_SECOND;
        assert_eq!(parse_epoch("1767225610", s), Some(t));
        assert_eq!(parse_epoch(" +1767225610.250000 ", s), Some(t + 250_000));
        assert_eq!(parse_epoch("1767225610.1234569", s), Some(t + 123_456));
        assert_eq!(parse_epoch("1767225610123", 1000), Some(t + 123_000));
        assert_eq!(parse_epoch("1767225610123.5", 1000), Some(t + 123_500));
        assert_eq!(parse_epoch("1.76722561e9", s), Some(t));
        assert_eq!(parse_epoch("-1.5", s), Some(-1_500_000));
        assert_eq!(parse_epoch(".5", s), Some(500_000));
        for bad in [
            "",
            "-",
            ".",
            "1,5",
            "12:00",
            "1e400",
            "NaN",
            "inf",
            "1..2",
            "99999999999999999999",
            "9223372036854775807",
            "1e300",
        ] {
            assert_eq!(parse_epoch(bad, s), None, "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        for micros in [0, 1_767_225_610_000_000, 1_767_225_610_123_456, -5] {
            assert_eq!(parse_timestamp(&format_timestamp(micros)), Some(micros));
        }
        assert_eq!(
            format_timestamp(1_767_225_610_000_000),
            "2026-01-01T00:00:10Z"
        );
    }
}
