//! `make dev`: runs the whole pipeline locally until Ctrl-C.
//!
//! moto (AWS), the Worker under `wrangler dev`, the consumer (`sluice-local-poller`), and a
//! demo destination that appends each delivery as one JSON line to `.dev/deliveries.jsonl`.
//! Writes `.dev/stack.json` describing all of it. Ctrl-C (or SIGTERM) stops every process it started.

use clap::Parser;
use sluice_e2e::{paths, Destination, Stack, StackOptions};
use sluice_protocol::Scheme;

#[derive(Parser, Debug)]
#[command(about = "Run Sluice's whole pipeline locally")]
struct Args {
    /// The edge's port.
    #[arg(long, default_value_t = 8787)]
    edge_port: u16,
    /// moto's port (SQS, S3, DynamoDB, CloudWatch).
    #[arg(long, default_value_t = 4566)]
    aws_port: u16,
    /// State directory (logs, stack.json, deliveries).
    #[arg(long, default_value = ".dev")]
    dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        paths::root().join(&args.dir)
    };
    std::fs::create_dir_all(&dir)?;
    let deliveries = dir.join("deliveries.jsonl");
    let destination = Destination::start(Some(deliveries.clone())).await?;
    let options = StackOptions {
        dir: dir.clone(),
        sources: sluice_e2e::stack::every_scheme(),
        destination_url: destination.url.clone(),
        moto_port: Some(args.aws_port),
        edge_port: Some(args.edge_port),
        visibility_timeout_secs: Some(10),
        poller: true,
        destination_secret: sluice_e2e::stack::dev_secret(Scheme::StandardWebhooks),
        aws_fault_proxy: false,
    };
    println!(
        "starting moto, wrangler dev and the consumer (logs in {}) ...",
        dir.display()
    );
    let stack = Stack::start(options).await?;

    println!();
    println!("Sluice is running.");
    println!("  edge:          {}", stack.edge_url);
    println!(
        "  AWS (moto):    {}  region {}",
        stack.aws_endpoint,
        sluice_e2e::stack::REGION
    );
    println!("  queue:         {}", stack.queue_url);
    println!("  dead letters:  {}", stack.dlq_url);
    println!("  deliveries:    tail -f {}", deliveries.display());
    println!("  stack:         {}", dir.join("stack.json").display());
    println!();
    println!("Sources (dev secrets, valid for this run only):");
    for s in &stack.sources {
        println!(
            "  {:<17} {:<18} {:<45} secret {}",
            s.name,
            s.scheme.as_str(),
            s.url,
            s.secret
        );
    }
    println!();
    println!("Send a signed test webhook:");
    println!(
        "  target/debug/sluice send standard --stack {}",
        dir.join("stack.json").display()
    );
    println!();
    println!("Ctrl-C stops everything.");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {},
    }
    println!("stopping ...");
    drop(stack);
    Ok(())
}
