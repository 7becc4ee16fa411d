//! A source's destinations: where the consumer delivers its events, each with its own
//! filter, static headers, signing secret and timeout (the routes of a source).
//!
//! A source written the old way (`"destination": "<url>"`) has one destination named
//! [`DEFAULT_DESTINATION`], and that destination keeps the idempotency key and `webhook-id`
//! events had before routes existed, so an upgrade re-delivers nothing.
//!
//! Secrets are never part of this configuration: a secret header value is a reference
//! ([`HeaderValue::Secret`]), resolved by the consumer at start-up. This module only
//! validates; it never reads a secret, the environment or the network.

use crate::filter::Filter;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The name of the one destination of a source configured with `destination: "<url>"`.
pub const DEFAULT_DESTINATION: &str = "default";

/// Bounds of a destination's `timeout_ms`.
pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=300_000;

/// Most destinations one source may have.
pub const MAX_DESTINATIONS: usize = 50;

/// One route of a source: where matching events are POSTed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique within its source, `[a-z0-9_-]`: part of the idempotency key and of metrics.
    pub name: String,
    /// Where matching events are POSTed (http:// or https://).
    pub url: String,
    /// Which events this destination receives (see [`crate::filter`]); every event when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    /// Static request headers, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderValue>,
    /// Secrets Manager secret (`whsec_…`) this destination's deliveries are signed with,
    /// instead of the consumer-wide destination secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_arn: Option<String>,
    /// How long one delivery may take, instead of the consumer's global delivery timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A static header's value: text, or a reference to a secret resolved at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    Plain(String),
    Secret(SecretRef),
}

/// Where a secret header value is read from: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// A Secrets Manager secret (its SecretString is the header value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// An environment variable of the consumer (local stacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

impl DestinationConfig {
    /// A destination with no filter, headers, own secret or timeout.
    pub fn new(name: &str, url: &str) -> Self {
        DestinationConfig {
            name: name.to_string(),
            url: url.to_string(),
            filter: None,
            headers: BTreeMap::new(),
            signing_secret_arn: None,
            timeout_ms: None,
        }
    }

    /// The idempotency key of this destination's copy of an event whose (source-wide) key
    /// is `event_key`: `{event_key}#{name}`, except [`DEFAULT_DESTINATION`], which keeps
    /// `event_key` itself (what it was before routes).
    pub fn delivery_key(&self, event_key: &str) -> String {
        delivery_key(event_key, &self.name)
    }

    /// The compiled filter, if any (validated configs always compile).
    pub fn compiled_filter(&self) -> Result<Option<Filter>, FieldError> {
        self.filter
            .as_ref()
            .map(|doc| {
                Filter::compile(doc).map_err(|e| FieldError {
                    field: if e.path.is_empty() {
                        "filter".to_string()
                    } else {
                        format!("filter.{}", e.path)
                    },
                    reason: e.reason.to_string(),
                })
            })
            .transpose()
    }

    /// Checks every field but the name's uniqueness (the source checks that).
    pub fn validate(&self) -> Result<(), FieldError> {
        let bad = |field: &str, reason: &str| FieldError {
            field: field.to_string(),
            reason: reason.to_string(),
        };
        if let Err(reason) = check_name(&self.name) {
            return Err(bad("name", reason));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://"))
            || self.url.len() < "http://x".len()
        {
            return Err(bad("url", "must be an http:// or https:// URL"));
        }
        if self
            .url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "url",
                "must not contain whitespace or control characters",
            ));
        }
        check_authority(&self.url).map_err(|reason| bad("url", reason))?;
        self.compiled_filter()?;
        for (name, value) in &self.headers {
            let field = format!("headers.{name}");
            check_header(name, value).map_err(|reason| bad(&field, reason))?;
            if self
                .headers
                .keys()
                .any(|other| other != name && other.eq_ignore_ascii_case(name))
            {
                return Err(bad(&field, "given twice (header names ignore case)"));
            }
        }
        if let Some(arn) = &self.signing_secret_arn {
            if !is_secret_arn(arn) {
                return Err(bad(
                    "signing_secret_arn",
                    "must be a Secrets Manager ARN (arn:aws:secretsmanager:…:secret:…)",
                ));
            }
        }
        if let Some(ms) = self.timeout_ms {
            if !TIMEOUT_MS_RANGE.contains(&ms) {
                return Err(bad("timeout_ms", "must be from 100 to 300000"));
            }
        }
        Ok(())
    }

    /// Every Secrets Manager ARN this destination refers to (headers, signing secret).
    pub fn secret_arns(&self) -> impl Iterator<Item = &str> {
        self.headers
            .values()
            .filter_map(|v| match v {
                HeaderValue::Secret(SecretRef {
                    secret_arn: Some(arn),
                    ..
                }) => Some(arn.as_str()),
                _ => None,
            })
            .chain(self.signing_secret_arn.as_deref())
    }
}

