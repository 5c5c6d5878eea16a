//! The console's pages. Each reads through the same services as the API; the one action
//! (retrying or discarding a dead job) asks for confirmation and is audited.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use backoffice::reports::{self, HitKind};
use backoffice::{BackofficeError, CONSOLE_SESSION_TTL_S};
use jobs::JobState;
use money::{format_minor, Currency};
use serde::Deserialize;

use super::view::{bar_chart, Cell, ConfirmView, LoginView, PageView, Section, Table};
use super::{
    cookie_token, html, internal, same_origin, session_cookie, ConsoleError, Operator, COOKIE,
};
use crate::time::format_micros;
use crate::AppState;

pub(crate) fn won(minor: i64) -> String {
    format_minor(minor, Currency::KRW)
}

impl Operator {
    /// A page for this operator.
    pub(crate) fn page(
        &self,
        title: &str,
        flash: Option<String>,
        sections: Vec<Section>,
    ) -> Response {
        html(&PageView {
            title: title.to_owned(),
            operator: Some(self.0.operator.email.clone()),
            csrf: self.0.csrf_token.clone(),
            flash,
            sections,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    email: String,
    /// Prints `***`, so a logged form shows no password.
    password: crate::auth::Secret,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    csrf: String,
    confirm: Option<String>,
}

fn login_page(error: Option<String>) -> Response {
    html(&LoginView {
        title: "Log in".into(),
        operator: None,
        csrf: String::new(),
        error,
    })
}

/// `GET /admin/login`: the form, or the dashboard for an operator already logged in.
pub(crate) async fn login_form(operator: Option<Operator>) -> Response {
    match operator {
        Some(_) => Redirect::to("/admin").into_response(),
        None => login_page(None),
    }
}

/// `POST /admin/login`: a session cookie and the dashboard, or the form again with one
/// message for every kind of wrong credentials.
pub(crate) async fn log_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return ConsoleError::Forbidden.into_response();
    }
    match state
        .backoffice
        .log_in(&form.email, form.password.expose().to_owned())
        .await
    {
        Ok((token, _)) => (
            StatusCode::SEE_OTHER,
            [
                (
                    header::LOCATION,
                    "/admin".parse().expect("a valid location"),
                ),
                (
                    header::SET_COOKIE,
                    session_cookie(&headers, token.expose(), CONSOLE_SESSION_TTL_S),
                ),
            ],
        )
            .into_response(),
        Err(BackofficeError::InvalidCredentials) => {
            let mut page = login_page(Some("The email or password is not right.".into()));
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            page
        }
        Err(error) => internal(error).into_response(),
    }
}

/// `POST /admin/logout`: ends the session and clears the cookie.
pub(crate) async fn log_out(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    operator.check_post(&headers, &form.csrf)?;
    if let Some(token) = cookie_token(&headers) {
        state.backoffice.log_out(&token).await.map_err(internal)?;
    }
    state
        .backoffice
        .audit(
            &operator.0.operator,
            "console.log_out",
            operator.0.operator.id.as_str(),
            None,
            None,
        )
        .await
        .map_err(internal)?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/admin/login".to_owned()),
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
            ),
        ],
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DashboardQuery {
    check: Option<String>,
}

