//! End to end security checks against the real local stack (workerd under `wrangler dev`,
//! moto, the local poller, a destination):
//!
//! - no secret reaches a log, an envelope or a delivery, on the happy path or the error
//!   paths (bad and stale signatures, failing deliveries, AWS down), in any encoding;
//! - malformed HTTP (oversized and invalid header values, many headers, lying
//!   `Content-Length`) gets a clean 4xx, queues nothing, and leaves the edge healthy;
//! - a source whose secret is not set never accepts: 500 `source_misconfigured`, nothing
//!   queued (fail closed).
//!
//! Constant-time MAC comparison is checked by a lint in `protocol/tests/constant_time.rs`.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sluice_e2e::stack::{
    dev_ed25519_pair, dev_secret, every_scheme, read_log, unix_now, SourceSpec,
};
use sluice_e2e::wait::{free_port, until};
use sluice_e2e::{Behaviour, DemoSource, Destination, Stack, StackOptions};
use sluice_protocol::{Scheme, SourceConfig, SourcesConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(90);

// ---- shared helpers -----------------------------------------------------------------------

/// Status, headers (lower-case names) and body of one HTTP response.
#[derive(Debug, Default)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    /// The `error.code` of a JSON error body.
    fn code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v["error"]["code"].as_str().map(str::to_string)
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: resp.text().await.unwrap_or_default(),
    }
}

async fn post(stack: &Stack, source: &str, headers: &[(String, String)], body: &[u8]) -> Answer {
    answer(
        stack
            .post(source, headers, body)
            .await
            .expect("edge reachable"),
    )
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every form a secret could leak in: as configured, the key material of a `whsec_` /
/// `whsk_` / `whpk_` secret (its base64 text, the decoded bytes raw, hex and re-encoded in
/// each base64 alphabet), or the text of a raw secret hex- and base64-encoded.
fn leak_forms(secret: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut forms = vec![("as configured", secret.as_bytes().to_vec())];
    let key = ["whsec_", "whsk_", "whpk_"]
        .iter()
        .find_map(|p| secret.strip_prefix(p));
    let material = match key {
        Some(b64) => {
            forms.push(("base64 key text", b64.as_bytes().to_vec()));
            let mut bytes = STANDARD.decode(b64).expect("dev secrets are base64");
            // A 64-byte `whsk_` is seed || public key: the seed is the secret part.
            bytes.truncate(32);
            forms.push(("decoded key bytes", bytes.clone()));
            bytes
        }
        None => secret.as_bytes().to_vec(),
    };
    forms.push(("hex", hex(&material).into_bytes()));
    forms.push(("HEX", hex(&material).to_uppercase().into_bytes()));
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(("base64", engine.encode(&material).into_bytes()));
    }
    forms
}

