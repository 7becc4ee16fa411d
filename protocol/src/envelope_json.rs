//! The envelope's wire encoding, written directly: the hot path of every accepted webhook.
//!
//! Version 2 (what [`crate::ENVELOPE_VERSION`] writes): one line of compact JSON, a line
//! feed, then a text body as received (see [`crate::envelope`] for the format). The JSON
//! line is small and written with the SIMD escaper of [`crate::json_text`]; the body is
//! only checked (UTF-8 already, and [`crate::sqs_text::is_queueable`]) and never copied:
//! [`Encoded`] keeps it as a second part, and the SQS request escapes it once, directly
//! from the request's own buffer.
//!
//! Version 1 (for envelopes that say `v: 1`, e.g. one read from a version-1 message) is
//! what `serde_json::to_string` writes for the envelope; the tests hold it to that byte for
//! byte, and the version-2 line to serde's encoding of the same fields (both with U+FFFE
//! and U+FFFF escaped, which serde leaves raw and SQS refuses).
//!
//! Decoding stays with serde (`Envelope::decode`): this module only writes. It must never
//! write anything `decode` would not read back as the same envelope, nor text SQS refuses.

use crate::envelope::{Body, Envelope, ENVELOPE_VERSION_1};
use crate::json_text::{integer, long_string, name, string, BODY_CHUNK};
use crate::sqs_text;

/// An envelope as queued: the message is `head` followed by `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded<'a> {
    /// The JSON line (and its line feed) of version 2; the whole document of version 1.
    pub head: String,
    /// A version-2 text body, borrowed from the envelope; otherwise empty.
    pub tail: &'a str,
}

impl Encoded<'_> {
    /// The message body's size in bytes (SQS counts the attributes on top).
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message's parts, in order.
    pub fn parts(&self) -> [&str; 2] {
        [&self.head, self.tail]
    }

    /// The whole message as one string (a copy of the body: not for the request path).
    pub fn to_text(&self) -> String {
        [self.head.as_str(), self.tail].concat()
    }
}

/// The envelope as the text queued on SQS.
pub(crate) fn encode(envelope: &Envelope) -> Encoded<'_> {
    if envelope.v == ENVELOPE_VERSION_1 {
        return Encoded {
            head: version_1(envelope),
            tail: "",
        };
    }
    let raw = match &envelope.body {
        Body::Utf8 { data } if sqs_text::is_queueable(data) => Some(data.as_str()),
        _ => None,
    };
    let inline_len = match (&envelope.body, raw) {
        (_, Some(_)) | (Body::S3(_), _) => 0,
        (Body::Utf8 { data } | Body::Base64 { data }, None) => data.len(),
    };
    let mut out = Vec::with_capacity(512 + inline_capacity(inline_len));
    metadata(&mut out, envelope);
    match (&envelope.body, raw) {
        (Body::Utf8 { .. }, Some(_)) => out.extend_from_slice(b"{\"encoding\":\"utf8\"}"),
        (body, _) => inline_body(&mut out, body),
    }
    out.extend_from_slice(b"}\n");
    Encoded {
        head: text(out),
        tail: raw.unwrap_or(""),
    }
}

/// Version 1: the envelope as one JSON document, as serde writes it (U+FFFE/U+FFFF escaped).
fn version_1(envelope: &Envelope) -> String {
    let inline_len = match &envelope.body {
        Body::Utf8 { data } | Body::Base64 { data } => data.len(),
        Body::S3(_) => 0,
    };
    let mut out = Vec::with_capacity(2048 + inline_capacity(inline_len));
    metadata(&mut out, envelope);
    inline_body(&mut out, &envelope.body);
    out.push(b'}');
    text(out)
}

/// The JSON written, as text SQS accepts. Every piece written is valid UTF-8 (fixed ASCII,
/// escaped `str`s, digits, serde's JSON), and JSON escapes every control character; it
/// leaves the non-characters U+FFFE and U+FFFF as they are, which SQS refuses (in a header
/// value, an idempotency key, a body kept inside the JSON): those are escaped here.
fn text(out: Vec<u8>) -> String {
    let text = String::from_utf8(out).unwrap_or_default();
    if sqs_text::has_non_character(text.as_bytes()) {
        return text
            .replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff");
    }
    text
}

