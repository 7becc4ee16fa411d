//! Shopify: `X-Shopify-Hmac-Sha256`, base64 HMAC-SHA256 of the raw body. Event id from
//! `X-Shopify-Event-Id`, falling back to `X-Shopify-Webhook-Id`. No signed timestamp:
//! replays are caught by idempotency in the consumer.

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{required, Secret, SignatureError, SignedRequest, Verified};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

const SIGNATURE: &str = "x-shopify-hmac-sha256";

pub(super) fn verify_with(
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    external: Option<&ExternalMacs>,
) -> Result<Verified, SignatureError> {
    let header = required(req, SIGNATURE)?;
    let candidate = B64
        .decode(header.trim())
        .map_err(|_| SignatureError::MalformedHeader(SIGNATURE))?;
    mac::verify_any(
        external,
        Algorithm::Sha256,
        secrets,
        &[req.body],
        &[&candidate],
    )?;
    let present = |name| req.headers.get(name).filter(|v: &&str| !v.is_empty());
    let id = present("x-shopify-event-id").or_else(|| present("x-shopify-webhook-id"));
    Ok(Verified {
        idempotency_key: id.map(str::to_string),
        challenge: None,
    })
}

pub(super) fn sign(secret: &Secret, id: &str, body: &[u8]) -> Vec<(String, String)> {
    let key = secret.hmac_key().unwrap_or_default();
    vec![
        (
            SIGNATURE.to_string(),
            B64.encode(mac::compute(Algorithm::Sha256, key, &[body])),
        ),
        ("x-shopify-event-id".to_string(), id.to_string()),
        ("x-shopify-webhook-id".to_string(), id.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> Result<Verified, SignatureError> {
        super::verify_with(req, secrets, None)
    }

    use super::*;
    use crate::headers::HeaderMap;

    fn check(h: &HeaderMap, body: &[u8]) -> Result<Verified, SignatureError> {
        let req = SignedRequest {
            headers: h,
            body,
            now_secs: 0,
            tolerance_secs: 300,
        };
        verify(&req, &[Secret::raw("shpss_secret").unwrap()])
    }

    #[test]
    fn shopify_sdk_fixture_verifies() {
        // Shopify/shopify-api-php tests: secret "steffi", body {"foo":"bar"}.
        let h: HeaderMap = [(SIGNATURE, "/Redz4YXHLnSmmSN8grr5/Jl/Ua3d7yX3iWbjb8R8wo=")]
            .into_iter()
            .collect();
        let req = SignedRequest {
            headers: &h,
            body: br#"{"foo":"bar"}"#,
            now_secs: 0,
            tolerance_secs: 300,
        };
        assert!(verify(&req, &[Secret::raw("steffi").unwrap()]).is_ok());
        assert_eq!(
            sign(&Secret::raw("steffi").unwrap(), "x", br#"{"foo":"bar"}"#)[0].1,
            "/Redz4YXHLnSmmSN8grr5/Jl/Ua3d7yX3iWbjb8R8wo="
        );
    }

    #[test]
    fn round_trip_and_id_fallback() {
        let s = Secret::raw("shpss_secret").unwrap();
        let h: HeaderMap = sign(&s, "ev-1", b"{}").into_iter().collect();
        assert_eq!(
            check(&h, b"{}").unwrap().idempotency_key.as_deref(),
            Some("ev-1")
        );
        let h: HeaderMap = h
            .iter()
            .filter(|(n, _)| *n != "x-shopify-event-id")
            .collect();
        assert_eq!(
            check(&h, b"{}").unwrap().idempotency_key.as_deref(),
            Some("ev-1")
        );
        // An empty event id falls back too.
        let h: HeaderMap = h.iter().chain([("x-shopify-event-id", "")]).collect();
        assert_eq!(
            check(&h, b"{}").unwrap().idempotency_key.as_deref(),
            Some("ev-1")
        );
        assert_eq!(check(&h, b"{ }"), Err(SignatureError::Mismatch));
        let bad: HeaderMap = [(SIGNATURE, "%%%")].into_iter().collect();
        assert_eq!(
            check(&bad, b"{}"),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
    }
}
