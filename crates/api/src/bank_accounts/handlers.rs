//! The linked-account route handlers: each parses its input, checks who may act, calls the
//! service, and shapes the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bank_accounts::{
    parse_account, BankAccountError, BankAccountId, Disclosed, LinkKind, LinkStatus,
};
use membership::MemberId;

use super::views::{
    BankAccountList, BankAccountView, CodeRequest, ConsentSessionView, DisclosedView, EmptyRequest,
    LinkRequest, ListQuery,
};
use crate::auth::{Caller, MemberCaller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::idempotency::no_store;
use crate::pagination::PAGE_SIZE_DEFAULT;
use crate::AppState;

/// Links a charge account: checks the holder's name at the bank, then sends 1 won whose memo
/// carries the 6-digit code.
#[utoipa::path(
    post,
    path = "/v1/bank-accounts",
    tag = "bank-accounts",
    security(("bearer" = [])),
    request_body = LinkRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules")),
    responses(
        (status = 201, description = "Linked; the 1-won deposit arrived (`awaiting_verification`). The number is shown in full", body = DisclosedView),
        (status = 202, description = "Linked; the deposit's outcome is still being confirmed (`deposit_pending`); read the account again", body = DisclosedView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which cannot link accounts", body = ErrorBody),
        (status = 409, description = "`bank_account_already_linked`, `bank_account_limit_reached` or `member_closed`", body = ErrorBody),
        (status = 422, description = "`bank_code_invalid`, `account_number_invalid`, `bank_account_not_found` (the bank has no such account) or `holder_name_mismatch`", body = ErrorBody),
        (status = 502, description = "`bank_refused`: the bank refused the deposit; nothing moved", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`: no answer from the bank; nothing moved", body = ErrorBody),
    )
)]
pub(crate) async fn link_charge_account(
    state: State<AppState>,
    caller: MemberCaller,
    request: ApiJson<LinkRequest>,
) -> Result<Response, ApiError> {
    link(state, caller, request, LinkKind::Charge).await
}

/// Links the member's partner account (at the partner bank): the same checks and deposit as a
/// charge account, but at most one per member and one member per account.
#[utoipa::path(
    post,
    path = "/v1/bank-accounts/partner",
    tag = "bank-accounts",
    security(("bearer" = [])),
    request_body = LinkRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules")),
    responses(
        (status = 201, description = "Linked; the 1-won deposit arrived (`awaiting_verification`)", body = DisclosedView),
        (status = 202, description = "Linked; the deposit's outcome is still being confirmed (`deposit_pending`)", body = DisclosedView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which cannot link accounts", body = ErrorBody),
        (status = 409, description = "`partner_account_exists` (the member has one), `partner_account_taken` (another member has this one), `bank_account_already_linked` or `member_closed`", body = ErrorBody),
        (status = 422, description = "`bank_code_not_partner`, `bank_code_invalid`, `account_number_invalid`, `bank_account_not_found` or `holder_name_mismatch`", body = ErrorBody),
        (status = 502, description = "`bank_refused`", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`", body = ErrorBody),
    )
)]
pub(crate) async fn link_partner_account(
    state: State<AppState>,
    caller: MemberCaller,
    request: ApiJson<LinkRequest>,
) -> Result<Response, ApiError> {
    link(state, caller, request, LinkKind::Partner).await
}

async fn link(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiJson(request): ApiJson<LinkRequest>,
    kind: LinkKind,
) -> Result<Response, ApiError> {
    let account = parse_account(&request.bank_code, request.account_number.expose())?;
    let linked = state
        .bank_accounts
        .link(&caller.member_id, kind, account)
        .await?;
    Ok(disclosed(linked))
}

/// Sends a new code: another 1-won deposit. Earlier codes stop counting; at most 3 resends.
#[utoipa::path(
    post,
    path = "/v1/bank-accounts/{id}/verification",
    tag = "bank-accounts",
    security(("bearer" = [])),
    request_body(content = EmptyRequest, description = "An empty body or `{}`"),
    params(
        ("id" = String, Path, description = "The linked account (`ba_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules"),
    ),
    responses(
        (status = 201, description = "The new deposit arrived; type its code", body = DisclosedView),
        (status = 202, description = "The new deposit's outcome is still being confirmed", body = DisclosedView),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`", body = ErrorBody),
        (status = 409, description = "`verification_deposit_pending`, `verification_resend_limit_reached`, `bank_account_already_verified` or `bank_account_ended`", body = ErrorBody),
        (status = 502, description = "`bank_refused`", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`", body = ErrorBody),
    )
)]
pub(crate) async fn resend_code(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath(raw): ApiPath<String>,
    OptionalJson(EmptyRequest {}): OptionalJson<EmptyRequest>,
) -> Result<Response, ApiError> {
    let id = link_id(&raw)?;
    let resent = state.bank_accounts.resend(&caller.member_id, &id).await?;
    Ok(disclosed(resent))
}

