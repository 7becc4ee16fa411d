//! `sluice send`: sign and POST a test webhook.

use anyhow::{bail, Context};
use clap::Args;
use sluice_protocol::signature::{GenericHmac, SchemeOptions};
use sluice_protocol::Scheme;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The source to send to (as declared in the sources config).
    pub source: String,
    /// The body to send; a small JSON test event when omitted.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The stack description written by `make dev`.
    #[arg(long, default_value = ".dev/stack.json")]
    pub stack: PathBuf,
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

fn from_stack(args: &SendArgs) -> anyhow::Result<Option<Target>> {
    let Ok(text) = std::fs::read_to_string(&args.stack) else {
        return Ok(None);
    };
    let stack: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", args.stack.display()))?;
    let Some(source) = stack["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == args.source.as_str()))
    else {
        let names: Vec<_> = stack["sources"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        bail!(
            "no source `{}` in {} (have: {})",
            args.source,
            args.stack.display(),
            names.join(", ")
        );
    };
    Ok(Some(Target {
        url: stack["edge_url"].as_str().unwrap_or_default().to_string(),
        scheme: serde_json::from_value(source["scheme"].clone())
            .context("stack file: bad scheme")?,
        secret: source["secret"].as_str().unwrap_or_default().to_string(),
        generic: serde_json::from_value(source["generic"].clone()).ok(),
    }))
}

pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let stacked = from_stack(&args)?;
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
        None if form => format!("MessageSid=SM{now}&Body=sluice+test&Id={id}").into_bytes(),
        None => serde_json::json!({"type": "sluice.test", "id": id, "sent_at": now})
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
    };
    let signed = scheme
        .sign(&secret, &id, now, &body, &options)
        .map_err(|e| anyhow::anyhow!("cannot sign for {scheme}: {e}"))?;
    for (name, value) in signed {
        req = req.header(name, value);
    }
    let resp = req
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("POST {endpoint} (delivery id {id})");
    println!("{} {}", status.as_u16(), text);
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
