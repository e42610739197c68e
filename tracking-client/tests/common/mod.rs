//! Shared helpers for the integration tests: service variables, MLflow servers
//! started by a test, unique names, and MLflow's Python client.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tracking_client::{RetryPolicy, Tracker, TrackingConfig};

/// The value of a service variable, or `None` (printing why) when the harness
/// did not start that service. Panics when services are required.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            if std::env::var("VIGIL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but VIGIL_REQUIRE_SERVICES=1: run scripts/test.sh");
            }
            eprintln!("skipped: {var} not set (run scripts/test.sh to start the services)");
            None
        }
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A tracker for a server URI, with a private spool dir and quick retries.
pub fn server_tracker(uri: &str, spool: &Path) -> Tracker {
    Tracker::new(
        TrackingConfig::builder()
            .uri(uri)
            .unwrap()
            .spool_dir(spool)
            .user("vigil-test")
            .source_name("tracking-client-tests")
            .retry(RetryPolicy {
                max_retries: 3,
                initial_backoff: Duration::from_millis(100),
                ..RetryPolicy::default()
            })
            .build()
            .unwrap(),
    )
    .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `mlflow server` this test started (same flags as scripts/services.sh),
/// stopped when dropped.
pub struct MlflowServer {
    pub venv: PathBuf,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub child: Option<Child>,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    backend: Option<String>,
}

impl MlflowServer {
    /// Starts a server with a sqlite backend in a fresh temp dir.
    pub fn start(venv: &str, extra_args: &[&str], extra_env: &[(&str, &str)]) -> Self {
        let mut s = MlflowServer {
            venv: PathBuf::from(venv),
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            backend: None,
        };
        s.launch();
        s
    }

    /// Starts a server over an existing file store (`MLFLOW_ALLOW_FILE_STORE=true`).
    pub fn start_file_store(venv: &str, mlruns: &Path) -> Self {
        let mut s = MlflowServer {
            venv: PathBuf::from(venv),
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
            extra_args: Vec::new(),
            extra_env: vec![("MLFLOW_ALLOW_FILE_STORE".into(), "true".into())],
            backend: Some(mlruns.display().to_string()),
        };
        s.launch();
        s
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        use std::os::unix::process::CommandExt;
        let dir = self.dir.path();
        std::fs::create_dir_all(dir.join("artifacts")).unwrap();
        let backend = self
            .backend
            .clone()
            .unwrap_or_else(|| format!("sqlite:///{}/mlflow.db", dir.display()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let mut cmd = Command::new(self.venv.join("bin/mlflow"));
        cmd.arg("server")
            .args(["--backend-store-uri", &backend])
            .args([
                "--artifacts-destination",
                &dir.join("artifacts").display().to_string(),
            ])
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--workers", "1"])
            .args(&self.extra_args)
            .current_dir(dir)
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start mlflow server"));
        let deadline = Instant::now() + Duration::from_secs(240);
        let url = format!("{}/health", self.uri());
        loop {
            if ureq::get(&url).call().is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!("mlflow server exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "mlflow server did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Stops the server abruptly (SIGKILL to the whole process group, as a
    /// crash or a pulled plug would) and waits until the port is free.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &pgid])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpListener::bind(("127.0.0.1", self.port)).is_err() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Starts it again on the same port with the same database.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a Python script with MLflow's client; returns stdout (panics with stderr on failure).
pub fn python(venv: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(Path::new(venv).join("bin/python"));
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script),
    )
    .args(args)
    .env("PYTHONWARNINGS", "ignore")
    .env_remove("MLFLOW_TRACKING_URI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
