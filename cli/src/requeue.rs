//! Putting an event back on the main queue, for `dlq redrive` and `replay`: the body, the
//! message attributes and, on a FIFO queue (URL ending in `.fifo`), the group and
//! deduplication ids.
//!
//! The body is never changed; dead-letter attributes (`sluice-failure-*`, `sluice-attempts`,
//! `sluice-last-status`) are never carried back, so a redriven message looks as the edge
//! first queued it. `sluice-destination` is not one of them: a dead letter that failed at
//! one destination goes back for that destination alone, and a replay for one destination
//! (`replay --destination`) carries it too.
//!
//! FIFO deduplication ids are derived from the protocol's id for the event
//! (`protocol::fifo::deduplication_id`) salted with the operation: the original id would
//! make SQS silently drop a message sent again within its five-minute deduplication
//! window, and the CLI would then delete the dead letter of an event that never went back.
//! The consumer's idempotency keeps the extra copy harmless.

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use sha2::{Digest, Sha256};
use sluice_protocol::queue_attributes::{for_envelope, is_dead_letter_attribute, DESTINATION};
use sluice_protocol::{fifo, Envelope, HeaderMap};

/// One SendMessage to the main queue.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: String,
    pub attributes: Vec<(String, MessageAttributeValue)>,
    /// `(MessageGroupId, MessageDeduplicationId)` on a FIFO queue.
    pub fifo: Option<(String, String)>,
}

/// Parses a `--destination` value: a destination name as the sources config allows it
/// (1 to 64 of `[a-z0-9_-]`).
pub fn parse_destination_name(text: &str) -> Result<String, String> {
    sluice_protocol::destination::check_name(text)
        .map(|()| text.to_string())
        .map_err(|reason| format!("not a destination name: {reason}"))
}

/// True for a FIFO queue URL.
pub fn is_fifo(queue_url: &str) -> bool {
    queue_url.trim_end_matches('/').ends_with(".fifo")
}

fn salted(base: &str, salt: &str) -> String {
    hex::encode(Sha256::digest(format!("{base}:{salt}").as_bytes()))
}

/// The group an event belongs to when no source configuration is at hand: the source name
/// (what the edge uses for a source without `fifo_group_key`).
fn default_group(envelope: &Envelope) -> String {
    fifo::message_group_id(&envelope.source, None, &HeaderMap::default(), b"")
}

