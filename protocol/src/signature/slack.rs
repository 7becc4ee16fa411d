//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{body}`,
//! with a timestamp tolerance. A verified `url_verification` request yields its `challenge`
//! so the edge can answer Slack's handshake (never before verification).

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{
    check_timestamp, json_string_field, required, Secret, SignatureError, SignedRequest, Verified,
};

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";

pub(super) fn verify_with(
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    external: Option<&ExternalMacs>,
) -> Result<Verified, SignatureError> {
    let header = required(req, SIGNATURE)?;
    let ts = required(req, TIMESTAMP)?;
    let candidate = header
        .trim()
        .strip_prefix("v0=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
    check_timestamp(ts, TIMESTAMP, req.now_secs, req.tolerance_secs)?;
    let parts: [&[u8]; 4] = [b"v0:", ts.trim().as_bytes(), b":", req.body];
    mac::verify_any(external, Algorithm::Sha256, secrets, &parts, &[&candidate])?;
    let challenge = (json_string_field(req.body, "type").as_deref() == Some("url_verification"))
        .then(|| json_string_field(req.body, "challenge"))
        .flatten();
    Ok(Verified {
        idempotency_key: json_string_field(req.body, "event_id"),
        challenge,
    })
}

pub(super) fn sign(secret: &Secret, now_secs: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = now_secs.to_string();
    let key = secret.hmac_key().unwrap_or_default();
    let sig = hex::encode(mac::compute(
        Algorithm::Sha256,
        key,
        &[b"v0:", ts.as_bytes(), b":", body],
    ));
    vec![
        (SIGNATURE.to_string(), format!("v0={sig}")),
        (TIMESTAMP.to_string(), ts),
    ]
}

#[cfg(test)]
mod tests {
    fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> Result<Verified, SignatureError> {
        super::verify_with(req, secrets, None)
    }

    use super::*;
    use crate::headers::HeaderMap;

    // The example from Slack's "Verifying requests from Slack" documentation.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1531420618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(h: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, SignatureError> {
        let req = SignedRequest {
            headers: h,
            body,
            now_secs: now,
            tolerance_secs: 300,
        };
        verify(&req, &[Secret::raw(SECRET).unwrap()])
    }

    fn headers(sig: &str, ts: i64) -> HeaderMap {
        [(SIGNATURE, sig.to_string()), (TIMESTAMP, ts.to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn documented_example_verifies_and_is_reproduced() {
        assert!(check(&headers(SIG, TS), BODY, TS).is_ok());
        assert_eq!(sign(&Secret::raw(SECRET).unwrap(), TS, BODY)[0].1, SIG);
    }

    #[test]
    fn stale_future_tampered_and_malformed() {
        assert_eq!(
            check(&headers(SIG, TS), BODY, TS + 301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check(&headers(SIG, TS), BODY, TS - 301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check(&headers(SIG, TS), b"token=x", TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&headers("a2114d", TS), BODY, TS),
            Err(SignatureError::MalformedHeader(SIGNATURE))
        );
    }

    #[test]
    fn url_verification_yields_the_challenge_only_when_verified() {
        let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let s = Secret::raw(SECRET).unwrap();
        let h: HeaderMap = sign(&s, TS, body).into_iter().collect();
        let ok = check(&h, body, TS).unwrap();
        assert_eq!(
            ok.challenge.as_deref(),
            Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        let event = br#"{"type":"event_callback","event_id":"Ev123"}"#;
        let h: HeaderMap = sign(&s, TS, event).into_iter().collect();
        let ok = check(&h, event, TS).unwrap();
        assert_eq!(
            (ok.challenge, ok.idempotency_key.as_deref()),
            (None, Some("Ev123"))
        );
    }
}
