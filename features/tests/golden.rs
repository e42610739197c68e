//! The 42 reference features against pandas 3.1 (`tests/golden/make_golden.py`).
//!
//! Tolerances (documented in the crate docs): every feature but std and zscore
//! within 1e-9 relative; std within 1e-5 relative, because pandas' online
//! variance drifts (up to ~1e-6 relative here) and leaves tiny non-zero values on
//! constant windows, where ours is exactly 0; zscore accordingly, and not
//! compared where pandas divides by such a residue.

use std::collections::HashMap;

use vigil_features::{CsvOptions, FeatureSpec, read_csv};

fn golden(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn features_equal_pandas_on_simulated_data_with_gaps_and_glitches() {
    let (frame, report) = read_csv(golden("input.csv"), &CsvOptions::default()).unwrap();
    assert!(
        report.missing.iter().all(|(_, n)| *n > 0),
        "fixture should have missing values"
    );
    let spec = FeatureSpec::default();
    let ours = spec.compute(&frame).unwrap();

    let mut reader = csv::Reader::from_path(golden("expected.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[2..], spec.feature_names().as_slice());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap() - 2;
    let mut checked = 0usize;
    let mut worst_std = 0.0f64;
    let mut exact_zero_vs_residue = 0usize;
    let mut rows = 0usize;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        rows += 1;
        assert_eq!(&record[1], frame.machine_id_of(i), "row {i}");
        let expected: Vec<f64> = record
            .iter()
            .skip(2)
            .map(|v| v.parse::<f64>().unwrap())
            .collect();
        let got = ours.values.row(i);
        let by_name: HashMap<&str, usize> = spec
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| (f.name.as_str(), j))
            .collect();
        for (j, feature) in spec.features.iter().enumerate() {
            let (e, g) = (expected[j], got[j]);
            let name = feature.name.as_str();
            let ctx = format!(
                "row {i} ({} {}), {name}: ours {g:e}, pandas {e:e}",
                &record[1], &record[0]
            );
            if e.is_nan() && g.is_nan() {
                checked += 1;
                continue;
            }
            if e.is_nan() || g.is_nan() || e.is_infinite() || g.is_infinite() {
                if name.ends_with("_zscore_30m") && g.is_nan() {
                    // Ours: constant window, 0/0. Pandas: a residue std.
                    let std = expected[col(&name.replace("zscore", "std"))];
                    assert!(std.abs() < 1e-6 || std.is_nan(), "{ctx}");
                    continue;
                }
                assert_eq!(e.to_bits(), g.to_bits(), "{ctx}");
                checked += 1;
                continue;
            }
            if name.contains("_std_") {
                let mean = got[by_name[name.replace("std", "mean").as_str()]];
                if g == 0.0 {
                    exact_zero_vs_residue += usize::from(e != 0.0);
                    assert!(e.abs() <= 1e-6 * mean.abs().max(1.0), "{ctx}");
                } else {
                    let rel = (g - e).abs() / e.abs();
                    worst_std = worst_std.max(rel);
                    assert!(rel <= 1e-5, "{ctx} (rel {rel:e})");
                }
            } else if name.ends_with("_zscore_30m") {
                let sensor = name.trim_end_matches("_zscore_30m");
                let std = got[by_name[format!("{sensor}_std_30m").as_str()]];
                let x = got[by_name[sensor]];
                let tol = 2e-5 * e.abs() + 1e-9 * x.abs() / std;
                assert!((g - e).abs() <= tol, "{ctx}");
            } else {
                let tol = 1e-9 * e.abs().max(g.abs()) + 1e-12;
                assert!((g - e).abs() <= tol, "{ctx}");
            }
            checked += 1;
        }
    }
    assert_eq!(rows, frame.len());
    assert!(checked > rows * 30, "only {checked} values compared");
    // Loud enough to notice if the fixture stops exercising the interesting cases.
    assert!(exact_zero_vs_residue > 0 || worst_std > 0.0);
    println!(
        "compared {checked} values; worst std relative difference {worst_std:e}; {exact_zero_vs_residue} windows where ours is exactly 0 and pandas is not"
    );
}
