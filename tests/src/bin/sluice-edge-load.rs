//! `make bench` (edge part): Sluice's Rust/wasm edge against the same job written as a plain
//! TypeScript Worker (bench/ts-worker, WebCrypto HMAC, `aws4fetch` SigV4), issue 7.
//!
//! Both Workers run at once, each under its own `wrangler dev --local` (workerd) with the
//! same flags, against one in-process stub that verifies every SigV4 signature and answers
//! like SQS (SendMessage) and S3 (PutObject, for claim-checked bodies above 200 KiB). Each
//! case (scheme and body size) is loaded with `wrk`, Sluice and TS back to back, the order
//! alternating, repeated; ratios are taken within each pair and reported as median and
//! min-max. Before loading, one request per case to each Worker checks that both queue the
//! same envelope byte for byte and that both answer 401 to a tampered body.
//!
//! Then the bundles (`wrangler deploy --dry-run --outdir`, gzip -9) and start-up: each
//! bundle served by `workerd serve` alone, from process spawn to the first answer of
//! `/healthz`, minus the same for an empty Worker.
//!
//! Numbers from one machine running load generator, workerd and stub together: compare
//! them as ratios within one run, never as absolute capacity.

use anyhow::Context as _;
use clap::Parser;
use sluice_e2e::edge::start_script;
use sluice_e2e::paths;
use sluice_e2e::process::Managed;
use sluice_e2e::sqs_stub::SqsStub;
use sluice_e2e::stack::{dev_secret, unix_now};
use sluice_e2e::wait::free_port;
use sluice_protocol::{Scheme, Secret, SourceConfig, SourcesConfig};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Sluice's edge vs a TypeScript Worker under wrangler dev, loaded with wrk")]
struct Args {
    /// Seconds per measured run (one Worker, one case).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Measured runs per Worker and case.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Unmeasured warm-up per Worker and case, seconds.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u32,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Cases, `scheme:bytes` (scheme `standard` or `stripe`).
    #[arg(long, value_delimiter = ',', default_values_t = [
        "standard:1024".parse::<Case>().unwrap(),
        "standard:65536".parse::<Case>().unwrap(),
        "standard:524288".parse::<Case>().unwrap(),
        "stripe:1024".parse::<Case>().unwrap(),
    ])]
    cases: Vec<Case>,
    /// Start-up measurements per Worker (workerd spawn to first answer).
    #[arg(long, default_value_t = 30)]
    startup_repeats: usize,
    /// The Sluice Worker's entry point (default: edge/build/worker/shim.mjs, `make edge`), e.g.
    /// an experimental build to compare.
    #[arg(long)]
    sluice_main: Option<PathBuf>,
    /// Also write every measurement here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Case {
    scheme: Scheme,
    size: usize,
}

impl Case {
    fn source(&self) -> &'static str {
        match self.scheme {
            Scheme::Stripe => "stripe",
            _ => "standard",
        }
    }

    fn label(&self) -> String {
        let size = if self.size.is_multiple_of(1024) {
            format!("{} KiB", self.size / 1024)
        } else {
            format!("{} B", self.size)
        };
        format!("{} {size}", self.source())
    }
}

impl FromStr for Case {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, size) = s
            .split_once(':')
            .ok_or_else(|| format!("{s}: expected scheme:bytes"))?;
        let scheme = match scheme {
            "standard" => Scheme::StandardWebhooks,
            "stripe" => Scheme::Stripe,
            other => return Err(format!("{other}: scheme must be standard or stripe")),
        };
        let size = size.parse().map_err(|e| format!("{size}: {e}"))?;
        if size < 64 {
            return Err("bodies start at 64 bytes".into());
        }
        Ok(Case { scheme, size })
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source(), self.size)
    }
}

/// One of the two Workers under test.
struct Worker {
    name: &'static str,
    dir: PathBuf,
    port: u16,
    process: Managed,
    spawn_to_health: Duration,
}

