//! Sequences of operations on one `ScoringCore` (score a batch, reset a
//! machine, swap the model, warm up from a frame), decoded with `arbitrary`,
//! checked against a shadow of what the core's documentation says its state
//! is: per machine its first and last accepted time, and how many machines
//! are tracked.
//!
//! After every operation:
//! * its outcome is the documented one: the same accepted steps (advance or
//!   retry) or the same typed `ScoringError` variant at the same sample index
//!   (`Internal`, "a bug or a broken model", is a finding when scoring);
//! * an accepted batch has one prediction per sample, in order, with the
//!   sample's machine and time, a probability in [0, 1], `failure` at the
//!   threshold, an anomaly score in (0, 1], `retry` and `warm` as the shadow
//!   says, the non-finite sensors named, and a retry answers exactly as the
//!   sample it repeats did;
//! * after a refused batch, a sample at each involved machine's last time is
//!   a retry, and the next valid sample (last time + 10 s) is accepted;
//! * `machine_counts()` equals the shadow's (tracked, warm) and never exceeds
//!   `max_machines`.
//!
//! The policy (machine and batch limits, clock skew, shards, new
//! machines) comes from the input too. The core is fresh per input, so an
//! input reproduces on its own.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vigil_examples::scoring::{
    LoadedModel, Sample, Scored, ScoredBatch, ScoringCore, ScoringError, ScoringPolicy,
};
use vigil_examples_fuzz::{KNOWN_MACHINES, T0, copy, reference_model, train};
use vigil_features::{Aggregation, FeatureSpec, TelemetryFrame, WindowLength};

const MACHINES: [&str; 8] = ["M01", "M02", "m3", "m4", "m5", "m6", "m7", ""];
const SECOND: i64 = 1_000_000;
/// The probe's "next valid sample": this long after the machine's last one,
/// more than any model's minimum spacing.
const NEXT_GAP: i64 = 10 * SECOND;

/// With `VIGIL_FUZZ_TRACE` set, what each operation did goes to stderr (to
/// see what a corpus reaches: `-runs=0` over it).
fn trace(what: std::fmt::Arguments<'_>) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("VIGIL_FUZZ_TRACE").is_some()) {
        eprintln!("trace: {what}");
    }
}

