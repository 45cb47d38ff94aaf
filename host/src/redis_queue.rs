//! The job queue on Redis Streams (SPEC §5), used when `--redis-url` is set.
//! Producers `XADD` a job to [`STREAM`]; workers read it through the consumer
//! group [`GROUP`] with `XREADGROUP`, write the result to the store (which
//! only finishes an unfinished job, so a result is written once), then
//! `XACK`. A job a worker took and did not acknowledge within the visibility
//! timeout (its worker crashed or hangs) is taken over with `XAUTOCLAIM`; a
//! job started too often goes to the dead-letter stream [`DEAD_STREAM`].
//! Delivery is at least once; the store keeps the job's status and result.
//!
//! Redis only carries what the store promised: every job in the stream is
//! also in the hash [`KNOWN`] until it is acknowledged. When Redis loses its
//! data (a restart without persistence, a failover to a lagging replica),
//! the hash goes with the stream, and the reconciler
//! ([`RedisQueue::requeue_if_unknown`]) adds again every job the store holds
//! as queued or running that Redis no longer knows; a lost consumer group is
//! created again by the first worker that misses it.

use redis::{Connection, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The stream jobs are added to.
pub const STREAM: &str = "valbox:jobs";
/// The stream jobs given up on are copied to.
pub const DEAD_STREAM: &str = "valbox:jobs:dead";
/// The consumer group every worker reads through.
pub const GROUP: &str = "valbox-workers";
/// The hash of job ids the stream holds and no worker has acknowledged yet.
pub const KNOWN: &str = "valbox:jobs:known";

/// Adds a job to the stream unless Redis already knows it (atomically, so
/// two reconcilers never add it twice). KEYS: stream, known hash;
/// ARGV: the job id, then the entry's field/value pairs.
const REQUEUE_IF_UNKNOWN: &str = r#"
if redis.call('HSETNX', KEYS[2], ARGV[1], 1) == 0 then return 0 end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], '*', unpack(fields))
return 1
"#;

impl JobEntry {
    /// The entry's fields, in order.
    fn fields(&self) -> [(&'static str, String); 6] {
        [
            ("id", self.id.clone()),
            ("kind", self.kind.clone()),
            ("target", self.target.clone()),
            ("args", self.args.clone()),
            ("principal", self.principal.clone()),
            ("deadline_ms", self.deadline_ms.to_string()),
        ]
    }
}

/// A job as a stream entry: the fields SPEC §5 lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEntry {
    /// The job's id in the store.
    pub id: String,
    /// `run` or `eval`.
    pub kind: String,
    /// `user.val` for `run`, the code for `eval`.
    pub target: String,
    /// The arguments, a JSON array.
    pub args: String,
    /// Who submitted it; it runs as them.
    pub principal: String,
    /// Milliseconds the job may run.
    pub deadline_ms: u64,
}

/// One delivery of a job to this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream entry, to acknowledge.
    pub entry_id: String,
    /// The job's id in the store.
    pub job_id: String,
    /// Every field of the entry, copied to the dead-letter stream if it comes to that.
    fields: Vec<(String, String)>,
}

/// A connection to the queue for one producer or worker thread.
pub struct RedisQueue {
    client: redis::Client,
    connection: Mutex<Option<Connection>>,
    consumer: String,
    visibility: Duration,
}

fn error(context: &str, e: redis::RedisError) -> String {
    format!("redis: {context}: {e}")
}

