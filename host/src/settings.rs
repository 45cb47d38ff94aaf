//! Service settings: command-line flags, each with an environment variable,
//! over an optional TOML file (`--config`), over defaults (SPEC §6).

use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use valbox_runtime::SandboxConfig;

/// Flags shared by every subcommand that runs code. Unset flags fall back to
/// the config file, then to the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// TOML file with any of the settings below (flags and env vars win).
    #[arg(long, env = "VALBOX_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address the HTTP server listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "VALBOX_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite file, the master key and the compiled-guest cache [default: ./data].
    #[arg(long, env = "VALBOX_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL to use instead of the embedded SQLite file.
    #[arg(long, env = "VALBOX_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Redis URL for the job queue instead of the in-process queue.
    #[arg(long, env = "VALBOX_REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Wall-clock deadline of one call tree, in milliseconds [default: 5000].
    #[arg(long, env = "VALBOX_DEADLINE_MS", global = true)]
    pub deadline_ms: Option<u64>,
    /// Largest memory of one sandbox instance, in MiB [default: 64].
    #[arg(long, env = "VALBOX_MEMORY_LIMIT_MB", global = true)]
    pub memory_limit_mb: Option<usize>,
    /// Largest HTTP request body, in bytes [default: 1048576].
    #[arg(long, env = "VALBOX_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// `allow` (the seed table) or `deny`: may a library write its caller's vals? [default: allow]
    #[arg(long, env = "VALBOX_LIBRARY_WRITES", global = true)]
    pub library_writes: Option<LibraryWrites>,
    /// Record each refusal of the policy, with its seed-table row and a
    /// hint, in the evaluation record of the call that asked [default: true].
    #[arg(long, env = "VALBOX_EXPLAIN_DENIALS", global = true)]
    pub explain_denials: Option<bool>,
    /// Calls running at once over all callers; more are refused with 503 [default: 32].
    #[arg(long, env = "VALBOX_MAX_CONCURRENT_CALLS", global = true)]
    pub max_concurrent_calls: Option<usize>,
    /// Calls running at once per caller; more are refused with 429 [default: 8].
    #[arg(long, env = "VALBOX_MAX_CALLS_PER_USER", global = true)]
    pub max_calls_per_user: Option<usize>,
    /// Sandbox instances alive at once, nested calls and compiles included;
    /// sizes the instance pool [default: half the machine's memory divided
    /// by the memory limit, between 16 and 1000].
    #[arg(long, env = "VALBOX_MAX_INSTANCES", global = true)]
    pub max_instances: Option<u32>,
    /// Fraction (0, 1] of the instance pool one user's calls may hold at
    /// once; past it their calls get 429 `capacity` [default: 0.5].
    #[arg(long, env = "VALBOX_USER_INSTANCE_SHARE", global = true)]
    pub user_instance_share: Option<f64>,
    /// Threads serving HTTP (tokio workers) [default: 4 per core].
    #[arg(long, env = "VALBOX_HTTP_THREADS", global = true)]
    pub http_threads: Option<usize>,
    /// Threads running jobs from the queue; with --redis-url, `valbox serve`
    /// may have 0 and leave jobs to `valbox worker` [default: 2].
    #[arg(long, env = "VALBOX_JOB_WORKERS", global = true)]
    pub job_workers: Option<usize>,
    /// Long calls (past 2 ms of CPU) running JavaScript at once; others wait
    /// their turn, handed on every millisecond; short calls never wait [default: cores - 1, at least 1].
    #[arg(long, env = "VALBOX_CPU_TURNS", global = true)]
    pub cpu_turns: Option<usize>,
    /// Let `fetch` reach private, loopback and link-local addresses [default: false].
    #[arg(long, env = "VALBOX_FETCH_ALLOW_PRIVATE", global = true)]
    pub fetch_allow_private: Option<bool>,
    /// Comma-separated hosts `fetch` may reach (and their subdomains) [default: any public host].
    #[arg(
        long,
        env = "VALBOX_FETCH_ALLOW_HOSTS",
        global = true,
        value_delimiter = ','
    )]
    pub fetch_allow_hosts: Option<Vec<String>>,
    /// Comma-separated hosts `fetch` may never reach (and their subdomains).
    #[arg(
        long,
        env = "VALBOX_FETCH_DENY_HOSTS",
        global = true,
        value_delimiter = ','
    )]
    pub fetch_deny_hosts: Option<Vec<String>>,
    /// Timeout of one `fetch`, in milliseconds [default: 10000].
    #[arg(long, env = "VALBOX_FETCH_TIMEOUT_MS", global = true)]
    pub fetch_timeout_ms: Option<u64>,
    /// Largest `fetch` response body, in bytes [default: 4194304].
    #[arg(long, env = "VALBOX_FETCH_MAX_BYTES", global = true)]
    pub fetch_max_bytes: Option<usize>,
    /// Key that may create users over HTTP (unset: only `valbox user add` can).
    #[arg(long, env = "VALBOX_ADMIN_KEY", global = true, hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Master key for secrets at rest, 64 hex digits [default: generated into <data-dir>/master.key].
    #[arg(long, env = "VALBOX_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,
    /// Which log lines to write, as `RUST_LOG` spells it (`info`, `valbox=debug,warn`, ...) [default: $RUST_LOG, else info].
    #[arg(long, env = "VALBOX_LOG", global = true)]
    pub log: Option<String>,
    /// Log lines as `text` or `json` (one object per line), on stderr [default: text].
    #[arg(long, env = "VALBOX_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Bytes each user may store: code and bytecode of every version, sealed secrets [default: 104857600].
    #[arg(long, env = "VALBOX_USER_STORAGE_QUOTA", global = true)]
    pub user_storage_quota: Option<u64>,
    /// Versions kept per val: older ones are deleted after each save, except
    /// those a reference pins (`@bob.f@3`) [default: 1000].
    #[arg(long, env = "VALBOX_MAX_VERSIONS_PER_VAL", global = true)]
    pub max_versions_per_val: Option<u32>,
    /// Val writes one call tree may make (its own and its libraries') [default: 100].
    #[arg(long, env = "VALBOX_MAX_VAL_WRITES_PER_CALL", global = true)]
    pub max_val_writes_per_call: Option<u64>,
    /// Bytes those writes may store [default: 16777216].
    #[arg(long, env = "VALBOX_MAX_WRITTEN_BYTES_PER_CALL", global = true)]
    pub max_written_bytes_per_call: Option<u64>,
    /// Emails one call tree may send [default: 10].
    #[arg(long, env = "VALBOX_MAX_EMAILS_PER_CALL", global = true)]
    pub max_emails_per_call: Option<u64>,
    /// `fetch` requests one call tree may make [default: 50].
    #[arg(long, env = "VALBOX_MAX_FETCHES_PER_CALL", global = true)]
    pub max_fetches_per_call: Option<u64>,
    /// Days an evaluation record is kept; 0 keeps them forever [default: 7].
    #[arg(long, env = "VALBOX_RETAIN_EVALUATIONS_DAYS", global = true)]
    pub retain_evaluations_days: Option<u32>,
    /// Newest evaluation records kept per user; 0 keeps all [default: 10000].
    #[arg(long, env = "VALBOX_RETAIN_EVALUATIONS_PER_USER", global = true)]
    pub retain_evaluations_per_user: Option<u32>,
    /// Days a finished job is kept; 0 keeps them forever [default: 7].
    #[arg(long, env = "VALBOX_RETAIN_JOBS_DAYS", global = true)]
    pub retain_jobs_days: Option<u32>,
    /// Days an email is kept; 0 keeps them forever [default: 30].
    #[arg(long, env = "VALBOX_RETAIN_EMAILS_DAYS", global = true)]
    pub retain_emails_days: Option<u32>,
    /// How often old rows are pruned, in milliseconds [default: 10000].
    #[arg(long, env = "VALBOX_PRUNE_INTERVAL_MS", global = true)]
    pub prune_interval_ms: Option<u64>,
    /// After SIGTERM or SIGINT, how long requests and jobs in flight may take to finish, in milliseconds [default: the deadline + 1000].
    #[arg(long, env = "VALBOX_SHUTDOWN_GRACE_MS", global = true)]
    pub shutdown_grace_ms: Option<u64>,
    /// The shortest interval a val's schedule may ask for (`60s`, `5m`) [default: 60s].
    #[arg(long, env = "VALBOX_MIN_SCHEDULE_INTERVAL", global = true)]
    pub min_schedule_interval: Option<String>,
    /// Failed runs in a row after which a schedule pauses itself and emails its author [default: 5].
    #[arg(long, env = "VALBOX_SCHEDULE_MAX_FAILURES", global = true)]
    pub schedule_max_failures: Option<u32>,
    /// Connections in the PostgreSQL pool [default: 4 per core].
    #[arg(long, env = "VALBOX_DATABASE_POOL", global = true)]
    pub database_pool: Option<u32>,
    /// SMTP server that delivers `console.email` (`smtp://host:port`,
    /// `smtp://host:port?tls=required`, `smtps://user:password@host`) [default: none: emails are only stored].
    #[arg(long, env = "VALBOX_SMTP_URL", global = true)]
    pub smtp_url: Option<String>,
    /// The sender address of delivered emails [default: valbox@localhost].
    #[arg(long, env = "VALBOX_EMAIL_FROM", global = true)]
    pub email_from: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (fields, span fields, timestamp, level).
    Json,
}

