//! False-alarm and detection rates of the served / evaluated drift rule on
//! the simulator, next to evidently's default rule (`benches/RESULTS.md`,
//! "Drift verdicts on the simulator").
//!
//!     cargo run --release -p vigil-benches --bin drift_verdicts -- [SEEDS] [FIRST_SEED]
//!
//! Per scenario and rule it prints how many seeds raised dataset drift and
//! how many of those named the shifted features; for the served rule also,
//! per feature, the largest statistic seen over the seeds and how often it
//! drifted. `VIGIL_DRIFT_DUMP=FILE` appends every served-rule verdict to
//! FILE as a JSON line.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a report: its output is the point

use std::collections::BTreeMap;
use std::io::Write;

use vigil_benches::drift_verdicts::{SCENARIOS, Shift, Verdict, rules, run_seed};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).map_or(Ok(100), |s| s.parse())?;
    let first: u64 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let dump = std::env::var_os("VIGIL_DRIFT_DUMP");
    let shifts: Vec<Shift> = SCENARIOS.iter().map(|s| s.1).collect();
    let rules = rules();
    // [scenario][rule] -> verdicts over the seeds
    let mut all: Vec<Vec<Vec<Verdict>>> = vec![vec![Vec::new(); rules.len()]; SCENARIOS.len()];
    for seed in first..first + seeds {
        let verdicts = run_seed(seed, &shifts, &rules)?;
        let words: Vec<String> = verdicts
            .iter()
            .map(|v| {
                let d = &v[0].drift;
                format!("{}{}", d.n_drifted, if d.dataset_drift { "*" } else { "" })
            })
            .collect();
        eprintln!(
            "seed {seed}: features drifted (served rule) {}",
            words.join(" / ")
        );
        if let Some(path) = &dump {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            for (k, v) in verdicts.iter().enumerate() {
                let line = serde_json::json!({"seed": seed, "scenario": SCENARIOS[k].0, "drift": v[0].drift});
                writeln!(f, "{line}")?;
            }
        }
        for (k, per_rule) in verdicts.into_iter().enumerate() {
            for (r, v) in per_rule.into_iter().enumerate() {
                all[k][r].push(v);
            }
        }
    }
    println!(
        "| scenario | rule | dataset drift | with the shifted features named | features drifted (mean share) |"
    );
    println!("|---|---|---:|---:|---:|");
    for ((name, shift), per_rule) in SCENARIOS.iter().zip(&all) {
        for (rule, verdicts) in rules.iter().zip(per_rule) {
            let drifted = verdicts.iter().filter(|v| v.drift.dataset_drift).count();
            let named = verdicts
                .iter()
                .filter(|v| v.drift.dataset_drift && v.named)
                .count();
            let share = verdicts.iter().map(|v| v.drift.share_drifted).sum::<f64>()
                / verdicts.len().max(1) as f64;
            let named = if shift.sensor().is_some() {
                format!("{named}/{seeds}")
            } else {
                "–".to_string()
            };
            println!(
                "| {name} | {} | {drifted}/{seeds} | {named} | {:.1} % |",
                rule.name,
                share * 100.0
            );
        }
    }
    for ((name, _), per_rule) in SCENARIOS.iter().zip(&all) {
        println!("\n{name}, served rule: the largest statistics over the seeds");
        let mut per: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for v in &per_rule[0] {
            for f in &v.drift.features {
                let e = per.entry(f.name.as_str()).or_insert((0.0, 0));
                e.0 = e.0.max(f.statistic);
                e.1 += usize::from(f.drifted);
            }
        }
        let mut rows: Vec<_> = per.into_iter().collect();
        rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        for (feature, (max, n)) in rows.iter().take(8) {
            println!("  {feature:<28} max statistic {max:.3}  drifted in {n}/{seeds}");
        }
    }
    Ok(())
}
