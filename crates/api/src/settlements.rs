//! Settlement over HTTP: run a day, read a run, download its CSV report, and list a
//! merchant's settlements.
//!
//! Who may do what: admin and platform keys run days and read everything; a merchant key
//! lists its own merchant's settlements (another merchant's id answers 404
//! `merchant_not_found`, as a missing one does); members get 403. Running a day is idempotent
//! by itself (a second run of a day changes nothing) and honours `Idempotency-Key` as well.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use merchants::MerchantId;
use serde::{Deserialize, Serialize};
use settlement::{Run, Settlement, SettlementDate};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, OperatorCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::page_limit;
use crate::time::format_micros;
use crate::webhooks::authorize_merchant;
use crate::{idempotency, AppState};

/// The routes of this module; running a day behind the idempotency layer.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let idempotent = OpenApiRouter::new().routes(idempotency::guarded(routes!(run_day)));
    OpenApiRouter::new()
        .routes(routes!(get_run))
        .routes(routes!(get_report))
        .routes(routes!(list_merchant_settlements))
        .merge(idempotent)
}

/// A day to settle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The KST business date, `YYYY-MM-DD`; its cutoff (the next day's 00:00 KST) must have
    /// passed.
    #[schema(example = "2026-11-22")]
    pub date: String,
}

/// A settlement run: one date, its counts and sums.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    #[schema(example = "2026-11-22")]
    pub date: String,
    /// The cutoff: what payable accounts held before it is settled.
    pub cutoff_at: String,
    /// `running` (not every merchant calculated yet), `paying` (some payouts without a known
    /// outcome) or `completed`.
    pub state: String,
    pub settlements: i64,
    pub paid: i64,
    pub paying: i64,
    pub failed: i64,
    pub carried_over: i64,
    /// Sums over booked settlements (paid, paying, failed), decimal strings in won.
    pub gross: String,
    pub fee: String,
    /// The net of paid settlements.
    pub net_paid: String,
    pub currency: String,
    pub started_at: String,
    pub completed_at: Option<String>,
    /// Where the CSV report is served.
    pub report_url: String,
}

impl From<Run> for RunView {
    fn from(run: Run) -> RunView {
        let currency = settlement::SETTLEMENT_CURRENCY;
        let amount = |minor: i64| money::format_minor(minor, currency);
        RunView {
            date: run.date.to_string(),
            cutoff_at: format_micros(run.cutoff_at),
            state: run.state.as_str().to_owned(),
            settlements: run.totals.settlements,
            paid: run.totals.paid,
            paying: run.totals.paying,
            failed: run.totals.failed,
            carried_over: run.totals.carried_over,
            gross: amount(run.totals.gross),
            fee: amount(run.totals.fee),
            net_paid: amount(run.totals.net_paid),
            currency: currency.code().to_owned(),
            started_at: format_micros(run.started_at),
            completed_at: run.completed_at.map(format_micros),
            report_url: format!("/v1/settlements/runs/{}/report.csv", run.date),
        }
    }
}

/// One merchant's settlement of one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementView {
    /// `stl_…`; also the id of its ledger transaction.
    pub id: String,
    pub merchant_id: String,
    pub date: String,
    /// `calculated`, `paying`, `paid`, `failed` (the payout was refused; the net went back to
    /// payable) or `carried_over` (net was zero or negative; the next settlement takes it).
    pub state: String,
    /// Sales credited to payable since the last fee-charging settlement: the fee base.
    pub sales: String,
    pub fee_bps: u32,
    /// Taken from payable: gross = fee + net.
    pub gross: String,
    pub fee: String,
    pub net: String,
    pub currency: String,
    pub bank_transfer_id: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Settlement> for SettlementView {
    fn from(s: Settlement) -> SettlementView {
        let amount = |minor: i64| money::format_minor(minor, s.currency);
        SettlementView {
            id: s.id.as_str().to_owned(),
            merchant_id: s.merchant_id.clone(),
            date: s.date.to_string(),
            state: s.state.as_str().to_owned(),
            sales: amount(s.sales),
            fee_bps: s.fee_bps,
            gross: amount(s.gross),
            fee: amount(s.fee),
            net: amount(s.net),
            currency: s.currency.code().to_owned(),
            bank_transfer_id: s.bank_transfer_id,
            failure_code: s.failure_code,
            created_at: format_micros(s.created_at),
            updated_at: format_micros(s.updated_at),
        }
    }
}

