//! Prometheus metrics: a request counter and a latency histogram per route, and the scrape
//! endpoint.
//!
//! `/metrics` needs no authentication so that a scraper needs no key, which means it must not
//! be exposed to the internet: route names and traffic volumes are operational information.
//! Operators should serve it on an internal network only, or block it at the proxy.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// The counter of finished requests, labelled `method`, `route` and `status`.
pub const REQUESTS_TOTAL: &str = "http_requests_total";

/// The latency histogram, labelled `method` and `route`.
pub const REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";

/// The `route` label of requests that matched no route, so that scanners probing random paths
/// cannot create one time series per path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Histogram buckets from 1 ms to 30 s (the request timeout).
const DURATION_BUCKETS_SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once per process and returns its handle; safe to call
/// from many tests. If some other recorder was installed first, the handle of a detached
/// recorder is returned and `/metrics` shows nothing, which is logged.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let builder = PrometheusBuilder::new();
    let builder = match builder.set_buckets_for_metric(
        Matcher::Full(REQUEST_DURATION_SECONDS.to_owned()),
        &DURATION_BUCKETS_SECONDS,
    ) {
        Ok(builder) => builder,
        Err(error) => {
            tracing::warn!(%error, "histogram buckets refused; falling back to summaries");
            PrometheusBuilder::new()
        }
    };
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(error) = ::metrics::set_global_recorder(recorder) {
        tracing::warn!(%error, "a metrics recorder is already installed; /metrics will be empty");
    }
    handle
}

/// Records every request under its route template (`/v1/ledger/accounts/{id}`), never the raw
/// path, so that ids do not multiply the time series.
pub async fn track(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || UNMATCHED_ROUTE.to_owned(),
        |path| path.as_str().to_owned(),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_str().to_owned();
    metrics::counter!(REQUESTS_TOTAL, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Standard methods by name; anything else is one label, so odd methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Serves the metrics in the Prometheus text format. Do not expose publicly.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format; keep it off the public internet", content_type = "text/plain", body = String))
)]
pub(crate) async fn serve_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
}
