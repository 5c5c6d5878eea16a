//! The webhook route handlers: each checks who may act for the merchant, calls the service,
//! and shapes the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use webhooks::{DeliveryId, EndpointId, EventId, NewEndpoint, WebhookError, EVENT_PAGE_SIZE_MAX};

use super::views::{
    CreateEndpointRequest, DeliveryView, EndpointCreatedView, EndpointList, EndpointView,
    EventList, EventView, EventsQuery,
};
use crate::auth::{Caller, OperatorCaller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, NoFields, OptionalJson};
use crate::idempotency::no_store;
use crate::pagination::PAGE_SIZE_DEFAULT;
use crate::AppState;
use merchants::{MerchantError, MerchantId};

/// Who may act for a merchant's webhooks: the one place that decides it. Admin and platform
/// keys act for any merchant; a merchant's own key for its merchant only. Another merchant's
/// key gets 404 `merchant_not_found`, as an id that names no merchant does; members get 403.
pub(crate) async fn authorize_merchant(
    state: &AppState,
    caller: &Caller,
    merchant_id: &str,
) -> Result<(), ApiError> {
    let staff = matches!(
        caller,
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        }
    );
    if !staff && caller.merchant_id() != Some(merchant_id) {
        return match caller {
            Caller::ApiKey {
                role: Role::Merchant,
                ..
            } => Err(merchant_not_found(merchant_id)),
            Caller::ApiKey { .. } | Caller::Member(_) => Err(ApiError::Forbidden),
        };
    }
    let Some(id) = MerchantId::parse(merchant_id) else {
        return Err(merchant_not_found(merchant_id));
    };
    state.merchants.get(&id).await?;
    Ok(())
}

fn merchant_not_found(raw: &str) -> ApiError {
    MerchantError::NotFound(raw.chars().take(64).collect()).into()
}

/// Registers an endpoint. The answer carries the signing secret, which is never shown again.
#[utoipa::path(
    post,
    path = "/v1/merchants/{merchant_id}/webhook-endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Registered; `secret` is shown only here", body = EndpointCreatedView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member, or a key that is neither staff nor the merchant's own", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`: not a merchant id", body = ErrorBody),
        (status = 409, description = "`webhook_endpoint_limit_reached` (16 live endpoints per merchant)", body = ErrorBody),
        (status = 422, description = "`webhook_url_invalid` or `webhook_event_type_unknown`", body = ErrorBody),
    )
)]
pub(crate) async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(merchant_id): ApiPath<String>,
    ApiJson(request): ApiJson<CreateEndpointRequest>,
) -> Result<Response, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let new = NewEndpoint {
        url: request.url,
        event_types: request.event_types,
    };
    let created = state.webhooks.create_endpoint(&merchant_id, &new).await?;
    Ok((
        StatusCode::CREATED,
        [no_store()],
        Json(EndpointCreatedView::from(created)),
    )
        .into_response())
}

/// A merchant's active endpoints.
#[utoipa::path(
    get,
    path = "/v1/merchants/{merchant_id}/webhook-endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    responses(
        (status = 200, description = "The active endpoints, oldest first", body = EndpointList),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member, or a key that is neither staff nor the merchant's own", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`: not a merchant id", body = ErrorBody),
    )
)]
pub(crate) async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(merchant_id): ApiPath<String>,
) -> Result<Json<EndpointList>, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let endpoints = state.webhooks.endpoints(&merchant_id).await?;
    Ok(Json(EndpointList {
        data: endpoints.into_iter().map(EndpointView::from).collect(),
    }))
}

/// One of a merchant's endpoints, deleted ones included.
#[utoipa::path(
    get,
    path = "/v1/merchants/{merchant_id}/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("merchant_id" = String, Path, description = "The merchant (`mer_…`)"),
        ("id" = String, Path, description = "The endpoint (`we_…`)"),
    ),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member, or a key that is neither staff nor the merchant's own", body = ErrorBody),
        (status = 404, description = "`webhook_endpoint_not_found` (no such endpoint, or another merchant's) or `merchant_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((merchant_id, raw)): ApiPath<(String, String)>,
) -> Result<Json<EndpointView>, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let endpoint = state
        .webhooks
        .endpoint(&merchant_id, &endpoint_id(&raw)?)
        .await?;
    Ok(Json(endpoint.into()))
}

