//! Provider signature schemes: verify a request over its raw bytes, and sign one (for tests,
//! the CLI, and the consumer's signed delivery).
//!
//! Every comparison of MAC bytes goes through [`mac::verify`] (constant-time), or for MACs
//! computed by the caller (the edge's WebCrypto, see [`ExternalMacs`]) through the same
//! module's constant-time comparison; no code here compares MACs with `==`. Errors say which rule failed as a code, never which bytes
//! differed, and never carry a secret.

mod external_mac;
mod generic;
mod github;
pub mod mac;
mod secret;
mod shopify;
mod slack;
mod standard_webhooks;
mod stripe;
mod twilio;

pub use external_mac::{ExternalMacs, MacRequest};
pub use generic::{Encoding, GenericHmac};
pub use secret::{ed25519_pair, Secret, SecretError};

use crate::headers::HeaderMap;
use serde::{Deserialize, Serialize};

/// How a provider signs its webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` with
    /// `v1,<base64 HMAC>` (`whsec_` secrets) and/or `v1a,<base64 ed25519>` (`whpk_` keys).
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>`, `X-GitHub-Delivery`.
    Github,
    /// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>`; event id from the body's `id`.
    Stripe,
    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>`, `X-Shopify-Event-Id`.
    Shopify,
    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`.
    Slack,
    /// Twilio: `X-Twilio-Signature`, base64 HMAC-SHA1 over the public URL and sorted form
    /// parameters (or the URL alone with `bodySHA256` for JSON bodies).
    Twilio,
    /// Any other HMAC provider, described by the source's `generic` settings.
    Generic,
}

/// Every scheme, in documentation order.
pub const ALL_SCHEMES: [Scheme; 7] = [
    Scheme::StandardWebhooks,
    Scheme::Github,
    Scheme::Stripe,
    Scheme::Shopify,
    Scheme::Slack,
    Scheme::Twilio,
    Scheme::Generic,
];

/// Per-source settings some schemes need (borrowed from the source's configuration).
#[derive(Debug, Clone, Copy, Default)]
pub struct SchemeOptions<'a> {
    /// Twilio: the exact public URL Twilio posts to (custom domain, path and query).
    pub public_url: Option<&'a str>,
    /// Generic: how the provider signs.
    pub generic: Option<&'a GenericHmac>,
    /// MACs computed by the caller instead of here (the edge's WebCrypto); see
    /// [`ExternalMacs`]. `None`: computed here.
    pub external_macs: Option<&'a ExternalMacs>,
}

/// The parts of a request a signature check reads.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub headers: &'a HeaderMap,
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
    /// Current Unix time in seconds.
    pub now_secs: i64,
    /// Allowed clock skew for signed timestamps, both directions.
    pub tolerance_secs: u64,
}

impl Scheme {
    /// The scheme's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Shopify => "shopify",
            Scheme::Slack => "slack",
            Scheme::Twilio => "twilio",
            Scheme::Generic => "generic",
        }
    }

    /// Whether the scheme signs a timestamp (and so rejects replays by age). Generic
    /// sources sign one when they configure a timestamp header.
    pub fn has_timestamp(self) -> bool {
        matches!(
            self,
            Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Slack
        )
    }

    /// Parses one configured secret in this scheme's format.
    pub fn parse_secret(self, raw: &str) -> Result<Secret, SecretError> {
        match self {
            Scheme::StandardWebhooks => Secret::standard_webhooks(raw),
            _ => Secret::raw(raw),
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

    /// Verifies a request against any of `secrets`.
    pub fn verify(
        self,
        req: &SignedRequest<'_>,
        secrets: &[Secret],
        options: &SchemeOptions<'_>,
    ) -> Result<Verified, SignatureError> {
        if secrets.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        let external = options.external_macs;
        match self {
            Scheme::StandardWebhooks => standard_webhooks::verify_with(req, secrets, external),
            Scheme::Github => github::verify_with(req, secrets, external),
            Scheme::Stripe => stripe::verify_with(req, secrets, external),
            Scheme::Shopify => shopify::verify_with(req, secrets, external),
            Scheme::Slack => slack::verify_with(req, secrets, external),
            Scheme::Twilio => {
                let url = options
                    .public_url
                    .ok_or(SignatureError::NotConfigured("public_url"))?;
                twilio::verify_with(req, secrets, url, external)
            }
            Scheme::Generic => {
                let generic = options
                    .generic
                    .ok_or(SignatureError::NotConfigured("generic"))?;
                generic.verify_with(req, secrets, external)
            }
        }
    }

    /// The headers a provider using this scheme would send for `body`, signed at
    /// `now_secs`; `id` is the provider's delivery id where the scheme carries one in a
    /// header. Fails only when the scheme's options are missing.
    pub fn sign(
        self,
        secret: &Secret,
        id: &str,
        now_secs: i64,
        body: &[u8],
        options: &SchemeOptions<'_>,
    ) -> Result<Vec<(String, String)>, SignatureError> {
        Ok(match self {
            Scheme::StandardWebhooks => standard_webhooks::sign(secret, id, now_secs, body),
            Scheme::Github => github::sign(secret, id, body),
            Scheme::Stripe => stripe::sign(secret, now_secs, body),
            Scheme::Shopify => shopify::sign(secret, id, body),
            Scheme::Slack => slack::sign(secret, now_secs, body),
            Scheme::Twilio => {
                let url = options
                    .public_url
                    .ok_or(SignatureError::NotConfigured("public_url"))?;
                twilio::sign(secret, id, url, body)
            }
            Scheme::Generic => options
                .generic
                .ok_or(SignatureError::NotConfigured("generic"))?
                .sign(secret, id, now_secs, body),
        })
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful verification learned about the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The provider's delivery id, repeated on the provider's retries.
    pub idempotency_key: Option<String>,
    /// Slack's `url_verification` handshake: answer with this challenge, queue nothing.
    pub challenge: Option<String>,
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
    #[error("the source's `{0}` setting is missing")]
    NotConfigured(&'static str),
}

/// A header the scheme requires, or `MissingHeader`.
pub(crate) fn required<'a>(
    req: &SignedRequest<'a>,
    name: &'static str,
) -> Result<&'a str, SignatureError> {
    req.headers
        .get(name)
        .ok_or(SignatureError::MissingHeader(name))
}

/// Parses a Unix-seconds timestamp header and checks it against the tolerance window.
pub(crate) fn check_timestamp(
    value: &str,
    header: &'static str,
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<i64, SignatureError> {
    let ts: i64 = value
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedHeader(header))?;
    if now_secs.abs_diff(ts) > tolerance_secs {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    Ok(ts)
}

/// A top-level string field of a JSON body (event ids in Stripe and Slack bodies).
pub(crate) fn json_string_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get(field)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests;
