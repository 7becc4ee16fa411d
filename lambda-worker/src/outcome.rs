//! What happened to one SQS record, and how failures are classified.
//!
//! Transient failures are retried by SQS redelivery; permanent ones will never succeed and
//! are left for the redrive policy to dead-letter (the failure reason is logged).

/// A record that needs no retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Delivered now.
    Delivered,
    /// Already delivered earlier (a provider retry or an SQS redelivery).
    Duplicate,
}

/// How a failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed later: timeouts, connection errors, 429, 5xx, throttling, a claim held by
    /// another consumer.
    Transient,
    /// Will not succeed by retrying: a malformed envelope, a 4xx from the destination.
    Permanent,
}

/// Why a record failed, safe to log (no secrets, no bodies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Failure {
    pub kind: FailureKind,
    /// Short machine-readable reason (`delivery_status`, `malformed_envelope`, …).
    pub reason: &'static str,
    pub detail: String,
    /// The destination's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The destination's `Retry-After`, in seconds.
    pub retry_after_secs: Option<u32>,
}

impl Failure {
    pub fn transient(reason: &'static str, detail: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Transient,
            reason,
            detail: detail.into(),
            status: None,
            retry_after_secs: None,
        }
    }

    pub fn permanent(reason: &'static str, detail: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Permanent,
            reason,
            detail: detail.into(),
            status: None,
            retry_after_secs: None,
        }
    }
}

/// Classifies a destination's HTTP status: 408, 409, 425, 429 and 5xx are worth retrying.
pub fn status_kind(status: u16) -> FailureKind {
    match status {
        408 | 409 | 425 | 429 => FailureKind::Transient,
        s if s >= 500 => FailureKind::Transient,
        _ => FailureKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        for s in [408, 409, 425, 429, 500, 502, 503, 504] {
            assert_eq!(status_kind(s), FailureKind::Transient, "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(status_kind(s), FailureKind::Permanent, "{s}");
        }
    }
}
