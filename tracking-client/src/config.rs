//! Where to track and how: read from MLflow's own environment variables, or
//! built explicitly.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, TrackingError};

/// Where runs go.
#[derive(Clone, PartialEq, Eq)]
pub enum TrackingUri {
    /// An MLflow tracking server (`http://` or `https://`), without user info.
    Server(String),
    /// A local directory in MLflow's file-store layout (`./mlruns` by default).
    Local(PathBuf),
}

impl fmt::Debug for TrackingUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TrackingUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackingUri::Server(url) => f.write_str(url),
            TrackingUri::Local(path) => write!(f, "file://{}", path.display()),
        }
    }
}

impl TrackingUri {
    /// Parses a tracking URI. Credentials in the URI (`http://user:pw@host`)
    /// are split off and returned separately so the URI can be shown.
    pub fn parse(uri: &str) -> Result<(TrackingUri, Option<Credentials>)> {
        let uri = uri.trim();
        if uri.is_empty() {
            return Ok((TrackingUri::Local(PathBuf::from("mlruns")), None));
        }
        let lower = uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let scheme_end = uri.find("://").map(|i| i + 3).unwrap_or(0);
            let rest = &uri[scheme_end..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            let (creds, host) = match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    let (user, pw) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                    (
                        Some(Credentials::Basic {
                            username: percent_decode(user),
                            password: Secret(percent_decode(pw)),
                        }),
                        &authority[at + 1..],
                    )
                }
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(TrackingError::Config(format!(
                    "tracking URI {}{} has no host",
                    &uri[..scheme_end],
                    &rest[authority_end..]
                )));
            }
            let path = rest[authority_end..].trim_end_matches('/');
            let base = format!(
                "{}{}{}",
                &uri[..scheme_end].to_ascii_lowercase(),
                host,
                path
            );
            return Ok((TrackingUri::Server(base), creds));
        }
        if let Some(path) = uri.strip_prefix("file://") {
            return Ok((TrackingUri::Local(PathBuf::from(path)), None));
        }
        if let Some(path) = uri.strip_prefix("file:") {
            return Ok((TrackingUri::Local(PathBuf::from(path)), None));
        }
        if uri.contains("://") || lower.starts_with("databricks") || lower.starts_with("sqlite:") {
            let scheme = uri.split(':').next().unwrap_or("");
            return Err(TrackingError::Config(format!(
                "unsupported tracking URI scheme {scheme:?}: use http(s):// for a server or a path / file: URI for a local store"
            )));
        }
        Ok((TrackingUri::Local(PathBuf::from(uri)), None))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A string that never shows itself in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to authenticate to the server.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP basic auth (MLflow's `--app-name basic-auth`).
    Basic {
        /// User name.
        username: String,
        /// Password (never shown).
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` header value.
    pub(crate) fn header_value(&self) -> String {
        match self {
            Credentials::Basic { username, password } => {
                format!(
                    "Basic {}",
                    base64(format!("{username}:{}", password.0).as_bytes())
                )
            }
            Credentials::Bearer(token) => format!("Bearer {}", token.0),
        }
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The longest timeout or wait this crate accepts from configuration (one
/// hour): a longer `MLFLOW_HTTP_REQUEST_TIMEOUT` or builder value is a
/// [`TrackingError::Config`] error, never an overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest `Retry-After` honoured (60 s); a server asking for more is
/// waited on for this long, then retried as usual.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `secs` as a [`Duration`], clamped into `0..=max`; NaN and negative values
/// are zero. Never panics (unlike `Duration::from_secs_f64`).
pub(crate) fn clamp_secs(secs: f64, max: Duration) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    if secs >= max.as_secs_f64() {
        return max;
    }
    Duration::from_secs_f64(secs)
}

/// A configured number of seconds, checked: finite, > 0 and at most
/// [`MAX_TIMEOUT`]. `what` names the variable or field in the error.
fn duration_from_secs(what: &str, secs: f64) -> Result<Duration> {
    if !(secs.is_finite() && secs > 0.0) {
        return Err(TrackingError::Config(format!(
            "{what}={secs} must be a finite number of seconds > 0"
        )));
    }
    if secs > MAX_TIMEOUT.as_secs_f64() {
        return Err(TrackingError::Config(format!(
            "{what}={secs} is longer than the maximum of {} s",
            MAX_TIMEOUT.as_secs()
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Checks a configured duration is within `(0, MAX_TIMEOUT]`.
fn check_duration(what: &str, d: Duration) -> Result<()> {
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err(TrackingError::Config(format!(
            "{what} must be > 0 and at most {} s, not {d:?}",
            MAX_TIMEOUT.as_secs()
        )));
    }
    Ok(())
}

/// Retries with exponential backoff and full jitter on connection errors,
/// 408, 429 and 5xx (the statuses MLflow's Python client retries).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 5 (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`).
    pub max_retries: u32,
    /// Wait before the first retry. Default 250 ms.
    pub initial_backoff: Duration,
    /// Growth per retry. Default 2 (`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`).
    pub backoff_factor: f64,
    /// Longest single wait. Default 10 s.
    pub max_backoff: Duration,
    /// Fraction of each wait that is randomised (0..=1). Default 0.5.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(250),
            backoff_factor: 2.0,
            max_backoff: Duration::from_secs(10),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// The wait before retry number `attempt` (0-based), jittered. Never
    /// longer than `max_backoff` (itself capped at [`MAX_TIMEOUT`]), whatever
    /// the fields hold.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = if self.backoff_factor.is_finite() {
            self.backoff_factor.max(1.0)
        } else {
            1.0
        };
        let base = self.initial_backoff.as_secs_f64() * factor.powi(attempt.min(64) as i32);
        let capped = base.min(self.max_backoff.min(MAX_TIMEOUT).as_secs_f64());
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let random = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
        clamp_secs(capped * (1.0 - jitter + jitter * random), MAX_TIMEOUT)
    }

    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<()> {
        if !(self.backoff_factor.is_finite() && self.backoff_factor >= 1.0) {
            return Err(TrackingError::Config(
                "retry backoff_factor must be >= 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(TrackingError::Config(
                "retry jitter must be within 0..=1".into(),
            ));
        }
        if self.max_backoff > MAX_TIMEOUT || self.initial_backoff > MAX_TIMEOUT {
            return Err(TrackingError::Config(format!(
                "retry backoffs must be at most {} s",
                MAX_TIMEOUT.as_secs()
            )));
        }
        Ok(())
    }
}