/// Whether restricted code may write its caller's vals (`@A.foo = x` from B's library).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LibraryWrites {
    /// The seed table: the write happens.
    Allow,
    /// The write is a no-op.
    Deny,
}

/// The TOML file: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    redis_url: Option<String>,
    deadline_ms: Option<u64>,
    memory_limit_mb: Option<usize>,
    max_body_bytes: Option<usize>,
    library_writes: Option<LibraryWrites>,
    explain_denials: Option<bool>,
    max_concurrent_calls: Option<usize>,
    max_calls_per_user: Option<usize>,
    max_instances: Option<u32>,
    user_instance_share: Option<f64>,
    http_threads: Option<usize>,
    job_workers: Option<usize>,
    cpu_turns: Option<usize>,
    fetch_allow_private: Option<bool>,
    fetch_allow_hosts: Option<Vec<String>>,
    fetch_deny_hosts: Option<Vec<String>>,
    fetch_timeout_ms: Option<u64>,
    fetch_max_bytes: Option<usize>,
    admin_key: Option<String>,
    master_key: Option<String>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    shutdown_grace_ms: Option<u64>,
    min_schedule_interval: Option<String>,
    schedule_max_failures: Option<u32>,
    smtp_url: Option<String>,
    email_from: Option<String>,
    database_pool: Option<u32>,
    retain_evaluations_days: Option<u32>,
    retain_evaluations_per_user: Option<u32>,
    retain_jobs_days: Option<u32>,
    retain_emails_days: Option<u32>,
    prune_interval_ms: Option<u64>,
    user_storage_quota: Option<u64>,
    max_versions_per_val: Option<u32>,
    max_val_writes_per_call: Option<u64>,
    max_written_bytes_per_call: Option<u64>,
    max_emails_per_call: Option<u64>,
    max_fetches_per_call: Option<u64>,
}