/// A secret to look for, with a label for failure messages.
struct Watched {
    label: String,
    forms: Vec<(&'static str, Vec<u8>)>,
}

/// Every secret of the stack: each source's current and previous provider secrets, what the
/// edge holds (for ed25519 sources, the public keys), and the destination signing secret.
fn watched_secrets(stack: &Stack) -> Vec<Watched> {
    let mut out = Vec::new();
    for s in &stack.sources {
        let mut texts = vec![s.secret.clone(), s.previous_secret.clone()];
        texts.extend(s.verify_secret.split_whitespace().map(str::to_string));
        texts.sort();
        texts.dedup();
        for t in texts {
            out.push(Watched {
                label: format!("secret of source {}", s.name),
                forms: leak_forms(&t),
            });
        }
    }
    out.push(Watched {
        label: "destination signing secret".into(),
        forms: leak_forms(&stack.destination_secret),
    });
    out
}

/// `where: what leaked` for every watched secret found in `haystack`.
fn leaks(place: &str, haystack: &[u8], watched: &[Watched]) -> Vec<String> {
    let mut out = Vec::new();
    for w in watched {
        for (form, bytes) in &w.forms {
            if contains(haystack, bytes) {
                out.push(format!("{place}: {} ({form})", w.label));
            }
        }
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The body a source's provider sends for event `id` (distinct ids: no deduplication).
fn body_for(source: &DemoSource, id: &str) -> Vec<u8> {
    match source.scheme {
        Scheme::Twilio => format!("CallSid=CA{id}&From=%2B15550001&Body=hello").into_bytes(),
        _ => serde_json::json!({"id": id, "event_id": id, "type": "security.test"})
            .to_string()
            .into_bytes(),
    }
}

/// Whether the source's scheme signs a timestamp (so a stale one is refused).
fn signs_timestamp(source: &DemoSource) -> bool {
    source.scheme.has_timestamp()
        || source
            .generic
            .as_ref()
            .is_some_and(|g| g.timestamp_header.is_some())
}

/// A secret in the source's format that the edge does not hold.
fn foreign_secret(source: &DemoSource) -> String {
    if source.secret.starts_with("whsk_") {
        dev_ed25519_pair().0
    } else {
        dev_secret(source.scheme)
    }
}

async fn healthy(edge_url: &str) -> bool {
    match reqwest::get(format!("{edge_url}/healthz")).await {
        Ok(r) => r.status().as_u16() == 200,
        Err(_) => false,
    }
}

/// Removes a finished stack's directory (kept when a test fails, for its logs).
fn clean_up(stack: Stack) {
    let dir = stack.dir.clone();
    drop(stack);
    let _ = std::fs::remove_dir_all(dir);
}

// ---- no secret in logs ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_an_envelope_or_a_delivery() {
    let dest = Destination::start(None).await.unwrap();
    dest.set("/failing", Behaviour::AlwaysFail { status: 400 });
    dest.set(
        "/flaky",
        Behaviour::FailFirst {
            times: 1,
            status: 503,
        },
    );
    let mut options = StackOptions::for_test("security-logs", &dest.url, &[]);
    options.sources = every_scheme();
    options
        .sources
        .push(SourceSpec::from(("failing", Scheme::Github)));
    options
        .sources
        .push(SourceSpec::from(("flaky", Scheme::StandardWebhooks)));
    let mut stack = Stack::start(options).await.expect("stack starts");
    let edge_log = stack.log("edge");
    let sources = stack.sources.clone();

    // Every source: accepted with the current and the previous secret; refused with a secret
    // it does not hold, and (where a timestamp is signed) when stale.
    let mut accepted = 0;
    for s in &sources {
        for (tag, secret) in [("cur", &s.secret), ("prev", &s.previous_secret)] {
            let id = format!("{}-{tag}", s.name);
            let body = body_for(s, &id);
            let headers = s.sign_with(secret, &id, unix_now(), &body);
            let a = post(&stack, &s.name, &headers, &body).await;
            assert_eq!(
                a.status,
                202,
                "{} ({tag}): {}\n{}",
                s.name,
                a.body,
                read_log(&edge_log)
            );
            accepted += 1;
        }
        let body = body_for(s, "forged");
        let headers = s.sign_with(&foreign_secret(s), "forged", unix_now(), &body);
        let a = post(&stack, &s.name, &headers, &body).await;
        assert_eq!(
            (a.status, a.code().as_deref()),
            (401, Some("invalid_signature")),
            "{}: {}",
            s.name,
            a.body
        );
        if signs_timestamp(s) {
            let headers = s.sign_at("stale", unix_now() - 3600, &body_for(s, "stale"));
            let a = post(&stack, &s.name, &headers, &body_for(s, "stale")).await;
            assert_eq!(
                a.code().as_deref(),
                Some("timestamp_out_of_tolerance"),
                "{}: {}",
                s.name,
                a.body
            );
        }
    }
    // Slack's handshake, answered at the edge after verification.
    let slack = stack.source("slack").clone();
    let handshake = br#"{"type":"url_verification","challenge":"c-123"}"#;
    let a = post(&stack, "slack", &slack.sign("hs", handshake), handshake).await;
    assert_eq!(
        (a.status, a.body.contains("c-123")),
        (200, true),
        "{}",
        a.body
    );

    // Deliveries: two per source (`flaky` after a 503 on its first attempt); `failing`'s
    // two refused (400) and dead-lettered at once.
    let consumer_log = stack.log("consumer");
    for s in sources.iter().filter(|s| s.name != "failing") {
        let path = format!("/{}", s.name);
        until(&format!("two deliveries to {path}"), DEADLINE, || async {
            (dest.successful(&path).len() == 2).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&consumer_log)));
    }
    until("two dead letters", DEADLINE, || async {
        (stack.queue_count(&stack.dlq_url).await.ok()? == 2).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&consumer_log)));

