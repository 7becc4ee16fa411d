//! Claims and completions when DynamoDB calls fail: the direct first attempt
//! (`ddb_direct`) hands every failure to the SDK's retries, and a write that took effect
//! although its answer was lost is recognised by its claim token, never mistaken for
//! another consumer's claim.

use sluice_e2e::fault_proxy::{Fault, FaultProxy, Faults};
use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_lambda_worker::claim::{Claim, ClaimStore};
use sluice_lambda_worker::clock::now_ms;
use std::time::Duration;

#[tokio::test(flavor = "current_thread")]
async fn claims_survive_lost_answers_and_throttling() {
    let log = std::env::temp_dir().join(format!(
        "sluice-claims-faults-moto-{}.log",
        std::process::id()
    ));
    let moto = Moto::start(None, &log).await.expect("moto starts");
    create_table(
        &aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        "claims",
        "pk",
    )
    .await
    .unwrap();
    let proxy = FaultProxy::start(&moto.endpoint).await.unwrap();
    let sdk = sluice_e2e::moto::sdk_config(&proxy.url).await;
    let store = ClaimStore::new(aws_sdk_dynamodb::Client::new(&sdk), "claims");
    let other = ClaimStore::new(aws_sdk_dynamodb::Client::new(&sdk), "claims");
    let now = now_ms();
    let until = now + 60_000;
    let exp = now / 1000 + 3600;

    // Fault-free first: the direct path answers, one call per claim.
    assert_eq!(
        store
            .claim("k#warm", "evt_w", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        other
            .claim("k#warm", "evt_w", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::InProgressElsewhere
    );
    store.complete("k#warm", exp).await.unwrap();
    assert_eq!(
        other
            .claim("k#warm", "evt_w", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::AlreadyCompleted
    );
    assert_eq!(
        proxy.by_operation().values().sum::<u64>(),
        4,
        "one call per claim and completion: {:?}",
        proxy.by_operation()
    );

    // A third of the calls fail: the write is done but its answer replaced by a 500, or
    // the call is throttled, refused or its connection reset before DynamoDB sees it.
    proxy.set(Faults {
        rate: 0.35,
        kinds: vec![
            Fault::ErrorAfterForward,
            Fault::Throttle,
            Fault::Unavailable,
            Fault::Reset,
        ],
        hold: Duration::from_secs(6),
        delay: Duration::from_millis(50),
        limit: None,
    });
    let mut acquired = Vec::new();
    for i in 0..24 {
        let key = format!("k#{i}");
        // An error means every attempt failed; anything but Acquired would be a claim of
        // ours taken for someone else's.
        if let Ok(claim) = store.claim(&key, "evt", "h", now, until, exp).await {
            assert_eq!(claim, Claim::Acquired, "{key}");
            acquired.push(key);
        }
    }
    let injected = proxy.injected();
    assert!(
        injected.values().sum::<u64>() > 0,
        "faults were injected: {injected:?}"
    );
    assert!(acquired.len() >= 12, "most claims succeed: {acquired:?}");
    for key in &acquired {
        // Completions retry through the SDK too; one that failed every attempt leaves the
        // claim in progress, which the checks below allow.
        let _ = store.complete(key, exp).await;
    }

    proxy.set(Faults::none());
    for key in &acquired {
        let seen = other.claim(key, "evt", "h", now, until, exp).await.unwrap();
        assert!(
            matches!(seen, Claim::AlreadyCompleted | Claim::InProgressElsewhere),
            "{key}: the claim was written once and is ours: {seen:?}"
        );
    }
}
