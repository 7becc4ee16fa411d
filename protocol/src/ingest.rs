//! The edge's pure request path: given a request's parts, the clock and the source's
//! secrets, decide to refuse it (with an [`IngestError`]) or produce the envelope to queue.
//!
//! The Worker is a thin shell around [`prepare`]; benchmarks and tests call it natively.
//! It must never read the clock, the network or the environment itself.

use crate::envelope::{Body, Envelope, ENVELOPE_VERSION};
use crate::headers::{forwarded, HeaderMap};
use crate::ingest_error::IngestError;
use crate::signature::{ExternalMacs, Scheme, Secret, SignedRequest};
use crate::source::SourceConfig;
use std::borrow::Cow;

/// One inbound request, already routed to its source.
#[derive(Debug)]
pub struct Inbound<'a> {
    pub source: &'a SourceConfig,
    pub headers: &'a HeaderMap,
    /// The raw body bytes, exactly as received. Owned bytes become the envelope's body
    /// without a copy; borrowed ones are copied into it.
    pub body: Cow<'a, [u8]>,
    /// Current Unix time in milliseconds.
    pub now_ms: u64,
    /// A fresh Sluice event id (see [`crate::event_id::new_event_id`]).
    pub event_id: String,
    /// A trace id to use when the request carries no `traceparent`.
    pub fallback_trace_id: String,
    /// The request URL's query string (without `?`), if any: Twilio signs it.
    pub query: Option<&'a str>,
}

/// What to do with a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Queue this envelope, then answer 202.
    Queue(Box<Envelope>),
    /// A provider handshake (Slack's `url_verification`): answer 200 with this JSON body and
    /// queue nothing.
    Answer(String),
}

/// Checks a request's declared size before the body is read: refuse early and cheaply.
pub fn check_declared_length(
    source: &SourceConfig,
    content_length: Option<u64>,
) -> Result<(), IngestError> {
    match content_length {
        Some(len) if len > source.max_body_bytes => Err(IngestError::PayloadTooLarge {
            limit: source.max_body_bytes,
        }),
        _ => Ok(()),
    }
}

/// Validates a request against its source and builds the envelope.
pub fn prepare(inbound: Inbound<'_>, secrets: &[Secret]) -> Result<Prepared, IngestError> {
    prepare_with(inbound, secrets, None)
}

/// [`prepare`], with the signature's MACs computed by the caller when `external_macs` is
/// given (the edge's two passes through WebCrypto: see [`ExternalMacs`]).
pub fn prepare_with(
    inbound: Inbound<'_>,
    secrets: &[Secret],
    external_macs: Option<&ExternalMacs>,
) -> Result<Prepared, IngestError> {
    let source = inbound.source;
    if inbound.body.len() as u64 > source.max_body_bytes {
        return Err(IngestError::PayloadTooLarge {
            limit: source.max_body_bytes,
        });
    }
    let content_type = inbound.headers.get("content-type");
    if !source.allows_content_type(content_type) {
        return Err(IngestError::UnsupportedContentType);
    }
    let now_secs = i64::try_from(inbound.now_ms / 1000).unwrap_or(i64::MAX);
    let mut options = source.scheme_options();
    options.external_macs = external_macs;
    let signed_url;
    if let (Scheme::Twilio, Some(base)) = (source.scheme, options.public_url) {
        signed_url = public_request_url(base, inbound.query);
        options.public_url = Some(&signed_url);
    }
    let verified = source.scheme.verify(
        &SignedRequest {
            headers: inbound.headers,
            body: &inbound.body,
            now_secs,
            tolerance_secs: source.tolerance_secs,
        },
        secrets,
        &options,
    )?;
    if let Some(challenge) = verified.challenge {
        return Ok(Prepared::Answer(
            serde_json::json!({ "challenge": challenge }).to_string(),
        ));
    }
    // Checked after the signature: an unverified caller learns nothing about the body rules.
    if source.require_json
        && serde_json::from_slice::<serde::de::IgnoredAny>(&inbound.body).is_err()
    {
        return Err(IngestError::InvalidJson);
    }
    let trace_id = inbound
        .headers
        .get("traceparent")
        .and_then(trace_id_from_traceparent)
        .unwrap_or(inbound.fallback_trace_id);
    Ok(Prepared::Queue(Box::new(Envelope {
        v: ENVELOPE_VERSION,
        id: inbound.event_id,
        source: source.name.clone(),
        idempotency_key: verified.idempotency_key,
        received_at_ms: inbound.now_ms,
        content_type: content_type.map(str::to_string),
        trace_id: Some(trace_id),
        headers: forwarded(inbound.headers),
        body: match inbound.body {
            Cow::Owned(bytes) => Body::from_vec(bytes),
            Cow::Borrowed(bytes) => Body::from_bytes(bytes),
        },
    })))
}

