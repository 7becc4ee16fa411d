//! Every metric the template's alarms and dashboard watch exists. A wrong namespace, metric
//! name, dimension or dimension value is not an error anywhere: the alarm just never sees a
//! data point and stays OK (missing data is "not breaching") while the pipeline burns.
//!
//! The consumer's own metrics are read from the EMF lines it writes
//! (`telemetry::event_metric`, one per outcome in `telemetry::OUTCOMES`): namespace, metric
//! names, dimension sets, outcome values. AWS metrics are checked against the metric and
//! dimension names SQS and Lambda publish, and their dimension values must point at this
//! template's own queues and function.

use serde_yaml::Value;
use sluice_lambda_worker::telemetry;
use std::collections::{BTreeMap, BTreeSet};

/// What the consumer's EMF lines declare.
struct Emitted {
    namespace: String,
    metrics: BTreeSet<String>,
    dimension_sets: Vec<BTreeSet<String>>,
    outcomes: BTreeSet<String>,
}

fn emitted() -> Emitted {
    let mut namespaces = BTreeSet::new();
    let mut metrics = BTreeSet::new();
    let mut dimension_sets: Vec<BTreeSet<String>> = Vec::new();
    let mut outcomes = BTreeSet::new();
    for outcome in telemetry::OUTCOMES {
        let line: serde_json::Value = serde_json::from_str(&telemetry::event_metric(
            "any-source",
            Some("any-destination"),
            outcome,
            Some(1),
            Some(1),
        ))
        .expect("an EMF line is JSON");
        outcomes.insert(
            line["outcome"]
                .as_str()
                .expect("EMF line has an outcome")
                .to_string(),
        );
        for directive in line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("EMF CloudWatchMetrics")
        {
            namespaces.insert(directive["Namespace"].as_str().unwrap().to_string());
            for set in directive["Dimensions"].as_array().unwrap() {
                let set: BTreeSet<String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect();
                if !dimension_sets.contains(&set) {
                    dimension_sets.push(set);
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(
                    line.get(name).is_some(),
                    "EMF declares {name} but carries no value for it"
                );
                metrics.insert(name.to_string());
            }
        }
    }
    assert_eq!(namespaces.len(), 1, "one namespace: {namespaces:?}");
    Emitted {
        namespace: namespaces.into_iter().next().unwrap(),
        metrics,
        dimension_sets,
        outcomes,
    }
}

/// Metric names and dimension sets AWS publishes, for the namespaces the template uses.
/// From the SQS and Lambda CloudWatch metric references.
fn aws_metrics(
    namespace: &str,
) -> Option<(&'static [&'static str], &'static [&'static [&'static str]])> {
    match namespace {
        "AWS/SQS" => Some((
            &[
                "ApproximateAgeOfOldestMessage",
                "ApproximateNumberOfGroupsWithInflightMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesVisible",
                "NumberOfDeduplicatedSentMessages",
                "NumberOfEmptyReceives",
                "NumberOfMessagesDeleted",
                "NumberOfMessagesReceived",
                "NumberOfMessagesSent",
                "SentMessageSize",
            ],
            &[&["QueueName"]],
        )),
        "AWS/Lambda" => Some((
            &[
                "ConcurrentExecutions",
                "DeadLetterErrors",
                "DestinationDeliveryFailures",
                "Duration",
                "Errors",
                "Invocations",
                "PostRuntimeExtensionsDuration",
                "ProvisionedConcurrencySpilloverInvocations",
                "Throttles",
            ],
            &[
                &["FunctionName"],
                &["FunctionName", "Resource"],
                &["FunctionName", "ExecutedVersion"],
            ],
        )),
        _ => None,
    }
}

/// A dimension value as written in the template, reduced to what can be checked.
#[derive(Debug, Clone, PartialEq)]
enum DimValue {
    Literal(String),
    /// `!Ref X` or `${X}`.
    Ref(String),
    /// `!GetAtt X.Y` or `${X.Y}`.
    GetAtt(String, String),
    Other(String),
    /// A dimension a `SEARCH` expression lists without a value: every value it has.
    Any,
}

#[derive(Debug)]
struct MetricUse {
    /// Where it is used, for messages.
    at: String,
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, DimValue>,
}

fn template() -> Value {
    let text = std::fs::read_to_string(sluice_e2e::paths::root().join("template.yaml"))
        .expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

fn resources_of_type<'a>(doc: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(name, r)| (name.as_str().unwrap().to_string(), r))
        .collect()
}

fn yaml_dim_value(v: &Value) -> DimValue {
    match v {
        Value::String(s) => DimValue::Literal(s.clone()),
        Value::Tagged(t) if t.tag == "Ref" => DimValue::Ref(t.value.as_str().unwrap_or("").into()),
        Value::Tagged(t) if t.tag == "GetAtt" => {
            let s = t.value.as_str().unwrap_or("");
            let (r, a) = s.split_once('.').unwrap_or((s, ""));
            DimValue::GetAtt(r.into(), a.into())
        }
        other => DimValue::Other(format!("{other:?}")),
    }
}

fn yaml_metric(at: String, m: &Value) -> MetricUse {
    let dimensions = m["Dimensions"]
        .as_sequence()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    (
                        d["Name"].as_str().expect("dimension Name").to_string(),
                        yaml_dim_value(&d["Value"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    MetricUse {
        at,
        namespace: m["Namespace"].as_str().expect("Namespace").to_string(),
        name: m["MetricName"].as_str().expect("MetricName").to_string(),
        dimensions,
    }
}

/// A `SEARCH('{Namespace,dim,...} MetricName="M" dim="v"', ...)` expression as the metric it
/// finds: its namespace, metric name, and dimensions (those given a value in the search
/// keep it; the others match any value, as a per-destination breakdown does).
fn search_metric(expression: &str) -> Option<(String, String, BTreeMap<String, DimValue>)> {
    let inner = expression.trim().strip_prefix("SEARCH('")?;
    let (query, _) = inner.split_once('\'')?;
    let schema = query.strip_prefix('{')?;
    let (schema, rest) = schema.split_once('}')?;
    let mut parts = schema.split(',').map(str::trim);
    let namespace = parts.next()?.to_string();
    let mut dimensions: BTreeMap<String, DimValue> =
        parts.map(|d| (d.to_string(), DimValue::Any)).collect();
    let mut name = None;
    for term in rest.split_whitespace() {
        let (key, value) = term.split_once('=')?;
        let value = value.trim_matches('"').to_string();
        if key == "MetricName" {
            name = Some(value);
        } else {
            dimensions.insert(key.to_string(), DimValue::Literal(value));
        }
    }
    Some((namespace, name?, dimensions))
}

/// Lower-case identifiers an expression references (metric ids; functions are upper case).
fn expression_ids(expression: &str) -> BTreeSet<String> {
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| t.starts_with(|c: char| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect()
}

/// The metrics every alarm watches. Checks metric-math alarms are well formed on the way.
fn alarm_metrics(doc: &Value) -> Vec<MetricUse> {
    let mut uses = Vec::new();
    let alarms = resources_of_type(doc, "AWS::CloudWatch::Alarm");
    assert!(
        alarms.len() >= 5,
        "expected the template's alarms, found {}",
        alarms.len()
    );
    for (name, alarm) in alarms {
        let p = &alarm["Properties"];
        match p["Metrics"].as_sequence() {
            None => uses.push(yaml_metric(name.clone(), p)),
            Some(queries) => {
                assert!(
                    p["MetricName"].is_null() && p["Namespace"].is_null(),
                    "{name}: Metrics and MetricName are exclusive"
                );
                let ids: BTreeSet<String> = queries
                    .iter()
                    .map(|q| q["Id"].as_str().expect("metric query Id").to_string())
                    .collect();
                let returned = queries
                    .iter()
                    .filter(|q| q["ReturnData"].as_bool().unwrap_or(true))
                    .count();
                assert_eq!(returned, 1, "{name}: exactly one query must return data");
                for q in queries {
                    let id = q["Id"].as_str().unwrap();
                    if let Some(expression) = q["Expression"].as_str() {
                        let refs = expression_ids(expression);
                        assert!(
                            refs.is_subset(&ids),
                            "{name}.{id}: expression references {:?}, queries are {ids:?}",
                            refs.difference(&ids).collect::<Vec<_>>()
                        );
                    } else {
                        let stat = &q["MetricStat"];
                        assert!(
                            !stat.is_null(),
                            "{name}.{id}: neither Expression nor MetricStat"
                        );
                        uses.push(yaml_metric(format!("{name}.{id}"), &stat["Metric"]));
                    }
                }
            }
        }
    }
    uses
}

/// The dashboard body (a `!Sub` string) as JSON: substitutions inside strings become
/// `${...}` markers kept verbatim, bare ones (numbers) become 0.
fn dashboard_json(body: &str) -> serde_json::Value {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if !in_string && rest.starts_with("${") {
            let end = rest.find('}').expect("unterminated ${");
            out.push('0');
            rest = &rest[end + 1..];
            continue;
        }
        if in_string && !escaped && c == '"' {
            in_string = false;
        } else if !in_string && c == '"' {
            in_string = true;
        }
        escaped = in_string && !escaped && c == '\\';
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("dashboard body is not JSON: {e}\n{out}"))
}

fn sub_dim_value(s: &str) -> DimValue {
    match s.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
        Some(inner) => match inner.split_once('.') {
            Some((r, a)) => DimValue::GetAtt(r.into(), a.into()),
            None => DimValue::Ref(inner.into()),
        },
        None if s.contains("${") => DimValue::Other(s.into()),
        None => DimValue::Literal(s.into()),
    }
}

/// The metrics every dashboard widget graphs.
fn dashboard_metrics(doc: &Value) -> Vec<MetricUse> {
    let mut uses = Vec::new();
    for (name, dashboard) in resources_of_type(doc, "AWS::CloudWatch::Dashboard") {
        let body = &dashboard["Properties"]["DashboardBody"];
        let text = match body {
            Value::Tagged(t) if t.tag == "Sub" => t.value.as_str().expect("Sub string"),
            Value::String(s) => s.as_str(),
            other => panic!("{name}: DashboardBody is {other:?}"),
        };
        let json = dashboard_json(text);
        for (w, widget) in json["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .enumerate()
        {
            let title = widget["properties"]["title"].as_str().unwrap_or("?");
            let Some(rows) = widget["properties"]["metrics"].as_array() else {
                continue;
            };
            let ids: BTreeSet<String> = rows
                .iter()
                .filter_map(|r| r.as_array()?.last()?.get("id")?.as_str().map(String::from))
                .collect();
            for row in rows {
                let row = row.as_array().expect("a metrics row is an array");
                let at = format!("{name} widget {w} ({title})");
                if let Some(expression) = row[0].get("expression").and_then(|e| e.as_str()) {
                    if let Some(search) = search_metric(expression) {
                        uses.push(MetricUse {
                            at,
                            namespace: search.0,
                            name: search.1,
                            dimensions: search.2,
                        });
                        continue;
                    }
                    let refs = expression_ids(expression);
                    assert!(
                        refs.is_subset(&ids),
                        "{at}: expression references {refs:?}, ids {ids:?}"
                    );
                    continue;
                }
                let strings: Vec<&str> = row.iter().filter_map(|v| v.as_str()).collect();
                assert!(
                    strings.len() >= 2 && strings.len().is_multiple_of(2),
                    "{at}: expected [namespace, name, (dimension, value)*], got {row:?}"
                );
                assert!(
                    !strings.contains(&"...") && !strings.contains(&"."),
                    "{at}: write metrics out in full (no \".\"/\"...\" shorthand)"
                );
                let dimensions = strings[2..]
                    .chunks(2)
                    .map(|kv| (kv[0].to_string(), sub_dim_value(kv[1])))
                    .collect();
                uses.push(MetricUse {
                    at,
                    namespace: strings[0].into(),
                    name: strings[1].into(),
                    dimensions,
                });
            }
        }
    }
    uses
}

/// Checks one metric against the consumer's EMF or AWS's published metrics; returns the
/// problems found.
fn check(doc: &Value, emitted: &Emitted, m: &MetricUse) -> Vec<String> {
    let mut problems = Vec::new();
    let at = &m.at;
    let names: BTreeSet<String> = m.dimensions.keys().cloned().collect();
    let resource_type = |r: &str| {
        doc["Resources"][r]["Type"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    if m.namespace == emitted.namespace {
        if !emitted.metrics.contains(&m.name) {
            problems.push(format!(
                "{at}: the consumer emits no {}/{} (it emits {:?})",
                m.namespace, m.name, emitted.metrics
            ));
        }
        if !emitted.dimension_sets.contains(&names) {
            problems.push(format!(
                "{at}: dimensions {names:?} are not a set the consumer emits ({:?})",
                emitted.dimension_sets
            ));
        }
        for (dim, value) in &m.dimensions {
            match (dim.as_str(), value) {
                ("outcome", DimValue::Literal(v)) if emitted.outcomes.contains(v) => {}
                ("outcome", v) => problems.push(format!(
                    "{at}: outcome {v:?} is not one of {:?}",
                    emitted.outcomes
                )),
                // A SEARCH breaks down by a dimension whose values come from config.
                (_, DimValue::Any) => {}
                (other, _) => problems.push(format!(
                    "{at}: dimension {other} cannot be used here: the template does not know \
                     its values (use the [outcome] set)"
                )),
            }
        }
        return problems;
    }
    let Some((metric_names, dimension_sets)) = aws_metrics(&m.namespace) else {
        problems.push(format!(
            "{at}: namespace {} is neither the consumer's ({}) nor a known AWS one",
            m.namespace, emitted.namespace
        ));
        return problems;
    };
    if !metric_names.contains(&m.name.as_str()) {
        problems.push(format!(
            "{at}: {} publishes no metric {}",
            m.namespace, m.name
        ));
    }
    let known_set = dimension_sets
        .iter()
        .any(|set| set.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>() == names);
    if !known_set {
        problems.push(format!(
            "{at}: {} {} has no dimension set {names:?}",
            m.namespace, m.name
        ));
    }
    for (dim, value) in &m.dimensions {
        let ok = match (dim.as_str(), value) {
            ("QueueName", DimValue::GetAtt(r, a)) => {
                a == "QueueName" && resource_type(r) == "AWS::SQS::Queue"
            }
            ("FunctionName", DimValue::Ref(r)) => matches!(
                resource_type(r).as_str(),
                "AWS::Serverless::Function" | "AWS::Lambda::Function"
            ),
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "{at}: dimension {dim} = {value:?} does not name one of this template's \
                 queues (GetAtt Q.QueueName) or functions (Ref F)"
            ));
        }
    }
    problems
}

#[test]
fn the_worker_truth_is_what_the_template_expects() {
    let e = emitted();
    assert_eq!(e.namespace, telemetry::METRICS_NAMESPACE);
    assert!(
        e.dimension_sets
            .contains(&BTreeSet::from(["outcome".to_string()])),
        "alarms and the dashboard rely on the consumer emitting an [outcome] dimension set"
    );
    for m in ["Events", "DeliveryLatency", "EndToEndAge"] {
        assert!(e.metrics.contains(m), "consumer no longer emits {m}");
    }
}

#[test]
fn every_alarm_metric_is_emitted_by_aws_or_the_consumer() {
    let doc = template();
    let e = emitted();
    let uses = alarm_metrics(&doc);
    let problems: Vec<String> = uses.iter().flat_map(|m| check(&doc, &e, m)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Both kinds are really covered, not vacuously.
    assert!(uses.iter().any(|m| m.namespace == e.namespace));
    assert!(uses.iter().any(|m| m.namespace == "AWS/SQS"));
    assert!(uses.iter().any(|m| m.namespace == "AWS/Lambda"));
}

#[test]
fn every_dashboard_metric_is_emitted_by_aws_or_the_consumer() {
    let doc = template();
    let e = emitted();
    let uses = dashboard_metrics(&doc);
    assert!(!uses.is_empty(), "the dashboard graphs nothing");
    let problems: Vec<String> = uses.iter().flat_map(|m| check(&doc, &e, m)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The dashboard shows every outcome the consumer has.
    let graphed: BTreeSet<String> = uses
        .iter()
        .filter(|m| m.namespace == e.namespace && m.name == "Events")
        .filter_map(|m| match m.dimensions.get("outcome") {
            Some(DimValue::Literal(v)) => Some(v.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(graphed, e.outcomes, "Events by outcome on the dashboard");
}

#[test]
fn the_checker_rejects_wrong_metrics() {
    let doc = template();
    let e = emitted();
    let bad = |namespace: &str, name: &str, dims: &[(&str, DimValue)]| MetricUse {
        at: "probe".into(),
        namespace: namespace.into(),
        name: name.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    let lit = |s: &str| DimValue::Literal(s.into());
    let queue = DimValue::GetAtt("EventsQueue".into(), "QueueName".into());
    for probe in [
        bad("Sluice", "Event", &[("outcome", lit("delivered"))]),
        bad("Sluice", "Events", &[("outcome", lit("failed"))]),
        bad(
            "Sluice",
            "Events",
            &[("source", lit("github")), ("outcome", lit("retried"))],
        ),
        bad("Sluice", "Events", &[]),
        bad("Sluicer", "Events", &[("outcome", lit("delivered"))]),
        bad(
            "AWS/SQS",
            "ApproximateAgeOfOldestMessages",
            &[("QueueName", queue.clone())],
        ),
        bad(
            "AWS/SQS",
            "NumberOfMessagesSent",
            &[("Queue", queue.clone())],
        ),
        bad(
            "AWS/SQS",
            "NumberOfMessagesSent",
            &[("QueueName", lit("sluice-events"))],
        ),
        bad(
            "AWS/SQS",
            "NumberOfMessagesSent",
            &[(
                "QueueName",
                DimValue::GetAtt("IdempotencyTable".into(), "QueueName".into()),
            )],
        ),
        bad(
            "AWS/Lambda",
            "Errors",
            &[("FunctionName", DimValue::Ref("AlarmTopic".into()))],
        ),
    ] {
        assert!(!check(&doc, &e, &probe).is_empty(), "accepted {probe:?}");
    }
    assert!(check(
        &doc,
        &e,
        &bad("Sluice", "Events", &[("outcome", lit("dead_lettered"))])
    )
    .is_empty());
    assert!(check(
        &doc,
        &e,
        &bad("AWS/SQS", "NumberOfMessagesSent", &[("QueueName", queue)])
    )
    .is_empty());
}

/// On-call reads the alarm description first: it must say where the runbook section is, the
/// section must exist, and the alarm must notify someone.
#[test]
fn every_alarm_links_an_existing_runbook_section_and_notifies() {
    let doc = template();
    let runbook = std::fs::read_to_string(sluice_e2e::paths::root().join("docs/runbook.md"))
        .expect("docs/runbook.md");
    for (name, alarm) in resources_of_type(&doc, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let description = match &p["AlarmDescription"] {
            Value::Tagged(t) if t.tag == "Sub" => t.value.as_str().unwrap_or("").to_string(),
            Value::String(s) => s.clone(),
            other => panic!("{name}: AlarmDescription is {other:?}"),
        };
        assert!(
            description.len() <= 1024,
            "{name}: description over 1024 characters"
        );
        let anchor = description
            .split("${RunbookUrl}#")
            .nth(1)
            .unwrap_or_else(|| {
                panic!("{name}: description does not link ${{RunbookUrl}}#<section>")
            })
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .next()
            .unwrap();
        assert!(
            runbook.contains(&format!("<a id=\"{anchor}\"></a>")),
            "{name}: docs/runbook.md has no section anchor {anchor}"
        );
        for actions in ["AlarmActions", "OKActions"] {
            let targets = p[actions]
                .as_sequence()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(
                targets
                    .iter()
                    .any(|t| yaml_dim_value(t) == DimValue::Ref("AlarmTopic".into())),
                "{name}: {actions} does not notify AlarmTopic"
            );
        }
    }
}
