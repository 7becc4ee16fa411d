//! `sluice replay`: re-enqueue archived events of a time window.
//!
//! The consumer archives every envelope it takes on at `protocol::archive::key` in the
//! payload bucket, exactly as queued. Replay lists the window's hour prefixes per source,
//! keeps the keys whose received-at lies in `[from, to]`, GETs each object, checks it is a
//! valid envelope for that key (invalid ones are skipped and reported), and sends it to the
//! main queue with the edge's attributes (see [`crate::requeue`]). Events already delivered
//! are skipped by the consumer's idempotency; only events whose idempotency record expired
//! are delivered again.
//!
//! `--source all` replays every source found under `archive/`. Read-only on S3: it never
//! writes or deletes an object, and never prints a body.

use crate::error::{self, CliError, Result};
use crate::target::Target;
use crate::{progress, queues, requeue, times};
use clap::Args;
use serde::Serialize;
use serde_json::json;
use sluice_protocol::{archive, Envelope};
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The source to replay; repeat for several, or `all` for every source in the archive.
    #[arg(long = "source", required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Start of the window, by when the edge received the events (inclusive): RFC 3339 in
    /// UTC (2026-11-23T10:00:00Z), relative (-2h, -30m, -1day) or `now`.
    #[arg(long, value_parser = crate::times::parse_arg, allow_hyphen_values = true, value_name = "TIME")]
    pub from: u64,
    /// End of the window (inclusive), same forms as --from.
    #[arg(long, value_parser = crate::times::parse_arg, allow_hyphen_values = true, default_value = "now", value_name = "TIME")]
    pub to: u64,
    /// Count what would be replayed; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One archived event in the window.
#[derive(Debug, Clone, Serialize)]
struct Archived {
    source: String,
    key: String,
    event_id: String,
    received_at_ms: u64,
}

/// What happened to one archived event that was not replayed.
#[derive(Debug, Serialize)]
struct Skipped {
    key: String,
    error: String,
}

