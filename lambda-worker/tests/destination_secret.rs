//! The destination signing secret read from Secrets Manager (moto) at start-up: the real
//! `sluice-local-poller` binary, configured only with the secret's ARN, delivers events
//! signed with that secret; a missing or malformed secret stops it before it takes any
//! record, with an error that names the ARN and never the value.

use sluice_e2e::moto::Moto;
use sluice_e2e::process::Managed;
use sluice_e2e::stack::create_table;
use sluice_e2e::{paths, wait, Destination};
use sluice_protocol::signature::SignedRequest;
use sluice_protocol::{Body, Envelope, HeaderMap, Scheme, ENVELOPE_VERSION};
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn poller(moto: &Moto, queue_url: &str, destination: &str, arn: &str) -> Command {
    let sources = format!(
        r#"{{"sources":[{{"name":"orders","scheme":"standard-webhooks","destination":"{destination}"}}]}}"#
    );
    let mut cmd = Command::new(paths::binary("sluice-local-poller"));
    cmd.args(["--wait-secs", "1"])
        .env("SLUICE_QUEUE_URL", queue_url)
        .env("SLUICE_SOURCES", sources)
        .env("SLUICE_TABLE", "secrets")
        .env("SLUICE_DESTINATION_SECRET_ARN", arn)
        .env_remove("SLUICE_DESTINATION_SECRET")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "info");
    cmd
}

fn log_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sluice-secret-{name}-{}.log", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_with_the_secret_from_secrets_manager() {
    let moto_log = log_path("moto");
    let moto = Moto::start(None, &moto_log).await.unwrap();
    let sdk = moto.sdk_config().await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "secrets", "pk")
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name("secret-events")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("sluice/destination")
        .secret_string(SECRET)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let dest = Destination::start(None).await.unwrap();
    let consumer_log = log_path("consumer");
    let _consumer = Managed::spawn(
        "poller",
        poller(&moto, &queue_url, &format!("{}/orders", dest.url), &arn),
        &consumer_log,
    )
    .unwrap();

    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        id: "evt_secret_1".into(),
        source: "orders".into(),
        idempotency_key: Some("order-1".into()),
        received_at_ms: 1_795_435_200_000,
        content_type: Some("application/json".into()),
        trace_id: None,
        headers: Default::default(),
        body: Body::from_bytes(br#"{"order":1}"#),
    };
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(envelope.encode())
        .send()
        .await
        .unwrap();
    let got = wait::until("the signed delivery", Duration::from_secs(30), || async {
        dest.successful("/orders").into_iter().next()
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nconsumer log:\n{}",
            std::fs::read_to_string(&consumer_log).unwrap_or_default()
        )
    });

    let headers: HeaderMap = got.headers.iter().collect();
    let verify = |secret: &str| {
        Scheme::StandardWebhooks.verify(
            &SignedRequest {
                headers: &headers,
                body: &got.body,
                now_secs: sluice_e2e::stack::unix_now(),
                tolerance_secs: 300,
            },
            &[Scheme::StandardWebhooks.parse_secret(secret).unwrap()],
            &Default::default(),
        )
    };
    verify(SECRET).expect("signed with the Secrets Manager secret");
    assert!(
        verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_err(),
        "a different secret must not verify (the check can fail)"
    );
    let log = std::fs::read_to_string(&consumer_log).unwrap_or_default();
    assert!(!log.contains(SECRET) && !log.contains(&SECRET[6..]));
    drop(moto);
    for f in [moto_log, consumer_log] {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_secret_stops_the_consumer_at_start_up() {
    let moto_log = log_path("moto-bad");
    let moto = Moto::start(None, &moto_log).await.unwrap();
    let sdk = moto.sdk_config().await;
    let bad_value = "not-a-whsec-value-0123456789";
    let malformed = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("sluice/malformed")
        .secret_string(bad_value)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sluice/nope-AbCdEf";
    for arn in [missing, malformed.as_str()] {
        let mut cmd = tokio::process::Command::from(poller(
            &moto,
            "http://127.0.0.1:9/123456789012/unused",
            "http://127.0.0.1:9/unused",
            arn,
        ));
        cmd.kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("the consumer kept running with a bad secret {arn}"))
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{arn}: must fail, printed {text}");
        assert!(
            text.contains(arn),
            "{arn}: the error names the secret: {text}"
        );
        assert!(!text.contains(bad_value), "the value never appears: {text}");
    }
    drop(moto);
    let _ = std::fs::remove_file(moto_log);
}
