//! `sluice`: the operations CLI.
//!
//! `sluice send <source>` signs a test webhook with the source's scheme and secret, exactly
//! as the provider would, and POSTs it to the edge. Against the local stack it reads the URL,
//! scheme and secret from `.dev/stack.json`; against a deployment pass `--url`, `--scheme`
//! and `--secret` (or `SLUICE_SEND_SECRET`). The secret is never printed.
//!
//! Exit codes: 0 accepted (2xx), 1 refused by the edge (4xx/5xx), 2 usage or local error.

mod send;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "sluice", version, about = "Operate a Sluice webhook pipeline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign a test webhook as the source's provider would, and POST it to the edge.
    Send(send::SendArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
