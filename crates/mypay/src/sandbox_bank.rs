//! `mypay sandbox-bank`: the sandbox bank as a server of its own, until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use banking::sandbox::{self, AdminToken, SandboxConfig};
use banking::BankAccount;

use crate::cli::SandboxBankArgs;

pub async fn run(args: SandboxBankArgs) -> anyhow::Result<ExitCode> {
    let admin_token = args
        .admin_token
        .as_deref()
        .map(AdminToken::new)
        .transpose()
        .context("MYPAY_SANDBOX_BANK_ADMIN_TOKEN")?;
    let config = SandboxConfig {
        master: BankAccount::new(args.master_bank_code, args.master_account),
        master_holder: args.master_holder,
        master_opening_balance_won: args.master_opening_balance,
        faults: args.faults,
        admin_token,
        statement_page_size: args.statement_page_size,
        ..SandboxConfig::new(&args.data)
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = sandbox::spawn(listener, config)
        .await
        .with_context(|| format!("cannot start the sandbox bank in {}", args.data.display()))?;
    let master = handle.master_account();
    println!(
        "master account {} {} (GET /admin/master shows it in full)",
        master.bank_code,
        master.account_number.masked()
    );
    println!("sandbox bank listening on {}", handle.base_url());
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down the sandbox bank");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
