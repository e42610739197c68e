//! Every plot renders to PNG and SVG, with text, and saves to disk.
//! Set `VIGIL_PLOT_DIR=/some/dir` to keep the images for a look.
#![cfg(feature = "plot")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test file

use std::path::PathBuf;

use vigil_metrics::plot::*;
use vigil_metrics::*;

fn out_dir() -> PathBuf {
    let dir = std::env::var_os("VIGIL_PLOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("vigil-metrics-plots-{}", std::process::id()))
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Decodes a PNG and returns (width, height, share of non-white pixels, share of near-black pixels).
fn inspect_png(bytes: &[u8]) -> (u32, u32, f64, f64) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    let n = px.len() as f64;
    let non_white = px.iter().filter(|p| p.iter().any(|&c| c < 250)).count() as f64 / n;
    let dark = px.iter().filter(|p| p.iter().all(|&c| c < 60)).count() as f64 / n;
    (info.width, info.height, non_white, dark)
}

fn scores(n: usize) -> (Vec<u8>, Vec<f64>) {
    // Deterministic, overlapping classes.
    let mut state = 42u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let y: Vec<u8> = (0..n).map(|_| u8::from(next() < 0.3)).collect();
    let s = y
        .iter()
        .map(|&t| (0.3 * f64::from(t) + 0.7 * next()).min(1.0))
        .collect();
    (y, s)
}

#[track_caller]
fn check_png(name: &str, png: &[u8], size: (u32, u32)) {
    let (w, h, ink, dark) = inspect_png(png);
    assert_eq!((w, h), size, "{name}");
    assert!(ink > 0.02, "{name}: almost blank ({ink})");
    // Text and axes are black: there must be some, but not a black image.
    assert!(dark > 0.001 && dark < 0.3, "{name}: dark share {dark}");
    std::fs::write(out_dir().join(format!("{name}.png")), png).unwrap();
}

#[test]
fn confusion_matrix_heatmap() {
    let cm = confusion_matrix(
        &[0u8, 0, 0, 1, 1, 2, 2, 2, 2, 0],
        &[0u8, 1, 0, 1, 2, 2, 2, 0, 2, 0],
        None,
    )
    .unwrap();
    let plot = ConfusionMatrixPlot::new(&cm)
        .class_names(&["normal", "degrading", "failure"])
        .unwrap();
    check_png("confusion_matrix", &plot.to_png().unwrap(), (700, 620));
    let svg = plot.to_svg().unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("degrading") && svg.contains("Predicted label")
    );
    plot.save(out_dir().join("confusion_matrix.svg")).unwrap();
    assert!(ConfusionMatrixPlot::new(&cm).class_names(&["a"]).is_err());
    // Large binary counts.
    let cm = ConfusionMatrix::from_counts(vec![0u8, 1], vec![98_120, 312, 41, 1_527]).unwrap();
    let plot = ConfusionMatrixPlot::new(&cm)
        .class_names(&["no failure", "failure"])
        .unwrap()
        .title("Failure within 24 h");
    check_png(
        "confusion_matrix_binary",
        &plot.to_png().unwrap(),
        (700, 620),
    );
    // A single class still renders.
    let cm = confusion_matrix(&[3u8, 3], &[3, 3], None).unwrap();
    check_png(
        "confusion_matrix_single",
        &ConfusionMatrixPlot::new(&cm).to_png().unwrap(),
        (700, 620),
    );
}

#[test]
fn roc_and_pr_curves() {
    let (y, s) = scores(2_000);
    let roc = roc_curve(&y, &s).unwrap();
    let noisy: Vec<f64> = s
        .iter()
        .enumerate()
        .map(|(i, v)| v * 0.5 + ((i * 7919) % 1000) as f64 / 2000.0)
        .collect();
    let roc2 = roc_curve(&y, &noisy).unwrap();
    let plot = RocPlot::new()
        .curve("random forest", &roc)
        .curve("baseline", &roc2);
    check_png("roc", &plot.to_png().unwrap(), (800, 600));
    let svg = plot.to_svg().unwrap();
    assert!(
        svg.contains(&format!("random forest (AUC = {:.3})", roc.auc())),
        "legend shows the AUC"
    );

    let pr = precision_recall_curve(&y, &s).unwrap();
    let ap = average_precision_score(&y, &s).unwrap();
    let best = best_threshold_f1(&y, &s).unwrap();
    let plot = PrPlot::new()
        .curve("random forest", &pr, Some(ap))
        .point("max F1", &best);
    check_png("pr", &plot.to_png().unwrap(), (800, 600));
    assert!(plot.to_svg().unwrap().contains("AP = "));
    assert!(matches!(
        RocPlot::new().to_png(),
        Err(MetricsError::EmptyInput { .. })
    ));
}

