//! The job queue for operators: dead letters (and any other job) listed and inspected with
//! every attempt, retried or discarded. Admin keys only: a dead letter may carry any payload.

use axum::extract::State;
use axum::Json;
use jobs::{Job, JobAttempt, JobState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, NoFields, OptionalJson};
use crate::pagination::{page_limit, trim_page};
use crate::time::format_micros;
use crate::AppState;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
        .routes(routes!(discard_job))
}

/// Listing jobs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// `queued`, `running`, `done`, `dead` or `discarded`; every state when absent.
    pub state: Option<String>,
    /// Only jobs of this kind, e.g. `settlement.run_day`.
    pub kind: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    #[schema(example = "job_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    #[schema(example = "ledger.check")]
    pub kind: String,
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    /// `queued`, `running`, `done`, `dead` or `discarded`.
    #[schema(example = "dead")]
    pub state: &'static str,
    /// Attempts in this round; an operator's retry starts a new round.
    pub attempts: i64,
    pub max_attempts: i64,
    /// When the job is due next (for a running job: when its claim ends).
    pub run_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> JobView {
        JobView {
            id: job.id.to_string(),
            kind: job.kind,
            payload: job.payload,
            unique_key: job.unique_key,
            state: job.state.as_str(),
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            run_at: format_micros(job.run_at),
            last_error: job.last_error,
            created_at: format_micros(job.created_at),
            updated_at: format_micros(job.updated_at),
            finished_at: job.finished_at.map(format_micros),
        }
    }
}

/// One attempt at a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1, 2, … over the job's life, across operator retries.
    pub attempt: i64,
    /// The worker (process) that ran it.
    pub worker: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `done`, `retry`, `failed`, or null while running or when its worker died.
    pub outcome: Option<String>,
    pub error: Option<String>,
}

impl From<JobAttempt> for AttemptView {
    fn from(attempt: JobAttempt) -> AttemptView {
        AttemptView {
            attempt: attempt.attempt,
            worker: attempt.worker,
            started_at: format_micros(attempt.started_at),
            finished_at: attempt.finished_at.map(format_micros),
            outcome: attempt.outcome,
            error: attempt.error,
        }
    }
}

/// A job with every attempt made at it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobView,
    pub history: Vec<AttemptView>,
}

/// A page of jobs, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub data: Vec<JobView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Jobs, oldest first: `?state=dead` lists the dead letters.
#[utoipa::path(
    get,
    path = "/v1/admin/jobs",
    tag = "jobs",
    security(("bearer" = [])),
    params(JobsQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 400, description = "Unknown state, malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    )
)]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiQuery(query): ApiQuery<JobsQuery>,
) -> Result<Json<JobList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let wanted = query
        .state
        .as_deref()
        .map(|raw| {
            JobState::parse(raw).ok_or_else(|| {
                ApiError::InvalidRequest(
                    "state must be queued, running, done, dead or discarded".into(),
                )
            })
        })
        .transpose()?;
    let mut items = state
        .jobs
        .list(
            wanted,
            query.kind.as_deref(),
            query.after.as_deref(),
            limit + 1,
        )
        .await?;
    let next_cursor = trim_page(&mut items, limit, |job| job.id.to_string());
    Ok(Json(JobList {
        data: items.into_iter().map(JobView::from).collect(),
        next_cursor,
    }))
}

/// A job with its attempts.
#[utoipa::path(
    get,
    path = "/v1/admin/jobs/{id}",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The job (`job_…`)")),
    responses(
        (status = 200, description = "The job and every attempt", body = JobDetail),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "`job_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobDetail>, ApiError> {
    detail(&state, state.jobs.get(&id).await?).await
}

/// Puts a dead job back in the queue, due at once, with a fresh set of attempts: after the
/// cause was fixed.
#[utoipa::path(
    post,
    path = "/v1/admin/jobs/{id}/retry",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The job (`job_…`)")),
    request_body(content = Option<NoFields>, description = "Optional: an empty body or `{}`; any field is refused"),
    responses(
        (status = 200, description = "Queued again", body = JobDetail),
        (status = 400, description = "A body with a field (this action takes none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "`job_not_found`", body = ErrorBody),
        (status = 409, description = "`job_not_dead`", body = ErrorBody),
    )
)]
pub(crate) async fn retry_job(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(NoFields {}): OptionalJson<NoFields>,
) -> Result<Json<JobDetail>, ApiError> {
    detail(&state, state.jobs.retry(&id).await?).await
}

/// Gives a dead job up for good; it stays on record as `discarded`.
#[utoipa::path(
    post,
    path = "/v1/admin/jobs/{id}/discard",
    tag = "jobs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The job (`job_…`)")),
    request_body(content = Option<NoFields>, description = "Optional: an empty body or `{}`; any field is refused"),
    responses(
        (status = 200, description = "Discarded", body = JobDetail),
        (status = 400, description = "A body with a field (this action takes none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "`job_not_found`", body = ErrorBody),
        (status = 409, description = "`job_not_dead`", body = ErrorBody),
    )
)]
pub(crate) async fn discard_job(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(NoFields {}): OptionalJson<NoFields>,
) -> Result<Json<JobDetail>, ApiError> {
    detail(&state, state.jobs.discard(&id).await?).await
}

async fn detail(state: &AppState, job: Job) -> Result<Json<JobDetail>, ApiError> {
    let history = state.jobs.attempts(&job.id).await?;
    Ok(Json(JobDetail {
        job: job.into(),
        history: history.into_iter().map(AttemptView::from).collect(),
    }))
}
