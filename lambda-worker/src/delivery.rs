//! The default processing: deliver an event to one destination with an HTTP POST.
//!
//! The body goes out byte-identical to what the provider sent, with the destination's
//! static headers and `sluice-destination`. With a signing secret (the destination's own,
//! or the consumer-wide one), the request carries Standard Webhooks headers (`webhook-id` =
//! the pair's idempotency key, stable across retries and different per destination,
//! `webhook-timestamp`, `webhook-signature`) so the destination can verify it came from
//! Sluice. The provider's signature headers are never forwarded; header values are never
//! logged.

use crate::outcome::{status_kind, Failure, FailureKind};
use crate::routes::Route;
use sluice_protocol::retry::parse_retry_after;
use sluice_protocol::{Envelope, Scheme, Secret};
use std::time::Duration;

/// A pooled keep-alive HTTP client for deliveries.
#[derive(Debug, Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    secret: Option<Secret>,
}

impl Deliverer {
    pub fn new(timeout: Duration, secret: Option<Secret>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // A redirect is the destination's answer, not followed: on 301/302/303 an HTTP
            // client turns the POST into a GET without the body, and that GET's 200 would
            // count as delivered. A 3xx is a (permanent) failure that names the status.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer { http, secret })
    }

    /// POSTs `body` (the event's original bytes) to `destination`.
    pub async fn deliver(
        &self,
        destination: &Route,
        envelope: &Envelope,
        body: Vec<u8>,
        now_secs: i64,
    ) -> Result<u16, Failure> {
        let key = destination.delivery_key(envelope);
        let mut req = self
            .http
            .post(destination.url.as_str())
            .timeout(destination.timeout);
        for (name, value) in &envelope.headers {
            // A destination's own header replaces a forwarded one of the same name.
            let configured = destination.headers.iter().any(|(n, _)| n == name);
            if !name.starts_with("webhook-") && name != "user-agent" && !configured {
                req = req.header(name.as_str(), value.as_str());
            }
        }
        if let Some(ct) = &envelope.content_type {
            req = req.header("content-type", ct.as_str());
        }
        for (name, value) in &destination.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        req = req
            .header("sluice-event-id", envelope.id.as_str())
            .header("sluice-source", envelope.source.as_str())
            .header("sluice-destination", destination.name.as_str());
        if let Some(trace) = &envelope.trace_id {
            req = req.header("sluice-trace-id", trace.as_str());
        }
        match destination.secret.as_ref().or(self.secret.as_ref()) {
            Some(secret) => {
                let headers = Scheme::StandardWebhooks
                    .sign(secret, &key, now_secs, &body, &Default::default())
                    .unwrap_or_default();
                for (name, value) in headers {
                    req = req.header(name, value);
                }
            }
            None => {
                req = req
                    .header("webhook-id", key.as_str())
                    .header("webhook-timestamp", now_secs.to_string());
            }
        }
        let response = req.body(body).send().await.map_err(|e| {
            // Without the URL: a destination URL can carry a token (`?code=`, a hook path),
            // and this detail is logged and kept on the dead letter.
            let e = e.without_url();
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            Failure::transient("delivery_error", format!("{what}: {e}"))
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(status);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let detail = format!("destination answered {status}");
        let mut failure = match status_kind(status) {
            FailureKind::Transient => Failure::transient("delivery_status", detail),
            FailureKind::Permanent => Failure::permanent("delivery_status", detail),
        };
        failure.status = Some(status);
        failure.retry_after_secs = retry_after;
        Err(failure)
    }
}
