//! Faults the real server cannot produce on demand — lost responses, 503s,
//! 429s — injected by a small proxy in front of the REAL MLflow server, so
//! what lands is checked in the real store.

// Helper fns outside #[test] may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::{server_tracker, service, unique};
use vigil_tracking_client::{
    CreateModelVersion, CreateRun, FAILURE_REASON_TAG, Metric, REQUEST_ID_TAG, RunOptions,
    RunSearch, RunStatus, TrackingError, ViewType,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Answer 503 without forwarding.
    Unavailable,
    /// Answer 429 with `Retry-After: 0` without forwarding.
    TooMany,
    /// Answer 401 (plain text) without forwarding.
    Unauthorized,
    /// Answer 503 with `Retry-After: 1e20` without forwarding.
    HugeRetryAfter,
    /// Forward, let the server act, then drop the connection without an answer.
    LoseResponse,
}

#[derive(Default)]
struct State {
    /// (path fragment, fault, times left)
    rules: Vec<(String, Fault, usize)>,
    /// Every request path seen.
    seen: Vec<String>,
}

struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = Arc::clone(&st);
                let up = upstream.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &st);
                });
            }
        });
        Proxy { port, state }
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn inject(&self, path: &str, fault: Fault, times: usize) {
        self.state
            .lock()
            .unwrap()
            .rules
            .push((path.to_string(), fault, times));
    }

    fn count(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|p| p.contains(path))
            .count()
    }
}

fn serve(conn: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut client = conn;
    loop {
        let mut head = Vec::new();
        let mut content_length = 0usize;
        let mut request_line = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if request_line.is_empty() {
                request_line = line.clone();
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("connection:") {
                continue;
            }
            head.extend_from_slice(line.as_bytes());
        }
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body)?;
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let fault = {
            let mut st = state.lock().unwrap();
            st.seen.push(path.clone());
            let mut hit = None;
            for rule in st.rules.iter_mut() {
                if rule.2 > 0 && path.contains(&rule.0) {
                    rule.2 -= 1;
                    hit = Some(rule.1);
                    break;
                }
            }
            hit
        };
        let canned = |status: &str, extra: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        match fault {
            Some(Fault::Unavailable) => {
                client.write_all(
                    canned("503 Service Unavailable", "", "upstream unavailable").as_bytes(),
                )?;
                continue;
            }
            Some(Fault::TooMany) => {
                client.write_all(
                    canned("429 Too Many Requests", "Retry-After: 0\r\n", "slow down").as_bytes(),
                )?;
                continue;
            }
            Some(Fault::HugeRetryAfter) => {
                client.write_all(
                    canned(
                        "503 Service Unavailable",
                        "Retry-After: 1e20\r\n",
                        "come back later",
                    )
                    .as_bytes(),
                )?;
                continue;
            }
            Some(Fault::Unauthorized) => {
                client.write_all(
                    canned(
                        "401 Unauthorized",
                        "WWW-Authenticate: Basic realm=\"mlflow\"\r\n",
                        "You are not authenticated. Please see the docs.",
                    )
                    .as_bytes(),
                )?;
                continue;
            }
            _ => {}
        }
        let mut up = TcpStream::connect(upstream)?;
        up.write_all(&head)?;
        up.write_all(b"Connection: close\r\n\r\n")?;
        up.write_all(&body)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;
        if fault == Some(Fault::LoseResponse) {
            // The server acted; the client never hears about it.
            return Ok(());
        }
        client.write_all(&response)?;
        return Ok(()); // the upstream said Connection: close
    }
}

