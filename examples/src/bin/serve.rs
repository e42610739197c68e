//! The scoring service: serves the Production model over HTTP and picks up a
//! newly promoted version without restarting.
//!
//! ```text
//! serve                                   # models:/predictive_maintenance_model/Production on 127.0.0.1:8080
//! serve --model-uri models:/predictive_maintenance_model@champion --port 9000
//! curl -s localhost:8080/predict -d '{"samples":[{"machine_id":"M01","time":"2026-01-08T00:00:00Z",
//!     "temperature":70.1,"vibration":0.5,"spindle_speed":1500,"power_consumption":12.0}]}'
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use vigil_examples::serve::{AppState, current_version, load_model, router};
use vigil_examples::{PipelineError, describe_tracker, open_tracker};

#[derive(Debug, Parser)]
#[command(
    name = "serve",
    version,
    about = "Serves failure predictions from the Production model"
)]
struct Args {
    /// The model to serve: models:/NAME/STAGE, models:/NAME/VERSION or models:/NAME@ALIAS.
    #[arg(
        long,
        default_value = "models:/predictive_maintenance_model/Production"
    )]
    model_uri: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// How often to look for a newly promoted version, e.g. `30s`.
    #[arg(long, default_value = "30s")]
    poll_interval: String,
    /// Score machines that were not in the training data.
    #[arg(long)]
    allow_new_machines: bool,
    /// Where model versions are downloaded.
    #[arg(long, default_value = "vigil-output/serving")]
    scratch_dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<(), PipelineError> {
    let poll = vigil_examples::schedule::parse_duration(&args.poll_interval)
        .map_err(|e| PipelineError::Invalid(e.to_string()))?;
    let tracker = open_tracker()?;
    let model = load_model(&tracker, &args.model_uri, &args.scratch_dir)?;
    println!(
        "serving {} version {} (run {}) from {}",
        model.name,
        model.version,
        model.run_id,
        describe_tracker(&tracker)
    );
    let state = Arc::new(AppState::new(
        model,
        args.allow_new_machines,
        args.scratch_dir.clone(),
    )?);

    // The poller: a newly promoted version replaces the served one.
    {
        let state = Arc::clone(&state);
        let uri = args.model_uri.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(poll);
                let serving = state.model().version.clone();
                match current_version(&tracker, &uri) {
                    Ok(v) if v != serving => match load_model(&tracker, &uri, &state.scratch) {
                        Ok(model) => {
                            let (name, version) = (model.name.clone(), model.version.clone());
                            match state.replace(model) {
                                Ok(()) => {
                                    println!("now serving {name} version {version} (was {serving})")
                                }
                                Err(e) => eprintln!("cannot switch to version {version}: {e}"),
                            }
                        }
                        Err(e) => {
                            eprintln!("cannot load version {v}: {e}; still serving {serving}")
                        }
                    },
                    Ok(_) => {}
                    Err(e) => eprintln!("cannot check {uri}: {e}; still serving {serving}"),
                }
            }
        });
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| PipelineError::Invalid(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| PipelineError::Invalid(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| PipelineError::Invalid(e.to_string()))?;
        println!("listening on http://{local}");
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| PipelineError::Invalid(format!("server error: {e}")))?;
        println!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
