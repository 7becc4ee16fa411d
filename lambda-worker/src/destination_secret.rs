//! The destination signing secret from AWS Secrets Manager, read once at start-up.
//!
//! The secret's value is a `whsec_…` Standard Webhooks secret (a SecretString). A failure
//! to read or parse it stops the consumer before it takes any record (a Lambda init
//! error), so nothing is ever delivered unsigned by accident. Errors name the secret's ARN
//! and the cause, never the value. To rotate: store the new value, then let new execution
//! environments pick it up (or update the function's configuration to recycle them), with
//! the destination accepting both secrets meanwhile.

use sluice_protocol::{Scheme, Secret};

#[derive(Debug, thiserror::Error)]
pub enum DestinationSecretError {
    #[error("reading destination secret {arn}: {detail}")]
    Read { arn: String, detail: String },
    #[error("destination secret {arn} has no SecretString")]
    NotAString { arn: String },
    #[error("destination secret {arn} is not a valid whsec_ secret: {detail}")]
    Invalid { arn: String, detail: String },
}

/// A secret's SecretString, trimmed (also what route secrets are read with).
pub async fn read_string(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, DestinationSecretError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| DestinationSecretError::Read {
            arn: arn.to_string(),
            detail: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    out.secret_string()
        .map(|v| v.trim().to_string())
        .ok_or_else(|| DestinationSecretError::NotAString {
            arn: arn.to_string(),
        })
}

/// Fetches and parses the secret `arn` names.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<Secret, DestinationSecretError> {
    let value = read_string(client, arn).await?;
    Scheme::StandardWebhooks
        .parse_secret(&value)
        .map_err(|e| DestinationSecretError::Invalid {
            arn: arn.to_string(),
            detail: e.to_string(),
        })
}
