//! `SendMessage` to SQS (JSON protocol, `X-Amz-Target: AmazonSQS.SendMessage`).
//!
//! A 5xx, a throttle, a network error or a timeout gets exactly one quick retry. The retry
//! sends the same envelope (same event id), so a message that did get through the first
//! time is deduplicated by the consumer.

use crate::aws::{call, with_one_retry, AwsAuth, AwsRequest};
use crate::config::QueueConfig;
use sluice_protocol::{Encoded, Envelope, IngestError};
use std::time::Duration;
use worker::Method;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

pub use sluice_protocol::send_message::FifoIds as Fifo;

/// Queues `envelope` (already encoded as `encoded`); `Ok` only once SQS acknowledged it.
pub async fn send(
    queue: &QueueConfig,
    auth: &AwsAuth,
    envelope: &Envelope,
    encoded: &Encoded<'_>,
    fifo: Option<&Fifo>,
) -> Result<(), IngestError> {
    let body = request_body(queue, envelope, encoded, fifo);
    let url = format!("{}/", queue.endpoint.trim_end_matches('/'));
    let result = with_one_retry(|| {
        call(
            auth,
            AwsRequest {
                service: "sqs",
                method: Method::Post,
                url: &url,
                headers: vec![
                    ("content-type", "application/x-amz-json-1.0".to_string()),
                    ("x-amz-target", "AmazonSQS.SendMessage".to_string()),
                ],
                body: body.as_bytes(),
                body_sha256: None,
                timeout: ATTEMPT_TIMEOUT,
            },
        )
    })
    .await;
    result.map(|_| ()).map_err(|e| {
        worker::console_error!(
            "{{\"level\":\"error\",\"msg\":\"sqs send failed\",\"event_id\":\"{}\",\"detail\":{}}}",
            envelope.id,
            serde_json::Value::String(e.detail().to_string())
        );
        IngestError::QueueUnavailable
    })
}

/// The SendMessage request: the encoded envelope as the body, routing facts as attributes.
pub fn request_body(
    queue: &QueueConfig,
    envelope: &Envelope,
    encoded: &Encoded<'_>,
    fifo: Option<&Fifo>,
) -> String {
    sluice_protocol::send_message::request_body(
        &queue.queue_url,
        &encoded.parts(),
        sluice_protocol::queue_attributes::for_envelope(envelope),
        fifo,
    )
}
