//! Linked bank accounts over HTTP: linking a charge account or the partner account (holder-name
//! check and 1-won deposit), resending and verifying the code, the debit consent with its ARS
//! step, reading, listing and unlinking.
//!
//! Who may do what: the owning member does everything; admin and platform keys read any
//! member's accounts (masked); a platform key may also confirm the ARS step, standing for the
//! ARS provider's callback; merchant keys get 403; another member's account answers 404
//! `bank_account_not_found`, exactly like a missing one. The routes that send a 1-won deposit
//! honour `Idempotency-Key`.

mod handlers;
mod views;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::idempotency;
use crate::AppState;

/// The routes of this module; the ones that move a won sit behind the idempotency layer.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let money_moving = OpenApiRouter::new()
        .routes(idempotency::guarded(routes!(handlers::link_charge_account)))
        .routes(idempotency::guarded(routes!(
            handlers::link_partner_account
        )))
        .routes(idempotency::guarded(routes!(handlers::resend_code)));
    OpenApiRouter::new()
        .routes(routes!(handlers::list_bank_accounts))
        .routes(routes!(
            handlers::get_bank_account,
            handlers::unlink_bank_account
        ))
        .routes(routes!(handlers::verify_code))
        .routes(routes!(handlers::start_consent))
        .routes(routes!(handlers::confirm_consent))
        .merge(money_moving)
}
