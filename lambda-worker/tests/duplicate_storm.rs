//! 50 copies of one event (provider retries plus SQS redelivery) handled by 4 consumers at
//! once, each in its own handler invocation against real DynamoDB semantics (moto) and a
//! real HTTP destination: exactly one delivery. Records that lost the claim race are
//! reported as batch item failures and, redelivered, are then acknowledged as duplicates.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_e2e::Destination;
use sluice_lambda_worker::{Consumer, ConsumerConfig};
use sluice_protocol::retry::RetryPolicy;
use sluice_protocol::{Body, Envelope, Scheme, SourceConfig, SourcesConfig, ENVELOPE_VERSION};
use std::time::Duration;

fn record(n: usize, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(format!("m{n}"));
    m.body = Some(body.to_string());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
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
    let config = ConsumerConfig {
        sources: SourcesConfig {
            sources: vec![SourceConfig {
                name: "github".into(),
                scheme: Scheme::Github,
                destination: format!("{}/storm", dest.url),
                max_body_bytes: 1024,
                tolerance_secs: 300,
                content_types: vec![],
                require_json: false,
                public_url: None,
                generic: None,
                fifo_group_key: None,
            }],
        },
        table: "storm".into(),
        destination_secret: None,
        completed_ttl: Duration::from_secs(3600),
        delivery_timeout: Duration::from_secs(5),
        concurrency: 10,
        dlq_url: None,
        queue_url: None,
        retry: RetryPolicy::default(),
    };
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
            Envelope {
                v: ENVELOPE_VERSION,
                id: format!("evt_storm_{n}"),
                source: "github".into(),
                idempotency_key: Some("gh-storm-1".into()),
                received_at_ms: 1,
                content_type: Some("application/json".into()),
                trace_id: None,
                headers: Default::default(),
                body: Body::from_bytes(br#"{"storm":true}"#),
            }
            .encode()
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
                let mut event = SqsEvent::default();
                event.records = records;
                let mut ctx = Context::default();
                ctx.deadline = 0;
                consumer.handle(LambdaEvent::new(event, ctx)).await
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
