//! The consumer's routes: every source's destinations with their filters compiled, their
//! secret header values and signing secrets resolved, and their timeouts set, built once
//! at start-up (a Lambda init), never per event.
//!
//! Secret values come from Secrets Manager (read by [`fetch_secret_values`] before the
//! consumer starts) or from the consumer's environment. A reference that cannot be
//! resolved stops start-up with an error that names the source, the destination and the
//! field, never the value. Nothing here logs; a [`Route`]'s `Debug` redacts header values.

use sluice_protocol::destination::{HeaderValue, SecretRef};
use sluice_protocol::filter::{Filter, FilterEvent};
use sluice_protocol::{Envelope, Scheme, Secret, SourcesConfig};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One destination of one source, ready to deliver to.
#[derive(Clone)]
pub struct Route {
    pub name: String,
    pub url: String,
    pub filter: Option<Filter>,
    /// Static headers, secret ones resolved.
    pub headers: Vec<(String, String)>,
    /// Signs this destination's deliveries; the consumer-wide secret when `None`.
    pub secret: Option<Secret>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("filter", &self.filter.as_ref().map(Filter::document))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// A destination with no filter, headers or signing secret of its own.
    pub fn new(name: &str, url: &str, timeout: Duration) -> Self {
        Route {
            name: name.to_string(),
            url: url.to_string(),
            filter: None,
            headers: Vec::new(),
            secret: None,
            timeout,
        }
    }

    /// This destination's idempotency key (and `webhook-id`) for `envelope`.
    pub fn delivery_key(&self, envelope: &Envelope) -> String {
        sluice_protocol::destination::delivery_key(&envelope.dedup_key(), &self.name)
    }
}

/// Every source's routes.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_source: HashMap<String, Vec<Route>>,
}

/// Secret values read from Secrets Manager, by ARN. `Debug` shows only the ARNs.
#[derive(Clone, Default)]
pub struct SecretValues(BTreeMap<String, String>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl SecretValues {
    pub fn insert(&mut self, arn: &str, value: String) {
        self.0.insert(arn.to_string(), value);
    }

    fn get(&self, arn: &str) -> Option<&str> {
        self.0.get(arn).map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("source `{source_name}`: destination `{destination}`: field `{field}`: {reason}")]
    Field {
        source_name: String,
        destination: String,
        field: String,
        reason: String,
    },
    #[error(transparent)]
    Read(#[from] crate::destination_secret::DestinationSecretError),
}

/// Every Secrets Manager ARN the sources refer to, once each.
pub fn secret_arns(sources: &SourcesConfig) -> Vec<String> {
    let mut arns: Vec<String> = sources
        .sources
        .iter()
        .flat_map(|s| s.destinations.iter())
        .flat_map(|d| d.secret_arns())
        .map(str::to_string)
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

/// Reads every referenced secret from Secrets Manager (start-up only).
pub async fn fetch_secret_values(
    client: &aws_sdk_secretsmanager::Client,
    sources: &SourcesConfig,
) -> Result<SecretValues, RouteError> {
    let mut values = SecretValues::default();
    for arn in secret_arns(sources) {
        let value = crate::destination_secret::read_string(client, &arn).await?;
        values.insert(&arn, value);
    }
    Ok(values)
}

impl Routes {
    /// Builds every source's routes. `env` looks up `{"env": …}` references (the process
    /// environment in production).
    pub fn build(
        sources: &SourcesConfig,
        secrets: &SecretValues,
        default_timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RouteError> {
        let mut by_source = HashMap::new();
        for source in &sources.sources {
            let mut routes = Vec::with_capacity(source.destinations.len());
            for d in &source.destinations {
                let fault = |field: &str, reason: &str| RouteError::Field {
                    source_name: source.name.clone(),
                    destination: d.name.clone(),
                    field: field.to_string(),
                    reason: reason.to_string(),
                };
                let filter = d
                    .compiled_filter()
                    .map_err(|e| fault(&e.field, &e.reason))?;
                let mut headers = Vec::with_capacity(d.headers.len());
                for (name, value) in &d.headers {
                    let field = format!("headers.{name}");
                    let text = match value {
                        HeaderValue::Plain(text) => text.clone(),
                        HeaderValue::Secret(SecretRef {
                            secret_arn: Some(arn),
                            ..
                        }) => secrets
                            .get(arn)
                            .ok_or_else(|| fault(&field, "the secret was not read at start-up"))?
                            .to_string(),
                        HeaderValue::Secret(SecretRef { env: Some(var), .. }) => {
                            env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                                fault(&field, &format!("environment variable {var} is not set"))
                            })?
                        }
                        HeaderValue::Secret(_) => {
                            return Err(fault(&field, "not a secret reference"))
                        }
                    };
                    if !sluice_protocol::destination::is_header_value(&text) {
                        return Err(fault(
                            &field,
                            "the secret's value is not a valid HTTP header value",
                        ));
                    }
                    headers.push((name.to_ascii_lowercase(), text));
                }
                let secret = match &d.signing_secret_arn {
                    Some(arn) => {
                        let value = secrets.get(arn).ok_or_else(|| {
                            fault("signing_secret_arn", "the secret was not read at start-up")
                        })?;
                        let secret = Scheme::StandardWebhooks.parse_secret(value).map_err(|e| {
                            fault(
                                "signing_secret_arn",
                                &format!("not a valid whsec_ secret: {e}"),
                            )
                        })?;
                        // A whpk_ public key verifies; it cannot sign.
                        if matches!(secret, Secret::Ed25519Public(_)) {
                            return Err(fault(
                                "signing_secret_arn",
                                "a whpk_ public key cannot sign: give the whsec_ (or whsk_) secret",
                            ));
                        }
                        Some(secret)
                    }
                    None => None,
                };
                routes.push(Route {
                    name: d.name.clone(),
                    url: d.url.clone(),
                    filter,
                    headers,
                    secret,
                    timeout: d.timeout_ms.map_or(default_timeout, Duration::from_millis),
                });
            }
            by_source.insert(source.name.clone(), routes);
        }
        Ok(Routes { by_source })
    }

    /// The routes of `source` (empty for an unknown source).
    pub fn of(&self, source: &str) -> &[Route] {
        self.by_source.get(source).map_or(&[], Vec::as_slice)
    }

    /// Whether `source` has a destination called `name`.
    pub fn has(&self, source: &str, name: &str) -> bool {
        self.of(source).iter().any(|r| r.name == name)
    }

    /// The longest timeout of any route.
    pub fn longest_timeout(&self) -> Option<Duration> {
        self.by_source.values().flatten().map(|r| r.timeout).max()
    }
}

/// What the filters see of an event's body.
pub enum FilterBody {
    /// No filter of the candidates reads the body: it was not parsed.
    Unread,
    /// The body as JSON (a form-encoded body as an object of its fields).
    Json(serde_json::Value),
    /// Not JSON: no `body` condition matches.
    NotJson,
}

impl FilterBody {
    /// Parses `body` as the filters need it, by the event's content type.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Self {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return FilterBody::Json(sluice_protocol::filter::form_body(body));
        }
        match serde_json::from_slice(body) {
            Ok(v) => FilterBody::Json(v),
            Err(_) => FilterBody::NotJson,
        }
    }
}

