//! `sluice config check FILE`: validates a sources file offline, before `sam deploy` or
//! `wrangler deploy`, with exactly the rules and messages of the edge and the consumer
//! ([`SourcesConfig::from_json`]), and summarises what it declares: each source's scheme and
//! destinations (name, URL, filter, header names, own signing secret, timeout) and every
//! Secrets Manager ARN the consumer will need to read.
//!
//! The file holds the `{"sources": [...]}` document, or that document quoted as one JSON
//! string (as kept for a SAM parameter). [`load`] is also how `replay --sources-file` reads
//! a sources file.
//!
//! This module needs no AWS target, and it must never print a header value (plain or not),
//! a URL's userinfo, query string or fragment, or a secret: it never reads a secret, the
//! environment or the network. `{"env": "VAR"}` references are listed by name only; the
//! consumer resolves them, in its own environment.

use crate::error::{CliError, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};
use sluice_protocol::destination::{HeaderValue, SecretRef};
use sluice_protocol::{ConfigError, DestinationConfig, Scheme, SourcesConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The most a CloudFormation parameter (the template's `Sources`) holds.
pub const PARAMETER_LIMIT_BYTES: usize = 4096;

/// What `redact_url` puts in place of a URL's userinfo, query string or fragment.
const REDACTED: &str = "***";

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a sources file offline (the edge's and the consumer's rules and messages)
    /// and summarise its sources, destinations, filters and referenced secrets.
    ///
    /// Needs no AWS target. Exit 0 when valid, 2 when not (or when the file cannot be
    /// read). URLs are shown without userinfo or query string, headers by name only.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The sources file: the `{"sources": [...]}` document, or that document as one JSON
    /// string (the SAM parameter's value, quoted).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// A validated sources file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: SourcesConfig,
    /// True when the document was quoted as a JSON string.
    pub quoted: bool,
    /// Size of the document in compact JSON: what a SAM parameter would hold.
    pub compact_bytes: usize,
}

/// Why a sources file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The file could not be read.
    Read(String),
    /// The edge and the consumer would refuse it.
    Invalid(ConfigError),
}

/// Parses and validates `text`: the document, or that document as a JSON string.
pub fn parse(text: &str) -> Result<Loaded, ConfigError> {
    if let Ok(Value::String(inner)) = serde_json::from_str::<Value>(text) {
        let config = SourcesConfig::from_json(&inner)?;
        return Ok(Loaded {
            config,
            quoted: true,
            compact_bytes: compact_len(&inner),
        });
    }
    let config = SourcesConfig::from_json(text)?;
    Ok(Loaded {
        config,
        quoted: false,
        compact_bytes: compact_len(text),
    })
}

fn compact_len(text: &str) -> usize {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string(&v).ok())
        .map_or(text.len(), |s| s.len())
}

/// Reads and validates the sources file at `path`.
pub fn try_load(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LoadError::Read(format!("cannot read sources file {}: {e}", path.display()))
    })?;
    parse(&text).map_err(LoadError::Invalid)
}

/// [`try_load`], failing as a usage error (exit 2) whose message names the file.
pub fn load(path: &Path) -> Result<Loaded> {
    try_load(path).map_err(|e| CliError::Usage(describe_error(path, &e)))
}

fn describe_error(path: &Path, e: &LoadError) -> String {
    match e {
        LoadError::Read(message) => message.clone(),
        LoadError::Invalid(e) => format!("{}: {e}", path.display()),
    }
}

/// `url` without its userinfo, query string and fragment (each replaced by `***`): they
/// may carry credentials. The scheme, host, port and path are kept.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_string(),
    };
    let (path, after) = match tail.find(['?', '#']) {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(&host);
    out.push_str(path);
    if after.starts_with('?') {
        out.push('?');
        out.push_str(REDACTED);
    }
    if after.contains('#') {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

/// One static header, by name: what kind of value it has, never the value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeaderSummary {
    pub name: String,
    /// `plain`, `secret_arn` or `env`.
    pub value: &'static str,
    /// The Secrets Manager ARN the value is read from (`secret_arn` headers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// The consumer's environment variable the value is read from (`env` headers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// One destination as the summary shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DestinationSummary {
    pub name: String,
    /// The URL, userinfo, query string and fragment redacted.
    pub url: String,
    /// The filter document; `null`: every event.
    pub filter: Option<Value>,
    /// True when the filter looks at the body (a claim-checked body is then read from S3).
    pub filter_reads_body: bool,
    pub headers: Vec<HeaderSummary>,
    /// Its own signing secret; `null`: the consumer-wide destination secret.
    pub signing_secret_arn: Option<String>,
    /// Its own delivery timeout; `null`: the consumer's global one.
    pub timeout_ms: Option<u64>,
}

/// One source as the summary shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceSummary {
    pub name: String,
    pub scheme: Scheme,
    /// The Worker secret / environment variable holding its signing secrets (a name).
    pub secret_var: String,
    pub destinations: Vec<DestinationSummary>,
}

