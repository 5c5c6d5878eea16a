//! Authentication: session tokens for members, API keys for server clients, both sent as
//! `Authorization: Bearer <token>` and parsed by the one [`bearer_token`] function.
//!
//! Members are authenticated by the `membership` crate (tokens are `mps_…`, stored as SHA-256
//! digests); this module turns the result into a [`Caller`] and applies the ownership rule.
//!
//! A key is `mpk_` followed by 256 random bits in URL-safe base64. Only its SHA-256 digest is
//! stored, and a request is authenticated by looking the digest of its bearer token up: the
//! secret is never compared byte by byte, so timing reveals nothing about stored keys, and a
//! database leak reveals no usable key. Keys are looked up on every request (no cache), so a
//! revoked key is refused from the next request on.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use membership::{MemberId, SessionId, SessionToken};
use merchants::MerchantId;

use crate::error::ApiError;
use crate::AppState;

/// The prefix of every generated key, so that leaked keys are easy to recognise and scan for.
pub const SECRET_PREFIX: &str = "mpk_";

/// The longest bearer token that is hashed and looked up; anything longer is refused unread.
pub const BEARER_TOKEN_LEN_MAX: usize = 256;

/// How many random bytes a generated key carries.
const SECRET_RANDOM_BYTES: usize = 32;

/// A secret whose `Debug` and `Display` print `***`, so that it cannot end up in a log line by
/// accident. Use [`Secret::expose`] where the value is really needed. Request bodies use it for
/// passwords, so that a logged request shows none.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// Returns the secret itself, for the one place that must print or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operators: the ledger and key management.
    Admin,
    /// The platform's own services.
    Platform,
    /// A merchant's server.
    Merchant,
}

impl Role {
    /// The name stored in `api_keys.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Platform => "platform",
            Role::Merchant => "merchant",
        }
    }

    /// Reads a stored role; the table's CHECK constraint admits only these three.
    pub fn from_db(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "platform" => Some(Role::Platform),
            "merchant" => Some(Role::Merchant),
            _ => None,
        }
    }
}

/// Who is behind a request: a member with a session token, or a server with an API key.
///
/// Extracting it authenticates the request; the result is cached in the request's extensions,
/// so that middleware and handler share one lookup. A later handler that serves a member's
/// resource takes a `Caller` and calls [`Caller::authorize_owner`] with the resource's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A member, authenticated by a live session token (`mps_…`).
    Member(MemberId),
    /// A server, authenticated by an API key (`mpk_…` or the configured admin key).
    ApiKey {
        /// The key's id (`key_…`).
        id: String,
        /// What the key may do.
        role: Role,
        /// The merchant a `merchant` key acts for; `None` for every other role (and for
        /// merchant keys created before keys were bound, which reach no merchant).
        merchant_id: Option<MerchantId>,
    },
}

/// The session a member's request was authenticated with, put in the request's extensions
/// beside the [`Caller`] so that logging out knows which session to end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CurrentSession(SessionId);

impl Caller {
    /// Whose idempotency keys the request uses: the member's id or the API key's id, which
    /// never collide (`usr_…` and `key_…`).
    pub fn scope(&self) -> &str {
        match self {
            Caller::Member(id) => id.as_str(),
            Caller::ApiKey { id, .. } => id,
        }
    }

    /// The merchant the caller acts for: set only for an API key of role `merchant` bound to a
    /// merchant. Merchant-facing routes compare it with the merchant a request names and
    /// answer another merchant's resource with that resource's 404.
    pub fn merchant_id(&self) -> Option<&str> {
        match self {
            Caller::ApiKey {
                merchant_id: Some(merchant),
                ..
            } => Some(merchant.as_str()),
            Caller::ApiKey { .. } | Caller::Member(_) => None,
        }
    }

