//! Saving, reading, listing and deleting vals.

use super::code::split_target;
use super::errors::{ApiError, ApiResult};
use super::extract::{as_caller, blocking, Authed, JsonBody, QueryArgs, ValsRead, ValsWrite};
use super::openapi::{
    BadInput, BodyErrors, CallSiteStatus, CallSitesQuery, Deleted, FixBody, ForkRequest, Missing,
    NeedsKey, OptionalKey, PatchValRequest, PinRequest, SaveValRequest, ScheduleList, ValList,
    VersionInfo, VersionList, TAG_VALS,
};
use super::AppState;
use crate::service::Principal;
use crate::service::{
    CallSiteReport, FixPreview, PinReport, ReferenceList, ReferrerList, Upstream, ValView,
};
use crate::store::ValMeta;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// Create, or save a new version of, my val `name`.
#[utoipa::path(put, path = "/v1/vals/{target}", tag = TAG_VALS,
    params(("target" = String, Path, description = "My val's name", pattern = r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    request_body(content = SaveValRequest, description = "The code, and the privacy to set"),
    security(("bearer" = ["vals:write"])),
    responses(
        (status = 200, description = "Saved: the val's latest version", body = ValMeta),
        NeedsKey, BodyErrors))]
pub async fn put_val(
    State(state): Shared,
    Path(name): Path<String>,
    Authed(Principal { user, .. }, _): Authed<ValsWrite>,
    JsonBody(body): JsonBody<SaveValRequest>,
) -> ApiResult<Json<ValMeta>> {
    let meta = blocking(&state, move |service| {
        let meta = service.save_val(&user, &name, &body.code, body.privacy)?;
        service.change_schedule(&user, &name, body.schedule.as_ref(), body.paused)?;
        Ok(meta)
    })
    .await?;
    Ok(Json(meta))
}

/// `GET /v1/vals/{target}`'s query.
#[derive(serde::Deserialize)]
pub struct VersionQuery {
    version: Option<u32>,
}

/// A val `user.name`: metadata and code (of `?version=N`, else the latest).
#[utoipa::path(get, path = "/v1/vals/{target}", tag = TAG_VALS,
    params(
        ("target" = String, Path, description = "`user.name`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$"),
        ("version" = Option<u32>, Query, description = "A version number", minimum = 1)),
    security((), ("bearer" = ["vals:read"])),
    responses((status = 200, description = "The version", body = ValView), OptionalKey, Missing, BadInput))]
pub async fn get_val(
    State(state): Shared,
    Path(target): Path<String>,
    QueryArgs(query): QueryArgs<VersionQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<ValView>> {
    let (user, name) = split_target(&target)?;
    if query.version == Some(0) {
        return Err(ApiError::bad_request(
            "`version` must be a positive integer",
        ));
    }
    let view = as_caller(&state, &headers, "vals:read", move |service, viewer| {
        service.val(viewer, &user, &name, query.version)
    })
    .await?;
    Ok(Json(view))
}

/// Change my val's privacy or schedule, or pause or resume its schedule.
#[utoipa::path(patch, path = "/v1/vals/{target}", tag = TAG_VALS,
    params(("target" = String, Path, description = "My val's name", pattern = r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    request_body(content = PatchValRequest),
    security(("bearer" = ["vals:write"])),
    responses((status = 200, description = "Changed", body = ValMeta), NeedsKey, Missing, BodyErrors))]
pub async fn patch_val(
    State(state): Shared,
    Path(name): Path<String>,
    Authed(Principal { user, .. }, _): Authed<ValsWrite>,
    JsonBody(body): JsonBody<PatchValRequest>,
) -> ApiResult<Json<ValMeta>> {
    let meta = blocking(&state, move |service| {
        let meta = match body.privacy {
            Some(privacy) => service.set_privacy(&user, &name, privacy)?,
            None => service.val_meta(&user, &name)?,
        };
        service.change_schedule(&user, &name, body.schedule.as_ref(), body.paused)?;
        Ok(meta)
    })
    .await?;
    Ok(Json(meta))
}

/// My scheduled vals: schedule, next and last run, failures in a row.
#[utoipa::path(get, path = "/v1/schedules", tag = TAG_VALS,
    security(("bearer" = ["vals:read"])),
    responses((status = 200, description = "My schedules", body = ScheduleList), NeedsKey))]
