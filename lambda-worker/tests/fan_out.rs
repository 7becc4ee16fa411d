//! Routes at the consumer: one record fans out to its source's matching destinations, and
//! each (event, destination) pair is settled on its own. Real DynamoDB and SQS semantics
//! (moto), the real `Consumer::handle`, a processor that records which destination it was
//! called for and fails some destinations as told.
//!
//! - a destination that fails transiently leaves the record for redelivery; on the next
//!   receive only it is tried again (the others are duplicates, never called twice);
//! - a filter keeps a destination from events it does not match; an event no destination
//!   matches is acknowledged without a call;
//! - a permanent failure dead-letters a copy naming its destination, and that copy sent back
//!   is delivered to that destination only;
//! - on a FIFO group, a record waiting for one destination holds back the records behind
//!   it for that destination only;
//! - `default` keeps the pre-routes idempotency key: a source upgraded from `destination`
//!   to `destinations` re-delivers nothing to `default`.

mod support;

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_dynamodb::types::AttributeValue;
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_lambda_worker::outcome::Failure;
use sluice_lambda_worker::{Consumer, ConsumerConfig, Event, Processor};
use sluice_protocol::queue_attributes::DESTINATION;
use sluice_protocol::{Body, SourceConfig, SourcesConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Records `(destination, body)` per call; fails destinations as told: a transient failure
/// for the next N calls, or permanently.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String)>>,
    transient: Mutex<HashMap<String, u32>>,
    permanent: Mutex<Vec<String>>,
}

impl Recorder {
    fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }

    fn count(&self, destination: &str, body: &str) -> usize {
        self.calls()
            .iter()
            .filter(|(d, b)| d == destination && b == body)
            .count()
    }
}

impl Processor for Recorder {
    fn process<'a>(
        &'a self,
        event: Event<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let name = event.destination.name.clone();
            let body = String::from_utf8_lossy(event.body).to_string();
            self.calls.lock().unwrap().push((name.clone(), body));
            if self.permanent.lock().unwrap().contains(&name) {
                return Err(Failure::permanent("custom_poison", "never works"));
            }
            let mut transient = self.transient.lock().unwrap();
            if let Some(left) = transient.get_mut(&name).filter(|n| **n > 0) {
                *left -= 1;
                return Err(Failure::transient("custom", "not yet"));
            }
            Ok(())
        })
    }
}

const SOURCES: &str = r#"{"sources":[
  {"name":"shop","scheme":"standard-webhooks","destinations":[
    {"name":"all","url":"http://127.0.0.1:9/all"},
    {"name":"orders","url":"http://127.0.0.1:9/orders","filter":{"body":{"type":{"$startsWith":"order."}}}},
    {"name":"flaky","url":"http://127.0.0.1:9/flaky","filter":{"$not":{"body":{"type":"order.test"}}}}]},
  {"name":"gh","scheme":"github","destinations":[
    {"name":"ci","url":"http://127.0.0.1:9/ci","filter":{"headers":{"x-github-event":"push"}}}]}]}"#;

struct World {
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    dlq_url: String,
}

async fn world(name: &str) -> World {
    let log = std::env::temp_dir().join(format!(
        "sluice-fan-out-{name}-moto-{}.log",
        std::process::id()
    ));
    let moto = Moto::start(None, &log).await.unwrap();
    let sdk = moto.sdk_config().await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "fan", "pk")
        .await
        .unwrap();
    let dlq_url = aws_sdk_sqs::Client::new(&sdk)
        .create_queue()
        .queue_name("fan-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    World {
        _moto: moto,
        sdk,
        dlq_url,
    }
}

fn consumer(w: &World, sources: SourcesConfig, recorder: &Arc<Recorder>) -> Arc<Consumer> {
    let config = ConsumerConfig {
        dlq_url: Some(w.dlq_url.clone()),
        ..support::config(sources.sources[0].clone(), "fan")
    };
    let config = ConsumerConfig { sources, ..config };
    Consumer::new(
        aws_sdk_dynamodb::Client::new(&w.sdk),
        aws_sdk_s3::Client::new(&w.sdk),
        aws_sdk_sqs::Client::new(&w.sdk),
        config,
    )
    .unwrap()
    .with_processor(recorder.clone())
}

fn shop_record(message_id: &str, key: &str, body: &str) -> SqsMessage {
    let e = support::envelope(
        &format!("evt_{key}"),
        "shop",
        key,
        Body::from_bytes(body.as_bytes()),
    );
    support::record(message_id, &e.encode())
}

