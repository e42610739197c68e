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

/// A day in microseconds, as `f64` for the Poisson-process arithmetic.
const DAY_MICROS: f64 = 86_400.0 * 1e6;

const MODES: [FailureMode; 4] = [
    FailureMode::Overheat,
    FailureMode::BearingWear,
    FailureMode::PowerSurge,
    FailureMode::ToolWear,
];

/// One machine's whole run: plan its episodes and downtime, then walk the
/// sample grid. Every random draw happens in a fixed order per machine.
fn simulate_machine(config: &SimulatorConfig, machine: usize) -> MachineOutput {
    let mut sim = MachineSim::new(config, machine);
    let expected = ((sim.end - config.start) / sim.interval.max(1)) as usize + 1;
    let mut out = MachineOutput {
        time: Vec::with_capacity(expected),
        values: Vec::with_capacity(expected),
        failure: Vec::with_capacity(expected),
        mode: Vec::with_capacity(expected),
        events: sim.failures.clone(),
    };
    let mut grid = config.start;
    while grid < sim.end {
        let t_nominal = grid;
        grid += sim.interval;
        if sim.in_downtime(t_nominal) {
            continue;
        }
        let Some((t, values)) = sim.sample(t_nominal) else {
            continue;
        };
        let (label, mode) = sim.label(t);
        for _ in 0..sim.copies() {
            out.time.push(t);
            out.values.push(values);
            out.failure.push(label);
            out.mode.push(mode);
        }
    }
    out
}

/// Per-machine character: baselines and the phase of the daily load cycle.
struct MachineTraits {
    temp_base: f64,
    vib_base: f64,
    speed_base: f64,
    power_base: f64,
    phase: f64,
}

impl MachineTraits {
    fn draw(rng: &mut ChaCha8Rng) -> MachineTraits {
        MachineTraits {
            temp_base: 62.0 + 4.0 * normal(rng),
            vib_base: 0.45 + 0.06 * normal(rng),
            speed_base: 1500.0 + 120.0 * normal(rng),
            power_base: 9.0 + 1.0 * normal(rng),
            phase: rng.random::<f64>() * std::f64::consts::TAU,
        }
    }
}

/// A sample's readings before degradation: what a healthy machine shows.
struct Readings {
    speed: f64,
    /// The temperature the machine is heading for (it lags).
    target: f64,
    vibration: f64,
    power: f64,
}

/// The state of one machine's simulation while it walks the sample grid.
struct MachineSim<'c> {
    config: &'c SimulatorConfig,
    rng: ChaCha8Rng,
    interval: i64,
    end: i64,
    horizon: i64,
    traits: MachineTraits,
    /// Degradation and false-alarm episodes, by start time.
    episodes: Vec<Episode>,
    /// Downtime after failures and outages, sorted: `(from, to)`.
    downtime: Vec<(i64, i64)>,
    /// The failures among the episodes: `(time, mode)`.
    failures: Vec<(i64, FailureMode)>,
    temperature: f64,
    idle_until: i64,
    next_failure: usize,
    episode_from: usize,
    down_index: usize,
}

impl<'c> MachineSim<'c> {
    /// Draws the machine's traits, then plans failures, false alarms and
    /// outages up front (Poisson processes), in that order.
    fn new(config: &'c SimulatorConfig, machine: usize) -> MachineSim<'c> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(machine as u64 + 1);
        let end = config.start + (config.days * 86_400.0 * 1e6) as i64;
        let traits = MachineTraits::draw(&mut rng);
        let (mut episodes, mut downtime) = plan_failures(config, &mut rng, end);
        episodes.extend(plan_false_alarms(config, &mut rng, end));
        downtime.extend(plan_outages(config, &mut rng, end));
        episodes.sort_by_key(|e| e.start);
        downtime.sort_unstable();
        let failures = episodes
            .iter()
            .filter(|e| e.fails)
            .map(|e| (e.peak, e.mode))
            .collect();
        MachineSim {
            config,
            rng,
            interval: (config.interval_seconds * 1e6) as i64,
            end,
            horizon: (config.label_horizon_minutes * 60.0 * 1e6) as i64,
            temperature: traits.temp_base,
            traits,
            episodes,
            downtime,
            failures,
            idle_until: i64::MIN,
            next_failure: 0,
            episode_from: 0,
            down_index: 0,
        }
    }