/// The URL's authority: a host (and a port from 1 to 65535), no user or password (a
/// credential belongs in a secret header, never in the sources file).
fn check_authority(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not carry a user or password: use a secret header instead");
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(v6) => match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return Err("has an unclosed IPv6 address"),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c) || !c.is_ascii())
        && !host.starts_with('.')
        && !host.contains("..");
    if !host_ok {
        return Err("has no valid host");
    }
    if let Some(port) = port {
        if !matches!(port.parse::<u32>(), Ok(1..=65535)) {
            return Err("has a port that is not 1 to 65535");
        }
    }
    Ok(())
}

/// `{event_key}#{destination}`, or `event_key` for [`DEFAULT_DESTINATION`].
pub fn delivery_key(event_key: &str, destination: &str) -> String {
    if destination == DEFAULT_DESTINATION {
        event_key.to_string()
    } else {
        format!("{event_key}#{destination}")
    }
}

/// A destination field at fault, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path within the destination (`url`, `filter.body.type`, `headers.x-key`).
    pub field: String,
    pub reason: String,
}

/// Names of sources and destinations: 1 to 64 of `[a-z0-9_-]`.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err("only lower-case letters, digits, `-` and `_` are allowed");
    }
    Ok(())
}

fn is_secret_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(7, ':');
    matches!(
        (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next()
        ),
        (Some("arn"), Some(partition), Some("secretsmanager"), Some(region), Some(account), Some("secret"), Some(id))
            if partition.starts_with("aws") && !region.is_empty() && !account.is_empty() && !id.is_empty()
    )
}

/// Headers Sluice sets itself on every delivery (or that HTTP owns): not configurable.
fn is_reserved_header(lower: &str) -> bool {
    lower.starts_with("webhook-")
        || lower.starts_with("sluice-")
        || matches!(
            lower,
            "host"
                | "content-length"
                | "content-type"
                | "content-encoding"
                | "transfer-encoding"
                | "connection"
                | "user-agent"
                | "te"
                | "upgrade"
                | "expect"
                | "keep-alive"
                | "proxy-connection"
                | "trailer"
        )
}

/// Names that carry credentials: their value must be a secret reference, never inline.
fn is_credential_header(lower: &str) -> bool {
    matches!(lower, "authorization" | "proxy-authorization" | "cookie")
        || [
            "token",
            "secret",
            "password",
            "key",
            "auth",
            "signature",
            "credential",
            "session",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

fn check_header(name: &str, value: &HeaderValue) -> Result<(), &'static str> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err("not a valid HTTP header name");
    }
    let lower = name.to_ascii_lowercase();
    if is_reserved_header(&lower) {
        return Err("Sluice sets this header itself; it cannot be configured");
    }
    match value {
        HeaderValue::Plain(text) => {
            if is_credential_header(&lower) {
                return Err(
                    "a credential must be a secret reference ({\"secret_arn\": \"…\"} or {\"env\": \"…\"}), never inline",
                );
            }
            if !is_header_value(text) {
                return Err("not a valid HTTP header value (control characters)");
            }
        }
        HeaderValue::Secret(r) => match (&r.secret_arn, &r.env) {
            (Some(arn), None) if is_secret_arn(arn) => {}
            (Some(_), None) => return Err(
                "`secret_arn` must be a Secrets Manager ARN (arn:aws:secretsmanager:…:secret:…)",
            ),
            (None, Some(var)) if is_env_name(var) => {}
            (None, Some(_)) => return Err("`env` must be an environment variable name"),
            _ => return Err("a secret reference has exactly one of `secret_arn` or `env`"),
        },
    }
    Ok(())
}

