//! The `valbox` command: `serve`, `worker`, `run`, `user add`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use valbox::http::{serve, AppState};
use valbox::local_run::run_file;
use valbox::pg_store::PgStore;
use valbox::sealing::SecretSealer;
use valbox::service::Service;
use valbox::settings::{Settings, SettingsArgs};
use valbox::store::{SqliteStore, Store};
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
    let code = match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("valbox: {error:#}");
            2
        }
    };
    std::process::exit(code);
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

fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = cli.settings.resolve()?;
    match cli.command {
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
            eprintln!(
                "valbox: {} job workers reading the Redis queue",
                settings.job_workers
            );
            loop {
                std::thread::park();
            }
        }
        Command::Serve => {
            if settings.job_workers == 0 && settings.redis_url.is_none() {
                anyhow::bail!("--job-workers 0 needs --redis-url (and a `valbox worker`): the in-process queue's jobs run only in `valbox serve`");
            }
            let service = Arc::new(open_service(&settings)?);
            service
                .start_job_workers(settings.job_workers)
                .context("starting the job workers")?;
            let state = Arc::new(AppState {
                service,
                max_body_bytes: settings.max_body_bytes,
            });
            // Sandbox calls (and their nested calls) run on these threads.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(settings.http_threads)
                .enable_all()
                .thread_stack_size(valbox_runtime::HOST_THREAD_STACK)
                .build()
                .context("starting tokio")?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("listening on {}", settings.listen))?;
                eprintln!("valbox: listening on http://{}", listener.local_addr()?);
                serve(listener, state).await.context("serving HTTP")?;
                Ok(0)
            })
        }
    }
}
