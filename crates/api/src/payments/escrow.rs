//! Escrow over HTTP: `GET /v1/payment-orders/{id}/escrow` and its steps,
//! `POST …/escrow/ship|deliver|confirm|dispute|resolve|cancel`.
//!
//! Who is who is decided here, from the order: the buyer is the member who paid it, the seller
//! a merchant key bound to the order's merchant, staff any admin or platform key. Anyone else
//! (another member, another merchant's key) gets 404 `escrow_not_found`, exactly as for an order
//! that has no escrow, so existence never leaks. Which party may take which step is the
//! payments service's rule: a party that may see the escrow but not take the step gets 403
//! `escrow_action_forbidden`.

use ::payments::{EscrowActor, EscrowClosing, EscrowError, EscrowView, PaymentError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, OptionalJson};
use crate::idempotency::no_store;
use crate::time::format_micros;
use crate::AppState;

/// Shipping: the carrier's tracking number, optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipBody {
    /// 1 to 64 letters, digits or `-`. Shipping again with another number corrects it.
    #[schema(example = "6012-3456-7890")]
    pub tracking_number: Option<String>,
}

/// A step that may say why: at most 200 characters, no control characters.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[schema(example = "the item arrived damaged")]
    pub reason: Option<String>,
}

/// A step that takes no fields: an empty body or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// An escrow order's escrow.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscrowResponse {
    /// The order (`po_…`); an escrow is named by its order.
    pub id: String,
    /// The client's id of the order.
    pub payment_order_id: String,
    pub payment_id: String,
    pub seller_account: String,
    pub buyer: String,
    pub amount: String,
    /// What refunds have given back of the order so far.
    pub refunded: String,
    pub currency: &'static str,
    /// `held`, `shipped`, `delivered` (the money waits in the seller's escrow account),
    /// `confirmed` (released to the seller's payable account) or `cancelled` (refunded).
    #[schema(example = "shipped")]
    pub state: &'static str,
    /// `confirm` or `cancel` while the escrow's money is moving (a cancellation waits here
    /// while its refund's card part is resolved); otherwise null.
    pub closing: Option<&'static str>,
    pub held_at: String,
    /// Until when (inclusive) the escrow may be cancelled; later by any time a dispute lasted.
    pub cancel_until: String,
    pub shipped_at: Option<String>,
    pub tracking_number: Option<String>,
    pub delivered_at: Option<String>,
    /// When a delivered escrow confirms itself; later by any time a dispute lasted.
    pub confirm_at: Option<String>,
    /// When the open dispute began (timers stand still meanwhile); null when none is open.
    pub disputed_at: Option<String>,
    /// `buyer`, `seller` or `staff`.
    pub disputed_by: Option<&'static str>,
    pub closed_at: Option<String>,
    /// Who confirmed or cancelled it: `buyer`, `seller`, `staff` or `timer`.
    pub closed_by: Option<&'static str>,
    /// Raised by every change; webhook events carry it as `resource.version`.
    pub version: i64,
    pub updated_at: String,
}

impl From<EscrowView> for EscrowResponse {
    fn from(view: EscrowView) -> Self {
        let EscrowView {
            escrow,
            order,
            buyer,
        } = view;
        let money = |minor: i64| Money::from_minor(minor, order.currency).to_decimal_string();
        let time = |at: Option<i64>| at.map(format_micros);
        EscrowResponse {
            id: order.id.to_string(),
            payment_order_id: order.payment_order_id.clone(),
            payment_id: order.payment_id.to_string(),
            seller_account: order.seller.clone(),
            buyer: buyer.to_string(),
            amount: money(order.amount),
            refunded: money(order.refunded.total().unwrap_or(0)),
            currency: order.currency.code(),
            state: escrow.state.as_str(),
            closing: escrow.closing.map(EscrowClosing::as_str),
            held_at: format_micros(escrow.held_at),
            cancel_until: format_micros(escrow.cancel_until),
            shipped_at: time(escrow.shipped_at),
            tracking_number: escrow.tracking_number,
            delivered_at: time(escrow.delivered_at),
            confirm_at: time(escrow.confirm_at),
            disputed_at: time(escrow.disputed_at),
            disputed_by: escrow.disputed_by.map(EscrowActor::as_str),
            closed_at: time(escrow.closed_at),
            closed_by: escrow.closed_by.map(EscrowActor::as_str),
            version: escrow.version,
            updated_at: format_micros(escrow.updated_at),
        }
    }
}

/// An escrow: for the order's buyer, its seller's keys and staff.
#[utoipa::path(
    get,
    path = "/v1/payment-orders/{id}/escrow",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)")),
    responses(
        (status = 200, description = "The escrow", body = EscrowResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`: no such order, not an escrow order, not paid, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let (view, _) = authorized(&state, &caller, &id).await?;
    Ok(Json(view.into()))
}

/// The seller shipped the goods (seller or staff): held → shipped.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/escrow/ship",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: repeating a step answers the escrow as it stands"),
    ),
    request_body(content = Option<ShipBody>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Shipped (or already shipped under this tracking number)", body = EscrowResponse),
        (status = 400, description = "Malformed request or tracking number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "`escrow_action_forbidden`: the buyer", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`", body = ErrorBody),
        (status = 409, description = "`escrow_state_invalid`, `escrow_disputed`", body = ErrorBody),
    )
)]
pub(crate) async fn ship_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ShipBody>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let (view, actor) = authorized(&state, &caller, &id).await?;
    let view = state
        .payments
        .escrow_ship(view.order.id.as_str(), actor, body.tracking_number)
        .await?;
    Ok(Json(view.into()))
}

