//! What operators see of the HTTP front end: a request id and one log line
//! per request, request counts and durations by route template, the
//! liveness and readiness probes, and `/metrics`.

use super::errors::ApiResult;
use super::extract::blocking;
use super::openapi::{Health, TAG_OPERATE};
use super::AppState;
use crate::request_id;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The header a request id travels in, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: RequestInfo;
}

/// The request being served: its id and its log span.
#[derive(Clone)]
pub struct RequestInfo {
    /// Taken from `x-request-id` when valid, else generated.
    pub id: Arc<str>,
    span: tracing::Span,
}

impl RequestInfo {
    /// The request the calling task serves (none outside a request).
    pub fn current() -> Option<RequestInfo> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Names the authenticated user and key id on the request's log line.
    pub fn record_principal(&self, handle: &str, key_id: &str) {
        self.span.record("user", handle);
        self.span.record("key", key_id);
    }
}

/// The middleware around every route: gives the request its id, serves it
/// inside a span carrying it, then counts it and logs one line (id, method,
/// route template, status, duration, user and key id; never keys or bodies).
pub async fn track(
    State(state): State<Arc<AppState>>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id: Arc<str> = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| request_id::from_client(value.as_bytes()))
        .unwrap_or_else(request_id::generate)
        .into();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        route,
        user = tracing::field::Empty,
        key = tracing::field::Empty
    );
    let info = RequestInfo {
        id: id.clone(),
        span: span.clone(),
    };
    let mut response = CURRENT
        .scope(info, next.run(request))
        .instrument(span.clone())
        .await;
    let took = started.elapsed();
    let status = response.status();
    state
        .service
        .metrics()
        .http_request(route, status.as_str(), took);
    span.in_scope(|| {
        let took_ms = took.as_secs_f64() * 1e3;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), took_ms, "request");
        } else {
            tracing::info!(status = status.as_u16(), took_ms, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = TAG_OPERATE,
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: ready once the sandbox and the store are open (which `serve`
/// does before binding), and no longer once shutdown has begun.
#[utoipa::path(get, path = "/readyz", tag = TAG_OPERATE,
    responses(
        (status = 200, description = "Ready for requests", body = Health),
        (status = 503, description = "Shutting down: send requests elsewhere", body = Health)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "shutting_down",
            }),
        )
            .into_response()
    } else {
        Json(Health { status: "ready" }).into_response()
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = TAG_OPERATE,
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    // Reading the queue's depth may ask Redis.
    let text = blocking(&state, |service| Ok(service.metrics_text())).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
