//! Feeds the consumer from a local SQS queue (moto) the way the Lambda event source mapping
//! does in AWS. Configured like `bootstrap` (SLUICE_* and AWS_* variables) plus the queue.

use clap::Parser;
use sluice_lambda_worker::local_poller::{self, PollerOptions};
use sluice_lambda_worker::{telemetry, Consumer};

#[derive(Parser, Debug)]
#[command(about = "Local SQS event source mapping for the Sluice consumer")]
struct Args {
    /// The queue to poll.
    #[arg(long, env = "SLUICE_QUEUE_URL")]
    queue_url: String,
    /// Long-poll wait in seconds (0-20).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_secs: i32,
    /// Records per batch (1-10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    batch_size: i32,
    /// The "function timeout": each batch's invocation deadline (and so its claims'
    /// in-progress expiry), as Lambda's timeout sets it. Defaults to the template's 30 s,
    /// capped at the queue's visibility timeout.
    #[arg(long, default_value_t = 30)]
    function_timeout_secs: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init();
    let args = Args::parse();
    // Said in words (a config error names source, destination and field), not as the
    // error's Debug form, which is all a returned error prints.
    let consumer = Consumer::from_env().await.map_err(|e| {
        tracing::error!(detail = %e, "the consumer cannot start");
        Box::<dyn std::error::Error>::from(e.to_string())
    })?;
    let sdk = aws_config::load_from_env().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_string());
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    local_poller::run(
        consumer,
        sqs,
        PollerOptions {
            queue_url: args.queue_url,
            region,
            wait_secs: args.wait_secs,
            batch_size: args.batch_size,
            function_timeout: std::time::Duration::from_secs(args.function_timeout_secs),
        },
        shutdown,
    )
    .await;
    Ok(())
}
