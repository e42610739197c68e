//! Replay driver for `benches/compare/tuning/replay.py`: given one study history (JSON on
//! stdin), prints the parameters vigil's TPE proposes for the next trial under sampler
//! seeds `0..seeds`, one JSON object per line (internal values). The Python side asks
//! Optuna the same question, so the two next-trial distributions can be compared on an
//! identical history.
//!
//! ```text
//! tuning_replay <seeds> [tpe|tpe-independent] < history.json
//! ```
//! history.json: `{"space": {"x": {"type": "float", "low": 0, "high": 1, "log": false,
//! "step": null}, "c": {"type": "categorical", "n_choices": 3}, ...}, "trials":
//! [{"number": 0, "state": "COMPLETE", "value": 1.2, "params": {"x": 0.3, "c": 1}}, ...]}`
//! (internal values: the choice index for categoricals). Every param is proposed in the
//! order of `space` (alphabetical).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line driver: its output is the point

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use vigil_tuning::{
    Direction, Distribution, FrozenTrial, SampleContext, Sampler, TpeSampler, TrialRng, TrialState,
};

fn distribution(
    name: &str,
    v: &serde_json::Value,
) -> Result<Distribution, Box<dyn std::error::Error>> {
    let f = |k: &str| v[k].as_f64().ok_or_else(|| format!("{name}: {k} missing"));
    let log = v["log"].as_bool().unwrap_or(false);
    Ok(match v["type"].as_str().unwrap_or("") {
        "float" => Distribution::float_with(name, f("low")?, f("high")?, v["step"].as_f64(), log)?,
        "int" => Distribution::int_with(
            name,
            f("low")? as i64,
            f("high")? as i64,
            v["step"].as_i64().unwrap_or(1),
            log,
        )?,
        "categorical" => {
            let n = v["n_choices"].as_u64().ok_or("n_choices missing")?;
            Distribution::categorical(name, (0..n as i64).map(Into::into).collect())?
        }
        other => return Err(format!("{name}: unknown type {other}").into()),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let independent = args.get(2).is_some_and(|s| s == "tpe-independent");
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let doc: serde_json::Value = serde_json::from_str(&input)?;
    let mut space = BTreeMap::new();
    for (name, v) in doc["space"].as_object().ok_or("space missing")? {
        space.insert(name.clone(), distribution(name, v)?);
    }
    let rows = doc["trials"].as_array().ok_or("trials missing")?;
    let mut trials = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let number = row["number"].as_u64().unwrap_or(i as u64);
        let state = match row["state"].as_str().unwrap_or("COMPLETE") {
            "COMPLETE" => TrialState::Complete,
            "PRUNED" => TrialState::Pruned,
            "FAIL" => TrialState::Fail,
            "RUNNING" => TrialState::Running,
            other => return Err(format!("state {other}").into()),
        };
        let mut params = BTreeMap::new();
        if let Some(obj) = row["params"].as_object() {
            for (name, v) in obj {
                let internal = v.as_f64().ok_or("param values must be numbers")?;
                let distribution = space.get(name).ok_or("unknown param")?.clone();
                params.insert(
                    name.clone(),
                    vigil_tuning::Param {
                        value: distribution.to_external(internal),
                        internal,
                        distribution,
                    },
                );
            }
        }
        trials.push(Arc::new(FrozenTrial {
            trial_id: number,
            number,
            state,
            value: row["value"].as_f64(),
            params,
            intermediate_values: BTreeMap::new(),
            user_attrs: BTreeMap::new(),
            fixed_params: BTreeMap::new(),
            pending_params: BTreeMap::new(),
            fail_reason: None,
            datetime_start: None,
            datetime_complete: None,
        }));
    }
    let next = trials.len() as u64;
    let no_params = BTreeMap::new();
    for seed in 0..seeds {
        let sampler = if independent {
            TpeSampler::independent(seed)
        } else {
            TpeSampler::new(seed)
        };
        let ctx = SampleContext {
            study_id: 0,
            direction: Direction::Minimize,
            trials: &trials,
            trial_number: next,
            trial_params: &no_params,
        };
        let mut rng = TrialRng::for_trial(seed, next);
        let rel_space = sampler.infer_relative_search_space(&ctx);
        let mut out = sampler.sample_relative(&ctx, &rel_space, &mut rng);
        for (name, d) in &space {
            if !out.contains_key(name) {
                let v = sampler.sample_independent(&ctx, name, d, &mut rng);
                out.insert(name.clone(), v);
            }
        }
        println!("{}", serde_json::to_string(&out)?);
    }
    Ok(())
}
