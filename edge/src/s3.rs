//! The claim check's upload: `PutObject` of a large body to the payload bucket.
//!
//! The object is written before the reference is queued; if the upload fails the request is
//! answered 503 and nothing is queued.

use crate::aws::{call, with_one_retry, AwsAuth, AwsRequest};
use crate::config::PayloadConfig;
use sluice_protocol::IngestError;
use std::time::Duration;
use worker::Method;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);

/// Stores `body` at `key`.
pub async fn put(
    payload: &PayloadConfig,
    auth: &AwsAuth,
    key: &str,
    body: &[u8],
    body_sha256: &str,
    content_type: Option<&str>,
    event_id: &str,
) -> Result<(), IngestError> {
    let url = payload.object_url(key);
    let result = with_one_retry(|| {
        call(
            auth,
            AwsRequest {
                service: "s3",
                method: Method::Put,
                url: &url,
                headers: vec![
                    (
                        "content-type",
                        content_type
                            .unwrap_or("application/octet-stream")
                            .to_string(),
                    ),
                    ("x-amz-meta-sluice-event-id", event_id.to_string()),
                ],
                body,
                body_sha256: Some(body_sha256.to_string()),
                timeout: ATTEMPT_TIMEOUT,
            },
        )
    })
    .await;
    result.map(|_| ()).map_err(|e| {
        worker::console_error!(
            "{{\"level\":\"error\",\"msg\":\"s3 put failed\",\"event_id\":\"{}\",\"detail\":{}}}",
            event_id,
            serde_json::Value::String(e.detail().to_string())
        );
        IngestError::QueueUnavailable
    })
}
