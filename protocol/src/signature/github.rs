//! GitHub webhooks: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body.
//!
//! GitHub signs no timestamp, so a captured request can be replayed; Sluice catches replays
//! by idempotency on `X-GitHub-Delivery` in the consumer instead.

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{required, Secret, SignatureError, SignedRequest, Verified};

const SIGNATURE: &str = "x-hub-signature-256";
const DELIVERY: &str = "x-github-delivery";

pub(super) fn verify_with(
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    external: Option<&ExternalMacs>,
) -> Result<Verified, SignatureError> {
    let header = required(req, SIGNATURE)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
    let candidate = hex::decode(hex_sig).map_err(|_| SignatureError::MalformedHeader(SIGNATURE))?;
    mac::verify_any(
        external,
        Algorithm::Sha256,
        secrets,
        &[req.body],
        &[&candidate],
    )?;
    Ok(Verified {
        idempotency_key: req
            .headers
            .get(DELIVERY)
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        challenge: None,
    })
}

pub(super) fn sign(secret: &Secret, id: &str, body: &[u8]) -> Vec<(String, String)> {
    let key = secret.hmac_key().unwrap_or_default();
    let sig = hex::encode(mac::compute(Algorithm::Sha256, key, &[body]));
    vec![
        (SIGNATURE.to_string(), format!("sha256={sig}")),
        (DELIVERY.to_string(), id.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> Result<Verified, SignatureError> {
        super::verify_with(req, secrets, None)
    }

    use super::*;
    use crate::headers::HeaderMap;

    // The example from GitHub's "Validating webhook deliveries" documentation.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn check(h: &HeaderMap, body: &[u8]) -> Result<Verified, SignatureError> {
        let req = SignedRequest {
            headers: h,
            body,
            now_secs: 0,
            tolerance_secs: 300,
        };
        verify(&req, &[Secret::raw(SECRET).unwrap()])
    }

    #[test]
    fn documented_example_verifies() {
        let h: HeaderMap = [("X-Hub-Signature-256", SIG), ("X-GitHub-Delivery", "d-1")]
            .into_iter()
            .collect();
        assert_eq!(
            check(&h, BODY).unwrap().idempotency_key.as_deref(),
            Some("d-1")
        );
        assert_eq!(sign(&Secret::raw(SECRET).unwrap(), "d-1", BODY)[0].1, SIG);
    }

    #[test]
    fn tampered_body_fails_and_bad_headers_are_malformed() {
        let h: HeaderMap = [("X-Hub-Signature-256", SIG)].into_iter().collect();
        assert_eq!(check(&h, b"Hello, World?"), Err(SignatureError::Mismatch));
        for bad in ["757107ea", "sha1=abcd", "sha256=zz"] {
            let h: HeaderMap = [("X-Hub-Signature-256", bad)].into_iter().collect();
            assert_eq!(
                check(&h, BODY),
                Err(SignatureError::MalformedHeader(SIGNATURE))
            );
        }
        assert_eq!(
            check(&HeaderMap::new(), BODY),
            Err(SignatureError::MissingHeader(SIGNATURE))
        );
    }
}
