//! Criterion benches for vigil-tuning: the cost of one TPE suggestion as the study
//! grows (the sampler on a fixed history of the mixed 5-D space), and of random
//! sampling for reference.
//!
//! Default history sizes are 100, 300 and 1000 trials (a 2-core box);
//! `VIGIL_BENCH_TUNING_SIZES=100,1000,3000` chooses others.

#![allow(clippy::expect_used)] // bench setup: a failure there is a broken bench

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vigil_tuning::{
    Direction, ObjectiveResult, RandomSampler, SampleContext, Sampler, Study, TpeSampler, Trial,
    TrialList, TrialRng,
};

fn mixed(t: &mut Trial<'_>) -> ObjectiveResult {
    let x1 = t.suggest_float("x1", -5.0, 5.0)?;
    let x2 = t.suggest_float_log("x2", 1e-4, 1.0)?;
    let n1 = t.suggest_int("n1", 50, 300)?;
    let n2 = t.suggest_int("n2", 3, 20)?;
    let c = t.suggest_categorical("c", &["A", "B", "C"])?;
    let d = match c {
        "A" => 0.5,
        "B" => 0.0,
        _ => 1.0,
    };
    let u = (n1 as f64 - 217.0) / 50.0;
    let v = (n2 as f64 - 7.0) / 4.0;
    Ok(x1 * x1 / 4.0 + (x2.log10() + 2.0).powi(2) + u * u + v * v + u * v + d)
}

/// A finished history of `n` random trials.
fn history(n: usize) -> TrialList {
    let study = Study::builder()
        .sampler(RandomSampler::new(1))
        .build()
        .expect("in-memory study");
    study.optimize(n, None, mixed).expect("in-memory trials");
    study.trials().expect("in-memory trials")
}

fn sizes() -> Vec<usize> {
    std::env::var("VIGIL_BENCH_TUNING_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 300, 1000])
}

fn suggestion_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("tuning_suggest");
    group.sample_size(20);
    let no_params = BTreeMap::new();
    for n in sizes() {
        let trials = history(n);
        let ctx = SampleContext {
            study_id: 0,
            direction: Direction::Minimize,
            trials: &trials,
            trial_number: n as u64,
            trial_params: &no_params,
        };
        for (name, sampler) in [
            ("tpe_multivariate", TpeSampler::new(0)),
            ("tpe_independent", TpeSampler::independent(0)),
        ] {
            let space = sampler.infer_relative_search_space(&ctx);
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                let mut rng = TrialRng::for_trial(0, n as u64);
                b.iter(|| {
                    if space.is_empty() {
                        // Independent: one 1-D TPE step per parameter.
                        let last = trials.last().expect("history");
                        for (pname, p) in &last.params {
                            black_box(sampler.sample_independent(
                                &ctx,
                                pname,
                                &p.distribution,
                                &mut rng,
                            ));
                        }
                    } else {
                        black_box(sampler.sample_relative(&ctx, &space, &mut rng));
                    }
                })
            });
        }
        let random = RandomSampler::new(0);
        let last = trials.last().expect("history");
        group.bench_with_input(BenchmarkId::new("random", n), &n, |b, _| {
            let mut rng = TrialRng::for_trial(0, n as u64);
            b.iter(|| {
                for (pname, p) in &last.params {
                    black_box(random.sample_independent(&ctx, pname, &p.distribution, &mut rng));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, suggestion_cost);
criterion_main!(benches);
