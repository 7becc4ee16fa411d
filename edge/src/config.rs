//! The edge's configuration, read from the Worker environment.
//!
//! Vars (`wrangler.toml`): `SLUICE_SOURCES` (JSON, see `sluice_protocol::source`),
//! `SQS_QUEUE_URL`, `AWS_REGION`, `PAYLOAD_BUCKET`, optional `SQS_ENDPOINT`, `S3_ENDPOINT`,
//! `INLINE_THRESHOLD_BYTES`. Secrets (`wrangler secret put`):
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, and one
//! `SLUICE_SECRET_<SOURCE>` per source. Errors are logged by name, never by value.

use crate::aws::AwsAuth;
use sluice_protocol::claim_check::DEFAULT_INLINE_THRESHOLD;
use sluice_protocol::{IngestError, Secret, SourceConfig, SourcesConfig};
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

thread_local! {
    /// The parsed sources, kept for the isolate's lifetime and re-parsed if the var changes.
    static SOURCES: RefCell<Option<(String, Rc<SourcesConfig>)>> = const { RefCell::new(None) };
}

/// The configured sources, parsed once per isolate.
pub fn sources(env: &Env) -> Result<Rc<SourcesConfig>, IngestError> {
    let raw = env
        .var("SLUICE_SOURCES")
        .map(|v| v.to_string())
        .map_err(|_| {
            worker::console_error!("config: var SLUICE_SOURCES is not set");
            IngestError::EdgeMisconfigured
        })?;
    if let Some(cached) = SOURCES.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(text, _)| *text == raw)
            .map(|(_, parsed)| parsed.clone())
    }) {
        return Ok(cached);
    }
    let parsed = Rc::new(SourcesConfig::from_json(&raw).map_err(|e| {
        worker::console_error!("config: SLUICE_SOURCES: {}", e);
        IngestError::EdgeMisconfigured
    })?);
    SOURCES.with(|c| *c.borrow_mut() = Some((raw, parsed.clone())));
    Ok(parsed)
}

/// The source's signing secrets. A missing or unparsable secret fails closed.
pub fn source_secrets(env: &Env, source: &SourceConfig) -> Result<Vec<Secret>, IngestError> {
    let var = source.secret_var();
    let raw = env.secret(&var).map(|s| s.to_string()).map_err(|_| {
        worker::console_error!(
            "config: source `{}`: secret {} is not set",
            source.name,
            var
        );
        IngestError::SourceMisconfigured
    })?;
    source.scheme.parse_secrets(&raw).map_err(|e| {
        worker::console_error!("config: source `{}`: secret {}: {}", source.name, var, e);
        IngestError::SourceMisconfigured
    })
}

/// Where to reach SQS.
pub struct QueueConfig {
    pub queue_url: String,
    pub endpoint: String,
}

/// Where claim-checked bodies go, and from what size.
pub struct PayloadConfig {
    /// `None` when no bucket is configured: large bodies are then refused with 413.
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: String,
    pub inline_threshold: usize,
}

impl PayloadConfig {
    /// The object's URL: path-style on a custom endpoint (local stack), virtual-hosted on AWS.
    pub fn object_url(&self, key: &str) -> String {
        let bucket = self.bucket.as_deref().unwrap_or_default();
        match &self.endpoint {
            Some(ep) => format!("{}/{bucket}/{key}", ep.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region),
        }
    }
}

fn required(env: &Env, name: &str, secret: bool) -> Result<String, IngestError> {
    let value = if secret {
        env.secret(name).map(|v| v.to_string())
    } else {
        env.var(name).map(|v| v.to_string())
    };
    value.ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        worker::console_error!("config: {} is not set", name);
        IngestError::EdgeMisconfigured
    })
}

fn optional(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
}

/// Credentials and region; any missing piece is an edge misconfiguration (500).
pub fn auth(env: &Env) -> Result<AwsAuth, IngestError> {
    Ok(AwsAuth {
        region: required(env, "AWS_REGION", false)?,
        access_key_id: required(env, "AWS_ACCESS_KEY_ID", true)?,
        secret_access_key: required(env, "AWS_SECRET_ACCESS_KEY", true)?,
        session_token: env
            .secret("AWS_SESSION_TOKEN")
            .map(|v| v.to_string())
            .ok()
            .filter(|v| !v.is_empty()),
    })
}

/// The SQS configuration.
pub fn queue(env: &Env, auth: &AwsAuth) -> Result<QueueConfig, IngestError> {
    Ok(QueueConfig {
        queue_url: required(env, "SQS_QUEUE_URL", false)?,
        endpoint: optional(env, "SQS_ENDPOINT")
            .unwrap_or_else(|| format!("https://sqs.{}.amazonaws.com", auth.region)),
    })
}

/// The claim-check configuration: `PAYLOAD_BUCKET`, optional `S3_ENDPOINT` and
/// `INLINE_THRESHOLD_BYTES`.
pub fn payload(env: &Env, auth: &AwsAuth) -> Result<PayloadConfig, IngestError> {
    let inline_threshold = match optional(env, "INLINE_THRESHOLD_BYTES") {
        None => DEFAULT_INLINE_THRESHOLD,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 && n <= DEFAULT_INLINE_THRESHOLD => n,
            _ => {
                worker::console_error!(
                    "config: INLINE_THRESHOLD_BYTES must be 1..={}",
                    DEFAULT_INLINE_THRESHOLD
                );
                return Err(IngestError::EdgeMisconfigured);
            }
        },
    };
    Ok(PayloadConfig {
        bucket: optional(env, "PAYLOAD_BUCKET"),
        endpoint: optional(env, "S3_ENDPOINT"),
        region: auth.region.clone(),
        inline_threshold,
    })
}