/// One wrk run.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    bad: u64,
    /// CPU per request of the Worker's whole `wrangler dev` process tree, ms.
    tree_cpu_ms: f64,
    /// CPU per request of the workerd process running the Worker, ms.
    worker_cpu_ms: f64,
    /// CPU per request of this process (the stub; wrk is not counted), ms.
    stub_cpu_ms: f64,
}

/// A provider-like JSON body of exactly `size` bytes, with an `id` (Stripe's event id).
fn body(size: usize) -> String {
    let mut s = String::from("{\"id\":\"evt_load_1\",\"type\":\"invoice.paid\",\"data\":\"");
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

fn signed_headers(case: &Case, key: &Secret, body: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    Ok(case
        .scheme
        .sign(key, "msg_load", unix_now(), body, &Default::default())?)
}

/// A wrk script posting the body in `body_path` with fresh signature headers.
fn wrk_script(path: &Path, body_path: &Path, headers: &[(String, String)]) -> anyhow::Result<()> {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"content-type\"] = \"application/json\"\n",
    );
    for (k, v) in headers {
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
    std::fs::write(path, lua)?;
    Ok(())
}

/// wrk's `12.5ms`, `850.00us`, `1.20s`, `2.00m` in milliseconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> anyhow::Result<Run> {
    let line_value = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
    };
    let rps = line_value("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .context("wrk printed no Requests/sec")?;
    let p50_ms = line_value("50%")
        .and_then(parse_duration_ms)
        .context("wrk printed no 50% latency")?;
    let p99_ms = line_value("99%")
        .and_then(parse_duration_ms)
        .context("wrk printed no 99% latency")?;
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("wrk printed no request count")?;
    let non2xx: u64 = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket: u64 = text
        .lines()
        .find(|l| l.contains("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Ok(Run {
        rps,
        p50_ms,
        p99_ms,
        requests,
        bad: non2xx + socket,
        ..Run::default()
    })
}

/// CPU time (user + system), in ms, of every process in process group `pgid` (a
/// `wrangler dev`: node, the proxy's workerd, the Worker's workerd), and of the Worker's
/// own workerd alone (the one started with an inspector address).
fn group_cpu_ms(pgid: u32) -> (f64, f64) {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (mut total, mut worker) = (0u64, 0u64);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0.0, 0.0);
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may contain spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if f.len() > 12 && f[2].parse::<u32>().ok() == Some(pgid) {
            let cpu = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
            total += cpu;
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("workerd") && cmdline.contains("--inspector-addr") {
                worker += cpu;
            }
        }
    }
    (
        total as f64 * 1000.0 / ticks,
        worker as f64 * 1000.0 / ticks,
    )
}

/// CPU time (user + system) of this process (the stub), in ms.
fn own_cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

