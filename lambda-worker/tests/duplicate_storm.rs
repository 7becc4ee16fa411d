//! 50 copies of one event (provider retries plus SQS redelivery) handled by 4 consumers at
//! once, each in its own handler invocation against real DynamoDB semantics (moto) and a
//! real HTTP destination: exactly one delivery. Records that lost the claim race are
//! reported as batch item failures and, redelivered, are then acknowledged as duplicates.

mod support;

use aws_lambda_events::event::sqs::SqsMessage;
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_e2e::Destination;
use sluice_lambda_worker::outcome::Failure;
use sluice_lambda_worker::{Consumer, ConsumerConfig, Event, Processor};
use sluice_protocol::{Body, Scheme, SourceConfig};

fn record(n: usize, body: &str) -> SqsMessage {
    support::record(&format!("m{n}"), body)
}

fn envelope(id: &str, key: &str, body: &[u8]) -> String {
    support::envelope(id, "github", key, Body::from_bytes(body)).encode()
}

fn config(destination: &str, table: &str) -> ConsumerConfig {
    support::config(
        SourceConfig::new("github", Scheme::Github, destination),
        table,
    )
}

/// A user's own processing: records bodies; fails (transiently) on a body saying "fail".
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Vec<u8>>>);

impl Processor for Recorder {
    fn process<'a>(
        &'a self,
        event: Event<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            if event.body == b"fail" {
                return Err(Failure::transient("custom", "asked to fail"));
            }
            self.0.lock().unwrap().push(event.body.to_vec());
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_processor_replaces_delivery() {
    let log =
        std::env::temp_dir().join(format!("sluice-processor-moto-{}.log", std::process::id()));
    let moto = Moto::start(None, &log).await.unwrap();
    let sdk = moto.sdk_config().await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "custom", "pk")
        .await
        .unwrap();
    let recorder = std::sync::Arc::new(Recorder::default());
    let consumer = Consumer::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_s3::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        config("http://127.0.0.1:9/unused", "custom"),
    )
    .unwrap()
    .with_processor(recorder.clone());
    let records = vec![
        record(1, &envelope("e1", "k1", b"one")),
        record(2, &envelope("e2", "k1", b"one")),
        record(3, &envelope("e3", "k2", b"two")),
        record(4, &envelope("e4", "k3", b"fail")),
    ];
    let response = support::handle(&consumer, records).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // k1 twice in one batch: one wins, the other is held off (in progress) or a duplicate.
    assert!(
        failed.contains(&"m4"),
        "the processor's failure is a batch item failure: {failed:?}"
    );
    let mut seen = recorder.0.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![b"one".to_vec(), b"two".to_vec()],
        "each event processed once, by the custom processor"
    );
    drop(moto);
    let _ = std::fs::remove_file(log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_duplicates_four_consumers_one_delivery() {
    let log = std::env::temp_dir().join(format!("sluice-storm-moto-{}.log", std::process::id()));
    let moto = Moto::start(None, &log).await.unwrap();
    let sdk = moto.sdk_config().await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "storm", "pk")
        .await
        .unwrap();
    let dest = Destination::start(None).await.unwrap();
    let config = config(&format!("{}/storm", dest.url), "storm");
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            Consumer::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                aws_sdk_s3::Client::new(&sdk),
                aws_sdk_sqs::Client::new(&sdk),
                config.clone(),
            )
            .unwrap()
        })
        .collect();

    // The same provider event accepted 50 times: 50 Sluice event ids, one provider key.
    let bodies: Vec<String> = (0..50)
        .map(|n| {
            envelope(
                &format!("evt_storm_{n}"),
                "gh-storm-1",
                br#"{"storm":true}"#,
            )
        })
        .collect();
    let mut pending: Vec<(usize, String)> = bodies.into_iter().enumerate().collect();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(
            rounds <= 10,
            "records still failing after 10 redeliveries: {}",
            pending.len()
        );
        // Deal the pending records out to the four consumers, one batch each, all at once.
        let mut batches: Vec<Vec<SqsMessage>> = vec![Vec::new(); 4];
        for (i, (n, body)) in pending.iter().enumerate() {
            batches[i % 4].push(record(*n, body));
        }
        let mut tasks = Vec::new();
        for (consumer, records) in consumers.iter().zip(batches) {
            let consumer = consumer.clone();
            tasks.push(tokio::spawn(async move {
                support::handle(&consumer, records).await
            }));
        }
        let mut failed = std::collections::HashSet::new();
        for t in tasks {
            for f in t.await.unwrap().batch_item_failures {
                failed.insert(f.item_identifier);
            }
        }
        pending.retain(|(n, _)| failed.contains(&format!("m{n}")));
    }
    assert_eq!(dest.successful("/storm").len(), 1, "exactly one delivery");
    assert_eq!(
        dest.attempts("/storm").len(),
        1,
        "no second attempt reached the destination"
    );
    drop(moto);
    let _ = std::fs::remove_file(log);
}
