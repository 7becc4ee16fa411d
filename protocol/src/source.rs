//! Source configuration: the providers Sluice accepts webhooks from, declared once and read
//! by the edge (from a `wrangler.toml` var) and the consumer (from its environment).
//!
//! Secrets are never part of this configuration: they come from `wrangler secret` (or
//! `.dev.vars` locally) under the name [`SourceConfig::secret_var`]. A config error names the
//! source and the field at fault.

use crate::signature::{GenericHmac, Scheme, SchemeOptions};
use serde::{Deserialize, Serialize};

/// Default largest body a source accepts.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default timestamp tolerance for schemes that sign one (Standard Webhooks, Stripe, Slack).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// One provider endpoint, served at `POST /hooks/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// URL path segment and idempotency namespace: lower-case letters, digits, `-`, `_`.
    pub name: String,
    /// How the provider signs its requests.
    pub scheme: Scheme,
    /// Where the consumer delivers accepted events (HTTP POST).
    pub destination: String,
    /// Largest body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Allowed clock skew for signed timestamps, in seconds, both directions.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// Allowed media types (`application/json`, …); empty means any.
    #[serde(default)]
    pub content_types: Vec<String>,
    /// Refuse bodies that are not well-formed JSON (400 `invalid_json`).
    #[serde(default)]
    pub require_json: bool,
    /// Twilio: the exact public URL the provider posts to (custom domain, path, query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// FIFO queues only: where the message group comes from (`header:<name>`,
    /// `json:<pointer>` or a literal); the source name when unset. See [`crate::fifo`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo_group_key: Option<String>,
    /// Generic HMAC settings (scheme `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<GenericHmac>,
}

fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_SECS
}

impl SourceConfig {
    /// A source with every optional field at its default.
    pub fn new(name: &str, scheme: Scheme, destination: &str) -> Self {
        SourceConfig {
            name: name.to_string(),
            scheme,
            destination: destination.to_string(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
            content_types: Vec::new(),
            require_json: false,
            public_url: None,
            fifo_group_key: None,
            generic: None,
        }
    }

    /// The name of the secret (Worker secret or environment variable) holding this source's
    /// signing secrets: `SLUICE_SECRET_` and the upper-cased name, `-` as `_`.
    pub fn secret_var(&self) -> String {
        secret_var(&self.name)
    }

    /// The scheme settings this source provides.
    pub fn scheme_options(&self) -> SchemeOptions<'_> {
        SchemeOptions {
            public_url: self.public_url.as_deref(),
            generic: self.generic.as_ref(),
            external_macs: None,
        }
    }

    /// Whether `content_type` (a `Content-Type` header value, parameters allowed) is allowed.
    pub fn allows_content_type(&self, content_type: Option<&str>) -> bool {
        if self.content_types.is_empty() {
            return true;
        }
        let Some(ct) = content_type else {
            return false;
        };
        let media = ct.split(';').next().unwrap_or("").trim();
        self.content_types
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(media))
    }
}

/// The secret variable name for a source name.
pub fn secret_var(source: &str) -> String {
    let mut out = String::from("SLUICE_SECRET_");
    out.extend(source.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    out
}

/// Every configured source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub sources: Vec<SourceConfig>,
}

/// A configuration problem, naming the source and field where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("sources config is not valid JSON for the expected shape: {0}")]
    Syntax(String),
    #[error("source #{index}: field `name`: {reason}")]
    BadName { index: usize, reason: &'static str },
    #[error("source `{source_name}`: declared twice")]
    Duplicate { source_name: String },
    #[error("source `{source_name}`: field `{field}`: {reason}")]
    BadField {
        source_name: String,
        field: &'static str,
        reason: &'static str,
    },
}

