//! Provider signature schemes: verify a request over its raw bytes, and sign one (for tests,
//! the CLI, and the consumer's signed delivery).
//!
//! Every comparison of MAC bytes goes through `hmac`'s `verify_slice`, which is
//! constant-time; no code here compares MACs with `==`. Errors say which rule failed as a
//! code, never which bytes differed, and never carry a secret.

mod github;
mod secret;
mod standard_webhooks;

pub use secret::{Secret, SecretError};

use crate::headers::HeaderMap;
use serde::{Deserialize, Serialize};

/// How a provider signs its webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`).
    StandardWebhooks,
    /// GitHub (`X-Hub-Signature-256: sha256=<hex>`, `X-GitHub-Delivery`).
    Github,
}

impl Scheme {
    /// The scheme's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Github => "github",
        }
    }

    /// Whether the scheme signs a timestamp (and so rejects replays by age).
    pub fn has_timestamp(self) -> bool {
        matches!(self, Scheme::StandardWebhooks)
    }

    /// Parses one configured secret in this scheme's format.
    pub fn parse_secret(self, raw: &str) -> Result<Secret, SecretError> {
        match self {
            Scheme::StandardWebhooks => Secret::standard_webhooks(raw),
            Scheme::Github => Secret::raw(raw),
        }
    }

    /// Parses a secret list: several secrets separated by whitespace, all accepted at once
    /// (rotation without downtime).
    pub fn parse_secrets(self, raw: &str) -> Result<Vec<Secret>, SecretError> {
        let secrets = raw
            .split_ascii_whitespace()
            .map(|s| self.parse_secret(s))
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(secrets)
    }

    /// Verifies `body` as received with `headers` against any of `secrets`.
    ///
    /// `now_secs` is the current Unix time; timestamps further than `tolerance_secs` from it,
    /// in either direction, are rejected.
    pub fn verify(
        self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[Secret],
        now_secs: i64,
        tolerance_secs: u64,
    ) -> Result<Verified, SignatureError> {
        if secrets.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        match self {
            Scheme::StandardWebhooks => {
                standard_webhooks::verify(headers, body, secrets, now_secs, tolerance_secs)
            }
            Scheme::Github => github::verify(headers, body, secrets),
        }
    }

    /// The headers a provider using this scheme would send for `body`.
    ///
    /// `id` is the provider's delivery id, `now_secs` the signing time.
    pub fn sign(
        self,
        secret: &Secret,
        id: &str,
        now_secs: i64,
        body: &[u8],
    ) -> Vec<(String, String)> {
        match self {
            Scheme::StandardWebhooks => standard_webhooks::sign(secret, id, now_secs, body),
            Scheme::Github => github::sign(secret, id, body),
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful verification learned about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The provider's delivery id, repeated on the provider's retries.
    pub idempotency_key: Option<String>,
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    #[error("no signature matched")]
    Mismatch,
    #[error("timestamp outside the tolerance window")]
    TimestampOutOfTolerance,
    #[error("no secret is configured for this source")]
    NoSecret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_round_trip_through_config() {
        for s in [Scheme::StandardWebhooks, Scheme::Github] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Scheme>(&json).unwrap(), s);
        }
    }

    #[test]
    fn sign_then_verify_round_trips_for_every_scheme() {
        let body = b"{\"hello\":\"world\"}";
        for scheme in [Scheme::StandardWebhooks, Scheme::Github] {
            let secret = scheme
                .parse_secret(match scheme {
                    Scheme::StandardWebhooks => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    Scheme::Github => "s3cret",
                })
                .unwrap();
            let headers: HeaderMap = scheme
                .sign(&secret, "id-1", 1_000, body)
                .into_iter()
                .collect();
            let ok = scheme
                .verify(&headers, body, std::slice::from_ref(&secret), 1_000, 300)
                .unwrap();
            assert_eq!(ok.idempotency_key.as_deref(), Some("id-1"));
            assert_eq!(
                scheme.verify(&headers, b"{\"hello\":\"w0rld\"}", &[secret], 1_000, 300),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn rotation_accepts_old_and_new_secrets() {
        let scheme = Scheme::Github;
        let secrets = scheme.parse_secrets("old-secret new-secret").unwrap();
        for s in &secrets {
            let headers: HeaderMap = scheme.sign(s, "d", 0, b"x").into_iter().collect();
            assert!(scheme.verify(&headers, b"x", &secrets, 0, 300).is_ok());
        }
        let other = scheme.parse_secret("third").unwrap();
        let headers: HeaderMap = scheme.sign(&other, "d", 0, b"x").into_iter().collect();
        assert_eq!(
            scheme.verify(&headers, b"x", &secrets, 0, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn no_secret_fails_closed() {
        let headers = HeaderMap::new();
        assert_eq!(
            Scheme::Github.verify(&headers, b"x", &[], 0, 300),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(Scheme::Github.parse_secrets("  "), Err(SecretError::Empty));
    }
}
