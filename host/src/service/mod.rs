//! What valbox does, independent of HTTP: users and keys, vals and versions,
//! secrets, runs in the three ways SPEC §3 offers, traces and emails. The
//! HTTP layer (`http/`) and the CLI call these; every run gets its frame
//! here and nowhere else. Users, keys and scopes are in `accounts.rs`.

mod accounts;
mod call_sites;
mod forks;
mod outbox;
mod quota;
mod reconcile;
mod references;
mod retention;
mod schedules;

pub use accounts::{Principal, SCOPES};
pub use call_sites::{
    CallSite, CallSiteReport, Evidence, Finding, FixChange, FixPreview, FixRequest, FixTarget,
    FixedVal,
};
pub use forks::{PinChange, PinReport, PinnedVal, Upstream};
pub use quota::{StorageUse, DEFAULT_MAX_VERSIONS, DEFAULT_QUOTA};
pub use references::{ReferenceList, ReferrerList, ReferrerView};
pub use schedules::{ScheduleSettings, ScheduleView};

use crate::jobs::{JobEnd, JobQueue, JobWork, Queue, MAX_ATTEMPTS};
use crate::metrics::Metrics;
use crate::redis_queue::{JobEntry, RedisQueue};
use crate::request_id;
use crate::sealing::SecretSealer;
use crate::store::{
    now as store_now, JobStatus, Privacy, Store, StoreError, StoredEmail, StoredEvaluation,
    StoredJob, User, ValMeta, ValVersion,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use valbox_runtime::policy::{
    decide, Capability, Decision, Owner, PolicySettings, Request, ValState,
};
use valbox_runtime::transform::valid_handle;
use valbox_runtime::{
    Arguments, Capacity, CapacityScope, CompileError, Email, Frame, Invocation, JsError,
    ResponseSink, Sandbox, SandboxError, StoredVal, World, BYTECODE_FORMAT,
};

/// Every way a request can fail; `http.rs` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed or invalid input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Code that does not compile (400).
    #[error("{0}")]
    Compile(CompileError),
    /// A missing or unknown API key where one is needed (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A key without the scope the route needs (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not there, or not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// Already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The call tree ran past its deadline (408).
    #[error("{0}")]
    Timeout(String),
    /// A sandbox limit other than time was hit (500).
    #[error("{0}")]
    Limit(String),
    /// The val threw (500, with the JavaScript error).
    #[error("{0}")]
    Threw(JsError),
    /// No capacity for the call: the caller's share (429) or the whole
    /// server (503) is in use.
    #[error("{0}")]
    Capacity(Capacity),
    /// The write would take the user past their storage quota (507).
    #[error("{0}")]
    QuotaExceeded(String),
    /// The server's disk is full; nothing was written (507).
    #[error("{0}")]
    StorageFull(String),
    /// Something on valbox's side failed (500).
    #[error("{0}")]
    Internal(String),
}

/// The kinds of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// Malformed or invalid input (400).
    BadRequest,
    /// Code that does not compile (400).
    CompileError,
    /// A missing or unknown API key (401).
    Unauthorized,
    /// The key lacks the scope the route needs (403).
    Forbidden,
    /// Not there, or not visible to the caller (404).
    NotFound,
    /// Already exists, or reserved (409).
    Conflict,
    /// The call tree ran past its deadline (408).
    Timeout,
    /// The body is over the size limit (413).
    TooLarge,
    /// No capacity: the caller's share of calls or instances (429) or the
    /// server's (503) is in use; retry after `Retry-After` seconds.
    Capacity,
    /// The write would pass the user's storage quota (507).
    QuotaExceeded,
    /// The server's disk is full; nothing was written (507).
    StorageFull,
    /// The val threw (500).
    ValError,
    /// A sandbox limit other than time (500).
    LimitExceeded,
    /// Something on valbox's side failed (500).
    Internal,
}

impl ServiceError {
    /// The kind the API names it by.
    pub fn kind(&self) -> ErrorType {
        use ServiceError::*;
        match self {
            BadRequest(_) => ErrorType::BadRequest,
            Compile(_) => ErrorType::CompileError,
            Unauthorized(_) => ErrorType::Unauthorized,
            Forbidden(_) => ErrorType::Forbidden,
            NotFound(_) => ErrorType::NotFound,
            Conflict(_) => ErrorType::Conflict,
            Timeout(_) => ErrorType::Timeout,
            Limit(_) => ErrorType::LimitExceeded,
            Threw(_) => ErrorType::ValError,
            Capacity(_) => ErrorType::Capacity,
            QuotaExceeded(_) => ErrorType::QuotaExceeded,
            StorageFull(_) => ErrorType::StorageFull,
            Internal(_) => ErrorType::Internal,
        }
    }

