//! False-alarm and detection rates of the served / evaluated drift rule on
//! the simulator (`benches/RESULTS.md`, "Drift verdicts on the simulator").
//!
//!     cargo run --release -p vigil-benches --bin drift_verdicts -- [SEEDS] [FIRST_SEED]
//!
//! Per scenario it prints how many seeds raised dataset drift, how many of
//! those named the shifted features, and per feature the largest statistic
//! seen over the seeds and how often it drifted. `VIGIL_DRIFT_DUMP=FILE`
//! appends every verdict to FILE as a JSON line.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a report: its output is the point

use std::collections::BTreeMap;

use vigil_benches::drift_verdicts::{Shift, Verdict, run_seed};

const SCENARIOS: [(&str, Shift); 3] = [
    ("same fleet, next day", Shift::None),
    ("temperature +5 °C", Shift::Temperature(5.0)),
    ("vibration baseline +0.1", Shift::VibrationBaseline(0.1)),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).map_or(Ok(100), |s| s.parse())?;
    let first: u64 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    // Every verdict as a JSON line, for looking at other thresholds.
    let dump = std::env::var_os("VIGIL_DRIFT_DUMP");
    let shifts: Vec<Shift> = SCENARIOS.iter().map(|s| s.1).collect();
    let mut all: Vec<Vec<Verdict>> = vec![Vec::new(); SCENARIOS.len()];
    for seed in first..first + seeds {
        let verdicts = run_seed(seed, &shifts)?;
        let words: Vec<String> = verdicts
            .iter()
            .map(|v| {
                format!(
                    "{:.3}{}",
                    v.drift.share_drifted,
                    if v.drift.dataset_drift { "*" } else { "" }
                )
            })
            .collect();
        eprintln!("seed {seed}: share drifted {}", words.join(" / "));
        if let Some(path) = &dump {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            for (k, v) in verdicts.iter().enumerate() {
                writeln!(
                    f,
                    "{}",
                    serde_json::json!({"seed": seed, "scenario": SCENARIOS[k].0, "drift": v.drift})
                )?;
            }
        }
        for (k, v) in verdicts.into_iter().enumerate() {
            all[k].push(v);
        }
    }
    for ((name, shift), verdicts) in SCENARIOS.iter().zip(&all) {
        let drifted = verdicts.iter().filter(|v| v.drift.dataset_drift).count();
        let named = verdicts
            .iter()
            .filter(|v| v.drift.dataset_drift && v.named)
            .count();
        println!(
            "\n{name}: dataset drift in {drifted}/{seeds} seeds; with {:?} named: {named}/{seeds}",
            shift.expected()
        );
        let mut per: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for v in verdicts {
            for f in &v.drift.features {
                let e = per.entry(f.name.as_str()).or_insert((0.0, 0));
                e.0 = e.0.max(f.statistic);
                e.1 += usize::from(f.drifted);
            }
        }
        let mut rows: Vec<_> = per.into_iter().collect();
        rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        for (feature, (max, n)) in rows.iter().take(12) {
            println!("  {feature:<28} max statistic {max:.3}  drifted in {n}/{seeds}");
        }
    }
    Ok(())
}
