//! Secret lists as configured (`SLUICE_SECRET_<NAME>`): whitespace-separated, `whsec_` /
//! `whpk_` / `whsk_` base64 for Standard Webhooks, raw text otherwise. Parsing never panics,
//! a parsed list is never empty, and no secret ever prints its bytes.

use crate::parse_all;
use sluice_protocol::signature::ALL_SCHEMES;
use sluice_protocol::{Secret, SecretError};

const REDACTED: [&str; 3] = [
    "Secret::Hmac(<redacted>)",
    "Secret::Ed25519Public(<redacted>)",
    "Secret::Ed25519Private(<redacted>)",
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let words = text.split_ascii_whitespace().count();
    for (scheme, parsed) in ALL_SCHEMES.iter().zip(parse_all(text)) {
        match parsed {
            Ok(secrets) => {
                assert_eq!(secrets.len(), words, "{scheme}: one secret per word");
                for s in &secrets {
                    assert!(REDACTED.contains(&format!("{s:?}").as_str()));
                    if let Secret::Hmac(key) = s {
                        assert!(!key.is_empty(), "{scheme}: empty HMAC key");
                    }
                }
            }
            Err(e) => {
                // Errors are fixed texts: nothing of the input is echoed.
                let fixed = [
                    SecretError::Empty,
                    SecretError::NotBase64,
                    SecretError::BadKeyLength,
                ]
                .map(|e| e.to_string());
                assert!(fixed.contains(&e.to_string()), "{e}");
            }
        }
    }
}
