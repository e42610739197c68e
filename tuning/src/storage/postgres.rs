//! PostgreSQL storage: many worker processes, on many machines, sharing studies.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postgres::{Client, Config, NoTls, Row, Statement};

use super::memory::stale_reason;
use super::{Storage, TrialList};
use crate::Direction;
use crate::distributions::ParamValue;
use crate::error::{Result, TuningError};
use crate::retry::RetryPolicy;
use crate::serde_f64::JsonF64;
use crate::trial::{FrozenTrial, Param, TrialState, now_unix};

// The identifier rules and password scrubbing are vigil-features' file, compiled here
// as well: the library crates stay independent and the rules have one source.
#[path = "../../../features/src/sql_ident.rs"]
mod sql_ident;

const TRIAL_COLS: &str = "trial_id, number, state, value, params::text, intermediate::text, \
     pending::text, fixed::text, user_attrs::text, fail_reason, datetime_start, \
     datetime_complete, finished_seq";

#[derive(Debug)]
struct Statements {
    find_study: Statement,
    create_study: Statement,
    claim_waiting: Statement,
    next_number: Statement,
    start_new: Statement,
    insert_trial: Statement,
    set_param: Statement,
    set_pending: Statement,
    set_intermediate: Statement,
    set_user_attr: Statement,
    study_of_trial: Statement,
    bump_finish: Statement,
    finish: Statement,
    trial_state: Statement,
    trials_since: Statement,
    one_trial: Statement,
    heartbeat: Statement,
    fail_stale: Statement,
}

#[derive(Debug, Default)]
struct StudyCache {
    finished: BTreeMap<u64, Arc<FrozenTrial>>,
    last_seq: i64,
}

struct Conn {
    client: Client,
    st: Statements,
}

