//! The OpenAPI document. It is generated from the same router that serves requests (every
//! handler carries `#[utoipa::path]` and is registered with `routes!`), so a route cannot be
//! served without being documented; a test checks the converse by calling every documented
//! operation.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::Extension;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's static part: title, tags and the bearer security scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mypay",
        description = "Payments and prepaid-money platform. Amounts are decimal strings in major \
            units with an ISO 4217 currency; timestamps are RFC 3339 UTC with microseconds; every \
            error is {\"error\": {\"code\", \"message\", \"request_id\"}}. Money-moving POSTs accept \
            an Idempotency-Key header."
    ),
    modifiers(&BearerSecurity),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "ledger", description = "Double-entry ledger: accounts, transactions, holds (admin keys only)"),
        (name = "members", description = "Sign-up, the member's own profile, closing; members by id (own only, else 404)"),
        (name = "sessions", description = "Member login sessions: log in for a token, log out"),
        (name = "bank-accounts", description = "Linked bank accounts: charge accounts and the partner account, 1-won verification, debit consent with an ARS step (own only, else 404)"),
        (name = "wallets", description = "Prepaid money: balances, history with mtx_ numbers, charges, withdrawals, payouts, transfers between members"),
        (name = "items", description = "Item locks: which buyer holds a unique item while paying (admin and platform keys only)"),
        (name = "webhooks", description = "Merchants' webhook endpoints, their events with delivery states, and re-queueing dead deliveries (admin and platform keys for now)"),
        (name = "merchants", description = "Merchants: onboarding with a holder-checked settlement account, fee rates in basis points, merchant API keys (admin and platform keys; a merchant key reads its own merchant)"),
        (name = "payments", description = "Checkout payments: one order per seller, funded by points, wallet money (with automatic top-up) and a registered card; members' points"),
        (name = "settlements", description = "Settlement: daily runs paying merchants their payable less fees, run records, CSV reports (admin and platform keys; a merchant key lists its own settlements)"),
        (name = "remittances", description = "Business remittance: a business's money collected under its debit mandate, deposited into the ledger and paid to another business, each step retried, failures recorded, late requests alerted on"),
        (name = "reconciliations", description = "Reconciliation: each day's bank statement and PSP report against our records, every mismatch listed, and the safeguarding check (admin and platform keys)"),
        (name = "admin", description = "API key management (admin keys only)"),
        (name = "jobs", description = "Background jobs and their dead letters: list, inspect with every attempt, retry, discard (admin keys only)"),
    )
)]
pub(crate) struct ApiDoc;

/// The name handlers use in `security((…))`.
pub const BEARER_SCHEME: &str = "bearer";

/// Adds the `Authorization: Bearer <token>` scheme: a member's session token or an API key.
struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("mps_ session token or mpk_ API key".to_owned());
        components.add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// The rendered document, shared by the router with the handler below.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiJson(pub std::sync::Arc<str>);

/// Serves this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub(crate) async fn serve_openapi(
    Extension(document): Extension<OpenApiJson>,
) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0.to_string(),
    )
}

/// The header every money-moving request may carry (see `crate::idempotency`).
const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Completes the document after every route is in it, with the answers that middleware and
/// shared extractors give before a handler runs, so that no route can forget one: each
/// operation that takes an `Idempotency-Key` lists the idempotency middleware's refusals, and
/// each one with a `{currency}` in its path lists `currency_unknown`.
pub(crate) fn complete(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    let idempotency = [
        ("400", "`invalid_request`: a malformed Idempotency-Key"),
        (
            "409",
            "`idempotency_request_in_progress`: the first request with this key is still running",
        ),
        (
            "422",
            "`idempotency_key_reused`: this key was used for another request",
        ),
    ];
    let currency = [("422", "`currency_unknown`: not a supported ISO 4217 code")];
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let takes = |name: &str, place: ParameterIn| {
                operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|parameter| parameter.name == name && parameter.parameter_in == place)
            };
            let mut answers = Vec::new();
            if takes(IDEMPOTENCY_HEADER, ParameterIn::Header) {
                answers.extend(idempotency);
            }
            if takes("currency", ParameterIn::Path) {
                answers.extend(currency);
            }
            for (status, description) in answers {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}

/// A response with the error envelope as its body.
fn error_response(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::response::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}
