//! `sluice status`: how the pipeline is doing, in one screen (or one JSON object).
//!
//! Queue depth, in flight and delayed, DLQ depth (GetQueueAttributes); oldest message age
//! and throughput from CloudWatch on AWS (AWS/SQS `ApproximateAgeOfOldestMessage`,
//! `NumberOfMessagesDeleted`, `NumberOfMessagesSent`, last 15 minutes); an estimated time to
//! drain from those; and the states of the alarms on the two queues (DescribeAlarms:
//! alarms whose dimensions name either queue, plus those matching `--alarm-prefix`).
//!
//! moto publishes no AWS/SQS metrics, so on the local stack age, throughput and drain time
//! are labelled unknown unless the queue is empty; nothing is estimated by receiving,
//! because receiving changes receive counts on the main queue (and can dead-letter).
//! Strictly read-only: never receives, sends or deletes a message.

use crate::alarms::{self, Alarm};
use crate::error::{self, CliError, Result};
use crate::queues::{self, QueueInfo};
use crate::target::Target;
use crate::{table, times};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use clap::Args;
use serde::Serialize;

/// The window metrics are read over.
const WINDOW_MINS: u32 = 15;
const NO_METRICS: &str = "unknown (local stack has no CloudWatch metrics)";

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Also show alarms whose name starts with PREFIX [default: the stack's prefix, `<stack>-`
    /// for a queue named `<stack>-events`, as template.yaml names them]. Alarms on the
    /// queues' metrics are always shown.
    #[arg(long, value_name = "PREFIX")]
    pub alarm_prefix: Option<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    target: String,
    local: bool,
    queue: QueueStatus,
    dlq: Option<QueueStatus>,
    throughput: Throughput,
    drain: Drain,
    alarms: Alarms,
}

#[derive(Debug, Serialize)]
struct QueueStatus {
    #[serde(flatten)]
    info: QueueInfo,
    /// Visible + in flight + delayed.
    depth: u64,
    /// Age of the oldest message, seconds; `None` when unknown.
    oldest_age_secs: Option<f64>,
    /// Where the age comes from (`cloudwatch`, `empty`, or why it is unknown).
    oldest_age_basis: String,
}

#[derive(Debug, Serialize)]
struct Throughput {
    /// Messages processed (deleted) per minute, averaged over the window.
    deleted_per_min: Option<f64>,
    /// Messages arriving (sent) per minute, averaged over the window.
    sent_per_min: Option<f64>,
    window_mins: u32,
    basis: String,
}

#[derive(Debug, Serialize)]
struct Drain {
    /// Estimated seconds until the main queue is empty; `None` when unknown or not draining.
    estimate_secs: Option<u64>,
    basis: String,
}

#[derive(Debug, Serialize)]
struct Alarms {
    items: Vec<Alarm>,
    /// Why the alarms could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// CloudWatch readings for the two queues.
#[derive(Debug, Default)]
struct Metrics {
    queue_age: Option<f64>,
    dlq_age: Option<f64>,
    deleted_per_min: Option<f64>,
    sent_per_min: Option<f64>,
}

/// The average of one-minute sums.
fn per_minute(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub async fn run(args: StatusArgs, target: &Target, json: bool) -> Result<()> {
    let queue_url = target.queue_url()?;
    let sqs = target.sqs();
    let main = queues::info(&sqs, queue_url).await?;
    let dlq = match target.dlq_url_opt() {
        Some(url) => Some(queues::info(&sqs, url).await?),
        None => None,
    };
    let mut problems: Vec<String> = Vec::new();
    let metrics = if target.is_local() {
        None
    } else {
        match metrics(target, &main, dlq.as_ref()).await {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        }
    };
    let mut names = vec![main.name.as_str()];
    if let Some(d) = &dlq {
        names.push(d.name.as_str());
    }
    let prefix = args
        .alarm_prefix
        .clone()
        .or_else(|| stack_prefix(&main.name));
    let alarms = match alarms::on_queues(target, &names, prefix.as_deref()).await {
        Ok(items) => Alarms { items, error: None },
        Err(e) => {
            problems.push(e.to_string());
            Alarms {
                items: Vec::new(),
                error: Some(e.to_string()),
            }
        }
    };
    let status = assemble(target, main, dlq, metrics.as_ref(), alarms);
    if json {
        println!(
            "{:#}",
            serde_json::to_value(&status).unwrap_or(serde_json::Value::Null)
        );
    } else {
        print_human(&status);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "status is incomplete: {}",
            problems.join("; ")
        )))
    }
}

