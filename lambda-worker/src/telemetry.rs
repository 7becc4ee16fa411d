//! Structured JSON logs on stdout (CloudWatch Logs in AWS), filtered by `RUST_LOG`, and
//! CloudWatch Embedded Metric Format (EMF) lines for per-event metrics.
//!
//! Metric dimensions stay low-cardinality (source, destination, outcome; destination names
//! come from the configuration): never an event id or key.

use sluice_protocol::json_text;

/// The CloudWatch namespace of Sluice's own metrics (the SAM alarms use the same).
pub const METRICS_NAMESPACE: &str = "Sluice";

/// Every `outcome` dimension value the consumer emits.
pub const OUTCOMES: [&str; 5] = [
    "delivered",
    "duplicate",
    "retried",
    "dead_lettered",
    "filtered",
];

/// Installs the JSON log subscriber once; later calls do nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .try_init();
}

/// One (event, destination) pair's outcome as an EMF line: `Events` (count), and when
/// known `DeliveryLatency` and `EndToEndAge` (now minus the edge's received-at), in
/// milliseconds. Without a destination (a message that failed as a whole, or a filtered
/// one), the line has no `destination` dimension set.
pub fn event_metric(
    source: &str,
    destination: Option<&str>,
    outcome: &str,
    latency_ms: Option<u64>,
    age_ms: Option<u64>,
) -> String {
    use std::io::Write;
    let now = crate::clock::now_ms();
    // Written directly (one allocation), byte for byte what serializing the equivalent
    // `serde_json::Value` gives: keys in sorted order, strings escaped like serde_json.
    // Writes into a Vec cannot fail.
    let mut line = Vec::with_capacity(400 + source.len());
    line.push(b'{');
    if let Some(ms) = latency_ms {
        let _ = write!(line, "\"DeliveryLatency\":{ms},");
    }
    if let Some(ms) = age_ms {
        let _ = write!(line, "\"EndToEndAge\":{ms},");
    }
    line.extend_from_slice(
        b"\"Events\":1,\"_aws\":{\"CloudWatchMetrics\":[{\"Dimensions\":[[\"source\",\"outcome\"],",
    );
    if destination.is_some() {
        line.extend_from_slice(b"[\"source\",\"destination\",\"outcome\"],");
    }
    line.extend_from_slice(b"[\"outcome\"]],\"Metrics\":[{\"Name\":\"Events\",\"Unit\":\"Count\"}");
    if latency_ms.is_some() {
        line.extend_from_slice(b",{\"Name\":\"DeliveryLatency\",\"Unit\":\"Milliseconds\"}");
    }
    if age_ms.is_some() {
        line.extend_from_slice(b",{\"Name\":\"EndToEndAge\",\"Unit\":\"Milliseconds\"}");
    }
    line.extend_from_slice(b"],\"Namespace\":");
    json_text::string(&mut line, METRICS_NAMESPACE);
    let _ = write!(line, "}}],\"Timestamp\":{now}}},");
    if let Some(name) = destination {
        line.extend_from_slice(b"\"destination\":");
        json_text::string(&mut line, name);
        line.push(b',');
    }
    line.extend_from_slice(b"\"outcome\":");
    json_text::string(&mut line, outcome);
    line.extend_from_slice(b",\"source\":");
    json_text::string(&mut line, source);
    line.push(b'}');
    // Fixed ASCII, digits and escaped `str`s: always UTF-8.
    String::from_utf8(line).unwrap_or_default()
}