/// A header value read from the consumer's environment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnvRef {
    pub source: String,
    pub destination: String,
    pub header: String,
    pub env: String,
}

/// Everything `config check` reports about a valid file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub sources: Vec<SourceSummary>,
    pub source_count: usize,
    pub destination_count: usize,
    /// Every Secrets Manager ARN referenced (headers, signing secrets), sorted, once each:
    /// the consumer needs `secretsmanager:GetSecretValue` on each.
    pub secret_arns: Vec<String>,
    /// Every `{"env": …}` header reference (not checked here: the consumer resolves them).
    pub env_refs: Vec<EnvRef>,
}

fn header_summary(name: &str, value: &HeaderValue) -> HeaderSummary {
    let (kind, secret_arn, env) = match value {
        HeaderValue::Plain(_) => ("plain", None, None),
        HeaderValue::Secret(SecretRef {
            secret_arn: Some(arn),
            ..
        }) => ("secret_arn", Some(arn.clone()), None),
        HeaderValue::Secret(SecretRef { env: Some(var), .. }) => ("env", None, Some(var.clone())),
        // Refused by validation; shown as what it is not rather than guessed.
        HeaderValue::Secret(_) => ("invalid", None, None),
    };
    HeaderSummary {
        name: name.to_string(),
        value: kind,
        secret_arn,
        env,
    }
}

fn destination_summary(d: &DestinationConfig) -> DestinationSummary {
    DestinationSummary {
        name: d.name.clone(),
        url: redact_url(&d.url),
        filter: d.filter.clone(),
        filter_reads_body: matches!(d.compiled_filter(), Ok(Some(f)) if f.uses_body()),
        headers: d
            .headers
            .iter()
            .map(|(name, value)| header_summary(name, value))
            .collect(),
        signing_secret_arn: d.signing_secret_arn.clone(),
        timeout_ms: d.timeout_ms,
    }
}

/// The summary of a validated config.
pub fn summarise(config: &SourcesConfig) -> Summary {
    let mut arns: BTreeSet<String> = BTreeSet::new();
    let mut env_refs = Vec::new();
    let sources: Vec<SourceSummary> = config
        .sources
        .iter()
        .map(|s| {
            for d in &s.destinations {
                arns.extend(d.secret_arns().map(str::to_string));
                for (header, value) in &d.headers {
                    if let HeaderValue::Secret(SecretRef { env: Some(var), .. }) = value {
                        env_refs.push(EnvRef {
                            source: s.name.clone(),
                            destination: d.name.clone(),
                            header: header.clone(),
                            env: var.clone(),
                        });
                    }
                }
            }
            SourceSummary {
                name: s.name.clone(),
                scheme: s.scheme,
                secret_var: s.secret_var(),
                destinations: s.destinations.iter().map(destination_summary).collect(),
            }
        })
        .collect();
    Summary {
        source_count: sources.len(),
        destination_count: sources.iter().map(|s| s.destinations.len()).sum(),
        sources,
        secret_arns: arns.into_iter().collect(),
        env_refs,
    }
}

