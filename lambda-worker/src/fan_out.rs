//! One event through its source's routes: filter, then for every matching destination its
//! own claim, delivery and completion, each pair (event, destination) a unit of
//! exactly-once effect of its own.
//!
//! - A destination delivered before (its claim is completed) is skipped: a message
//!   received again is tried only where it is not settled yet.
//! - Destinations are delivered concurrently: a slow or failing one never delays or
//!   repeats delivery to the others.
//! - The body is read from S3 (claim check) only when a filter needs it or a claim was won.
//!
//! It never settles the message itself (acknowledge, dead-letter, back off): that is
//! [`crate::batch`]'s job, from the outcomes returned here.

use crate::batch::Consumer;
use crate::claim::Claim;
use crate::clock::now_ms;
use crate::outcome::Failure;
use crate::processor::Event;
use crate::routes::{FilterBody, Route};
use futures_util::future::join_all;
use sha2::{Digest, Sha256};
use sluice_protocol::claim_check::BodyRef;
use sluice_protocol::{Body, Envelope};
use std::collections::HashSet;
use std::time::Duration;

/// What became of one (event, destination) pair on this receive.
#[derive(Debug)]
pub enum PairResult {
    /// Delivered now.
    Delivered,
    /// Delivered before: skipped.
    Duplicate,
    /// Not delivered; settled by its kind (retried, or dead-lettered for this destination).
    Failed(Failure),
    /// Not tried: an earlier message of its FIFO group still waits for this destination.
    HeldBack,
    /// This same message dead-lettered the pair on an earlier receive: settled.
    DeadLetteredBefore,
}

/// One pair's outcome.
#[derive(Debug)]
pub struct PairOutcome {
    pub destination: String,
    pub result: PairResult,
    /// How long its delivery took (0 when none was attempted).
    pub latency_ms: u64,
    /// The pair's key, when this consumer still holds its claim (a permanent failure
    /// waiting to be dead-lettered: the claim is then marked so, or released).
    pub held_claim: Option<String>,
}

/// What became of one event on this receive.
#[derive(Debug)]
pub enum EventOutcome {
    /// The message itself could not be handled (malformed, unknown source or destination,
    /// its body unreadable): every destination waits on it.
    Message(Failure),
    /// It matched none of its source's destinations: acknowledged, never delivered.
    Filtered {
        /// A filter read the body and it was not JSON.
        body_not_json: bool,
    },
    /// One outcome per matching destination.
    Pairs(Vec<PairOutcome>),
}

/// Where the event's body is.
enum Payload<'a> {
    /// In hand (decoded from the envelope, or already read from S3).
    Here(Vec<u8>),
    /// Claim-checked and not read yet.
    InS3(&'a BodyRef),
}