    /// Applies "a member reaches only their own resources" to a resource owned by a member,
    /// and hands the resource back when the caller may see it.
    ///
    /// `resource` is what the request names, or `None` when it does not exist; `owner` says
    /// which member it belongs to. The owner passes; admin and platform keys pass for any
    /// existing resource; another member gets `not_found`, exactly as for a resource that does
    /// not exist, so that existence never leaks; a merchant key is refused with 403 whatever
    /// the resource, because that role never reads members' resources. A handler loads first,
    /// then asks:
    ///
    /// ```text
    /// let wallet = caller.authorize_owner(store.wallet(&id).await?, |w| &w.member_id, || {
    ///     ApiError::from(WalletError::NotFound(id.clone()))
    /// })?;
    /// ```
    pub fn authorize_owner<T>(
        &self,
        resource: Option<T>,
        owner: impl for<'a> FnOnce(&'a T) -> &'a MemberId,
        not_found: impl FnOnce() -> ApiError,
    ) -> Result<T, ApiError> {
        let Some(resource) = resource else {
            return match self {
                Caller::ApiKey {
                    role: Role::Merchant,
                    ..
                } => Err(ApiError::Forbidden),
                Caller::Member(_) | Caller::ApiKey { .. } => Err(not_found()),
            };
        };
        match self {
            Caller::ApiKey {
                role: Role::Merchant,
                ..
            } => Err(ApiError::Forbidden),
            Caller::ApiKey {
                role: Role::Admin | Role::Platform,
                ..
            } => Ok(resource),
            Caller::Member(me) if me == owner(&resource) => Ok(resource),
            Caller::Member(_) => Err(not_found()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let state = AppState::from_extensions(&parts.extensions)?;
        let (caller, session) = authenticate(&state, token).await?;
        if let Some(session) = session {
            parts.extensions.insert(CurrentSession(session));
        }
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Looks a bearer token up. A token shaped like a session token is looked up among sessions
/// first; any other token, and a session-shaped one that names no live session (an operator
/// may have configured an admin key that happens to start with `mps_`), among API keys.
async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<(Caller, Option<SessionId>), ApiError> {
    if let Some(token) = SessionToken::parse(token) {
        if let Some(session) = state.members.authenticate(&token).await? {
            return Ok((Caller::Member(session.member_id), Some(session.id)));
        }
    }
    let caller = lookup(state, &digest(token))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok((caller, None))
}

/// A caller whose API key has the admin role. Other keys and members are refused with 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    /// The admin key's id.
    pub key_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::ApiKey {
                id,
                role: Role::Admin,
                ..
            } => Ok(AdminCaller { key_id: id }),
            Caller::ApiKey {
                role: Role::Platform | Role::Merchant,
                ..
            }
            | Caller::Member(_) => Err(ApiError::Forbidden),
        }
    }
}

/// A caller with an admin or platform key: the operators and the platform's own services, who
/// manage merchants. Members and merchant keys are refused with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorCaller;

impl<S: Send + Sync> FromRequestParts<S> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::ApiKey {
                role: Role::Admin | Role::Platform,
                ..
            } => Ok(OperatorCaller),
            Caller::ApiKey {
                role: Role::Merchant,
                ..
            }
            | Caller::Member(_) => Err(ApiError::Forbidden),
        }
    }
}

/// A member authenticated by a session token, for routes about the member themself
/// (`/v1/members/me`, logging out). API keys are refused with 403: they have no "me".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCaller {
    /// The member.
    pub member_id: MemberId,
    /// The session the request came with.
    pub session_id: SessionId,
}

impl<S: Send + Sync> FromRequestParts<S> for MemberCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Member(member_id) => {
                let CurrentSession(session_id) = parts
                    .extensions
                    .get::<CurrentSession>()
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::Internal("a member caller without its session".into())
                    })?;
                Ok(MemberCaller {
                    member_id,
                    session_id,
                })
            }
            Caller::ApiKey { .. } => Err(ApiError::Forbidden),
        }
    }
}

/// Middleware form of [`AdminCaller`], for routers whose every route is admin-only. It runs
/// before body parsing and idempotency, so an unauthorised caller learns nothing else.
pub async fn require_admin(
    _admin: AdminCaller,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header, if the header is present, well
/// formed and of a plausible length. The scheme name is case-insensitive (RFC 7235).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let plausible = !token.is_empty()
        && token.len() <= BEARER_TOKEN_LEN_MAX
        && token.bytes().all(|byte| byte.is_ascii_graphic());
    (scheme.eq_ignore_ascii_case("bearer") && plausible).then_some(token)
}

