//! A user's own API keys: make one (shown once), list them, revoke one.

use super::errors::ApiResult;
use super::extract::{blocking, Authed, JsonBody, Keys};
use super::openapi::{BadInput, BodyErrors, Missing, NeedsKey, Revoked, TAG_ACCOUNT};
use super::AppState;
use crate::service::Principal;
use crate::store::ApiKey;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Shared = State<Arc<AppState>>;

/// A scope, as requests spell it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum ScopeName {
    /// Read vals (`GET /v1/vals/...`, `/v1/users/{user}/vals`).
    #[serde(rename = "vals:read")]
    ValsRead,
    /// Save, change and delete vals.
    #[serde(rename = "vals:write")]
    ValsWrite,
    /// List secret names.
    #[serde(rename = "secrets:read")]
    SecretsRead,
    /// Set and delete secrets.
    #[serde(rename = "secrets:write")]
    SecretsWrite,
    /// Run code: eval, run, express, jobs.
    #[serde(rename = "run")]
    Run,
    /// Read evaluation records.
    #[serde(rename = "evaluations:read")]
    EvaluationsRead,
    /// Read emails.
    #[serde(rename = "emails:read")]
    EmailsRead,
    /// Manage the user's keys.
    #[serde(rename = "keys")]
    Keys,
}

impl ScopeName {
    fn as_str(self) -> &'static str {
        match self {
            ScopeName::ValsRead => "vals:read",
            ScopeName::ValsWrite => "vals:write",
            ScopeName::SecretsRead => "secrets:read",
            ScopeName::SecretsWrite => "secrets:write",
            ScopeName::Run => "run",
            ScopeName::EvaluationsRead => "evaluations:read",
            ScopeName::EmailsRead => "emails:read",
            ScopeName::Keys => "keys",
        }
    }
}

/// `POST /v1/me/keys`.
#[derive(Deserialize, ToSchema)]
pub struct NewKeyRequest {
    /// What to call it (1 to 64 characters, not only spaces).
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    pub name: String,
    /// What it may do: each one a scope the calling key holds.
    #[schema(min_items = 1)]
    pub scopes: Vec<ScopeName>,
    /// When it stops working (Unix seconds, in the future); never without.
    pub expires_at: Option<i64>,
}

/// `201` of `POST /v1/me/keys`: the key, shown once, and its record.
#[derive(Serialize, ToSchema)]
pub struct NewKey {
    /// The key: `Authorization: Bearer <key>`. Not shown again.
    pub key: String,
    /// Its record, as `GET /v1/me/keys` lists it.
    #[serde(flatten)]
    pub record: ApiKey,
}

/// A user's keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// By creation time (to the second).
    pub keys: Vec<ApiKey>,
}

/// Make a key for my user with some of this key's scopes.
#[utoipa::path(post, path = "/v1/me/keys", tag = TAG_ACCOUNT,
    request_body(content = NewKeyRequest),
    security(("bearer" = ["keys"])),
    responses(
        (status = 201, description = "Made; the key is in the answer, once", body = NewKey),
        (status = 403, description = "`forbidden`: this key lacks `keys`, or a scope asked for", body = super::openapi::ApiErrorBody),
        NeedsKey, BodyErrors))]
pub async fn create_key(
    State(state): Shared,
    Authed(principal, _): Authed<Keys>,
    JsonBody(body): JsonBody<NewKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    let scopes: Vec<String> = body.scopes.iter().map(|s| s.as_str().to_string()).collect();
    let (key, record) = blocking(&state, move |service| {
        service.create_key(&principal, &body.name, &scopes, body.expires_at)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(NewKey { key, record })))
}

/// My user's keys: names, scopes, when made, last used and expiring — never the keys.
#[utoipa::path(get, path = "/v1/me/keys", tag = TAG_ACCOUNT,
    security(("bearer" = ["keys"])),
    responses((status = 200, description = "The keys", body = KeyList),
        (status = 403, description = "`forbidden`: this key lacks `keys`", body = super::openapi::ApiErrorBody),
        NeedsKey))]
pub async fn list_keys(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<Keys>,
) -> ApiResult<Json<KeyList>> {
    let keys = blocking(&state, move |service| service.keys(&user.handle)).await?;
    Ok(Json(KeyList { keys }))
}

/// Revoke one of my user's keys (this one too): the next request with it is a 401.
#[utoipa::path(delete, path = "/v1/me/keys/{id}", tag = TAG_ACCOUNT,
    params(("id" = String, Path, description = "The key's id", pattern = r"^key_[0-9a-f]{16}$")),
    security(("bearer" = ["keys"])),
    responses((status = 200, description = "Revoked", body = Revoked),
        (status = 403, description = "`forbidden`: this key lacks `keys`", body = super::openapi::ApiErrorBody),
        NeedsKey, Missing, BadInput))]
pub async fn revoke_key(
    State(state): Shared,
    Path(id): Path<String>,
    Authed(Principal { user, .. }, _): Authed<Keys>,
) -> ApiResult<Json<Revoked>> {
    blocking(&state, move |service| service.revoke_key(&user.handle, &id)).await?;
    Ok(Json(Revoked { revoked: true }))
}
