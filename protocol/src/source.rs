//! Source configuration: the providers Sluice accepts webhooks from, declared once and read
//! by the edge (from a `wrangler.toml` var) and the consumer (from its environment).
//!
//! Secrets are never part of this configuration: they come from `wrangler secret` (or
//! `.dev.vars` locally) under the name [`SourceConfig::secret_var`]. A config error names the
//! source and the field at fault.

use crate::destination::{check_name, DestinationConfig, DEFAULT_DESTINATION, MAX_DESTINATIONS};
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
    /// The old single-destination form: one destination named `default` at this URL.
    /// Read only: [`SourcesConfig::from_json`] turns it into [`SourceConfig::destinations`],
    /// so a parsed config always has `None` here.
    #[serde(default, skip_serializing)]
    pub destination: Option<String>,
    /// Where the consumer delivers accepted events (HTTP POST), each with its own filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationConfig>,
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
            destination: None,
            destinations: vec![DestinationConfig::new(DEFAULT_DESTINATION, destination)],
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

    /// The destination called `name`, if declared.
    pub fn destination(&self, name: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| d.name == name)
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

fn name_or_index(name: &str, index: usize) -> String {
    match check_name(name) {
        Ok(()) => name.to_string(),
        Err(_) => format!("#{index}"),
    }
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
    /// `destination` is the destination's name, or `#index` when the name is at fault.
    #[error("source `{source_name}`: destination `{destination}`: field `{field}`: {reason}")]
    BadDestination {
        source_name: String,
        destination: String,
        field: String,
        reason: String,
    },
}

impl SourcesConfig {
    /// Parses and validates the JSON form. A source's old `destination` URL becomes its one
    /// destination, named `default`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let mut config: SourcesConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        config.normalise()?;
        config.validate()?;
        Ok(config)
    }

    /// Moves each source's `destination` URL into `destinations` (as `default`).
    fn normalise(&mut self) -> Result<(), ConfigError> {
        for (index, s) in self.sources.iter_mut().enumerate() {
            let Some(url) = s.destination.take() else {
                continue;
            };
            if !s.destinations.is_empty() {
                return Err(ConfigError::BadField {
                    source_name: name_or_index(&s.name, index),
                    field: "destination",
                    reason: "give either `destination` or `destinations`, not both",
                });
            }
            s.destinations
                .push(DestinationConfig::new(DEFAULT_DESTINATION, &url));
        }
        Ok(())
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
            if s.destination.is_some() {
                return Err(bad(
                    "destination",
                    "give either `destination` or `destinations`, not both",
                ));
            }
            if s.destinations.is_empty() {
                return Err(bad(
                    "destinations",
                    "a source needs `destination` (a URL) or at least one of `destinations`",
                ));
            }
            if s.destinations.len() > MAX_DESTINATIONS {
                return Err(bad("destinations", "at most 50 destinations per source"));
            }
            for (i, d) in s.destinations.iter().enumerate() {
                let label = match check_name(&d.name) {
                    Ok(()) => d.name.clone(),
                    Err(_) => format!("#{i}"),
                };
                let legacy_default = s.destinations.len() == 1 && d.name == DEFAULT_DESTINATION;
                if let Err(e) = d.validate() {
                    // The old form's messages stay as they were: `field `destination``.
                    if legacy_default && e.field == "url" {
                        return Err(bad("destination", "must be an http:// or https:// URL"));
                    }
                    return Err(ConfigError::BadDestination {
                        source_name: s.name.clone(),
                        destination: label,
                        field: e.field,
                        reason: e.reason,
                    });
                }
                if s.destinations[..i].iter().any(|o| o.name == d.name) {
                    return Err(ConfigError::BadDestination {
                        source_name: s.name.clone(),
                        destination: label,
                        field: "name".into(),
                        reason: "declared twice in this source".into(),
                    });
                }
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
    fn the_old_destination_is_the_default_destination() {
        let c = SourcesConfig::from_json(OK).unwrap();
        let gh = c.get("github").unwrap();
        assert_eq!(gh.destination, None);
        assert_eq!(
            gh.destinations,
            [DestinationConfig::new("default", "https://example.com/gh")]
        );
        assert_eq!(
            gh,
            &SourceConfig::new("github", Scheme::Github, "https://example.com/gh")
        );
        // What it writes reads back the same.
        assert_eq!(SourcesConfig::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn destinations_are_validated_naming_source_destination_and_field() {
        let c = SourcesConfig::from_json(
            r#"{"sources":[{"name":"stripe","scheme":"stripe","destinations":[
                {"name":"billing","url":"https://b.example/h","filter":{"body":{"type":{"$startsWith":"invoice."}}}},
                {"name":"audit","url":"https://a.example/h"}]}]}"#,
        )
        .unwrap();
        let s = c.get("stripe").unwrap();
        assert_eq!(s.destinations.len(), 2);
        assert!(s.destination("audit").is_some());
        assert!(s.destination("default").is_none());

        let err = |json: &str| SourcesConfig::from_json(json).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"sources":[{"name":"s","scheme":"github","destination":"http://x/a",
                "destinations":[{"name":"a","url":"http://x/a"}]}]}"#),
            "source `s`: field `destination`: give either `destination` or `destinations`, not both"
        );
        assert!(err(r#"{"sources":[{"name":"s","scheme":"github"}]}"#)
            .starts_with("source `s`: field `destinations`"));
        assert!(
            err(r#"{"sources":[{"name":"s","scheme":"github","destinations":[]}]}"#)
                .starts_with("source `s`: field `destinations`")
        );
        assert_eq!(
            err(
                r#"{"sources":[{"name":"s","scheme":"github","destinations":[
                {"name":"a","url":"http://x/a"},{"name":"a","url":"http://x/b"}]}]}"#
            ),
            "source `s`: destination `a`: field `name`: declared twice in this source"
        );
        assert!(err(
            r#"{"sources":[{"name":"s","scheme":"github","destinations":[
                {"name":"A B","url":"http://x/a"}]}]}"#
        )
        .starts_with("source `s`: destination `#0`: field `name`"));
        assert!(err(
            r#"{"sources":[{"name":"s","scheme":"github","destinations":[
                {"name":"a","url":"mailto:x"}]}]}"#
        )
        .starts_with("source `s`: destination `a`: field `url`"));
        let filter = err(
            r#"{"sources":[{"name":"s","scheme":"github","destinations":[
                {"name":"a","url":"http://x/a","filter":{"body":{"type":{"$regexp":"x"}}}}]}]}"#,
        );
        assert!(
            filter.starts_with("source `s`: destination `a`: field `filter.body.type"),
            "{filter}"
        );
        assert!(err(
            r#"{"sources":[{"name":"s","scheme":"github","destinations":[
                {"name":"a","url":"http://x/a","headers":{"authorization":"Bearer x"}}]}]}"#
        )
        .starts_with("source `s`: destination `a`: field `headers.authorization`"));
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
