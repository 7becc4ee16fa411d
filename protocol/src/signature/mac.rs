//! HMAC over a sequence of byte slices with a choice of hash, compared in constant time.
//!
//! The single place MACs are computed and compared: comparison goes through `hmac`'s
//! `verify_slice` (constant-time), or `subtle`'s `ct_eq` for a MAC the caller computed
//! ([`super::ExternalMacs`]), never `==`.

use super::external_mac::{ExternalMacs, Lookup};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The hash under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

fn with<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <M as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The MAC of the concatenated `parts`.
pub fn compute(alg: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Algorithm::Sha1 => with::<Hmac<sha1::Sha1>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::Sha256 => with::<Hmac<sha2::Sha256>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::Sha512 => with::<Hmac<sha2::Sha512>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

/// Whether `candidate` is the MAC of `parts`, compared in constant time.
pub fn verify(alg: Algorithm, key: &[u8], parts: &[&[u8]], candidate: &[u8]) -> bool {
    match alg {
        Algorithm::Sha1 => with::<Hmac<sha1::Sha1>>(key, parts)
            .verify_slice(candidate)
            .is_ok(),
        Algorithm::Sha256 => with::<Hmac<sha2::Sha256>>(key, parts)
            .verify_slice(candidate)
            .is_ok(),
        Algorithm::Sha512 => with::<Hmac<sha2::Sha512>>(key, parts)
            .verify_slice(candidate)
            .is_ok(),
    }
}

/// Like [`verify`], with the MAC computed outside when `external` is given (see
/// [`super::external_mac`]); the comparison is constant-time either way.
pub(crate) fn verify_with(
    external: Option<&ExternalMacs>,
    alg: Algorithm,
    key: &[u8],
    parts: &[&[u8]],
    candidate: &[u8],
) -> bool {
    let Some(external) = external else {
        return verify(alg, key, parts, candidate);
    };
    match external.lookup(alg, key, parts) {
        // `ct_eq` on slices is false for different lengths, and constant-time otherwise.
        Lookup::Answer(mac) => bool::from(mac.ct_eq(candidate)),
        Lookup::Recorded | Lookup::Missing => false,
    }
}

/// `Ok` when any of `candidates` is the MAC of `parts` under any HMAC secret in `secrets`
/// (each comparison constant-time); [`SignatureError::Mismatch`] otherwise.
pub(crate) fn verify_any(
    external: Option<&ExternalMacs>,
    alg: Algorithm,
    secrets: &[super::Secret],
    parts: &[&[u8]],
    candidates: &[&[u8]],
) -> Result<(), super::SignatureError> {
    let ok = secrets
        .iter()
        .filter_map(super::Secret::hmac_key)
        .any(|key| {
            candidates
                .iter()
                .any(|c| verify_with(external, alg, key, parts, c))
        });
    if ok {
        Ok(())
    } else {
        Err(super::SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = compute(
            Algorithm::Sha256,
            b"Jefe",
            &[b"what do ya want ", b"for nothing?"],
        );
        assert_eq!(
            hex::encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(
            Algorithm::Sha256,
            b"Jefe",
            &[b"what do ya want for nothing?"],
            &mac
        ));
        assert!(!verify(
            Algorithm::Sha256,
            b"Jefe",
            &[b"what do ya want for nothing!"],
            &mac
        ));
        assert!(!verify(Algorithm::Sha256, b"Jefe", &[b"x"], &mac[..16]));
    }
}
