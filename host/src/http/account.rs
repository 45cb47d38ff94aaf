//! Users, the key's user, secrets, evaluation records and emails.

use super::errors::{ApiError, ApiResult};
use super::extract::{
    blocking, Admin, AnyKey, Authed, EmailsRead, EvaluationsRead, JsonBody, QueryArgs, SecretsRead,
    SecretsWrite,
};
use super::openapi::{
    BadInput, BodyErrors, CreatedUser, Deleted, EmailList, EvaluationList, Missing, NeedsKey,
    NewUserRequest, Saved, SecretNames, SecretRequest, TAG_ACCOUNT, TAG_ADMIN,
};
use super::AppState;
use crate::request_id;
use crate::service::{Principal, StorageUse};
use crate::store::StoredEvaluation;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// Create a user (admin key); the answer holds their API key, shown once.
#[utoipa::path(post, path = "/v1/users", tag = TAG_ADMIN,
    request_body(content = NewUserRequest),
    security(("admin" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedUser),
        (status = 409, description = "`conflict`: the handle is taken or reserved", body = super::openapi::ApiErrorBody),
        NeedsKey, BodyErrors))]
pub async fn create_user(
    State(state): Shared,
    _: Admin,
    JsonBody(body): JsonBody<NewUserRequest>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let (handle, api_key) = blocking(&state, move |service| {
        service.add_user(&body.handle, &body.email)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { handle, api_key })))
}

/// `GET /v1/me`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The handle.
    pub handle: String,
    /// Where `console.email` sends their mail.
    pub email: String,
    /// The key this request used (its id, never the key).
    pub key_id: String,
    /// Bytes stored of the quota.
    pub storage: StorageUse,
}

/// The key's user, the key's id and their storage use.
#[utoipa::path(get, path = "/v1/me", tag = TAG_ACCOUNT,
    security(("bearer" = [])),
    responses((status = 200, description = "The user", body = Me), NeedsKey))]
pub async fn me(
    State(state): Shared,
    Authed(Principal { user, key }, _): Authed<AnyKey>,
) -> ApiResult<Json<Me>> {
    let storage = blocking(&state, move |service| {
        service.storage(&user).map(|s| (user, s))
    })
    .await?;
    let (user, storage) = storage;
    Ok(Json(Me {
        handle: user.handle,
        email: user.email,
        key_id: key.id,
        storage,
    }))
}

/// Set a secret (sealed at rest; only its name is ever shown again).
#[utoipa::path(put, path = "/v1/secrets/{key}", tag = TAG_ACCOUNT,
    params(("key" = String, Path, description = "The secret's name", pattern = r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    request_body(content = SecretRequest),
    security(("bearer" = ["secrets:write"])),
    responses((status = 200, description = "Saved", body = Saved), NeedsKey, BodyErrors))]
pub async fn put_secret(
    State(state): Shared,
    Path(key): Path<String>,
    Authed(Principal { user, .. }, _): Authed<SecretsWrite>,
    JsonBody(body): JsonBody<SecretRequest>,
) -> ApiResult<Json<Saved>> {
    blocking(&state, move |service| {
        service.put_secret(&user, &key, &body.value)
    })
    .await?;
    Ok(Json(Saved { saved: true }))
}

/// The names of my secrets.
#[utoipa::path(get, path = "/v1/secrets", tag = TAG_ACCOUNT,
    security(("bearer" = ["secrets:read"])),
    responses((status = 200, description = "Their names", body = SecretNames), NeedsKey))]
pub async fn list_secrets(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<SecretsRead>,
) -> ApiResult<Json<SecretNames>> {
    let secrets = blocking(&state, move |service| service.secret_names(&user)).await?;
    Ok(Json(SecretNames { secrets }))
}

/// Delete a secret.
#[utoipa::path(delete, path = "/v1/secrets/{key}", tag = TAG_ACCOUNT,
    params(("key" = String, Path, description = "The secret's name", pattern = r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security(("bearer" = ["secrets:write"])),
    responses((status = 200, description = "Deleted", body = Deleted), NeedsKey, Missing, BadInput))]
pub async fn delete_secret(
    State(state): Shared,
    Path(key): Path<String>,
    Authed(Principal { user, .. }, _): Authed<SecretsWrite>,
) -> ApiResult<Json<Deleted>> {
    blocking(&state, move |service| service.delete_secret(&user, &key)).await?;
    Ok(Json(Deleted { deleted: true }))
}

/// `GET /v1/evaluations`'s query.
#[derive(serde::Deserialize)]
pub struct EvaluationsQuery {
    limit: Option<u32>,
    before: Option<i64>,
    request_id: Option<String>,
}

/// My evaluation records, newest first: a page of `limit` (default 20)
/// with ids below `before`; `request_id` keeps those made for one request
/// (its `x-request-id`) or job (its id).
#[utoipa::path(get, path = "/v1/evaluations", tag = TAG_ACCOUNT,
    params(
        ("limit" = Option<u32>, Query, description = "Records per page (default 20)", minimum = 1, maximum = 100),
        ("before" = Option<i64>, Query, description = "Only ids below this (the last page's smallest id)"),
        ("request_id" = Option<String>, Query, description = "Only those of this request or job id",
            min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.:/+=@-]+$")),
    security(("bearer" = ["evaluations:read"])),
    responses((status = 200, description = "A page of records", body = EvaluationList), NeedsKey, BadInput))]
pub async fn list_evaluations(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<EvaluationsRead>,
    QueryArgs(query): QueryArgs<EvaluationsQuery>,
) -> ApiResult<Json<EvaluationList>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be from 1 to 100"));
    }
    let request_id = match query.request_id {
        None => None,
        Some(id) => Some(request_id::from_client(id.as_bytes()).ok_or_else(|| {
            ApiError::bad_request(
                "`request_id` is not a request id: 1 to 128 letters, digits or -_.:/+=@",
            )
        })?),
    };
    let evaluations = blocking(&state, move |service| {
        service.evaluations(&user, limit, query.before, request_id.as_deref())
    })
    .await?;
    Ok(Json(EvaluationList { evaluations }))
}

/// One of my evaluation records.
#[utoipa::path(get, path = "/v1/evaluations/{id}", tag = TAG_ACCOUNT,
    params(("id" = i64, Path, description = "Its id")),
    security(("bearer" = ["evaluations:read"])),
    responses((status = 200, description = "The record", body = StoredEvaluation), NeedsKey, Missing))]
pub async fn get_evaluation(
    State(state): Shared,
    Path(id): Path<String>,
    Authed(Principal { user, .. }, _): Authed<EvaluationsRead>,
) -> ApiResult<Json<StoredEvaluation>> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError(crate::service::ServiceError::NotFound(format!(
            "no evaluation {id}"
        )))
    })?;
    let record = blocking(&state, move |service| service.evaluation(&user, id)).await?;
    Ok(Json(record))
}

/// Emails `console.email` sent to me.
#[utoipa::path(get, path = "/v1/emails", tag = TAG_ACCOUNT,
    security(("bearer" = ["emails:read"])),
    responses((status = 200, description = "Newest first", body = EmailList), NeedsKey))]
pub async fn list_emails(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<EmailsRead>,
) -> ApiResult<Json<EmailList>> {
    let emails = blocking(&state, move |service| service.emails(&user)).await?;
    Ok(Json(EmailList { emails }))
}