/// The human form of the summary.
pub fn render(file: &str, loaded: &Loaded, summary: &Summary) -> String {
    let mut out = format!(
        "{file}: valid: {} source(s), {} destination(s){}\n",
        summary.source_count,
        summary.destination_count,
        if loaded.quoted {
            " (read from a quoted JSON string)"
        } else {
            ""
        }
    );
    for s in &summary.sources {
        out.push_str(&format!(
            "\nsource {} (scheme {}, signing secrets in {})\n",
            s.name, s.scheme, s.secret_var
        ));
        for d in &s.destinations {
            out.push_str(&format!("  destination {}  {}\n", d.name, d.url));
            let filter = match &d.filter {
                None => "every event".to_string(),
                Some(f) => {
                    let text = serde_json::to_string(f).unwrap_or_default();
                    if d.filter_reads_body {
                        format!("{text} (reads the body)")
                    } else {
                        text
                    }
                }
            };
            out.push_str(&format!("    filter   {filter}\n"));
            let headers = if d.headers.is_empty() {
                "none".to_string()
            } else {
                d.headers
                    .iter()
                    .map(|h| match (h.value, &h.env) {
                        ("plain", _) => h.name.clone(),
                        ("env", Some(var)) => format!("{} (env {var})", h.name),
                        (kind, _) => format!("{} ({kind})", h.name),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!("    headers  {headers}\n"));
            let signing = match &d.signing_secret_arn {
                Some(arn) => format!("own secret {arn}"),
                None => "the consumer's destination secret".to_string(),
            };
            out.push_str(&format!("    signing  {signing}\n"));
            let timeout = match d.timeout_ms {
                Some(ms) => format!("{ms} ms"),
                None => "the consumer's delivery timeout".to_string(),
            };
            out.push_str(&format!("    timeout  {timeout}\n"));
        }
    }
    if summary.secret_arns.is_empty() {
        out.push_str("\nno Secrets Manager ARN referenced\n");
    } else {
        out.push_str(&format!(
            "\n{} Secrets Manager ARN(s) referenced (the consumer needs \
             secretsmanager:GetSecretValue on each):\n",
            summary.secret_arns.len()
        ));
        for arn in &summary.secret_arns {
            out.push_str(&format!("  {arn}\n"));
        }
    }
    if !summary.env_refs.is_empty() {
        out.push_str(&format!(
            "\n{} environment variable reference(s), resolved by the consumer (not checked \
             here):\n",
            summary.env_refs.len()
        ));
        for r in &summary.env_refs {
            out.push_str(&format!(
                "  {}  ({}/{} header {})\n",
                r.env, r.source, r.destination, r.header
            ));
        }
    }
    out.trim_end().to_string()
}

/// The JSON form of a refusal: the message, and the source, destination and field at fault
/// when the error names them.
fn error_json(file: &str, e: &LoadError) -> Value {
    let mut out = json!({"file": file, "valid": false});
    match e {
        LoadError::Read(message) => out["error"] = json!(message),
        LoadError::Invalid(e) => {
            out["error"] = json!(e.to_string());
            let (source, destination, field) = match e {
                ConfigError::Syntax(_) => (None, None, None),
                ConfigError::BadName { index, .. } => (Some(format!("#{index}")), None, None),
                ConfigError::Duplicate { source_name } => (Some(source_name.clone()), None, None),
                ConfigError::BadField {
                    source_name, field, ..
                } => (Some(source_name.clone()), None, Some(field.to_string())),
                ConfigError::BadDestination {
                    source_name,
                    destination,
                    field,
                    ..
                } => (
                    Some(source_name.clone()),
                    Some(destination.clone()),
                    Some(field.clone()),
                ),
            };
            out["source"] = json!(source);
            out["destination"] = json!(destination);
            out["field"] = json!(field);
        }
    }
    out
}

pub fn run(args: ConfigArgs, json: bool) -> Result<()> {
    match args.command {
        ConfigCommand::Check(a) => check(a, json),
    }
}

fn check(args: CheckArgs, json: bool) -> Result<()> {
    let file = args.file.display().to_string();
    let loaded = match try_load(&args.file) {
        Ok(l) => l,
        Err(e) => {
            if json {
                println!("{:#}", error_json(&file, &e));
            }
            return Err(CliError::Usage(describe_error(&args.file, &e)));
        }
    };
    let summary = summarise(&loaded.config);
    if loaded.compact_bytes > PARAMETER_LIMIT_BYTES {
        eprintln!(
            "warning: the sources JSON is {} bytes compact; a CloudFormation parameter (the \
             template's `Sources`) holds at most {PARAMETER_LIMIT_BYTES}",
            loaded.compact_bytes
        );
    }
    if json {
        let mut out = json!({
            "file": file,
            "valid": true,
            "quoted": loaded.quoted,
            "compact_bytes": loaded.compact_bytes,
            "parameter_limit_bytes": PARAMETER_LIMIT_BYTES,
        });
        if let (Some(map), Ok(Value::Object(fields))) =
            (out.as_object_mut(), serde_json::to_value(&summary))
        {
            map.extend(fields);
        }
        println!("{out:#}");
    } else {
        println!("{}", render(&file, &loaded, &summary));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = r#"{"sources":[
        {"name":"stripe","scheme":"stripe","destinations":[
            {"name":"billing","url":"https://billing.example/hook?token=abc#frag",
             "filter":{"body":{"type":{"$startsWith":"invoice."}}},
             "headers":{"x-team":"payments-team-value",
                        "authorization":{"secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-token"},
                        "x-api-key":{"env":"BILLING_KEY"}},
             "signing_secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-whsec",
             "timeout_ms":2500},
            {"name":"audit","url":"https://audit.example/h",
             "signing_secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-token"}]},
        {"name":"github","scheme":"github","destination":"http://127.0.0.1:9/gh"}
    ]}"#;

    #[test]
    fn urls_lose_userinfo_query_and_fragment() {
        assert_eq!(
            redact_url("https://user:pw@h.example:8443/a/b?token=x#f"),
            "https://***@h.example:8443/a/b?***#***"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("http://h?q=1"), "http://h?***");
        assert_eq!(redact_url("http://h/p#x"), "http://h/p#***");
        // An `@` after the authority is part of the path, not userinfo.
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn a_valid_file_is_summarised_without_header_values_or_url_secrets() {
        let loaded = parse(ROUTES).unwrap();
        assert!(!loaded.quoted);
        let s = summarise(&loaded.config);
        assert_eq!((s.source_count, s.destination_count), (2, 3));
        let stripe = &s.sources[0];
        assert_eq!(stripe.secret_var, "SLUICE_SECRET_STRIPE");
        let billing = &stripe.destinations[0];
        assert_eq!(billing.url, "https://billing.example/hook?***#***");
        assert!(billing.filter_reads_body);
        assert_eq!(billing.timeout_ms, Some(2500));
        let kinds: Vec<(&str, &str)> = billing
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value))
            .collect();
        assert_eq!(
            kinds,
            [
                ("authorization", "secret_arn"),
                ("x-api-key", "env"),
                ("x-team", "plain")
            ]
        );
        assert_eq!(stripe.destinations[1].filter, None);
        // The old form is one destination named `default`.
        assert_eq!(s.sources[1].destinations[0].name, "default");
        // Each ARN once, sorted.
        assert_eq!(
            s.secret_arns,
            [
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-token",
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing-whsec"
            ]
        );
        assert_eq!(
            s.env_refs,
            [EnvRef {
                source: "stripe".into(),
                destination: "billing".into(),
                header: "x-api-key".into(),
                env: "BILLING_KEY".into()
            }]
        );

        let human = render("sources.json", &loaded, &s);
        let json = serde_json::to_string(&s).unwrap();
        for out in [&human, &json] {
            for secret in ["payments-team-value", "user:pw", "token=abc", "frag"] {
                assert!(!out.contains(secret), "{secret} shown in {out}");
            }
        }
        assert!(human.starts_with("sources.json: valid: 2 source(s), 3 destination(s)"));
        assert!(human.contains(r#"filter   {"body":{"type":{"$startsWith":"invoice."}}}"#));
        assert!(human.contains("filter   every event"), "{human}");
        assert!(human.contains("x-api-key (env BILLING_KEY)"), "{human}");
        assert!(
            human.contains("2 Secrets Manager ARN(s) referenced"),
            "{human}"
        );
    }

    #[test]
    fn a_quoted_document_is_accepted() {
        let quoted = serde_json::to_string(ROUTES).unwrap();
        let loaded = parse(&quoted).unwrap();
        assert!(loaded.quoted);
        assert_eq!(loaded.config, parse(ROUTES).unwrap().config);
        assert_eq!(loaded.compact_bytes, parse(ROUTES).unwrap().compact_bytes);
        assert!(
            loaded.compact_bytes < ROUTES.len(),
            "whitespace not counted"
        );
    }

    #[test]
    fn refusals_carry_the_consumers_message_and_exit_2() {
        let bad = r#"{"sources":[{"name":"s","scheme":"github","destinations":[
            {"name":"a","url":"http://x/a","headers":{"authorization":"Bearer x"}}]}]}"#;
        let err = parse(bad).unwrap_err();
        let expected = SourcesConfig::from_json(bad).unwrap_err();
        assert_eq!(err, expected);

        let dir = std::env::temp_dir().join(format!("sluice-cli-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sources.json");
        std::fs::write(&path, bad).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(e.to_string(), format!("{}: {expected}", path.display()));
        let doc = error_json("f", &LoadError::Invalid(expected.clone()));
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["source"], "s");
        assert_eq!(doc["destination"], "a");
        assert_eq!(doc["field"], "headers.authorization");
        assert_eq!(doc["error"], expected.to_string());

        let missing = dir.join("missing.json");
        let e = load(&missing).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert!(e.to_string().contains("missing.json"), "{e}");
        assert!(
            check(CheckArgs { file: missing }, true).is_err(),
            "unreadable is an error in JSON mode too"
        );
        assert!(check(CheckArgs { file: path.clone() }, false).is_err());
        std::fs::write(&path, ROUTES).unwrap();
        assert!(check(CheckArgs { file: path }, false).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn syntax_errors_are_refused() {
        assert!(matches!(parse("not json"), Err(ConfigError::Syntax(_))));
        assert!(matches!(
            parse(r#""not json either""#),
            Err(ConfigError::Syntax(_))
        ));
    }
}