impl RedisQueue {
    /// Connects, and creates the stream and the consumer group when they are
    /// missing. `consumer` names this worker within the group; a job it has
    /// not acknowledged after `visibility` may be taken over by another.
    pub fn connect(url: &str, consumer: &str, visibility: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| error("the URL", e))?;
        let queue = RedisQueue {
            client,
            connection: Mutex::new(None),
            consumer: consumer.to_string(),
            visibility,
        };
        queue.create_group()?;
        Ok(queue)
    }

    /// Creates the stream and the consumer group when they are missing.
    fn create_group(&self) -> Result<(), String> {
        let created = self.with(|c| {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(STREAM)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query::<()>(c)
        });
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Another connection to the same queue, for the worker `consumer`
    /// (a blocking read holds its connection, so each worker has its own).
    pub fn for_consumer(&self, consumer: &str) -> RedisQueue {
        RedisQueue {
            client: self.client.clone(),
            connection: Mutex::new(None),
            consumer: consumer.to_string(),
            visibility: self.visibility,
        }
    }

    /// Runs `command` on this queue's connection, connecting first when needed
    /// (and again after a failure).
    fn with<T>(
        &self,
        command: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let mut slot = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(
                self.client
                    .get_connection_with_timeout(Duration::from_secs(5))
                    .map_err(|e| error("connecting", e))?,
            );
        }
        let result = command(slot.as_mut().expect("connected above"));
        if result.is_err() {
            *slot = None;
        }
        result.map_err(|e| error("command", e))
    }

    /// Adds a job to the stream (and to [`KNOWN`], in one transaction).
    pub fn push(&self, job: &JobEntry) -> Result<(), String> {
        self.with(|c| {
            let mut add = redis::cmd("XADD");
            add.arg(STREAM).arg("*");
            for (name, value) in job.fields() {
                add.arg(name).arg(value);
            }
            redis::pipe()
                .atomic()
                .add_command(add)
                .ignore()
                .hset(KNOWN, &job.id, 1)
                .ignore()
                .query::<()>(c)
        })
    }

    /// Adds `job` to the stream unless Redis knows it already; true when it
    /// was added (Redis had lost it).
    pub fn requeue_if_unknown(&self, job: &JobEntry) -> Result<bool, String> {
        self.with(|c| {
            let script = redis::Script::new(REQUEUE_IF_UNKNOWN);
            let mut invocation = script.key(STREAM);
            invocation.key(KNOWN).arg(&job.id);
            for (name, value) in job.fields() {
                invocation.arg(name).arg(value);
            }
            invocation.invoke::<i64>(c).map(|added| added == 1)
        })
    }

    /// The next job for this worker: one another worker left unacknowledged
    /// past the visibility timeout, else a new one (waiting up to `wait`).
    pub fn next(&self, wait: Duration) -> Result<Option<Delivery>, String> {
        match self.read(wait) {
            // Redis lost the group (it restarted empty): make it again.
            Err(e) if e.contains("NOGROUP") => {
                self.create_group()?;
                self.read(wait)
            }
            other => other,
        }
    }

    fn read(&self, wait: Duration) -> Result<Option<Delivery>, String> {
        let claimed: Value = self.with(|c| {
            redis::cmd("XAUTOCLAIM")
                .arg(STREAM)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(self.visibility.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        if let Value::Array(parts) = &claimed {
            if let Some(delivery) = parts.get(1).and_then(|e| entries(e).into_iter().next()) {
                return Ok(Some(delivery));
            }
        }
        let read: Value = self.with(|c| {
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(wait.as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(STREAM)
                .arg(">")
                .query(c)
        })?;
        // [[stream, [entry, ...]]], or nil when nothing came.
        Ok(match read {
            Value::Array(streams) => streams
                .iter()
                .filter_map(|s| match s {
                    Value::Array(pair) => pair.get(1).map(entries),
                    _ => None,
                })
                .flatten()
                .next(),
            _ => None,
        })
    }

    /// Acknowledges a delivery: the job is finished with.
    pub fn ack(&self, delivery: &Delivery) -> Result<(), String> {
        self.with(|c| {
            redis::pipe()
                .cmd("XACK")
                .arg(STREAM)
                .arg(GROUP)
                .arg(&delivery.entry_id)
                .ignore()
                .hdel(KNOWN, &delivery.job_id)
                .ignore()
                .query::<()>(c)
        })
    }

    /// Copies a delivery to the dead-letter stream and acknowledges it.
    pub fn dead_letter(&self, delivery: &Delivery) -> Result<(), String> {
        self.with(|c| {
            let mut command = redis::cmd("XADD");
            command.arg(DEAD_STREAM).arg("*");
            for (name, value) in &delivery.fields {
                command.arg(name).arg(value);
            }
            command.query::<String>(c).map(drop)
        })?;
        self.ack(delivery)
    }

    /// Jobs waiting in the stream and not yet delivered, plus delivered and
    /// not acknowledged (the group's `lag` and `pending`).
    pub fn depth(&self) -> Result<i64, String> {
        let groups: Value =
            self.with(|c| redis::cmd("XINFO").arg("GROUPS").arg(STREAM).query(c))?;
        let Value::Array(groups) = groups else {
            return Ok(0);
        };
        for group in groups {
            let fields = pairs(&group);
            if fields.get("name").map(String::as_str) == Some(GROUP) {
                let number = |name: &str| {
                    fields
                        .get(name)
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0)
                };
                return Ok(number("lag") + number("pending"));
            }
        }
        Ok(0)
    }
}

/// Text of a simple reply value.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A flat `[name, value, ...]` reply (or a RESP3 map) as a map.
fn pairs(value: &Value) -> HashMap<String, String> {
    match value {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
            .collect(),
        Value::Map(items) => items
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        _ => HashMap::new(),
    }
}

/// Stream entries `[[entry-id, [field, value, ...]], ...]` that name a job.
fn entries(value: &Value) -> Vec<Delivery> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(entry) = item else {
                return None;
            };
            let entry_id = text(entry.first()?)?;
            let fields: Vec<(String, String)> = match entry.get(1)? {
                Value::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
                    .collect(),
                _ => return None,
            };
            // An entry without a job id is still delivered, so it gets acknowledged.
            let job_id = fields
                .iter()
                .find(|(k, _)| k == "id")
                .map_or_else(String::new, |(_, v)| v.clone());
            Some(Delivery {
                entry_id,
                job_id,
                fields,
            })
        })
        .collect()
}
