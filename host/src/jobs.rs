//! The job queue of SPEC §5 as it runs without Redis: in-process. A job is
//! stored before `POST /v1/jobs` answers 202, and its id is handed to worker
//! threads through a channel. Delivery is at least once (jobs still queued or
//! running when the process stopped are queued again when it starts); a
//! result is written exactly once (the store only finishes an unfinished
//! job); a job whose worker was lost [`MAX_ATTEMPTS`] times is failed as a
//! dead letter instead of being tried again.

use crate::redis_queue::RedisQueue;
use crate::request_args::{args_text, split_target, string_field};
use serde_json::{json, Value};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Starts of one job after which it is given up as a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;

/// What a job runs, checked when it is submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobWork {
    /// `{"kind": "run", "target": "user.val", "args": [...]}`: API mode, as `/v1/run`.
    Run {
        /// The val's owner.
        owner: String,
        /// The val.
        name: String,
        /// Its arguments, a JSON array.
        args: String,
    },
    /// `{"kind": "eval", "code": "...", "args": [...]}`: as `/v1/eval`.
    Eval {
        /// An expression or a function body.
        code: String,
        /// Its `arguments`, a JSON array.
        args: String,
    },
    /// One tick of a val's schedule (never submitted: the scheduler stores
    /// these): the val runs as its author, who owns the job.
    Scheduled {
        /// The val's name (its owner is the job's).
        name: String,
        /// The pinned version, or the latest.
        version: Option<u32>,
        /// The tick, Unix milliseconds.
        scheduled_at: i64,
        /// Ticks missed before this one was claimed (this run stands for them).
        skipped: u64,
    },
}

impl JobWork {
    /// Reads a submitted job: `run` or `eval` (schedules' ticks are not submitted).
    pub fn parse(request: &Value) -> Result<JobWork, String> {
        match JobWork::parse_stored(request)? {
            JobWork::Scheduled { .. } => {
                Err("`kind` must be \"run\" or \"eval\", not \"schedule\"".into())
            }
            work => Ok(work),
        }
    }

    /// Reads a stored job: a submitted one, or a schedule's tick.
    pub fn parse_stored(request: &Value) -> Result<JobWork, String> {
        if !request.is_object() {
            return Err("a job is a JSON object: {\"kind\": \"run\"|\"eval\", ...}".into());
        }
        let args = match request.get("args") {
            None | Some(Value::Null) => "[]".to_string(),
            Some(args) => args_text(args)?,
        };
        match string_field(request, "kind")? {
            "run" => {
                let (owner, name) = split_target(string_field(request, "target")?)?;
                Ok(JobWork::Run { owner, name, args })
            }
            "eval" => Ok(JobWork::Eval {
                code: string_field(request, "code")?.to_string(),
                args,
            }),
            "schedule" => Ok(JobWork::Scheduled {
                name: string_field(request, "name")?.to_string(),
                version: request["version"].as_u64().map(|v| v as u32),
                scheduled_at: request["scheduled_at"]
                    .as_i64()
                    .ok_or("no `scheduled_at`")?,
                skipped: request["skipped"].as_u64().unwrap_or(0),
            }),
            other => Err(format!("`kind` must be \"run\" or \"eval\", not {other:?}")),
        }
    }

    /// The request as stored: only the fields that mean something.
    pub fn to_json(&self) -> Value {
        let args = |args: &str| -> Value { serde_json::from_str(args).unwrap_or(Value::Null) };
        match self {
            JobWork::Run {
                owner,
                name,
                args: a,
            } => {
                json!({"kind": "run", "target": format!("{owner}.{name}"), "args": args(a)})
            }
            JobWork::Eval { code, args: a } => {
                json!({"kind": "eval", "code": code, "args": args(a)})
            }
            JobWork::Scheduled {
                name,
                version,
                scheduled_at,
                skipped,
            } => {
                json!({"kind": "schedule", "name": name, "version": version,
                       "scheduled_at": scheduled_at, "skipped": skipped})
            }
        }
    }
}

/// Where submitted jobs wait for a worker.
pub enum Queue {
    /// A channel inside this process; the store makes it durable.
    InProcess(JobQueue),
    /// Redis Streams, shared by every process given the same URL: this
    /// process's producer connection, from which workers derive theirs.
    Redis(Box<RedisQueue>),
}

/// How one delivery of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// It ran, and its result or error is stored.
    Finished,
    /// It had already finished: a duplicate delivery.
    AlreadyFinished,
    /// It was started too often and is given up on.
    DeadLetter,
}

/// The in-process queue: ids of stored jobs on their way to a worker.
pub struct JobQueue {
    sender: Sender<String>,
    receiver: Arc<Mutex<Receiver<String>>>,
}

impl Default for JobQueue {
    fn default() -> Self {
        let (sender, receiver) = channel();
        JobQueue {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
        }
    }
}

impl JobQueue {
    /// Hands a stored job to the workers.
    pub fn push(&self, id: String) {
        // The receiver lives as long as the queue, so sending cannot fail.
        let _ = self.sender.send(id);
    }

    /// The next job id, waiting up to `wait` for one; shared by every worker.
    pub fn next(&self, wait: std::time::Duration) -> Option<String> {
        let receiver = self.receiver.lock().unwrap_or_else(|e| e.into_inner());
        receiver.recv_timeout(wait).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_checked_when_submitted() {
        assert_eq!(
            JobWork::parse(&json!({"kind": "run", "target": "@bob.add", "args": [1, 2]})),
            Ok(JobWork::Run {
                owner: "bob".into(),
                name: "add".into(),
                args: "[1,2]".into()
            })
        );
        assert_eq!(
            JobWork::parse(&json!({"kind": "eval", "code": "1 + 1"})),
            Ok(JobWork::Eval {
                code: "1 + 1".into(),
                args: "[]".into()
            })
        );
        for (bad, why) in [
            (json!([1]), "JSON object"),
            (json!({"target": "bob.add"}), "kind"),
            (json!({"kind": "walk"}), "\"run\" or \"eval\""),
            (json!({"kind": "run"}), "target"),
            (json!({"kind": "run", "target": "bobadd"}), "user.val"),
            (
                json!({"kind": "run", "target": "bob.add", "args": {"a": 1}}),
                "array",
            ),
            (json!({"kind": "eval", "code": 3}), "string"),
            // A schedule's tick runs a val as its author: never submitted.
            (
                json!({"kind": "schedule", "name": "add", "scheduled_at": 1}),
                "not \"schedule\"",
            ),
        ] {
            let error = JobWork::parse(&bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn stored_requests_read_back_as_the_same_work() {
        for work in [
            JobWork::Run {
                owner: "bob".into(),
                name: "add".into(),
                args: "[1,{\"a\":2}]".into(),
            },
            JobWork::Eval {
                code: "return 1".into(),
                args: "[]".into(),
            },
            JobWork::Scheduled {
                name: "tick".into(),
                version: Some(2),
                scheduled_at: 1_800_000_000_000,
                skipped: 3,
            },
        ] {
            assert_eq!(JobWork::parse_stored(&work.to_json()), Ok(work));
        }
    }
}
