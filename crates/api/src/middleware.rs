//! The layers every request passes through, outermost first:
//!
//! 1. request id: an unsafe incoming `x-request-id` is dropped, a missing one generated
//!    (`req_` + ULID), and the id is copied to the response;
//! 2. a tracing span per request carrying the id, method and path;
//! 3. the id in task-local scope, for error bodies rendered anywhere below;
//! 4. metrics per route template;
//! 5. the error envelope: any error response produced without it (axum's 405, a timeout, a
//!    panic) gets `{"error": {code, message, request_id}}`, keeping its status and headers;
//! 6. panics become a 500 `internal_error` instead of a dropped connection;
//! 7. a request timeout;
//! 8. the body size limit.

use std::any::Any;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::{ApiError, FinalBody};
use crate::metrics::track;
use crate::request_id::{self, MakeUlidRequestId, REQUEST_ID_HEADER};

/// How long a request may take before it is answered with 408 `request_timeout`. Ledger
/// writes are acknowledged in milliseconds; this bounds the damage of a stuck dependency.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wraps a router in the layers above. `body_limit_bytes` must already be bounded.
pub fn apply(router: Router, body_limit_bytes: usize) -> Router {
    let layers = ServiceBuilder::new()
        .layer(from_fn(request_id::discard_unsafe))
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeUlidRequestId))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(from_fn(request_id::scope))
        .layer(from_fn(track))
        .layer(from_fn(envelope_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(DefaultBodyLimit::max(body_limit_bytes));
    router.layer(layers)
}

/// The span every log line of a request is recorded in.
fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!(
        "http_request",
        request_id = %request_id::header_value(request),
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Gives every error response the JSON envelope. Responses built from [`ApiError`] (and other
/// final bodies) pass untouched; others are rebuilt from their status, keeping headers such as
/// `Allow` on a 405.
async fn envelope_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || response.extensions().get::<FinalBody>().is_some() {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let (envelope_parts, body) = ApiError::from_status(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(envelope_parts.headers);
    parts.extensions.extend(envelope_parts.extensions);
    parts.status = envelope_parts.status;
    Response::from_parts(parts, body)
}

/// Turns a panic into a 500 with the envelope; the panic message is logged, never shown.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".to_owned());
    ApiError::Internal(format!("panic: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn call(
        router: Router,
        request: Request,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, json)
    }

    fn panicking_router() -> Router {
        async fn boom() -> &'static str {
            panic!("secret detail")
        }
        apply(Router::new().route("/boom", get(boom)), 1024)
    }

    #[tokio::test]
    async fn a_panic_becomes_an_internal_error_envelope_without_detail() {
        let request = Request::builder()
            .uri("/boom")
            .header("x-request-id", "panic-test-1")
            .body(Body::empty())
            .expect("request");
        let (status, headers, json) = call(panicking_router(), request).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json["error"]["code"], "internal_error");
        assert_eq!(json["error"]["request_id"], "panic-test-1");
        assert_eq!(headers["x-request-id"], "panic-test-1");
        assert!(!json.to_string().contains("secret detail"));
    }

    #[tokio::test]
    async fn foreign_error_responses_get_the_envelope_and_keep_their_headers() {
        let request = Request::builder()
            .method("DELETE")
            .uri("/boom")
            .body(Body::empty())
            .expect("request");
        let (status, headers, json) = call(panicking_router(), request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(json["error"]["code"], "method_not_allowed");
        assert!(headers.contains_key(header::ALLOW));
        let generated = headers["x-request-id"].to_str().expect("ascii");
        assert!(generated.starts_with("req_"));
        assert_eq!(json["error"]["request_id"], generated);
    }

    #[tokio::test]
    async fn unsafe_request_ids_are_replaced() {
        let request = Request::builder()
            .method("DELETE")
            .uri("/boom")
            .header("x-request-id", "has spaces and \"quotes\"")
            .body(Body::empty())
            .expect("request");
        let (_, headers, _) = call(panicking_router(), request).await;
        assert!(headers["x-request-id"]
            .to_str()
            .expect("ascii")
            .starts_with("req_"));
    }
}
