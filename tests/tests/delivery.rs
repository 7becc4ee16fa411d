//! End to end, through real workerd, moto and HTTP: accepted webhooks are delivered exactly
//! once, byte-identical, signed for the destination; provider retries are deduplicated;
//! transient destination failures are retried; poison ends in the dead-letter queue.

use sluice_e2e::stack::read_log;
use sluice_e2e::wait::until;
use sluice_e2e::{Behaviour, Destination, Stack, StackOptions};
use sluice_protocol::signature::SignedRequest;
use sluice_protocol::{HeaderMap, Scheme};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

async fn accepted(stack: &Stack, source: &str, id: &str, body: &[u8]) -> String {
    let event_id = stack.post_accepted(source, id, body, &[]).await;
    assert!(event_id.starts_with("evt_"), "{event_id}");
    event_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_delivers_exactly_once() {
    let dest = Destination::start(None).await.unwrap();
    let options = StackOptions::for_test(
        "delivery",
        &dest.url,
        &[
            ("standard", Scheme::StandardWebhooks),
            ("github", Scheme::Github),
            ("retried", Scheme::StandardWebhooks),
            ("flaky", Scheme::Github),
            ("poison", Scheme::StandardWebhooks),
            ("big", Scheme::Github),
            ("permanent", Scheme::Github),
            ("ctl", Scheme::StandardWebhooks),
            ("nonchar", Scheme::StandardWebhooks),
            ("bytes", Scheme::StandardWebhooks),
            ("crlf", Scheme::StandardWebhooks),
        ],
    );
    dest.set(
        "/flaky",
        Behaviour::FailFirst {
            times: 2,
            status: 503,
        },
    );
    dest.set("/poison", Behaviour::AlwaysFail { status: 500 });
    dest.set("/permanent", Behaviour::AlwaysFail { status: 400 });
    let mut stack = Stack::start(options).await.expect("stack starts");
    let consumer_log = stack.log("consumer");
    let max_receive = stack.settings.max_receive_count as usize;

    // Bodies that must arrive byte-identical: whitespace, unicode, escapes.
    let std_body =
        "{\"type\":\"invoice.paid\", \"amount\": 4200,\n \"note\":\"caf\u{e9} \\\"q\\\"\"}"
            .as_bytes()
            .to_vec();
    let gh_body =
        br#"{"action":"opened","number":7,"pull_request":{"title":"  spaces  "}}"#.to_vec();
    accepted(&stack, "standard", "msg_std_1", &std_body).await;
    accepted(&stack, "github", "gh-delivery-1", &gh_body).await;

    // A provider retrying the same event five times: five 202s, one delivery.
    let retry_body = br#"{"type":"retried","n":1}"#.to_vec();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(accepted(&stack, "retried", "msg_retry_1", &retry_body).await);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        5,
        "each accepted request gets its own Sluice event id"
    );

    accepted(&stack, "flaky", "flaky-1", br#"{"flaky":true}"#).await;

    // Bodies SQS would refuse as raw message text (control characters, U+FFFE/U+FFFF) and
    // binary travel inside the envelope's JSON line instead of after it, escaped or base64;
    // CR LF travels raw after it. All must arrive byte-identical (the local SQS refuses
    // what SQS refuses: infra/moto_server.py).
    let odd_bodies: [(&str, Vec<u8>); 4] = [
        ("ctl", b"line one\x01\x1b[0m\ttab\r\n".to_vec()),
        ("nonchar", "x\u{FFFF}y\u{FFFE}".as_bytes().to_vec()),
        ("bytes", vec![0xff, 0x00, 0xfe, b'\n']),
        ("crlf", b"a=1\r\nb=2\r\n\r\n".to_vec()),
    ];
    for (source, body) in &odd_bodies {
        accepted(&stack, source, &format!("{source}-1"), body).await;
    }

    // 5 MiB of binary through the claim check (S3), delivered byte-identical.
    let big: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    accepted(&stack, "big", "big-1", &big).await;
    accepted(&stack, "poison", "msg_poison_1", br#"{"poison":true}"#).await;
    accepted(
        &stack,
        "permanent",
        "perm-1",
        br#"{"rejected":"by the destination"}"#,
    )
    .await;

    // Valid events: delivered once each, body byte-identical, signed for the destination.
    for (path, body, key) in [
        ("/standard", &std_body, "standard#msg_std_1"),
        ("/github", &gh_body, "github#gh-delivery-1"),
    ] {
        let got = until(&format!("delivery to {path}"), DEADLINE, || async {
            dest.successful(path).into_iter().next()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&consumer_log)));
        assert_eq!(&got.body, body, "{path}: body must be byte-identical");
        assert_eq!(got.headers.get("webhook-id").map(String::as_str), Some(key));
        assert!(
            !got.headers.contains_key("x-hub-signature-256"),
            "provider signature must not be forwarded"
        );
        let headers: HeaderMap = got.headers.iter().collect();
        let secret = Scheme::StandardWebhooks
            .parse_secret(&stack.destination_secret)
            .unwrap();
        let now = sluice_e2e::stack::unix_now();
        Scheme::StandardWebhooks
            .verify(
                &SignedRequest {
                    headers: &headers,
                    body: &got.body,
                    now_secs: now,
                    tolerance_secs: 300,
                },
                &[secret],
                &Default::default(),
            )
            .unwrap_or_else(|e| panic!("{path}: delivery signature does not verify: {e}"));
    }

    let got = until("the 5 MiB delivery", DEADLINE, || async {
        dest.successful("/big").into_iter().next()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&consumer_log)));
    assert!(
        got.body == big,
        "5 MiB body must be byte-identical ({} bytes arrived)",
        got.body.len()
    );

    for (source, body) in &odd_bodies {
        let path = format!("/{source}");
        let got = until(&format!("delivery to {path}"), DEADLINE, || async {
            dest.successful(&path).into_iter().next()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&consumer_log)));
        assert_eq!(&got.body, body, "{path}: body must be byte-identical");
    }

    // Flaky destination: two 503s, then delivered, once.
    until("flaky delivery to succeed", DEADLINE, || async {
        (!dest.successful("/flaky").is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&consumer_log)));
    assert_eq!(
        dest.attempts("/flaky").len(),
        3,
        "two failures then one success"
    );

    // Poison (transient 500s): every attempt fails and backs off; after maxReceiveCount
    // receives the redrive policy moves it to the DLQ. Permanent (400): dead-lettered at once,
    // with its reason. Dead letters are read (and removed) from the DLQ as they arrive.
    let mut reasons: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while reasons.len() < 2 && std::time::Instant::now() < deadline {
        let out = stack
            .sqs()
            .receive_message()
            .queue_url(&stack.dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let attrs = m.message_attributes.clone().unwrap_or_default();
            let get = |k: &str| {
                attrs
                    .get(k)
                    .and_then(|a| a.string_value())
                    .map(str::to_string)
            };
            reasons.push((
                get("sluice-source"),
                get("sluice-failure-reason"),
                get("sluice-last-status"),
            ));
            stack
                .sqs()
                .delete_message()
                .queue_url(&stack.dlq_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }
    assert!(
        reasons.contains(&(
            Some("permanent".into()),
            Some("delivery_status".into()),
            Some("400".into())
        )),
        "the permanent failure carries its reason: {reasons:?}\n{}",
        read_log(&consumer_log)
    );
    assert!(
        reasons.iter().any(|r| r.0.as_deref() == Some("poison")),
        "the poison message reached the DLQ: {reasons:?}"
    );
    assert_eq!(
        reasons.len(),
        2,
        "nothing else was dead-lettered: {reasons:?}"
    );
    assert_eq!(
        dest.attempts("/poison").len(),
        max_receive,
        "one attempt per receive"
    );
    assert!(dest.successful("/poison").is_empty());
    assert_eq!(
        dest.attempts("/permanent").len(),
        1,
        "a permanent failure is not retried"
    );

    // Everything settled: the main queue drains, and nothing was delivered twice.
    until("main queue to drain", DEADLINE, || async {
        (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        dest.successful("/retried").len(),
        1,
        "five provider retries, one delivery"
    );
    assert_eq!(dest.successful("/standard").len(), 1);
    assert_eq!(dest.successful("/github").len(), 1);
    assert_eq!(dest.successful("/flaky").len(), 1);
    assert_eq!(dest.successful("/big").len(), 1);

    // The consumer logged outcomes without leaking any secret.
    let log = read_log(&consumer_log);
    assert!(
        log.contains("\"outcome\":\"duplicate\""),
        "duplicates are logged as such"
    );
    assert!(log.contains("\"outcome\":\"dead_lettered\""));
    assert!(
        log.contains("\"Namespace\":\"Sluice\""),
        "EMF metric lines are emitted"
    );
    // The flaky event's two failures backed off, and the backoff ceiling grew.
    let ceilings: Vec<(u64, u64)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["event_key"] == "flaky#flaky-1" && v["fields"]["outcome"] == "retried"
        })
        .filter_map(|v| {
            Some((
                v["fields"]["attempt"].as_u64()?,
                v["fields"]["backoff_ceiling_secs"].as_u64()?,
            ))
        })
        .collect();
    assert_eq!(
        ceilings.len(),
        2,
        "two retried attempts logged: {ceilings:?}"
    );
    assert!(
        ceilings[0].0 < ceilings[1].0 && ceilings[0].1 < ceilings[1].1,
        "the backoff ceiling grows from attempt to attempt: {ceilings:?}"
    );
    for s in &stack.sources {
        assert!(
            !log.contains(&s.secret),
            "secret of {} leaked into the consumer log",
            s.name
        );
    }
    assert!(!log.contains(&stack.destination_secret));
    assert!(stack.processes_running(), "no process died during the run");
}
