//! Calling AWS from the Worker: SigV4 signing by `aws-sigv4`, sending by `worker::Fetch`
//! with a deadline. Shared by the SQS and S3 clients. Never logs credentials or bodies.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures_util::future::{select, Either};
use std::time::{Duration, UNIX_EPOCH};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

/// Credentials and region for signing.
pub struct AwsAuth {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// What went wrong with one call.
pub enum CallError {
    /// Worth one more try: 5xx, throttling, network failure, timeout.
    Transient(String),
    /// Retrying will not help (access denied, no such queue or bucket, …).
    Permanent(String),
}

impl CallError {
    pub fn detail(&self) -> &str {
        match self {
            CallError::Transient(d) | CallError::Permanent(d) => d,
        }
    }
}

/// One signed AWS request.
pub struct AwsRequest<'a> {
    pub service: &'static str,
    pub method: Method,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a [u8],
    /// The body's SHA-256 (hex) when the caller has it already.
    pub body_sha256: Option<String>,
    pub timeout: Duration,
}

/// Signs and sends `req`; `Ok` only for a 2xx answer.
pub async fn call(auth: &AwsAuth, req: AwsRequest<'_>) -> Result<Response, CallError> {
    let mut headers = req.headers;
    // The payload hash SigV4 signs (WebCrypto for large payloads).
    let payload_hash = match req.body_sha256 {
        Some(hash) => hash,
        None => crate::webcrypto::sha256_hex(req.body).await,
    };
    for (name, value) in sigv4_headers(
        auth,
        &req.method,
        req.service,
        req.url,
        &headers,
        payload_hash,
    )? {
        headers.push((name, value));
    }
    let js_headers = Headers::new();
    for (name, value) in &headers {
        js_headers
            .set(name, value)
            .map_err(|e| CallError::Permanent(format!("header {name}: {e}")))?;
    }
    let body = js_sys::Uint8Array::from(req.body);
    let mut init = RequestInit::new();
    init.with_method(req.method)
        .with_headers(js_headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init(req.url, &init)
        .map_err(|e| CallError::Permanent(format!("request: {e}")))?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let deadline = Box::pin(Delay::from(req.timeout));
    let mut response = match select(sending, deadline).await {
        Either::Left((Ok(response), _)) => response,
        Either::Left((Err(e), _)) => return Err(CallError::Transient(format!("fetch: {e}"))),
        Either::Right(_) => {
            controller.abort();
            return Err(CallError::Transient("timed out".into()));
        }
    };
    let status = response.status_code();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    // Only the error code: an AWS error body can echo the session token (S3's
    // `ExpiredToken`) or the signed request (`SignatureDoesNotMatch`).
    let detail = match sluice_protocol::aws_error::error_code(&text) {
        Some(code) => format!("{} answered {status} ({code})", req.service),
        None => format!("{} answered {status}", req.service),
    };
    let throttled = text.contains("Throttl") || text.contains("SlowDown");
    if status >= 500 || status == 429 || throttled {
        Err(CallError::Transient(detail))
    } else {
        Err(CallError::Permanent(detail))
    }
}

/// The SigV4 headers (`authorization`, `x-amz-date`, …) for this request.
fn sigv4_headers(
    auth: &AwsAuth,
    method: &Method,
    service: &str,
    url: &str,
    headers: &[(&'static str, String)],
    payload_hash: String,
) -> Result<Vec<(&'static str, String)>, CallError> {
    let identity: Identity = Credentials::new(
        auth.access_key_id.clone(),
        auth.secret_access_key.clone(),
        auth.session_token.clone(),
        None,
        "sluice-edge",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        // S3 wants the payload hash as a header and the path signed as sent.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    // `SystemTime::now()` panics on wasm32: take the time from the JS clock.
    let now = UNIX_EPOCH + Duration::from_millis(worker::Date::now().as_millis());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| CallError::Permanent(format!("signing params: {e}")))?
        .into();
    let signable = SignableRequest::new(
        method.as_ref(),
        url,
        headers.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Precomputed(payload_hash),
    )
    .map_err(|e| CallError::Permanent(format!("signable request: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CallError::Permanent(format!("signing: {e}")))?
        .into_parts();
    let (signed_headers, _query_params) = instructions.into_parts();
    Ok(signed_headers
        .iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

/// Runs `attempt` once more after a short pause if the first failure was transient.
pub async fn with_one_retry<F, Fut, T>(mut attempt: F) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    match attempt().await {
        Err(CallError::Transient(_)) => {
            Delay::from(Duration::from_millis(100)).await;
            attempt().await
        }
        other => other,
    }
}
