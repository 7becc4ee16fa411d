//! `make bench`: the consumer's cold start, CPU per event, peak memory, AWS calls per event
//! and binary size, measured on the real `bootstrap` binary under a local Lambda Runtime
//! API (moto for DynamoDB behind a counting proxy, a local HTTP destination), side by side
//! with a baseline (`--baseline`: the same consume job written with Powertools for AWS
//! Lambda (Python), `bench/powertools/handler.py`, under `awslambdaric`) measured in the
//! same run against the same moto, destination and batches.
//!
//! Each case is a source with `--destinations` routes (default `1,3`: a source written the
//! old way, with its one destination `default`, and one fanning out to `default`,
//! `analytics` and `audit`; no filters), every destination a path of the local destination
//! server. Both consumers do the same fan-out: per event and destination a claim, a
//! delivery and a completion of its own.
//!
//! - Cold start: process spawn -> its first `GET /runtime/invocation/next` (what Lambda
//!   bills as init: for a custom runtime it includes reading the config and building the
//!   AWS clients; for Python, starting the interpreter and importing the handler).
//! - CPU per event: the process's CPU time (sum of its threads' schedstat run time, in ns)
//!   over `--batches` batches of 10 fresh events (1 KiB JSON each; per destination claim,
//!   deliver, complete), after one warm-up batch; divided by the number of events. Wall
//!   time is mostly moto's and is not reported as ours.
//! - Peak memory: VmHWM of the process after the run.
//! - AWS calls per event: requests the proxy in front of moto forwarded during the
//!   measured batches, by operation (`X-Amz-Target`), divided by the number of events.
//!
//! Everything is repeated `--repeats` times, the cases and the consumers interleaved (which
//! goes first alternates); each ratio is taken within one repeat, then the median and
//! spread over the repeats are printed. Measures; never asserts a time. It does assert what
//! the job must do, and exits non-zero (after printing the figures) when one fails: every
//! event delivered once to every destination by each consumer, with a valid Standard
//! Webhooks signature, that destination's `sluice-destination` and `webhook-id` and the
//! body as sent; every record acknowledged; and Sluice's calls on this happy path at most
//! 2 DynamoDB writes per event and destination (the claim's PutItem, the completion's
//! UpdateItem), no DynamoDB read and no SQS call.

use clap::Parser;
use sluice_e2e::fault_proxy::FaultProxy;
use sluice_e2e::moto::Moto;
use sluice_e2e::runtime_api::RuntimeApi;
use sluice_e2e::stack::create_table;
use sluice_e2e::{paths, Destination};
use sluice_protocol::{Body, Envelope, Scheme, ENVELOPE_VERSION};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The source every event comes from.
const SOURCE: &str = "bench";
/// DynamoDB calls per event and destination the semantics need on the happy path: the
/// conditional PutItem that claims the (event, destination) pair and the UpdateItem that
/// marks it completed. No reads.
const MIN_DYNAMODB_CALLS_PER_DESTINATION: f64 = 2.0;
/// SQS calls per event the function needs on the happy path: none (the event source
/// mapping deletes the acknowledged messages).
const MIN_SQS_CALLS: f64 = 0.0;
/// The destination of a source written the old way (`destination`), whose pair key is the
/// event's own key.
const DEFAULT_DESTINATION: &str = "default";
/// The names of a case's destinations, in order; then `dest-4`, `dest-5`, ...
const DESTINATION_NAMES: [&str; 3] = [DEFAULT_DESTINATION, "analytics", "audit"];
/// Most destinations a source may have (`sluice_protocol::destination::MAX_DESTINATIONS`).
const MAX_DESTINATIONS: usize = 50;

#[derive(Parser)]
struct Args {
    /// The bootstrap binary to measure (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/bootstrap")]
    bootstrap: PathBuf,
    /// The baseline's command line, run in `--baseline-dir`, e.g.
    /// `.venv-bench/bin/python -m awslambdaric handler.handler`. Without it only the
    /// bootstrap is measured.
    #[arg(long)]
    baseline: Option<String>,
    /// The baseline's working directory (its handler module is imported from there).
    #[arg(long, default_value = "bench/powertools")]
    baseline_dir: PathBuf,
    /// The baseline's name in the report.
    #[arg(long, default_value = "Powertools")]
    baseline_name: String,
    /// Destinations of the source, one case per number, all measured in the same run
    /// (comma-separated). 1 is a source written the old way (its one destination is
    /// `default`); more are `default`, `analytics`, `audit`, then `dest-4`, ...
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    destinations: Vec<usize>,
    /// Times the whole measurement is repeated (cases and consumers interleaved).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Cold starts per consumer and case in each repeat (their median is that repeat's
    /// figure).
    #[arg(long, default_value_t = 5)]
    cold_starts: usize,
    /// Batches of 10 events for the CPU measurement, per consumer, case and repeat.
    #[arg(long, default_value_t = 30)]
    batches: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One consumer under test.
struct Consumer {
    name: String,
    /// Short name: its table, destination paths and log files.
    slug: &'static str,
    program: PathBuf,
    args: Vec<String>,
    dir: Option<PathBuf>,
    env: Vec<(&'static str, String)>,
    /// Whether its AWS calls are asserted (Sluice's are; the baseline's are reported).
    calls_asserted: bool,
}

impl Consumer {
    fn table(&self) -> String {
        format!("bench-{}", self.slug)
    }
}

/// One source configuration: its destinations.
struct Case {
    names: Vec<String>,
}

impl Case {
    fn new(n: usize) -> Self {
        let names = (0..n)
            .map(|i| match DESTINATION_NAMES.get(i) {
                Some(name) => name.to_string(),
                None => format!("dest-{}", i + 1),
            })
            .collect();
        Case { names }
    }