    /// The error as the API shows it: `{"type", "message", ...}`, with the
    /// compiler's position or the JavaScript error's name and stack.
    pub fn to_json(&self) -> Value {
        let mut body = serde_json::json!({"type": self.kind(), "message": self.to_string()});
        match self {
            ServiceError::Compile(error) => {
                body["message"] = error.message.clone().into();
                body["line"] = error.line.into();
                body["column"] = error.column.into();
            }
            ServiceError::Threw(error) => {
                body["name"] = error.name.clone().into();
                body["stack"] = error.stack.clone().into();
            }
            _ => {}
        }
        body
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => ServiceError::Conflict(message),
            StoreError::Database(message) => ServiceError::Internal(message),
            StoreError::Full(message) => ServiceError::StorageFull(format!(
                "the server is out of disk space; nothing was written ({message})"
            )),
        }
    }
}

impl From<SandboxError> for ServiceError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::Thrown(error) => ServiceError::Threw(error),
            SandboxError::Compile(error) => ServiceError::Compile(error),
            SandboxError::Timeout(_) => ServiceError::Timeout(e.to_string()),
            SandboxError::Limit(_) => ServiceError::Limit(e.to_string()),
            SandboxError::Capacity(refused) => ServiceError::Capacity(refused),
            SandboxError::Trap(_) | SandboxError::Setup(_) => ServiceError::Internal(e.to_string()),
        }
    }
}

/// Shorthand for service results.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// A version of a val as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ValView {
    /// Owner.
    pub user: String,
    /// Name.
    pub name: String,
    /// This version.
    pub version: u32,
    /// The latest version.
    pub latest_version: u32,
    /// Privacy.
    pub privacy: Privacy,
    /// Source code.
    pub code: String,
    /// When this version was saved (Unix seconds).
    pub created_at: i64,
    /// The val's schedule (shown to its owner only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleView>,
    /// What it was forked from (`user.name@version`), if it is a fork.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
}

/// The response an HTTP handler built: Express-style (`res.status(…)`,
/// headers as an object) or a returned web `Response` (header pairs, so
/// several `Set-Cookie`s survive, and a body of bytes).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ExpressResponse {
    /// HTTP status.
    pub status: u16,
    /// Lower-case header names and values.
    pub headers: ResponseHeaders,
    /// Body text, or with `latin1` one character per byte.
    pub body: String,
    /// The body's characters are bytes (U+0000–U+00FF).
    #[serde(default)]
    pub latin1: bool,
}

/// What `/v1/run` answers with.
#[derive(Debug)]
pub enum RunAnswer {
    /// The JSON value the val returned.
    Json(Value),
    /// A `Response` the val returned: the HTTP answer.
    Response(ExpressResponse),
}

impl RunAnswer {
    /// As JSON (jobs): a Response as `{status, headers, body}` with the
    /// body as text.
    pub fn into_json(self) -> Value {
        match self {
            RunAnswer::Json(value) => value,
            RunAnswer::Response(response) => {
                let (status, headers, body) = response.into_parts();
                serde_json::json!({
                    "status": status,
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                })
            }
        }
    }
}

/// Headers as the two kinds of handler give them.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum ResponseHeaders {
    /// One value per name (Express-style `res.set`).
    Map(std::collections::BTreeMap<String, String>),
    /// Name/value pairs, names repeated where a header is (a `Response`).
    Pairs(Vec<(String, String)>),
}

impl ResponseHeaders {
    /// Every name/value pair.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        match self {
            ResponseHeaders::Map(map) => map.into_iter().collect(),
            ResponseHeaders::Pairs(pairs) => pairs,
        }
    }
}

impl ExpressResponse {
    /// The status, every header pair and the body's bytes.
    pub fn into_parts(self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let body = if self.latin1 {
            self.body.chars().map(|c| c as u32 as u8).collect()
        } else {
            self.body.into_bytes()
        };
        (self.status, self.headers.into_pairs(), body)
    }
}

/// A call's result text as JSON (a returned Response as its description).
fn json_result(text: &str) -> ServiceResult<Value> {
    let text = valbox_runtime::returned_response(text).unwrap_or(text);
    serde_json::from_str(text)
        .map_err(|e| ServiceError::Internal(format!("the result is not JSON: {e}")))
}

/// Whose frame an Express handler runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpressMode {
    /// As the val's author (`/v1/express`).
    Api,
    /// In Restricted Library Mode for the caller (v0 `/express`).
    Restricted,
}

/// How many calls may run at once, in total and per caller.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Calls running at once, over all callers.
    pub total: usize,
    /// Calls running at once for one caller (anonymous callers share one count).
    pub per_caller: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            total: 32,
            per_caller: 8,
        }
    }
}

/// Counts running calls; a call over a limit is refused at once (429 for the
/// caller's limit, 503 for the server's), never queued.
struct CallSlots {
    limits: CallLimits,
    running: std::sync::Mutex<(usize, std::collections::HashMap<String, usize>)>,
}

/// A running call's place; released when dropped.
struct CallSlot<'a> {
    slots: &'a CallSlots,
    caller: String,
}