    /// Whether the grid point falls in downtime (after a failure) or an outage.
    fn in_downtime(&mut self, t_nominal: i64) -> bool {
        let downtime = &self.downtime;
        while self.down_index < downtime.len() && downtime[self.down_index].1 <= t_nominal {
            self.down_index += 1;
        }
        self.down_index < downtime.len() && downtime[self.down_index].0 <= t_nominal
    }

    /// The sample near `t_nominal` (jittered), or `None` when it is dropped.
    fn sample(&mut self, t_nominal: i64) -> Option<(i64, [f64; 4])> {
        let jitter = self.interval as f64 * 0.2;
        // Millisecond-resolution jitter keeps times ordered and CSV round-trips exact.
        let t = t_nominal
            + ((self.rng.random::<f64>() * 2.0 - 1.0) * jitter / 1000.0).round() as i64 * 1000;
        if self.rng.random_bool(self.config.drop_probability) {
            return None;
        }
        // Idle periods: about 8 % of the time, 10–60 minutes each.
        if t >= self.idle_until && self.rng.random_bool(0.08 / 200.0) {
            self.idle_until = t + ((10.0 + 50.0 * self.rng.random::<f64>()) * 6e7) as i64;
        }
        let idle = t < self.idle_until;
        let mut readings = self.healthy_readings(t, idle);
        let temp_push = self.degrade(t, idle, &mut readings);
        // Temperature lags its target (first-order), plus sensor noise.
        self.temperature +=
            (readings.target + temp_push - self.temperature) * 0.02 + 0.05 * normal(&mut self.rng);
        let mut values = [
            self.temperature + 0.15 * normal(&mut self.rng),
            readings.vibration.max(0.0),
            readings.speed.max(0.0),
            readings.power.max(0.0),
        ];
        self.add_glitches(&mut values);
        Some((t, values))
    }

    /// Speed, temperature target, vibration and power from the daily load cycle.
    fn healthy_readings(&mut self, t: i64, idle: bool) -> Readings {
        let MachineTraits {
            temp_base,
            vib_base,
            speed_base,
            power_base,
            phase,
        } = self.traits;
        let rng = &mut self.rng;
        let hour = (t - self.config.start) as f64 / 3.6e9;
        let load = 0.75 + 0.2 * (std::f64::consts::TAU * hour / 24.0 + phase).sin();
        let speed = if idle {
            0.0
        } else {
            speed_base * (0.9 + 0.2 * load) + 12.0 * normal(rng)
        };
        let target = if idle {
            38.0
        } else {
            temp_base + 10.0 * (load - 0.75)
        };
        let vibration = if idle {
            0.04 + 0.01 * normal(rng).abs()
        } else {
            vib_base * (0.85 + 0.3 * load) + 0.035 * normal(rng)
        };
        let power = if idle {
            1.2 + 0.1 * normal(rng)
        } else {
            power_base * (0.6 + 0.5 * load) * speed / speed_base + 0.25 * normal(rng)
        };
        Readings {
            speed,
            target,
            vibration,
            power,
        }
    }

