//! FIFO queues: which message group an event belongs to (events of one group are processed
//! in order) and its deduplication id.
//!
//! A source's `fifo_group_key` says where the group comes from: `header:<name>`,
//! `json:<JSON pointer>` into the body, or a literal. Without one, or when the value is
//! missing, the group is the source name (ordered per source).

use crate::envelope::Envelope;
use crate::headers::HeaderMap;
use sha2::{Digest, Sha256};

/// SQS allows at most 128 characters in a group id.
const MAX_GROUP_ID: usize = 128;

/// The message group id for an event.
pub fn message_group_id(
    source: &str,
    group_key: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    let value = group_key.and_then(|spec| {
        if let Some(name) = spec.strip_prefix("header:") {
            headers.get(name).map(str::to_string)
        } else if let Some(pointer) = spec.strip_prefix("json:") {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            match v.pointer(pointer)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }
        } else {
            Some(spec.to_string())
        }
    });
    let value = value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| source.to_string());
    // SQS accepts alphanumerics and punctuation; anything else, or too long, is hashed.
    let clean = value.len() <= MAX_GROUP_ID && value.bytes().all(|b| b.is_ascii_graphic());
    if clean {
        value
    } else {
        hex::encode(Sha256::digest(value.as_bytes()))
    }
}

/// The deduplication id: a hash of the event's dedup key, so a provider retry within SQS's
/// five-minute window is dropped by the queue itself.
pub fn deduplication_id(envelope: &Envelope) -> String {
    hex::encode(Sha256::digest(envelope.dedup_key().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_from_header_json_literal_or_source() {
        let h: HeaderMap = [("X-Shopify-Shop-Domain", "shop.example")]
            .into_iter()
            .collect();
        let body = br#"{"customer":{"id":42},"name":"n"}"#;
        assert_eq!(
            message_group_id("s", Some("header:x-shopify-shop-domain"), &h, body),
            "shop.example"
        );
        assert_eq!(
            message_group_id("s", Some("json:/customer/id"), &h, body),
            "42"
        );
        assert_eq!(message_group_id("s", Some("json:/name"), &h, body), "n");
        assert_eq!(message_group_id("s", Some("all"), &h, body), "all");
        assert_eq!(message_group_id("s", Some("json:/missing"), &h, body), "s");
        assert_eq!(message_group_id("s", None, &h, body), "s");
        let body = format!("{{\"x\":\"{}\"}}", "y".repeat(200));
        assert_eq!(
            message_group_id("s", Some("json:/x"), &h, body.as_bytes()).len(),
            64
        );
        let body = br#"{"x":"has space"}"#;
        assert_eq!(message_group_id("s", Some("json:/x"), &h, body).len(), 64);
    }
}
