//! The member route handlers: each parses its input into `membership`'s types, calls the
//! service, and shapes the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use membership::{
    Email, Member, MemberError, MemberId, MemberName, NewMember, Password, Phone, ProfileChange,
};

use super::views::{
    CloseRequest, LogInRequest, MemberView, SessionView, SignUpRequest, UpdateProfileRequest,
};
use crate::auth::{Caller, MemberCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, OptionalJson};
use crate::idempotency::no_store;
use crate::AppState;

/// Signs a person up.
#[utoipa::path(
    post,
    path = "/v1/members",
    tag = "members",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "The new member", body = MemberView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 409, description = "`email_taken` or `phone_taken`", body = ErrorBody),
        (status = 422, description = "`email_invalid`, `phone_invalid`, `name_invalid` or `password_invalid`", body = ErrorBody),
    )
)]
pub(crate) async fn sign_up(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SignUpRequest>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let new = NewMember {
        email: Email::parse(&request.email)?,
        phone: Phone::parse(&request.phone)?,
        name: MemberName::parse(&request.name)?,
        password: Password::parse(request.password.expose().to_owned())?,
    };
    let member = state.members.sign_up(new).await?;
    Ok((StatusCode::CREATED, Json(member.into())))
}

/// The calling member.
#[utoipa::path(
    get,
    path = "/v1/members/me",
    tag = "members",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no \"me\"", body = ErrorBody),
    )
)]
pub(crate) async fn get_me(
    State(state): State<AppState>,
    caller: MemberCaller,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(state.members.get(&caller.member_id).await?.into()))
}

/// Changes the calling member's profile.
#[utoipa::path(
    patch,
    path = "/v1/members/me",
    tag = "members",
    security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The changed member", body = MemberView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no \"me\"", body = ErrorBody),
        (status = 409, description = "`email_taken`, `phone_taken` or `member_closed`", body = ErrorBody),
        (status = 422, description = "An invalid field, `new_password` without `current_password` (`invalid_request`), or `current_password_incorrect`", body = ErrorBody),
        (status = 429, description = "`login_locked`: too many wrong passwords for this address", body = ErrorBody),
    )
)]
pub(crate) async fn update_me(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiJson(request): ApiJson<UpdateProfileRequest>,
) -> Result<Json<MemberView>, ApiError> {
    let change = ProfileChange {
        name: request.name.as_deref().map(MemberName::parse).transpose()?,
        email: request.email.as_deref().map(Email::parse).transpose()?,
        phone: request.phone.as_deref().map(Phone::parse).transpose()?,
        new_password: request
            .new_password
            .map(|secret| Password::parse(secret.expose().to_owned()))
            .transpose()?,
        current_password: request
            .current_password
            .map(|secret| Password::presented(secret.expose().to_owned()))
            .transpose()
            .map_err(|_| MemberError::CurrentPasswordIncorrect)?,
    };
    let member = state.members.update(&caller.member_id, change).await?;
    Ok(Json(member.into()))
}

/// Closes the calling member for good; refused while they hold money.
#[utoipa::path(
    post,
    path = "/v1/members/me/close",
    tag = "members",
    security(("bearer" = [])),
    request_body(content = CloseRequest, description = "An empty body or `{}`"),
    responses(
        (status = 200, description = "The closed member; every session is revoked", body = MemberView),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no \"me\"", body = ErrorBody),
        (status = 409, description = "`balance_remaining`: a ledger account of the member has a balance or pending holds", body = ErrorBody),
    )
)]
pub(crate) async fn close_me(
    State(state): State<AppState>,
    caller: MemberCaller,
    OptionalJson(CloseRequest {}): OptionalJson<CloseRequest>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(state.members.close(&caller.member_id).await?.into()))
}

/// A member by id: for the member themself and for admin and platform keys.
#[utoipa::path(
    get,
    path = "/v1/members/{id}",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The member's id (`usr_…`)")),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A merchant key", body = ErrorBody),
        (status = 404, description = "`member_not_found`: no such member, or another member's", body = ErrorBody),
    )
)]
pub(crate) async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<MemberView>, ApiError> {
    let member = match MemberId::parse(&raw) {
        Some(id) => found(state.members.get(&id).await)?,
        None => None,
    };
    let member = caller.authorize_owner(
        member,
        |m| &m.id,
        || MemberError::NotFound(raw.chars().take(64).collect()).into(),
    )?;
    Ok(Json(member.into()))
}

/// Turns "not found" into `None`, keeping every other error.
fn found(result: Result<Member, MemberError>) -> Result<Option<Member>, ApiError> {
    match result {
        Ok(member) => Ok(Some(member)),
        Err(MemberError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Logs a member in and returns a session token.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    request_body = LogInRequest,
    responses(
        (status = 201, description = "A new session; the token is shown only now", body = SessionView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: the address or the password is wrong (which one is not said)", body = ErrorBody),
        (status = 429, description = "`login_locked`: too many failures for this address; see `Retry-After`", body = ErrorBody),
    )
)]
pub(crate) async fn log_in(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LogInRequest>,
) -> Result<Response, ApiError> {
    // A malformed address or password can belong to no member: the same answer as a wrong one.
    let email = Email::parse(&request.email).map_err(|_| MemberError::InvalidCredentials)?;
    let password = Password::presented(request.password.expose().to_owned())?;
    let session = state.members.log_in(&email, &password).await?;
    Ok((
        StatusCode::CREATED,
        [no_store()],
        Json(SessionView::from(session)),
    )
        .into_response())
}

/// Logs out: ends the session whose token the request carries.
#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is ended; its token is refused from now on"),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no session", body = ErrorBody),
    )
)]
pub(crate) async fn log_out(
    State(state): State<AppState>,
    caller: MemberCaller,
) -> Result<StatusCode, ApiError> {
    state.members.log_out(&caller.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
