//! The batch handler: one SQS batch in, a partial batch response out.
//!
//! Records run concurrently (bounded by `SLUICE_CONCURRENCY`), each in its own task so a
//! panic fails that record only. A record is acknowledged when its event was delivered now
//! or before; every other outcome is a batch item failure.

use crate::claim::{Claim, ClaimStore};
use crate::clock::now_ms;
use crate::config::ConsumerConfig;
use crate::delivery::Deliverer;
use crate::outcome::{Done, Failure, FailureKind};
use crate::processor::{Event, Processor};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageAttributeValue;
use lambda_runtime::LambdaEvent;
use sha2::{Digest, Sha256};
use sluice_protocol::queue_attributes::{
    is_dead_letter_attribute, ATTEMPTS, FAILURE_DETAIL, FAILURE_REASON, LAST_STATUS,
};
use sluice_protocol::{Body, Envelope};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Where an event's body is when its processing starts.
enum Payload<'a> {
    /// In the envelope (decoded).
    Here(Vec<u8>),
    /// Claim-checked: in S3, read only once the event is claimed.
    InS3(&'a sluice_protocol::claim_check::BodyRef),
}

/// How a failed record was settled.
enum Settled {
    /// Moved to the DLQ with its reason: acknowledge it.
    DeadLettered,
    /// Left for redelivery, hidden for `backoff_secs` when that could be set.
    Retry { backoff_secs: Option<u32> },
}

/// Runs one call of a record's bookkeeping (the completion write, a release, a dead-letter
/// send, a visibility change), cut off shortly before the invocation's deadline: an
/// invocation that overruns loses its whole batch response. The error as text, for the log.
async fn before_deadline<T, E: std::fmt::Display>(
    deadline_ms: u64,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    let left = deadline_ms
        .saturating_sub(now_ms())
        .saturating_sub(COMPLETION_MARGIN.as_millis() as u64);
    match tokio::time::timeout(Duration::from_millis(left), call).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out at the invocation's deadline".into()),
    }
}

/// `https://sqs.{region}.amazonaws.com/{account}/{name}` from `arn:aws:sqs:{region}:{account}:{name}`.
pub fn queue_url_from_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (_, _, service, region, account, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (service == "sqs").then(|| format!("https://sqs.{region}.amazonaws.com/{account}/{name}"))
}

/// Kept free after the longest delivery, before the invocation's deadline (which is also
/// when the claim expires): the completion write and its retries, the release or visibility
/// change, and the batch response must all land by then. Past it another consumer may take
/// the event over, and a timed-out invocation loses its whole batch response (every record
/// comes back, dead-lettered ones included).
const AFTER_DELIVERY_RESERVE: Duration = Duration::from_secs(2);

/// Retries of a failed completion write, and every other call after a record's processing,
/// stop this long before the deadline.
const COMPLETION_MARGIN: Duration = Duration::from_millis(500);

/// How long a claim stays valid when the caller gives no invocation deadline.
const DEFAULT_CLAIM_WINDOW: Duration = Duration::from_secs(30);

