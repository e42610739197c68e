//! One blocking HTTP connection pool to an MLflow server: JSON calls, artifact
//! streams, error mapping and retries.
//!
//! ureq is synchronous and owns no runtime, so calling it from a tokio worker
//! thread is fine (it blocks that thread like any blocking call would).

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::{MAX_RETRY_AFTER, RetryPolicy, TrackingConfig, clamp_secs};
use crate::error::{Result, TrackingError, is_retryable_status};

/// HTTP methods the MLflow API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

/// Marks a `Retry-After` beyond [`MAX_RETRY_AFTER`]: not waited on.
const RETRY_AFTER_TOO_LONG: Duration = Duration::from_secs(u32::MAX as u64);

/// A failed attempt, with the server's `Retry-After` when it gave one.
struct Failure {
    error: TrackingError,
    retry_after: Option<Duration>,
}

impl From<TrackingError> for Failure {
    fn from(error: TrackingError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// The HTTP side of [`crate::RestStore`].
#[derive(Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    base: String,
    /// The `Authorization` header value; never printed.
    auth: Option<Arc<str>>,
    pub(crate) retry: RetryPolicy,
    request_timeout: Duration,
    min_transfer_rate: u64,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .finish()
    }
}

const USER_AGENT: &str = concat!("vigil-tracking-client/", env!("CARGO_PKG_VERSION"));
/// Largest JSON response read into memory (a 50 000-run search page fits).
const MAX_JSON_BODY: u64 = 512 * 1024 * 1024;

