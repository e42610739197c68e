//! `POST /predict` with arbitrary bodies, against a fresh service per input
//! with small limits. Every answer must be one of the statuses the service
//! documents, with the status the request's token, content type and size call
//! for; a 200 must carry one well-formed prediction per sample; `/health` must
//! answer after every request and `/metrics` after the input, within the
//! machine bound.
//!
//! Input layout: up to four requests separated by 0xFF (a byte that never
//! occurs in UTF-8, so JSON seeds stay readable). Each request is a flag byte,
//! then the body:
//! * bits 0-1, the token: 0-1 the right one, 2 none, 3 a wrong one of the
//!   right length;
//! * bits 2-3, the content type: 0-1 `application/json`, 2 none, 3 `text/plain`;
//! * bit 4: pad the body with spaces (valid trailing JSON whitespace) to exactly
//!   the body limit, or with bit 5 also set to one byte over it.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tokio::runtime::Runtime;
use tower::ServiceExt;
use vigil_examples::scoring::ScoringPolicy;
use vigil_examples::serve::{AppState, ServeConfig, router};
use vigil_examples_fuzz::{copy, reference_model};

const TOKEN: &str = "fuzz-token";
const WRONG_TOKEN: &str = "fuzz-tokeN";
const MAX_BODY: usize = 8 * 1024;
const MAX_SAMPLES: usize = 50;
const MAX_MACHINES: usize = 20;
/// The statuses the service documents for `POST /predict`.
const DOCUMENTED: [u16; 8] = [200, 400, 401, 404, 413, 415, 422, 503];

/// With `VIGIL_FUZZ_TRACE` set, every answer goes to stderr (to see what a
/// corpus reaches: `-runs=0` over it).
fn trace(status: StatusCode, body: &[u8]) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("VIGIL_FUZZ_TRACE").is_some()) {
        let shown: String = String::from_utf8_lossy(body).chars().take(160).collect();
        eprintln!("trace: {} {shown}", status.as_u16());
    }
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzz setup: tokio runtime: {e}"))
    })
}

fn service() -> Router {
    let config = ServeConfig {
        token: Some(TOKEN.into()),
        max_body_bytes: MAX_BODY,
        policy: ScoringPolicy {
            max_batch_samples: MAX_SAMPLES,
            max_machines: MAX_MACHINES,
            allow_new_machines: true,
            shards: 4,
            ..ScoringPolicy::default()
        },
        ..ServeConfig::default()
    };
    let state = AppState::new(copy(reference_model()), config)
        .unwrap_or_else(|e| panic!("fuzz setup: service: {e}"));
    router(Arc::new(state))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Right,
    Missing,
    Wrong,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ContentType {
    Json,
    Missing,
    TextPlain,
}

/// One request decoded from its flag byte and body.
struct PredictRequest {
    token: Token,
    content_type: ContentType,
    body: Vec<u8>,
}

impl PredictRequest {
    fn decode(chunk: &[u8]) -> Option<PredictRequest> {
        let (&flags, body) = chunk.split_first()?;
        let token = match flags & 0b11 {
            0 | 1 => Token::Right,
            2 => Token::Missing,
            _ => Token::Wrong,
        };
        let content_type = match (flags >> 2) & 0b11 {
            0 | 1 => ContentType::Json,
            2 => ContentType::Missing,
            _ => ContentType::TextPlain,
        };
        let mut body = body.to_vec();
        if flags & 0b1_0000 != 0 {
            let target = MAX_BODY + usize::from(flags & 0b10_0000 != 0);
            if body.len() < target {
                body.resize(target, b' ');
            }
        }
        Some(PredictRequest {
            token,
            content_type,
            body,
        })
    }

    fn http(&self) -> Request<Body> {
        let mut request = Request::builder().method("POST").uri("/predict");
        match self.token {
            Token::Right => request = request.header(header::AUTHORIZATION, bearer(TOKEN)),
            Token::Wrong => request = request.header(header::AUTHORIZATION, bearer(WRONG_TOKEN)),
            Token::Missing => {}
        }
        match self.content_type {
            ContentType::Json => request = request.header(header::CONTENT_TYPE, "application/json"),
            ContentType::TextPlain => request = request.header(header::CONTENT_TYPE, "text/plain"),
            ContentType::Missing => {}
        }
        request
            .body(Body::from(self.body.clone()))
            .unwrap_or_else(|e| panic!("fuzz setup: request: {e}"))
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("reading the {status} answer failed: {e}"));
    (status, bytes.to_vec())
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().uri(uri);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, bearer(t));
    }
    request
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("fuzz setup: request: {e}"))
}

