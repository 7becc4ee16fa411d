//! Dead letters as an operator sees them: reading the DLQ without taking messages away, and
//! what each message says about why it failed.
//!
//! Reading is ReceiveMessage with a short visibility timeout, then visibility back to 0 for
//! every message seen, so the messages stay where they are. It does count as a receive
//! (`ApproximateReceiveCount` grows): harmless, the DLQ has no redrive policy. A reader
//! killed midway leaves messages hidden for at most [`PEEK_VISIBILITY_SECS`].
//! This module never deletes a message and never exposes a body.

use crate::error::{self, Result};
use crate::times;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName as SysAttr};
use serde::Serialize;
use sluice_protocol::queue_attributes;
use sluice_protocol::Envelope;
use std::collections::HashSet;

/// How long a peeked message stays hidden if the reader dies before resetting it.
pub const PEEK_VISIBILITY_SECS: i32 = 30;

/// Reason shown for messages the queue's redrive policy moved (the consumer gave them none).
pub const MAX_RECEIVE_COUNT: &str = "max_receive_count";

/// Shown for a dead letter without `sluice-destination`: it is for every destination.
pub const ALL_DESTINATIONS: &str = "all";

/// One dead letter, decoded for display. Holds no body.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The SQS message id in the DLQ.
    pub message_id: String,
    pub event_id: Option<String>,
    pub source: Option<String>,
    /// The one destination this dead letter is for (`sluice-destination`: it failed there
    /// only); `None` (`null`): every destination of its source (the redrive policy moved
    /// the whole message, or it could not be processed at all).
    pub destination: Option<String>,
    /// `sluice-failure-reason`, or `max_receive_count` when the redrive policy moved it.
    pub reason: String,
    pub detail: Option<String>,
    /// Delivery attempts: `sluice-attempts`, or the main queue's maxReceiveCount for a
    /// message its redrive policy moved (approximate receive count when unknown).
    pub attempts: Option<u64>,
    /// The destination's last HTTP status, when it answered.
    pub last_status: Option<u16>,
    /// When the edge accepted the event (Unix ms), from the envelope.
    pub received_at_ms: Option<u64>,
    /// SQS SentTimestamp of the DLQ message (Unix ms).
    pub sent_at_ms: Option<u64>,
    /// Seconds since the edge accepted the event (since SentTimestamp if not decodable).
    pub age_secs: Option<u64>,
    /// `ApproximateReceiveCount`: listing the DLQ increments it.
    pub receive_count: Option<u64>,
    /// Why the body is not a readable envelope, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_error: Option<String>,
}

fn attribute(m: &Message, name: &str) -> Option<String> {
    m.message_attributes()?
        .get(name)?
        .string_value()
        .map(str::to_string)
}

fn system(m: &Message, name: SysAttr) -> Option<u64> {
    m.attributes()?.get(&name)?.parse().ok()
}

impl DeadLetter {
    /// Reads one DLQ message; `max_receive_count` is the main queue's redrive setting.
    pub fn from_message(m: &Message, max_receive_count: Option<u64>, now_ms: u64) -> Self {
        let envelope = m.body().map(Envelope::decode);
        let (decoded, envelope_error) = match envelope {
            Some(Ok(e)) => (Some(e), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, Some("message has no body".to_string())),
        };
        let reason = attribute(m, queue_attributes::FAILURE_REASON);
        let receive_count = system(m, SysAttr::ApproximateReceiveCount);
        let attempts = match (&reason, attribute(m, queue_attributes::ATTEMPTS)) {
            (_, Some(a)) => a.parse().ok(),
            (None, None) => max_receive_count.or(receive_count.map(|c| c.saturating_sub(1))),
            (Some(_), None) => None,
        };
        let sent_at_ms = system(m, SysAttr::SentTimestamp);
        let received_at_ms = decoded.as_ref().map(|e| e.received_at_ms);
        DeadLetter {
            message_id: m.message_id().unwrap_or_default().to_string(),
            event_id: attribute(m, queue_attributes::EVENT_ID)
                .or_else(|| decoded.as_ref().map(|e| e.id.clone())),
            source: attribute(m, queue_attributes::SOURCE)
                .or_else(|| decoded.as_ref().map(|e| e.source.clone())),
            destination: attribute(m, queue_attributes::DESTINATION).filter(|d| !d.is_empty()),
            reason: reason.unwrap_or_else(|| MAX_RECEIVE_COUNT.to_string()),
            detail: attribute(m, queue_attributes::FAILURE_DETAIL),
            attempts,
            last_status: attribute(m, queue_attributes::LAST_STATUS).and_then(|s| s.parse().ok()),
            received_at_ms,
            sent_at_ms,
            age_secs: received_at_ms
                .or(sent_at_ms)
                .map(|t| now_ms.saturating_sub(t) / 1000),
            receive_count,
            envelope_error,
        }
    }

