//! Checkout payments over HTTP: `POST /v1/payments`, `GET /v1/payments/{id}`,
//! `GET /v1/payment-orders/{id}`, and the buyer's points.
//!
//! A member pays for themself; a platform (or admin) key pays on behalf of the `buyer` it
//! names, as a commerce backend does; merchant keys cannot spend a member's money (403). The
//! checkout id is the payment's idempotency key, so `Idempotency-Key` is optional here; when
//! sent, the HTTP layer replays the stored answer as everywhere else.

mod handlers;
mod views;

use axum::middleware::from_fn;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::idempotency;
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let money_moving = OpenApiRouter::new()
        .routes(routes!(handlers::create_payment))
        .routes(routes!(handlers::grant_points))
        .route_layer(from_fn(idempotency::enforce));
    OpenApiRouter::new()
        .routes(routes!(handlers::get_payment))
        .routes(routes!(handlers::get_payment_order))
        .routes(routes!(handlers::get_points))
        .routes(routes!(handlers::get_member_points))
        .merge(money_moving)
}
