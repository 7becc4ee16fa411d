//! The `sluice` operations CLI, run as the real binary (`target/debug/sluice`, built by
//! `cargo build --workspace --bins`) against a real local stack (moto, `wrangler dev`, the
//! consumer, an HTTP destination):
//! - poisoned events reach the DLQ (a 400 dead-lettered at once with its reason; a 500
//!   moved by the redrive policy after maxReceiveCount); `status` and `dlq list/show`
//!   report them; `dlq redrive --dry-run` moves nothing; after the destination is fixed
//!   `dlq redrive` delivers each exactly once and empties the DLQ;
//! - `replay` re-enqueues the consumer's own archive for a time window: delivered events
//!   come back as duplicates and are not delivered again, an event whose idempotency record
//!   is gone (expired) is delivered again exactly once, invalid archive objects are skipped;
//! - `send --id` twice (the README's retry example) is one delivery and one duplicate;
//! - errors have their documented exit codes.

use sluice_e2e::cli::{self, run, Run};
use sluice_e2e::stack::read_log;
use sluice_e2e::wait::until;
use sluice_e2e::{Behaviour, Destination, Stack, StackOptions};
use sluice_protocol::Scheme;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `sluice --stack-file <the stack's stack.json> args…`.
async fn sluice(stack: &Stack, args: &[&str]) -> Run {
    cli::run_with_stack_file(&stack.dir.join("stack.json"), args).await
}

/// `sluice send <source> --id <id> --file <body>`: the event id the edge answered.
async fn send(stack: &Stack, source: &str, id: &str, body: &str) -> String {
    let file = stack.dir.join(format!("body-{id}.json"));
    std::fs::write(&file, body).unwrap();
    let out = sluice(
        stack,
        &[
            "send",
            source,
            "--id",
            id,
            "--file",
            file.to_str().unwrap(),
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(out["status"], 202, "{out}");
    let event_id = out["response"]["id"].as_str().expect("202 has an id");
    assert!(event_id.starts_with("evt_"), "{out}");
    event_id.to_string()
}

async fn wait_count(stack: &Stack, url: &str, want: u64, what: &str, deadline: Duration) {
    until(what, deadline, || async {
        (stack.queue_count(url).await.ok()? == want).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&stack.log("consumer"))));
}

/// Consumer log lines with `outcome` for `event_id`.
fn outcomes(stack: &Stack, event_id: &str, outcome: &str) -> usize {
    read_log(&stack.log("consumer"))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["event_id"] == event_id && v["fields"]["outcome"] == outcome)
        .count()
}

/// Successful deliveries to `path` of the event with dedup key `key` (`webhook-id`).
fn delivered(dest: &Destination, path: &str, key: &str) -> usize {
    dest.successful(path)
        .iter()
        .filter(|d| d.headers.get("webhook-id").map(String::as_str) == Some(key))
        .count()
}

/// Creates a CloudWatch alarm on `queue`'s visible messages in the stack's moto (over the
/// JSON protocol, which moto serves).
async fn put_alarm(stack: &Stack, name: &str, queue: &str) {
    let body = serde_json::json!({
        "AlarmName": name,
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "QueueName", "Value": queue}],
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/", stack.aws_endpoint))
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "x-amz-target",
            "GraniteServiceVersion20100801.PutMetricAlarm",
        )
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20000101/us-east-1/monitoring/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("moto reachable");
    assert!(
        resp.status().is_success(),
        "PutMetricAlarm: {}",
        resp.status()
    );
}

