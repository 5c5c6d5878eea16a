//! Wallets over HTTP: the caller's balances and history, charges, withdrawals, payouts to any
//! bank account, and transfers between members.
//!
//! `/v1/wallets…` and `/v1/transfers` are about the calling member: they need a session token,
//! and API keys get 403. `/v1/members/{member_id}/wallets/…` serves the member themself and
//! admin and platform keys under the ownership rule; another member gets 404
//! `wallet_not_found`. Every money-moving POST requires an `Idempotency-Key`.

mod handlers;
pub(crate) mod views;

pub(crate) use handlers::owned_member;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::idempotency;
use crate::AppState;

/// The routes of this module; the money-moving ones behind the idempotency layer.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let money_moving = OpenApiRouter::new()
        .routes(idempotency::guarded(routes!(handlers::charge)))
        .routes(idempotency::guarded(routes!(handlers::withdraw)))
        .routes(idempotency::guarded(routes!(handlers::payout)))
        .routes(idempotency::guarded(routes!(handlers::transfer)));
    OpenApiRouter::new()
        .routes(routes!(handlers::list_wallets))
        .routes(routes!(handlers::get_wallet))
        .routes(routes!(handlers::get_history))
        .routes(routes!(handlers::get_money_tx))
        .routes(routes!(handlers::get_member_wallet))
        .routes(routes!(handlers::get_member_history))
        .merge(money_moving)
}
