//! A local Lambda Runtime API (the `/2018-06-01/runtime/...` endpoints a custom runtime
//! polls), for benchmarks that run the real `bootstrap` binary: it hands out queued
//! invocations, records each response, and notes when the function first polled (the end
//! of its cold start).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

#[derive(Default)]
struct State {
    first_poll: Option<Instant>,
    responses: Vec<(String, Vec<u8>)>,
    errors: Vec<(String, Vec<u8>)>,
}

/// A running runtime API on 127.0.0.1; `address` is the value for `AWS_LAMBDA_RUNTIME_API`.
pub struct RuntimeApi {
    pub address: String,
    state: Arc<Mutex<State>>,
    invocations: mpsc::UnboundedSender<(String, Vec<u8>)>,
    answered: Arc<Notify>,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = mpsc::unbounded_channel::<(String, Vec<u8>)>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let answered = Arc::new(Notify::new());
        let (server_state, server_answered) = (state.clone(), answered.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, rx, answered) =
                    (server_state.clone(), rx.clone(), server_answered.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, state.clone(), rx.clone(), answered.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi {
            address,
            state,
            invocations: tx,
            answered,
        })
    }

    /// Queues one invocation with `payload`; returns its request id.
    pub fn invoke(&self, payload: Vec<u8>) -> String {
        let id = format!("req-{}", rand::random::<u64>());
        let _ = self.invocations.send((id.clone(), payload));
        id
    }

    /// When the function first asked for an invocation.
    pub fn first_poll(&self) -> Option<Instant> {
        self.state.lock().ok()?.first_poll
    }

    /// Waits until `id` was answered (response or error); returns the response body, or
    /// the error body as `Err`.
    pub async fn answer(&self, id: &str) -> Result<Vec<u8>, Vec<u8>> {
        loop {
            let notified = self.answered.notified();
            if let Ok(s) = self.state.lock() {
                if let Some((_, body)) = s.responses.iter().find(|(r, _)| r == id) {
                    return Ok(body.clone());
                }
                if let Some((_, body)) = s.errors.iter().find(|(r, _)| r == id || r == "init") {
                    return Err(body.clone());
                }
            }
            notified.await;
        }
    }
}

type Invocations = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>>;

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    invocations: Invocations,
    answered: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if method == hyper::Method::GET && path.ends_with("/runtime/invocation/next") {
        if let Ok(mut s) = state.lock() {
            s.first_poll.get_or_insert_with(Instant::now);
        }
        let next = invocations.lock().await.recv().await;
        let Some((id, payload)) = next else {
            return Ok(Response::builder()
                .status(500)
                .body(Full::new(Bytes::new()))
                .unwrap_or_default());
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() + 60_000)
            .unwrap_or(0);
        return Ok(Response::builder()
            .header("Lambda-Runtime-Aws-Request-Id", id)
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:sluice-consumer",
            )
            .header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000",
            )
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(payload)))
            .unwrap_or_default());
    }
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let mut parts = path.trim_start_matches('/').split('/');
    // 2018-06-01/runtime/invocation/{id}/response|error, or 2018-06-01/runtime/init/error
    let (_, _, kind, id, what) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    if let Ok(mut s) = state.lock() {
        match (kind, id, what) {
            (Some("invocation"), Some(id), Some("response")) => {
                s.responses.push((id.to_string(), body))
            }
            (Some("invocation"), Some(id), Some("error")) => s.errors.push((id.to_string(), body)),
            (Some("init"), Some("error"), _) => s.errors.push(("init".into(), body)),
            _ => {}
        }
    }
    answered.notify_waiters();
    Ok(Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap_or_default())
}
