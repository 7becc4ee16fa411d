//! Settling a record that failed: dead-lettering it with its reason, or hiding it for its
//! backoff so SQS redelivers it then. Every call here is bounded by the invocation's
//! deadline (an invocation that overruns loses its whole batch response).
//!
//! It never drops a record silently: a dead-letter send that fails leaves the record for
//! redelivery, and a visibility change that fails leaves it to the queue's timeout.

use crate::batch::{Consumer, COMPLETION_MARGIN};
use crate::clock::now_ms;
use crate::outcome::{Failure, FailureKind};
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;
use sluice_protocol::queue_attributes::{
    is_dead_letter_attribute, ATTEMPTS, DESTINATION, FAILURE_DETAIL, FAILURE_REASON, LAST_STATUS,
};
use std::time::Duration;

/// How a failed record was settled.
pub(crate) enum Settled {
    /// Moved to the DLQ with its reason: acknowledge it.
    DeadLettered,
    /// Left for redelivery, hidden for `backoff_secs` when that could be set.
    Retry { backoff_secs: Option<u32> },
}

/// Runs one call of a record's bookkeeping (the completion write, a release, a dead-letter
/// send, a visibility change), cut off shortly before the invocation's deadline: an
/// invocation that overruns loses its whole batch response. The error as text, for the log.
pub(crate) async fn before_deadline<T, E: std::fmt::Display>(
    deadline_ms: u64,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    let left = deadline_ms
        .saturating_sub(now_ms())
        .saturating_sub(COMPLETION_MARGIN.as_millis() as u64);
    match tokio::time::timeout(Duration::from_millis(left), call).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out at the invocation's deadline".into()),
    }
}

/// `https://sqs.{region}.amazonaws.com/{account}/{name}` from `arn:aws:sqs:{region}:{account}:{name}`.
pub fn queue_url_from_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (_, _, service, region, account, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (service == "sqs").then(|| format!("https://sqs.{region}.amazonaws.com/{account}/{name}"))
}

/// A FIFO dead letter's deduplication id: the message's, with the destination's name for a
/// per-destination copy (hashed when that would pass SQS's 128 characters).
fn fifo_dedup_id(id: &str, destination: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    match destination {
        None => id.to_string(),
        Some(name) if id.len() + 1 + name.len() <= 128 => format!("{id}-{name}"),
        Some(name) => hex::encode(Sha256::digest(format!("{id}-{name}").as_bytes())),
    }
}

impl Consumer {
    /// Dead-letters a permanent failure at once (when a DLQ is configured); otherwise hides
    /// the record for a backoff delay and leaves it to be redelivered.
    pub(crate) async fn settle_failure(
        &self,
        record: &SqsMessage,
        failure: &Failure,
        attempt: u32,
        destination: Option<&str>,
        deadline_ms: u64,
    ) -> Settled {
        if failure.kind == FailureKind::Permanent {
            if let Some(dlq) = &self.config.dlq_url {
                match before_deadline(
                    deadline_ms,
                    self.dead_letter(dlq, record, failure, attempt, destination),
                )
                .await
                {
                    Ok(()) => return Settled::DeadLettered,
                    Err(e) => {
                        tracing::error!(detail = %e, "could not dead-letter; the redrive policy will")
                    }
                }
            }
        }
        let delay =
            self.config
                .retry
                .delay_secs(attempt, rand::random::<f64>(), failure.retry_after_secs);
        match before_deadline(deadline_ms, self.hide(record, delay)).await {
            Ok(()) => Settled::Retry {
                backoff_secs: Some(delay),
            },
            Err(e) => {
                tracing::warn!(detail = %e, "could not change visibility; the queue's timeout applies");
                Settled::Retry { backoff_secs: None }
            }
        }
    }

    /// Sends the record to the DLQ with why it failed.
    pub(crate) async fn dead_letter(
        &self,
        dlq_url: &str,
        record: &SqsMessage,
        failure: &Failure,
        attempt: u32,
        destination: Option<&str>,
    ) -> Result<(), String> {
        let attr = |v: String| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| e.to_string())
        };
        let mut send = self
            .sqs
            .send_message()
            .queue_url(dlq_url)
            .message_body(record.body.clone().unwrap_or_default());
        for (name, value) in &record.message_attributes {
            // A copy for one destination names it below (the record may name it already).
            let replaced = destination.is_some() && name == DESTINATION;
            if let (Some(v), false) = (
                &value.string_value,
                is_dead_letter_attribute(name) || replaced,
            ) {
                send = send.message_attributes(name, attr(v.clone())?);
            }
        }
        // SQS refuses some characters in attributes as in bodies: replaced, so the dead
        // letter is never refused for its explanation.
        let detail: String = failure
            .detail
            .chars()
            .take(256)
            .map(|c| {
                if sluice_protocol::sqs_text::is_queueable_char(c) {
                    c
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect();
        send = send
            .message_attributes(FAILURE_REASON, attr(failure.reason.to_string())?)
            .message_attributes(FAILURE_DETAIL, attr(detail)?)
            .message_attributes(ATTEMPTS, attr(attempt.to_string())?);
        if let Some(status) = failure.status {
            send = send.message_attributes(LAST_STATUS, attr(status.to_string())?);
        }
        if let Some(name) = destination {
            send = send.message_attributes(DESTINATION, attr(name.to_string())?);
        }
        if dlq_url.ends_with(".fifo") {
            // A FIFO DLQ needs a group (kept, so redrive restores it) and a deduplication id.
            let group = record.attributes.get("MessageGroupId").cloned();
            // One dead letter per destination: the destination is part of its id.
            let dedup = record
                .attributes
                .get("MessageDeduplicationId")
                .cloned()
                .or_else(|| record.message_id.clone())
                .map(|id| fifo_dedup_id(&id, destination));
            send = send
                .set_message_group_id(group)
                .set_message_deduplication_id(dedup);
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
    }

    /// Hides the record for `delay_secs` (its next attempt), via ChangeMessageVisibility.
    pub(crate) async fn hide(&self, record: &SqsMessage, delay_secs: u32) -> Result<(), String> {
        let receipt = record
            .receipt_handle
            .as_deref()
            .ok_or("record has no receipt handle")?;
        let queue_url = match &self.config.queue_url {
            Some(url) => url.clone(),
            None => record
                .event_source_arn
                .as_deref()
                .and_then(queue_url_from_arn)
                .ok_or("no SLUICE_QUEUE_URL and no usable eventSourceARN")?,
        };
        self.sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay_secs as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_dead_letters_differ_per_destination() {
        assert_eq!(fifo_dedup_id("m-1", None), "m-1");
        assert_eq!(fifo_dedup_id("m-1", Some("audit")), "m-1-audit");
        let long = "x".repeat(128);
        let hashed = fifo_dedup_id(&long, Some("audit"));
        assert_eq!(hashed.len(), 64);
        assert_ne!(hashed, fifo_dedup_id(&long, Some("billing")));
    }

    #[test]
    fn queue_url_from_event_source_arn() {
        assert_eq!(
            queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:sluice-events").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-events")
        );
        assert_eq!(queue_url_from_arn("arn:aws:sns:eu-west-1:1:x"), None);
        assert_eq!(queue_url_from_arn("nonsense"), None);
    }
}
