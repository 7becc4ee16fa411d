//! The envelope's wire encoding, written directly: the hot path of every accepted webhook.
//!
//! Produces exactly the JSON `serde_json::to_string(&envelope)` would (same field order,
//! same escapes; the tests hold it to that byte for byte), in one pre-sized buffer, with
//! strings escaped by `json-escape-simd` (SIMD on x86_64/aarch64, a portable 16-byte kernel
//! elsewhere) instead of serde_json's byte-at-a-time escaper. The body is the only large
//! field, so this is where the edge spends its time after the signature.
//!
//! Decoding stays with serde (`Envelope::decode`): this module only writes. It must never
//! write anything serde's reader would not read back as the same envelope.

use crate::envelope::{Body, Envelope};
use crate::json_text::{integer, long_string, name, string, BODY_CHUNK};

/// The envelope as the JSON text queued on SQS.
pub(crate) fn encode(envelope: &Envelope) -> String {
    let body_len = match &envelope.body {
        Body::Utf8 { data } | Body::Base64 { data } => data.len(),
        Body::S3(_) => 0,
    };
    // The metadata is small; the body, escaped, is usually at most a few percent longer.
    // The buffer grows if a body needs more.
    // Room for the escaper's per-chunk reserve (see `long_string`) on top.
    let mut out = Vec::with_capacity(2048 + body_len + body_len / 4 + 6 * body_len.min(BODY_CHUNK));
    out.extend_from_slice(b"{\"v\":");
    integer(&mut out, u64::from(envelope.v));
    out.push(b',');
    name(&mut out, "id");
    string(&mut out, &envelope.id);
    out.push(b',');
    name(&mut out, "source");
    string(&mut out, &envelope.source);
    if let Some(key) = &envelope.idempotency_key {
        out.push(b',');
        name(&mut out, "idempotency_key");
        string(&mut out, key);
    }
    out.push(b',');
    name(&mut out, "received_at_ms");
    integer(&mut out, envelope.received_at_ms);
    if let Some(content_type) = &envelope.content_type {
        out.push(b',');
        name(&mut out, "content_type");
        string(&mut out, content_type);
    }
    if let Some(trace_id) = &envelope.trace_id {
        out.push(b',');
        name(&mut out, "trace_id");
        string(&mut out, trace_id);
    }
    out.push(b',');
    name(&mut out, "headers");
    out.push(b'{');
    for (i, (header, value)) in envelope.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(&mut out, header);
        out.push(b':');
        string(&mut out, value);
    }
    out.extend_from_slice(b"},");
    name(&mut out, "body");
    match &envelope.body {
        Body::Utf8 { data } => {
            out.extend_from_slice(b"{\"encoding\":\"utf8\",\"data\":");
            long_string(&mut out, data);
            out.push(b'}');
        }
        Body::Base64 { data } => {
            out.extend_from_slice(b"{\"encoding\":\"base64\",\"data\":");
            string(&mut out, data);
            out.push(b'}');
        }
        // A small reference: serde writes it (tag first, then the reference's fields).
        Body::S3(_) => {
            // Writing into a Vec cannot fail, and the body is strings and integers only.
            let _ = serde_json::to_writer(&mut out, &envelope.body);
        }
    }
    out.push(b'}');
    // Every piece above is valid UTF-8: fixed ASCII, escaped `str`s, digits, serde's JSON.
    String::from_utf8(out).unwrap_or_default()
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

    #[test]
    fn writes_exactly_what_serde_writes() {
        for text in tricky_strings() {
            let mut env = envelope(Body::Utf8 { data: text.clone() });
            let mut direct = Vec::new();
            long_string(&mut direct, &text);
            assert_eq!(direct, serde_json::to_vec(&text).unwrap());
            assert_eq!(encode(&env), serde_json::to_string(&env).unwrap());
            env.idempotency_key = None;
            env.content_type = None;
            env.trace_id = None;
            env.headers = BTreeMap::from([(text.clone(), text.clone())]);
            env.id = text.clone();
            env.source = text.clone();
            assert_eq!(encode(&env), serde_json::to_string(&env).unwrap());
            env.headers.clear();
            assert_eq!(encode(&env), serde_json::to_string(&env).unwrap());
        }
    }

    #[test]
    fn every_body_kind_round_trips() {
        let bodies = [
            Body::from_bytes(b"{\"a\":\"\\u0000\"}"),
            Body::from_bytes(&[0xff, 0x00, 0xfe, b'\n']),
            Body::S3(BodyRef {
                bucket: "b\"".into(),
                key: "payloads/github/2026/01/01/evt_01".into(),
                size: u64::MAX,
                sha256: "ab".into(),
            }),
        ];
        for body in bodies {
            let env = envelope(body);
            let text = encode(&env);
            assert_eq!(text, serde_json::to_string(&env).unwrap());
            assert_eq!(Envelope::decode(&text).unwrap(), env);
        }
    }
}
