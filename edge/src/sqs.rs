//! `SendMessage` to SQS over `worker::Fetch`, signed with SigV4 by `aws-sigv4`.
//!
//! Uses SQS's JSON protocol (`X-Amz-Target: AmazonSQS.SendMessage`). One attempt has a
//! deadline; a 5xx, a throttle, a network error or a timeout gets exactly one quick retry.
//! The same envelope (same event id) is sent on the retry, so a message that did get through
//! the first time is deduplicated by the consumer. Never logs credentials or bodies.

use crate::config::QueueConfig;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures_util::future::{select, Either};
use sluice_protocol::{Envelope, IngestError};
use std::time::{Duration, UNIX_EPOCH};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What went wrong with one attempt.
enum AttemptError {
    /// Worth one more try: 5xx, throttling, network failure, timeout.
    Transient(String),
    /// Retrying will not help (e.g. access denied, queue does not exist).
    Permanent(String),
}

/// Queues `envelope`; `Ok` only once SQS acknowledged the message.
pub async fn send(queue: &QueueConfig, envelope: &Envelope) -> Result<(), IngestError> {
    let body = request_body(queue, envelope);
    let mut last = String::new();
    for attempt in 0..2 {
        if attempt > 0 {
            Delay::from(RETRY_PAUSE).await;
        }
        match attempt_send(queue, &body).await {
            Ok(()) => return Ok(()),
            Err(AttemptError::Transient(detail)) => last = detail,
            Err(AttemptError::Permanent(detail)) => {
                last = detail;
                break;
            }
        }
    }
    worker::console_error!(
        "{{\"level\":\"error\",\"msg\":\"sqs send failed\",\"event_id\":\"{}\",\"detail\":{}}}",
        envelope.id,
        serde_json::Value::String(last)
    );
    Err(IngestError::QueueUnavailable)
}

fn request_body(queue: &QueueConfig, envelope: &Envelope) -> String {
    let mut attributes = serde_json::Map::new();
    let mut attr = |name: &str, value: &str| {
        attributes.insert(
            name.to_string(),
            serde_json::json!({"DataType": "String", "StringValue": value}),
        );
    };
    attr("sluice-source", &envelope.source);
    attr("sluice-event-id", &envelope.id);
    if let Some(key) = envelope
        .idempotency_key
        .as_deref()
        .filter(|k| !k.is_empty())
    {
        attr("sluice-idempotency-key", key);
    }
    if let Some(trace) = envelope.trace_id.as_deref() {
        attr("sluice-trace-id", trace);
    }
    serde_json::json!({
        "QueueUrl": queue.queue_url,
        "MessageBody": envelope.encode(),
        "MessageAttributes": attributes,
    })
    .to_string()
}

async fn attempt_send(queue: &QueueConfig, body: &str) -> Result<(), AttemptError> {
    let url = format!("{}/", queue.endpoint.trim_end_matches('/'));
    let mut headers = vec![
        ("content-type", "application/x-amz-json-1.0".to_string()),
        ("x-amz-target", "AmazonSQS.SendMessage".to_string()),
    ];
    for (name, value) in sigv4_headers(queue, &url, &headers, body)? {
        headers.push((name, value));
    }

    let js_headers = Headers::new();
    for (name, value) in &headers {
        js_headers
            .set(name, value)
            .map_err(|e| AttemptError::Permanent(format!("header {name}: {e}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(js_headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init(&url, &init)
        .map_err(|e| AttemptError::Permanent(format!("request: {e}")))?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let deadline = Box::pin(Delay::from(ATTEMPT_TIMEOUT));
    let mut response = match select(sending, deadline).await {
        Either::Left((Ok(response), _)) => response,
        Either::Left((Err(e), _)) => return Err(AttemptError::Transient(format!("fetch: {e}"))),
        Either::Right(_) => {
            controller.abort();
            return Err(AttemptError::Transient("timed out".into()));
        }
    };
    let status = response.status_code();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let detail = format!("SQS answered {status}: {}", truncate(&text, 300));
    let throttled = text.contains("Throttl") || text.contains("RequestThrottled");
    if status >= 500 || status == 429 || throttled {
        Err(AttemptError::Transient(detail))
    } else {
        Err(AttemptError::Permanent(detail))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The SigV4 headers (`authorization`, `x-amz-date`, …) for this request.
fn sigv4_headers(
    queue: &QueueConfig,
    url: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Result<Vec<(&'static str, String)>, AttemptError> {
    let identity: Identity = Credentials::new(
        queue.access_key_id.clone(),
        queue.secret_access_key.clone(),
        queue.session_token.clone(),
        None,
        "sluice-edge",
    )
    .into();
    // `SystemTime::now()` panics on wasm32: take the time from the JS clock.
    let now = UNIX_EPOCH + Duration::from_millis(worker::Date::now().as_millis());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&queue.region)
        .name("sqs")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| AttemptError::Permanent(format!("signing params: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| AttemptError::Permanent(format!("signable request: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| AttemptError::Permanent(format!("signing: {e}")))?
        .into_parts();
    let (signed_headers, _query_params) = instructions.into_parts();
    Ok(signed_headers
        .iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}
