//! `make bench` (edge part): load the Worker under `wrangler dev` (workerd) with `wrk`,
//! SQS replaced by a fast local stub that checks SigV4 and answers like SQS, so the edge's
//! own cost is what is measured. Prints requests/s and p50/p99 for each body size.
//!
//! Numbers from one machine running load generator, workerd and stub together: compare
//! them as ratios within one run, never as absolute capacity.

use clap::Parser;
use sluice_e2e::sqs_stub::SqsStub;
use sluice_e2e::stack::{dev_secret, unix_now};
use sluice_e2e::wait::free_port;
use sluice_protocol::{Scheme, SourceConfig, SourcesConfig};
use std::process::Command;

#[derive(Parser, Debug)]
#[command(about = "Load the edge under wrangler dev with wrk")]
struct Args {
    /// Seconds per size.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Body sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [1024usize, 65536])]
    sizes: Vec<usize>,
}

fn body(size: usize) -> String {
    let mut s = String::from("{\"type\":\"invoice.paid\",\"data\":\"");
    while s.len() < size - 2 {
        s.push_str("lorem ipsum dolor sit amet consectetur ");
    }
    s.truncate(size - 2);
    s.push_str("\"}");
    s
}

fn lua_quote(s: &str) -> String {
    format!("{s:?}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("sluice-edge-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let stub = SqsStub::start().await?;
    let secret = dev_secret(Scheme::StandardWebhooks);
    let sources = SourcesConfig {
        sources: vec![SourceConfig::new(
            "standard",
            Scheme::StandardWebhooks,
            "https://example.com/x",
        )],
    };
    let port = free_port()?;
    let vars = [
        ("AWS_REGION", "us-east-1".to_string()),
        (
            "SQS_QUEUE_URL",
            format!("{}/123456789012/sluice-events", stub.url),
        ),
        ("SQS_ENDPOINT", stub.url.clone()),
        ("SLUICE_SOURCES", sources.to_json()),
    ];
    let secrets = [
        ("AWS_ACCESS_KEY_ID".to_string(), "AKIDLOADTEST".to_string()),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            "load-test-secret".to_string(),
        ),
        ("SLUICE_SECRET_STANDARD".to_string(), secret.clone()),
    ];
    let _edge = sluice_e2e::edge::start(&dir, port, &vars, &secrets, "warn").await?;
    let url = format!("http://127.0.0.1:{port}/hooks/standard");
    let key = Scheme::StandardWebhooks.parse_secret(&secret)?;

    println!("| body | requests/s | p50 | p99 | non-2xx |");
    println!("|---:|---:|---:|---:|---:|");
    for size in &args.sizes {
        let body = body(*size);
        let headers = Scheme::StandardWebhooks.sign(
            &key,
            "msg_load",
            unix_now(),
            body.as_bytes(),
            &Default::default(),
        )?;
        let body_path = dir.join(format!("body-{size}.json"));
        std::fs::write(&body_path, &body)?;
        let mut lua = String::from(
            "wrk.method = \"POST\"\nwrk.headers[\"content-type\"] = \"application/json\"\n",
        );
        for (k, v) in &headers {
            lua.push_str(&format!(
                "wrk.headers[{}] = {}\n",
                lua_quote(k),
                lua_quote(v)
            ));
        }
        lua.push_str(&format!(
            "local f = io.open({}, \"rb\")\nwrk.body = f:read(\"*a\")\nf:close()\n",
            lua_quote(&body_path.display().to_string())
        ));
        let script = dir.join(format!("load-{size}.lua"));
        std::fs::write(&script, lua)?;
        let before = stub.accepted();
        let out = Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{}", args.connections),
                &format!("-d{}s", args.seconds),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(&url)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |prefix: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(prefix))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("?")
                .to_string()
        };
        let non2xx = text
            .lines()
            .find(|l| l.contains("Non-2xx"))
            .and_then(|l| l.split(':').nth(1))
            .map_or("0".to_string(), |v| v.trim().to_string());
        println!(
            "| {size} B | {} | {} | {} | {non2xx} |",
            field("Requests/sec:"),
            field("50%"),
            field("99%")
        );
        eprintln!(
            "  (stub accepted {} SendMessage during this run)",
            stub.accepted() - before
        );
    }
    anyhow::ensure!(
        stub.refused() == 0,
        "the stub refused {} requests: unsigned or malformed",
        stub.refused()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
