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
    #[arg(long, conflicts_with_all = ["max", "dry_run"])]
    pub move_task: bool,
    /// With --move-task: the move rate, 1-500 messages per second (SQS's default when omitted).
    #[arg(long, requires = "move_task", value_name = "N",
          value_parser = clap::value_parser!(i32).range(1..=500))]
    pub max_per_second: Option<i32>,
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
    let now = times::now_ms();
    if args.dry_run {
        let messages =
            dead_letter::peek(&sqs, dlq_url, limit, dlq.visible as usize, &|_| false).await?;
        let letters: Vec<DeadLetter> = messages
            .iter()
            .map(|m| DeadLetter::from_message(m, main.max_receive_count, now))
            .collect();
        if json {
            let out = json!({
                "dry_run": true,
                "from": dlq_url,
                "to": queue_url,
                "would_move": letters.len(),
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
                        d.reason.clone(),
                        d.age(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                println!(
                    "{}",
                    table::render(&["EVENT ID", "SOURCE", "REASON", "AGE"], &rows)
                );
            }
            println!(
                "dry run: would redrive {} dead letter(s) from {} to {}; nothing moved",
                letters.len(),
                dlq.name,
                main.name
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
    // Events this run sent back (by event id, or by body for a message without one): one
    // of them dead-lettered again during the run is left for the next run (it would
    // otherwise use up this run's count and starve the dead letters that were there when
    // it started).
    let mut sent_events: std::collections::HashSet<String> = Default::default();
    let mut left: Vec<Left> = Vec::new();
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
            let event = letter
                .event_id
                .clone()
                .or_else(|| m.md5_of_body().map(|md5| format!("body md5 {md5}")));
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
            "moved": moved,
            "failed": failed,
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
                d.letter.source.as_deref().unwrap_or("?"),
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
                l.letter.source.as_deref().unwrap_or("?"),
                l.why
            );
        }
        println!(
            "redrove {moved} of {} dead letter(s) from {} to {}; {failed} failed{}",
            done.len(),
            dlq.name,
            main.name,
            if left.is_empty() {
                String::new()
            } else {
                format!("; {} left in the DLQ for the next run", left.len())
            }
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
