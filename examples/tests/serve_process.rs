//! The `serve` binary as a process, on a model the `pipeline` binary registered
//! in a local tracking store: the token, the refusal to expose an open service,
//! a slow client cut off, and a graceful SIGTERM (in-flight request answered,
//! new connections refused).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn train(store: &Path, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args([
            "--machines",
            "2",
            "--days",
            "2",
            "--trials",
            "1",
            "--max-samples-per-tree",
            "3000",
        ])
        .arg("--output-dir")
        .arg(out)
        .env("MLFLOW_TRACKING_URI", store)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(store: &Path, scratch: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args([
            "--port",
            "0",
            "--model-uri",
            "models:/predictive_maintenance_model/1",
        ])
        .arg("--scratch-dir")
        .arg(scratch)
        .args(extra)
        .env("MLFLOW_TRACKING_URI", store)
        .env_remove("VIGIL_SERVE_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// One HTTP/1.1 request on a fresh connection; the status code and body.
fn http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
    )
}

#[test]
fn serve_binary_guards_limits_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("mlruns");
    train(&store, &dir.path().join("out"));
    let scratch = dir.path().join("scratch");

    // An open service beyond loopback is refused before anything loads.
    let refused = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--host", "0.0.0.0", "--port", "0"])
        .env("MLFLOW_TRACKING_URI", &store)
        .env_remove("VIGIL_SERVE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without a token"));

    let server = start(
        &store,
        &scratch,
        &["--token", "t0k3n", "--header-timeout", "1s"],
    );
    let addr = server.addr.clone();
    assert_eq!(get(&addr, "/health", None).0, 200);
    assert_eq!(get(&addr, "/model", None).0, 401);
    let (status, body) = get(&addr, "/model", Some("t0k3n"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"version\":\"1\""), "{body}");

    // A client that never finishes its headers is cut off after the header timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "slow client held the connection"
    );
    assert_eq!(get(&addr, "/health", None).0, 200);

    // SIGTERM during a request: it is answered; then the server exits 0.
    let body = r#"{"samples": []}"#;
    let mut in_flight = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k3n\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).unwrap();
    in_flight.write_all(&body.as_bytes()[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    in_flight.write_all(&body.as_bytes()[5..]).unwrap();
    let mut answer = String::new();
    in_flight
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    in_flight.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still accepting after shutdown"
    );
}
