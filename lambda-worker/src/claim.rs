//! Idempotency claims in DynamoDB, with the semantics of Powertools for AWS Lambda's
//! idempotency utility.
//!
//! One item per event key: `pk`, `status` (INPROGRESS / COMPLETED), `expiration` (epoch
//! seconds; the table's TTL attribute), `in_progress_expiration` (epoch ms, from the
//! invocation deadline), `validation` (SHA-256 of the payload), `event_id`. A claim is one
//! conditional PutItem that returns the old item on conflict, so the happy path costs one
//! write to claim and one to complete, and no reads. TTL deletion lags by up to 48 h, so
//! expirations are compared, never assumed deleted.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

pub const STATUS_IN_PROGRESS: &str = "INPROGRESS";
pub const STATUS_COMPLETED: &str = "COMPLETED";

/// The result of trying to claim an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This consumer owns the event now and must deliver it, then complete or release.
    Acquired,
    /// Delivered before: acknowledge without delivering again.
    AlreadyCompleted,
    /// Another consumer holds a live claim: retry later.
    InProgressElsewhere,
    /// The key was seen with a different payload.
    PayloadMismatch,
}

#[derive(Debug, thiserror::Error)]
#[error("idempotency table: {0}")]
pub struct ClaimError(pub String);

/// Claims, completes and releases events in one table.
#[derive(Debug, Clone)]
pub struct ClaimStore {
    client: Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn error_detail<E: std::error::Error>(e: &E) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl ClaimStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        ClaimStore {
            client,
            table: table.into(),
        }
    }

    /// Tries to claim `key` until `in_progress_until_ms`.
    pub async fn claim(
        &self,
        key: &str,
        event_id: &str,
        validation: &str,
        now_ms: u64,
        in_progress_until_ms: u64,
        expiration_secs: u64,
    ) -> Result<Claim, ClaimError> {
        // Unique to this call: when a write took effect but its answer was lost, the SDK
        // retries it and meets its own item; the token tells that apart from a claim by
        // another consumer (which may hold a copy of the same event, same event id).
        let token = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("status", s(STATUS_IN_PROGRESS))
            .item("event_id", s(event_id))
            .item("claim_token", s(&token))
            .item("validation", s(validation))
            .item("expiration", n(expiration_secs))
            .item("in_progress_expiration", n(in_progress_until_ms))
            .condition_expression(
                "attribute_not_exists(pk) OR expiration < :now \
                 OR (#status = :inprogress AND in_progress_expiration < :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now_ms / 1000))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":inprogress", s(STATUS_IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(conflict) => {
                    Ok(judge_conflict(conflict.item(), validation, &token))
                }
                other => Err(ClaimError(error_detail(&other))),
            },
        }
    }

    /// Marks `key` delivered; it is then remembered until `expiration_secs`.
    pub async fn complete(&self, key: &str, expiration_secs: u64) -> Result<(), ClaimError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(
                "SET #status = :completed, expiration = :exp REMOVE in_progress_expiration",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s(STATUS_COMPLETED))
            .expression_attribute_values(":exp", n(expiration_secs))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ClaimError(error_detail(&e)))
    }

    /// Gives up this consumer's claim so a retry can run. Only deletes the claim if it is
    /// still this event's in-progress claim.
    pub async fn release(&self, key: &str, event_id: &str) -> Result<(), ClaimError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .condition_expression("#status = :inprogress AND event_id = :event_id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inprogress", s(STATUS_IN_PROGRESS))
            .expression_attribute_values(":event_id", s(event_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                // Someone else's claim, or already gone: nothing of ours to release.
                aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(ClaimError(error_detail(&other))),
            },
        }
    }
}

/// Decides what a failed claim means from the item DynamoDB returned.
fn judge_conflict(
    old: Option<&HashMap<String, AttributeValue>>,
    validation: &str,
    token: &str,
) -> Claim {
    let Some(old) = old else {
        // No item returned (should not happen with ALL_OLD): be safe and retry later.
        return Claim::InProgressElsewhere;
    };
    let field = |name: &str| {
        old.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    if field("validation").is_some_and(|v| v != validation) {
        return Claim::PayloadMismatch;
    }
    match field("status") {
        Some(STATUS_COMPLETED) => Claim::AlreadyCompleted,
        // Our own claim, written by an earlier try of this same call.
        Some(STATUS_IN_PROGRESS) if field("claim_token") == Some(token) => Claim::Acquired,
        _ => Claim::InProgressElsewhere,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: &str, validation: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("status".to_string(), s(status)),
            ("validation".to_string(), s(validation)),
        ])
    }

    #[test]
    fn conflicts_are_judged_from_the_old_item() {
        assert_eq!(
            judge_conflict(Some(&item(STATUS_COMPLETED, "h")), "h", "t1"),
            Claim::AlreadyCompleted
        );
        assert_eq!(
            judge_conflict(Some(&item(STATUS_IN_PROGRESS, "h")), "h", "t1"),
            Claim::InProgressElsewhere
        );
        assert_eq!(
            judge_conflict(Some(&item(STATUS_COMPLETED, "other")), "h", "t1"),
            Claim::PayloadMismatch
        );
        assert_eq!(judge_conflict(None, "h", "t1"), Claim::InProgressElsewhere);
    }

    #[test]
    fn a_retried_write_recognises_its_own_claim() {
        let mut own = item(STATUS_IN_PROGRESS, "h");
        own.insert("claim_token".into(), s("t1"));
        assert_eq!(judge_conflict(Some(&own), "h", "t1"), Claim::Acquired);
        assert_eq!(
            judge_conflict(Some(&own), "h", "t2"),
            Claim::InProgressElsewhere,
            "another call's claim, even for the same event id"
        );
        let mut done = item(STATUS_COMPLETED, "h");
        done.insert("claim_token".into(), s("t1"));
        assert_eq!(
            judge_conflict(Some(&done), "h", "t1"),
            Claim::AlreadyCompleted
        );
    }
}