#[test]
fn feature_importance_bars() {
    let names: Vec<String> = [
        "vibration_rms_30m",
        "temperature_mean_1h",
        "spindle_speed_std_10m",
        "power_max_30m",
        "vibration_kurtosis_1h",
        "temperature_slope_6h",
        "power_mean_10m",
        "spindle_speed_mean_1h",
        "vibration_peak_10m",
        "temperature_std_30m",
        "power_std_1h",
        "hours_since_maintenance",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let imp: Vec<f64> = (0..names.len())
        .map(|i| 0.3 / (1.0 + i as f64).powf(1.2))
        .collect();
    let plot = FeatureImportancePlot::new(&names, &imp).unwrap().top_k(10);
    assert_eq!(plot.top().len(), 10);
    assert_eq!(plot.top()[0].0, "vibration_rms_30m");
    check_png("feature_importance", &plot.to_png().unwrap(), (900, 650));
    assert!(plot.to_svg().unwrap().contains("temperature_mean_1h"));
    assert!(FeatureImportancePlot::new(&names[..2], &imp).is_err());
    let one = FeatureImportancePlot::new(&["only_feature"], &[0.5]).unwrap();
    check_png(
        "feature_importance_single",
        &one.to_png().unwrap(),
        (900, 650),
    );
    assert!(FeatureImportancePlot::new(&["a"], &[f64::NAN]).is_err());
    // A marker (a threshold line): bars reaching it change colour (tab10
    // red, #D62728 in the SVG), a non-finite marker is ignored.
    let marked = FeatureImportancePlot::new(&["low", "high"], &[0.4, 1.3])
        .unwrap()
        .marker(1.0);
    check_png(
        "feature_importance_marker",
        &marked.to_png().unwrap(),
        (900, 650),
    );
    let svg = marked.to_svg().unwrap().to_ascii_uppercase();
    assert!(svg.contains("#D62728"), "no highlighted bar");
    let unmarked = FeatureImportancePlot::new(&["low", "high"], &[0.4, 1.3]).unwrap();
    assert_eq!(
        unmarked.clone().marker(f64::NAN).to_svg().unwrap(),
        unmarked.to_svg().unwrap()
    );
    assert!(
        !unmarked
            .to_svg()
            .unwrap()
            .to_ascii_uppercase()
            .contains("#D62728")
    );
}

#[test]
fn metric_history_lines() {
    let values: Vec<f64> = (0..60)
        .map(|i| {
            0.6 + 0.25 * (1.0 - (-(i as f64) / 15.0).exp())
                + 0.05 * ((i * 37 % 11) as f64 / 11.0 - 0.5)
        })
        .collect();
    let mut with_failure = values.clone();
    with_failure[7] = f64::NAN; // a failed trial is skipped
    let chart = LineChart::new("Optimisation history", "trial", "F1 (validation)")
        .series(Series::markers(
            "trial value",
            Series::index_x(60),
            with_failure.clone(),
        ))
        .series(Series::step(
            "best so far",
            Series::index_x(60),
            Series::best_so_far(&with_failure, true),
        ));
    check_png("optimisation_history", &chart.to_png().unwrap(), (800, 600));

    let days: Vec<f64> = (1..=30).map(f64::from).collect();
    let f1: Vec<f64> = days.iter().map(|d| 0.82 + 0.04 * (d / 5.0).sin()).collect();
    let auc: Vec<f64> = days.iter().map(|d| 0.9 + 0.02 * (d / 7.0).cos()).collect();
    let chart = LineChart::new("Daily retraining", "day", "score")
        .series(Series::new(
            "F1",
            days.clone(),
            f1,
            SeriesStyle::LineWithMarkers,
        ))
        .series(Series::line("ROC-AUC", days, auc))
        .y_range(0.7, 1.0)
        .size(1000, 500);
    check_png("metric_trend", &chart.to_png().unwrap(), (1000, 500));
    chart.save(out_dir().join("metric_trend.svg")).unwrap();

    // Three model versions: ticks on whole versions only (no "1.5").
    let versions = LineChart::new("F1 by version", "version", "F1").series(Series::new(
        "F1",
        vec![1.0, 2.0, 3.0],
        vec![0.41, 0.44, 0.43],
        SeriesStyle::LineWithMarkers,
    ));
    let svg = versions.to_svg().unwrap();
    // The text of every <text> element: title, axis names, tick labels, legend.
    let texts: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
        .collect();
    for tick in ["1", "2", "3"] {
        assert!(texts.contains(&tick), "tick {tick} missing in {texts:?}");
    }
    let x_ticks: Vec<f64> = texts
        .iter()
        .filter_map(|t| t.parse::<f64>().ok())
        .filter(|v| *v >= 0.5)
        .collect();
    assert_eq!(x_ticks, [1.0, 2.0, 3.0], "x tick labels in {texts:?}");
    check_png("version_trend", &versions.to_png().unwrap(), (800, 600));

    assert_eq!(
        Series::best_so_far(&[f64::NAN, 3.0, 1.0, 2.0], false)[1..],
        [3.0, 1.0, 1.0]
    );
    assert!(matches!(
        LineChart::new("t", "x", "y").to_png(),
        Err(MetricsError::EmptyInput { .. })
    ));
    assert!(
        LineChart::new("t", "x", "y")
            .series(Series::line("a", vec![1.0], vec![1.0, 2.0]))
            .to_png()
            .is_err()
    );
    assert!(chart.save(out_dir().join("metric_trend.jpg")).is_err());
    assert!(matches!(
        chart.clone().size(10, 10).to_png(),
        Err(MetricsError::InvalidParameter { .. })
    ));
}

/// Six machines sampled every minute for three days (machine 2 offline for
/// six hours), scores rising before each failure, a few spikes.
fn fleet() -> (Vec<u32>, Vec<i64>, Vec<f64>, Vec<Failure>) {
    const MIN: i64 = 60_000_000;
    let t0 = 1_767_225_600_000_000; // 2026-01-01 00:00 UTC
    let fails: [(u32, i64); 5] = [(0, 1500), (1, 900), (3, 3000), (4, 2000), (4, 4000)];
    let (mut machine, mut time, mut score) = (vec![], vec![], vec![]);
    let mut state = 7u64;
    for m in 0..6u32 {
        for minute in 0..4320i64 {
            if m == 2 && (2000..2360).contains(&minute) {
                continue;
            }
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
            let mut s = 0.05 + 0.15 * noise;
            for &(fm, fmin) in &fails {
                let before = fmin - minute;
                if fm == m && (0..40).contains(&before) && fmin != 3000 {
                    s = s.max(0.95 - before as f64 / 60.0);
                }
            }
            if (m == 5 && minute == 1200) || (m == 1 && (3100..3104).contains(&minute)) {
                s = 0.8;
            }
            machine.push(m);
            time.push(t0 + minute * MIN);
            score.push(s);
        }
    }
    let failures = fails
        .iter()
        .map(|&(m, minute)| Failure {
            machine: m,
            time: t0 + minute * MIN,
            mode: None,
        })
        .collect();
    (machine, time, score, failures)
}

#[test]
fn alarm_timeline_and_lead_times() {
    let (machine, time, score, failures) = fleet();
    let params = EventParams::default();
    let plot = AlarmTimelinePlot::new(&machine, &time, &score, 0.6, &failures, &params)
        .unwrap()
        .machine_names(&["M-00", "M-01", "M-02", "M-03", "M-04", "M-05"]);
    assert_eq!(plot.shown_machines(), vec![0, 1, 2, 3, 4, 5]);
    check_png("alarm_timeline", &plot.to_png().unwrap(), (1100, 938));
    let svg = plot.to_svg().unwrap();
    assert!(svg.contains("M-04") && svg.contains("hours since 2026-01-01 00:00 UTC"));
    let two = plot.clone().machines(&[4, 9, 1]);
    assert_eq!(two.shown_machines(), vec![4, 1]);
    check_png("alarm_timeline_two", &two.to_png().unwrap(), (1100, 398));
    assert!(matches!(
        plot.clone().machines(&[]).to_png(),
        Err(MetricsError::EmptyInput { .. })
    ));
    // Twenty panels: each machine's three days split into four machines.
    let t0 = time[0];
    let many: Vec<u32> = machine
        .iter()
        .zip(&time)
        .map(|(&m, &t)| m * 4 + ((t - t0) / (1080 * 60_000_000)) as u32)
        .collect();
    let ids: Vec<u32> = (0..20).collect();
    let big = AlarmTimelinePlot::new(&many, &time, &score, 0.6, &[], &params)
        .unwrap()
        .machines(&ids);
    check_png("alarm_timeline_20", &big.to_png().unwrap(), (1100, 2828));
    assert!(AlarmTimelinePlot::new(&machine, &time, &score, f64::NAN, &failures, &params).is_err());
    let silent = AlarmTimelinePlot::new(&machine, &time, &score, f64::INFINITY, &failures, &params)
        .unwrap()
        .machines(&[0, 3]);
    check_png(
        "alarm_timeline_no_threshold",
        &silent.to_png().unwrap(),
        (1100, 398),
    );

    let metrics = evaluate_scores(&machine, &time, &score, 0.6, &failures, &params).unwrap();
    assert_eq!((metrics.failures_caught, metrics.failures_total), (4, 5));
    let hist = LeadTimeHistogramPlot::new(&metrics);
    check_png("lead_time_histogram", &hist.to_png().unwrap(), (800, 500));
    assert!(hist.to_svg().unwrap().contains("4 of 5 failures caught"));
}
