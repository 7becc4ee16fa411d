//! End to end: bad requests get the right 4xx with a JSON error and a trace id (404, 405,
//! 413, 415, 400 malformed header or invalid JSON, 401) and are never queued; with
//! AWS unreachable the edge answers 503 (never 202) so the provider retries.

use sluice_e2e::stack::{read_log, unix_now, SourceSpec};
use sluice_e2e::wait::until;
use sluice_e2e::{Stack, StackOptions};
use sluice_protocol::Scheme;
use std::time::Duration;

async fn expect_error(resp: reqwest::Response, status: u16, code: &str) {
    let got = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Every answer, refusals included, carries a trace id for the provider's support ticket.
    let trace = resp
        .headers()
        .get("sluice-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "expected {status} {code}, got {got}: {text}");
    assert!(
        trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()),
        "{status} {code} without a sluice-trace-id: {trace:?}"
    );
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("error body is JSON");
    assert_eq!(v["error"]["code"], code, "{text}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_never_queued() {
    let mut options = StackOptions::for_test(
        "rejections",
        "http://127.0.0.1:9",
        &[
            ("standard", Scheme::StandardWebhooks),
            ("github", Scheme::Github),
        ],
    );
    // A source that takes JSON only, and well-formed.
    options.sources.push(SourceSpec {
        content_types: vec!["application/json".into()],
        require_json: true,
        ..SourceSpec::from(("strict", Scheme::Github))
    });
    // No consumer: whatever the edge queues stays on the queue where we can count it.
    options.poller = false;
    let mut stack = Stack::start(options).await.expect("stack starts");
    let body = br#"{"type":"ping"}"#;
    let std_src = stack.source("standard").clone();
    let gh_src = stack.source("github").clone();

    // Tampered body.
    let headers = std_src.sign("msg_1", body);
    let resp = stack
        .post("standard", &headers, br#"{"type":"pong"}"#)
        .await
        .unwrap();
    expect_error(resp, 401, "invalid_signature").await;
    let headers = gh_src.sign("d-1", body);
    let resp = stack
        .post("github", &headers, br#"{"type":"pong"}"#)
        .await
        .unwrap();
    expect_error(resp, 401, "invalid_signature").await;

    // Wrong secret.
    let mut wrong = std_src.clone();
    wrong.secret = sluice_e2e::stack::dev_secret(Scheme::StandardWebhooks);
    let resp = stack
        .post("standard", &wrong.sign("msg_2", body), body)
        .await
        .unwrap();
    expect_error(resp, 401, "invalid_signature").await;

    // Stale and future timestamps (tolerance is 5 minutes). The skew leaves a margin: the
    // edge reads its own clock a moment after the test signs.
    for skew in [-330, 330] {
        let headers = std_src.sign_at("msg_3", unix_now() + skew, body);
        let resp = stack.post("standard", &headers, body).await.unwrap();
        expect_error(resp, 401, "timestamp_out_of_tolerance").await;
    }

    // A content type the source does not take (checked before the signature), and a
    // signed body that is not JSON for a source that requires it (checked after).
    let strict = stack.source("strict").clone();
    let mut form = strict.sign("d-form", b"a=1");
    form.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/strict", stack.edge_url))
        .headers(
            form.iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .body("a=1")
        .send()
        .await
        .unwrap();
    expect_error(resp, 415, "unsupported_media_type").await;
    let not_json = br#"{"type":"ping""#;
    let resp = stack
        .post("strict", &strict.sign("d-broken", not_json), not_json)
        .await
        .unwrap();
    expect_error(resp, 400, "invalid_json").await;

    // Missing and malformed signature headers.
    let resp = stack.post("github", &[], body).await.unwrap();
    expect_error(resp, 401, "missing_signature").await;
    let bad = vec![("x-hub-signature-256".to_string(), "md5=abc".to_string())];
    let resp = stack.post("github", &bad, body).await.unwrap();
    expect_error(resp, 400, "malformed_signature").await;

    // Unknown source, wrong method, unknown path.
    let resp = stack
        .post("nope", &std_src.sign("msg_4", body), body)
        .await
        .unwrap();
    expect_error(resp, 404, "unknown_source").await;
    let resp = reqwest::get(format!("{}/hooks/standard", stack.edge_url))
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    expect_error(resp, 405, "method_not_allowed").await;
    let resp = reqwest::get(format!("{}/elsewhere", stack.edge_url))
        .await
        .unwrap();
    expect_error(resp, 404, "not_found").await;

    // Too large (the stack's sources accept the default 10 MiB).
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let resp = stack
        .post("standard", &std_src.sign("msg_5", &big), &big)
        .await
        .unwrap();
    expect_error(resp, 413, "payload_too_large").await;

    assert_eq!(
        stack.queue_count(&stack.queue_url).await.unwrap(),
        0,
        "nothing refused was queued"
    );

    // Control: a valid request is queued, so the count above could have been non-zero. It
    // comes with a W3C `traceparent`: its trace id is answered and carried in the envelope.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut traced = std_src.sign("msg_ok", body);
    traced.push((
        "traceparent".into(),
        format!("00-{trace_id}-00f067aa0ba902b7-01"),
    ));
    let resp = stack.post("standard", &traced, body).await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        202,
        "{}",
        read_log(&stack.log("edge"))
    );
    assert_eq!(
        resp.headers()
            .get("sluice-trace-id")
            .and_then(|v| v.to_str().ok()),
        Some(trace_id)
    );
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 1);

    // The queued message carries the envelope, without secrets or signatures.
    let msg = stack
        .receive(&stack.queue_url)
        .await
        .unwrap()
        .pop()
        .expect("one message");
    let envelope = sluice_protocol::Envelope::decode(msg.body().unwrap_or("")).unwrap();
    assert_eq!(envelope.body.to_bytes().unwrap(), body);
    assert_eq!(envelope.idempotency_key.as_deref(), Some("msg_ok"));
    assert_eq!(envelope.trace_id.as_deref(), Some(trace_id));
    let raw = msg.body().unwrap_or("");
    assert!(!raw.contains("webhook-signature") && !raw.contains(&std_src.secret));
    stack
        .sqs()
        .delete_message()
        .queue_url(&stack.queue_url)
        .receipt_handle(msg.receipt_handle().unwrap_or_default())
        .send()
        .await
        .unwrap();
    let attrs = msg.message_attributes.unwrap_or_default();
    assert_eq!(
        attrs
            .get("sluice-idempotency-key")
            .and_then(|a| a.string_value()),
        Some("msg_ok")
    );

    // A body too large for a queue message goes to S3 first; the queue gets a reference.
    let large: Vec<u8> = (0..300 * 1024)
        .map(|i| b"0123456789abcdef"[i % 16])
        .collect();
    let resp = stack
        .post("github", &gh_src.sign("d-large", &large), &large)
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        202,
        "{}",
        read_log(&stack.log("edge"))
    );
    let msg = stack
        .receive(&stack.queue_url)
        .await
        .unwrap()
        .pop()
        .expect("the claim-checked message is queued");
    let envelope = sluice_protocol::Envelope::decode(msg.body().unwrap_or("")).unwrap();
    let sluice_protocol::Body::S3(reference) = &envelope.body else {
        panic!("expected a claim-checked body, got {:?}", envelope.body);
    };
    assert_eq!(reference.size, large.len() as u64);
    assert!(
        reference.key.starts_with("payloads/github/"),
        "{}",
        reference.key
    );
    assert!(reference.key.ends_with(&envelope.id));
    let object = stack
        .s3()
        .await
        .get_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .send()
        .await
        .expect("the object exists before the reference was queued");
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(&stored[..], &large[..], "stored byte-identical");

    // Someone alters the stored object: the consumer refuses it and dead-letters it at once
    // with reason `integrity`, without delivering anything.
    stack
        .s3()
        .await
        .put_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .body(aws_sdk_s3::primitives::ByteStream::from(vec![
            b'x';
            large.len()
        ]))
        .send()
        .await
        .unwrap();
    stack.start_poller().unwrap();
    until(
        "the tampered event in the DLQ",
        Duration::from_secs(60),
        || async { (stack.queue_count(&stack.dlq_url).await.ok()? == 1).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    let dead = stack
        .receive(&stack.dlq_url)
        .await
        .unwrap()
        .pop()
        .expect("the dead letter");
    let attrs = dead.message_attributes.clone().unwrap_or_default();
    assert_eq!(
        attrs
            .get("sluice-failure-reason")
            .and_then(|a| a.string_value()),
        Some("integrity")
    );
    // Received twice: once by this test's inspection above, once by the consumer, which
    // dead-lettered it on its first attempt instead of retrying.
    assert_eq!(
        attrs.get("sluice-attempts").and_then(|a| a.string_value()),
        Some("2")
    );
    assert_eq!(
        dead.body(),
        msg.body(),
        "the dead letter is the original message"
    );
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 0);

    // AWS down: the edge must not answer 202.
    stack.kill_moto();
    let resp = stack
        .post("standard", &std_src.sign("msg_down", body), body)
        .await
        .unwrap();
    assert!(
        resp.headers().get("retry-after").is_some(),
        "503 carries Retry-After"
    );
    expect_error(resp, 503, "queue_unavailable").await;
    let edge_log = read_log(&stack.log("edge"));
    assert!(
        !edge_log.contains(&std_src.secret),
        "secret leaked into the edge log"
    );
}
