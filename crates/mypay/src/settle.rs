//! `mypay settle --date D`: runs one settlement day by hand, with a progress bar and a
//! summary line, against the same database, bank and account keys `serve` uses.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use banking::BankFees;
use indicatif::{ProgressBar, ProgressStyle};
use ledger::{Ledger, SystemClock, WriterConfig};
use merchants::Merchants;
use settlement::{Progress, RunState, SettlementConfig, SettlementDate, Settlements};
use wallet::bank_transfer::BankTransfers;

use crate::cli::SettleArgs;
use crate::serve::{account_keys, close, connect_bank, open};

/// The exit code of a run that ended with payouts whose outcome the bank has not told yet:
/// the day is settled as far as it goes; run it again (or let `serve`'s resolver) finish them.
const EXIT_PAYOUTS_UNKNOWN: u8 = 2;

pub async fn settle(args: SettleArgs) -> anyhow::Result<ExitCode> {
    let date = SettlementDate::parse(&args.date).map_err(|error| anyhow::anyhow!("{error}"))?;
    let db = open(&args.database).await?;
    let ledger = Arc::new(Ledger::start(
        db.clone(),
        Arc::new(SystemClock),
        WriterConfig::default(),
    ));
    let keys = Arc::new(account_keys(&args.account_keys)?);
    let (bank, sandbox) = connect_bank(&args.bank).await?;
    // The fee table `serve` books bank calls from.
    let transfers = Arc::new(BankTransfers::new(
        db.clone(),
        bank,
        ledger.clone(),
        BankFees::default(),
    ));
    let merchants = Merchants::new(db.clone(), ledger.clone(), transfers.clone(), keys);
    let settlements = Settlements::new(
        db.clone(),
        ledger.clone(),
        merchants,
        transfers,
        SettlementConfig {
            report_dir: Some(args.report_dir.clone()),
        },
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} merchants ({eta})")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("settling {date}"));
    let progress = |p: Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let result = settlements.run_day(date, &progress).await;
    bar.finish_and_clear();
    close(&ledger, db, sandbox, None).await;
    let report = result.with_context(|| format!("settling {date} failed"))?;
    let run = &report.run;
    let totals = &run.totals;
    println!(
        "settled {date}: {} — {} settlements: {} paid, {} paying, {} failed, {} carried over; gross {} KRW, fees {} KRW, paid out {} KRW{}",
        run.state.as_str(),
        totals.settlements,
        totals.paid,
        totals.paying,
        totals.failed,
        totals.carried_over,
        totals.gross,
        totals.fee,
        totals.net_paid,
        report
            .report_path
            .map(|path| format!("; report {}", path.display()))
            .unwrap_or_default(),
    );
    Ok(match run.state {
        RunState::Completed => ExitCode::SUCCESS,
        RunState::Running | RunState::Paying => ExitCode::from(EXIT_PAYOUTS_UNKNOWN),
    })
}