/// A dead letter going back: same body, its attributes minus the dead-letter ones. On FIFO
/// the group is the one it was queued with when the DLQ reports it, else the source's.
pub fn for_redrive(queue_url: &str, message: &Message) -> Outgoing {
    let body = message.body().unwrap_or_default().to_string();
    let mut attributes: Vec<(String, MessageAttributeValue)> = message
        .message_attributes()
        .map(|m| {
            m.iter()
                .filter(|(name, _)| !is_dead_letter_attribute(name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    let fifo = is_fifo(queue_url).then(|| {
        let envelope = Envelope::decode(&body).ok();
        let group = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .cloned()
            .or_else(|| envelope.as_ref().map(default_group))
            .unwrap_or_else(|| "sluice-redrive".to_string());
        let base = envelope
            .as_ref()
            .map(fifo::deduplication_id)
            .unwrap_or_else(|| hex::encode(Sha256::digest(body.as_bytes())));
        let salt = format!("redrive:{}", message.message_id().unwrap_or_default());
        (group, salted(&base, &salt))
    });
    Outgoing {
        body,
        attributes,
        fifo,
    }
}

/// An archived envelope going back: `text` exactly as archived, the edge's attributes and,
/// with `destination`, `sluice-destination` naming the one destination it is for. On FIFO
/// the group is the source's; `run` salts the deduplication id (one per replay run).
pub fn for_replay(
    queue_url: &str,
    envelope: &Envelope,
    text: &str,
    run: &str,
    destination: Option<&str>,
) -> Outgoing {
    let attributes = for_envelope(envelope)
        .into_iter()
        .chain(destination.map(|d| (DESTINATION, d)))
        .filter_map(|(name, value)| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .ok()
                .map(|v| (name.to_string(), v))
        })
        .collect();
    let fifo = is_fifo(queue_url).then(|| {
        (
            default_group(envelope),
            salted(&fifo::deduplication_id(envelope), &format!("replay:{run}")),
        )
    });
    Outgoing {
        body: text.to_string(),
        attributes,
        fifo,
    }
}

/// Sends `out` to `queue_url`; the message id SQS gave it.
pub async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    out: &Outgoing,
) -> Result<
    String,
    aws_sdk_sqs::error::SdkError<
        aws_sdk_sqs::operation::send_message::SendMessageError,
        aws_sdk_sqs::config::http::HttpResponse,
    >,
> {
    let mut send = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(&out.body);
    for (name, value) in &out.attributes {
        send = send.message_attributes(name, value.clone());
    }
    if let Some((group, dedup)) = &out.fifo {
        send = send.message_group_id(group).message_deduplication_id(dedup);
    }
    let sent = send.send().await?;
    Ok(sent.message_id().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::Body;

    fn envelope() -> Envelope {
        Envelope {
            v: sluice_protocol::ENVELOPE_VERSION,
            id: "evt_1".into(),
            source: "github".into(),
            idempotency_key: Some("d-1".into()),
            received_at_ms: 1,
            content_type: None,
            trace_id: Some("t".into()),
            headers: Default::default(),
            body: Body::from_bytes(b"{}"),
        }
    }

    fn attr(v: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    }

    fn dead_letter(body: &str) -> Message {
        Message::builder()
            .message_id("m-1")
            .body(body)
            .message_attributes("sluice-source", attr("github"))
            .message_attributes("sluice-event-id", attr("evt_1"))
            .message_attributes("sluice-failure-reason", attr("delivery_status"))
            .message_attributes("sluice-failure-detail", attr("400"))
            .message_attributes("sluice-attempts", attr("1"))
            .message_attributes("sluice-last-status", attr("400"))
            .build()
    }

    #[test]
    fn redrive_keeps_body_and_original_attributes_only() {
        let text = envelope().encode();
        let out = for_redrive("http://h/1/sluice-events", &dead_letter(&text));
        assert_eq!(out.body, text);
        let names: Vec<&str> = out.attributes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sluice-event-id", "sluice-source"]);
        assert!(out.fifo.is_none());
    }

    #[test]
    fn fifo_redrive_has_a_group_and_a_dedup_id_unlike_the_original() {
        let text = envelope().encode();
        let out = for_redrive("http://h/1/sluice-events.fifo", &dead_letter(&text));
        let (group, dedup) = out.fifo.unwrap();
        assert_eq!(group, "github");
        assert_eq!(dedup.len(), 64);
        assert_ne!(dedup, fifo::deduplication_id(&envelope()));
        // Stable for one dead letter: retrying the same redrive is deduplicated by SQS.
        let again = for_redrive("http://h/1/sluice-events.fifo", &dead_letter(&text));
        assert_eq!(again.fifo.unwrap().1, dedup);
        // A body that is not an envelope still gets ids.
        let junk = for_redrive("http://h/1/q.fifo", &dead_letter("not json"));
        assert_eq!(junk.fifo.unwrap().0, "sluice-redrive");
    }

    #[test]
    fn replay_sends_the_archived_text_with_the_edge_attributes() {
        let e = envelope();
        let text = e.encode();
        let out = for_replay("http://h/1/q", &e, &text, "run-1", None);
        assert_eq!(out.body, text);
        let got: Vec<(&str, &str)> = out
            .attributes
            .iter()
            .map(|(n, v)| (n.as_str(), v.string_value().unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            [
                ("sluice-source", "github"),
                ("sluice-event-id", "evt_1"),
                ("sluice-idempotency-key", "d-1"),
                ("sluice-trace-id", "t")
            ]
        );
        let fifo = for_replay("http://h/1/q.fifo", &e, &text, "run-1", None).fifo;
        assert_eq!(fifo.as_ref().map(|f| f.0.as_str()), Some("github"));
    }

    #[test]
    fn redrive_keeps_the_destination_a_dead_letter_is_for() {
        let text = envelope().encode();
        let m = Message::builder()
            .message_id("m-2")
            .body(&text)
            .message_attributes("sluice-source", attr("github"))
            .message_attributes("sluice-event-id", attr("evt_1"))
            .message_attributes(DESTINATION, attr("billing"))
            .message_attributes("sluice-failure-reason", attr("delivery_status"))
            .message_attributes("sluice-attempts", attr("3"))
            .build();
        let out = for_redrive("http://h/1/sluice-events", &m);
        let got: Vec<(&str, &str)> = out
            .attributes
            .iter()
            .map(|(n, v)| (n.as_str(), v.string_value().unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            [
                ("sluice-destination", "billing"),
                ("sluice-event-id", "evt_1"),
                ("sluice-source", "github")
            ]
        );
        assert_eq!(DESTINATION, "sluice-destination");
    }

    #[test]
    fn destination_names_are_checked_as_the_config_does() {
        assert_eq!(parse_destination_name("billing").as_deref(), Ok("billing"));
        assert_eq!(parse_destination_name("default").as_deref(), Ok("default"));
        assert!(parse_destination_name("Billing").is_err());
        assert!(parse_destination_name("").is_err());
        assert!(parse_destination_name("a b").is_err());
    }

    #[test]
    fn replay_for_one_destination_names_it() {
        let e = envelope();
        let text = e.encode();
        let out = for_replay("http://h/1/q", &e, &text, "run-1", Some("audit"));
        assert_eq!(out.body, text, "the body is never changed");
        let got: Vec<(&str, &str)> = out
            .attributes
            .iter()
            .map(|(n, v)| (n.as_str(), v.string_value().unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            [
                ("sluice-source", "github"),
                ("sluice-event-id", "evt_1"),
                ("sluice-idempotency-key", "d-1"),
                ("sluice-trace-id", "t"),
                ("sluice-destination", "audit")
            ]
        );
        let plain = for_replay("http://h/1/q", &e, &text, "run-1", None);
        assert!(plain.attributes.iter().all(|(n, _)| n != DESTINATION));
    }
}
