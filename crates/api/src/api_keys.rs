//! Managing API keys: create (the only time a secret is shown), list, revoke; and making sure
//! a fresh installation has an admin key to start with. A `merchant` key is bound to the one
//! merchant it acts for; keys of other roles are bound to none.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::Json;
use ledger::{Clock, SystemClock};
use merchants::{MerchantError, MerchantId};
use serde::{Deserialize, Serialize};
use storage::Db;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{digest, generate_secret, AdminCaller, Role, Secret};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, NoFields, OptionalJson};
use crate::idempotency::no_store;
use crate::pagination::{page_limit, trim_page};
use crate::time::format_micros;
use crate::AppState;

/// The longest key name, in bytes.
pub const KEY_NAME_LEN_MAX: usize = 128;

/// The prefix of API key ids.
pub const KEY_ID_PREFIX: &str = "key_";

/// The routes of this module; every one requires an admin key.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

/// What a client sends to create a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// What the key may do.
    pub role: Role,
    /// A label for operators, such as the service that uses the key.
    #[schema(example = "checkout-service")]
    pub name: String,
    /// The merchant (`mer_…`) a `merchant` key acts for: required for that role, refused for
    /// the others.
    pub merchant_id: Option<String>,
}

/// A stored key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The key's id (`key_…`), which is not secret.
    #[schema(example = "key_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// What the key may do.
    pub role: Role,
    /// The operator's label.
    pub name: String,
    /// The merchant a `merchant` key acts for.
    pub merchant_id: Option<String>,
    /// When the key was created (RFC 3339, UTC).
    pub created_at: String,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// A freshly created key, with the secret that is shown this once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's id (`key_…`).
    pub id: String,
    /// What the key may do.
    pub role: Role,
    /// The operator's label.
    pub name: String,
    /// The merchant a `merchant` key acts for.
    pub merchant_id: Option<String>,
    /// When the key was created (RFC 3339, UTC).
    pub created_at: String,
    /// The bearer token. Only its SHA-256 digest is stored, so it cannot be shown again.
    #[schema(example = "mpk_3q2-7wEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE0")]
    pub secret: String,
}

/// One page of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys, in id (creation) order.
    pub data: Vec<ApiKeyView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging through keys.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyListQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A stored key row: id, role, name, merchant_id, created_at, revoked_at.
type KeyRow = (String, String, String, Option<String>, i64, Option<i64>);

/// The answer that shows a new key's secret: 201, never cached.
pub(crate) type CreatedResponse = (
    StatusCode,
    [(header::HeaderName, HeaderValue); 1],
    Json<CreatedApiKey>,
);

/// Creates an API key and returns its secret, once.
#[utoipa::path(
    post,
    path = "/v1/admin/api-keys",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "The key, with its secret", body = CreatedApiKey),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 422, description = "`invalid_request` (the name), `merchant_id_required` (a merchant key without one), `merchant_id_unknown` (no such merchant) or `merchant_id_not_allowed` (another role with one)", body = ErrorBody),
    )
)]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<CreatedResponse, ApiError> {
    let merchant = match (request.role, request.merchant_id.as_deref()) {
        (Role::Merchant, None) => return Err(ApiError::MerchantIdRequired),
        (Role::Merchant, Some(raw)) => Some(existing_merchant(&state, raw).await?),
        (Role::Admin | Role::Platform, None) => None,
        (Role::Admin | Role::Platform, Some(_)) => return Err(ApiError::MerchantIdNotAllowed),
    };
    create_key(&state, request.role, request.name, merchant.as_ref()).await
}

/// The merchant a new key is to be bound to; a malformed or unknown id is the request's fault.
async fn existing_merchant(state: &AppState, raw: &str) -> Result<MerchantId, ApiError> {
    let unknown = || ApiError::MerchantIdUnknown(raw.chars().take(64).collect());
    let id = MerchantId::parse(raw).ok_or_else(unknown)?;
    match state.merchants.get(&id).await {
        Ok(_) => Ok(id),
        Err(MerchantError::NotFound(_)) => Err(unknown()),
        Err(error) => Err(error.into()),
    }
}

/// Creates a key with a checked name and, for a merchant key, the existing merchant it acts
/// for; answers with its secret, shown this once.
pub(crate) async fn create_key(
    state: &AppState,
    role: Role,
    name: String,
    merchant: Option<&MerchantId>,
) -> Result<CreatedResponse, ApiError> {
    check_name(&name)?;
    let secret = generate_secret()
        .map_err(|error| ApiError::Internal(format!("no randomness for a key: {error}")))?;
    let id = new_key_id();
    let now = state.ledger.now_micros();
    let key = NewKey {
        id: &id,
        role,
        name: &name,
        merchant,
    };
    insert_key(&state.db, &key, &secret, now).await?;
    let created = CreatedApiKey {
        id,
        role,
        name,
        merchant_id: merchant.map(MerchantId::to_string),
        created_at: format_micros(now),
        secret: secret.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, [no_store()], Json(created)))
}