impl CallSlots {
    fn take(&self, caller: Option<&User>) -> ServiceResult<CallSlot<'_>> {
        let caller = caller.map_or("", |u| u.handle.as_str()).to_string();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mine = running.1.get(&caller).copied().unwrap_or(0);
        if running.0 >= self.limits.total {
            return Err(ServiceError::Capacity(Capacity {
                scope: CapacityScope::Server,
                message: format!(
                    "no capacity: the server is running {} calls, its limit; try again shortly",
                    self.limits.total
                ),
            }));
        }
        if mine >= self.limits.per_caller {
            return Err(ServiceError::Capacity(Capacity {
                scope: CapacityScope::User,
                message: format!(
                    "no capacity: you have {} calls running, the limit per caller; try again when one ends",
                    self.limits.per_caller
                ),
            }));
        }
        running.0 += 1;
        *running.1.entry(caller.clone()).or_default() += 1;
        Ok(CallSlot {
            slots: self,
            caller,
        })
    }
}

impl Drop for CallSlot<'_> {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        running.0 -= 1;
        if let Some(count) = running.1.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                running.1.remove(&self.caller);
            }
        }
    }
}

/// The service: store, sandbox and secret sealing together.
pub struct Service {
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    sealer: Arc<SecretSealer>,
    /// The sandbox's view of the store, shared by every run.
    world: Arc<dyn World>,
    admin_key: Option<String>,
    slots: CallSlots,
    metrics: Metrics,
    jobs: Queue,
    /// Set by [`Service::shut_down`]: job workers take no new job.
    stopping: AtomicBool,
    /// The job worker threads, joined on shutdown.
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// When each key's `last_used_at` was last written (at most once a minute).
    key_touches: Mutex<std::collections::HashMap<String, i64>>,
    /// Bytes each user may store.
    quota: quota::Quota,
    /// How schedules behave.
    schedules: ScheduleSettings,
    /// The SMTP server emails are sent through, when configured.
    mailer: Option<Arc<crate::mailer::Mailer>>,
}

/// A new job's id: 16 random bytes in hex.
fn new_job_id() -> ServiceResult<String> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(hex::encode(id))
}

/// A name for this process's Redis consumer `role`, unique per host and process.
fn consumer_name(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    let host = if host.is_empty() { "valbox" } else { host };
    format!("{host}-{}-{role}", std::process::id())
}

/// Hash under which an API key is stored (the key itself never is).
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Checks a val name: a JavaScript identifier of at most 64 characters.
pub fn check_val_name(name: &str) -> ServiceResult<()> {
    let mut chars = name.chars();
    let valid = name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(format!(
            "`{name}` is not a valid val name: use letters, digits, `_` or `$`, not starting with a digit, at most 64 characters"
        )))
    }
}

fn check_secret_name(name: &str) -> ServiceResult<()> {
    check_val_name(name).map_err(|_| {
        ServiceError::BadRequest(format!(
            "`{name}` is not a valid secret name: use letters, digits, `_` or `$`, not starting with a digit"
        ))
    })
}

/// Lower-cases and checks a handle.
pub fn normalize_handle(handle: &str) -> ServiceResult<String> {
    let handle = handle.to_ascii_lowercase();
    if valid_handle(&handle) {
        Ok(handle)
    } else {
        Err(ServiceError::BadRequest(format!(
            "`{handle}` is not a valid handle: a letter, then up to 31 letters, digits or `_`"
        )))
    }
}

impl Service {
    /// Builds the service.
    pub fn new(
        store: Arc<dyn Store>,
        sandbox: Sandbox,
        sealer: SecretSealer,
        admin_key: Option<String>,
        limits: CallLimits,
    ) -> Self {
        let sandbox = Arc::new(sandbox);
        let sealer = Arc::new(sealer);
        let quota = quota::Quota::default();
        let world = Arc::new(StoreWorld {
            store: store.clone(),
            sandbox: sandbox.clone(),
            sealer: sealer.clone(),
            quota: quota.clone(),
            send_from_domain: None,
        });
        Service {
            store,
            sandbox,
            sealer,
            world,
            admin_key: admin_key.filter(|k| !k.is_empty()),
            slots: CallSlots {
                limits,
                running: Default::default(),
            },
            metrics: Metrics::new(),
            jobs: Queue::InProcess(JobQueue::default()),
            stopping: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
            key_touches: Mutex::new(std::collections::HashMap::new()),
            quota,
            schedules: ScheduleSettings::default(),
            mailer: None,
        }
    }

    /// Sends stored emails through `mailer` (see `outbox.rs`).
    pub fn with_mailer(mut self, mailer: crate::mailer::Mailer) -> Self {
        self.world = Arc::new(StoreWorld {
            store: self.store.clone(),
            sandbox: self.sandbox.clone(),
            sealer: self.sealer.clone(),
            quota: self.quota.clone(),
            send_from_domain: Some(mailer.domain().to_string()),
        });
        self.mailer = Some(Arc::new(mailer));
        self
    }

    /// Sets how schedules behave (minimum interval, failures before pausing).
    pub fn with_schedules(mut self, settings: ScheduleSettings) -> Self {
        self.schedules = settings;
        self
    }

    /// Puts jobs on Redis Streams at `url` instead of the in-process queue.
    pub fn with_redis_queue(mut self, url: &str) -> ServiceResult<Self> {
        // A worker may hold a job this long (two deadlines and a margin)
        // before another takes it over.
        let visibility = 2 * self.sandbox.config().deadline + std::time::Duration::from_secs(5);
        let producer = RedisQueue::connect(url, &consumer_name("producer"), visibility)
            .map_err(ServiceError::Internal)?;
        self.jobs = Queue::Redis(Box::new(producer));
        Ok(self)
    }

