//! The real `bootstrap` binary, run by `cargo lambda watch` under a local Lambda Runtime
//! API, answers a real SQS event: the valid record is delivered (claimed in moto's DynamoDB),
//! the malformed one comes back in `batchItemFailures`, alone.

use sluice_e2e::moto::Moto;
use sluice_e2e::process::Managed;
use sluice_e2e::stack::create_table;
use sluice_e2e::wait::{free_port, until};
use sluice_e2e::{paths, Destination};
use sluice_protocol::{Body, Envelope, Scheme, SourceConfig, SourcesConfig, ENVELOPE_VERSION};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_answers_an_sqs_event_under_the_runtime_api() {
    let dir = std::env::temp_dir().join(format!("sluice-bootstrap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let moto = Moto::start(None, &dir.join("moto.log")).await.unwrap();
    create_table(
        &aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        "bootstrap-claims",
        "pk",
    )
    .await
    .unwrap();
    let dest = Destination::start(None).await.unwrap();
    let sources = SourcesConfig {
        sources: vec![SourceConfig::new(
            "github",
            Scheme::Github,
            &format!("{}/github", dest.url),
        )],
    };

    let port = free_port().unwrap();
    let root = paths::root();
    let mut cmd = Command::new(root.join(".venv/bin/cargo-lambda"));
    cmd.current_dir(&root)
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        // The invocation's timeout, which sets the deadline the runtime API hands the
        // function (the claim window the consumer checks before delivering).
        .args(["--timeout", "60"])
        .args(["--manifest-path", "lambda-worker/Cargo.toml"]);
    // An env file, not --env-var: cargo-lambda splits --env-var values on commas.
    let mut env_file = String::new();
    for (k, v) in [
        ("SLUICE_SOURCES", sources.to_json()),
        ("SLUICE_TABLE", "bootstrap-claims".to_string()),
        ("SLUICE_DELIVERY_TIMEOUT_MS", "2000".to_string()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
    ] {
        env_file.push_str(&format!("{k}='{v}'\n"));
    }
    std::fs::write(dir.join("lambda.env"), env_file).unwrap();
    cmd.arg("--env-file").arg(dir.join("lambda.env"));
    let watch = std::sync::Mutex::new(
        Managed::spawn("cargo-lambda", cmd, &dir.join("lambda.log")).unwrap(),
    );

    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        id: "evt_bootstrap_1".into(),
        source: "github".into(),
        idempotency_key: Some("gh-boot-1".into()),
        received_at_ms: 1,
        content_type: Some("application/json".into()),
        trace_id: None,
        headers: Default::default(),
        body: Body::from_bytes(br#"{"zen":"bootstrap"}"#),
    };
    let event = serde_json::json!({"Records": [
        {"messageId": "good", "receiptHandle": "r1", "body": envelope.encode(),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"},
        {"messageId": "bad", "receiptHandle": "r2", "body": "{\"v\": 99}",
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}
    ]});
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/bootstrap/invocations");
    let client = reqwest::Client::new();
    // The first invocation may wait for cargo to build the function; allow for it.
    let response: serde_json::Value = until(
        "the bootstrap to answer",
        Duration::from_secs(600),
        || async {
            assert!(
                watch.lock().map(|mut w| w.is_running()).unwrap_or(false),
                "cargo lambda watch exited:\n{}",
                sluice_e2e::stack::read_log(&dir.join("lambda.log"))
            );
            let resp = client
                .post(&url)
                .body(event.to_string())
                .timeout(Duration::from_secs(600))
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let answer: serde_json::Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
            // An invocation queued while cargo was still building can reach the function
            // with its deadline (nearly) spent: the consumer then releases the good record
            // rather than deliver past its claim. Invoke again, as SQS would redeliver.
            let good_failed = answer["batchItemFailures"]
                .as_array()
                .is_some_and(|f| f.iter().any(|i| i["itemIdentifier"] == "good"));
            (!good_failed).then_some(answer)
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            sluice_e2e::stack::read_log(&dir.join("lambda.log"))
        )
    });

    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "bad"}]}),
        "only the unknown-version envelope fails"
    );
    let delivered = dest.successful("/github");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].body, br#"{"zen":"bootstrap"}"#);
    assert_eq!(
        delivered[0].headers.get("webhook-id").map(String::as_str),
        Some("github#gh-boot-1")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