/// The goods arrived (seller or staff): shipped → delivered; the escrow confirms itself
/// `escrow_auto_confirm_after` (7 days) later unless disputed.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/escrow/deliver",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: repeating a step answers the escrow as it stands"),
    ),
    request_body(content = Option<EmptyBody>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Delivered", body = EscrowResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "`escrow_action_forbidden`: the buyer", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`", body = ErrorBody),
        (status = 409, description = "`escrow_state_invalid` (not shipped), `escrow_disputed`", body = ErrorBody),
    )
)]
pub(crate) async fn deliver_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(EmptyBody {}): OptionalJson<EmptyBody>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let (view, actor) = authorized(&state, &caller, &id).await?;
    let view = state
        .payments
        .escrow_deliver(view.order.id.as_str(), actor)
        .await?;
    Ok(Json(view.into()))
}

/// The buyer (or staff) confirms the purchase (구매확정): the money not refunded moves from the
/// seller's escrow account to its payable account, for settlement.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/escrow/confirm",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: confirming again answers the confirmed escrow"),
    ),
    request_body(content = Option<EmptyBody>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Confirmed and released to the seller", body = EscrowResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "`escrow_action_forbidden`: the seller", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`", body = ErrorBody),
        (status = 409, description = "`escrow_state_invalid` (not shipped yet, cancelled), `escrow_disputed`, `refund_in_progress`", body = ErrorBody),
    )
)]
pub(crate) async fn confirm_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(EmptyBody {}): OptionalJson<EmptyBody>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let (view, actor) = authorized(&state, &caller, &id).await?;
    let payments = state.payments.clone();
    let order = view.order.id.to_string();
    let view =
        super::to_the_end(async move { payments.escrow_confirm(&order, actor).await }).await?;
    Ok(Json(view.into()))
}

/// Opens a dispute (buyer, seller or staff): every timer stands still (no automatic
/// confirmation, the cancel window frozen) and no step is taken until staff resolve it.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/escrow/dispute",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: disputing again answers the open dispute"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Disputed", body = EscrowResponse),
        (status = 400, description = "Malformed request or reason", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`", body = ErrorBody),
        (status = 409, description = "`escrow_state_invalid` (confirmed, cancelled, being ended, or due to confirm)", body = ErrorBody),
    )
)]
pub(crate) async fn dispute_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let (view, actor) = authorized(&state, &caller, &id).await?;
    let view = state
        .payments
        .escrow_dispute(view.order.id.as_str(), actor, body.reason)
        .await?;
    Ok(Json(view.into()))
}

/// Resolves the dispute (staff): the timers run again, `cancel_until` and `confirm_at` moved
/// later by the time the dispute lasted.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/escrow/resolve",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: with no dispute open it answers the escrow as it stands"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Resolved (or no dispute was open)", body = EscrowResponse),
        (status = 400, description = "Malformed request or reason", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "`escrow_action_forbidden`: the buyer or the seller", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn resolve_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let (view, actor) = authorized(&state, &caller, &id).await?;
    let view = state
        .payments
        .escrow_resolve(view.order.id.as_str(), actor, body.reason)
        .await?;
    Ok(Json(view.into()))
}

/// Cancels the escrow (buyer, seller or staff) within its window: everything still
/// refundable goes back to the buyer along the order's funding sources.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/escrow/cancel",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The escrow order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: cancelling again continues or answers the same cancellation"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Cancelled and refunded", body = EscrowResponse),
        (status = 202, description = "Cancelling (`closing` is `cancel`): the refund's card part is still being resolved, or another request is refunding it; it finishes by itself", body = EscrowResponse),
        (status = 400, description = "Malformed request or reason", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`escrow_not_found`", body = ErrorBody),
        (status = 409, description = "`escrow_state_invalid` (confirmed or being confirmed), `escrow_disputed`", body = ErrorBody),
        (status = 422, description = "`escrow_cancel_window_closed`", body = ErrorBody),
        (status = 502, description = "`escrow_refund_refused`: the PSP refused the refund's card part; the escrow runs on", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_escrow(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<Response, ApiError> {
    let (view, actor) = authorized(&state, &caller, &id).await?;
    let payments = state.payments.clone();
    let order = view.order.id.to_string();
    // Like confirming: the refund and the state change run to their end in a task of their own.
    let view =
        super::to_the_end(async move { payments.escrow_cancel(&order, actor, body.reason).await })
            .await?;
    let cancelling = view.escrow.closing.is_some();
    let status = if cancelling {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(EscrowResponse::from(view))).into_response();
    if cancelling {
        // Not kept for replay: the same request again answers where the cancellation stands.
        let (name, value) = no_store();
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// The escrow the path names and the party the caller is to it; anyone who is none of the
/// three gets the same 404 as for an order without escrow.
async fn authorized(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(EscrowView, EscrowActor), ApiError> {
    let not_found = || PaymentError::from(EscrowError::NotFound(id.chars().take(64).collect()));
    let view = state.payments.escrow(id).await?;
    let actor = match caller {
        Caller::Member(me) if *me == view.buyer => EscrowActor::Buyer,
        Caller::Member(_) => return Err(not_found().into()),
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        } => EscrowActor::Staff,
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        } if caller.merchant_id() == Some(view.order.seller.as_str()) => EscrowActor::Seller,
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        } => return Err(not_found().into()),
    };
    Ok((view, actor))
}
