//! `sluice dlq list` and `sluice dlq show <id>`: what is in the dead-letter queue and why.
//!
//! Both read the DLQ without removing anything (see [`crate::dead_letter`]: listing counts
//! as a receive). `show` prints the envelope's metadata; the body only with `--body`. Both
//! show the destination a dead letter is for (`sluice-destination`: it failed there only),
//! or `all` when it is for every destination of its source.
//! Never prints a secret (the envelope holds none) and never deletes a message.

use crate::dead_letter::{self, DeadLetter};
use crate::error::{CliError, Result};
use crate::target::Target;
use crate::{queues, table, times};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::json;
use sluice_protocol::{Body, Envelope};

/// At most this many dead letters are read to find one by id.
const SHOW_SCAN_LIMIT: usize = 1000;

#[derive(Args, Debug)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// List dead letters: event id, source, destination, failure reason and detail,
    /// attempts, age.
    ///
    /// DESTINATION is the one destination a dead letter failed at (the `sluice-destination`
    /// attribute; a redrive sends it back for that destination alone), or `all` when it is
    /// for every destination (the queue's redrive policy moved it, or it could not be
    /// processed at all). JSON: `destination`, null for all.
    ///
    /// Reads with ReceiveMessage and makes every message visible again at once: nothing
    /// moves, but each message's receive count grows by one (harmless: the DLQ has no
    /// redrive policy). Messages being redriven by someone else are not listed.
    List(ListArgs),
    /// Show one dead letter (by Sluice event id or SQS message id): envelope metadata,
    /// the destination it is for (`all`: every destination) and failure; the body only
    /// with --body.
    Show(ShowArgs),
    /// Move dead letters back to the main queue (receive, send, then delete).
    Redrive(crate::redrive::RedriveArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// List at most this many.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max: usize,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The Sluice event id (`evt_…`) or the SQS message id.
    pub id: String,
    /// Also print the event's body (fetched from S3 when it was claim-checked).
    #[arg(long)]
    pub body: bool,
}

pub async fn run(args: DlqArgs, target: &Target, json: bool) -> Result<()> {
    match args.command {
        DlqCommand::List(a) => list(a, target, json).await,
        DlqCommand::Show(a) => show(a, target, json).await,
        DlqCommand::Redrive(a) => crate::redrive::run(a, target, json).await,
    }
}

/// The main queue's maxReceiveCount, when the main queue is known and readable.
pub async fn max_receive_count(target: &Target) -> Option<u64> {
    let url = target.queue_url().ok()?;
    queues::info(&target.sqs(), url)
        .await
        .ok()?
        .max_receive_count
}

/// The columns of `dlq list`.
const LIST_HEADER: [&str; 8] = [
    "EVENT ID",
    "SOURCE",
    "DESTINATION",
    "REASON",
    "ATTEMPTS",
    "STATUS",
    "AGE",
    "DETAIL",
];

/// One `dlq list` row per dead letter, in [`LIST_HEADER`]'s order.
fn list_rows(letters: &[DeadLetter]) -> Vec<Vec<String>> {
    letters
        .iter()
        .map(|d| {
            vec![
                d.event_id.clone().unwrap_or_else(|| "?".into()),
                d.source.clone().unwrap_or_else(|| "?".into()),
                d.destination_label().to_string(),
                d.reason.clone(),
                d.attempts.map_or("?".into(), |a| a.to_string()),
                d.last_status.map_or("-".into(), |s| s.to_string()),
                d.age(),
                table::clip(
                    d.detail
                        .as_deref()
                        .or(d.envelope_error.as_deref())
                        .unwrap_or(""),
                    60,
                ),
            ]
        })
        .collect()
}

