//! How a `sluice` command fails, and the exit code each kind of failure maps to.
//!
//! Every command returns one of these; `main` prints it once (`error: …`) and exits with its
//! code. AWS SDK errors are classified here (unknown queue, rejected credentials, access
//! denied, unreachable endpoint) so every command reports them the same way.
//! A message built here must never contain a secret, a credential or an event body.

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::fmt::Display;
use std::process::ExitCode;

/// Exit code: the command did what was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: an operational failure (AWS error, unreachable endpoint, partial redrive or
/// replay, the edge refused `send`).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad arguments or local configuration (clap's own code for usage errors; also
/// no target, no region, no usable credentials). Nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the queue, bucket, source or message named does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or local configuration: nothing was attempted.
    #[error("{0}")]
    Usage(String),
    /// No usable AWS credentials (missing, expired or rejected).
    #[error("{0}")]
    Credentials(String),
    /// The queue, bucket or message named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// AWS (or the edge) failed, or only part of the work was done.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Credentials(_) => EXIT_USAGE,
            CliError::NotFound(_) => EXIT_NOT_FOUND,
            CliError::Failed(_) => EXIT_FAILED,
        }
    }

    /// The same, as an [`ExitCode`].
    pub fn exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

/// A shorthand for commands.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// AWS error codes meaning "no such queue".
const NO_QUEUE: [&str; 2] = [
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];
/// AWS error codes meaning "no such bucket or key".
const NO_OBJECT: [&str; 3] = ["NoSuchBucket", "NoSuchKey", "NotFound"];
/// AWS error codes meaning the credentials were refused.
const BAD_CREDENTIALS: [&str; 8] = [
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
];

/// Classifies an AWS SDK error from doing `what` (e.g. "read queue <url>").
pub fn aws<E>(what: impl Display, err: SdkError<E, HttpResponse>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or_default().to_string();
    let detail = match &err {
        // A service answer: its code and message, never the raw response.
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => format!(
                    "HTTP {} with an answer that is not this service's protocol",
                    status.map_or("?".to_string(), |s| s.to_string())
                ),
            }
        }
        _ => DisplayErrorContext(&err).to_string(),
    };
    classify(&what.to_string(), &code, &detail, is_dispatch(&err))
}

fn is_dispatch<E, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        err,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
    )
}

/// The classification itself, on plain strings (unit-testable without the SDK).
pub fn classify(what: &str, code: &str, detail: &str, dispatch: bool) -> CliError {
    if NO_QUEUE.contains(&code) {
        return CliError::NotFound(format!("{what}: the queue does not exist ({code})"));
    }
    if NO_OBJECT.contains(&code) {
        return CliError::NotFound(format!("{what}: not found ({code})"));
    }
    if BAD_CREDENTIALS.contains(&code) {
        return CliError::Credentials(format!(
            "{what}: AWS refused the credentials ({code}); check AWS_PROFILE or \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or refresh your session"
        ));
    }
    if code.contains("AccessDenied") {
        return CliError::Failed(format!(
            "{what}: access denied: these credentials lack the permission ({detail})"
        ));
    }
    let lower = detail.to_ascii_lowercase();
    if lower.contains("no credentials") || lower.contains("credentialsnotloaded") {
        return CliError::Credentials(format!("{what}: no AWS credentials ({detail})"));
    }
    if dispatch {
        return CliError::Failed(format!("{what}: cannot reach AWS ({detail})"));
    }
    CliError::Failed(format!("{what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_queues_and_buckets_are_not_found() {
        for code in [
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ] {
            let e = classify("read q", code, "d", false);
            assert_eq!(e.exit_code(), EXIT_NOT_FOUND, "{code}");
            assert!(e.to_string().contains("does not exist"));
        }
        assert_eq!(
            classify("list", "NoSuchBucket", "d", false).exit_code(),
            EXIT_NOT_FOUND
        );
    }

    #[test]
    fn refused_or_missing_credentials_are_configuration_errors() {
        let e = classify("x", "InvalidClientTokenId", "d", false);
        assert!(matches!(e, CliError::Credentials(_)));
        assert_eq!(e.exit_code(), EXIT_USAGE);
        let e = classify(
            "x",
            "",
            "dispatch failure: no credentials in the chain",
            true,
        );
        assert!(matches!(e, CliError::Credentials(_)));
    }

    #[test]
    fn other_failures_are_operational() {
        assert_eq!(
            classify("x", "AccessDenied", "d", false).exit_code(),
            EXIT_FAILED
        );
        let e = classify("x", "", "connection refused", true);
        assert!(e.to_string().contains("cannot reach AWS"), "{e}");
        assert_eq!(e.exit_code(), EXIT_FAILED);
    }
}
