//! Crashes and storms against the whole local pipeline (workerd, moto, the consumer, a real
//! destination):
//! - the consumer SIGKILLed at random points of a run, several times: nothing accepted is
//!   lost, and every event has one effect at a destination that dedupes on `webhook-id`;
//! - a duplicate storm (each event sent 10 times at once by the provider, plus SQS
//!   redelivery forced by failed deletes): one delivery each;
//! - a poison event among good ones in one batch: the good ones are delivered once, with no
//!   second attempt, and the poison one reaches the DLQ with its reason.

use sluice_e2e::fault_proxy::{Fault, Faults};
use sluice_e2e::stack::read_log;
use sluice_e2e::wait::until;
use sluice_e2e::{Behaviour, Destination, Stack, StackOptions};
use sluice_protocol::Scheme;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Successful deliveries to `path`, counted per `webhook-id`.
fn per_webhook_id(dest: &Destination, path: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in dest.successful(path) {
        let id = d.headers.get("webhook-id").cloned().unwrap_or_default();
        *counts.entry(id).or_default() += 1;
    }
    counts
}

async fn send_all(stack: &Arc<Stack>, source: &str, ids: &[String], copies: usize) -> Vec<u16> {
    let mut sends = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(8));
    for id in ids {
        for _ in 0..copies {
            let (stack, id, source, permits) = (
                stack.clone(),
                id.clone(),
                source.to_string(),
                permits.clone(),
            );
            sends.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let body = format!(r#"{{"type":"storm.test","id":"{id}"}}"#).into_bytes();
                let headers = stack.source(&source).sign(&id, &body);
                match stack.post(&source, &headers, &body).await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            });
        }
    }
    let mut statuses = Vec::new();
    while let Some(s) = sends.join_next().await {
        statuses.push(s.unwrap_or(0));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_sigkilled_repeatedly_loses_nothing() {
    const EVENTS: usize = 80;
    const KILLS: usize = 5;
    const CONCURRENCY: usize = 10;
    let dest = Destination::start(None).await.unwrap();
    let options = StackOptions::for_test(
        "sigkill",
        &dest.url,
        &[("orders", Scheme::StandardWebhooks)],
    );
    let stack = Arc::new(tokio::sync::Mutex::new(
        Stack::start(options).await.expect("stack starts"),
    ));
    let ids: Vec<String> = (0..EVENTS).map(|n| format!("msg_kill_{n}")).collect();

    // The provider sends while the consumer is killed and restarted at random moments.
    let source = stack.lock().await.source("orders").clone();
    let sender = {
        let ids = ids.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for id in &ids {
                let body = format!(r#"{{"type":"kill.test","id":"{id}"}}"#).into_bytes();
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
    for _ in 0..KILLS {
        // A random moment, not a synchronisation: the kill may land anywhere in the work.
        tokio::time::sleep(Duration::from_millis(rand::random_range(300..1500))).await;
        let mut s = stack.lock().await;
        s.kill_poller();
        s.start_poller().unwrap();
    }
    let statuses = sender.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 202),
        "the edge accepts while the consumer crashes: {statuses:?}"
    );

    let s = stack.lock().await;
    // A bound for a stuck pipeline, not a speed target: with a quarter of all AWS calls
    // failing, moto on a busy 2-core machine needs minutes.
    until(
        "every event delivered",
        Duration::from_secs(300),
        || async { (per_webhook_id(&dest, "/orders").len() == EVENTS).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&s.log("consumer"))));
    until("the queue drained", Duration::from_secs(60), || async {
        (s.queue_count(&s.queue_url).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();

    let counts = per_webhook_id(&dest, "/orders");
    for id in &ids {
        assert!(
            counts.contains_key(&format!("orders#{id}")),
            "{id} accepted, so delivered"
        );
    }
    // A kill between the destination's 2xx and the completion mark re-runs that delivery:
    // the at-least-once window every HTTP sender has. It can only hit records in flight at
    // a kill, and repeats the same webhook-id (a destination dedupes on it).
    let repeats: usize = counts.values().map(|c| c - 1).sum();
    assert!(
        repeats <= KILLS * CONCURRENCY,
        "{repeats} repeated deliveries from {KILLS} kills"
    );
    assert!(
        s.receive(&s.dlq_url).await.unwrap().is_empty(),
        "nothing dead-lettered"
    );
    println!(
        "sigkill: {EVENTS} events, {KILLS} kills: {} distinct webhook-ids delivered, {repeats} repeats \
         (each the same webhook-id, from a kill inside the 2xx-to-completion window)",
        counts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_storm_one_delivery_each() {
    const EVENTS: usize = 20;
    const COPIES: usize = 10;
    let dest = Destination::start(None).await.unwrap();
    let mut options = StackOptions::for_test(
        "dupstorm",
        &dest.url,
        &[("orders", Scheme::StandardWebhooks)],
    );
    options.aws_fault_proxy = true;
    let stack = Arc::new(Stack::start(options).await.expect("stack starts"));
    // SQS redelivery: a quarter of the consumer's calls (deletes among them) and of the
    // edge's sends fail after AWS acted, so messages come back and sends are repeated.
    let proxy = stack.aws_faults.clone().expect("proxy");
    proxy.set(Faults {
        rate: 0.25,
        kinds: vec![Fault::ErrorAfterForward],
        ..Faults::none()
    });
    let ids: Vec<String> = (0..EVENTS).map(|n| format!("msg_dup_{n}")).collect();
    let statuses = send_all(&stack, "orders", &ids, COPIES).await;
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!(accepted >= EVENTS * COPIES / 2, "{statuses:?}");

    // A bound for a stuck pipeline, not a speed target: with a quarter of all AWS calls
    // failing, moto on a busy 2-core machine needs minutes.
    until(
        "every event delivered",
        Duration::from_secs(300),
        || async { (per_webhook_id(&dest, "/orders").len() == EVENTS).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    proxy.set(Faults::none());
    until("the queue drained", Duration::from_secs(60), || async {
        (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    let counts = per_webhook_id(&dest, "/orders");
    assert!(
        counts.values().all(|c| *c == 1),
        "one delivery per event: {counts:?}"
    );
    assert_eq!(dest.attempts("/orders").len(), EVENTS, "no second attempt");
    println!(
        "duplicate storm: {EVENTS} events x {COPIES} copies ({accepted} accepted), \
         injected {:?}: {} deliveries",
        proxy.injected(),
        counts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_does_not_hold_back_its_batch() {
    let dest = Destination::start(None).await.unwrap();
    dest.set("/poison", Behaviour::AlwaysFail { status: 400 });
    let mut options = StackOptions::for_test(
        "poison",
        &dest.url,
        &[
            ("good", Scheme::StandardWebhooks),
            ("poison", Scheme::StandardWebhooks),
        ],
    );
    options.poller = false;
    let mut stack = Stack::start(options).await.expect("stack starts");
    // Queue everything first so the consumer takes good and poison records in one batch.
    let mut posted = 0;
    for n in 0..9 {
        let source = if n == 4 { "poison" } else { "good" };
        let body = format!(r#"{{"n":{n}}}"#).into_bytes();
        let headers = stack.source(source).sign(&format!("msg_batch_{n}"), &body);
        let resp = stack.post(source, &headers, &body).await.unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        posted += 1;
    }
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), posted);
    stack.start_poller().unwrap();

    let dead = until(
        "the poison event in the DLQ",
        Duration::from_secs(60),
        || async {
            let got = stack.receive(&stack.dlq_url).await.ok()?;
            (!got.is_empty()).then_some(got)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    assert_eq!(dead.len(), 1);
    let attr = |name: &str| {
        dead[0]
            .message_attributes
            .as_ref()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value.clone())
    };
    assert_eq!(
        attr("sluice-failure-reason").as_deref(),
        Some("delivery_status")
    );
    assert_eq!(attr("sluice-last-status").as_deref(), Some("400"));
    until(
        "the good events delivered",
        Duration::from_secs(60),
        || async { (dest.successful("/good").len() == 8).then_some(()) },
    )
    .await
    .unwrap();
    until("the queue drained", Duration::from_secs(30), || async {
        (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        dest.attempts("/good").len(),
        8,
        "good records of the poison's batch were not retried"
    );
    assert_eq!(dest.attempts("/poison").len(), 1, "permanent: one attempt");
}