fn letter<'a>(list: &'a serde_json::Value, event_id: &str) -> &'a serde_json::Value {
    list["dead_letters"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["event_id"] == event_id))
        .unwrap_or_else(|| panic!("{event_id} not listed: {list:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_redriven_exactly_once() {
    let dest = Destination::start(None).await.unwrap();
    dest.set("/rejected", Behaviour::AlwaysFail { status: 400 });
    dest.set("/exhausted", Behaviour::AlwaysFail { status: 500 });
    let options = StackOptions::for_test(
        "ops-dlq",
        &dest.url,
        &[
            ("rejected", Scheme::StandardWebhooks),
            ("exhausted", Scheme::StandardWebhooks),
        ],
    );
    let stack = Stack::start(options).await.expect("stack starts");
    let max_receive = stack.settings.max_receive_count;

    let rejected_body = r#"{"type":"order.paid","n":1}"#;
    let rejected = send(&stack, "rejected", "msg_rejected_1", rejected_body).await;
    let exhausted = send(&stack, "exhausted", "msg_exhausted_1", r#"{"n":2}"#).await;

    // 400: dead-lettered at once with its reason. 500: retried, then moved by the redrive
    // policy after maxReceiveCount receives.
    wait_count(
        &stack,
        &stack.dlq_url,
        2,
        "both events in the DLQ",
        Duration::from_secs(120),
    )
    .await;
    wait_count(&stack, &stack.queue_url, 0, "main queue empty", DEADLINE).await;
    assert_eq!(dest.attempts("/rejected").len(), 1);
    assert_eq!(dest.attempts("/exhausted").len() as u64, max_receive);

    // An alarm on the DLQ (moto stores alarms but never evaluates them) and one on a queue
    // that is not ours.
    put_alarm(&stack, "ops-dlq-depth", "sluice-dlq").await;
    put_alarm(&stack, "someone-elses", "another-queue").await;
    let status = sluice(&stack, &["status", "--json"]).await.expect(0).json();
    assert_eq!(status["local"], true, "{status:#}");
    assert_eq!(status["dlq"]["depth"], 2, "{status:#}");
    assert_eq!(status["dlq"]["visible"], 2, "{status:#}");
    assert_eq!(status["queue"]["depth"], 0, "{status:#}");
    assert_eq!(status["queue"]["oldest_age_basis"], "empty");
    assert!(
        status["dlq"]["oldest_age_basis"]
            .as_str()
            .is_some_and(|b| b.contains("local stack has no CloudWatch metrics")),
        "moto publishes no metrics: labelled, not invented: {status:#}"
    );
    let alarms = status["alarms"]["items"].as_array().expect("alarms listed");
    assert_eq!(alarms.len(), 1, "only the alarm on our queues: {status:#}");
    assert_eq!(alarms[0]["name"], "ops-dlq-depth");
    assert_eq!(alarms[0]["queue"], "sluice-dlq");
    assert!(
        ["OK", "ALARM", "INSUFFICIENT_DATA"].contains(&alarms[0]["state"].as_str().unwrap_or("")),
        "{status:#}"
    );
    let human = sluice(&stack, &["status"]).await.expect(0).stdout;
    assert!(
        human.contains("sluice-dlq (DLQ)") && human.contains("VISIBLE"),
        "{human}"
    );

    // dlq list: reasons, details, attempts; nothing moves and everything is visible again.
    let list = sluice(&stack, &["dlq", "list", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(list["count"], 2, "{list:#}");
    let r = letter(&list, &rejected);
    assert_eq!(r["source"], "rejected");
    assert_eq!(r["reason"], "delivery_status", "{r:#}");
    assert_eq!(r["last_status"], 400);
    assert_eq!(r["attempts"], 1);
    assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "{r:#}");
    let x = letter(&list, &exhausted);
    assert_eq!(x["source"], "exhausted");
    assert_eq!(x["reason"], "max_receive_count", "{x:#}");
    assert_eq!(x["attempts"], max_receive, "{x:#}");
    let status = sluice(&stack, &["status", "--json"]).await.expect(0).json();
    assert_eq!(
        status["dlq"]["visible"], 2,
        "listing made every message visible again: {status:#}"
    );
    let table = sluice(&stack, &["dlq", "list"]).await.expect(0).stdout;
    assert!(
        table.contains(&rejected) && table.contains("delivery_status"),
        "{table}"
    );

    // dlq show: metadata by event id, the body only on request, no secret anywhere.
    let shown = sluice(&stack, &["dlq", "show", &rejected, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(shown["envelope"]["id"], rejected.as_str(), "{shown:#}");
    assert_eq!(shown["envelope"]["dedup_key"], "rejected#msg_rejected_1");
    assert!(
        shown.get("body").is_none(),
        "no body unless asked: {shown:#}"
    );
    let with_body = sluice(&stack, &["dlq", "show", &rejected, "--body", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(with_body["body"]["data"], rejected_body, "{with_body:#}");
    let human = sluice(&stack, &["dlq", "show", &rejected]).await.expect(0);
    for s in &stack.sources {
        assert!(!human.stdout.contains(&s.secret), "secret printed");
    }
    assert!(
        !human.stdout.contains(rejected_body),
        "body printed unasked"
    );
    sluice(&stack, &["dlq", "show", "evt_does_not_exist"])
        .await
        .expect(3);

    // Dry run: reports both, moves nothing.
    let dry = sluice(&stack, &["dlq", "redrive", "--dry-run", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(dry["would_move"], 2, "{dry:#}");
    assert_eq!(stack.queue_count(&stack.dlq_url).await.unwrap(), 2);
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 0);
    assert_eq!(
        dest.attempts("/rejected").len(),
        1,
        "dry run delivered nothing"
    );

    // Fix the destination, then redrive: one with --max 1, then the rest.
    dest.set("/rejected", Behaviour::Succeed);
    dest.set("/exhausted", Behaviour::Succeed);
    let first = sluice(&stack, &["dlq", "redrive", "--max", "1", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(first["moved"], 1, "{first:#}");
    assert_eq!(first["failed"], 0);
    let rest = sluice(&stack, &["dlq", "redrive"]).await.expect(0);
    assert!(
        rest.stdout.contains("redrove 1 of 1 dead letter(s)"),
        "{rest:#?}"
    );

    until("both redriven events delivered", DEADLINE, || async {
        (delivered(&dest, "/rejected", "rejected#msg_rejected_1") == 1
            && delivered(&dest, "/exhausted", "exhausted#msg_exhausted_1") == 1)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    wait_count(&stack, &stack.queue_url, 0, "main queue empty", DEADLINE).await;
    assert_eq!(
        stack.queue_count(&stack.dlq_url).await.unwrap(),
        0,
        "DLQ empty"
    );
    let got = dest.successful("/rejected");
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert_eq!(got[0].body, rejected_body.as_bytes(), "byte-identical body");
    assert_eq!(
        dest.successful("/exhausted").len(),
        1,
        "delivered exactly once"
    );

    // Nothing left: a second redrive moves nothing and succeeds.
    let again = sluice(&stack, &["dlq", "redrive", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(again["moved"], 0, "{again:#}");
    let status = sluice(&stack, &["status", "--json"]).await.expect(0).json();
    assert_eq!(status["dlq"]["depth"], 0, "{status:#}");

    // An unknown queue is "not found" (3); moving with StartMessageMoveTask needs AWS (2).
    let unknown = format!("{}-missing", stack.queue_url);
    let missing = sluice(&stack, &["status", "--queue-url", &unknown])
        .await
        .expect(3);
    assert!(missing.stderr.contains("does not exist"), "{missing:#?}");
    sluice(&stack, &["dlq", "redrive", "--move-task"])
        .await
        .expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_redelivers_only_events_whose_idempotency_record_is_gone() {
    let dest = Destination::start(None).await.unwrap();
    let options = StackOptions::for_test(
        "ops-replay",
        &dest.url,
        &[
            ("orders", Scheme::StandardWebhooks),
            ("refunds", Scheme::StandardWebhooks),
        ],
    );
    let stack = Stack::start(options).await.expect("stack starts");
    let started_ms = sluice_e2e::stack::unix_now() as u64 * 1000;

    let events = [
        ("orders", "msg_order_1", r#"{"order":1}"#),
        ("orders", "msg_order_2", r#"{"order":2}"#),
        ("refunds", "msg_refund_1", r#"{"refund":1}"#),
    ];
    let mut ids = Vec::new();
    for (source, id, body) in events {
        ids.push(send(&stack, source, id, body).await);
    }
    until("three deliveries", DEADLINE, || async {
        (dest.successful("/orders").len() == 2 && dest.successful("/refunds").len() == 1)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    wait_count(&stack, &stack.queue_url, 0, "main queue empty", DEADLINE).await;

    // An absolute window from the start of the hour (UTC) the test began in, to now.
    let hour = sluice_protocol::archive::hour_prefix("x", started_ms);
    let parts: Vec<&str> = hour.trim_end_matches('/').split('/').collect();
    let from = format!("{}-{}-{}T{}:00:00Z", parts[2], parts[3], parts[4], parts[5]);

    // A foreign object in the window is skipped and reported, never sent.
    let bogus_key = sluice_protocol::archive::key("orders", started_ms, "evt_bogus");
    stack
        .s3()
        .await
        .put_object()
        .bucket(&stack.bucket)
        .key(&bogus_key)
        .body(b"not an envelope".to_vec().into())
        .send()
        .await
        .unwrap();

    // Dry runs count; an empty window finds nothing.
    let dry = sluice(
        &stack,
        &[
            "replay",
            "--source",
            "orders",
            "--source",
            "refunds",
            "--from",
            &from,
            "--dry-run",
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(dry["would_replay"], 4, "3 archived + 1 foreign: {dry:#}");
    assert_eq!(dry["per_source"]["refunds"], 1, "{dry:#}");
    let none = sluice(
        &stack,
        &[
            "replay",
            "--source",
            "all",
            "--from",
            "now",
            "--dry-run",
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(none["would_replay"], 0, "{none:#}");
    assert_eq!(stack.queue_count(&stack.queue_url).await.unwrap(), 0);

    // Replay everything: all three come back as duplicates; nothing is delivered again.
    let replay = sluice(
        &stack,
        &["replay", "--source", "all", "--from", "-1h", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(replay["replayed"], 3, "{replay:#}");
    assert_eq!(replay["failed"], serde_json::json!([]), "{replay:#}");
    let invalid = replay["invalid"].as_array().expect("invalid list");
    assert_eq!(invalid.len(), 1, "{replay:#}");
    assert_eq!(invalid[0]["key"], bogus_key.as_str());
    until("three duplicates", DEADLINE, || async {
        ids.iter()
            .all(|id| outcomes(&stack, id, "duplicate") == 1)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    wait_count(&stack, &stack.queue_url, 0, "main queue empty", DEADLINE).await;
    assert_eq!(dest.successful("/orders").len(), 2, "no redelivery");
    assert_eq!(dest.successful("/refunds").len(), 1, "no redelivery");

    // The idempotency record of one event expires (deleted, as TTL would): replaying the
    // window delivers that one again, once; the others stay duplicates.
    stack
        .dynamodb()
        .delete_item()
        .table_name(&stack.table)
        .key(
            &stack.settings.table_key,
            aws_sdk_dynamodb::types::AttributeValue::S("orders#msg_order_2".into()),
        )
        .send()
        .await
        .unwrap();
    // A misspelt source is "not found" (exit 3), not an empty replay.
    let typo = sluice(&stack, &["replay", "--source", "ordres", "--from", &from])
        .await
        .expect(3);
    assert!(
        typo.stderr.contains("`ordres`") && typo.stderr.contains("orders"),
        "{typo:#?}"
    );
    let human = sluice(&stack, &["replay", "--source", "orders", "--from", &from])
        .await
        .expect(0);
    assert!(
        human.stdout.contains("replayed 2 of 3") && human.stderr.contains(&bogus_key),
        "{human:#?}"
    );
    until("the expired event delivered again", DEADLINE, || async {
        (delivered(&dest, "/orders", "orders#msg_order_2") == 2
            && outcomes(&stack, &ids[0], "duplicate") == 2)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
    wait_count(&stack, &stack.queue_url, 0, "main queue empty", DEADLINE).await;
    assert_eq!(
        delivered(&dest, "/orders", "orders#msg_order_2"),
        2,
        "the expired event: original + one replay"
    );
    assert_eq!(delivered(&dest, "/orders", "orders#msg_order_1"), 1);
    assert_eq!(dest.successful("/refunds").len(), 1);
    assert_eq!(outcomes(&stack, &ids[1], "delivered"), 2);
}

/// The README's retry example: `sluice send stripe --id evt_1` twice, with the CLI's own body
/// (no `--file`), the second time in a later second as a provider's retry would be. Both are
/// accepted; the second is a duplicate: delivered once, nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_twice_with_the_same_id_is_delivered_once() {
    let dest = Destination::start(None).await.unwrap();
    let options = StackOptions::for_test("ops-resend", &dest.url, &[("stripe", Scheme::Stripe)]);
    let stack = Stack::start(options).await.expect("stack starts");
    let unix_secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    };
    let send_default = || async {
        let out = sluice(
            &stack,
            &["send", "stripe", "--id", "evt_resend_1", "--json"],
        )
        .await
        .expect(0)
        .json();
        assert_eq!(out["status"], 202, "{out}");
        out["response"]["id"]
            .as_str()
            .expect("202 has an id")
            .to_string()
    };

    let first = send_default().await;
    let sent = unix_secs();
    until("the clock's next second", DEADLINE, || async {
        (unix_secs() > sent).then_some(())
    })
    .await
    .unwrap();
    let second = send_default().await;
    assert_ne!(first, second, "each accepted request is its own event");

    let both = |outcome| outcomes(&stack, &first, outcome) + outcomes(&stack, &second, outcome);
    // Ends early if either is dead-lettered (a different body under the same id is
    // `validation`), so that case fails with its reason rather than a timeout.
    until("a delivery and a duplicate", DEADLINE, || async {
        (both("dead_lettered") > 0 || (both("delivered") == 1 && both("duplicate") == 1))
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&stack.log("consumer"))));
    assert_eq!(
        (both("delivered"), both("duplicate"), both("dead_lettered")),
        (1, 1, 0),
        "consumer log:\n{}",
        read_log(&stack.log("consumer"))
    );
    wait_count(&stack, &stack.queue_url, 0, "main queue empty", DEADLINE).await;
    assert_eq!(
        stack.queue_count(&stack.dlq_url).await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    assert_eq!(delivered(&dest, "/stripe", "stripe#evt_resend_1"), 1);
}

#[tokio::test]
async fn errors_have_documented_exit_codes() {
    let empty = std::env::temp_dir().join(format!("sluice-ops-cli-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();

    // No stack file, no flags.
    let none = run(&["status"], &empty, &[]).await.expect(2);
    assert!(none.stderr.contains("no target"), "{none:#?}");
    // A named stack file that does not exist.
    let missing = run(&["--stack-file", "nope.json", "dlq", "list"], &empty, &[])
        .await
        .expect(2);
    assert!(
        missing.stderr.contains("cannot read stack file"),
        "{missing:#?}"
    );
    // Bad arguments.
    let bad_time = run(
        &[
            "--stack-file",
            "x",
            "replay",
            "--source",
            "s",
            "--from",
            "yesterday",
        ],
        &empty,
        &[],
    )
    .await
    .expect(2);
    assert!(bad_time.stderr.contains("RFC 3339"), "{bad_time:#?}");
    run(&["dlq", "frobnicate"], &empty, &[]).await.expect(2);
    // SQS's move rate is 1-500 per second: anything else is a usage error, before AWS.
    let rate = run(
        &["dlq", "redrive", "--move-task", "--max-per-second", "0"],
        &empty,
        &[],
    )
    .await
    .expect(2);
    assert!(rate.stderr.contains("1..=500"), "{rate:#?}");
    // AWS without credentials: a clear message before any request is made.
    let home = empty.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let no_creds = run(
        &[
            "status",
            "--queue-url",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-events",
        ],
        &empty,
        &[
            ("HOME", home.to_str().unwrap()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ],
    )
    .await
    .expect(2);
    assert!(
        no_creds.stderr.contains("no usable AWS credentials"),
        "{no_creds:#?}"
    );
    // The exit codes are documented in --help.
    let help = run(&["--help"], &empty, &[]).await.expect(0);
    assert!(
        help.stdout.contains("Exit codes") && help.stdout.contains("3  not found"),
        "{}",
        help.stdout
    );
    let _ = std::fs::remove_dir_all(&empty);
}
