//! The consumer's envelope decoder (`Envelope::decode`, versions 2 and 1) on arbitrary
//! text, and the round-trip property: whatever decodes re-encodes to text that decodes to
//! the same envelope, as text SQS accepts.

use sluice_protocol::{
    fifo, queue_attributes, sqs_text, Body, Envelope, EnvelopeError, ENVELOPE_VERSION,
    ENVELOPE_VERSION_1,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Envelope::decode(text) {
        Ok(envelope) => {
            assert!(envelope.v == ENVELOPE_VERSION || envelope.v == ENVELOPE_VERSION_1);
            let encoded = envelope.encode();
            assert!(!encoded.is_empty(), "encode failed silently");
            assert!(sqs_text::is_queueable(&encoded), "SQS would refuse it");
            assert_eq!(Envelope::decode(&encoded).as_ref(), Ok(&envelope));
            match &envelope.body {
                Body::Utf8 { data } => {
                    assert_eq!(envelope.body.to_bytes().unwrap(), data.as_bytes());
                }
                Body::Base64 { .. } => {
                    if let Ok(bytes) = envelope.body.to_bytes() {
                        assert_eq!(Body::from_bytes(&bytes).to_bytes().unwrap(), bytes);
                    }
                }
                Body::S3(_) => assert!(envelope.body.to_bytes().is_err()),
            }
            assert!(envelope
                .dedup_key()
                .starts_with(&format!("{}#", envelope.source)));
            let attributes = queue_attributes::for_envelope(&envelope);
            assert_eq!(
                attributes[0],
                (queue_attributes::SOURCE, envelope.source.as_str())
            );
            assert_eq!(fifo::deduplication_id(&envelope).len(), 64);
        }
        Err(EnvelopeError::UnsupportedVersion(v)) => {
            assert_ne!(v, u64::from(ENVELOPE_VERSION));
            assert_ne!(v, u64::from(ENVELOPE_VERSION_1));
        }
        Err(EnvelopeError::Malformed(message)) => assert!(!message.is_empty()),
    }
}
