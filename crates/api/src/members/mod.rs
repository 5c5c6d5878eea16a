//! Members over HTTP: sign-up, login sessions, the member's own profile, closing, and reading
//! a member by id under the ownership rule ([`crate::Caller::authorize_owner`]).
//!
//! Sign-up and login are anonymous. `/v1/members/me…` and logging out need a member's session
//! token; API keys get 403 there, having no "me". `GET /v1/members/{id}` answers the member
//! themself and admin and platform keys; another member gets 404 `member_not_found`, the same
//! answer as for an id that does not exist; merchant keys get 403.

mod handlers;
mod views;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::sign_up))
        .routes(routes!(handlers::get_me, handlers::update_me))
        .routes(routes!(handlers::close_me))
        .routes(routes!(handlers::get_member))
        .routes(routes!(handlers::log_in))
        .routes(routes!(handlers::log_out))
}
