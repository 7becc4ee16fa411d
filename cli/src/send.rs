//! `sluice send`: sign and POST a test webhook, as the source's provider would.
//!
//! Against the local stack it reads the edge URL, scheme and secret from the stack file;
//! against a deployment pass `--url`, `--scheme` and `--secret` (or `SLUICE_SEND_SECRET`).
//! It must never print the secret.

use crate::error::CliError;
use anyhow::{bail, Context};
use clap::Args;
use sluice_protocol::signature::{GenericHmac, SchemeOptions};
use sluice_protocol::Scheme;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The source to send to (as declared in the sources config).
    pub source: String,
    /// The body to send; a small JSON test event when omitted.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The edge's base URL (overrides the stack file), e.g. https://hooks.example.com.
    #[arg(long)]
    pub url: Option<String>,
    /// The source's scheme (overrides the stack file).
    #[arg(long, value_parser = parse_scheme)]
    pub scheme: Option<Scheme>,
    /// The signing secret (overrides the stack file).
    #[arg(long, env = "SLUICE_SEND_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The provider delivery id; a fresh one when omitted (reuse one to simulate a retry).
    #[arg(long)]
    pub id: Option<String>,
    /// Content-Type of the body (default: JSON; form-encoded for twilio).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Generic HMAC settings as JSON (scheme `generic`; overrides the stack file).
    #[arg(long, value_parser = parse_generic)]
    pub generic: Option<GenericHmac>,
}

fn parse_generic(s: &str) -> Result<GenericHmac, String> {
    serde_json::from_str(s).map_err(|e| format!("not a generic HMAC description: {e}"))
}

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown scheme `{s}` (standard-webhooks, github)"))
}

struct Target {
    url: String,
    scheme: Scheme,
    secret: String,
    generic: Option<GenericHmac>,
}

fn from_stack(args: &SendArgs, stack: &Path) -> anyhow::Result<Option<Target>> {
    let Ok(text) = std::fs::read_to_string(stack) else {
        return Ok(None);
    };
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", stack.display()))?;
    let Some(source) = doc["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == args.source.as_str()))
    else {
        let names: Vec<_> = doc["sources"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        bail!(
            "no source `{}` in {} (have: {})",
            args.source,
            stack.display(),
            names.join(", ")
        );
    };
    Ok(Some(Target {
        url: doc["edge_url"].as_str().unwrap_or_default().to_string(),
        scheme: serde_json::from_value(source["scheme"].clone())
            .context("stack file: bad scheme")?,
        secret: source["secret"].as_str().unwrap_or_default().to_string(),
        generic: serde_json::from_value(source["generic"].clone()).ok(),
    }))
}

/// Runs `send`; a local problem (arguments, stack file, body file, secret) is a usage error,
/// an unreachable edge or a refusal an operational failure.
pub async fn run(args: SendArgs, stack: &Path, json: bool) -> Result<(), CliError> {
    let (endpoint, id, status, text) =
        prepare_and_post(&args, stack).await.map_err(|e| match e {
            Failure::Local(e) => CliError::Usage(format!("{e:#}")),
            Failure::Unreachable(e) => CliError::Failed(format!("{e:#}")),
        })?;
    if json {
        let response = serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or(serde_json::Value::String(text.clone()));
        let out = serde_json::json!({
            "url": endpoint,
            "delivery_id": id,
            "status": status,
            "response": response,
        });
        println!("{out:#}");
    } else {
        println!("POST {endpoint} (delivery id {id})");
        println!("{status} {text}");
    }
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the edge refused the event ({status})"
        )))
    }
}

enum Failure {
    Local(anyhow::Error),
    Unreachable(anyhow::Error),
}

async fn prepare_and_post(
    args: &SendArgs,
    stack: &Path,
) -> Result<(String, String, u16, String), Failure> {
    let request = prepare(args, stack).map_err(Failure::Local)?;
    let (endpoint, id, req) = request;
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))
        .map_err(Failure::Unreachable)?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((endpoint, id, status, text))
}

fn prepare(
    args: &SendArgs,
    stack: &Path,
) -> anyhow::Result<(String, String, reqwest::RequestBuilder)> {
    // The stack file describes the local stack: with `--url` the event goes elsewhere, and
    // its scheme and secret must come from the flags too (never a dev secret, silently).
    let stacked = match args.url {
        Some(_) => None,
        None => from_stack(args, stack)?,
    };
    let url = args
        .url
        .clone()
        .or_else(|| stacked.as_ref().map(|t| t.url.clone()))
        .context("no edge URL: pass --url, or run `make dev` to write .dev/stack.json")?;
    let scheme = args
        .scheme
        .or(stacked.as_ref().map(|t| t.scheme))
        .context("no scheme: pass --scheme")?;
    let secret_text = args
        .secret
        .clone()
        .or_else(|| stacked.as_ref().map(|t| t.secret.clone()))
        .context("no secret: pass --secret or set SLUICE_SEND_SECRET")?;
    let secret = scheme
        .parse_secret(&secret_text)
        .map_err(|e| anyhow::anyhow!("the secret is not usable for {scheme}: {e}"))?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("msg_cli_{}_{}", now, std::process::id()));
    let generic = args
        .generic
        .clone()
        .or_else(|| stacked.as_ref().and_then(|t| t.generic.clone()));
    let form = scheme == Scheme::Twilio;
    let body = match &args.file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        // Made from the delivery id alone: a second send with the same `--id` repeats the
        // same bytes, as a provider's retry does (the consumer dead-letters a known id
        // carrying a different body as `validation`).
        None if form => format!("MessageSid=SMsluicetest&Body=sluice+test&Id={id}").into_bytes(),
        None => serde_json::json!({"type": "sluice.test", "id": id})
            .to_string()
            .into_bytes(),
    };
    let content_type = args.content_type.clone().unwrap_or_else(|| {
        if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        }
        .to_string()
    });
    let endpoint = format!("{}/hooks/{}", url.trim_end_matches('/'), args.source);
    let mut req = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", &content_type);
    let options = SchemeOptions {
        public_url: Some(&endpoint),
        generic: generic.as_ref(),
        external_macs: None,
    };
    let signed = scheme
        .sign(&secret, &id, now, &body, &options)
        .map_err(|e| anyhow::anyhow!("cannot sign for {scheme}: {e}"))?;
    for (name, value) in signed {
        req = req.header(name, value);
    }
    Ok((endpoint, id, req.body(body)))
}