/// Visible ASCII, spaces and tabs, and non-ASCII text (sent as UTF-8 bytes).
pub fn is_header_value(text: &str) -> bool {
    !text
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
}

fn is_env_name(var: &str) -> bool {
    !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(json: &str) -> DestinationConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keys_keep_the_default_destination_unchanged() {
        assert_eq!(delivery_key("stripe#evt_1", "default"), "stripe#evt_1");
        assert_eq!(
            delivery_key("stripe#evt_1", "billing"),
            "stripe#evt_1#billing"
        );
        assert_eq!(
            DestinationConfig::new("audit", "http://x/y").delivery_key("s#k"),
            "s#k#audit"
        );
    }

    #[test]
    fn fields_are_validated_and_named() {
        let err = |json: &str| dest(json).validate().unwrap_err();
        assert_eq!(err(r#"{"name":"Bad","url":"http://x/y"}"#).field, "name");
        assert_eq!(err(r#"{"name":"a","url":"ftp://x"}"#).field, "url");
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","timeout_ms":5}"#).field,
            "timeout_ms"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","signing_secret_arn":"whsec_abc"}"#).field,
            "signing_secret_arn"
        );
        let e = err(r#"{"name":"a","url":"http://x/y","headers":{"Authorization":"Bearer abc"}}"#);
        assert_eq!(e.field, "headers.Authorization");
        assert!(e.reason.contains("secret reference"), "{}", e.reason);
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"x-api-token":"abc"}}"#).field,
            "headers.x-api-token"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"webhook-id":"abc"}}"#).field,
            "headers.webhook-id"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"bad name":"v"}}"#).field,
            "headers.bad name"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"x-team":"a\nb"}}"#).field,
            "headers.x-team"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"authorization":{"secret_arn":"nope"}}}"#)
                .field,
            "headers.authorization"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"authorization":{"env":"A","secret_arn":"arn:aws:secretsmanager:eu-west-1:1:secret:x"}}}"#)
                .field,
            "headers.authorization"
        );
        assert!(serde_json::from_str::<DestinationConfig>(
            r#"{"name":"a","url":"http://x/y","colour":"red"}"#
        )
        .is_err());
        for url in [
            "https://user:pass@example.com/h",
            "https://exa..mple.com/h",
            "https://example.com:99999/h",
            "https://example.com:0/h",
            "https:///h",
            "https://[::1/h",
        ] {
            let e = err(&format!(r#"{{"name":"a","url":"{url}"}}"#));
            assert_eq!(e.field, "url", "{url}");
        }
        for url in [
            "https://example.com/h?x=1",
            "http://127.0.0.1:8080/hook",
            "http://[::1]:9000/x",
            "https://hooks.example.com",
        ] {
            dest(&format!(r#"{{"name":"a","url":"{url}"}}"#))
                .validate()
                .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        }
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"X-Team":"a","x-team":"b"}}"#).reason,
            "given twice (header names ignore case)"
        );
        assert_eq!(
            err(r#"{"name":"a","url":"http://x/y","headers":{"x-functions-key":"abc"}}"#).field,
            "headers.x-functions-key"
        );
    }

    #[test]
    fn references_and_plain_headers_are_accepted() {
        let d = dest(
            r#"{"name":"billing","url":"https://billing.example/hook","timeout_ms":2500,
                "headers":{"x-team":"payments","authorization":{"secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-token"},
                           "x-api-key":{"env":"BILLING_KEY"}},
                "signing_secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-whsec"}"#,
        );
        d.validate().unwrap();
        assert_eq!(
            d.secret_arns().collect::<Vec<_>>(),
            [
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-token",
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-whsec"
            ]
        );
    }
}
