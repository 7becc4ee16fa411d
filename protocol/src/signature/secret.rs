//! Signing secrets, parsed from configuration.
//!
//! A `Secret` never prints its bytes: `Debug` is redacted so a secret cannot leak through a
//! log line or an error message.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// Key material for one HMAC secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a configured secret could not be used. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no secret given")]
    Empty,
    #[error("a Standard Webhooks secret must be `whsec_` followed by base64")]
    NotBase64,
}

impl Secret {
    /// A secret used as its UTF-8 bytes (GitHub, Slack, Stripe, Shopify).
    pub fn raw(text: &str) -> Result<Self, SecretError> {
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret(text.as_bytes().to_vec()))
    }

    /// A Standard Webhooks secret: `whsec_<base64>` (the prefix is optional).
    pub fn standard_webhooks(text: &str) -> Result<Self, SecretError> {
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        if b64.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret(key))
    }

    /// The key bytes, for building a MAC.
    pub(crate) fn key(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::raw("hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn standard_webhooks_secret_needs_base64() {
        assert!(Secret::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert_eq!(
            Secret::standard_webhooks("whsec_not base64!"),
            Err(SecretError::NotBase64)
        );
        assert_eq!(Secret::standard_webhooks("whsec_"), Err(SecretError::Empty));
    }
}
