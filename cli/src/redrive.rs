//! `sluice dlq redrive`: move dead letters back to the main queue.
//!
//! Per message: ReceiveMessage from the DLQ (hidden for [`REDRIVE_VISIBILITY_SECS`]) ->
//! SendMessage to the main queue (same body, original attributes minus the dead-letter ones,
//! see [`crate::requeue`]) -> DeleteMessage from the DLQ, only once the send succeeded. That
//! works on moto as on AWS. A message whose send failed is made visible again in the DLQ;
//! one sent but not deleted stays in the DLQ and may be sent again later: the consumer's
//! idempotency skips an event already delivered, so both are safe.
//!
//! Without `--max`, the run is bounded by the DLQ's visible count when it starts, and an
//! event this run sent back that is dead-lettered again during the run is left for the next
//! run, so nothing is redriven in a loop and every earlier dead letter gets its turn. On a
//! FIFO queue, a message that cannot be sent holds back the rest of its message group (they
//! stay in the DLQ), so a group never reaches the main queue out of order.
//! `--move-task` (AWS only; moto does not implement it) hands the whole DLQ to SQS's own
//! StartMessageMoveTask instead, which keeps the dead-letter attributes on the messages.
//!
//! A dead letter that failed at one destination carries `sluice-destination`, and keeps it
//! on the way back: the consumer then delivers it to that destination alone.
//! `--destination NAME` redrives only the dead letters for NAME; the others (for other
//! destinations, or for every destination: no attribute) are made visible again and stay
//! in the DLQ. On a FIFO queue a skipped dead letter for every destination also holds back
//! the rest of its group, since NAME is one of its destinations.
//! Must never delete a dead letter that was not sent, and never print a body.

use crate::dead_letter::{self, DeadLetter};
use crate::error::{self, CliError, Result};
use crate::target::Target;
use crate::{progress, queues, requeue, table, times};
use aws_sdk_sqs::types::Message;
use clap::Args;
use serde::Serialize;
use serde_json::json;

/// How long a message being redriven stays hidden in the DLQ (send + delete take less).
pub const REDRIVE_VISIBILITY_SECS: i32 = 60;

#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// Move at most N dead letters [default: those in the DLQ when the run starts].
    #[arg(long, value_name = "N")]
    pub max: Option<usize>,
    /// Show what would move; move nothing (messages are read and made visible again).
    #[arg(long)]
    pub dry_run: bool,
    /// AWS only: start SQS's own DLQ redrive (StartMessageMoveTask) for the whole DLQ
    /// instead of moving messages one by one. Dead-letter attributes stay on the messages.
    #[arg(long, conflicts_with_all = ["max", "dry_run", "destination"])]
    pub move_task: bool,
    /// With --move-task: the move rate, 1-500 messages per second (SQS's default when omitted).
    #[arg(long, requires = "move_task", value_name = "N",
          value_parser = clap::value_parser!(i32).range(1..=500))]
    pub max_per_second: Option<i32>,
    /// Redrive only the dead letters for this destination (their `sluice-destination`
    /// attribute, the DESTINATION column of `dlq list`); the others stay in the DLQ,
    /// including those for every destination (`all`: redrive them without --destination).
    #[arg(long, value_name = "NAME", value_parser = requeue::parse_destination_name)]
    pub destination: Option<String>,
}

/// True when `--destination` (`only`) selects this dead letter.
fn selected(letter: &DeadLetter, only: Option<&str>) -> bool {
    only.is_none_or(|name| letter.destination.as_deref() == Some(name))
}

/// `source`, or `source/destination` for a dead letter for one destination.
fn routed(letter: &DeadLetter) -> String {
    let source = letter.source.as_deref().unwrap_or("?");
    match &letter.destination {
        Some(d) => format!("{source}/{d}"),
        None => source.to_string(),
    }
}

/// A dead letter this run did not try to move, and why.
#[derive(Debug, Serialize)]
struct Left {
    #[serde(flatten)]
    letter: DeadLetter,
    why: &'static str,
}

