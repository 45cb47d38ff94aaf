//! Request ids tie a user's complaint to what the server did: the HTTP front
//! end takes a valid `x-request-id` from the request or makes one, echoes
//! it, logs it, and runs the service work inside [`scope`], so every
//! evaluation record written for the request carries it. A job's records
//! carry the job's id.

use std::cell::RefCell;

thread_local! {
    static CURRENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The longest request id taken from a client.
pub const MAX_LEN: usize = 128;

/// A client's `x-request-id`, when it is 1 to [`MAX_LEN`] characters of
/// letters, digits and `-_.:/+=@` (anything else is replaced by a new id,
/// so logs and records never hold a client's arbitrary bytes).
pub fn from_client(value: &[u8]) -> Option<String> {
    let valid = !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b));
    valid.then(|| String::from_utf8_lossy(value).into_owned())
}

/// A new request id: 24 hex digits, the time in milliseconds (48 bits)
/// then 48 random bits. Ids made later sort later, so the index of
/// evaluation records by request id grows at its end, as cheaply as the
/// one by record id, instead of at random places.
pub fn generate() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 12];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    // Without entropy, a per-process counter keeps ids of one millisecond apart.
    if getrandom::fill(&mut bytes[6..]).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[6..].copy_from_slice(&n.to_be_bytes()[2..]);
    }
    hex::encode(bytes)
}

/// Runs `work` with `id` as this thread's current request id.
pub fn scope<T>(id: Option<String>, work: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|current| current.replace(id));
    // Restored even when `work` panics.
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    work()
}

/// This thread's current request id (inside [`scope`]).
pub fn current() -> Option<String> {
    CURRENT.with(|current| current.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_taken_only_when_tame() {
        assert_eq!(from_client(b"abc-123_x.y").as_deref(), Some("abc-123_x.y"));
        assert_eq!(from_client(b""), None);
        assert_eq!(from_client(b"a b"), None);
        assert_eq!(from_client(b"a\nb"), None);
        assert_eq!(from_client("é".as_bytes()), None);
        assert_eq!(from_client(&[b'a'; MAX_LEN + 1]), None);
        assert!(from_client(&[b'a'; MAX_LEN]).is_some());
    }

    #[test]
    fn generated_ids_differ_and_scopes_nest() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(generate() > a, "later ids sort later");
        assert_eq!(current(), None);
        scope(Some(a.clone()), || {
            assert_eq!(current().as_deref(), Some(a.as_str()));
            scope(Some(b.clone()), || {
                assert_eq!(current().as_deref(), Some(b.as_str()))
            });
            assert_eq!(current().as_deref(), Some(a.as_str()));
        });
        assert_eq!(current(), None);
    }
}
