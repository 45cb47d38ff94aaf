//! The job queue over HTTP: submit, then poll.

use super::errors::{ApiError, ApiResult};
use super::extract::{blocking, Authed, JsonBody, QueryArgs, Run};
use super::openapi::{
    AcceptedJob, BadInput, BodyErrors, JobList, JobRequest, Missing, NeedsKey, TAG_JOBS,
};
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

/// `GET /v1/jobs`'s query.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// How many (1 to 100, default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Only jobs submitted before this one (its id), for the next page.
    #[param(pattern = r"^[0-9a-f]{32}$")]
    before: Option<String>,
}

/// My jobs, newest first: submitted ones and my schedules' runs.
#[utoipa::path(get, path = "/v1/jobs", tag = TAG_JOBS,
    params(JobsQuery),
    security(("bearer" = ["run"])),
    responses((status = 200, description = "Newest first", body = JobList), NeedsKey, BadInput))]
pub async fn list_jobs(
    State(state): Shared,
    Authed(Principal { user, .. }, _): Authed<Run>,
    QueryArgs(query): QueryArgs<JobsQuery>,
) -> ApiResult<Json<JobList>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 100"));
    }
    if let Some(before) = &query.before {
        let job_id = before.len() == 32
            && before
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !job_id {
            return Err(ApiError::bad_request(
                "`before` must be a job id (32 lower-case hex digits)",
            ));
        }
    }
    let jobs = blocking(&state, move |service| {
        service.jobs(&user, limit, query.before.as_deref())
    })
    .await?;
    Ok(Json(JobList { jobs }))
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