/// Checks the code from the 1-won deposit's memo (`MYPAY 482193` → `482193`).
#[utoipa::path(
    post,
    path = "/v1/bank-accounts/{id}/verify",
    tag = "bank-accounts",
    security(("bearer" = [])),
    request_body = CodeRequest,
    params(("id" = String, Path, description = "The linked account (`ba_…`)")),
    responses(
        (status = 200, description = "Verified; the number is shown in full", body = DisclosedView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`", body = ErrorBody),
        (status = 409, description = "`verification_expired`, `verification_attempts_exceeded` (request a new code), `verification_deposit_pending`, `bank_account_already_verified` or `bank_account_ended`", body = ErrorBody),
        (status = 422, description = "`verification_code_mismatch` (the message says how many attempts are left) or `invalid_request` (not 6 digits)", body = ErrorBody),
    )
)]
pub(crate) async fn verify_code(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<Response, ApiError> {
    let id = link_id(&raw)?;
    let verified = state
        .bank_accounts
        .verify(&caller.member_id, &id, request.code.expose())
        .await?;
    Ok((
        StatusCode::OK,
        [no_store()],
        Json(DisclosedView::from(verified)),
    )
        .into_response())
}

/// Starts the debit consent: opens an ARS session (2 digits to key in on the call, 3 minutes)
/// and shows the account in full.
#[utoipa::path(
    post,
    path = "/v1/bank-accounts/{id}/consent",
    tag = "bank-accounts",
    security(("bearer" = [])),
    request_body(content = EmptyRequest, description = "An empty body or `{}`"),
    params(("id" = String, Path, description = "The linked account (`ba_…`)")),
    responses(
        (status = 201, description = "An ARS session is open", body = ConsentSessionView),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`", body = ErrorBody),
        (status = 409, description = "`bank_account_not_verified`, `debit_consent_exists` or `bank_account_ended`", body = ErrorBody),
    )
)]
pub(crate) async fn start_consent(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath(raw): ApiPath<String>,
    OptionalJson(EmptyRequest {}): OptionalJson<EmptyRequest>,
) -> Result<Response, ApiError> {
    let id = link_id(&raw)?;
    let session = state
        .bank_accounts
        .start_consent(&caller.member_id, &id)
        .await?;
    Ok((
        StatusCode::CREATED,
        [no_store()],
        Json(ConsentSessionView::from(session)),
    )
        .into_response())
}

