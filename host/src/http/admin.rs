//! The operator's routes, with the admin key: list and delete users, list
//! and revoke anyone's keys. (`POST /v1/users` is in `account.rs`.)

use super::errors::ApiResult;
use super::extract::{blocking, Admin};
use super::keys::KeyList;
use super::openapi::{BadInput, Deleted, Missing, NeedsKey, Revoked, TAG_ADMIN};
use super::AppState;
use crate::store::User;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

type Shared = State<Arc<AppState>>;

/// Every user.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    /// By handle.
    pub users: Vec<User>,
}

/// Every user (admin key).
#[utoipa::path(get, path = "/v1/users", tag = TAG_ADMIN,
    security(("admin" = [])),
    responses((status = 200, description = "The users", body = UserList), NeedsKey))]
pub async fn list_users(State(state): Shared, _: Admin) -> ApiResult<Json<UserList>> {
    let users = blocking(&state, |service| service.users()).await?;
    Ok(Json(UserList { users }))
}

/// Delete a user and everything theirs: vals and versions, secrets, keys,
/// evaluation records, emails, jobs (admin key). The handle is retired.
#[utoipa::path(delete, path = "/v1/users/{handle}", tag = TAG_ADMIN,
    params(("handle" = String, Path, description = "A handle", pattern = r"^[A-Za-z][A-Za-z0-9_]{0,31}$")),
    security(("admin" = [])),
    responses((status = 200, description = "Deleted", body = Deleted), NeedsKey, Missing, BadInput))]
pub async fn delete_user(
    State(state): Shared,
    Path(handle): Path<String>,
    _: Admin,
) -> ApiResult<Json<Deleted>> {
    blocking(&state, move |service| service.delete_user(&handle)).await?;
    Ok(Json(Deleted { deleted: true }))
}

/// A user's keys (admin key).
#[utoipa::path(get, path = "/v1/users/{handle}/keys", tag = TAG_ADMIN,
    params(("handle" = String, Path, description = "A handle", pattern = r"^[A-Za-z][A-Za-z0-9_]{0,31}$")),
    security(("admin" = [])),
    responses((status = 200, description = "The keys", body = KeyList), NeedsKey, Missing, BadInput))]
pub async fn user_keys(
    State(state): Shared,
    Path(handle): Path<String>,
    _: Admin,
) -> ApiResult<Json<KeyList>> {
    let keys = blocking(&state, move |service| service.keys(&handle)).await?;
    Ok(Json(KeyList { keys }))
}

/// Revoke a user's key (admin key).
#[utoipa::path(delete, path = "/v1/users/{handle}/keys/{id}", tag = TAG_ADMIN,
    params(
        ("handle" = String, Path, description = "A handle", pattern = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"),
        ("id" = String, Path, description = "The key's id", pattern = r"^key_[0-9a-f]{16}$")),
    security(("admin" = [])),
    responses((status = 200, description = "Revoked", body = Revoked), NeedsKey, Missing, BadInput))]
pub async fn revoke_user_key(
    State(state): Shared,
    Path((handle, id)): Path<(String, String)>,
    _: Admin,
) -> ApiResult<Json<Revoked>> {
    blocking(&state, move |service| service.revoke_key(&handle, &id)).await?;
    Ok(Json(Revoked { revoked: true }))
}
