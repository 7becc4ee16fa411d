//! The batch handler: one SQS batch in, a partial batch response out.
//!
//! Records run concurrently (bounded by `SLUICE_CONCURRENCY`), each in its own task so a
//! panic fails that record only. A record is acknowledged when its event was delivered now
//! or before; every other outcome is a batch item failure.

use crate::claim::ClaimStore;
use crate::clock::now_ms;
use crate::config::ConsumerConfig;
use crate::delivery::Deliverer;
use crate::fan_out::{EventOutcome, PairOutcome, PairResult};
use crate::outcome::{Failure, FailureKind};
use crate::processor::Processor;
use crate::routes::Routes;
use crate::settle::{before_deadline, Settled};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use sluice_protocol::queue_attributes::DESTINATION;
use sluice_protocol::Envelope;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How one record was settled, for its lane.
struct RecordSettled {
    /// Nothing waits: acknowledge it.
    ack: bool,
    /// It failed as a whole (not per destination).
    whole: bool,
    /// The destinations it still waits for.
    waiting: Vec<String>,
}

impl RecordSettled {
    fn whole_failure() -> Self {
        RecordSettled {
            ack: false,
            whole: true,
            waiting: Vec::new(),
        }
    }
}

/// What every log line about one record carries.
#[derive(Clone, Copy)]
struct LogContext<'a> {
    message_id: &'a str,
    key: &'a str,
    event_id: &'a str,
    source: &'a str,
    trace_id: &'a str,
    attempt: u32,
}

/// Kept free after the longest delivery, before the invocation's deadline (which is also
/// when the claim expires): the completion write and its retries, the release or visibility
/// change, and the batch response must all land by then. Past it another consumer may take
/// the event over, and a timed-out invocation loses its whole batch response (every record
/// comes back, dead-lettered ones included).
const AFTER_DELIVERY_RESERVE: Duration = Duration::from_secs(2);

/// Retries of a failed completion write, and every other call after a record's processing,
/// stop this long before the deadline.
pub(crate) const COMPLETION_MARGIN: Duration = Duration::from_millis(500);

/// How long a claim stays valid when the caller gives no invocation deadline.
const DEFAULT_CLAIM_WINDOW: Duration = Duration::from_secs(30);