/// Confirms the ARS step with the keyed digits and registers the debit consent at the bank;
/// the account becomes `active`. The owning member confirms here in place of the ARS call; an
/// ARS provider posts the digits its caller keyed with a `platform` API key.
#[utoipa::path(
    post,
    path = "/v1/bank-accounts/{id}/consent/confirm",
    tag = "bank-accounts",
    security(("bearer" = [])),
    request_body = CodeRequest,
    params(("id" = String, Path, description = "The linked account (`ba_…`)")),
    responses(
        (status = 200, description = "The consent is registered; the account is `active`", body = BankAccountView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "An admin or merchant key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`", body = ErrorBody),
        (status = 409, description = "`ars_session_missing`, `ars_session_expired`, `ars_attempts_exceeded`, `debit_consent_exists`, `bank_account_not_verified` or `bank_account_ended`", body = ErrorBody),
        (status = 422, description = "`ars_code_mismatch` or `invalid_request` (not 2 digits)", body = ErrorBody),
        (status = 502, description = "`bank_refused`", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`: retry; the confirmation is kept", body = ErrorBody),
    )
)]
pub(crate) async fn confirm_consent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<Json<BankAccountView>, ApiError> {
    let member = match &caller {
        Caller::Member(member) => Some(member),
        Caller::ApiKey {
            role: Role::Platform,
            ..
        } => None,
        Caller::ApiKey { .. } => return Err(ApiError::Forbidden),
    };
    let id = link_id(&raw)?;
    let account = state
        .bank_accounts
        .confirm_consent(member, &id, request.code.expose())
        .await?;
    Ok(Json(account.into()))
}

/// Lists a member's live linked accounts, masked.
#[utoipa::path(
    get,
    path = "/v1/bank-accounts",
    tag = "bank-accounts",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the member's live linked accounts", body = BankAccountList),
        (status = 400, description = "Malformed query, or an API key without `member_id`", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A merchant key", body = ErrorBody),
        (status = 404, description = "`member_not_found`: another member's id, or no such member", body = ErrorBody),
    )
)]
pub(crate) async fn list_bank_accounts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<BankAccountList>, ApiError> {
    let limit = query.limit.unwrap_or(PAGE_SIZE_DEFAULT);
    if !(1..=bank_accounts::PAGE_SIZE_MAX).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {}",
            bank_accounts::PAGE_SIZE_MAX
        )));
    }
    let member = whose(&caller, query.member_id.as_deref())?;
    let page = state
        .bank_accounts
        .list(&member, query.after.as_deref(), limit)
        .await?;
    Ok(Json(BankAccountList {
        data: page.items.into_iter().map(BankAccountView::from).collect(),
        next_cursor: page.next,
    }))
}

/// A linked account, masked: for its member and for admin and platform keys. Reading an
/// account whose 1-won deposit is being confirmed asks the bank first.
#[utoipa::path(
    get,
    path = "/v1/bank-accounts/{id}",
    tag = "bank-accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The linked account (`ba_…`)")),
    responses(
        (status = 200, description = "The linked account (ended ones too)", body = BankAccountView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A merchant key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`: no such account, or another member's", body = ErrorBody),
    )
)]
pub(crate) async fn get_bank_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<BankAccountView>, ApiError> {
    if matches!(
        caller,
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        }
    ) {
        // Refused before the lookup, which may call the bank.
        return Err(ApiError::Forbidden);
    }
    // Ownership first, from the row alone: reading a link may ask the bank about its deposit,
    // which nobody but its owner and staff may cause.
    let owned = match BankAccountId::parse(&raw) {
        Some(id) => state
            .bank_accounts
            .owner(&id)
            .await?
            .map(|owner| (id, owner)),
        None => None,
    };
    let (id, _) = caller.authorize_owner(owned, |(_, owner)| owner, || not_found(&raw))?;
    let account = state
        .bank_accounts
        .get(&id)
        .await?
        .ok_or_else(|| not_found(&raw))?;
    Ok(Json(account.into()))
}

/// Unlinks an account: revokes its debit consent at the bank and ends the link.
#[utoipa::path(
    delete,
    path = "/v1/bank-accounts/{id}",
    tag = "bank-accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The linked account (`ba_…`)")),
    responses(
        (status = 200, description = "The ended link (`unlinked`)", body = BankAccountView),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`", body = ErrorBody),
        (status = 409, description = "`verification_deposit_pending` (retry shortly) or `bank_account_ended`", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`: the consent could not be revoked; nothing changed", body = ErrorBody),
    )
)]
pub(crate) async fn unlink_bank_account(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<BankAccountView>, ApiError> {
    let id = link_id(&raw)?;
    let ended = state.bank_accounts.unlink(&caller.member_id, &id).await?;
    Ok(Json(ended.into()))
}

/// The member whose accounts a list shows: a member sees their own (naming another member is
/// 404, as for any of their resources); admin and platform keys must name one; merchant keys
/// are refused.
fn whose(caller: &Caller, named: Option<&str>) -> Result<MemberId, ApiError> {
    let member_not_found = |raw: &str| {
        ApiError::from(membership::MemberError::NotFound(
            raw.chars().take(64).collect(),
        ))
    };
    match (caller, named) {
        (
            Caller::ApiKey {
                role: Role::Merchant,
                ..
            },
            _,
        ) => Err(ApiError::Forbidden),
        (Caller::Member(me), None) => Ok(me.clone()),
        (Caller::Member(me), Some(raw)) if raw == me.as_str() => Ok(me.clone()),
        (Caller::Member(_), Some(raw)) => Err(member_not_found(raw)),
        (Caller::ApiKey { .. }, None) => Err(ApiError::InvalidRequest(
            "member_id is required with an API key".into(),
        )),
        (Caller::ApiKey { .. }, Some(raw)) => {
            MemberId::parse(raw).ok_or_else(|| member_not_found(raw))
        }
    }
}

/// A path's link id; a malformed one names no link, the same answer as a missing one.
fn link_id(raw: &str) -> Result<BankAccountId, ApiError> {
    BankAccountId::parse(raw).ok_or_else(|| not_found(raw))
}

fn not_found(raw: &str) -> ApiError {
    BankAccountError::NotFound(raw.chars().take(64).collect()).into()
}

/// 201 for a deposit that arrived, 202 while its outcome is being confirmed. The answer shows
/// the full number, so no cache may keep it.
fn disclosed(disclosed: Disclosed) -> Response {
    let status = if disclosed.account.status == LinkStatus::DepositPending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    (status, [no_store()], Json(DisclosedView::from(disclosed))).into_response()
}