impl SourcesConfig {
    /// Parses and validates the JSON form.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: SourcesConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks names, uniqueness and field ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (index, s) in self.sources.iter().enumerate() {
            if s.name.is_empty() || s.name.len() > 64 {
                return Err(ConfigError::BadName {
                    index,
                    reason: "must be 1 to 64 characters",
                });
            }
            if !s
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return Err(ConfigError::BadName {
                    index,
                    reason: "only lower-case letters, digits, `-` and `_` are allowed",
                });
            }
            if self.sources[..index].iter().any(|o| o.name == s.name) {
                return Err(ConfigError::Duplicate {
                    source_name: s.name.clone(),
                });
            }
            let bad = |field, reason| ConfigError::BadField {
                source_name: s.name.clone(),
                field,
                reason,
            };
            if !(s.destination.starts_with("http://") || s.destination.starts_with("https://")) {
                return Err(bad("destination", "must be an http:// or https:// URL"));
            }
            if s.max_body_bytes == 0 {
                return Err(bad("max_body_bytes", "must be greater than 0"));
            }
            if s.scheme.has_timestamp() && s.tolerance_secs == 0 {
                return Err(bad("tolerance_secs", "must be greater than 0"));
            }
            match s.scheme {
                Scheme::Twilio => match s.public_url.as_deref() {
                    Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
                    _ => {
                        return Err(bad(
                            "public_url",
                            "twilio sources need the full public URL Twilio posts to",
                        ))
                    }
                },
                Scheme::Generic => match &s.generic {
                    Some(g) => {
                        if let Err((field, reason)) = g.validate() {
                            return Err(bad(field, reason));
                        }
                    }
                    None => return Err(bad("generic", "generic sources need a `generic` object")),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// The source called `name`, if declared.
    pub fn get(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"sources":[
        {"name":"github","scheme":"github","destination":"https://example.com/gh"},
        {"name":"std-1","scheme":"standard-webhooks","destination":"http://127.0.0.1:9/x",
         "max_body_bytes":1024,"tolerance_secs":60,"content_types":["application/json"]}
    ]}"#;

    #[test]
    fn parses_with_defaults() {
        let c = SourcesConfig::from_json(OK).unwrap();
        let gh = c.get("github").unwrap();
        assert_eq!(gh.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(gh.tolerance_secs, DEFAULT_TOLERANCE_SECS);
        assert_eq!(c.get("std-1").unwrap().secret_var(), "SLUICE_SECRET_STD_1");
        assert!(c.get("nope").is_none());
    }

    #[test]
    fn errors_name_the_source_and_field() {
        let err = SourcesConfig::from_json(
            r#"{"sources":[{"name":"gh","scheme":"github","destination":"ftp://x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "source `gh`: field `destination`: must be an http:// or https:// URL"
        );
        let err = SourcesConfig::from_json(
            r#"{"sources":[{"name":"Bad Name","scheme":"github","destination":"http://x"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("source #0: field `name`"));
        let err = SourcesConfig::from_json(
            r#"{"sources":[{"name":"a","scheme":"github","destination":"http://x"},
                           {"name":"a","scheme":"github","destination":"http://x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Duplicate {
                source_name: "a".into()
            }
        );
        let err = SourcesConfig::from_json(
            r#"{"sources":[{"name":"a","scheme":"carrier-pigeon","destination":"http://x"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax(_)));
        let err = SourcesConfig::from_json(
            r#"{"sources":[{"name":"tw","scheme":"twilio","destination":"http://x"}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("source `tw`: field `public_url`"),
            "{err}"
        );
        let err = SourcesConfig::from_json(
            r#"{"sources":[{"name":"g","scheme":"generic","destination":"http://x",
                "generic":{"header":"x-sig","template":"{timestamp}{body}"}}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("source `g`: field `generic.template`"),
            "{err}"
        );
    }

    #[test]
    fn content_type_rules() {
        let c = SourcesConfig::from_json(OK).unwrap();
        let std = c.get("std-1").unwrap();
        assert!(std.allows_content_type(Some("application/json; charset=utf-8")));
        assert!(std.allows_content_type(Some("Application/JSON")));
        assert!(!std.allows_content_type(Some("text/plain")));
        assert!(!std.allows_content_type(None));
        assert!(c.get("github").unwrap().allows_content_type(None));
    }
}