    // The envelopes: every one the consumer archived, and the dead letters with their
    // attributes.
    let s3 = stack.s3().await;
    let archived = until("every envelope archived", DEADLINE, || async {
        let out = s3
            .list_objects_v2()
            .bucket(&stack.bucket)
            .prefix("archive/")
            .send()
            .await
            .ok()?;
        let keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        (keys.len() == accepted).then_some(keys)
    })
    .await
    .unwrap();
    let mut envelopes: Vec<(String, Vec<u8>)> = Vec::new();
    for key in archived {
        let object = s3
            .get_object()
            .bucket(&stack.bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let bytes = object.body.collect().await.unwrap().into_bytes().to_vec();
        sluice_protocol::Envelope::decode(std::str::from_utf8(&bytes).unwrap())
            .expect("archived envelopes decode");
        envelopes.push((format!("s3://{}/{key}", stack.bucket), bytes));
    }
    let mut dead_letters = 0;
    let until_time = std::time::Instant::now() + DEADLINE;
    while dead_letters < 2 && std::time::Instant::now() < until_time {
        let out = stack
            .sqs()
            .receive_message()
            .queue_url(&stack.dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let mut text = m.body().unwrap_or_default().to_string();
            for (k, v) in m.message_attributes.clone().unwrap_or_default() {
                text.push_str(&format!("\n{k}={}", v.string_value().unwrap_or_default()));
            }
            envelopes.push(("dead letter".into(), text.into_bytes()));
            dead_letters += 1;
        }
    }
    assert_eq!(envelopes.len(), accepted + 2, "archive and DLQ read");

    // AWS down: the edge answers 503 and the consumer's receive fails; both log it. The
    // health check does not touch AWS, so it still answers.
    stack.kill_moto();
    assert!(
        healthy(&stack.edge_url).await,
        "/healthz answers with AWS down"
    );
    let gh = stack.source("github").clone();
    let body = body_for(&gh, "down");
    let a = post(&stack, "github", &gh.sign("down", &body), &body).await;
    assert_eq!(a.code().as_deref(), Some("queue_unavailable"), "{}", a.body);
    // The logs cover the error paths as well as the happy one (waiting for the log writers).
    let needles = [
        (&edge_log, " 401 "),
        (&edge_log, r#""code":"queue_unavailable""#),
        (&consumer_log, r#""outcome":"delivered""#),
        (&consumer_log, r#""outcome":"retried""#),
        (&consumer_log, r#""outcome":"dead_lettered""#),
        (&consumer_log, "receive failed"),
    ];
    until("the logs to show every path", DEADLINE, || async {
        needles
            .iter()
            .all(|(log, needle)| read_log(log).contains(needle))
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| {
        let missing: Vec<_> = needles
            .iter()
            .filter(|(log, needle)| !read_log(log).contains(needle))
            .collect();
        panic!("{e}: missing {missing:?}")
    });

    // Scan: every file the stack wrote except the two that hold secrets by design (the
    // Worker's `.dev.vars` and the dev `stack.json`), every envelope, every delivery.
    let watched = watched_secrets(&stack);
    let mut files = Vec::new();
    files_under(&stack.dir, &mut files);
    let mut found = Vec::new();
    let mut scanned = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let bytes = std::fs::read(path).unwrap_or_default();
        if name == ".dev.vars" || name == "stack.json" {
            // Control: the scanner does find the secrets where they are.
            for s in &stack.sources {
                let first = s.verify_secret.split_whitespace().next().unwrap();
                assert!(
                    !leaks(&name, &bytes, &watched_secrets_of(first)).is_empty(),
                    "the scanner misses {}'s secret in {name}",
                    s.name
                );
            }
            continue;
        }
        scanned.push(path.strip_prefix(&stack.dir).unwrap().display().to_string());
        found.extend(leaks(&path.display().to_string(), &bytes, &watched));
    }
    for log in ["edge.log", "consumer.log", "moto.log"] {
        assert!(
            scanned.iter().any(|f| f == log),
            "{log} scanned: {scanned:?}"
        );
    }
    assert!(
        scanned.iter().any(|f| f.starts_with("wrangler-logs/")),
        "wrangler's own logs scanned: {scanned:?}"
    );
    for (place, bytes) in &envelopes {
        found.extend(leaks(place, bytes, &watched));
    }
    let deliveries = dest.deliveries();
    assert!(
        deliveries.len() >= accepted,
        "{} deliveries",
        deliveries.len()
    );
    for d in &deliveries {
        let mut bytes = d.body.clone();
        for (k, v) in &d.headers {
            bytes.extend_from_slice(format!("\n{k}: {v}").as_bytes());
        }
        found.extend(leaks(&format!("delivery to {}", d.path), &bytes, &watched));
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    clean_up(stack);
}

/// The leak forms of one secret (for the scanner's control).
fn watched_secrets_of(secret: &str) -> Vec<Watched> {
    vec![Watched {
        label: "control".into(),
        forms: leak_forms(secret),
    }]
}

// ---- malformed HTTP -------------------------------------------------------------------------

/// What a raw exchange got back: the first response's status and body (`None` if the
/// connection closed without one), and any bytes after it.
#[derive(Debug)]
struct RawAnswer {
    status: Option<u16>,
    head: String,
    body: String,
}

impl RawAnswer {
    fn code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v["error"]["code"].as_str().map(str::to_string)
    }
}

/// Writes `request` as given on a fresh connection (optionally half-closing it), then reads
/// the first response, within a deadline. HTTP clients refuse to send most of these.
async fn raw_exchange(addr: &str, request: &[u8], half_close: bool) -> RawAnswer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("edge port open");
        // The server may answer and close before reading everything: a failed write is
        // fine, what matters is the answer.
        let _ = stream.write_all(request).await;
        if half_close {
            let _ = stream.shutdown().await;
        }
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let chunked = head
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked");
                let body = &got[end + 4..];
                let complete = if chunked {
                    body.ends_with(b"0\r\n\r\n")
                } else {
                    body.len() >= length
                };
                if complete {
                    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    let body = if chunked {
                        dechunk(body)
                    } else {
                        String::from_utf8_lossy(&body[..length]).to_string()
                    };
                    return RawAnswer { status, head, body };
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    return RawAnswer {
                        status: None,
                        head: String::from_utf8_lossy(&got).to_string(),
                        body: String::new(),
                    }
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or(RawAnswer {
            status: None,
            head: "(no answer within 30 s)".into(),
            body: String::new(),
        })
}

fn dechunk(mut body: &[u8]) -> String {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&body[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || body.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A POST to `/hooks/{source}` with raw header lines and body, `Content-Length` as given.
fn raw_post(source: &str, headers: &[Vec<u8>], content_length: &str, body: &[u8]) -> Vec<u8> {
    let mut req = raw_head(
        source,
        headers,
        &format!("content-length: {content_length}"),
    );
    req.extend_from_slice(body);
    req
}

/// `POST /hooks/<source>` with `body` sent in chunks (`Transfer-Encoding: chunked`, no
/// `Content-Length`): the edge cannot refuse it before reading and must cap the read.
fn raw_chunked_post(source: &str, headers: &[Vec<u8>], body: &[u8]) -> Vec<u8> {
    let mut req = raw_head(source, headers, "transfer-encoding: chunked");
    for chunk in body.chunks(64 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

/// The request line and headers of a JSON `POST /hooks/<source>`, `headers` as given, then
/// `framing` (how the body's length is told) and the blank line.
fn raw_head(source: &str, headers: &[Vec<u8>], framing: &str) -> Vec<u8> {
    let mut req = format!(
        "POST /hooks/{source} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    )
    .into_bytes();
    for h in headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(format!("{framing}\r\n\r\n").as_bytes());
    req
}

/// What a malformed request must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The Worker's own refusal: this status and JSON error code.
    Worker(u16, &'static str),
    /// A 4xx from the HTTP layer in front of the Worker (it never ran).
    Refused,
    /// workerd's HTTP layer fails with this status before the Worker runs.
    Runtime(u16),
    /// The Worker's refusal, or a reset: workerd closes a connection that still holds unread
    /// body bytes, and the TCP reset can discard the answer before the client reads it.
    WorkerOrReset(u16, &'static str),
    /// The client broke the exchange (EOF before the declared body): no answer or an error,
    /// never a 2xx.
    ClientAborted,
}

/// A second edge on the stack's queue, started with `env` for `wrangler dev`.
async fn side_edge(
    stack: &Stack,
    name: &str,
    sources: &[SourceConfig],
    with_secret: &[&str],
    env: &[(&str, &str)],
) -> (sluice_e2e::process::Managed, String, PathBuf) {
    let vars = [
        ("AWS_REGION", sluice_e2e::stack::REGION.to_string()),
        ("SQS_QUEUE_URL", stack.queue_url.clone()),
        ("SQS_ENDPOINT", stack.aws_endpoint.clone()),
        ("PAYLOAD_BUCKET", stack.bucket.clone()),
        ("S3_ENDPOINT", stack.aws_endpoint.clone()),
        (
            "SLUICE_SOURCES",
            SourcesConfig {
                sources: sources.to_vec(),
            }
            .to_json(),
        ),
    ];
    let mut secrets = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
    ];
    for source in with_secret {
        secrets.push((
            sluice_protocol::source::secret_var(source),
            stack.source(source).verify_secret.clone(),
        ));
    }
    let dir = stack.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port().unwrap();
    let edge = sluice_e2e::edge::start_with_env(&dir, port, &vars, &secrets, "info", env)
        .await
        .expect("side edge starts");
    (edge, format!("http://127.0.0.1:{port}"), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_clean_4xx_and_leave_the_edge_up() {
    let mut options = StackOptions::for_test(
        "security-http",
        "http://127.0.0.1:9",
        &[
            ("github", Scheme::Github),
            ("standard", Scheme::StandardWebhooks),
        ],
    );
    options.poller = false; // whatever is queued stays countable
    let stack = Stack::start(options).await.expect("stack starts");
    // The same Worker without wrangler's dev-only body draining, which holds every answer
    // until the declared body has arrived: a lying Content-Length would hang there.
    let sources: Vec<SourceConfig> = ["github", "standard"]
        .iter()
        .map(|n| SourceConfig::new(n, stack.source(n).scheme, "http://127.0.0.1:9/x"))
        .collect();
    let (_undrained, undrained_url, undrained_dir) = side_edge(
        &stack,
        "edge-undrained",
        &sources,
        &["github", "standard"],
        &[("WRANGLER_DISABLE_REQUEST_BODY_DRAINING", "true")],
    )
    .await;

    let gh = stack.source("github").clone();
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let lines = |headers: Vec<(String, String)>| -> Vec<Vec<u8>> {
        headers
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}").into_bytes())
            .collect()
    };
    let signed = lines(gh.sign("d-raw", body));
    let len = body.len().to_string();
    let many: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!("x-filler-{i}: {i}").into_bytes())
        .collect();
    let mut both_lengths = b"POST /hooks/github HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    both_lengths.extend_from_slice(b"0\r\n\r\n");
    let mut longer = body.to_vec();
    longer.extend_from_slice(b"GARBAGE / HTTP/9.9\r\n\r\n");
    let signed_longer = lines(gh.sign("d-longer", &longer));
    let over_limit = vec![b'a'; 10 * 1024 * 1024 + 1];
    use Expect::*;
    // (name, request, half-close after writing, expectation, lies about its length)
    let cases: Vec<(&str, Vec<u8>, bool, Expect, bool)> = vec![
        (
            "16 KiB signature header value",
            raw_post(
                "github",
                &[format!("x-hub-signature-256: sha256={}", "z".repeat(16 * 1024)).into_bytes()],
                &len,
                body,
            ),
            false,
            Worker(400, "malformed_signature"),
            false,
        ),
        (
            "1 MiB header value",
            raw_post(
                "github",
                &[format!("x-filler: {}", "a".repeat(1024 * 1024)).into_bytes()],
                &len,
                body,
            ),
            false,
            Refused,
            false,
        ),
        (
            "100 headers, no signature",
            raw_post("github", &many[..100], &len, body),
            false,
            Worker(401, "missing_signature"),
            false,
        ),
        (
            "2000 headers, no signature",
            raw_post("github", &many, &len, body),
            false,
            Worker(401, "missing_signature"),
            false,
        ),
        (
            "invalid UTF-8 in the signature header",
            raw_post(
                "github",
                &[b"x-hub-signature-256: sha256=\xff\xfe\x80abc".to_vec()],
                &len,
                body,
            ),
            false,
            Worker(400, "malformed_signature"),
            false,
        ),
        (
            "invalid UTF-8 in webhook-id and webhook-signature",
            raw_post(
                "standard",
                &[
                    b"webhook-id: msg_\xc3\x28\xff".to_vec(),
                    format!("webhook-timestamp: {}", unix_now()).into_bytes(),
                    b"webhook-signature: v1,\xffAAAA".to_vec(),
                ],
                &len,
                body,
            ),
            false,
            Worker(400, "malformed_signature"),
            false,
        ),
        (
            "invalid UTF-8 in a header name",
            raw_post("github", &[b"x-\xff\xfe: 1".to_vec()], &len, body),
            false,
            Worker(401, "missing_signature"),
            false,
        ),
        (
            "Content-Length -1",
            raw_post("github", &signed, "-1", body),
            false,
            Runtime(500),
            false,
        ),
        (
            "body longer than its Content-Length, signed over all of it",
            raw_post("github", &signed_longer, &len, &longer),
            false,
            Worker(401, "invalid_signature"),
            false,
        ),
        (
            "Content-Length and Transfer-Encoding together",
            both_lengths,
            false,
            Worker(401, "missing_signature"),
            false,
        ),
        (
            "chunked body over the 10 MiB limit",
            raw_chunked_post("github", &signed, &over_limit),
            false,
            WorkerOrReset(413, "payload_too_large"),
            false,
        ),
        (
            "Content-Length 1 TiB, no body bytes yet",
            raw_post("github", &signed, "1099511627776", b""),
            false,
            Worker(413, "payload_too_large"),
            true,
        ),
        (
            "Content-Length 1 TiB, 36-byte body",
            raw_post("github", &signed, "1099511627776", body),
            false,
            WorkerOrReset(413, "payload_too_large"),
            true,
        ),
        (
            "Content-Length 1 TiB, 36-byte body, then EOF",
            raw_post("github", &signed, "1099511627776", body),
            true,
            ClientAborted,
            true,
        ),
        (
            "Content-Length 5 MB (under the limit), 36-byte body, then EOF",
            raw_post("github", &signed, "5000000", body),
            true,
            ClientAborted,
            true,
        ),
        (
            "Content-Length beyond u64, then EOF",
            raw_post("github", &signed, "99999999999999999999999", body),
            true,
            ClientAborted,
            true,
        ),
    ];

    let mut report = Vec::new();
    let mut failures = Vec::new();
    let edges = [
        ("wrangler dev", stack.edge_url.clone()),
        ("without dev body draining", undrained_url.clone()),
    ];
    for (edge, url) in &edges {
        let addr = url.trim_start_matches("http://");
        for (name, request, half_close, expect, lies) in &cases {
            if *lies && *edge == "wrangler dev" {
                continue; // wrangler dev would hold the answer until the body arrives
            }
            let got = raw_exchange(addr, request, *half_close).await;
            report.push(format!("{edge}: {name}: {:?} {:?}", got.status, got.code()));
            let ok = match (expect, got.status) {
                (Worker(status, code), Some(s)) => {
                    s == *status && got.code().as_deref() == Some(*code)
                }
                (WorkerOrReset(status, code), Some(s)) => {
                    s == *status && got.code().as_deref() == Some(*code)
                }
                (WorkerOrReset(..), None) => true,
                (Refused, Some(s)) => (400..500).contains(&s) && got.code().is_none(),
                (Runtime(status), Some(s)) => s == *status && got.code().is_none(),
                (ClientAborted, s) => !s.is_some_and(|s| (200..300).contains(&s)),
                (_, None) => false,
            };
            if !ok {
                failures.push(format!(
                    "{edge}: {name}: expected {expect:?}, got {:?}\n{}\n{}",
                    got.status, got.head, got.body
                ));
            }
            if !healthy(url).await {
                failures.push(format!("{edge}: {name}: /healthz stopped answering"));
            }
        }
    }
    eprintln!("malformed requests:\n  {}", report.join("\n  "));
    let logs = [
        read_log(&stack.log("edge")),
        read_log(&undrained_dir.join("edge.log")),
    ];
    assert!(
        failures.is_empty(),
        "{}\n{}\n{}",
        failures.join("\n"),
        logs[0],
        logs[1]
    );
    for log in &logs {
        // A Rust panic in the Worker shows as `panicked at` and a wasm `unreachable` trap.
        for sign_of_a_panic in ["panicked", "unreachable"] {
            assert!(!log.contains(sign_of_a_panic), "{log}");
        }
    }
    // The 500 for `Content-Length: -1` is workerd's HTTP layer, not the Worker.
    until(
        "workerd to log the bad Content-Length",
        DEADLINE,
        || async {
            read_log(&stack.log("edge"))
                .contains("invalid Content-Length header value; cl = -1")
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        stack.queue_count(&stack.queue_url).await.unwrap(),
        0,
        "nothing malformed was queued"
    );
    // The chunked body over the limit once more, where the answer is always readable
    // (wrangler dev takes in the whole request before answering): exactly 413.
    let over = raw_exchange(
        stack.edge_url.trim_start_matches("http://"),
        &raw_chunked_post("github", &signed, &over_limit),
        false,
    )
    .await;
    assert_eq!(
        (over.status, over.code().as_deref()),
        (Some(413), Some("payload_too_large")),
        "{}\n{}",
        over.head,
        over.body
    );
    // Control: both edges still queue a valid request sent the same raw way, with a
    // Content-Length and chunked.
    for (edge, url) in &edges {
        let addr = url.trim_start_matches("http://");
        let ok = raw_exchange(addr, &raw_post("github", &signed, &len, body), false).await;
        assert_eq!(ok.status, Some(202), "{edge}: {}\n{}", ok.head, ok.body);
        let chunked = raw_exchange(addr, &raw_chunked_post("github", &signed, body), false).await;
        assert_eq!(
            chunked.status,
            Some(202),
            "{edge}, chunked: {}\n{}",
            chunked.head,
            chunked.body
        );
    }
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 4);
    clean_up(stack);
}

// ---- fail closed ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_a_secret_never_accepts() {
    let mut options = StackOptions::for_test(
        "security-closed",
        "http://127.0.0.1:9",
        &[("open", Scheme::Github)],
    );
    options.poller = false;
    let stack = Stack::start(options).await.expect("stack starts");
    let open = stack.source("open").clone();

    // A second edge on the same queue declaring two sources, `locked` without its
    // SLUICE_SECRET_LOCKED.
    let sources = [
        SourceConfig::new("open", Scheme::Github, "http://127.0.0.1:9/open"),
        SourceConfig::new("locked", Scheme::Github, "http://127.0.0.1:9/locked"),
    ];
    let (edge, url, dir) = side_edge(&stack, "edge-locked", &sources, &["open"], &[]).await;
    let client = reqwest::Client::new();
    let send = |source: &str, headers: Vec<(String, String)>, body: &[u8]| {
        let mut req = client
            .post(format!("{url}/hooks/{source}"))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.body(body.to_vec()).send()
    };

    // Signed with the secret the open source holds, with none, and unsigned: always 500.
    let body = br#"{"action":"opened"}"#;
    for headers in [open.sign("l-1", body), Vec::new()] {
        let a = answer(send("locked", headers, body).await.unwrap()).await;
        assert_eq!(a.status, 500, "{}", a.body);
        assert!(a.content_type.starts_with("application/json"));
        assert_eq!(
            a.code().as_deref(),
            Some("source_misconfigured"),
            "{}",
            a.body
        );
        assert!(
            !a.body.contains("SLUICE_SECRET"),
            "the caller is told no more: {}",
            a.body
        );
    }
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 0);
    // The operator is told which secret is missing, with the refusal's code.
    until("the edge to log the missing secret", DEADLINE, || async {
        let log = read_log(&dir.join("edge.log"));
        (log.contains("source `locked`: secret SLUICE_SECRET_LOCKED is not set")
            && log.contains(r#""code":"source_misconfigured""#))
        .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&dir.join("edge.log"))));

    // Control: the same edge queues for the source whose secret is set.
    let a = answer(send("open", open.sign("o-1", body), body).await.unwrap()).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 1);
    drop(edge);
    clean_up(stack);
}
