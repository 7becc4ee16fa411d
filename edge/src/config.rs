//! The edge's configuration, read from the Worker environment.
//!
//! Vars (`wrangler.toml`): `SLUICE_SOURCES` (JSON, see `sluice_protocol::source`),
//! `SQS_QUEUE_URL`, `AWS_REGION`, optional `SQS_ENDPOINT`. Secrets (`wrangler secret put`):
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, and one
//! `SLUICE_SECRET_<SOURCE>` per source. Errors are logged by name, never by value.

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

/// Where and how to reach SQS.
pub struct QueueConfig {
    pub queue_url: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
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

/// The SQS configuration; any missing piece is an edge misconfiguration (500).
pub fn queue(env: &Env) -> Result<QueueConfig, IngestError> {
    let region = required(env, "AWS_REGION", false)?;
    let endpoint = env
        .var("SQS_ENDPOINT")
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("https://sqs.{region}.amazonaws.com"));
    Ok(QueueConfig {
        queue_url: required(env, "SQS_QUEUE_URL", false)?,
        endpoint,
        region,
        access_key_id: required(env, "AWS_ACCESS_KEY_ID", true)?,
        secret_access_key: required(env, "AWS_SECRET_ACCESS_KEY", true)?,
        session_token: env
            .secret("AWS_SESSION_TOKEN")
            .map(|v| v.to_string())
            .ok()
            .filter(|v| !v.is_empty()),
    })
}