/// Up to ten messages in the DLQ, with their attributes.
async fn dead_letters(w: &World) -> Vec<aws_sdk_sqs::types::Message> {
    aws_sdk_sqs::Client::new(&w.sdk)
        .receive_message()
        .queue_url(&w.dlq_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// A dead letter as `sluice dlq redrive` sends it back: a new message, its body and its
/// `sluice-destination`.
fn sent_back(message_id: &str, dead: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut back = support::record(message_id, dead.body.as_deref().unwrap());
    let attrs = dead.message_attributes.clone().unwrap_or_default();
    if let Some(name) = attrs.get(DESTINATION).and_then(|v| v.string_value.clone()) {
        let mut destination = SqsMessageAttribute::default();
        destination.string_value = Some(name);
        destination.data_type = Some("String".into());
        back.message_attributes
            .insert(DESTINATION.into(), destination);
    }
    back
}

fn failed(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_destination_is_settled_on_its_own() {
    let w = world("settled").await;
    let recorder = Arc::new(Recorder::default());
    recorder.transient.lock().unwrap().insert("flaky".into(), 1);
    let consumer = consumer(&w, SourcesConfig::from_json(SOURCES).unwrap(), &recorder);

    let order = r#"{"type":"order.created"}"#;
    let first = shop_record("m1", "k1", order);
    let response = support::handle(&consumer, vec![first.clone()]).await;
    assert_eq!(failed(&response), ["m1"], "flaky still waits");
    assert_eq!(recorder.count("all", order), 1);
    assert_eq!(recorder.count("orders", order), 1);
    assert_eq!(recorder.count("flaky", order), 1);

    // Received again: only the destination that failed is tried.
    recorder.clear();
    let response = support::handle(&consumer, vec![first]).await;
    assert!(failed(&response).is_empty(), "every destination settled");
    assert_eq!(
        recorder.calls(),
        [("flaky".to_string(), order.to_string())],
        "delivered destinations are skipped, not called again"
    );

    // A customer event: `orders` filters it out.
    recorder.clear();
    let customer = r#"{"type":"customer.created"}"#;
    let response = support::handle(&consumer, vec![shop_record("m2", "k2", customer)]).await;
    assert!(failed(&response).is_empty());
    let mut got: Vec<String> = recorder.calls().into_iter().map(|(d, _)| d).collect();
    got.sort();
    assert_eq!(got, ["all", "flaky"]);

    // No destination matches: acknowledged, nobody called, nothing dead-lettered.
    recorder.clear();
    let mut e = support::envelope("evt_gh", "gh", "d-1", Body::from_bytes(b"{}"));
    e.headers.insert("x-github-event".into(), "issues".into());
    let response = support::handle(&consumer, vec![support::record("m3", &e.encode())]).await;
    assert!(
        failed(&response).is_empty(),
        "a filtered event is acknowledged"
    );
    assert!(recorder.calls().is_empty());
    e.headers.insert("x-github-event".into(), "push".into());
    e.idempotency_key = Some("d-2".into());
    let response = support::handle(&consumer, vec![support::record("m4", &e.encode())]).await;
    assert!(failed(&response).is_empty());
    assert_eq!(recorder.calls(), [("ci".to_string(), "{}".to_string())]);

    // The pairs' claims: one item per destination, `{source}#{key}#{destination}`.
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    for key in [
        "shop#k1#all",
        "shop#k1#orders",
        "shop#k1#flaky",
        "shop#k2#all",
    ] {
        let item = ddb
            .get_item()
            .table_name("fan")
            .key("pk", AttributeValue::S(key.into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no claim {key}"));
        assert_eq!(item["status"].as_s().unwrap(), "COMPLETED", "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_dead_letters_that_destination_only() {
    let w = world("dead").await;
    let recorder = Arc::new(Recorder::default());
    recorder.permanent.lock().unwrap().push("orders".into());
    let consumer = consumer(&w, SourcesConfig::from_json(SOURCES).unwrap(), &recorder);
    let order = r#"{"type":"order.paid"}"#;
    let response = support::handle(&consumer, vec![shop_record("m1", "k9", order)]).await;
    assert!(
        failed(&response).is_empty(),
        "acknowledged: the others delivered, orders dead-lettered"
    );

    let dead = dead_letters(&w).await;
    assert_eq!(dead.len(), 1, "one dead letter, for one destination");
    let attrs = dead[0].message_attributes.clone().unwrap_or_default();
    let attr = |n: &str| attrs.get(n).and_then(|v| v.string_value.clone());
    assert_eq!(attr(DESTINATION).as_deref(), Some("orders"));
    assert_eq!(
        attr("sluice-failure-reason").as_deref(),
        Some("custom_poison")
    );

    // Fixed, and the dead letter sent back as a redrive sends it: only `orders` is called.
    recorder.permanent.lock().unwrap().clear();
    recorder.clear();
    let back = sent_back("m2", &dead[0]);
    let response = support::handle(&consumer, vec![back.clone()]).await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        recorder.calls(),
        [("orders".to_string(), order.to_string())]
    );
    // Sent back once more: a duplicate there, and still nobody else.
    recorder.clear();
    support::handle(&consumer, vec![back]).await;
    assert!(recorder.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_group_holds_back_only_the_waiting_destination() {
    let w = world("fifo").await;
    let recorder = Arc::new(Recorder::default());
    recorder.transient.lock().unwrap().insert("flaky".into(), 1);
    let consumer = consumer(&w, SourcesConfig::from_json(SOURCES).unwrap(), &recorder);
    let mut records = Vec::new();
    for (n, body) in [r#"{"type":"a"}"#, r#"{"type":"b"}"#].iter().enumerate() {
        let mut r = shop_record(&format!("m{n}"), &format!("g{n}"), body);
        r.attributes.insert("MessageGroupId".into(), "g".into());
        records.push(r);
    }
    let response = support::handle(&consumer, records.clone()).await;
    assert_eq!(failed(&response), ["m0", "m1"]);
    assert_eq!(recorder.count("all", r#"{"type":"a"}"#), 1);
    assert_eq!(
        recorder.count("flaky", r#"{"type":"a"}"#),
        1,
        "a failed there"
    );
    assert_eq!(
        recorder.count("all", r#"{"type":"b"}"#),
        1,
        "b reached `all`"
    );
    assert_eq!(
        recorder.count("flaky", r#"{"type":"b"}"#),
        0,
        "b must not overtake a at `flaky`"
    );
    // The group again, in order: a then b at `flaky`, nothing again at `all`.
    recorder.clear();
    let response = support::handle(&consumer, records).await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        recorder.calls(),
        [
            ("flaky".to_string(), r#"{"type":"a"}"#.to_string()),
            ("flaky".to_string(), r#"{"type":"b"}"#.to_string()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_destination_keeps_its_key_across_the_upgrade() {
    let w = world("upgrade").await;
    let recorder = Arc::new(Recorder::default());
    let old = SourcesConfig {
        sources: vec![SourceConfig::new(
            "shop",
            sluice_protocol::Scheme::StandardWebhooks,
            "http://127.0.0.1:9/old",
        )],
    };
    let body = r#"{"type":"order.created"}"#;
    let response = support::handle(
        &consumer(&w, old, &recorder),
        vec![shop_record("m1", "k1", body)],
    )
    .await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        recorder.calls(),
        [("default".to_string(), body.to_string())]
    );

    recorder.clear();
    let new = SourcesConfig::from_json(
        r#"{"sources":[{"name":"shop","scheme":"standard-webhooks","destinations":[
            {"name":"default","url":"http://127.0.0.1:9/old"},
            {"name":"audit","url":"http://127.0.0.1:9/audit"}]}]}"#,
    )
    .unwrap();
    let response = support::handle(
        &consumer(&w, new, &recorder),
        vec![shop_record("m2", "k1", body)],
    )
    .await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        recorder.calls(),
        [("audit".to_string(), body.to_string())],
        "default already had it (key `shop#k1`, as before routes); audit is new"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_is_dead_lettered_once_while_its_message_waits_for_another() {
    let w = world("once").await;
    let recorder = Arc::new(Recorder::default());
    recorder.permanent.lock().unwrap().push("orders".into());
    recorder.transient.lock().unwrap().insert("flaky".into(), 2);
    let consumer = consumer(&w, SourcesConfig::from_json(SOURCES).unwrap(), &recorder);
    let order = r#"{"type":"order.shipped"}"#;
    let record = shop_record("m1", "k5", order);
    // Three receives of the same message: flaky fails twice, then is delivered.
    for receive in 0..3 {
        let response = support::handle(&consumer, vec![record.clone()]).await;
        assert_eq!(
            failed(&response).is_empty(),
            receive == 2,
            "receive {receive}"
        );
    }
    assert_eq!(
        recorder.count("orders", order),
        1,
        "the dead-lettered pair is not tried again by its own message"
    );
    assert_eq!(recorder.count("all", order), 1);
    assert_eq!(recorder.count("flaky", order), 3);
    let dead = dead_letters(&w).await;
    assert_eq!(dead.len(), 1, "one dead letter, not one per receive");

    // Sent back (a new message, as a redrive sends it) once fixed: delivered there once.
    recorder.permanent.lock().unwrap().clear();
    recorder.clear();
    let back = sent_back("m9", &dead[0]);
    let response = support::handle(&consumer, vec![back]).await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        recorder.calls(),
        [("orders".to_string(), order.to_string())]
    );
}
