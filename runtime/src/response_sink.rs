//! Streaming a call's HTTP answer. A call that answers an HTTP request
//! (`/v1/express`, or `/v1/run` of a val returning a `Response`) may be
//! given a [`ResponseSink`]: when its handler returns a `Response` whose
//! body is a `ReadableStream`, the guest sends the status and headers
//! first and then each chunk as the stream yields it (through the
//! `respond-head` and `respond-chunk` imports), instead of reading the
//! whole stream before anything is sent. Only the call tree's first call
//! holds the sink; nested calls' Responses are values. Not a capability:
//! the call writes its own answer, nobody's state.

/// Where a call streams its HTTP answer; implemented by the server.
pub trait ResponseSink: Send + Sync {
    /// The status and header pairs, before any of the body; false when the
    /// answer can no longer be streamed (the client went away).
    fn head(&self, status: u16, headers: Vec<(String, String)>) -> bool;
    /// The next piece of the body; may wait while the client is slow.
    /// False when the client went away: the guest cancels its stream.
    fn chunk(&self, bytes: &[u8]) -> bool;
}