/// Room for a body escaped into the JSON: usually at most a few percent longer (the buffer
/// grows if a body needs more), plus the escaper's per-chunk reserve (see `long_string`).
fn inline_capacity(len: usize) -> usize {
    len + len / 4 + 6 * len.min(BODY_CHUNK)
}

/// Every field up to `"body":` (the object left open).
fn metadata(out: &mut Vec<u8>, envelope: &Envelope) {
    out.extend_from_slice(b"{\"v\":");
    integer(out, u64::from(envelope.v));
    out.push(b',');
    name(out, "id");
    string(out, &envelope.id);
    out.push(b',');
    name(out, "source");
    string(out, &envelope.source);
    if let Some(key) = &envelope.idempotency_key {
        out.push(b',');
        name(out, "idempotency_key");
        string(out, key);
    }
    out.push(b',');
    name(out, "received_at_ms");
    integer(out, envelope.received_at_ms);
    if let Some(content_type) = &envelope.content_type {
        out.push(b',');
        name(out, "content_type");
        string(out, content_type);
    }
    if let Some(trace_id) = &envelope.trace_id {
        out.push(b',');
        name(out, "trace_id");
        string(out, trace_id);
    }
    out.push(b',');
    name(out, "headers");
    out.push(b'{');
    for (i, (header, value)) in envelope.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, header);
        out.push(b':');
        string(out, value);
    }
    out.extend_from_slice(b"},");
    name(out, "body");
}