/// The URL the provider called, as it saw it: the configured public URL's origin and path
/// with the request's own query string.
pub fn public_request_url(public_url: &str, query: Option<&str>) -> String {
    let base = public_url.split(['?', '#']).next().unwrap_or(public_url);
    match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{base}?{q}"),
        None => base.to_string(),
    }
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`).
pub fn trace_id_from_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex_of(version, 2) && hex_of(trace, 32) && hex_of(parent, 16) && hex_of(flags, 2)) {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::SignatureError;
    use crate::source::SourcesConfig;

    fn source() -> SourceConfig {
        SourcesConfig::from_json(
            r#"{"sources":[{"name":"std","scheme":"standard-webhooks","destination":"http://x",
                "max_body_bytes":64,"content_types":["application/json"]}]}"#,
        )
        .unwrap()
        .sources
        .remove(0)
    }

    fn secret() -> Secret {
        Secret::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    fn signed(body: &[u8], now: i64) -> HeaderMap {
        let mut h: HeaderMap = Scheme::StandardWebhooks
            .sign(&secret(), "msg_1", now, body, &Default::default())
            .unwrap()
            .into_iter()
            .collect();
        h.insert("Content-Type", "application/json");
        h.insert("User-Agent", "provider/1");
        h
    }

    fn inbound<'a>(
        source: &'a SourceConfig,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Inbound<'a> {
        Inbound {
            source,
            headers,
            body: body.into(),
            now_ms: 1_700_000_000_000,
            event_id: "evt_1".into(),
            fallback_trace_id: "f".repeat(32),
            query: None,
        }
    }

    #[test]
    fn valid_request_becomes_an_envelope() {
        let src = source();
        let body = br#"{"a":1}"#;
        let headers = signed(body, 1_700_000_000);
        let Prepared::Queue(env) = prepare(inbound(&src, &headers, body), &[secret()]).unwrap()
        else {
            panic!("expected an envelope");
        };
        assert_eq!(env.source, "std");
        assert_eq!(env.idempotency_key.as_deref(), Some("msg_1"));
        assert_eq!(env.body.to_bytes().unwrap(), body);
        assert_eq!(env.trace_id.as_deref(), Some("f".repeat(32).as_str()));
        assert_eq!(
            env.headers.get("user-agent").map(String::as_str),
            Some("provider/1")
        );
        assert!(
            !env.encode().contains("v1,"),
            "signature must not be in the envelope"
        );
    }

    #[test]
    fn refusals() {
        let src = source();
        let body = br#"{"a":1}"#;
        let headers = signed(body, 1_700_000_000);
        let big = [b'x'; 65];
        assert_eq!(
            prepare(inbound(&src, &headers, &big), &[secret()]),
            Err(IngestError::PayloadTooLarge { limit: 64 })
        );
        let mut plain = headers.clone();
        plain = plain.iter().filter(|(n, _)| *n != "content-type").collect();
        plain.insert("content-type", "text/plain");
        assert_eq!(
            prepare(inbound(&src, &plain, body), &[secret()]),
            Err(IngestError::UnsupportedContentType)
        );
        assert_eq!(
            prepare(inbound(&src, &headers, br#"{"a":2}"#), &[secret()]),
            Err(IngestError::Signature(SignatureError::Mismatch))
        );
        let stale = signed(body, 1_700_000_000 - 301);
        assert_eq!(
            prepare(inbound(&src, &stale, body), &[secret()]),
            Err(IngestError::Signature(
                SignatureError::TimestampOutOfTolerance
            ))
        );
        assert_eq!(
            prepare(inbound(&src, &headers, body), &[]),
            Err(IngestError::Signature(SignatureError::NoSecret))
        );
        let mut json_src = src.clone();
        json_src.require_json = true;
        let not_json = b"{\"a\":";
        let h = signed(not_json, 1_700_000_000);
        assert_eq!(
            prepare(inbound(&json_src, &h, not_json), &[secret()]),
            Err(IngestError::InvalidJson)
        );
        assert!(check_declared_length(&src, Some(65)).is_err());
        assert!(check_declared_length(&src, Some(64)).is_ok());
        assert!(check_declared_length(&src, None).is_ok());
    }

    #[test]
    fn public_request_url_takes_the_request_query() {
        assert_eq!(
            public_request_url("https://h.example/hooks/t", None),
            "https://h.example/hooks/t"
        );
        assert_eq!(
            public_request_url("https://h.example/hooks/t?old=1", Some("bodySHA256=ab")),
            "https://h.example/hooks/t?bodySHA256=ab"
        );
    }

    #[test]
    fn traceparent_is_carried() {
        assert_eq!(
            trace_id_from_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")
                .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id_from_traceparent("00-0000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            trace_id_from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
    }
}
