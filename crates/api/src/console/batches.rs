//! The console's pages of the background batches: settlement runs with their CSV reports,
//! business remittances with their step records and failures, and reconciliation results.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use remittance::RemittanceError;
use settlement::{SettlementDate, SettlementError};

use super::pages::won;
use super::view::{Cell, Section, Table};
use super::{internal, ConsoleError, Operator};
use crate::time::format_micros;
use crate::AppState;

fn date_of(value: &str) -> Result<SettlementDate, ConsoleError> {
    SettlementDate::parse(value)
        .map_err(|_| ConsoleError::NotFound(format!("{value:?} is not a date (YYYY-MM-DD).")))
}

/// `GET /admin/settlements`: the latest runs.
pub(crate) async fn settlements(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Response, ConsoleError> {
    let runs = state.settlements.runs(None, 60).await.map_err(internal)?;
    let mut table = Table::new(&[
        "date",
        "state",
        "settlements",
        "paid",
        "paying",
        "failed",
        "carried over",
        "gross",
        "fee",
        "paid out",
    ]);
    for run in runs {
        let t = &run.totals;
        table.rows.push(vec![
            Cell::link(
                run.date.to_string(),
                format!("/admin/settlements/{}", run.date),
            ),
            Cell::text(run.state.as_str()),
            Cell::number(t.settlements.to_string()),
            Cell::number(t.paid.to_string()),
            Cell::number(t.paying.to_string()),
            Cell::number(t.failed.to_string()),
            Cell::number(t.carried_over.to_string()),
            Cell::number(won(t.gross)),
            Cell::number(won(t.fee)),
            Cell::number(won(t.net_paid)),
        ]);
    }
    Ok(operator.page(
        "Settlement runs",
        None,
        vec![Section::new("Latest 60 days").table(table)],
    ))
}

/// `GET /admin/settlements/{date}`: a run, its settlements, and its CSV report.
pub(crate) async fn settlement_run(
    State(state): State<AppState>,
    operator: Operator,
    Path(date): Path<String>,
) -> Result<Response, ConsoleError> {
    let date = date_of(&date)?;
    let run = match state.settlements.run(date).await {
        Ok(run) => run,
        Err(SettlementError::RunNotFound(_)) => {
            return Err(ConsoleError::NotFound(format!(
                "No settlement run of {date}."
            )))
        }
        Err(error) => return Err(internal(error)),
    };
    let summary = Section::new("Run")
        .field("Date", Cell::text(run.date.to_string()))
        .field("Cutoff", Cell::text(format_micros(run.cutoff_at)))
        .field("State", Cell::text(run.state.as_str()))
        .field(
            "Paid out",
            Cell::text(format!("{} KRW", won(run.totals.net_paid))),
        )
        .field(
            "Report",
            Cell::link(
                "Download CSV",
                format!("/admin/settlements/{date}/report.csv"),
            ),
        );
    let mut table = Table::new(&[
        "settlement",
        "merchant",
        "sales",
        "fee bps",
        "gross",
        "fee",
        "net",
        "state",
        "bank transfer",
    ]);
    let page = state
        .settlements
        .settlements_of_day(date, None, 500)
        .await
        .map_err(internal)?;
    for s in page.items {
        table.rows.push(vec![
            Cell::text(s.id.to_string()),
            Cell::text(format!("{} ({})", s.merchant_name, s.merchant_id)),
            Cell::number(won(s.sales)),
            Cell::number(s.fee_bps.to_string()),
            Cell::number(won(s.gross)),
            Cell::number(won(s.fee)),
            Cell::number(won(s.net)),
            Cell::text(s.state.as_str()),
            Cell::text(s.bank_transfer_id.clone().unwrap_or_default()),
        ]);
    }
    Ok(operator.page(
        &format!("Settlement run {date}"),
        None,
        vec![summary, Section::new("Settlements").table(table)],
    ))
}

/// `GET /admin/settlements/{date}/report.csv`: the run's report, as the API serves it.
pub(crate) async fn settlement_report(
    State(state): State<AppState>,
    _operator: Operator,
    Path(date): Path<String>,
) -> Result<Response, ConsoleError> {
    let date = date_of(&date)?;
    let csv = match state.settlements.report(date).await {
        Ok(csv) => csv,
        Err(SettlementError::RunNotFound(_)) => {
            return Err(ConsoleError::NotFound(format!(
                "No settlement run of {date}."
            )))
        }
        Err(error) => return Err(internal(error)),
    };
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"settlement-{date}.csv\""))
            .map_err(internal)?;
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response();
    response.extensions_mut().insert(crate::error::FinalBody);
    Ok(response)
}