/// Lists keys in creation order, without secrets.
#[utoipa::path(
    get,
    path = "/v1/admin/api-keys",
    tag = "admin",
    security(("bearer" = [])),
    params(ApiKeyListQuery),
    responses(
        (status = 200, description = "A page of keys", body = ApiKeyList),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    )
)]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiQuery(query): ApiQuery<ApiKeyListQuery>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let mut rows = list_keys(&state.db, query.after.as_deref(), limit + 1).await?;
    let next_cursor = trim_page(&mut rows, limit, |row| row.0.clone());
    let data = rows.into_iter().map(view).collect::<Result<_, _>>()?;
    Ok(Json(ApiKeyList { data, next_cursor }))
}

/// Revokes a key. The key is refused from the next request on; revoking twice is harmless and
/// keeps the first revocation time.
#[utoipa::path(
    post,
    path = "/v1/admin/api-keys/{id}/revoke",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    request_body(content = Option<NoFields>, description = "Optional: an empty body or `{}`; any field is refused"),
    responses(
        (status = 200, description = "The revoked key", body = ApiKeyView),
        (status = 400, description = "A body with a field (this action takes none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(NoFields {}): OptionalJson<NoFields>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let now = state.ledger.now_micros();
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(&id)
        .execute(state.db.pool())
        .await?;
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT id, role, name, merchant_id, created_at, revoked_at FROM api_keys WHERE id = $1",
    )
    .bind(&id)
    .fetch_optional(state.db.pool())
    .await?;
    let row = row.ok_or(ApiError::ApiKeyNotFound(id))?;
    Ok(Json(view(row)?))
}

/// Makes sure an admin key exists, so that a fresh installation can be administered.
///
/// With a configured key (`MYPAY_ADMIN_API_KEY`), its digest is stored as an admin key unless
/// that digest is already stored (in which case the stored row, revoked or not, is left as it
/// is: a revocation is an operator's decision), and `None` is returned. Without one, a new key
/// is generated only if no un-revoked admin key exists, and returned so that the caller prints
/// it once. Two replicas starting at the same moment on an empty database may each create one;
/// both keys are valid admin keys and either can revoke the other.
pub async fn ensure_admin_key(
    db: &Db,
    configured: Option<&Secret>,
) -> Result<Option<Secret>, sqlx::Error> {
    let now = SystemClock.now_micros();
    if let Some(secret) = configured {
        sqlx::query(
            "INSERT INTO api_keys (id, role, name, secret_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (secret_sha256) DO NOTHING",
        )
        .bind(new_key_id())
        .bind(Role::Admin.as_str())
        .bind("configured admin key")
        .bind(digest(secret.expose()))
        .bind(now)
        .execute(db.pool())
        .await?;
        return Ok(None);
    }
    let existing: Option<(String,)> =
        sqlx::query_as("SELECT id FROM api_keys WHERE role = $1 AND revoked_at IS NULL LIMIT 1")
            .bind(Role::Admin.as_str())
            .fetch_optional(db.pool())
            .await?;
    if existing.is_some() {
        return Ok(None);
    }
    let secret =
        generate_secret().map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))?;
    let key = NewKey {
        id: &new_key_id(),
        role: Role::Admin,
        name: "initial admin key",
        merchant: None,
    };
    insert_key(db, &key, &secret, now).await?;
    Ok(Some(secret))
}

/// A new key id: the prefix and a ULID, so ids sort by creation time.
fn new_key_id() -> String {
    format!("{KEY_ID_PREFIX}{}", ulid::Ulid::new())
}

/// Refuses empty, over-long or control-character names, which would garble operator listings.
fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.trim().is_empty()
        && name.len() <= KEY_NAME_LEN_MAX
        && !name.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(ApiError::FieldInvalid(format!(
            "name must be 1 to {KEY_NAME_LEN_MAX} bytes without control characters"
        )))
    }
}

/// A key to store, without its secret.
struct NewKey<'a> {
    id: &'a str,
    role: Role,
    name: &'a str,
    merchant: Option<&'a MerchantId>,
}

async fn insert_key(
    db: &Db,
    key: &NewKey<'_>,
    secret: &Secret,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, role, name, merchant_id, secret_sha256, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.id)
    .bind(key.role.as_str())
    .bind(key.name)
    .bind(key.merchant.map(MerchantId::as_str))
    .bind(digest(secret.expose()))
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

async fn list_keys(db: &Db, after: Option<&str>, limit: i64) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, role, name, merchant_id, created_at, revoked_at FROM api_keys \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await
}

fn view(
    (id, role, name, merchant_id, created_at, revoked_at): KeyRow,
) -> Result<ApiKeyView, ApiError> {
    let role = Role::from_db(&role)
        .ok_or_else(|| ApiError::Internal(format!("api key {id} has unknown role")))?;
    Ok(ApiKeyView {
        id,
        role,
        name,
        merchant_id,
        created_at: format_micros(created_at),
        revoked_at: revoked_at.map(format_micros),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_printable() {
        assert!(check_name("checkout-service").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("   ").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"n".repeat(KEY_NAME_LEN_MAX + 1)).is_err());
    }
}
