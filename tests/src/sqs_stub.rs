//! A fast stand-in for SQS's `SendMessage`, for load runs of the edge: it checks that each
//! request is a SigV4-signed JSON-protocol SendMessage and answers like SQS, in
//! microseconds, so the edge (not moto) is what gets measured. Never used for correctness.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// A running stub; counts what it accepted and refused.
#[derive(Clone)]
pub struct SqsStub {
    pub url: String,
    accepted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
}

impl SqsStub {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stub = SqsStub {
            url,
            accepted: Arc::default(),
            refused: Arc::default(),
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

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

async fn answer(
    req: Request<Incoming>,
    stub: SqsStub,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let signed = header("authorization").starts_with("AWS4-HMAC-SHA256 Credential=")
        && header("authorization").contains("/sqs/aws4_request")
        && !header("x-amz-date").is_empty();
    let send_message = header("x-amz-target") == "AmazonSQS.SendMessage";
    let body = req.into_body().collect().await?.to_bytes();
    let has_body = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .is_some_and(|v| v["MessageBody"].is_string() && v["QueueUrl"].is_string());
    let (status, text) = if signed && send_message && has_body {
        let n = stub.accepted.fetch_add(1, Ordering::Relaxed);
        (
            200,
            format!(
                r#"{{"MD5OfMessageBody":"00000000000000000000000000000000","MessageId":"stub-{n}"}}"#
            ),
        )
    } else {
        stub.refused.fetch_add(1, Ordering::Relaxed);
        (400, r#"{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"stub: not a signed SendMessage"}"#.to_string())
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    Ok(resp)
}
