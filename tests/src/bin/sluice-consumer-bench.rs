//! `make bench`: the consumer's cold start, CPU per event, peak memory, AWS calls per event
//! and binary size, measured on the real `bootstrap` binary under a local Lambda Runtime
//! API (moto for DynamoDB behind a counting proxy, a local HTTP destination), side by side
//! with a baseline (`--baseline`: the same consume job written with Powertools for AWS
//! Lambda (Python), `bench/powertools/handler.py`, under `awslambdaric`) measured in the
//! same run against the same moto, destination and batches.
//!
//! - Cold start: process spawn -> its first `GET /runtime/invocation/next` (what Lambda
//!   bills as init: for a custom runtime it includes reading the config and building the
//!   AWS clients; for Python, starting the interpreter and importing the handler).
//! - CPU per event: the process's CPU time (sum of its threads' schedstat run time, in ns)
//!   over `--batches` batches of 10 fresh events (1 KiB JSON each; claim, deliver,
//!   complete), after one warm-up batch; divided by the number of events. Wall time is
//!   mostly moto's and is not reported as ours.
//! - Peak memory: VmHWM of the process after the run.
//! - AWS calls per event: requests the proxy in front of moto forwarded during the
//!   measured batches, by operation (`X-Amz-Target`), divided by the number of events.
//!
//! Everything is repeated `--repeats` times, the consumers interleaved (which goes first
//! alternates); each ratio is taken within one repeat, then the median and spread over the
//! repeats are printed. Every delivery is checked: each event delivered once, with a valid
//! Standard Webhooks signature. Measures; never asserts a time.

use clap::Parser;
use sluice_e2e::fault_proxy::FaultProxy;
use sluice_e2e::moto::Moto;
use sluice_e2e::runtime_api::RuntimeApi;
use sluice_e2e::stack::create_table;
use sluice_e2e::{paths, Destination};
use sluice_protocol::{Body, Envelope, Scheme, ENVELOPE_VERSION};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// DynamoDB calls per event the semantics need on the happy path: the conditional PutItem
/// that claims the event and the UpdateItem that marks it completed. No reads.
const MIN_DYNAMODB_CALLS: f64 = 2.0;
/// SQS calls per event the function needs on the happy path: none (the event source
/// mapping deletes the acknowledged messages).
const MIN_SQS_CALLS: f64 = 0.0;

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
    /// Times the whole measurement is repeated (consumers interleaved).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Cold starts per consumer in each repeat (their median is that repeat's figure).
    #[arg(long, default_value_t = 5)]
    cold_starts: usize,
    /// Batches of 10 events for the CPU measurement, per consumer and repeat.
    #[arg(long, default_value_t = 30)]
    batches: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One consumer under test.
struct Consumer {
    name: String,
    /// Short name: its table, destination path and log files.
    slug: &'static str,
    program: PathBuf,
    args: Vec<String>,
    dir: Option<PathBuf>,
    env: Vec<(&'static str, String)>,
}

impl Consumer {
    fn table(&self) -> String {
        format!("bench-{}", self.slug)
    }

