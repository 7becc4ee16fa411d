//! The queue envelope: what the edge puts on SQS and the consumer takes off it.
//!
//! Versioned; a consumer refuses versions it does not know instead of guessing. The envelope
//! carries the provider's body byte-exact (UTF-8 text as is, anything else as base64) and
//! only the forwarded headers: it must never contain a secret or a signature.
//!
//! Two wire formats are read (see [`crate::envelope_json`] for the writer):
//! - version 2 (written): one line of compact JSON (the metadata, and the body's encoding),
//!   a line feed, then a text body exactly as received. The body is not escaped into JSON:
//!   the edge never spends time on it and a message in the DLQ reads as the provider sent
//!   it. Bodies SQS would refuse as raw text (control characters, U+FFFE/U+FFFF) and
//!   binary, base64 or claim-checked bodies stay inside the JSON line, with nothing after it.
//! - version 1: the whole envelope as one JSON document (messages queued before version 2).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The envelope version this crate writes (it reads this one and version 1).
pub const ENVELOPE_VERSION: u32 = 2;

/// The first version, one JSON document; still read, and written for envelopes that say
/// `v: 1` (a version-1 message read back and queued again stays as it was).
pub const ENVELOPE_VERSION_1: u32 = 1;

/// One accepted webhook, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version.
    pub v: u32,
    /// Sluice's own event id, unique per accepted request (`evt_…`).
    pub id: String,
    /// The source (provider endpoint) name from `/hooks/{source}`.
    pub source: String,
    /// The provider's own delivery id (`webhook-id`, `X-GitHub-Delivery`, …), if it sent one.
    /// Provider retries repeat it; the consumer deduplicates on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When the edge accepted the request, Unix milliseconds.
    pub received_at_ms: u64,
    /// The request's `Content-Type`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// W3C trace id from `traceparent`, or one the edge generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Forwarded provider headers, lower-case names (see [`crate::headers::forwarded`]).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body, byte-exact.
    pub body: Body,
}

/// The body of an event, inline in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "lowercase")]
pub enum Body {
    /// The body was valid UTF-8 and is stored as text.
    Utf8 { data: String },
    /// The body was binary and is stored base64-encoded.
    Base64 { data: String },
    /// The body was too large for a queue message and is stored in S3 (claim check).
    S3(crate::claim_check::BodyRef),
}

impl Body {
    /// Stores `bytes` as text when they are valid UTF-8, otherwise as base64.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Body::Utf8 {
                data: text.to_string(),
            },
            Err(_) => Body::Base64 {
                data: B64.encode(bytes),
            },
        }
    }

    /// Like [`Body::from_bytes`], taking ownership: a UTF-8 body becomes the envelope's text
    /// without being copied.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(data) => Body::Utf8 { data },
            Err(e) => Body::Base64 {
                data: B64.encode(e.as_bytes()),
            },
        }
    }

    /// Like [`Body::to_bytes`], taking ownership: a text body is handed back without a copy.
    pub fn into_vec(self) -> Result<Vec<u8>, EnvelopeError> {
        match self {
            Body::Utf8 { data } => Ok(String::into_bytes(data)),
            other => other.to_bytes(),
        }
    }

    /// The original bytes of an inline body, borrowed when it is text; a claim-checked body
    /// must be fetched first.
    pub fn inline_bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, EnvelopeError> {
        match self {
            Body::S3(_) => Err(EnvelopeError::Malformed(
                "body is claim-checked in S3; fetch it first".into(),
            )),
            Body::Utf8 { data } => Ok(data.as_bytes().into()),
            Body::Base64 { data } => B64
                .decode(data)
                .map(Into::into)
                .map_err(|e| EnvelopeError::Malformed(format!("body is not valid base64: {e}"))),
        }
    }

    /// The original bytes of an inline body; a claim-checked body must be fetched first.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        self.inline_bytes().map(std::borrow::Cow::into_owned)
    }
}

/// Why a queued message could not be read as an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("unsupported envelope version {0} (this build reads versions {ENVELOPE_VERSION} and {ENVELOPE_VERSION_1})")]
    UnsupportedVersion(u64),
}

#[derive(Deserialize)]
struct VersionProbe {
    v: Option<u64>,
}

impl Envelope {
    /// The key the consumer deduplicates on: the source plus the provider's delivery id, or
    /// Sluice's event id when the provider sent none.
    pub fn dedup_key(&self) -> String {
        let key = self.idempotency_key.as_deref().unwrap_or(&self.id);
        format!("{}#{}", self.source, key)
    }

    /// The envelope as the text queued on SQS (both parts of [`Envelope::encode_parts`]
    /// joined).
    pub fn encode(&self) -> String {
        self.encode_parts().to_text()
    }

    /// The envelope as queued, in two parts so that a body is never copied to encode it:
    /// the message is `head` followed by `tail`.
    pub fn encode_parts(&self) -> crate::envelope_json::Encoded<'_> {
        crate::envelope_json::encode(self)
    }

    /// Reads a queued message (version 2 or 1), refusing unknown versions.
    pub fn decode(text: &str) -> Result<Self, EnvelopeError> {
        let malformed = |e: serde_json::Error| EnvelopeError::Malformed(e.to_string());
        let (head, tail) = match text.split_once('\n') {
            Some((head, tail)) => (head, Some(tail)),
            None => (text, None),
        };
        let (version, one_line) = match serde_json::from_str::<VersionProbe>(head) {
            Ok(probe) => (probe.v, true),
            // Not one JSON line: a version-1 document written over several lines, or garbage.
            Err(e) if tail.is_some() => {
                let probe = serde_json::from_str::<VersionProbe>(text).map_err(|_| malformed(e))?;
                (probe.v, false)
            }
            Err(e) => return Err(malformed(e)),
        };
        const V2: u64 = ENVELOPE_VERSION as u64;
        const V1: u64 = ENVELOPE_VERSION_1 as u64;
        match (version, tail) {
            (Some(V2), Some(tail)) if one_line => Head::decode(head, tail),
            (Some(V2), _) => Err(EnvelopeError::Malformed(
                "a version 2 envelope is a line of JSON, a line feed, then the body".into(),
            )),
            (Some(V1), _) => serde_json::from_str(text).map_err(malformed),
            (Some(v), _) => Err(EnvelopeError::UnsupportedVersion(v)),
            (None, _) => Err(EnvelopeError::Malformed("missing field `v`".into())),
        }
    }
}

