//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`, HMAC-SHA256 hex of
//! `{t}.{body}`. Any `v1` may match (Stripe sends several while a secret is rolled); `v0`
//! (test-mode legacy) is ignored. The event id is the body's `id`.

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{
    check_timestamp, json_string_field, required, Secret, SignatureError, SignedRequest, Verified,
};

const SIGNATURE: &str = "stripe-signature";

pub(super) fn verify_with(
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    external: Option<&ExternalMacs>,
) -> Result<Verified, SignatureError> {
    let header = required(req, SIGNATURE)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let (k, v) = item
            .trim()
            .split_once('=')
            .ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
        match k {
            "t" => timestamp = Some(v),
            // A `v1` that is not hex cannot match; another one still may (Stripe's own
            // libraries compare each `v1` and skip the rest).
            "v1" => candidates.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
    if candidates.is_empty() {
        return Err(SignatureError::MalformedHeader(SIGNATURE));
    }
    check_timestamp(t, SIGNATURE, req.now_secs, req.tolerance_secs)?;
    let parts: [&[u8]; 3] = [t.as_bytes(), b".", req.body];
    let candidates: Vec<&[u8]> = candidates.iter().map(Vec::as_slice).collect();
    mac::verify_any(external, Algorithm::Sha256, secrets, &parts, &candidates)?;
    Ok(Verified {
        idempotency_key: json_string_field(req.body, "id"),
        challenge: None,
    })
}

pub(super) fn sign(secret: &Secret, now_secs: i64, body: &[u8]) -> Vec<(String, String)> {
    let t = now_secs.to_string();
    let key = secret.hmac_key().unwrap_or_default();
    let sig = hex::encode(mac::compute(
        Algorithm::Sha256,
        key,
        &[t.as_bytes(), b".", body],
    ));
    vec![(SIGNATURE.to_string(), format!("t={t},v1={sig}"))]
}

#[cfg(test)]
mod tests {
    fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> Result<Verified, SignatureError> {
        super::verify_with(req, secrets, None)
    }

    use super::*;
    use crate::headers::HeaderMap;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}"#;

    fn check(header: &str, body: &[u8], now: i64) -> Result<Verified, SignatureError> {
        let h: HeaderMap = [("Stripe-Signature", header)].into_iter().collect();
        let req = SignedRequest {
            headers: &h,
            body,
            now_secs: now,
            tolerance_secs: 300,
        };
        verify(&req, &[Secret::raw(SECRET).unwrap()])
    }

    // stripe-dotnet's fixed vector (EventUtilityTest + event_test_signature.json, LF, one
    // trailing newline). The v0 entry is ignored.
    const DOTNET_BODY: &str = "{\n  \"id\": \"evt_123\",\n  \"object\": \"event\",\n  \"account\": \"acct_123\",\n  \"api_version\": \"2017-05-25\",\n  \"created\": 1533204620,\n  \"data\": {\n    \"object\": {\n      \"id\": \"cus_123\",\n      \"object\": \"customer\",\n      \"created\": 123456789,\n      \"email\": \"test@stripe.com\",\n      \"livemode\": false,\n      \"metadata\": {}\n    }\n  },\n  \"livemode\": false,\n  \"pending_webhooks\": 1,\n  \"request\": {\n    \"id\": \"req_123\",\n    \"idempotency_key\": \"idempotency-key-123\"\n  },\n  \"type\": \"customer.created\"\n}\n";
    const DOTNET_HEADER: &str = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";

    #[test]
    fn stripe_sdk_fixture_verifies() {
        let h: HeaderMap = [("Stripe-Signature", DOTNET_HEADER)].into_iter().collect();
        let req = SignedRequest {
            headers: &h,
            body: DOTNET_BODY.as_bytes(),
            now_secs: 1533204620,
            tolerance_secs: 300,
        };
        let ok = verify(&req, &[Secret::raw("webhook_secret").unwrap()]).unwrap();
        assert_eq!(ok.idempotency_key.as_deref(), Some("evt_123"));
        let trimmed = DOTNET_BODY.trim_end();
        let req = SignedRequest {
            body: trimmed.as_bytes(),
            ..req
        };
        assert_eq!(
            verify(&req, &[Secret::raw("webhook_secret").unwrap()]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn signed_header_verifies_and_carries_the_event_id() {
        let header = &sign(&Secret::raw(SECRET).unwrap(), 1_700_000_000, BODY)[0].1;
        let ok = check(header, BODY, 1_700_000_000).unwrap();
        assert_eq!(
            ok.idempotency_key.as_deref(),
            Some("evt_1NG8Du2eZvKYlo2CUI79vXWy")
        );
    }

    #[test]
    fn any_v1_passes_and_v0_is_ignored() {
        let good = &sign(&Secret::raw(SECRET).unwrap(), 100, BODY)[0].1;
        let v1 = good.split(",v1=").nth(1).unwrap();
        let header = format!("t=100,v0={v1},v1=00ff,v1={v1}");
        assert!(check(&header, BODY, 100).is_ok());
        let only_v0 = format!("t=100,v0={v1}");
        assert_eq!(
            check(&only_v0, BODY, 100),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
    }

    #[test]
    fn a_v1_that_is_not_hex_does_not_spoil_another() {
        let good = &sign(&Secret::raw(SECRET).unwrap(), 100, BODY)[0].1;
        let v1 = good.split(",v1=").nth(1).unwrap();
        assert!(check(&format!("t=100,v1=not-hex,v1={v1}"), BODY, 100).is_ok());
        assert_eq!(
            check("t=100,v1=not-hex", BODY, 100),
            Err(SignatureError::MalformedHeader(SIGNATURE)),
            "no usable v1 at all is a malformed header"
        );
    }

    #[test]
    fn tolerance_both_directions_and_tampering() {
        let header = &sign(&Secret::raw(SECRET).unwrap(), 1000, BODY)[0].1;
        assert_eq!(
            check(header, BODY, 1301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check(header, BODY, 699),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(check(header, b"{}", 1000), Err(SignatureError::Mismatch));
        assert_eq!(
            check("v1=abcd", BODY, 1000),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
        assert_eq!(
            check("garbage", BODY, 1000),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
    }
}
