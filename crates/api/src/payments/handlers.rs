//! The payment route handlers.

use ::payments::{CheckoutId, NewOrder, NewPayment, PaymentError, PaymentStatus, PaymentView};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use membership::MemberId;
use money::Currency;
use psp::BillingKey;
use wallet::{RequestKey, WalletError};

use super::views::{PaymentBody, PaymentOrderView, PaymentResponse, PointsGrantBody};
use crate::auth::{Caller, MemberCaller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::idempotency::IdempotencyContext;
use crate::wallets::owned_member;
use crate::wallets::views::WalletView;
use crate::AppState;

/// Pays a checkout: records it, then executes each seller's order against the buyer's points,
/// wallet money (topped up when short) and card.
#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional: the checkout id already makes the request idempotent")),
    request_body = PaymentBody,
    responses(
        (status = 201, description = "Every order is final (see `status` and each order's `failure`)", body = PaymentResponse),
        (status = 200, description = "The checkout was paid before: the recorded payment", body = PaymentResponse),
        (status = 202, description = "A card outcome is still being resolved; poll `GET /v1/payments/{id}`", body = PaymentResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A merchant key, or a member paying for someone else", body = ErrorBody),
        (status = 409, description = "`member_not_active`", body = ErrorBody),
        (status = 422, description = "`funding_mismatch`, `amount_invalid`, `currency_mismatch`, `currency_unsupported`, `checkout_id_reused`, `payment_order_id_reused`, `seller_not_found`, `seller_not_active`", body = ErrorBody),
    )
)]
pub(crate) async fn create_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PaymentBody>,
) -> Result<Response, ApiError> {
    let buyer = paying_member(&caller, body.buyer.as_deref())?;
    let request = new_payment(buyer, body)?;
    let payments = state.payments.clone();
    let scope = caller.scope().to_owned();
    let (view, created) =
        super::to_the_end(async move { payments.pay(&scope, request).await }).await?;
    let status = match (view.payment.status, created) {
        (PaymentStatus::Executing, _) => StatusCode::ACCEPTED,
        (_, true) => StatusCode::CREATED,
        (_, false) => StatusCode::OK,
    };
    Ok((status, Json(PaymentResponse::from(view))).into_response())
}

/// A payment: for its buyer, admin and platform keys, and the merchants it pays (whose keys see
/// only their own orders).
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment (`pay_…`)")),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`payment_not_found`: no such payment, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PaymentResponse>, ApiError> {
    let view = state.payments.get(&id).await?;
    let view = visible(&caller, view)
        .ok_or_else(|| PaymentError::PaymentNotFound(id.chars().take(64).collect()))?;
    Ok(Json(view.into()))
}

/// A payment order, by our id (`po_…`) or the client's payment order id.
#[utoipa::path(
    get,
    path = "/v1/payment-orders/{id}",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order (`po_…`, or the client's payment order id)")),
    responses(
        (status = 200, description = "The payment order", body = PaymentOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "`payment_order_not_found`: no such order, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_payment_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PaymentOrderView>, ApiError> {
    let not_found = || PaymentError::OrderNotFound(id.chars().take(64).collect());
    let (payment, order) = match state.payments.order(&id).await {
        Ok(found) => found,
        Err(PaymentError::OrderNotFound(_)) => return Err(not_found().into()),
        Err(error) => return Err(error.into()),
    };
    let view = PaymentView {
        payment,
        orders: vec![order],
    };
    let mut view = visible(&caller, view).ok_or_else(not_found)?;
    let order = view.orders.pop().ok_or_else(not_found)?;
    Ok(Json(order.into()))
}

/// Grants points to a member (admin and platform keys); 1 point is worth 1 won at checkout.
#[utoipa::path(
    post,
    path = "/v1/members/{member_id}/points",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("member_id" = String, Path, description = "The member (`usr_…`)"),
        ("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters"),
    ),
    request_body = PointsGrantBody,
    responses(
        (status = 201, description = "The member's points after the grant", body = WalletView),
        (status = 400, description = "No Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin or platform key", body = ErrorBody),
        (status = 404, description = "`wallet_not_found`: no such member", body = ErrorBody),
        (status = 409, description = "`member_not_active`", body = ErrorBody),
        (status = 422, description = "`amount_invalid`, `request_key_reused`", body = ErrorBody),
    )
)]
pub(crate) async fn grant_points(
    State(state): State<AppState>,
    caller: Caller,
    context: Option<Extension<IdempotencyContext>>,
    ApiPath(member): ApiPath<String>,
    ApiJson(body): ApiJson<PointsGrantBody>,
) -> Result<Response, ApiError> {
    if !matches!(
        caller,
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        }
    ) {
        return Err(ApiError::Forbidden);
    }
    let context = crate::idempotency::required(context)?;
    let key = RequestKey {
        scope: context.scope().to_owned(),
        key: context.key().as_str().to_owned(),
    };
    let amount = body.amount.to_money("amount", Currency::KRW)?;
    let member = MemberId::parse(&member)
        .ok_or_else(|| WalletError::WalletNotFound(member.chars().take(64).collect()))?;
    let balance = state.points.grant(&member, amount, &key).await?;
    Ok((StatusCode::CREATED, Json(WalletView::from(balance))).into_response())
}

