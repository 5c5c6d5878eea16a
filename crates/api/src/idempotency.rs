//! HTTP idempotency for money-moving POST requests (DESIGN §4).
//!
//! A client that is unsure whether its request went through (a timeout, a dropped connection)
//! sends it again with the same `Idempotency-Key` header and gets the first response back
//! instead of moving money twice. The rules:
//!
//! - No header: the request runs normally.
//! - A key is scoped to the caller, so two callers can never see each other's responses.
//! - Same key, same method + path + body, first request finished: the stored status and body,
//!   with `Idempotency-Replayed: true`.
//! - Same key, different request: 422 `idempotency_key_reused`.
//! - Same key while the first request is still running: 409 `idempotency_request_in_progress`.
//! - A first request that ended in a server error (5xx), or whose response is marked
//!   `Cache-Control: no-store` (it shows an account number in full, or a refund still pending),
//!   leaves nothing behind, so the retry runs afresh. Client errors (4xx) are stored like successes.
//! - A request whose client went away or whose time ran out is not cancelled: it runs to its
//!   end in a task of its own and stores its answer, which the retry then gets. Releasing its
//!   claim instead would let the retry run beside it (a payout answered "limit exceeded" while
//!   the first one pays, or the key reused for another body unnoticed).
//!
//! Claiming is one `INSERT … ON CONFLICT DO NOTHING`: of several concurrent requests exactly
//! one inserts the row and runs, on both SQLite and PostgreSQL.
//!
//! Reuse: wrap a route in [`layer`] (it must run inside the router that puts [`AppState`] in
//! the request extensions). Handlers that create resources should take the optional
//! [`IdempotencyContext`] extension and use [`IdempotencyContext::derive_id`] when the client
//! gave no id of its own: the id then follows from the key, so even a request re-run after a
//! crash lands on the ledger's own id-based idempotency instead of creating a second resource.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use sha2::{Digest, Sha256};
use storage::Db;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::auth::Caller;
use crate::error::{ApiError, FinalBody};
use crate::extract::bytes_rejection;
use crate::AppState;

/// The request header that carries the client's key.
pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// The response header that marks a response as a replay of an earlier one.
pub const IDEMPOTENCY_REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotency-replayed");

/// The longest key accepted, in bytes.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

/// How long a claim may stay `running` before it is presumed abandoned (its process died) and
/// may be taken over. It is twice the request timeout, so a live request has normally finished
/// and stored its answer long before.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// The largest response body that is stored for replay; larger responses are not stored and
/// their claim is released.
pub const STORED_RESPONSE_BYTES_MAX: usize = 1 << 20;

/// How many times a claim is attempted when the row it conflicted with vanished in between
/// (released by a failing request) or was taken over by someone else.
const CLAIM_ATTEMPTS_MAX: usize = 3;

/// A validated `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks the key's length and alphabet.
    pub fn parse(value: &str) -> Result<IdempotencyKey, ApiError> {
        let valid = (1..=IDEMPOTENCY_KEY_LEN_MAX).contains(&value.len())
            && value.bytes().all(|byte| byte.is_ascii_graphic());
        if valid {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(invalid_key())
        }
    }

    /// Reads the key from request headers: `None` when absent, an error when malformed or sent
    /// more than once.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
        let mut values = headers.get_all(&IDEMPOTENCY_KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid_key());
        }
        let text = value.to_str().map_err(|_| invalid_key())?;
        IdempotencyKey::parse(text).map(Some)
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_key() -> ApiError {
    ApiError::InvalidRequest(format!(
        "Idempotency-Key must be sent once, as 1 to {IDEMPOTENCY_KEY_LEN_MAX} visible ASCII characters"
    ))
}

/// The claimed key of the request being handled, put in its extensions by [`layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyContext {
    scope: String,
    key: IdempotencyKey,
}

impl IdempotencyContext {
    /// Builds a context; `scope` says whose key it is (the API key id for API-key callers).
    pub fn new(scope: String, key: IdempotencyKey) -> IdempotencyContext {
        IdempotencyContext { scope, key }
    }

