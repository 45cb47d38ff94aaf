//! The job queue over HTTP: submit, then poll.

use super::errors::ApiResult;
use super::extract::{blocking, Authed, JsonBody, Run};
use super::openapi::{AcceptedJob, BodyErrors, JobRequest, Missing, NeedsKey, TAG_JOBS};
use super::AppState;
use crate::service::Principal;
use crate::service::ServiceError;
use crate::store::StoredJob;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// Queue a job; it runs as me (`run`: API mode as `/v1/run`; `eval`: as `/v1/eval`).
#[utoipa::path(post, path = "/v1/jobs", tag = TAG_JOBS,
    request_body(content = JobRequest),
    security(("bearer" = ["run"])),
    responses((status = 202, description = "Stored and queued", body = AcceptedJob), NeedsKey, BodyErrors))]
pub async fn submit_job(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<Run>,
    JsonBody(body): JsonBody<JobRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedJob>)> {
    let request = serde_json::to_value(&body)
        .map_err(|e| ServiceError::Internal(format!("the job could not be encoded: {e}")))?;
    let job = blocking(&state, move |service| service.submit_job(&user, &request)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedJob {
            id: job.id,
            status: job.status,
        }),
    ))
}

/// One of my jobs: status, attempts, result or error.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = TAG_JOBS,
    params(("id" = String, Path, description = "The job's id", pattern = r"^[0-9a-f]{32}$")),
    security(("bearer" = ["run"])),
    responses((status = 200, description = "The job", body = StoredJob), NeedsKey, Missing))]
pub async fn get_job(
    State(state): Shared,
    Path(id): Path<String>,
    Authed(Principal { user, .. }, _): Authed<Run>,
) -> ApiResult<Json<StoredJob>> {
    let job = blocking(&state, move |service| service.job(&user, &id)).await?;
    Ok(Json(job))
}
