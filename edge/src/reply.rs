//! The edge's HTTP answers. Error statuses and codes come from `IngestError` (the one place
//! they are mapped); this module only turns them into responses.

use sluice_protocol::IngestError;
use worker::{Headers, Response};

const TRACE_HEADER: &str = "sluice-trace-id";

fn json(status: u16, body: String) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::from_bytes(body.into_bytes())?
        .with_status(status)
        .with_headers(headers))
}

/// `202 {"id": "<event id>"}`: the event is durably queued.
pub fn accepted(event_id: &str, trace_id: &str) -> worker::Result<Response> {
    let mut resp = json(202, serde_json::json!({ "id": event_id }).to_string())?;
    resp.headers_mut().set(TRACE_HEADER, trace_id)?;
    Ok(resp)
}

/// A refusal: JSON error body, the mapped status, and the headers the status calls for.
pub fn refused(error: &IngestError, trace_id: &str) -> worker::Result<Response> {
    let mut resp = json(error.status(), error.to_json())?;
    let headers = resp.headers_mut();
    match error {
        IngestError::MethodNotAllowed => headers.set("allow", "POST")?,
        IngestError::QueueUnavailable => headers.set("retry-after", "5")?,
        _ => {}
    }
    headers.set(TRACE_HEADER, trace_id)?;
    Ok(resp)
}

/// A provider handshake answered directly (Slack `url_verification`).
pub fn answer(body: String, trace_id: &str) -> worker::Result<Response> {
    let mut resp = json(200, body)?;
    resp.headers_mut().set(TRACE_HEADER, trace_id)?;
    Ok(resp)
}

/// `GET /healthz`: answers without touching AWS.
pub fn healthy() -> worker::Result<Response> {
    json(200, "{\"status\":\"ok\"}".to_string())
}
