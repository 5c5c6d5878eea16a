//! `mypay sandbox-psp`: the sandbox PSP as a server of its own, until Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use psp::sandbox::{self, SandboxPspConfig};
use psp::SecretKey;

use crate::cli::SandboxPspArgs;

pub async fn run(args: SandboxPspArgs) -> anyhow::Result<ExitCode> {
    let config = SandboxPspConfig {
        secret_key: args.secret_key.as_deref().map(SecretKey::new),
        hold: Duration::from_millis(args.hold_ms),
        idempotency_ttl: Duration::from_secs(args.idempotency_ttl_s),
        ..SandboxPspConfig::new(&args.data)
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = sandbox::spawn(listener, config)
        .await
        .with_context(|| format!("cannot start the sandbox PSP in {}", args.data.display()))?;
    println!("sandbox PSP listening on {}", handle.base_url());
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down the sandbox PSP");
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