/// Every setting resolved to a value.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where `valbox serve` listens.
    pub listen: SocketAddr,
    /// Where state and caches live.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite, when set.
    pub database_url: Option<String>,
    /// Redis queue instead of the in-process queue, when set.
    pub redis_url: Option<String>,
    /// Deadline of one call tree.
    pub deadline: Duration,
    /// Memory limit of one instance, in bytes.
    pub memory_limit: usize,
    /// Largest HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// Whether libraries may write their caller's vals.
    pub library_writes: LibraryWrites,
    /// Whether refusals of the policy are recorded in evaluation records.
    pub explain_denials: bool,
    /// Concurrency limits of calls.
    pub call_limits: crate::service::CallLimits,
    /// Size of the sandbox instance pool.
    pub max_instances: u32,
    /// Fraction of the pool one user's calls may hold.
    pub user_instance_share: f64,
    /// Threads serving HTTP.
    pub http_threads: usize,
    /// Threads running jobs.
    pub job_workers: usize,
    /// Long call trees (past 2 ms of CPU) running JavaScript at once.
    pub cpu_turns: usize,
    /// Outbound `fetch` settings.
    pub fetch: valbox_runtime::fetch::FetchPolicy,
    /// Key that may create users over HTTP.
    pub admin_key: Option<String>,
    /// Master key for secrets (hex), when not kept in the data dir.
    pub master_key: Option<String>,
    /// The log filter (`RUST_LOG` syntax).
    pub log: String,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How long work in flight may take to finish after a stop signal.
    pub shutdown_grace: Duration,
    /// What old rows are kept.
    pub retention: crate::store::Retention,
    /// What one call tree may spend.
    pub budgets: valbox_runtime::CallBudgets,
    /// Bytes each user may store.
    pub user_storage_quota: u64,
    /// Versions kept per val.
    pub max_versions_per_val: u32,
    /// How often old rows are pruned.
    pub prune_interval: Duration,
    /// How schedules behave.
    pub schedules: crate::service::ScheduleSettings,
    /// The SMTP server emails are delivered through, when set.
    pub smtp_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub database_pool: u32,
    /// The sender address of delivered emails.
    pub email_from: String,
}

