//! Standard Webhooks (<https://www.standardwebhooks.com>), symmetric `v1` signatures.
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256, base64. The
//! `webhook-signature` header holds one or more space-separated `v1,<base64>` entries (the
//! sender may sign with several secrets during rotation); any match passes.

use super::{Secret, SignatureError, Verified};
use crate::headers::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

fn mac(secret: &Secret, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(secret.key()).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<Verified, SignatureError> {
    let id = headers.get(ID).ok_or(SignatureError::MissingHeader(ID))?;
    let timestamp = headers
        .get(TIMESTAMP)
        .ok_or(SignatureError::MissingHeader(TIMESTAMP))?;
    let signatures = headers
        .get(SIGNATURE)
        .ok_or(SignatureError::MissingHeader(SIGNATURE))?;
    if id.is_empty() {
        return Err(SignatureError::MalformedHeader(ID));
    }
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedHeader(TIMESTAMP))?;
    if now_secs.abs_diff(ts) > tolerance_secs {
        return Err(SignatureError::TimestampOutOfTolerance);
    }

    let mut candidates = Vec::new();
    for entry in signatures.split(' ').filter(|e| !e.is_empty()) {
        let (version, sig) = entry
            .split_once(',')
            .ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
        if version != "v1" {
            // Other versions (e.g. asymmetric v1a) are not for this verifier; skip them.
            continue;
        }
        let bytes = B64
            .decode(sig)
            .map_err(|_| SignatureError::MalformedHeader(SIGNATURE))?;
        candidates.push(bytes);
    }
    if candidates.is_empty() {
        return Err(SignatureError::MalformedHeader(SIGNATURE));
    }

    for secret in secrets {
        let expected = mac(secret, id, timestamp.trim(), body);
        for candidate in &candidates {
            // Constant-time comparison.
            if expected.clone().verify_slice(candidate).is_ok() {
                return Ok(Verified {
                    idempotency_key: Some(id.to_string()),
                });
            }
        }
    }
    Err(SignatureError::Mismatch)
}

pub(super) fn sign(secret: &Secret, id: &str, now_secs: i64, body: &[u8]) -> Vec<(String, String)> {
    let timestamp = now_secs.to_string();
    let sig = B64.encode(mac(secret, id, &timestamp, body).finalize().into_bytes());
    vec![
        (ID.to_string(), id.to_string()),
        (TIMESTAMP.to_string(), timestamp),
        (SIGNATURE.to_string(), format!("v1,{sig}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(sig: &str, ts: i64) -> HeaderMap {
        [
            ("webhook-id", MSG_ID.to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sig.to_string()),
        ]
        .into_iter()
        .collect()
    }

    fn secrets() -> Vec<Secret> {
        vec![Secret::standard_webhooks(SECRET).unwrap()]
    }

    #[test]
    fn published_vector_verifies() {
        let ok = verify(&headers(SIG, TS), BODY, &secrets(), TS, 300).unwrap();
        assert_eq!(ok.idempotency_key.as_deref(), Some(MSG_ID));
    }

    #[test]
    fn sign_reproduces_the_published_vector() {
        let out = sign(&secrets()[0], MSG_ID, TS, BODY);
        assert_eq!(out[2].1, SIG);
    }

    #[test]
    fn any_of_several_signatures_passes() {
        let sig = format!("v1,Zm9vYmFy v1a,abcd {SIG}");
        assert!(verify(&headers(&sig, TS), BODY, &secrets(), TS, 300).is_ok());
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        for now in [TS + 301, TS - 301] {
            assert_eq!(
                verify(&headers(SIG, TS), BODY, &secrets(), now, 300),
                Err(SignatureError::TimestampOutOfTolerance)
            );
        }
        assert!(verify(&headers(SIG, TS), BODY, &secrets(), TS + 300, 300).is_ok());
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        assert_eq!(
            verify(
                &headers(SIG, TS),
                br#"{"test": 2432232315}"#,
                &secrets(),
                TS,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        let other = vec![Secret::standard_webhooks("whsec_c2VjcmV0").unwrap()];
        assert_eq!(
            verify(&headers(SIG, TS), BODY, &other, TS, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_and_missing_headers_are_named() {
        assert_eq!(
            verify(&headers("garbage", TS), BODY, &secrets(), TS, 300),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
        assert_eq!(
            verify(&headers("v1,***", TS), BODY, &secrets(), TS, 300),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
        let mut h = headers(SIG, TS);
        h = h.iter().filter(|(n, _)| *n != "webhook-id").collect();
        assert_eq!(
            verify(&h, BODY, &secrets(), TS, 300),
            Err(SignatureError::MissingHeader(ID))
        );
        let h: HeaderMap = [
            ("webhook-id", MSG_ID),
            ("webhook-timestamp", "yesterday"),
            ("webhook-signature", SIG),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            verify(&h, BODY, &secrets(), TS, 300),
            Err(SignatureError::MalformedHeader(TIMESTAMP))
        );
    }
}