/// One dead letter's fate.
#[derive(Debug, Serialize)]
struct Moved {
    #[serde(flatten)]
    letter: DeadLetter,
    /// The message id it got on the main queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(args: RedriveArgs, target: &Target, json: bool) -> Result<()> {
    let dlq_url = target.dlq_url()?;
    let queue_url = target.queue_url()?;
    let sqs = target.sqs();
    let dlq = queues::info(&sqs, dlq_url).await?;
    let main = queues::info(&sqs, queue_url).await?;
    if args.move_task {
        return move_task(&args, target, &dlq, &main, json).await;
    }
    let limit = args.max.unwrap_or(dlq.visible as usize);
    let only = args.destination.as_deref();
    let for_destination = only
        .map(|d| format!(" for destination `{d}`"))
        .unwrap_or_default();
    let now = times::now_ms();
    if args.dry_run {
        // With --destination, the whole DLQ is read to find `limit` of that destination.
        let read = if only.is_some() {
            dlq.visible as usize
        } else {
            limit
        };
        let messages =
            dead_letter::peek(&sqs, dlq_url, read, dlq.visible as usize, &|_| false).await?;
        let (letters, others): (Vec<DeadLetter>, Vec<DeadLetter>) = messages
            .iter()
            .map(|m| DeadLetter::from_message(m, main.max_receive_count, now))
            .partition(|d| selected(d, only));
        let letters: Vec<DeadLetter> = letters.into_iter().take(limit).collect();
        if json {
            let out = json!({
                "dry_run": true,
                "from": dlq_url,
                "to": queue_url,
                "destination": only,
                "would_move": letters.len(),
                "not_selected": others.len(),
                "dead_letters": letters,
            });
            println!("{out:#}");
        } else {
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|d| {
                    vec![
                        d.event_id.clone().unwrap_or_else(|| "?".into()),
                        d.source.clone().unwrap_or_else(|| "?".into()),
                        d.destination_label().to_string(),
                        d.reason.clone(),
                        d.age(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                println!(
                    "{}",
                    table::render(
                        &["EVENT ID", "SOURCE", "DESTINATION", "REASON", "AGE"],
                        &rows
                    )
                );
            }
            println!(
                "dry run: would redrive {} dead letter(s){for_destination} from {} to {}; \
                 nothing moved{}",
                letters.len(),
                dlq.name,
                main.name,
                not_selected_note(only, others.len())
            );
        }
        return Ok(());
    }

    let bar = progress::bar(limit as u64, "redrive", json);
    let mut done: Vec<Moved> = Vec::new();
    // By message id, with the newest receipt handle: a message hidden longer than the
    // visibility timeout can be received again during a long run.
    let mut to_release: std::collections::BTreeMap<String, Message> = Default::default();
    // Messages this run already moved, tried or left (received again after their
    // visibility ran out): not counted, tried or listed twice.
    let mut recorded: std::collections::HashSet<String> = Default::default();
    // Message groups (FIFO) with a message that could not be sent: the rest of the group
    // stays in the DLQ behind it, so the main queue never gets a group out of order.
    let mut held_groups: std::collections::HashSet<String> = Default::default();
    // Events this run sent back (by event id, or by body for a message without one, and
    // the destination the letter is for): one
    // of them dead-lettered again during the run is left for the next run (it would
    // otherwise use up this run's count and starve the dead letters that were there when
    // it started).
    let mut sent_events: std::collections::HashSet<String> = Default::default();
    let mut left: Vec<Left> = Vec::new();
    // Dead letters --destination did not select: left in the DLQ, counted only.
    let mut not_selected = 0usize;
    let mut empty = 0;
    let mut fatal: Option<CliError> = None;
    'receive: while done.len() < limit && empty < 3 {
        let want = (limit - done.len()).clamp(1, 10) as i32;
        let batch = match dead_letter::receive(&sqs, dlq_url, want, REDRIVE_VISIBILITY_SECS).await {
            Ok(b) => b,
            Err(e) => {
                fatal = Some(e);
                break;
            }
        };
        if batch.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let mut batch = batch.into_iter();
        while let Some(m) = batch.next() {
            let message_id = m.message_id().unwrap_or_default().to_string();
            if !recorded.insert(message_id.clone()) {
                to_release.insert(message_id, m);
                continue;
            }
            let letter = DeadLetter::from_message(&m, main.max_receive_count, now);
            // The message group it goes to (FIFO only), as the send will use it.
            let out = requeue::for_redrive(queue_url, &m);
            let group = out.fifo.as_ref().map(|(group, _)| group.clone());
            if !selected(&letter, only) {
                not_selected += 1;
                // For every destination, so for the one selected too: what follows in its
                // group must not overtake it.
                if letter.destination.is_none() {
                    held_groups.extend(group);
                }
                to_release.insert(message_id, m);
                continue;
            }
            // Per destination: one event's dead letters for two destinations (or for one
            // and for every destination) are different letters, both sent this run.
            let event = letter
                .event_id
                .clone()
                .or_else(|| m.md5_of_body().map(|md5| format!("body md5 {md5}")))
                .map(|e| format!("{e} for {}", letter.destination.as_deref().unwrap_or("*")));
            let why = if event.as_ref().is_some_and(|e| sent_events.contains(e)) {
                Some("dead-lettered again during this run")
            } else if group.as_ref().is_some_and(|g| held_groups.contains(g)) {
                Some("behind an unsent message of its FIFO group")
            } else {
                None
            };
            if let Some(why) = why {
                left.push(Left { letter, why });
                to_release.insert(message_id, m);
                continue;
            }
            match requeue::send(&sqs, queue_url, &out).await {
                Ok(new_id) => {
                    sent_events.extend(event);
                    let deleted = sqs
                        .delete_message()
                        .queue_url(dlq_url)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .send()
                        .await;
                    let error = deleted.err().map(|e| {
                        format!(
                            "sent to the main queue but not deleted from the DLQ ({}); \
                             redriving it again is harmless",
                            error::aws("delete", e)
                        )
                    });
                    done.push(Moved {
                        letter,
                        new_message_id: Some(new_id),
                        error,
                    });
                }
                Err(e) => {
                    let e = error::aws(format!("send to {queue_url}"), e);
                    held_groups.extend(group);
                    to_release.insert(message_id, m);
                    if matches!(e, CliError::NotFound(_) | CliError::Credentials(_)) {
                        // Nothing else can succeed: give back the rest and stop.
                        for rest in batch.by_ref() {
                            let id = rest.message_id().unwrap_or_default().to_string();
                            to_release.insert(id, rest);
                        }
                        fatal = Some(e);
                        break 'receive;
                    }
                    done.push(Moved {
                        letter,
                        new_message_id: None,
                        error: Some(e.to_string()),
                    });
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let to_release: Vec<Message> = to_release.into_values().collect();
    let released = dead_letter::release(&sqs, dlq_url, &to_release).await;

    let moved = done.iter().filter(|d| d.error.is_none()).count();
    let failed = done.len() - moved;
    if json {
        let out = json!({
            "dry_run": false,
            "from": dlq_url,
            "to": queue_url,
            "destination": only,
            "moved": moved,
            "failed": failed,
            "not_selected": not_selected,
            "dead_letters": done,
            "left_in_dlq": left,
        });
        println!("{out:#}");
    } else {
        for d in &done {
            println!(
                "{} {} ({}, {}){}",
                if d.error.is_none() {
                    "moved "
                } else {
                    "FAILED"
                },
                d.letter.event_id.as_deref().unwrap_or("?"),
                routed(&d.letter),
                d.letter.reason,
                d.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        for l in &left {
            println!(
                "left   {} ({}): {}",
                l.letter.event_id.as_deref().unwrap_or("?"),
                routed(&l.letter),
                l.why
            );
        }
        println!(
            "redrove {moved} of {} dead letter(s){for_destination} from {} to {}; {failed} \
             failed{}{}",
            done.len(),
            dlq.name,
            main.name,
            if left.is_empty() {
                String::new()
            } else {
                format!("; {} left in the DLQ for the next run", left.len())
            },
            not_selected_note(only, not_selected)
        );
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    released?;
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "partial redrive: {failed} of {} dead letter(s) not moved (see above)",
            done.len()
        )));
    }
    Ok(())
}

/// The summary's note on the dead letters `--destination` left alone.
fn not_selected_note(only: Option<&str>, count: usize) -> String {
    match only {
        Some(_) if count > 0 => {
            format!("; {count} for other destinations (or for every destination) left in the DLQ")
        }
        _ => String::new(),
    }
}

async fn move_task(
    args: &RedriveArgs,
    target: &Target,
    dlq: &queues::QueueInfo,
    main: &queues::QueueInfo,
    json: bool,
) -> Result<()> {
    if target.is_local() {
        return Err(CliError::Usage(
            "--move-task needs AWS: moto does not implement StartMessageMoveTask; \
             drop --move-task to move messages one by one"
                .into(),
        ));
    }
    let (Some(source), Some(destination)) = (&dlq.arn, &main.arn) else {
        return Err(CliError::Failed(
            "SQS did not report the queues' ARNs".into(),
        ));
    };
    let mut start = target
        .sqs()
        .start_message_move_task()
        .source_arn(source)
        .destination_arn(destination);
    if let Some(rate) = args.max_per_second {
        start = start.max_number_of_messages_per_second(rate);
    }
    let out = start
        .send()
        .await
        .map_err(|e| error::aws("start the message move task", e))?;
    let handle = out.task_handle().unwrap_or_default();
    if json {
        println!(
            "{:#}",
            json!({"move_task": handle, "from": dlq.url, "to": main.url, "messages": dlq.visible})
        );
    } else {
        println!(
            "started SQS message move task from {} to {} (~{} messages); task handle {handle}",
            dlq.name, main.name, dlq.visible
        );
        println!("follow it with `aws sqs list-message-move-tasks --source-arn {source}`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;
    use clap::Parser;

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
            .body("x")
            .message_attributes("sluice-source", attr("stripe"))
            .message_attributes("sluice-failure-reason", attr("delivery_status"));
        if let Some(d) = destination {
            m = m.message_attributes("sluice-destination", attr(d));
        }
        DeadLetter::from_message(&m.build(), None, 0)
    }

    #[test]
    fn destination_selects_only_its_own_dead_letters() {
        let billing = letter(Some("billing"));
        let audit = letter(Some("audit"));
        let every = letter(None);
        for d in [&billing, &audit, &every] {
            assert!(
                selected(d, None),
                "without --destination every dead letter moves"
            );
        }
        assert!(selected(&billing, Some("billing")));
        assert!(!selected(&audit, Some("billing")));
        assert!(
            !selected(&every, Some("billing")),
            "a dead letter for every destination is not redriven for one"
        );
        assert_eq!(routed(&billing), "stripe/billing");
        assert_eq!(routed(&every), "stripe");
        assert_eq!(not_selected_note(None, 3), "");
        assert_eq!(not_selected_note(Some("billing"), 0), "");
        assert!(not_selected_note(Some("billing"), 2).starts_with("; 2 for other"));
    }

    #[derive(Parser, Debug)]
    struct Wrapper {
        #[command(flatten)]
        args: RedriveArgs,
    }

    #[test]
    fn destination_flag_is_a_destination_name() {
        let w = Wrapper::try_parse_from(["redrive", "--destination", "billing"]).unwrap();
        assert_eq!(w.args.destination.as_deref(), Some("billing"));
        assert!(Wrapper::try_parse_from(["redrive", "--destination", "Not Valid"]).is_err());
        assert!(
            Wrapper::try_parse_from(["redrive", "--destination", "a", "--move-task"]).is_err(),
            "SQS's move task cannot select"
        );
    }
}
