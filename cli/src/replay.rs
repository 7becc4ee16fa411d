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
//! `--source all` replays every source found under `archive/`.
//!
//! `--destination NAME` replays for one destination only: every message sent carries the
//! `sluice-destination` attribute, so the consumer delivers it to NAME alone (NAME's filter
//! still applies, and its idempotency skips events NAME already has); the other
//! destinations get nothing again. That backfills a destination added after the events
//! arrived. The name is checked against `--sources-file` when given (a mismatch is an
//! error), else against the local stack's stack file (a description of the stack, not the
//! consumer's config: a mismatch is only a warning); on AWS without `--sources-file` it
//! cannot be checked, and a name the consumer does not know dead-letters every replayed
//! message (reason `unknown_destination`).
//!
//! Read-only on S3: it never writes or deletes an object, and never prints a body.

use crate::error::{self, CliError, Result};
use crate::target::{Kind, Target};
use crate::{config_check, progress, queues, requeue, times};
use clap::Args;
use serde::Serialize;
use serde_json::json;
use sluice_protocol::{archive, Envelope, SourcesConfig, DEFAULT_DESTINATION};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Replay for this destination only (backfill a destination added later): each message
    /// carries the `sluice-destination` attribute, so only NAME receives the window (its
    /// filter still applies; events it already has are skipped); the other destinations
    /// get nothing again. Checked against --sources-file (or, warning only, the local
    /// stack's stack file); on AWS without --sources-file it is not checked, and a name the
    /// consumer does not know dead-letters every replayed message with reason
    /// `unknown_destination`.
    #[arg(long, value_name = "NAME", value_parser = requeue::parse_destination_name)]
    pub destination: Option<String>,
    /// The sources file deployed (as for `sluice config check`): --source and
    /// --destination are checked against it before anything is read or sent (a source or
    /// destination it does not declare: exit 3; an invalid file: exit 2; with `--source
    /// all`, archived sources it does not declare, or that lack --destination, are skipped
    /// with a warning). Without it, on the local stack, --destination is checked against
    /// the stack file, with warnings only.
    #[arg(long, value_name = "FILE")]
    pub sources_file: Option<PathBuf>,
}

/// The destinations of each source, as far as the CLI can know them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declared {
    /// Where they were read, for messages (`sources file x.json`).
    origin: String,
    /// Destination names by source name.
    sources: BTreeMap<String, Vec<String>>,
    /// True for a sources file (what was deployed): a mismatch is an error. A stack file
    /// only describes the local stack, so a mismatch there is a warning.
    authoritative: bool,
}

impl Declared {
    fn from_config(origin: String, config: &SourcesConfig) -> Self {
        Declared {
            origin,
            sources: config
                .sources
                .iter()
                .map(|s| {
                    let names = s.destinations.iter().map(|d| d.name.clone()).collect();
                    (s.name.clone(), names)
                })
                .collect(),
            authoritative: true,
        }
    }

