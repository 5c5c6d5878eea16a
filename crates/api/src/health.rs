//! Liveness and readiness probes for orchestrators and load balancers.
//!
//! `/healthz` says the process is serving (restart it if not); `/readyz` says it can do useful
//! work, i.e. reach its database (send it no traffic if not). Neither needs authentication, and
//! neither reveals more than "ok" or "unavailable".

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::FinalBody;
use crate::AppState;

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers at all.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// One entry per dependency.
    pub checks: ReadinessChecks,
}

/// The state of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub database: &'static str,
    /// The item lock store (Redis with `--redis-url`, else the database): `ok` or
    /// `unavailable`. Checkouts naming unique items need it.
    #[schema(example = "ok")]
    pub item_locks: &'static str,
}

/// Answers while the process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is serving", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Answers 200 when the database accepts queries, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = Readiness),
        (status = 503, description = "A dependency is unavailable", body = Readiness),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let mut response = readiness(&state).await.into_response();
    response.extensions_mut().insert(FinalBody);
    response
}

async fn readiness(state: &AppState) -> (StatusCode, Json<Readiness>) {
    let database = match state.db.ping().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unavailable");
            "unavailable"
        }
    };
    let item_locks = match item_locks_answer(state).await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "readiness check: item lock store unavailable");
            "unavailable"
        }
    };
    let ready = database == "ok" && item_locks == "ok";
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Readiness {
            status: if ready { "ready" } else { "unavailable" },
            checks: ReadinessChecks {
                database,
                item_locks,
            },
        }),
    )
}

/// One round trip to the item lock store: who holds a probe key nobody locks.
async fn item_locks_answer(state: &AppState) -> Result<(), item_lock::ItemLockError> {
    let probe = item_lock::ItemKey::parse("mypay-readiness-probe")?;
    state.item_locks.holder(&probe).await.map(|_| ())
}