async fn list(args: ListArgs, target: &Target, json: bool) -> Result<()> {
    let dlq_url = target.dlq_url()?;
    let sqs = target.sqs();
    let info = queues::info(&sqs, dlq_url).await?;
    let messages =
        dead_letter::peek(&sqs, dlq_url, args.max, info.visible as usize, &|_| false).await?;
    let max_receive = max_receive_count(target).await;
    let now = times::now_ms();
    let letters: Vec<DeadLetter> = messages
        .iter()
        .map(|m| DeadLetter::from_message(m, max_receive, now))
        .collect();
    if json {
        let out = json!({
            "queue_url": dlq_url,
            "visible": info.visible,
            "in_flight": info.in_flight,
            "count": letters.len(),
            "dead_letters": letters,
        });
        println!("{out:#}");
        return Ok(());
    }
    println!(
        "{}: {} dead letter(s) listed ({} visible, {} in flight)",
        info.name,
        letters.len(),
        info.visible,
        info.in_flight
    );
    if letters.is_empty() {
        return Ok(());
    }
    println!("{}", table::render(&LIST_HEADER, &list_rows(&letters)));
    Ok(())
}

async fn show(args: ShowArgs, target: &Target, json: bool) -> Result<()> {
    let dlq_url = target.dlq_url()?;
    let sqs = target.sqs();
    let info = queues::info(&sqs, dlq_url).await?;
    let now = times::now_ms();
    let messages = dead_letter::peek(
        &sqs,
        dlq_url,
        SHOW_SCAN_LIMIT,
        info.visible as usize,
        &|m| DeadLetter::from_message(m, None, now).matches(&args.id),
    )
    .await?;
    let max_receive = max_receive_count(target).await;
    let Some((message, letter)) = messages
        .iter()
        .map(|m| (m, DeadLetter::from_message(m, max_receive, now)))
        .find(|(_, d)| d.matches(&args.id))
    else {
        return Err(CliError::NotFound(format!(
            "no dead letter `{}` in {} ({} read; in-flight messages are not visible)",
            args.id,
            info.name,
            messages.len()
        )));
    };
    let envelope = message.body().and_then(|b| Envelope::decode(b).ok());
    let body = match (&envelope, args.body) {
        (Some(e), true) => Some(body_bytes(target, &e.body).await?),
        _ => None,
    };
    if json {
        let mut out = json!({
            "dead_letter": letter,
            "envelope": envelope.as_ref().map(metadata),
        });
        if let Some(bytes) = &body {
            out["body"] = match std::str::from_utf8(bytes) {
                Ok(text) => json!({"encoding": "utf8", "data": text}),
                Err(_) => json!({"encoding": "base64", "data": B64.encode(bytes)}),
            };
        }
        println!("{out:#}");
        return Ok(());
    }
    let line = |k: &str, v: String| println!("{k:<16} {v}");
    line("message id", letter.message_id.clone());
    line("event id", letter.event_id.clone().unwrap_or_default());
    line("source", letter.source.clone().unwrap_or_default());
    line("destination", destination_line(&letter));
    line("reason", letter.reason.clone());
    line("detail", letter.detail.clone().unwrap_or_default());
    line(
        "attempts",
        letter.attempts.map_or("?".into(), |a| a.to_string()),
    );
    line(
        "last status",
        letter.last_status.map_or("-".into(), |s| s.to_string()),
    );
    if let Some(e) = &envelope {
        line(
            "received",
            format!(
                "{} ({} ago)",
                times::rfc3339(e.received_at_ms),
                letter.age()
            ),
        );
        line(
            "idempotency key",
            e.idempotency_key.clone().unwrap_or_else(|| "-".into()),
        );
        line("dedup key", e.dedup_key());
        line("trace id", e.trace_id.clone().unwrap_or_else(|| "-".into()));
        line(
            "content type",
            e.content_type.clone().unwrap_or_else(|| "-".into()),
        );
        line("body", describe_body(&e.body));
        for (name, value) in &e.headers {
            line("header", format!("{name}: {value}"));
        }
    } else {
        line(
            "envelope",
            letter
                .envelope_error
                .clone()
                .unwrap_or_else(|| "unreadable".into()),
        );
    }
    if let Some(bytes) = body {
        println!();
        match String::from_utf8(bytes) {
            Ok(text) => println!("{text}"),
            Err(e) => println!("(binary, base64) {}", B64.encode(e.as_bytes())),
        }
    } else if !args.body {
        println!("(body not shown; pass --body)");
    }
    Ok(())
}

