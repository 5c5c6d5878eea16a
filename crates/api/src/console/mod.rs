//! The back-office console at `/admin`: server-rendered pages (askama templates in
//! `crates/api/templates/console/`, no script) for operators with a console login.
//!
//! Safety rules, each enforced here for every page:
//! - Only a console session opens it: the `mypay_console` cookie (HttpOnly, SameSite=Strict,
//!   Secure except on a loopback host), checked against `console_sessions`. Member tokens and
//!   API keys get the login page, never data.
//! - Every POST carries the session's CSRF token in its `csrf` field, and a browser's `Origin`
//!   header, when sent, must name this host; anything else is refused before it is read.
//! - Every action goes through the same services as the API, asks for confirmation first
//!   (a GET shows what will happen, a POST with `confirm=yes` does it) and is written to the
//!   audit log with who, what, when, and the state before and after.

mod batches;
mod pages;
mod view;

use askama::Template;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use backoffice::ConsoleSession;

use crate::error::FinalBody;
use crate::AppState;
use view::ErrorView;

/// The console session cookie.
pub(crate) const COOKIE: &str = "mypay_console";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(pages::dashboard))
        .route("/admin/login", get(pages::login_form).post(pages::log_in))
        .route("/admin/logout", post(pages::log_out))
        .route("/admin/search", get(pages::search))
        .route("/admin/payments/{id}", get(pages::payment))
        .route("/admin/members/{id}", get(pages::member))
        .route("/admin/jobs", get(pages::jobs))
        .route("/admin/jobs/{id}", get(pages::job))
        .route(
            "/admin/jobs/{id}/{action}",
            get(pages::confirm_job_action).post(pages::job_action),
        )
        .route("/admin/audit", get(pages::audit))
        .route("/admin/settlements", get(batches::settlements))
        .route("/admin/settlements/{date}", get(batches::settlement_run))
        .route(
            "/admin/settlements/{date}/report.csv",
            get(batches::settlement_report),
        )
        .route("/admin/remittances", get(batches::remittances))
        .route("/admin/remittances/{id}", get(batches::remittance))
        .route("/admin/reconciliations", get(batches::reconciliations))
        .route(
            "/admin/reconciliations/{date}",
            get(batches::reconciliation),
        )
}

/// An operator with a live console session.
pub(crate) struct Operator(pub ConsoleSession);

/// Why a console request was not served: a page for people, with the right status.
pub(crate) enum ConsoleError {
    /// No live session: go and log in.
    LoggedOut,
    /// A POST without the session's CSRF token, or from another origin.
    Forbidden,
    NotFound(String),
    /// The request could not be done as asked (e.g. retrying a job that is not dead).
    Refused(String),
    /// Something failed on our side; the detail is logged, not shown.
    Internal(String),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::LoggedOut => return Redirect::to("/admin/login").into_response(),
            ConsoleError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This form is stale or did not come from the console. Reload the page and try again."
                    .to_owned(),
            ),
            ConsoleError::NotFound(what) => (StatusCode::NOT_FOUND, "Not found", what),
            ConsoleError::Refused(why) => (StatusCode::CONFLICT, "Not done", why),
            ConsoleError::Internal(detail) => {
                tracing::error!(%detail, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The request failed on our side; it has been logged.".to_owned(),
                )
            }
        };
        let page = ErrorView {
            title: title.to_owned(),
            operator: None,
            csrf: String::new(),
            message,
        };
        (status, html(&page)).into_response()
    }
}

/// A rendered page, or an internal error when a template fails (which compiled templates do
/// not, short of a formatting error).
/// Marked final, so that the API's error envelope leaves the console's error pages alone.
pub(crate) fn html(page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                body,
            )
                .into_response();
            response.extensions_mut().insert(FinalBody);
            response
        }
        Err(error) => {
            tracing::error!(%error, "a console template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A failure on our side, logged by the error page.
pub(crate) fn internal(error: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Internal(error.to_string())
}

/// The console cookie's value, if the request carries one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Operator, ConsoleError> {
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(ConsoleError::LoggedOut);
        };
        match state.backoffice.session(&token).await {
            Ok(Some(session)) => Ok(Operator(session)),
            Ok(None) => Err(ConsoleError::LoggedOut),
            Err(error) => Err(ConsoleError::Internal(error.to_string())),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Operator>, ConsoleError> {
        match <Operator as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(operator) => Ok(Some(operator)),
            Err(ConsoleError::LoggedOut) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

impl Operator {
    /// Refuses a POST whose `csrf` field is not this session's token, or that a browser sent
    /// from another origin.
    pub(crate) fn check_post(&self, headers: &HeaderMap, csrf: &str) -> Result<(), ConsoleError> {
        if !same_origin(headers) || !constant_time_eq(csrf.as_bytes(), self.0.csrf_token.as_bytes())
        {
            return Err(ConsoleError::Forbidden);
        }
        Ok(())
    }
}

/// Whether a request's `Origin` (when a browser sent one) names the host it was sent to.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookie that carries a new session: HttpOnly, SameSite=Strict, scoped to `/admin`, for
/// the session's lifetime; Secure unless the console is reached on a loopback host (plain
/// HTTP in development), so that a deployment must serve it over TLS.
fn session_cookie(headers: &HeaderMap, token: &str, max_age_s: i64) -> HeaderValue {
    let secure = if loopback(headers) { "" } else { "; Secure" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("a session token is a valid header value")
}

fn loopback(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; mypay_console=mps_abc; b=2")]);
        assert_eq!(cookie_token(&h).as_deref(), Some("mps_abc"));
        assert_eq!(cookie_token(&headers(&[("cookie", "mypay=1")])), None);
    }

    #[test]
    fn only_the_own_origin_may_post() {
        assert!(same_origin(&headers(&[("host", "pay.example:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "pay.example:8080"),
            ("origin", "https://pay.example:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "pay.example:8080"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[("origin", "null")])));
    }

    #[test]
    fn cookies_are_secure_off_loopback() {
        let local = session_cookie(&headers(&[("host", "127.0.0.1:8080")]), "t", 60);
        assert!(!local.to_str().unwrap().contains("Secure"));
        let remote = session_cookie(&headers(&[("host", "pay.example")]), "t", 60);
        let remote = remote.to_str().unwrap();
        assert!(remote.contains("; Secure") && remote.contains("HttpOnly"));
        assert!(remote.contains("SameSite=Strict"));
    }
}
