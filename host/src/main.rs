//! The `valbox` command: `serve`, `run`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use valbox::local_run::run_file;
use valbox::server::{serve, AppState};
use valbox::settings::SettingsArgs;
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
    /// Start the HTTP server.
    Serve,
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

fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = cli.settings.resolve()?;
    let sandbox = || Sandbox::new(settings.sandbox_config()).context("starting the sandbox");
    match cli.command {
        Command::Run { file, export, args } => {
            let sandbox = sandbox()?;
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
        Command::Serve => {
            let state = Arc::new(AppState {
                sandbox: sandbox()?,
            });
            let runtime = tokio::runtime::Runtime::new().context("starting tokio")?;
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