/// `show`'s destination line: the one destination, or every destination.
fn destination_line(letter: &DeadLetter) -> String {
    match &letter.destination {
        Some(name) => name.clone(),
        None => format!(
            "{} (every destination of the source)",
            crate::dead_letter::ALL_DESTINATIONS
        ),
    }
}

/// The envelope without its body: what `show` prints by default.
fn metadata(e: &Envelope) -> serde_json::Value {
    json!({
        "v": e.v,
        "id": e.id,
        "source": e.source,
        "idempotency_key": e.idempotency_key,
        "dedup_key": e.dedup_key(),
        "received_at_ms": e.received_at_ms,
        "received_at": times::rfc3339(e.received_at_ms),
        "content_type": e.content_type,
        "trace_id": e.trace_id,
        "headers": e.headers,
        "body": describe_body(&e.body),
    })
}

fn describe_body(body: &Body) -> String {
    match body {
        Body::Utf8 { data } => format!("inline text, {} bytes", data.len()),
        Body::Base64 { data } => format!("inline binary, {} base64 characters", data.len()),
        Body::S3(r) => format!(
            "claim check s3://{}/{} ({} bytes, sha256 {})",
            r.bucket, r.key, r.size, r.sha256
        ),
    }
}

async fn body_bytes(target: &Target, body: &Body) -> Result<Vec<u8>> {
    match body {
        Body::S3(r) => {
            let out = target
                .s3()
                .get_object()
                .bucket(&r.bucket)
                .key(&r.key)
                .send()
                .await
                .map_err(|e| crate::error::aws(format!("get s3://{}/{}", r.bucket, r.key), e))?;
            let bytes =
                out.body.collect().await.map_err(|e| {
                    CliError::Failed(format!("read s3://{}/{}: {e}", r.bucket, r.key))
                })?;
            Ok(bytes.into_bytes().to_vec())
        }
        inline => inline
            .to_bytes()
            .map_err(|e| CliError::Failed(format!("the body cannot be decoded: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{Message, MessageAttributeValue};

    fn attr(v: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    }

    fn letter(destination: Option<&str>) -> DeadLetter {
        let mut m = Message::builder()
            .message_id("m-1")
            .body("not an envelope")
            .message_attributes("sluice-event-id", attr("evt_1"))
            .message_attributes("sluice-source", attr("stripe"))
            .message_attributes("sluice-failure-reason", attr("delivery_status"))
            .message_attributes("sluice-attempts", attr("2"));
        if let Some(d) = destination {
            m = m.message_attributes("sluice-destination", attr(d));
        }
        DeadLetter::from_message(&m.build(), None, 0)
    }

    #[test]
    fn the_list_shows_the_destination_or_all() {
        let rows = list_rows(&[letter(Some("billing")), letter(None)]);
        let column = LIST_HEADER
            .iter()
            .position(|h| *h == "DESTINATION")
            .unwrap();
        assert_eq!(rows[0][column], "billing");
        assert_eq!(rows[1][column], "all");
        assert!(rows.iter().all(|r| r.len() == LIST_HEADER.len()));
        // The existing columns keep their order around it.
        assert_eq!(
            LIST_HEADER,
            [
                "EVENT ID",
                "SOURCE",
                "DESTINATION",
                "REASON",
                "ATTEMPTS",
                "STATUS",
                "AGE",
                "DETAIL"
            ]
        );
        assert_eq!(rows[0][3], "delivery_status");
        assert_eq!(
            destination_line(&letter(None)),
            "all (every destination of the source)"
        );
        assert_eq!(destination_line(&letter(Some("audit"))), "audit");
    }
}