/// The models a swap can pick: the reference, the same spec as another
/// version, fewer features over the same sensors, two sensors 5 s apart at
/// least, the reference spec with the smallest spacing (1 ms), and one sensor
/// without windows 2 s apart (warm from its second sample).
fn models() -> &'static [LoadedModel; 6] {
    static MODELS: OnceLock<[LoadedModel; 6]> = OnceLock::new();
    MODELS.get_or_init(|| {
        let reference = reference_model();
        let mut same_spec = copy(reference);
        same_spec.version = "2".into();
        let mut fewer = FeatureSpec::default();
        fewer.features.truncate(10);
        let two_sensors = FeatureSpec::new(["temperature", "vibration"])
            .with_raw("temperature")
            .with_rolling("temperature", Aggregation::Mean, WindowLength::minutes(5))
            .with_raw("vibration")
            .with_zscore("vibration", WindowLength::minutes(30))
            .with_min_spacing(WindowLength::seconds(5));
        let dense = FeatureSpec::default().with_min_spacing(FeatureSpec::MIN_SPACING_FLOOR);
        let windowless = FeatureSpec::new(["spindle_speed"])
            .with_raw("spindle_speed")
            .with_diff("spindle_speed")
            .with_min_spacing(WindowLength::seconds(2));
        [
            copy(reference),
            same_spec,
            train(&fewer, "3"),
            train(&two_sensors, "4"),
            train(&dense, "5"),
            train(&windowless, "6"),
        ]
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    policy: PolicyBytes,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct PolicyBytes {
    max_machines: u8,
    max_batch: u8,
    allow_new: bool,
    skew: u8,
    shards: u8,
}

impl PolicyBytes {
    fn policy(&self) -> ScoringPolicy {
        ScoringPolicy {
            max_machines: 1 + usize::from(self.max_machines % 6),
            max_batch_samples: 1 + usize::from(self.max_batch % 12),
            allow_new_machines: self.allow_new,
            clock_skew_micros: [0, SECOND, 300 * SECOND][usize::from(self.skew % 3)],
            shards: 1 + usize::from(self.shards % 4),
            max_explained_samples: 4,
        }
    }
}

/// The sample times an input can reach. Times more than 2^63 µs apart make
/// the core's warm flag overflow (README, finding 1); they are left out unless
/// `VIGIL_FUZZ_FULL_TIME_RANGE` is set: times stay within ±(2^62 - 1) µs
/// (±146,000 years) of the epoch.
struct TimeRange {
    full: bool,
}

impl TimeRange {
    const BOUND: i64 = (1 << 62) - 1;

    fn clamp(&self, time: i64) -> i64 {
        if self.full {
            time
        } else {
            time.clamp(-Self::BOUND, Self::BOUND)
        }
    }

    fn contains(&self, time: i64) -> bool {
        self.full || (-Self::BOUND..=Self::BOUND).contains(&time)
    }
}

fn time_range() -> &'static TimeRange {
    static RANGE: OnceLock<TimeRange> = OnceLock::new();
    RANGE.get_or_init(|| TimeRange {
        full: std::env::var_os("VIGIL_FUZZ_FULL_TIME_RANGE").is_some(),
    })
}

#[derive(Arbitrary, Debug)]
enum Op {
    Score {
        now: Now,
        samples: Vec<GenSample>,
    },
    Reset {
        machine: u8,
    },
    Swap {
        model: u8,
    },
    Warm {
        wrong_sensors: u8,
        rows: Vec<GenSample>,
    },
}

/// The `now` a batch is scored at.
#[derive(Arbitrary, Debug)]
enum Now {
    /// Ten thousand days after T0.
    Far,
    /// This many seconds after the batch's latest sample (around the skew).
    AfterLatest(i16),
    Exactly(i64),
}

#[derive(Arbitrary, Debug)]
struct GenSample {
    machine: u8,
    /// After the machine's previous sample (in this operation, else its last
    /// accepted one, else T0).
    delta: Delta,
    values: [Val; 4],
    /// Below 250: the served model's width; else `width - 250` values.
    width: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Delta {
    Zero,
    Seconds(u8),
    Micros(i32),
    Minutes(i8),
    Huge(i64),
}

impl Delta {
    fn micros(self) -> i64 {
        match self {
            Delta::Zero => 0,
            Delta::Seconds(s) => i64::from(s) * SECOND,
            Delta::Micros(m) => i64::from(m),
            Delta::Minutes(m) => i64::from(m) * 60 * SECOND,
            Delta::Huge(h) => h,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Val {
    Typical(i16),
    Missing,
    Inf,
    NegInf,
    Max,
    NegMax,
    Tiny,
    Raw(f64),
}

impl Val {
    fn value(self) -> f64 {
        match self {
            Val::Typical(v) => f64::from(v) / 8.0,
            Val::Missing => f64::NAN,
            Val::Inf => f64::INFINITY,
            Val::NegInf => f64::NEG_INFINITY,
            Val::Max => f64::MAX,
            Val::NegMax => f64::MIN,
            Val::Tiny => f64::from_bits(1),
            Val::Raw(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Clock {
    first: i64,
    last: i64,
}

/// What a sample does, as the documentation says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Advance { new_machine: bool },
    Retry,
}

/// A refusal the shadow expects: the variant's name and the sample index.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    kind: &'static str,
    index: Option<usize>,
}

fn refusal(kind: &'static str, index: Option<usize>) -> Refusal {
    Refusal { kind, index }
}

/// The documented variant and index of an actual error (`Internal` is `None`).
fn classify(e: &ScoringError) -> Option<Refusal> {
    let r = match e {
        ScoringError::EmptyBatch => refusal("EmptyBatch", None),
        ScoringError::TooManySamples { .. } => refusal("TooManySamples", None),
        ScoringError::WrongWidth { index, .. } => refusal("WrongWidth", Some(*index)),
        ScoringError::UnknownMachine { index, .. } => refusal("UnknownMachine", Some(*index)),
        ScoringError::TooManyMachines { index, .. } => refusal("TooManyMachines", Some(*index)),
        ScoringError::InFuture { index, .. } => refusal("InFuture", Some(*index)),
        ScoringError::OutOfOrder { index, .. } => refusal("OutOfOrder", Some(*index)),
        ScoringError::TooClose { index, .. } => refusal("TooClose", Some(*index)),
        ScoringError::Internal(_) => return None,
        other => panic!("a ScoringError variant the target does not know: {other}"),
    };
    Some(r)
}

/// The last prediction of a machine, to compare a retry with.
#[derive(Debug, Clone, Copy)]
struct Answer {
    generation: u64,
    probability: u64,
    anomaly: u64,
}

/// The state the core should be in.
struct Shadow {
    policy: ScoringPolicy,
    clocks: HashMap<String, Clock>,
    answers: HashMap<String, Answer>,
    model: usize,
    /// Bumped at every swap: answers of an older version are not compared.
    generation: u64,
}

impl Shadow {
    fn served(&self) -> &'static LoadedModel {
        &models()[self.model]
    }

    fn width(&self) -> usize {
        self.served().bundle.feature_spec.sensors.len()
    }

    /// The documented warm-up: `FeatureSpec::warm_after`.
    fn warm_micros(&self) -> i64 {
        self.served().bundle.feature_spec.warm_after().as_micros()
    }

    /// The documented admission: `FeatureSpec::min_spacing`.
    fn min_spacing_micros(&self) -> i64 {
        self.served().bundle.feature_spec.min_spacing.as_micros()
    }

    fn is_warm(&self, clock: Clock, time: i64) -> bool {
        i128::from(time) - i128::from(clock.first) >= i128::from(self.warm_micros())
    }

    fn counts(&self) -> (usize, usize) {
        let warm = self
            .clocks
            .values()
            .filter(|c| self.is_warm(**c, c.last))
            .count();
        (self.clocks.len(), warm)
    }

    fn knows(&self, machine: &str) -> bool {
        self.served()
            .bundle
            .meta
            .machines
            .iter()
            .any(|m| m == machine)
    }

    /// The documented rule for one sample against its machine's clock.
    fn step_for(&self, s: &Sample, stored: Option<Clock>) -> Result<Step, &'static str> {
        let Some(clock) = stored else {
            if !self.policy.allow_new_machines && !self.knows(&s.machine_id) {
                return Err("UnknownMachine");
            }
            return Ok(Step::Advance { new_machine: true });
        };
        let gap = s.time.saturating_sub(clock.last);
        if gap < 0 {
            Err("OutOfOrder")
        } else if gap == 0 {
            Ok(Step::Retry)
        } else if gap < self.min_spacing_micros() {
            Err("TooClose")
        } else {
            Ok(Step::Advance { new_machine: false })
        }
    }

    /// What `score(samples, now)` must do.
    fn expect_score(&self, samples: &[Sample], now: i64) -> Result<Vec<Step>, Refusal> {
        if samples.is_empty() {
            return Err(refusal("EmptyBatch", None));
        }
        if samples.len() > self.policy.max_batch_samples {
            return Err(refusal("TooManySamples", None));
        }
        if let Some(i) = samples.iter().position(|s| s.values.len() != self.width()) {
            return Err(refusal("WrongWidth", Some(i)));
        }
        let latest = now.saturating_add(self.policy.clock_skew_micros);
        let mut seen: HashMap<&str, Clock> = HashMap::new();
        let mut steps = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            if s.time > latest {
                return Err(refusal("InFuture", Some(i)));
            }
            let stored = seen
                .get(s.machine_id.as_str())
                .or(self.clocks.get(&s.machine_id))
                .copied();
            let step = self
                .step_for(s, stored)
                .map_err(|kind| refusal(kind, Some(i)))?;
            let first = stored.map_or(s.time, |c| c.first);
            seen.insert(
                &s.machine_id,
                Clock {
                    first,
                    last: s.time,
                },
            );
            steps.push(step);
        }
        let new: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i] == Step::Advance { new_machine: true })
            .collect();
        let room = self.policy.max_machines.saturating_sub(self.clocks.len());
        if new.len() > room {
            return Err(refusal("TooManyMachines", Some(new[room])));
        }
        Ok(steps)
    }

    /// Checks an accepted batch against the expected steps and applies them.
    fn accept(&mut self, samples: &[Sample], steps: &[Step], batch: &ScoredBatch) {
        let served = self.served();
        assert_eq!(
            batch.model.version, served.version,
            "scored by the wrong version"
        );
        assert_eq!(
            batch.predictions.len(),
            samples.len(),
            "one prediction per sample"
        );
        for ((s, step), p) in samples.iter().zip(steps).zip(&batch.predictions) {
            // Formatted only when an assertion fails.
            let context = || format!("{s:?} ({step:?}) → {p:?}");
            check_fields(served, s, p, *step == Step::Retry)
                .unwrap_or_else(|what| panic!("{what}: {}", context()));
            let clock = match (*step, self.clocks.get(&s.machine_id)) {
                (Step::Advance { .. }, Some(c)) => Clock {
                    first: c.first,
                    last: s.time,
                },
                (Step::Advance { .. }, None) => Clock {
                    first: s.time,
                    last: s.time,
                },
                (Step::Retry, Some(c)) => *c,
                (Step::Retry, None) => panic!("a retry of an untracked machine: {}", context()),
            };
            assert_eq!(p.warm, self.is_warm(clock, s.time), "warm: {}", context());
            self.clocks.insert(s.machine_id.clone(), clock);
            let answer = Answer {
                generation: self.generation,
                probability: p.failure_probability.to_bits(),
                anomaly: p.anomaly_score.to_bits(),
            };
            match (*step, self.answers.get(&s.machine_id)) {
                (Step::Retry, Some(before)) if before.generation == self.generation => {
                    let same = (before.probability, before.anomaly)
                        == (answer.probability, answer.anomaly);
                    assert!(
                        same,
                        "a retry answered differently from {before:?}: {}",
                        context()
                    );
                }
                (Step::Retry, _) => {}
                (Step::Advance { .. }, _) => {
                    self.answers.insert(s.machine_id.clone(), answer);
                }
            }
        }
    }
}

/// What one prediction must say whatever the state: its sample's machine and
/// time, a probability and anomaly score in range, the flag at the threshold,
/// the missing sensors named.
fn check_fields(
    served: &LoadedModel,
    s: &Sample,
    p: &Scored,
    retry: bool,
) -> Result<(), &'static str> {
    let threshold = served.bundle.meta.threshold;
    let sensors = &served.bundle.feature_spec.sensors;
    let missing: Vec<&String> = sensors
        .iter()
        .zip(&s.values)
        .filter(|(_, v)| !v.is_finite())
        .map(|(name, _)| name)
        .collect();
    let prob = p.failure_probability;
    let checks = [
        (
            (&p.machine_id, p.time) == (&s.machine_id, s.time),
            "not the sample's machine and time",
        ),
        (p.retry == retry, "retry"),
        (
            (0.0..=1.0).contains(&prob),
            "failure_probability outside [0, 1]",
        ),
        (p.threshold == threshold, "not the model's threshold"),
        (
            p.failure == (prob >= threshold),
            "failure is not probability >= threshold",
        ),
        (
            p.anomaly_score > 0.0 && p.anomaly_score <= 1.0,
            "anomaly_score outside (0, 1]",
        ),
        (
            p.missing_sensors.iter().collect::<Vec<_>>() == missing,
            "missing_sensors",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(what),
        None => Ok(()),
    }
}

/// Typical values for the served width (the probes' samples).
fn typical(width: usize) -> Vec<f64> {
    [70.0, 0.5, 1500.0, 12.0]
        .into_iter()
        .cycle()
        .take(width)
        .collect()
}

struct Run {
    core: ScoringCore,
    shadow: Shadow,
}

impl Run {
    /// The op's samples: times after each machine's previous one.
    fn samples(&self, generated: &[GenSample]) -> Vec<Sample> {
        let width = self.shadow.width();
        let mut previous: HashMap<&str, i64> = HashMap::new();
        generated
            .iter()
            .map(|g| {
                let machine = MACHINES[usize::from(g.machine) % MACHINES.len()];
                let base = previous
                    .get(machine)
                    .copied()
                    .or(self.shadow.clocks.get(machine).map(|c| c.last))
                    .unwrap_or(T0);
                let time = time_range().clamp(base.saturating_add(g.delta.micros()));
                previous.insert(machine, time);
                let n = if g.width < 250 {
                    width
                } else {
                    usize::from(g.width - 250)
                };
                let values = (0..n)
                    .map(|k| g.values.get(k).map_or(f64::NAN, |v| v.value()))
                    .collect();
                Sample {
                    machine_id: machine.to_string(),
                    time,
                    values,
                }
            })
            .collect()
    }

    fn score(&mut self, now: &Now, generated: &[GenSample]) {
        let samples = self.samples(generated);
        let latest = samples.iter().map(|s| s.time).max().unwrap_or(T0);
        let now = match *now {
            Now::Far => T0.saturating_add(10_000 * 86_400 * SECOND),
            Now::AfterLatest(s) => latest.saturating_add(i64::from(s) * SECOND),
            Now::Exactly(t) => t,
        };
        let expected = self.shadow.expect_score(&samples, now);
        let actual = self.core.score(&samples, now);
        match (expected, actual) {
            (Ok(steps), Ok(batch)) => {
                trace(format_args!("score: {} accepted", steps.len()));
                self.shadow.accept(&samples, &steps, &batch);
            }
            (Err(want), Err(e)) => {
                let message = e.to_string();
                trace(format_args!("score: refused, {message}"));
                assert_eq!(classify(&e), Some(want), "refused with: {message}");
                self.after_refusal(&samples);
            }
            (want, got) => panic!(
                "expected {want:?}, got {:?}\nsamples {samples:?}, now {now}",
                got.map(|b| b.predictions).map_err(|e| e.to_string())
            ),
        }
    }

    /// A refused batch changed nothing: each tracked machine of it still
    /// retries at its last time, and the first one accepts its next sample.
    fn after_refusal(&mut self, samples: &[Sample]) {
        let mut machines: Vec<&str> = samples.iter().map(|s| s.machine_id.as_str()).collect();
        machines.sort_unstable();
        machines.dedup();
        machines.retain(|m| self.shadow.clocks.contains_key(*m));
        let width = self.shadow.width();
        for (n, machine) in machines.iter().enumerate() {
            let last = self.shadow.clocks[*machine].last;
            let retry = Sample {
                machine_id: machine.to_string(),
                time: last,
                values: typical(width),
            };
            self.score_probe(&retry, last, Step::Retry);
            if n == 0 {
                let next = last.checked_add(NEXT_GAP);
                let Some(next) = next.filter(|&t| time_range().contains(t)) else {
                    continue;
                };
                let next = Sample {
                    time: next,
                    ..retry
                };
                self.score_probe(&next, next.time, Step::Advance { new_machine: false });
            }
        }
    }

    fn score_probe(&mut self, sample: &Sample, now: i64, want: Step) {
        let samples = std::slice::from_ref(sample);
        assert_eq!(
            self.shadow.expect_score(samples, now),
            Ok(vec![want]),
            "probe {sample:?}"
        );
        match self.core.score(samples, now) {
            Ok(batch) => self.shadow.accept(samples, &[want], &batch),
            Err(e) => panic!("probe {sample:?} ({want:?}) refused: {e}"),
        }
    }

    fn reset(&mut self, machine: u8) {
        let machine = MACHINES[usize::from(machine) % MACHINES.len()];
        let was_tracked = self.shadow.clocks.remove(machine).is_some();
        self.shadow.answers.remove(machine);
        assert_eq!(
            self.core.reset_machine(machine),
            was_tracked,
            "reset {machine:?}"
        );
        trace(format_args!("reset {machine:?}: was tracked {was_tracked}"));
    }

    fn swap(&mut self, model: u8) {
        let next = usize::from(model) % models().len();
        let spec_changed =
            models()[next].bundle.feature_spec != self.shadow.served().bundle.feature_spec;
        let reset = self
            .core
            .replace_model(copy(&models()[next]))
            .unwrap_or_else(|e| panic!("swap to model {next} failed: {e}"));
        assert_eq!(reset, spec_changed, "swap to model {next}");
        trace(format_args!(
            "swap to model {next}: spec changed {spec_changed}"
        ));
        if spec_changed {
            self.shadow.clocks.clear();
        }
        self.shadow.answers.clear();
        self.shadow.model = next;
        self.shadow.generation += 1;
        assert_eq!(self.core.model().version, models()[next].version);
    }

    fn warm(&mut self, wrong_sensors: bool, generated: &[GenSample]) {
        let samples = self.samples(generated);
        let mut sensors = self.shadow.served().bundle.feature_spec.sensors.clone();
        if wrong_sensors {
            sensors.reverse();
            sensors.push("pressure".into());
        }
        let ids: Vec<&str> = samples.iter().map(|s| s.machine_id.as_str()).collect();
        let columns = sensors
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let column = samples
                    .iter()
                    .map(|s| s.values.get(k).copied().unwrap_or(f64::NAN));
                (name.clone(), column.collect())
            })
            .collect();
        let times = samples.iter().map(|s| s.time).collect();
        let frame = TelemetryFrame::new(&ids, times, columns, None, None)
            .unwrap_or_else(|e| panic!("fuzz setup: frame: {e}"));
        let actual = self.core.warm_from(&frame);
        if wrong_sensors {
            let e = match actual {
                Ok(taken) => panic!("warm-up with the wrong sensors took {taken} samples"),
                Err(e) => e,
            };
            assert!(
                matches!(e, ScoringError::Internal(_)) && e.to_string().contains("sensors"),
                "{e}"
            );
            trace(format_args!("warm: wrong sensors refused"));
            return;
        }
        match (self.expect_warm(&frame), actual) {
            (Ok(want), Ok(taken)) => {
                assert_eq!(taken, want, "samples taken");
                trace(format_args!("warm: {taken} of {} taken", frame.len()));
            }
            (Err(()), Err(e)) => {
                assert!(matches!(e, ScoringError::TooManyMachines { .. }), "{e}");
                trace(format_args!("warm: refused, {e}"));
            }
            (want, got) => panic!("warm-up: expected {want:?}, got {got:?}"),
        }
    }

    /// What `warm_from(frame)` must take, applying it to the shadow as the
    /// core does: per machine, in chunks of the batch limit, skipping what the
    /// live path would refuse or retry; `Err` where the machine bound stops it
    /// (machines before that stay applied).
    fn expect_warm(&mut self, frame: &TelemetryFrame) -> Result<usize, ()> {
        let shadow = &mut self.shadow;
        let mut taken = 0;
        for (machine, range) in frame.machine_ranges() {
            let id = frame.machine_ids()[machine as usize].clone();
            let last = shadow.clocks.get(&id).map(|c| c.last);
            let rows: Vec<usize> = range
                .filter(|&r| last.is_none_or(|t| frame.time()[r] > t))
                .collect();
            for chunk in rows.chunks(shadow.policy.max_batch_samples) {
                let mut clock = shadow.clocks.get(&id).copied();
                let mut kept = 0;
                let mut new_machine = false;
                for &r in chunk {
                    let time = frame.time()[r];
                    let probe = Sample {
                        machine_id: id.clone(),
                        time,
                        values: Vec::new(),
                    };
                    if let Ok(Step::Advance { new_machine: new }) = shadow.step_for(&probe, clock) {
                        new_machine |= new;
                        kept += 1;
                        let first = clock.map_or(time, |c| c.first);
                        clock = Some(Clock { first, last: time });
                    }
                }
                if new_machine && shadow.clocks.len() >= shadow.policy.max_machines {
                    return Err(());
                }
                if let Some(c) = clock.filter(|_| kept > 0) {
                    shadow.clocks.insert(id.clone(), c);
                    shadow.answers.remove(&id);
                }
                taken += kept;
            }
        }
        Ok(taken)
    }

    fn check_counts(&self) {
        let counts = self.core.machine_counts();
        assert_eq!(
            counts,
            self.shadow.counts(),
            "machine_counts (tracked, warm)"
        );
        assert!(counts.0 <= self.shadow.policy.max_machines, "{counts:?}");
    }
}

fuzz_target!(|input: Input| {
    let policy = input.policy.policy();
    let core = ScoringCore::new(copy(&models()[0]), policy.clone())
        .unwrap_or_else(|e| panic!("fuzz setup: core: {e}"));
    let shadow = Shadow {
        policy,
        clocks: HashMap::new(),
        answers: HashMap::new(),
        model: 0,
        generation: 0,
    };
    debug_assert!(KNOWN_MACHINES.iter().all(|m| shadow.knows(m)));
    let mut run = Run { core, shadow };
    for op in &input.ops {
        match op {
            Op::Score { now, samples } => run.score(now, samples),
            Op::Reset { machine } => run.reset(*machine),
            Op::Swap { model } => run.swap(*model),
            Op::Warm {
                wrong_sensors,
                rows,
            } => run.warm(*wrong_sensors == 0, rows),
        }
        run.check_counts();
    }
});