    /// Adds the active episodes' symptoms to `readings`; returns the extra
    /// temperature they push towards.
    fn degrade(&mut self, t: i64, idle: bool, readings: &mut Readings) -> f64 {
        let episodes = &self.episodes;
        while self.episode_from < episodes.len()
            && episodes[self.episode_from]
                .end
                .max(episodes[self.episode_from].peak)
                < t - 4 * 3_600 * MICROS_PER_SECOND
        {
            self.episode_from += 1;
        }
        let vib_base = self.traits.vib_base;
        let rng = &mut self.rng;
        let mut temp_push = 0.0;
        for e in episodes[self.episode_from..]
            .iter()
            .take_while(|e| e.start <= t)
        {
            let r = e.severity * e.intensity(t);
            if r <= 0.0 || idle {
                continue;
            }
            match e.mode {
                FailureMode::Overheat => {
                    temp_push += 14.0 * r;
                    readings.power += 1.5 * r;
                }
                FailureMode::BearingWear => {
                    readings.vibration += vib_base * (0.9 * r + 0.5 * r * normal(rng).abs());
                    temp_push += 2.0 * r;
                }
                FailureMode::PowerSurge => {
                    readings.power += 2.0 * r;
                    if rng.random_bool((0.25 * r).min(1.0)) {
                        readings.power += 6.0 + 3.0 * normal(rng).abs();
                    }
                }
                FailureMode::ToolWear => {
                    readings.power += 2.5 * r;
                    readings.speed -= 60.0 * r;
                    readings.vibration += 0.12 * r;
                }
                FailureMode::None => {}
            }
        }
        temp_push
    }

    /// Sensor glitches: spikes and missing values.
    fn add_glitches(&mut self, values: &mut [f64; 4]) {
        for v in values {
            if self.rng.random_bool(self.config.spike_probability) {
                *v *= 2.5 + 2.0 * self.rng.random::<f64>();
            } else if self.rng.random_bool(self.config.missing_probability) {
                *v = f64::NAN;
            }
        }
    }

    /// `failure` and `failure_mode` at `t`: the next failure's mode when it is
    /// within the label horizon.
    fn label(&mut self, t: i64) -> (u8, FailureMode) {
        let failures = &self.failures;
        while self.next_failure < failures.len() && failures[self.next_failure].0 <= t {
            self.next_failure += 1;
        }
        match failures.get(self.next_failure) {
            Some(&(tf, mode)) if tf - t <= self.horizon => (1, mode),
            _ => (0, FailureMode::None),
        }
    }

    /// How many times the sample is delivered (rarely twice).
    fn copies(&mut self) -> usize {
        if self.rng.random_bool(self.config.duplicate_probability) {
            2
        } else {
            1
        }
    }
}

/// Failures: one every `1 / failures_per_day` days on average (the first after
/// two hours, then at least 1.5 h of uptime after each downtime), each with
/// its degradation ramp over the hour before and 30–90 minutes of downtime.
fn plan_failures(
    config: &SimulatorConfig,
    rng: &mut ChaCha8Rng,
    end: i64,
) -> (Vec<Episode>, Vec<(i64, i64)>) {
    let (mut episodes, mut downtime) = (Vec::new(), Vec::new());
    if config.failures_per_day <= 0.0 {
        return (episodes, downtime);
    }
    let mean_gap = DAY_MICROS / config.failures_per_day;
    let mut t = config.start as f64 + exponential(rng, mean_gap).max(2.0 * 3.6e9);
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
        t += down + exponential(rng, mean_gap).max(1.5 * 3.6e9);
    }
    (episodes, downtime)
}

/// False alarms: a ramp of 20–60 minutes that peaks and recovers over 5–30.
fn plan_false_alarms(config: &SimulatorConfig, rng: &mut ChaCha8Rng, end: i64) -> Vec<Episode> {
    let mut episodes = Vec::new();
    if config.false_alarms_per_day <= 0.0 {
        return episodes;
    }
    let mean_gap = DAY_MICROS / config.false_alarms_per_day;
    let mut t = config.start as f64 + exponential(rng, mean_gap);
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
        t += exponential(rng, mean_gap);
    }
    episodes
}

/// Outages: 2–20 minutes without data.
fn plan_outages(config: &SimulatorConfig, rng: &mut ChaCha8Rng, end: i64) -> Vec<(i64, i64)> {
    let mut downtime = Vec::new();
    if config.outages_per_day <= 0.0 {
        return downtime;
    }
    let mean_gap = DAY_MICROS / config.outages_per_day;
    let mut t = config.start as f64 + exponential(rng, mean_gap);
    while (t as i64) < end {
        let length = (2.0 + 18.0 * rng.random::<f64>()) * 6e7;
        downtime.push((t as i64, (t + length) as i64));
        t += length + exponential(rng, mean_gap);
    }
    downtime
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