/// `<stack>-` for a queue named `<stack>-events` (or `.fifo`): template.yaml names its
/// alarms `<stack>-queue-age`, `<stack>-retry-rate`, ….
fn stack_prefix(queue_name: &str) -> Option<String> {
    let stem = queue_name.strip_suffix(".fifo").unwrap_or(queue_name);
    stem.strip_suffix("-events")
        .filter(|s| !s.is_empty())
        .map(|s| format!("{s}-"))
}

fn age_of(info: &QueueInfo, reading: Option<f64>, local: bool) -> (Option<f64>, String) {
    if info.depth() == 0 {
        return (Some(0.0), "empty".into());
    }
    match (reading, local) {
        (_, true) => (None, NO_METRICS.into()),
        (Some(age), false) => (Some(age), "cloudwatch (latest 1-minute maximum)".into()),
        (None, false) => (
            None,
            format!("unknown (no CloudWatch datapoint in the last {WINDOW_MINS} min)"),
        ),
    }
}

fn assemble(
    target: &Target,
    main: QueueInfo,
    dlq: Option<QueueInfo>,
    metrics: Option<&Metrics>,
    alarms: Alarms,
) -> Status {
    let local = target.is_local();
    let queue_status = |info: QueueInfo, reading: Option<f64>| {
        let (oldest_age_secs, oldest_age_basis) = age_of(&info, reading, local);
        QueueStatus {
            depth: info.depth(),
            info,
            oldest_age_secs,
            oldest_age_basis,
        }
    };
    let throughput = Throughput {
        deleted_per_min: metrics.and_then(|m| m.deleted_per_min),
        sent_per_min: metrics.and_then(|m| m.sent_per_min),
        window_mins: WINDOW_MINS,
        basis: if local {
            NO_METRICS.into()
        } else if metrics.is_some() {
            format!("cloudwatch, average of the minutes reported in the last {WINDOW_MINS} min")
        } else {
            "unknown (CloudWatch could not be read)".into()
        },
    };
    let drain = drain(
        main.depth(),
        throughput.deleted_per_min,
        throughput.sent_per_min,
        local,
    );
    Status {
        target: target.describe(),
        local,
        queue: queue_status(main, metrics.and_then(|m| m.queue_age)),
        dlq: dlq.map(|d| queue_status(d, metrics.and_then(|m| m.dlq_age))),
        throughput,
        drain,
        alarms,
    }
}

/// Time to drain `depth` messages at the net rate (processed minus arriving).
fn drain(
    depth: u64,
    deleted_per_min: Option<f64>,
    sent_per_min: Option<f64>,
    local: bool,
) -> Drain {
    if depth == 0 {
        return Drain {
            estimate_secs: Some(0),
            basis: "empty".into(),
        };
    }
    let Some(deleted) = deleted_per_min else {
        return Drain {
            estimate_secs: None,
            basis: if local {
                NO_METRICS.into()
            } else {
                "unknown (no throughput reading)".into()
            },
        };
    };
    let arriving = sent_per_min.unwrap_or(0.0);
    let net = deleted - arriving;
    if net <= 0.0 {
        return Drain {
            estimate_secs: None,
            basis: if deleted <= 0.0 {
                format!("not draining: nothing processed in the last {WINDOW_MINS} min")
            } else {
                format!(
                    "not draining: processed {deleted:.1}/min, arriving {arriving:.1}/min \
                     (last {WINDOW_MINS} min)"
                )
            },
        };
    }
    Drain {
        estimate_secs: Some((depth as f64 / net * 60.0).ceil() as u64),
        basis: format!("at the net rate of the last {WINDOW_MINS} min ({net:.1}/min)"),
    }
}

fn query(id: &str, metric: &str, queue: &str, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/SQS")
                        .metric_name(metric)
                        .dimensions(Dimension::builder().name("QueueName").value(queue).build())
                        .build(),
                )
                .period(60)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

async fn metrics(target: &Target, main: &QueueInfo, dlq: Option<&QueueInfo>) -> Result<Metrics> {
    let now = times::now_ms() as i64;
    let mut queries = vec![
        query(
            "age_q",
            "ApproximateAgeOfOldestMessage",
            &main.name,
            "Maximum",
        ),
        query("deleted", "NumberOfMessagesDeleted", &main.name, "Sum"),
        query("sent", "NumberOfMessagesSent", &main.name, "Sum"),
    ];
    if let Some(d) = dlq {
        queries.push(query(
            "age_d",
            "ApproximateAgeOfOldestMessage",
            &d.name,
            "Maximum",
        ));
    }
    let out = target
        .cloudwatch()
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(DateTime::from_millis(now - i64::from(WINDOW_MINS) * 60_000))
        .end_time(DateTime::from_millis(now))
        .scan_by(ScanBy::TimestampDescending)
        .send()
        .await
        .map_err(|e| error::aws("read CloudWatch metrics (GetMetricData)", e))?;
    let mut m = Metrics::default();
    for r in out.metric_data_results() {
        let values = r.values();
        match r.id().unwrap_or_default() {
            "age_q" => m.queue_age = values.first().copied(),
            "age_d" => m.dlq_age = values.first().copied(),
            // Per minute over the minutes with a datapoint (one per 60 s period): SQS's
            // metrics arrive minutes late, so the newest minutes of the window have none
            // yet. No datapoint at all is no reading (SQS stops publishing for an idle
            // queue), not 0.
            "deleted" => m.deleted_per_min = per_minute(values),
            "sent" => m.sent_per_min = per_minute(values),
            _ => {}
        }
    }
    Ok(m)
}

