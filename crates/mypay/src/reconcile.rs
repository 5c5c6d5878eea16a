//! `mypay reconcile --date D`: reconciles one day by hand against the same database, bank and
//! PSP `serve` uses, prints the figures and every mismatch, and records the result as the
//! scheduled job would.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use banking::BankFees;
use ledger::{Ledger, SystemClock, WriterConfig};
use reconciliation::{DayReport, Reconciliations};
use wallet::bank_transfer::BankTransfers;

use crate::cli::ReconcileArgs;
use crate::serve::{close, connect_bank, connect_psp, open};

/// The exit code of a day that did not reconcile: a mismatch, or safeguarding not `ok`.
const EXIT_MISMATCHED: u8 = 2;

pub async fn reconcile(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let date =
        reconciliation::parse_date(&args.date).map_err(|error| anyhow::anyhow!("{error}"))?;
    let db = open(&args.database).await?;
    let ledger = Arc::new(Ledger::start(
        db.clone(),
        Arc::new(SystemClock),
        WriterConfig::default(),
    ));
    let (bank, sandbox) = connect_bank(&args.bank).await?;
    let (psp, sandbox_psp) = connect_psp(&args.psp).await?;
    let transfers = Arc::new(BankTransfers::new(
        db.clone(),
        bank.clone(),
        ledger.clone(),
        BankFees::default(),
    ));
    let reconciliations = Reconciliations::new(
        db.clone(),
        ledger.clone(),
        bank,
        transfers,
        psp,
        args.reconciliation.config(args.bank.bank_url.as_deref()),
    );
    let result = reconciliations.run_day(date).await;
    close(&ledger, db, sandbox, sandbox_psp).await;
    let report = result.with_context(|| format!("reconciling {date} failed"))?;
    print!("{}", summary(&report));
    Ok(if report.run.matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_MISMATCHED)
    })
}

/// The report as an operator reads it: one line of counts, one of safeguarding figures, and
/// one line per mismatch.
fn summary(report: &DayReport) -> String {
    let run = &report.run;
    let figures = &run.safeguarding;
    let optional = |value: Option<i64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut text = format!(
        "reconciled {}: {} — bank {} lines, ours {}, {} matched; PSP {} lines, ours {}, {} matched; {} mismatches\n\
         safeguarding {}: member money {} KRW, members' part {} KRW (bank balance {} − own funds {} − others' part {} of ledger master {})\n",
        run.date,
        if run.matched { "matched" } else { "MISMATCHED" },
        run.bank_lines,
        run.our_bank_lines,
        run.bank_matched,
        run.psp_lines,
        run.our_psp_lines,
        run.psp_matched,
        run.mismatches,
        figures.status.as_str(),
        figures.member_money,
        optional(figures.members_part),
        optional(figures.bank_balance),
        figures.own_funds,
        figures.ledger_master.saturating_sub(figures.member_money),
        figures.ledger_master,
    );
    for m in &report.mismatches {
        text.push_str(&format!(
            "  {} {} {}: ours {}, theirs {}{} — {}\n",
            m.source.as_str(),
            m.kind.as_str(),
            m.key,
            optional(m.our_amount),
            optional(m.their_amount),
            m.our_reference
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            m.detail,
        ));
    }
    text
}