/// A setting that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// The TOML parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl SettingsArgs {
    /// Resolves flags and environment over the config file over defaults.
    pub fn resolve(&self) -> Result<Settings, SettingsError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => SettingsFile::default(),
        };
        let deadline_ms = self.deadline_ms.or(file.deadline_ms).unwrap_or(5_000);
        let memory_limit_mb = self.memory_limit_mb.or(file.memory_limit_mb).unwrap_or(64);
        if deadline_ms == 0 {
            return Err(SettingsError::Invalid(
                "deadline_ms must be at least 1".into(),
            ));
        }
        if !(4..=4096).contains(&memory_limit_mb) {
            return Err(SettingsError::Invalid(
                "memory_limit_mb must be between 4 and 4096".into(),
            ));
        }
        let max_instances = self
            .max_instances
            .or(file.max_instances)
            .unwrap_or_else(|| SandboxConfig::instances_fitting_memory(memory_limit_mb << 20));
        if !(1..=10_000).contains(&max_instances) {
            return Err(SettingsError::Invalid(
                "max_instances must be between 1 and 10000".into(),
            ));
        }
        let min_interval = match self
            .min_schedule_interval
            .as_deref()
            .or(file.min_schedule_interval.as_deref())
        {
            None => Duration::from_secs(60),
            Some(text) => humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| *d >= Duration::from_secs(1))
                .ok_or_else(|| {
                    SettingsError::Invalid(format!(
                        "min_schedule_interval {text:?} must be a duration of at least 1s (`60s`, `5m`)"
                    ))
                })?,
        };
        let user_instance_share = self
            .user_instance_share
            .or(file.user_instance_share)
            .unwrap_or(0.5);
        if !(user_instance_share > 0.0 && user_instance_share <= 1.0) {
            return Err(SettingsError::Invalid(
                "user_instance_share must be a fraction in (0, 1]".into(),
            ));
        }
        Ok(Settings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            database_url: self.database_url.clone().or(file.database_url),
            redis_url: self.redis_url.clone().or(file.redis_url),
            deadline: Duration::from_millis(deadline_ms),
            memory_limit: memory_limit_mb << 20,
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1 << 20),
            library_writes: self
                .library_writes
                .or(file.library_writes)
                .unwrap_or(LibraryWrites::Allow),
            explain_denials: self
                .explain_denials
                .or(file.explain_denials)
                .unwrap_or(true),
            call_limits: crate::service::CallLimits {
                total: self
                    .max_concurrent_calls
                    .or(file.max_concurrent_calls)
                    .unwrap_or(32)
                    .max(1),
                per_caller: self
                    .max_calls_per_user
                    .or(file.max_calls_per_user)
                    .unwrap_or(8)
                    .max(1),
            },
            http_threads: self
                .http_threads
                .or(file.http_threads)
                .unwrap_or_else(|| 4 * std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            max_instances,
            user_instance_share,
            job_workers: self.job_workers.or(file.job_workers).unwrap_or(2),
            cpu_turns: self
                .cpu_turns
                .or(file.cpu_turns)
                .unwrap_or(SandboxConfig::default().cpu_turns)
                .max(1),
            fetch: {
                let defaults = valbox_runtime::fetch::FetchPolicy::default();
                valbox_runtime::fetch::FetchPolicy {
                    timeout: self
                        .fetch_timeout_ms
                        .or(file.fetch_timeout_ms)
                        .map_or(defaults.timeout, Duration::from_millis),
                    max_response_bytes: self
                        .fetch_max_bytes
                        .or(file.fetch_max_bytes)
                        .unwrap_or(defaults.max_response_bytes),
                    allow_hosts: self
                        .fetch_allow_hosts
                        .clone()
                        .or(file.fetch_allow_hosts)
                        .unwrap_or_default(),
                    deny_hosts: self
                        .fetch_deny_hosts
                        .clone()
                        .or(file.fetch_deny_hosts)
                        .unwrap_or_default(),
                    allow_private_addresses: self
                        .fetch_allow_private
                        .or(file.fetch_allow_private)
                        .unwrap_or(false),
                    ..defaults
                }
            },
            admin_key: self.admin_key.clone().or(file.admin_key),
            master_key: self.master_key.clone().or(file.master_key),
            log: self
                .log
                .clone()
                .or(file.log)
                .or_else(|| std::env::var("RUST_LOG").ok())
                .unwrap_or_else(|| "info".into()),
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            retention: {
                let defaults = crate::store::Retention::default();
                let days = |flag: Option<u32>, file: Option<u32>, default: i64| {
                    flag.or(file)
                        .map_or(default, |d| i64::from(d) * 24 * 60 * 60)
                };
                crate::store::Retention {
                    evaluation_age: days(
                        self.retain_evaluations_days,
                        file.retain_evaluations_days,
                        defaults.evaluation_age,
                    ),
                    evaluations_per_user: self
                        .retain_evaluations_per_user
                        .or(file.retain_evaluations_per_user)
                        .unwrap_or(defaults.evaluations_per_user),
                    job_age: days(
                        self.retain_jobs_days,
                        file.retain_jobs_days,
                        defaults.job_age,
                    ),
                    email_age: days(
                        self.retain_emails_days,
                        file.retain_emails_days,
                        defaults.email_age,
                    ),
                }
            },
            user_storage_quota: self
                .user_storage_quota
                .or(file.user_storage_quota)
                .unwrap_or(crate::service::DEFAULT_QUOTA),
            max_versions_per_val: self
                .max_versions_per_val
                .or(file.max_versions_per_val)
                .unwrap_or(crate::service::DEFAULT_MAX_VERSIONS)
                .max(1),
            budgets: {
                let defaults = valbox_runtime::CallBudgets::default();
                valbox_runtime::CallBudgets {
                    val_writes: self
                        .max_val_writes_per_call
                        .or(file.max_val_writes_per_call)
                        .unwrap_or(defaults.val_writes),
                    written_bytes: self
                        .max_written_bytes_per_call
                        .or(file.max_written_bytes_per_call)
                        .unwrap_or(defaults.written_bytes),
                    emails: self
                        .max_emails_per_call
                        .or(file.max_emails_per_call)
                        .unwrap_or(defaults.emails),
                    fetches: self
                        .max_fetches_per_call
                        .or(file.max_fetches_per_call)
                        .unwrap_or(defaults.fetches),
                }
            },
            prune_interval: Duration::from_millis(
                self.prune_interval_ms
                    .or(file.prune_interval_ms)
                    .unwrap_or(10_000)
                    .max(10),
            ),
            shutdown_grace: self.shutdown_grace_ms.or(file.shutdown_grace_ms).map_or(
                Duration::from_millis(deadline_ms + 1_000),
                Duration::from_millis,
            ),
            schedules: crate::service::ScheduleSettings {
                min_interval,
                max_failures: self
                    .schedule_max_failures
                    .or(file.schedule_max_failures)
                    .unwrap_or(5)
                    .max(1),
                ..Default::default()
            },
            smtp_url: self
                .smtp_url
                .clone()
                .or(file.smtp_url)
                .filter(|u| !u.is_empty()),
            database_pool: self
                .database_pool
                .or(file.database_pool)
                .unwrap_or_else(|| {
                    4 * std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
                })
                .clamp(1, 1000),
            email_from: self
                .email_from
                .clone()
                .or(file.email_from)
                .unwrap_or_else(|| "valbox@localhost".into()),
        })
    }
}

