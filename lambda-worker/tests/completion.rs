//! A delivered event whose completion write fails is still marked completed: the consumer
//! retries the write (it is idempotent) within the invocation, because an event left in
//! progress could be delivered again by a later copy once its claim expires. DynamoDB is
//! moto behind a fault proxy that refuses every call for a while, starting the moment the
//! event has been processed.

mod support;

use sha2::Digest as _;
use sluice_e2e::fault_proxy::{Fault, FaultProxy, Faults};
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_lambda_worker::claim::{Claim, ClaimStore};
use sluice_lambda_worker::clock::now_ms;
use sluice_lambda_worker::outcome::Failure;
use sluice_lambda_worker::{Consumer, Event, Processor};
use sluice_protocol::{Body, Scheme, SourceConfig};

/// Processes by turning DynamoDB off for the next `refusals` calls: the completion write
/// that follows meets them.
struct ThenRefuse {
    proxy: FaultProxy,
    refusals: u64,
}

impl Processor for ThenRefuse {
    fn process<'a>(
        &'a self,
        _event: Event<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            self.proxy.set(Faults {
                rate: 1.0,
                kinds: vec![Fault::Unavailable],
                limit: Some(self.refusals),
                ..Faults::none()
            });
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_completion_write_is_retried_until_it_lands() {
    let log =
        std::env::temp_dir().join(format!("sluice-completion-moto-{}.log", std::process::id()));
    let moto = Moto::start(None, &log).await.unwrap();
    let direct = moto.sdk_config().await;
    create_table(&aws_sdk_dynamodb::Client::new(&direct), "done", "pk")
        .await
        .unwrap();
    let proxy = FaultProxy::start(&moto.endpoint).await.unwrap();
    let through_proxy = sluice_e2e::moto::sdk_config(&proxy.url).await;
    let config = support::config(
        SourceConfig::new("github", Scheme::Github, "http://127.0.0.1:9/unused"),
        "done",
    );
    let consumer = Consumer::new(
        aws_sdk_dynamodb::Client::new(&through_proxy),
        aws_sdk_s3::Client::new(&direct),
        aws_sdk_sqs::Client::new(&direct),
        config,
    )
    .unwrap()
    // More refusals than one completion call's own attempts (a direct one, then the SDK's).
    .with_processor(std::sync::Arc::new(ThenRefuse {
        proxy: proxy.clone(),
        refusals: 6,
    }));

    let envelope = support::envelope("evt_1", "github", "d-1", Body::from_bytes(b"{}"));
    let record = support::record("m1", &envelope.encode());
    let response = support::handle(&consumer, vec![record]).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "delivered: acknowledged"
    );
    assert_eq!(
        proxy.injected().get("Unavailable").copied(),
        Some(6),
        "the completion met every refusal"
    );

    // Another copy of the event finds it completed, not in progress.
    let store = ClaimStore::new(aws_sdk_dynamodb::Client::new(&direct), "done");
    let now = now_ms();
    let claim = store
        .claim(
            "github#d-1",
            "evt_2",
            &hex::encode(sha2::Sha256::digest(b"{}")),
            now,
            now + 60_000,
            now / 1000 + 60,
        )
        .await
        .unwrap();
    assert_eq!(claim, Claim::AlreadyCompleted);
    drop(moto);
    let _ = std::fs::remove_file(log);
}
