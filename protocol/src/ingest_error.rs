//! Every reason the edge refuses a request, mapped to an HTTP status and a stable error code
//! in this one place.
//!
//! Messages are safe to show to the caller: they never contain a secret, a signature or
//! which bytes of a signature differed.

use crate::signature::SignatureError;

/// Why a request to the edge was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("no route for this path")]
    NotFound,
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("method not allowed; use POST")]
    MethodNotAllowed,
    #[error("body larger than this source's limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("content type not accepted by this source")]
    UnsupportedContentType,
    #[error("body is not well-formed JSON")]
    InvalidJson,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("source is misconfigured; the operator has been told")]
    SourceMisconfigured,
    #[error("the edge is misconfigured; the operator has been told")]
    EdgeMisconfigured,
    #[error("queue unavailable; retry later")]
    QueueUnavailable,
}

impl IngestError {
    /// The HTTP status the edge answers with.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::NotFound | IngestError::UnknownSource(_) => 404,
            IngestError::MethodNotAllowed => 405,
            IngestError::PayloadTooLarge { .. } => 413,
            IngestError::UnsupportedContentType => 415,
            IngestError::Signature(SignatureError::MalformedHeader(_)) => 400,
            IngestError::InvalidJson => 400,
            IngestError::Signature(SignatureError::NoSecret | SignatureError::NotConfigured(_)) => {
                500
            }
            IngestError::Signature(_) => 401,
            IngestError::SourceMisconfigured | IngestError::EdgeMisconfigured => 500,
            IngestError::QueueUnavailable => 503,
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::NotFound => "not_found",
            IngestError::UnknownSource(_) => "unknown_source",
            IngestError::MethodNotAllowed => "method_not_allowed",
            IngestError::PayloadTooLarge { .. } => "payload_too_large",
            IngestError::UnsupportedContentType => "unsupported_media_type",
            IngestError::Signature(SignatureError::MissingHeader(_)) => "missing_signature",
            IngestError::Signature(SignatureError::MalformedHeader(_)) => "malformed_signature",
            IngestError::Signature(SignatureError::Mismatch) => "invalid_signature",
            IngestError::Signature(SignatureError::TimestampOutOfTolerance) => {
                "timestamp_out_of_tolerance"
            }
            IngestError::InvalidJson => "invalid_json",
            IngestError::Signature(SignatureError::NoSecret | SignatureError::NotConfigured(_)) => {
                "source_misconfigured"
            }
            IngestError::SourceMisconfigured => "source_misconfigured",
            IngestError::EdgeMisconfigured => "edge_misconfigured",
            IngestError::QueueUnavailable => "queue_unavailable",
        }
    }

    /// The JSON body: `{"error": {"code": "...", "message": "..."}}`.
    pub fn to_json(&self) -> String {
        let message = match self {
            // A 401 says no more than its code: never which part of the signature failed,
            // nor which header was missing.
            IngestError::Signature(SignatureError::Mismatch) => {
                "signature verification failed".to_string()
            }
            IngestError::Signature(SignatureError::MissingHeader(_)) => {
                "the request is not signed as this source requires".to_string()
            }
            IngestError::Signature(SignatureError::NoSecret | SignatureError::NotConfigured(_)) => {
                IngestError::SourceMisconfigured.to_string()
            }
            other => other.to_string(),
        };
        serde_json::json!({"error": {"code": self.code(), "message": message}}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (
                IngestError::UnknownSource("x".into()),
                404,
                "unknown_source",
            ),
            (IngestError::MethodNotAllowed, 405, "method_not_allowed"),
            (
                IngestError::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                IngestError::UnsupportedContentType,
                415,
                "unsupported_media_type",
            ),
            (
                SignatureError::MissingHeader("h").into(),
                401,
                "missing_signature",
            ),
            (
                SignatureError::MalformedHeader("h").into(),
                400,
                "malformed_signature",
            ),
            (SignatureError::Mismatch.into(), 401, "invalid_signature"),
            (
                SignatureError::TimestampOutOfTolerance.into(),
                401,
                "timestamp_out_of_tolerance",
            ),
            (SignatureError::NoSecret.into(), 500, "source_misconfigured"),
            (IngestError::QueueUnavailable, 503, "queue_unavailable"),
            (IngestError::InvalidJson, 400, "invalid_json"),
            (
                SignatureError::NotConfigured("public_url").into(),
                500,
                "source_misconfigured",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
            assert_eq!(v["error"]["code"], code);
            assert!(v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    }

    /// 401s name no header, value or part of the signature: their code is all they say.
    #[test]
    fn unauthorised_answers_say_no_more_than_their_code() {
        for err in [
            IngestError::from(SignatureError::MissingHeader("webhook-timestamp")),
            IngestError::from(SignatureError::Mismatch),
        ] {
            let json = err.to_json();
            assert_eq!(err.status(), 401);
            assert!(!json.contains("webhook"), "{json}");
        }
    }
}
