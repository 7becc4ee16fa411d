//! An HTTP destination for deliveries: records every request, answers per path as told
//! (succeed, fail N times first, always fail), and optionally appends each delivery as one
//! JSON line to a file (the `make dev` demo destination, for `tail -f`), naming the route it
//! came through (`sluice-destination`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// How the destination answers requests to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 every time.
    Succeed,
    /// `status` for the first `times` requests, then 200.
    FailFirst { times: u32, status: u16 },
    /// `status` every time.
    AlwaysFail { status: u16 },
    /// The first request is never answered (recorded with status 0); later ones get 200.
    /// For crash tests: the consumer dies while waiting.
    HangFirst,
    /// `status` (a 3xx) with `Location: location` every time.
    Redirect { status: u16, location: &'static str },
}

/// One request the destination received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status the destination answered with.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Delivery {
    /// A request header's value (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The destination (route) it was delivered for: `sluice-destination`.
    pub fn destination(&self) -> Option<&str> {
        self.header("sluice-destination")
    }

    /// Its `webhook-id`: the (event, destination) pair's key.
    pub fn webhook_id(&self) -> Option<&str> {
        self.header("webhook-id")
    }

    /// Whether the destination answered 2xx.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    behaviours: HashMap<String, Behaviour>,
    seen: HashMap<String, u32>,
    deliveries: Vec<Delivery>,
}

/// A running destination server on 127.0.0.1.
#[derive(Clone)]
pub struct Destination {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Destination {
    /// Starts the server; with `log`, each delivery is appended to that file as JSON.
    pub async fn start(log: Option<PathBuf>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let server_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = server_state.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, state.clone(), log.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Destination { url, state })
    }

    /// Sets how requests to `path` (e.g. `/flaky`) are answered.
    pub fn set(&self, path: &str, behaviour: Behaviour) {
        if let Ok(mut s) = self.state.lock() {
            s.behaviours.insert(path.to_string(), behaviour);
        }
    }

    /// Every request received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state
            .lock()
            .map(|s| s.deliveries.clone())
            .unwrap_or_default()
    }

    /// Requests to `path` that were answered 2xx.
    pub fn successful(&self, path: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.path == path && (200..300).contains(&d.status))
            .collect()
    }

    /// Every request to `path`, whatever the answer.
    pub fn attempts(&self, path: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.path == path)
            .collect()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    log: Option<PathBuf>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let mut location = None;
    let status = {
        let mut s = match state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let n = {
            let seen = s.seen.entry(path.clone()).or_insert(0);
            *seen += 1;
            *seen
        };
        let status = match s
            .behaviours
            .get(&path)
            .copied()
            .unwrap_or(Behaviour::Succeed)
        {
            Behaviour::Succeed => 200,
            Behaviour::FailFirst { times, status } if n <= times => status,
            Behaviour::FailFirst { .. } => 200,
            Behaviour::AlwaysFail { status } => status,
            Behaviour::HangFirst if n == 1 => 0,
            Behaviour::HangFirst => 200,
            Behaviour::Redirect {
                status,
                location: to,
            } => {
                location = Some(to);
                status
            }
        };
        s.deliveries.push(Delivery {
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
            status,
            at: std::time::Instant::now(),
        });
        status
    };
    if let Some(log) = log {
        let line = serde_json::json!({
            "path": path,
            "status": status,
            "source": headers.get("sluice-source"),
            "destination": headers.get("sluice-destination"),
            "event_id": headers.get("sluice-event-id"),
            "webhook_id": headers.get("webhook-id"),
            "content_type": headers.get("content-type"),
            "body": match std::str::from_utf8(&body) {
                Ok(text) => serde_json::Value::String(text.to_string()),
                Err(_) => serde_json::json!({"base64": B64.encode(&body)}),
            },
        });
        // One whole line per write, one writer at a time: a fan-out's deliveries arrive
        // at once, and `writeln!` may write a line in pieces that interleave.
        static FILE: Mutex<()> = Mutex::new(());
        let line = format!("{line}\n");
        let _guard = FILE.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
    if status == 0 {
        // Never answer: hold the connection until the client goes away.
        std::future::pending::<()>().await;
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"")));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Some(Ok(to)) = location.map(hyper::header::HeaderValue::from_str) {
        resp.headers_mut().insert(hyper::header::LOCATION, to);
    }
    Ok(resp)
}
