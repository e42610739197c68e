//! serve's HTTP layer in process: the token, limits and hostile input, each a
//! clear 4xx with nothing applied, and the service still answering afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fixtures;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use fixtures::ModelSize;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_examples::scoring::{LoadedModel, ScoringPolicy};
use vigil_examples::serve::{AppState, ServeConfig, router};
use vigil_features::{FeatureSpec, TrainingSet, format_timestamp};

const TOKEN: &str = "s3cret-token";

fn model() -> LoadedModel {
    let sim = fixtures::simulation(2, 0.5, 5);
    fixtures::model_for(&sim, &FeatureSpec::default(), ModelSize::TINY)
}

fn app(config: ServeConfig) -> axum::Router {
    router(Arc::new(AppState::new(model(), config).unwrap()))
}

fn config() -> ServeConfig {
    ServeConfig {
        token: Some(TOKEN.into()),
        max_body_bytes: 64 * 1024,
        policy: ScoringPolicy {
            max_batch_samples: 100,
            ..ScoringPolicy::default()
        },
        ..ServeConfig::default()
    }
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: String,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (status, value)
}

async fn predict(app: &axum::Router, body: Value) -> (StatusCode, Value) {
    send(app, "POST", "/predict", body.to_string(), Some(TOKEN)).await
}

fn minutes_ago(minutes: i64) -> String {
    format_timestamp(Utc::now().timestamp_micros() - minutes * 60_000_000)
}

fn sample(machine: &str, time: &str) -> Value {
    json!({"machine_id": machine, "time": time, "temperature": 70.0, "vibration": 0.5,
           "spindle_speed": 1500.0, "power_consumption": 12.0})
}

