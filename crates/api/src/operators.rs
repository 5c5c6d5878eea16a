//! Operators: the people who log in to the back-office console at `/admin`. Admin keys create
//! them; the console is the only place their login works.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminCaller, Secret};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::time::format_micros;
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_operator))
}

/// A new operator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorBody {
    /// The console login.
    #[schema(example = "ops@example.com")]
    pub email: String,
    #[schema(example = "Kim Operator")]
    pub name: String,
    /// 10 to 128 characters; stored only as an argon2id hash.
    #[schema(value_type = String)]
    pub password: Secret,
}

/// An operator, without any secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorView {
    /// `opr_…`.
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: String,
}

/// Creates an operator who can log in to the console at `/admin/login`.
#[utoipa::path(
    post,
    path = "/v1/admin/operators",
    tag = "admin",
    security(("bearer" = [])),
    request_body = OperatorBody,
    responses(
        (status = 201, description = "The operator", body = OperatorView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 409, description = "`operator_email_taken`", body = ErrorBody),
        (status = 422, description = "`email_invalid`, `name_invalid` or `password_invalid`", body = ErrorBody),
    )
)]
pub(crate) async fn create_operator(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiJson(body): ApiJson<OperatorBody>,
) -> Result<(StatusCode, Json<OperatorView>), ApiError> {
    let operator = state
        .backoffice
        .create_operator(&body.email, &body.name, body.password.expose().to_owned())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(OperatorView {
            id: operator.id.to_string(),
            email: operator.email,
            name: operator.name,
            created_at: format_micros(operator.created_at),
        }),
    ))
}