#[test]
fn a_lost_create_response_never_makes_a_duplicate_run() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let proxy = Proxy::start(&uri);
    let t = server_tracker(&proxy.uri(), tmp.path());
    let exp = t.get_or_create_experiment(&unique("lost-run")).unwrap();
    proxy.inject("/runs/create", Fault::LoseResponse, 1);
    let run = t
        .store()
        .create_run(&CreateRun {
            experiment_id: exp.experiment_id.clone(),
            run_name: Some("only-once".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        proxy.count("/runs/create"),
        1,
        "the lookup found it: no second create"
    );
    let all = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    assert_eq!(all.len(), 1, "exactly one run exists");
    assert_eq!(all[0].info.run_id, run.info.run_id);
    assert!(all[0].tag(REQUEST_ID_TAG).is_some());
}

#[test]
fn a_lost_model_version_response_never_makes_a_duplicate_version() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let proxy = Proxy::start(&uri);
    let t = server_tracker(&proxy.uri(), tmp.path());
    let exp = t.get_or_create_experiment(&unique("lost-version")).unwrap();
    let run = t
        .start_run(vigil_tracking_client::RunOptions::new(&exp.experiment_id))
        .unwrap();
    let name = unique("lost_model");
    proxy.inject("/registered-models/create", Fault::LoseResponse, 1);
    t.store().create_registered_model(&name, None, &[]).unwrap();
    proxy.inject("/model-versions/create", Fault::LoseResponse, 1);
    let v = t
        .store()
        .create_model_version(&CreateModelVersion {
            name: name.clone(),
            source: format!("{}/model", run.artifact_uri()),
            run_id: Some(run.run_id().to_string()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v.version, "1");
    assert_eq!(proxy.count("/model-versions/create"), 1);
    let versions = t
        .store()
        .search_model_versions(Some(&format!("name = '{name}'")), 100, None)
        .unwrap();
    assert_eq!(versions.items.len(), 1, "exactly one version exists");
    run.finish().unwrap();
}

#[test]
fn transient_statuses_are_retried_and_lost_batches_land_once() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let proxy = Proxy::start(&uri);
    let t = server_tracker(&proxy.uri(), tmp.path());
    let exp = t.get_or_create_experiment(&unique("flaky")).unwrap();
    let run = t
        .start_run(vigil_tracking_client::RunOptions::new(&exp.experiment_id))
        .unwrap();
    let before = proxy.count("/runs/log-batch");
    proxy.inject("/runs/log-batch", Fault::Unavailable, 1);
    proxy.inject("/runs/log-batch", Fault::TooMany, 1);
    proxy.inject("/runs/log-batch", Fault::LoseResponse, 1);
    let points: Vec<Metric> = (0..50).map(|i| Metric::new("m", i as f64, i)).collect();
    t.store()
        .log_batch(run.run_id(), &points, &[], &[])
        .unwrap();
    assert_eq!(
        proxy.count("/runs/log-batch") - before,
        4,
        "503, 429, lost, ok"
    );
    let history = t.store().get_metric_history(run.run_id(), "m").unwrap();
    assert_eq!(history.len(), 50, "the batch sent twice is stored once");

    // 401 is not transient: no retry, a typed error with the text body.
    proxy.inject("/experiments/get", Fault::Unauthorized, 1);
    let before = proxy.count("/experiments/get");
    let err = t.store().get_experiment(&exp.experiment_id).unwrap_err();
    assert_eq!(proxy.count("/experiments/get") - before, 1);
    match &err {
        TrackingError::Http { status, body, .. } => {
            assert_eq!(*status, 401);
            assert!(body.contains("not authenticated"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Too many failures: the error says what happened.
    proxy.inject("/runs/get", Fault::Unavailable, 10);
    let err = t.store().get_run(run.run_id()).unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_transient());
    run.finish().unwrap();
}

#[test]
fn a_lost_create_response_then_failing_lookups_never_make_a_second_run() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let proxy = Proxy::start(&uri);
    let t = server_tracker(&proxy.uri(), tmp.path());
    let exp = t
        .get_or_create_experiment(&unique("lost-run-lookup"))
        .unwrap();
    proxy.inject("/runs/create", Fault::LoseResponse, 1);
    // The client retries 3 times: the first lookup fails all 4 of its
    // attempts, the second fails twice and then finds the run.
    proxy.inject("/runs/search", Fault::Unavailable, 6);
    let run = t
        .store()
        .create_run(&CreateRun {
            experiment_id: exp.experiment_id.clone(),
            run_name: Some("only-once".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(proxy.count("/runs/create"), 1, "never sent a second create");
    assert!(proxy.count("/runs/search") >= 7, "the lookups were retried");
    let all = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    assert_eq!(all.len(), 1, "exactly one run exists");
    assert_eq!(all[0].info.run_id, run.info.run_id);
}

/// `start_run` gives up (the create's answer lost, every lookup failing):
/// the run it may have created is not left RUNNING — the spool written
/// before the create lets the next replay find it by its key and end it.
#[test]
fn a_run_whose_creation_failed_halfway_is_found_and_ended_by_the_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let proxy = Proxy::start(&uri);
    let t = server_tracker(&proxy.uri(), tmp.path());
    let exp = t.get_or_create_experiment(&unique("half-created")).unwrap();
    proxy.inject("/runs/create", Fault::LoseResponse, 1);
    proxy.inject("/runs/search", Fault::Unavailable, 100);
    let err = t
        .start_run(RunOptions::new(&exp.experiment_id).name("half"))
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    {
        // The rules are consumed in order: clear the rest of the failing lookups.
        let mut st = proxy.state.lock().unwrap();
        st.rules.clear();
    }
    let report = t.replay_spools().unwrap();
    assert_eq!(report.runs_failed.len(), 1, "{report:?}");
    let all = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    assert_eq!(all.len(), 1, "exactly one run exists");
    assert_eq!(all[0].info.run_id, report.runs_failed[0].0);
    assert_eq!(all[0].info.status, RunStatus::Failed);
    assert!(all[0].tag(FAILURE_REASON_TAG).is_some());
    assert_eq!(proxy.count("/runs/create"), 1, "never sent a second create");
}

#[test]
fn a_huge_retry_after_is_an_error_not_a_panic_or_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let proxy = Proxy::start(&uri);
    let t = server_tracker(&proxy.uri(), tmp.path());
    let exp = t.get_or_create_experiment(&unique("retry-after")).unwrap();
    let run = t
        .start_run(vigil_tracking_client::RunOptions::new(&exp.experiment_id).name("huge-wait"))
        .unwrap();
    proxy.inject("/runs/log-batch", Fault::HugeRetryAfter, 1000);
    run.log_metric("m", 1.0).unwrap();
    // flush() must come back (the bound is generous for a shared machine;
    // the call itself does one request and gives up).
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = run.flush();
        let _ = tx.send(r.map_err(|e| e.to_string()));
        run
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("flush() returned within 5 s");
    let err = result.expect_err("the value was not delivered");
    assert!(err.contains("503"), "{err}");
    let run = waiter.join().expect("no panic in the flusher");
    // The server is back: the spooled value lands on finish.
    proxy.state.lock().unwrap().rules.clear();
    let run_id = run.run_id().to_string();
    run.finish().unwrap();
    let history = t.store().get_metric_history(&run_id, "m").unwrap();
    assert_eq!(history.len(), 1);
}