#[tokio::test]
async fn the_token_guards_every_route_but_health() {
    let app = app(config());
    let (status, _) = send(&app, "GET", "/health", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, uri) in [
        ("GET", "/model"),
        ("GET", "/metrics"),
        ("POST", "/predict"),
        ("POST", "/machines/M01/reset"),
    ] {
        let (status, answer) = send(&app, method, uri, "{}".into(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {answer}");
        let (status, _) = send(&app, method, uri, "{}".into(), Some("s3cret-tokeX")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let (status, _) = send(&app, "GET", "/model", String::new(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_bodies_get_a_clear_4xx_and_the_service_keeps_answering() {
    let app = app(config());
    let t = minutes_ago(30);
    let big = "x".repeat(70 * 1024);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, "malformed"),
        (
            json!({"samples": "many"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must be an array",
        ),
        (
            json!({"samples": [1, 2]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must be an object",
        ),
        ("[1, 2]".into(), StatusCode::BAD_REQUEST, "malformed"),
        (
            json!({"samples": []}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no samples",
        ),
        (
            format!(
                "{{\"samples\":[{{\"machine_id\":\"M01\",\"time\":\"{t}\",\"temperature\":1e999}}]}}"
            ),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": t, "temperature": "NaN"}]})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "finite number",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": t, "temperature": "inf"}]})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "finite number",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": t, "temperature": [1]}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "finite number",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": t, "temprature": 70}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": 12345}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": "yesterday"}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": "2026-13-01T00:00:00Z"}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": "2026-01-01T00:00:00+25:00"}]})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            json!({"samples": [{"time": t}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "machine_id",
        ),
        (
            json!({"samples": [{"machine_id": "", "time": t}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "machine_id",
        ),
        (
            json!({"samples": [{"machine_id": "M".repeat(500), "time": t}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most 128 bytes",
        ),
        (
            json!({"samples": [sample("nobody", &t)]}).to_string(),
            StatusCode::NOT_FOUND,
            "unknown machine",
        ),
        (
            json!({"samples": [sample("M01", "9999-01-01T00:00:00Z")]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "clock skew",
        ),
        (
            json!({"samples": vec![sample("M01", &t); 101]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most 100",
        ),
        (
            json!({"samples": [{"machine_id": "M01", "time": t, "note": big}]}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "65536 bytes",
        ),
    ];
    for (body, want, says) in cases {
        let (status, answer) = send(&app, "POST", "/predict", body.clone(), Some(TOKEN)).await;
        let shown: String = body.chars().take(120).collect();
        assert_eq!(status, want, "{shown} → {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{shown} → {message:?} should say {says:?}"
        );
    }
    // Nothing was applied: the machine's first sample can still be an old one.
    let (status, answer) =
        predict(&app, json!({"samples": [sample("M01", &minutes_ago(120))]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        send(&app, "GET", "/health", String::new(), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_sensors_are_scored_and_named_retries_repeat_and_close_times_are_refused() {
    let app = app(config());
    let (t0, t1) = (minutes_ago(20), minutes_ago(19));
    let partial = json!({"machine_id": "M01", "time": t0, "temperature": 70.0, "vibration": null, "spindle_speed": 1500.0});
    let (status, answer) = predict(&app, json!({"samples": [partial, sample("M01", &t1)]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let p = &answer["predictions"];
    assert_eq!(
        p[0]["missing_sensors"],
        json!(["vibration", "power_consumption"])
    );
    assert_eq!(p[1]["missing_sensors"], json!([]));
    assert_eq!(p[1]["warm"], false);
    // The same sample again: a retry with the same answer.
    let (status, again) = predict(&app, json!({"samples": [sample("M01", &t1)]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["predictions"][0]["retry"], true);
    assert_eq!(
        again["predictions"][0]["failure_probability"],
        p[1]["failure_probability"]
    );
    // A microsecond later: too close.
    let close = format_timestamp(vigil_features::parse_timestamp(&t1).unwrap() + 1);
    let (status, answer) = predict(&app, json!({"samples": [sample("M01", &close)]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("at least 1000000 µs apart"),
        "{answer}"
    );
    // Older than the last sample.
    let (status, _) = predict(&app, json!({"samples": [sample("M01", &t0)]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn many_distinct_machines_stay_bounded() {
    let app = app(ServeConfig {
        policy: ScoringPolicy {
            allow_new_machines: true,
            max_machines: 1_000,
            max_batch_samples: 1_000,
            ..ScoringPolicy::default()
        },
        max_body_bytes: 1 << 20,
        ..config()
    });
    let t = minutes_ago(5);
    let mut refused = 0;
    for chunk in 0..100 {
        let samples: Vec<Value> = (0..1_000)
            .map(|i| sample(&format!("m{}", chunk * 1_000 + i), &t))
            .collect();
        let (status, answer) = predict(&app, json!({ "samples": samples })).await;
        match status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    answer["error"]
                        .as_str()
                        .unwrap()
                        .contains("at most 1000 machines"),
                    "{answer}"
                );
                refused += 1;
            }
            other => panic!("{other}: {answer}"),
        }
    }
    assert_eq!(
        refused, 99,
        "10^5 distinct ids: the first 1,000 fit, every later batch is refused"
    );
    let (_, metrics) = send(&app, "GET", "/metrics", String::new(), Some(TOKEN)).await;
    let text = metrics.as_str().unwrap();
    assert!(text.contains("vigil_serve_machines_tracked 1000"), "{text}");
    let (status, answer) = send(
        &app,
        "POST",
        "/machines/m7/reset",
        String::new(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["was_tracked"], true);
    let (status, _) = predict(&app, json!({"samples": [sample("fresh", &t)]})).await;
    assert_eq!(status, StatusCode::OK);
}

/// `/metrics` read by the Prometheus project's own Python parser (OpenMetrics).
#[tokio::test]
async fn metrics_parse_with_prometheus_client() {
    let Some(venv) = common::service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let app = app(config());
    let t = minutes_ago(3);
    let (status, _) = predict(
        &app,
        json!({"samples": [sample("M01", &t), sample("M02", &t)]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let _ = predict(&app, json!({"samples": []})).await;
    let request = Request::builder()
        .uri("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        vigil_examples::serve::METRICS_CONTENT_TYPE
    );
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let script = r#"
import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        key = s.name + json.dumps(s.labels, sort_keys=True)
        out[key] = s.value
    out["type:" + family.name] = family.type
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(std::path::Path::new(&venv).join("bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused:\n{}",
        String::from_utf8_lossy(&text)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let get = |k: &str| {
        parsed[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} not in {parsed}"))
    };
    assert_eq!(get(r#"vigil_serve_samples_scored_total{}"#), 2.0);
    assert_eq!(
        get(r#"vigil_serve_requests_total{"route": "/predict", "status": "200"}"#),
        1.0
    );
    assert_eq!(
        get(r#"vigil_serve_requests_total{"route": "/predict", "status": "422"}"#),
        1.0
    );
    assert_eq!(get(r#"vigil_serve_machines_tracked{}"#), 2.0);
    assert_eq!(get(r#"vigil_serve_machines_cold{}"#), 2.0);
    assert_eq!(
        get(r#"vigil_serve_model_info{"name": "", "version": ""}"#),
        1.0
    );
    assert_eq!(
        parsed["type:vigil_serve_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(
        get(r#"vigil_serve_request_duration_seconds_count{"route": "/predict"}"#),
        2.0
    );
}

/// A simulation replayed through HTTP in time order scores every row exactly
/// as the batch path does (sensor dropouts sent as `null`).
#[tokio::test]
async fn replay_over_http_equals_the_batch_path() {
    let sim = fixtures::simulation(2, 0.5, 9);
    let model = model();
    let set = TrainingSet::build(&sim.frame, &model.bundle.feature_spec).unwrap();
    let batch = vigil_examples::bundle::failure_probability(
        &model.bundle.random_forest,
        &set.features.values,
    )
    .unwrap();
    let app = router(Arc::new(AppState::new(model, config()).unwrap()));
    let frame = &sim.frame;
    let sensors = frame.sensor_names().to_vec();
    let mut rows: Vec<usize> = (0..frame.len()).collect();
    rows.sort_by_key(|&r| frame.time()[r]);
    let mut dropouts = 0;
    for chunk in rows.chunks(100) {
        let samples: Vec<Value> = chunk
            .iter()
            .map(|&r| {
                let mut s = serde_json::Map::new();
                s.insert("machine_id".into(), json!(frame.machine_id_of(r)));
                s.insert("time".into(), json!(format_timestamp(frame.time()[r])));
                for (c, name) in sensors.iter().enumerate() {
                    let v = frame.sensor(c)[r];
                    dropouts += usize::from(!v.is_finite());
                    s.insert(
                        name.clone(),
                        if v.is_finite() { json!(v) } else { Value::Null },
                    );
                }
                Value::Object(s)
            })
            .collect();
        let (status, answer) = predict(&app, json!({ "samples": samples })).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        for (&r, p) in chunk.iter().zip(answer["predictions"].as_array().unwrap()) {
            let online = p["failure_probability"].as_f64().unwrap();
            assert!(
                (online - batch[r]).abs() <= 1e-12,
                "row {r}: {online} vs {}",
                batch[r]
            );
        }
    }
    assert!(dropouts > 0, "the replay should include sensor dropouts");
}

/// `"explain": k` returns the top k contributions to the failure
/// probability (all of them add up to it); a bad k is a 422 naming the
/// limit, and the service keeps answering.
#[tokio::test]
async fn explain_returns_contributions_that_add_up_and_bad_counts_are_422() {
    let app = app(config());
    let machine = model().bundle.meta.machines[0].clone();
    let n_features = model().bundle.meta.feature_names.len();
    let (status, answer) = predict(
        &app,
        json!({"samples": [sample(&machine, &minutes_ago(30))], "explain": n_features}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let p = &answer["predictions"][0];
    let x = &p["explanation"];
    let contributions = x["contributions"].as_array().unwrap();
    assert_eq!(contributions.len(), n_features, "{x}");
    let total = x["base_value"].as_f64().unwrap()
        + contributions
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .sum::<f64>();
    let probability = p["failure_probability"].as_f64().unwrap();
    assert!(
        (total - probability).abs() < 1e-9,
        "{total} vs {probability}"
    );
    assert!(contributions[0]["feature"].is_string() && contributions[0].get("value").is_some());

    // One sample object with "explain" in it; the top 2 only.
    let mut single = sample(&machine, &minutes_ago(29));
    single["explain"] = json!(2);
    let (status, answer) = predict(&app, single).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let top = answer["predictions"][0]["explanation"]["contributions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(top, 2);
    // Without "explain", no explanation.
    let (_, answer) = predict(
        &app,
        json!({"samples": [sample(&machine, &minutes_ago(28))]}),
    )
    .await;
    assert!(
        answer["predictions"][0].get("explanation").is_none(),
        "{answer}"
    );

    let limit = format!("1 to {n_features}");
    for (explain, says) in [
        (json!(0), limit.as_str()),
        (json!(n_features + 1), limit.as_str()),
        (json!(1e300), "whole number"),
        (json!(-1), "whole number"),
        (json!("3"), "whole number"),
        (json!(2.5), "whole number"),
    ] {
        let (status, answer) = predict(
            &app,
            json!({"samples": [sample(&machine, &minutes_ago(27))], "explain": explain}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{explain}: {answer}"
        );
        assert!(answer.to_string().contains(says), "{explain}: {answer}");
    }
    // Nothing of the refused requests applied: this sample is new, not a retry.
    let (status, answer) = predict(
        &app,
        json!({"samples": [sample(&machine, &minutes_ago(27))]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["predictions"][0]["retry"], false, "{answer}");
}

#[tokio::test]
async fn drift_window_is_bounded_and_a_model_swap_empties_it() {
    let config = ServeConfig {
        drift_window: vigil_examples::drift::WindowParams {
            max_samples: 100,
            max_age: None,
            min_samples: 20,
        },
        ..config()
    };
    let state = Arc::new(AppState::new(model(), config).unwrap());
    let app = router(Arc::clone(&state));
    let (status, answer) = send(&app, "GET", "/drift", String::new(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, answer) = send(&app, "GET", "/drift", String::new(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer["status"], "pending", "{answer}");
    // 50 minutes of one machine at 10 s: the last 20 minutes are warm.
    let start = Utc::now().timestamp_micros() - 60 * 60_000_000;
    for batch in 0..3 {
        let samples: Vec<Value> = (0..100)
            .map(|i| {
                let t = start + (batch * 100 + i) * 10_000_000;
                sample("M01", &format_timestamp(t))
            })
            .collect();
        let (status, answer) = predict(&app, json!({ "samples": samples })).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(state.drift().window_size(), 100, "bounded at max_samples");
    let checked = state.check_drift().unwrap();
    assert_eq!(checked.window_size(), 100);
    let (status, answer) = send(&app, "GET", "/drift", String::new(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["window_size"], 100);
    assert_eq!(answer["features"].as_array().unwrap().len(), 42);

    // Version 2, a folder from before drift references.
    let mut old = model();
    old.version = "2".into();
    old.bundle.drift_reference = None;
    state.replace(old).unwrap();
    assert_eq!(
        state.drift().window_size(),
        0,
        "the swap empties the window"
    );
    let (_, metrics) = send(&app, "GET", "/metrics", String::new(), Some(TOKEN)).await;
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        !text.contains("vigil_serve_drift_statistic{"),
        "the old version's drift gauges are gone:\n{text}"
    );
    state.check_drift().unwrap();
    let (status, answer) = send(&app, "GET", "/drift", String::new(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer["status"], "no_reference", "{answer}");
    assert_eq!(answer["model_version"], "2");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no drift reference")
    );
}