/// Deletes an endpoint: nothing more is delivered to it, and its pending and dead deliveries
/// are cancelled. Deleting it again answers the deleted endpoint.
#[utoipa::path(
    delete,
    path = "/v1/merchants/{merchant_id}/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("merchant_id" = String, Path, description = "The merchant (`mer_…`)"),
        ("id" = String, Path, description = "The endpoint (`we_…`)"),
    ),
    responses(
        (status = 200, description = "The deleted endpoint (`status: deleted`)", body = EndpointView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member, or a key that is neither staff nor the merchant's own", body = ErrorBody),
        (status = 404, description = "`webhook_endpoint_not_found` or `merchant_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((merchant_id, raw)): ApiPath<(String, String)>,
) -> Result<Json<EndpointView>, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let endpoint = state
        .webhooks
        .delete_endpoint(&merchant_id, &endpoint_id(&raw)?)
        .await?;
    Ok(Json(endpoint.into()))
}

/// A merchant's events, newest first, each with its deliveries' states.
#[utoipa::path(
    get,
    path = "/v1/merchants/{merchant_id}/webhook-events",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)"), EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 400, description = "Malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member, or a key that is neither staff nor the merchant's own", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`: not a merchant id", body = ErrorBody),
    )
)]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(merchant_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let limit = query.limit.unwrap_or(PAGE_SIZE_DEFAULT);
    if !(1..=EVENT_PAGE_SIZE_MAX).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {EVENT_PAGE_SIZE_MAX}"
        )));
    }
    let after = match query.after.as_deref() {
        Some(raw) => Some(EventId::parse(raw).ok_or_else(|| {
            ApiError::InvalidRequest("after must be a next_cursor from a previous page".into())
        })?),
        None => None,
    };
    let page = state
        .webhooks
        .events(&merchant_id, after.as_ref(), limit)
        .await?;
    Ok(Json(EventList {
        data: page.items.into_iter().map(EventView::from).collect(),
        next_cursor: page.next,
    }))
}

/// Re-queues a dead delivery with a fresh retry schedule, due at once: for operators, after the
/// receiver was fixed.
#[utoipa::path(
    post,
    path = "/v1/webhook-deliveries/{id}/retry",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The delivery (`whd_…`)")),
    request_body(content = Option<NoFields>, description = "Optional: an empty body or `{}`; any field is refused"),
    responses(
        (status = 200, description = "Re-queued (`pending`, attempts 0)", body = DeliveryView),
        (status = 400, description = "A body with a field (this action takes none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "Not an admin or platform key", body = ErrorBody),
        (status = 404, description = "`webhook_delivery_not_found`", body = ErrorBody),
        (status = 409, description = "`webhook_delivery_not_dead`: pending, delivered or cancelled", body = ErrorBody),
    )
)]
pub(crate) async fn retry_delivery(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(raw): ApiPath<String>,
    OptionalJson(NoFields {}): OptionalJson<NoFields>,
) -> Result<Json<DeliveryView>, ApiError> {
    let found = match DeliveryId::parse(&raw) {
        Some(id) => state.webhooks.delivery(&id).await?,
        None => None,
    };
    let delivery = found.ok_or_else(|| delivery_not_found(&raw))?;
    let requeued = state.webhooks.retry_delivery(&delivery.id).await?;
    Ok(Json(requeued.into()))
}

/// A path's endpoint id; a malformed one names no endpoint, the same answer as a missing one.
fn endpoint_id(raw: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(raw)
        .ok_or_else(|| WebhookError::EndpointNotFound(raw.chars().take(64).collect()).into())
}

fn delivery_not_found(raw: &str) -> ApiError {
    WebhookError::DeliveryNotFound(raw.chars().take(64).collect()).into()
}
