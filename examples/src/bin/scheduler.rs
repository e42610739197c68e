//! Automated retraining: runs the training job on a schedule.
//!
//! ```text
//! scheduler                       # daily at 02:00 UTC (cron `0 2 * * *`)
//! scheduler --cron "*/30 * * * *" # every 30 minutes
//! scheduler --every 1h            # for testing
//! scheduler --once --promote      # one job now, then evaluate and promote
//! scheduler -- --source postgres  # arguments after `--` go to the pipeline
//! ```
//!
//! Each job is the `pipeline` binary run as a child process (a crash in a job
//! never takes the scheduler down), followed by `evaluate --promote` when
//! `--promote` is given. A lock file keeps two jobs from running at once, also
//! across scheduler processes; each job holds it too (as its standard input),
//! so a job orphaned by a killed scheduler keeps the next one from starting
//! until it exits. A job running longer than `--job-timeout` (6 h) is sent
//! SIGTERM, and SIGKILL `--kill-grace` (30 s) later. A failed job is logged and retried with
//! exponential back-off up to `--retries` times; after that the scheduler
//! waits for the next slot. SIGINT / SIGTERM stop it cleanly: a running job is
//! asked to stop (SIGTERM) and waited for.
//!
//! `--retrain-on-drift` also compares, every `--drift-check-interval` (1 h),
//! the latest `--drift-lookback` (1 d) of the pipeline's own source (its
//! `--source`, `--input`, `--table`, CSV and simulator flags after `--`)
//! with the Production version's drift reference, and starts the job (then
//! `evaluate --promote` with `--promote`) when the dataset drifts, logging
//! which features drifted. Drift-triggered jobs take the same lock, and are at
//! least `--min-drift-retrain-interval` (1 d) apart: a drift that persists
//! retrains once, not once per check.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use clap::{CommandFactory, Parser};
use vigil_examples::cli::TrainingDataArgs;
use vigil_examples::drift::{ProductionDrift, check_production, drifted_names};
use vigil_examples::open_tracker;
use vigil_examples::schedule::{Backoff, JobLock, Schedule, format_duration, parse_duration};
use vigil_examples::source::DataSource;
use vigil_features::WindowLength;

#[derive(Debug, Parser)]
#[command(
    name = "scheduler",
    version,
    about = "Runs the Vigil training pipeline on a schedule"
)]
struct Args {
    /// Cron expression in UTC: five fields (`min hour dom month dow`) or six with seconds first.
    #[arg(long, default_value = "0 2 * * *", conflicts_with = "every")]
    cron: String,
    /// Run at a fixed interval instead of the cron schedule, e.g. `1h`, `30m`, `90s`.
    #[arg(long)]
    every: Option<String>,
    /// Run one job now and exit with its status.
    #[arg(long)]
    once: bool,
    /// After a successful training job, run `evaluate --promote` (champion / challenger).
    #[arg(long)]
    promote: bool,
    /// How many times a failed job is retried before waiting for the next slot.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Delay before the first retry; it doubles each time, capped at `--retry-max`.
    #[arg(long, default_value = "1m")]
    retry_delay: String,
    /// Longest delay between retries.
    #[arg(long, default_value = "30m")]
    retry_max: String,
    /// Lock file that keeps two jobs from running at once (also across processes).
    #[arg(long, default_value = "vigil-output/scheduler.lock")]
    lock_file: PathBuf,
    /// Longest a training or evaluation job may run before it is stopped
    /// (SIGTERM, then SIGKILL after `--kill-grace`), e.g. `6h`.
    #[arg(long, default_value = "6h")]
    job_timeout: String,
    /// How long a job asked to stop (timeout or a stop signal) has before SIGKILL.
    #[arg(long, default_value = "30s")]
    kill_grace: String,
    /// The training binary (default: `pipeline` next to this executable).
    #[arg(long)]
    pipeline_bin: Option<PathBuf>,
    /// The evaluation binary (default: `evaluate` next to this executable).
    #[arg(long)]
    evaluate_bin: Option<PathBuf>,
    /// Also check drift of the latest data against the Production model's
    /// reference, and run the job when the dataset drifts.
    #[arg(long)]
    retrain_on_drift: bool,
    /// How often `--retrain-on-drift` checks, e.g. `1h`.
    #[arg(long, default_value = "1h")]
    drift_check_interval: String,
    /// Least time between two drift-triggered jobs, e.g. `1d`.
    #[arg(long, default_value = "1d")]
    min_drift_retrain_interval: String,
    /// How much of the latest data a drift check compares, e.g. `1d`.
    #[arg(long, default_value = "1d")]
    drift_lookback: String,
    /// Rows the drift check needs in the lookback.
    #[arg(long, default_value_t = 1_000)]
    drift_min_rows: usize,
    /// The registered model whose Production version's reference is used.
    #[arg(long, default_value = vigil_examples::train::DEFAULT_MODEL_NAME)]
    model_name: String,
    /// Where the drift check downloads the Production version.
    #[arg(long, default_value = "vigil-output/scheduler-drift")]
    drift_scratch_dir: PathBuf,
    /// Arguments passed to the pipeline (write them after `--`).
    #[arg(last = true)]
    pipeline_args: Vec<String>,
}

