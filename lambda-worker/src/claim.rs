//! Idempotency claims in DynamoDB, with the semantics of Powertools for AWS Lambda's
//! idempotency utility.
//!
//! One item per event key (per (event, destination) pair with routes): `pk`, `status`
//! (INPROGRESS / COMPLETED / DEADLETTERED), `expiration` (epoch
//! seconds; the table's TTL attribute), `in_progress_expiration` (epoch ms, from the
//! invocation deadline), `validation` (SHA-256 of the payload), `event_id`. A claim is one
//! conditional PutItem that returns the old item on conflict, so the happy path costs one
//! write to claim and one to complete, and no reads. TTL deletion lags by up to 48 h, so
//! expirations are compared, never assumed deleted.
//!
//! DEADLETTERED marks a pair dead-lettered by the SQS message `dead_letter_message`: that
//! same message received again (it waits for another destination) skips the pair instead
//! of dead-lettering it a second time, while any other message for the pair (a redrive, a
//! replay, a provider retry) takes the claim over and tries again.

use crate::ddb_direct::{Answer, Direct};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use sluice_protocol::json_text::string as json_str;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::OnceCell;

pub const STATUS_IN_PROGRESS: &str = "INPROGRESS";
pub const STATUS_COMPLETED: &str = "COMPLETED";
pub const STATUS_DEAD_LETTERED: &str = "DEADLETTERED";

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
    /// This same SQS message dead-lettered the pair already: settled, not tried again.
    DeadLettered,
}

#[derive(Debug, thiserror::Error)]
#[error("idempotency table: {0}")]
pub struct ClaimError(pub String);

/// Claims, completes and releases events in one table.
///
/// Claims and completions (two calls per event) try the direct path of
/// [`crate::ddb_direct`] first, and fall back to the SDK client, with its retries, for
/// anything but a clean answer. Releases (a failure path) always use the SDK.
#[derive(Debug, Clone)]
pub struct ClaimStore {
    client: Client,
    table: String,
    direct: Arc<OnceCell<Option<Direct>>>,
}

const CLAIM_CONDITION: &str = "attribute_not_exists(pk) OR expiration < :now \
                 OR (#status = :inprogress AND in_progress_expiration < :now_ms) \
                 OR (#status = :dead AND dead_letter_message <> :message)";
const COMPLETE_UPDATE: &str =
    "SET #status = :completed, expiration = :exp REMOVE in_progress_expiration";

/// An attribute value of the claim requests: the two kinds they use.
#[derive(Debug, Clone, Copy)]
enum Attr<'a> {
    S(&'a str),
    N(u64),
}

/// Named attribute values: a claim's item, or an expression's values.
type Attrs<'a, const N: usize> = [(&'static str, Attr<'a>); N];

/// The item a claim writes. The direct request and the SDK request are both built from it.
fn claim_item<'a>(
    key: &'a str,
    event_id: &'a str,
    token: &'a str,
    validation: &'a str,
    in_progress_until_ms: u64,
    expiration_secs: u64,
) -> Attrs<'a, 7> {
    [
        ("pk", Attr::S(key)),
        ("status", Attr::S(STATUS_IN_PROGRESS)),
        ("event_id", Attr::S(event_id)),
        ("claim_token", Attr::S(token)),
        ("validation", Attr::S(validation)),
        ("expiration", Attr::N(expiration_secs)),
        ("in_progress_expiration", Attr::N(in_progress_until_ms)),
    ]
}

/// The values `CLAIM_CONDITION` reads.
fn claim_values(now_ms: u64, message_id: &str) -> Attrs<'_, 5> {
    [
        (":now", Attr::N(now_ms / 1000)),
        (":now_ms", Attr::N(now_ms)),
        (":inprogress", Attr::S(STATUS_IN_PROGRESS)),
        (":dead", Attr::S(STATUS_DEAD_LETTERED)),
        (":message", Attr::S(message_id)),
    ]
}

/// What a claim's caller says of the SQS message it works on, when there is none.
const NO_MESSAGE: &str = "-";

/// The values `COMPLETE_UPDATE` writes.
fn complete_values(expiration_secs: u64) -> Attrs<'static, 2> {
    [
        (":completed", Attr::S(STATUS_COMPLETED)),
        (":exp", Attr::N(expiration_secs)),
    ]
}

