//! Writes `tests/golden/input.csv`, the telemetry the pandas golden fixture is computed from:
//! three simulated machines over three hours with glitches turned up (missing values,
//! spikes, dropped samples, outages, duplicate timestamps), plus a stuck
//! temperature sensor (exactly constant windows) and an idle stretch (spindle_speed 0).
//!
//! Run: `cargo run -p vigil-features --example golden_input -- features/tests/golden/input.csv`

use vigil_features::{SimulatorConfig, TelemetryFrame, simulate, write_csv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "features/tests/golden/input.csv".into());
    let config = SimulatorConfig {
        seed: 2026,
        machines: 3,
        days: 0.125,
        failures_per_day: 8.0,
        false_alarms_per_day: 8.0,
        drop_probability: 0.05,
        outages_per_day: 16.0,
        spike_probability: 0.01,
        missing_probability: 0.03,
        duplicate_probability: 0.02,
        ..SimulatorConfig::default()
    };
    let sim = simulate(&config)?;
    let frame = &sim.frame;
    // A constant stretch: machine M02's temperature frozen for 40 rows (a stuck sensor).
    let mut sensors: Vec<(String, Vec<f64>)> = frame
        .sensor_names()
        .iter()
        .enumerate()
        .map(|(k, n)| (n.clone(), frame.sensor(k).to_vec()))
        .collect();
    let start = frame.machine_ranges()[1].1.start + 200;
    for i in start..start + 40 {
        sensors[0].1[i] = 71.25;
    }
    // An idle stretch on M03: spindle_speed 0 (x/0 and 0/0 in pct_change and power_per_speed).
    let start = frame.machine_ranges()[2].1.start + 300;
    for i in start..start + 60 {
        sensors[2].1[i] = 0.0;
    }
    let ids: Vec<&str> = (0..frame.len()).map(|i| frame.machine_id_of(i)).collect();
    let out = TelemetryFrame::new(
        &ids,
        frame.time().to_vec(),
        sensors,
        frame.failure().map(<[u8]>::to_vec),
        frame.failure_mode().map(<[_]>::to_vec),
    )?;
    write_csv(&out, &path)?;
    Ok(())
}
