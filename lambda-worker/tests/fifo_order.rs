//! FIFO queues: records of one message group are processed in order and a group stops at
//! its first failure (the records behind it wait for it), while other groups go on; a
//! permanent failure in a group is dead-lettered to the FIFO DLQ (keeping its group) and
//! the group continues. Real moto FIFO queues, the real local poller, a custom processor
//! that records the order it saw. Every envelope taken on is archived in S3.

mod support;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_e2e::wait;
use sluice_lambda_worker::local_poller::{self, PollerOptions};
use sluice_lambda_worker::outcome::Failure;
use sluice_lambda_worker::{Consumer, ConsumerConfig, Event, Processor};
use sluice_protocol::retry::RetryPolicy;
use sluice_protocol::{Body, Envelope, Scheme, SourceConfig, ENVELOPE_VERSION};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records every attempt as `(body, ok)`. Fails `a2` transiently on its first attempt and
/// `b2` permanently every time.
#[derive(Default)]
struct Recorder {
    attempts: Mutex<Vec<(String, bool)>>,
    failed_once: Mutex<HashSet<String>>,
}

impl Processor for Recorder {
    fn process<'a>(
        &'a self,
        event: Event<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let body = String::from_utf8_lossy(event.body).to_string();
            let result = match body.as_str() {
                "a2" if self.failed_once.lock().unwrap().insert(body.clone()) => {
                    Err(Failure::transient("custom", "first attempt fails"))
                }
                "b2" => Err(Failure::permanent("custom_poison", "never works")),
                _ => Ok(()),
            };
            self.attempts.lock().unwrap().push((body, result.is_ok()));
            result
        })
    }
}

fn envelope(id: &str, body: &str) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        id: id.into(),
        source: "orders".into(),
        idempotency_key: None,
        received_at_ms: 1_795_435_200_000,
        content_type: Some("text/plain".into()),
        trace_id: None,
        headers: Default::default(),
        body: Body::from_bytes(body.as_bytes()),
    }
}

async fn fifo_queue(sqs: &aws_sdk_sqs::Client, name: &str, redrive: Option<&str>) -> String {
    let mut create = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, "30");
    if let Some(dlq_arn) = redrive {
        create = create.attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}"#),
        );
    }
    create.send().await.unwrap().queue_url.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_run_in_order_and_stop_at_their_first_failure() {
    let log = std::env::temp_dir().join(format!("sluice-fifo-moto-{}.log", std::process::id()));
    let moto = Moto::start(None, &log).await.unwrap();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "fifo", "pk")
        .await
        .unwrap();
    s3.create_bucket()
        .bucket("fifo-archive")
        .send()
        .await
        .unwrap();
    let dlq_url = fifo_queue(&sqs, "orders-dlq.fifo", None).await;
    let dlq_arn = "arn:aws:sqs:us-east-1:123456789012:orders-dlq.fifo";
    let queue_url = fifo_queue(&sqs, "orders.fifo", Some(dlq_arn)).await;

    let recorder = Arc::new(Recorder::default());
    let config = ConsumerConfig {
        dlq_url: Some(dlq_url.clone()),
        queue_url: Some(queue_url.clone()),
        retry: RetryPolicy {
            base_secs: 1,
            cap_secs: 1,
        },
        archive_bucket: Some("fifo-archive".into()),
        ..support::config(
            SourceConfig::new(
                "orders",
                Scheme::StandardWebhooks,
                "http://127.0.0.1:9/unused",
            ),
            "fifo",
        )
    };
    let consumer = Consumer::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        s3.clone(),
        sqs.clone(),
        config,
    )
    .unwrap()
    .with_processor(recorder.clone());

    // Two groups, interleaved, all queued before the consumer starts so they share batches.
    let order = ["a1", "b1", "a2", "b2", "a3", "b3", "a4"];
    let mut envelopes = Vec::new();
    for (n, body) in order.iter().enumerate() {
        let e = envelope(&format!("evt_fifo_{n}_{body}"), body);
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(e.encode())
            .message_group_id(&body[..1])
            .message_deduplication_id(&e.id)
            .send()
            .await
            .unwrap();
        envelopes.push(e);
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let poller = tokio::spawn(local_poller::run(
        consumer,
        sqs.clone(),
        PollerOptions {
            queue_url: queue_url.clone(),
            region: "us-east-1".into(),
            wait_secs: 1,
            batch_size: 10,
            function_timeout: Duration::from_secs(10),
        },
        async {
            let _ = stopped.await;
        },
    ));

    let done = |r: &Recorder| {
        let attempts = r.attempts.lock().unwrap();
        ["a1", "a2", "a3", "a4", "b1", "b3"]
            .iter()
            .all(|b| attempts.iter().any(|(x, ok)| x == b && *ok))
    };
    wait::until(
        "every good record processed",
        Duration::from_secs(60),
        || {
            let r = recorder.clone();
            async move { done(&r).then_some(()) }
        },
    )
    .await
    .unwrap();
    let _ = stop.send(());
    poller.await.unwrap();

    let attempts = recorder.attempts.lock().unwrap().clone();
    let group = |g: char| -> Vec<(String, bool)> {
        attempts
            .iter()
            .filter(|(b, _)| b.starts_with(g))
            .cloned()
            .collect()
    };
    let t = |b: &str, ok: bool| (b.to_string(), ok);
    assert_eq!(
        group('a'),
        vec![
            t("a1", true),
            t("a2", false),
            t("a2", true),
            t("a3", true),
            t("a4", true)
        ],
        "group a in order; a3 and a4 waited for a2's retry"
    );
    assert_eq!(
        group('b'),
        vec![t("b1", true), t("b2", false), t("b3", true)],
        "the poison b2 was dead-lettered once and b3 went on"
    );

    // The poison record is in the FIFO DLQ with its reason and its group.
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1, "one dead letter");
    let reason = dead[0]
        .message_attributes
        .as_ref()
        .and_then(|a| a.get("sluice-failure-reason"))
        .and_then(|v| v.string_value.clone());
    assert_eq!(reason.as_deref(), Some("custom_poison"));
    let group_id = dead[0]
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .cloned();
    assert_eq!(group_id.as_deref(), Some("b"));
    assert_eq!(
        Envelope::decode(dead[0].body.as_deref().unwrap_or_default())
            .unwrap()
            .id,
        envelopes[3].id
    );

    // Every envelope taken on is archived verbatim under its dated key.
    for e in &envelopes {
        let key = sluice_protocol::archive::key(&e.source, e.received_at_ms, &e.id);
        let object = s3
            .get_object()
            .bucket("fifo-archive")
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("{key} archived: {err:?}"));
        let bytes = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.as_ref(), e.encode().as_bytes(), "{key} verbatim");
    }
    drop(moto);
    let _ = std::fs::remove_file(log);
}
