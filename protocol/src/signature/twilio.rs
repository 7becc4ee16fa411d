//! Twilio: `X-Twilio-Signature`, base64 HMAC-SHA1 of the full public URL followed by each
//! form parameter's name and value, sorted by name (then value). For JSON bodies Twilio
//! signs the URL alone and puts the body's SHA-256 (hex) in the `bodySHA256` query
//! parameter, which must match. The URL comes from configuration, because the Worker may sit
//! behind a custom domain. Event id from `I-Twilio-Idempotency-Token`.

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{required, Secret, SignatureError, SignedRequest, Verified};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

const SIGNATURE: &str = "x-twilio-signature";

/// The string Twilio signs for `url` and `body`.
fn signed_content(url: &str, body: &[u8]) -> Result<String, SignatureError> {
    let body_sha = url::query_param(url, "bodySHA256");
    if let Some(expected) = body_sha {
        // JSON-body variant: the URL alone is signed; the body is bound by its hash.
        let actual = hex::encode(Sha256::digest(body));
        if !actual.eq_ignore_ascii_case(&expected) {
            return Err(SignatureError::Mismatch);
        }
        return Ok(url.to_string());
    }
    let mut params: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        params
            .entry(k.into_owned())
            .or_default()
            .insert(v.into_owned());
    }
    let mut out = url.to_string();
    for (k, values) in params {
        for v in values {
            out.push_str(&k);
            out.push_str(&v);
        }
    }
    Ok(out)
}

mod url {
    /// The first value of query parameter `name` in `url`.
    pub fn query_param(url: &str, name: &str) -> Option<String> {
        let query = url.split_once('?')?.1.split('#').next()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

pub(super) fn verify_with(
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    url: &str,
    external: Option<&ExternalMacs>,
) -> Result<Verified, SignatureError> {
    let header = required(req, SIGNATURE)?;
    let candidate = B64
        .decode(header.trim())
        .map_err(|_| SignatureError::MalformedHeader(SIGNATURE))?;
    let content = signed_content(url, req.body)?;
    mac::verify_any(
        external,
        Algorithm::Sha1,
        secrets,
        &[content.as_bytes()],
        &[&candidate],
    )?;
    Ok(Verified {
        idempotency_key: req
            .headers
            .get("i-twilio-idempotency-token")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        challenge: None,
    })
}

pub(super) fn sign(secret: &Secret, id: &str, url: &str, body: &[u8]) -> Vec<(String, String)> {
    let key = secret.hmac_key().unwrap_or_default();
    let content = signed_content(url, body).unwrap_or_default();
    vec![
        (
            SIGNATURE.to_string(),
            B64.encode(mac::compute(Algorithm::Sha1, key, &[content.as_bytes()])),
        ),
        ("i-twilio-idempotency-token".to_string(), id.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    fn verify(
        req: &SignedRequest<'_>,
        secrets: &[Secret],
        url: &str,
    ) -> Result<Verified, SignatureError> {
        super::verify_with(req, secrets, url, None)
    }

    use super::*;
    use crate::headers::HeaderMap;

    // The example from Twilio's webhook security documentation.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &[u8] = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";

    fn check(sig: &str, url: &str, body: &[u8]) -> Result<Verified, SignatureError> {
        let h: HeaderMap = [(SIGNATURE, sig)].into_iter().collect();
        let req = SignedRequest {
            headers: &h,
            body,
            now_secs: 0,
            tolerance_secs: 300,
        };
        verify(&req, &[Secret::raw(TOKEN).unwrap()], url)
    }

    #[test]
    fn form_parameters_are_sorted_into_the_signed_content() {
        assert_eq!(
            signed_content(URL, BODY).unwrap(),
            "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212"
        );
        // The signature Twilio's documentation (and its RequestValidator) gives for it.
        let sig = &sign(&Secret::raw(TOKEN).unwrap(), "t", URL, BODY)[0].1;
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(check(sig, URL, BODY).is_ok());
        // Parameter order on the wire does not matter.
        let reordered = b"To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=%2B12349013030&CallSid=CA1234567890ABCDE";
        assert!(check(sig, URL, reordered).is_ok());
        assert_eq!(
            check(sig, URL, b"CallSid=CA1"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(sig, "https://evil.example/myapp.php?foo=1&bar=2", BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn twilio_python_fixtures_verify() {
        // twilio-python tests/unit/test_request_validator.py.
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        assert!(check("RSOYDt4T1cUTdK1PDd93/VVr8B8=", URL, body).is_ok());
        assert!(check(
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            body
        )
        .is_ok());
        // Repeated keys sort by key, then by value.
        let dup = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        assert!(check("IK+Dwps556ElfBT0I3Rgjkr1wJU=", URL, dup).is_ok());
        // JSON body bound through bodySHA256.
        let json = br#"{"property": "value", "boolean": true}"#;
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert!(check("a9nBmqA0ju/hNViExpshrM61xv4=", url, json).is_ok());
    }

    #[test]
    fn json_bodies_are_bound_by_body_sha256() {
        let body = br#"{"property":"value","boolean":true}"#;
        let url = format!(
            "https://mycompany.com/myapp?bodySHA256={}",
            hex::encode(Sha256::digest(body))
        );
        let sig = &sign(&Secret::raw(TOKEN).unwrap(), "t", &url, body)[0].1;
        assert!(check(sig, &url, body).is_ok());
        assert_eq!(
            check(sig, &url, br#"{"property":"other"}"#),
            Err(SignatureError::Mismatch)
        );
    }
}