/// Everything one consumer process needs, shared by all its invocations.
#[derive(Clone)]
pub struct Consumer {
    pub(crate) claims: ClaimStore,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) processor: Arc<dyn Processor>,
    pub(crate) config: ConsumerConfig,
    pub(crate) routes: Arc<Routes>,
    /// Pairs this process delivered but could not mark completed (DynamoDB refused until
    /// the deadline): never delivered again from here; their completion is retried when
    /// their message comes back (it does when another destination of it waits).
    pub(crate) unconfirmed: Arc<std::sync::Mutex<HashSet<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    DestinationSecret(#[from] crate::destination_secret::DestinationSecretError),
    #[error(transparent)]
    Route(#[from] crate::routes::RouteError),
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
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        if let Some(arn) = &config.destination_secret_arn {
            config.destination_secret =
                Some(crate::destination_secret::fetch(&secrets, arn).await?);
        }
        // Every secret a route refers to (header values, signing secrets), once, now.
        if !crate::routes::secret_arns(&config.sources).is_empty() {
            config.secret_values =
                crate::routes::fetch_secret_values(&secrets, &config.sources).await?;
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
        let routes = Routes::build(
            &config.sources,
            &config.secret_values,
            config.delivery_timeout,
            |var| std::env::var(var).ok(),
        )?;
        Ok(Arc::new(Consumer {
            routes: Arc::new(routes),
            unconfirmed: Default::default(),
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
        if let Some(longest) = self.routes.longest_timeout() {
            let window = self.delivery_window(deadline_ms);
            if longest.as_millis() as u64 > window && self.time_to_deliver(deadline_ms) {
                tracing::error!(
                    invocation_ms = deadline_ms.saturating_sub(now),
                    needed_ms = (longest + AFTER_DELIVERY_RESERVE).as_millis() as u64,
                    "the invocation is too short for a destination's timeout_ms: the function timeout must exceed the longest timeout_ms by 2 s; that destination's deliveries are retried and never start"
                );
            }
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
    /// only). In an ordered lane (a FIFO message group) order is kept per destination: once
    /// a record leaves a destination waiting, the records behind it are not delivered
    /// there (they are held back, reported as failures and made visible again at once, so
    /// they follow it, in order, when it is retried: SQS holds a group back while one of
    /// its messages is in flight); other destinations still get them. A record that failed
    /// as a whole holds back everything behind it.
    async fn run_lane(
        self: Arc<Self>,
        lane: crate::lanes::Lane,
        permits: Arc<Semaphore>,
        deadline_ms: u64,
    ) -> Vec<(String, bool)> {
        let mut results = Vec::with_capacity(lane.records.len());
        let mut blocked_by: Option<String> = None;
        let mut held: HashSet<String> = HashSet::new();
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
            let held_now = held.clone();
            let task = tokio::spawn(async move {
                let _permit = permit;
                consumer
                    .process_logged(&record, &held_now, deadline_ms)
                    .await
            });
            let settled = match task.await {
                Ok(settled) => settled,
                Err(join) => {
                    tracing::error!(message_id = %id, outcome = "panic", detail = %join, "record processing panicked");
                    RecordSettled::whole_failure()
                }
            };
            if !settled.ack && lane.group.is_some() {
                if settled.whole {
                    blocked_by = Some(id.clone());
                } else {
                    held.extend(settled.waiting);
                }
            }
            results.push((id, settled.ack));
        }
        results
    }

    /// Processes one record through its destinations, settles each pair (delivered,
    /// dead-lettered for that destination, or waiting) and the record (acknowledged once
    /// nothing waits, otherwise hidden until its next attempt), and logs and measures
    /// every outcome.
    async fn process_logged(
        &self,
        record: &SqsMessage,
        held: &HashSet<String>,
        deadline_ms: u64,
    ) -> RecordSettled {
        let started = now_ms();
        let attempt = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1);
        let message_id = record.message_id.as_deref().unwrap_or("");
        let only = record
            .message_attributes
            .get(DESTINATION)
            .and_then(|a| a.string_value.as_deref())
            .filter(|v| !v.is_empty());
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
        let outcome = match &envelope {
            Ok(e) => {
                let queued = record.body.as_deref().unwrap_or_default();
                self.fan_out(message_id, e, queued, only, held, deadline_ms)
                    .await
            }
            Err(f) => EventOutcome::Message(f.clone()),
        };
        let age_ms = received_at.map(|r| now_ms().saturating_sub(r));
        let log = LogContext {
            message_id,
            key: &key,
            event_id: &event_id,
            source: &source,
            trace_id: &trace_id,
            attempt,
        };
        match outcome {
            EventOutcome::Message(failure) => {
                let latency_ms = now_ms().saturating_sub(started);
                let settled =
                    Box::pin(self.settle_failure(record, &failure, attempt, None, deadline_ms))
                        .await;
                let (ack, outcome, backoff_secs) = match settled {
                    Settled::DeadLettered => (true, "dead_lettered", None),
                    Settled::Retry { backoff_secs } => (false, "retried", backoff_secs),
                };
                let backoff_ceiling_secs =
                    backoff_secs.map(|_| self.config.retry.ceiling_secs(attempt));
                tracing::warn!(message_id, event_key = %key, event_id = %event_id, source = %source, trace_id = %trace_id, attempt, outcome, kind = ?failure.kind, reason = failure.reason, detail = %failure.detail, status = failure.status, backoff_secs, backoff_ceiling_secs, latency_ms, "event failed");
                println!(
                    "{}",
                    crate::telemetry::event_metric(
                        &source,
                        // Names from the configuration only: metric cardinality stays bounded.
                        only.filter(|d| self.routes.has(&source, d)),
                        outcome,
                        None,
                        None
                    )
                );
                RecordSettled {
                    ack,
                    whole: true,
                    waiting: Vec::new(),
                }
            }
            EventOutcome::Filtered { body_not_json } => {
                let latency_ms = now_ms().saturating_sub(started);
                tracing::info!(message_id, event_key = %key, event_id = %event_id, source = %source, trace_id = %trace_id, attempt, outcome = "filtered", body_not_json, latency_ms, "event matched no destination");
                println!(
                    "{}",
                    crate::telemetry::filtered_metric(&source, body_not_json)
                );
                RecordSettled {
                    ack: true,
                    whole: false,
                    waiting: Vec::new(),
                }
            }
            EventOutcome::Pairs(pairs) => {
                self.settle_pairs(record, pairs, &log, age_ms, deadline_ms)
                    .await
            }
        }
    }

    /// Settles each destination's outcome of one record, then the record: dead-letters a
    /// permanent failure for its destination only (a copy naming it), and hides the record
    /// until the earliest retry when any destination still waits.
    async fn settle_pairs(
        &self,
        record: &SqsMessage,
        pairs: Vec<PairOutcome>,
        log: &LogContext<'_>,
        age_ms: Option<u64>,
        deadline_ms: u64,
    ) -> RecordSettled {
        let LogContext {
            message_id,
            key,
            event_id,
            source,
            trace_id,
            attempt,
        } = *log;
        let mut waiting = Vec::new();
        // The longest Retry-After any waiting destination asked for, and whether any
        // waits for a retry of its own (not just behind an earlier FIFO record).
        let mut retry_after: Option<u32> = None;
        let mut retrying = false;
        let mut dead_lettered = Vec::new();
        for p in &pairs {
            if let PairResult::Failed(failure) = &p.result {
                let dead = failure.kind == FailureKind::Permanent
                    && match &self.config.dlq_url {
                        Some(dlq) => {
                            let sent = before_deadline(
                                deadline_ms,
                                self.dead_letter(
                                    dlq,
                                    record,
                                    failure,
                                    attempt,
                                    Some(&p.destination),
                                ),
                            )
                            .await;
                            match sent {
                                Ok(()) => true,
                                Err(e) => {
                                    tracing::error!(destination = %p.destination, detail = %e, "could not dead-letter; the record is retried");
                                    false
                                }
                            }
                        }
                        None => false,
                    };
                if let Some(claim) = &p.held_claim {
                    // Dead-lettered: marked so this message, received again for another
                    // destination, skips the pair. Not sent: released for the retry.
                    let marked = if dead {
                        let expiration = now_ms() / 1000 + self.config.completed_ttl.as_secs();
                        before_deadline(
                            deadline_ms,
                            self.claims
                                .dead_lettered(claim, event_id, message_id, expiration),
                        )
                        .await
                    } else {
                        self.release_claim(claim, event_id, deadline_ms).await;
                        Ok(())
                    };
                    if let Err(e) = marked {
                        tracing::warn!(destination = %p.destination, detail = %e, "could not mark the pair dead-lettered; a later receive of this message may dead-letter it again");
                    }
                }
                if dead {
                    dead_lettered.push(p.destination.clone());
                } else {
                    retrying = true;
                    retry_after = retry_after.max(failure.retry_after_secs);
                    waiting.push(p.destination.clone());
                }
            } else if matches!(p.result, PairResult::HeldBack) {
                waiting.push(p.destination.clone());
            }
        }
        let backoff_secs = if waiting.is_empty() {
            None
        } else {
            let delay = if retrying {
                self.config
                    .retry
                    .delay_secs(attempt, rand::random::<f64>(), retry_after)
            } else {
                0
            };
            match before_deadline(deadline_ms, self.hide(record, delay)).await {
                Ok(()) => Some(delay),
                Err(e) => {
                    tracing::warn!(detail = %e, "could not change visibility; the queue's timeout applies");
                    None
                }
            }
        };
        let backoff_ceiling_secs = backoff_secs
            .filter(|_| retrying)
            .map(|_| self.config.retry.ceiling_secs(attempt));
        for p in &pairs {
            let destination = p.destination.as_str();
            let latency_ms = p.latency_ms;
            let outcome = match &p.result {
                PairResult::Delivered => "delivered",
                PairResult::Duplicate => "duplicate",
                PairResult::HeldBack => "held_back",
                PairResult::DeadLetteredBefore => "dead_lettered_before",
                PairResult::Failed(_) if dead_lettered.iter().any(|d| d == destination) => {
                    "dead_lettered"
                }
                PairResult::Failed(_) => "retried",
            };
            match &p.result {
                PairResult::Delivered | PairResult::Duplicate => {
                    tracing::info!(message_id, event_key = %key, event_id = %event_id, source = %source, destination, trace_id = %trace_id, attempt, outcome, latency_ms, age_ms, "event done");
                }
                PairResult::DeadLetteredBefore => {
                    tracing::info!(message_id, event_key = %key, event_id = %event_id, source = %source, destination, trace_id = %trace_id, attempt, outcome, "not tried again: this message dead-lettered it for this destination on an earlier receive");
                }
                PairResult::HeldBack => {
                    tracing::info!(message_id, event_key = %key, event_id = %event_id, source = %source, destination, trace_id = %trace_id, attempt, outcome, "not delivered here: an earlier record of its message group waits for this destination");
                }
                PairResult::Failed(failure) => {
                    tracing::warn!(message_id, event_key = %key, event_id = %event_id, source = %source, destination, trace_id = %trace_id, attempt, outcome, kind = ?failure.kind, reason = failure.reason, detail = %failure.detail, status = failure.status, backoff_secs, backoff_ceiling_secs, latency_ms, "event failed");
                }
            }
            if !matches!(outcome, "held_back" | "dead_lettered_before") {
                let delivered = outcome == "delivered";
                println!(
                    "{}",
                    crate::telemetry::event_metric(
                        source,
                        Some(destination),
                        outcome,
                        delivered.then_some(latency_ms),
                        if delivered { age_ms } else { None },
                    )
                );
            }
        }
        RecordSettled {
            ack: waiting.is_empty(),
            whole: false,
            waiting,
        }
    }

    /// Gives up this consumer's claim (a failed or abandoned attempt), bounded by the
    /// deadline; a claim not released expires at the deadline by itself.
    pub(crate) async fn release_claim(&self, key: &str, event_id: &str, deadline_ms: u64) {
        let released = before_deadline(deadline_ms, Box::pin(self.claims.release(key, event_id)));
        if let Err(e) = released.await {
            tracing::error!(event_key = %key, detail = %e, "could not release claim; it expires at the invocation deadline");
        }
    }

    /// How long a delivery starting now may take: up to the deadline, less the reserve.
    pub(crate) fn delivery_window(&self, deadline_ms: u64) -> u64 {
        deadline_ms
            .saturating_sub(now_ms())
            .saturating_sub(AFTER_DELIVERY_RESERVE.as_millis() as u64)
    }

    /// Whether a delivery starting now, at its longest, still ends within the window.
    pub(crate) fn time_to_deliver(&self, deadline_ms: u64) -> bool {
        self.delivery_window(deadline_ms) >= self.config.delivery_timeout.as_millis() as u64
    }

    /// Marks a delivered event completed. The write is retried (it is idempotent) until
    /// shortly before the deadline: an event left in progress could be delivered again by
    /// a later copy once its claim expires. Acknowledged either way: it was delivered.
    pub(crate) async fn mark_completed(&self, key: &str, deadline_ms: u64) {
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
                if let Ok(mut unconfirmed) = self.unconfirmed.lock() {
                    unconfirmed.insert(key.to_string());
                }
                return;
            }
            tracing::warn!(event_key = %key, detail = %e, "marking a delivered event completed failed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
