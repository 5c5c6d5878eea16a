//! Checkout payments over HTTP: `POST /v1/payments`, `GET /v1/payments/{id}`,
//! `GET /v1/payment-orders/{id}`, the buyer's points, refunds (`refunds.rs`), and an escrow
//! order's escrow and its steps (`escrow.rs`).
//!
//! A member pays for themself; a platform (or admin) key pays on behalf of the `buyer` it
//! names, as a commerce backend does; merchant keys cannot spend a member's money (403). The
//! checkout id is the payment's idempotency key, so `Idempotency-Key` is optional here; when
//! sent, the HTTP layer replays the stored answer as everywhere else.

mod escrow;
mod handlers;
mod refunds;
mod views;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::idempotency;
use crate::AppState;

/// Runs a step that moves money to its end in a task of its own: a client that goes away must
/// not stop it between two of its writes (between a card charge and its ledger entry, between a
/// release and the escrow's state). The resumer or the due pass would finish it, but later.
async fn to_the_end<T, F>(step: F) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ::payments::PaymentError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(step)
        .await
        .map_err(|error| ApiError::Internal(format!("the payments task failed: {error}")))?
        .map_err(ApiError::from)
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let money_moving = OpenApiRouter::new()
        .routes(idempotency::guarded(routes!(handlers::create_payment)))
        .routes(idempotency::guarded(routes!(handlers::grant_points)))
        .routes(idempotency::guarded(routes!(refunds::create_refund)))
        .routes(idempotency::guarded(routes!(escrow::ship_escrow)))
        .routes(idempotency::guarded(routes!(escrow::deliver_escrow)))
        .routes(idempotency::guarded(routes!(escrow::confirm_escrow)))
        .routes(idempotency::guarded(routes!(escrow::dispute_escrow)))
        .routes(idempotency::guarded(routes!(escrow::resolve_escrow)))
        .routes(idempotency::guarded(routes!(escrow::cancel_escrow)));
    OpenApiRouter::new()
        .routes(routes!(handlers::get_payment))
        .routes(routes!(handlers::get_payment_order))
        .routes(routes!(escrow::get_escrow))
        .routes(routes!(handlers::get_points))
        .routes(routes!(handlers::get_member_points))
        .routes(routes!(refunds::get_refund))
        .routes(routes!(refunds::list_refunds))
        .merge(money_moving)
}