    /// From a local stack file's `sources` list: each entry's `destinations` names, or
    /// `default` for an entry with one `destination` URL. `None` when the file does not
    /// describe every source that way (then nothing is checked).
    fn from_stack_text(origin: String, text: &str) -> Option<Self> {
        let doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut sources = BTreeMap::new();
        for entry in doc.get("sources")?.as_array()? {
            let name = entry.get("name")?.as_str()?.to_string();
            let names: Vec<String> = match (entry.get("destinations"), entry.get("destination")) {
                (Some(serde_json::Value::Array(list)), _) => list
                    .iter()
                    .map(|d| d.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .collect::<Option<_>>()?,
                (None, Some(serde_json::Value::String(_))) => vec![DEFAULT_DESTINATION.to_string()],
                _ => return None,
            };
            sources.insert(name, names);
        }
        Some(Declared {
            origin,
            sources,
            authoritative: false,
        })
    }

    fn from_stack_file(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        Self::from_stack_text(format!("stack file {}", path.display()), &text)
    }

    /// Checks explicitly named sources (and the destination) exist.
    fn check(&self, sources: &[String], destination: Option<&str>) -> Result<()> {
        let listing = |names: &mut dyn Iterator<Item = &String>| {
            let names: Vec<&str> = names.map(String::as_str).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        for source in sources {
            let Some(destinations) = self.sources.get(source) else {
                return Err(CliError::NotFound(format!(
                    "source `{source}` is not declared in {} (declared: {})",
                    self.origin,
                    listing(&mut self.sources.keys())
                )));
            };
            if let Some(d) = destination {
                if !destinations.iter().any(|n| n == d) {
                    return Err(CliError::NotFound(format!(
                        "source `{source}` has no destination `{d}` in {} (its destinations: \
                         {}); the consumer would dead-letter every replayed message as \
                         `unknown_destination`",
                        self.origin,
                        listing(&mut destinations.iter())
                    )));
                }
            }
        }
        Ok(())
    }

    /// `--source all`'s archived sources narrowed to those declared (with the destination):
    /// the kept ones, and each skipped one with why.
    fn narrow(
        &self,
        archived: Vec<String>,
        destination: Option<&str>,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let mut kept = Vec::new();
        let mut skipped = Vec::new();
        for source in archived {
            match (self.sources.get(&source), destination) {
                (None, _) => skipped.push((source, format!("not declared in {}", self.origin))),
                (Some(names), Some(d)) if !names.iter().any(|n| n == d) => {
                    skipped.push((source, format!("no destination `{d}` in {}", self.origin)))
                }
                _ => kept.push(source),
            }
        }
        (kept, skipped)
    }
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
    let destination = args.destination.as_deref();
    // What the CLI knows of the deployed sources: a sources file when given; the local
    // stack's own description for --destination.
    let declared = match (&args.sources_file, destination, &target.kind) {
        (Some(path), _, _) => Some(Declared::from_config(
            format!("sources file {}", path.display()),
            &config_check::load(path)?.config,
        )),
        (None, Some(_), Kind::Local { stack_file, .. }) => Declared::from_stack_file(stack_file),
        _ => None,
    };
    let all = args.sources.iter().any(|s| s == "all");
    if let (Some(declared), false) = (&declared, all) {
        match declared.check(&args.sources, destination) {
            Err(e) if !declared.authoritative => eprintln!("warning: {e}"),
            checked => checked?,
        }
    }
    if let (Some(d), None) = (destination, &declared) {
        eprintln!(
            "note: destination `{d}` is not checked (no --sources-file); if a source has no \
             such destination, the consumer dead-letters its replayed messages as \
             `unknown_destination`"
        );
    }
    let bucket = target.bucket()?;
    let queue_url = target.queue_url()?;
    let sqs = target.sqs();
    let s3 = target.s3();
    let main = queues::info(&sqs, queue_url).await?;

    let sources = if all {
        let archived = archived_sources(&s3, bucket).await?;
        match &declared {
            None => archived,
            Some(declared) if !declared.authoritative => {
                for (source, why) in declared.narrow(archived.clone(), destination).1 {
                    eprintln!("warning: archived source `{source}`: {why}");
                }
                archived
            }
            Some(declared) => {
                let (kept, skipped) = declared.narrow(archived, destination);
                for (source, why) in &skipped {
                    eprintln!("warning: skipping archived source `{source}`: {why}");
                }
                if kept.is_empty() && !skipped.is_empty() {
                    return Err(CliError::NotFound(format!(
                        "no archived source can be replayed{}: {}",
                        destination
                            .map(|d| format!(" for destination `{d}`"))
                            .unwrap_or_default(),
                        skipped
                            .iter()
                            .map(|(s, why)| format!("`{s}` ({why})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                kept
            }
        }
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
    let for_destination = destination
        .map(|d| format!(" for destination `{d}` only"))
        .unwrap_or_default();
    let checked_against = declared.as_ref().map(|d| d.origin.clone());

    if args.dry_run {
        if json {
            let out = json!({
                "dry_run": true,
                "window": {"from_ms": args.from, "to_ms": args.to},
                "to": queue_url,
                "destination": destination,
                "checked_against": checked_against,
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
                "dry run: would replay {} event(s) received {window} to {}{for_destination}; \
                 nothing sent",
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
        let out = requeue::for_replay(queue_url, &envelope, &text, &run_id, destination);
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
            "destination": destination,
            "checked_against": checked_against,
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
            "replayed {} of {} archived event(s) received {window} ({}) to \
             {}{for_destination}; {} invalid skipped, {} failed",
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

    fn declared() -> Declared {
        let config = SourcesConfig::from_json(
            r#"{"sources":[
                {"name":"stripe","scheme":"stripe","destinations":[
                    {"name":"billing","url":"https://b.example/h"},
                    {"name":"audit","url":"https://a.example/h"}]},
                {"name":"github","scheme":"github","destination":"https://g.example/h"}]}"#,
        )
        .unwrap();
        Declared::from_config("sources file s.json".into(), &config)
    }

    #[test]
    fn destinations_are_checked_against_the_sources_file() {
        let d = declared();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(d.check(&names(&["stripe"]), Some("audit")).is_ok());
        assert!(d.check(&names(&["github"]), Some("default")).is_ok());
        assert!(d.check(&names(&["stripe", "github"]), None).is_ok());
        let e = d.check(&names(&["stripe"]), Some("crm")).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_NOT_FOUND);
        let text = e.to_string();
        assert!(
            text.contains("no destination `crm`")
                && text.contains("billing, audit")
                && text.contains("s.json")
                && text.contains("unknown_destination"),
            "{text}"
        );
        let e = d.check(&names(&["github"]), Some("billing")).unwrap_err();
        assert!(e.to_string().contains("its destinations: default"), "{e}");
        let e = d.check(&names(&["shop"]), None).unwrap_err();
        assert!(
            e.to_string().contains("`shop` is not declared")
                && e.to_string().contains("github, stripe"),
            "{e}"
        );
    }

    #[test]
    fn all_is_narrowed_to_sources_with_the_destination() {
        let d = declared();
        let archived = vec![
            "github".to_string(),
            "old".to_string(),
            "stripe".to_string(),
        ];
        let (kept, skipped) = d.narrow(archived.clone(), Some("billing"));
        assert_eq!(kept, ["stripe"]);
        let skipped: Vec<&str> = skipped.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(skipped, ["github", "old"]);
        let (kept, skipped) = d.narrow(archived, None);
        assert_eq!(kept, ["github", "stripe"]);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].1.contains("not declared"), "{skipped:?}");
    }

    #[test]
    fn the_local_stack_file_describes_its_destinations() {
        let stack = r#"{"aws":{"endpoint":"http://x","region":"us-east-1"},"sources":[
            {"name":"orders","scheme":"standard-webhooks","secret":"whsec_x",
             "destination":"http://127.0.0.1:9/orders","url":"http://e/hooks/orders"},
            {"name":"stripe","scheme":"stripe","destinations":[{"name":"billing","url":"http://b"}]}]}"#;
        let d = Declared::from_stack_text("stack file s".into(), stack).unwrap();
        assert!(!d.authoritative, "a mismatch is only a warning");
        assert!(declared().authoritative);
        assert_eq!(d.sources["orders"], ["default"]);
        assert_eq!(d.sources["stripe"], ["billing"]);
        // Not described: nothing is checked rather than everything refused.
        assert_eq!(
            Declared::from_stack_text("s".into(), r#"{"sources":[{"name":"a"}]}"#),
            None
        );
        assert_eq!(Declared::from_stack_text("s".into(), r#"{"aws":{}}"#), None);
        assert_eq!(Declared::from_stack_text("s".into(), "not json"), None);
    }

    #[derive(clap::Parser, Debug)]
    struct Wrapper {
        #[command(flatten)]
        args: ReplayArgs,
    }

    #[test]
    fn destination_and_sources_file_flags() {
        use clap::Parser;
        let w = Wrapper::try_parse_from([
            "replay",
            "--source",
            "stripe",
            "--from",
            "-1h",
            "--destination",
            "billing",
            "--sources-file",
            "s.json",
        ])
        .unwrap();
        assert_eq!(w.args.destination.as_deref(), Some("billing"));
        assert_eq!(w.args.sources_file, Some(PathBuf::from("s.json")));
        assert!(Wrapper::try_parse_from([
            "replay",
            "--source",
            "stripe",
            "--from",
            "-1h",
            "--destination",
            "NOPE"
        ])
        .is_err());
    }
}