/// A body written inside the JSON, as serde writes it.
fn inline_body(out: &mut Vec<u8>, body: &Body) {
    match body {
        Body::Utf8 { data } => {
            out.extend_from_slice(b"{\"encoding\":\"utf8\",\"data\":");
            long_string(out, data);
            out.push(b'}');
        }
        Body::Base64 { data } => {
            out.extend_from_slice(b"{\"encoding\":\"base64\",\"data\":");
            string(out, data);
            out.push(b'}');
        }
        // A small reference: serde writes it (tag first, then the reference's fields).
        Body::S3(_) => {
            // Writing into a Vec cannot fail, and the body is strings and integers only.
            let _ = serde_json::to_writer(&mut *out, body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim_check::BodyRef;
    use crate::ENVELOPE_VERSION;
    use std::collections::BTreeMap;

    fn envelope(body: Body) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            id: "evt_01".into(),
            source: "github".into(),
            idempotency_key: Some("d-1".into()),
            received_at_ms: 1_700_000_000_123,
            content_type: Some("application/json; charset=\"utf-8\"".into()),
            trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
            headers: BTreeMap::from([
                ("user-agent".into(), "GitHub-Hookshot/\"x\"\\y".into()),
                ("x-github-event".into(), "push".into()),
            ]),
            body,
        }
    }

    /// Strings that exercise every escape rule: quotes, backslashes, each control byte,
    /// DEL, multi-byte UTF-8, U+2028/2029 (not escaped by JSON), long runs around the SIMD
    /// block sizes.
    fn tricky_strings() -> Vec<String> {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é漢字🦀\u{2028}\u{2029}\u{fffd}");
        let mut out = vec![
            String::new(),
            "plain".into(),
            all.clone(),
            "\"\\\"\\".repeat(40),
            "a".repeat(15) + "\"" + &"b".repeat(16) + "\n" + &"c".repeat(33),
        ];
        for len in [1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000] {
            out.push("x".repeat(len));
            out.push("x".repeat(len) + "\u{1}");
            out.push(all.repeat(len / 16 + 1));
        }
        // Long strings are escaped in chunks: multi-byte characters and escapes on and
        // around every chunk boundary.
        for len in [
            BODY_CHUNK - 1,
            BODY_CHUNK,
            BODY_CHUNK + 1,
            3 * BODY_CHUNK + 5,
        ] {
            for shift in 0..4 {
                out.push("x".repeat(len - shift) + &"🦀\"\n".repeat(8));
                out.push("\"".repeat(len - shift) + &"漢".repeat(shift + 1));
            }
        }
        out.push(all.repeat(3 * BODY_CHUNK / all.len()));
        out
    }

    /// What the version-2 line must be: serde's encoding of the same fields, with a raw
    /// body's data left out of it.
    fn expected(env: &Envelope) -> (String, &str) {
        match &env.body {
            Body::Utf8 { data } if sqs_text::is_queueable(data) => {
                let mut without = env.clone();
                without.body = Body::Utf8 {
                    data: String::new(),
                };
                let json = serde_json::to_string(&without).unwrap();
                let line = json.strip_suffix(",\"data\":\"\"}}").unwrap().to_string() + "}}\n";
                (line, data)
            }
            _ => (serde_json::to_string(env).unwrap() + "\n", ""),
        }
    }

    fn check(env: &Envelope) {
        let mut v1 = env.clone();
        v1.v = ENVELOPE_VERSION_1;
        let serde_v1 = serde_json::to_string(&v1).unwrap();
        let encoded_v1 = encode(&v1);
        if sqs_text::is_queueable(&serde_v1) {
            assert_eq!(encoded_v1.head, serde_v1);
        }
        assert_eq!(encoded_v1.tail, "");
        assert!(sqs_text::is_queueable(&encoded_v1.head));
        assert_eq!(Envelope::decode(&encoded_v1.head).unwrap(), v1);
        let encoded = encode(env);
        let (head, tail) = expected(env);
        if sqs_text::is_queueable(&head) {
            assert_eq!(encoded.head, head);
        }
        assert_eq!(encoded.tail, tail);
        assert_eq!(encoded.head.matches('\n').count(), 1);
        assert!(encoded.head.ends_with('\n'));
        let text = encoded.to_text();
        assert!(sqs_text::is_queueable(&text), "SQS would refuse {text:?}");
        assert_eq!(encoded.len(), text.len());
        assert_eq!(Envelope::decode(&text).as_ref(), Ok(env));
    }

    #[test]
    fn writes_what_serde_writes_and_reads_back() {
        for text in tricky_strings() {
            let mut env = envelope(Body::Utf8 { data: text.clone() });
            let mut direct = Vec::new();
            long_string(&mut direct, &text);
            assert_eq!(direct, serde_json::to_vec(&text).unwrap());
            check(&env);
            env.idempotency_key = None;
            env.content_type = None;
            env.trace_id = None;
            env.headers = BTreeMap::from([(text.clone(), text.clone())]);
            env.id = text.clone();
            env.source = text.clone();
            check(&env);
            env.headers.clear();
            check(&env);
        }
    }

    #[test]
    fn text_bodies_follow_the_line_unescaped() {
        let body = "{\"a\":\"x\\\"y\"}\n漢字\r\n";
        let env = envelope(Body::Utf8 { data: body.into() });
        let encoded = encode(&env);
        assert_eq!(encoded.tail, body);
        assert!(encoded.head.starts_with("{\"v\":2,"));
        assert!(encoded
            .head
            .ends_with(",\"body\":{\"encoding\":\"utf8\"}}\n"));
        // SQS refuses these as raw text: they stay escaped inside the line.
        for refused in ["a\u{0}b", "\u{1b}[0m", "x\u{FFFF}", "\u{FFFE}"] {
            let env = envelope(Body::Utf8 {
                data: refused.into(),
            });
            let encoded = encode(&env);
            assert_eq!(encoded.tail, "");
            assert!(sqs_text::is_queueable(&encoded.head), "{:?}", encoded.head);
            assert_eq!(Envelope::decode(&encoded.to_text()), Ok(env));
        }
    }

    #[test]
    fn every_body_kind_round_trips() {
        let bodies = [
            Body::from_bytes(b"{\"a\":\"\\u0000\"}"),
            Body::from_bytes(b""),
            Body::from_bytes(&[0xff, 0x00, 0xfe, b'\n']),
            Body::S3(BodyRef {
                bucket: "b\"".into(),
                key: "payloads/github/2026/01/01/evt_01".into(),
                size: u64::MAX,
                sha256: "ab".into(),
            }),
        ];
        for body in bodies {
            check(&envelope(body));
        }
    }
}
