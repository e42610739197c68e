//! The reader on the CSV variants users have, and its errors.

use super::*;
use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, TelemetryFrame};
use crate::time::parse_timestamp;

fn read(text: &str) -> Result<(TelemetryFrame, LoadReport)> {
    read_with(text, &CsvOptions::default())
}

fn read_with(text: &str, options: &CsvOptions) -> Result<(TelemetryFrame, LoadReport)> {
    read_csv_from(text.as_bytes(), "test.csv", options)
}

const HEADER: &str = "time,machine_id,temperature,vibration,spindle_speed,power_consumption";
const SENSORS: &str = "temperature,vibration,spindle_speed,power_consumption";

fn t(text: &str) -> i64 {
    parse_timestamp(text).unwrap()
}

#[test]
fn reads_missing_offsets_extras_and_unsorted() {
    let text = format!(
        "{HEADER},failure,failure_mode,operator\n\
         2026-01-01T00:00:20Z,M2,70.5,,1500,12,0,none,bob\n\
         2026-01-01T02:00:10+02:00,M2,70,0.5,1500,inf,1,overheat,al\n\
         2026-01-01T00:00:10Z,M1,NaN,0.4,0,11.5,0,,x\n"
    );
    let (frame, report) = read(&text).unwrap();
    assert_eq!(frame.len(), 3);
    assert_eq!(frame.machine_ids(), ["M1", "M2"]);
    assert_eq!(report.extra_columns, ["operator"]);
    assert!(report.reordered_rows > 0);
    assert_eq!(report.missing[1], ("vibration".into(), 1));
    assert_eq!(report.non_finite[0], ("temperature".into(), 1));
    assert_eq!(report.non_finite[3], ("power_consumption".into(), 1));
    assert_eq!(report.time_format, TimeFormat::Rfc3339);
    assert_eq!(
        (report.time_column.as_str(), report.machine_column.as_str()),
        ("time", "machine_id")
    );
    // 02:00:10+02:00 is 00:00:10Z: the first row of M2.
    assert_eq!(frame.time()[1], t("2026-01-01T00:00:10Z"));
    assert_eq!(frame.failure().unwrap(), [0, 1, 0]);
    assert_eq!(frame.failure_mode().unwrap()[1], FailureMode::Overheat);
}

#[test]
fn timestamp_and_ts_columns_are_the_time() {
    for name in ["timestamp", "ts", "Timestamp", "TS"] {
        let text = format!("machine_id,{name},{SENSORS}\nM1,2026-01-01T00:00:10Z,1,2,3,4\n");
        let (frame, report) = read(&text).unwrap();
        assert_eq!(frame.time(), [t("2026-01-01T00:00:10Z")], "{name}");
        assert_eq!(report.time_column, name);
        assert!(report.extra_columns.is_empty());
    }
    // An explicit mapping reads any name.
    let text = format!("Zeitstempel,machine_id,{SENSORS}\n2026-01-01T00:00:10Z,M1,1,2,3,4\n");
    let options = CsvOptions::default().with_time_column("Zeitstempel");
    assert_eq!(read_with(&text, &options).unwrap().0.len(), 1);
}

#[test]
fn asset_id_is_the_machine_id() {
    let text = format!("time,asset_id,{SENSORS}\n2026-01-01T00:00:10Z,pump-7,1,2,3,4\n");
    let (frame, report) = read(&text).unwrap();
    assert_eq!(frame.machine_ids(), ["pump-7"]);
    assert_eq!(report.machine_column, "asset_id");
    let text = format!("time,serial,{SENSORS}\n2026-01-01T00:00:10Z,X1,1,2,3,4\n");
    let options = CsvOptions::default().with_machine_column("serial");
    assert_eq!(read_with(&text, &options).unwrap().0.machine_ids(), ["X1"]);
    // Both `asset_id` and `machine` could be it: the reader does not guess.
    let text = format!("time,asset_id,machine,{SENSORS}\n2026-01-01T00:00:10Z,X1,X,1,2,3,4\n");
    let err = read(&text).unwrap_err();
    assert!(
        matches!(err, FeaturesError::AmbiguousColumn { ref role, ref candidates, .. }
            if role == "machine id" && candidates == &[(2, "asset_id".into()), (3, "machine".into())]),
        "{err}"
    );
}

