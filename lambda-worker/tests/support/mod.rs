//! What the consumer's integration tests share: envelopes and SQS records as the event
//! source mapping hands them over, a configuration for one source, and one invocation.
//! Each test file uses part of it.
#![allow(dead_code)]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use sluice_lambda_worker::{Consumer, ConsumerConfig};
use sluice_protocol::{Body, Envelope, SourceConfig, SourcesConfig, ENVELOPE_VERSION};
use std::sync::Arc;
use std::time::Duration;

/// An envelope from `source` with the provider's delivery id `key`, as the edge writes it.
pub fn envelope(id: &str, source: &str, key: &str, body: Body) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        id: id.into(),
        source: source.into(),
        idempotency_key: Some(key.into()),
        received_at_ms: 1,
        content_type: Some("application/json".into()),
        trace_id: None,
        headers: Default::default(),
        body,
    }
}

/// A record received for the first time.
pub fn record(message_id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

/// The defaults, for one source, with a 5 s delivery timeout and completed events kept an
/// hour.
pub fn config(source: SourceConfig, table: &str) -> ConsumerConfig {
    ConsumerConfig {
        completed_ttl: Duration::from_secs(3600),
        delivery_timeout: Duration::from_secs(5),
        ..ConsumerConfig::new(
            SourcesConfig {
                sources: vec![source],
            },
            table,
        )
    }
}

/// One invocation with `records`, without a deadline (the consumer's default window).
pub async fn handle(consumer: &Arc<Consumer>, records: Vec<SqsMessage>) -> SqsBatchResponse {
    let mut event = SqsEvent::default();
    event.records = records;
    consumer
        .handle(LambdaEvent::new(event, Context::default()))
        .await
}
