//! Refunds over HTTP: `POST /v1/payment-orders/{id}/refunds`, `GET /v1/refunds/{id}` and
//! `GET /v1/payment-orders/{id}/refunds`.
//!
//! Admin and platform keys refund any paid order; a merchant key refunds its own orders
//! (another merchant's order answers 404, as a missing one does); members cannot refund (403).
//! The `Idempotency-Key` is required and is the refund's own key too: sent again, it answers
//! the same refund. A finished refund's answer (201) is replayed by the HTTP layer; a pending
//! one (202) is marked `Cache-Control: no-store`, so that the same request again continues the
//! refund and answers where it stands. The buyer, staff keys and the seller's key read refunds.

use ::payments::{NewRefund, Order, Payment, PaymentError, Refund, RefundStatus, RefundView};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use money::Money;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{FundingView, PaymentOrderView};
use crate::amount::AmountInput;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::no_store;
use crate::idempotency::IdempotencyContext;
use crate::pagination::page_limit;
use crate::time::format_micros;
use crate::AppState;

/// A refund to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// How much, as a decimal string in the order's currency; all that remains when absent.
    #[schema(value_type = Option<String>, example = "5000")]
    pub amount: Option<AmountInput>,
    /// Why: at most 200 characters without control characters; the PSP records it for the
    /// card part.
    #[schema(example = "단순 변심")]
    pub reason: Option<String>,
}

/// A refund.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundItemView {
    /// `rfd_…`; also the PSP cancellation's idempotency key.
    #[schema(example = "rfd_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// The refunded order (`po_…`).
    pub payment_order: String,
    /// The client's id of the order.
    pub payment_order_id: String,
    #[schema(example = "5000")]
    pub amount: String,
    pub currency: &'static str,
    /// What goes back to each source: points first, then money, then card.
    pub parts: FundingView,
    pub reason: String,
    /// `pending` (the card outcome or the booking is not done yet; poll this refund),
    /// `succeeded`, or `failed` (the PSP refused; nothing was given back).
    #[schema(example = "succeeded")]
    pub status: &'static str,
    /// `none`, `requested` (sent, outcome being resolved), `cancelled` or `refused`.
    pub card_state: &'static str,
    /// Why it failed, e.g. `not_cancelable`.
    pub failure_code: Option<String>,
    /// The buyer's money transaction (`mtx_…`): the ledger transaction that gives the money
    /// back, and the wallet history entry of the money part.
    pub money_transaction_id: String,
    /// Whether the money is taken back from the seller's escrow account (else from its payable
    /// account).
    pub from_escrow: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl RefundItemView {
    fn new(refund: Refund, order: &Order) -> RefundItemView {
        RefundItemView {
            id: refund.id.to_string(),
            payment_order: order.id.to_string(),
            payment_order_id: order.payment_order_id.clone(),
            amount: Money::from_minor(refund.amount, order.currency).to_decimal_string(),
            currency: order.currency.code(),
            parts: FundingView::new(refund.split, order.currency),
            reason: refund.reason,
            status: refund.status.as_str(),
            card_state: refund.card_state.as_str(),
            failure_code: refund.failure_code,
            money_transaction_id: refund.money_tx_id.to_string(),
            from_escrow: refund.seller_account == ::payments::SellerAccount::Escrow,
            version: refund.version,
            created_at: format_micros(refund.created_at),
            updated_at: format_micros(refund.updated_at),
        }
    }
}

/// A refund with its order as it stands afterwards (`refunded` shows what all its refunds
/// gave back or reserved).
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    #[serde(flatten)]
    pub refund: RefundItemView,
    pub order: PaymentOrderView,
}

impl From<RefundView> for RefundResponse {
    fn from(view: RefundView) -> Self {
        RefundResponse {
            refund: RefundItemView::new(view.refund, &view.order),
            order: view.order.into(),
        }
    }
}

/// Paging through an order's refunds.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefundListQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A page of an order's refunds.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundList {
    /// Oldest first.
    pub data: Vec<RefundItemView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Refunds (part of) a paid order along its funding sources: points first, then money, then
