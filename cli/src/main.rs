//! `sluice`: the operations CLI for a Sluice pipeline.
//!
//! Subcommands: `send` (a signed test webhook to the edge), `status` (queue, DLQ, age,
//! throughput, drain time, alarms), `dlq list|show|redrive` (dead letters and moving them
//! back), `replay` (re-enqueue archived events of a time window). Works against the local
//! stack (`.dev/stack.json`, or `--stack-file`) or AWS (`--queue-url`, `--dlq-url`,
//! `--bucket`, region and credentials from the normal AWS chain); see [`target`].
//!
//! This file only parses arguments, picks the target and maps the outcome to an exit code;
//! it must never print a secret or a credential.

mod alarms;
mod dead_letter;
mod dlq;
mod error;
mod progress;
mod queues;
mod redrive;
mod replay;
mod requeue;
mod send;
mod status;
mod table;
mod target;
mod times;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Targets:
  By default the local stack described by .dev/stack.json (written by `make dev`); name
  another with --stack-file. With --queue-url/--dlq-url/--bucket (or SLUICE_QUEUE_URL,
  SLUICE_DLQ_URL, SLUICE_BUCKET) and no --stack-file: AWS, with region and credentials from
  the normal AWS chain (AWS_PROFILE, AWS_REGION, environment, SSO, instance role).

Exit codes:
  0  done
  1  operational failure: AWS error or unreachable, partial redrive or replay, the edge
     refused `send`
  2  bad arguments or local configuration: usage errors, no target (no stack file and no
     flags), no AWS region, missing or refused AWS credentials
  3  not found: unknown queue, bucket, or dead letter id";

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Operate a Sluice webhook pipeline",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    target: target::TargetArgs,
    /// Machine-readable output: one JSON document on stdout, no progress bars.
    #[arg(long, global = true, help_heading = "Output")]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign a test webhook as the source's provider would, and POST it to the edge.
    Send(Box<send::SendArgs>),
    /// Queue depth, in flight, DLQ depth, oldest message age, throughput, time to drain,
    /// alarm states (CloudWatch on AWS; the local stack has no metrics).
    Status(status::StatusArgs),
    /// Inspect dead letters and move them back to the main queue.
    Dlq(dlq::DlqArgs),
    /// Re-enqueue archived events received in a time window (already delivered ones are
    /// skipped by the consumer's idempotency).
    Replay(replay::ReplayArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send::run(*args, &cli.target.stack_path(), cli.json).await,
        command => match target::Target::resolve(&cli.target).await {
            Ok(target) => match command {
                Command::Status(args) => status::run(args, &target, cli.json).await,
                Command::Dlq(args) => dlq::run(args, &target, cli.json).await,
                Command::Replay(args) => replay::run(args, &target, cli.json).await,
                Command::Send(_) => Ok(()),
            },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit()
        }
    }
}