    /// The scope the key belongs to.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The client's key.
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// A resource id that follows from the scope and key alone: `prefix` plus 128 bits of their
    /// SHA-256, in hex. Re-running the same request after a crash therefore addresses the same
    /// resource, and the store's own idempotency answers with what the first run wrote.
    pub fn derive_id(&self, prefix: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"mypay.idempotency.v1\0");
        hasher.update(self.scope.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.key.as_str().as_bytes());
        let digest = hex::encode(hasher.finalize());
        format!("{prefix}{}", &digest[..32])
    }
}

/// A finished response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status of the first response.
    pub status: u16,
    /// Its JSON body, verbatim (including the first request's id in an error body).
    pub body: String,
}

impl StoredResponse {
    /// Rebuilds the response, marked as a replay.
    pub fn into_replay(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    IDEMPOTENCY_REPLAYED_HEADER,
                    HeaderValue::from_static("true"),
                ),
            ],
            self.body,
        )
            .into_response();
        // A stored error body already is the envelope; it must reach the client unchanged.
        response.extensions_mut().insert(FinalBody);
        response
    }
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key and must run, then [`complete`] or [`release`] it.
    Acquired,
    /// An earlier identical request finished with this response.
    Replay(StoredResponse),
    /// An earlier identical request is still running.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

