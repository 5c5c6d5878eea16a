//! The ledger over HTTP: accounts, balances, history, journal transactions and holds. Every
//! route needs an admin API key; every money-moving POST honours `Idempotency-Key`.

mod accounts;
mod holds;
mod transactions;
pub mod views;

use axum::http::{HeaderValue, StatusCode};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::require_admin;
use crate::idempotency::{self, IdempotencyContext, IDEMPOTENCY_REPLAYED_HEADER};
use crate::AppState;

/// The ledger's routes. The money-moving ones sit behind the idempotency layer, and all of them
/// behind the admin check, which runs first.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let money_moving = OpenApiRouter::new()
        .routes(idempotency::guarded(routes!(
            transactions::post_transaction
        )))
        .routes(idempotency::guarded(routes!(holds::reserve_hold)))
        .routes(idempotency::guarded(routes!(holds::post_hold)))
        .routes(idempotency::guarded(routes!(holds::void_hold)));
    OpenApiRouter::new()
        .routes(routes!(accounts::create_account, accounts::list_accounts))
        .routes(routes!(accounts::get_account))
        .routes(routes!(accounts::get_balance))
        .routes(routes!(accounts::snapshot_balances))
        .routes(routes!(accounts::get_history))
        .routes(routes!(transactions::get_transaction))
        .routes(routes!(holds::get_hold))
        .merge(money_moving)
        .route_layer(from_fn(require_admin))
}

/// Answers a write: `status` when it took effect now, 200 with `Idempotency-Replayed: true`
/// when the ledger already held the same write under the same id.
fn written<T: Serialize>(status: StatusCode, replayed: bool, body: T) -> Response {
    if replayed {
        let header = (
            IDEMPOTENCY_REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
        (StatusCode::OK, [header], Json(body)).into_response()
    } else {
        (status, Json(body)).into_response()
    }
}

/// The id a new resource gets: the client's own when given, else one derived from the
/// `Idempotency-Key` (so a re-run lands on the same resource), else a fresh one.
fn resource_id(
    given: Option<String>,
    context: Option<&IdempotencyContext>,
    prefix: &str,
) -> Option<String> {
    given.or_else(|| context.map(|context| context.derive_id(prefix)))
}
