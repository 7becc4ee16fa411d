//! A claim-checked event is claimed before its body is read from S3: a later copy of an
//! event already delivered is a duplicate without a GET, even once the payload object is
//! gone (expired), instead of being dead-lettered as `payload_missing`. Real S3 and
//! DynamoDB semantics (moto), a real HTTP destination.

mod support;

use aws_lambda_events::event::sqs::SqsMessage;
use sha2::Digest as _;
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_e2e::Destination;
use sluice_lambda_worker::Consumer;
use sluice_protocol::claim_check::BodyRef;
use sluice_protocol::{Body, Scheme, SourceConfig};

/// A copy of the provider's event `d-big`, its body claim-checked at `reference`.
fn record(message_id: &str, event_id: &str, reference: &BodyRef) -> SqsMessage {
    let envelope = support::envelope(event_id, "github", "d-big", Body::S3(reference.clone()));
    support::record(message_id, &envelope.encode())
}

/// moto with the idempotency table `table` and `body` claim-checked in the payload bucket
/// as event `event_id`'s.
async fn world(
    table: &str,
    event_id: &str,
    body: &[u8],
) -> (
    Moto,
    std::path::PathBuf,
    aws_config::SdkConfig,
    aws_sdk_s3::Client,
    BodyRef,
) {
    let log = std::env::temp_dir().join(format!(
        "sluice-claim-checked-{table}-moto-{}.log",
        std::process::id()
    ));
    let moto = Moto::start(None, &log).await.unwrap();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), table, "pk")
        .await
        .unwrap();
    s3.create_bucket().bucket("payloads").send().await.unwrap();
    let reference = BodyRef {
        bucket: "payloads".into(),
        key: format!("payloads/github/2026/11/24/{event_id}"),
        size: body.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(body)),
    };
    s3.put_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
    (moto, log, sdk, s3, reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_delivered_claim_checked_event_is_a_duplicate_without_its_payload() {
    let body = vec![b'x'; 300 * 1024];
    let (moto, log, sdk, s3, reference) = world("big", "evt_1", &body).await;
    let dest = Destination::start(None).await.unwrap();
    let consumer = Consumer::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        s3.clone(),
        aws_sdk_sqs::Client::new(&sdk),
        support::config(
            SourceConfig::new("github", Scheme::Github, &format!("{}/big", dest.url)),
            "big",
        ),
    )
    .unwrap();
    let handle = |records| support::handle(&consumer, records);

    let first = handle(vec![record("m1", "evt_1", &reference)]).await;
    assert!(first.batch_item_failures.is_empty(), "delivered");
    assert_eq!(dest.successful("/big").len(), 1);
    assert_eq!(dest.successful("/big")[0].body, body);

    // The payload expires; the provider's retry of the same event arrives.
    s3.delete_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .send()
        .await
        .unwrap();
    let again = handle(vec![record("m2", "evt_2", &reference)]).await;
    assert!(
        again.batch_item_failures.is_empty(),
        "a duplicate is acknowledged, not failed for its missing payload"
    );
    assert_eq!(dest.attempts("/big").len(), 1, "delivered once");
    drop(moto);
    let _ = std::fs::remove_file(log);
}

/// The same when a destination's filter reads the body: the body must be read before the
/// filters can run, so the missing payload is found first; every pair being delivered
/// already, the copy is still a duplicate, not a `payload_missing` failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_reading_the_body_does_not_turn_an_expired_duplicate_into_a_failure() {
    let body = format!(r#"{{"type":"push","pad":"{}"}}"#, "x".repeat(300 * 1024)).into_bytes();
    let (moto, log, sdk, s3, reference) = world("bigf", "evt_f1", &body).await;
    let dest = Destination::start(None).await.unwrap();
    let sources = sluice_protocol::SourcesConfig::from_json(&format!(
        r#"{{"sources":[{{"name":"github","scheme":"github","destinations":[
            {{"name":"pushes","url":"{0}/pushes","filter":{{"body":{{"type":"push"}}}}}},
            {{"name":"all","url":"{0}/all"}}]}}]}}"#,
        dest.url
    ))
    .unwrap();
    let config = sluice_lambda_worker::ConsumerConfig {
        sources,
        ..support::config(
            SourceConfig::new("github", Scheme::Github, "http://127.0.0.1:9/x"),
            "bigf",
        )
    };
    let consumer = Consumer::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        s3.clone(),
        aws_sdk_sqs::Client::new(&sdk),
        config,
    )
    .unwrap();
    let handle = |records| support::handle(&consumer, records);

    let first = handle(vec![record("m1", "evt_f1", &reference)]).await;
    assert!(first.batch_item_failures.is_empty(), "delivered");
    assert_eq!(dest.successful("/pushes").len(), 1);
    assert_eq!(dest.successful("/all").len(), 1);

    s3.delete_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .send()
        .await
        .unwrap();
    let again = handle(vec![record("m2", "evt_f2", &reference)]).await;
    assert!(
        again.batch_item_failures.is_empty(),
        "a duplicate is acknowledged, not failed for its missing payload"
    );
    assert_eq!(dest.attempts("/pushes").len(), 1, "delivered once");
    assert_eq!(dest.attempts("/all").len(), 1, "delivered once");
    drop(moto);
    let _ = std::fs::remove_file(log);
}