async fn wrk(
    worker: &Worker,
    case: &Case,
    key: &Secret,
    body_path: &Path,
    body: &[u8],
    seconds: u32,
    connections: u32,
) -> anyhow::Result<Run> {
    let script = worker
        .dir
        .join(format!("load-{}-{}.lua", case.source(), case.size));
    wrk_script(&script, body_path, &signed_headers(case, key, body)?)?;
    let url = format!("http://127.0.0.1:{}/hooks/{}", worker.port, case.source());
    let pgid = worker.process.pid().context("wrangler is not running")?;
    let (tree_before, worker_before) = group_cpu_ms(pgid);
    let stub_before = own_cpu_ms();
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "30s",
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(&url)
        .output()
        .await
        .context("could not run wrk (apt-get install wrk)")?;
    let (tree_after, worker_after) = group_cpu_ms(pgid);
    let stub_cpu = own_cpu_ms() - stub_before;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut run = parse_wrk(&text).with_context(|| format!("wrk output:\n{text}"))?;
    let per = |ms: f64| ms / run.requests.max(1) as f64;
    run.tree_cpu_ms = per(tree_after - tree_before);
    run.worker_cpu_ms = per(worker_after - worker_before);
    run.stub_cpu_ms = per(stub_cpu);
    Ok(run)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `median (min-max)`; a ratio (`digits` 2) gets an `x`.
fn spread(values: &[f64], digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let x = if digits == 2 { "x" } else { "" };
    format!(
        "{:.digits$}{x} ({:.digits$}-{:.digits$})",
        median(values),
        min,
        max
    )
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// Sends one signed request; returns status and body.
async fn post(
    client: &reqwest::Client,
    worker: &Worker,
    case: &Case,
    headers: &[(String, String)],
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let mut req = client
        .post(format!(
            "http://127.0.0.1:{}/hooks/{}",
            worker.port,
            case.source()
        ))
        .header("content-type", "application/json")
        .header("user-agent", "sluice-edge-load/1")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

/// One request per Worker: both answer 202, queue the same envelope (byte for byte, once
/// the event id, trace id and receive time are swapped) and answer 401 to a tampered body.
async fn parity(
    client: &reqwest::Client,
    stub: &SqsStub,
    workers: &[Worker],
    case: &Case,
    key: &Secret,
) -> anyhow::Result<()> {
    let body = body(case.size);
    let headers = signed_headers(case, key, body.as_bytes())?;
    let mut queued = Vec::new();
    for w in workers {
        let (status, text) = post(client, w, case, &headers, body.as_bytes()).await?;
        anyhow::ensure!(
            status == 202,
            "{} answered {status} to a valid {case} request: {text}",
            w.name
        );
        let id = serde_json::from_str::<serde_json::Value>(&text)?["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{} answered 202 without an id: {text}", w.name))?;
        let message = stub.last_message().context("the stub queued nothing")?;
        // Envelope version 2: the JSON line first, the body after it.
        let line = message.split('\n').next().unwrap_or_default();
        let envelope: serde_json::Value = serde_json::from_str(line)?;
        anyhow::ensure!(
            envelope["id"] == id.as_str(),
            "{}: the queued envelope is not the event answered",
            w.name
        );
        queued.push((message, envelope));
        let mut tampered = body.clone().into_bytes();
        tampered[body.len() / 2] ^= 1;
        let (status, text) = post(client, w, case, &headers, &tampered).await?;
        anyhow::ensure!(
            status == 401,
            "{} answered {status} to a tampered {case} body: {text}",
            w.name
        );
    }
    let (sluice_text, sluice) = &queued[0];
    let (ts_text, ts) = &queued[1];
    let field = |v: &serde_json::Value, name: &str| v[name].to_string();
    let mut normalised = ts_text.clone();
    for name in ["id", "trace_id"] {
        normalised = normalised.replace(
            field(ts, name).trim_matches('"'),
            field(sluice, name).trim_matches('"'),
        );
    }
    normalised = normalised.replace(
        &format!("\"received_at_ms\":{}", field(ts, "received_at_ms")),
        &format!("\"received_at_ms\":{}", field(sluice, "received_at_ms")),
    );
    if normalised != *sluice_text {
        let at = normalised
            .bytes()
            .zip(sluice_text.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(normalised.len().min(sluice_text.len()));
        let around = |s: &str| {
            s.get(at.saturating_sub(80)..(at + 80).min(s.len()))
                .unwrap_or("")
                .to_string()
        };
        anyhow::bail!(
            "{case}: the envelopes differ at byte {at}:\n  sluice: …{}…\n  ts:     …{}…",
            around(sluice_text),
            around(&normalised)
        );
    }
    eprintln!(
        "  {case}: same envelope from both ({} bytes, body {}), 401 to a tampered body",
        sluice_text.len(),
        sluice["body"]["encoding"]
    );
    Ok(())
}

/// Files of a `wrangler deploy --dry-run --outdir` (no source maps, no README): name, bytes,
/// gzip -9 bytes.
fn bundle(worker: &Worker) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let out = worker.dir.join("bundle");
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(paths::root().join("node_modules/.bin/wrangler"))
        .current_dir(&worker.dir)
        .args(["deploy", "--dry-run", "--config"])
        .arg(worker.dir.join("wrangler.toml"))
        .arg("--outdir")
        .arg(&out)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", worker.dir.join("wrangler-logs"))
        .output()?;
    anyhow::ensure!(
        status.status.success(),
        "wrangler deploy --dry-run for {} failed: {}",
        worker.name,
        String::from_utf8_lossy(&status.stderr)
    );
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&out)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.ends_with(".map") || name == "README.md" {
            continue;
        }
        let raw = std::fs::metadata(&path)?.len();
        let gz = Command::new("gzip").arg("-9c").arg(&path).output()?;
        anyhow::ensure!(gz.status.success(), "gzip failed");
        files.push((name, raw, gz.stdout.len() as u64));
    }
    files.sort_by_key(|f| f.0.ends_with(".wasm"));
    Ok(files)
}