/// `GET /admin/remittances`: the latest remittances.
pub(crate) async fn remittances(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Response, ConsoleError> {
    let page = state
        .remittances
        .list(None, None, None, 100)
        .await
        .map_err(internal)?;
    let mut table = Table::new(&[
        "remittance",
        "sender",
        "recipient",
        "amount",
        "state",
        "requested",
        "finished",
    ]);
    for r in page.items {
        table.rows.push(vec![
            Cell::link(r.id.to_string(), format!("/admin/remittances/{}", r.id)),
            Cell::text(r.sender_merchant_id.clone()),
            Cell::text(r.recipient_merchant_id.clone()),
            Cell::number(won(r.amount)),
            Cell::text(r.state.as_str()),
            Cell::text(format_micros(r.created_at)),
            Cell::text(r.finished_at.map(format_micros).unwrap_or_default()),
        ]);
    }
    Ok(operator.page(
        "Business remittances",
        None,
        vec![Section::new("Latest 100").table(table)],
    ))
}

/// `GET /admin/remittances/{id}`: a remittance with its step records and failure records.
pub(crate) async fn remittance(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let detail = match state.remittances.get(&id).await {
        Ok(detail) => detail,
        Err(RemittanceError::NotFound(_)) => {
            return Err(ConsoleError::NotFound(format!("No remittance {id}.")))
        }
        Err(error) => return Err(internal(error)),
    };
    let r = &detail.remittance;
    let summary = Section::new("Remittance")
        .field("Remittance", Cell::text(r.id.to_string()))
        .field("Sender", Cell::text(r.sender_merchant_id.clone()))
        .field("Recipient", Cell::text(r.recipient_merchant_id.clone()))
        .field("Amount", Cell::text(format!("{} KRW", won(r.amount))))
        .field("State", Cell::text(r.state.as_str()))
        .field(
            "Failure",
            Cell::text(r.failure_code.clone().unwrap_or_default()),
        )
        .field("Requested", Cell::text(format_micros(r.created_at)))
        .field(
            "Alerted",
            Cell::text(r.alerted_at.map(format_micros).unwrap_or_default()),
        );
    let mut records = Table::new(&["state reached", "reference", "at"]);
    for record in &detail.records {
        records.rows.push(vec![
            Cell::text(record.state.as_str()),
            Cell::text(record.reference.clone().unwrap_or_default()),
            Cell::text(format_micros(record.at)),
        ]);
    }
    let mut failures = Table::new(&[
        "step",
        "job",
        "failures",
        "last code",
        "last message",
        "batch retries",
        "resolved",
    ]);
    for f in &detail.failures {
        failures.rows.push(vec![
            Cell::text(f.step.as_str()),
            Cell::link(f.job_id.clone(), format!("/admin/jobs/{}", f.job_id)),
            Cell::number(f.failures.to_string()),
            Cell::text(f.last_code.clone()),
            Cell::text(f.last_message.clone()),
            Cell::number(f.batch_retries.to_string()),
            Cell::text(f.resolved_at.map(format_micros).unwrap_or_default()),
        ]);
    }
    Ok(operator.page(
        &format!("Remittance {}", r.id),
        None,
        vec![
            summary,
            Section::new("Step records").table(records),
            Section::new("Failure records").table(failures),
        ],
    ))
}

/// `GET /admin/reconciliations`: the latest reconciled days.
pub(crate) async fn reconciliations(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Response, ConsoleError> {
    let runs = state
        .reconciliations
        .runs(None, 60)
        .await
        .map_err(internal)?;
    let mut table = Table::new(&[
        "date",
        "status",
        "mismatches",
        "bank matched",
        "PSP matched",
        "safeguarding",
        "runs",
    ]);
    for run in runs {
        table.rows.push(vec![
            Cell::link(
                run.date.to_string(),
                format!("/admin/reconciliations/{}", run.date),
            ),
            Cell::text(if run.matched { "matched" } else { "mismatched" }),
            Cell::number(run.mismatches.to_string()),
            Cell::number(format!("{}/{}", run.bank_matched, run.bank_lines)),
            Cell::number(format!("{}/{}", run.psp_matched, run.psp_lines)),
            Cell::text(run.safeguarding.status.as_str()),
            Cell::number(run.runs.to_string()),
        ]);
    }
    Ok(operator.page(
        "Reconciliation",
        None,
        vec![Section::new("Latest 60 days").table(table)],
    ))
}

/// `GET /admin/reconciliations/{date}`: a day's figures, safeguarding and every mismatch.
pub(crate) async fn reconciliation(
    State(state): State<AppState>,
    operator: Operator,
    Path(date): Path<String>,
) -> Result<Response, ConsoleError> {
    let date = date_of(&date)?;
    let report = match state.reconciliations.day(date).await {
        Ok(report) => report,
        Err(reconciliation::ReconciliationError::NotFound(_)) => {
            return Err(ConsoleError::NotFound(format!(
                "No reconciliation of {date}."
            )))
        }
        Err(error) => return Err(internal(error)),
    };
    let run = &report.run;
    let figures = &run.safeguarding;
    let optional = |v: Option<i64>| v.map(won).unwrap_or_else(|| "-".to_owned());
    let summary = Section::new("Day")
        .field("Date", Cell::text(run.date.to_string()))
        .field(
            "Status",
            Cell::text(if run.matched { "matched" } else { "mismatched" }),
        )
        .field(
            "Bank",
            Cell::text(format!(
                "{} lines, {} ours, {} matched",
                run.bank_lines, run.our_bank_lines, run.bank_matched
            )),
        )
        .field(
            "PSP",
            Cell::text(format!(
                "{} lines, {} ours, {} matched",
                run.psp_lines, run.our_psp_lines, run.psp_matched
            )),
        )
        .field("Last run", Cell::text(format_micros(run.run_at)));
    let safeguarding = Section::new("Safeguarding")
        .field("Status", Cell::text(figures.status.as_str()))
        .field("Member money", Cell::text(won(figures.member_money)))
        .field(
            "Members' part of the master account",
            Cell::text(optional(figures.members_part)),
        )
        .field("Bank balance", Cell::text(optional(figures.bank_balance)))
        .field(
            "Ledger master account",
            Cell::text(won(figures.ledger_master)),
        )
        .field("Platform's own funds", Cell::text(won(figures.own_funds)));
    let mut table = Table::new(&[
        "source",
        "kind",
        "key",
        "ours",
        "theirs",
        "our record",
        "detail",
    ]);
    for m in &report.mismatches {
        table.rows.push(vec![
            Cell::text(m.source.as_str()),
            Cell::text(m.kind.as_str()),
            Cell::text(m.key.clone()),
            Cell::number(optional(m.our_amount)),
            Cell::number(optional(m.their_amount)),
            Cell::text(m.our_reference.clone().unwrap_or_default()),
            Cell::text(m.detail.clone()),
        ]);
    }
    Ok(operator.page(
        &format!("Reconciliation {date}"),
        None,
        vec![
            summary,
            safeguarding,
            Section::new("Mismatches").table(table),
        ],
    ))
}
