//! Scheduled vals: setting, pausing and listing schedules, the scheduler
//! thread that turns due ticks into jobs, and what a scheduled run does
//! when it ends (failures in a row pause the schedule and email its author).
//!
//! Exactly one job per tick, also with several nodes: every node's
//! scheduler may see a tick due, but claiming it is one store transaction
//! that moves the schedule's next tick from that tick to the following one
//! (a compare-and-set on `next_run_at`) and stores the tick's job under the
//! unique key `owner/name@tick`. Only one claim can move the tick, and a
//! repeated insert of the same key stores nothing, so neither two nodes
//! nor a claim repeated after a crash enqueue a tick twice. Clock skew
//! cannot double a tick either: a node whose clock runs ahead claims it
//! early (by its skew), never twice. Ticks missed while nothing ran (the
//! service was down) are not run one by one: the late claim runs once and
//! says how many it stands for.

use super::{Service, ServiceError, ServiceResult};
use crate::jobs::JobWork;
use crate::schedule::{now_ms, rfc3339, Schedule};
use crate::store::{StoredSchedule, User};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use valbox_runtime::{Arguments, Email, Frame};

/// How schedules behave on this server (operator settings).
#[derive(Debug, Clone, Copy)]
pub struct ScheduleSettings {
    /// The shortest interval between two ticks a schedule may ask for.
    pub min_interval: Duration,
    /// Failed runs in a row after which a schedule pauses itself.
    pub max_failures: u32,
    /// How often the scheduler looks for due ticks.
    pub poll: Duration,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            min_interval: Duration::from_secs(60),
            max_failures: 5,
            poll: Duration::from_millis(100),
        }
    }
}

/// A val's schedule as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// The val.
    pub val: String,
    /// The schedule as set: `{"every": "15m"}` or `{"cron", "timezone"}`,
    /// with `version` when pinned.
    #[schema(value_type = Object)]
    pub schedule: Value,
    /// Paused by its author or after too many failures in a row.
    pub paused: bool,
    /// The next tick (RFC 3339), unless paused.
    pub next_run_at: Option<String>,
    /// When the last run started (RFC 3339).
    pub last_run_at: Option<String>,
    /// How the last run ended: `done` or `failed`.
    pub last_status: Option<String>,
    /// The last failed run's error.
    pub last_error: Option<String>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
}

impl ScheduleView {
    fn from_stored(stored: StoredSchedule) -> ScheduleView {
        ScheduleView {
            val: format!("{}.{}", stored.owner, stored.name),
            schedule: stored.spec,
            paused: stored.paused,
            next_run_at: (!stored.paused).then(|| rfc3339(stored.next_run_at)),
            last_run_at: stored.last_run_at.map(rfc3339),
            last_status: stored.last_status,
            last_error: stored.last_error,
            consecutive_failures: stored.failures,
        }
    }
}

impl Service {
    /// Sets (`Some(spec)`) or removes (`None`) the schedule of `user`'s val
    /// `name`, which must exist; a pinned version must exist too.
    pub fn set_schedule(&self, user: &User, name: &str, spec: Option<&Value>) -> ServiceResult<()> {
        let Some(spec) = spec else {
            self.store.delete_schedule(&user.handle, name)?;
            tracing::info!(owner = %user.handle, val = %name, "schedule removed");
            return Ok(());
        };
        let schedule =
            Schedule::parse(spec, self.schedules.min_interval).map_err(ServiceError::BadRequest)?;
        let missing = || ServiceError::NotFound(format!("no val @{}.{name}", user.handle));
        self.store
            .version(&user.handle, name, schedule.version)?
            .ok_or_else(missing)?;
        let next_run_at = schedule
            .first_tick(now_ms())
            .ok_or_else(|| ServiceError::BadRequest("the schedule never ticks".into()))?;
        self.store.put_schedule(&StoredSchedule {
            owner: user.handle.clone(),
            name: name.to_string(),
            spec: schedule.spec.clone(),
            paused: false,
            next_run_at,
            last_run_at: None,
            last_status: None,
            last_error: None,
            failures: 0,
        })?;
        tracing::info!(owner = %user.handle, val = %name, schedule = %schedule.spec,
            next_run_at = %rfc3339(next_run_at), "schedule set");
        Ok(())
    }