    fn n(&self) -> usize {
        self.names.len()
    }

    fn label(&self) -> String {
        format!(
            "{} destination{} ({})",
            self.n(),
            if self.n() == 1 { "" } else { "s" },
            self.names.join(", ")
        )
    }

    /// Where `consumer` delivers this case's destination `name`.
    fn path(&self, consumer: &Consumer, name: &str) -> String {
        format!("/{}/{}/{name}", consumer.slug, self.n())
    }

    /// `SLUICE_SOURCES` for `consumer`: one destination the old way (`destination`, named
    /// `default`), several as `destinations`, none with a filter.
    fn sources(&self, consumer: &Consumer, url: &str) -> String {
        let source = if self.n() == 1 {
            serde_json::json!({
                "name": SOURCE,
                "scheme": "standard-webhooks",
                "destination": format!("{url}{}", self.path(consumer, &self.names[0])),
            })
        } else {
            let destinations: Vec<serde_json::Value> = self
                .names
                .iter()
                .map(|name| {
                    serde_json::json!({"name": name, "url": format!("{url}{}", self.path(consumer, name))})
                })
                .collect();
            serde_json::json!({
                "name": SOURCE,
                "scheme": "standard-webhooks",
                "destinations": destinations,
            })
        };
        serde_json::json!({ "sources": [source] }).to_string()
    }