/// When buffered values are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// Flush as soon as this many values wait. Default 1000 (one full request).
    pub max_items: usize,
    /// Flush values older than this. Default 2 s.
    pub max_age: Duration,
    /// Off: every log call is sent at once (slow; for debugging). Default on.
    pub enabled: bool,
    /// Metric-only batches sent concurrently. MLflow's server spends ~0.2 s
    /// on each 1000-metric request, and overlapping requests roughly triples
    /// throughput even against a one-worker server. Default 4.
    pub max_in_flight: usize,
    /// When the write-ahead spool reaches the disk. Default every 200 ms
    /// (`VIGIL_TRACKING_SPOOL_FSYNC_MS`; 0 = every call).
    pub spool_sync: SpoolSync,
}

/// When the write-ahead spool is fsynced. Every logged value is written to the
/// spool before its log call returns, so a killed process loses nothing either
/// way; this bounds what a power loss can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolSync {
    /// fsync in every log call (slow: a disk flush per value).
    EveryCall,
    /// fsync once the oldest unsynced value is this old: a power loss loses at
    /// most this window. At most [`MAX_SPOOL_SYNC_INTERVAL`].
    Every(Duration),
}

/// The longest accepted [`SpoolSync::Every`] interval.
pub const MAX_SPOOL_SYNC_INTERVAL: Duration = Duration::from_secs(60);

impl SpoolSync {
    /// The default: every 200 ms.
    pub const DEFAULT: SpoolSync = SpoolSync::Every(Duration::from_millis(200));

    /// From milliseconds (0 = every call); over a minute is a config error.
    pub fn from_millis(ms: u64) -> Result<Self> {
        match Duration::from_millis(ms) {
            d if d.is_zero() => Ok(SpoolSync::EveryCall),
            d if d > MAX_SPOOL_SYNC_INTERVAL => Err(TrackingError::Config(format!(
                "a spool fsync interval of {ms} ms is over the maximum of {} s",
                MAX_SPOOL_SYNC_INTERVAL.as_secs()
            ))),
            d => Ok(SpoolSync::Every(d)),
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_items: 1000,
            max_age: Duration::from_secs(2),
            enabled: true,
            max_in_flight: 4,
            spool_sync: SpoolSync::DEFAULT,
        }
    }
}

