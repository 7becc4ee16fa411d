//! The SQS message attributes that travel beside an envelope: routing facts that let
//! operators (and the `sluice` CLI) see what a message is without decoding its body.
//!
//! Written by the edge on intake and by the CLI on redrive and replay, so both produce the
//! same message. Never carries a secret, a signature or the body.

use crate::Envelope;

/// Source name attribute.
pub const SOURCE: &str = "sluice-source";
/// Sluice event id attribute.
pub const EVENT_ID: &str = "sluice-event-id";
/// Provider idempotency key attribute (absent when the provider sent none).
pub const IDEMPOTENCY_KEY: &str = "sluice-idempotency-key";
/// Trace id attribute.
pub const TRACE_ID: &str = "sluice-trace-id";
/// The one destination a message is for: set on a dead letter that failed at one
/// destination only (and kept by a redrive), and by `sluice replay --destination`. The
/// consumer then considers that destination alone. Absent: every destination.
pub const DESTINATION: &str = "sluice-destination";
/// Why the consumer dead-lettered a message (`delivery_status`, `integrity`, …).
pub const FAILURE_REASON: &str = "sluice-failure-reason";
/// The failure's detail, safe to show (no body, no secret).
pub const FAILURE_DETAIL: &str = "sluice-failure-detail";
/// Attempts made before the message was dead-lettered.
pub const ATTEMPTS: &str = "sluice-attempts";
/// The destination's last HTTP status, when it answered.
pub const LAST_STATUS: &str = "sluice-last-status";
/// Prefix of the failure attributes; a redrive drops them.
pub const FAILURE_PREFIX: &str = "sluice-failure";
/// Attributes the consumer adds beside the failure ones when it dead-letters a message.
pub const DEAD_LETTER_ONLY: [&str; 2] = [ATTEMPTS, LAST_STATUS];

/// The string attributes to send with `envelope`, in a stable order.
pub fn for_envelope(envelope: &Envelope) -> Vec<(&'static str, &str)> {
    let mut attributes = vec![
        (SOURCE, envelope.source.as_str()),
        (EVENT_ID, envelope.id.as_str()),
    ];
    // A key taken from the body (Stripe's, Slack's event id) can hold characters SQS refuses
    // in an attribute as in a body: then it travels only in the envelope (escaped there).
    if let Some(key) = envelope
        .idempotency_key
        .as_deref()
        .filter(|k| !k.is_empty() && crate::sqs_text::is_queueable(k))
    {
        attributes.push((IDEMPOTENCY_KEY, key));
    }
    if let Some(trace) = envelope.trace_id.as_deref() {
        attributes.push((TRACE_ID, trace));
    }
    attributes
}

/// True for attributes the consumer added when dead-lettering: a redrive leaves them out
/// so the message goes back as the edge first queued it.
pub fn is_dead_letter_attribute(name: &str) -> bool {
    name.starts_with(FAILURE_PREFIX) || DEAD_LETTER_ONLY.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;

    fn envelope(key: Option<&str>, trace: Option<&str>) -> Envelope {
        Envelope {
            v: crate::ENVELOPE_VERSION,
            id: "evt_1".into(),
            source: "github".into(),
            idempotency_key: key.map(Into::into),
            received_at_ms: 0,
            content_type: None,
            trace_id: trace.map(Into::into),
            headers: Default::default(),
            body: Body::from_bytes(b"{}"),
        }
    }

    #[test]
    fn attributes_name_source_event_key_and_trace() {
        let e = envelope(Some("d-1"), Some("t-1"));
        assert_eq!(
            for_envelope(&e),
            vec![
                (SOURCE, "github"),
                (EVENT_ID, "evt_1"),
                (IDEMPOTENCY_KEY, "d-1"),
                (TRACE_ID, "t-1")
            ]
        );
        let bare = envelope(Some(""), None);
        assert_eq!(
            for_envelope(&bare),
            vec![(SOURCE, "github"), (EVENT_ID, "evt_1")]
        );
        // SQS would refuse the message for these: the key stays in the envelope only.
        for key in ["evt\u{0}", "\u{FFFF}"] {
            assert_eq!(
                for_envelope(&envelope(Some(key), None)),
                vec![(SOURCE, "github"), (EVENT_ID, "evt_1")]
            );
        }
    }

    #[test]
    fn dead_letter_attributes_are_recognised() {
        for name in [
            "sluice-failure-reason",
            "sluice-failure-detail",
            "sluice-attempts",
            "sluice-last-status",
        ] {
            assert!(is_dead_letter_attribute(name), "{name}");
        }
        for name in [SOURCE, EVENT_ID, IDEMPOTENCY_KEY, TRACE_ID] {
            assert!(!is_dead_letter_attribute(name), "{name}");
        }
    }
}