pub async fn list_schedules(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<ValsRead>,
) -> ApiResult<Json<ScheduleList>> {
    let schedules = blocking(&state, move |service| service.schedules(&user)).await?;
    Ok(Json(ScheduleList { schedules }))
}

/// Delete my val and all its versions.
#[utoipa::path(delete, path = "/v1/vals/{target}", tag = TAG_VALS,
    params(("target" = String, Path, description = "My val's name", pattern = r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security(("bearer" = ["vals:write"])),
    responses((status = 200, description = "Deleted", body = Deleted), NeedsKey, Missing, BadInput))]
pub async fn delete_val(
    State(state): Shared,
    Path(name): Path<String>,
    Authed(Principal { user, .. }, _): Authed<ValsWrite>,
) -> ApiResult<Json<Deleted>> {
    blocking(&state, move |service| service.delete_val(&user, &name)).await?;
    Ok(Json(Deleted { deleted: true }))
}

/// The versions of `user.name`.
#[utoipa::path(get, path = "/v1/vals/{target}/versions", tag = TAG_VALS,
    params(("target" = String, Path, description = "`user.name`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security((), ("bearer" = ["vals:read"])),
    responses((status = 200, description = "Oldest first", body = VersionList), OptionalKey, Missing, BadInput))]
pub async fn val_versions(
    State(state): Shared,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<VersionList>> {
    let (user, name) = split_target(&target)?;
    let versions = as_caller(&state, &headers, "vals:read", move |service, viewer| {
        service.versions(viewer, &user, &name)
    })
    .await?;
    let versions = versions
        .into_iter()
        .map(|(version, created_at)| VersionInfo {
            version,
            created_at,
        })
        .collect();
    Ok(Json(VersionList { versions }))
}

/// A val's outgoing `@` references (of `?version=N`, else the latest):
/// what each does, what it names (`@me` as the author), and where.
#[utoipa::path(get, path = "/v1/vals/{target}/references", tag = TAG_VALS,
    params(
        ("target" = String, Path, description = "`user.name`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$"),
        ("version" = Option<u32>, Query, description = "A version number", minimum = 1)),
    security((), ("bearer" = ["vals:read"])),
    responses((status = 200, description = "In source order", body = ReferenceList), OptionalKey, Missing, BadInput))]