/// `GET /admin`: today's volumes, totals per account type, status (dead letters, the last
/// reconciliation and safeguarding, and the ledger's invariants on request), a daily chart.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, ConsoleError> {
    let now = state.ledger.now_micros();
    let figures = reports::dashboard(&state.db, now).await.map_err(internal)?;
    let mut today = Section::new("Today (KST)").field(
        "Payments",
        Cell::text(format!(
            "{} KRW in {}",
            won(figures.payments_today.won),
            count_of(figures.payments_today.count, "order")
        )),
    );
    for (kind, volume) in &figures.wallet_today {
        today = today.field(
            &format!("Wallet {kind}s"),
            Cell::text(format!(
                "{} KRW in {}",
                won(volume.won),
                count_of(volume.count, "movement")
            )),
        );
    }
    let mut totals = Table::new(&["account type", "currency", "accounts", "balance"]);
    for total in &figures.totals {
        let currency = Currency::parse(&total.currency).ok();
        totals.rows.push(vec![
            Cell::text(total.kind.clone()),
            Cell::text(total.currency.clone()),
            Cell::number(total.accounts.to_string()),
            Cell::number(match currency {
                Some(currency) => format_minor(total.balance, currency),
                None => total.balance.to_string(),
            }),
        ]);
    }
    let mut status = Section::new("Status").field(
        "Dead letters",
        Cell::link(figures.dead_jobs.to_string(), "/admin/jobs?state=dead"),
    );
    status = match &figures.reconciliation {
        Some((date, result, safeguarding)) => status
            .field(
                "Last reconciliation",
                Cell::text(format!("{date}: {result}")),
            )
            .field("Safeguarding", Cell::text(safeguarding.clone())),
        None => status.field("Last reconciliation", Cell::text("none yet")),
    };
    status = if query.check.is_some() {
        let report = ledger::check(&state.db).await.map_err(internal)?;
        let verdict = if report.is_ok() {
            "all hold".to_owned()
        } else {
            format!("BROKEN: {report}")
        };
        status.field("Ledger invariants", Cell::text(verdict))
    } else {
        status.field(
            "Ledger invariants",
            Cell::link("check now", "/admin?check=1"),
        )
    };
    let bars: Vec<(String, i64)> = figures
        .days
        .iter()
        .map(|day| {
            let date = crate::time::format_micros(day.day + 9 * 3_600_000_000);
            (date[5..10].to_owned(), day.payments.won)
        })
        .collect();
    let mut chart = Section::new("Payment volume, last 14 days (KRW)");
    chart.chart = Some(bar_chart("Daily payment volume", &bars));
    Ok(operator.page(
        "Dashboard",
        None,
        vec![
            today,
            Section::new("Totals per account type").table(totals),
            status,
            chart,
        ],
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
}

/// "1 order", "2 orders".
fn count_of(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn hit_href(kind: HitKind, id: &str) -> String {
    match kind {
        HitKind::Payment => format!("/admin/payments/{id}"),
        HitKind::Member | HitKind::MoneyTransaction => format!("/admin/members/{id}"),
        HitKind::Remittance => format!("/admin/remittances/{id}"),
        HitKind::Merchant => format!("/v1/merchants/{id}"),
    }
}

/// `GET /admin/search?q=`: what a number names; straight to it when it names one thing.
pub(crate) async fn search(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ConsoleError> {
    let q = query.q.unwrap_or_default();
    let hits = reports::search(&state.db, &q).await.map_err(internal)?;
    if let [hit] = hits.as_slice() {
        return Ok(Redirect::to(&hit_href(hit.kind, &hit.id)).into_response());
    }
    let mut table = Table::new(&["found", "matched by"]);
    for hit in &hits {
        table.rows.push(vec![
            Cell::link(hit.id.clone(), hit_href(hit.kind, &hit.id)),
            Cell::text(hit.matched.clone()),
        ]);
    }
    Ok(operator.page(
        &format!("Search: {}", q.chars().take(64).collect::<String>()),
        None,
        vec![Section::new("").table(table)],
    ))
}

/// The postings of a ledger transaction as table rows, or nothing when it was never booked.
async fn postings(
    state: &AppState,
    transaction: &str,
    rows: &mut Vec<Vec<Cell>>,
) -> Result<(), ConsoleError> {
    let tx = match state.ledger.transaction(transaction).await {
        Ok(tx) => tx,
        Err(ledger::LedgerError::TransactionNotFound(_)) => return Ok(()),
        Err(error) => return Err(internal(error)),
    };
    for posting in tx.postings {
        let account = state
            .ledger
            .account(posting.account_id.as_str())
            .await
            .map_err(internal)?;
        let minor = posting.signed_minor();
        let amount = format_minor(minor.abs(), posting.amount.currency());
        let (debit, credit) = if minor > 0 {
            (amount, String::new())
        } else {
            (String::new(), amount)
        };
        rows.push(vec![
            Cell::text(transaction.to_owned()),
            Cell::text(account.code.as_str().to_owned()),
            Cell::number(debit),
            Cell::number(credit),
            Cell::text(format_micros(tx.posted_at)),
        ]);
    }
    Ok(())
}

/// `GET /admin/payments/{id}`: a payment, its orders (funding, card, escrow, refunds) and the
/// ledger postings behind them.
pub(crate) async fn payment(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let view = match state.payments.get(&id).await {
        Ok(view) => view,
        Err(payments::PaymentError::PaymentNotFound(_)) => {
            return Err(ConsoleError::NotFound(format!("No payment {id}.")))
        }
        Err(error) => return Err(internal(error)),
    };
    let p = &view.payment;
    let summary = Section::new("Payment")
        .field("Payment", Cell::text(p.id.to_string()))
        .field("Checkout", Cell::text(p.checkout_id.clone()))
        .field(
            "Buyer",
            Cell::link(p.buyer.to_string(), format!("/admin/members/{}", p.buyer)),
        )
        .field(
            "Amount",
            Cell::text(format!(
                "{} {}",
                format_minor(p.amount, p.currency),
                p.currency.code()
            )),
        )
        .field(
            "Funding",
            Cell::text(format!(
                "points {}, money {}, card {}",
                p.funding.points, p.funding.money, p.funding.card
            )),
        )
        .field("Status", Cell::text(p.status.as_str()))
        .field("Created", Cell::text(format_micros(p.created_at)));
    let mut orders = Table::new(&[
        "order",
        "merchant order no.",
        "seller",
        "amount",
        "status",
        "points / money / card",
        "card",
        "payment key",
        "escrow",
        "refunded",
    ]);
    let mut ledger_rows = Vec::new();
    let mut refunds = Table::new(&[
        "refund",
        "order",
        "amount",
        "status",
        "card",
        "money transaction no.",
    ]);
    for order in &view.orders {
        orders.rows.push(vec![
            Cell::text(order.id.to_string()),
            Cell::text(order.payment_order_id.clone()),
            Cell::text(order.seller.clone()),
            Cell::number(format_minor(order.amount, order.currency)),
            Cell::text(order.status.as_str()),
            Cell::text(format!(
                "{} / {} / {}",
                order.split.points, order.split.money, order.split.card
            )),
            Cell::text(order.card_state.as_str()),
            Cell::text(order.psp_payment_key.clone().unwrap_or_default()),
            Cell::text(match (order.escrow, &order.escrow_state) {
                (false, _) => "no".to_owned(),
                (true, Some(state)) => state.as_str().to_owned(),
                (true, None) => "pending".to_owned(),
            }),
            Cell::number(format_minor(
                order.refunded.points + order.refunded.money + order.refunded.card,
                order.currency,
            )),
        ]);
        postings(&state, order.id.as_str(), &mut ledger_rows).await?;
        let page = state
            .payments
            .refunds_of(&order.id, None, 100)
            .await
            .map_err(internal)?;
        for refund in page.items {
            refunds.rows.push(vec![
                Cell::text(refund.id.to_string()),
                Cell::text(order.id.to_string()),
                Cell::number(format_minor(refund.amount, order.currency)),
                Cell::text(refund.status.as_str()),
                Cell::text(refund.card_state.as_str()),
                Cell::text(refund.money_tx_id.to_string()),
            ]);
            postings(&state, refund.money_tx_id.as_str(), &mut ledger_rows).await?;
        }
    }
    let mut ledger_table = Table::new(&["transaction", "account", "debit", "credit", "posted"]);
    ledger_table.rows = ledger_rows;
    Ok(operator.page(
        &format!("Payment {}", p.id),
        None,
        vec![
            summary,
            Section::new("Orders").table(orders),
            Section::new("Refunds").table(refunds),
            Section::new("Ledger postings").table(ledger_table),
        ],
    ))
}

/// `GET /admin/members/{id}`: a member, their wallets, linked accounts (masked) and history.
pub(crate) async fn member(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let not_found = || ConsoleError::NotFound(format!("No member {id}."));
    let member_id = membership::MemberId::parse(&id).ok_or_else(not_found)?;
    let member = match state.members.get(&member_id).await {
        Ok(member) => member,
        Err(membership::MemberError::NotFound(_)) => return Err(not_found()),
        Err(error) => return Err(internal(error)),
    };
    let profile = Section::new("Member")
        .field("Member", Cell::text(member.id.to_string()))
        .field("Name", Cell::text(member.name.as_str()))
        .field("Email", Cell::text(member.email.as_str()))
        .field("Phone", Cell::text(member.phone.as_str()))
        .field("Status", Cell::text(member.status.as_str()))
        .field("Joined", Cell::text(format_micros(member.created_at)));
    let mut wallets = Table::new(&["currency", "posted", "held", "incoming"]);
    for wallet in state.wallets.wallets(&member_id).await.map_err(internal)? {
        wallets.rows.push(vec![
            Cell::text(wallet.currency.code()),
            Cell::number(format_minor(wallet.posted.minor(), wallet.currency)),
            Cell::number(format_minor(wallet.held.minor(), wallet.currency)),
            Cell::number(format_minor(wallet.incoming.minor(), wallet.currency)),
        ]);
    }
    let mut accounts = Table::new(&["link", "kind", "bank", "account", "status"]);
    let links = state
        .bank_accounts
        .list(&member_id, None, 50)
        .await
        .map_err(internal)?;
    for link in links.items {
        accounts.rows.push(vec![
            Cell::text(link.id.to_string()),
            Cell::text(link.kind.as_str()),
            Cell::text(link.bank_code.to_string()),
            Cell::text(link.account_number_masked.clone()),
            Cell::text(link.status.as_str()),
        ]);
    }
    let mut history = Table::new(&[
        "money transaction no.",
        "kind",
        "counterparty",
        "amount",
        "balance after",
        "posted",
    ]);
    let page = state
        .wallets
        .history(&member_id, Currency::KRW, None, 50)
        .await
        .map_err(internal)?;
    for entry in page.items {
        history.rows.push(vec![
            Cell::text(entry.id.clone()),
            Cell::text(entry.kind.as_str()),
            Cell::text(entry.counterparty.clone().unwrap_or_default()),
            Cell::number(format_minor(entry.amount.minor(), Currency::KRW)),
            Cell::number(format_minor(entry.balance_after.minor(), Currency::KRW)),
            Cell::text(format_micros(entry.posted_at)),
        ]);
    }
    Ok(operator.page(
        &format!("Member {}", member.id),
        None,
        vec![
            profile,
            Section::new("Wallets").table(wallets),
            Section::new("Linked bank accounts").table(accounts),
            Section::new("Wallet history (KRW, latest 50)").table(history),
        ],
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    state: Option<String>,
}

/// `GET /admin/jobs?state=dead`: jobs in a state (dead letters by default).
pub(crate) async fn jobs(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<JobsQuery>,
) -> Result<Response, ConsoleError> {
    let wanted = query.state.as_deref().unwrap_or("dead");
    let job_state = JobState::parse(wanted)
        .ok_or_else(|| ConsoleError::Refused(format!("{wanted:?} is not a job state.")))?;
    let jobs = state
        .jobs
        .list(Some(job_state), None, None, 100)
        .await
        .map_err(internal)?;
    let mut table = Table::new(&["job", "kind", "attempts", "last error", "updated"]);
    for job in jobs {
        table.rows.push(vec![
            Cell::link(job.id.to_string(), format!("/admin/jobs/{}", job.id)),
            Cell::text(job.kind.clone()),
            Cell::number(format!("{}/{}", job.attempts, job.max_attempts)),
            Cell::text(job.last_error.clone().unwrap_or_default()),
            Cell::text(format_micros(job.updated_at)),
        ]);
    }
    Ok(operator.page(
        &format!("Jobs: {wanted}"),
        None,
        vec![Section::new("").table(table)],
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

async fn load_job(state: &AppState, id: &str) -> Result<jobs::Job, ConsoleError> {
    match state.jobs.get(id).await {
        Ok(job) => Ok(job),
        Err(jobs::JobError::NotFound(_)) => Err(ConsoleError::NotFound(format!("No job {id}."))),
        Err(error) => Err(internal(error)),
    }
}

/// `GET /admin/jobs/{id}`: a job with every attempt, and its actions when it is dead.
pub(crate) async fn job(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, ConsoleError> {
    let job = load_job(&state, &id).await?;
    let mut detail = Section::new("Job")
        .field("Job", Cell::text(job.id.to_string()))
        .field("Kind", Cell::text(job.kind.clone()))
        .field("State", Cell::text(job.state.as_str()))
        .field(
            "Attempts",
            Cell::text(format!("{} of {}", job.attempts, job.max_attempts)),
        )
        .field("Payload", Cell::text(job.payload.to_string()))
        .field(
            "Last error",
            Cell::text(job.last_error.clone().unwrap_or_default()),
        );
    if job.state == JobState::Dead {
        detail = detail
            .field(
                "Retry",
                Cell::link("Retry this job…", format!("/admin/jobs/{}/retry", job.id)),
            )
            .field(
                "Discard",
                Cell::link(
                    "Discard this job…",
                    format!("/admin/jobs/{}/discard", job.id),
                ),
            );
    }
    let mut attempts = Table::new(&["attempt", "worker", "started", "outcome", "error"]);
    for attempt in state.jobs.attempts(&job.id).await.map_err(internal)? {
        attempts.rows.push(vec![
            Cell::number(attempt.attempt.to_string()),
            Cell::text(attempt.worker.clone()),
            Cell::text(format_micros(attempt.started_at)),
            Cell::text(attempt.outcome.clone().unwrap_or_default()),
            Cell::text(attempt.error.clone().unwrap_or_default()),
        ]);
    }
    let flash = query.done.map(|done| format!("The job was {done}."));
    Ok(operator.page(
        &format!("Job {}", job.id),
        flash,
        vec![detail, Section::new("Attempts").table(attempts)],
    ))
}

/// The two things an operator may do to a dead job.
fn job_action_name(action: &str) -> Result<(&'static str, &'static str), ConsoleError> {
    match action {
        "retry" => Ok(("retried", "Retry")),
        "discard" => Ok(("discarded", "Discard")),
        _ => Err(ConsoleError::NotFound(format!("No action {action:?}."))),
    }
}

/// `GET /admin/jobs/{id}/retry|discard`: what will happen, and the button that does it.
pub(crate) async fn confirm_job_action(
    State(state): State<AppState>,
    operator: Operator,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let (_, verb) = job_action_name(&action)?;
    let job = load_job(&state, &id).await?;
    let message = match action.as_str() {
        "retry" => format!(
            "{verb} job {} ({}): it is queued again, due now, with a fresh set of {} attempts.",
            job.id, job.kind, job.max_attempts
        ),
        _ => format!(
            "{verb} job {} ({}): it will never run again. This cannot be undone.",
            job.id, job.kind
        ),
    };
    Ok(html(&ConfirmView {
        title: format!("{verb} job {}?", job.id),
        operator: Some(operator.0.operator.email.clone()),
        csrf: operator.0.csrf_token.clone(),
        message,
        action: format!("/admin/jobs/{}/{action}", job.id),
        button: format!("{verb} job"),
        back: format!("/admin/jobs/{}", job.id),
    }))
}

/// `POST /admin/jobs/{id}/retry|discard` with `confirm=yes`: does it through the job queue
/// and records it in the audit log with the job before and after.
pub(crate) async fn job_action(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ConsoleError> {
    operator.check_post(&headers, &form.csrf)?;
    let (done, _) = job_action_name(&action)?;
    if form.confirm.as_deref() != Some("yes") {
        return Ok(Redirect::to(&format!("/admin/jobs/{id}/{action}")).into_response());
    }
    let before = load_job(&state, &id).await?;
    let outcome = match action.as_str() {
        "retry" => state.jobs.retry(&id).await,
        _ => state.jobs.discard(&id).await,
    };
    let after = match outcome {
        Ok(job) => job,
        Err(jobs::JobError::NotDead { .. }) => {
            return Err(ConsoleError::Refused(format!(
                "Job {id} is {}, not dead: only dead jobs can be {done}.",
                before.state.as_str()
            )))
        }
        Err(error) => return Err(internal(error)),
    };
    state
        .backoffice
        .audit(
            &operator.0.operator,
            &format!("job.{action}"),
            &id,
            Some(job_summary(&before)),
            Some(job_summary(&after)),
        )
        .await
        .map_err(internal)?;
    Ok(Redirect::to(&format!("/admin/jobs/{id}?done={done}")).into_response())
}

fn job_summary(job: &jobs::Job) -> serde_json::Value {
    serde_json::json!({
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": format_micros(job.run_at),
    })
}

/// `GET /admin/audit`: who did what, newest first.
pub(crate) async fn audit(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Response, ConsoleError> {
    let entries = state
        .backoffice
        .audit_log(None, 200)
        .await
        .map_err(internal)?;
    let mut table = Table::new(&["when", "who", "action", "target", "before", "after"]);
    for entry in entries {
        table.rows.push(vec![
            Cell::text(format_micros(entry.at)),
            Cell::text(entry.operator_email.clone()),
            Cell::text(entry.action.clone()),
            Cell::text(entry.target.clone()),
            Cell::text(entry.before.clone().unwrap_or_default()),
            Cell::text(entry.after.clone().unwrap_or_default()),
        ]);
    }
    Ok(operator.page(
        "Audit log",
        None,
        vec![Section::new("Latest 200").table(table)],
    ))
}
