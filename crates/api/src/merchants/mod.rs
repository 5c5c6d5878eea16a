//! Merchants over HTTP: onboarding (with the settlement account's holder checked at the bank),
//! listing, reading, changing the name, fee rate or status, replacing the settlement account,
//! and API keys bound to a merchant.
//!
//! Who may do what: admin and platform keys do everything; a merchant key reads its own
//! merchant, and another merchant's id answers 404 `merchant_not_found` exactly like a missing
//! one; members get 403. Settlement account numbers are only ever shown masked. Onboarding
//! honours `Idempotency-Key`, and stores the key with the merchant so that a retry after the
//! HTTP layer has forgotten it still finds the first merchant.

mod handlers;
mod views;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::idempotency;
use crate::AppState;

/// The routes of this module; onboarding behind the idempotency layer. Key creation is not:
/// its answer carries a secret, which must never be stored for replay.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let idempotent =
        OpenApiRouter::new().routes(idempotency::guarded(routes!(handlers::onboard_merchant)));
    OpenApiRouter::new()
        .routes(routes!(handlers::list_merchants))
        .routes(routes!(handlers::get_merchant, handlers::update_merchant))
        .routes(routes!(handlers::change_settlement_account))
        .routes(routes!(handlers::create_merchant_key))
        .merge(idempotent)
}
