//! Reconciliation over HTTP: run a day, read a day's result with its mismatches, list runs.
//!
//! Who may do what: admin and platform keys only (the results show the platform's money);
//! merchant keys and members get 403. Running a day only reads the bank, the PSP and our
//! records and replaces the day's result, so it is safe to repeat.

use axum::extract::State;
use axum::Json;
use reconciliation::{DayReport, Mismatch, Run};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::OperatorCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::time::format_micros;
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_day, list_runs))
        .routes(routes!(get_run))
}

/// A day to reconcile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    /// The KST business date, `YYYY-MM-DD`; a day in progress is reconciled up to the last whole
    /// second.
    #[schema(example = "2026-11-22")]
    pub date: String,
}

/// One source's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceCounts {
    /// Lines they reported.
    pub their_lines: i64,
    /// Lines we recorded.
    pub our_lines: i64,
    /// Match keys both sides have with equal amounts.
    pub matched: i64,
}

/// The safeguarding figures at the cutoff, decimal strings in won.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafeguardingView {
    /// `ok` (the members' part equals member money), `shortfall`, `excess`, or `unknown`
    /// (the bank showed no balance).
    pub status: String,
    /// Σ members' money accounts.
    pub member_money: String,
    /// What of the bank's balance belongs to members.
    pub members_part: Option<String>,
    /// The bank's closing balance of the master account.
    pub bank_balance: Option<String>,
    /// The ledger's master account.
    pub ledger_master: String,
    /// The platform's own unbooked money at the bank (`--safeguarding-own-funds`).
    pub own_funds: String,
    pub currency: String,
}

/// One mismatch.
#[derive(Debug, Serialize, ToSchema)]
pub struct MismatchView {
    /// `bank` or `psp`.
    pub source: String,
    /// `missing_ours`, `missing_theirs` or `amount_differs`.
    pub kind: String,
    /// The bank_tran_id (or `line:…` for a statement line without one), or
    /// `<order id>:approval|cancellation`.
    pub key: String,
    /// Our record behind it (`btr_…`, `bad_…`, `po_…`, `rfd_…`).
    pub our_reference: Option<String>,
    /// Won; for the bank signed, into the master account positive.
    pub our_amount: Option<String>,
    pub their_amount: Option<String>,
    pub at: Option<String>,
    pub detail: String,
}

/// A day's reconciliation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    #[schema(example = "2026-11-22")]
    pub date: String,
    /// The end of what was compared.
    pub cutoff_at: String,
    /// `matched` (no mismatch and safeguarding `ok`) or `mismatched`.
    pub status: String,
    pub bank: SourceCounts,
    pub psp: SourceCounts,
    /// How many mismatches the run found (at most 10,000 are listed).
    pub mismatch_count: i64,
    pub safeguarding: SafeguardingView,
    /// How often the day was run.
    pub runs: i64,
    pub first_run_at: String,
    pub run_at: String,
    /// The mismatches, bank first, each source in key order; only on a single day's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatches: Option<Vec<MismatchView>>,
}

fn won(minor: i64) -> String {
    money::format_minor(minor, money::Currency::KRW)
}

impl From<Mismatch> for MismatchView {
    fn from(m: Mismatch) -> MismatchView {
        MismatchView {
            source: m.source.as_str().to_owned(),
            kind: m.kind.as_str().to_owned(),
            key: m.key,
            our_reference: m.our_reference,
            our_amount: m.our_amount.map(won),
            their_amount: m.their_amount.map(won),
            at: m.at.map(format_micros),
            detail: m.detail,
        }
    }
}

impl From<Run> for ReconciliationView {
    fn from(run: Run) -> ReconciliationView {
        let figures = run.safeguarding;
        ReconciliationView {
            date: run.date.to_string(),
            cutoff_at: format_micros(run.cutoff_at),
            status: if run.matched { "matched" } else { "mismatched" }.to_owned(),
            bank: SourceCounts {
                their_lines: run.bank_lines,
                our_lines: run.our_bank_lines,
                matched: run.bank_matched,
            },
            psp: SourceCounts {
                their_lines: run.psp_lines,
                our_lines: run.our_psp_lines,
                matched: run.psp_matched,
            },
            mismatch_count: run.mismatches,
            safeguarding: SafeguardingView {
                status: figures.status.as_str().to_owned(),
                member_money: won(figures.member_money),
                members_part: figures.members_part.map(won),
                bank_balance: figures.bank_balance.map(won),
                ledger_master: won(figures.ledger_master),
                own_funds: won(figures.own_funds),
                currency: "KRW".to_owned(),
            },
            runs: run.runs,
            first_run_at: format_micros(run.first_run_at),
            run_at: format_micros(run.run_at),
            mismatches: None,
        }
    }
}