/// The hex SHA-256 digest under which a key is stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Generates a new key from the operating system's random number generator.
pub fn generate_secret() -> Result<Secret, rand::rand_core::OsError> {
    let mut bytes = [0u8; SECRET_RANDOM_BYTES];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes)?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(Secret(format!("{SECRET_PREFIX}{encoded}")))
}

/// Finds the un-revoked key with this digest, and the merchant it is bound to.
async fn lookup(state: &AppState, secret_sha256: &str) -> Result<Option<Caller>, ApiError> {
    let row: Option<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, role, merchant_id FROM api_keys \
         WHERE secret_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(secret_sha256)
    .fetch_optional(state.db.pool())
    .await?;
    row.map(|(id, role, merchant)| {
        let role = Role::from_db(&role)
            .ok_or_else(|| ApiError::Internal(format!("api key {id} has unknown role")))?;
        let merchant_id = merchant
            .map(|merchant| {
                MerchantId::parse(&merchant)
                    .ok_or_else(|| ApiError::Internal(format!("api key {id} has a bad merchant")))
            })
            .transpose()?;
        Ok(Caller::ApiKey {
            id,
            role,
            merchant_id,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(value).expect("valid header"),
        );
        headers
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("mpk_abc".into());
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "mpk_abc");
    }

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        let secret = generate_secret().expect("the OS has randomness");
        let text = secret.expose();
        assert!(text.starts_with(SECRET_PREFIX));
        assert_eq!(text.len(), SECRET_PREFIX.len() + 43);
        assert!(text[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(generate_secret().expect("random").expose(), text);
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token(&headers("Bearer mpk_x")), Some("mpk_x"));
        assert_eq!(bearer_token(&headers("bearer mpk_x")), Some("mpk_x"));
        assert_eq!(bearer_token(&headers("Basic mpk_x")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&headers("Bearer a b")), None);
        assert_eq!(
            bearer_token(&headers(&format!("Bearer {}", "x".repeat(300)))),
            None
        );
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn owners_and_staff_keys_pass_other_members_see_nothing_and_merchants_are_refused() {
        let owner = MemberId::generate();
        let other = MemberId::generate();
        let key = |role| Caller::ApiKey {
            id: "key_x".into(),
            role,
            merchant_id: None,
        };
        fn check(caller: &Caller, resource: Option<&MemberId>) -> Result<String, &'static str> {
            caller
                .authorize_owner(resource, |id| id, || ApiError::RouteNotFound("x".into()))
                .map(MemberId::to_string)
                .map_err(|error| error.code())
        }
        let owned = Some(&owner);
        let passed = Ok(owner.to_string());
        assert_eq!(check(&Caller::Member(owner.clone()), owned), passed);
        assert_eq!(
            check(&Caller::Member(other.clone()), owned),
            Err("not_found")
        );
        assert_eq!(check(&key(Role::Admin), owned), passed);
        assert_eq!(check(&key(Role::Platform), owned), passed);
        assert_eq!(check(&key(Role::Merchant), owned), Err("forbidden"));
        for caller in [
            Caller::Member(owner.clone()),
            key(Role::Admin),
            key(Role::Platform),
        ] {
            assert_eq!(check(&caller, None), Err("not_found"));
        }
        assert_eq!(check(&key(Role::Merchant), None), Err("forbidden"));
    }

    #[test]
    fn idempotency_scopes_never_collide_between_members_and_keys() {
        let member = MemberId::generate();
        assert_eq!(Caller::Member(member.clone()).scope(), member.as_str());
        let key = Caller::ApiKey {
            id: "key_1".into(),
            role: Role::Admin,
            merchant_id: None,
        };
        assert_eq!(key.scope(), "key_1");
    }

    #[test]
    fn only_bound_merchant_keys_act_for_a_merchant() {
        let merchant = MerchantId::generate();
        let bound = Caller::ApiKey {
            id: "key_m".into(),
            role: Role::Merchant,
            merchant_id: Some(merchant.clone()),
        };
        assert_eq!(bound.merchant_id(), Some(merchant.as_str()));
        let unbound = Caller::ApiKey {
            id: "key_old".into(),
            role: Role::Merchant,
            merchant_id: None,
        };
        assert_eq!(unbound.merchant_id(), None);
        assert_eq!(Caller::Member(MemberId::generate()).merchant_id(), None);
    }

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
