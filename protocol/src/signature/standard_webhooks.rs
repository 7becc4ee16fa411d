//! Standard Webhooks (<https://www.standardwebhooks.com>).
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{body}`. The `webhook-signature`
//! header holds space-separated entries: `v1,<base64 HMAC-SHA256>` for `whsec_` secrets and
//! `v1a,<base64 ed25519>` for `whpk_` public keys. Any entry matching any configured secret
//! passes (rotation on either side).

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{check_timestamp, required, Secret, SignatureError, SignedRequest, Verified};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

pub(super) fn verify_with(
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    external: Option<&ExternalMacs>,
) -> Result<Verified, SignatureError> {
    let id = required(req, ID)?;
    let timestamp = required(req, TIMESTAMP)?;
    let signatures = required(req, SIGNATURE)?;
    if id.is_empty() {
        return Err(SignatureError::MalformedHeader(ID));
    }
    check_timestamp(timestamp, TIMESTAMP, req.now_secs, req.tolerance_secs)?;
    let timestamp = timestamp.trim();

    let mut v1 = Vec::new();
    let mut v1a = Vec::new();
    for entry in signatures.split(' ').filter(|e| !e.is_empty()) {
        let (version, sig) = entry
            .split_once(',')
            .ok_or(SignatureError::MalformedHeader(SIGNATURE))?;
        let bytes = B64
            .decode(sig)
            .map_err(|_| SignatureError::MalformedHeader(SIGNATURE))?;
        match version {
            "v1" => v1.push(bytes),
            "v1a" => v1a.push(bytes),
            _ => {} // Unknown versions are for other verifiers.
        }
    }
    if v1.is_empty() && v1a.is_empty() {
        return Err(SignatureError::MalformedHeader(SIGNATURE));
    }

    let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", req.body];
    let ok = secrets.iter().any(|secret| match secret {
        Secret::Hmac(key) => v1
            .iter()
            .any(|candidate| mac::verify_with(external, Algorithm::Sha256, key, &parts, candidate)),
        Secret::Ed25519Public(pk) => {
            let Ok(key) = VerifyingKey::from_bytes(pk) else {
                return false;
            };
            let message = parts.concat();
            v1a.iter().any(|candidate| {
                ed25519_dalek::Signature::from_slice(candidate)
                    .is_ok_and(|sig| key.verify_strict(&message, &sig).is_ok())
            })
        }
        Secret::Ed25519Private(_) => false,
    });
    if ok {
        Ok(Verified {
            idempotency_key: Some(id.to_string()),
            challenge: None,
        })
    } else {
        Err(SignatureError::Mismatch)
    }
}

pub(super) fn sign(secret: &Secret, id: &str, now_secs: i64, body: &[u8]) -> Vec<(String, String)> {
    let timestamp = now_secs.to_string();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    let signature = match secret {
        Secret::Hmac(key) => format!(
            "v1,{}",
            B64.encode(mac::compute(Algorithm::Sha256, key, &parts))
        ),
        Secret::Ed25519Private(seed) => {
            let key = SigningKey::from_bytes(seed);
            format!("v1a,{}", B64.encode(key.sign(&parts.concat()).to_bytes()))
        }
        // A public key cannot sign: emit an entry that never verifies.
        Secret::Ed25519Public(_) => "v1a,".to_string(),
    };
    vec![
        (ID.to_string(), id.to_string()),
        (TIMESTAMP.to_string(), timestamp),
        (SIGNATURE.to_string(), signature),
    ]
}

#[cfg(test)]
mod tests {
    fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> Result<Verified, SignatureError> {
        super::verify_with(req, secrets, None)
    }

    use super::*;
    use crate::headers::HeaderMap;
    use crate::signature::ed25519_pair;

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

    fn req<'a>(h: &'a HeaderMap, body: &'a [u8], now: i64) -> SignedRequest<'a> {
        SignedRequest {
            headers: h,
            body,
            now_secs: now,
            tolerance_secs: 300,
        }
    }

    fn secrets() -> Vec<Secret> {
        vec![Secret::standard_webhooks(SECRET).unwrap()]
    }

    #[test]
    fn published_vector_verifies_and_is_reproduced() {
        let h = headers(SIG, TS);
        let ok = verify(&req(&h, BODY, TS), &secrets()).unwrap();
        assert_eq!(ok.idempotency_key.as_deref(), Some(MSG_ID));
        assert_eq!(sign(&secrets()[0], MSG_ID, TS, BODY)[2].1, SIG);
    }

    #[test]
    fn any_of_several_signatures_passes() {
        let h = headers(&format!("v1,Zm9vYmFy v1a,Zm9vYmFy {SIG}"), TS);
        assert!(verify(&req(&h, BODY, TS), &secrets()).is_ok());
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let h = headers(SIG, TS);
        for now in [TS + 301, TS - 301] {
            assert_eq!(
                verify(&req(&h, BODY, now), &secrets()),
                Err(SignatureError::TimestampOutOfTolerance)
            );
        }
        assert!(verify(&req(&h, BODY, TS + 300), &secrets()).is_ok());
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let h = headers(SIG, TS);
        assert_eq!(
            verify(&req(&h, br#"{"test": 2432232315}"#, TS), &secrets()),
            Err(SignatureError::Mismatch)
        );
        let other = vec![Secret::standard_webhooks("whsec_c2VjcmV0").unwrap()];
        assert_eq!(
            verify(&req(&h, BODY, TS), &other),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v1a_vector_from_the_standard_webhooks_js_tests() {
        // standard-webhooks PR #308 (libraries/javascript/src/webhook.test.ts): seed 32 x 0x01,
        // `whsk_` in the 64-byte seed||public layout; same message as the v1 vector.
        let sk = "whsk_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA==";
        let pk = "whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=";
        let sig = "v1a,Ykcu7AtGZGmZxFEH1Gaa2Nd7feY/CTuruoL4fqgnKwfbHU4DhemoVHZdvGfIvKvn4BIgwktLGGPGIr/i9nK7AA==";
        let h = headers(sig, TS);
        assert!(verify(
            &req(&h, BODY, TS),
            &[Secret::standard_webhooks(pk).unwrap()]
        )
        .is_ok());
        assert_eq!(
            sign(&Secret::standard_webhooks(sk).unwrap(), MSG_ID, TS, BODY)[2].1,
            sig
        );
    }

    #[test]
    fn ed25519_v1a_verifies_with_the_public_key_only() {
        let (sk, pk) = ed25519_pair([42; 32]);
        let signer = Secret::standard_webhooks(&sk).unwrap();
        let verifier = vec![Secret::standard_webhooks(&pk).unwrap()];
        let h: HeaderMap = sign(&signer, "msg_1", TS, BODY).into_iter().collect();
        assert!(h.get("webhook-signature").unwrap().starts_with("v1a,"));
        assert!(verify(&req(&h, BODY, TS), &verifier).is_ok());
        assert_eq!(
            verify(&req(&h, b"tampered", TS), &verifier),
            Err(SignatureError::Mismatch)
        );
        let (_, other_pk) = ed25519_pair([43; 32]);
        let wrong = vec![Secret::standard_webhooks(&other_pk).unwrap()];
        assert_eq!(
            verify(&req(&h, BODY, TS), &wrong),
            Err(SignatureError::Mismatch)
        );
        // An HMAC secret never accepts an ed25519 signature, and the reverse.
        assert_eq!(
            verify(&req(&h, BODY, TS), &secrets()),
            Err(SignatureError::Mismatch)
        );
        let h = headers(SIG, TS);
        assert_eq!(
            verify(&req(&h, BODY, TS), &verifier),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_and_missing_headers_are_named() {
        for bad in ["garbage", "v1,***"] {
            let h = headers(bad, TS);
            assert_eq!(
                verify(&req(&h, BODY, TS), &secrets()),
                Err(SignatureError::MalformedHeader(SIGNATURE))
            );
        }
        let h: HeaderMap = headers(SIG, TS).iter().filter(|(n, _)| *n != ID).collect();
        assert_eq!(
            verify(&req(&h, BODY, TS), &secrets()),
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
            verify(&req(&h, BODY, TS), &secrets()),
            Err(SignatureError::MalformedHeader(TIMESTAMP))
        );
    }
}
