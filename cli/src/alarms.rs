//! The CloudWatch alarms that watch the pipeline's queues, and their states.
//!
//! An alarm belongs to the pipeline when one of its dimensions (or one of its metric
//! queries' dimensions) is `QueueName` = the main queue or the DLQ, or when its name starts
//! with `--alarm-prefix`.
//!
//! On AWS: DescribeAlarms through the SDK. The SDK speaks CloudWatch's CBOR protocol, which
//! moto does not serve (HTTP 404), so on the local stack the same call is made over
//! CloudWatch's JSON protocol (`X-Amz-Target: GraniteServiceVersion20100801.DescribeAlarms`),
//! which moto serves; moto checks no signature, and the request carries moto's fixed `test`
//! key id only. Read-only; never sends a credential of the caller's.

use crate::error::{self, CliError, Result};
use crate::target::{Kind, Target};
use crate::times;
use serde::{Deserialize, Serialize};

/// One alarm on the pipeline, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub metric: Option<String>,
    /// The queue its dimensions name, if any.
    pub queue: Option<String>,
    /// When the state last changed (RFC 3339).
    pub updated: Option<String>,
    pub reason: Option<String>,
}

/// What both readers extract from one metric alarm.
#[derive(Debug, Clone, Default)]
struct Raw {
    name: String,
    state: Option<String>,
    metric: Option<String>,
    /// `(name, value)` of its dimensions and of its metric queries' dimensions.
    dimensions: Vec<(String, String)>,
    updated_ms: Option<u64>,
    reason: Option<String>,
}

/// The alarms on `queue_names` (or named `prefix…`), sorted by name.
pub async fn on_queues(
    target: &Target,
    queue_names: &[&str],
    prefix: Option<&str>,
) -> Result<Vec<Alarm>> {
    let raw = match &target.kind {
        Kind::Local {
            endpoint, region, ..
        } => read_json_protocol(endpoint, region).await?,
        Kind::Aws { .. } => read_sdk(target).await?,
    };
    Ok(select(raw, queue_names, prefix))
}

