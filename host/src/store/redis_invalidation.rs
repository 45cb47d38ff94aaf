//! The invalidation channel of processes sharing one SQLite file (`valbox
//! serve` and `valbox worker`s with `--redis-url`): each write that makes a
//! cached row wrong is published on the Redis channel [`CHANNEL`] once it
//! is committed, and every process subscribes and forgets what it hears.
//! As with PostgreSQL (`invalidation.rs`), a process serves from its cache
//! only while it is subscribed: when the subscription is lost the cache is
//! off and emptied, and it serves again only once it has subscribed anew;
//! a quiet subscription is pinged every [`HEARTBEAT`]. A publish that fails
//! is retried on a fresh connection; if Redis is unreachable, every other
//! process has lost its subscription too and serves nothing from its cache.

use super::cache::HotCache;
use super::invalidation::Invalidation;
use super::lock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Redis channel invalidations are published on.
pub(super) const CHANNEL: &str = "valbox:cache";

/// How long a quiet subscription waits before it pings.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// This process's side of the channel: publishes and, on a thread, listens.
pub(super) struct RedisPeers {
    client: redis::Client,
    publisher: Mutex<Option<redis::Connection>>,
}

impl RedisPeers {
    /// Connects to the channel at `url` and starts the subscriber for `cache`.
    pub(super) fn start(
        url: &str,
        cache: Arc<HotCache>,
        stop: Arc<AtomicBool>,
    ) -> Result<RedisPeers, String> {
        let client = redis::Client::open(url).map_err(|e| format!("the Redis URL: {e}"))?;
        let subscriber = client.clone();
        std::thread::Builder::new()
            .name("valbox-cache-subscriber".into())
            .spawn(move || subscribe(&subscriber, &cache, &stop))
            .map_err(|e| format!("starting the cache subscriber: {e}"))?;
        Ok(RedisPeers {
            client,
            publisher: Mutex::new(None),
        })
    }

    /// Tells every other process what a committed write made wrong.
    pub(super) fn publish(&self, what: &Invalidation) {
        let payload = what.payload();
        for attempt in 0..2 {
            let mut slot = lock(&self.publisher);
            if slot.is_none() {
                *slot = self
                    .client
                    .get_connection_with_timeout(Duration::from_secs(2))
                    .ok();
            }
            let Some(connection) = slot.as_mut() else {
                continue;
            };
            match redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(&payload)
                .query::<i64>(connection)
            {
                Ok(_) => return,
                Err(error) => {
                    *slot = None;
                    if attempt == 1 {
                        tracing::error!(%error, "a cache invalidation could not be published");
                    }
                }
            }
        }
    }
}

/// Subscribes until `stop`, again after every lost connection.
fn subscribe(client: &redis::Client, cache: &HotCache, stop: &AtomicBool) {
    let mut connected = true;
    while !stop.load(Ordering::SeqCst) {
        if let Err(error) = subscribe_once(client, cache, stop) {
            cache.set_live(false);
            if connected {
                tracing::warn!(%error, "the cache subscriber lost Redis; the cache is off until it is back");
            }
            connected = false;
            std::thread::sleep(Duration::from_millis(200));
        } else {
            return;
        }
        if cache.is_live() {
            connected = true;
        }
    }
}

fn subscribe_once(
    client: &redis::Client,
    cache: &HotCache,
    stop: &AtomicBool,
) -> redis::RedisResult<()> {
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe(CHANNEL)?;
    pubsub.set_read_timeout(Some(HEARTBEAT))?;
    // Whatever was published while nobody listened is unknown: start empty.
    cache.set_live(true);
    while !stop.load(Ordering::SeqCst) {
        match pubsub.get_message() {
            Ok(message) => {
                let payload: String = message.get_payload()?;
                Invalidation::parse(&payload).apply(cache);
            }
            Err(error) if error.is_timeout() => {
                pubsub.ping::<()>()?;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