/// Everything a [`crate::Tracker`] needs. Build it with [`TrackingConfig::from_env`]
/// or [`TrackingConfig::builder`].
#[derive(Debug, Clone)]
pub struct TrackingConfig {
    /// Where runs go.
    pub uri: TrackingUri,
    /// Authentication for a server.
    pub credentials: Option<Credentials>,
    /// Skip TLS certificate verification (`MLFLOW_TRACKING_INSECURE_TLS`).
    pub insecure_tls: bool,
    /// A PEM CA bundle to trust (`MLFLOW_TRACKING_SERVER_CERT_PATH`).
    pub server_cert_path: Option<PathBuf>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Timeout for one API call (`MLFLOW_HTTP_REQUEST_TIMEOUT`, default 120 s).
    pub request_timeout: Duration,
    /// Timeout for opening a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Assumed slowest transfer rate for artifacts, in bytes/s: an upload or
    /// download of N bytes gets `request_timeout + N / rate`. Default 1 MB/s.
    pub min_transfer_rate: u64,
    /// Batching of logged values.
    pub batch: BatchConfig,
    /// Where undelivered values are spooled.
    pub spool_dir: PathBuf,
    /// The `mlflow.user` tag of new runs.
    pub user: String,
    /// The `mlflow.source.name` tag of new runs.
    pub source_name: String,
}

impl TrackingConfig {
    /// Reads MLflow's environment variables: `MLFLOW_TRACKING_URI` (unset → `./mlruns`),
    /// `MLFLOW_TRACKING_USERNAME`/`PASSWORD`, `MLFLOW_TRACKING_TOKEN` (wins over basic),
    /// `MLFLOW_TRACKING_INSECURE_TLS`, `MLFLOW_TRACKING_SERVER_CERT_PATH`,
    /// `MLFLOW_HTTP_REQUEST_MAX_RETRIES`, `MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`,
    /// `MLFLOW_HTTP_REQUEST_TIMEOUT`; `VIGIL_TRACKING_SPOOL_DIR` and
    /// `VIGIL_TRACKING_SPOOL_FSYNC_MS` for the spool.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Like [`TrackingConfig::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut b = TrackingConfig::builder();
        if let Some(uri) = get("MLFLOW_TRACKING_URI") {
            b = b.uri(&uri)?;
        }
        match (
            get("MLFLOW_TRACKING_USERNAME"),
            get("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(u), Some(p)) => b = b.basic_auth(u, p),
            (Some(_), None) | (None, Some(_)) => {
                return Err(TrackingError::Config(
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD must be set together"
                        .into(),
                ));
            }
            (None, None) => {}
        }
        if let Some(token) = get("MLFLOW_TRACKING_TOKEN") {
            b = b.bearer_token(token);
        }
        if let Some(v) = get("MLFLOW_TRACKING_INSECURE_TLS") {
            b = b.insecure_tls(parse_bool("MLFLOW_TRACKING_INSECURE_TLS", &v)?);
        }
        if let Some(p) = get("MLFLOW_TRACKING_SERVER_CERT_PATH") {
            b = b.server_cert_path(p);
        }
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") {
            b.config.retry.max_retries = v.trim().parse().map_err(|_| {
                TrackingError::Config(format!(
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES={v:?} is not a whole number"
                ))
            })?;
        }
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") {
            b.config.retry.backoff_factor = v.trim().parse().map_err(|_| {
                TrackingError::Config(format!(
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR={v:?} is not a number"
                ))
            })?;
        }
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_TIMEOUT") {
            let secs: f64 = v.trim().parse().map_err(|_| {
                TrackingError::Config(format!(
                    "MLFLOW_HTTP_REQUEST_TIMEOUT={v:?} is not a number of seconds"
                ))
            })?;
            b = b.request_timeout(duration_from_secs("MLFLOW_HTTP_REQUEST_TIMEOUT", secs)?);
        }
        if let Some(dir) = get("VIGIL_TRACKING_SPOOL_DIR") {
            b = b.spool_dir(dir);
        }
        if let Some(v) = get("VIGIL_TRACKING_SPOOL_FSYNC_MS") {
            let ms: u64 = v.trim().parse().map_err(|_| {
                TrackingError::Config(format!(
                    "VIGIL_TRACKING_SPOOL_FSYNC_MS={v:?} is not a whole number of milliseconds"
                ))
            })?;
            b.config.batch.spool_sync = SpoolSync::from_millis(ms)?;
        }
        if let Some(user) = ["LOGNAME", "USER", "LNAME", "USERNAME"]
            .into_iter()
            .find_map(&get)
        {
            b.config.user = user;
        }
        b.build()
    }

    /// Starts from the defaults: local store `./mlruns`, no auth.
    pub fn builder() -> TrackingConfigBuilder {
        TrackingConfigBuilder {
            config: TrackingConfig {
                uri: TrackingUri::Local(PathBuf::from("mlruns")),
                credentials: None,
                insecure_tls: false,
                server_cert_path: None,
                retry: RetryPolicy::default(),
                request_timeout: Duration::from_secs(120),
                connect_timeout: Duration::from_secs(10),
                min_transfer_rate: 1_000_000,
                batch: BatchConfig::default(),
                spool_dir: default_spool_dir(),
                user: current_user(),
                source_name: std::env::args().next().unwrap_or_else(|| "vigil".into()),
            },
        }
    }
}

