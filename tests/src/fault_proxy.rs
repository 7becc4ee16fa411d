//! A fault-injecting HTTP proxy for reliability tests: it sits in front of a real service
//! (moto, the destination) and, at a configurable rate, answers or breaks a request instead
//! of (or after) forwarding it: 503, throttling in the AWS error format, a timeout, a reset
//! connection, a slow answer, or an error after the upstream already acted.
//!
//! Only for faults that cannot be caused otherwise; everything it forwards reaches the real
//! service unchanged. It never decides what is correct: tests assert on the real services.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 503 without forwarding.
    Unavailable,
    /// The AWS throttling error (JSON protocols: 400 `ThrottlingException`; S3: 503
    /// `SlowDown`), without forwarding.
    Throttle,
    /// No answer for `hold`, then the connection is closed; not forwarded.
    Timeout,
    /// The connection is closed without an answer; not forwarded.
    Reset,
    /// Forwarded, answered after a delay.
    Slow,
    /// Forwarded (the upstream acted), then answered 500: the client must not assume
    /// nothing happened.
    ErrorAfterForward,
    /// Refused as S3 refuses a bad signature (403 `SignatureDoesNotMatch`), its body echoing
    /// what the request carried (the `Authorization` header), as S3's error bodies do; not
    /// forwarded. The client must not log that body.
    Refused,
}

/// What to inject: each request meets a fault with probability `rate`, its kind drawn
/// evenly from `kinds`.
#[derive(Debug, Clone)]
pub struct Faults {
    pub rate: f64,
    pub kinds: Vec<Fault>,
    /// How long a `Timeout` holds the request.
    pub hold: Duration,
    /// How long a `Slow` answer is delayed.
    pub delay: Duration,
    /// At most this many faults from now on (`None`: no limit), e.g. `Some(1)` with rate 1
    /// to fail exactly the next call.
    pub limit: Option<u64>,
}

impl Faults {
    pub fn none() -> Self {
        Faults {
            rate: 0.0,
            kinds: Vec::new(),
            hold: Duration::from_secs(6),
            delay: Duration::from_millis(800),
            limit: None,
        }
    }
}

struct State {
    faults: Faults,
    injected: BTreeMap<String, u64>,
    forwarded: u64,
    by_operation: BTreeMap<String, u64>,
}

/// A running proxy on 127.0.0.1 in front of `upstream`.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            faults: Faults::none(),
            injected: BTreeMap::new(),
            forwarded: 0,
            by_operation: BTreeMap::new(),
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let upstream = upstream.trim_end_matches('/').to_string();
        let server_state = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, client, upstream) =
                    (server_state.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, state.clone(), client.clone(), upstream.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy { url, state })
    }

    /// Replaces the fault settings (e.g. `Faults::none()` to stop injecting).
    pub fn set(&self, faults: Faults) {
        if let Ok(mut s) = self.state.lock() {
            s.faults = faults;
        }
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.injected.clone())
            .unwrap_or_default()
    }

    /// Requests forwarded to the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.state.lock().map(|s| s.forwarded).unwrap_or(0)
    }

    /// Requests forwarded so far, by operation: the `X-Amz-Target` header of the AWS JSON
    /// protocols (`DynamoDB_20120810.PutItem`, `AmazonSQS.DeleteMessage`), otherwise the
    /// method and path (`PUT /bucket/key`).
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.by_operation.clone())
            .unwrap_or_default()
    }
}

/// Why the proxy closed a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("fault proxy: connection {0}")]
struct Dropped(&'static str);

fn roll(state: &Mutex<State>) -> (Option<Fault>, Faults) {
    let Ok(mut s) = state.lock() else {
        return (None, Faults::none());
    };
    let faults = s.faults.clone();
    if faults.kinds.is_empty() || faults.limit == Some(0) || rand::random::<f64>() >= faults.rate {
        return (None, faults);
    }
    if let Some(left) = s.faults.limit.as_mut() {
        *left -= 1;
    }
    let fault = faults.kinds[rand::random_range(0..faults.kinds.len())];
    *s.injected.entry(format!("{fault:?}")).or_insert(0) += 1;
    (Some(fault), faults)
}

/// A 5xx in the shape the service would send it (AWS JSON protocols: a JSON `__type`;
/// S3 and plain HTTP: an XML `<Error>`), so clients classify it as they would the real one.
fn server_error(status: u16, json_protocol: bool, code: &str) -> Response<Full<Bytes>> {
    if json_protocol {
        reply(
            status,
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"{code}","message":"injected by the fault proxy"}}"#),
        )
    } else {
        reply(
            status,
            "application/xml",
            format!(
                "<Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>"
            ),
        )
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert("content-type", v);
    }
    response
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let json_protocol = req.headers().contains_key("x-amz-target");
    let operation = match req.headers().get("x-amz-target") {
        Some(target) => String::from_utf8_lossy(target.as_bytes()).into_owned(),
        None => format!("{} {}", req.method(), req.uri().path()),
    };
    let (fault, settings) = roll(&state);
    match fault {
        Some(Fault::Unavailable) => {
            return Ok(server_error(503, json_protocol, "ServiceUnavailable"))
        }
        Some(Fault::Throttle) if json_protocol => {
            return Ok(reply(
                400,
                "application/x-amz-json-1.0",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded (injected)"}"#.into(),
            ));
        }
        Some(Fault::Throttle) => {
            return Ok(reply(
                503,
                "application/xml",
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected).</Message></Error>".into(),
            ));
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(settings.hold).await;
            return Err(Dropped("timed out"));
        }
        Some(Fault::Reset) => return Err(Dropped("reset")),
        Some(Fault::Refused) => {
            let echoed = req
                .headers()
                .get("authorization")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Ok(reply(
                403,
                "application/xml",
                format!(
                    "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we \
                     calculated does not match the signature you provided.</Message>\
                     <StringToSign>{echoed}</StringToSign></Error>"
                ),
            ));
        }
        _ => {}
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| Dropped("bad method"))?;
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        if matches!(
            name.as_str(),
            "host" | "connection" | "transfer-encoding" | "content-length"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|_| Dropped("body read failed"))?
        .to_bytes();
    let answer = client
        .request(method, format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|_| Dropped("upstream failed"))?;
    if let Ok(mut s) = state.lock() {
        s.forwarded += 1;
        *s.by_operation.entry(operation).or_insert(0) += 1;
    }
    let status = answer.status().as_u16();
    let answer_headers = answer.headers().clone();
    let answer_body = answer.bytes().await.map_err(|_| Dropped("upstream body"))?;
    match fault {
        Some(Fault::Slow) => tokio::time::sleep(settings.delay).await,
        Some(Fault::ErrorAfterForward) => {
            return Ok(server_error(500, json_protocol, "InternalFailure"));
        }
        _ => {}
    }
    let mut response = Response::new(Full::new(answer_body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    for (name, value) in &answer_headers {
        if matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            hyper::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    Ok(response)
}