pub async fn run(args: ReplayArgs, target: &Target, json: bool) -> Result<()> {
    if args.from > args.to {
        return Err(CliError::Usage(format!(
            "--from ({}) is after --to ({})",
            times::rfc3339(args.from),
            times::rfc3339(args.to)
        )));
    }
    let bucket = target.bucket()?;
    let queue_url = target.queue_url()?;
    let sqs = target.sqs();
    let s3 = target.s3();
    let main = queues::info(&sqs, queue_url).await?;

    let sources = if args.sources.iter().any(|s| s == "all") {
        archived_sources(&s3, bucket).await?
    } else {
        let mut s = args.sources.clone();
        s.sort();
        s.dedup();
        // A misspelt source would otherwise read as "nothing to replay": a source with no
        // archive at all (never archived, or all of it expired) is named; if none of the
        // sources has one, nothing can be replayed and that is "not found".
        let archived = archived_sources(&s3, bucket).await?;
        let (known, unknown): (Vec<String>, Vec<String>) =
            s.into_iter().partition(|name| archived.contains(name));
        let listing = if archived.is_empty() {
            "none".to_string()
        } else {
            archived.join(", ")
        };
        for name in &unknown {
            eprintln!(
                "warning: no archive for source `{name}` in s3://{bucket}/{} (never archived, \
                 or expired); archived sources: {listing}",
                archive::PREFIX
            );
        }
        if known.is_empty() {
            return Err(CliError::NotFound(format!(
                "no archive for source(s) {} in s3://{bucket}/{} (never archived, or expired); \
                 archived sources: {listing}",
                unknown
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                archive::PREFIX
            )));
        }
        known
    };
    let mut found: Vec<Archived> = Vec::new();
    for source in &sources {
        for prefix in archive::hour_prefixes(source, args.from, args.to) {
            for key in list_keys(&s3, bucket, &prefix).await? {
                if !archive::in_window(&key, args.from, args.to) {
                    continue;
                }
                if let Some((ms, id)) = archive::parse_key(&key) {
                    found.push(Archived {
                        source: source.clone(),
                        event_id: id.to_string(),
                        received_at_ms: ms,
                        key,
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| (a.received_at_ms, &a.key).cmp(&(b.received_at_ms, &b.key)));
    let mut per_source: BTreeMap<&str, usize> = sources.iter().map(|s| (s.as_str(), 0)).collect();
    for a in &found {
        *per_source.entry(a.source.as_str()).or_default() += 1;
    }
    let window = format!(
        "{} .. {}",
        times::rfc3339(args.from),
        times::rfc3339(args.to)
    );

    if args.dry_run {
        if json {
            let out = json!({
                "dry_run": true,
                "window": {"from_ms": args.from, "to_ms": args.to},
                "to": queue_url,
                "would_replay": found.len(),
                "per_source": per_source,
                "events": found,
            });
            println!("{out:#}");
        } else {
            for (source, n) in &per_source {
                println!("{source:<20} {n} archived event(s)");
            }
            println!(
                "dry run: would replay {} event(s) received {window} to {}; nothing sent",
                found.len(),
                main.name
            );
        }
        return Ok(());
    }

    let run_id = format!("{}-{}", times::now_ms(), std::process::id());
    let bar = progress::bar(found.len() as u64, "replay", json);
    let mut replayed: Vec<&Archived> = Vec::new();
    let mut invalid: Vec<Skipped> = Vec::new();
    let mut failed: Vec<Skipped> = Vec::new();
    let mut fatal: Option<CliError> = None;
    for a in &found {
        bar.inc(1);
        let text = match get_text(&s3, bucket, &a.key).await {
            Ok(Ok(text)) => text,
            Ok(Err(why)) => {
                invalid.push(Skipped {
                    key: a.key.clone(),
                    error: why,
                });
                continue;
            }
            Err(e) => {
                failed.push(Skipped {
                    key: a.key.clone(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let envelope = match check(&text, a) {
            Ok(e) => e,
            Err(why) => {
                invalid.push(Skipped {
                    key: a.key.clone(),
                    error: why,
                });
                continue;
            }
        };
        let out = requeue::for_replay(queue_url, &envelope, &text, &run_id);
        match requeue::send(&sqs, queue_url, &out).await {
            Ok(_) => replayed.push(a),
            Err(e) => {
                let e = error::aws(format!("send to {queue_url}"), e);
                if matches!(e, CliError::NotFound(_) | CliError::Credentials(_)) {
                    fatal = Some(e);
                    break;
                }
                failed.push(Skipped {
                    key: a.key.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    bar.finish_and_clear();

    if json {
        let out = json!({
            "dry_run": false,
            "window": {"from_ms": args.from, "to_ms": args.to},
            "to": queue_url,
            "found": found.len(),
            "replayed": replayed.len(),
            "per_source": per_source,
            "events": replayed,
            "invalid": invalid,
            "failed": failed,
        });
        println!("{out:#}");
    } else {
        for s in invalid.iter() {
            eprintln!("skipped invalid archive object {}: {}", s.key, s.error);
        }
        for s in failed.iter() {
            eprintln!("FAILED {}: {}", s.key, s.error);
        }
        println!(
            "replayed {} of {} archived event(s) received {window} ({}) to {}; {} invalid \
             skipped, {} failed",
            replayed.len(),
            found.len(),
            sources.join(", "),
            main.name,
            invalid.len(),
            failed.len()
        );
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    if !failed.is_empty() {
        return Err(CliError::Failed(format!(
            "partial replay: {} of {} event(s) not sent",
            failed.len(),
            found.len()
        )));
    }
    Ok(())
}

/// The archived object as a valid envelope for its key, or why not.
fn check(text: &str, a: &Archived) -> Result<Envelope, String> {
    let envelope = Envelope::decode(text).map_err(|e| e.to_string())?;
    if envelope.source != a.source
        || envelope.id != a.event_id
        || envelope.received_at_ms != a.received_at_ms
    {
        return Err(format!(
            "the envelope ({} {} at {}) does not match its key",
            envelope.source, envelope.id, envelope.received_at_ms
        ));
    }
    Ok(envelope)
}

/// Every source with an `archive/{source}/` prefix.
async fn archived_sources(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<String>> {
    let mut sources = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(archive::PREFIX)
            .delimiter("/")
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| error::aws(format!("list s3://{bucket}/{}", archive::PREFIX), e))?;
        for p in out.common_prefixes() {
            if let Some(name) = p
                .prefix()
                .and_then(|p| p.strip_prefix(archive::PREFIX))
                .map(|p| p.trim_end_matches('/'))
                .filter(|p| !p.is_empty())
            {
                sources.push(name.to_string());
            }
        }
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    sources.sort();
    sources.dedup();
    Ok(sources)
}

/// Every key under `prefix`.
async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| error::aws(format!("list s3://{bucket}/{prefix}"), e))?;
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(keys)
}

/// The object's text; the inner error says why it is not usable (not UTF-8).
async fn get_text(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Result<String, String>> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error::aws(format!("get s3://{bucket}/{key}"), e))?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| CliError::Failed(format!("read s3://{bucket}/{key}: {e}")))?;
    Ok(String::from_utf8(bytes.into_bytes().to_vec())
        .map_err(|_| "the object is not UTF-8 text".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::Body;

    fn archived(e: &Envelope) -> Archived {
        Archived {
            source: e.source.clone(),
            key: archive::key(&e.source, e.received_at_ms, &e.id),
            event_id: e.id.clone(),
            received_at_ms: e.received_at_ms,
        }
    }

    #[test]
    fn archived_objects_must_match_their_key() {
        let e = Envelope {
            v: sluice_protocol::ENVELOPE_VERSION,
            id: "evt_1".into(),
            source: "github".into(),
            idempotency_key: None,
            received_at_ms: 1_795_437_296_789,
            content_type: None,
            trace_id: None,
            headers: Default::default(),
            body: Body::from_bytes(b"{}"),
        };
        let a = archived(&e);
        assert_eq!(check(&e.encode(), &a).map(|x| x.id), Ok("evt_1".into()));
        let mut other = e.clone();
        other.id = "evt_2".into();
        assert!(check(&other.encode(), &a)
            .unwrap_err()
            .contains("does not match"));
        assert!(check("{\"v\":9}", &a).is_err());
        assert!(check("not json", &a).is_err());
    }
}