    /// `POST /v1/jobs`: stores the job (durably) and queues it; it runs as `user`.
    pub fn submit_job(&self, user: &User, request: &Value) -> ServiceResult<StoredJob> {
        let work = JobWork::parse(request).map_err(ServiceError::BadRequest)?;
        let id = new_job_id()?;
        self.store.add_job(&id, &user.handle, &work.to_json())?;
        let job = self.job(user, &id)?;
        self.enqueue(&id, &user.handle, &work);
        Ok(job)
    }

    /// Hands a stored job to the workers. With Redis, a job that cannot be
    /// added now (Redis is down) stays stored as queued, and the reconciler
    /// adds it once Redis is back: the store is the record of what was promised.
    fn enqueue(&self, id: &str, owner: &str, work: &JobWork) {
        match &self.jobs {
            Queue::InProcess(queue) => {
                self.metrics.queue_depth.inc();
                queue.push(id.to_string());
            }
            Queue::Redis(producer) => {
                let entry = self.job_entry(id, owner, work);
                if let Err(error) = producer.push(&entry) {
                    tracing::warn!(job = %id, %error, "the job is stored but not queued yet; the reconciler will queue it");
                }
            }
        }
    }

    /// A job as its Redis stream entry.
    fn job_entry(&self, id: &str, owner: &str, work: &JobWork) -> JobEntry {
        let (kind, target, args) = match work {
            JobWork::Run { owner, name, args } => ("run", format!("{owner}.{name}"), args.clone()),
            JobWork::Eval { code, args } => ("eval", code.clone(), args.clone()),
            JobWork::Scheduled { name, .. } => ("schedule", format!("{owner}.{name}"), "[]".into()),
        };
        JobEntry {
            id: id.to_string(),
            kind: kind.into(),
            target,
            args,
            principal: owner.to_string(),
            deadline_ms: self.sandbox.config().deadline.as_millis() as u64,
        }
    }

    /// `GET /v1/jobs`: `user`'s jobs (scheduled runs included), newest first.
    pub fn jobs(
        &self,
        user: &User,
        limit: u32,
        before: Option<&str>,
    ) -> ServiceResult<Vec<StoredJob>> {
        Ok(self.store.jobs(&user.handle, limit.clamp(1, 100), before)?)
    }

    /// `GET /v1/jobs/{id}`: one of `user`'s jobs.
    pub fn job(&self, user: &User, id: &str) -> ServiceResult<StoredJob> {
        self.store
            .job(&user.handle, id)?
            .ok_or_else(|| ServiceError::NotFound(format!("no job {id}")))
    }

    /// Starts `workers` threads that run queued jobs. On the in-process
    /// queue, the jobs a previous process left unfinished are queued again
    /// first (Redis keeps its own).
    pub fn start_job_workers(self: &Arc<Self>, workers: usize) -> ServiceResult<()> {
        if let Queue::InProcess(queue) = &self.jobs {
            for id in self.store.unfinished_jobs()? {
                self.metrics.queue_depth.inc();
                queue.push(id);
            }
        }
        let mut handles = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for n in 0..workers {
            let service = self.clone();
            let handle = std::thread::Builder::new()
                .name(format!("valbox-jobs-{n}"))
                .stack_size(valbox_runtime::HOST_THREAD_STACK)
                .spawn(move || service.work(n))
                .map_err(|e| ServiceError::Internal(format!("starting a job worker: {e}")))?;
            handles.push(handle);
        }
        Ok(())
    }

