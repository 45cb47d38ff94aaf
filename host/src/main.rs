//! The `valbox` command: `serve`, `worker`, `run`, `user add`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use valbox::http::{serve, AppState};
use valbox::local_run::run_file;

use valbox::sealing::SecretSealer;
use valbox::service::Service;
use valbox::settings::{LogFormat, Settings, SettingsArgs};
use valbox::store::{PgStore, SqliteStore, Store};
use valbox_runtime::Sandbox;

/// valbox: store JavaScript vals and run them in WebAssembly sandboxes.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server (and its job workers).
    Serve,
    /// Run jobs from the Redis queue (--redis-url) without serving HTTP.
    Worker,
    /// Run one JavaScript module locally and print the JSON result.
    Run {
        /// The ES module to run.
        file: PathBuf,
        /// The export to call [default: the file's name without `.js`, then `default`].
        export: Option<String>,
        /// Arguments as a JSON array.
        #[arg(long, default_value = "[]")]
        args: String,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print their API key.
    Add {
        /// The handle: a letter, then up to 31 letters, digits or `_`.
        handle: String,
        /// Where `console.email` sends their mail.
        #[arg(long)]
        email: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let settings = match cli.settings.resolve() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("valbox: {error}");
            std::process::exit(2);
        }
    };
    let logs = match start_logging(&settings) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("valbox: {error:#}");
            std::process::exit(2);
        }
    };
    let code = match run(cli.command, settings) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("valbox: {error:#}");
            2
        }
    };
    // Writes the log lines still buffered.
    drop(logs);
    std::process::exit(code);
}

/// Logs go to stderr through a writer thread, so a request never waits on
/// the terminal or the journal; the guard flushes it when dropped.
fn start_logging(
    settings: &Settings,
) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .with_context(|| format!("the log filter {:?} is invalid", settings.log))?;
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    match settings.log_format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(guard)
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("stop signals cannot be caught; SIGTERM will exit at once");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "stop signal received");
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        eprintln!("valbox: second stop signal: exiting at once");
        std::process::exit(130);
    });
}

fn open_service(settings: &Settings) -> anyhow::Result<Service> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("valbox.db");
    let store: Arc<dyn Store> = match &settings.database_url {
        Some(url) => Arc::new(PgStore::open(url).context("opening the PostgreSQL database")?),
        // With a Redis queue, `valbox worker` processes may write the same file.
        None if settings.redis_url.is_some() => {
            Arc::new(SqliteStore::open_shared(&path).context("opening the database")?)
        }
        None => Arc::new(SqliteStore::open(&path).context("opening the database")?),
    };
    let sealer = SecretSealer::load(settings.master_key.as_deref(), &settings.data_dir)?;
    let sandbox = Sandbox::new(settings.sandbox_config()).context("starting the sandbox")?;
    let service = Service::new(
        store,
        sandbox,
        sealer,
        settings.admin_key.clone(),
        settings.call_limits,
    );
    Ok(match &settings.redis_url {
        Some(url) => service
            .with_redis_queue(url)
            .context("connecting to the Redis queue")?,
        None => service,
    })
}

fn run(command: Command, settings: Settings) -> anyhow::Result<i32> {
    match command {
        Command::Run { file, export, args } => {
            let sandbox =
                Sandbox::new(settings.sandbox_config()).context("starting the sandbox")?;
            match run_file(&sandbox, &file, export.as_deref(), &args) {
                Ok(result) => {
                    println!("{result}");
                    Ok(0)
                }
                Err(error) => {
                    eprintln!("{error}");
                    Ok(error.exit_code())
                }
            }
        }
        Command::User {
            command: UserCommand::Add { handle, email },
        } => {
            let service = open_service(&settings)?;
            let (handle, key) = service.add_user(&handle, &email)?;
            eprintln!("created @{handle}; the API key is shown once:");
            println!("{key}");
            Ok(0)
        }
        Command::Worker => {
            if settings.redis_url.is_none() {
                anyhow::bail!("`valbox worker` takes jobs from Redis: set --redis-url (without it, `valbox serve` runs jobs itself)");
            }
            if settings.job_workers == 0 {
                anyhow::bail!("`valbox worker` needs at least one job worker (--job-workers)");
            }
            let service = Arc::new(open_service(&settings)?);
            service
                .start_job_workers(settings.job_workers)
                .context("starting the job workers")?;
            tracing::info!(settings = %settings.describe(), "valbox worker started");
            tracing::info!(
                "{} job workers reading the Redis queue",
                settings.job_workers
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting tokio")?;
            runtime.block_on(stop_signal());
            let finished = service.shut_down(settings.shutdown_grace);
            tracing::info!(finished, "valbox worker stopped");
            Ok(0)
        }
        Command::Serve => {
            if settings.job_workers == 0 && settings.redis_url.is_none() {
                anyhow::bail!("--job-workers 0 needs --redis-url (and a `valbox worker`): the in-process queue's jobs run only in `valbox serve`");
            }
            let service = Arc::new(open_service(&settings)?);
            service
                .start_job_workers(settings.job_workers)
                .context("starting the job workers")?;
            let state = Arc::new(AppState::new(service.clone(), settings.max_body_bytes));
            // Sandbox calls (and their nested calls) run on these threads.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(settings.http_threads)
                .enable_all()
                .thread_stack_size(valbox_runtime::HOST_THREAD_STACK)
                .build()
                .context("starting tokio")?;
            let grace = settings.shutdown_grace;
            let started = std::time::Instant::now();
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("listening on {}", settings.listen))?;
                tracing::info!(settings = %settings.describe(), "valbox serve started");
                // Tests and scripts wait for this line.
                eprintln!("valbox: listening on http://{}", listener.local_addr()?);
                serve(listener, state, stop_signal(), grace)
                    .await
                    .context("serving HTTP")?;
                anyhow::Ok(())
            })?;
            // Requests are done (or the grace is over); the job workers get what is left of it.
            let left = grace.saturating_sub(started.elapsed().min(grace));
            let finished = tokio::task::block_in_place(|| {
                service.shut_down(left.max(std::time::Duration::from_millis(100)))
            });
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            tracing::info!(finished, "valbox serve stopped");
            Ok(0)
        }
    }
}
