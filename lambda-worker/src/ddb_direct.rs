//! The fast path of the two DynamoDB calls every event makes (the claim's PutItem and the
//! completion's UpdateItem): one attempt, SigV4-signed by `aws-sigv4`, sent through the
//! SDK client's own HTTP connector (same connection pool, TLS and connect/read timeouts),
//! with the SDK client's own endpoint, credentials and identity cache.
//!
//! Everything that is not a clean answer (200, or ConditionalCheckFailedException with its
//! old item) is handed back to the caller, which repeats the call through the SDK with its
//! retry strategy, less the attempt made here: retries, backoff, clock skew correction and
//! error messages stay the SDK's. Why: profiled under `sluice-consumer-bench` (perf and
//! callgrind), the SDK's request pipeline around these two calls (orchestrator, config
//! bag, interceptors, user agent, runtime plugins) was about half of the consumer's CPU
//! per event; this path cut the consumer's CPU per event by about a third.
//!
//! The endpoint, credentials, HTTP client and timeouts are taken once from the SDK client
//! by a probe: a request it builds, resolves and signs like any other, stopped by an
//! interceptor before it is transmitted (nothing reaches DynamoDB).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::auth::{AuthScheme, AuthSchemeId};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::{ResolveCachedIdentity, SharedIdentityResolver};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::{RetryConfig, RetryMode};
use aws_smithy_types::timeout::TimeoutConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const SIGV4: AuthSchemeId = AuthSchemeId::new("sigv4");
const PROBE_ERROR: &str = "sluice endpoint probe: stopped before transmit";
const USER_AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// The SDK stopped before the probe saw a request: try again on the next call.
#[derive(Debug)]
pub struct ProbeFailed;

/// What the direct attempt came back with.
#[derive(Debug)]
pub enum Answer {
    /// 200: the write took effect.
    Ok,
    /// ConditionalCheckFailedException, with the old item's string attributes (ALL_OLD).
    ConditionFailed(Option<HashMap<String, AttributeValue>>),
    /// Anything else (an error status, a timeout, a connection error, an unreadable
    /// answer): repeat through the SDK, after `backoff` (zero when not worth a pause).
    Retry { backoff: Duration },
}

/// One table's direct DynamoDB client.
#[derive(Debug)]
pub struct Direct {
    uri: String,
    region: String,
    connector: SharedHttpConnector,
    components: RuntimeComponents,
    resolver: SharedIdentityResolver,
    /// The client's retry and timeout settings, for the identity cache's load timeout.
    cfg: ConfigBag,
    timeouts: TimeoutConfig,
    retry: RetryConfig,
}

/// What the probe captured from a request the SDK was about to transmit.
#[derive(Debug, Default)]
struct Captured {
    uri: Option<String>,
    components: Option<RuntimeComponents>,
    timeouts: Option<TimeoutConfig>,
    retry: Option<RetryConfig>,
}

#[derive(Debug, Clone, Default)]
struct Probe(Arc<Mutex<Captured>>);

impl Intercept for Probe {
    fn name(&self) -> &'static str {
        "SluiceEndpointProbe"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut captured) = self.0.lock() {
            captured.uri = Some(context.request().uri().to_string());
            captured.components = Some(runtime_components.clone());
            captured.timeouts = cfg.load::<TimeoutConfig>().cloned();
            captured.retry = cfg.load::<RetryConfig>().cloned();
        }
        Err(PROBE_ERROR.into())
    }
}

impl Direct {
    /// Builds the direct path from `client`'s configuration: `Ok(None)` when it cannot be
    /// (then every call goes through the SDK, as before), `Err` when the SDK could not
    /// prepare the request this time (e.g. credentials unavailable): probe again later.
    pub async fn probe(
        client: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<Option<Direct>, ProbeFailed> {
        let Some(region) = client.config().region().map(|r| r.to_string()) else {
            return Ok(None);
        };
        let probe = Probe::default();
        // The same operation and table as the real calls: the same endpoint rules apply.
        let _ = client
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S("probe".into()))
            .customize()
            .interceptor(probe.clone())
            .send()
            .await;
        let captured = match probe.0.lock() {
            Ok(mut captured) => std::mem::take(&mut *captured),
            Err(_) => return Ok(None),
        };
        let (Some(uri), Some(components)) = (captured.uri, captured.components) else {
            return Err(ProbeFailed);
        };
        Ok(Self::from_parts(
            uri,
            region,
            components,
            captured.timeouts,
            captured.retry,
        ))
    }

    fn from_parts(
        uri: String,
        region: String,
        components: RuntimeComponents,
        timeouts: Option<TimeoutConfig>,
        retry: Option<RetryConfig>,
    ) -> Option<Direct> {
        let timeouts = timeouts.unwrap_or_else(TimeoutConfig::disabled);
        let retry = retry?;
        // One attempt here, at least one left for the SDK: without retries, no fast path.
        // Adaptive retries rate-limit every attempt of the client: no fast path either.
        if retry.max_attempts() < 2 || retry.mode() == RetryMode::Adaptive {
            return None;
        }
        let mut settings = HttpConnectorSettings::builder();
        settings.set_connect_timeout(timeouts.connect_timeout());
        settings.set_read_timeout(timeouts.read_timeout());
        let connector = components
            .http_client()?
            .http_connector(&settings.build(), &components);
        let resolver = components
            .auth_scheme(SIGV4)?
            .identity_resolver(&components)?;
        let mut layer = aws_smithy_types::config_bag::Layer::new("sluice-direct");
        layer.store_put(timeouts.clone());
        layer.store_put(retry.clone());
        Some(Direct {
            cfg: ConfigBag::of_layers(vec![layer]),
            uri,
            region,
            connector,
            resolver,
            timeouts,
            retry,
            components,
        })
    }

