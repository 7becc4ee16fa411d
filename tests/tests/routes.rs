//! Routes end to end (real workerd, moto, the real consumer and CLI, real HTTP
//! destinations): one source fanning out to several destinations, each with its filter,
//! static headers and its own exactly-once record.
//! - each event reaches exactly the destinations whose filters match, once each, with
//!   `sluice-destination` and a `webhook-id` of its own per destination; an event matching
//!   none is `filtered` (logged, measured, archived), never delivered nor dead-lettered;
//! - a destination failing for a while holds up neither the others nor their single
//!   delivery, and receives each event once when it recovers (same `webhook-id` on every
//!   attempt);
//! - a permanent failure at one destination dead-letters that pair only (a copy naming the
//!   destination), once, even while another destination keeps the message for retries;
//!   `sluice dlq redrive` delivers it there and nowhere else;
//! - the consumer SIGKILLed during fan-outs: every pair delivered, repeats only with the
//!   pair's own `webhook-id`;
//! - secret header values (from the consumer's environment, from Secrets Manager) reach the
//!   destination and nothing else: no log, no queued or dead-lettered message, no archive
//!   object, not `stack.json`; an unresolvable reference stops the consumer, naming the
//!   field and not the value;
//! - a destination added later is backfilled from the archive by `sluice replay
//!   --destination`, and the others get nothing again;
//! - upgrading a source from `destination` to `destinations` (keeping `default`)
//!   re-delivers nothing to `default`;
//! - under 15% AWS and destination faults, every (event, destination) pair is delivered
//!   exactly once;
//! - `make dev` (`sluice-dev`) fans its demo `shop-router` out to two destinations and
//!   records which got what; it serves a sources file (`SLUICE_SOURCES_FILE`) and refuses a
//!   bad one with the config error.

use sluice_e2e::cli::{self, Run};
use sluice_e2e::fault_proxy::{Fault, FaultProxy, Faults};
use sluice_e2e::process::Managed;
use sluice_e2e::stack::{read_log, unix_now, SourceSpec};
use sluice_e2e::wait::{free_port, until};
use sluice_e2e::{paths, Behaviour, Delivery, Destination, Stack, StackOptions};
use sluice_protocol::destination::{HeaderValue, SecretRef};
use sluice_protocol::{DestinationConfig, Scheme};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

// ---- helpers ---------------------------------------------------------------------------

/// A destination named `name` at `dest_url` + `path`, with an optional filter.
fn route(
    dest_url: &str,
    name: &str,
    path: &str,
    filter: Option<serde_json::Value>,
) -> DestinationConfig {
    DestinationConfig {
        filter,
        ..DestinationConfig::new(name, &format!("{dest_url}{path}"))
    }
}

/// The consumer's JSON log lines.
fn log_lines(stack: &Stack) -> Vec<serde_json::Value> {
    read_log(&stack.log("consumer"))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

/// Consumer log lines with this `outcome` for `destination` (any event).
fn outcomes_at(stack: &Stack, destination: &str, outcome: &str) -> usize {
    log_lines(stack)
        .iter()
        .filter(|v| v["fields"]["destination"] == destination && v["fields"]["outcome"] == outcome)
        .count()
}

/// Consumer log lines with this `outcome` for the event `event_id` (any destination).
fn outcomes_of(stack: &Stack, event_id: &str, outcome: &str) -> usize {
    log_lines(stack)
        .iter()
        .filter(|v| v["fields"]["event_id"] == event_id && v["fields"]["outcome"] == outcome)
        .count()
}

/// Successful deliveries to `path`, counted per `webhook-id`.
fn per_webhook_id(dest: &Destination, path: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in dest.successful(path) {
        *counts
            .entry(d.webhook_id().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    counts
}

/// A pair's key, `webhook-id` and idempotency record: `{source}#{id}#{destination}`, and
/// `{source}#{id}` (the key from before routes) for `default`. Spelt out here, not taken
/// from the protocol crate, so a change there fails these tests.
fn pair_key(source: &str, id: &str, destination: &str) -> String {
    match destination {
        "default" => format!("{source}#{id}"),
        _ => format!("{source}#{id}#{destination}"),
    }
}

fn keys(source: &str, ids: &[&str], destination: &str) -> BTreeSet<String> {
    ids.iter()
        .map(|id| pair_key(source, id, destination))
        .collect()
}

/// Waits for `check`, showing the consumer's log if it times out.
async fn wait_for<T, F, Fut>(stack: &Stack, what: &str, deadline: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until(what, deadline, check)
        .await
        .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&stack.log("consumer"))))
}

async fn wait_count(stack: &Stack, url: &str, want: u64, what: &str, deadline: Duration) {
    wait_for(stack, what, deadline, || async {
        (stack.queue_count(url).await.ok()? == want).then_some(())
    })
    .await;
}

async fn drained(stack: &Stack) {
    wait_count(
        stack,
        &stack.queue_url,
        0,
        "the main queue to drain",
        DEADLINE,
    )
    .await;
}

/// Every message on `queue_url` (received, then made visible again at once).
async fn peek(stack: &Stack, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all: Vec<aws_sdk_sqs::types::Message> = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..5 {
        let batch = stack.receive(queue_url).await.expect("receive");
        if batch.is_empty() {
            break;
        }
        for m in batch {
            if seen.insert(m.message_id().unwrap_or_default().to_string()) {
                all.push(m);
            }
        }
    }
    for m in &all {
        stack
            .sqs()
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .visibility_timeout(0)
            .send()
            .await
            .expect("release a peeked message");
    }
    all
}

fn attribute(m: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .map(str::to_string)
}

/// Every archived object of `source`: (key, bytes).
async fn archive(stack: &Stack, source: &str) -> Vec<(String, Vec<u8>)> {
    let s3 = stack.s3().await;
    let listed = s3
        .list_objects_v2()
        .bucket(&stack.bucket)
        .prefix(format!("{}{source}/", sluice_protocol::archive::PREFIX))
        .send()
        .await
        .expect("list the archive");
    let mut objects = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap_or_default().to_string();
        let body = s3
            .get_object()
            .bucket(&stack.bucket)
            .key(&key)
            .send()
            .await
            .expect("get an archived object")
            .body
            .collect()
            .await
            .expect("read an archived object")
            .into_bytes()
            .to_vec();
        objects.push((key, body));
    }
    objects
}

/// Runs `sluice --stack-file <the stack's stack.json> args…`.
async fn sluice(stack: &Stack, args: &[&str]) -> Run {
    cli::run_with_stack_file(&stack.dir.join("stack.json"), args).await
}

/// The start of the current UTC hour, RFC 3339 (a replay window that holds everything this
/// test archived).
fn hour_start(started_ms: u64) -> String {
    let hour = sluice_protocol::archive::hour_prefix("x", started_ms);
    let parts: Vec<&str> = hour.trim_end_matches('/').split('/').collect();
    format!("{}-{}-{}T{}:00:00Z", parts[2], parts[3], parts[4], parts[5])
}

