//! Resolving claim-checked bodies: fetch the object from S3 and check its size and SHA-256
//! before anything is delivered. A mismatch is permanent (reason `integrity`): retrying
//! would deliver the same wrong bytes.

use crate::outcome::Failure;
use aws_sdk_s3::operation::get_object::GetObjectError;
use sha2::{Digest, Sha256};
use sluice_protocol::claim_check::BodyRef;

/// Fetches and checks the body `reference` points to.
pub async fn fetch(s3: &aws_sdk_s3::Client, reference: &BodyRef) -> Result<Vec<u8>, Failure> {
    let out = s3
        .get_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .send()
        .await
        .map_err(|e| match e.into_service_error() {
            GetObjectError::NoSuchKey(_) => Failure::permanent(
                "payload_missing",
                format!("s3://{}/{} does not exist", reference.bucket, reference.key),
            ),
            other => Failure::transient(
                "payload_store",
                aws_sdk_s3::error::DisplayErrorContext(&other).to_string(),
            ),
        })?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| Failure::transient("payload_store", format!("reading the object: {e}")))?
        .into_bytes()
        .to_vec();
    check(&bytes, reference)?;
    Ok(bytes)
}

/// Checks size and SHA-256 against the reference.
pub fn check(bytes: &[u8], reference: &BodyRef) -> Result<(), Failure> {
    if bytes.len() as u64 != reference.size {
        return Err(Failure::permanent(
            "integrity",
            format!(
                "payload is {} bytes, the reference says {}",
                bytes.len(),
                reference.size
            ),
        ));
    }
    if hex::encode(Sha256::digest(bytes)) != reference.sha256 {
        return Err(Failure::permanent(
            "integrity",
            "payload SHA-256 does not match the reference",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureKind;

    fn reference(bytes: &[u8]) -> BodyRef {
        BodyRef {
            bucket: "b".into(),
            key: "k".into(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }

    #[test]
    fn tampered_payloads_fail_integrity_permanently() {
        let r = reference(b"hello");
        assert!(check(b"hello", &r).is_ok());
        for bad in [&b"hellO"[..], &b"hello!"[..]] {
            let f = check(bad, &r).unwrap_err();
            assert_eq!((f.kind, f.reason), (FailureKind::Permanent, "integrity"));
        }
    }
}
