//! Envelopes built from arbitrary field values: `decode(encode(e)) == e` for every version-1
//! envelope (any strings, headers, body kind), `UnsupportedVersion` for any other version,
//! and `Body::from_bytes` keeps any bytes exactly.

use arbitrary::Arbitrary;
use sluice_protocol::claim_check::BodyRef;
use sluice_protocol::{
    sqs_text, Body, Envelope, EnvelopeError, ENVELOPE_VERSION, ENVELOPE_VERSION_1,
};
use std::collections::BTreeMap;

#[derive(Debug, Arbitrary)]
enum BodyInput {
    Bytes(Vec<u8>),
    Utf8(String),
    Base64(String),
    S3 {
        bucket: String,
        key: String,
        size: u64,
        sha256: String,
    },
}

#[derive(Debug, Arbitrary)]
struct EnvelopeInput {
    other_version: Option<u32>,
    id: String,
    source: String,
    idempotency_key: Option<String>,
    received_at_ms: u64,
    content_type: Option<String>,
    trace_id: Option<String>,
    headers: BTreeMap<String, String>,
    body: BodyInput,
}

/// Runs one input (decoded as libFuzzer would, with `arbitrary_take_rest`).
pub fn run(data: &[u8]) {
    let Ok(input) = EnvelopeInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
        return;
    };
    let body = match input.body {
        BodyInput::Bytes(bytes) => {
            let body = Body::from_bytes(&bytes);
            assert_eq!(body.to_bytes().unwrap(), bytes);
            body
        }
        BodyInput::Utf8(data) => Body::Utf8 { data },
        BodyInput::Base64(data) => Body::Base64 { data },
        BodyInput::S3 {
            bucket,
            key,
            size,
            sha256,
        } => Body::S3(BodyRef {
            bucket,
            key,
            size,
            sha256,
        }),
    };
    let envelope = Envelope {
        v: input.other_version.unwrap_or(ENVELOPE_VERSION),
        id: input.id,
        source: input.source,
        idempotency_key: input.idempotency_key,
        received_at_ms: input.received_at_ms,
        content_type: input.content_type,
        trace_id: input.trace_id,
        headers: input.headers,
        body,
    };
    let encoded = envelope.encode();
    assert!(!encoded.is_empty(), "encode failed silently");
    assert!(sqs_text::is_queueable(&encoded), "SQS would refuse it");
    if envelope.v == ENVELOPE_VERSION || envelope.v == ENVELOPE_VERSION_1 {
        assert_eq!(Envelope::decode(&encoded), Ok(envelope));
    } else {
        assert_eq!(
            Envelope::decode(&encoded),
            Err(EnvelopeError::UnsupportedVersion(u64::from(envelope.v)))
        );
    }
}
