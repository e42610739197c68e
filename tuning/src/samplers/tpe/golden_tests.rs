//! TPE internals and MedianPruner decisions against golden vectors from Optuna 5.0.0
//! (`tests/golden/make_golden.py` writes `tests/golden/golden.json`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::parzen::{Dim, Parzen, default_weights};
use super::{TpeParams, gamma, observations, split_trials};
use crate::Direction;
use crate::distributions::{Choice, Distribution};
use crate::pruners::{MedianPruner, Pruner};
use crate::samplers::{SampleContext, intersection_search_space};
use crate::trial::{FrozenTrial, Param, TrialState};

const GOLDEN: &str = include_str!("../../../tests/golden/golden.json");

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("not a number: {other}"),
        },
        other => panic!("not a number: {other}"),
    }
}

fn dist(v: &Value) -> Distribution {
    match v["type"].as_str().unwrap() {
        "float" => Distribution::Float {
            low: num(&v["low"]),
            high: num(&v["high"]),
            step: v["step"].as_f64(),
            log: v["log"].as_bool().unwrap(),
        },
        "int" => Distribution::Int {
            low: v["low"].as_i64().unwrap(),
            high: v["high"].as_i64().unwrap(),
            step: v["step"].as_i64().unwrap(),
            log: v["log"].as_bool().unwrap(),
        },
        "categorical" => Distribution::Categorical {
            choices: v["choices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| Choice::Str(c.as_str().unwrap().to_owned()))
                .collect(),
        },
        other => panic!("unknown distribution {other}"),
    }
}

fn state(s: &str) -> TrialState {
    TrialState::parse(s).unwrap()
}

fn direction(s: &str) -> Direction {
    match s {
        "minimize" => Direction::Minimize,
        "maximize" => Direction::Maximize,
        other => panic!("direction {other}"),
    }
}

fn intermediate(v: &Value) -> BTreeMap<u64, f64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.parse().unwrap(), num(x)))
        .collect()
}

fn trial(v: &Value) -> Arc<FrozenTrial> {
    let number = v["number"].as_u64().unwrap();
    let mut t = FrozenTrial::new(number, number, state(v["state"].as_str().unwrap()));
    t.value = match &v["value"] {
        Value::Null => None,
        x => Some(num(x)),
    };
    for (name, p) in v["params"].as_object().unwrap() {
        let d = dist(&p["dist"]);
        let internal = num(&p["internal"]);
        t.params.insert(
            name.clone(),
            Param {
                value: d.to_external(internal),
                internal,
                distribution: d,
            },
        );
    }
    t.intermediate_values = intermediate(&v["intermediate"]);
    for (k, x) in v["pending"].as_object().unwrap() {
        t.pending_params.insert(k.clone(), num(x));
    }
    Arc::new(t)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn assert_all_close(what: &str, got: &[f64], want: &[Value], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let w = num(w);
        assert!(close(*g, w, tol), "{what}[{i}]: got {g}, Optuna {w}");
    }
}

