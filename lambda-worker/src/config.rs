//! The consumer's configuration, from its environment (the SAM template sets it in AWS; the
//! local stack sets it for `sluice-local-poller`).
//!
//! - `SLUICE_SOURCES`: the sources JSON shared with the edge (destinations come from it).
//! - `SLUICE_TABLE`: the idempotency table.
//! - `SLUICE_DESTINATION_SECRET_ARN`: optional Secrets Manager secret holding the `whsec_`
//!   destination secret (read once at start-up, see [`crate::destination_secret`]);
//!   deliveries are then signed with Standard Webhooks headers so the destination can
//!   verify them. `SLUICE_DESTINATION_SECRET` gives the secret directly instead (local
//!   stacks); setting both is a configuration error.
//! - `SLUICE_ARCHIVE_BUCKET`: optional; every envelope taken on is kept there under
//!   `archive/` (see [`crate::archive`]) so `sluice replay` can re-enqueue a time window.
//! - `SLUICE_COMPLETED_TTL_SECS` (default 7 days): how long a delivered event is remembered.
//! - `SLUICE_DELIVERY_TIMEOUT_MS` (default 10 000) and `SLUICE_CONCURRENCY` (default 10).
//! - `SLUICE_DLQ_URL`: where permanent failures go at once, with their reason. Without it
//!   they wait for the redrive policy like transient ones.
//! - `SLUICE_QUEUE_URL`: the source queue (for visibility changes); derived from the
//!   record's `eventSourceARN` when unset.
//! - `SLUICE_RETRY_BASE_SECS` (default 5) and `SLUICE_RETRY_CAP_SECS` (default 900): the
//!   backoff of transient failures.
//!
//! Errors name the variable, never its value.

use sluice_protocol::retry::RetryPolicy;
use sluice_protocol::{Scheme, Secret, SourcesConfig};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub sources: SourcesConfig,
    pub table: String,
    pub destination_secret: Option<Secret>,
    pub completed_ttl: Duration,
    pub delivery_timeout: Duration,
    pub concurrency: usize,
    pub dlq_url: Option<String>,
    pub queue_url: Option<String>,
    pub retry: RetryPolicy,
    /// Bucket of the event archive (`archive/…`); no archive when `None`.
    pub archive_bucket: Option<String>,
    /// Secrets Manager secret to read `destination_secret` from at start-up.
    pub destination_secret_arn: Option<String>,
    /// The values of the secrets routes refer to (`secret_arn` header values, signing
    /// secrets), read at start-up; `Debug` shows only their ARNs.
    pub secret_values: crate::routes::SecretValues,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} is not valid: {1}")]
    Invalid(&'static str, String),
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|_| ConfigError::Invalid(name, "expected a whole number".into())),
        _ => Ok(default),
    }
}

impl ConsumerConfig {
    /// A configuration with every optional setting at its default: what [`from_env`] reads
    /// when the variable is unset. No DLQ, archive or destination secret.
    ///
    /// [`from_env`]: ConsumerConfig::from_env
    pub fn new(sources: SourcesConfig, table: &str) -> Self {
        ConsumerConfig {
            sources,
            table: table.to_string(),
            destination_secret: None,
            completed_ttl: Duration::from_secs(7 * 24 * 3600),
            delivery_timeout: Duration::from_millis(10_000),
            concurrency: 10,
            dlq_url: None,
            queue_url: None,
            retry: RetryPolicy::default(),
            archive_bucket: None,
            destination_secret_arn: None,
            secret_values: Default::default(),
        }
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let sources = SourcesConfig::from_json(&var("SLUICE_SOURCES")?)
            .map_err(|e| ConfigError::Invalid("SLUICE_SOURCES", e.to_string()))?;
        let destination_secret = match std::env::var("SLUICE_DESTINATION_SECRET") {
            Ok(v) if !v.is_empty() => {
                Some(Scheme::StandardWebhooks.parse_secret(&v).map_err(|e| {
                    ConfigError::Invalid("SLUICE_DESTINATION_SECRET", e.to_string())
                })?)
            }
            _ => None,
        };
        let destination_secret_arn = optional("SLUICE_DESTINATION_SECRET_ARN");
        if destination_secret.is_some() && destination_secret_arn.is_some() {
            return Err(ConfigError::Invalid(
                "SLUICE_DESTINATION_SECRET_ARN",
                "set either it or SLUICE_DESTINATION_SECRET, not both".into(),
            ));
        }
        let d = ConsumerConfig::new(sources, &var("SLUICE_TABLE")?);
        Ok(ConsumerConfig {
            destination_secret,
            completed_ttl: Duration::from_secs(number(
                "SLUICE_COMPLETED_TTL_SECS",
                d.completed_ttl.as_secs(),
            )?),
            delivery_timeout: Duration::from_millis(number(
                "SLUICE_DELIVERY_TIMEOUT_MS",
                d.delivery_timeout.as_millis() as u64,
            )?),
            concurrency: number("SLUICE_CONCURRENCY", d.concurrency as u64)?.clamp(1, 100) as usize,
            dlq_url: optional("SLUICE_DLQ_URL"),
            queue_url: optional("SLUICE_QUEUE_URL"),
            retry: RetryPolicy {
                base_secs: number("SLUICE_RETRY_BASE_SECS", d.retry.base_secs.into())?
                    .clamp(1, 43_200) as u32,
                cap_secs: number("SLUICE_RETRY_CAP_SECS", d.retry.cap_secs.into())?.clamp(1, 43_200)
                    as u32,
            },
            archive_bucket: optional("SLUICE_ARCHIVE_BUCKET"),
            destination_secret_arn,
            ..d
        })
    }
}