/// Whether `route` takes `envelope`, whose body (when a filter needed it) is `body`.
pub fn matches(route: &Route, envelope: &Envelope, body: &FilterBody) -> bool {
    let Some(filter) = &route.filter else {
        return true;
    };
    let json = match body {
        FilterBody::Json(v) => Some(v),
        FilterBody::Unread | FilterBody::NotJson => None,
    };
    filter.matches(&FilterEvent {
        body: json,
        headers: &envelope.headers,
        source: &envelope.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &str = r#"{"sources":[
        {"name":"stripe","scheme":"stripe","destinations":[
            {"name":"billing","url":"http://127.0.0.1:9/billing","timeout_ms":1500,
             "filter":{"body":{"type":{"$startsWith":"invoice."}}},
             "headers":{"x-team":"payments","authorization":{"env":"BILLING_TOKEN"}}},
            {"name":"audit","url":"http://127.0.0.1:9/audit",
             "headers":{"x-api-key":{"secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit"}}}]},
        {"name":"github","scheme":"github","destination":"http://127.0.0.1:9/gh"}]}"#;

    fn sources() -> SourcesConfig {
        SourcesConfig::from_json(SOURCES).unwrap()
    }

    #[test]
    fn routes_resolve_references_and_timeouts() {
        let mut secrets = SecretValues::default();
        secrets.insert(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit",
            "k-123".into(),
        );
        let env = |v: &str| (v == "BILLING_TOKEN").then(|| "Bearer t-456".to_string());
        let routes = Routes::build(&sources(), &secrets, Duration::from_secs(10), env).unwrap();
        let stripe = routes.of("stripe");
        assert_eq!(stripe.len(), 2);
        assert_eq!(stripe[0].timeout, Duration::from_millis(1500));
        assert_eq!(stripe[1].timeout, Duration::from_secs(10));
        assert!(stripe[0]
            .headers
            .contains(&("authorization".into(), "Bearer t-456".into())));
        assert_eq!(stripe[1].headers, [("x-api-key".into(), "k-123".into())]);
        assert_eq!(routes.of("github")[0].name, "default");
        assert!(routes.of("nope").is_empty());
        // Debug never shows a header value.
        let shown = format!("{routes:?}");
        assert!(
            !shown.contains("t-456") && !shown.contains("k-123"),
            "{shown}"
        );
        assert_eq!(
            secret_arns(&sources()),
            ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit"]
        );
    }

    #[test]
    fn an_unresolved_reference_names_source_destination_and_field() {
        let err = Routes::build(
            &sources(),
            &SecretValues::default(),
            Duration::from_secs(10),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "source `stripe`: destination `billing`: field `headers.authorization`: environment variable BILLING_TOKEN is not set"
        );
    }
}