/// A workerd config serving the modules of `bundle_dir` (entry point first) on `port`, to be
/// written into `bundle_dir`.
fn capnp(bundle_dir: &Path, port: u16, date: &str) -> anyhow::Result<String> {
    let mut modules = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(bundle_dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".js") || n.ends_with(".mjs") || n.ends_with(".wasm"))
        .collect();
    // The entry point (the only JavaScript module) first: workerd's main module.
    names.sort_by_key(|n| n.ends_with(".wasm"));
    for name in names {
        let kind = if name.ends_with(".wasm") {
            "wasm"
        } else {
            "esModule"
        };
        // Relative to the config, which is written into `bundle_dir`.
        modules.push(format!("(name = {name:?}, {kind} = embed {name:?})"));
    }
    Ok(format!(
        "using Workerd = import \"/workerd/workerd.capnp\";\n\
         const config :Workerd.Config = (\n  services = [ (name = \"main\", worker = .w) ],\n  \
         sockets = [ (name = \"http\", address = \"127.0.0.1:{port}\", http = (), service = \"main\") ],\n);\n\
         const w :Workerd.Worker = (\n  modules = [ {} ],\n  compatibilityDate = {date:?},\n);\n",
        modules.join(", ")
    ))
}

/// Spawn of `workerd serve config` to its first `200` on `/healthz`, polled every ms.
fn workerd_first_answer(config: &Path, port: u16, log: &Path) -> anyhow::Result<Duration> {
    let mut cmd = Command::new(paths::root().join("node_modules/.bin/workerd"));
    cmd.arg("serve").arg(config);
    let started = Instant::now();
    let mut process = Managed::spawn("workerd", cmd, log)?;
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream.write_all(
                b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
            )?;
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200") {
                let took = started.elapsed();
                process.kill();
                return Ok(took);
            }
        }
        anyhow::ensure!(
            process.is_running(),
            "workerd exited early: see {}",
            log.display()
        );
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "workerd did not answer within 30 s: see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.repeats > 0, "--repeats must be at least 1");
    let root = paths::root();
    let shim = args
        .sluice_main
        .clone()
        .unwrap_or_else(|| root.join("edge/build/worker/shim.mjs"));
    anyhow::ensure!(
        shim.exists(),
        "{} is missing: build the edge first (make edge)",
        shim.display()
    );
    let ts_main = root.join("bench/ts-worker/src/index.ts");
    anyhow::ensure!(
        root.join("node_modules/aws4fetch").exists(),
        "node_modules/aws4fetch is missing: npm ci (make node-tools)"
    );
    let dir = std::env::temp_dir().join(format!("sluice-edge-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let stub = SqsStub::start("AKIDLOADTEST", "load-test-secret", "us-east-1").await?;
    let standard_secret = dev_secret(Scheme::StandardWebhooks);
    let stripe_secret = dev_secret(Scheme::Stripe);
    let sources = SourcesConfig {
        sources: vec![
            SourceConfig::new(
                "standard",
                Scheme::StandardWebhooks,
                "https://example.com/x",
            ),
            SourceConfig::new("stripe", Scheme::Stripe, "https://example.com/y"),
        ],
    };
    let vars = [
        ("AWS_REGION", "us-east-1".to_string()),
        ("SQS_QUEUE_URL", stub.queue_url()),
        ("SQS_ENDPOINT", stub.url.clone()),
        ("PAYLOAD_BUCKET", "sluice-load-payloads".to_string()),
        ("S3_ENDPOINT", stub.url.clone()),
        ("SLUICE_SOURCES", sources.to_json()),
    ];
    let secrets = [
        ("AWS_ACCESS_KEY_ID".to_string(), "AKIDLOADTEST".to_string()),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            "load-test-secret".to_string(),
        ),
        (
            "SLUICE_SECRET_STANDARD".to_string(),
            standard_secret.clone(),
        ),
        ("SLUICE_SECRET_STRIPE".to_string(), stripe_secret.clone()),
    ];
    let standard_key = Scheme::StandardWebhooks.parse_secret(&standard_secret)?;
    let stripe_key = Scheme::Stripe.parse_secret(&stripe_secret)?;
    let key_for = |case: &Case| match case.scheme {
        Scheme::Stripe => &stripe_key,
        _ => &standard_key,
    };

    eprintln!("starting both Workers under wrangler dev (same flags, same stub)");
    let mut workers = Vec::new();
    for (name, main) in [("sluice", &shim), ("ts", &ts_main)] {
        let wdir = dir.join(name);
        std::fs::create_dir_all(&wdir)?;
        let port = free_port()?;
        let started = Instant::now();
        let process = start_script(
            main,
            &format!("edge-load-{name}"),
            &wdir,
            port,
            &vars,
            &secrets,
            "warn",
            &[],
        )
        .await?;
        workers.push(Worker {
            name,
            dir: wdir,
            port,
            process,
            spawn_to_health: started.elapsed(),
        });
    }

    eprintln!("checking both queue the same envelope:");
    let client = reqwest::Client::new();
    for case in &args.cases {
        parity(&client, &stub, &workers, case, key_for(case)).await?;
    }

    // Signatures stay verified on every request; the message checks (JSON parsing, costly
    // in this debug build) on one in 16 from here on, so the stub takes little of the CPU
    // the Workers share with it.
    stub.sample_message_checks(16);
    let mut results: Vec<(Case, Vec<Run>, Vec<Run>)> = Vec::new();
    for case in &args.cases {
        let body = body(case.size);
        let body_path = dir.join(format!("body-{}.json", case.size));
        std::fs::write(&body_path, &body)?;
        let key = key_for(case);
        for w in &workers {
            eprintln!("  {case}: warm-up {} ({} s)", w.name, args.warmup_seconds);
            wrk(
                w,
                case,
                key,
                &body_path,
                body.as_bytes(),
                args.warmup_seconds,
                args.connections,
            )
            .await?;
        }
        let (mut sluice, mut ts) = (Vec::new(), Vec::new());
        for r in 0..args.repeats {
            let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let w = &workers[i];
                let run = wrk(
                    w,
                    case,
                    key,
                    &body_path,
                    body.as_bytes(),
                    args.seconds,
                    args.connections,
                )
                .await?;
                eprintln!(
                    "  {case} #{r} {:<6}: {:>7.1} req/s  p50 {:>8}  p99 {:>8}  CPU/req: Worker {:.2} ms, wrangler dev {:.2} ms, stub {:.2} ms  bad {}",
                    w.name,
                    run.rps,
                    ms(run.p50_ms),
                    ms(run.p99_ms),
                    run.worker_cpu_ms,
                    run.tree_cpu_ms,
                    run.stub_cpu_ms,
                    run.bad
                );
                anyhow::ensure!(
                    stub.refused() == 0,
                    "the stub refused {} requests: {:?}",
                    stub.refused(),
                    stub.refusals()
                );
                anyhow::ensure!(
                    run.bad == 0,
                    "{} answered {} requests with non-2xx or socket errors ({case}); see {}",
                    w.name,
                    run.bad,
                    w.dir.join("edge.log").display()
                );
                if i == 0 {
                    sluice.push(run);
                } else {
                    ts.push(run);
                }
            }
        }
        results.push((*case, sluice, ts));
    }
    let (accepted, puts) = (stub.accepted(), stub.puts());

    // Bundles and start-up, with the load finished and the wrangler dev instances stopped.
    let date = {
        let top: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("wrangler.toml"))?)?;
        top.get("compatibility_date")
            .and_then(|d| d.as_str())
            .unwrap_or("2026-04-01")
            .to_string()
    };
    let mut bundles = Vec::new();
    for w in &mut workers {
        w.process.kill();
        bundles.push(bundle(w)?);
    }
    let null_dir = dir.join("null/bundle");
    std::fs::create_dir_all(&null_dir)?;
    std::fs::write(
        null_dir.join("index.js"),
        "export default { fetch() { return new Response(\"ok\"); } };\n",
    )?;
    let mut configs = Vec::new();
    for (name, bundle_dir) in [
        ("sluice", workers[0].dir.join("bundle")),
        ("ts", workers[1].dir.join("bundle")),
        ("null", null_dir.clone()),
    ] {
        let port = free_port()?;
        let config = bundle_dir.join("workerd.capnp");
        std::fs::write(&config, capnp(&bundle_dir, port, &date)?)?;
        configs.push((config, port, dir.join(format!("{name}-workerd.log"))));
    }
    eprintln!(
        "start-up: workerd serve, spawn to first /healthz answer, {} rounds",
        args.startup_repeats
    );
    let mut startup: [Vec<f64>; 3] = Default::default();
    for round in 0..args.startup_repeats {
        // Rotate the order each round so none always goes first.
        for k in 0..3 {
            let i = (k + round) % 3;
            let (config, port, log) = &configs[i];
            let took = workerd_first_answer(config, *port, log)?;
            startup[i].push(took.as_secs_f64() * 1000.0);
        }
    }

    let pick = |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let ratio = |s: &[Run], t: &[Run], f: fn(&Run) -> f64| -> Vec<f64> {
        s.iter().zip(t).map(|(a, b)| f(a) / f(b)).collect()
    };
    println!();
    println!(
        "Edge under load: wrk -t1 -c{} -d{}s --latency per run; both Workers under wrangler dev \
         --local, SQS/S3 stubbed (every SigV4 signature verified); {} runs per Worker and case, \
         Sluice and TS back to back (order alternating) after a {} s warm-up each. Median \
         (min-max) over the runs; ratios are Sluice / TS within each pair.",
        args.connections, args.seconds, args.repeats, args.warmup_seconds
    );
    println!();
    println!("| case | Sluice req/s | TS req/s | req/s Sluice/TS | Sluice p50 | TS p50 | Sluice p99 | TS p99 | p99 Sluice/TS |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json_cases = Vec::new();
    let run_json = |r: &Run| {
        serde_json::json!({"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
            "requests": r.requests, "worker_cpu_ms_per_request": r.worker_cpu_ms,
            "wrangler_dev_cpu_ms_per_request": r.tree_cpu_ms, "stub_cpu_ms_per_request": r.stub_cpu_ms})
    };
    for (case, s, t) in &results {
        println!(
            "| {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} |",
            case.label(),
            median(&pick(s, |r| r.rps)),
            median(&pick(t, |r| r.rps)),
            spread(&ratio(s, t, |r| r.rps), 2),
            ms(median(&pick(s, |r| r.p50_ms))),
            ms(median(&pick(t, |r| r.p50_ms))),
            ms(median(&pick(s, |r| r.p99_ms))),
            ms(median(&pick(t, |r| r.p99_ms))),
            spread(&ratio(s, t, |r| r.p99_ms), 2),
        );
        json_cases.push(serde_json::json!({
            "case": case.to_string(),
            "sluice": s.iter().map(run_json).collect::<Vec<_>>(),
            "ts": t.iter().map(run_json).collect::<Vec<_>>(),
        }));
    }
    println!();
    println!(
        "CPU per request (user + system) in the same runs: of the workerd process running the \
         Worker, and of the whole `wrangler dev` (node, its proxy's workerd, the Worker's workerd)."
    );
    println!();
    println!("| case | Sluice Worker | TS Worker | Worker Sluice/TS | Sluice wrangler dev | TS wrangler dev | wrangler dev Sluice/TS |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (case, s, t) in &results {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            case.label(),
            ms(median(&pick(s, |r| r.worker_cpu_ms))),
            ms(median(&pick(t, |r| r.worker_cpu_ms))),
            spread(&ratio(s, t, |r| r.worker_cpu_ms), 2),
            ms(median(&pick(s, |r| r.tree_cpu_ms))),
            ms(median(&pick(t, |r| r.tree_cpu_ms))),
            spread(&ratio(s, t, |r| r.tree_cpu_ms), 2),
        );
    }
    println!();
    println!(
        "The stub accepted {accepted} SendMessage and {puts} PutObject calls and refused {}; \
         every request was answered 2xx. Before loading, each case checked that both Workers \
         queue the same envelope byte for byte and answer 401 to a tampered body.",
        stub.refused()
    );
    println!();
    let total = |files: &[(String, u64, u64)], gz: bool| -> u64 {
        files.iter().map(|f| if gz { f.2 } else { f.1 }).sum()
    };
    let describe = |files: &[(String, u64, u64)]| {
        files
            .iter()
            .map(|(n, raw, gz)| format!("{n} {raw} B / {gz} B gzip"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("| bundle and start-up | Sluice (Rust/wasm) | TS (aws4fetch) | Sluice vs TS |");
    println!("|---|---:|---:|---:|");
    let (sb, tb) = (&bundles[0], &bundles[1]);
    println!(
        "| bundle, bytes (wrangler deploy --dry-run --outdir, no source map) | {} | {} | {:.1}x |",
        total(sb, false),
        total(tb, false),
        total(sb, false) as f64 / total(tb, false) as f64
    );
    println!(
        "| bundle, gzip -9 bytes | {} | {} | {:.1}x |",
        total(sb, true),
        total(tb, true),
        total(sb, true) as f64 / total(tb, true) as f64
    );
    // Other processes on the machine only ever add time: the lowest of many runs is the
    // least disturbed one, so it is the figure; the median shows how noisy the runs were.
    let lowest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let up = |i: usize| {
        (
            lowest(&startup[i]) - lowest(&startup[2]),
            median(&startup[i]) - median(&startup[2]),
        )
    };
    let ((s_low, s_med), (t_low, t_med)) = (up(0), up(1));
    println!(
        "| start-up: `workerd serve` spawn to first /healthz answer, minus an empty Worker's \
         ({:.1} ms); lowest of {} runs (median) | {s_low:.1} ms ({s_med:.1}) | {t_low:.1} ms ({t_med:.1}) | {:+.1} ms |",
        lowest(&startup[2]),
        args.startup_repeats,
        s_low - t_low
    );
    println!(
        "| `wrangler dev` spawn to first /healthz (once, 100 ms polling; mostly wrangler) | {:.1} s | {:.1} s | |",
        workers[0].spawn_to_health.as_secs_f64(),
        workers[1].spawn_to_health.as_secs_f64()
    );
    println!();
    println!("Sluice files: {}", describe(sb));
    println!("TS files: {}", describe(tb));

    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "seconds": args.seconds,
            "repeats": args.repeats,
            "connections": args.connections,
            "cases": json_cases,
            "bundles": {
                "sluice": sb.iter().map(|(n, r, g)| serde_json::json!({"file": n, "bytes": r, "gzip": g})).collect::<Vec<_>>(),
                "ts": tb.iter().map(|(n, r, g)| serde_json::json!({"file": n, "bytes": r, "gzip": g})).collect::<Vec<_>>(),
            },
            "startup_ms": {"sluice": startup[0], "ts": startup[1], "empty": startup[2]},
            "wrangler_dev_spawn_to_health_ms": {
                "sluice": workers[0].spawn_to_health.as_secs_f64() * 1000.0,
                "ts": workers[1].spawn_to_health.as_secs_f64() * 1000.0,
            },
            "stub": {"send_message": accepted, "put_object": puts, "refused": stub.refused()},
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