pub async fn val_references(
    State(state): Shared,
    Path(target): Path<String>,
    QueryArgs(query): QueryArgs<VersionQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<ReferenceList>> {
    let (user, name) = split_target(&target)?;
    if query.version == Some(0) {
        return Err(ApiError::bad_request(
            "`version` must be a positive integer",
        ));
    }
    let list = as_caller(&state, &headers, "vals:read", move |service, viewer| {
        service.references(viewer, &user, &name, query.version)
    })
    .await?;
    Ok(Json(list))
}

/// The vals whose latest version references this one: public ones (and
/// the caller's own) by name, other users' private ones only counted.
#[utoipa::path(get, path = "/v1/vals/{target}/referenced-by", tag = TAG_VALS,
    params(("target" = String, Path, description = "`user.name`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security((), ("bearer" = ["vals:read"])),
    responses((status = 200, description = "Its referrers", body = ReferrerList), OptionalKey, Missing, BadInput))]
pub async fn val_referenced_by(
    State(state): Shared,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<ReferrerList>> {
    let (user, name) = split_target(&target)?;
    let list = as_caller(&state, &headers, "vals:read", move |service, viewer| {
        service.referenced_by(viewer, &user, &name)
    })
    .await?;
    Ok(Json(list))
}

/// Fork a val I can see into my account (private unless said), at a
/// version or its latest; the fork records where it came from.
#[utoipa::path(post, path = "/v1/vals/{target}/fork", tag = TAG_VALS,
    params(("target" = String, Path, description = "`user.name`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    request_body(content = ForkRequest),
    security(("bearer" = ["vals:write"])),
    responses(
        (status = 200, description = "The fork", body = ValMeta),
        (status = 409, description = "`conflict`: I already have a val of that name", body = super::openapi::ApiErrorBody),
        NeedsKey, Missing, BodyErrors))]
pub async fn fork_val(
    State(state): Shared,
    Path(target): Path<String>,
    Authed(Principal { user, .. }, _): Authed<ValsWrite>,
    JsonBody(body): JsonBody<ForkRequest>,
) -> ApiResult<Json<ValMeta>> {
    let (owner, name) = split_target(&target)?;
    if body.version == Some(0) {
        return Err(ApiError::bad_request(
            "`version` must be a positive integer",
        ));
    }
    let meta = blocking(&state, move |service| {
        service.fork(
            &user,
            &owner,
            &name,
            body.version,
            body.name.as_deref(),
            body.privacy,
        )
    })
    .await?;
    Ok(Json(meta))
}

/// Where a fork came from, whether the original has newer versions, and
/// a line diff from the forked version to the original's latest.
#[utoipa::path(get, path = "/v1/vals/{target}/upstream", tag = TAG_VALS,
    params(("target" = String, Path, description = "`user.name`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security((), ("bearer" = ["vals:read"])),
    responses((status = 200, description = "The fork's upstream", body = Upstream), OptionalKey, Missing, BadInput))]
pub async fn val_upstream(
    State(state): Shared,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Upstream>> {
    let (user, name) = split_target(&target)?;
    let upstream = as_caller(&state, &headers, "vals:read", move |service, viewer| {
        service.upstream(viewer, &user, &name)
    })
    .await?;
    Ok(Json(upstream))
}

/// Pin my unpinned references to other users' vals (`@bob.f` →
/// `@bob.f@7`, the version I see now): a preview, or saved with `apply`.
#[utoipa::path(post, path = "/v1/me/pin", tag = TAG_VALS,
    request_body(content = PinRequest),
    security(("bearer" = ["vals:write"])),
    responses((status = 200, description = "What pinning changes", body = PinReport), NeedsKey, BodyErrors))]
pub async fn pin_references(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<ValsWrite>,
    JsonBody(body): JsonBody<PinRequest>,
) -> ApiResult<Json<PinReport>> {
    let report = blocking(&state, move |service| service.pin(&user, body.apply)).await?;
    Ok(Json(report))
}

/// My library call sites `@B.f(…)` and every path on which Restricted
/// Library Mode changes what they get (the seed's upgrade guide, done for
/// me), with recent runs as evidence.
#[utoipa::path(get, path = "/v1/me/call-sites", tag = TAG_VALS,
    params(CallSitesQuery),
    security(("bearer" = ["vals:read"])),
    responses((status = 200, description = "My call sites", body = CallSiteReport), NeedsKey, BadInput))]
pub async fn call_sites(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<ValsRead>,
    QueryArgs(query): QueryArgs<CallSitesQuery>,
) -> ApiResult<Json<CallSiteReport>> {
    let status = query.status.map(CallSiteStatus::as_str);
    let report = blocking(&state, move |service| service.call_sites(&user, status)).await?;
    Ok(Json(report))
}

/// Rewrite call sites as `await api(@B.f, …)` (a preview: nothing is
/// saved; save with `PUT /v1/vals/{name}`).
#[utoipa::path(post, path = "/v1/me/call-sites/fix", tag = TAG_VALS,
    request_body(content = FixBody),
    security(("bearer" = ["vals:read"])),
    responses(
        (status = 200, description = "The rewritten code of each val", body = FixPreview),
        (status = 409, description = "`conflict`: the val has a newer version than the one listed, or no library call at a listed position", body = super::openapi::ApiErrorBody),
        NeedsKey, Missing, BodyErrors))]
pub async fn fix_call_sites(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<ValsRead>,
    JsonBody(body): JsonBody<FixBody>,
) -> ApiResult<Json<FixPreview>> {
    let request = body.into();
    let preview = blocking(&state, move |service| {
        service.fix_call_sites(&user, &request)
    })
    .await?;
    Ok(Json(preview))
}

/// A user's vals (private ones to their owner only).
#[utoipa::path(get, path = "/v1/users/{user}/vals", tag = TAG_VALS,
    params(("user" = String, Path, description = "A handle", pattern = r"^[A-Za-z][A-Za-z0-9_]{0,31}$")),
    security((), ("bearer" = ["vals:read"])),
    responses((status = 200, description = "Their vals", body = ValList), OptionalKey, Missing, BadInput))]
pub async fn user_vals(
    State(state): Shared,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<ValList>> {
    let vals = as_caller(&state, &headers, "vals:read", move |service, viewer| {
        service.list_vals(viewer, &user)
    })
    .await?;
    Ok(Json(ValList { vals }))
}
