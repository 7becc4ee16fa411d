//! A queue's counters and settings, from one GetQueueAttributes call.
//!
//! Read-only: it never receives, so it never changes a receive count or a visibility.

use crate::error::{self, Result};
use crate::target::queue_name;
use aws_sdk_sqs::types::QueueAttributeName as Attr;
use serde::Serialize;

/// What SQS reports about one queue (approximate on AWS, exact on moto).
#[derive(Debug, Clone, Serialize)]
pub struct QueueInfo {
    pub url: String,
    pub name: String,
    /// Messages waiting to be received.
    pub visible: u64,
    /// Messages received and not yet deleted (being processed, or hidden for a backoff).
    pub in_flight: u64,
    /// Messages sent with a delay that has not passed yet.
    pub delayed: u64,
    #[serde(skip)]
    pub arn: Option<String>,
    /// The redrive policy's maxReceiveCount, when the queue has one.
    pub max_receive_count: Option<u64>,
}

impl QueueInfo {
    /// Every message in the queue, whatever its state.
    pub fn depth(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// Reads `url`'s counters; an unknown queue is a not-found error.
pub async fn info(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<QueueInfo> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attr::ApproximateNumberOfMessages)
        .attribute_names(Attr::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(Attr::ApproximateNumberOfMessagesDelayed)
        .attribute_names(Attr::QueueArn)
        .attribute_names(Attr::RedrivePolicy)
        .send()
        .await
        .map_err(|e| error::aws(format!("read queue {url}"), e))?;
    let attrs = out.attributes.unwrap_or_default();
    let count = |k: Attr| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let max_receive_count = attrs
        .get(&Attr::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| match &p["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        });
    Ok(QueueInfo {
        url: url.to_string(),
        name: queue_name(url).to_string(),
        visible: count(Attr::ApproximateNumberOfMessages),
        in_flight: count(Attr::ApproximateNumberOfMessagesNotVisible),
        delayed: count(Attr::ApproximateNumberOfMessagesDelayed),
        arn: attrs.get(&Attr::QueueArn).cloned(),
        max_receive_count,
    })
}
