//! `sluice`: the operations CLI for a Sluice pipeline.
//!
//! Subcommands: `send` (a signed test webhook to the edge), `config check` (validate a
//! sources file offline and summarise its sources, destinations and referenced secrets),
//! `status` (queue, DLQ, age, throughput, drain time, alarms), `dlq list|show|redrive`
//! (dead letters, the destination each is for, and moving them back, optionally for one
//! destination), `replay` (re-enqueue archived events of a time window, optionally for one
//! destination). Works against the local stack (`.dev/stack.json`, or `--stack-file`) or
//! AWS (`--queue-url`, `--dlq-url`, `--bucket`, region and credentials from the normal AWS
//! chain); see [`target`]. `send` and `config check` are dispatched before a target is
//! resolved: `config check` needs none.
//!
//! This file only parses arguments, picks the target and maps the outcome to an exit code;
//! it must never print a secret or a credential.

mod alarms;
mod config_check;
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
     flags), no AWS region, missing or refused AWS credentials, an invalid or unreadable
     sources file (`config check`, `replay --sources-file`)
  3  not found: unknown queue, bucket, or dead letter id; a source or destination the
     --sources-file of `replay` does not declare";

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
    /// Check a sources file offline (no AWS target needed) before deploying it.
    Config(config_check::ConfigArgs),
    /// Queue depth, in flight, DLQ depth, oldest message age, throughput, time to drain,
    /// alarm states (CloudWatch on AWS; the local stack has no metrics).
    Status(status::StatusArgs),
    /// Inspect dead letters (with the destination each is for) and move them back to the
    /// main queue.
    Dlq(dlq::DlqArgs),
    /// Re-enqueue archived events received in a time window, for every destination or
    /// (--destination) one (already delivered ones are skipped by the consumer's
    /// idempotency).
    Replay(replay::ReplayArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send::run(*args, &cli.target.stack_path(), cli.json).await,
        Command::Config(args) => config_check::run(args, cli.json),
        command => match target::Target::resolve(&cli.target).await {
            Ok(target) => match command {
                Command::Status(args) => status::run(args, &target, cli.json).await,
                Command::Dlq(args) => dlq::run(args, &target, cli.json).await,
                Command::Replay(args) => replay::run(args, &target, cli.json).await,
                Command::Send(_) | Command::Config(_) => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_check_parses_without_a_target() {
        let cli =
            Cli::try_parse_from(["sluice", "config", "check", "sources.json", "--json"]).unwrap();
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Config(config_check::ConfigArgs {
                command: config_check::ConfigCommand::Check(ref a)
            }) if a.file == std::path::Path::new("sources.json")
        ));
        assert!(Cli::try_parse_from(["sluice", "config", "check"]).is_err());
    }
}