    fn path(&self) -> String {
        format!("/{}", self.slug)
    }
}

struct Env {
    /// The counting proxy in front of moto: what the consumers use as their AWS endpoint.
    aws: FaultProxy,
    destination: Destination,
    dir: PathBuf,
}

fn spawn(consumer: &Consumer, api: &RuntimeApi, env: &Env, log: &str) -> anyhow::Result<Child> {
    let sources = format!(
        r#"{{"sources":[{{"name":"bench","scheme":"standard-webhooks","destination":"{}{}"}}]}}"#,
        env.destination.url,
        consumer.path()
    );
    let log = std::fs::File::create(env.dir.join(format!("{}-{log}.log", consumer.slug)))?;
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
        .env("SLUICE_SOURCES", sources)
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
async fn cold_start(consumer: &Consumer, env: &Env) -> anyhow::Result<f64> {
    let api = RuntimeApi::start().await?;
    let started = Instant::now();
    let mut child = spawn(consumer, &api, env, "cold")?;
    let deadline = started + Duration::from_secs(30);
    let polled = loop {
        if let Some(t) = api.first_poll() {
            break t;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}) before polling: see {}",
                consumer.name,
                env.dir
                    .join(format!("{}-cold.log", consumer.slug))
                    .display()
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

/// One consumer's figures in one repeat.
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
    sqs_calls_per_event: f64,
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
    env: &Env,
    run: &str,
    batches: usize,
    sample: &mut Sample,
) -> anyhow::Result<()> {
    let api = RuntimeApi::start().await?;
    let mut child = spawn(consumer, &api, env, "warm")?;
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
            "{} warm-up batch had {failures} failures: {}",
            consumer.name,
            String::from_utf8_lossy(&response)
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
        let count = |prefix: &str| {
            sample
                .calls
                .iter()
                .filter(|(op, _)| op.starts_with(prefix))
                .map(|(_, n)| *n)
                .sum::<u64>() as f64
                / events as f64
        };
        sample.dynamodb_calls_per_event = count("DynamoDB_");
        sample.sqs_calls_per_event = count("AmazonSQS.");
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Every delivery to the consumer's path: once per event, validly signed.
fn check_deliveries(consumer: &Consumer, env: &Env, expected: usize) -> anyhow::Result<()> {
    let secret = Scheme::StandardWebhooks.parse_secret(SECRET)?;
    let deliveries = env.destination.successful(&consumer.path());
    let mut ids = HashSet::new();
    for d in &deliveries {
        let header = |name: &str| d.headers.get(name).map(String::as_str).unwrap_or("");
        let id = header("webhook-id");
        let ts: i64 = header("webhook-timestamp").parse().unwrap_or(0);
        let expected_headers =
            Scheme::StandardWebhooks.sign(&secret, id, ts, &d.body, &Default::default())?;
        let signature = expected_headers
            .iter()
            .find(|(n, _)| n == "webhook-signature")
            .map(|(_, v)| v.as_str());
        anyhow::ensure!(
            signature == Some(header("webhook-signature")),
            "{}: delivery {id} is not validly signed",
            consumer.name
        );
        anyhow::ensure!(
            ids.insert(id.to_string()),
            "{}: {id} delivered twice",
            consumer.name
        );
    }
    anyhow::ensure!(
        deliveries.len() == expected,
        "{}: {} deliveries, expected {expected}",
        consumer.name,
        deliveries.len()
    );
    Ok(())
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.bootstrap.exists(),
        "{} is missing: cargo build --release -p sluice-lambda-worker --bin bootstrap",
        args.bootstrap.display()
    );
    anyhow::ensure!(args.repeats > 0 && args.cold_starts > 0 && args.batches > 0);
    let mut consumers = vec![Consumer {
        name: "Sluice".into(),
        slug: "sluice",
        program: program_path(&args.bootstrap.to_string_lossy()),
        args: Vec::new(),
        dir: None,
        env: vec![("RUST_LOG", "warn".into())],
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
        });
    }

    let dir = paths::target_dir().join("bench-consumer");
    std::fs::create_dir_all(&dir)?;
    let moto = Moto::start(None, &dir.join("moto.log")).await?;
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
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
        cold_start(consumer, &env).await?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); consumers.len()];
    for r in 0..args.repeats {
        // Alternate who goes first.
        let order: Vec<usize> = if r % 2 == 0 {
            (0..consumers.len()).collect()
        } else {
            (0..consumers.len()).rev().collect()
        };
        let mut repeat = vec![Sample::default(); consumers.len()];
        for _ in 0..args.cold_starts {
            for &c in &order {
                repeat[c]
                    .cold_start_ms
                    .push(cold_start(&consumers[c], &env).await?);
            }
        }
        for &c in &order {
            let sample = &mut repeat[c];
            sample.cold_start_median_ms = stats(&sample.cold_start_ms).1;
            cpu_run(
                &consumers[c],
                &env,
                &format!("{run}r{r}"),
                args.batches,
                sample,
            )
            .await?;
        }
        for (c, sample) in repeat.into_iter().enumerate() {
            eprintln!(
                "  repeat {}/{} {}: cold start {:.1} ms, CPU {:.0} us/event, {} failed",
                r + 1,
                args.repeats,
                consumers[c].name,
                sample.cold_start_median_ms,
                sample.cpu_us_per_event,
                sample.failed
            );
            samples[c].push(sample);
        }
    }
    let per_consumer_events = args.repeats * (args.batches + 1) * 10;
    for consumer in &consumers {
        check_deliveries(consumer, &env, per_consumer_events)?;
    }
    let size = std::fs::metadata(&args.bootstrap)?.len();

    // The report.
    let col = |c: usize, f: Measure| -> Vec<f64> { samples[c].iter().map(f).collect() };
    // Sluice / baseline, per repeat.
    let ratio = |f: Measure| -> Vec<f64> {
        samples[0]
            .iter()
            .zip(samples.get(1).into_iter().flatten())
            .map(|(s, b)| f(s) / f(b))
            .collect()
    };
    let failed: Vec<usize> = (0..consumers.len())
        .map(|c| samples[c].iter().map(|s| s.failed).sum())
        .collect();
    println!(
        "consumer bench: {} repeats (consumers interleaved), each {} cold starts and {} batches of 10 fresh 1 KiB events per consumer",
        args.repeats, args.cold_starts, args.batches
    );
    for (c, consumer) in consumers.iter().enumerate() {
        println!(
            "  {}: {} {} ({} failed records)",
            consumer.name,
            consumer.program.display(),
            consumer.args.join(" "),
            failed[c]
        );
    }
    println!("  median over the repeats (min-max); ratios taken within each repeat");
    let baseline = consumers.get(1).map(|b| b.name.clone());
    let mut header = format!("  {:<38} {:>20}", "measure", "Sluice");
    if let Some(b) = &baseline {
        header += &format!(" {:>20} {:>28}", b, format!("Sluice/{b}"));
    }
    println!("{header}");
    let rows: [(&str, Measure, usize, bool); 4] = [
        ("cold start (spawn -> first poll), ms", cold, 1, true),
        ("CPU per event, us", cpu, 0, true),
        ("  of which in the kernel, %", kernel_pct, 0, false),
        ("peak RSS, MiB", rss, 1, true),
    ];
    for (label, f, digits, with_ratio) in rows {
        let mut line = format!("  {label:<38} {:>20}", fmt_spread(&col(0, f), digits));
        if baseline.is_some() && !with_ratio {
            line += &format!(" {:>20}", fmt_spread(&col(1, f), digits));
        } else if baseline.is_some() {
            let r = ratio(f);
            let (_, med, _) = stats(&r);
            line += &format!(
                " {:>20} {:>28}",
                fmt_spread(&col(1, f), digits),
                format!("{} = 1/{:.1}", fmt_spread(&r, 3), 1.0 / med)
            );
        }
        println!("{line}");
    }
    let calls: [(&str, Measure, f64); 2] = [
        ("DynamoDB calls per event", ddb_calls, MIN_DYNAMODB_CALLS),
        ("SQS calls per event", sqs_calls, MIN_SQS_CALLS),
    ];
    for (label, f, min) in calls {
        let mut line = format!(
            "  {:<38} {:>20}",
            format!("{label} (minimum {min})"),
            fmt_spread(&col(0, f), 2)
        );
        if baseline.is_some() {
            line += &format!(" {:>20}", fmt_spread(&col(1, f), 2));
        }
        println!("{line}");
    }
    for (c, consumer) in consumers.iter().enumerate() {
        let ops: Vec<String> = samples[c]
            .last()
            .map(|s| {
                s.calls
                    .iter()
                    .map(|(op, n)| format!("{op} {:.2}", *n as f64 / s.events as f64))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "  {} AWS calls per event by operation (last repeat): {}",
            consumer.name,
            if ops.is_empty() {
                "none".to_string()
            } else {
                ops.join(", ")
            }
        );
    }
    println!(
        "  Sluice binary: {size} bytes ({:.1} MiB)",
        size as f64 / 1048576.0
    );
    let (_, cold_med, _) = stats(&col(0, cold));
    println!(
        "  goal cold start < 50 ms: {}",
        if cold_med < 50.0 { "met" } else { "NOT met" }
    );
    if baseline.is_some() {
        let (_, cpu_ratio, _) = stats(&ratio(cpu));
        println!(
            "  goal CPU per event at least 10x below the baseline: {} ({:.1}x below)",
            if cpu_ratio <= 0.1 { "met" } else { "NOT met" },
            1.0 / cpu_ratio
        );
    }
    println!(
        "  every event delivered once per consumer, Standard Webhooks signature verified ({per_consumer_events} each, warm-ups included)"
    );

    if let Some(path) = args.json {
        let summary = |c: usize| {
            let (cmin, cmed, cmax) = stats(&col(c, cold));
            serde_json::json!({
                "name": consumers[c].name,
                "cold_start_ms": {"median": cmed, "min": cmin, "max": cmax,
                    "runs": samples[c].iter().flat_map(|s| s.cold_start_ms.clone()).collect::<Vec<_>>()},
                "cpu_us_per_event": stats(&col(c, cpu)).1,
                "kernel_share_of_cpu": stats(&col(c, kernel_pct)).1 / 100.0,
                "peak_rss_kib": samples[c].iter().filter_map(|s| s.peak_rss_kib).max(),
                "dynamodb_calls_per_event": stats(&col(c, ddb_calls)).1,
                "sqs_calls_per_event": stats(&col(c, sqs_calls)).1,
                "events": samples[c].iter().map(|s| s.events).sum::<usize>(),
                "failed": failed[c],
                "repeats": samples[c],
            })
        };
        let sluice = summary(0);
        let mut doc = serde_json::json!({
            // The first fields as before the baseline was added: Sluice's figures.
            "cold_start_ms": sluice["cold_start_ms"],
            "cpu_us_per_event": sluice["cpu_us_per_event"],
            "events": sluice["events"],
            "failed": sluice["failed"],
            "peak_rss_kib": sluice["peak_rss_kib"],
            "binary_bytes": size,
            "sluice": sluice,
            "minimum_calls_per_event": {"dynamodb": MIN_DYNAMODB_CALLS, "sqs": MIN_SQS_CALLS},
        });
        if baseline.is_some() {
            let ratios = |f: Measure| {
                let r = ratio(f);
                let (min, med, max) = stats(&r);
                serde_json::json!({"median": med, "min": min, "max": max, "per_repeat": r})
            };
            doc["baseline"] = summary(1);
            doc["ratios_sluice_over_baseline"] = serde_json::json!({
                "cold_start": ratios(cold),
                "cpu_per_event": ratios(cpu),
                "peak_rss": ratios(rss),
            });
        }
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}
