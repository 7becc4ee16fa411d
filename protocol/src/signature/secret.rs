//! Signing secrets and keys, parsed from configuration.
//!
//! A `Secret` never prints its bytes: `Debug` is redacted so a secret cannot leak through a
//! log line or an error message.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// Key material for one signature check (or, for tests and the CLI, for signing).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A shared HMAC secret.
    Hmac(Vec<u8>),
    /// A Standard Webhooks ed25519 public key (`whpk_`): verifies `v1a` signatures.
    Ed25519Public([u8; 32]),
    /// A Standard Webhooks ed25519 private key (`whsk_`): signs `v1a` (senders, tests).
    Ed25519Private([u8; 32]),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Hmac(_) => "Secret::Hmac(<redacted>)",
            Secret::Ed25519Public(_) => "Secret::Ed25519Public(<redacted>)",
            Secret::Ed25519Private(_) => "Secret::Ed25519Private(<redacted>)",
        })
    }
}

/// Why a configured secret could not be used. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no secret given")]
    Empty,
    #[error("a Standard Webhooks secret must be `whsec_`, `whpk_` or `whsk_` followed by base64")]
    NotBase64,
    #[error("an ed25519 key must be 32 bytes (or 64 for a `whsk_` key pair)")]
    BadKeyLength,
}

impl Secret {
    /// A secret used as its UTF-8 bytes (GitHub, Stripe, Shopify, Slack, Twilio, generic).
    pub fn raw(text: &str) -> Result<Self, SecretError> {
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret::Hmac(text.as_bytes().to_vec()))
    }

    /// A Standard Webhooks secret: `whsec_<base64>` (prefix optional) for HMAC `v1`,
    /// `whpk_<base64>` / `whsk_<base64>` for ed25519 `v1a`.
    pub fn standard_webhooks(text: &str) -> Result<Self, SecretError> {
        if let Some(b64) = text.strip_prefix("whpk_") {
            return Ok(Secret::Ed25519Public(key32(b64)?));
        }
        if let Some(b64) = text.strip_prefix("whsk_") {
            return Ok(Secret::Ed25519Private(key32(b64)?));
        }
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        if b64.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret::Hmac(key))
    }

    /// The HMAC key, if this is an HMAC secret.
    pub(crate) fn hmac_key(&self) -> Option<&[u8]> {
        match self {
            Secret::Hmac(k) => Some(k),
            _ => None,
        }
    }
}

/// 32 key bytes from base64; a 64-byte `seed || public` pair yields its seed.
fn key32(b64: &str) -> Result<[u8; 32], SecretError> {
    if b64.is_empty() {
        return Err(SecretError::Empty);
    }
    let bytes = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
    match bytes.len() {
        32 | 64 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&bytes[..32]);
            Ok(out)
        }
        _ => Err(SecretError::BadKeyLength),
    }
}

/// A fresh `whsk_`/`whpk_` pair from 32 random bytes (dev stacks and tests).
pub fn ed25519_pair(seed: [u8; 32]) -> (String, String) {
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    (
        format!("whsk_{}", B64.encode(seed)),
        format!("whpk_{}", B64.encode(signing.verifying_key().to_bytes())),
    )
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
    fn standard_webhooks_secrets_parse_by_prefix() {
        assert!(matches!(
            Secret::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Ok(Secret::Hmac(_))
        ));
        let (sk, pk) = ed25519_pair([7; 32]);
        assert!(matches!(
            Secret::standard_webhooks(&sk),
            Ok(Secret::Ed25519Private(_))
        ));
        assert!(matches!(
            Secret::standard_webhooks(&pk),
            Ok(Secret::Ed25519Public(_))
        ));
        assert_eq!(
            Secret::standard_webhooks("whpk_AAAA"),
            Err(SecretError::BadKeyLength)
        );
        assert_eq!(
            Secret::standard_webhooks("whsec_not base64!"),
            Err(SecretError::NotBase64)
        );
        assert_eq!(Secret::standard_webhooks("whsec_"), Err(SecretError::Empty));
    }
}
