//! A small case-insensitive header list, and the rule for which provider headers travel on
//! in the envelope.
//!
//! Only headers on the allowlist are forwarded: signatures, authorisation and cookies must
//! never leave the edge.

use std::collections::BTreeMap;

/// Request headers as received, looked up case-insensitively. Names are stored lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header; a repeated name keeps every value (the first one wins on `get`).
    pub fn insert(&mut self, name: &str, value: &str) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// The headers as the runtime handed them over, kept without copying (names are
    /// lower-cased in place).
    pub fn from_owned(headers: impl IntoIterator<Item = (String, String)>) -> Self {
        let entries = headers
            .into_iter()
            .map(|(mut name, value)| {
                name.make_ascii_lowercase();
                (name, value)
            })
            .collect();
        HeaderMap { entries }
    }

    /// The first value of `name`, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderMap {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        let mut map = HeaderMap::new();
        for (n, v) in iter {
            map.insert(n.as_ref(), v.as_ref());
        }
        map
    }
}

/// Provider headers that carry meaning for the destination and are safe to forward.
/// Signature headers are deliberately absent: the event is re-signed for the destination.
fn is_forwarded(name: &str) -> bool {
    matches!(
        name,
        "user-agent"
            | "webhook-id"
            | "webhook-timestamp"
            | "x-github-event"
            | "x-github-delivery"
            | "x-github-hook-id"
            | "x-github-hook-installation-target-id"
            | "x-github-hook-installation-target-type"
            | "stripe-version"
            | "x-shopify-topic"
            | "x-shopify-shop-domain"
            | "x-shopify-event-id"
            | "x-shopify-webhook-id"
            | "x-shopify-api-version"
            | "x-slack-request-timestamp"
            | "i-twilio-idempotency-token"
    )
}

/// The headers of `headers` that go into the envelope, lower-cased, at most one value each
/// (the first).
pub fn forwarded(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in headers.iter().filter(|(name, _)| is_forwarded(name)) {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(name.to_string()) {
            slot.insert(value.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        let h: HeaderMap = [("Webhook-ID", "msg_1")].into_iter().collect();
        assert_eq!(h.get("webhook-id"), Some("msg_1"));
        assert_eq!(h.get("WEBHOOK-ID"), Some("msg_1"));
        assert_eq!(h.get("webhook-signature"), None);
    }

    #[test]
    fn owned_headers_are_kept_lower_case() {
        let h = HeaderMap::from_owned([("Webhook-ID".to_string(), "msg_1".to_string())]);
        assert_eq!(h.iter().collect::<Vec<_>>(), [("webhook-id", "msg_1")]);
        assert_eq!(h, [("webhook-id", "msg_1")].into_iter().collect());
    }

    #[test]
    fn signatures_and_credentials_are_never_forwarded() {
        let h: HeaderMap = [
            ("X-Hub-Signature-256", "sha256=abc"),
            ("Webhook-Signature", "v1,abc"),
            ("Authorization", "Bearer x"),
            ("Cookie", "a=b"),
            ("X-GitHub-Event", "push"),
        ]
        .into_iter()
        .collect();
        let f = forwarded(&h);
        assert_eq!(f.len(), 1);
        let repeated: HeaderMap = [("User-Agent", "first"), ("user-agent", "second")]
            .into_iter()
            .collect();
        assert_eq!(forwarded(&repeated)["user-agent"], "first");
        assert_eq!(f.get("x-github-event").map(String::as_str), Some("push"));
    }

    /// Each scheme's event id header travels with the event, as providers spell it.
    #[test]
    fn providers_event_id_headers_are_forwarded() {
        for name in [
            "Webhook-Id",
            "X-GitHub-Delivery",
            "X-Shopify-Event-Id",
            "X-Shopify-Webhook-Id",
            "I-Twilio-Idempotency-Token",
        ] {
            let h: HeaderMap = [(name, "id-1")].into_iter().collect();
            assert_eq!(forwarded(&h).len(), 1, "{name} is forwarded");
        }
    }
}