fn log(msg: &str) {
    println!(
        "{} scheduler: {msg}",
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
    );
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Why a job did not succeed.
enum JobFailure {
    /// Another process holds the lock: skip this slot, no retry.
    Busy,
    /// Stopped by a signal.
    Stopped,
    /// The job failed (and may be retried).
    Failed(String),
}

struct Runner {
    args: Args,
    stop: Arc<AtomicBool>,
    /// `--job-timeout` and `--kill-grace`.
    limits: JobLimits,
}

#[derive(Debug, Clone, Copy)]
struct JobLimits {
    timeout: Duration,
    kill_grace: Duration,
}

impl Runner {
    /// Sleeps until `deadline` or a stop signal; returns false when stopped.
    fn sleep_until(&self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
        !self.stop.load(Ordering::SeqCst)
    }

    /// Waits for a child, forwarding a stop signal to it as SIGTERM; past the
    /// job timeout it is sent SIGTERM too, and SIGKILL after the grace.
    fn wait_child(&self, mut child: Child, what: &str) -> Result<(), JobFailure> {
        let started = Instant::now();
        // When the child was asked to stop, and whether because of the timeout.
        let mut asked: Option<(Instant, bool)> = None;
        let mut killed = false;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() && asked.is_none() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(match asked {
                        Some((_, true)) => JobFailure::Failed(format!(
                            "{what} ran over the job timeout of {} and was stopped ({status}{})",
                            format_duration(self.limits.timeout),
                            if killed {
                                ", SIGKILL after the grace"
                            } else {
                                ", SIGTERM"
                            }
                        )),
                        Some((_, false)) => JobFailure::Stopped,
                        None => JobFailure::Failed(format!("{what} exited with {status}")),
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(JobFailure::Failed(format!("waiting for {what}: {e}"))),
            }
            let stopping = self.stop.load(Ordering::SeqCst);
            let over_time = started.elapsed() > self.limits.timeout;
            match asked {
                None if stopping || over_time => {
                    log(&format!(
                        "{}: asking {what} (pid {}) to stop",
                        if over_time { "job timeout" } else { "stopping" },
                        child.id()
                    ));
                    terminate(&child);
                    asked = Some((Instant::now(), over_time && !stopping));
                }
                Some((at, _)) if !killed && at.elapsed() > self.limits.kill_grace => {
                    log(&format!(
                        "{what} (pid {}) still running {} after SIGTERM: SIGKILL",
                        child.id(),
                        format_duration(self.limits.kill_grace)
                    ));
                    let _ = child.kill();
                    killed = true;
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(
        &self,
        lock: &JobLock,
        (bin, args): (&Path, &[String]),
        what: &str,
    ) -> Result<(), JobFailure> {
        log(&format!(
            "starting {what}: {} {}",
            bin.display(),
            args.join(" ")
        ));
        let lock_for_child = lock
            .for_child()
            .map_err(|e| JobFailure::Failed(e.to_string()))?;
        let child = Command::new(bin)
            .args(args)
            .stdin(lock_for_child)
            .spawn()
            .map_err(|e| JobFailure::Failed(format!("cannot start {}: {e}", bin.display())))?;
        let outcome = self.wait_child(child, what);
        // A job killed over its timeout, or crashed, leaves its runs RUNNING
        // with their values in its spool: settle them now, not at the next job.
        for line in replay_job_spools() {
            log(&line);
        }
        outcome
    }

    /// One job: training, then (optionally) evaluation and promotion, under the lock.
    fn run_job(&self) -> Result<(), JobFailure> {
        let lock = match JobLock::try_acquire(&self.args.lock_file) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Err(JobFailure::Busy),
            Err(e) => return Err(JobFailure::Failed(e.to_string())),
        };
        let started = Instant::now();
        let pipeline = self
            .args
            .pipeline_bin
            .clone()
            .unwrap_or_else(|| sibling("pipeline"));
        self.spawn(&lock, (&pipeline, &self.args.pipeline_args), "training job")?;
        if self.args.promote {
            let evaluate = self
                .args
                .evaluate_bin
                .clone()
                .unwrap_or_else(|| sibling("evaluate"));
            self.spawn(&lock, (&evaluate, &["--promote".to_string()]), "evaluation")?;
        }
        log(&format!(
            "job finished in {} (lock {})",
            format_duration(started.elapsed()),
            lock.path().display()
        ));
        Ok(())
    }

    /// A job with retries. Returns false when the scheduler should stop.
    fn run_with_retries(&self, backoff: Backoff) -> Result<(), JobFailure> {
        let mut attempt = 0;
        loop {
            match self.run_job() {
                Ok(()) => return Ok(()),
                Err(JobFailure::Busy) => {
                    log("another job holds the lock; skipping this slot");
                    return Err(JobFailure::Busy);
                }
                Err(JobFailure::Stopped) => return Err(JobFailure::Stopped),
                Err(JobFailure::Failed(why)) => {
                    log(&format!("job failed: {why}"));
                    if attempt >= self.args.retries {
                        log(&format!(
                            "giving up after {} attempt(s); waiting for the next slot",
                            attempt + 1
                        ));
                        return Err(JobFailure::Failed(why));
                    }
                    let delay = backoff.delay(attempt);
                    attempt += 1;
                    log(&format!(
                        "retry {attempt}/{} in {}",
                        self.args.retries,
                        format_duration(delay)
                    ));
                    if !self.sleep_until(Instant::now() + delay) {
                        return Err(JobFailure::Stopped);
                    }
                }
            }
        }
    }
}

/// Replays the spools a job left, on the store the jobs track to.
fn replay_job_spools() -> Vec<String> {
    match vigil_examples::open_tracker() {
        Ok(tracker) => vigil_examples::replay_spools(&tracker),
        Err(e) => vec![format!(
            "warning: cannot open the tracking store to replay spools: {e}"
        )],
    }
}

#[cfg(unix)]
fn terminate(child: &Child) {
    // std has no SIGTERM; `kill` is on every Unix and keeps this crate free of unsafe code.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {}

/// `--retrain-on-drift`'s settings.
struct DriftWatch {
    interval: Duration,
    min_between_jobs: Duration,
    lookback: WindowLength,
    source: DataSource,
    /// When the last drift-triggered job started.
    last_job: Option<Instant>,
}

/// The pipeline's data flags ([`TrainingDataArgs`]), read out of the
/// arguments it is given, so the drift check reads the data the job trains on.
#[derive(Debug, Parser)]
struct PipelineData {
    #[command(flatten)]
    data: TrainingDataArgs,
}

fn pipeline_source(pipeline_args: &[String]) -> Result<DataSource, String> {
    // The data flags, each with its value; the pipeline's other flags are not
    // the drift check's business.
    let command = PipelineData::command();
    let flags: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|long| format!("--{long}"))
        .collect();
    let mut kept = vec!["pipeline".to_string()];
    let mut args = pipeline_args.iter();
    while let Some(a) = args.next() {
        let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        if flags.iter().any(|f| f == flag) {
            kept.push(a.clone());
            if !a.contains('=')
                && let Some(value) = args.next()
            {
                kept.push(value.clone());
            }
        }
    }
    let parsed = PipelineData::try_parse_from(&kept).map_err(|e| e.to_string())?;
    parsed.data.resolve().map_err(|e| e.to_string())
}

fn drift_watch(args: &Args) -> Result<Option<DriftWatch>, String> {
    if !args.retrain_on_drift {
        return Ok(None);
    }
    let interval = parse_duration(&args.drift_check_interval).map_err(|e| e.to_string())?;
    if interval.is_zero() {
        return Err("--drift-check-interval must be longer than zero".into());
    }
    let lookback = parse_duration(&args.drift_lookback).map_err(|e| e.to_string())?;
    Ok(Some(DriftWatch {
        interval,
        min_between_jobs: parse_duration(&args.min_drift_retrain_interval)
            .map_err(|e| e.to_string())?,
        lookback: WindowLength::from_micros(
            i64::try_from(lookback.as_micros()).unwrap_or(i64::MAX),
        ),
        source: pipeline_source(&args.pipeline_args)?,
        last_job: None,
    }))
}

impl Runner {
    /// One drift check; true when the dataset drifted and a drift-triggered
    /// job may start now.
    fn drift_wants_job(&self, watch: &DriftWatch) -> bool {
        let checked = open_tracker().and_then(|tracker| {
            check_production(
                &tracker,
                &self.args.model_name,
                &watch.source,
                (watch.lookback, self.args.drift_min_rows),
                &self.args.drift_scratch_dir,
            )
        });
        let report = match checked {
            Ok(ProductionDrift::Checked(report)) => report,
            Ok(ProductionDrift::NoProduction) => {
                log("drift check: no Production version yet; nothing to compare with");
                return false;
            }
            Ok(ProductionDrift::NoReference { version }) => {
                log(&format!(
                    "drift check: Production version {version} has no drift reference (trained before drift references)"
                ));
                return false;
            }
            Ok(ProductionDrift::TooFewRows { version, rows }) => {
                log(&format!(
                    "drift check: {rows} recent rows, fewer than --drift-min-rows; version {version} not checked"
                ));
                return false;
            }
            Err(e) => {
                log(&format!("drift check failed: {e}"));
                return false;
            }
        };
        let d = &report.drift;
        if !d.dataset_drift {
            log(&format!(
                "drift check: no dataset drift against version {} ({} of {} features drifted, {} rows)",
                report.model_version,
                d.n_drifted,
                d.features.len(),
                report.rows
            ));
            return false;
        }
        log(&format!(
            "drift check: dataset drift against version {} ({:.0} % of features, {} rows); drifted: {}",
            report.model_version,
            d.share_drifted * 100.0,
            report.rows,
            drifted_names(d).join(", ")
        ));
        match watch.last_job {
            Some(at) if at.elapsed() < watch.min_between_jobs => {
                log(&format!(
                    "drift-triggered job skipped: the last one started {} ago (--min-drift-retrain-interval {})",
                    format_duration(at.elapsed()),
                    format_duration(watch.min_between_jobs)
                ));
                false
            }
            _ => true,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut watch = match drift_watch(&args) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let schedule = match &args.every {
        Some(every) => Schedule::every(every),
        None => Schedule::cron(&args.cron),
    };
    let schedule = match schedule {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let backoff = match (
        parse_duration(&args.retry_delay),
        parse_duration(&args.retry_max),
    ) {
        (Ok(base), Ok(max)) => Backoff { base, max },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let limits = match (
        parse_duration(&args.job_timeout),
        parse_duration(&args.kill_grace),
    ) {
        (Ok(timeout), Ok(kill_grace)) => JobLimits {
            timeout,
            kill_grace,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("error: cannot install signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let runner = Runner { args, stop, limits };

    if runner.args.once {
        return match runner.run_with_retries(backoff) {
            Ok(()) => ExitCode::SUCCESS,
            Err(JobFailure::Busy) => ExitCode::from(75), // EX_TEMPFAIL
            Err(JobFailure::Stopped) => ExitCode::from(130),
            Err(JobFailure::Failed(_)) => ExitCode::from(1),
        };
    }

    let code = run_schedule(&runner, &schedule, backoff, watch.as_mut());
    if code == ExitCode::SUCCESS {
        log("stopped cleanly");
    }
    code
}

/// Jobs at the schedule's times and, with `--retrain-on-drift`, after a drift
/// check finds dataset drift; until a stop signal.
fn run_schedule(
    runner: &Runner,
    schedule: &Schedule,
    backoff: Backoff,
    mut watch: Option<&mut DriftWatch>,
) -> ExitCode {
    log(&format!("running the training job {}", schedule.describe()));
    if let Some(w) = &watch {
        log(&format!(
            "and when the data drifts: checked every {}, drift-triggered jobs at least {} apart",
            format_duration(w.interval),
            format_duration(w.min_between_jobs)
        ));
    }
    let mut next_check = watch.as_ref().map(|w| Instant::now() + w.interval);
    let mut next_job = None;
    loop {
        let now = Utc::now();
        let next = match next_job {
            Some(next) => next,
            None => match schedule.next_after(now) {
                Ok(next) => {
                    log(&format!(
                        "next job at {}",
                        next.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ));
                    next_job = Some(next);
                    next
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            },
        };
        let job_at = Instant::now() + (next - now).to_std().unwrap_or(Duration::ZERO);
        let check_first = next_check.is_some_and(|c| c < job_at);
        let wake = match next_check {
            Some(c) if check_first => c,
            _ => job_at,
        };
        if !runner.sleep_until(wake) {
            break;
        }
        let run = if let (true, Some(w)) = (check_first, watch.as_deref_mut()) {
            next_check = Some(Instant::now() + w.interval);
            let wanted = runner.drift_wants_job(w);
            if wanted {
                log("starting a drift-triggered job");
                w.last_job = Some(Instant::now());
            }
            wanted
        } else {
            next_job = None;
            true
        };
        if run && let Err(JobFailure::Stopped) = runner.run_with_retries(backoff) {
            break;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is a failed test
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_drift_check_reads_the_pipelines_data_flags_and_skips_the_rest() {
        let source = pipeline_source(&args(&[
            "--trials",
            "3",
            "--machines=3",
            "--no-progress",
            "--days",
            "2.5",
            "--seed",
            "9",
            "--workers",
            "2",
        ]))
        .unwrap();
        let DataSource::Simulated(sim) = source else {
            panic!("{source:?}")
        };
        assert_eq!((sim.machines, sim.days, sim.seed), (3, 2.5, 9));
        let source = pipeline_source(&args(&[
            "--source",
            "csv",
            "--input",
            "fleet.csv",
            "--delimiter",
            "semicolon",
            "--alarm-policy",
            "f1",
        ]))
        .unwrap();
        let DataSource::Csv { path, .. } = source else {
            panic!("{source:?}")
        };
        assert_eq!(path, PathBuf::from("fleet.csv"));
        assert!(pipeline_source(&args(&["--source", "nowhere"])).is_err());
    }
}