    /// What `PUT`/`PATCH /v1/vals/{name}` ask of the schedule: `schedule`
    /// present sets it (`null` removes it), then `paused` pauses or resumes it.
    pub fn change_schedule(
        &self,
        user: &User,
        name: &str,
        schedule: Option<&Value>,
        paused: Option<bool>,
    ) -> ServiceResult<()> {
        match schedule {
            Some(Value::Null) => self.set_schedule(user, name, None)?,
            Some(spec) => self.set_schedule(user, name, Some(spec))?,
            None => {}
        }
        if let Some(paused) = paused {
            self.pause_schedule(user, name, paused)?;
        }
        Ok(())
    }

    /// Pauses or resumes the schedule of `user`'s val `name`; resuming
    /// clears its failures and ticks next from now.
    pub fn pause_schedule(&self, user: &User, name: &str, paused: bool) -> ServiceResult<()> {
        let stored = self.store.schedule(&user.handle, name)?.ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "@{}.{name} has no schedule to pause or resume; set one with \"schedule\"",
                user.handle
            ))
        })?;
        let schedule = Schedule::parse(&stored.spec, Duration::ZERO)
            .map_err(|e| ServiceError::Internal(format!("a stored schedule: {e}")))?;
        let next = schedule.first_tick(now_ms()).unwrap_or(stored.next_run_at);
        self.store
            .set_schedule_paused(&user.handle, name, paused, next)?;
        tracing::info!(owner = %user.handle, val = %name, paused, "schedule paused or resumed");
        Ok(())
    }

    /// `GET /v1/schedules`: `user`'s schedules.
    pub fn schedules(&self, user: &User) -> ServiceResult<Vec<ScheduleView>> {
        Ok(self
            .store
            .schedules(&user.handle)?
            .into_iter()
            .map(ScheduleView::from_stored)
            .collect())
    }

    /// The schedule of `owner.name`, if it has one.
    pub fn schedule_of(&self, owner: &str, name: &str) -> ServiceResult<Option<ScheduleView>> {
        Ok(self
            .store
            .schedule(owner, name)?
            .map(ScheduleView::from_stored))
    }

    /// Starts the scheduler thread: every `poll`, due ticks become jobs.
    pub fn start_scheduler(self: &Arc<Self>) -> ServiceResult<()> {
        self.spawn_background("scheduler", |service| {
            while !service.is_stopping() {
                if let Err(error) = service.claim_due_ticks() {
                    tracing::warn!(%error, "the scheduler could not read the store; retrying");
                }
                std::thread::sleep(service.schedules.poll);
            }
        })
    }

    /// Claims every due tick this node wins and queues its job.
    fn claim_due_ticks(&self) -> ServiceResult<()> {
        let now = now_ms();
        for due in self.store.due_schedules(now, 500)? {
            let schedule = match Schedule::parse(&due.spec, Duration::ZERO) {
                Ok(schedule) => schedule,
                Err(error) => {
                    tracing::error!(owner = %due.owner, val = %due.name, %error, "a stored schedule does not parse; pausing it");
                    self.store
                        .set_schedule_paused(&due.owner, &due.name, true, due.next_run_at)?;
                    continue;
                }
            };
            let tick = due.next_run_at;
            let (skipped, next) = schedule.after_tick(tick, now);
            let Some(next) = next else {
                tracing::info!(owner = %due.owner, val = %due.name, "the schedule has no more ticks; pausing it");
                self.store
                    .set_schedule_paused(&due.owner, &due.name, true, tick)?;
                continue;
            };
            let work = JobWork::Scheduled {
                name: due.name.clone(),
                version: schedule.version,
                scheduled_at: tick,
                skipped,
            };
            let id = super::new_job_id()?;
            if self
                .store
                .claim_tick(&due.owner, &due.name, tick, next, &id, &work.to_json())?
            {
                tracing::info!(job = %id, owner = %due.owner, val = %due.name,
                    tick = %rfc3339(tick), skipped, "schedule tick claimed");
                self.enqueue(&id, &due.owner, &work);
            }
        }
        Ok(())
    }

    /// Runs a schedule's tick as the val's author, in the author's own
    /// frame with API-mode semantics (like a `/v1/run` by the author), with
    /// `{lastRunAt, scheduledAt, attempt, skippedTicks}`; then records the
    /// outcome on the schedule.
    pub(super) fn run_scheduled(
        &self,
        author: &User,
        name: &str,
        version: Option<u32>,
        scheduled_at: i64,
        skipped: u64,
        attempt: u32,
    ) -> ServiceResult<Value> {
        let started = now_ms();
        self.metrics
            .schedule_lag_seconds
            .observe((started - scheduled_at).max(0) as f64 / 1e3);
        let last_run_at = self
            .store
            .schedule(&author.handle, name)?
            .and_then(|s| s.last_run_at);
        let date = |ms: i64| json!({"$": "d", "v": ms});
        let argument = json!([{
            "lastRunAt": last_run_at.map_or(json!({"$": "u"}), date),
            "scheduledAt": date(scheduled_at),
            "attempt": attempt,
            "skippedTicks": skipped,
        }]);
        let outcome = self.run_own_val(author, name, version, &argument.to_string());
        if let Err(ServiceError::Capacity(_)) = outcome {
            // Not a run: the job waits for capacity and tries again.
            return outcome;
        }
        let error = outcome.as_ref().err().map(|e| e.to_string());
        let label = if error.is_none() { "done" } else { "failed" };
        self.metrics.schedule_runs.with_label_values(&[label]).inc();
        let failures =
            self.store
                .record_schedule_run(&author.handle, name, started, error.as_deref())?;
        if let Some(error) = &error {
            if failures >= self.schedules.max_failures {
                self.pause_failing(author, name, failures, error)?;
            }
        }
        outcome
    }

    /// Runs `author`'s own val `name` (at `version`, else the latest) as
    /// `/v1/run` by its author would, with tagged arguments.
    fn run_own_val(
        &self,
        author: &User,
        name: &str,
        version: Option<u32>,
        tagged_args: &str,
    ) -> ServiceResult<Value> {
        let slot = self.take_slot(Some(author))?;
        let not_found = || ServiceError::NotFound(format!("no val @{}.{name}", author.handle));
        let stored = self
            .world
            .val(&author.handle, name, version)
            .ok_or_else(not_found)?;
        let frame = Frame::api(&author.handle, 0, self.deadline());
        let text = self.run_val(&slot, &stored, frame, Arguments::Tagged(tagged_args), None)?;
        super::json_result(&text)
    }

    /// Pauses a schedule that failed `failures` times in a row and emails its author.
    fn pause_failing(
        &self,
        author: &User,
        name: &str,
        failures: u32,
        error: &str,
    ) -> ServiceResult<()> {
        self.store
            .set_schedule_paused(&author.handle, name, true, now_ms())?;
        self.metrics.schedules_paused.inc();
        tracing::warn!(owner = %author.handle, val = %name, failures, "schedule paused after failing in a row");
        let subject = format!("Your scheduled val @{}.{name} is paused", author.handle);
        let body = format!(
            "@{owner}.{name} failed {failures} times in a row, so its schedule is paused.\n\n\
             The last error:\n\n    {error}\n\n\
             Fix the val, then resume the schedule:\n\n    \
             PATCH /v1/vals/{name}  {{\"paused\": false}}\n",
            owner = author.handle,
        );
        self.world
            .send_email(Email {
                to: author.handle.clone(),
                from_author: None,
                subject,
                body,
            })
            .map_err(ServiceError::Internal)
    }
}
