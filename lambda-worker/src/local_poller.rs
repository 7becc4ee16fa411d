//! The local stand-in for the Lambda SQS event source mapping.
//!
//! Long-polls the queue, hands each batch to the same [`Consumer::handle`] the `bootstrap`
//! binary runs (as a real `SqsEvent` in a `LambdaEvent`), deletes the records that
//! succeeded and leaves failures to reappear after the visibility timeout, so the queue's
//! RedrivePolicy moves poison messages to the DLQ exactly as in AWS.

use crate::batch::Consumer;
use crate::clock::now_ms;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use lambda_runtime::{Context, LambdaEvent};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PollerOptions {
    pub queue_url: String,
    pub region: String,
    /// Long-poll wait per receive (SQS allows 0 to 20 s).
    pub wait_secs: i32,
    /// Records per batch (1 to 10).
    pub batch_size: i32,
    /// Each invocation's deadline from its start (Lambda's function timeout); capped at
    /// the queue's visibility timeout, as AWS requires of an event source mapping.
    pub function_timeout: Duration,
}

/// Polls until `shutdown` completes. A batch in flight is finished first.
pub async fn run(
    consumer: Arc<Consumer>,
    sqs: aws_sdk_sqs::Client,
    options: PollerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let visibility = visibility_timeout(&sqs, &options.queue_url).await;
    tracing::info!(queue_url = %options.queue_url, visibility_secs = visibility.as_secs(), "local poller started");
    tokio::pin!(shutdown);
    loop {
        let receive = sqs
            .receive_message()
            .queue_url(&options.queue_url)
            .max_number_of_messages(options.batch_size)
            .wait_time_seconds(options.wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send();
        let received = tokio::select! {
            _ = &mut shutdown => break,
            r = receive => r,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(detail = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed; retrying");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        let receipts: HashMap<String, String> = messages
            .iter()
            .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
            .collect();
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| to_record(m, &options))
            .collect();
        let mut context = Context::default();
        context.request_id = format!("local-{}", now_ms());
        context.deadline = now_ms() + options.function_timeout.min(visibility).as_millis() as u64;
        let response = consumer.handle(LambdaEvent::new(event, context)).await;
        let failed: HashSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let entries: Vec<_> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(*id))
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        match sqs
            .delete_message_batch()
            .queue_url(&options.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) if !out.failed.is_empty() => {
                tracing::warn!(
                    failed = out.failed.len(),
                    "some deletes failed; those records will be redelivered"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(detail = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed; records will be redelivered")
            }
        }
    }
    tracing::info!("local poller stopped");
}

async fn visibility_timeout(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Duration {
    let secs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .ok()
        .and_then(|out| {
            out.attributes?
                .get(&QueueAttributeName::VisibilityTimeout)?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// The queue ARN the event source mapping would report, from the queue URL.
fn queue_arn(queue_url: &str, region: &str) -> String {
    let mut parts = queue_url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    format!("arn:aws:sqs:{region}:{account}:{name}")
}

/// An SQS message shaped as the event source mapping shapes it.
fn to_record(message: Message, options: &PollerOptions) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id;
    record.receipt_handle = message.receipt_handle;
    record.body = message.body;
    record.md5_of_body = message.md5_of_body;
    record.md5_of_message_attributes = message.md5_of_message_attributes;
    record.attributes = message
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect();
    record.message_attributes = message
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut attr = SqsMessageAttribute::default();
            attr.string_value = v.string_value;
            attr.data_type = Some(v.data_type);
            (k, attr)
        })
        .collect();
    record.event_source = Some("aws:sqs".to_string());
    record.event_source_arn = Some(queue_arn(&options.queue_url, &options.region));
    record.aws_region = Some(options.region.clone());
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_from_queue_url() {
        assert_eq!(
            queue_arn(
                "http://127.0.0.1:5000/123456789012/sluice-events",
                "us-east-1"
            ),
            "arn:aws:sqs:us-east-1:123456789012:sluice-events"
        );
    }
}