    /// Stops for a clean exit: job workers finish the job they hold (within
    /// `grace`) and take no other (jobs still queued stay stored as queued,
    /// or unacknowledged in Redis, and run after the restart); then queued
    /// evaluation records are committed. True when every worker finished in time.
    pub fn shut_down(&self, grace: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        let end = Instant::now() + grace;
        let handles = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let mut finished = true;
        for handle in handles {
            while !handle.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                finished = false;
            }
        }
        if let Err(error) = self.store.flush() {
            tracing::error!(%error, "evaluation records could not be saved at shutdown");
        }
        finished
    }

    /// Runs `body` on a named thread that shutdown waits for (with the job workers).
    pub(crate) fn spawn_background(
        self: &Arc<Self>,
        name: &str,
        body: impl FnOnce(Arc<Service>) + Send + 'static,
    ) -> ServiceResult<()> {
        let service = self.clone();
        let handle = std::thread::Builder::new()
            .name(format!("valbox-{name}"))
            .spawn(move || body(service))
            .map_err(|e| ServiceError::Internal(format!("starting the {name} thread: {e}")))?;
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
        Ok(())
    }

    /// Whether [`Service::shut_down`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// One worker thread: takes jobs from the queue and runs them until shutdown.
    fn work(&self, n: usize) {
        // How long a worker waits for a job before checking for shutdown.
        const POLL: Duration = Duration::from_millis(200);
        match &self.jobs {
            Queue::InProcess(queue) => {
                while !self.is_stopping() {
                    let Some(id) = queue.next(POLL) else {
                        continue;
                    };
                    self.metrics.queue_depth.dec();
                    if let Err(error) = self.run_job(&id) {
                        tracing::error!(job = %id, %error, "job could not be recorded");
                    }
                }
            }
            Queue::Redis(producer) => {
                let consumer = consumer_name(&format!("worker-{n}"));
                // Connects on first use, and again after a failure.
                let queue = producer.for_consumer(&consumer);
                while !self.is_stopping() {
                    let delivery = match queue.next(POLL) {
                        Ok(Some(delivery)) => delivery,
                        Ok(None) => continue,
                        Err(error) => {
                            tracing::warn!(%consumer, %error, "job queue unavailable; retrying in 1 s");
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    };
                    // Not acknowledged when it could not be recorded: the
                    // delivery is taken over after the visibility timeout.
                    let acknowledged = match self.run_job(&delivery.job_id) {
                        Ok(JobEnd::DeadLetter) => queue.dead_letter(&delivery),
                        Ok(_) => queue.ack(&delivery),
                        Err(e) => Err(format!("job {}: {e}", delivery.job_id)),
                    };
                    if let Err(error) = acknowledged {
                        tracing::error!(%consumer, %error, "job delivery could not be acknowledged");
                    }
                }
            }
        }
    }

    /// Jobs waiting for a worker (or held by one and not finished).
    fn queue_depth(&self) -> Option<i64> {
        match &self.jobs {
            Queue::InProcess(_) => None,
            Queue::Redis(producer) => producer.depth().ok(),
        }
    }

    /// Runs one delivery of a job to its end and records how it ended (once).
    fn run_job(&self, id: &str) -> ServiceResult<JobEnd> {
        let Some(job) = self.store.start_job(id)? else {
            return Ok(JobEnd::AlreadyFinished);
        };
        let lag = (store_now() - job.created_at).max(0) as f64;
        self.metrics.queue_lag_seconds.observe(lag);
        if job.attempts > MAX_ATTEMPTS {
            let error = json!({"type": "dead_letter", "message": format!(
                "the job was started {} times without finishing; it is not tried again",
                job.attempts - 1
            )});
            self.store.finish_job(id, JobStatus::Failed, &error)?;
            self.metrics.jobs.with_label_values(&["dead_letter"]).inc();
            tracing::warn!(job = %id, owner = %job.owner, attempts = job.attempts - 1, "job dead-lettered");
            return Ok(JobEnd::DeadLetter);
        }
        tracing::info!(job = %id, owner = %job.owner, attempt = job.attempts, lag_s = lag, "job started");
        let started = Instant::now();
        let outcome = loop {
            match request_id::scope(Some(id.to_string()), || self.job_outcome(&job)) {
                // No capacity for the owner now: wait, do not fail.
                Err(ServiceError::Capacity(_)) => {
                    self.metrics.job_retries.inc();
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                outcome => break outcome,
            }
        };
        let (status, value) = match outcome {
            Ok(result) => (JobStatus::Done, result),
            Err(error) => (JobStatus::Failed, error.to_json()),
        };
        let label = if status == JobStatus::Done {
            "done"
        } else {
            "failed"
        };
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        if self.store.finish_job(id, status, &value)? {
            self.metrics.jobs.with_label_values(&[label]).inc();
            match status {
                JobStatus::Done => tracing::info!(job = %id, took_ms, "job done"),
                _ => tracing::info!(job = %id, took_ms, error = %value["message"], "job failed"),
            }
        } else {
            tracing::info!(job = %id, "job had already finished (duplicate delivery)");
        }
        Ok(JobEnd::Finished)
    }

    fn job_outcome(&self, job: &StoredJob) -> ServiceResult<Value> {
        let user = self
            .store
            .user(&job.owner)?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {}", job.owner)))?;
        match JobWork::parse_stored(&job.request).map_err(ServiceError::BadRequest)? {
            JobWork::Run { owner, name, args } => self
                .run(Some(&user), &owner, &name, &args, None)
                .map(RunAnswer::into_json),
            JobWork::Eval { code, args } => self.eval(Some(&user), &code, &args),
            JobWork::Scheduled {
                name,
                version,
                scheduled_at,
                skipped,
            } => self.run_scheduled(&user, &name, version, scheduled_at, skipped, job.attempts),
        }
    }

    /// The metrics this service counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `/metrics`: everything in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        if let Some(depth) = self.queue_depth() {
            self.metrics.queue_depth.set(depth);
        }
        if let Ok(bytes) = self.store.size_bytes() {
            self.metrics.store_bytes.set(bytes as i64);
        }
        self.metrics.store(&self.store.stats());
        let versions = self.metrics.pruned_rows.with_label_values(&["versions"]);
        versions.inc_by(self.quota.pruned_versions().saturating_sub(versions.get()));
        let refused = self.quota.refusals();
        let counted = self.metrics.quota_refusals.get();
        self.metrics
            .quota_refusals
            .inc_by(refused.saturating_sub(counted));
        self.metrics.render(&self.sandbox.stats())
    }

    /// Saves a new version of `user`'s val (compiling it first: code that
    /// does not compile makes no version).
    pub fn save_val(
        &self,
        user: &User,
        name: &str,
        code: &str,
        privacy: Option<Privacy>,
    ) -> ServiceResult<ValMeta> {
        check_val_name(name)?;
        let bytecode = self
            .sandbox
            .compile(&format!("{}/{name}.js", user.handle), code)?;
        let adding = (code.len() + bytecode.len()) as u64;
        self.quota
            .check(self.store.as_ref(), &user.handle, adding)?;
        let meta = self.store.save_version(
            &user.handle,
            name,
            privacy,
            code,
            &bytecode,
            BYTECODE_FORMAT,
        )?;
        self.index_references(&user.handle, name, meta.version, code)?;
        self.quota
            .trim_versions(self.store.as_ref(), &user.handle, name)?;
        Ok(meta)
    }

    /// A version of a val, if the viewer may see it (private: owner only).
    pub fn val(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
        version: Option<u32>,
    ) -> ServiceResult<ValView> {
        let owner = normalize_handle(owner)?;
        let not_found = || ServiceError::NotFound(format!("no val @{owner}.{name}"));
        let found = self
            .store
            .version(&owner, name, version)?
            .ok_or_else(not_found)?;
        if !visible(
            viewer,
            &found.meta.user,
            found.meta.privacy == Privacy::Public,
        ) {
            return Err(not_found());
        }
        Ok(ValView {
            user: found.meta.user,
            name: found.meta.name,
            version: found.version,
            latest_version: found.meta.version,
            privacy: found.meta.privacy,
            code: found.code.to_string(),
            created_at: found.created_at,
            schedule: match viewer {
                Some(viewer) if viewer.handle == owner => self.schedule_of(&owner, name)?,
                _ => None,
            },
            forked_from: self
                .store
                .fork_of(&owner, name)?
                .map(|(o, n, v)| format!("{o}.{n}@{v}")),
        })
    }

    /// The latest version's metadata of `user`'s own val `name`.
    pub fn val_meta(&self, user: &User, name: &str) -> ServiceResult<ValMeta> {
        self.store
            .version(&user.handle, name, None)?
            .map(|found| found.meta)
            .ok_or_else(|| ServiceError::NotFound(format!("no val @{}.{name}", user.handle)))
    }

    /// Version numbers and save times of a val the viewer may see.
    pub fn versions(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
    ) -> ServiceResult<Vec<(u32, i64)>> {
        self.val(viewer, owner, name, None)?;
        Ok(self.store.versions(&normalize_handle(owner)?, name)?)
    }

    /// Changes the privacy of one of `user`'s vals.
    pub fn set_privacy(&self, user: &User, name: &str, privacy: Privacy) -> ServiceResult<ValMeta> {
        self.store
            .set_privacy(&user.handle, name, privacy)?
            .ok_or_else(|| ServiceError::NotFound(format!("no val @{}.{name}", user.handle)))
    }

    /// Deletes one of `user`'s vals with all its versions.
    pub fn delete_val(&self, user: &User, name: &str) -> ServiceResult<()> {
        if self.store.delete_val(&user.handle, name)? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "no val @{}.{name}",
                user.handle
            )))
        }
    }

    /// A user's vals as the viewer may see them.
    pub fn list_vals(&self, viewer: Option<&User>, owner: &str) -> ServiceResult<Vec<ValMeta>> {
        let owner = normalize_handle(owner)?;
        if self.store.user(&owner)?.is_none() {
            return Err(ServiceError::NotFound(format!("no user @{owner}")));
        }
        let own = visible(viewer, &owner, false);
        Ok(self.store.list_vals(&owner, own)?)
    }

    /// Sets one of `user`'s secrets (stored encrypted, never returned).
    pub fn put_secret(&self, user: &User, name: &str, value: &str) -> ServiceResult<()> {
        check_secret_name(name)?;
        let sealed = self.sealer.seal(&user.handle, name, value);
        self.quota
            .check(self.store.as_ref(), &user.handle, sealed.len() as u64)?;
        Ok(self.store.put_secret(&user.handle, name, &sealed)?)
    }

    /// Names of `user`'s secrets.
    pub fn secret_names(&self, user: &User) -> ServiceResult<Vec<String>> {
        Ok(self.store.secret_names(&user.handle)?)
    }

    /// Deletes one of `user`'s secrets.
    pub fn delete_secret(&self, user: &User, name: &str) -> ServiceResult<()> {
        if self.store.delete_secret(&user.handle, name)? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no secret `{name}`")))
        }
    }

    /// `/v1/eval`: `code` is an expression or the body of an async function,
    /// run as `user`'s own code (anonymously without a user).
    pub fn eval(&self, user: Option<&User>, code: &str, args_json: &str) -> ServiceResult<Value> {
        let slot = self.take_slot(user)?;
        let bytecode = self.compile_eval(code)?;
        let frame = Frame::own(user.map(|u| u.handle.as_str()), self.deadline());
        let text = self.run_text(
            Invocation {
                frame,
                target: "eval".into(),
                bytecode: &bytecode,
                export: "default",
                args: Arguments::Json(args_json),
                payer: Some(&slot.caller),
            },
            None,
        )?;
        json_result(&text)
    }

    fn compile_eval(&self, code: &str) -> ServiceResult<Vec<u8>> {
        let as_expression = format!("export default async function () {{ return (\n{code}\n); }}");
        if let Ok(bytecode) = self.sandbox.compile("eval.js", &as_expression) {
            return Ok(bytecode);
        }
        let as_body = format!("export default async function () {{\n{code}\n}}");
        self.sandbox
            .compile("eval.js", &as_body)
            .map_err(|e| match e {
                // Positions are reported against the user's code, not the wrapper.
                SandboxError::Compile(mut error) => {
                    error.line = error.line.map(|l| l.saturating_sub(1).max(1));
                    ServiceError::Compile(error)
                }
                other => other.into(),
            })
    }

    /// `/v1/run`: API mode — `owner`'s val runs as `owner` with JSON arguments.
    pub fn run(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
        args_json: &str,
        sink: Option<Arc<dyn ResponseSink>>,
    ) -> ServiceResult<RunAnswer> {
        let slot = self.take_slot(viewer)?;
        let (stored, frame) = self.api_target(viewer, owner, name)?;
        let text = self.run_val(&slot, &stored, frame, Arguments::Json(args_json), sink)?;
        let malformed =
            |e: serde_json::Error| ServiceError::Internal(format!("the result is not JSON: {e}"));
        match valbox_runtime::returned_response(&text) {
            Some(described) => Ok(RunAnswer::Response(
                serde_json::from_str(described).map_err(malformed)?,
            )),
            None => Ok(RunAnswer::Json(
                serde_json::from_str(&text).map_err(malformed)?,
            )),
        }
    }

    /// Calls `owner`'s Express-style handler with `request`: as its author
    /// (`/v1/express`) or in Restricted Library Mode for the caller (v0 `/express`).
    pub fn express(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
        request: &Value,
        mode: ExpressMode,
        sink: Option<Arc<dyn ResponseSink>>,
    ) -> ServiceResult<ExpressResponse> {
        let slot = self.take_slot(viewer)?;
        let (stored, api_frame) = self.api_target(viewer, owner, name)?;
        let frame = match mode {
            ExpressMode::Api => api_frame,
            ExpressMode::Restricted => {
                Frame::own(viewer.map(|u| u.handle.as_str()), self.deadline())
                    .library_call(&stored.owner)
            }
        };
        let request = request.to_string();
        let text = self.run_val(
            &slot,
            &stored,
            frame,
            Arguments::ExpressRequest(&request),
            sink,
        )?;
        let text = valbox_runtime::returned_response(&text).unwrap_or(&text);
        serde_json::from_str(text).map_err(|e| {
            ServiceError::Internal(format!("the handler's response is malformed: {e}"))
        })
    }

    /// The val an API-mode request runs, with its frame; 404 unless the
    /// viewer may see it.
    fn api_target(
        &self,
        viewer: Option<&User>,
        owner: &str,
        name: &str,
    ) -> ServiceResult<(StoredVal, Frame)> {
        let owner = normalize_handle(owner)?;
        let not_found = || ServiceError::NotFound(format!("no val @{owner}.{name}"));
        let stored = self.world.val(&owner, name, None).ok_or_else(not_found)?;
        if !visible(viewer, &stored.owner, stored.public) {
            return Err(not_found());
        }
        let frame = Frame::api(&owner, 0, self.deadline());
        Ok((stored, frame))
    }

    /// A place among the running calls for `caller`'s call, refusals counted.
    fn take_slot(&self, caller: Option<&User>) -> ServiceResult<CallSlot<'_>> {
        self.slots.take(caller).inspect_err(|refused| {
            if let ServiceError::Capacity(refused) = refused {
                let reason = match refused.scope {
                    CapacityScope::User => "user_calls",
                    CapacityScope::Server => "server_calls",
                };
                self.metrics
                    .capacity_refusals
                    .with_label_values(&[reason])
                    .inc();
            }
        })
    }

    /// When a call starting now must end (the HTTP layer also bounds a
    /// streamed answer by it).
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.sandbox.config().deadline
    }

    /// Runs `stored` (its export named like the val) in `frame` for the
    /// slot's caller; the result's text, as [`Service::run_text`].
    fn run_val(
        &self,
        slot: &CallSlot<'_>,
        stored: &StoredVal,
        frame: Frame,
        args: Arguments<'_>,
        sink: Option<Arc<dyn ResponseSink>>,
    ) -> ServiceResult<String> {
        let target = format!("@{}.{}@{}", stored.owner, stored.name, stored.version);
        self.run_text(
            Invocation {
                frame,
                target,
                bytecode: &stored.bytecode,
                export: &stored.name,
                args,
                payer: Some(&slot.caller),
            },
            sink,
        )
    }

    /// Runs a call (its instances counted against its payer, the slot's
    /// caller), records the traces and the metrics, and returns the
    /// result's text; `sink`: where an HTTP answer may stream.
    fn run_text(
        &self,
        call: Invocation<'_>,
        sink: Option<Arc<dyn ResponseSink>>,
    ) -> ServiceResult<String> {
        let mode = call.frame.mode;
        let outcome = self.sandbox.run_answering(self.world.clone(), call, sink);
        let result = outcome.result.map_err(ServiceError::from);
        if !outcome.admitted {
            return result;
        }
        let took = std::time::Duration::from_micros(outcome.evaluation.duration_us);
        self.metrics
            .evaluation(mode, result.as_ref().map(drop), took);
        let request_id = request_id::current();
        let mut evaluation = outcome.evaluation;
        self.place_denials(&mut evaluation);
        for record in evaluation.split_by_viewer() {
            if let Some(viewer) = &record.visible_to {
                let json = serde_json::to_string(&record)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                self.store
                    .add_evaluation(viewer, request_id.as_deref(), json)?;
            }
        }
        result
    }

    /// `user`'s evaluation records, newest first (only those of `request_id` when given).
    pub fn evaluations(
        &self,
        user: &User,
        limit: u32,
        before: Option<i64>,
        request_id: Option<&str>,
    ) -> ServiceResult<Vec<StoredEvaluation>> {
        Ok(self
            .store
            .evaluations(&user.handle, limit.clamp(1, 100), before, request_id)?)
    }

    /// One of `user`'s evaluation records.
    pub fn evaluation(&self, user: &User, id: i64) -> ServiceResult<StoredEvaluation> {
        self.store
            .evaluation(&user.handle, id)?
            .ok_or_else(|| ServiceError::NotFound(format!("no evaluation {id}")))
    }

    /// Emails `console.email` sent to `user`.
    pub fn emails(&self, user: &User) -> ServiceResult<Vec<StoredEmail>> {
        Ok(self.store.emails(&user.handle)?)
    }
}

