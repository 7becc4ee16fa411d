//! Fault injection: a few hundred signed webhooks across schemes (some large enough for the
//! S3 claim check) while a fault proxy breaks 15% of the calls the edge and the consumer
//! make to SQS, S3 and DynamoDB (503, throttling, timeouts, resets, slow answers, errors
//! after the call took effect) and 15% of deliveries to the destination.
//!
//! Asserts Sluice's promise on the real services' records:
//! - every request answered 202 is delivered exactly once;
//! - every request not answered 202 is delivered at most once;
//! - nothing is dropped: under faults the queue drains (each event delivered, or moved to
//!   the DLQ after maxReceiveCount failed attempts in a row); once the faults stop,
//!   `sluice dlq redrive` brings the dead letters back and they too are delivered once.
//!
//! And the edge's own retry: a failed SQS send or S3 PUT is tried once more, then 503; an
//! AWS refusal is logged by its code, never by its body.

use sluice_e2e::fault_proxy::{Fault, FaultProxy, Faults};
use sluice_e2e::stack::read_log;
use sluice_e2e::wait::until;
use sluice_e2e::{Destination, Stack, StackOptions};
use sluice_protocol::Scheme;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const EVENTS: usize = 160;
const CONCURRENCY: usize = 8;
/// Every 30th event is 300 KiB: through the claim check (S3 PUT at the edge, GET in the
/// consumer).
const LARGE_EVERY: usize = 30;

fn body(source: &str, n: usize) -> Vec<u8> {
    let padding = if n.is_multiple_of(LARGE_EVERY) {
        "x".repeat(300 * 1024)
    } else {
        String::new()
    };
    format!(
        r#"{{"id":"evt_{source}_{n}","marker":"m{n}","type":"fault.test","padding":"{padding}"}}"#
    )
    .into_bytes()
}