    /// The `webhook-id` (the pair's idempotency key) of the event with idempotency key
    /// `key` at destination `name`, as README's "Routes" section gives it.
    fn pair_key(key: &str, name: &str) -> String {
        if name == DEFAULT_DESTINATION {
            format!("{SOURCE}#{key}")
        } else {
            format!("{SOURCE}#{key}#{name}")
        }
    }
}

struct Env {
    /// The counting proxy in front of moto: what the consumers use as their AWS endpoint.
    aws: FaultProxy,
    destination: Destination,
    dir: PathBuf,
}

fn spawn(
    consumer: &Consumer,
    case: &Case,
    api: &RuntimeApi,
    env: &Env,
    log: &str,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log_path(consumer, case, env, log))?;
    let mut cmd = Command::new(&consumer.program);
    cmd.args(&consumer.args)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("{}-consumer", consumer.slug),
        )
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}-consumer", consumer.slug),
        )
        .env(
            "SLUICE_SOURCES",
            case.sources(consumer, &env.destination.url),
        )
        .env("SLUICE_TABLE", consumer.table())
        .env("SLUICE_DESTINATION_SECRET", SECRET)
        .env("AWS_ENDPOINT_URL", &env.aws.url)
        .env("AWS_REGION", sluice_e2e::moto::REGION)
        .env("AWS_DEFAULT_REGION", sluice_e2e::moto::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .envs(consumer.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    if let Some(dir) = &consumer.dir {
        cmd.current_dir(dir).env("LAMBDA_TASK_ROOT", dir);
    }
    Ok(cmd.spawn()?)
}

fn log_path(consumer: &Consumer, case: &Case, env: &Env, log: &str) -> PathBuf {
    env.dir
        .join(format!("{}-{}dest-{log}.log", consumer.slug, case.n()))
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

/// User and system CPU time of `pid` from /proc/PID/stat, in microseconds (clock-tick
/// resolution: only for the user/kernel split, not for the total).
fn user_sys_us(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((tick(11) * 1e6 / hz, tick(12) * 1e6 / hz))
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

/// Every event's body: 1 KiB of JSON.
fn event_body() -> String {
    format!(
        r#"{{"type":"order.paid","padding":"{}"}}"#,
        "x".repeat(1000)
    )
}

/// The idempotency key of the event whose id is `event_id` (both made by [`batch`]).
fn event_key(event_id: &str) -> Option<String> {
    event_id
        .strip_prefix("evt_")
        .map(|rest| format!("key_{rest}"))
}

fn batch(run: &str, n: usize) -> Vec<u8> {
    let body = event_body();
    let records: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            let id = format!("evt_{run}_{n}_{i}");
            let envelope = Envelope {
                v: ENVELOPE_VERSION,
                id: id.clone(),
                source: SOURCE.into(),
                idempotency_key: event_key(&id),
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

/// (min, median, max).
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Spawn -> first poll, in ms.
async fn cold_start(consumer: &Consumer, case: &Case, env: &Env) -> anyhow::Result<f64> {
    let api = RuntimeApi::start().await?;
    let started = Instant::now();
    let mut child = spawn(consumer, case, &api, env, "cold")?;
    let deadline = started + Duration::from_secs(30);
    let polled = loop {
        if let Some(t) = api.first_poll() {
            break t;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}) before polling: see {}",
                consumer.name,
                log_path(consumer, case, env, "cold").display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{}: no poll within 30 s", consumer.name);
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(polled.duration_since(started).as_secs_f64() * 1000.0)
}

/// What a DynamoDB operation does to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DdbKind {
    Write,
    Read,
    /// Neither (control plane: DescribeTable, ...).
    Other,
}

/// `Some` for a DynamoDB operation (`DynamoDB_20120810.PutItem`).
fn ddb_kind(operation: &str) -> Option<DdbKind> {
    let (service, name) = operation.split_once('.')?;
    if !service.starts_with("DynamoDB_") {
        return None;
    }
    Some(match name {
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => {
            DdbKind::Write
        }
        "GetItem"
        | "BatchGetItem"
        | "Query"
        | "Scan"
        | "TransactGetItems"
        | "ExecuteStatement"
        | "BatchExecuteStatement"
        | "ExecuteTransaction" => DdbKind::Read,
        _ => DdbKind::Other,
    })
}

/// One consumer's figures in one repeat of one case.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Sample {
    cold_start_ms: Vec<f64>,
    cold_start_median_ms: f64,
    cpu_us_per_event: f64,
    /// Share of the CPU time spent in the kernel (system time / (user + system)).
    kernel_share: f64,
    peak_rss_kib: Option<u64>,
    events: usize,
    failed: usize,
    wall_s: f64,
    calls: BTreeMap<String, u64>,
    dynamodb_calls_per_event: f64,
    dynamodb_writes_per_event: f64,
    /// Reads of any kind (PartiQL statements counted here too).
    dynamodb_reads_per_event: f64,
    sqs_calls_per_event: f64,
}

impl Sample {
    fn per_event(&self, operation: &str) -> f64 {
        self.calls.get(operation).copied().unwrap_or(0) as f64 / self.events.max(1) as f64
    }
}

/// One figure of a sample, for the report.
type Measure = fn(&Sample) -> f64;

fn cold(s: &Sample) -> f64 {
    s.cold_start_median_ms
}

fn cpu(s: &Sample) -> f64 {
    s.cpu_us_per_event
}

fn kernel_pct(s: &Sample) -> f64 {
    s.kernel_share * 100.0
}

fn rss(s: &Sample) -> f64 {
    s.peak_rss_kib.unwrap_or(0) as f64 / 1024.0
}

fn ddb_calls(s: &Sample) -> f64 {
    s.dynamodb_calls_per_event
}

fn ddb_writes(s: &Sample) -> f64 {
    s.dynamodb_writes_per_event
}

fn ddb_reads(s: &Sample) -> f64 {
    s.dynamodb_reads_per_event
}

fn put_items(s: &Sample) -> f64 {
    s.per_event("DynamoDB_20120810.PutItem")
}

fn update_items(s: &Sample) -> f64 {
    s.per_event("DynamoDB_20120810.UpdateItem")
}

fn sqs_calls(s: &Sample) -> f64 {
    s.sqs_calls_per_event
}

fn failures_in(response: &[u8]) -> anyhow::Result<usize> {
    Ok(
        serde_json::from_slice::<serde_json::Value>(response)?["batchItemFailures"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
    )
}

/// Warm-up batch, then `batches` measured batches, in one process.
async fn cpu_run(
    consumer: &Consumer,
    case: &Case,
    env: &Env,
    run: &str,
    batches: usize,
    sample: &mut Sample,
) -> anyhow::Result<()> {
    let api = RuntimeApi::start().await?;
    let mut child = spawn(consumer, case, &api, env, "warm")?;
    let pid = child.id();
    let result = async {
        let warm = api.invoke(batch(run, 0));
        let answer = tokio::time::timeout(Duration::from_secs(120), api.answer(&warm)).await?;
        let response = answer.map_err(|e| {
            anyhow::anyhow!(
                "{} warm-up failed: {}",
                consumer.name,
                String::from_utf8_lossy(&e)
            )
        })?;
        let failures = failures_in(&response)?;
        anyhow::ensure!(
            failures == 0,
            "{} warm-up batch had {failures} failures: {} (log: {})",
            consumer.name,
            String::from_utf8_lossy(&response),
            log_path(consumer, case, env, "warm").display()
        );
        let calls_before = env.aws.by_operation();
        let cpu_before = cpu_ns(pid)?;
        let (user_before, sys_before) = user_sys_us(pid)?;
        let wall = Instant::now();
        let mut failed = 0;
        for n in 1..=batches {
            let id = api.invoke(batch(run, n));
            let response = tokio::time::timeout(Duration::from_secs(120), api.answer(&id))
                .await?
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{} batch {n} failed: {}",
                        consumer.name,
                        String::from_utf8_lossy(&e)
                    )
                })?;
            failed += failures_in(&response)?;
        }
        let cpu = cpu_ns(pid)? - cpu_before;
        let (user, sys) = user_sys_us(pid)?;
        let (user, sys) = (user - user_before, sys - sys_before);
        sample.kernel_share = if user + sys > 0.0 {
            sys / (user + sys)
        } else {
            0.0
        };
        sample.wall_s = wall.elapsed().as_secs_f64();
        sample.peak_rss_kib = peak_rss_kib(pid);
        let events = batches * 10;
        sample.events = events;
        sample.failed = failed;
        sample.cpu_us_per_event = cpu as f64 / 1000.0 / events as f64;
        sample.calls = env
            .aws
            .by_operation()
            .into_iter()
            .map(|(op, n)| {
                let before = calls_before.get(&op).copied().unwrap_or(0);
                (op, n - before)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let count = |keep: &dyn Fn(&str) -> bool| {
            sample
                .calls
                .iter()
                .filter(|(op, _)| keep(op))
                .map(|(_, n)| *n)
                .sum::<u64>() as f64
                / events as f64
        };
        sample.dynamodb_calls_per_event = count(&|op| ddb_kind(op).is_some());
        sample.dynamodb_writes_per_event = count(&|op| ddb_kind(op) == Some(DdbKind::Write));
        sample.dynamodb_reads_per_event = count(&|op| ddb_kind(op) == Some(DdbKind::Read));
        sample.sqs_calls_per_event = count(&|op| op.starts_with("AmazonSQS."));
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Checks every request `consumer` sent to `case`'s destinations (`deliveries`: all the
/// destination server received): each of the `expected` events delivered once to each
/// destination, answered 2xx, validly signed, with that destination's
/// `sluice-destination` and `webhook-id`, and the body as sent. Returns what is wrong.
fn check_deliveries(
    consumer: &Consumer,
    case: &Case,
    deliveries: &[sluice_e2e::Delivery],
    expected: usize,
) -> anyhow::Result<Vec<String>> {
    let secret = Scheme::StandardWebhooks.parse_secret(SECRET)?;
    let body = event_body();
    let mut problems = Vec::new();
    for name in &case.names {
        let path = case.path(consumer, name);
        let mut events = HashSet::new();
        let mut count = 0;
        let mut wrong: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut note = |what: &str, example: String| {
            let entry = wrong.entry(what.to_string()).or_insert((0, example));
            entry.0 += 1;
        };
        for d in deliveries.iter().filter(|d| d.path == path) {
            count += 1;
            let header = |name: &str| d.headers.get(name).map(String::as_str).unwrap_or("");
            let id = header("webhook-id");
            let event_id = header("sluice-event-id");
            if !(200..300).contains(&d.status) {
                note("not answered 2xx", format!("{id}: {}", d.status));
            }
            let ts: i64 = header("webhook-timestamp").parse().unwrap_or(0);
            let signed =
                Scheme::StandardWebhooks.sign(&secret, id, ts, &d.body, &Default::default())?;
            let signature = signed
                .iter()
                .find(|(n, _)| n == "webhook-signature")
                .map(|(_, v)| v.as_str());
            if signature != Some(header("webhook-signature")) {
                note("not validly signed", id.to_string());
            }
            if header("sluice-destination") != name {
                note(
                    "another sluice-destination",
                    format!("{id}: {:?}", header("sluice-destination")),
                );
            }
            if header("sluice-source") != SOURCE {
                note("another sluice-source", id.to_string());
            }
            match event_key(event_id) {
                Some(key) if id == Case::pair_key(&key, name) => {}
                _ => note(
                    "a webhook-id that is not the pair's key",
                    format!("event {event_id:?}: webhook-id {id:?}"),
                ),
            }
            if d.body != body.as_bytes() {
                note("another body", id.to_string());
            }
            if !events.insert(event_id.to_string()) {
                note("delivered more than once", event_id.to_string());
            }
        }
        if events.len() != expected || count != expected {
            problems.push(format!(
                "{}, {}: destination `{name}` ({path}) got {count} deliveries of {} events, expected {expected} events once each",
                consumer.name,
                case.label(),
                events.len()
            ));
        }
        for (what, (n, example)) in wrong {
            problems.push(format!(
                "{}, {}: destination `{name}`: {n} deliveries {what} (e.g. {example})",
                consumer.name,
                case.label()
            ));
        }
    }
    Ok(problems)
}

/// What is wrong with `consumer`'s calls and acknowledgements in `samples` (one case).
fn check_calls(consumer: &Consumer, case: &Case, samples: &[Sample]) -> Vec<String> {
    let mut problems = Vec::new();
    let most_writes = 2 * case.n() as u64;
    for (r, s) in samples.iter().enumerate() {
        let what = format!("{}, {}, repeat {}", consumer.name, case.label(), r + 1);
        if s.failed > 0 {
            problems.push(format!("{what}: {} records not acknowledged", s.failed));
        }
        if !consumer.calls_asserted {
            continue;
        }
        let events = s.events as u64;
        let sum = |keep: &dyn Fn(&str) -> bool| -> u64 {
            s.calls
                .iter()
                .filter(|(op, _)| keep(op))
                .map(|(_, n)| *n)
                .sum()
        };
        let listed = |keep: &dyn Fn(&str) -> bool| -> String {
            s.calls
                .iter()
                .filter(|(op, _)| keep(op))
                .map(|(op, n)| format!("{op} {:.2}", *n as f64 / events.max(1) as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let is_ddb = |op: &str| ddb_kind(op).is_some();
        if sum(&is_ddb) > most_writes * events {
            problems.push(format!(
                "{what}: more than {most_writes} DynamoDB calls per event: {}",
                listed(&is_ddb)
            ));
        }
        let is_read = |op: &str| ddb_kind(op) == Some(DdbKind::Read);
        if sum(&is_read) > 0 {
            problems.push(format!(
                "{what}: DynamoDB reads on the happy path: {}",
                listed(&is_read)
            ));
        }
        let is_sqs = |op: &str| op.starts_with("AmazonSQS.");
        if sum(&is_sqs) > 0 {
            problems.push(format!(
                "{what}: SQS calls on the happy path: {}",
                listed(&is_sqs)
            ));
        }
    }
    problems
}

/// Each operation's calls per event, median over `samples`.
fn ops_median(samples: &[Sample]) -> BTreeMap<String, f64> {
    let ops: BTreeSet<String> = samples
        .iter()
        .flat_map(|s| s.calls.keys().cloned())
        .collect();
    ops.into_iter()
        .map(|op| {
            let v: Vec<f64> = samples.iter().map(|s| s.per_event(&op)).collect();
            let median = stats(&v).1;
            (op, median)
        })
        .collect()
}

fn program_path(program: &str) -> PathBuf {
    let path = PathBuf::from(program);
    // A relative path with a directory must not be resolved against the child's own
    // working directory. Not canonicalized: a venv's `python` is a symlink that must stay
    // one (Python finds its venv from the path it was started by).
    if program.contains('/') && path.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&path))
            .unwrap_or(path)
    } else {
        path
    }
}

fn fmt_spread(v: &[f64], digits: usize) -> String {
    let (min, med, max) = stats(v);
    format!("{med:.digits$} ({min:.digits$}-{max:.digits$})")
}

/// A ratio's median and spread, with the median as `1/x` when under 1.
fn fmt_ratio(v: &[f64]) -> String {
    let (_, med, _) = stats(v);
    if med < 1.0 {
        format!("{} = 1/{:.1}", fmt_spread(v, 3), 1.0 / med)
    } else {
        format!("{}x", fmt_spread(v, 2))
    }
}

/// A ratio's median and spread, as `1.23x (1.10-1.40)`.
fn fmt_times(v: &[f64]) -> String {
    let (min, med, max) = stats(v);
    format!("{med:.2}x ({min:.2}-{max:.2})")
}

/// `samples[case][consumer]`: one sample per repeat.
type Samples = Vec<Vec<Vec<Sample>>>;

fn column(samples: &Samples, k: usize, c: usize, f: Measure) -> Vec<f64> {
    samples[k][c].iter().map(f).collect()
}

/// Sluice / baseline in case `k`, per repeat (empty without a baseline).
fn ratio(samples: &Samples, k: usize, f: Measure) -> Vec<f64> {
    samples[k][0]
        .iter()
        .zip(samples[k].get(1).into_iter().flatten())
        .map(|(s, b)| f(s) / f(b))
        .collect()
}

/// Consumer `c`'s figure in case `k` over the same in case `base`, per repeat.
fn versus(samples: &Samples, k: usize, base: usize, c: usize, f: Measure) -> Vec<f64> {
    samples[k][c]
        .iter()
        .zip(&samples[base][c])
        .map(|(s, b)| f(s) / f(b))
        .collect()
}

fn print_case(samples: &Samples, consumers: &[Consumer], cases: &[Case], k: usize) {
    let case = &cases[k];
    let baseline = consumers.get(1).map(|b| b.name.as_str());
    let written = if case.n() == 1 {
        "source written the old way (`destination`)"
    } else {
        "`destinations`, no filters"
    };
    println!("  {}, {written}:", case.label());
    let mut header = format!("    {:<40} {:>20}", "measure", "Sluice");
    if let Some(b) = baseline {
        header += &format!(" {:>20} {:>30}", b, format!("Sluice/{b}"));
    }
    println!("{header}");
    let rows: [(&str, Measure, usize, bool); 4] = [
        ("cold start (spawn -> first poll), ms", cold, 1, true),
        ("CPU per event, us", cpu, 0, true),
        ("  of which in the kernel, %", kernel_pct, 0, false),
        ("peak RSS, MiB", rss, 1, true),
    ];
    for (label, f, digits, with_ratio) in rows {
        let mut line = format!(
            "    {label:<40} {:>20}",
            fmt_spread(&column(samples, k, 0, f), digits)
        );
        if baseline.is_some() {
            line += &format!(" {:>20}", fmt_spread(&column(samples, k, 1, f), digits));
            if with_ratio {
                line += &format!(" {:>30}", fmt_ratio(&ratio(samples, k, f)));
            }
        }
        println!("{line}");
    }
    let least = MIN_DYNAMODB_CALLS_PER_DESTINATION * case.n() as f64;
    let calls: [(String, Measure); 6] = [
        (
            format!("DynamoDB calls per event (minimum {least})"),
            ddb_calls,
        ),
        ("  writes".into(), ddb_writes),
        ("    PutItem (claims)".into(), put_items),
        ("    UpdateItem (completions)".into(), update_items),
        ("  reads".into(), ddb_reads),
        (
            format!("SQS calls per event (minimum {MIN_SQS_CALLS})"),
            sqs_calls,
        ),
    ];
    for (label, f) in calls {
        let mut line = format!(
            "    {label:<40} {:>20}",
            fmt_spread(&column(samples, k, 0, f), 2)
        );
        if baseline.is_some() {
            line += &format!(" {:>20}", fmt_spread(&column(samples, k, 1, f), 2));
        }
        println!("{line}");
    }
    for (c, consumer) in consumers.iter().enumerate() {
        let ops: Vec<String> = ops_median(&samples[k][c])
            .into_iter()
            .map(|(op, n)| format!("{op} {n:.2}"))
            .collect();
        println!(
            "    {} AWS calls per event by operation (median): {}",
            consumer.name,
            if ops.is_empty() {
                "none".to_string()
            } else {
                ops.join(", ")
            }
        );
    }
    if baseline.is_some() {
        let (_, cpu_ratio, max) = stats(&ratio(samples, k, cpu));
        println!(
            "    goal CPU per event at least 10x below the baseline: {} ({:.1}x below; worst repeat {:.1}x)",
            if cpu_ratio <= 0.1 { "met" } else { "NOT met" },
            1.0 / cpu_ratio,
            1.0 / max
        );
    }
    let (_, writes, _) = stats(&column(samples, k, 0, ddb_calls));
    let (_, reads, _) = stats(&column(samples, k, 0, ddb_reads));
    println!(
        "    Sluice: {writes:.2} DynamoDB calls per event for {} destination{} (at most {least}), {reads:.2} reads",
        case.n(),
        if case.n() == 1 { "" } else { "s" },
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.bootstrap.exists(),
        "{} is missing: cargo build --release -p sluice-lambda-worker --bin bootstrap",
        args.bootstrap.display()
    );
    anyhow::ensure!(args.repeats > 0 && args.cold_starts > 0 && args.batches > 0);
    let mut counts: Vec<usize> = Vec::new();
    for &n in &args.destinations {
        anyhow::ensure!(
            (1..=MAX_DESTINATIONS).contains(&n),
            "--destinations: {n} is not between 1 and {MAX_DESTINATIONS}"
        );
        if !counts.contains(&n) {
            counts.push(n);
        }
    }
    anyhow::ensure!(!counts.is_empty(), "--destinations is empty");
    let cases: Vec<Case> = counts.iter().map(|&n| Case::new(n)).collect();
    // The case the other cases are compared with, and whose figures head the JSON: one
    // destination if it was measured.
    let base = counts.iter().position(|&n| n == 1).unwrap_or(0);
    let mut consumers = vec![Consumer {
        name: "Sluice".into(),
        slug: "sluice",
        program: program_path(&args.bootstrap.to_string_lossy()),
        args: Vec::new(),
        dir: None,
        env: vec![("RUST_LOG", "warn".into())],
        calls_asserted: true,
    }];
    if let Some(command) = &args.baseline {
        let mut words = command.split_whitespace();
        let program = words
            .next()
            .ok_or_else(|| anyhow::anyhow!("--baseline is empty"))?;
        let program = program_path(program);
        anyhow::ensure!(
            program.exists(),
            "{} is missing: make .venv-bench/.installed",
            program.display()
        );
        consumers.push(Consumer {
            name: args.baseline_name.clone(),
            slug: "baseline",
            program,
            args: words.map(String::from).collect(),
            dir: Some(std::fs::canonicalize(&args.baseline_dir)?),
            env: vec![
                ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11".into()),
                // A Lambda function's code directory is read-only: no bytecode written
                // next to the handler (the installed packages ship theirs, as in Lambda).
                ("PYTHONDONTWRITEBYTECODE", "1".into()),
                ("PYTHONUNBUFFERED", "1".into()),
            ],
            calls_asserted: false,
        });
    }

    let dir = paths::target_dir().join("bench-consumer");
    std::fs::create_dir_all(&dir)?;
    let moto = Moto::start(None, &dir.join("moto.log")).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    // One table per consumer; the cases' events have keys of their own.
    for consumer in &consumers {
        create_table(&ddb, &consumer.table(), "pk").await?;
    }
    let env = Env {
        aws: FaultProxy::start(&moto.endpoint).await?,
        destination: Destination::start(None).await?,
        dir: dir.clone(),
    };
    let run = format!("{:x}", rand::random::<u32>());

    // One discarded start each: the first reads the files from disk.
    for consumer in &consumers {
        for case in &cases {
            cold_start(consumer, case, &env).await?;
        }
    }
    let mut samples: Samples = vec![vec![Vec::new(); consumers.len()]; cases.len()];
    for r in 0..args.repeats {
        // Alternate which case and which consumer go first.
        let (case_order, order): (Vec<usize>, Vec<usize>) = if r % 2 == 0 {
            ((0..cases.len()).collect(), (0..consumers.len()).collect())
        } else {
            (
                (0..cases.len()).rev().collect(),
                (0..consumers.len()).rev().collect(),
            )
        };
        for &k in &case_order {
            let case = &cases[k];
            let mut repeat = vec![Sample::default(); consumers.len()];
            for _ in 0..args.cold_starts {
                for &c in &order {
                    repeat[c]
                        .cold_start_ms
                        .push(cold_start(&consumers[c], case, &env).await?);
                }
            }
            for &c in &order {
                let sample = &mut repeat[c];
                sample.cold_start_median_ms = stats(&sample.cold_start_ms).1;
                cpu_run(
                    &consumers[c],
                    case,
                    &env,
                    &format!("{run}n{}r{r}", case.n()),
                    args.batches,
                    sample,
                )
                .await?;
            }
            for (c, sample) in repeat.into_iter().enumerate() {
                eprintln!(
                    "  repeat {}/{} {}, {}: cold start {:.1} ms, CPU {:.0} us/event, DynamoDB {:.2} calls/event, {} failed, {:.1} s",
                    r + 1,
                    args.repeats,
                    case.label(),
                    consumers[c].name,
                    sample.cold_start_median_ms,
                    sample.cpu_us_per_event,
                    sample.dynamodb_calls_per_event,
                    sample.failed,
                    sample.wall_s
                );
                samples[k][c].push(sample);
            }
        }
    }

    // What must hold: checked after the whole run, reported after the figures.
    let per_consumer_events = args.repeats * (args.batches + 1) * 10;
    let deliveries = env.destination.deliveries();
    let mut problems = Vec::new();
    let mut expected_deliveries = 0;
    for (k, case) in cases.iter().enumerate() {
        for (c, consumer) in consumers.iter().enumerate() {
            problems.extend(check_deliveries(
                consumer,
                case,
                &deliveries,
                per_consumer_events,
            )?);
            problems.extend(check_calls(consumer, case, &samples[k][c]));
            expected_deliveries += case.n() * per_consumer_events;
        }
    }
    if deliveries.len() != expected_deliveries {
        problems.push(format!(
            "the destination server received {} requests in all, expected {expected_deliveries}",
            deliveries.len()
        ));
    }
    drop(deliveries);
    let size = std::fs::metadata(&args.bootstrap)?.len();

    // The report.
    println!(
        "consumer bench: {} repeats (cases and consumers interleaved), each {} cold starts and {} batches of 10 fresh 1 KiB events per consumer and case",
        args.repeats, args.cold_starts, args.batches
    );
    for (c, consumer) in consumers.iter().enumerate() {
        let failed: usize = samples.iter().flat_map(|k| &k[c]).map(|s| s.failed).sum();
        println!(
            "  {}: {} {} ({failed} failed records)",
            consumer.name,
            consumer.program.display(),
            consumer.args.join(" "),
        );
    }
    println!("  median over the repeats (min-max); ratios taken within each repeat");
    for k in 0..cases.len() {
        print_case(&samples, &consumers, &cases, k);
    }
    if cases.len() > 1 {
        let baseline = consumers.get(1).map(|b| b.name.as_str());
        let vs = format!("vs {}", cases[base].n());
        println!(
            "  fan-out: CPU per event, us, by destinations (ratios within each repeat; `{vs}`: over the same consumer's CPU per event with {} destination{}):",
            cases[base].n(),
            if cases[base].n() == 1 { "" } else { "s" }
        );
        let mut header = format!("    {:<14} {:>20} {:>18}", "destinations", "Sluice", vs);
        if let Some(b) = baseline {
            header += &format!(" {:>20} {:>18} {:>30}", b, vs, format!("Sluice/{b}"));
        }
        println!("{header}");
        for (k, case) in cases.iter().enumerate() {
            let mut line = format!(
                "    {:<14} {:>20} {:>18}",
                case.n(),
                fmt_spread(&column(&samples, k, 0, cpu), 0),
                fmt_times(&versus(&samples, k, base, 0, cpu))
            );
            if baseline.is_some() {
                line += &format!(
                    " {:>20} {:>18} {:>30}",
                    fmt_spread(&column(&samples, k, 1, cpu), 0),
                    fmt_times(&versus(&samples, k, base, 1, cpu)),
                    fmt_ratio(&ratio(&samples, k, cpu))
                );
            }
            println!("{line}");
        }
    }
    println!(
        "  Sluice binary: {size} bytes ({:.1} MiB)",
        size as f64 / 1048576.0
    );
    let (_, cold_med, _) = stats(&column(&samples, base, 0, cold));
    println!(
        "  goal cold start < 50 ms (with {} destination{}): {}",
        cases[base].n(),
        if cases[base].n() == 1 { "" } else { "s" },
        if cold_med < 50.0 { "met" } else { "NOT met" }
    );
    if problems.is_empty() {
        println!(
            "  checked: every event delivered once to every destination by each consumer ({per_consumer_events} events per consumer and case, warm-ups included), Standard Webhooks signature, sluice-destination, webhook-id and body verified; every record acknowledged; Sluice at most 2 DynamoDB calls per event and destination, no DynamoDB read, no SQS call"
        );
    }

    if let Some(path) = &args.json {
        let summary = |k: usize, c: usize| {
            let s = &samples[k][c];
            let (cmin, cmed, cmax) = stats(&column(&samples, k, c, cold));
            let med = |f: Measure| stats(&column(&samples, k, c, f)).1;
            serde_json::json!({
                "name": consumers[c].name,
                "cold_start_ms": {"median": cmed, "min": cmin, "max": cmax,
                    "runs": s.iter().flat_map(|s| s.cold_start_ms.clone()).collect::<Vec<_>>()},
                "cpu_us_per_event": med(cpu),
                "kernel_share_of_cpu": med(kernel_pct) / 100.0,
                "peak_rss_kib": s.iter().filter_map(|s| s.peak_rss_kib).max(),
                "dynamodb_calls_per_event": med(ddb_calls),
                "dynamodb_writes_per_event": med(ddb_writes),
                "dynamodb_reads_per_event": med(ddb_reads),
                "sqs_calls_per_event": med(sqs_calls),
                "calls_per_event_by_operation": ops_median(s),
                "events": s.iter().map(|s| s.events).sum::<usize>(),
                "failed": s.iter().map(|s| s.failed).sum::<usize>(),
                "repeats": s,
            })
        };
        let spread = |r: Vec<f64>| {
            let (min, med, max) = stats(&r);
            serde_json::json!({"median": med, "min": min, "max": max, "per_repeat": r})
        };
        let case_doc = |k: usize| {
            let mut doc = serde_json::json!({
                "destinations": cases[k].n(),
                "names": cases[k].names,
                "sluice": summary(k, 0),
                "minimum_calls_per_event": {
                    "dynamodb": MIN_DYNAMODB_CALLS_PER_DESTINATION * cases[k].n() as f64,
                    "sqs": MIN_SQS_CALLS,
                },
                "cpu_per_event_over_base_case": {
                    "base_destinations": cases[base].n(),
                    "sluice": spread(versus(&samples, k, base, 0, cpu)),
                },
            });
            if consumers.len() > 1 {
                doc["baseline"] = summary(k, 1);
                doc["cpu_per_event_over_base_case"]["baseline"] =
                    spread(versus(&samples, k, base, 1, cpu));
                doc["ratios_sluice_over_baseline"] = serde_json::json!({
                    "cold_start": spread(ratio(&samples, k, cold)),
                    "cpu_per_event": spread(ratio(&samples, k, cpu)),
                    "peak_rss": spread(ratio(&samples, k, rss)),
                });
            }
            doc
        };
        let head = case_doc(base);
        let sluice = &head["sluice"];
        let mut doc = serde_json::json!({
            // The first fields as before routes (bench/cost.py reads them): the figures of
            // the base case (one destination), Sluice's first.
            "cold_start_ms": sluice["cold_start_ms"],
            "cpu_us_per_event": sluice["cpu_us_per_event"],
            "events": sluice["events"],
            "failed": sluice["failed"],
            "peak_rss_kib": sluice["peak_rss_kib"],
            "binary_bytes": size,
            "destinations": head["destinations"],
            "sluice": head["sluice"],
            "minimum_calls_per_event": head["minimum_calls_per_event"],
            "cases": (0..cases.len()).map(case_doc).collect::<Vec<_>>(),
            "problems": problems,
        });
        if consumers.len() > 1 {
            doc["baseline"] = head["baseline"].clone();
            doc["ratios_sluice_over_baseline"] = head["ratios_sluice_over_baseline"].clone();
        }
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("FAILED: {p}");
        }
        anyhow::bail!(
            "{} check{} failed (figures above; logs in {})",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            dir.display()
        );
    }
    Ok(())
}