/// Whether `viewer` may see (and run through the API) a val of `owner`:
/// the policy's answer for the viewer's own code reading it. Anything short
/// of an allow is answered as "not found", so a private val is never revealed.
fn visible(viewer: Option<&User>, owner: &str, public: bool) -> bool {
    let frame = Frame::own(viewer.map(|u| u.handle.as_str()), Instant::now());
    let state = if public {
        ValState::Public
    } else {
        ValState::Private
    };
    let request = Request {
        owner: Owner::Named(owner),
        capability: Capability::ReadVal(state),
    };
    matches!(
        decide(&frame, &PolicySettings::default(), &request),
        Decision::Allow(_)
    )
}

/// The sandbox's view of the store. Bytecode compiled by an older guest is
/// recompiled from the saved code on first use.
struct StoreWorld {
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    sealer: Arc<SecretSealer>,
    quota: quota::Quota,
    /// With an SMTP server: emails are stored to be sent, with `Message-ID`s in this domain.
    send_from_domain: Option<String>,
}

impl StoreWorld {
    fn current_bytecode(&self, version: &ValVersion) -> Option<Arc<[u8]>> {
        if version.guest_hash == BYTECODE_FORMAT {
            return Some(version.bytecode.clone());
        }
        let meta = &version.meta;
        let bytecode = self
            .sandbox
            .compile(&format!("{}/{}.js", meta.user, meta.name), &version.code)
            .ok()?;
        let _ = self.store.replace_bytecode(
            &meta.user,
            &meta.name,
            version.version,
            &bytecode,
            BYTECODE_FORMAT,
        );
        Some(bytecode.into())
    }
}

