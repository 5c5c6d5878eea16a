//! `mypay`: the payments platform in one binary.

mod background;
mod bench;
mod bench_api;
mod cli;
mod reconcile;
mod sandbox_bank;
mod sandbox_psp;
mod serve;
mod settle;

use std::process::ExitCode;

use clap::Parser;

use cli::{BenchCommand, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.logging.init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(*args).await,
            Command::Migrate(args) => serve::migrate(args).await,
            Command::Check(args) => serve::check(args).await,
            Command::Settle(args) => settle::settle(*args).await,
            Command::Reconcile(args) => reconcile::reconcile(*args).await,
            Command::Bench(BenchCommand::Ledger(args)) => bench::ledger(args).await,
            Command::Bench(BenchCommand::Api(args)) => bench_api::api(*args).await,
            Command::SandboxBank(args) => sandbox_bank::run(args).await,
            Command::SandboxPsp(args) => sandbox_psp::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