/// card (cancelled at the PSP). Never more than what remains of the order.
#[utoipa::path(
    post,
    path = "/v1/payment-orders/{id}/refunds",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The order (`po_…`, or the client's payment order id)"),
        ("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters; also the refund's key"),
    ),
    request_body = RefundBody,
    responses(
        (status = 201, description = "The refund ended: `succeeded`, or `failed` (the PSP refused; nothing moved)", body = RefundResponse),
        (status = 202, description = "The card cancellation's outcome is not known yet; poll `GET /v1/refunds/{id}`", body = RefundResponse),
        (status = 400, description = "No Idempotency-Key, or a malformed body or reason", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
        (status = 404, description = "`payment_order_not_found`: no such order, or another merchant's", body = ErrorBody),
        (status = 409, description = "`order_not_refundable`: the order is not paid", body = ErrorBody),
        (status = 422, description = "`amount_invalid`, `refund_exceeds_payment`, `nothing_to_refund`, `refund_key_reused`, `idempotency_key_reused`", body = ErrorBody),
    )
)]
pub(crate) async fn create_refund(
    State(state): State<AppState>,
    caller: Caller,
    context: Option<Extension<IdempotencyContext>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RefundBody>,
) -> Result<Response, ApiError> {
    if matches!(caller, Caller::Member(_)) {
        return Err(ApiError::Forbidden);
    }
    let context = crate::idempotency::required(context)?;
    let (_, order) = state.payments.order(&id).await?;
    if !may_refund(&caller, &order) {
        return Err(PaymentError::OrderNotFound(id.chars().take(64).collect()).into());
    }
    let amount = body
        .amount
        .map(|amount| amount.to_money("amount", order.currency))
        .transpose()?
        .map(|amount| amount.minor());
    let request = NewRefund {
        order: order.id.to_string(),
        amount,
        key: context.key().as_str().to_owned(),
        reason: body.reason.unwrap_or_default(),
    };
    let view = state.payments.refund(context.scope(), request).await?;
    let pending = view.refund.status == RefundStatus::Pending;
    let status = if pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let mut response = (
        status,
        Json(RefundResponse::from(as_seen_by(&caller, view))),
    )
        .into_response();
    if pending {
        // A pending answer is not kept for replay: the same request again continues the refund
        // (its key finds it) and answers where it stands.
        let (name, value) = no_store();
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// A refund, for the order's buyer, staff keys and the seller's key.
#[utoipa::path(
    get,
    path = "/v1/refunds/{id}",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The refund (`rfd_…`)")),
    responses(
        (status = 200, description = "The refund with its order", body = RefundResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`refund_not_found`: no such refund, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RefundResponse>, ApiError> {
    let view = state.payments.refund_by_id(&id).await?;
    let (payment, _) = state.payments.order(view.order.id.as_str()).await?;
    if !may_read(&caller, &payment, &view.order) {
        return Err(PaymentError::RefundNotFound(id.chars().take(64).collect()).into());
    }
    Ok(Json(as_seen_by(&caller, view).into()))
}

/// An order's refunds, oldest first, for the order's buyer, staff keys and the seller's key.
#[utoipa::path(
    get,
    path = "/v1/payment-orders/{id}/refunds",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The order (`po_…`, or the client's payment order id)"),
        RefundListQuery,
    ),
    responses(
        (status = 200, description = "A page of the order's refunds", body = RefundList),
        (status = 400, description = "Malformed query, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`payment_order_not_found`: no such order, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn list_refunds(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RefundListQuery>,
) -> Result<Json<RefundList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let (payment, order) = state.payments.order(&id).await?;
    if !may_read(&caller, &payment, &order) {
        return Err(PaymentError::OrderNotFound(id.chars().take(64).collect()).into());
    }
    let page = state
        .payments
        .refunds_of(&order.id, query.after.as_deref(), limit)
        .await?;
    Ok(Json(RefundList {
        data: page
            .items
            .into_iter()
            .map(|refund| RefundItemView::new(refund, &order))
            .collect(),
        next_cursor: page.next,
    }))
}

/// Who may refund an order: admin and platform keys, and the key of the order's seller.
/// Members are refused before the order is looked up.
/// A refund as the caller may see it: a seller's key gets the order without the buyer's
/// money transaction number, as a seller's view of the payment has it
/// (`payments::handlers::seller_view`); the refund's own number stays, since the refund is the
/// seller's movement too.
fn as_seen_by(caller: &Caller, mut view: RefundView) -> RefundView {
    if matches!(
        caller,
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        }
    ) {
        view.order.money_tx_id = None;
    }
    view
}

fn may_refund(caller: &Caller, order: &Order) -> bool {
    match caller {
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        } => true,
        Caller::ApiKey { .. } => caller.merchant_id() == Some(order.seller.as_str()),
        Caller::Member(_) => false,
    }
}

/// Who may read an order's refunds: its buyer, admin and platform keys, and the seller's key.
fn may_read(caller: &Caller, payment: &Payment, order: &Order) -> bool {
    match caller {
        Caller::Member(me) => *me == payment.buyer,
        caller => may_refund(caller, order),
    }
}
