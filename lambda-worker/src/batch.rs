//! The batch handler: one SQS batch in, a partial batch response out.
//!
//! Records run concurrently (bounded by `SLUICE_CONCURRENCY`), each in its own task so a
//! panic fails that record only. A record is acknowledged when its event was delivered now
//! or before; every other outcome is a batch item failure.

use crate::claim::{Claim, ClaimStore};
use crate::config::ConsumerConfig;
use crate::delivery::Deliverer;
use crate::outcome::{Done, Failure};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use sha2::{Digest, Sha256};
use sluice_protocol::{Body, Envelope};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// How long a claim stays valid when the caller gives no invocation deadline.
const DEFAULT_CLAIM_WINDOW: Duration = Duration::from_secs(30);

/// Everything one consumer process needs, shared by all its invocations.
#[derive(Debug)]
pub struct Consumer {
    claims: ClaimStore,
    s3: aws_sdk_s3::Client,
    deliverer: Deliverer,
    config: ConsumerConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Consumer {
    /// Builds a consumer from the environment (AWS SDK settings included, e.g.
    /// `AWS_ENDPOINT_URL` for the local stack).
    pub async fn from_env() -> Result<Arc<Self>, StartError> {
        let config = ConsumerConfig::from_env()?;
        let sdk = aws_config::load_from_env().await;
        // A custom endpoint (the local stack) serves buckets path-style.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(path_style)
                .build(),
        );
        Self::new(aws_sdk_dynamodb::Client::new(&sdk), s3, config)
    }

    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
        config: ConsumerConfig,
    ) -> Result<Arc<Self>, StartError> {
        Ok(Arc::new(Consumer {
            claims: ClaimStore::new(dynamodb, config.table.clone()),
            s3,
            deliverer: Deliverer::new(config.delivery_timeout, config.destination_secret.clone())?,
            config,
        }))
    }

    /// Handles one batch as the SQS event source mapping delivers it.
    pub async fn handle(self: &Arc<Self>, event: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
        let deadline_ms = match event.context.deadline {
            0 => now_ms() + DEFAULT_CLAIM_WINDOW.as_millis() as u64,
            d => d,
        };
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = Vec::with_capacity(event.payload.records.len());
        for record in event.payload.records {
            let id = record.message_id.clone().unwrap_or_default();
            let consumer = Arc::clone(self);
            let permits = Arc::clone(&permits);
            tasks.push((
                id,
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    consumer.process_logged(&record, deadline_ms).await
                }),
            ));
        }
        let mut response = SqsBatchResponse::default();
        for (id, task) in tasks {
            let ok = match task.await {
                Ok(ok) => ok,
                Err(join) => {
                    tracing::error!(message_id = %id, outcome = "panic", detail = %join, "record processing panicked");
                    false
                }
            };
            if !ok {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Processes one record and logs its outcome; true when it can be acknowledged.
    async fn process_logged(&self, record: &SqsMessage, deadline_ms: u64) -> bool {
        let started = now_ms();
        let attempt = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1);
        let message_id = record.message_id.as_deref().unwrap_or("");
        let envelope = record
            .body
            .as_deref()
            .ok_or_else(|| Failure::permanent("malformed_envelope", "record has no body"))
            .and_then(|b| {
                Envelope::decode(b)
                    .map_err(|e| Failure::permanent("malformed_envelope", e.to_string()))
            });
        let envelope = match envelope {
            Ok(e) => e,
            Err(failure) => {
                tracing::warn!(message_id, attempt, outcome = "failed", kind = ?failure.kind, reason = failure.reason, detail = %failure.detail, "event failed");
                return false;
            }
        };
        let result = self.process(&envelope, deadline_ms).await;
        let latency_ms = now_ms().saturating_sub(started);
        let age_ms = now_ms().saturating_sub(envelope.received_at_ms);
        let key = envelope.dedup_key();
        let trace_id = envelope.trace_id.as_deref().unwrap_or("");
        match result {
            Ok(done) => {
                let outcome = match done {
                    Done::Delivered => "delivered",
                    Done::Duplicate => "duplicate",
                };
                tracing::info!(message_id, event_key = %key, event_id = %envelope.id, source = %envelope.source, trace_id, attempt, outcome, latency_ms, age_ms, "event done");
                true
            }
            Err(failure) => {
                tracing::warn!(message_id, event_key = %key, event_id = %envelope.id, source = %envelope.source, trace_id, attempt, outcome = "failed", kind = ?failure.kind, reason = failure.reason, detail = %failure.detail, latency_ms, "event failed");
                false
            }
        }
    }

    async fn process(&self, envelope: &Envelope, deadline_ms: u64) -> Result<Done, Failure> {
        let source = self.config.sources.get(&envelope.source).ok_or_else(|| {
            Failure::permanent(
                "unknown_source",
                format!("no source `{}` is configured", envelope.source),
            )
        })?;
        let body = match &envelope.body {
            Body::S3(reference) => crate::payload::fetch(&self.s3, reference).await?,
            inline => inline
                .to_bytes()
                .map_err(|e| Failure::permanent("malformed_envelope", e.to_string()))?,
        };
        let validation = hex::encode(Sha256::digest(&body));
        let key = envelope.dedup_key();
        let now = now_ms();
        let expiration = now / 1000 + self.config.completed_ttl.as_secs();
        let claim = self
            .claims
            .claim(
                &key,
                &envelope.id,
                &validation,
                now,
                deadline_ms,
                expiration,
            )
            .await
            .map_err(|e| Failure::transient("idempotency_store", e.to_string()))?;
        match claim {
            Claim::Acquired => {}
            Claim::AlreadyCompleted => return Ok(Done::Duplicate),
            Claim::InProgressElsewhere => {
                return Err(Failure::transient(
                    "in_progress",
                    "another consumer holds this event",
                ))
            }
            Claim::PayloadMismatch => {
                return Err(Failure::permanent(
                    "validation",
                    "this idempotency key was seen with a different payload",
                ))
            }
        }

        let delivered = self
            .deliverer
            .deliver(&source.destination, envelope, body, (now / 1000) as i64)
            .await;
        match delivered {
            Ok(_) => {
                let expiration = now_ms() / 1000 + self.config.completed_ttl.as_secs();
                if let Err(e) = self.claims.complete(&key, expiration).await {
                    // Delivered: acknowledging is right. The claim expires by itself.
                    tracing::error!(event_key = %key, detail = %e, "could not mark event completed");
                }
                Ok(Done::Delivered)
            }
            Err(failure) => {
                if let Err(e) = self.claims.release(&key, &envelope.id).await {
                    tracing::error!(event_key = %key, detail = %e, "could not release claim; it expires at the invocation deadline");
                }
                Err(failure)
            }
        }
    }
}
