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
    /// List my library call sites that Restricted Library Mode breaks
    /// (from a running server, with my key); exits 1 when there are some.
    Check {
        /// The server's address.
        #[arg(long, env = "VALBOX_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// My API key.
        #[arg(long, env = "VALBOX_KEY", hide_env_values = true)]
        key: String,
        /// List every call site, not only the broken ones.
        #[arg(long)]
        all: bool,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Manage users and their keys.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Re-seal every secret under a new master key, in one transaction.
    /// Stop every node first; rerun with the same file if it was interrupted.
    RotateMasterKey {
        /// A file holding the new key: 64 hex digits (e.g. `openssl rand -hex 32`).
        #[arg(long)]
        new_key_file: PathBuf,
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
    /// List every user.
    List,
    /// Delete a user and everything theirs; the handle is retired.
    Delete {
        /// The user's handle.
        handle: String,
    },
    /// List a user's keys (never the keys themselves).
    Keys {
        /// The user's handle.
        handle: String,
    },
    /// Revoke one of a user's keys.
    RevokeKey {
        /// The user's handle.
        handle: String,
        /// The key's id (`key_…`, from `valbox user keys`).
        id: String,
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

fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("valbox.db");
    Ok(match &settings.database_url {
        Some(url) => Arc::new(
            PgStore::open(url, settings.database_pool)
                .context("opening the PostgreSQL database")?,
        ),
        // With a Redis queue, `valbox worker` processes may write the same file.
        None => match &settings.redis_url {
            Some(redis_url) => Arc::new(
                SqliteStore::open_shared(&path, redis_url).context("opening the database")?,
            ),
            None => Arc::new(SqliteStore::open(&path).context("opening the database")?),
        },
    })
}

fn open_service(settings: &Settings) -> anyhow::Result<Service> {
    let store = open_store(settings)?;
    let sealer = SecretSealer::load(settings.master_key.as_deref(), &settings.data_dir)?;
    // Secrets sealed under another key would all read as missing: refuse.
    let recorded = store.init_master_key_fingerprint(sealer.fingerprint())?;
    if recorded != sealer.fingerprint() {
        anyhow::bail!(
            "the secrets are sealed under another master key (fingerprint {recorded}; this key's is {}): \
             use that key, or, if `valbox rotate-master-key` was interrupted, run it again with the same --new-key-file",
            sealer.fingerprint()
        );
    }
    let sandbox = Sandbox::new(settings.sandbox_config()).context("starting the sandbox")?;
    let service = Service::new(
        store,
        sandbox,
        sealer,
        settings.admin_key.clone(),
        settings.call_limits,
    )
    .with_storage_quota(settings.user_storage_quota)
    .with_max_versions_per_val(settings.max_versions_per_val)
    .with_schedules(settings.schedules);
    service
        .index_existing_references()
        .context("indexing the references of earlier versions")?;
    let service = match &settings.smtp_url {
        Some(url) => service.with_mailer(
            valbox::mailer::Mailer::new(url, &settings.email_from).map_err(anyhow::Error::msg)?,
        ),
        None => service,
    };
    Ok(match &settings.redis_url {
        Some(url) => service
            .with_redis_queue(url)
            .context("connecting to the Redis queue")?,
        None => service,
    })
}

/// Starts what `serve` and `worker` both run beside requests: job workers,
/// the pruner, the scheduler, the reconciler (Redis) and the outbox (SMTP).
fn start_background(service: &Arc<Service>, settings: &Settings) -> anyhow::Result<()> {
    service
        .start_job_workers(settings.job_workers)
        .context("starting the job workers")?;
    service
        .start_pruner(settings.retention, settings.prune_interval)
        .context("starting the pruner")?;
    service
        .start_scheduler()
        .context("starting the scheduler")?;
    service
        .start_reconciler()
        .context("starting the reconciler")?;
    service.start_outbox().context("starting the outbox")
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
        Command::Check {
            server,
            key,
            all,
            json,
        } => valbox::check::check(&server, &key, all, json),
        Command::User {
            command: UserCommand::Add { handle, email },
        } => {
            let service = open_service(&settings)?;
            let (handle, key) = service.add_user(&handle, &email)?;
            eprintln!("created @{handle}; the API key is shown once:");
            println!("{key}");
            Ok(0)
        }
        Command::User {
            command: UserCommand::List,
        } => {
            for user in open_service(&settings)?.users()? {
                println!("{}\t{}", user.handle, user.email);
            }
            Ok(0)
        }
        Command::User {
            command: UserCommand::Delete { handle },
        } => {
            open_service(&settings)?.delete_user(&handle)?;
            eprintln!("deleted @{handle} and everything theirs; the handle is retired");
            Ok(0)
        }
        Command::User {
            command: UserCommand::Keys { handle },
        } => {
            for key in open_service(&settings)?.keys(&handle)? {
                println!("{}", serde_json::to_string(&key)?);
            }
            Ok(0)
        }
        Command::User {
            command: UserCommand::RevokeKey { handle, id },
        } => {
            open_service(&settings)?.revoke_key(&handle, &id)?;
            eprintln!("revoked {id} of @{handle}");
            Ok(0)
        }
        Command::RotateMasterKey { new_key_file } => {
            let store = open_store(&settings)?;
            let old = SecretSealer::load(settings.master_key.as_deref(), &settings.data_dir)?;
            let new_hex = std::fs::read_to_string(&new_key_file)
                .with_context(|| format!("reading {}", new_key_file.display()))?;
            let new = SecretSealer::from_hex(&new_hex)?;
            if let Some(recorded) = store.master_key_fingerprint()? {
                if recorded != old.fingerprint() && recorded != new.fingerprint() {
                    anyhow::bail!(
                        "the secrets are sealed under a key that is neither the current one nor the new one (fingerprint {recorded})"
                    );
                }
            }
            let count = valbox::sealing::rotate(store.as_ref(), &old, &new)
                .context("re-sealing the secrets (nothing was changed)")?;
            eprintln!(
                "re-sealed {count} secrets under the new master key (fingerprint {})",
                new.fingerprint()
            );
            if settings.master_key.is_none() {
                let path = settings.data_dir.join("master.key");
                valbox::sealing::replace_key_file(&path, &new_hex)?;
                eprintln!("{} now holds the new key", path.display());
            } else {
                eprintln!(
                    "now start every node with the new key (--master-key / VALBOX_MASTER_KEY)"
                );
            }
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
            start_background(&service, &settings)?;
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
            start_background(&service, &settings)?;
            let state = Arc::new(AppState::new(service.clone(), settings.max_body_bytes));
            // HTTP; requests' blocking work (sandbox calls and their nested
            // calls, the store) runs on the server's runners (http/workers.rs).
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