impl Http {
    pub(crate) fn new(base: &str, config: &TrackingConfig) -> Result<Self> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if config.insecure_tls {
            tls = tls.disable_verification(true);
        }
        if let Some(path) = &config.server_cert_path {
            let pem = std::fs::read(path).map_err(|e| TrackingError::io(path, e))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(TrackingError::Config(format!(
                            "MLFLOW_TRACKING_SERVER_CERT_PATH {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
            if certs.is_empty() {
                return Err(TrackingError::Config(format!(
                    "MLFLOW_TRACKING_SERVER_CERT_PATH {} holds no PEM certificate",
                    path.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(config.connect_timeout))
            .tls_config(tls.build())
            .max_idle_connections_per_host(8)
            .build()
            .into();
        Ok(Http {
            agent,
            base: base.trim_end_matches('/').to_string(),
            auth: config
                .credentials
                .as_ref()
                .map(|c| Arc::from(c.header_value().as_str())),
            retry: config.retry.clone(),
            request_timeout: config.request_timeout,
            min_transfer_rate: config.min_transfer_rate,
        })
    }

    /// The server URL (no credentials).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Calls a JSON endpoint with retries. `path` starts with `/api/...`.
    pub(crate) fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        self.retrying(|| self.json_once(method, path, query, body))
    }

    /// Calls a creating endpoint so that a lost response never creates a
    /// duplicate: after a transient failure, `lookup` asks the server whether
    /// the first attempt did land (by a client-generated key) before sending
    /// again.
    pub(crate) fn json_idempotent(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        lookup: impl Fn() -> Result<Option<Value>>,
    ) -> Result<Value> {
        let mut attempt = 0;
        loop {
            let failure = match self.json_once(method, path, &[], Some(body)) {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if !failure.error.is_transient() || attempt >= self.retry.max_retries {
                return Err(failure.error);
            }
            let mut retry_after = failure.retry_after;
            // Did the earlier attempt land? Only a lookup that answers "no"
            // allows sending again: a failing lookup is retried (never
            // followed by a second create), and when the retries run out
            // the lookup's error is returned.
            loop {
                let Some(wait) = self.wait(attempt, retry_after.take()) else {
                    return Err(failure.error);
                };
                std::thread::sleep(wait);
                attempt += 1;
                match lookup() {
                    Ok(Some(found)) => return Ok(found),
                    Ok(None) => break,
                    Err(e) if e.is_transient() && attempt < self.retry.max_retries => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// The wait before the next retry, or `None` to give up now: a server
    /// that asks for more than [`MAX_RETRY_AFTER`] is not waited on (the
    /// caller gets its error, and the run's spool keeps the values).
    fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(ra) if ra > MAX_RETRY_AFTER => None,
            Some(ra) => Some(ra),
            None => Some(self.retry.backoff(attempt)),
        }
    }

    fn retrying<T>(&self, mut f: impl FnMut() -> Result<T, Failure>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(failure) => {
                    if !failure.error.is_transient() || attempt >= self.retry.max_retries {
                        return Err(failure.error);
                    }
                    let Some(wait) = self.wait(attempt, failure.retry_after) else {
                        return Err(failure.error);
                    };
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }

    fn json_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let url = self.url(path);
        let timeout = Some(self.request_timeout);
        let result = match method {
            Method::Get => {
                let mut req = self.agent.get(&url);
                for (k, v) in query {
                    req = req.query(*k, v);
                }
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", &**a);
                }
                req.config().timeout_global(timeout).build().call()
            }
            Method::Post | Method::Delete => {
                let mut req = match method {
                    Method::Post => self.agent.post(&url),
                    _ => self.agent.delete(&url).force_send_body(),
                };
                for (k, v) in query {
                    req = req.query(*k, v);
                }
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", &**a);
                }
                let payload =
                    serde_json::to_vec(body.unwrap_or(&Value::Object(Default::default())))
                        .map_err(|e| TrackingError::Decode {
                            endpoint: path.to_string(),
                            reason: format!("cannot encode request: {e}"),
                        })?;
                req.header("Content-Type", "application/json")
                    .config()
                    .timeout_global(timeout)
                    .build()
                    .send(&payload[..])
            }
        };
        let mut response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(self.status_error(path, &mut response));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_JSON_BODY)
            .read_to_string()
            .map_err(|e| self.transport_error(e))?;
        if text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&text).map_err(|e| {
            Failure::from(TrackingError::Decode {
                endpoint: path.to_string(),
                reason: format!("body is not JSON ({e}): {}", snippet(&text)),
            })
        })
    }

    /// Uploads a file with a timeout that grows with its size.
    pub(crate) fn put_file(&self, path: &str, file: &Path) -> Result<()> {
        let size = std::fs::metadata(file)
            .map_err(|e| TrackingError::io(file, e))?
            .len();
        let timeout = self.transfer_timeout(size);
        self.retrying(|| {
            let f = File::open(file).map_err(|e| TrackingError::io(file, e))?;
            let mut req = self.agent.put(self.url(path));
            if let Some(a) = &self.auth {
                req = req.header("Authorization", &**a);
            }
            let mut response = req
                .header("Content-Type", "application/octet-stream")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(f)
                .map_err(|e| self.transport_error(e))?;
            self.finish_artifact_call(path, &mut response)
        })
    }

    /// Uploads bytes.
    pub(crate) fn put_bytes(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let timeout = self.transfer_timeout(bytes.len() as u64);
        self.retrying(|| {
            let mut req = self.agent.put(self.url(path));
            if let Some(a) = &self.auth {
                req = req.header("Authorization", &**a);
            }
            let mut response = req
                .header("Content-Type", "application/octet-stream")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(bytes)
                .map_err(|e| self.transport_error(e))?;
            self.finish_artifact_call(path, &mut response)
        })
    }

    fn finish_artifact_call(
        &self,
        path: &str,
        response: &mut ureq::http::Response<ureq::Body>,
    ) -> Result<(), Failure> {
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(self.status_error(path, response));
        }
        // Drain so the connection goes back to the pool.
        let _ = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec();
        Ok(())
    }

    /// Streams a file to `dest` (written to `dest.partial`, then renamed, so a
    /// broken transfer never leaves a truncated file under the real name).
    /// `size_hint` (from a listing) sizes the timeout.
    pub(crate) fn get_to_file(
        &self,
        path: &str,
        dest: &Path,
        size_hint: Option<u64>,
    ) -> Result<u64> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
        }
        let partial = dest.with_extension(match dest.extension() {
            Some(ext) => format!("{}.partial", ext.to_string_lossy()),
            None => "partial".to_string(),
        });
        self.retrying(|| {
            let mut req = self.agent.get(self.url(path));
            if let Some(a) = &self.auth {
                req = req.header("Authorization", &**a);
            }
            let mut cfg = req.config().timeout_per_read(Some(self.request_timeout));
            if let Some(size) = size_hint {
                cfg = cfg.timeout_global(Some(self.transfer_timeout(size)));
            }
            let mut response = cfg.build().call().map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(self.status_error(path, &mut response));
            }
            let mut out = File::create(&partial).map_err(|e| TrackingError::io(&partial, e))?;
            let mut reader = response.body_mut().as_reader();
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Failure::from(TrackingError::Connect {
                            uri: self.base.clone(),
                            reason: format!("download of {path} broke off: {e}"),
                        }));
                    }
                };
                out.write_all(&buf[..n])
                    .map_err(|e| TrackingError::io(&partial, e))?;
                total += n as u64;
            }
            out.flush().map_err(|e| TrackingError::io(&partial, e))?;
            Ok(total)
        })
        .and_then(|total| {
            std::fs::rename(&partial, dest).map_err(|e| TrackingError::io(dest, e))?;
            Ok(total)
        })
    }

    fn transfer_timeout(&self, size: u64) -> Duration {
        // A huge file at a slow rate gets a long, but finite, timeout.
        let transfer = size as f64 / self.min_transfer_rate.max(1) as f64;
        self.request_timeout
            .saturating_add(clamp_secs(transfer, Duration::from_secs(u32::MAX as u64)))
    }

    fn transport_error(&self, e: ureq::Error) -> Failure {
        Failure::from(TrackingError::Connect {
            uri: self.base.clone(),
            reason: e.to_string(),
        })
    }

    fn status_error(&self, path: &str, response: &mut ureq::http::Response<ureq::Body>) -> Failure {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            // NaN or negative: no wait. Longer than MAX_RETRY_AFTER (1e20,
            // inf): `wait` gives up at once. Never a panic.
            .map(|s| {
                if s > MAX_RETRY_AFTER.as_secs_f64() {
                    RETRY_AFTER_TOO_LONG
                } else {
                    clamp_secs(s, MAX_RETRY_AFTER)
                }
            });
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        let error = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) if map.contains_key("error_code") => TrackingError::Api {
                status,
                error_code: map
                    .get("error_code")
                    .and_then(Value::as_str)
                    .unwrap_or("UNKNOWN")
                    .to_string(),
                message: map
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                endpoint: path.to_string(),
            },
            _ => TrackingError::Http {
                status,
                endpoint: path.to_string(),
                body: snippet(&text),
            },
        };
        let retry_after = if is_retryable_status(status) {
            retry_after
        } else {
            None
        };
        Failure { error, retry_after }
    }
}

/// The first 300 characters of a body, on one line.
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = one_line.chars().take(300).collect();
    if s.len() < one_line.len() {
        s.push('…');
    }
    s
}

/// Percent-encodes a relative path for a URL, segment by segment.
pub(crate) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in seg.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("model/my file.txt"), "model/my%20file.txt");
        assert_eq!(encode_path("a/é"), "a/%C3%A9");
        assert_eq!(encode_path("1/abc/artifacts"), "1/abc/artifacts");
    }

    #[test]
    fn snippets_are_short_single_lines() {
        let html = "<!doctype html>\n<html>\n<title>405 Method Not Allowed</title>";
        assert_eq!(
            snippet(html),
            "<!doctype html> <html> <title>405 Method Not Allowed</title>"
        );
        assert!(snippet(&"x".repeat(1000)).chars().count() <= 301);
    }
}