/// The SHA-256 (hex) of what makes two requests "the same": method, path with query, body.
pub fn request_fingerprint(method: &Method, uri: &Uri, body: &[u8]) -> String {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// The stored state of a key: request_sha256, state, response_status, response_body, claimed_at.
type KeyRow = (String, String, Option<i64>, Option<String>, i64);

/// Claims a key for a request with the given fingerprint at time `now` (microseconds).
pub async fn claim(
    db: &Db,
    context: &IdempotencyContext,
    fingerprint: &str,
    now: i64,
) -> Result<Claim, sqlx::Error> {
    for _ in 0..CLAIM_ATTEMPTS_MAX {
        if insert_claim(db, context, fingerprint, now).await? {
            return Ok(Claim::Acquired);
        }
        let Some(row) = stored(db, context).await? else {
            // Released between our insert and our read: try to claim it again.
            continue;
        };
        match judge(row, fingerprint, now) {
            Judgement::Final(claim) => return Ok(claim),
            Judgement::Abandoned { claimed_at } => {
                if take_over(db, context, claimed_at, now).await? {
                    return Ok(Claim::Acquired);
                }
            }
        }
    }
    Ok(Claim::InProgress)
}

/// Stores the response of a request that owns its key.
pub async fn complete(
    db: &Db,
    context: &IdempotencyContext,
    response: &StoredResponse,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', response_status = $1, response_body = $2, \
         completed_at = $3 WHERE scope = $4 AND key = $5 AND state = 'running'",
    )
    .bind(i64::from(response.status))
    .bind(response.body.as_str())
    .bind(now)
    .bind(context.scope())
    .bind(context.key().as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Forgets a running claim, so that the client's retry runs afresh.
pub async fn release(db: &Db, context: &IdempotencyContext) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'running'")
        .bind(context.scope())
        .bind(context.key().as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// How long a completed key is kept by default: a client retrying a request retries within
/// minutes; a day covers a retry after an outage without keeping every key forever.
pub const RETENTION_DEFAULT: Duration = Duration::from_secs(24 * 60 * 60);
/// Keys forgotten per statement, so one sweep never holds a long write.
const FORGET_BATCH: i64 = 1000;

/// Forgets completed keys created before `before` (microseconds), at most `FORGET_BATCH` per
/// statement until none is left; returns how many. Running claims are never forgotten: their
/// request may still be under way. A key forgotten here no longer replays its response, but
/// the services that move money keep their own record of each key (a wallet operation, a
/// ledger transaction id), so a very late retry still finds the original movement.
pub async fn forget_completed(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let mut forgotten = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (scope, key) IN (\
             SELECT scope, key FROM idempotency_keys \
             WHERE state = 'done' AND created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before)
        .bind(FORGET_BATCH)
        .execute(db.pool())
        .await?
        .rows_affected();
        forgotten += deleted;
        if deleted < FORGET_BATCH as u64 {
            return Ok(forgotten);
        }
    }
}

/// Puts a route behind [`enforce`], for the methods it serves only: a method router's route
/// layer does not run for the others, which still reach the router's 405 whatever key they
/// carry. Every money-moving route is registered through it, as
/// `.routes(idempotency::guarded(routes!(handler)))`.
pub(crate) fn guarded(route: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, methods) = route;
    (
        schemas,
        paths,
        methods.route_layer(axum::middleware::from_fn(enforce)),
    )
}

/// The middleware (see [`guarded`]). It authenticates the caller (the key's scope) before
/// anything else, so an anonymous request never touches the table.
pub async fn enforce(
    Extension(state): Extension<AppState>,
    caller: Caller,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(key) = IdempotencyKey::from_headers(request.headers())? else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(bytes_rejection)?;
    let fingerprint = request_fingerprint(&parts.method, &parts.uri, &body);
    let context = IdempotencyContext::new(caller.scope().to_owned(), key);
    match claim(&state.db, &context, &fingerprint, state.ledger.now_micros()).await? {
        Claim::Acquired => {}
        Claim::Replay(stored) => return Ok(stored.into_replay()),
        Claim::InProgress => return Err(ApiError::IdempotencyInProgress),
        Claim::Reused => return Err(ApiError::IdempotencyKeyReused),
    }
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(context.clone());
    // The request and the storing of its answer run in a task of their own, so that a client
    // that goes away (or the request timeout) cannot stop them between the effect and the
    // record of its answer.
    let task = {
        let (state, context) = (state.clone(), context.clone());
        tokio::spawn(async move {
            let response = next.run(request).await;
            finish(&state, &context, response).await
        })
    };
    match task.await {
        Ok(response) => Ok(response),
        Err(error) => {
            release_logged(&state.db, &context).await;
            Err(ApiError::Internal(format!(
                "the request's task failed: {error}"
            )))
        }
    }
}

/// Stores a finished response, or releases the claim when the response must not be replayed.
async fn finish(state: &AppState, context: &IdempotencyContext, response: Response) -> Response {
    if response.status().is_server_error() || must_not_be_stored(&response) {
        release_logged(&state.db, context).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, STORED_RESPONSE_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            release_logged(&state.db, context).await;
            return ApiError::Internal(format!("response body unreadable: {error}"))
                .into_response();
        }
    };
    match String::from_utf8(bytes.to_vec()) {
        Ok(body) => {
            let stored = StoredResponse {
                status: parts.status.as_u16(),
                body,
            };
            if let Err(error) =
                complete(&state.db, context, &stored, state.ledger.now_micros()).await
            {
                // The effect happened and the client gets its answer; a retry sees the claim as
                // running until the lease runs out, then re-runs onto the same derived ids.
                tracing::error!(%error, scope = context.scope(), "storing an idempotent response failed");
            }
        }
        Err(_) => release_logged(&state.db, context).await,
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The idempotency context of a request to a route that requires an `Idempotency-Key` (every
/// route that moves money): without one the request is refused before it is read further.
pub(crate) fn required<T>(context: Option<T>) -> Result<T, ApiError> {
    context.ok_or_else(|| {
        ApiError::InvalidRequest("this route requires an Idempotency-Key header".into())
    })
}

/// The header that keeps a response out of caches and out of the key table: one that shows a
/// secret or an account number in full, or an answer that holds only until something ends (a
/// refund still pending).
pub(crate) fn no_store() -> (HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// A response marked `Cache-Control: no-store` (one that shows an account number in full, or a
/// refund still pending) is never written to the key table: its claim is released instead, so a
/// retry runs afresh and meets the resource's own uniqueness rules (a second link of the same
/// account is refused; the same refund key continues its refund).
fn must_not_be_stored(response: &Response) -> bool {
    response
        .headers()
        .get_all(axum::http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| {
            value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
        })
}

async fn release_logged(db: &Db, context: &IdempotencyContext) {
    if let Err(error) = release(db, context).await {
        tracing::error!(%error, scope = context.scope(), "releasing an idempotency claim failed");
    }
}

/// What a stored row means for a new request.
enum Judgement {
    Final(Claim),
    Abandoned { claimed_at: i64 },
}

fn judge(row: KeyRow, fingerprint: &str, now: i64) -> Judgement {
    let (request_sha256, state, status, body, claimed_at) = row;
    if request_sha256 != fingerprint {
        return Judgement::Final(Claim::Reused);
    }
    match (state.as_str(), status, body) {
        ("done", Some(status), Some(body)) => {
            let status = u16::try_from(status).unwrap_or(500);
            Judgement::Final(Claim::Replay(StoredResponse { status, body }))
        }
        _ if claimed_at < now.saturating_sub(lease_micros()) => Judgement::Abandoned { claimed_at },
        _ => Judgement::Final(Claim::InProgress),
    }
}

fn lease_micros() -> i64 {
    i64::try_from(CLAIM_LEASE.as_micros()).unwrap_or(i64::MAX)
}

async fn insert_claim(
    db: &Db,
    context: &IdempotencyContext,
    fingerprint: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_sha256, state, created_at, claimed_at) \
         VALUES ($1, $2, $3, 'running', $4, $4) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(context.scope())
    .bind(context.key().as_str())
    .bind(fingerprint)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

async fn stored(db: &Db, context: &IdempotencyContext) -> Result<Option<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_sha256, state, response_status, response_body, claimed_at \
         FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(context.scope())
    .bind(context.key().as_str())
    .fetch_optional(db.pool())
    .await
}

/// Takes over an abandoned claim; the `claimed_at` guard makes sure only one taker wins.
async fn take_over(
    db: &Db,
    context: &IdempotencyContext,
    claimed_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE idempotency_keys SET claimed_at = $1 \
         WHERE scope = $2 AND key = $3 AND state = 'running' AND claimed_at = $4",
    )
    .bind(now)
    .bind(context.scope())
    .bind(context.key().as_str())
    .bind(claimed_at)
    .execute(db.pool())
    .await?;
    Ok(updated.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(scope: &str, key: &str) -> IdempotencyContext {
        IdempotencyContext::new(
            scope.to_owned(),
            IdempotencyKey::parse(key).expect("valid key"),
        )
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::parse("order-17/attempt:1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(IDEMPOTENCY_KEY_LEN_MAX)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(IDEMPOTENCY_KEY_LEN_MAX + 1)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse("ключ").is_err());
    }

    #[test]
    fn a_repeated_header_is_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(IdempotencyKey::from_headers(&headers).ok(), Some(None));
        headers.append(&IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("a"));
        assert!(IdempotencyKey::from_headers(&headers).is_ok_and(|key| key.is_some()));
        headers.append(&IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("b"));
        assert!(IdempotencyKey::from_headers(&headers).is_err());
    }

    #[test]
    fn derived_ids_depend_on_scope_and_key_only() {
        let id = context("key_a", "k1").derive_id("ltx_");
        assert!(id.starts_with("ltx_") && id.len() == 36, "{id}");
        assert_eq!(id, context("key_a", "k1").derive_id("ltx_"));
        assert_ne!(id, context("key_b", "k1").derive_id("ltx_"));
        assert_ne!(id, context("key_a", "k2").derive_id("ltx_"));
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        let uri: Uri = "/v1/ledger/transactions".parse().expect("uri");
        let other: Uri = "/v1/ledger/holds".parse().expect("uri");
        let base = request_fingerprint(&Method::POST, &uri, b"{}");
        assert_eq!(base, request_fingerprint(&Method::POST, &uri, b"{}"));
        assert_ne!(base, request_fingerprint(&Method::PUT, &uri, b"{}"));
        assert_ne!(base, request_fingerprint(&Method::POST, &other, b"{}"));
        assert_ne!(base, request_fingerprint(&Method::POST, &uri, b"{ }"));
    }

    #[test]
    fn stored_rows_are_judged_by_fingerprint_state_and_age() {
        let now = 1_000_000_000;
        let running = |claimed_at| ("f".to_owned(), "running".to_owned(), None, None, claimed_at);
        let done = (
            "f".to_owned(),
            "done".to_owned(),
            Some(201),
            Some("{}".to_owned()),
            now,
        );
        let replay = Claim::Replay(StoredResponse {
            status: 201,
            body: "{}".into(),
        });
        assert!(matches!(judge(done.clone(), "f", now), Judgement::Final(c) if c == replay));
        assert!(matches!(
            judge(done, "g", now),
            Judgement::Final(Claim::Reused)
        ));
        assert!(matches!(
            judge(running(now), "f", now),
            Judgement::Final(Claim::InProgress)
        ));
        let stale = now - lease_micros() - 1;
        assert!(matches!(
            judge(running(stale), "f", now),
            Judgement::Abandoned { claimed_at } if claimed_at == stale
        ));
    }

    /// Store-level behaviour on the test backend (SQLite, or PostgreSQL when configured).
    #[tokio::test]
    async fn claims_are_exclusive_released_completed_and_taken_over() {
        let test_db = testkit::TestDb::new(4).await;
        let db = &test_db.db;
        let ctx = context("key_a", "k1");
        let now = 1_000_000_000_000;
        assert_eq!(claim(db, &ctx, "f1", now).await.ok(), Some(Claim::Acquired));
        assert_eq!(
            claim(db, &ctx, "f1", now).await.ok(),
            Some(Claim::InProgress)
        );
        assert_eq!(claim(db, &ctx, "f2", now).await.ok(), Some(Claim::Reused));
        assert_eq!(
            claim(db, &context("key_b", "k1"), "f1", now).await.ok(),
            Some(Claim::Acquired)
        );

        release(db, &ctx).await.expect("release");
        assert_eq!(claim(db, &ctx, "f1", now).await.ok(), Some(Claim::Acquired));
        let later = now + lease_micros() + 1;
        assert_eq!(
            claim(db, &ctx, "f1", later).await.ok(),
            Some(Claim::Acquired),
            "abandoned"
        );
        assert_eq!(
            claim(db, &ctx, "f1", later).await.ok(),
            Some(Claim::InProgress),
            "taken once"
        );

        let stored = StoredResponse {
            status: 201,
            body: "{\"id\":\"x\"}".into(),
        };
        complete(db, &ctx, &stored, later).await.expect("complete");
        assert_eq!(
            claim(db, &ctx, "f1", later).await.ok(),
            Some(Claim::Replay(stored.clone()))
        );
        release(db, &ctx)
            .await
            .expect("release is a no-op once done");
        let far = later + 10 * lease_micros();
        assert_eq!(
            claim(db, &ctx, "f1", far).await.ok(),
            Some(Claim::Replay(stored))
        );
    }

    /// A handler that fails with 5xx leaves no claim behind, so the retry runs again; one that
    /// succeeds is replayed without running.
    #[tokio::test]
    async fn server_errors_release_the_claim_and_successes_are_replayed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        use axum::routing::post;
        use tower::ServiceExt;

        let test_db = testkit::TestDb::new(4).await;
        let db = test_db.db.clone();
        let ledger = Arc::new(ledger::Ledger::start(
            db.clone(),
            Arc::new(ledger::SystemClock),
            ledger::WriterConfig::default(),
        ));
        crate::ensure_admin_key(&db, Some(&crate::Secret::new("mpk_unit_admin".into())))
            .await
            .expect("admin key");
        // No bank is reached by this test: the address is never connected to.
        let bank = banking::HttpBank::new(banking::HttpBankConfig::new(
            "http://127.0.0.1:9",
            banking::InstitutionCode::parse("MYPAYUNIT1").expect("institution code"),
            banking::BankAccount::new(
                banking::BankCode::parse("088").expect("bank code"),
                banking::AccountNumber::parse("100200300400").expect("account number"),
            ),
        ))
        .expect("bank client");
        // Nor is a PSP.
        let psp = psp::TossPayments::new(psp::TossConfig::new(
            "http://127.0.0.1:9",
            psp::SecretKey::new("test_sk_unit"),
        ))
        .expect("PSP client");
        let state = AppState::new(
            ledger,
            db,
            Arc::new(bank),
            Arc::new(psp),
            crate::metrics_handle(),
            crate::ApiConfig::default(),
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = {
            let calls = calls.clone();
            move || async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    (StatusCode::SERVICE_UNAVAILABLE, "{}")
                } else {
                    (StatusCode::CREATED, "{\"ok\":true}")
                }
            }
        };
        let app = axum::Router::new()
            .route("/money", post(failing))
            .route_layer(axum::middleware::from_fn(enforce))
            .layer(Extension(state));
        let request = || {
            Request::post("/money")
                .header("authorization", "Bearer mpk_unit_admin")
                .header("idempotency-key", "retry-me")
                .body(Body::from("{\"a\":1}"))
                .expect("request")
        };
        let first = app.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
        let second = app.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(second.status(), StatusCode::CREATED);
        assert!(second.headers().get(&IDEMPOTENCY_REPLAYED_HEADER).is_none());
        let third = app.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(third.status(), StatusCode::CREATED);
        assert_eq!(third.headers()[&IDEMPOTENCY_REPLAYED_HEADER], "true");
        let body = axum::body::to_bytes(third.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"{\"ok\":true}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the replay did not run the handler"
        );
    }
}