/// An event that matched none of its source's destinations: `Events` with outcome
/// `filtered`, and `NonJsonBodies` (1) when a filter read its body and it was not JSON.
pub fn filtered_metric(source: &str, body_not_json: bool) -> String {
    let now = crate::clock::now_ms();
    let mut metrics = vec![serde_json::json!({"Name": "Events", "Unit": "Count"})];
    let mut line = serde_json::json!({"source": source, "outcome": "filtered", "Events": 1});
    if body_not_json {
        metrics.push(serde_json::json!({"Name": "NonJsonBodies", "Unit": "Count"}));
        line["NonJsonBodies"] = 1.into();
    }
    line["_aws"] = serde_json::json!({
        "Timestamp": now,
        "CloudWatchMetrics": [{
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [["source", "outcome"], ["outcome"]],
            "Metrics": metrics,
        }],
    });
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as first written, with `serde_json::Value`: the reference for the format.
    fn event_metric_value(
        source: &str,
        destination: Option<&str>,
        outcome: &str,
        latency_ms: Option<u64>,
        age_ms: Option<u64>,
    ) -> String {
        let now = crate::clock::now_ms();
        let mut metrics = vec![serde_json::json!({"Name": "Events", "Unit": "Count"})];
        let mut line = serde_json::json!({
            "source": source,
            "outcome": outcome,
            "Events": 1,
        });
        let mut dimensions = vec![serde_json::json!(["source", "outcome"])];
        if let Some(name) = destination {
            line["destination"] = name.into();
            dimensions.push(serde_json::json!(["source", "destination", "outcome"]));
        }
        dimensions.push(serde_json::json!(["outcome"]));
        if let Some(ms) = latency_ms {
            metrics.push(serde_json::json!({"Name": "DeliveryLatency", "Unit": "Milliseconds"}));
            line["DeliveryLatency"] = ms.into();
        }
        if let Some(ms) = age_ms {
            metrics.push(serde_json::json!({"Name": "EndToEndAge", "Unit": "Milliseconds"}));
            line["EndToEndAge"] = ms.into();
        }
        line["_aws"] = serde_json::json!({
            "Timestamp": now,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                // Per source and outcome, and per outcome across sources (what alarms and
                // the dashboard use: a template cannot list every source).
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        });
        line.to_string()
    }

    #[test]
    fn emf_lines_are_what_serde_json_writes() {
        for (source, destination, outcome, latency, age) in [
            ("github", Some("default"), "delivered", Some(12), Some(340)),
            ("s", None, "retried", None, None),
            (
                "we\"ird\\src\u{1}",
                Some("a\"b"),
                "duplicate",
                None,
                Some(7),
            ),
            ("x", Some("audit"), "dead_lettered", Some(0), None),
        ] {
            let fast: serde_json::Value =
                serde_json::from_str(&event_metric(source, destination, outcome, latency, age))
                    .unwrap();
            let reference = event_metric_value(source, destination, outcome, latency, age);
            let reference: serde_json::Value = serde_json::from_str(&reference).unwrap();
            // Timestamps differ by the time between the two calls.
            let strip = |mut v: serde_json::Value| {
                v["_aws"]["Timestamp"] = 0.into();
                v.to_string()
            };
            assert_eq!(strip(fast.clone()), strip(reference));
            // Byte for byte, timestamp aside.
            let line = event_metric(source, destination, outcome, latency, age);
            assert_eq!(line, {
                let mut v = fast;
                let ts = serde_json::from_str::<serde_json::Value>(&line).unwrap()["_aws"]
                    ["Timestamp"]
                    .clone();
                v["_aws"]["Timestamp"] = ts;
                v.to_string()
            });
        }
    }

    #[test]
    fn emf_lines_declare_their_metrics() {
        let line: serde_json::Value = serde_json::from_str(&event_metric(
            "github",
            Some("billing"),
            "delivered",
            Some(12),
            Some(340),
        ))
        .unwrap();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1],
            serde_json::json!(["source", "destination", "outcome"])
        );
        assert_eq!(line["destination"], "billing");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            METRICS_NAMESPACE
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1],
            "outcome"
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            (line["Events"].as_u64(), line["DeliveryLatency"].as_u64()),
            (Some(1), Some(12))
        );
        let bare: serde_json::Value =
            serde_json::from_str(&event_metric("s", None, "retried", None, None)).unwrap();
        assert_eq!(
            bare["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