    /// True when `id` names this dead letter (its SQS message id or its event id).
    pub fn matches(&self, id: &str) -> bool {
        self.message_id == id || self.event_id.as_deref() == Some(id)
    }

    /// The destination column for tables: its name, or `all` for every destination.
    pub fn destination_label(&self) -> &str {
        self.destination.as_deref().unwrap_or(ALL_DESTINATIONS)
    }

    /// The age column for tables.
    pub fn age(&self) -> String {
        self.age_secs.map(times::age).unwrap_or_else(|| "?".into())
    }
}

/// Up to `limit` messages of `dlq_url`, left in place (see the module docs). `expected` is
/// the queue's visible count: reading stops once that many were seen, or after three empty
/// receives (SQS samples servers, so one empty answer does not prove the queue empty), or
/// as soon as `stop` is true for a message read.
pub async fn peek(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    limit: usize,
    expected: usize,
    stop: &dyn Fn(&Message) -> bool,
) -> Result<Vec<Message>> {
    let mut seen: Vec<Message> = Vec::new();
    let result = receive_all(sqs, dlq_url, limit, expected, stop, &mut seen).await;
    // Always give back what we hid, even when a receive failed.
    let reset = release(sqs, dlq_url, &seen).await;
    result?;
    reset?;
    Ok(seen)
}

async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    limit: usize,
    expected: usize,
    stop: &dyn Fn(&Message) -> bool,
    seen: &mut Vec<Message>,
) -> Result<()> {
    let mut ids: HashSet<String> = HashSet::new();
    let mut empty = 0;
    while seen.len() < limit && empty < 3 && !(seen.len() >= expected && empty > 0) {
        let want = (limit - seen.len()).clamp(1, 10) as i32;
        let out = receive(sqs, dlq_url, want, PEEK_VISIBILITY_SECS).await?;
        let before = seen.len();
        let mut found = false;
        for m in out {
            if ids.insert(m.message_id().unwrap_or_default().to_string()) {
                found |= stop(&m);
                seen.push(m);
            }
        }
        if found {
            break;
        }
        empty = if seen.len() == before { empty + 1 } else { 0 };
    }
    Ok(())
}

/// One ReceiveMessage with every attribute, hiding what it returns for `visibility_secs`.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
    visibility_secs: i32,
) -> Result<Vec<Message>> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .visibility_timeout(visibility_secs)
        .wait_time_seconds(0)
        .message_attribute_names("All")
        .message_system_attribute_names(SysAttr::All)
        .send()
        .await
        .map_err(|e| error::aws(format!("receive from {queue_url}"), e))?;
    Ok(out.messages.unwrap_or_default())
}