fn default_spool_dir() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME").or_else(|| std::env::var_os("HOME")) {
        Some(base) if std::env::var_os("XDG_CACHE_HOME").is_some() => {
            Path::new(&base).join("vigil/tracking-spool")
        }
        Some(home) => Path::new(&home).join(".cache/vigil/tracking-spool"),
        None => std::env::temp_dir().join("vigil-tracking-spool"),
    }
}

fn parse_bool(var: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(TrackingError::Config(format!(
            "{var}={v:?} is not a boolean"
        ))),
    }
}

/// Builds a [`TrackingConfig`].
#[derive(Debug, Clone)]
pub struct TrackingConfigBuilder {
    config: TrackingConfig,
}

impl TrackingConfigBuilder {
    /// Sets the tracking URI (`http(s)://…`, `file:…` or a path).
    pub fn uri(mut self, uri: &str) -> Result<Self> {
        let (parsed, creds) = TrackingUri::parse(uri)?;
        self.config.uri = parsed;
        if creds.is_some() {
            self.config.credentials = creds;
        }
        Ok(self)
    }

    /// Tracks into a local directory.
    pub fn local_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.uri = TrackingUri::Local(dir.into());
        self
    }

    /// Basic auth.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.credentials = Some(Credentials::Basic {
            username: username.into(),
            password: Secret(password.into()),
        });
        self
    }

    /// Bearer token auth.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.config.credentials = Some(Credentials::Bearer(Secret(token.into())));
        self
    }

    /// Skips TLS verification.
    pub fn insecure_tls(mut self, yes: bool) -> Self {
        self.config.insecure_tls = yes;
        self
    }

    /// Trusts the CA certificates in this PEM file.
    pub fn server_cert_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.server_cert_path = Some(path.into());
        self
    }

    /// Retry behaviour.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }

    /// Per-call timeout.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.config.request_timeout = t;
        self
    }

    /// Connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Batching.
    pub fn batch(mut self, batch: BatchConfig) -> Self {
        self.config.batch = batch;
        self
    }

    /// Spool directory for undelivered values.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.spool_dir = dir.into();
        self
    }

    /// The `mlflow.user` of new runs.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.config.user = user.into();
        self
    }

    /// The `mlflow.source.name` of new runs.
    pub fn source_name(mut self, source: impl Into<String>) -> Self {
        self.config.source_name = source.into();
        self
    }

    /// Checks and returns the configuration.
    pub fn build(self) -> Result<TrackingConfig> {
        let c = &self.config;
        if c.insecure_tls && c.server_cert_path.is_some() {
            return Err(TrackingError::Config(
                "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set".into(),
            ));
        }
        c.retry.validate()?;
        check_duration("request_timeout", c.request_timeout)?;
        check_duration("connect_timeout", c.connect_timeout)?;
        if c.batch.max_age > MAX_TIMEOUT {
            return Err(TrackingError::Config(format!(
                "batch.max_age must be at most {} s",
                MAX_TIMEOUT.as_secs()
            )));
        }
        if c.batch.max_in_flight == 0 {
            return Err(TrackingError::Config(
                "batch.max_in_flight must be at least 1".into(),
            ));
        }
        if c.batch.max_items == 0 {
            return Err(TrackingError::Config(
                "batch.max_items must be at least 1".into(),
            ));
        }
        if c.min_transfer_rate == 0 {
            return Err(TrackingError::Config(
                "min_transfer_rate must be at least 1 byte/s".into(),
            ));
        }
        Ok(self.config)
    }
}

/// The user name MLflow's Python client would record (`getpass.getuser()`):
/// `LOGNAME`, `USER`, `LNAME` or `USERNAME`, else the password-database entry
/// of the process's user (services and CI jobs often run without those
/// variables), else `unknown`.
fn current_user() -> String {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(unix)]
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the process's real user.
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    passwd_name(&std::fs::read_to_string("/etc/passwd").ok()?, uid)
}

