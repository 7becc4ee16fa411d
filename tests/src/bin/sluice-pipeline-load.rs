//! `make bench`: a load run through the whole local pipeline (provider -> edge in workerd ->
//! SQS in moto -> consumer -> destination), reporting accepted/s, delivered/s, end-to-end
//! latency p50/p99 and the final counts (accepted = delivered, duplicates), then moto's own
//! ceiling measured the same way (SendMessage and PutItem straight from this process, same
//! concurrency): moto is the bottleneck of this run, not Sluice.
//!
//! Measures; never asserts a time. Fails only if an accepted event is missing or doubled.

use clap::Parser;
use sluice_e2e::wait::until;
use sluice_e2e::{Destination, Stack, StackOptions};
use sluice_protocol::Scheme;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Events to send.
    #[arg(long, default_value_t = 2000)]
    events: usize,
    /// Concurrent provider connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn concurrently<F, Fut>(n: usize, concurrency: usize, f: F) -> Vec<(usize, Instant, bool)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break done;
                }
                let started = Instant::now();
                let ok = f(i).await;
                done.push((i, started, ok));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap_or_default());
    }
    all
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dest = Destination::start(None).await?;
    let mut options =
        StackOptions::for_test("load", &dest.url, &[("load", Scheme::StandardWebhooks)]);
    // Long enough that a busy moto does not make in-flight messages reappear mid-run.
    options.visibility_timeout_secs = Some(60);
    let stack = Arc::new(Stack::start(options).await?);
    let source = stack.source("load").clone();
    let client = reqwest::Client::new();

    println!(
        "pipeline load: {} events, {} connections (edge in wrangler dev, moto, debug consumer)",
        args.events, args.concurrency
    );
    let started = Instant::now();
    let sends = {
        let (source, client) = (source.clone(), client.clone());
        concurrently(args.events, args.concurrency, move |i| {
            let (source, client) = (source.clone(), client.clone());
            async move {
                let id = format!("msg_load_{i}");
                let body = format!(
                    r#"{{"type":"load.test","n":{i},"pad":"{}"}}"#,
                    "x".repeat(900)
                )
                .into_bytes();
                let mut req = client
                    .post(&source.url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (name, value) in source.sign(&id, &body) {
                    req = req.header(name, value);
                }
                matches!(req.send().await, Ok(r) if r.status().as_u16() == 202)
            }
        })
        .await
    };
    let send_secs = started.elapsed().as_secs_f64();
    let sent_at: HashMap<String, Instant> = sends
        .iter()
        .filter(|(_, _, ok)| *ok)
        .map(|(i, at, _)| (format!("load#msg_load_{i}"), *at))
        .collect();
    let accepted = sent_at.len();
    println!(
        "  accepted {accepted}/{} in {send_secs:.1} s: {:.0} accepted/s",
        args.events,
        accepted as f64 / send_secs
    );

    let delivered_ids = || {
        dest.successful("/load")
            .into_iter()
            .filter_map(|d| Some((d.headers.get("webhook-id")?.clone(), d.at)))
            .collect::<Vec<_>>()
    };
    until(
        "every accepted event delivered",
        Duration::from_secs(900),
        || async { (delivered_ids().len() >= accepted).then_some(()) },
    )
    .await?;
    until("the queue drained", Duration::from_secs(120), || async {
        (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(())
    })
    .await?;
    let deliveries = delivered_ids();
    let last = deliveries
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap_or(started);
    let total_secs = last.duration_since(started).as_secs_f64();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &deliveries {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    let duplicates: usize = per_id.values().map(|c| c - 1).sum();
    let missing = sent_at
        .keys()
        .filter(|k| !per_id.contains_key(k.as_str()))
        .count();
    let mut latencies: Vec<f64> = deliveries
        .iter()
        .filter_map(|(id, at)| Some(at.duration_since(*sent_at.get(id)?).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  delivered {} in {total_secs:.1} s from the first send: {:.0} delivered/s; end-to-end p50 {:.0} ms, p99 {:.0} ms",
        per_id.len(),
        per_id.len() as f64 / total_secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!(
        "  final: accepted {accepted}, delivered {}, missing {missing}, duplicates {duplicates}",
        per_id.len()
    );

    // moto's own ceiling, measured the same way.
    let n = (args.events / 4).max(100);
    let sqs = stack.sqs().clone();
    let queue = sqs
        .create_queue()
        .queue_name("ceiling")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let t = Instant::now();
    let ok = concurrently(n, args.concurrency, move |i| {
        let (sqs, queue) = (sqs.clone(), queue.clone());
        async move {
            sqs.send_message()
                .queue_url(queue)
                .message_body(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(1500)))
                .send()
                .await
                .is_ok()
        }
    })
    .await
    .iter()
    .filter(|r| r.2)
    .count();
    let sends_per_sec = ok as f64 / t.elapsed().as_secs_f64();
    let ddb = stack.dynamodb().clone();
    let table = stack.table.clone();
    let t = Instant::now();
    let ok = concurrently(n, args.concurrency, move |i| {
        let (ddb, table) = (ddb.clone(), table.clone());
        async move {
            ddb.put_item()
                .table_name(table)
                .item(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("ceiling#{i}")),
                )
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .is_ok()
        }
    })
    .await
    .iter()
    .filter(|r| r.2)
    .count();
    let puts_per_sec = ok as f64 / t.elapsed().as_secs_f64();
    println!(
        "  moto alone, same concurrency: {sends_per_sec:.0} SendMessage/s, {puts_per_sec:.0} conditional PutItem/s \
         (each event costs one SendMessage at the edge and a PutItem + UpdateItem + delete in the consumer)"
    );
    anyhow::ensure!(missing == 0 && duplicates == 0, "lost or doubled events");
    Ok(())
}