impl Consumer {
    /// Runs `envelope` (queued as `queued`) through its destinations. `only` limits it to
    /// one destination (a per-destination dead letter sent back, a replay for one
    /// destination); `held` are destinations an earlier message of the same FIFO group
    /// still waits for.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fan_out(
        &self,
        message_id: &str,
        envelope: &Envelope,
        queued: &str,
        only: Option<&str>,
        held: &HashSet<String>,
        deadline_ms: u64,
    ) -> EventOutcome {
        let Some(source) = self.config.sources.get(&envelope.source) else {
            return EventOutcome::Message(Failure::permanent(
                "unknown_source",
                format!("no source `{}` is configured", envelope.source),
            ));
        };
        let routes = self.routes.of(&source.name);
        let candidates: Vec<&Route> = match only {
            Some(name) => match routes.iter().find(|r| r.name == name) {
                Some(route) => vec![route],
                None => {
                    return EventOutcome::Message(Failure::permanent(
                        "unknown_destination",
                        format!("source `{}` has no destination `{name}`", envelope.source),
                    ))
                }
            },
            None => routes.iter().collect(),
        };
        // Nothing is started (no S3 read, no claim) that could not be finished in time.
        if !self.time_to_deliver(deadline_ms) {
            return EventOutcome::Message(Failure::transient(
                "deadline",
                "too little of the invocation left to process the event",
            ));
        }
        let mut payload = match &envelope.body {
            Body::S3(reference) => Payload::InS3(reference),
            inline => match inline.to_bytes() {
                Ok(bytes) => Payload::Here(bytes),
                Err(e) => {
                    return EventOutcome::Message(Failure::permanent(
                        "malformed_envelope",
                        e.to_string(),
                    ))
                }
            },
        };
        // The body is parsed only for filters that read it; a claim-checked one is read
        // from S3 first only then.
        let reads_body = candidates
            .iter()
            .any(|r| r.filter.as_ref().is_some_and(|f| f.uses_body()));
        let filter_body = if reads_body {
            if let Err(failure) = self.read_payload(&mut payload, deadline_ms).await {
                // A copy of an event delivered everywhere is a duplicate even once its
                // claim-checked body has expired: settled, not dead-lettered.
                if failure.kind == crate::outcome::FailureKind::Permanent {
                    if let Some(done) = self
                        .delivered_everywhere(
                            message_id,
                            envelope,
                            &payload,
                            &candidates,
                            deadline_ms,
                        )
                        .await
                    {
                        return EventOutcome::Pairs(done);
                    }
                }
                return EventOutcome::Message(failure);
            }
            match &payload {
                Payload::Here(bytes) => FilterBody::parse(envelope.content_type.as_deref(), bytes),
                Payload::InS3(_) => FilterBody::NotJson,
            }
        } else {
            FilterBody::Unread
        };
        let matched: Vec<&Route> = candidates
            .into_iter()
            .filter(|r| crate::routes::matches(r, envelope, &filter_body))
            .collect();
        if matched.is_empty() {
            // Archived all the same: a destination added later may want it (replay).
            if let Err(failure) = self.archive(envelope, queued).await {
                return EventOutcome::Message(failure);
            }
            return EventOutcome::Filtered {
                body_not_json: matches!(filter_body, FilterBody::NotJson),
            };
        }

        // The claim records the body's SHA-256. A claim-checked body's is in its reference,
        // so the claims come first and the body is read from S3 only if one was won: a
        // duplicate costs no GET, and is still a duplicate once the payload has expired.
        let validation = match &payload {
            Payload::Here(bytes) => hex::encode(Sha256::digest(bytes)),
            Payload::InS3(reference) => reference.sha256.to_ascii_lowercase(),
        };
        let now = now_ms();
        let expiration = now / 1000 + self.config.completed_ttl.as_secs();
        let window = self.delivery_window(deadline_ms);
        let mut outcomes = Vec::with_capacity(matched.len());
        let mut to_claim = Vec::with_capacity(matched.len());
        for route in matched {
            if self
                .confirm_unconfirmed(&route.delivery_key(envelope), expiration, deadline_ms)
                .await
            {
                // Delivered from here before; its completion write has now been retried.
                outcomes.push(pair(route, PairResult::Duplicate, 0));
            } else if held.contains(&route.name) {
                outcomes.push(pair(route, PairResult::HeldBack, 0));
            } else if window < route.timeout.as_millis() as u64 {
                outcomes.push(pair(
                    route,
                    PairResult::Failed(Failure::transient(
                        "deadline",
                        "too little of the invocation left to deliver before the claim expires",
                    )),
                    0,
                ));
            } else {
                to_claim.push(route);
            }
        }
        let attempt = PairClaim {
            message_id,
            envelope,
            validation: &validation,
            now,
            deadline_ms,
            expiration,
        };
        let claims = join_all(to_claim.iter().map(|route| attempt.run(self, route))).await;
        let mut won = Vec::new();
        for (route, (key, claim)) in to_claim.into_iter().zip(claims) {
            let result = match claim {
                Ok(Claim::Acquired) => {
                    won.push((route, key));
                    continue;
                }
                Ok(Claim::AlreadyCompleted) => PairResult::Duplicate,
                Ok(Claim::DeadLettered) => PairResult::DeadLetteredBefore,
                Ok(Claim::InProgressElsewhere) => PairResult::Failed(Failure::transient(
                    "in_progress",
                    "another consumer holds this event for this destination",
                )),
                Ok(Claim::PayloadMismatch) => PairResult::Failed(Failure::permanent(
                    "validation",
                    "this idempotency key was seen with a different payload",
                )),
                Err(e) => {
                    PairResult::Failed(Failure::transient("idempotency_store", e.to_string()))
                }
            };
            outcomes.push(pair(route, result, 0));
        }
        if won.is_empty() {
            return EventOutcome::Pairs(outcomes);
        }

        // Something to deliver: the body, then the archive copy, then every delivery at once.
        let ready = match self.read_payload(&mut payload, deadline_ms).await {
            Ok(()) => self.archive(envelope, queued).await,
            Err(failure) => Err(failure),
        };
        if let Err(failure) = ready {
            // The event's own failure (its body, the archive), not a destination's: the
            // message is settled as a whole, once.
            for (_, key) in won {
                self.release_claim(&key, &envelope.id, deadline_ms).await;
            }
            return EventOutcome::Message(failure);
        }
        let Payload::Here(body) = &payload else {
            // read_payload leaves the body in hand or fails.
            return EventOutcome::Message(Failure::transient(
                "payload_store",
                "the body was not read",
            ));
        };
        let deliveries = join_all(won.into_iter().map(|(route, key)| async move {
            let started = now_ms();
            let result = self
                .deliver_pair(route, &key, envelope, body, source, now, deadline_ms)
                .await;
            let mut outcome = pair(route, result, now_ms().saturating_sub(started));
            if matches!(&outcome.result, PairResult::Failed(f) if self.keeps_claim(f)) {
                outcome.held_claim = Some(key);
            }
            outcome
        }))
        .await;
        outcomes.extend(deliveries);
        EventOutcome::Pairs(outcomes)
    }

    /// Delivers to one destination whose claim this consumer holds, then completes the
    /// claim (delivered) or releases it (failed).
    #[allow(clippy::too_many_arguments)]
    async fn deliver_pair(
        &self,
        route: &Route,
        key: &str,
        envelope: &Envelope,
        body: &[u8],
        source: &sluice_protocol::SourceConfig,
        now: u64,
        deadline_ms: u64,
    ) -> PairResult {
        // The claim is ours only until the invocation's deadline (its in-progress expiry):
        // past it another consumer may take the pair over. So delivery starts only if the
        // longest it can take (the destination's timeout) ends before then. An in-flight
        // delivery is never abandoned for the deadline (the destination may already have
        // acted); the timeout below is a backstop for processors without a bound.
        let window = self.delivery_window(deadline_ms);
        let delivered = if window < route.timeout.as_millis() as u64 {
            Err(Failure::transient(
                "deadline",
                "too little of the invocation left to deliver before the claim expires",
            ))
        } else {
            let work = self.processor.process(Event {
                envelope,
                body,
                source,
                destination: route,
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
            Ok(()) => {
                self.mark_completed(key, deadline_ms).await;
                PairResult::Delivered
            }
            Err(failure) => {
                // A permanent failure keeps its claim until its dead letter is sent (then
                // it is marked dead-lettered, or released if the send fails).
                if !self.keeps_claim(&failure) {
                    self.release_claim(key, &envelope.id, deadline_ms).await;
                }
                PairResult::Failed(failure)
            }
        }
    }

    /// True when this process delivered the pair `key` but could not mark it completed:
    /// it is not delivered again; the completion is retried (once, bounded) now.
    async fn confirm_unconfirmed(&self, key: &str, expiration: u64, deadline_ms: u64) -> bool {
        let known = self
            .unconfirmed
            .lock()
            .map(|set| set.contains(key))
            .unwrap_or(false);
        if !known {
            return false;
        }
        let done =
            crate::settle::before_deadline(deadline_ms, self.claims.complete(key, expiration))
                .await;
        match done {
            Ok(()) => {
                if let Ok(mut set) = self.unconfirmed.lock() {
                    set.remove(key);
                }
            }
            Err(e) => {
                tracing::warn!(event_key = %key, detail = %e, "marking a delivered pair completed failed again; not delivering it again from here");
            }
        }
        true
    }

    /// When every candidate destination already has the event (their claims are
    /// completed), their outcomes as duplicates; otherwise `None` (claims taken to find out
    /// are released).
    async fn delivered_everywhere(
        &self,
        message_id: &str,
        envelope: &Envelope,
        payload: &Payload<'_>,
        candidates: &[&Route],
        deadline_ms: u64,
    ) -> Option<Vec<PairOutcome>> {
        let Payload::InS3(reference) = payload else {
            return None;
        };
        let validation = reference.sha256.to_ascii_lowercase();
        let now = now_ms();
        let attempt = PairClaim {
            message_id,
            envelope,
            validation: &validation,
            now,
            deadline_ms,
            expiration: now / 1000 + self.config.completed_ttl.as_secs(),
        };
        let mut outcomes = Vec::with_capacity(candidates.len());
        let mut all = true;
        for route in candidates {
            let (key, claim) = attempt.run(self, route).await;
            match claim {
                Ok(Claim::AlreadyCompleted) => {
                    outcomes.push(pair(route, PairResult::Duplicate, 0));
                }
                Ok(Claim::Acquired) => {
                    self.release_claim(&key, &envelope.id, deadline_ms).await;
                    all = false;
                }
                _ => all = false,
            }
        }
        all.then_some(outcomes)
    }

    /// Whether a failed delivery's claim is kept for its dead letter.
    fn keeps_claim(&self, failure: &Failure) -> bool {
        failure.kind == crate::outcome::FailureKind::Permanent && self.config.dlq_url.is_some()
    }

    /// Reads a claim-checked body from S3 (once), bounded by the delivery window.
    async fn read_payload(
        &self,
        payload: &mut Payload<'_>,
        deadline_ms: u64,
    ) -> Result<(), Failure> {
        let Payload::InS3(reference) = payload else {
            return Ok(());
        };
        let fetch = Box::pin(crate::payload::fetch(&self.s3, reference));
        let window = Duration::from_millis(self.delivery_window(deadline_ms));
        let bytes = tokio::time::timeout(window, fetch)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::transient(
                    "payload_store",
                    "reading the payload did not finish before the invocation's deadline",
                ))
            })?;
        *payload = Payload::Here(bytes);
        Ok(())
    }

    /// Keeps the envelope in the archive, when there is one.
    async fn archive(&self, envelope: &Envelope, queued: &str) -> Result<(), Failure> {
        match &self.config.archive_bucket {
            Some(bucket) => {
                Box::pin(crate::archive::store(&self.s3, bucket, envelope, queued)).await
            }
            None => Ok(()),
        }
    }
}

/// One receive's claim on its pairs: the same message, event, body hash and times for
/// each destination.
struct PairClaim<'a> {
    message_id: &'a str,
    envelope: &'a Envelope,
    validation: &'a str,
    now: u64,
    deadline_ms: u64,
    expiration: u64,
}

impl PairClaim<'_> {
    /// Claims `route`'s pair: its key, and what the claim found.
    async fn run(
        &self,
        consumer: &Consumer,
        route: &Route,
    ) -> (String, Result<Claim, crate::claim::ClaimError>) {
        let key = route.delivery_key(self.envelope);
        let claim = consumer
            .claims
            .claim_for(
                self.message_id,
                &key,
                &self.envelope.id,
                self.validation,
                self.now,
                self.deadline_ms,
                self.expiration,
            )
            .await;
        (key, claim)
    }
}

fn pair(route: &Route, result: PairResult, latency_ms: u64) -> PairOutcome {
    PairOutcome {
        destination: route.name.clone(),
        result,
        latency_ms,
        held_claim: None,
    }
}
