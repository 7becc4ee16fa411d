//! The edge's whole pure path, `ingest::prepare` (plus the declared-length check, trace-id
//! parsing and FIFO grouping the Worker applies around it), on arbitrary headers and body
//! for one source per scheme. `@source` picks the source, `@now` / `@now_ms` the clock,
//! `@query` the request's query string, `@content-length` the declared length.
//!
//! Whatever it answers: a refusal is a clean 4xx/5xx with a JSON body and no secret in it;
//! an envelope carries the body byte-exact, only forwarded headers, no secret, and
//! round-trips through the queue encoding.

use crate::{check_refusal, contains, Input};
use sluice_protocol::ingest::{
    check_declared_length, prepare, public_request_url, trace_id_from_traceparent, Inbound,
    Prepared,
};
use sluice_protocol::{fifo, Envelope, IngestError, Secret, SignatureError, SourcesConfig};
use std::sync::OnceLock;

/// One source per scheme, with the options that change the path (limits, media types,
/// `require_json`, FIFO group keys).
pub const SOURCES: &str = r#"{"sources":[
 {"name":"stripe","scheme":"stripe","destination":"http://d/stripe","require_json":true,
  "content_types":["application/json"]},
 {"name":"github","scheme":"github","destination":"http://d/github","max_body_bytes":1024,
  "fifo_group_key":"header:x-github-event"},
 {"name":"shopify","scheme":"shopify","destination":"http://d/shopify"},
 {"name":"slack","scheme":"slack","destination":"http://d/slack","tolerance_secs":60},
 {"name":"twilio","scheme":"twilio","destination":"http://d/twilio",
  "public_url":"https://mycompany.com/myapp.php"},
 {"name":"standard","scheme":"standard-webhooks","destination":"http://d/standard",
  "fifo_group_key":"json:/id"},
 {"name":"generic","scheme":"generic","destination":"http://d/generic",
  "generic":{"header":"x-signature","prefix":"sha256=","timestamp_header":"x-timestamp",
             "id_header":"x-event-id","template":"{timestamp}.{body}"}}
]}"#;

/// Each source's secrets, as its `SLUICE_SECRET_<NAME>` would hold them.
pub const SECRETS: &[(&str, &str)] = &[
    ("stripe", "webhook_secret whsec_test_secret"),
    ("github", "It's-a-Secret-to-Everybody"),
    ("shopify", "steffi"),
    ("slack", "8f742231b10e8888abcd99yyyzzz85a5"),
    ("twilio", "12345"),
    (
        "standard",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=",
    ),
    ("generic", "generic-key-1"),
];

/// The parsed sources and each one's parsed secrets, in the same order.
pub struct Fixture {
    pub config: SourcesConfig,
    pub secrets: Vec<Vec<Secret>>,
}

/// Parsed once per process.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let config = SourcesConfig::from_json(SOURCES).expect("fixture config is valid");
        let secrets = config
            .sources
            .iter()
            .map(|s| {
                let (_, text) = SECRETS.iter().find(|(n, _)| *n == s.name).unwrap();
                s.scheme.parse_secrets(text).unwrap()
            })
            .collect();
        Fixture { config, secrets }
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let input = Input::parse(data);
    let name = input.meta_str("source").unwrap_or("standard");
    let Some(index) = f.config.sources.iter().position(|s| s.name == name) else {
        return;
    };
    let source = &f.config.sources[index];
    let secrets = &f.secrets[index];
    let secret_texts: Vec<&str> = SECRETS
        .iter()
        .flat_map(|(_, t)| t.split_ascii_whitespace())
        .collect();

    let declared = input
        .meta_str("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let early = check_declared_length(source, declared);
    assert_eq!(
        early.is_err(),
        declared.is_some_and(|n| n > source.max_body_bytes)
    );

    let now_default = u64::try_from(input.now_secs())
        .unwrap_or(0)
        .saturating_mul(1000);
    let now_ms: u64 = input.meta_or("now_ms", now_default);
    let query = input.meta_str("query");
    if let Some(url) = &source.public_url {
        let signed = public_request_url(url, query);
        assert!(signed.starts_with(url.split(['?', '#']).next().unwrap_or(url)));
    }
    let result = prepare(
        Inbound {
            source,
            headers: &input.headers,
            body: input.body.into(),
            now_ms,
            event_id: "evt_01FUZZ".to_string(),
            fallback_trace_id: "f".repeat(32),
            query,
        },
        secrets,
    );
    match result {
        Err(e) => {
            check_refusal(&e, data, &secret_texts);
            assert!(
                matches!(
                    e,
                    IngestError::PayloadTooLarge { .. }
                        | IngestError::UnsupportedContentType
                        | IngestError::InvalidJson
                        | IngestError::Signature(_)
                ),
                "prepare refused with {e:?}"
            );
            assert_ne!(e, IngestError::Signature(SignatureError::NoSecret));
            assert_eq!(
                matches!(e, IngestError::PayloadTooLarge { .. }),
                input.body.len() as u64 > source.max_body_bytes
            );
        }
        Ok(Prepared::Answer(json)) => {
            assert_eq!(source.name, "slack", "only Slack answers handshakes");
            let v: serde_json::Value = serde_json::from_str(&json).expect("answer is JSON");
            assert!(v["challenge"].is_string());
        }
        Ok(Prepared::Queue(envelope)) => {
            assert_eq!(envelope.source, source.name);
            assert_eq!(envelope.id, "evt_01FUZZ");
            assert_eq!(envelope.received_at_ms, now_ms);
            assert_eq!(envelope.body.to_bytes().unwrap(), input.body);
            assert_eq!(
                envelope.content_type.as_deref(),
                input.headers.get("content-type")
            );
            let expected_trace = input
                .headers
                .get("traceparent")
                .and_then(trace_id_from_traceparent)
                .unwrap_or_else(|| "f".repeat(32));
            assert_eq!(envelope.trace_id.as_deref(), Some(expected_trace.as_str()));
            assert!(
                expected_trace.len() == 32
                    && expected_trace
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            for (k, v) in &envelope.headers {
                assert_eq!(*k, k.to_ascii_lowercase());
                assert!(
                    !k.contains("signature") && k != "authorization" && k != "cookie",
                    "{k}"
                );
                assert_eq!(input.headers.get(k), Some(v.as_str()));
            }
            let encoded = envelope.encode();
            assert_eq!(Envelope::decode(&encoded).as_ref(), Ok(envelope.as_ref()));
            for s in &secret_texts {
                assert!(
                    contains(data, s.as_bytes()) || !encoded.contains(s),
                    "secret {s} in the envelope"
                );
            }
            let group = fifo::message_group_id(
                &source.name,
                source.fifo_group_key.as_deref(),
                &input.headers,
                input.body,
            );
            assert!(
                !group.is_empty()
                    && group.len() <= 128
                    && group.bytes().all(|b| b.is_ascii_graphic())
            );
            assert_eq!(fifo::deduplication_id(&envelope).len(), 64);
        }
    }
}