    /// The SDK's retry settings for the calls that follow a direct attempt started at
    /// `started`: one attempt fewer, and what is left of the operation timeout.
    pub fn remaining(&self, started: Instant) -> (RetryConfig, TimeoutConfig) {
        let retry = self
            .retry
            .clone()
            .with_max_attempts(self.retry.max_attempts().saturating_sub(1).max(1));
        let mut timeouts = self.timeouts.to_builder();
        if let Some(op) = self.timeouts.operation_timeout() {
            timeouts = timeouts.operation_timeout(
                op.saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1)),
            );
        }
        (retry, timeouts.build())
    }

    fn backoff(&self) -> Duration {
        // The SDK's standard strategy before its second attempt: full jitter over the
        // initial backoff.
        self.retry
            .initial_backoff()
            .mul_f64(rand::random::<f64>())
            .min(self.retry.max_backoff())
    }

    /// One attempt of `target` (e.g. `DynamoDB_20120810.PutItem`) with the JSON `body`.
    pub async fn call(&self, target: &'static str, body: Vec<u8>) -> Answer {
        let attempt = self.attempt(target, body);
        let result = match self.timeouts.operation_attempt_timeout() {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or(Err(true)),
            None => attempt.await,
        };
        match result {
            Ok(answer) => answer,
            Err(transient) => Answer::Retry {
                backoff: if transient {
                    self.backoff()
                } else {
                    Duration::ZERO
                },
            },
        }
    }

    /// `Err(true)`: transient (worth the backoff); `Err(false)`: let the SDK say why.
    async fn attempt(&self, target: &'static str, body: Vec<u8>) -> Result<Answer, bool> {
        let identity = self
            .components
            .identity_cache()
            .resolve_cached_identity(self.resolver.clone(), &self.components, &self.cfg)
            .await
            .map_err(|_| false)?;
        let now = self
            .components
            .time_source()
            .map(|t| t.now())
            .unwrap_or_else(SystemTime::now);
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target),
        ];
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("dynamodb")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| false)?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.uri,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|_| false)?;
        let (instructions, _) = sign(signable, &params).map_err(|_| false)?.into_parts();
        let (signed, _) = instructions.into_parts();

        let mut request = HttpRequest::new(SdkBody::from(body));
        request.set_method("POST").map_err(|_| false)?;
        request.set_uri(self.uri.as_str()).map_err(|_| false)?;
        let out = request.headers_mut();
        for (name, value) in headers {
            out.try_insert(name, value).map_err(|_| false)?;
        }
        out.try_insert("user-agent", USER_AGENT)
            .map_err(|_| false)?;
        for header in signed {
            out.try_insert(header.name(), header.value().to_string())
                .map_err(|_| false)?;
        }

        let response = self.connector.call(request).await.map_err(|_| true)?;
        let status = response.status().as_u16();
        let header_type = response
            .headers()
            .get("x-amzn-errortype")
            .map(str::to_string);
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|_| true)?
            .into_bytes();
        if status == 200 {
            return Ok(Answer::Ok);
        }
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let body_type = parsed
            .as_ref()
            .and_then(|v| v.get("__type").or_else(|| v.get("code")))
            .and_then(|v| v.as_str());
        let code = error_code(header_type.as_deref().or(body_type).unwrap_or(""));
        if status == 400 && code == "ConditionalCheckFailedException" {
            let item = parsed
                .as_ref()
                .and_then(|v| v.get("Item"))
                .and_then(|v| v.as_object())
                .map(|item| {
                    item.iter()
                        .filter_map(|(name, value)| {
                            let s = value.get("S")?.as_str()?;
                            Some((name.clone(), AttributeValue::S(s.to_string())))
                        })
                        .collect()
                });
            return Ok(Answer::ConditionFailed(item));
        }
        // Worth the SDK's backoff: throttling and server errors. Anything else (a request
        // the service refused) is repeated at once, for the SDK's own error.
        let transient = status >= 500
            || status == 429
            || matches!(
                code,
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "LimitExceededException"
                    | "TransactionInProgressException"
                    | "RequestThrottled"
                    | "RequestThrottledException"
                    | "TooManyRequestsException"
                    | "SlowDown"
                    | "Throttling"
                    | "ThrottledException"
                    | "BandwidthLimitExceeded"
                    | "EC2ThrottledException"
                    | "PriorRequestNotComplete"
            );
        Err(transient)
    }
}

/// `com.amazonaws.dynamodb.v20120810#Name:extra` -> `Name`, as the SDK reads error codes.
fn error_code(raw: &str) -> &str {
    let name = raw.rsplit_once('#').map_or(raw, |(_, n)| n);
    name.split_once(':').map_or(name, |(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_like_the_sdk() {
        assert_eq!(
            error_code("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"),
            "ConditionalCheckFailedException"
        );
        assert_eq!(
            error_code("ThrottlingException:http://internal"),
            "ThrottlingException"
        );
        assert_eq!(error_code("Plain"), "Plain");
    }
}
