//! Item locks over HTTP: who holds a unique item now, for operators and the platform's own
//! services. Taking and releasing locks is checkout's, which calls [`item_lock::ItemLocks`]
//! directly; there is no route that locks or unlocks an item.

use axum::extract::State;
use axum::Json;
use item_lock::ItemKey;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::time::format_micros;
use crate::AppState;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_item_lock))
}

/// Whether an item is locked, and by whom until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemLockView {
    /// The item key as given.
    #[schema(example = "listing:8812")]
    pub item: String,
    /// Whether a buyer holds the item now.
    pub locked: bool,
    /// Who holds it (the checkout that took it); null when free.
    #[schema(example = "chk_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub holder: Option<String>,
    /// When the lock ends (RFC 3339, on the lock store's clock); null when free.
    pub expires_at: Option<String>,
}

/// The lock on one item. Admin and platform keys only: a holder is a checkout, which members
/// and merchants have no business seeing for items that are not theirs.
#[utoipa::path(
    get,
    path = "/v1/items/{key}/lock",
    tag = "items",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The item key: 1 to 128 of `A-Z a-z 0-9 . _ : -`")),
    responses(
        (status = 200, description = "The item's lock, or that it is free", body = ItemLockView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 422, description = "`item_key_invalid`", body = ErrorBody),
        (status = 503, description = "`item_lock_unavailable`: the lock store did not answer", body = ErrorBody),
    )
)]
pub(crate) async fn get_item_lock(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ItemLockView>, ApiError> {
    match caller {
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        } => {}
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        }
        | Caller::Member(_) => return Err(ApiError::Forbidden),
    }
    let item = ItemKey::parse(&key)?;
    let lock = state.item_locks.lock(&item).await?;
    Ok(Json(ItemLockView {
        item: item.to_string(),
        locked: lock.is_some(),
        expires_at: lock.as_ref().map(|lock| format_micros(lock.expires_at)),
        holder: lock.map(|lock| lock.holder),
    }))
}
