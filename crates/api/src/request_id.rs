//! Request ids: accepted from the caller when they are safe to log, generated otherwise, echoed
//! in the `x-request-id` response header and in every error body.
//!
//! A caller-supplied id lets a client or a proxy correlate its own logs with ours, but it ends up
//! in log lines and JSON, so only short ids of a plain alphabet are trusted; anything else is
//! replaced rather than escaped.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header that carries the request id both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied request id that is kept.
pub const REQUEST_ID_LEN_MAX: usize = 64;

/// What error bodies show when no request id is in scope, which only happens for code that
/// runs outside the middleware stack (unit tests).
const UNKNOWN_REQUEST_ID: &str = "unknown";

tokio::task_local! {
    /// The current request's id, so that an error rendered deep inside a handler can name it
    /// without every function passing it along.
    static CURRENT: String;
}

/// Whether a caller-supplied id is short and uses only characters that need no escaping in
/// logs, headers or JSON.
pub fn is_acceptable(value: &str) -> bool {
    let allowed =
        |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':');
    (1..=REQUEST_ID_LEN_MAX).contains(&value.len()) && value.bytes().all(allowed)
}

/// Generates `req_` followed by a ULID, which sorts by time and is unique without coordination.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUlidRequestId;

impl MakeRequestId for MakeUlidRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("req_{}", ulid::Ulid::new());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Drops a caller-supplied id that is not acceptable, so that the next layer generates one.
pub async fn discard_unsafe(mut request: Request, next: Next) -> Response {
    let unsafe_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .is_some_and(|value| !value.to_str().is_ok_and(is_acceptable));
    if unsafe_id {
        request.headers_mut().remove(&REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// Runs the rest of the request with its id in scope for [`current`].
pub async fn scope(request: Request, next: Next) -> Response {
    let id = header_value(&request);
    CURRENT.scope(id, next.run(request)).await
}

/// The id of the request being handled.
pub fn current() -> String {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| UNKNOWN_REQUEST_ID.to_owned())
}

/// The id the set-request-id layer put on the request.
pub fn header_value<B>(request: &axum::http::Request<B>) -> String {
    request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or(UNKNOWN_REQUEST_ID)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_accepted() {
        assert!(is_acceptable("abc-123_X.y:z"));
        assert!(is_acceptable(&"a".repeat(REQUEST_ID_LEN_MAX)));
        assert!(!is_acceptable(&"a".repeat(REQUEST_ID_LEN_MAX + 1)));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable("a b"));
        assert!(!is_acceptable("a\"b"));
        assert!(!is_acceptable("é"));
    }

    #[test]
    fn generated_ids_are_acceptable_ulids() {
        let request = axum::http::Request::new(());
        let id = MakeUlidRequestId.make_request_id(&request).expect("an id");
        let text = id.header_value().to_str().expect("ascii");
        assert!(text.starts_with("req_") && text.len() == 30, "{text}");
        assert!(is_acceptable(text));
    }
}
