//! `make bench`: the consumer's cold start, CPU per event, peak memory and binary size,
//! measured on the real `bootstrap` binary under a local Lambda Runtime API (moto for
//! DynamoDB, a local HTTP destination).
//!
//! - Cold start: process spawn -> its first `GET /runtime/invocation/next` (what Lambda
//!   bills as init for a custom runtime), repeated, median and spread.
//! - CPU per event: the process's CPU time (sum of its threads' schedstat run time, in ns)
//!   over `--batches` batches of 10 fresh events (1 KiB JSON each; claim, deliver,
//!   complete), after one warm-up batch; divided by the number of events. Wall time is
//!   mostly moto's and is not reported as ours.
//! - Peak memory: VmHWM of the process after the run.
//!
//! Measures; never asserts a time.

use clap::Parser;
use sluice_e2e::moto::Moto;
use sluice_e2e::runtime_api::RuntimeApi;
use sluice_e2e::stack::create_table;
use sluice_e2e::{paths, Destination};
use sluice_protocol::{Body, Envelope, ENVELOPE_VERSION};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The bootstrap binary to measure (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/bootstrap")]
    bootstrap: PathBuf,
    /// Cold starts to measure.
    #[arg(long, default_value_t = 10)]
    cold_starts: usize,
    /// Batches of 10 events for the CPU measurement.
    #[arg(long, default_value_t = 30)]
    batches: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

struct Env {
    moto: Moto,
    destination: Destination,
}

fn spawn(bootstrap: &Path, api: &RuntimeApi, env: &Env, log: &Path) -> anyhow::Result<Child> {
    let sources = format!(
        r#"{{"sources":[{{"name":"bench","scheme":"standard-webhooks","destination":"{}/bench"}}]}}"#,
        env.destination.url
    );
    let log = std::fs::File::create(log)?;
    Ok(Command::new(bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "sluice-consumer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/sluice-consumer")
        .env("SLUICE_SOURCES", sources)
        .env("SLUICE_TABLE", "bench")
        .env(
            "SLUICE_DESTINATION_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env("AWS_ENDPOINT_URL", &env.moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()?)
}

/// CPU time of every thread of `pid`, in nanoseconds (first field of each schedstat).
fn cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        total += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn batch(run: &str, n: usize) -> Vec<u8> {
    let body = format!(
        r#"{{"type":"order.paid","padding":"{}"}}"#,
        "x".repeat(1000)
    );
    let records: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            let id = format!("evt_{run}_{n}_{i}");
            let envelope = Envelope {
                v: ENVELOPE_VERSION,
                id: id.clone(),
                source: "bench".into(),
                idempotency_key: Some(format!("key_{run}_{n}_{i}")),
                received_at_ms: 1_795_435_200_000,
                content_type: Some("application/json".into()),
                trace_id: None,
                headers: Default::default(),
                body: Body::from_bytes(body.as_bytes()),
            };
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": envelope.encode(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795435200000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sluice-events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
        .to_string()
        .into_bytes()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.bootstrap.exists(),
        "{} is missing: cargo build --release -p sluice-lambda-worker --bin bootstrap",
        args.bootstrap.display()
    );
    let dir = paths::target_dir().join("bench-consumer");
    std::fs::create_dir_all(&dir)?;
    let moto = Moto::start(None, &dir.join("moto.log")).await?;
    create_table(
        &aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        "bench",
        "pk",
    )
    .await?;
    let env = Env {
        moto,
        destination: Destination::start(None).await?,
    };
    let run = format!("{:x}", rand::random::<u32>());

    // Cold starts.
    let mut cold_ms = Vec::new();
    for i in 0..args.cold_starts {
        let api = RuntimeApi::start().await?;
        let started = Instant::now();
        let mut child = spawn(&args.bootstrap, &api, &env, &dir.join("cold.log"))?;
        let deadline = started + Duration::from_secs(10);
        let polled = loop {
            if let Some(t) = api.first_poll() {
                break t;
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "bootstrap exited ({status}) before polling: see {}",
                    dir.join("cold.log").display()
                );
            }
            anyhow::ensure!(Instant::now() < deadline, "no poll within 10 s (run {i})");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        cold_ms.push(polled.duration_since(started).as_secs_f64() * 1000.0);
        let _ = child.kill();
        let _ = child.wait();
    }

    // CPU per event.
    let api = RuntimeApi::start().await?;
    let mut child = spawn(&args.bootstrap, &api, &env, &dir.join("warm.log"))?;
    let pid = child.id();
    let warm = api.invoke(batch(&run, 0));
    let answer = tokio::time::timeout(Duration::from_secs(60), api.answer(&warm)).await?;
    let response =
        answer.map_err(|e| anyhow::anyhow!("warm-up failed: {}", String::from_utf8_lossy(&e)))?;
    let failures = serde_json::from_slice::<serde_json::Value>(&response)?["batchItemFailures"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    anyhow::ensure!(
        failures == 0,
        "warm-up batch had {failures} failures: {}",
        String::from_utf8_lossy(&response)
    );
    let cpu_before = cpu_ns(pid)?;
    let wall = Instant::now();
    let mut failed = 0;
    for n in 1..=args.batches {
        let id = api.invoke(batch(&run, n));
        let response = tokio::time::timeout(Duration::from_secs(60), api.answer(&id))
            .await?
            .map_err(|e| anyhow::anyhow!("batch {n} failed: {}", String::from_utf8_lossy(&e)))?;
        failed += serde_json::from_slice::<serde_json::Value>(&response)?["batchItemFailures"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
    }
    let cpu = cpu_ns(pid)? - cpu_before;
    let wall = wall.elapsed();
    let peak = peak_rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let events = args.batches * 10;
    let delivered = env.destination.successful("/bench").len();
    let size = std::fs::metadata(&args.bootstrap)?.len();

    let (cmin, cmed, cmax) = stats(cold_ms.clone());
    let cpu_us = cpu as f64 / 1000.0 / events as f64;
    println!("consumer bench ({}):", args.bootstrap.display());
    println!("  cold start (spawn -> first runtime API poll), {} runs: median {cmed:.1} ms (min {cmin:.1}, max {cmax:.1})", cold_ms.len());
    println!("  CPU per event: {cpu_us:.0} us ({events} events in batches of 10, {failed} failed, {delivered} deliveries incl. warm-up; wall {:.1} s, mostly moto)", wall.as_secs_f64());
    if let Some(kib) = peak {
        println!("  peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    println!(
        "  binary: {size} bytes ({:.1} MiB)",
        size as f64 / 1048576.0
    );
    if let Some(path) = args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&serde_json::json!({
                "cold_start_ms": {"median": cmed, "min": cmin, "max": cmax, "runs": cold_ms},
                "cpu_us_per_event": cpu_us,
                "events": events,
                "failed": failed,
                "peak_rss_kib": peak,
                "binary_bytes": size,
            }))?,
        )?;
    }
    Ok(())
}
