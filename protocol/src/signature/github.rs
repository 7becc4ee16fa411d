//! GitHub webhooks: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body.
//!
//! GitHub signs no timestamp, so a captured request can be replayed; Sluice catches replays
//! by idempotency on `X-GitHub-Delivery` in the consumer instead.

use super::{Secret, SignatureError, Verified};
use crate::headers::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const SIGNATURE: &str = "x-hub-signature-256";
const DELIVERY: &str = "x-github-delivery";

fn mac(secret: &Secret, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(secret.key()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac
}

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
) -> Result<Verified, SignatureError> {
    let header = headers
        .get(SIGNATURE)
        .ok_or(SignatureError::MissingHeader(SIGNATURE))?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
    let candidate = hex::decode(hex_sig).map_err(|_| SignatureError::MalformedHeader(SIGNATURE))?;
    for secret in secrets {
        // Constant-time comparison.
        if mac(secret, body).verify_slice(&candidate).is_ok() {
            return Ok(Verified {
                idempotency_key: headers
                    .get(DELIVERY)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
            });
        }
    }
    Err(SignatureError::Mismatch)
}

pub(super) fn sign(secret: &Secret, id: &str, body: &[u8]) -> Vec<(String, String)> {
    let sig = hex::encode(mac(secret, body).finalize().into_bytes());
    vec![
        (SIGNATURE.to_string(), format!("sha256={sig}")),
        (DELIVERY.to_string(), id.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from GitHub's "Validating webhook deliveries" documentation.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secrets() -> Vec<Secret> {
        vec![Secret::raw(SECRET).unwrap()]
    }

    #[test]
    fn documented_example_verifies() {
        let h: HeaderMap = [("X-Hub-Signature-256", SIG), ("X-GitHub-Delivery", "d-1")]
            .into_iter()
            .collect();
        let ok = verify(&h, BODY, &secrets()).unwrap();
        assert_eq!(ok.idempotency_key.as_deref(), Some("d-1"));
        assert_eq!(sign(&secrets()[0], "d-1", BODY)[0].1, SIG);
    }

    #[test]
    fn tampered_body_fails_and_bad_headers_are_malformed() {
        let h: HeaderMap = [("X-Hub-Signature-256", SIG)].into_iter().collect();
        assert_eq!(
            verify(&h, b"Hello, World?", &secrets()),
            Err(SignatureError::Mismatch)
        );
        for bad in ["757107ea", "sha1=abcd", "sha256=zz"] {
            let h: HeaderMap = [("X-Hub-Signature-256", bad)].into_iter().collect();
            assert_eq!(
                verify(&h, BODY, &secrets()),
                Err(SignatureError::MalformedHeader(SIGNATURE))
            );
        }
        assert_eq!(
            verify(&HeaderMap::new(), BODY, &secrets()),
            Err(SignatureError::MissingHeader(SIGNATURE))
        );
    }
}
