//! Samplers propose parameter values: [`RandomSampler`] and [`TpeSampler`].
//!
//! A sampler sees the study's history through a [`SampleContext`] and draws from a
//! per-trial [`TrialRng`] (seeded from the sampler's seed and the trial number, so a
//! sequential study is reproducible from its seed).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Direction;
use crate::distributions::Distribution;
use crate::trial::{FrozenTrial, Param, TrialState};

mod random;
mod tpe;

pub use random::RandomSampler;
pub use tpe::{TpeParams, TpeSampler};

/// The random stream of one trial.
#[derive(Debug, Clone)]
pub struct TrialRng(ChaCha8Rng);

impl TrialRng {
    /// The stream for trial `number` of a sampler seeded with `seed`.
    pub fn for_trial(seed: u64, number: u64) -> Self {
        // SplitMix64 of (seed, number): nearby seeds and numbers give unrelated streams.
        let mut z = seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        TrialRng(ChaCha8Rng::seed_from_u64(z))
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in the open interval `(0, 1)`.
    pub fn open_uniform(&mut self) -> f64 {
        loop {
            let u = self.uniform();
            if u > 0.0 {
                return u;
            }
        }
    }

    /// Uniform index in `0..n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// An index drawn with probabilities `weights` (which sum to 1).
    pub fn weighted_index(&mut self, weights: &[f64]) -> usize {
        let u = self.uniform();
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return i;
            }
        }
        weights.len().saturating_sub(1)
    }
}

/// What a sampler may look at when it proposes values for one trial.
#[derive(Debug, Clone, Copy)]
pub struct SampleContext<'a> {
    /// The study's id in its storage (samplers may cache per study).
    pub study_id: u64,
    /// The study's direction.
    pub direction: Direction,
    /// All trials of the study (may include the current one, as `Running`).
    pub trials: &'a [Arc<FrozenTrial>],
    /// Number of the trial being sampled.
    pub trial_number: u64,
    /// Parameters the current trial already has.
    pub trial_params: &'a BTreeMap<String, Param>,
}

impl SampleContext<'_> {
    /// Number of `Complete` and `Pruned` trials (what startup phases count).
    pub fn n_finished_usable(&self) -> usize {
        self.trials
            .iter()
            .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
            .count()
    }
}

/// A strategy for proposing parameter values: [`RandomSampler`] and [`TpeSampler`]
/// implement it.
///
/// A sampler sees the study's history through a [`SampleContext`] and draws from a
/// per-trial [`TrialRng`] (seeded from the sampler's seed and the trial number, so a
/// sequential study is reproducible from its seed).
///
/// Implement [`Sampler::sample_independent`]; joint ("relative") samplers also implement
/// [`Sampler::infer_relative_search_space`] and [`Sampler::sample_relative`].
pub trait Sampler: Send + Sync + fmt::Debug {
    /// The space to sample jointly at the start of a trial (empty: none).
    fn infer_relative_search_space(
        &self,
        _ctx: &SampleContext<'_>,
    ) -> BTreeMap<String, Distribution> {
        BTreeMap::new()
    }

    /// Joint proposal (internal values) over `space`; empty to fall back to
    /// [`Sampler::sample_independent`] for every parameter.
    fn sample_relative(
        &self,
        _ctx: &SampleContext<'_>,
        _space: &BTreeMap<String, Distribution>,
        _rng: &mut TrialRng,
    ) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }

    /// One parameter on its own; returns an internal value of `distribution`.
    fn sample_independent(
        &self,
        ctx: &SampleContext<'_>,
        name: &str,
        distribution: &Distribution,
        rng: &mut TrialRng,
    ) -> f64;

    /// Whether the joint proposal should be stored with the running trial so that other
    /// workers can see it (TPE's constant liar).
    fn publishes_pending_params(&self) -> bool {
        false
    }

    /// The seed this sampler derives per-trial streams from.
    fn seed(&self) -> u64;
}

/// The parameters shared, with identical distributions, by every finished
/// (`Complete` or `Pruned`) trial, without single-valued ones — Optuna's
/// `IntersectionSearchSpace(include_pruned=True)`.
pub fn intersection_search_space(trials: &[Arc<FrozenTrial>]) -> BTreeMap<String, Distribution> {
    let finished: Vec<Arc<FrozenTrial>> = trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
        .cloned()
        .collect();
    let mut space = intersection_search_space_unfiltered(&finished);
    space.retain(|_, d| !d.is_single());
    space
}

/// The intersection over all of `trials`, single-valued parameters included.
pub(crate) fn intersection_search_space_unfiltered(
    trials: &[Arc<FrozenTrial>],
) -> BTreeMap<String, Distribution> {
    let mut space: Option<BTreeMap<String, Distribution>> = None;
    for t in trials {
        match &mut space {
            None => {
                space = Some(
                    t.params
                        .iter()
                        .map(|(k, p)| (k.clone(), p.distribution.clone()))
                        .collect(),
                )
            }
            Some(s) => s.retain(|k, d| t.params.get(k).is_some_and(|p| p.distribution == *d)),
        }
    }
    space.unwrap_or_default()
}

pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::trial::now_unix().to_bits());
    h.finish()
}