fn select(raw: Vec<Raw>, queue_names: &[&str], prefix: Option<&str>) -> Vec<Alarm> {
    let mut found: Vec<Alarm> = raw
        .into_iter()
        .filter_map(|a| {
            let queue = a
                .dimensions
                .iter()
                .filter(|(n, _)| n == "QueueName")
                .find_map(|(_, v)| queue_names.iter().find(|q| **q == v.as_str()));
            let prefixed = prefix.is_some_and(|p| a.name.starts_with(p));
            (queue.is_some() || prefixed).then(|| Alarm {
                queue: queue.map(|q| q.to_string()),
                state: a.state.unwrap_or_else(|| "UNKNOWN".into()),
                metric: a.metric,
                updated: a.updated_ms.map(times::rfc3339),
                reason: a.reason,
                name: a.name,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

async fn read_sdk(target: &Target) -> Result<Vec<Raw>> {
    let cw = target.cloudwatch();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cw
            .describe_alarms()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| error::aws("read alarms (DescribeAlarms)", e))?;
        for a in page.metric_alarms() {
            let direct = a.dimensions().iter();
            let nested = a
                .metrics()
                .iter()
                .filter_map(|q| q.metric_stat()?.metric())
                .flat_map(|m| m.dimensions().iter());
            out.push(Raw {
                name: a.alarm_name().unwrap_or_default().to_string(),
                state: a.state_value().map(|s| s.as_str().to_string()),
                metric: a.metric_name().map(str::to_string),
                dimensions: direct
                    .chain(nested)
                    .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
                    .collect(),
                updated_ms: a
                    .state_updated_timestamp()
                    .and_then(|t| t.to_millis().ok())
                    .map(|ms| ms.max(0) as u64),
                reason: a.state_reason().map(str::to_string),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonPage {
    #[serde(default)]
    metric_alarms: Vec<JsonAlarm>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonAlarm {
    alarm_name: String,
    state_value: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<JsonDimension>,
    #[serde(default)]
    metrics: Vec<serde_json::Value>,
    /// Epoch seconds (fractional).
    state_updated_timestamp: Option<f64>,
    state_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonDimension {
    name: String,
    value: String,
}

impl From<JsonAlarm> for Raw {
    fn from(a: JsonAlarm) -> Raw {
        let mut dimensions: Vec<(String, String)> = a
            .dimensions
            .into_iter()
            .map(|d| (d.name, d.value))
            .collect();
        for q in &a.metrics {
            if let Some(dims) = q["MetricStat"]["Metric"]["Dimensions"].as_array() {
                dimensions.extend(dims.iter().filter_map(|d| {
                    Some((
                        d["Name"].as_str()?.to_string(),
                        d["Value"].as_str()?.to_string(),
                    ))
                }));
            }
        }
        Raw {
            name: a.alarm_name,
            state: a.state_value,
            metric: a.metric_name,
            dimensions,
            updated_ms: a
                .state_updated_timestamp
                .filter(|t| *t >= 0.0)
                .map(|t| (t * 1000.0) as u64),
            reason: a.state_reason,
        }
    }
}

/// DescribeAlarms over the JSON protocol, for moto.
async fn read_json_protocol(endpoint: &str, region: &str) -> Result<Vec<Raw>> {
    let client = reqwest::Client::new();
    let url = format!("{}/", endpoint.trim_end_matches('/'));
    let what = format!("read alarms (DescribeAlarms at {endpoint})");
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = serde_json::json!({});
        if let Some(t) = token.take() {
            body["NextToken"] = t.into();
        }
        let resp = client
            .post(&url)
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "x-amz-target",
                "GraniteServiceVersion20100801.DescribeAlarms",
            )
            // moto routes by the credential scope's service; it checks no signature.
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20000101/{region}/monitoring/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| CliError::Failed(format!("{what}: cannot reach AWS ({e})")))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CliError::Failed(format!(
                "{what}: HTTP {status}: {}",
                crate::table::clip(&text, 200)
            )));
        }
        let page: JsonPage = serde_json::from_str(&text)
            .map_err(|e| CliError::Failed(format!("{what}: unexpected answer: {e}")))?;
        out.extend(page.metric_alarms.into_iter().map(Raw::from));
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_selected_by_queue_dimension_or_prefix() {
        let page: JsonPage = serde_json::from_str(
            r#"{"MetricAlarms": [
              {"AlarmName": "b-dlq", "StateValue": "ALARM", "MetricName": "ApproximateNumberOfMessagesVisible",
               "Dimensions": [{"Name": "QueueName", "Value": "sluice-dlq"}], "StateUpdatedTimestamp": 1795437296.0},
              {"AlarmName": "a-age", "StateValue": "OK", "Dimensions": [],
               "Metrics": [{"Id": "m", "MetricStat": {"Metric": {"Dimensions": [{"Name": "QueueName", "Value": "sluice-events"}]}}}]},
              {"AlarmName": "sluice-other", "StateValue": "OK"},
              {"AlarmName": "unrelated", "StateValue": "ALARM",
               "Dimensions": [{"Name": "QueueName", "Value": "someone-elses"}]}
            ]}"#,
        )
        .unwrap();
        let raw: Vec<Raw> = page.metric_alarms.into_iter().map(Raw::from).collect();
        let names = ["sluice-events", "sluice-dlq"];
        let got = select(raw.clone(), &names, None);
        let summary: Vec<(&str, &str, Option<&str>)> = got
            .iter()
            .map(|a| (a.name.as_str(), a.state.as_str(), a.queue.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("a-age", "OK", Some("sluice-events")),
                ("b-dlq", "ALARM", Some("sluice-dlq"))
            ]
        );
        assert_eq!(got[1].updated.as_deref(), Some("2026-11-23T12:34:56Z"));
        let with_prefix = select(raw, &names, Some("sluice-"));
        assert_eq!(with_prefix.len(), 3);
    }
}
