//! The alarm policy as processes: `pipeline --alarm-policy --alarm-smoothing`
//! into a local store carries the chosen rule into the model folder and the
//! run summary; `evaluate --criterion failures-caught-at-budget` decides on the
//! held-out event numbers and says them; bad values are exit code 2.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::path::Path;
use std::process::{Command, Output};

use vigil_examples::bundle::ModelBundle;

fn run_in(dir: &Path, bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SMALL_RUN: [&str; 10] = [
    "--machines",
    "3",
    "--days",
    "3",
    "--trials",
    "2",
    "--max-samples-per-tree",
    "3000",
    "--no-progress",
    "--no-register",
];

#[test]
fn the_chosen_alarm_rule_reaches_the_model_folder_and_evaluate_decides_on_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = SMALL_RUN[..9].to_vec();
    args.extend([
        "--alarm-policy",
        "false-alarm-budget=3",
        "--alarm-smoothing",
        "2/3",
    ]);
    let out = run_in(dir.path(), env!("CARGO_BIN_EXE_pipeline"), &args);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("alarm policy           false-alarm-budget=3 (smoothing 2/3)"),
        "{stdout}"
    );

    let run_dir = std::fs::read_dir(dir.path().join("vigil-output"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("model").is_dir())
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run_summary.json")).unwrap()).unwrap();
    let alarm = &summary["alarm"];
    assert_eq!(alarm["policy"], "false-alarm-budget=3", "{alarm}");
    assert_eq!(alarm["smoothing"], serde_json::json!({"k": 2, "n": 3}));
    let validation = &alarm["validation"];
    let fa = validation["false_alarms_per_machine_day"].as_f64().unwrap();
    assert!(
        fa <= 3.0,
        "the chosen threshold breaks the budget on validation: {validation}"
    );
    let bundle = ModelBundle::load(&run_dir.join("model")).unwrap();
    assert_eq!(bundle.meta.alarm_policy.to_string(), "false-alarm-budget=3");
    assert_eq!(
        bundle.meta.alarm_smoothing.map(|s| (s.k, s.n)),
        Some((2, 3))
    );
    assert_eq!(Some(bundle.meta.threshold), alarm["threshold"].as_f64());

    let eval = [
        "--promote",
        "--machines",
        "3",
        "--days",
        "4",
        "--criterion",
        "failures-caught-at-budget=1000",
    ];
    let out = run_in(dir.path(), env!("CARGO_BIN_EXE_evaluate"), &eval);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // No champion yet: the challenger is within the (huge) budget and wins.
    assert!(stdout.contains("becomes the champion"), "{stdout}");
    assert!(stdout.contains("promoted"), "{stdout}");
    assert!(stdout.contains("false alarms per machine-day"), "{stdout}");
    // The same settings again: the same model, a tie on failures and false
    // alarms, and the champion stays.
    let out = run_in(dir.path(), env!("CARGO_BIN_EXE_pipeline"), &args);
    assert!(out.status.success(), "{}", text(&out));
    let out = run_in(dir.path(), env!("CARGO_BIN_EXE_evaluate"), &eval);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains("version 2 does not beat Production version 1"),
        "{stdout}"
    );
    // Both versions are the same model: per mode and per feature, the
    // challenger's numbers equal the champion's.
    assert!(
        stdout.contains("per-mode F1, challenger vs champion:"),
        "{stdout}"
    );
    let shap = stdout
        .split("mean |SHAP| of the challenger's top features (champion's): ")
        .nth(1)
        .unwrap_or_else(|| panic!("no SHAP comparison in {stdout}"));
    let pairs: Vec<&str> = shap.lines().next().unwrap().split(", ").collect();
    assert_eq!(pairs.len(), 5, "{shap}");
    for pair in pairs {
        let words: Vec<&str> = pair.split(' ').collect();
        let (new, old) = (words[1], words[2].trim_matches(['(', ')', ';']));
        assert_eq!(new, old, "{pair}");
        assert!(new.parse::<f64>().unwrap() > 0.0, "{pair}");
    }
    let evaluate_dir = dir.path().join("vigil-output/evaluate");
    for plot in [
        "champion/alarm_timeline.png",
        "challenger/alarm_timeline.png",
        "challenger/lead_time_histogram.png",
    ] {
        assert!(evaluate_dir.join(plot).is_file(), "{plot} missing");
    }
}

#[test]
fn bad_alarm_settings_are_exit_code_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, says) in [
        ("--alarm-policy", "recall=2", "[0, 1]"),
        ("--alarm-policy", "false-alarm-budget=-1", ">= 0"),
        ("--alarm-policy", "precision=0.5", "unknown policy"),
        ("--alarm-smoothing", "0/3", "1 <= k <= n"),
        ("--alarm-smoothing", "3", "k/n"),
        ("--alarm-smoothing", "1/100000", "limit"),
    ] {
        let mut args: Vec<&str> = SMALL_RUN.to_vec();
        args.extend([flag, value]);
        let out = run_in(dir.path(), env!("CARGO_BIN_EXE_pipeline"), &args);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{flag} {value}: {}",
            text(&out)
        );
    }
    for value in [
        "nope",
        "failures-caught-at-budget=-1",
        "failures-caught-at-budget=x",
    ] {
        let out = run_in(
            dir.path(),
            env!("CARGO_BIN_EXE_evaluate"),
            &["--criterion", value],
        );
        assert_eq!(out.status.code(), Some(2), "{value}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("criterion"),
            "{value}: {}",
            text(&out)
        );
    }
}
