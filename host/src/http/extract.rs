//! What handlers take from a request: the caller (from the bearer key), a
//! JSON body under the size limit, a query string; and the one way they
//! run blocking service work (the store, the sandbox) off the async threads.

use super::errors::{too_large, ApiError, ApiResult};
use super::observe::RequestInfo;
use super::AppState;
use crate::request_id;
use crate::service::{Principal, Service, ServiceError};
use crate::store::User;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// A body over the limit is read on, and thrown away, up to this many
/// times the limit, so that clients that write their whole body before
/// reading the answer see the 413 rather than a broken pipe.
const DRAIN_FACTOR: usize = 8;
/// The longest an over-long body is read for before the connection is closed.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The bearer key of a request: `None` without an `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ServiceError::Unauthorized("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(Some(key.trim().to_string()))
        }
        _ => Err(ServiceError::Unauthorized("use `Authorization: Bearer <key>`".into()).into()),
    }
}

/// Runs blocking service work on the server's runners (`workers.rs`),
/// inside the request's id (so evaluation records carry it).
pub async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
) -> ApiResult<T> {
    let id = RequestInfo::current().map(|info| info.id.to_string());
    let service = state.service.clone();
    state
        .workers
        .run(move || request_id::scope(id, || work(&service)))
        .await
        .ok_or_else(|| ServiceError::Internal("the request's worker failed".into()))?
        .map_err(ApiError)
}

/// Like [`blocking`], with the caller's user (`None` when anonymous); the
/// key is checked on the same blocking hop, and when one is given it must
/// hold `scope`.
pub async fn as_caller<T: Send + 'static>(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    scope: &'static str,
    work: impl FnOnce(&Service, Option<&User>) -> Result<T, ServiceError> + Send + 'static,
) -> ApiResult<T> {
    let key = bearer(headers)?;
    let info = RequestInfo::current();
    blocking(state, move |service| {
        let principal = service.authenticate(key.as_deref())?;
        if let Some(principal) = &principal {
            if let Some(info) = &info {
                info.record_principal(&principal.user.handle, &principal.key.id);
            }
            principal.require(scope)?;
        }
        work(service, principal.as_ref().map(|p| &p.user))
    })
    .await
}

/// A scope a route needs, as a type for [`Authed`].
pub trait Scope {
    /// The scope's name; `None`: any valid key will do.
    const NAME: Option<&'static str>;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $marker:ident = $name:expr;)*) => {
        $($(#[$doc])* pub struct $marker; impl Scope for $marker { const NAME: Option<&'static str> = $name; })*
    };
}

scopes! {
    /// Any valid key.
    AnyKey = None;
    /// `vals:read`.
    ValsRead = Some("vals:read");
    /// `vals:write`.
    ValsWrite = Some("vals:write");
    /// `secrets:read` (names only).
    SecretsRead = Some("secrets:read");
    /// `secrets:write`.
    SecretsWrite = Some("secrets:write");
    /// `run`: eval, run, express, jobs.
    Run = Some("run");
    /// `evaluations:read`.
    EvaluationsRead = Some("evaluations:read");
    /// `emails:read`.
    EmailsRead = Some("emails:read");
    /// `keys`: the user's own keys.
    Keys = Some("keys");
}

/// The principal of a route that needs a key holding scope `S`, checked
/// before the body is read (so a request without a valid key is a 401, and
/// one whose key lacks the scope a 403, whatever its body).
pub struct Authed<S>(pub Principal, pub PhantomData<S>);

impl<S: Scope> FromRequestParts<Arc<AppState>> for Authed<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers)?;
        let info = RequestInfo::current();
        let principal = blocking(state, move |service| service.authenticate(key.as_deref()))
            .await?
            .ok_or_else(|| {
                ApiError(ServiceError::Unauthorized(
                    "this route needs `Authorization: Bearer <key>`".into(),
                ))
            })?;
        if let Some(info) = &info {
            info.record_principal(&principal.user.handle, &principal.key.id);
        }
        if let Some(scope) = S::NAME {
            principal.require(scope)?;
        }
        Ok(Authed(principal, PhantomData))
    }
}

/// The admin key, checked before the body is read.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers)?;
        state.service.check_admin(key.as_deref())?;
        Ok(Admin)
    }
}

/// Reads a body up to the configured limit; over it, answers 413 after
/// draining (see [`DRAIN_FACTOR`]).
pub async fn read_body(state: &AppState, body: Body) -> Result<Bytes, Response> {
    let limit = state.max_body_bytes;
    let mut body = body;
    let mut bytes = Vec::new();
    loop {
        match body.frame().await {
            None => return Ok(Bytes::from(bytes)),
            Some(Err(e)) => {
                return Err(
                    ApiError::bad_request(format!("the body could not be read: {e}"))
                        .into_response(),
                )
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > limit {
                        let seen = bytes.len() + data.len();
                        drop(bytes);
                        let drained = tokio::time::timeout(DRAIN_TIME, drain(body, seen, limit))
                            .await
                            .unwrap_or(false);
                        return Err(too_large(limit, !drained));
                    }
                    bytes.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Reads and drops the rest of a body; true when it ended within
/// [`DRAIN_FACTOR`] times `limit`.
async fn drain(mut body: Body, mut seen: usize, limit: usize) -> bool {
    let bound = limit.saturating_mul(DRAIN_FACTOR).max(64 * 1024);
    while seen <= bound {
        match body.frame().await {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(frame)) => {
                seen += frame.data_ref().map_or(0, |d| d.len());
            }
        }
    }
    false
}

/// A JSON object body of type `T`, read under the size limit; a body that
/// is too large, not JSON, or not a `T` is answered with the JSON error
/// before the handler runs.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let bytes = read_body(state, request.into_body()).await?;
        // Every such body is an object: serde would also read a struct
        // from an array of its fields, which no client means.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(ApiError::bad_request("the body must be a JSON object").into_response());
        }
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(IntoResponse::into_response)
    }
}

/// Parses a JSON body as a `T`, with a 400 saying what is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_data() {
            "the body does not have the fields this route needs"
        } else {
            "the body is not valid JSON"
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })
}

/// A query string of type `T`; a malformed one is a JSON 400.
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(QueryArgs)
            .map_err(|e| ApiError::bad_request(format!("the query string is invalid: {e}")))
    }
}