/// Makes `messages` visible again at once.
pub async fn release(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Message],
) -> Result<()> {
    let mut failed = 0;
    for m in messages {
        let Some(receipt) = m.receipt_handle() else {
            continue;
        };
        let reset = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
        if reset.is_err() {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(crate::error::CliError::Failed(format!(
            "{failed} message(s) could not be made visible again; they reappear within \
             {PEEK_VISIBILITY_SECS} s"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;
    use sluice_protocol::Body;

    fn attr(v: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    }

    fn envelope_text() -> String {
        Envelope {
            v: sluice_protocol::ENVELOPE_VERSION,
            id: "evt_9".into(),
            source: "shop".into(),
            idempotency_key: None,
            received_at_ms: 10_000,
            content_type: None,
            trace_id: None,
            headers: Default::default(),
            body: Body::from_bytes(b"{}"),
        }
        .encode()
    }

    #[test]
    fn consumer_dead_letters_carry_their_reason() {
        let m = Message::builder()
            .message_id("m-1")
            .body(envelope_text())
            .message_attributes("sluice-event-id", attr("evt_9"))
            .message_attributes("sluice-source", attr("shop"))
            .message_attributes("sluice-failure-reason", attr("delivery_status"))
            .message_attributes("sluice-failure-detail", attr("destination answered 400"))
            .message_attributes("sluice-attempts", attr("2"))
            .message_attributes("sluice-last-status", attr("400"))
            .attributes(SysAttr::SentTimestamp, "20000")
            .attributes(SysAttr::ApproximateReceiveCount, "7")
            .build();
        let d = DeadLetter::from_message(&m, Some(5), 70_000);
        assert_eq!(d.reason, "delivery_status");
        assert_eq!(d.attempts, Some(2));
        assert_eq!(d.last_status, Some(400));
        assert_eq!(d.age_secs, Some(60), "age from the edge's received_at");
        assert_eq!(d.receive_count, Some(7));
        assert!(d.matches("evt_9") && d.matches("m-1") && !d.matches("evt_1"));
        assert_eq!(d.destination, None, "no attribute: every destination");
        assert_eq!(d.destination_label(), "all");
        let json = serde_json::to_value(&d).unwrap();
        assert!(json["destination"].is_null(), "{json}");
        assert_eq!(json["reason"], "delivery_status", "existing keys kept");
    }

    #[test]
    fn dead_letters_for_one_destination_name_it() {
        let m = Message::builder()
            .message_id("m-4")
            .body(envelope_text())
            .message_attributes("sluice-event-id", attr("evt_9"))
            .message_attributes("sluice-source", attr("shop"))
            .message_attributes("sluice-destination", attr("billing"))
            .message_attributes("sluice-failure-reason", attr("delivery_status"))
            .build();
        let d = DeadLetter::from_message(&m, None, 10_000);
        assert_eq!(d.destination.as_deref(), Some("billing"));
        assert_eq!(d.destination_label(), "billing");
        assert_eq!(serde_json::to_value(&d).unwrap()["destination"], "billing");
    }

    #[test]
    fn redrive_policy_dead_letters_show_max_receive_count() {
        let m = Message::builder()
            .message_id("m-2")
            .body(envelope_text())
            .attributes(SysAttr::ApproximateReceiveCount, "6")
            .build();
        let d = DeadLetter::from_message(&m, Some(5), 10_000);
        assert_eq!(d.reason, MAX_RECEIVE_COUNT);
        assert_eq!(d.attempts, Some(5), "the main queue's maxReceiveCount");
        assert_eq!(
            d.event_id.as_deref(),
            Some("evt_9"),
            "read from the envelope"
        );
        assert_eq!(d.source.as_deref(), Some("shop"));
        let d = DeadLetter::from_message(&m, None, 10_000);
        assert_eq!(d.attempts, Some(5), "receive count minus this read");
        assert_eq!(
            d.destination_label(),
            "all",
            "moved whole: every destination"
        );
    }

    #[test]
    fn undecodable_bodies_are_reported_not_fatal() {
        let m = Message::builder().message_id("m-3").body("garbage").build();
        let d = DeadLetter::from_message(&m, None, 0);
        assert!(d.envelope_error.is_some());
        assert_eq!(d.event_id, None);
    }
}