/// The status the request must get, as far as it follows from the request
/// alone (the scoring outcome depends on the body's samples).
fn expected_class(request: &PredictRequest) -> Expected {
    if request.token != Token::Right {
        return Expected::Exactly(StatusCode::UNAUTHORIZED);
    }
    if request.content_type != ContentType::Json {
        return Expected::Exactly(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    if request.body.len() > MAX_BODY {
        return Expected::Exactly(StatusCode::PAYLOAD_TOO_LARGE);
    }
    // The same parse as axum's `Json<Map<String, Value>>` (same serde_json).
    match serde_json::from_slice::<Map<String, Value>>(&request.body) {
        Err(_) => Expected::Exactly(StatusCode::BAD_REQUEST),
        Ok(object) => Expected::Scored(object),
    }
}

enum Expected {
    Exactly(StatusCode),
    /// A JSON object: 200 or a refusal of its samples (404, 422, 503).
    Scored(Map<String, Value>),
}

/// The samples a request object holds (`{"samples": [...]}` or one sample).
fn request_samples(object: &Map<String, Value>) -> Vec<Value> {
    match object.get("samples") {
        Some(Value::Array(items)) => items.clone(),
        Some(_) => Vec::new(),
        None => vec![Value::Object(object.clone())],
    }
}

fn check_prediction(sample: &Value, prediction: &Value, i: usize) {
    let want_id = match &sample["machine_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("prediction {i} for a sample whose machine_id is {other}"),
    };
    assert_eq!(
        prediction["machine_id"],
        Value::String(want_id),
        "prediction {i}"
    );
    let p = prediction["failure_probability"].as_f64();
    assert!(
        p.is_some_and(|p| (0.0..=1.0).contains(&p)),
        "prediction {i}: failure_probability {}",
        prediction["failure_probability"]
    );
    let threshold = prediction["threshold"].as_f64();
    assert_eq!(threshold, Some(reference_model().bundle.meta.threshold));
    let failure = p.zip(threshold).map(|(p, t)| p >= t);
    assert_eq!(prediction["failure"].as_bool(), failure, "prediction {i}");
    let anomaly = prediction["anomaly_score"].as_f64();
    assert!(
        anomaly.is_some_and(|a| a > 0.0 && a <= 1.0),
        "prediction {i}: anomaly_score {} outside (0, 1]",
        prediction["anomaly_score"]
    );
    for flag in ["is_anomaly", "warm", "retry"] {
        assert!(prediction[flag].is_boolean(), "prediction {i}: {flag}");
    }
    let sensors = &reference_model().bundle.feature_spec.sensors;
    let missing = prediction["missing_sensors"].as_array();
    assert!(
        missing.is_some_and(|m| m
            .iter()
            .all(|s| s.as_str().is_some_and(|s| sensors.iter().any(|k| k == s)))),
        "prediction {i}: missing_sensors {}",
        prediction["missing_sensors"]
    );
    assert!(
        prediction["time"]
            .as_str()
            .and_then(vigil_features::parse_timestamp)
            .is_some(),
        "prediction {i}: time {}",
        prediction["time"]
    );
}

fn check_answer(request: &PredictRequest, status: StatusCode, body: &[u8]) {
    assert!(
        DOCUMENTED.contains(&status.as_u16()),
        "undocumented status {status}: {}",
        String::from_utf8_lossy(body)
    );
    let answer: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{status}: the answer is not JSON ({e})"));
    match expected_class(request) {
        Expected::Exactly(want) => assert_eq!(status, want, "{answer}"),
        Expected::Scored(object) => {
            let allowed = [200, 404, 422, 503];
            assert!(allowed.contains(&status.as_u16()), "{status}: {answer}");
            if status == StatusCode::OK {
                let samples = request_samples(&object);
                let predictions = answer["predictions"]
                    .as_array()
                    .unwrap_or_else(|| panic!("200 without predictions: {answer}"));
                assert_eq!(predictions.len(), samples.len(), "{answer}");
                assert!((1..=MAX_SAMPLES).contains(&predictions.len()));
                for (i, (s, p)) in samples.iter().zip(predictions).enumerate() {
                    check_prediction(s, p, i);
                }
            }
        }
    }
    if status != StatusCode::OK {
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{status} without an error message: {answer}"
        );
    }
}

async fn check_still_answers(app: &Router) {
    let (status, body) = send(app, get("/health", None)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "/health: {}",
        String::from_utf8_lossy(&body)
    );
}

async fn check_machine_bound(app: &Router) {
    let (status, body) = send(app, get("/metrics", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body);
    let tracked = text
        .lines()
        .find_map(|l| l.strip_prefix("vigil_serve_machines_tracked "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("/metrics without vigil_serve_machines_tracked:\n{text}"));
    assert!(tracked <= MAX_MACHINES as f64, "{tracked} machines tracked");
}

fuzz_target!(|data: &[u8]| {
    let requests: Vec<PredictRequest> = data
        .split(|&b| b == 0xFF)
        .take(4)
        .filter_map(PredictRequest::decode)
        .collect();
    if requests.is_empty() {
        return;
    }
    let app = service();
    runtime().block_on(async {
        for request in &requests {
            let (status, body) = send(&app, request.http()).await;
            trace(status, &body);
            check_answer(request, status, &body);
            check_still_answers(&app).await;
        }
        check_machine_bound(&app).await;
    });
});
