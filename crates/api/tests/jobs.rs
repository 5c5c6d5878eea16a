//! Dead letters over HTTP: a job that keeps failing becomes a dead letter that an admin key
//! lists, inspects with every attempt, and retries (it then runs) or discards; other callers
//! are refused.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_error, send, spawn_app, Flaky, TestApp};
use jobs::{JobRunner, NewJob, Registry, RetryPolicy, RunnerConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn worker(app: &TestApp, handler: Arc<Flaky>) -> JobRunner {
    let mut registry = Registry::new();
    registry.register("test.flaky", handler, RetryPolicy::fixed(Duration::ZERO));
    JobRunner::new(
        app.db.db.clone(),
        app.ledger.clock(),
        registry,
        RunnerConfig::default(),
    )
}

async fn enqueue(app: &TestApp, n: u32) -> String {
    app.jobs
        .enqueue(&NewJob {
            kind: "test.flaky".into(),
            payload: json!({"remittance": n}),
            unique_key: None,
            run_at: 0,
            max_attempts: 2,
        })
        .await
        .unwrap()
        .unwrap()
        .to_string()
}

async fn admin(app: &TestApp, method: &str, path: &str) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    send(app.admin(method, path)).await
}

#[tokio::test]
async fn a_dead_letter_is_listed_inspected_and_retried_or_discarded_by_an_admin() {
    let app = spawn_app().await;
    let handler = Arc::new(Flaky {
        fixed: AtomicBool::new(false),
    });
    let runner = worker(&app, handler.clone());
    let first = enqueue(&app, 1).await;
    let second = enqueue(&app, 2).await;
    // Two attempts each, both failing: two dead letters.
    assert_eq!(runner.run_once().await.unwrap().retried, 2);
    assert_eq!(runner.run_once().await.unwrap().dead, 2);

    let (status, page) = admin(&app, "GET", "/v1/admin/jobs?state=dead&kind=test.flaky").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.as_str(), second.as_str()]);
    let (_, page) = admin(&app, "GET", "/v1/admin/jobs?state=dead&limit=1").await;
    assert_eq!(page["next_cursor"], first.as_str());

    let (status, job) = admin(&app, "GET", &format!("/v1/admin/jobs/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "dead");
    assert_eq!(job["payload"], json!({"remittance": 1}));
    assert_eq!(job["last_error"], "the partner bank is down");
    let outcomes: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["retry", "failed"]);

    // The cause is fixed: the retried job runs and is done; the other is given up.
    handler.fixed.store(true, Ordering::SeqCst);
    let (status, job) = admin(&app, "POST", &format!("/v1/admin/jobs/{first}/retry")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(
        (job["state"].as_str(), job["attempts"].as_i64()),
        (Some("queued"), Some(0))
    );
    let (status, job) = admin(&app, "POST", &format!("/v1/admin/jobs/{second}/discard")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "discarded");
    assert_eq!(runner.run_once().await.unwrap().done, 1);
    let (_, job) = admin(&app, "GET", &format!("/v1/admin/jobs/{first}")).await;
    assert_eq!(job["state"], "done");
    assert_eq!(job["history"].as_array().unwrap().len(), 3);

    // Only dead jobs are retried or discarded; unknown ids are 404.
    let (status, body) = admin(&app, "POST", &format!("/v1/admin/jobs/{first}/retry")).await;
    assert_error(status, &body, 409, "job_not_dead");
    let (status, body) = admin(&app, "POST", "/v1/admin/jobs/job_nothing/discard").await;
    assert_error(status, &body, 404, "job_not_found");
    let (status, body) = admin(&app, "GET", "/v1/admin/jobs?state=sleeping").await;
    assert_error(status, &body, 400, "invalid_request");
}

#[tokio::test]
async fn only_admin_keys_see_the_job_queue() {
    let app = spawn_app().await;
    let (_, platform_key) = app.api_key("platform").await;
    let (status, body) = send(app.bearer(&platform_key, Method::GET, "/v1/admin/jobs")).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = send(app.anonymous(Method::GET, "/v1/admin/jobs")).await;
    assert_error(status, &body, 401, "unauthenticated");
}
