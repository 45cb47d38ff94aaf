//! The requests a call's `fetch` has out. Each runs on a thread of its own
//! (the address guard and the client are blocking), so a call can have
//! several out at once and its event loop keeps running timers meanwhile:
//! `Promise.all` of three fetches takes as long as the slowest, and an
//! `AbortController` aborted from a timer rejects the fetch at once. Results
//! come back through one channel, which the `wait` import listens on.
//!
//! At most [`MAX_RUNNING`] requests of a call run at once (as browsers
//! limit connections per host); starting one more waits, without the CPU
//! turn, for one of them to finish. A request whose call ended or gave up
//! on it (aborted) runs on until its own deadline (the call tree's, or its
//! `AbortSignal.timeout`), and its result is dropped.

use crate::fetch::{fetch, FetchPolicy, FetchRequest, FetchResponse};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

/// A finished request: the response, or why it failed (the guest's
/// `TypeError` message).
pub(crate) type Outcome = Result<FetchResponse, String>;

/// Where the threads send their outcomes.
type Channel = (Sender<(u32, Outcome)>, Receiver<(u32, Outcome)>);

/// Most requests one call has running at once.
pub(crate) const MAX_RUNNING: usize = 6;

/// One call's requests: running, and finished but not yet taken.
#[derive(Default)]
pub(crate) struct InFlight {
    last_id: u32,
    running: HashSet<u32>,
    finished: HashMap<u32, Outcome>,
    /// Finished while a new request waited for room, not yet reported.
    unreported: VecDeque<u32>,
    /// Made at the first request (most calls make none).
    channel: Option<Channel>,
}

impl InFlight {
    /// Starts `request` on its own thread, stopping it at `deadline`,
    /// once fewer than [`MAX_RUNNING`] run; answers its id (never 0), or
    /// `Ok(None)` when `deadline` passed before there was room.
    pub(crate) fn start(
        &mut self,
        policy: FetchPolicy,
        request: FetchRequest,
        deadline: Instant,
    ) -> Result<Option<u32>, String> {
        while self.running.len() >= MAX_RUNNING {
            match self.receive(deadline) {
                Some(id) => self.unreported.push_back(id),
                None => return Ok(None),
            }
        }
        let (sender, _) = self.channel.get_or_insert_with(channel);
        let sender = sender.clone();
        self.last_id += 1;
        let id = self.last_id;
        let url = request.url.clone();
        std::thread::Builder::new()
            .name("valbox-fetch".into())
            .spawn(move || {
                let url = request.url.clone();
                let outcome = fetch(&policy, request, deadline)
                    .map_err(|e| format!("fetch {url} failed: {e}"));
                // The call may have ended meanwhile: then nobody listens.
                let _ = sender.send((id, outcome));
            })
            .map_err(|e| format!("fetch {url} could not start: {e}"))?;
        self.running.insert(id);
        Ok(Some(id))
    }

    /// Whether a request is running or finished unreported: something
    /// [`next_finished`](Self::next_finished) can answer.
    pub(crate) fn any_pending(&self) -> bool {
        !self.running.is_empty() || !self.unreported.is_empty()
    }

    /// How many requests are still running.
    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    /// The next finished request (its id): one that finished unreported,
    /// else the next running one to finish before `until` (`None` then).
    /// A request given up meanwhile is not reported.
    pub(crate) fn next_finished(&mut self, until: Instant) -> Option<u32> {
        while let Some(id) = self.unreported.pop_front() {
            if self.finished.contains_key(&id) {
                return Some(id);
            }
        }
        self.receive(until)
    }

    /// Waits until a running request finishes (its outcome kept, its id
    /// answered) or `until` passes (`None`).
    fn receive(&mut self, until: Instant) -> Option<u32> {
        let (_, receiver) = self.channel.as_ref()?;
        while !self.running.is_empty() {
            let timeout = until.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(timeout) {
                Ok((id, outcome)) => {
                    if self.running.remove(&id) {
                        self.finished.insert(id, outcome);
                        return Some(id);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                // The channel keeps a sender of its own: never disconnected.
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    /// The outcome of a finished request, once.
    pub(crate) fn take(&mut self, id: u32) -> Option<Outcome> {
        self.finished.remove(&id)
    }

    /// Gives a request up: whatever it answers later is dropped.
    pub(crate) fn cancel(&mut self, id: u32) {
        self.running.remove(&id);
        self.finished.remove(&id);
    }
}