#[test]
fn semicolon_and_tab_delimiters() {
    let text = "time;machine_id;temperature;vibration;spindle_speed;power_consumption\n\
                2026-01-01T00:00:10Z;M1;70,5x;0.5;1500;12\n";
    // A `;` file read with `,` is one column: the error says so.
    let err = read(text).unwrap_err();
    assert!(
        err.to_string()
            .contains("(one column: is the delimiter `;`?"),
        "{err}"
    );
    let options = CsvOptions::default().with_delimiter(Delimiter::SEMICOLON);
    let err = read_with(text, &options).unwrap_err();
    assert!(
        matches!(err, FeaturesError::BadNumber { line: 2, ref value, .. } if value == "70,5x"),
        "{err}"
    );
    let text = text.replace("70,5x", "70.5");
    let (frame, _) = read_with(&text, &options).unwrap();
    assert_eq!(frame.sensor(0), [70.5]);
    let tab = text.replace(';', "\t");
    let options = CsvOptions::default().with_delimiter("tab".parse().unwrap());
    assert_eq!(read_with(&tab, &options).unwrap().0.sensor(3), [12.0]);
}

#[test]
fn epoch_seconds_and_milliseconds() {
    let expected = [t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:10.5Z")];
    for (times, format) in [
        (["1767225600", "1767225610.5"], TimeFormat::EpochSeconds),
        (["1767225600000", "1767225610500"], TimeFormat::EpochMillis),
    ] {
        let text = format!(
            "{HEADER}\n{},M1,1,2,3,4\n{},M1,1,2,3,4\n",
            times[0], times[1]
        );
        // Auto tells the unit from the magnitude; the explicit format agrees.
        let (auto, report) = read(&text).unwrap();
        assert_eq!(auto.time(), expected);
        assert_eq!(report.time_format, format);
        let options = CsvOptions::default().with_time_format(format);
        assert_eq!(read_with(&text, &options).unwrap().0.time(), expected);
    }
    // Milliseconds read as seconds are out of chrono's range: an error, not a wrong time.
    let text = format!("{HEADER}\n1767225600000000,M1,1,2,3,4\n");
    let options = CsvOptions::default().with_time_format(TimeFormat::EpochSeconds);
    let err = read_with(&text, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "test.csv, line 2, column `time`: cannot parse timestamp \"1767225600000000\" (expected seconds since 1970-01-01T00:00:00Z)"
    );
    // Auto refuses micro/nanosecond magnitudes rather than guessing.
    assert!(matches!(
        read(&text).unwrap_err(),
        FeaturesError::BadTimestamp { .. }
    ));
}

#[test]
fn rfc3339_with_offsets() {
    let text = format!(
        "{HEADER}\n2026-01-01T01:00:10+01:00,M1,1,2,3,4\n2025-12-31T19:30:20.25-05:00,M1,1,2,3,4\n2026-01-01 00:00:30Z,M1,1,2,3,4\n"
    );
    let options = CsvOptions::default().with_time_format(TimeFormat::Rfc3339);
    let (frame, _) = read_with(&text, &options).unwrap();
    // Sorted within the machine: 00:00:10, 00:00:30, then 19:30:20.25-05:00 = 00:30:20.25Z.
    assert_eq!(
        frame.time(),
        [
            t("2026-01-01T00:00:10Z"),
            t("2026-01-01T00:00:30Z"),
            t("2026-01-01T00:30:20.25Z")
        ]
    );
    // A number in an RFC 3339 file names the row and the column.
    let text = format!(
        "ts,machine_id,{SENSORS}\n2026-01-01T00:00:10Z,M1,1,2,3,4\n1767225610,M1,1,2,3,4\n"
    );
    let err = read(&text).unwrap_err();
    assert!(
        matches!(err, FeaturesError::BadTimestamp { line: 3, ref column, .. } if column == "ts"),
        "{err}"
    );
}

#[test]
fn failure_modes_in_any_case() {
    let text = format!(
        "{HEADER},failure,failure_mode\n\
         2026-01-01T00:00:10Z,M1,1,2,3,4,0,None\n\
         2026-01-01T00:00:20Z,M1,1,2,3,4,FALSE,NONE\n\
         2026-01-01T00:00:30Z,M1,1,2,3,4,false,none\n\
         2026-01-01T00:00:40Z,M1,1,2,3,4,True,Bearing_Wear\n\
         2026-01-01T00:00:50Z,M1,1,2,3,4,1,\n"
    );
    let (frame, _) = read(&text).unwrap();
    assert_eq!(frame.failure().unwrap(), [0, 0, 0, 1, 1]);
    use FailureMode::{BearingWear, None as NoFailure};
    assert_eq!(
        frame.failure_mode().unwrap(),
        [NoFailure, NoFailure, NoFailure, BearingWear, NoFailure]
    );
}

#[test]
fn missing_columns_list_the_header_and_suggest_the_closest() {
    let err = read(&format!("tmestamp,machine_id,{SENSORS}\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "test.csv, line 1: missing required column `time` (did you mean `tmestamp`?); the header has \
         `tmestamp`, `machine_id`, `temperature`, `vibration`, `spindle_speed`, `power_consumption`"
    );
    assert!(
        matches!(err, FeaturesError::MissingColumn { ref suggestion, ref found, .. }
            if suggestion.as_deref() == Some("tmestamp") && found.len() == 6)
    );
    let err =
        read("time,machine_id,temprature,vibration,spindle_speed,power_consumption\n").unwrap_err();
    assert!(
        matches!(err, FeaturesError::MissingColumn { ref column, ref suggestion, .. }
            if column == "temperature" && suggestion.as_deref() == Some("temprature")),
        "{err}"
    );
    let err = read("time,machine_id\n").unwrap_err();
    assert!(
        matches!(err, FeaturesError::MissingColumn { ref column, suggestion: None, .. } if column == "temperature")
    );
    let err = read(&format!("time,asst,{SENSORS}\n")).unwrap_err();
    assert!(
        matches!(err, FeaturesError::MissingColumn { ref column, ref suggestion, .. }
            if column == "machine_id" && suggestion.as_deref() == Some("asst")),
        "{err}"
    );
}

#[test]
fn bad_inputs_name_file_line_and_column() {
    let err = read(&format!(
        "{HEADER}\n2026-01-01T00:00:10Z,M1,1,2,3,4\n2026-01-01T00:00:20Z,M1,1,two,3,4\n"
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "test.csv, line 3, column `vibration`: cannot parse number \"two\""
    );
    let err = read(&format!("{HEADER}\nyesterday,M1,1,2,3,4\n")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("test.csv, line 2, column `time`: cannot parse timestamp \"yesterday\""),
        "{err}"
    );
    assert!(matches!(
        read("").unwrap_err(),
        FeaturesError::EmptyInput { .. }
    ));
    assert!(matches!(
        read(&format!("{HEADER}\n")).unwrap_err(),
        FeaturesError::EmptyInput { .. }
    ));
    let err = read(&format!("{HEADER}\n2026-01-01T00:00:10Z,M1,1,2,3\n")).unwrap_err();
    assert!(
        matches!(err, FeaturesError::MalformedCsv { line: 2, .. }),
        "{err}"
    );
    let err = read(&format!(
        "{HEADER},failure\n2026-01-01T00:00:10Z,M1,1,2,3,4,yes\n"
    ))
    .unwrap_err();
    assert!(
        matches!(err, FeaturesError::BadLabel { line: 2, .. }),
        "{err}"
    );
    let err = read(&format!(
        "{HEADER},failure_mode\n2026-01-01T00:00:10Z,M1,1,2,3,4,melted\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("failure_mode"), "{err}");
    let err = read(&format!("{HEADER}\n2026-01-01T00:00:10Z, ,1,2,3,4\n")).unwrap_err();
    assert!(
        matches!(err, FeaturesError::BadLabel { ref column, .. } if column == "machine_id"),
        "{err}"
    );
    let err = read_with(HEADER, &CsvOptions::default().with_time_column("vibration")).unwrap_err();
    assert!(
        matches!(err, FeaturesError::ColumnMappedTwice { .. }),
        "{err}"
    );
}

#[test]
fn utf8_bom_and_non_utf8_fields() {
    let text = format!("\u{feff}{HEADER}\n2026-01-01T00:00:10Z,M1,1,2,3,4\n");
    assert_eq!(read(&text).unwrap().0.len(), 1);
    let mut bytes = format!("{HEADER}\n2026-01-01T00:00:10Z,M1,1,").into_bytes();
    bytes.extend([0xff, b',', b'3', b',', b'4', b'\n']);
    let err = read_csv_from(bytes.as_slice(), "b.csv", &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, FeaturesError::BadNumber { .. }), "{err}");
}

#[test]
fn custom_sensors() {
    let text = "machine_id,pressure,time\nA,3.5,2026-01-01T00:00:00Z\n";
    let (frame, _) = read_with(text, &CsvOptions::with_sensors(["pressure"])).unwrap();
    assert_eq!(frame.sensor_by_name("pressure").unwrap(), [3.5]);
}

#[test]
fn write_then_read_is_exact() {
    let text = format!(
        "{HEADER},failure,failure_mode\n2026-01-01T00:00:10.25Z,M1,0.1,,1e-7,3,1,tool_wear\n2026-01-01T00:00:20Z,M1,-0,2,3.3333333333333335,4,0,none\n"
    );
    let (frame, _) = read(&text).unwrap();
    let mut out = Vec::new();
    write_csv_to(&frame, &mut out).unwrap();
    let (again, _) = read(std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(format!("{frame:?}"), format!("{again:?}"));
    assert!(std::str::from_utf8(&out).unwrap().starts_with(&format!(
        "{HEADER},failure,failure_mode\n2026-01-01T00:00:10.250Z,M1,"
    )));
}

/// Parses a feature field the way the docs promise other tools can: empty is
/// NaN, `inf` / `-inf` are infinities, the rest is a plain float.
fn parse_feature_field(text: &str) -> f64 {
    if text.is_empty() {
        f64::NAN
    } else {
        text.parse().unwrap()
    }
}

#[test]
fn feature_matrix_csv_round_trips_bit_for_bit() {
    use crate::batch::FeatureMatrix;
    let tricky = [
        0.1 + 0.2,
        -0.0,
        5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        -1e-7,
        1e21,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        123.0,
        std::f64::consts::PI,
    ];
    let matrix = FeatureMatrix {
        values: ndarray::Array2::from_shape_vec((4, 3), tricky.to_vec()).unwrap(),
        names: vec!["a".into(), "b,with comma".into(), "c".into()],
        machine_ids: vec!["M1".into(), "M 2".into()],
        machine: vec![0, 0, 1, 1],
        time: vec![0, 250_000, 1_767_225_610_000_000, 1_767_225_610_000_001],
    };
    let mut out = Vec::new();
    matrix.write_csv_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("time,machine_id,a,\"b,with comma\",c\n1970-01-01T00:00:00Z,M1,0.30000000000000004,-0.0,5e-324\n"),
        "{text}"
    );
    assert!(
        text.contains(",M 2,1e21,,inf\n") && text.contains(",M 2,-inf,123.0,"),
        "{text}"
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["time", "machine_id", "a", "b,with comma", "c"]
    );
    let mut rows = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        assert_eq!(parse_timestamp(&record[0]), Some(matrix.time[i]));
        assert_eq!(&record[1], matrix.machine_ids[matrix.machine[i] as usize]);
        for (j, expected) in matrix.values.row(i).iter().enumerate() {
            let got = parse_feature_field(&record[2 + j]);
            let same = got.to_bits() == expected.to_bits() || (got.is_nan() && expected.is_nan());
            assert!(same, "row {i} column {j}: {got:e} vs {expected:e}");
        }
        rows += 1;
    }
    assert_eq!(rows, 4);
}

#[test]
fn computed_features_round_trip_through_csv() {
    use crate::simulator::{SimulatorConfig, simulate};
    use crate::spec::FeatureSpec;
    let sim = simulate(&SimulatorConfig {
        machines: 2,
        days: 0.1,
        missing_probability: 0.05,
        ..Default::default()
    })
    .unwrap();
    let features = FeatureSpec::default().compute(&sim.frame).unwrap();
    assert!(features.values.iter().any(|v| v.is_nan()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.csv");
    features.write_csv(&path).unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[2..], features.names.as_slice());
    let mut rows = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let back: Vec<u64> = (2..record.len())
            .map(|j| parse_feature_field(&record[j]).to_bits())
            .collect();
        let canonical = |v: f64| {
            if v.is_nan() {
                f64::NAN.to_bits()
            } else {
                v.to_bits()
            }
        };
        let expected: Vec<u64> = features
            .values
            .row(i)
            .iter()
            .map(|&v| canonical(v))
            .collect();
        let back: Vec<u64> = back
            .into_iter()
            .map(|b| canonical(f64::from_bits(b)))
            .collect();
        assert_eq!(back, expected, "row {i}");
        rows += 1;
    }
    assert_eq!(rows, features.nrows());
}

#[test]
fn feature_names_that_clash_with_the_csv_columns_are_refused() {
    use crate::batch::FeatureMatrix;
    let matrix = FeatureMatrix {
        values: ndarray::Array2::zeros((0, 1)),
        names: vec!["time".into()],
        machine_ids: vec![],
        machine: vec![],
        time: vec![],
    };
    let err = matrix.write_csv_to(Vec::new()).unwrap_err();
    assert!(err.to_string().contains("clashes"), "{err}");
}