/// Where and how to (re)connect. The URL is kept only to scrub its password from
/// messages; `Debug` shows neither.
struct Target {
    config: Config,
    schema: String,
    url: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// Studies in PostgreSQL: many worker processes, on many machines, sharing studies
/// (feature `postgres`). One connection per storage value; threads of one process
/// share it (each operation is short).
///
/// Tables live in one schema (default `vigil_tuning`), created on first connect:
/// `studies(study_id, name UNIQUE, direction, next_number, finish_counter)` and
/// `trials(trial_id, study_id, number, state, value, params, intermediate, pending,
/// fixed, user_attrs, fail_reason, datetime_start, datetime_complete, heartbeat,
/// finished_seq)`, the per-trial maps as `jsonb`.
///
/// Concurrency, the way Optuna's RDB storage does it and a little stricter:
/// - a new trial takes its number under the study row's lock, so numbers are 0, 1, …
///   without gaps or repeats;
/// - an enqueued trial is claimed with `FOR UPDATE SKIP LOCKED`, so exactly one worker
///   gets it and no worker waits for another;
/// - every write to a trial says `WHERE state = 'RUNNING'`, so finished trials never
///   change ([`TuningError::TrialFinished`]);
/// - heartbeats use the database clock, and claiming a trial counts as its first
///   heartbeat; `fail_stale_trials` fails running trials whose last heartbeat is older
///   than the grace period (also those whose worker died before its first beat);
/// - finishing a trial bumps the study's `finish_counter` under the study row lock and
///   stamps the trial with it, so readers can cache finished trials and fetch only the
///   rest (finishes commit in counter order).
#[derive(Debug)]
pub struct PostgresStorage {
    schema: String,
    target: Target,
    retry: RetryPolicy,
    /// `None` after the connection broke, until the next operation re-opens it.
    conn: Mutex<Option<Conn>>,
    cache: Mutex<HashMap<u64, StudyCache>>,
}

/// The SQLSTATE code (when the server answered) and the text of a driver error: the
/// server's message and detail, or the driver's message with its causes.
fn error_parts(e: &postgres::Error) -> (Option<String>, String) {
    if let Some(db) = e.as_db_error() {
        let message = match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        };
        return (Some(db.code().code().to_owned()), message);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    (None, text)
}

/// Maps a driver error to [`TuningError::Postgres`] for `operation`.
fn pg(operation: &'static str) -> impl FnOnce(postgres::Error) -> TuningError {
    move |e| {
        let (code, message) = error_parts(&e);
        TuningError::Postgres {
            operation,
            code,
            message,
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> TuningError {
    TuningError::CorruptStorage(what.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

impl PostgresStorage {
    /// How long connecting may take (when the URL does not say).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Idle time before TCP keepalive probes start.
    pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
    /// How long sent data may stay unacknowledged before the connection counts as dead.
    pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
    /// Longest a statement may run on the server (when the URL sets no `options`).
    pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Connect to `url` (e.g. `postgres://user:pass@host:5432/db`) and use the schema
    /// `vigil_tuning`, creating its tables if needed.
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with_schema(url, "vigil_tuning")
    }

    /// Like [`PostgresStorage::connect`] with another schema: 1 to 63 ASCII letters,
    /// digits and `_`, not starting with a digit (tests use one schema each). The name
    /// is always double-quoted in SQL, so its case is kept: `Tuning` and `tuning` are
    /// two schemas.
    ///
    /// Errors: [`TuningError::InvalidSetting`] for a bad schema name;
    /// [`TuningError::Postgres`] when connecting or creating the tables fails (the
    /// message never holds the URL's password).
    pub fn connect_with_schema(url: &str, schema: &str) -> Result<Self> {
        Self::connect_with(url, schema, RetryPolicy::default())
    }

    /// Like [`PostgresStorage::connect_with_schema`], with the policy by which a lost
    /// connection is re-opened and the failed operation retried (the first connect is
    /// tried once: a wrong URL fails at once).
    ///
    /// Bounded waits: connecting gives up after [`Self::CONNECT_TIMEOUT`] (unless the URL
    /// sets `connect_timeout`); TCP keepalives (idle [`Self::KEEPALIVE_IDLE`]) and a TCP user
    /// timeout of [`Self::TCP_USER_TIMEOUT`] notice a dead server or network; each statement
    /// is cancelled by the server after [`Self::STATEMENT_TIMEOUT`] (unless the URL sets
    /// `options`).
    ///
    /// Which operations are retried after the connection broke: all reads, the
    /// parameter / value / attribute writes and heartbeats (applying them twice changes
    /// nothing), finishing a trial (a retry that finds the trial finished reports
    /// [`TuningError::TrialFinished`]; `Study::tell` then checks whether its own earlier
    /// attempt landed), and starting a trial (if the lost attempt had claimed one, that
    /// trial is reaped after the heartbeat grace period). Creating a study and
    /// enqueueing a trial are retried only when the statement was never sent.
    pub fn connect_with(url: &str, schema: &str, retry: RetryPolicy) -> Result<Self> {
        retry.validate()?;
        sql_ident::check_identifier(schema).map_err(|e| TuningError::InvalidSetting {
            name: "schema",
            reason: format!("`{schema}` is not a SQL identifier: {e}"),
        })?;
        let scrub = |message: String| sql_ident::scrub_conninfo_password(&message, url);
        let mut config: Config = url.parse().map_err(|e: postgres::Error| {
            let (code, message) = error_parts(&e);
            TuningError::Postgres {
                operation: "connect",
                code,
                message: scrub(message),
            }
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Self::CONNECT_TIMEOUT);
        }
        config
            .keepalives(true)
            .keepalives_idle(Self::KEEPALIVE_IDLE)
            .tcp_user_timeout(Self::TCP_USER_TIMEOUT);
        if config.get_options().is_none() {
            config.options(&format!(
                "-c statement_timeout={}",
                Self::STATEMENT_TIMEOUT.as_millis()
            ));
        }
        let target = Target {
            config,
            schema: schema.to_owned(),
            url: url.to_owned(),
        };
        let conn = open_conn(&target)?;
        Ok(PostgresStorage {
            schema: schema.to_owned(),
            target,
            retry,
            conn: Mutex::new(Some(conn)),
            cache: Mutex::new(HashMap::new()),
        })
    }
}

/// Connect, create the tables if needed, prepare the statements.
fn open_conn(target: &Target) -> Result<Conn> {
    let schema = target.schema.as_str();
    {
        let url = target.url.as_str();
        let mut client = target.config.connect(NoTls).map_err(|e| {
            let (code, message) = error_parts(&e);
            TuningError::Postgres {
                operation: "connect",
                code,
                // The URL holds the password; the driver's message must not.
                message: sql_ident::scrub_conninfo_password(&message, url),
            }
        })?;
        let s = sql_ident::quote_identifier(schema);
        // Concurrent first connects race on CREATE ... IF NOT EXISTS; serialise them.
        let ddl = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(7425001);
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.studies (
                 study_id BIGSERIAL PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 direction TEXT NOT NULL,
                 next_number BIGINT NOT NULL DEFAULT 0,
                 finish_counter BIGINT NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS {s}.trials (
                 trial_id BIGSERIAL PRIMARY KEY,
                 study_id BIGINT NOT NULL REFERENCES {s}.studies(study_id),
                 number BIGINT NOT NULL,
                 state TEXT NOT NULL,
                 value DOUBLE PRECISION,
                 params JSONB NOT NULL DEFAULT '{{}}',
                 intermediate JSONB NOT NULL DEFAULT '{{}}',
                 pending JSONB NOT NULL DEFAULT '{{}}',
                 fixed JSONB NOT NULL DEFAULT '{{}}',
                 user_attrs JSONB NOT NULL DEFAULT '{{}}',
                 fail_reason TEXT,
                 datetime_start DOUBLE PRECISION,
                 datetime_complete DOUBLE PRECISION,
                 heartbeat TIMESTAMPTZ,
                 finished_seq BIGINT,
                 UNIQUE (study_id, number));
             CREATE INDEX IF NOT EXISTS trials_study_state ON {s}.trials (study_id, state);
             -- What `trials` reads each time: unfinished trials and those finished since.
             CREATE INDEX IF NOT EXISTS trials_study_seq ON {s}.trials (study_id, finished_seq);
             COMMIT;"
        );
        client
            .batch_execute(&ddl)
            .map_err(pg("create schema and tables"))?;
        let running = "state = 'RUNNING'";
        let st = Statements {
            find_study: client.prepare(&format!(
                "SELECT study_id, direction FROM {s}.studies WHERE name = $1"
            ))
            .map_err(pg("prepare statements"))?,
            create_study: client.prepare(&format!(
                "INSERT INTO {s}.studies (name, direction) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING study_id"
            ))
            .map_err(pg("prepare statements"))?,
            claim_waiting: client.prepare(&format!(
                "UPDATE {s}.trials SET state = 'RUNNING', datetime_start = $2,
                        heartbeat = clock_timestamp()
                 WHERE trial_id = (
                     SELECT trial_id FROM {s}.trials
                     WHERE study_id = $1 AND state = 'WAITING'
                     ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING {TRIAL_COLS}"
            ))
            .map_err(pg("prepare statements"))?,
            next_number: client.prepare(&format!(
                "UPDATE {s}.studies SET next_number = next_number + 1
                 WHERE study_id = $1 RETURNING next_number - 1"
            ))
            .map_err(pg("prepare statements"))?,
            // One statement (one round trip): take the next number under the study
            // row's lock and insert the running trial; no row when the study already
            // holds $3 trials (i64::MAX: no cap).
            start_new: client.prepare(&format!(
                "WITH n AS (
                     UPDATE {s}.studies SET next_number = next_number + 1
                     WHERE study_id = $1 AND next_number < $3
                     RETURNING next_number - 1 AS number)
                 INSERT INTO {s}.trials (study_id, number, state, datetime_start, heartbeat)
                 SELECT $1, number, 'RUNNING', $2, clock_timestamp() FROM n
                 RETURNING {TRIAL_COLS}"
            ))
            .map_err(pg("prepare statements"))?,
            insert_trial: client.prepare(&format!(
                "INSERT INTO {s}.trials (study_id, number, state, fixed, datetime_start)
                 VALUES ($1, $2, $3, $4::text::jsonb, $5) RETURNING {TRIAL_COLS}"
            ))
            .map_err(pg("prepare statements"))?,
            set_param: client.prepare(&format!(
                "UPDATE {s}.trials SET params = params || jsonb_build_object($2::text, $3::text::jsonb)
                 WHERE trial_id = $1 AND {running}"
            ))
            .map_err(pg("prepare statements"))?,
            set_pending: client.prepare(&format!(
                "UPDATE {s}.trials SET pending = $2::text::jsonb WHERE trial_id = $1 AND {running}"
            ))
            .map_err(pg("prepare statements"))?,
            set_intermediate: client.prepare(&format!(
                "UPDATE {s}.trials
                 SET intermediate = intermediate || jsonb_build_object($2::text, $3::text::jsonb)
                 WHERE trial_id = $1 AND {running}"
            ))
            .map_err(pg("prepare statements"))?,
            set_user_attr: client.prepare(&format!(
                "UPDATE {s}.trials SET user_attrs = user_attrs || jsonb_build_object($2::text, $3::text::jsonb)
                 WHERE trial_id = $1 AND {running}"
            ))
            .map_err(pg("prepare statements"))?,
            study_of_trial: client.prepare(&format!(
                "SELECT study_id FROM {s}.trials WHERE trial_id = $1"
            ))
            .map_err(pg("prepare statements"))?,
            bump_finish: client.prepare(&format!(
                "UPDATE {s}.studies SET finish_counter = finish_counter + 1
                 WHERE study_id = $1 RETURNING finish_counter"
            ))
            .map_err(pg("prepare statements"))?,
            // One statement: bump the study's finish counter (study row first, then
            // the trial: the lock order used everywhere) and stamp the trial with it.
            finish: client.prepare(&format!(
                "WITH seq AS (
                     UPDATE {s}.studies SET finish_counter = finish_counter + 1
                     WHERE study_id = (SELECT study_id FROM {s}.trials WHERE trial_id = $1)
                     RETURNING finish_counter)
                 UPDATE {s}.trials SET state = $2, value = $3, fail_reason = $4,
                        datetime_complete = $5, finished_seq = (SELECT finish_counter FROM seq),
                        heartbeat = NULL
                 WHERE trial_id = $1 AND {running}"
            ))
            .map_err(pg("prepare statements"))?,
            trial_state: client.prepare(&format!(
                "SELECT state FROM {s}.trials WHERE trial_id = $1"
            ))
            .map_err(pg("prepare statements"))?,
            trials_since: client.prepare(&format!(
                "SELECT {TRIAL_COLS} FROM {s}.trials
                 WHERE study_id = $1 AND (finished_seq IS NULL OR finished_seq > $2)"
            ))
            .map_err(pg("prepare statements"))?,
            one_trial: client.prepare(&format!(
                "SELECT {TRIAL_COLS} FROM {s}.trials WHERE trial_id = $1"
            ))
            .map_err(pg("prepare statements"))?,
            heartbeat: client.prepare(&format!(
                "UPDATE {s}.trials SET heartbeat = clock_timestamp()
                 WHERE trial_id = $1 AND {running}"
            ))
            .map_err(pg("prepare statements"))?,
            fail_stale: client.prepare(&format!(
                "UPDATE {s}.trials SET state = 'FAIL', fail_reason = $3, datetime_complete = $4,
                        finished_seq = $5, heartbeat = NULL
                 WHERE study_id = $1 AND {running}
                   AND COALESCE(heartbeat, to_timestamp(datetime_start))
                       < clock_timestamp() - make_interval(secs => $2)
                 RETURNING trial_id"
            ))
            .map_err(pg("prepare statements"))?,
        };
        Ok(Conn { client, st })
    }
}

impl PostgresStorage {
    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Run `f` on the connection, re-opening it (with the retry policy's backoff) when
    /// it broke. `resend`: whether `f` may run again after a failure that may have
    /// reached the server (see [`PostgresStorage::connect_with`]).
    fn with_conn<T>(&self, resend: bool, mut f: impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        // Set when a failure may have reached the server and `f` must not run again.
        let sent_once = std::cell::Cell::new(false);
        self.retry
            .run_if(
                |e| e.is_transient() && !sent_once.get(),
                |_| {
                    if guard.is_none() {
                        // Never sent: a failed reconnect is always retried.
                        *guard = Some(open_conn(&self.target)?);
                    }
                    let Some(conn) = guard.as_mut() else {
                        return Err(corrupt("no connection after connecting"));
                    };
                    match f(conn) {
                        Ok(v) => Ok(v),
                        Err(e) => {
                            let broken = conn.client.is_closed() || e.is_transient();
                            if broken {
                                *guard = None;
                            }
                            if broken && !resend {
                                sent_once.set(true);
                            }
                            Err(e)
                        }
                    }
                },
            )
            .map_err(|(_, e)| e)
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<u64, StudyCache>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turn "0 rows updated" into the right error.
    fn not_running(c: &mut Conn, trial_id: u64) -> TuningError {
        let id = trial_id as i64;
        match c.client.query_opt(&c.st.trial_state, &[&id]) {
            Ok(Some(row)) => {
                let s: String = row.get(0);
                match TrialState::parse(&s) {
                    Some(state) => TuningError::TrialFinished { trial_id, state },
                    None => corrupt(format!("trial {trial_id} has state {s}")),
                }
            }
            Ok(None) => TuningError::UnknownTrial(trial_id),
            Err(e) => pg("read trial state")(e),
        }
    }

    fn update_running(
        &self,
        operation: &'static str,
        trial_id: u64,
        pick: impl Fn(&Statements) -> &Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<()> {
        self.with_conn(true, |c| {
            let n = c
                .client
                .execute(pick(&c.st), params)
                .map_err(pg(operation))?;
            if n == 0 {
                return Err(Self::not_running(c, trial_id));
            }
            Ok(())
        })
    }
}

fn row_to_trial(row: &Row) -> Result<FrozenTrial> {
    let trial_id: i64 = row.get(0);
    let number: i64 = row.get(1);
    let state: String = row.get(2);
    let state = TrialState::parse(&state).ok_or_else(|| corrupt(format!("state {state}")))?;
    let mut t = FrozenTrial::new(trial_id as u64, number as u64, state);
    t.value = row.get(3);
    let text = |i: usize| -> String { row.get(i) };
    t.params = serde_json::from_str(&text(4)).map_err(corrupt)?;
    let inter: BTreeMap<u64, JsonF64> = serde_json::from_str(&text(5)).map_err(corrupt)?;
    t.intermediate_values = inter.into_iter().map(|(k, v)| (k, v.0)).collect();
    t.pending_params = serde_json::from_str(&text(6)).map_err(corrupt)?;
    t.fixed_params = serde_json::from_str(&text(7)).map_err(corrupt)?;
    t.user_attrs = serde_json::from_str(&text(8)).map_err(corrupt)?;
    t.fail_reason = row.get(9);
    t.datetime_start = row.get(10);
    t.datetime_complete = row.get(11);
    Ok(t)
}

impl PostgresStorage {
    /// Claims the oldest waiting trial, else starts a new one unless the study
    /// already holds `max_trials` (the cap is checked under the study row's lock).
    fn start_within(&self, study_id: u64, max_trials: i64) -> Result<Option<FrozenTrial>> {
        self.with_conn(true, |c| {
            let sid = study_id as i64;
            let now = now_unix();
            let claimed = c.client.query_opt(&c.st.claim_waiting, &[&sid, &now]);
            if let Some(row) = claimed.map_err(pg("claim waiting trial"))? {
                return row_to_trial(&row).map(Some);
            }
            let row = c
                .client
                .query_opt(&c.st.start_new, &[&sid, &now, &max_trials])
                .map_err(pg("start trial"))?;
            row.map(|row| row_to_trial(&row)).transpose()
        })
    }
}

impl Storage for PostgresStorage {
    fn create_study(&self, name: &str, direction: Direction) -> Result<u64> {
        self.with_conn(false, |c| {
            match c
                .client
                .query_opt(&c.st.create_study, &[&name, &direction.as_str()])
                .map_err(pg("create study"))?
            {
                Some(row) => Ok(row.get::<_, i64>(0) as u64),
                None => Err(TuningError::StudyExists(name.to_owned())),
            }
        })
    }

    fn find_study(&self, name: &str) -> Result<Option<(u64, Direction)>> {
        self.with_conn(true, |c| {
            let found = c.client.query_opt(&c.st.find_study, &[&name]);
            let Some(row) = found.map_err(pg("find study"))? else {
                return Ok(None);
            };
            let id: i64 = row.get(0);
            let dir: String = row.get(1);
            let dir = Direction::parse(&dir).ok_or_else(|| corrupt(format!("direction {dir}")))?;
            Ok(Some((id as u64, dir)))
        })
    }

    fn enqueue_trial(&self, study_id: u64, fixed: &BTreeMap<String, ParamValue>) -> Result<u64> {
        let fixed = to_json(fixed)?;
        self.with_conn(false, |c| {
            let sid = study_id as i64;
            let mut tx = c.client.transaction().map_err(pg("enqueue trial"))?;
            let number: i64 = tx
                .query_opt(&c.st.next_number, &[&sid])
                .map_err(pg("enqueue trial"))?
                .ok_or_else(|| TuningError::StudyNotFound(format!("#{study_id}")))?
                .get(0);
            let none: Option<f64> = None;
            let row = tx.query_one(
                &c.st.insert_trial,
                &[&sid, &number, &"WAITING", &fixed, &none],
            );
            let row = row.map_err(pg("enqueue trial"))?;
            tx.commit().map_err(pg("enqueue trial"))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn start_trial(&self, study_id: u64) -> Result<FrozenTrial> {
        self.start_within(study_id, i64::MAX)?
            .ok_or_else(|| TuningError::StudyNotFound(format!("#{study_id}")))
    }

    fn start_trial_capped(&self, study_id: u64, max_trials: u64) -> Result<Option<FrozenTrial>> {
        self.start_within(study_id, i64::try_from(max_trials).unwrap_or(i64::MAX))
    }

    fn set_param(&self, trial_id: u64, name: &str, param: &Param) -> Result<()> {
        let json = to_json(param)?;
        let id = trial_id as i64;
        self.update_running(
            "set parameter",
            trial_id,
            |s| &s.set_param,
            &[&id, &name, &json],
        )
    }

    fn set_pending_params(&self, trial_id: u64, params: &BTreeMap<String, f64>) -> Result<()> {
        let json = to_json(params)?;
        let id = trial_id as i64;
        self.update_running(
            "set pending parameters",
            trial_id,
            |s| &s.set_pending,
            &[&id, &json],
        )
    }

    fn set_intermediate(&self, trial_id: u64, step: u64, value: f64) -> Result<()> {
        let json = to_json(&JsonF64(value))?;
        let id = trial_id as i64;
        let key = step.to_string();
        self.update_running(
            "report intermediate value",
            trial_id,
            |s| &s.set_intermediate,
            &[&id, &key, &json],
        )
    }

    fn set_user_attr(&self, trial_id: u64, key: &str, value: serde_json::Value) -> Result<()> {
        let json = to_json(&value)?;
        let id = trial_id as i64;
        self.update_running(
            "set user attribute",
            trial_id,
            |s| &s.set_user_attr,
            &[&id, &key, &json],
        )
    }

    fn finish_trial(
        &self,
        trial_id: u64,
        state: TrialState,
        value: Option<f64>,
        fail_reason: Option<&str>,
    ) -> Result<()> {
        if !state.is_finished() {
            return Err(TuningError::InvalidSetting {
                name: "state",
                reason: format!("{state:?} is not a finished state"),
            });
        }
        self.with_conn(true, |c| {
            let id = trial_id as i64;
            let n = c.client.execute(
                &c.st.finish,
                &[&id, &state.as_str(), &value, &fail_reason, &now_unix()],
            );
            let n = n.map_err(pg("finish trial"))?;
            if n == 0 {
                return Err(Self::not_running(c, trial_id));
            }
            Ok(())
        })
    }

    fn trials(&self, study_id: u64) -> Result<TrialList> {
        self.with_conn(true, |c| {
            let sid = study_id as i64;
            let mut caches = self.cache();
            let last_seq = caches.get(&study_id).map_or(0, |s| s.last_seq);
            let rows = c.client.query(&c.st.trials_since, &[&sid, &last_seq]);
            let rows = rows.map_err(pg("read trials"))?;
            let cache = caches.entry(study_id).or_default();
            let mut live: BTreeMap<u64, Arc<FrozenTrial>> = BTreeMap::new();
            for row in &rows {
                let t = Arc::new(row_to_trial(row)?);
                let seq: Option<i64> = row.get(12);
                if let (true, Some(seq)) = (t.state.is_finished(), seq) {
                    cache.last_seq = cache.last_seq.max(seq);
                    cache.finished.insert(t.number, t);
                } else {
                    live.insert(t.number, t);
                }
            }
            let mut all: Vec<Arc<FrozenTrial>> = cache.finished.values().cloned().collect();
            all.extend(live.into_values());
            all.sort_by_key(|t| t.number);
            Ok(all.into())
        })
    }

    fn trial(&self, trial_id: u64) -> Result<Arc<FrozenTrial>> {
        self.with_conn(true, |c| {
            let id = trial_id as i64;
            let row = c
                .client
                .query_opt(&c.st.one_trial, &[&id])
                .map_err(pg("read trial"))?
                .ok_or(TuningError::UnknownTrial(trial_id))?;
            Ok(Arc::new(row_to_trial(&row)?))
        })
    }

    fn trial_in_study(&self, study_id: u64, trial: &FrozenTrial) -> Result<bool> {
        self.with_conn(true, |c| {
            let id = trial.trial_id as i64;
            let row = c.client.query_opt(&c.st.study_of_trial, &[&id]);
            let row = row.map_err(pg("find study of trial"))?;
            Ok(row.is_some_and(|r| r.get::<_, i64>(0) as u64 == study_id))
        })
    }

    fn heartbeat(&self, trial_id: u64) -> Result<()> {
        let id = trial_id as i64;
        self.update_running("heartbeat", trial_id, |s| &s.heartbeat, &[&id])
    }

    fn fail_stale_trials(&self, study_id: u64, grace: Duration) -> Result<Vec<u64>> {
        self.with_conn(true, |c| {
            let sid = study_id as i64;
            let op = "fail stale trials";
            let mut tx = c.client.transaction().map_err(pg(op))?;
            let seq: i64 = tx
                .query_one(&c.st.bump_finish, &[&sid])
                .map_err(pg(op))?
                .get(0);
            let rows = tx.query(
                &c.st.fail_stale,
                &[
                    &sid,
                    &grace.as_secs_f64(),
                    &stale_reason(grace),
                    &now_unix(),
                    &seq,
                ],
            );
            let rows = rows.map_err(pg(op))?;
            tx.commit().map_err(pg(op))?;
            Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
        })
    }
}
