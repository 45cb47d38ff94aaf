//! Keeping every node's cache right when several share one PostgreSQL:
//! every write that can make a cached row wrong announces it with `NOTIFY`
//! on [`CHANNEL`] (inside the write's transaction, so it is delivered when,
//! and only if, the write commits), and every node `LISTEN`s on a
//! connection of its own and forgets what it hears.
//!
//! The bound on staleness: a node serves from its cache only while its
//! listener is connected. When the listening connection is lost (the
//! server restarted, the backend was terminated, the network broke), the
//! cache stops serving and is emptied at once, and serves again only after
//! `LISTEN` is re-established; a silent connection is probed every
//! [`HEARTBEAT`]. So a row written on node A is served stale by node B at
//! most for the time a notification takes from A's commit to B's listener
//! (a few milliseconds on loopback; the tests check ≤ 100 ms), or, when
//! the connection dies silently, until the next heartbeat fails.

use super::cache::HotCache;
use postgres::{Config, NoTls};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The channel invalidations are announced on.
pub(super) const CHANNEL: &str = "valbox_cache";

/// How often a quiet listening connection is checked.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// What a write made wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Invalidation {
    /// The latest version, privacy or existence of `owner.name`.
    Val(String, String),
    /// Keys or users: every cached row.
    Everything,
}

impl Invalidation {
    /// The notification's payload.
    pub(super) fn payload(&self) -> String {
        match self {
            Invalidation::Val(owner, name) => format!("v\t{owner}\t{name}"),
            Invalidation::Everything => "*".into(),
        }
    }

    pub(super) fn parse(payload: &str) -> Invalidation {
        let mut parts = payload.split('\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v"), Some(owner), Some(name)) => Invalidation::Val(owner.into(), name.into()),
            // Anything else (a newer node's message) drops everything: safe.
            _ => Invalidation::Everything,
        }
    }

    /// Forgets what this invalidation names.
    pub(super) fn apply(&self, cache: &HotCache) {
        match self {
            Invalidation::Val(owner, name) => cache.forget_val(owner, name),
            Invalidation::Everything => cache.forget_all(),
        }
    }
}

/// Starts the listener thread for `cache`; it stops soon after `stop` is set.
pub(super) fn listen(config: Config, cache: Arc<HotCache>, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("valbox-cache-listener".into())
        .spawn(move || {
            let mut connected = true;
            while !stop.load(Ordering::SeqCst) {
                match listen_once(&config, &cache, &stop, &mut connected) {
                    Ok(()) => return,
                    Err(error) => {
                        cache.set_live(false);
                        if connected {
                            tracing::warn!(%error, "the cache listener lost its connection; the cache is off until it is back");
                        }
                        connected = false;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "the cache listener did not start; the cache stays off");
    }
}

/// Connects, listens and applies notifications until `stop` (`Ok`) or the
/// connection fails (`Err`); `connected` is set once it listens.
fn listen_once(
    config: &Config,
    cache: &HotCache,
    stop: &AtomicBool,
    connected: &mut bool,
) -> Result<(), postgres::Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    // Whatever happened while nobody listened is unknown: start empty.
    cache.set_live(true);
    *connected = true;
    tracing::info!("the cache listener is listening");
    while !stop.load(Ordering::SeqCst) {
        let mut heard = false;
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(HEARTBEAT);
            // `postgres`' iterators are fallible ones: `next` is `Result<Option<_>>`.
            while let Some(notification) =
                postgres::fallible_iterator::FallibleIterator::next(&mut waiting)?
            {
                Invalidation::parse(notification.payload()).apply(cache);
                heard = true;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
        if !heard {
            // Quiet: make sure the connection is still there.
            client.simple_query("")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Invalidation;

    #[test]
    fn payloads_read_back() {
        for what in [
            Invalidation::Val("al".into(), "f".into()),
            Invalidation::Everything,
        ] {
            assert_eq!(Invalidation::parse(&what.payload()), what);
        }
        assert_eq!(
            Invalidation::parse("k\tsomething"),
            Invalidation::Everything
        );
    }
}