/// The calling member's points.
#[utoipa::path(
    get,
    path = "/v1/points",
    tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's points", body = WalletView),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
    )
)]
pub(crate) async fn get_points(
    State(state): State<AppState>,
    caller: MemberCaller,
) -> Result<Json<WalletView>, ApiError> {
    Ok(Json(state.points.balance(&caller.member_id).await?.into()))
}

/// A member's points, for the member themself and admin and platform keys.
#[utoipa::path(
    get,
    path = "/v1/members/{member_id}/points",
    tag = "payments",
    security(("bearer" = [])),
    params(("member_id" = String, Path, description = "The member (`usr_…`)")),
    responses(
        (status = 200, description = "The member's points", body = WalletView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A merchant key", body = ErrorBody),
        (status = 404, description = "`wallet_not_found`: no such member, or another member's", body = ErrorBody),
    )
)]
pub(crate) async fn get_member_points(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member): ApiPath<String>,
) -> Result<Json<WalletView>, ApiError> {
    let id = owned_member(&state, &caller, &member).await?;
    Ok(Json(state.points.balance(&id).await?.into()))
}

/// A payment as one of its sellers sees it: its own orders only, the amounts and funding
/// summed over them, and nothing of the buyer's internals (the buyer's money transaction
/// numbers, the items, other sellers' parts); `None` when it sells nothing in it.
fn seller_view(seller: &str, view: PaymentView) -> Option<PaymentView> {
    let orders: Vec<_> = view
        .orders
        .into_iter()
        .filter(|order| order.seller == seller)
        .map(|order| ::payments::Order {
            money_tx_id: None,
            ..order
        })
        .collect();
    if orders.is_empty() {
        return None;
    }
    let sum = |part: fn(&::payments::Order) -> i64| orders.iter().map(part).sum::<i64>();
    let payment = ::payments::Payment {
        amount: sum(|o| o.amount),
        funding: ::payments::Split {
            points: sum(|o| o.split.points),
            money: sum(|o| o.split.money),
            card: sum(|o| o.split.card),
        },
        items: Vec::new(),
        billing_key: None,
        ..view.payment
    };
    Some(PaymentView { payment, orders })
}

/// Who pays: a member pays for themself (naming nobody else); admin and platform keys pay for
/// the buyer they name; merchant keys never spend a member's money.
fn paying_member(caller: &Caller, buyer: Option<&str>) -> Result<MemberId, ApiError> {
    match caller {
        Caller::Member(me) => match buyer {
            None => Ok(me.clone()),
            Some(named) if named == me.as_str() => Ok(me.clone()),
            Some(_) => Err(ApiError::Forbidden),
        },
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        } => {
            let buyer = buyer.ok_or_else(|| {
                ApiError::InvalidRequest("buyer: required when an API key pays".into())
            })?;
            MemberId::parse(buyer).ok_or_else(|| {
                PaymentError::BuyerNotActive(buyer.chars().take(64).collect()).into()
            })
        }
        Caller::ApiKey { .. } => Err(ApiError::Forbidden),
    }
}

fn new_payment(buyer: MemberId, body: PaymentBody) -> Result<NewPayment, ApiError> {
    let mut orders = Vec::with_capacity(body.payment_orders.len());
    for order in body.payment_orders {
        let currency = order.currency.parse("payment_orders.currency")?;
        orders.push(NewOrder {
            payment_order_id: order.payment_order_id,
            seller: order.seller_account,
            amount: order.amount.to_money("payment_orders.amount", currency)?,
            escrow: order.escrow.unwrap_or(false),
        });
    }
    let currency = orders
        .first()
        .map_or(Currency::KRW, |o| o.amount.currency());
    let total = orders
        .iter()
        .try_fold(0i64, |sum, o| sum.checked_add(o.amount.minor()))
        .ok_or(PaymentError::AmountOutOfRange)?;
    let (points, money, card) = match body.funding {
        None => (0, total, None),
        Some(funding) => {
            let part = |input: Option<&crate::amount::AmountInput>, field| {
                input
                    .map(|amount| amount.to_money(field, currency).map(|m| m.minor()))
                    .transpose()
                    .map(|minor| minor.unwrap_or(0))
            };
            let points = part(funding.points.as_ref(), "funding.points")?;
            let money = part(funding.money.as_ref(), "funding.money")?;
            let card = match funding.card {
                Some(card) => {
                    let key = BillingKey::parse(&card.billing_key).map_err(|error| {
                        ApiError::InvalidRequest(format!(
                            "funding.card.{}: {}",
                            error.field, error.reason
                        ))
                    })?;
                    let amount = card.amount.to_money("funding.card.amount", currency)?;
                    Some((key, amount.minor()))
                }
                None => None,
            };
            (points, money, card)
        }
    };
    Ok(NewPayment {
        buyer,
        checkout_id: CheckoutId::parse(&body.checkout_id)?,
        orders,
        points,
        money,
        card,
        auto_top_up: body.auto_top_up.unwrap_or(true),
        items: body.items.unwrap_or_default(),
    })
}

/// The part of a payment the caller may see: all of it for its buyer and for admin and
/// platform keys; a seller's key sees the payment with its own orders only; nothing for anyone
/// else.
fn visible(caller: &Caller, view: PaymentView) -> Option<PaymentView> {
    match caller {
        Caller::Member(me) if *me == view.payment.buyer => Some(view),
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        } => Some(view),
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        } => seller_view(caller.merchant_id()?, view),
        Caller::Member(_) => None,
    }
}
