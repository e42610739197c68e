//! A deterministic machine-telemetry simulator: the pipeline's built-in data source.
//!
//! Each machine has its own baselines and its own random stream (ChaCha8,
//! stream = machine index), so the output depends only on the configuration,
//! never on the number of threads. What it models:
//!
//! * a daily load cycle with per-machine phase, sensor noise, a lagging temperature;
//! * idle periods (spindle_speed 0, low power and vibration, cooling);
//! * timestamp jitter, dropped samples, multi-minute outages, rare duplicate deliveries;
//! * sensor glitches: spikes and rare missing values;
//! * failures of four modes, each preceded by its own degradation ramp over the
//!   hour before (severity varies, so some are subtle), followed by downtime;
//! * false-alarm excursions that look like a ramp but recover.
//!
//! `failure` is 1 for samples within `label_horizon` before a failure, and
//! `failure_mode` names that failure's mode.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, FrameBuilder, REFERENCE_SENSORS, TelemetryFrame};
use crate::labels::FailureEvent;
use crate::time::{MICROS_PER_MINUTE, MICROS_PER_SECOND, parse_timestamp};

/// Simulator settings. Defaults give a 3–10 % positive rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulatorConfig {
    /// Random seed (default 42).
    pub seed: u64,
    /// Number of machines (default 10), named `M01`, `M02`, ...
    pub machines: usize,
    /// Days simulated (default 7).
    pub days: f64,
    /// Nominal sample interval in seconds (default 10).
    pub interval_seconds: f64,
    /// First sample time, µs since epoch UTC (default 2026-01-01T00:00:00Z).
    pub start: i64,
    /// Expected failures per machine per day (default 2.0).
    pub failures_per_day: f64,
    /// Expected false-alarm excursions per machine per day (default 1.5).
    pub false_alarms_per_day: f64,
    /// Minutes before a failure during which `failure` = 1 (default 30).
    pub label_horizon_minutes: f64,
    /// Probability that a sample is dropped (default 0.01).
    pub drop_probability: f64,
    /// Expected multi-minute outages per machine per day (default 1.0).
    pub outages_per_day: f64,
    /// Per sensor and sample, probability of a spike (default 0.001).
    pub spike_probability: f64,
    /// Per sensor and sample, probability of a missing value (default 0.002).
    pub missing_probability: f64,
    /// Probability that a sample is delivered twice with the same timestamp (default 0.0005).
    pub duplicate_probability: f64,
}

impl Default for SimulatorConfig {
    fn default() -> SimulatorConfig {
        SimulatorConfig {
            seed: 42,
            machines: 10,
            days: 7.0,
            interval_seconds: 10.0,
            start: parse_timestamp("2026-01-01T00:00:00Z").unwrap_or(0),
            failures_per_day: 2.0,
            false_alarms_per_day: 1.5,
            label_horizon_minutes: 30.0,
            drop_probability: 0.01,
            outages_per_day: 1.0,
            spike_probability: 0.001,
            missing_probability: 0.002,
            duplicate_probability: 0.0005,
        }
    }
}

impl SimulatorConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: &str| {
            Err(FeaturesError::InvalidParameter {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.machines == 0 || self.machines > 100_000 {
            return bad("machines", "must be between 1 and 100000");
        }
        if !(self.days.is_finite() && self.days > 0.0) {
            return bad("days", "must be positive");
        }
        if !(self.interval_seconds.is_finite() && self.interval_seconds >= 0.01) {
            return bad("interval_seconds", "must be at least 0.01");
        }
        if self.days * 86_400.0 / self.interval_seconds > 1e9 {
            return bad("days", "more than 1e9 samples per machine");
        }
        for (name, v) in [
            ("failures_per_day", self.failures_per_day),
            ("false_alarms_per_day", self.false_alarms_per_day),
            ("outages_per_day", self.outages_per_day),
            ("label_horizon_minutes", self.label_horizon_minutes),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, "must be finite and non-negative");
            }
        }
        for (name, p) in [
            ("drop_probability", self.drop_probability),
            ("spike_probability", self.spike_probability),
            ("missing_probability", self.missing_probability),
            ("duplicate_probability", self.duplicate_probability),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(name, "must be in [0, 1)");
            }
        }
        Ok(())
    }

    /// The name of machine `index` (0-based): `M01`, `M02`, ... zero-padded so
    /// string order is numeric order.
    pub fn machine_name(&self, index: usize) -> String {
        let width = self.machines.to_string().len().max(2);
        format!("M{:0width$}", index + 1)
    }
}