/// For the SDK request.
fn attr_map(attrs: &[(&str, Attr<'_>)]) -> HashMap<String, AttributeValue> {
    attrs
        .iter()
        .map(|(name, value)| {
            let value = match *value {
                Attr::S(v) => s(v),
                Attr::N(v) => n(v),
            };
            (name.to_string(), value)
        })
        .collect()
}

/// For the direct request: `{"name":{"S":"…"},"name":{"N":"…"},…}` (DynamoDB JSON).
fn push_attrs(out: &mut Vec<u8>, attrs: &[(&str, Attr<'_>)]) {
    out.push(b'{');
    for (i, (name, value)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, name);
        match *value {
            Attr::S(v) => {
                out.extend_from_slice(b":{\"S\":");
                json_str(out, v);
                out.push(b'}');
            }
            Attr::N(v) => {
                out.extend_from_slice(b":{\"N\":\"");
                out.extend_from_slice(v.to_string().as_bytes());
                out.extend_from_slice(b"\"}");
            }
        }
    }
    out.push(b'}');
}

/// The PutItem request of a claim, as DynamoDB JSON.
fn claim_body(table: &str, item: &[(&str, Attr<'_>)], values: &[(&str, Attr<'_>)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(1024);
    b.extend_from_slice(b"{\"TableName\":");
    json_str(&mut b, table);
    b.extend_from_slice(b",\"Item\":");
    push_attrs(&mut b, item);
    b.extend_from_slice(b",\"ConditionExpression\":");
    json_str(&mut b, CLAIM_CONDITION);
    b.extend_from_slice(b",\"ExpressionAttributeNames\":{\"#status\":\"status\"}");
    b.extend_from_slice(b",\"ExpressionAttributeValues\":");
    push_attrs(&mut b, values);
    b.extend_from_slice(b",\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}");
    b
}

/// The UpdateItem request of a completion, as DynamoDB JSON.
fn complete_body(table: &str, key: &str, values: &[(&str, Attr<'_>)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(384);
    b.extend_from_slice(b"{\"TableName\":");
    json_str(&mut b, table);
    b.extend_from_slice(b",\"Key\":");
    push_attrs(&mut b, &[("pk", Attr::S(key))]);
    b.extend_from_slice(b",\"UpdateExpression\":");
    json_str(&mut b, COMPLETE_UPDATE);
    b.extend_from_slice(b",\"ExpressionAttributeNames\":{\"#status\":\"status\"}");
    b.extend_from_slice(b",\"ExpressionAttributeValues\":");
    push_attrs(&mut b, values);
    b.push(b'}');
    b
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
            direct: Arc::new(OnceCell::new()),
        }
    }

    /// The direct path, probed from the client on first use (`None`: SDK only).
    async fn direct(&self) -> Option<&Direct> {
        self.direct
            .get_or_try_init(|| Box::pin(Direct::probe(&self.client, &self.table)))
            .await
            .ok()?
            .as_ref()
    }

    /// The SDK's settings for a call that follows a direct attempt (when there was one).
    fn after_direct(
        direct: Option<(&Direct, Instant)>,
    ) -> Option<aws_sdk_dynamodb::config::Builder> {
        direct.map(|(d, started)| {
            let (retry, timeouts) = d.remaining(started);
            aws_sdk_dynamodb::config::Builder::default()
                .retry_config(retry)
                .timeout_config(timeouts)
        })
    }

    /// Tries to claim `key` until `in_progress_until_ms`, for no particular SQS message.
    pub async fn claim(
        &self,
        key: &str,
        event_id: &str,
        validation: &str,
        now_ms: u64,
        in_progress_until_ms: u64,
        expiration_secs: u64,
    ) -> Result<Claim, ClaimError> {
        let message = NO_MESSAGE;
        self.claim_for(
            message,
            key,
            event_id,
            validation,
            now_ms,
            in_progress_until_ms,
            expiration_secs,
        )
        .await
    }

    /// Tries to claim `key` until `in_progress_until_ms` while working on the SQS message
    /// `message_id` (a pair this message dead-lettered stays settled for it).
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_for(
        &self,
        message_id: &str,
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
        let item = claim_item(
            key,
            event_id,
            &token,
            validation,
            in_progress_until_ms,
            expiration_secs,
        );
        let values = claim_values(now_ms, message_id);
        let started = Instant::now();
        let mut tried = None;
        if let Some(direct) = self.direct().await {
            let body = claim_body(&self.table, &item, &values);
            match Box::pin(direct.call("DynamoDB_20120810.PutItem", body)).await {
                Answer::Ok => return Ok(Claim::Acquired),
                Answer::ConditionFailed(old) => {
                    return Ok(judge_conflict(old.as_ref(), validation, &token))
                }
                Answer::Retry { backoff } => {
                    tokio::time::sleep(backoff).await;
                    tried = Some((direct, started));
                }
            }
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attr_map(&item)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(attr_map(&values)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let result = match Self::after_direct(tried) {
            Some(config) => Box::pin(request.customize().config_override(config).send()).await,
            None => Box::pin(request.send()).await,
        };
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
        let values = complete_values(expiration_secs);
        let started = Instant::now();
        let mut tried = None;
        if let Some(direct) = self.direct().await {
            let body = complete_body(&self.table, key, &values);
            match Box::pin(direct.call("DynamoDB_20120810.UpdateItem", body)).await {
                Answer::Ok => return Ok(()),
                // Not an answer UpdateItem without a condition gives: let the SDK say.
                Answer::ConditionFailed(_) => tried = Some((direct, started)),
                Answer::Retry { backoff } => {
                    tokio::time::sleep(backoff).await;
                    tried = Some((direct, started));
                }
            }
        }
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(COMPLETE_UPDATE)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(attr_map(&values)));
        let result = match Self::after_direct(tried) {
            Some(config) => Box::pin(request.customize().config_override(config).send()).await,
            None => Box::pin(request.send()).await,
        };
        result.map(|_| ()).map_err(|e| ClaimError(error_detail(&e)))
    }

    /// Marks this consumer's claim on `key` dead-lettered by `message_id` (its dead letter
    /// was sent): that message, received again, skips the pair. Failure path only: the SDK.
    pub async fn dead_lettered(
        &self,
        key: &str,
        event_id: &str,
        message_id: &str,
        expiration_secs: u64,
    ) -> Result<(), ClaimError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(
                "SET #status = :dead, dead_letter_message = :message, expiration = :exp \
                 REMOVE in_progress_expiration",
            )
            .condition_expression("#status = :inprogress AND event_id = :event_id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":dead", s(STATUS_DEAD_LETTERED))
            .expression_attribute_values(":message", s(message_id))
            .expression_attribute_values(":exp", n(expiration_secs))
            .expression_attribute_values(":inprogress", s(STATUS_IN_PROGRESS))
            .expression_attribute_values(":event_id", s(event_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                // No longer our claim (it expired and was taken over): nothing to mark.
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(ClaimError(error_detail(&other))),
            },
        }
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
        // The condition lets any other message take a dead-lettered pair over.
        Some(STATUS_DEAD_LETTERED) => Claim::DeadLettered,
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