fn show_age(q: &QueueStatus) -> String {
    match q.oldest_age_secs {
        Some(s) if q.oldest_age_basis == "empty" => format!("{} (empty)", times::age(s as u64)),
        Some(s) => times::age(s as u64),
        None => q.oldest_age_basis.clone(),
    }
}

fn print_human(s: &Status) {
    println!("target: {}", s.target);
    let mut rows = vec![vec![
        s.queue.info.name.clone(),
        s.queue.info.visible.to_string(),
        s.queue.info.in_flight.to_string(),
        s.queue.info.delayed.to_string(),
        show_age(&s.queue),
    ]];
    if let Some(d) = &s.dlq {
        rows.push(vec![
            format!("{} (DLQ)", d.info.name),
            d.info.visible.to_string(),
            d.info.in_flight.to_string(),
            d.info.delayed.to_string(),
            show_age(d),
        ]);
    }
    println!(
        "{}",
        table::render(
            &["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST"],
            &rows
        )
    );
    if s.dlq.is_none() {
        println!("(no DLQ configured: pass --dlq-url to include it)");
    }
    println!();
    match (s.throughput.deleted_per_min, s.throughput.sent_per_min) {
        (Some(d), sent) => println!(
            "throughput:  {d:.1}/min processed, {}/min arriving ({})",
            sent.map_or("?".into(), |v| format!("{v:.1}")),
            s.throughput.basis
        ),
        _ => println!("throughput:  {}", s.throughput.basis),
    }
    match s.drain.estimate_secs {
        Some(secs) => println!("drain:       {} ({})", times::age(secs), s.drain.basis),
        None => println!("drain:       {}", s.drain.basis),
    }
    if let Some(e) = &s.alarms.error {
        println!("alarms:      unavailable: {e}");
    } else if s.alarms.items.is_empty() {
        println!("alarms:      none on these queues");
    } else {
        println!("alarms:");
        let rows: Vec<Vec<String>> = s
            .alarms
            .items
            .iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    a.state.clone(),
                    a.metric.clone().unwrap_or_default(),
                    a.queue.clone().unwrap_or_default(),
                    a.updated.clone().unwrap_or_default(),
                ]
            })
            .collect();
        println!(
            "{}",
            table::render(&["NAME", "STATE", "METRIC", "QUEUE", "SINCE"], &rows)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_prefix_comes_from_the_queue_name() {
        assert_eq!(stack_prefix("sluice-events").as_deref(), Some("sluice-"));
        assert_eq!(
            stack_prefix("prod-x-events.fifo").as_deref(),
            Some("prod-x-")
        );
        assert_eq!(stack_prefix("orders"), None);
        assert_eq!(stack_prefix("-events"), None);
    }

    #[test]
    fn throughput_averages_the_minutes_reported() {
        assert_eq!(per_minute(&[]), None);
        // 3 minutes reported of a 15-minute window (the newest not yet published).
        assert_eq!(per_minute(&[30.0, 60.0, 90.0]), Some(60.0));
        assert_eq!(per_minute(&[0.0, 0.0]), Some(0.0));
    }

    #[test]
    fn drain_uses_the_net_rate() {
        assert_eq!(drain(0, None, None, true).estimate_secs, Some(0));
        assert_eq!(drain(10, None, None, true).basis, NO_METRICS);
        // 120 messages, 70/min processed, 10/min arriving: 2 minutes.
        assert_eq!(
            drain(120, Some(70.0), Some(10.0), false).estimate_secs,
            Some(120)
        );
        let stuck = drain(5, Some(1.0), Some(3.0), false);
        assert_eq!(stuck.estimate_secs, None);
        assert!(stuck.basis.starts_with("not draining"), "{}", stuck.basis);
        assert!(stuck.basis.contains("arriving 3.0/min"), "{}", stuck.basis);
        let stopped = drain(5, Some(0.0), None, false);
        assert!(
            stopped.basis.contains("nothing processed"),
            "{}",
            stopped.basis
        );
    }
}