/// A page of a merchant's settlements.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementList {
    /// Newest date first.
    pub data: Vec<SettlementView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging a merchant's settlements.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SettlementQuery {
    /// The `next_cursor` of the previous page (a date).
    pub before: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// Settles every merchant for a day: payable at the cutoff less fees, paid to each
/// merchant's settlement account. Running a day again changes nothing; it only finishes
/// payouts an earlier run left without a known outcome.
#[utoipa::path(
    post,
    path = "/v1/settlements/runs",
    tag = "settlements",
    security(("bearer" = [])),
    request_body = RunBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the run is idempotent by date in any case")),
    responses(
        (status = 200, description = "The run after this pass", body = RunView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 409, description = "`settlement_day_not_over` (the cutoff has not passed), `settlement_day_superseded` (a later day was settled), `settlement_run_in_progress`, `settlement_lease_lost` or `idempotency_request_in_progress`", body = ErrorBody),
        (status = 422, description = "`settlement_date_invalid` or `idempotency_key_reused`", body = ErrorBody),
    )
)]
pub(crate) async fn run_day(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<Json<RunView>, ApiError> {
    let date = SettlementDate::parse(&body.date)?;
    let report = state.settlements.run_day(date, &|_| {}).await?;
    Ok(Json(RunView::from(report.run)))
}

/// A run by date.
#[utoipa::path(
    get,
    path = "/v1/settlements/runs/{date}",
    tag = "settlements",
    security(("bearer" = [])),
    params(("date" = String, Path, description = "The settlement date, `YYYY-MM-DD`")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`settlement_run_not_found`", body = ErrorBody),
        (status = 422, description = "`settlement_date_invalid`", body = ErrorBody),
    )
)]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(date): ApiPath<String>,
) -> Result<Json<RunView>, ApiError> {
    let date = SettlementDate::parse(&date)?;
    Ok(Json(RunView::from(state.settlements.run(date).await?)))
}

/// A run's report: one CSV line per settlement (merchant id order) with the settlement id,
/// merchant id and name, currency, sales, fee rate, gross, fee, net, status and bank transfer
/// id. The same bytes as the file the run wrote to the report directory.
#[utoipa::path(
    get,
    path = "/v1/settlements/runs/{date}/report.csv",
    tag = "settlements",
    security(("bearer" = [])),
    params(("date" = String, Path, description = "The settlement date, `YYYY-MM-DD`")),
    responses(
        (status = 200, description = "The CSV report", content_type = "text/csv", body = String),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`settlement_run_not_found`", body = ErrorBody),
        (status = 422, description = "`settlement_date_invalid`", body = ErrorBody),
    )
)]
pub(crate) async fn get_report(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(date): ApiPath<String>,
) -> Result<Response, ApiError> {
    let date = SettlementDate::parse(&date)?;
    let csv = state.settlements.report(date).await?;
    let disposition: HeaderValue =
        HeaderValue::from_str(&format!("attachment; filename=\"settlement-{date}.csv\""))
            .map_err(|_| ApiError::Internal("report file name".into()))?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        ),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, csv).into_response())
}

/// A merchant's settlements, newest date first.
#[utoipa::path(
    get,
    path = "/v1/merchants/{merchant_id}/settlements",
    tag = "settlements",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)"), SettlementQuery),
    responses(
        (status = 200, description = "A page of settlements", body = SettlementList),
        (status = 400, description = "Malformed query or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`: no such merchant, or another merchant's (for a merchant key)", body = ErrorBody),
    )
)]
pub(crate) async fn list_merchant_settlements(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(merchant_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<SettlementQuery>,
) -> Result<Json<SettlementList>, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let limit = page_limit(query.limit)?;
    let id = MerchantId::parse(&merchant_id)
        .ok_or_else(|| ApiError::Internal("an authorized merchant id does not parse".into()))?;
    let page = state
        .settlements
        .settlements_of_merchant(&id, query.before.as_deref(), limit)
        .await?;
    Ok(Json(SettlementList {
        data: page.items.into_iter().map(SettlementView::from).collect(),
        next_cursor: page.next,
    }))
}
