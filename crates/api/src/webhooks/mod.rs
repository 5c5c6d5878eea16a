//! Webhooks over HTTP: a merchant's endpoints (register, list, read, delete), its events with
//! their delivery states, and the operator's re-queueing of a dead delivery.
//!
//! Who may act: for now admin and platform keys, naming the merchant in the path; every route
//! asks `handlers::authorize_merchant`, the one place that will admit merchant keys for their
//! own merchant. Registering answers the endpoint's signing secret once (`Cache-Control:
//! no-store`); it is stored only sealed.

mod handlers;

pub(crate) use handlers::authorize_merchant;
mod views;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_endpoint, handlers::list_endpoints))
        .routes(routes!(handlers::get_endpoint, handlers::delete_endpoint))
        .routes(routes!(handlers::list_events))
        .routes(routes!(handlers::retry_delivery))
}
