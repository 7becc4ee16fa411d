//! `make dev`: runs the whole pipeline locally until Ctrl-C.
//!
//! moto (AWS), the Worker under `wrangler dev`, the consumer (`sluice-local-poller`), and a
//! demo destination that appends each delivery as one JSON line to `.dev/deliveries.jsonl`
//! (with the route it came through) and prints it. The demo sources are one per signature
//! scheme plus `shop-router`, which fans out to two destinations, one filtered.
//!
//! `SLUICE_SOURCES_FILE=path make dev` runs the sources in that file instead (the JSON of
//! `SLUICE_SOURCES`), destination URLs as given: each source gets a fresh dev secret, or
//! the value of its `SLUICE_SECRET_<NAME>` when that is set. `{"env": "VAR"}` header
//! references are read from this process's environment (the consumer inherits it). A file
//! that does not hold is refused with the error naming the source, destination and field.
//!
//! Writes `.dev/stack.json` describing all of it. Ctrl-C (or SIGTERM) stops every process it
//! started.

use anyhow::Context as _;
use clap::Parser;
use sluice_e2e::stack::{demo_router, every_scheme, SourceSpec};
use sluice_e2e::{paths, Destination, Stack, StackOptions};
use sluice_protocol::{Scheme, SourcesConfig};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Run Sluice's whole pipeline locally")]
struct Args {
    /// The edge's port.
    #[arg(long, default_value_t = 8787)]
    edge_port: u16,
    /// moto's port (SQS, S3, DynamoDB, CloudWatch, Secrets Manager).
    #[arg(long, default_value_t = 4566)]
    aws_port: u16,
    /// State directory (logs, stack.json, deliveries).
    #[arg(long, default_value = ".dev")]
    dir: std::path::PathBuf,
    /// Your own sources (the JSON of SLUICE_SOURCES) instead of the demo ones.
    #[arg(long, env = "SLUICE_SOURCES_FILE")]
    sources_file: Option<std::path::PathBuf>,
}

/// The sources in `path`, each with its secret from `SLUICE_SECRET_<NAME>` when set.
fn sources_from_file(path: &std::path::Path) -> anyhow::Result<Vec<SourceSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read SLUICE_SOURCES_FILE {}", path.display()))?;
    let config =
        SourcesConfig::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(
        !config.sources.is_empty(),
        "{}: declares no source",
        path.display()
    );
    Ok(config
        .sources
        .iter()
        .map(|c| SourceSpec {
            secret: std::env::var(sluice_protocol::source::secret_var(&c.name))
                .ok()
                .filter(|v| !v.trim().is_empty()),
            ..SourceSpec::from_config(c)
        })
        .collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        paths::root().join(&args.dir)
    };
    // A sources file is checked before anything starts.
    let own_sources = args
        .sources_file
        .as_deref()
        .map(sources_from_file)
        .transpose()?;
    std::fs::create_dir_all(&dir)?;
    let deliveries = dir.join("deliveries.jsonl");
    let destination = Destination::start(Some(deliveries.clone())).await?;
    let demo = own_sources.is_none();
    let sources = own_sources.unwrap_or_else(|| {
        let mut sources = every_scheme();
        sources.push(demo_router(&destination.url));
        sources
    });
    let options = StackOptions {
        dir: dir.clone(),
        sources,
        destination_url: destination.url.clone(),
        moto_port: Some(args.aws_port),
        edge_port: Some(args.edge_port),
        visibility_timeout_secs: Some(10),
        poller: true,
        destination_secret: sluice_e2e::stack::dev_secret(Scheme::StandardWebhooks),
        aws_fault_proxy: false,
        consumer_env: Vec::new(),
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
    if demo {
        println!("  deliveries:    tail -f {}", deliveries.display());
    }
    println!("  stack:         {}", dir.join("stack.json").display());
    println!();
    match &args.sources_file {
        Some(file) => println!(
            "Sources from {} (dev secrets unless SLUICE_SECRET_<NAME> was set):",
            file.display()
        ),
        None => println!("Sources (dev secrets, valid for this run only):"),
    }
    for s in &stack.sources {
        println!(
            "  {:<17} {:<18} {:<45} secret {}",
            s.name,
            s.scheme.as_str(),
            s.url,
            s.secret
        );
        if s.destinations.len() > 1 || s.destinations.iter().any(|d| d.filter.is_some()) {
            for d in &s.destinations {
                let filter = d
                    .filter
                    .as_ref()
                    .map_or_else(|| "every event".to_string(), |f| f.to_string());
                println!("      -> {:<12} {}  ({filter})", d.name, d.url);
            }
        }
    }
    println!();
    println!("Send a signed test webhook:");
    let first = stack
        .sources
        .first()
        .map_or("standard", |s| s.name.as_str());
    println!("  target/debug/sluice send {first}");
    if demo {
        println!("  echo '{{\"type\":\"order.created\"}}' > /tmp/order.json");
        println!(
            "  target/debug/sluice send shop-router --file /tmp/order.json   # orders and all"
        );
        println!("  target/debug/sluice send shop-router                          # all only");
    }
    println!();
    println!("Ctrl-C stops everything.");
    if demo {
        println!();
        tokio::spawn(report_deliveries(destination.clone()));
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {},
    }
    println!("stopping ...");
    drop(stack);
    Ok(())
}

/// Prints each request the demo destination receives: which route of which source got
/// which event, and the answer.
async fn report_deliveries(destination: Destination) {
    let mut shown = 0;
    loop {
        // A display refresh, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let all = destination.deliveries();
        for d in all.iter().skip(shown) {
            println!(
                "delivered  {} -> {:<10} {}  webhook-id {}  answered {}",
                d.header("sluice-source").unwrap_or("?"),
                d.destination().unwrap_or("?"),
                d.header("sluice-event-id").unwrap_or("?"),
                d.webhook_id().unwrap_or("?"),
                d.status
            );
        }
        shown = all.len();
    }
}