fn marker(delivered: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(delivered).ok()?;
    v["marker"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_is_delivered_exactly_once_under_faults() {
    let dest = Destination::start(None).await.unwrap();
    let dest_proxy = FaultProxy::start(&dest.url).await.unwrap();
    let mut options = StackOptions::for_test(
        "faults",
        &dest_proxy.url,
        &[
            ("standard", Scheme::StandardWebhooks),
            ("github", Scheme::Github),
            ("stripe", Scheme::Stripe),
            ("shopify", Scheme::Shopify),
        ],
    );
    options.aws_fault_proxy = true;
    let stack = Arc::new(Stack::start(options).await.expect("stack starts"));
    let aws_proxy = stack
        .aws_faults
        .clone()
        .expect("fault proxy in front of moto");

    aws_proxy.set(Faults {
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
    // Destination faults are all before the destination acts (or only slow it, well under
    // the delivery timeout): an error after the destination acted cannot be told apart from
    // a failure by any sender; the destination dedupes on `webhook-id` for that case.
    dest_proxy.set(Faults {
        rate: 0.15,
        kinds: vec![
            Fault::Unavailable,
            Fault::Reset,
            Fault::Timeout,
            Fault::Slow,
        ],
        ..Faults::none()
    });

    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let stack = stack.clone();
        let permits = permits.clone();
        sends.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let source = &stack.sources[n % stack.sources.len()];
            let body = body(&source.name, n);
            let headers = source.sign(&format!("msg_fault_{n}"), &body);
            let status = match stack.post(&source.name, &headers, &body).await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            (format!("m{n}"), status)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(done) = sends.join_next().await {
        let (marker, status) = done.unwrap();
        answers.insert(marker, status);
    }
    let accepted: Vec<&String> = answers
        .iter()
        .filter(|(_, s)| **s == 202)
        .map(|(m, _)| m)
        .collect();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for s in answers.values() {
        *by_status.entry(*s).or_default() += 1;
    }
    assert!(
        accepted.len() > EVENTS / 2,
        "most requests should still be accepted: {by_status:?}"
    );
    for (marker, status) in &answers {
        assert!(
            *status == 202 || *status == 503,
            "{marker}: a fault of ours must be 503 (retry), got {status}"
        );
    }

    let delivered_counts = || {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for d in dest.deliveries() {
            if (200..300).contains(&d.status) {
                if let Some(m) = marker(&d.body) {
                    *counts.entry(m).or_default() += 1;
                }
            }
        }
        counts
    };
    // While the faults continue, the pipeline works through everything: each event is
    // delivered, or, if it failed maxReceiveCount times in a row, moved to the DLQ by the
    // redrive policy (never dropped). The queue drained means nothing is left in flight.
    let consumer_log = stack.dir.join("consumer.log");
    let log_tail = || {
        std::fs::read_to_string(&consumer_log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    };
    until(
        "the queue drained under faults",
        // A bound for a hung pipeline, not a speed target: moto on a busy 2-core machine
        // can take minutes for this backlog.
        Duration::from_secs(480),
        || async { (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nconsumer log tail:\n{}", log_tail()));

    // Faults stop; on-call redrives whatever was dead-lettered, with the real CLI.
    aws_proxy.set(Faults::none());
    dest_proxy.set(Faults::none());
    let redrive = std::process::Command::new(sluice_e2e::paths::binary("sluice"))
        .arg("--stack-file")
        .arg(stack.dir.join("stack.json"))
        .args(["--json", "dlq", "redrive"])
        .output()
        .expect("run sluice dlq redrive");
    assert!(
        redrive.status.success(),
        "sluice dlq redrive: {}{}",
        String::from_utf8_lossy(&redrive.stdout),
        String::from_utf8_lossy(&redrive.stderr)
    );
    let redriven = String::from_utf8_lossy(&redrive.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    until(
        "every accepted event delivered",
        Duration::from_secs(180),
        || {
            let counts = delivered_counts();
            let missing = accepted
                .iter()
                .filter(|m| !counts.contains_key(**m))
                .count();
            async move { (missing == 0).then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|e| {
        let counts = delivered_counts();
        let missing: Vec<_> = accepted
            .iter()
            .filter(|m| !counts.contains_key(**m))
            .collect();
        panic!(
            "{e}: missing {missing:?}\nconsumer log tail:\n{}",
            log_tail()
        )
    });
    until("the queue drained", Duration::from_secs(120), || async {
        (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();

    let counts = delivered_counts();
    let duplicated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        duplicated.is_empty(),
        "delivered more than once: {duplicated:?}"
    );
    for m in &accepted {
        assert_eq!(
            counts.get(*m),
            Some(&1),
            "{m}: accepted, so delivered exactly once"
        );
    }
    let rejected_delivered = answers
        .iter()
        .filter(|(m, s)| **s != 202 && counts.contains_key(*m))
        .count();
    assert!(
        stack.receive(&stack.dlq_url).await.unwrap().is_empty(),
        "the DLQ is empty after the redrive"
    );

    let aws_injected = aws_proxy.injected();
    let dest_injected = dest_proxy.injected();
    assert!(
        aws_injected.values().sum::<u64>() > 15 && dest_injected.values().sum::<u64>() > 5,
        "faults were injected: aws {aws_injected:?}, destination {dest_injected:?}"
    );
    println!(
        "faults: {EVENTS} requests, answers {by_status:?}; accepted {} delivered once each; \
         {rejected_delivered} not-accepted delivered (at most once); injected on AWS calls \
         {aws_injected:?} ({} forwarded), on deliveries {dest_injected:?}; redrive: {}",
        accepted.len(),
        aws_proxy.forwarded(),
        redriven
    );
}

/// The edge's own AWS calls: a 5xx is tried once more after a short pause, then answered 503
/// with `Retry-After`; one failure followed by a success is a 202. For the SQS send and for
/// the claim check's S3 PUT (a body over the inline threshold). A refused request queues
/// nothing: the queue is counted on moto directly, behind the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_tries_aws_twice_then_answers_503() {
    let mut options = StackOptions::for_test(
        "edge-retry",
        "http://127.0.0.1:9",
        &[("github", Scheme::Github)],
    );
    options.aws_fault_proxy = true;
    options.poller = false; // only the edge talks to AWS through the proxy
    let stack = Stack::start(options).await.expect("stack starts");
    let proxy = stack
        .aws_faults
        .clone()
        .expect("fault proxy in front of moto");
    let github = stack.source("github").clone();
    let unavailable = |limit| Faults {
        rate: 1.0,
        kinds: vec![Fault::Unavailable],
        limit,
        ..Faults::none()
    };
    let injected = || proxy.injected().get("Unavailable").copied().unwrap_or(0);

    let small = br#"{"zen":"Keep it logically awesome."}"#.to_vec();
    let large = vec![b'x'; 300 * 1024];
    let mut queued = 0;
    for (call, body) in [("SQS send", &small), ("S3 PUT", &large)] {
        // Every call fails: two attempts, then 503 with Retry-After, nothing queued.
        proxy.set(unavailable(None));
        let before = injected();
        let id = format!("{call}-down");
        let resp = stack
            .post("github", &github.sign(&id, body), body)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").cloned();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, 503, "{call}: {text}");
        assert!(text.contains("queue_unavailable"), "{call}: {text}");
        assert!(retry_after.is_some(), "{call}: 503 without Retry-After");
        assert_eq!(injected() - before, 2, "{call}: one try and one retry");
        assert_eq!(
            stack.queue_count(&stack.queue_url).await.unwrap(),
            queued,
            "{call}: nothing queued"
        );

        // Only the first call fails: the retry succeeds and the event is queued.
        proxy.set(unavailable(Some(1)));
        let before = injected();
        let id = format!("{call}-blip");
        let resp = stack
            .post("github", &github.sign(&id, body), body)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, 202, "{call}: {text}");
        assert_eq!(injected() - before, 1, "{call}: one failure");
        queued += 1;
        assert_eq!(
            stack.queue_count(&stack.queue_url).await.unwrap(),
            queued,
            "{call}: queued after the retry"
        );
    }

    // Refused by AWS with an error body that echoes the request's signature: 503 to the
    // provider (not its fault), and the edge logs the status and AWS's code, never the body.
    proxy.set(Faults {
        rate: 1.0,
        kinds: vec![Fault::Refused],
        ..Faults::none()
    });
    let resp = stack
        .post("github", &github.sign("refused", &small), &small)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let edge_log = stack.log("edge");
    until(
        "the edge to log the refusal",
        Duration::from_secs(30),
        || async {
            read_log(&edge_log)
                .contains("answered 403 (SignatureDoesNotMatch)")
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&edge_log)));
    let log = read_log(&edge_log);
    for echoed in ["AWS4-HMAC-SHA256", "Credential=", "Signature="] {
        assert!(
            !log.contains(echoed),
            "the edge logged AWS's error body:\n{log}"
        );
    }
    proxy.set(Faults::none());
}