impl From<DayReport> for ReconciliationView {
    fn from(report: DayReport) -> ReconciliationView {
        ReconciliationView {
            mismatches: Some(
                report
                    .mismatches
                    .into_iter()
                    .map(MismatchView::from)
                    .collect(),
            ),
            ..ReconciliationView::from(report.run)
        }
    }
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationList {
    /// Newest day first, without their mismatches.
    pub data: Vec<ReconciliationView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging runs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationQuery {
    /// The `next_cursor` of the previous page (a date).
    pub before: Option<String>,
    /// Page size, 1 to 100 (default 30).
    pub limit: Option<i64>,
}

/// Reconciles a day: the bank's statement of the master account against our bank transfers
/// and micro-deposits, the PSP's report against our card approvals and cancellations, and the
/// safeguarding figures. The answer replaces the day's earlier result.
#[utoipa::path(
    post,
    path = "/v1/reconciliations",
    tag = "reconciliations",
    security(("bearer" = [])),
    request_body = ReconcileBody,
    responses(
        (status = 200, description = "The day's result with its mismatches", body = ReconciliationView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 409, description = "`reconciliation_day_not_begun`", body = ErrorBody),
        (status = 422, description = "`reconciliation_date_invalid`", body = ErrorBody),
        (status = 503, description = "`bank_unavailable` or `psp_unavailable`: a side could not be read; nothing was recorded", body = ErrorBody),
    )
)]
pub(crate) async fn run_day(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiJson(body): ApiJson<ReconcileBody>,
) -> Result<Json<ReconciliationView>, ApiError> {
    let date = reconciliation::parse_date(&body.date)?;
    let report = state.reconciliations.run_day(date).await?;
    Ok(Json(ReconciliationView::from(report)))
}

/// Recorded runs, newest day first.
#[utoipa::path(
    get,
    path = "/v1/reconciliations",
    tag = "reconciliations",
    security(("bearer" = [])),
    params(ReconciliationQuery),
    responses(
        (status = 200, description = "A page of runs", body = ReconciliationList),
        (status = 400, description = "Malformed query, limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
    )
)]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiQuery(query): ApiQuery<ReconciliationQuery>,
) -> Result<Json<ReconciliationList>, ApiError> {
    let limit = query.limit.unwrap_or(30);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidRequest(
            "limit must be between 1 and 100".into(),
        ));
    }
    let before = query
        .before
        .as_deref()
        .map(reconciliation::parse_date)
        .transpose()
        .map_err(|_| reconciliation::ReconciliationError::CursorInvalid)?;
    let runs = state.reconciliations.runs(before, limit + 1).await?;
    let more = runs.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let data: Vec<ReconciliationView> = runs
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(ReconciliationView::from)
        .collect();
    let next_cursor = more.then(|| data.last().map(|v| v.date.clone())).flatten();
    Ok(Json(ReconciliationList { data, next_cursor }))
}

/// A day's result with its mismatches.
#[utoipa::path(
    get,
    path = "/v1/reconciliations/{date}",
    tag = "reconciliations",
    security(("bearer" = [])),
    params(("date" = String, Path, description = "The KST business date, `YYYY-MM-DD`")),
    responses(
        (status = 200, description = "The day's result", body = ReconciliationView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`reconciliation_not_found`", body = ErrorBody),
        (status = 422, description = "`reconciliation_date_invalid`", body = ErrorBody),
    )
)]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(date): ApiPath<String>,
) -> Result<Json<ReconciliationView>, ApiError> {
    let date = reconciliation::parse_date(&date)?;
    Ok(Json(ReconciliationView::from(
        state.reconciliations.day(date).await?,
    )))
}