/// A simulated data set: the labelled telemetry and the failures behind the labels.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Telemetry with `failure` and `failure_mode` labels.
    pub frame: TelemetryFrame,
    /// Every failure, in (machine, time) order.
    pub events: Vec<FailureEvent>,
}

/// Runs the simulator.
///
/// ```
/// use vigil_features::{simulate, SimulatorConfig};
/// let sim = simulate(&SimulatorConfig { machines: 2, days: 1.0, ..Default::default() }).unwrap();
/// assert_eq!(sim.frame.machine_ids(), ["M01", "M02"]);
/// assert!(sim.frame.len() > 12_000);
/// ```
pub fn simulate(config: &SimulatorConfig) -> Result<Simulation> {
    config.validate()?;
    let per_machine: Vec<MachineOutput> = (0..config.machines)
        .into_par_iter()
        .map(|m| simulate_machine(config, m))
        .collect();
    let rows: usize = per_machine.iter().map(|o| o.time.len()).sum();
    let sensors: Vec<String> = REFERENCE_SENSORS.iter().map(|s| (*s).to_owned()).collect();
    let mut builder = FrameBuilder::new(sensors, true, true);
    builder.reserve(rows);
    let mut events = Vec::new();
    for (m, out) in per_machine.into_iter().enumerate() {
        let name = config.machine_name(m);
        for i in 0..out.time.len() {
            builder.push(
                &name,
                out.time[i],
                &out.values[i],
                Some(out.failure[i]),
                Some(out.mode[i]),
            );
        }
        events.extend(out.events.into_iter().map(|(time, mode)| FailureEvent {
            machine: name.clone(),
            time,
            mode,
        }));
    }
    Ok(Simulation {
        frame: builder.finish(),
        events,
    })
}

struct MachineOutput {
    time: Vec<i64>,
    values: Vec<[f64; 4]>,
    failure: Vec<u8>,
    mode: Vec<FailureMode>,
    events: Vec<(i64, FailureMode)>,
}

/// A degradation (or false-alarm) episode.
#[derive(Clone, Copy)]
struct Episode {
    mode: FailureMode,
    /// When the ramp starts.
    start: i64,
    /// The failure time (or the excursion's peak for a false alarm).
    peak: i64,
    /// For false alarms, when the excursion is over; for failures, `peak`.
    end: i64,
    severity: f64,
    fails: bool,
}