fn check_mixture(case: &str, which: &str, p: &Parzen, want: &Value) {
    assert_all_close(
        &format!("{case} {which} weights"),
        &p.weights,
        want["weights"].as_array().unwrap(),
        1e-12,
    );
    for (j, (dim, w)) in p
        .dims
        .iter()
        .zip(want["dims"].as_array().unwrap())
        .enumerate()
    {
        match dim {
            Dim::Numeric { mus, sigmas, .. } => {
                assert_all_close(
                    &format!("{case} {which} dim {j} mu"),
                    mus,
                    w["mu"].as_array().unwrap(),
                    1e-12,
                );
                // Ties take bandwidths in stable order (see make_golden.py).
                assert_all_close(
                    &format!("{case} {which} dim {j} sigma"),
                    sigmas,
                    w["sigma"].as_array().unwrap(),
                    1e-12,
                );
            }
            Dim::Categorical { probs, .. } => {
                let flat: Vec<Value> = w["probs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|row| row.as_array().unwrap().clone())
                    .collect();
                assert_all_close(
                    &format!("{case} {which} dim {j} probs"),
                    probs,
                    &flat,
                    1e-12,
                );
            }
        }
    }
}

#[test]
fn gamma_and_weights_match_optuna() {
    let doc: Value = serde_json::from_str(GOLDEN).unwrap();
    assert_eq!(doc["optuna_version"], "5.0.0");
    for pair in doc["gamma"].as_array().unwrap() {
        let n = pair[0].as_u64().unwrap() as usize;
        assert_eq!(gamma(n) as u64, pair[1].as_u64().unwrap(), "gamma({n})");
    }
    for (m, w) in doc["default_weights"].as_object().unwrap() {
        let m: usize = m.parse().unwrap();
        assert_all_close(
            &format!("default_weights({m})"),
            &default_weights(m),
            w.as_array().unwrap(),
            1e-15,
        );
    }
}

#[test]
fn tpe_split_kernels_and_densities_match_optuna() {
    let doc: Value = serde_json::from_str(GOLDEN).unwrap();
    let cases = doc["tpe_cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    let params = TpeParams::default().parzen();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let exp = &case["expected"];
        let trials: Vec<Arc<FrozenTrial>> = case["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(trial)
            .collect();
        let no_params = BTreeMap::new();
        let ctx = SampleContext {
            study_id: 0,
            direction: direction(case["direction"].as_str().unwrap()),
            trials: &trials,
            trial_number: case["current_number"].as_u64().unwrap(),
            trial_params: &no_params,
        };

        let relative: Vec<String> = intersection_search_space(&trials).into_keys().collect();
        // The sampler's incremental (cached) version agrees.
        let sampler = super::TpeSampler::new(0);
        let cached: Vec<String> =
            crate::samplers::Sampler::infer_relative_search_space(&sampler, &ctx)
                .into_keys()
                .collect();
        assert_eq!(cached, relative, "{name}: cached relative search space");
        let want: Vec<String> = exp["relative_space"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(relative, want, "{name}: relative search space");

        let split = split_trials(&ctx, true);
        let numbers = |v: &[&Arc<FrozenTrial>]| v.iter().map(|t| t.number).collect::<Vec<_>>();
        let want_numbers = |v: &Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            numbers(&split.below),
            want_numbers(&exp["below"]),
            "{name}: below"
        );
        assert_eq!(
            numbers(&split.above),
            want_numbers(&exp["above"]),
            "{name}: above"
        );

        let space: Vec<(String, Distribution)> = case["space"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), dist(v)))
            .collect();
        let names: Vec<&str> = space.iter().map(|(k, _)| k.as_str()).collect();
        let dists: Vec<&Distribution> = space.iter().map(|(_, d)| d).collect();
        let l = Parzen::new(&observations(&split.below, &names), &dists, params);
        let g = Parzen::new(&observations(&split.above, &names), &dists, params);
        check_mixture(name, "l", &l, &exp["l"]);
        check_mixture(name, "g", &g, &exp["g"]);

        let probes: Vec<Vec<f64>> = exp["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_array().unwrap().iter().map(num).collect())
            .collect();
        assert_all_close(
            &format!("{name} log l"),
            &l.log_pdf(&probes),
            exp["log_l"].as_array().unwrap(),
            1e-9,
        );
        assert_all_close(
            &format!("{name} log g"),
            &g.log_pdf(&probes),
            exp["log_g"].as_array().unwrap(),
            1e-9,
        );
    }
}

#[test]
fn median_pruner_decides_as_optuna() {
    let doc: Value = serde_json::from_str(GOLDEN).unwrap();
    let cases = doc["pruner_cases"].as_array().unwrap();
    let mut n_decisions = 0;
    let mut n_pruned = 0;
    for (ci, case) in cases.iter().enumerate() {
        let s = &case["settings"];
        let pruner = MedianPruner {
            n_startup_trials: s["n_startup_trials"].as_u64().unwrap() as usize,
            n_warmup_steps: s["n_warmup_steps"].as_u64().unwrap(),
            interval_steps: s["interval_steps"].as_u64().unwrap(),
            n_min_trials: s["n_min_trials"].as_u64().unwrap() as usize,
        };
        let dir = direction(case["direction"].as_str().unwrap());
        let trials: Vec<Arc<FrozenTrial>> = case["history"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut t =
                    FrozenTrial::new(i as u64, i as u64, state(h["state"].as_str().unwrap()));
                t.intermediate_values = intermediate(&h["intermediate"]);
                Arc::new(t)
            })
            .collect();
        let mut reported = BTreeMap::new();
        for (r, want) in case["reports"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["decisions"].as_array().unwrap())
        {
            reported.insert(r[0].as_u64().unwrap(), num(&r[1]));
            let got = pruner.prune(dir, &trials, &reported);
            let want = want.as_bool().unwrap();
            assert_eq!(
                got,
                want,
                "pruner case {ci} after steps {:?}",
                reported.keys()
            );
            n_decisions += 1;
            n_pruned += usize::from(want);
        }
    }
    // The fixture exercises both answers.
    assert!(
        n_decisions > 100 && n_pruned > 10,
        "{n_pruned}/{n_decisions}"
    );
}
