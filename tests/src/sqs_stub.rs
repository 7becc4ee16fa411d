//! A fast stand-in for SQS's `SendMessage` (and S3's `PutObject`, for claim-checked bodies),
//! for load runs of the edge: it verifies each request's SigV4 signature as AWS does and
//! answers like AWS, in microseconds, so the Worker (not moto) is what gets measured. Never
//! used for correctness of the consumer.
//!
//! What it checks, refusing (403/400) anything else, never accepting an unsigned request:
//! - `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request,
//!   SignedHeaders=…, Signature=…` with the configured access key and region, service `sqs`
//!   for `POST /` and `s3` for `PUT /{bucket}/{key}`; `host` and `x-amz-date` signed;
//!   `x-amz-date` within 15 minutes of now and on the credential's date;
//! - the signature itself, recomputed from the canonical request (method, path, query, the
//!   signed headers' values as received, the payload hash) with the configured secret;
//! - the payload hash: `x-amz-content-sha256` must be the body's SHA-256 when sent (S3 also
//!   accepts `UNSIGNED-PAYLOAD`, as S3 does); without it the body's hash is what is signed;
//! - SendMessage: `X-Amz-Target: AmazonSQS.SendMessage`, the configured `QueueUrl`, and a
//!   `MessageBody` that decodes as a Sluice envelope; a claim-checked envelope must name an
//!   object PUT earlier with the same size and SHA-256. The signature and target are checked
//!   on every request; the message checks (JSON parsing, costly in a debug build) on every
//!   request until [`SqsStub::sample_message_checks`], then on one in `n`.
//!
//! Paths are compared as sent (no re-encoding): the edge's URLs use only unreserved
//! characters, and any other character is refused rather than guessed at.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use sluice_protocol::signature::mac::{compute, Algorithm};
use sluice_protocol::{Body, Envelope};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// The credentials and queue the stub accepts.
#[derive(Debug, Clone)]
pub struct StubConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// The only `QueueUrl` SendMessage may name.
    pub queue_url_path: String,
}

/// A running stub; counts what it accepted and refused.
#[derive(Clone)]
pub struct SqsStub {
    pub url: String,
    config: Arc<StubConfig>,
    accepted: Arc<AtomicU64>,
    puts: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    /// The first refusals' reasons, for the error message.
    refusals: Arc<Mutex<Vec<String>>>,
    /// Objects PUT so far: key -> (size, hex SHA-256).
    objects: Arc<Mutex<HashMap<String, (u64, String)>>>,
    /// The last accepted MessageBody (of the requests whose message was checked).
    last_message: Arc<Mutex<Option<String>>>,
    /// Check the message of one SendMessage in this many (1: every one).
    check_every: Arc<AtomicU64>,
    /// SendMessage calls seen (signed), for the sampling.
    sends: Arc<AtomicU64>,
}

impl SqsStub {
    /// Starts the stub on a free port of 127.0.0.1, accepting requests signed with these
    /// credentials for `region`. The one queue is [`SqsStub::queue_url`]
    /// (`{url}/123456789012/sluice-events`).
    pub async fn start(
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stub = SqsStub {
            config: Arc::new(StubConfig {
                access_key_id: access_key_id.to_string(),
                secret_access_key: secret_access_key.to_string(),
                region: region.to_string(),
                queue_url_path: "/123456789012/sluice-events".to_string(),
            }),
            url,
            accepted: Arc::default(),
            puts: Arc::default(),
            refused: Arc::default(),
            refusals: Arc::default(),
            objects: Arc::default(),
            last_message: Arc::default(),
            check_every: Arc::new(AtomicU64::new(1)),
            sends: Arc::default(),
        };
        let counters = stub.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counters = counters.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, counters.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(stub)
    }

    /// The queue URL SendMessage must name.
    pub fn queue_url(&self) -> String {
        format!("{}{}", self.url, self.config.queue_url_path)
    }

    /// SendMessage calls accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// PutObject calls accepted.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }

    /// Requests refused (bad signature, not SendMessage/PutObject, bad envelope).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Why the first refused requests were refused (at most 10).
    pub fn refusals(&self) -> Vec<String> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// From now on, check the message (QueueUrl, envelope, claim check) of one SendMessage in
    /// `n` only; signatures are still verified on every request.
    pub fn sample_message_checks(&self, n: u64) {
        self.check_every.store(n.max(1), Ordering::Relaxed);
    }

    /// The last accepted MessageBody (an encoded envelope) whose message was checked.
    pub fn last_message(&self) -> Option<String> {
        self.last_message.lock().ok().and_then(|m| m.clone())
    }