impl Episode {
    /// Ramp intensity in [0, 1] at time `t`: quadratic rise to the peak, linear recovery.
    fn intensity(&self, t: i64) -> f64 {
        if t < self.start || t >= self.end.max(self.peak) {
            return 0.0;
        }
        if t <= self.peak {
            let x = (t - self.start) as f64 / (self.peak - self.start).max(1) as f64;
            x * x
        } else {
            1.0 - (t - self.peak) as f64 / (self.end - self.peak).max(1) as f64
        }
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller: rand_distr is not a dependency, and one formula is all we need.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

const MODES: [FailureMode; 4] = [
    FailureMode::Overheat,
    FailureMode::BearingWear,
    FailureMode::PowerSurge,
    FailureMode::ToolWear,
];

fn simulate_machine(config: &SimulatorConfig, machine: usize) -> MachineOutput {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(machine as u64 + 1);
    let interval = (config.interval_seconds * 1e6) as i64;
    let end = config.start + (config.days * 86_400.0 * 1e6) as i64;
    let day = 86_400.0 * 1e6;
    let horizon = (config.label_horizon_minutes * 60.0 * 1e6) as i64;

    // Per-machine character.
    let temp_base = 62.0 + 4.0 * normal(&mut rng);
    let vib_base = 0.45 + 0.06 * normal(&mut rng);
    let speed_base = 1500.0 + 120.0 * normal(&mut rng);
    let power_base = 9.0 + 1.0 * normal(&mut rng);
    let phase = rng.random::<f64>() * std::f64::consts::TAU;

    // Plan failures, false alarms and outages up front (Poisson processes).
    let mut episodes: Vec<Episode> = Vec::new();
    let mut downtime: Vec<(i64, i64)> = Vec::new();
    if config.failures_per_day > 0.0 {
        let mut t = config.start as f64
            + exponential(&mut rng, day / config.failures_per_day).max(2.0 * 3.6e9);
        while (t as i64) < end {
            let peak = t as i64;
            let mode = MODES[rng.random_range(0..4)];
            // Severity: mostly clear, a quarter subtle.
            let severity = if rng.random_bool(0.25) {
                0.15 + 0.25 * rng.random::<f64>()
            } else {
                0.5 + rng.random::<f64>()
            };
            episodes.push(Episode {
                mode,
                start: peak - 60 * MICROS_PER_MINUTE,
                peak,
                end: peak,
                severity,
                fails: true,
            });
            let down = (30.0 + 60.0 * rng.random::<f64>()) * 6e7;
            downtime.push((peak, peak + down as i64));
            t += down + exponential(&mut rng, day / config.failures_per_day).max(1.5 * 3.6e9);
        }
    }
    if config.false_alarms_per_day > 0.0 {
        let mut t = config.start as f64 + exponential(&mut rng, day / config.false_alarms_per_day);
        while (t as i64) < end {
            let peak = t as i64;
            let rise = ((20.0 + 40.0 * rng.random::<f64>()) * 6e7) as i64;
            let fall = ((5.0 + 25.0 * rng.random::<f64>()) * 6e7) as i64;
            let mode = MODES[rng.random_range(0..4)];
            let severity = 0.3 + 0.7 * rng.random::<f64>();
            episodes.push(Episode {
                mode,
                start: peak - rise,
                peak,
                end: peak + fall,
                severity,
                fails: false,
            });
            t += exponential(&mut rng, day / config.false_alarms_per_day);
        }
    }
    if config.outages_per_day > 0.0 {
        let mut t = config.start as f64 + exponential(&mut rng, day / config.outages_per_day);
        while (t as i64) < end {
            let length = (2.0 + 18.0 * rng.random::<f64>()) * 6e7;
            downtime.push((t as i64, (t + length) as i64));
            t += length + exponential(&mut rng, day / config.outages_per_day);
        }
    }
    episodes.sort_by_key(|e| e.start);
    downtime.sort_unstable();
    let failures: Vec<(i64, FailureMode)> = episodes
        .iter()
        .filter(|e| e.fails)
        .map(|e| (e.peak, e.mode))
        .collect();

    let expected = ((end - config.start) / interval.max(1)) as usize + 1;
    let mut out = MachineOutput {
        time: Vec::with_capacity(expected),
        values: Vec::with_capacity(expected),
        failure: Vec::with_capacity(expected),
        mode: Vec::with_capacity(expected),
        events: failures.clone(),
    };
    let mut temperature = temp_base;
    let mut idle_until = i64::MIN;
    let mut next_failure = 0usize;
    let mut episode_from = 0usize;
    let mut down_index = 0usize;
    let jitter = interval as f64 * 0.2;
    let mut grid = config.start;
    while grid < end {
        let t_nominal = grid;
        grid += interval;
        // Skip downtime (after failures) and outages.
        while down_index < downtime.len() && downtime[down_index].1 <= t_nominal {
            down_index += 1;
        }
        if down_index < downtime.len() && downtime[down_index].0 <= t_nominal {
            continue;
        }
        // Millisecond-resolution jitter keeps times ordered and CSV round-trips exact.
        let t =
            t_nominal + ((rng.random::<f64>() * 2.0 - 1.0) * jitter / 1000.0).round() as i64 * 1000;
        if rng.random_bool(config.drop_probability) {
            continue;
        }
        // Idle periods: about 8 % of the time, 10–60 minutes each.
        if t >= idle_until && rng.random_bool(0.08 / 200.0) {
            idle_until = t + ((10.0 + 50.0 * rng.random::<f64>()) * 6e7) as i64;
        }
        let idle = t < idle_until;
        let hour = (t - config.start) as f64 / 3.6e9;
        let load = 0.75 + 0.2 * (std::f64::consts::TAU * hour / 24.0 + phase).sin();

        let mut speed = if idle {
            0.0
        } else {
            speed_base * (0.9 + 0.2 * load) + 12.0 * normal(&mut rng)
        };
        let target = if idle {
            38.0
        } else {
            temp_base + 10.0 * (load - 0.75)
        };
        let mut vibration = if idle {
            0.04 + 0.01 * normal(&mut rng).abs()
        } else {
            vib_base * (0.85 + 0.3 * load) + 0.035 * normal(&mut rng)
        };
        let mut power = if idle {
            1.2 + 0.1 * normal(&mut rng)
        } else {
            power_base * (0.6 + 0.5 * load) * speed / speed_base + 0.25 * normal(&mut rng)
        };
        let mut temp_push = 0.0;

        while episode_from < episodes.len()
            && episodes[episode_from].end.max(episodes[episode_from].peak)
                < t - 4 * 3_600 * MICROS_PER_SECOND
        {
            episode_from += 1;
        }
        for e in episodes[episode_from..].iter().take_while(|e| e.start <= t) {
            let r = e.severity * e.intensity(t);
            if r <= 0.0 || idle {
                continue;
            }
            match e.mode {
                FailureMode::Overheat => {
                    temp_push += 14.0 * r;
                    power += 1.5 * r;
                }
                FailureMode::BearingWear => {
                    vibration += vib_base * (0.9 * r + 0.5 * r * normal(&mut rng).abs());
                    temp_push += 2.0 * r;
                }
                FailureMode::PowerSurge => {
                    power += 2.0 * r;
                    if rng.random_bool((0.25 * r).min(1.0)) {
                        power += 6.0 + 3.0 * normal(&mut rng).abs();
                    }
                }
                FailureMode::ToolWear => {
                    power += 2.5 * r;
                    speed -= 60.0 * r;
                    vibration += 0.12 * r;
                }
                FailureMode::None => {}
            }
        }
        // Temperature lags its target (first-order), plus sensor noise.
        temperature += (target + temp_push - temperature) * 0.02 + 0.05 * normal(&mut rng);
        let mut values = [
            temperature + 0.15 * normal(&mut rng),
            vibration.max(0.0),
            speed.max(0.0),
            power.max(0.0),
        ];
        for v in &mut values {
            if rng.random_bool(config.spike_probability) {
                *v *= 2.5 + 2.0 * rng.random::<f64>();
            } else if rng.random_bool(config.missing_probability) {
                *v = f64::NAN;
            }
        }
        while next_failure < failures.len() && failures[next_failure].0 <= t {
            next_failure += 1;
        }
        let (label, mode) = match failures.get(next_failure) {
            Some(&(tf, mode)) if tf - t <= horizon => (1, mode),
            _ => (0, FailureMode::None),
        };
        let copies = if rng.random_bool(config.duplicate_probability) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            out.time.push(t);
            out.values.push(values);
            out.failure.push(label);
            out.mode.push(mode);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_plausible() {
        let config = SimulatorConfig {
            machines: 3,
            days: 3.0,
            ..Default::default()
        };
        let a = simulate(&config).unwrap();
        let b = simulate(&config).unwrap();
        assert_eq!(format!("{:?}", a.frame), format!("{:?}", b.frame));
        let rate = a
            .frame
            .failure()
            .unwrap()
            .iter()
            .map(|&x| f64::from(x))
            .sum::<f64>()
            / a.frame.len() as f64;
        assert!((0.03..=0.10).contains(&rate), "positive rate {rate}");
        assert!(!a.events.is_empty());
        let speed = a.frame.sensor_by_name("spindle_speed").unwrap();
        assert!(speed.contains(&0.0), "no idle period");
        assert!(speed.iter().any(|s| s.is_nan()), "no missing values");
        let c = simulate(&SimulatorConfig { seed: 7, ..config }).unwrap();
        assert_ne!(format!("{:?}", a.frame), format!("{:?}", c.frame));
    }

    #[test]
    fn rejects_bad_config() {
        for config in [
            SimulatorConfig {
                machines: 0,
                ..Default::default()
            },
            SimulatorConfig {
                days: -1.0,
                ..Default::default()
            },
            SimulatorConfig {
                interval_seconds: f64::NAN,
                ..Default::default()
            },
            SimulatorConfig {
                drop_probability: 1.5,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                simulate(&config),
                Err(FeaturesError::InvalidParameter { .. })
            ));
        }
    }
}
