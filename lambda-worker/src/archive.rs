//! The event archive: every envelope the consumer takes on is written, verbatim as queued,
//! to the payload bucket under `archive/` (key scheme in [`sluice_protocol::archive`]), so
//! on-call can re-enqueue a time window with `sluice replay` (idempotency makes that safe).
//!
//! The object is the queued envelope: no secret, no signature (the edge never queues
//! them). A claim-checked body stays a reference to its `payloads/` object. A failed write
//! is a transient failure: the event is retried rather than processed unarchived.

use crate::outcome::Failure;
use aws_sdk_s3::primitives::ByteStream;
use sluice_protocol::Envelope;

/// Writes `queued` (the record body `envelope` was decoded from) to the archive.
pub async fn store(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    envelope: &Envelope,
    queued: &str,
) -> Result<(), Failure> {
    let key =
        sluice_protocol::archive::key(&envelope.source, envelope.received_at_ms, &envelope.id);
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        // The envelope as queued: a JSON line, then the body as received (version 2).
        .content_type("text/plain; charset=utf-8")
        .body(ByteStream::from(queued.as_bytes().to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            Failure::transient(
                "archive_store",
                format!(
                    "s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ),
            )
        })
}