#[cfg(not(unix))]
fn user_from_passwd() -> Option<String> {
    None
}

/// The name of `uid` in `/etc/passwd` text (`name:x:uid:gid:...`).
#[cfg_attr(not(unix), allow(dead_code))]
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn user_falls_back_to_the_password_database() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# comment\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(passwd_name(passwd, 42), None);
        assert_eq!(passwd_name("", 0), None);
        assert!(!current_user().is_empty());
    }

    fn cfg(vars: &[(&str, &str)]) -> Result<TrackingConfig> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TrackingConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_uri_means_the_local_mlruns_store() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.uri, TrackingUri::Local(PathBuf::from("mlruns")));
        let c = cfg(&[("MLFLOW_TRACKING_URI", "file:///tmp/x/mlruns")]).unwrap();
        assert_eq!(c.uri, TrackingUri::Local(PathBuf::from("/tmp/x/mlruns")));
    }

    #[test]
    fn token_wins_and_secrets_never_show() {
        let c = cfg(&[
            ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000/"),
            ("MLFLOW_TRACKING_USERNAME", "alice"),
            ("MLFLOW_TRACKING_PASSWORD", "hunter2-pw"),
            ("MLFLOW_TRACKING_TOKEN", "tok-s3cret"),
        ])
        .unwrap();
        assert_eq!(c.uri, TrackingUri::Server("http://127.0.0.1:5000".into()));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("tok-s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(c.credentials.unwrap().header_value(), "Bearer tok-s3cret");
    }

    #[test]
    fn user_info_in_the_uri_becomes_basic_auth_and_is_removed() {
        let c = cfg(&[(
            "MLFLOW_TRACKING_URI",
            "https://bob:p%40ss@mlflow.example:8443/base",
        )])
        .unwrap();
        assert_eq!(c.uri.to_string(), "https://mlflow.example:8443/base");
        let creds = c.credentials.unwrap();
        assert_eq!(
            creds.header_value(),
            format!("Basic {}", base64(b"bob:p@ss"))
        );
        assert!(!format!("{creds:?}").contains("p@ss"));
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        assert!(cfg(&[("MLFLOW_TRACKING_URI", "databricks://x")]).is_err());
        assert!(cfg(&[("MLFLOW_TRACKING_USERNAME", "a")]).is_err());
        assert!(cfg(&[("MLFLOW_TRACKING_INSECURE_TLS", "maybe")]).is_err());
        assert!(
            cfg(&[
                ("MLFLOW_TRACKING_INSECURE_TLS", "true"),
                ("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem")
            ])
            .is_err()
        );
        assert!(cfg(&[("MLFLOW_HTTP_REQUEST_TIMEOUT", "-1")]).is_err());
        for nonsense in ["1e30", "inf", "NaN", "0", "3601"] {
            assert!(
                matches!(
                    cfg(&[("MLFLOW_HTTP_REQUEST_TIMEOUT", nonsense)]),
                    Err(TrackingError::Config(_))
                ),
                "{nonsense}"
            );
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"admin:Adm1n-lab-pass!"),
            "YWRtaW46QWRtMW4tbGFiLXBhc3Mh"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..Default::default()
        };
        assert_eq!(p.backoff(0), Duration::from_millis(250));
        assert_eq!(p.backoff(2), Duration::from_millis(1000));
        assert_eq!(p.backoff(20), Duration::from_secs(10));
        // Fields set by hand past `validate` still never panic.
        let wild = RetryPolicy {
            backoff_factor: f64::NAN,
            jitter: f64::INFINITY,
            max_backoff: Duration::MAX,
            ..p.clone()
        };
        assert!(wild.backoff(u32::MAX) <= MAX_TIMEOUT);
        assert!(wild.validate().is_err());
        assert_eq!(clamp_secs(1e20, MAX_RETRY_AFTER), MAX_RETRY_AFTER);
        assert_eq!(clamp_secs(f64::NAN, MAX_RETRY_AFTER), Duration::ZERO);
        assert_eq!(clamp_secs(-1.0, MAX_RETRY_AFTER), Duration::ZERO);
        let huge = TrackingConfig::builder()
            .request_timeout(Duration::MAX)
            .build();
        assert!(matches!(huge, Err(TrackingError::Config(_))));
        let j = RetryPolicy::default();
        for a in 0..6 {
            let d = j.backoff(a);
            let full = p.backoff(a);
            assert!(d <= full && d >= full / 2, "{d:?} vs {full:?}");
        }
    }
}