/// Everything one consumer process needs, shared by all its invocations.
#[derive(Clone)]
pub struct Consumer {
    claims: ClaimStore,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    processor: Arc<dyn Processor>,
    config: ConsumerConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    DestinationSecret(#[from] crate::destination_secret::DestinationSecretError),
}

impl Consumer {
    /// Builds a consumer from the environment (AWS SDK settings included, e.g.
    /// `AWS_ENDPOINT_URL` for the local stack).
    pub async fn from_env() -> Result<Arc<Self>, StartError> {
        let mut config = ConsumerConfig::from_env()?;
        // Bounded AWS calls: a hung connection costs one attempt (then the SDK's retries with
        // backoff), never the whole invocation.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(20))
            .build();
        let sdk = aws_config::from_env().timeout_config(timeouts).load().await;
        if let Some(arn) = &config.destination_secret_arn {
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            config.destination_secret = Some(crate::destination_secret::fetch(&client, arn).await?);
        }
        // A custom endpoint (the local stack) serves buckets path-style.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(path_style)
                .build(),
        );
        Self::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            s3,
            aws_sdk_sqs::Client::new(&sdk),
            config,
        )
    }

    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
        sqs: aws_sdk_sqs::Client,
        config: ConsumerConfig,
    ) -> Result<Arc<Self>, StartError> {
        Ok(Arc::new(Consumer {
            claims: ClaimStore::new(dynamodb, config.table.clone()),
            s3,
            sqs,
            processor: Arc::new(Deliverer::new(
                config.delivery_timeout,
                config.destination_secret.clone(),
            )?),
            config,
        }))
    }

    /// The same consumer with your own processing in place of HTTP delivery.
    pub fn with_processor(self: Arc<Self>, processor: Arc<dyn Processor>) -> Arc<Self> {
        let mut consumer = Arc::unwrap_or_clone(self);
        consumer.processor = processor;
        Arc::new(consumer)
    }

    /// Handles one batch as the SQS event source mapping delivers it.
    pub async fn handle(self: &Arc<Self>, event: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
        let now = now_ms();
        let deadline_ms = match event.context.deadline {
            // No deadline, or one already past when the batch arrives (local emulators):
            // the default window. Lambda itself always hands a future deadline.
            d if d <= now => {
                if d != 0 {
                    tracing::warn!(
                        deadline_ms = d,
                        now_ms = now,
                        "invocation deadline already past; using the default claim window"
                    );
                }
                now + DEFAULT_CLAIM_WINDOW.as_millis() as u64
            }
            d => d,
        };
        if !self.time_to_deliver(deadline_ms) {
            tracing::error!(
                invocation_ms = deadline_ms.saturating_sub(now),
                needed_ms = (self.config.delivery_timeout + AFTER_DELIVERY_RESERVE).as_millis() as u64,
                "the invocation is too short for a delivery: the function timeout must exceed the delivery timeout (SLUICE_DELIVERY_TIMEOUT_MS) by 2 s; every record is retried"
            );
        }
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = Vec::new();
        for lane in crate::lanes::split(event.payload.records) {
            let ids: Vec<String> = lane
                .records
                .iter()
                .map(|r| r.message_id.clone().unwrap_or_default())
                .collect();
            let consumer = Arc::clone(self);
            let permits = Arc::clone(&permits);
            let task =
                tokio::spawn(async move { consumer.run_lane(lane, permits, deadline_ms).await });
            tasks.push((ids, task));
        }
        let mut response = SqsBatchResponse::default();
        for (ids, task) in tasks {
            // Record tasks catch their own panics; should the lane's task itself fail, none of
            // its records is acknowledged (each is retried, and a delivered one is then a
            // duplicate).
            let results = task.await.unwrap_or_else(|join| {
                tracing::error!(outcome = "panic", detail = %join, records = ids.len(), "a message group's processing failed; its records are retried");
                ids.into_iter().map(|id| (id, false)).collect()
            });
            for (id, ok) in results {
                if !ok {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    }

    /// Runs one lane's records in order, each in its own task (a panic fails that record
    /// only). In an ordered lane (a FIFO message group) the first record that is not
    /// acknowledged stops the lane: the records behind it are not processed, reported as
    /// failures and made visible again at once, so they follow it, in order, when it is
    /// retried (SQS holds a group back while one of its messages is in flight).
    async fn run_lane(
        self: Arc<Self>,
        lane: crate::lanes::Lane,
        permits: Arc<Semaphore>,
        deadline_ms: u64,
    ) -> Vec<(String, bool)> {
        let mut results = Vec::with_capacity(lane.records.len());
        let mut blocked_by: Option<String> = None;
        for record in lane.records {
            let id = record.message_id.clone().unwrap_or_default();
            if let Some(first) = &blocked_by {
                tracing::info!(message_id = %id, group = lane.group.as_deref().unwrap_or(""), behind = %first, outcome = "held_back", "not processed: an earlier record of its message group failed");
                if let Err(e) = Box::pin(self.hide(&record, 0)).await {
                    tracing::warn!(message_id = %id, detail = %e, "could not release a held-back record; the queue's timeout applies");
                }
                results.push((id, false));
                continue;
            }
            let permit = Arc::clone(&permits).acquire_owned().await;
            let consumer = Arc::clone(&self);
            let task = tokio::spawn(async move {
                let _permit = permit;
                consumer.process_logged(&record, deadline_ms).await
            });
            let ok = match task.await {
                Ok(ok) => ok,
                Err(join) => {
                    tracing::error!(message_id = %id, outcome = "panic", detail = %join, "record processing panicked");
                    false
                }
            };
            if !ok && lane.group.is_some() {
                blocked_by = Some(id.clone());
            }
            results.push((id, ok));
        }
        results
    }

    /// Processes one record, settles its failure (dead-letter or back off) and logs and
    /// measures the outcome; true when the record can be acknowledged.
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
        let (source, key, event_id, trace_id, received_at) = match &envelope {
            Ok(e) => (
                e.source.clone(),
                e.dedup_key(),
                e.id.clone(),
                e.trace_id.clone().unwrap_or_default(),
                Some(e.received_at_ms),
            ),
            Err(_) => (
                String::from("unknown"),
                String::new(),
                String::new(),
                String::new(),
                None,
            ),
        };
        let result = match &envelope {
            Ok(e) => {
                self.process(e, record.body.as_deref().unwrap_or_default(), deadline_ms)
                    .await
            }
            Err(f) => Err(f.clone()),
        };
        let latency_ms = now_ms().saturating_sub(started);
        let age_ms = received_at.map(|r| now_ms().saturating_sub(r));
        let (ack, outcome) = match result {
            Ok(done) => {
                let outcome = match done {
                    Done::Delivered => "delivered",
                    Done::Duplicate => "duplicate",
                };
                tracing::info!(message_id, event_key = %key, event_id = %event_id, source = %source, trace_id = %trace_id, attempt, outcome, latency_ms, age_ms, "event done");
                (true, outcome)
            }
            Err(failure) => {
                let settled =
                    Box::pin(self.settle_failure(record, &failure, attempt, deadline_ms)).await;
                let (ack, outcome, backoff_secs) = match settled {
                    Settled::DeadLettered => (true, "dead_lettered", None),
                    Settled::Retry { backoff_secs } => (false, "retried", backoff_secs),
                };
                // The jitter's ceiling for this attempt: what grows from retry to retry.
                let backoff_ceiling_secs =
                    backoff_secs.map(|_| self.config.retry.ceiling_secs(attempt));
                tracing::warn!(message_id, event_key = %key, event_id = %event_id, source = %source, trace_id = %trace_id, attempt, outcome, kind = ?failure.kind, reason = failure.reason, detail = %failure.detail, status = failure.status, backoff_secs, backoff_ceiling_secs, latency_ms, "event failed");
                (ack, outcome)
            }
        };
        let delivered = matches!(outcome, "delivered");
        println!(
            "{}",
            crate::telemetry::event_metric(
                &source,
                outcome,
                delivered.then_some(latency_ms),
                if delivered { age_ms } else { None },
            )
        );
        ack
    }

    /// Dead-letters a permanent failure at once (when a DLQ is configured); otherwise hides
    /// the record for a backoff delay and leaves it to be redelivered.
    async fn settle_failure(
        &self,
        record: &SqsMessage,
        failure: &Failure,
        attempt: u32,
        deadline_ms: u64,
    ) -> Settled {
        if failure.kind == FailureKind::Permanent {
            if let Some(dlq) = &self.config.dlq_url {
                match before_deadline(deadline_ms, self.dead_letter(dlq, record, failure, attempt))
                    .await
                {
                    Ok(()) => return Settled::DeadLettered,
                    Err(e) => {
                        tracing::error!(detail = %e, "could not dead-letter; the redrive policy will")
                    }
                }
            }
        }
        let delay =
            self.config
                .retry
                .delay_secs(attempt, rand::random::<f64>(), failure.retry_after_secs);
        match before_deadline(deadline_ms, self.hide(record, delay)).await {
            Ok(()) => Settled::Retry {
                backoff_secs: Some(delay),
            },
            Err(e) => {
                tracing::warn!(detail = %e, "could not change visibility; the queue's timeout applies");
                Settled::Retry { backoff_secs: None }
            }
        }
    }

    /// Sends the record to the DLQ with why it failed.
    async fn dead_letter(
        &self,
        dlq_url: &str,
        record: &SqsMessage,
        failure: &Failure,
        attempt: u32,
    ) -> Result<(), String> {
        let attr = |v: String| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| e.to_string())
        };
        let mut send = self
            .sqs
            .send_message()
            .queue_url(dlq_url)
            .message_body(record.body.clone().unwrap_or_default());
        for (name, value) in &record.message_attributes {
            if let (Some(v), false) = (&value.string_value, is_dead_letter_attribute(name)) {
                send = send.message_attributes(name, attr(v.clone())?);
            }
        }
        // SQS refuses some characters in attributes as in bodies: replaced, so the dead
        // letter is never refused for its explanation.
        let detail: String = failure
            .detail
            .chars()
            .take(256)
            .map(|c| {
                if sluice_protocol::sqs_text::is_queueable_char(c) {
                    c
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect();
        send = send
            .message_attributes(FAILURE_REASON, attr(failure.reason.to_string())?)
            .message_attributes(FAILURE_DETAIL, attr(detail)?)
            .message_attributes(ATTEMPTS, attr(attempt.to_string())?);
        if let Some(status) = failure.status {
            send = send.message_attributes(LAST_STATUS, attr(status.to_string())?);
        }
        if dlq_url.ends_with(".fifo") {
            // A FIFO DLQ needs a group (kept, so redrive restores it) and a deduplication id.
            let group = record.attributes.get("MessageGroupId").cloned();
            let dedup = record
                .attributes
                .get("MessageDeduplicationId")
                .cloned()
                .or_else(|| record.message_id.clone());
            send = send
                .set_message_group_id(group)
                .set_message_deduplication_id(dedup);
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
    }

    /// Hides the record for `delay_secs` (its next attempt), via ChangeMessageVisibility.
    async fn hide(&self, record: &SqsMessage, delay_secs: u32) -> Result<(), String> {
        let receipt = record
            .receipt_handle
            .as_deref()
            .ok_or("record has no receipt handle")?;
        let queue_url = match &self.config.queue_url {
            Some(url) => url.clone(),
            None => record
                .event_source_arn
                .as_deref()
                .and_then(queue_url_from_arn)
                .ok_or("no SLUICE_QUEUE_URL and no usable eventSourceARN")?,
        };
        self.sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay_secs as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
    }

    /// Gives up this consumer's claim (a failed or abandoned attempt), bounded by the
    /// deadline; a claim not released expires at the deadline by itself.
    async fn release_claim(&self, key: &str, event_id: &str, deadline_ms: u64) {
        let released = before_deadline(deadline_ms, Box::pin(self.claims.release(key, event_id)));
        if let Err(e) = released.await {
            tracing::error!(event_key = %key, detail = %e, "could not release claim; it expires at the invocation deadline");
        }
    }

    /// How long a delivery starting now may take: up to the deadline, less the reserve.
    fn delivery_window(&self, deadline_ms: u64) -> u64 {
        deadline_ms
            .saturating_sub(now_ms())
            .saturating_sub(AFTER_DELIVERY_RESERVE.as_millis() as u64)
    }

    /// Whether a delivery starting now, at its longest, still ends within the window.
    fn time_to_deliver(&self, deadline_ms: u64) -> bool {
        self.delivery_window(deadline_ms) >= self.config.delivery_timeout.as_millis() as u64
    }

    /// Marks a delivered event completed. The write is retried (it is idempotent) until
    /// shortly before the deadline: an event left in progress could be delivered again by
    /// a later copy once its claim expires. Acknowledged either way: it was delivered.
    async fn mark_completed(&self, key: &str, deadline_ms: u64) {
        let mut pause = Duration::from_millis(100);
        loop {
            let expiration = now_ms() / 1000 + self.config.completed_ttl.as_secs();
            // Each attempt ends before the deadline, however slow DynamoDB is.
            let Err(e) = before_deadline(deadline_ms, self.claims.complete(key, expiration)).await
            else {
                return;
            };
            let left = deadline_ms.saturating_sub(now_ms());
            if left < (pause + COMPLETION_MARGIN).as_millis() as u64 {
                tracing::error!(event_key = %key, detail = %e, "could not mark a delivered event completed; a later copy of it may be delivered again once its claim expires");
                return;
            }
            tracing::warn!(event_key = %key, detail = %e, "marking a delivered event completed failed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    // The AWS SDK's futures are large (kilobytes of state each): the calls off the happy
    // path are boxed, so the per-record task tokio moves around stays small.
    async fn process(
        &self,
        envelope: &Envelope,
        queued: &str,
        deadline_ms: u64,
    ) -> Result<Done, Failure> {
        let source = self.config.sources.get(&envelope.source).ok_or_else(|| {
            Failure::permanent(
                "unknown_source",
                format!("no source `{}` is configured", envelope.source),
            )
        })?;
        // Nothing is started (no S3 read, no claim) that could not be finished in time.
        if !self.time_to_deliver(deadline_ms) {
            return Err(Failure::transient(
                "deadline",
                "too little of the invocation left to process the event",
            ));
        }
        // The claim records the body's SHA-256. A claim-checked body's is in its reference,
        // so the claim comes first and the body is read from S3 only for an event this
        // consumer will process: a duplicate costs no GET, and is still a duplicate once
        // the payload has expired.
        let payload = match &envelope.body {
            Body::S3(reference) => Payload::InS3(reference),
            inline => Payload::Here(
                inline
                    .to_bytes()
                    .map_err(|e| Failure::permanent("malformed_envelope", e.to_string()))?,
            ),
        };
        let validation = match &payload {
            Payload::Here(bytes) => hex::encode(Sha256::digest(bytes)),
            Payload::InS3(reference) => reference.sha256.to_ascii_lowercase(),
        };
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

        let body = match payload {
            Payload::Here(bytes) => bytes,
            Payload::InS3(reference) => {
                let fetch = Box::pin(crate::payload::fetch(&self.s3, reference));
                let window = Duration::from_millis(self.delivery_window(deadline_ms));
                let fetched = tokio::time::timeout(window, fetch)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::transient(
                            "payload_store",
                            "reading the payload did not finish before the invocation's deadline",
                        ))
                    });
                match fetched {
                    Ok(bytes) => bytes,
                    Err(failure) => {
                        self.release_claim(&key, &envelope.id, deadline_ms).await;
                        return Err(failure);
                    }
                }
            }
        };
        if let Some(bucket) = &self.config.archive_bucket {
            if let Err(failure) =
                Box::pin(crate::archive::store(&self.s3, bucket, envelope, queued)).await
            {
                self.release_claim(&key, &envelope.id, deadline_ms).await;
                return Err(failure);
            }
        }
        // The claim is ours only until the invocation's deadline (its in-progress expiry):
        // past it another consumer may take the event over. So delivery starts only if the
        // longest it can take (the delivery timeout) ends before then; otherwise the claim
        // is released and the record retried. An in-flight delivery is never abandoned for
        // the deadline (the destination may already have acted); the timeout below is a
        // backstop for processors without a bound of their own.
        let window = self.delivery_window(deadline_ms);
        let delivered = if window < self.config.delivery_timeout.as_millis() as u64 {
            Err(Failure::transient(
                "deadline",
                "too little of the invocation left to deliver before the claim expires",
            ))
        } else {
            let work = self.processor.process(Event {
                envelope,
                body: &body,
                source,
                now_secs: (now / 1000) as i64,
            });
            match tokio::time::timeout(Duration::from_millis(window), work).await {
                Ok(result) => result,
                Err(_) => Err(Failure::transient(
                    "deadline",
                    "processing would have outlived the claim; abandoned",
                )),
            }
        };
        match delivered {
            Ok(_) => {
                self.mark_completed(&key, deadline_ms).await;
                Ok(Done::Delivered)
            }
            Err(failure) => {
                self.release_claim(&key, &envelope.id, deadline_ms).await;
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_url_from_event_source_arn() {
        assert_eq!(
            queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:sluice-events").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-events")
        );
        assert_eq!(queue_url_from_arn("arn:aws:sns:eu-west-1:1:x"), None);
        assert_eq!(queue_url_from_arn("nonsense"), None);
    }
}
