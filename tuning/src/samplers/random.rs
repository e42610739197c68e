//! Uniform random search (also TPE's startup phase and fallback).

use super::{SampleContext, Sampler, TrialRng, random_seed};
use crate::distributions::Distribution;

/// Samples every parameter uniformly in its (log-)range, as Optuna's `RandomSampler`.
#[derive(Debug, Clone)]
pub struct RandomSampler {
    seed: u64,
}

impl RandomSampler {
    /// A sampler with a fixed seed (reproducible).
    pub fn new(seed: u64) -> Self {
        RandomSampler { seed }
    }

    /// A sampler seeded from the clock and the process's hash keys.
    pub fn unseeded() -> Self {
        RandomSampler {
            seed: random_seed(),
        }
    }
}

impl Default for RandomSampler {
    fn default() -> Self {
        Self::unseeded()
    }
}

/// One uniform draw from `distribution` (internal value).
pub(crate) fn sample_uniform(distribution: &Distribution, rng: &mut TrialRng) -> f64 {
    match distribution {
        Distribution::Float {
            low,
            high,
            step: None,
            log,
        } => {
            if *log {
                let (a, b) = (low.ln(), high.ln());
                (a + rng.uniform() * (b - a)).exp().clamp(*low, *high)
            } else {
                (low + rng.uniform() * (high - low)).clamp(*low, *high)
            }
        }
        Distribution::Float {
            low,
            high,
            step: Some(step),
            ..
        } => sample_grid(*low, *high, *step, rng),
        Distribution::Int {
            low,
            high,
            step,
            log,
        } => {
            let (low, high, step) = (*low as f64, *high as f64, *step as f64);
            if *log {
                let (a, b) = ((low - 0.5).ln(), (high + 0.5).ln());
                (a + rng.uniform() * (b - a)).exp().round().clamp(low, high)
            } else {
                sample_grid(low, high, step, rng)
            }
        }
        Distribution::Categorical { choices } => rng.index(choices.len()) as f64,
    }
}

fn sample_grid(low: f64, high: f64, step: f64, rng: &mut TrialRng) -> f64 {
    let (a, b) = (low - step / 2.0, high + step / 2.0);
    let x = a + rng.uniform() * (b - a);
    ((((x - low) / step) + 0.5).floor() * step + low).clamp(low, high)
}

impl Sampler for RandomSampler {
    fn sample_independent(
        &self,
        _ctx: &SampleContext<'_>,
        _name: &str,
        distribution: &Distribution,
        rng: &mut TrialRng,
    ) -> f64 {
        sample_uniform(distribution, rng)
    }

    fn seed(&self) -> u64 {
        self.seed
    }
}