impl World for StoreWorld {
    fn val(&self, owner: &str, name: &str, version: Option<u32>) -> Option<StoredVal> {
        let found = self.store.version(owner, name, version).ok()??;
        let bytecode = self.current_bytecode(&found)?;
        Some(StoredVal {
            owner: found.meta.user,
            name: found.meta.name,
            version: found.version,
            public: found.meta.privacy == Privacy::Public,
            bytecode,
        })
    }

    fn save_value(
        &self,
        owner: &str,
        name: &str,
        source: String,
        bytecode: Vec<u8>,
    ) -> Result<u32, String> {
        let adding = (source.len() + bytecode.len()) as u64;
        self.quota
            .check(self.store.as_ref(), owner, adding)
            .map_err(|e| e.to_string())?;
        let version = self
            .store
            .save_version(owner, name, None, &source, &bytecode, BYTECODE_FORMAT)
            .map(|meta| meta.version)
            .map_err(|e| e.to_string())?;
        self.quota
            .trim_versions(self.store.as_ref(), owner, name)
            .map_err(|e| e.to_string())?;
        Ok(version)
    }

    fn secret(&self, owner: &str, key: &str) -> Option<String> {
        let sealed = self.store.secret(owner, key).ok()??;
        self.sealer.open(owner, key, &sealed)
    }

    fn send_email(&self, email: Email) -> Result<(), String> {
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).map_err(|e| e.to_string())?;
        let domain = self.send_from_domain.as_deref().unwrap_or("valbox.invalid");
        let message_id = format!("<{}@{domain}>", hex::encode(id));
        self.store
            .add_email(
                &email.to,
                email.from_author.as_deref(),
                &email.subject,
                &email.body,
                &message_id,
                self.send_from_domain.is_some(),
            )
            .map_err(|e| e.to_string())
    }
}
