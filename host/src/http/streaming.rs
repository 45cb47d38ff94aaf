//! Streamed HTTP answers. A call answering a request (`/v1/express`,
//! `/v1/run`) is given an [`HttpSink`]: when the val's `Response` has a
//! stream body, the call sends its status and headers first and then each
//! chunk as the stream yields it, and the client gets them as they come
//! (chunked transfer encoding). A call that does not stream is answered
//! with what it returned. The call's deadline bounds the whole answer; a
//! call that fails after its head went out ends the body abruptly, so the
//! client sees an incomplete response rather than a short one that looks whole.

use super::errors::ApiResult;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use valbox_runtime::ResponseSink;

/// Body chunks a streaming call may get ahead of its client.
const CHUNKS_AHEAD: usize = 8;

/// A streamed answer's status and header pairs.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

/// What a body chunk is on its way to the client: bytes, or the error that
/// ends the body abruptly.
type Chunk = Result<Bytes, std::io::Error>;

/// The sink a call answering an HTTP request streams its `Response` into.
struct HttpSink {
    head: Mutex<Option<oneshot::Sender<Head>>>,
    body: mpsc::Sender<Chunk>,
    runtime: tokio::runtime::Handle,
    /// When the call must have ended: a slow client is not waited for past it.
    deadline: Instant,
}

impl ResponseSink for HttpSink {
    fn head(&self, status: u16, headers: Vec<(String, String)>) -> bool {
        let sender = self.head.lock().unwrap_or_else(|e| e.into_inner()).take();
        sender.is_some_and(|sender| sender.send(Head { status, headers }).is_ok())
    }

    fn chunk(&self, bytes: &[u8]) -> bool {
        let send = self.body.send(Ok(Bytes::copy_from_slice(bytes)));
        // A call runs on a runner thread (`workers.rs`), outside the
        // runtime: the timeout is made inside `block_on`, which enters it.
        let deadline = self.deadline.into();
        let sent = self
            .runtime
            .block_on(async move { tokio::time::timeout_at(deadline, send).await });
        matches!(sent, Ok(Ok(())))
    }
}

/// Runs the call `start` makes with a sink and answers: as soon as it
/// streams, with its head and a body that follows its chunks; otherwise
/// with `finish` of what it returned.
pub(super) async fn answer<T, F>(
    deadline: Instant,
    start: impl FnOnce(Arc<dyn ResponseSink>) -> F,
    finish: impl FnOnce(T) -> Response,
) -> Response
where
    F: Future<Output = ApiResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let (head_sender, mut head) = oneshot::channel();
    let (body, chunks) = mpsc::channel(CHUNKS_AHEAD);
    let sink = Arc::new(HttpSink {
        head: Mutex::new(Some(head_sender)),
        body: body.clone(),
        runtime: tokio::runtime::Handle::current(),
        deadline,
    });
    let mut work = Box::pin(start(sink));
    let (head, ended) = tokio::select! {
        biased;
        streaming = &mut head => match streaming {
            Ok(head) => (head, None),
            Err(_) => return finished(work.await, finish),
        },
        // The call may have sent its head and ended between the two polls.
        ended = &mut work => match head.try_recv() {
            Ok(head) => (head, Some(ended)),
            Err(_) => return finished(ended, finish),
        },
    };
    // The call goes on streaming (or has ended): how it ends decides how the body does.
    tokio::spawn(async move {
        let ended = match ended {
            Some(ended) => ended,
            None => work.await,
        };
        if let Err(error) = ended {
            let _ = body
                .send(Err(std::io::Error::other(error.0.to_string())))
                .await;
        }
    });
    streamed(head, chunks)
}

/// The answer of a call that did not stream.
fn finished<T>(ended: ApiResult<T>, finish: impl FnOnce(T) -> Response) -> Response {
    ended
        .map(finish)
        .unwrap_or_else(IntoResponse::into_response)
}

/// The response of a streamed answer: its head now, its body as it comes.
fn streamed(head: Head, chunks: mpsc::Receiver<Chunk>) -> Response {
    with_head(head.status, head.headers, Body::new(ChannelBody(chunks)))
}

/// A response with the status and header pairs a val gave. User content
/// never runs with the API's origin: `Content-Security-Policy: sandbox`.
pub(super) fn with_head(status: u16, pairs: Vec<(String, String)>, body: Body) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.as_u16() >= 100)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in pairs {
        let skip = [
            "content-length",
            "transfer-encoding",
            "connection",
            "content-security-policy",
        ];
        if skip.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A body whose chunks arrive over a channel; it ends when every sender is
/// gone, or abruptly at an error.
struct ChannelBody(mpsc::Receiver<Chunk>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(http_body::Frame::data)))
    }
}