/// A URL with any password replaced by `***`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The userinfo ends at the last `@` before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

fn read_file(path: &Path) -> Result<SettingsFile, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Settings {
    /// The settings as the start-up log line shows them: keys are never
    /// shown (only whether they are set), URLs without their passwords.
    pub fn describe(&self) -> String {
        let set = |value: &Option<String>| if value.is_some() { "set" } else { "unset" };
        format!(
            "listen={} data_dir={} database={} redis={} deadline_ms={} memory_limit_mb={} max_body_bytes={} \
             library_writes={:?} explain_denials={} max_concurrent_calls={} max_calls_per_user={} max_instances={} \
             user_instance_share={} http_threads={} job_workers={} \
             cpu_turns={} fetch_allow_private={} admin_key={} master_key={} shutdown_grace_ms={} \
             retention={:?} prune_interval_ms={} budgets={:?} min_schedule_interval={:?} \
             schedule_max_failures={} smtp={} email_from={} database_pool={}",
            self.listen,
            self.data_dir.display(),
            self.database_url.as_deref().map_or("sqlite".into(), mask_password),
            self.redis_url.as_deref().map_or("in-process".into(), mask_password),
            self.deadline.as_millis(),
            self.memory_limit >> 20,
            self.max_body_bytes,
            self.library_writes,
            self.explain_denials,
            self.call_limits.total,
            self.call_limits.per_caller,
            self.max_instances,
            self.user_instance_share,
            self.http_threads,
            self.job_workers,
            self.cpu_turns,
            self.fetch.allow_private_addresses,
            set(&self.admin_key),
            if self.master_key.is_some() { "set" } else { "file" },
            self.shutdown_grace.as_millis(),
            self.retention,
            self.prune_interval.as_millis(),
            self.budgets,
            self.schedules.min_interval,
            self.schedules.max_failures,
            self.smtp_url.as_deref().map_or("none".into(), mask_password),
            self.email_from,
            self.database_pool,
        )
    }

    /// The sandbox configuration these settings describe.
    pub fn sandbox_config(&self) -> SandboxConfig {
        SandboxConfig {
            deadline: self.deadline,
            memory_limit: self.memory_limit,
            cache_dir: Some(self.data_dir.join("cache")),
            max_instances: self.max_instances,
            user_instance_share: self.user_instance_share,
            policy: valbox_runtime::policy::PolicySettings {
                deny_library_writes: self.library_writes == LibraryWrites::Deny,
            },
            explain_denials: self.explain_denials,
            fetch: self.fetch.clone(),
            cpu_turns: self.cpu_turns,
            budgets: self.budgets,
            ..SandboxConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_in_the_start_up_line() {
        assert_eq!(
            mask_password("postgres://valbox:hunter2@db:5432/valbox"),
            "postgres://valbox:***@db:5432/valbox"
        );
        assert_eq!(
            mask_password("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(mask_password("redis://127.0.0.1/0"), "redis://127.0.0.1/0");
        let settings = SettingsArgs {
            admin_key: Some("admin-secret".into()),
            database_url: Some("postgres://u:pw@h/db".into()),
            ..SettingsArgs::default()
        }
        .resolve()
        .unwrap();
        let line = settings.describe();
        assert!(
            !line.contains("admin-secret") && !line.contains("pw@"),
            "{line}"
        );
        assert!(line.contains("admin_key=set"), "{line}");
    }

    #[test]
    fn defaults_match_the_spec() {
        let settings = SettingsArgs::default().resolve().unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.deadline, Duration::from_secs(5));
        assert!(settings.database_url.is_none() && settings.redis_url.is_none());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("valbox-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("valbox.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ndeadline_ms = 250\n").unwrap();
        let args = SettingsArgs {
            config: Some(file.clone()),
            deadline_ms: Some(100),
            ..SettingsArgs::default()
        };
        let settings = args.resolve().unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.deadline, Duration::from_millis(100));
        std::fs::write(&file, "listn = 1\n").unwrap();
        let error = args.resolve().unwrap_err().to_string();
        assert!(error.contains("listn"), "{error}");
    }
}