    fn refuse(&self, status: u16, reason: String) -> (u16, String) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = self.refusals.lock() {
            if r.len() < 10 {
                r.push(reason.clone());
            }
        }
        let kind = if status == 403 {
            "SignatureDoesNotMatch"
        } else {
            "InvalidParameterValue"
        };
        (
            status,
            serde_json::json!({"__type": format!("com.amazonaws.sqs#{kind}"), "message": format!("stub: {reason}")})
                .to_string(),
        )
    }
}

async fn answer(
    req: Request<Incoming>,
    stub: SqsStub,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let (status, text, etag) = match handle(&parts, &body, &stub) {
        Ok(Handled::Sent(n)) => (
            200,
            format!(
                r#"{{"MD5OfMessageBody":"00000000000000000000000000000000","MessageId":"stub-{n}"}}"#
            ),
            false,
        ),
        Ok(Handled::Put) => (200, String::new(), true),
        Err((status, reason)) => {
            let (status, text) = stub.refuse(status, reason);
            (status, text, false)
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if etag {
        headers.insert(
            "etag",
            hyper::header::HeaderValue::from_static("\"00000000000000000000000000000000\""),
        );
    }
    Ok(resp)
}

enum Handled {
    Sent(u64),
    Put,
}

type Refused = (u16, String);

fn handle(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    stub: &SqsStub,
) -> Result<Handled, Refused> {
    let path = parts.uri.path();
    let service = match (&parts.method, path) {
        (&Method::POST, "/") => "sqs",
        (&Method::PUT, p) if p.len() > 1 && p[1..].contains('/') => "s3",
        (m, p) => return Err((400, format!("{m} {p} is neither SendMessage nor PutObject"))),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let body_sha256 = verify_sigv4(parts, body, service, &stub.config, now)?;
    if service == "s3" {
        let key = path[1..]
            .split_once('/')
            .map(|(_, k)| k)
            .unwrap_or_default();
        let sha = body_sha256.unwrap_or_else(|| sha256_hex(body));
        if let Ok(mut objects) = stub.objects.lock() {
            objects.insert(key.to_string(), (body.len() as u64, sha));
        }
        stub.puts.fetch_add(1, Ordering::Relaxed);
        return Ok(Handled::Put);
    }
    let target = header_value(parts, "x-amz-target");
    if target != "AmazonSQS.SendMessage" {
        return Err((400, format!("x-amz-target {target:?} is not SendMessage")));
    }
    let n = stub.sends.fetch_add(1, Ordering::Relaxed);
    if !n.is_multiple_of(stub.check_every.load(Ordering::Relaxed)) {
        stub.accepted.fetch_add(1, Ordering::Relaxed);
        return Ok(Handled::Sent(n));
    }
    let request: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| (400, format!("SendMessage body is not JSON: {e}")))?;
    let queue = request["QueueUrl"].as_str().unwrap_or_default();
    if !queue.ends_with(&stub.config.queue_url_path) {
        return Err((400, format!("unknown QueueUrl {queue:?}")));
    }
    let message = request["MessageBody"]
        .as_str()
        .ok_or_else(|| (400, "no MessageBody".to_string()))?;
    let envelope = Envelope::decode(message)
        .map_err(|e| (400, format!("MessageBody is not an envelope: {e}")))?;
    if let Body::S3(reference) = &envelope.body {
        let stored = stub
            .objects
            .lock()
            .ok()
            .and_then(|o| o.get(&reference.key).cloned());
        if stored != Some((reference.size, reference.sha256.clone())) {
            return Err((
                400,
                format!(
                    "claim check {} does not match an object PUT before",
                    reference.key
                ),
            ));
        }
    }
    if let Ok(mut last) = stub.last_message.lock() {
        *last = Some(message.to_string());
    }
    stub.accepted.fetch_add(1, Ordering::Relaxed);
    Ok(Handled::Sent(n))
}

fn header_value(parts: &hyper::http::request::Parts, name: &str) -> String {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex SHA-256 (aws-lc's assembly: the stub must stay cheap in debug builds).
fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// Verifies the request's SigV4 `Authorization` header at Unix time `now`; returns the
/// body's SHA-256 (hex) when it was computed.
fn verify_sigv4(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    service: &str,
    config: &StubConfig,
    now: i64,
) -> Result<Option<String>, Refused> {
    let denied = |reason: String| (403, reason);
    let authorization = header_value(parts, "authorization");
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| denied("no AWS4-HMAC-SHA256 authorization header".into()))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(denied(format!("malformed authorization field {field:?}"))),
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(denied(
            "authorization lacks Credential, SignedHeaders or Signature".into(),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, scope_service, terminator] = scope[..] else {
        return Err(denied(format!("malformed credential {credential:?}")));
    };
    if key_id != config.access_key_id {
        return Err(denied(format!("unknown access key {key_id:?}")));
    }
    if region != config.region || scope_service != service || terminator != "aws4_request" {
        return Err(denied(format!(
            "credential scope {region}/{scope_service}/{terminator}, expected {}/{service}/aws4_request",
            config.region
        )));
    }
    let amz_date = header_value(parts, "x-amz-date");
    let signed_at = parse_amz_date(&amz_date)
        .ok_or_else(|| denied(format!("malformed x-amz-date {amz_date:?}")))?;
    if !amz_date.starts_with(date) {
        return Err(denied("x-amz-date is not on the credential's date".into()));
    }
    if (now - signed_at).abs() > 15 * 60 {
        return Err(denied("x-amz-date is more than 15 minutes from now".into()));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(denied("host and x-amz-date must be signed".into()));
    }
    if names.windows(2).any(|w| w[0] >= w[1]) || names.iter().any(|n| *n != n.to_lowercase()) {
        return Err(denied("SignedHeaders not lower-case and sorted".into()));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(denied(format!("signed header {name} is missing")));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }

    let mut computed = None;
    let payload_hash = match parts.headers.get("x-amz-content-sha256") {
        Some(v) => {
            let v = v.to_str().unwrap_or("").to_string();
            if v == "UNSIGNED-PAYLOAD" && service == "s3" {
                v
            } else {
                let actual = sha256_hex(body);
                if v != actual {
                    return Err((400, "x-amz-content-sha256 does not match the body".into()));
                }
                computed = Some(actual.clone());
                actual
            }
        }
        None if service == "s3" => {
            return Err((400, "S3 requires x-amz-content-sha256".into()));
        }
        None => sha256_hex(body),
    };
    let path = parts.uri.path();
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
    {
        return Err(denied(format!(
            "path {path:?} needs URI encoding the stub does not do"
        )));
    }
    let mut query: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|q| !q.is_empty())
        .collect();
    query.sort_unstable();
    let canonical_request = format!(
        "{}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        parts.method.as_str(),
        query.join("&")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mac = |key: &[u8], data: &str| compute(Algorithm::Sha256, key, &[data.as_bytes()]);
    let k_date = mac(format!("AWS4{}", config.secret_access_key).as_bytes(), date);
    let k_region = mac(&k_date, region);
    let k_service = mac(&k_region, service);
    let k_signing = mac(&k_service, "aws4_request");
    let expected = hex(&mac(&k_signing, &string_to_sign));
    if expected != signature {
        return Err(denied("signature does not match".into()));
    }
    Ok(computed)
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20261123T120000Z"), Some(1_795_435_200));
        assert_eq!(parse_amz_date("20240229T000000Z"), Some(1_709_164_800));
        assert_eq!(parse_amz_date("2026-11-23T12:00"), None);
    }

    fn config(service_key: &str) -> StubConfig {
        StubConfig {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: service_key.into(),
            region: "us-east-1".into(),
            queue_url_path: "/q".into(),
        }
    }

    /// The AWS SigV4 test suite's `get-vanilla` and `post-x-www-form-urlencoded` vectors
    /// (region us-east-1, service `service`, 2015-08-30T12:36:00Z).
    #[test]
    fn aws_test_suite_vectors() {
        const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        const AT: i64 = 1_440_938_160;
        let vanilla = || {
            Request::builder()
                .method("GET")
                .uri("/")
                .header("host", "example.amazonaws.com")
                .header("x-amz-date", "20150830T123600Z")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                )
        };
        let (parts, ()) = vanilla().body(()).unwrap().into_parts();
        assert!(verify_sigv4(&parts, b"", "service", &config(SECRET), AT).is_ok());
        // The clock window, a wrong secret, a changed body or header: refused.
        let err = verify_sigv4(&parts, b"", "service", &config(SECRET), AT + 901).unwrap_err();
        assert!(err.1.contains("15 minutes"), "{err:?}");
        assert!(verify_sigv4(&parts, b"", "service", &config("other"), AT).is_err());
        assert!(verify_sigv4(&parts, b"x", "service", &config(SECRET), AT).is_err());
        assert!(verify_sigv4(&parts, b"", "sqs", &config(SECRET), AT).is_err());
        let (parts, ()) = vanilla()
            .header("host", "example.amazonaws.com")
            .body(())
            .unwrap()
            .into_parts();
        assert!(verify_sigv4(&parts, b"", "service", &config(SECRET), AT).is_err());
        // Unsigned: refused.
        let (mut parts, ()) = vanilla().body(()).unwrap().into_parts();
        parts.headers.remove("authorization");
        assert!(verify_sigv4(&parts, b"", "service", &config(SECRET), AT).is_err());

        let (parts, ()) = Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", "example.amazonaws.com")
            .header("x-amz-date", "20150830T123600Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            )
            .body(())
            .unwrap()
            .into_parts();
        assert!(verify_sigv4(&parts, b"Param1=value1", "service", &config(SECRET), AT).is_ok());
    }
}