/// `sluice replay --source <source> --from <from> --to now --destination <destination>`: its
/// JSON report.
async fn replay_to(
    stack: &Stack,
    source: &str,
    from: &str,
    destination: &str,
) -> serde_json::Value {
    sluice(
        stack,
        &[
            "replay",
            "--source",
            source,
            "--from",
            from,
            "--to",
            "now",
            "--destination",
            destination,
            "--json",
        ],
    )
    .await
    .expect(0)
    .json()
}

fn assert_delivery_headers(d: &Delivery, source: &str, destination: &str) {
    assert_eq!(d.destination(), Some(destination), "{:?}", d.headers);
    assert_eq!(d.header("sluice-source"), Some(source), "{:?}", d.headers);
    assert!(
        d.header("sluice-event-id")
            .is_some_and(|e| e.starts_with("evt_")),
        "{:?}",
        d.headers
    );
}

// ---- tests -----------------------------------------------------------------------------

/// Filters on headers, on body fields (`$in`, `$or`, nested), and events that match none
/// (one of them not JSON): each event reaches exactly its matching destinations, once,
/// with that destination's `sluice-destination` and `webhook-id`; the unmatched ones are
/// `filtered`, archived, never delivered nor dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_exactly_the_destinations_its_filters_match() {
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    let destinations = vec![
        route(
            u,
            "pushes",
            "/repo/pushes",
            Some(serde_json::json!({"headers": {"x-github-event": "push"}})),
        ),
        route(
            u,
            "opened",
            "/repo/opened",
            Some(serde_json::json!({"body": {"action": {"$in": ["opened", "reopened"]}}})),
        ),
        route(
            u,
            "main",
            "/repo/main",
            Some(serde_json::json!({"$or": [
                {"body": {"ref": "refs/heads/main"}},
                {"body": {"pull_request": {"base": {"ref": "main"}}}}
            ]})),
        ),
    ];
    let mut options = StackOptions::for_test("routes-filters", u, &[]);
    options
        .sources
        .push(SourceSpec::routed("repo", Scheme::Github, destinations));
    let mut stack = Stack::start(options).await.expect("stack starts");

    let events: [(&str, &str, &str); 6] = [
        ("gh-1", "push", r#"{"ref":"refs/heads/main"}"#),
        ("gh-2", "push", r#"{"ref":"refs/heads/dev"}"#),
        (
            "gh-3",
            "pull_request",
            r#"{"action":"opened","pull_request":{"base":{"ref":"main"}}}"#,
        ),
        (
            "gh-4",
            "issues",
            r#"{"action":"reopened","issue":{"number":4}}"#,
        ),
        ("gh-5", "star", r#"{"action":"deleted"}"#),
        ("gh-6", "ping", "zen: not JSON"),
    ];
    let mut event_ids = BTreeMap::new();
    for (id, kind, body) in events {
        let event_id = stack
            .post_accepted("repo", id, body.as_bytes(), &[("x-github-event", kind)])
            .await;
        event_ids.insert(id, event_id);
    }
    let expected = [
        ("pushes", keys("repo", &["gh-1", "gh-2"], "pushes")),
        ("opened", keys("repo", &["gh-3", "gh-4"], "opened")),
        ("main", keys("repo", &["gh-1", "gh-3"], "main")),
    ];

    wait_for(
        &stack,
        "every matching delivery and both filtered events",
        DEADLINE,
        || async {
            let delivered = expected.iter().all(|(name, want)| {
                per_webhook_id(&dest, &format!("/repo/{name}")).len() >= want.len()
            });
            let filtered = ["gh-5", "gh-6"]
                .iter()
                .all(|id| outcomes_of(&stack, &event_ids[id], "filtered") == 1);
            (delivered && filtered).then_some(())
        },
    )
    .await;
    drained(&stack).await;

    for (name, want) in &expected {
        let path = format!("/repo/{name}");
        let counts = per_webhook_id(&dest, &path);
        let got: BTreeSet<String> = counts.keys().cloned().collect();
        assert_eq!(&got, want, "{path}: exactly the matching events");
        assert!(
            counts.values().all(|c| *c == 1),
            "{path}: once each: {counts:?}"
        );
        assert_eq!(
            dest.attempts(&path).len(),
            want.len(),
            "{path}: no other request"
        );
        for d in dest.attempts(&path) {
            assert_delivery_headers(&d, "repo", name);
        }
    }
    // The pair's webhook-id differs per destination; its event id is the event's.
    for id in ["gh-1", "gh-3"] {
        let copies: Vec<Delivery> = dest
            .deliveries()
            .into_iter()
            .filter(|d| d.header("sluice-event-id") == Some(event_ids[id].as_str()))
            .collect();
        assert_eq!(copies.len(), 2, "{id}: two destinations");
        assert_ne!(copies[0].webhook_id(), copies[1].webhook_id());
        assert_ne!(copies[0].destination(), copies[1].destination());
    }
    // Unmatched: never delivered, never dead-lettered; logged and measured as filtered.
    for id in ["gh-5", "gh-6"] {
        assert!(
            dest.deliveries()
                .iter()
                .all(|d| d.header("sluice-event-id") != Some(event_ids[id].as_str())),
            "{id} matched no filter but was delivered"
        );
        assert_eq!(outcomes_of(&stack, &event_ids[id], "delivered"), 0);
    }
    assert_eq!(
        stack.queue_count(&stack.dlq_url).await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    let metrics: Vec<serde_json::Value> = log_lines(&stack)
        .into_iter()
        .filter(|v| v["_aws"].is_object() && v["outcome"] == "filtered" && v["source"] == "repo")
        .collect();
    assert_eq!(
        metrics.len(),
        2,
        "one filtered Events metric per event: {metrics:?}"
    );
    assert_eq!(
        metrics.iter().filter(|v| v["NonJsonBodies"] == 1).count(),
        1,
        "the non-JSON body is counted: {metrics:?}"
    );
    // Every event the consumer took on is archived, the filtered ones too (for replay).
    let archived = archive(&stack, "repo").await;
    for event_id in event_ids.values() {
        assert!(
            archived.iter().any(|(k, _)| k.contains(event_id.as_str())),
            "{event_id} not archived: {:?}",
            archived.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
    }
    assert!(stack.processes_running(), "no process died during the run");
}

/// One destination answers 503 to its first six requests. The two others receive each of
/// the three events once, on the first receive, before the failing one first succeeds;
/// the retries skip them (duplicates, no request). The failing one then receives each event
/// once, every attempt of an event with the same `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_holds_up_no_other() {
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    dest.set(
        "/orders/slow",
        Behaviour::FailFirst {
            times: 6,
            status: 503,
        },
    );
    let mut options = StackOptions::for_test("routes-slow", u, &[]);
    options.sources.push(SourceSpec::routed(
        "orders",
        Scheme::StandardWebhooks,
        vec![
            route(u, "fast-a", "/orders/fast-a", None),
            route(u, "slow", "/orders/slow", None),
            route(u, "fast-b", "/orders/fast-b", None),
        ],
    ));
    let stack = Stack::start(options).await.expect("stack starts");
    let ids = ["ord-1", "ord-2", "ord-3"];
    for id in ids {
        let body = format!(r#"{{"type":"order.created","id":"{id}"}}"#);
        stack
            .post_accepted("orders", id, body.as_bytes(), &[])
            .await;
    }

    wait_for(
        &stack,
        "the slow destination to get every event",
        DEADLINE,
        || async { (per_webhook_id(&dest, "/orders/slow").len() == ids.len()).then_some(()) },
    )
    .await;
    drained(&stack).await;

    let slow = dest.attempts("/orders/slow");
    let first_slow_success = slow
        .iter()
        .filter(|d| d.succeeded())
        .map(|d| d.at)
        .min()
        .expect("a success");
    for name in ["fast-a", "fast-b"] {
        let path = format!("/orders/{name}");
        let attempts = dest.attempts(&path);
        assert_eq!(
            attempts.len(),
            ids.len(),
            "{path}: one request per event, no second copy"
        );
        assert_eq!(
            per_webhook_id(&dest, &path)
                .into_keys()
                .collect::<BTreeSet<_>>(),
            keys("orders", &ids, name)
        );
        for d in &attempts {
            assert_delivery_headers(d, "orders", name);
            assert!(
                d.at < first_slow_success,
                "{path}: delivered only after the failing destination recovered"
            );
        }
        assert!(
            outcomes_at(&stack, name, "duplicate") >= ids.len(),
            "{name}: each retry of the message skips it as a duplicate\n{}",
            read_log(&stack.log("consumer"))
        );
    }
    // The failing destination: six 503s, then each event once.
    assert_eq!(
        slow.len(),
        6 + ids.len(),
        "six failures, then one success per event"
    );
    let counts = per_webhook_id(&dest, "/orders/slow");
    assert!(counts.values().all(|c| *c == 1), "once each: {counts:?}");
    assert_eq!(
        counts.into_keys().collect::<BTreeSet<_>>(),
        keys("orders", &ids, "slow")
    );
    let mut ids_per_event: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &slow {
        assert_delivery_headers(d, "orders", "slow");
        ids_per_event
            .entry(d.header("sluice-event-id").unwrap_or_default().to_string())
            .or_default()
            .insert(d.webhook_id().unwrap_or_default().to_string());
    }
    assert!(
        ids_per_event.values().all(|w| w.len() == 1),
        "the same webhook-id on every attempt of an event: {ids_per_event:?}"
    );
    assert!(outcomes_at(&stack, "slow", "retried") >= 1);
    assert_eq!(
        stack.queue_count(&stack.dlq_url).await.unwrap(),
        0,
        "nothing dead-lettered"
    );
}

/// A 400 at one of three destinations dead-letters a copy of the message for that
/// destination only (attribute `sluice-destination`), once: while another destination
/// (a 503) keeps the message for a retry, the rejected pair is not tried again. The others
/// are delivered and the original acknowledged. Once the destination is fixed, `sluice dlq
/// redrive` delivers it there, once, and the redriven message does not even look at the
/// other destinations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_dead_letters_that_destination_only() {
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    dest.set("/billing/crm", Behaviour::AlwaysFail { status: 400 });
    dest.set(
        "/billing/audit",
        Behaviour::FailFirst {
            times: 1,
            status: 503,
        },
    );
    let mut options = StackOptions::for_test("routes-dlq", u, &[]);
    options.sources.push(SourceSpec::routed(
        "billing",
        Scheme::StandardWebhooks,
        vec![
            route(u, "ledger", "/billing/ledger", None),
            route(u, "crm", "/billing/crm", None),
            route(u, "audit", "/billing/audit", None),
        ],
    ));
    let stack = Stack::start(options).await.expect("stack starts");
    let body = r#"{"type":"invoice.paid","amount":4200}"#;
    let event_id = stack
        .post_accepted("billing", "inv-1", body.as_bytes(), &[])
        .await;

    wait_for(
        &stack,
        "ledger and audit delivered, crm dead-lettered",
        DEADLINE,
        || async {
            (dest.successful("/billing/ledger").len() == 1
                && dest.successful("/billing/audit").len() == 1
                && stack.queue_count(&stack.dlq_url).await.ok()? >= 1)
                .then_some(())
        },
    )
    .await;
    drained(&stack).await;
    assert_eq!(
        dest.attempts("/billing/crm").len(),
        1,
        "a 400 is not retried, even while another destination keeps the message for a retry\n{}",
        read_log(&stack.log("consumer"))
    );
    assert_eq!(dest.attempts("/billing/ledger").len(), 1, "ledger: once");
    assert_eq!(
        dest.attempts("/billing/audit").len(),
        2,
        "audit: a 503, then once"
    );
    for name in ["ledger", "audit"] {
        for d in dest.attempts(&format!("/billing/{name}")) {
            assert_eq!(
                d.webhook_id(),
                Some(pair_key("billing", "inv-1", name).as_str())
            );
        }
    }

    let letters = peek(&stack, &stack.dlq_url).await;
    assert_eq!(
        letters.len(),
        1,
        "one dead letter, the crm pair's: {letters:#?}"
    );
    let letter = &letters[0];
    assert_eq!(
        attribute(letter, "sluice-destination").as_deref(),
        Some("crm")
    );
    assert_eq!(
        attribute(letter, "sluice-source").as_deref(),
        Some("billing")
    );
    assert_eq!(
        attribute(letter, "sluice-event-id").as_deref(),
        Some(event_id.as_str())
    );
    assert_eq!(
        attribute(letter, "sluice-failure-reason").as_deref(),
        Some("delivery_status")
    );
    assert_eq!(
        attribute(letter, "sluice-last-status").as_deref(),
        Some("400")
    );
    assert!(
        letter.body().is_some_and(|b| b.ends_with(body)),
        "the dead letter is the queued envelope: {:?}",
        letter.body()
    );
    let list = sluice(&stack, &["dlq", "list", "--json"])
        .await
        .expect(0)
        .json();
    let listed = list["dead_letters"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["event_id"] == event_id.as_str()))
        .unwrap_or_else(|| panic!("{event_id} not listed: {list:#}"))
        .clone();
    assert_eq!(
        listed["destination"], "crm",
        "dlq list names the destination: {listed:#}"
    );

    let duplicates_before: Vec<usize> = ["ledger", "audit"]
        .iter()
        .map(|name| outcomes_at(&stack, name, "duplicate"))
        .collect();
    dest.set("/billing/crm", Behaviour::Succeed);
    let redrive = sluice(&stack, &["dlq", "redrive", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(redrive["moved"], 1, "{redrive:#}");
    wait_for(&stack, "the redriven delivery to crm", DEADLINE, || async {
        (!dest.successful("/billing/crm").is_empty()).then_some(())
    })
    .await;
    drained(&stack).await;
    assert_eq!(
        stack.queue_count(&stack.dlq_url).await.unwrap(),
        0,
        "the DLQ is empty"
    );

    let crm = dest.successful("/billing/crm");
    assert_eq!(crm.len(), 1, "crm: delivered once");
    assert_eq!(
        crm[0].webhook_id(),
        Some(pair_key("billing", "inv-1", "crm").as_str())
    );
    assert_eq!(crm[0].body, body.as_bytes());
    assert_delivery_headers(&crm[0], "billing", "crm");
    for (name, before) in ["ledger", "audit"].iter().zip(duplicates_before) {
        assert_eq!(
            dest.successful(&format!("/billing/{name}")).len(),
            1,
            "{name}: nothing again"
        );
        // The redriven message is for crm alone: the others are not even claimed (no
        // new duplicate outcome for them).
        assert_eq!(
            outcomes_at(&stack, name, "duplicate"),
            before,
            "{name} was considered for a message meant for crm\n{}",
            read_log(&stack.log("consumer"))
        );
    }
    assert_eq!(outcomes_of(&stack, &event_id, "delivered"), 3);
}

/// The consumer SIGKILLed while a fan-out is in flight (one destination's first request
/// never answered: killed right there), then at random moments while events arrive: every
/// (event, destination) pair is delivered, to its matching destinations only, and a repeat
/// (a kill between a 2xx and the completion mark) carries the pair's own `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_during_fan_out_lose_no_pair() {
    const EVENTS: usize = 24;
    const RANDOM_KILLS: usize = 2;
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    dest.set("/fan/b", Behaviour::HangFirst);
    let mut options = StackOptions::for_test("routes-sigkill", u, &[]);
    options.sources.push(SourceSpec::routed(
        "fan",
        Scheme::StandardWebhooks,
        vec![
            route(u, "a", "/fan/a", None),
            route(u, "b", "/fan/b", None),
            route(
                u,
                "even",
                "/fan/even",
                Some(serde_json::json!({"body": {"even": true}})),
            ),
        ],
    ));
    let stack = Arc::new(tokio::sync::Mutex::new(
        Stack::start(options).await.expect("stack starts"),
    ));
    let ids: Vec<String> = (0..EVENTS).map(|n| format!("fan-{n}")).collect();
    let source = stack.lock().await.source("fan").clone();
    let sender = {
        let ids = ids.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for (n, id) in ids.iter().enumerate() {
                let body = format!(r#"{{"id":"{id}","even":{}}}"#, n % 2 == 0).into_bytes();
                let mut req = client
                    .post(&source.url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (name, value) in source.sign(id, &body) {
                    req = req.header(name, value);
                }
                statuses.push(req.send().await.map(|r| r.status().as_u16()).unwrap_or(0));
            }
            statuses
        })
    };

    // The first fan-out: b's request hangs; a and even may have been delivered, their
    // completion marks written or not. Kill there.
    until("b's first (hanging) request", DEADLINE, || async {
        (!dest.attempts("/fan/b").is_empty()).then_some(())
    })
    .await
    .unwrap();
    {
        let mut s = stack.lock().await;
        s.restart_poller().unwrap();
    }
    let mut kills = 1;
    for _ in 0..RANDOM_KILLS {
        // A random moment, not a synchronisation: the kill may land anywhere in the work.
        tokio::time::sleep(Duration::from_millis(rand::random_range(300..1500))).await;
        stack.lock().await.restart_poller().unwrap();
        kills += 1;
    }
    let statuses = sender.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");

    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let even_ids: Vec<&str> = id_refs.iter().copied().step_by(2).collect();
    let expected = [
        ("a", keys("fan", &id_refs, "a")),
        ("b", keys("fan", &id_refs, "b")),
        ("even", keys("fan", &even_ids, "even")),
    ];
    let s = stack.lock().await;
    wait_for(
        &s,
        "every pair delivered",
        Duration::from_secs(120),
        || async {
            expected
                .iter()
                .all(|(name, want)| {
                    let got = per_webhook_id(&dest, &format!("/fan/{name}"));
                    want.iter().all(|k| got.contains_key(k))
                })
                .then_some(())
        },
    )
    .await;
    drained(&s).await;

    let mut repeats = 0;
    for (name, want) in &expected {
        let path = format!("/fan/{name}");
        let counts = per_webhook_id(&dest, &path);
        assert_eq!(
            &counts.keys().cloned().collect::<BTreeSet<_>>(),
            want,
            "{path}: every matching pair, and only those"
        );
        repeats += counts.values().map(|c| c - 1).sum::<usize>();
        for d in dest.attempts(&path) {
            assert_delivery_headers(&d, "fan", name);
            assert!(
                d.webhook_id().is_some_and(|w| want.contains(w)),
                "{path}: a request with a foreign webhook-id: {:?}",
                d.webhook_id()
            );
        }
    }
    // A repeat needs a kill between a 2xx and its completion mark: at most the pairs in
    // flight at each kill (a batch of 10 messages, three destinations each).
    assert!(
        repeats <= kills * 30,
        "{repeats} repeats from {kills} kills"
    );
    assert!(
        s.receive(&s.dlq_url).await.unwrap().is_empty(),
        "nothing dead-lettered"
    );
    println!("sigkill fan-out: {kills} kills, {repeats} repeated deliveries (same webhook-id)");
}

/// Secret header values: `authorization` from the consumer's environment
/// (`{"env": "ROUTE_TOKEN"}`) and `x-api-key` from Secrets Manager (`{"secret_arn": …}`).
/// Without the variable the consumer refuses to start, naming the field. With it, the values
/// reach the destinations (on retried and on rejected requests too) and appear nowhere
/// else: not in the consumer's or the edge's log, not in any queued or dead-lettered
/// message, not in the archive, not in `stack.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_headers_reach_the_destination_and_nothing_else() {
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    dest.set(
        "/vault/sm-key",
        Behaviour::FailFirst {
            times: 1,
            status: 503,
        },
    );
    dest.set("/vault/rejects", Behaviour::AlwaysFail { status: 400 });
    let token = format!("Bearer rt-{:016x}", rand::random::<u64>());
    let api_key = format!("sm-{:016x}", rand::random::<u64>());
    let mut options =
        StackOptions::for_test("routes-secrets", u, &[("vault", Scheme::StandardWebhooks)]);
    options.poller = false;
    let mut stack = Stack::start(options).await.expect("stack starts");
    let arn = stack
        .create_secret("sluice/vault-api-key", &api_key)
        .await
        .unwrap();
    let env_ref = || {
        HeaderValue::Secret(SecretRef {
            secret_arn: None,
            env: Some("ROUTE_TOKEN".into()),
        })
    };
    let mut env_auth = route(u, "env-auth", "/vault/env-auth", None);
    env_auth.headers.insert("authorization".into(), env_ref());
    env_auth
        .headers
        .insert("x-team".into(), HeaderValue::Plain("payments".into()));
    // sm-key takes v-1 (its first request fails: a retry), rejects takes v-2 (a 400: a
    // dead letter): one message each, so neither waits on the other.
    let mut sm_key = route(
        u,
        "sm-key",
        "/vault/sm-key",
        Some(serde_json::json!({"body": {"id": "v-1"}})),
    );
    sm_key.headers.insert(
        "x-api-key".into(),
        HeaderValue::Secret(SecretRef {
            secret_arn: Some(arn.clone()),
            env: None,
        }),
    );
    let mut rejects = route(
        u,
        "rejects",
        "/vault/rejects",
        Some(serde_json::json!({"body": {"id": "v-2"}})),
    );
    rejects.headers.insert("authorization".into(), env_ref());
    rejects.headers.insert(
        "x-api-key".into(),
        HeaderValue::Secret(SecretRef {
            secret_arn: Some(arn.clone()),
            env: None,
        }),
    );
    stack
        .set_destinations("vault", vec![env_auth, sm_key, rejects])
        .unwrap();

    // Events queued while no consumer runs: what the edge queued, as it queued it.
    let ids = ["v-1", "v-2"];
    for id in ids {
        let body = format!(r#"{{"type":"vault.opened","id":"{id}"}}"#);
        stack.post_accepted("vault", id, body.as_bytes(), &[]).await;
    }
    let queued = peek(&stack, &stack.queue_url).await;
    assert_eq!(queued.len(), ids.len());

    // No ROUTE_TOKEN: the consumer stops at start-up, naming source, destination and field.
    stack.start_poller().unwrap();
    let consumer_log = stack.log("consumer");
    until(
        "the consumer to refuse its configuration",
        Duration::from_secs(30),
        || {
            let exited = !stack.poller_running();
            async move { exited.then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&consumer_log)));
    let refusal = read_log(&consumer_log);
    for part in ["vault", "env-auth", "headers.authorization", "ROUTE_TOKEN"] {
        assert!(
            refusal.contains(part),
            "the start-up error names {part}:\n{refusal}"
        );
    }
    assert!(
        dest.deliveries().is_empty(),
        "nothing delivered by a consumer that refused"
    );
    stack.set_consumer_env("ROUTE_TOKEN", &token);
    stack.start_poller().unwrap();

    wait_for(
        &stack,
        "both destinations delivered, the rejects dead-lettered",
        DEADLINE,
        || async {
            (dest.successful("/vault/env-auth").len() == 2
                && dest.successful("/vault/sm-key").len() == 1
                && stack.queue_count(&stack.dlq_url).await.ok()? == 1)
                .then_some(())
        },
    )
    .await;
    drained(&stack).await;

    for d in dest.attempts("/vault/env-auth") {
        assert_eq!(d.header("authorization"), Some(token.as_str()));
        assert_eq!(d.header("x-team"), Some("payments"));
        assert_eq!(d.header("x-api-key"), None, "another destination's header");
    }
    let sm = dest.attempts("/vault/sm-key");
    assert_eq!(sm.len(), 2, "one 503, then v-1 once");
    for d in &sm {
        assert_eq!(d.header("x-api-key"), Some(api_key.as_str()));
        assert_eq!(
            d.header("authorization"),
            None,
            "another destination's header"
        );
    }
    let rejected = dest.attempts("/vault/rejects");
    assert_eq!(rejected.len(), 1, "v-2, rejected once");
    for d in &rejected {
        assert_eq!(d.header("authorization"), Some(token.as_str()));
        assert_eq!(d.header("x-api-key"), Some(api_key.as_str()));
    }

    // Nowhere else.
    let secrets = [
        ("the env token", token.as_str()),
        ("the Secrets Manager key", api_key.as_str()),
    ];
    // The Bearer token's random part alone, in case a log quoted only the credential.
    let token_tail = token.trim_start_matches("Bearer ").to_string();
    let mut places: Vec<(String, String)> = vec![
        ("consumer.log".into(), read_log(&stack.log("consumer"))),
        ("edge.log".into(), read_log(&stack.log("edge"))),
        ("stack.json".into(), read_log(&stack.dir.join("stack.json"))),
    ];
    let letters = peek(&stack, &stack.dlq_url).await;
    assert_eq!(letters.len(), 1, "the rejects pair of v-2");
    for (queue, messages) in [("main queue", &queued), ("DLQ", &letters)] {
        for m in messages {
            let attrs = m
                .message_attributes()
                .map(|a| format!("{a:?}"))
                .unwrap_or_default();
            places.push((
                format!("{queue} message {}", m.message_id().unwrap_or_default()),
                format!("{}\n{attrs}", m.body().unwrap_or_default()),
            ));
        }
    }
    for letter in &letters {
        assert_eq!(
            attribute(letter, "sluice-destination").as_deref(),
            Some("rejects")
        );
    }
    let archived = archive(&stack, "vault").await;
    assert_eq!(archived.len(), ids.len(), "each event archived");
    for (key, bytes) in archived {
        places.push((
            format!("archive {key}"),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (place, text) in &places {
        for (what, value) in secrets
            .iter()
            .chain([&("the token's credential", token_tail.as_str())])
        {
            assert!(!text.contains(value), "{what} leaked into {place}");
        }
    }
    assert!(
        read_log(&stack.log("consumer")).contains("\"destination\":\"sm-key\""),
        "consumer log lines name the destination"
    );
}

/// A destination added later (the consumer restarted with it) gets an archived window by
/// `sluice replay --destination`: every archived event, the ones no destination matched at
/// the time included. The other destinations get nothing again and are not even claimed;
/// a second replay finds it all delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_added_later_is_backfilled_by_replay() {
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    let orders = route(
        u,
        "orders",
        "/shop/orders",
        Some(serde_json::json!({"body": {"type": {"$startsWith": "order."}}})),
    );
    let billing = route(
        u,
        "billing",
        "/shop/billing",
        Some(serde_json::json!({"body": {"type": {"$startsWith": "invoice."}}})),
    );
    let mut options = StackOptions::for_test("routes-backfill", u, &[]);
    options.sources.push(SourceSpec::routed(
        "shop",
        Scheme::StandardWebhooks,
        vec![orders.clone(), billing.clone()],
    ));
    let mut stack = Stack::start(options).await.expect("stack starts");
    let started_ms = unix_now() as u64 * 1000;
    let events = [
        ("s-1", "order.created"),
        ("s-2", "invoice.paid"),
        ("s-3", "customer.created"),
    ];
    let mut event_ids = Vec::new();
    for (id, kind) in events {
        let body = format!(r#"{{"type":"{kind}","id":"{id}"}}"#);
        event_ids.push(stack.post_accepted("shop", id, body.as_bytes(), &[]).await);
    }
    wait_for(
        &stack,
        "two deliveries and one filtered event",
        DEADLINE,
        || async {
            (dest.successful("/shop/orders").len() == 1
                && dest.successful("/shop/billing").len() == 1
                && outcomes_of(&stack, &event_ids[2], "filtered") == 1)
                .then_some(())
        },
    )
    .await;
    drained(&stack).await;

    // The new destination, every event; the consumer restarted with it.
    let warehouse = route(u, "warehouse", "/shop/warehouse", None);
    stack
        .set_destinations("shop", vec![orders, billing, warehouse])
        .unwrap();
    stack.restart_poller().unwrap();
    let from = hour_start(started_ms);
    let replay = replay_to(&stack, "shop", &from, "warehouse").await;
    assert_eq!(replay["replayed"], 3, "{replay:#}");
    let all_ids = ["s-1", "s-2", "s-3"];
    wait_for(&stack, "the backfill", DEADLINE, || async {
        (per_webhook_id(&dest, "/shop/warehouse").len() == 3).then_some(())
    })
    .await;
    drained(&stack).await;
    let counts = per_webhook_id(&dest, "/shop/warehouse");
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        keys("shop", &all_ids, "warehouse")
    );
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    for d in dest.attempts("/shop/warehouse") {
        assert_delivery_headers(&d, "shop", "warehouse");
    }
    for name in ["orders", "billing"] {
        assert_eq!(
            dest.attempts(&format!("/shop/{name}")).len(),
            1,
            "{name}: nothing again"
        );
        assert_eq!(
            outcomes_at(&stack, name, "duplicate"),
            0,
            "{name} was considered for a replay meant for warehouse"
        );
    }

    // The same replay again: all three are duplicates at warehouse, nothing is sent.
    let again = replay_to(&stack, "shop", &from, "warehouse").await;
    assert_eq!(again["replayed"], 3, "{again:#}");
    wait_for(
        &stack,
        "three duplicates at warehouse",
        DEADLINE,
        || async { (outcomes_at(&stack, "warehouse", "duplicate") == 3).then_some(()) },
    )
    .await;
    drained(&stack).await;
    assert_eq!(
        dest.attempts("/shop/warehouse").len(),
        3,
        "nothing sent twice"
    );
    assert_eq!(stack.queue_count(&stack.dlq_url).await.unwrap(), 0);
}

/// A source written the old way (`"destination": "<url>"`), one event delivered; then the
/// same source as `destinations: [default (same URL), audit]`. The provider re-sends the
/// event (same id, same body): `default` already has it (same idempotency key as before
/// routes) and gets nothing; `audit` gets it once. A new event reaches both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_to_destinations_redelivers_nothing_to_default() {
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    let options =
        StackOptions::for_test("routes-upgrade", u, &[("legacy", Scheme::StandardWebhooks)]);
    let mut stack = Stack::start(options).await.expect("stack starts");
    let written: serde_json::Value = serde_json::from_str(&stack.sources_json()).unwrap();
    assert_eq!(
        written["sources"][0]["destination"],
        format!("{u}/legacy"),
        "the consumer starts with the old form: {written}"
    );
    assert!(
        written["sources"][0].get("destinations").is_none(),
        "{written}"
    );

    let body = br#"{"type":"user.created","id":"up-1"}"#;
    stack.post_accepted("legacy", "up-1", body, &[]).await;
    wait_for(&stack, "the first delivery", DEADLINE, || async {
        dest.successful("/legacy").into_iter().next()
    })
    .await;
    drained(&stack).await;
    let first = dest.successful("/legacy");
    assert_eq!(
        first[0].webhook_id(),
        Some("legacy#up-1"),
        "the pre-routes key"
    );
    assert_eq!(first[0].destination(), Some("default"));

    stack
        .set_destinations(
            "legacy",
            vec![
                route(u, "default", "/legacy", None),
                route(u, "audit", "/legacy/audit", None),
            ],
        )
        .unwrap();
    stack.restart_poller().unwrap();
    // The provider's retry: same id, same body (signed again, later).
    let resent = stack.post_accepted("legacy", "up-1", body, &[]).await;
    wait_for(&stack, "the audit delivery", DEADLINE, || async {
        (!dest.successful("/legacy/audit").is_empty()
            && outcomes_of(&stack, &resent, "duplicate") == 1)
            .then_some(())
    })
    .await;
    drained(&stack).await;
    assert_eq!(dest.attempts("/legacy").len(), 1, "default: nothing again");
    let audit = dest.successful("/legacy/audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].webhook_id(), Some("legacy#up-1#audit"));
    assert_eq!(audit[0].body, body);
    assert_delivery_headers(&audit[0], "legacy", "audit");
    let duplicate = log_lines(&stack)
        .into_iter()
        .find(|v| {
            v["fields"]["event_id"] == resent.as_str() && v["fields"]["outcome"] == "duplicate"
        })
        .expect("the duplicate is logged");
    assert_eq!(duplicate["fields"]["destination"], "default", "{duplicate}");

    // A new event after the upgrade: both, default still keyed the old way.
    stack
        .post_accepted(
            "legacy",
            "up-2",
            br#"{"type":"user.created","id":"up-2"}"#,
            &[],
        )
        .await;
    wait_for(&stack, "the new event at both", DEADLINE, || async {
        (dest.successful("/legacy").len() == 2 && dest.successful("/legacy/audit").len() == 2)
            .then_some(())
    })
    .await;
    drained(&stack).await;
    assert_eq!(
        per_webhook_id(&dest, "/legacy")
            .into_keys()
            .collect::<Vec<_>>(),
        ["legacy#up-1", "legacy#up-2"]
    );
    assert_eq!(
        per_webhook_id(&dest, "/legacy/audit")
            .into_keys()
            .collect::<Vec<_>>(),
        ["legacy#up-1#audit", "legacy#up-2#audit"]
    );
    for key in [
        "legacy#up-1",
        "legacy#up-1#audit",
        "legacy#up-2",
        "legacy#up-2#audit",
    ] {
        let item = stack
            .dynamodb()
            .get_item()
            .table_name(&stack.table)
            .key(
                &stack.settings.table_key,
                aws_sdk_dynamodb::types::AttributeValue::S(key.into()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no idempotency record {key}"));
        assert_eq!(
            item.get("status")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("COMPLETED"),
            "{key}"
        );
    }
    assert_eq!(stack.queue_count(&stack.dlq_url).await.unwrap(), 0);
}

/// 15% of the consumer's and the edge's AWS calls and 15% of deliveries fail (every kind of
/// fault faults.rs injects) while a fanned-out source takes events: once the queue drains
/// and the dead letters are redriven with the faults off, every (event, destination) pair
/// of an accepted event is delivered exactly once, and only to matching destinations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_is_delivered_exactly_once_under_faults() {
    const EVENTS: usize = 30;
    let dest = Destination::start(None).await.unwrap();
    let proxy = FaultProxy::start(&dest.url).await.unwrap();
    let u = &proxy.url;
    let mut options = StackOptions::for_test("routes-faults", u, &[]);
    options.aws_fault_proxy = true;
    options.sources.push(SourceSpec::routed(
        "fan",
        Scheme::StandardWebhooks,
        vec![
            route(u, "a", "/fan/a", None),
            route(
                u,
                "even",
                "/fan/even",
                Some(serde_json::json!({"body": {"even": true}})),
            ),
            route(u, "c", "/fan/c", None),
        ],
    ));
    let stack = Arc::new(Stack::start(options).await.expect("stack starts"));
    let aws = stack
        .aws_faults
        .clone()
        .expect("fault proxy in front of moto");
    aws.set(Faults {
        rate: 0.15,
        kinds: vec![
            Fault::Unavailable,
            Fault::Throttle,
            Fault::Timeout,
            Fault::Reset,
            Fault::Slow,
            Fault::ErrorAfterForward,
        ],
        ..Faults::none()
    });
    // Destination faults all land before the destination acts (see faults.rs).
    proxy.set(Faults {
        rate: 0.15,
        kinds: vec![
            Fault::Unavailable,
            Fault::Reset,
            Fault::Timeout,
            Fault::Slow,
        ],
        ..Faults::none()
    });

    let permits = Arc::new(tokio::sync::Semaphore::new(6));
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let (stack, permits) = (stack.clone(), permits.clone());
        sends.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let id = format!("fault-{n}");
            let body = format!(r#"{{"id":"{id}","even":{}}}"#, n % 2 == 0).into_bytes();
            let headers = stack.source("fan").sign(&id, &body);
            let status = match stack.post("fan", &headers, &body).await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            (n, status)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(done) = sends.join_next().await {
        let (n, status) = done.unwrap();
        answers.insert(n, status);
    }
    assert!(
        answers.values().all(|s| *s == 202 || *s == 503),
        "a fault of ours is a 503: {answers:?}"
    );
    let accepted: Vec<usize> = answers
        .iter()
        .filter(|(_, s)| **s == 202)
        .map(|(n, _)| *n)
        .collect();
    assert!(accepted.len() > EVENTS / 2, "{answers:?}");
    let id = |n: usize| format!("fault-{n}");
    let want = |name: &str| -> BTreeSet<String> {
        accepted
            .iter()
            .filter(|n| name != "even" || *n % 2 == 0)
            .map(|n| pair_key("fan", &id(*n), name))
            .collect()
    };

    wait_for(
        &stack,
        "the queue drained under faults",
        Duration::from_secs(180),
        || async { (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(()) },
    )
    .await;
    aws.set(Faults::none());
    proxy.set(Faults::none());
    let redrive = sluice(&stack, &["dlq", "redrive", "--json"])
        .await
        .expect(0)
        .json();
    wait_for(
        &stack,
        "every accepted pair delivered",
        DEADLINE,
        || async {
            ["a", "even", "c"]
                .iter()
                .all(|name| {
                    let got = per_webhook_id(&dest, &format!("/fan/{name}"));
                    want(name).iter().all(|k| got.contains_key(k))
                })
                .then_some(())
        },
    )
    .await;
    drained(&stack).await;

    let accepted_ids: BTreeSet<String> = accepted.iter().map(|n| id(*n)).collect();
    for name in ["a", "even", "c"] {
        let counts = per_webhook_id(&dest, &format!("/fan/{name}"));
        let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            twice.is_empty(),
            "{name}: delivered more than once: {twice:?}"
        );
        let wanted = want(name);
        for key in counts.keys() {
            // A request answered 503 may still have been queued (an error after SQS took
            // it): delivered at most once, and only where its filter matches.
            let known = wanted.contains(key)
                || (0..EVENTS).any(|n| {
                    !accepted_ids.contains(&id(n))
                        && (name != "even" || n % 2 == 0)
                        && *key == pair_key("fan", &id(n), name)
                });
            assert!(known, "{name}: unexpected delivery {key}");
        }
        for key in &wanted {
            assert_eq!(
                counts.get(key),
                Some(&1),
                "{name}: {key} accepted, so delivered once"
            );
        }
    }
    assert!(
        stack.receive(&stack.dlq_url).await.unwrap().is_empty(),
        "the DLQ is empty"
    );
    println!(
        "fan-out under faults: {} of {EVENTS} accepted; injected on AWS {:?}, on deliveries {:?}; redrive {redrive}",
        accepted.len(),
        aws.injected(),
        proxy.injected()
    );
}

/// A fresh directory for a `sluice-dev` run.
fn dev_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sluice-routes-dev-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `make dev`'s binary on free ports, its state in `dir/state`, with `sources_file` as
/// `SLUICE_SOURCES_FILE` (none of the caller's SLUICE_* variables).
fn sluice_dev(dir: &Path, sources_file: Option<&Path>) -> std::process::Command {
    let bin = paths::binary("sluice-dev");
    assert!(
        bin.exists(),
        "{} is missing: run cargo build first",
        bin.display()
    );
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--dir")
        .arg(dir.join("state"))
        .args(["--edge-port", &free_port().unwrap().to_string()])
        .args(["--aws-port", &free_port().unwrap().to_string()]);
    for (k, _) in std::env::vars() {
        if k.starts_with("SLUICE_") {
            cmd.env_remove(k);
        }
    }
    if let Some(file) = sources_file {
        cmd.env("SLUICE_SOURCES_FILE", file);
    }
    cmd
}

/// Waits for a `sluice-dev` run to be up; its `stack.json`.
async fn dev_ready(running: &mut Managed, dir: &Path, log: &Path) -> std::path::PathBuf {
    let stack_file = dir.join("state/stack.json");
    until("sluice-dev to be up", Duration::from_secs(120), || {
        let ready = stack_file.exists() && read_log(log).contains("Ctrl-C stops everything");
        let alive = running.is_running();
        async move { (ready || !alive).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(log)));
    assert!(
        running.is_running(),
        "sluice-dev exited:\n{}",
        read_log(log)
    );
    stack_file
}

/// `sluice <args…>` (a `send --json`) against a `sluice-dev` run's `stack.json`: a 202.
async fn dev_send(stack_file: &Path, args: &[&str]) {
    let sent = cli::run_with_stack_file(stack_file, args)
        .await
        .expect(0)
        .json();
    assert_eq!(sent["status"], 202, "{sent:#}");
}

/// A `sluice-dev` run's log, then its consumer's.
fn dev_logs(dir: &Path, log: &Path) -> String {
    format!(
        "{}\nconsumer log:\n{}",
        read_log(log),
        read_log(&dir.join("state/consumer.log"))
    )
}

/// SIGTERM, as Ctrl-C: it stops, and says so.
async fn dev_stop(running: &mut Managed, log: &Path) {
    running.signal(libc::SIGTERM);
    until("sluice-dev to stop", Duration::from_secs(30), || {
        let stopped = !running.is_running();
        async move { stopped.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(log)));
    assert!(read_log(log).contains("stopping"), "{}", read_log(log));
}

/// `make dev` as the README runs it: besides one source per scheme, `shop-router` fans out
/// to `orders` (filtered on `type`) and `all`; `stack.json` lists its destinations, and
/// each delivery is printed and appended to `deliveries.jsonl` naming its destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_demo_fans_out_shop_router() {
    let dir = dev_dir("demo");
    let log = dir.join("dev.log");
    let mut running = Managed::spawn("sluice-dev", sluice_dev(&dir, None), &log).unwrap();
    let stack_file = dev_ready(&mut running, &dir, &log).await;
    let described: serde_json::Value = serde_json::from_str(&read_log(&stack_file)).unwrap();
    let sources = described["sources"].as_array().expect("sources listed");
    let router = sources
        .iter()
        .find(|s| s["name"] == "shop-router")
        .unwrap_or_else(|| panic!("no shop-router: {described:#}"));
    assert_eq!(router["scheme"], "standard-webhooks");
    assert!(router.get("destination").is_none(), "{router:#}");
    let routes = router["destinations"].as_array().expect("destinations");
    assert_eq!(routes.len(), 2, "{router:#}");
    assert_eq!(routes[0]["name"], "orders");
    assert_eq!(
        routes[0]["filter"],
        serde_json::json!({"body": {"type": {"$startsWith": "order."}}})
    );
    assert_eq!(routes[1]["name"], "all");
    assert!(routes[1].get("filter").is_none(), "{router:#}");
    let standard = sources
        .iter()
        .find(|s| s["name"] == "standard")
        .expect("the scheme sources stay");
    assert!(
        standard["destination"]
            .as_str()
            .is_some_and(|u| u.ends_with("/standard")),
        "a one-destination source keeps `destination`: {standard:#}"
    );
    assert!(read_log(&log).contains("-> orders"), "{}", read_log(&log));

    let order = dir.join("order.json");
    std::fs::write(&order, r#"{"type":"order.created","n":1}"#).unwrap();
    for args in [
        vec![
            "send",
            "shop-router",
            "--id",
            "demo-1",
            "--file",
            order.to_str().unwrap(),
            "--json",
        ],
        vec!["send", "shop-router", "--id", "demo-2", "--json"],
    ] {
        dev_send(&stack_file, &args).await;
    }
    let file = dir.join("state/deliveries.jsonl");
    let lines = || -> Vec<serde_json::Value> {
        read_log(&file)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    until("three deliveries in deliveries.jsonl", DEADLINE, || {
        let n = lines().len();
        async move { (n >= 3).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dev_logs(&dir, &log)));
    let mut got: Vec<(String, String)> = lines()
        .iter()
        .map(|l| {
            (
                l["destination"].as_str().unwrap_or("?").to_string(),
                l["webhook_id"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [
        ("all", "shop-router#demo-1#all"),
        ("all", "shop-router#demo-2#all"),
        ("orders", "shop-router#demo-1#orders"),
    ]
    .iter()
    .map(|(d, w)| (d.to_string(), w.to_string()))
    .collect();
    assert_eq!(got, want, "{}", read_log(&file));
    until("the deliveries printed", Duration::from_secs(10), || {
        let printed = read_log(&log).matches("delivered  shop-router -> ").count();
        async move { (printed == 3).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&log)));
    dev_stop(&mut running, &log).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `make dev` with `SLUICE_SOURCES_FILE`: a bad file is refused before anything starts,
/// with the error naming source, destination and field; a good one runs as written
/// (destination URLs as given, `{"env": …}` references from the environment), with each
/// source's secret generated or taken from `SLUICE_SECRET_<NAME>`, and `stack.json` lists
/// every source with its scheme, secret and destinations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_runs_a_sources_file() {
    let dir = dev_dir("file");
    // A bad file: the config error, exit 1, nothing started.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"sources":[{"name":"shop","scheme":"standard-webhooks","destinations":[
            {"name":"orders","url":"http://127.0.0.1:9/orders"},
            {"name":"billing","url":"ftp://billing.example/hook"}]}]}"#,
    )
    .unwrap();
    let out = sluice_dev(&dir, Some(&bad))
        .output()
        .expect("sluice-dev runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a bad sources file must fail: {stderr}"
    );
    assert!(
        stderr.contains("source `shop`: destination `billing`: field `url`"),
        "{stderr}"
    );
    assert!(!dir.join("state/stack.json").exists(), "nothing started");

    // A good file: one source the old way, one routed with a filter and an env header.
    let dest = Destination::start(None).await.unwrap();
    let u = &dest.url;
    let good = dir.join("sources.json");
    let file = serde_json::json!({"sources": [
        {"name": "old-style", "scheme": "github", "destination": format!("{u}/old")},
        {"name": "shop", "scheme": "standard-webhooks", "tolerance_secs": 120, "destinations": [
            {"name": "orders", "url": format!("{u}/shop/orders"),
             "filter": {"body": {"type": {"$startsWith": "order."}}}},
            {"name": "all", "url": format!("{u}/shop/all"),
             "headers": {"x-api-key": {"env": "DEV_ROUTE_KEY"}}}
        ]}
    ]});
    std::fs::write(&good, file.to_string()).unwrap();
    let shop_secret = sluice_e2e::stack::dev_secret(Scheme::StandardWebhooks);
    let key = format!("k-{:016x}", rand::random::<u64>());
    let mut cmd = sluice_dev(&dir, Some(&good));
    cmd.env("SLUICE_SECRET_SHOP", &shop_secret)
        .env("DEV_ROUTE_KEY", &key);
    let log = dir.join("dev.log");
    let mut running = Managed::spawn("sluice-dev", cmd, &log).unwrap();
    let stack_file = dev_ready(&mut running, &dir, &log).await;
    let described: serde_json::Value = serde_json::from_str(&read_log(&stack_file)).unwrap();
    let sources = described["sources"].as_array().expect("sources listed");
    let find = |name: &str| {
        sources
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in stack.json: {described:#}"))
    };
    let old = find("old-style");
    assert_eq!(old["scheme"], "github");
    assert_eq!(old["destination"], format!("{u}/old"), "{old:#}");
    assert_eq!(
        old["destinations"],
        serde_json::json!([{"name": "default", "url": format!("{u}/old")}])
    );
    assert!(
        old["secret"].as_str().is_some_and(|s| s.len() >= 32),
        "a generated secret: {old:#}"
    );
    let shop = find("shop");
    assert_eq!(shop["scheme"], "standard-webhooks");
    assert_eq!(
        shop["secret"],
        shop_secret.as_str(),
        "SLUICE_SECRET_SHOP is used"
    );
    assert!(shop.get("destination").is_none(), "{shop:#}");
    assert_eq!(
        shop["destinations"],
        serde_json::json!([
            {"name": "orders", "url": format!("{u}/shop/orders"),
             "filter": {"body": {"type": {"$startsWith": "order."}}}},
            {"name": "all", "url": format!("{u}/shop/all")}
        ])
    );
    assert!(
        !read_log(&stack_file).contains(&key),
        "a header value in stack.json"
    );

    // Events through it with the CLI, as the README says.
    let order = dir.join("order.json");
    std::fs::write(&order, r#"{"type":"order.created","n":1}"#).unwrap();
    for args in [
        vec![
            "send",
            "shop",
            "--id",
            "dev-1",
            "--file",
            order.to_str().unwrap(),
            "--json",
        ],
        vec!["send", "shop", "--id", "dev-2", "--json"],
        vec!["send", "old-style", "--id", "dev-3", "--json"],
    ] {
        dev_send(&stack_file, &args).await;
    }
    until("the deliveries", DEADLINE, || async {
        (dest.successful("/shop/orders").len() == 1
            && dest.successful("/shop/all").len() == 2
            && dest.successful("/old").len() == 1)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dev_logs(&dir, &log)));
    let orders = dest.successful("/shop/orders");
    assert_eq!(orders[0].webhook_id(), Some("shop#dev-1#orders"));
    for d in dest.successful("/shop/all") {
        assert_eq!(d.destination(), Some("all"));
        assert_eq!(d.header("x-api-key"), Some(key.as_str()));
    }
    assert_eq!(dest.successful("/old")[0].destination(), Some("default"));
    assert_eq!(
        dest.successful("/old")[0].webhook_id(),
        Some("old-style#dev-3")
    );

    dev_stop(&mut running, &log).await;
    let _ = std::fs::remove_dir_all(&dir);
}
