//! The consumer is killed (SIGKILL) after claiming an event and while delivering it. The
//! message reappears after the visibility timeout, the stale claim expires with the
//! invocation deadline, a new consumer takes it over, and the event is delivered once.

use sluice_e2e::stack::read_log;
use sluice_e2e::wait::until;
use sluice_e2e::{Behaviour, Destination, Stack, StackOptions};
use sluice_protocol::Scheme;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_mid_delivery_still_delivers_once() {
    let dest = Destination::start(None).await.unwrap();
    dest.set("/crash", Behaviour::HangFirst);
    let options =
        StackOptions::for_test("crash", &dest.url, &[("crash", Scheme::StandardWebhooks)]);
    let mut stack = Stack::start(options).await.expect("stack starts");
    let body = br#"{"type":"crash.test"}"#;
    let headers = stack.source("crash").sign("msg_crash_1", body);
    let resp = stack.post("crash", &headers, body).await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);

    // The consumer claimed the event and is waiting on the destination: kill it there.
    until(
        "the first delivery attempt",
        Duration::from_secs(30),
        || async { (dest.attempts("/crash").len() == 1).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    stack.kill_poller();
    // The claim is still in progress in DynamoDB.
    let item = stack
        .dynamodb()
        .get_item()
        .table_name(&stack.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("crash#msg_crash_1".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the claim exists");
    assert_eq!(
        item.get("status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("INPROGRESS")
    );

    // A new consumer: after the visibility timeout and the claim's expiry it delivers once.
    stack.start_poller().unwrap();
    until("the redelivery", Duration::from_secs(60), || async {
        dest.successful("/crash").into_iter().next()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    until("the queue to drain", Duration::from_secs(30), || async {
        (stack.queue_count(&stack.queue_url).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(dest.successful("/crash").len(), 1, "delivered exactly once");
    assert_eq!(
        dest.attempts("/crash").len(),
        2,
        "one attempt cut short, one delivered"
    );
}
