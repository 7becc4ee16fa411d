//! The idempotency claim against real DynamoDB semantics (moto): one winner under
//! concurrency, completed events skipped, payload mismatches caught, expired claims reusable.

use sluice_e2e::moto::Moto;
use sluice_e2e::stack::create_table;
use sluice_lambda_worker::claim::{Claim, ClaimStore};
use sluice_lambda_worker::clock::now_ms;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_follow_powertools_semantics() {
    let log = std::env::temp_dir().join(format!("sluice-claims-moto-{}.log", std::process::id()));
    let moto = Moto::start(None, &log).await.expect("moto starts");
    let sdk = moto.sdk_config().await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), "claims", "pk")
        .await
        .unwrap();
    // Four independent consumers (separate clients), as four Lambda instances would be.
    let stores: Vec<ClaimStore> = (0..4)
        .map(|_| ClaimStore::new(aws_sdk_dynamodb::Client::new(&sdk), "claims"))
        .collect();
    let now = now_ms();
    let until = now + 30_000;
    let exp = now / 1000 + 3600;

    // 50 duplicates of one event claimed concurrently by 4 consumers: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = stores[i % 4].clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim("src#dup", &format!("evt_{i}"), "hash", now, until, exp)
                .await
        }));
    }
    let mut acquired = 0;
    let mut in_progress = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Claim::Acquired => acquired += 1,
            Claim::InProgressElsewhere => in_progress += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((acquired, in_progress), (1, 49));

    // Completed: every later claim is a duplicate; a different payload is a mismatch.
    stores[0].complete("src#dup", exp).await.unwrap();
    assert_eq!(
        stores[1]
            .claim("src#dup", "evt_x", "hash", now, until, exp)
            .await
            .unwrap(),
        Claim::AlreadyCompleted
    );
    assert_eq!(
        stores[2]
            .claim("src#dup", "evt_y", "other-hash", now, until, exp)
            .await
            .unwrap(),
        Claim::PayloadMismatch
    );

    // A crashed consumer's claim (in-progress expiry passed) can be taken over.
    let past = now - 1;
    assert_eq!(
        stores[0]
            .claim("src#crash", "evt_a", "h", now, past, exp)
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        stores[1]
            .claim("src#crash", "evt_b", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::Acquired
    );

    // Release only removes one's own claim; then a retry can claim again.
    stores[0].release("src#crash", "evt_a").await.unwrap();
    assert_eq!(
        stores[2]
            .claim("src#crash", "evt_c", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::InProgressElsewhere,
        "evt_b still holds the claim"
    );
    stores[1].release("src#crash", "evt_b").await.unwrap();
    assert_eq!(
        stores[2]
            .claim("src#crash", "evt_c", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::Acquired
    );

    // A completed record whose expiration passed (TTL not yet applied) is claimable again.
    stores[0]
        .complete("src#old", now / 1000 - 10)
        .await
        .unwrap();
    assert_eq!(
        stores[0]
            .claim("src#old", "evt_o", "h", now, until, exp)
            .await
            .unwrap(),
        Claim::Acquired
    );
    drop(moto);
    let _ = std::fs::remove_file(log);
}