/// A version-2 message's JSON line: the envelope's fields, with a text body's data after
/// the line instead of in it.
#[derive(Deserialize)]
struct Head {
    v: u32,
    id: String,
    source: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    received_at_ms: u64,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: HeadBody,
}

#[derive(Deserialize)]
#[serde(tag = "encoding", rename_all = "lowercase")]
enum HeadBody {
    /// Without `data` the body is the text after the line; with it, nothing may follow.
    Utf8 {
        #[serde(default)]
        data: Option<String>,
    },
    Base64 {
        data: String,
    },
    S3(crate::claim_check::BodyRef),
}

impl Head {
    fn decode(head: &str, tail: &str) -> Result<Envelope, EnvelopeError> {
        let h: Head =
            serde_json::from_str(head).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let body = match (h.body, tail) {
            (HeadBody::Utf8 { data: None }, tail) => Body::Utf8 { data: tail.into() },
            (HeadBody::Utf8 { data: Some(data) }, "") => Body::Utf8 { data },
            (HeadBody::Base64 { data }, "") => Body::Base64 { data },
            (HeadBody::S3(reference), "") => Body::S3(reference),
            _ => {
                return Err(EnvelopeError::Malformed(
                    "text after an envelope whose body is inside it".into(),
                ))
            }
        };
        Ok(Envelope {
            v: h.v,
            id: h.id,
            source: h.source,
            idempotency_key: h.idempotency_key,
            received_at_ms: h.received_at_ms,
            content_type: h.content_type,
            trace_id: h.trace_id,
            headers: h.headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: Body) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            id: "evt_01".into(),
            source: "github".into(),
            idempotency_key: Some("d-1".into()),
            received_at_ms: 1_700_000_000_000,
            content_type: Some("application/json".into()),
            trace_id: None,
            headers: BTreeMap::new(),
            body,
        }
    }

    #[test]
    fn round_trips_text_and_binary_bodies() {
        for bytes in [b"{\"a\":1}".to_vec(), vec![0xff, 0x00, 0xfe, b'\n']] {
            let env = sample(Body::from_bytes(&bytes));
            assert_eq!(Body::from_vec(bytes.clone()), env.body);
            let back = Envelope::decode(&env.encode()).unwrap();
            assert_eq!(back, env);
            assert_eq!(back.body.to_bytes().unwrap(), bytes);
            assert_eq!(back.body.into_vec().unwrap(), bytes);
        }
    }

    #[test]
    fn claim_checked_bodies_round_trip() {
        let env = sample(Body::S3(crate::claim_check::BodyRef {
            bucket: "b".into(),
            key: "payloads/github/2026/01/01/evt_01".into(),
            size: 5,
            sha256: "ab".into(),
        }));
        let text = env.encode();
        assert!(text.contains("\"encoding\":\"s3\""), "{text}");
        assert_eq!(Envelope::decode(&text).unwrap(), env);
        assert!(env.body.to_bytes().is_err());
    }

    #[test]
    fn binary_bodies_are_base64() {
        let env = sample(Body::from_bytes(&[0xff, 0x01]));
        assert!(env.encode().contains("\"encoding\":\"base64\""));
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let mut env = sample(Body::from_bytes(b"x"));
        env.v = 3;
        assert_eq!(
            Envelope::decode(&env.encode()),
            Err(EnvelopeError::UnsupportedVersion(3))
        );
        env.v = 2;
        let base64 = sample(Body::from_bytes(&[0xff]));
        for bad in [
            // A body inside the line and text after it: which one is the body?
            base64.encode() + "x",
            env.encode().replace(
                "\"encoding\":\"utf8\"",
                "\"encoding\":\"utf8\",\"data\":\"y\"",
            ),
            // Version 2's JSON is one line, and a line feed always follows it.
            env.encode().replacen(",", ",\n", 1),
            base64.encode().trim_end().to_string(),
        ] {
            assert!(
                matches!(Envelope::decode(&bad), Err(EnvelopeError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Envelope::decode("not json"),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::decode("{\"id\":\"x\"}"),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn version_1_messages_are_still_read() {
        let text = r#"{"v":1,"id":"evt_01","source":"github","received_at_ms":5,
            "headers":{"x-github-event":"push"},"body":{"encoding":"utf8","data":"{\"a\":1}\n"}}"#;
        let env = Envelope::decode(text).unwrap();
        assert_eq!(env.v, ENVELOPE_VERSION_1);
        assert_eq!(env.body.to_bytes().unwrap(), b"{\"a\":1}\n");
        // Queued again, it keeps its format.
        assert_eq!(env.encode(), serde_json::to_string(&env).unwrap());
        assert_eq!(Envelope::decode(&env.encode()), Ok(env));
    }

    #[test]
    fn dedup_key_prefers_the_provider_key() {
        let mut env = sample(Body::from_bytes(b"x"));
        assert_eq!(env.dedup_key(), "github#d-1");
        env.idempotency_key = None;
        assert_eq!(env.dedup_key(), "github#evt_01");
    }
}
