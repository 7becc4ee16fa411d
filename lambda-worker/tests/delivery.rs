//! The default deliverer against a real HTTP destination: a redirect is a failure that
//! names its status (never followed: a POST redirected with 301/302/303 would arrive as a
//! GET without the body, and its 200 would count as delivered), and a failed request's
//! detail never carries the destination URL (which can hold a token).

mod support;

use sluice_e2e::{Behaviour, Destination};
use sluice_lambda_worker::delivery::Deliverer;
use sluice_lambda_worker::outcome::FailureKind;
use sluice_lambda_worker::routes::Route;
use sluice_protocol::{Body, Envelope};
use std::time::Duration;

fn envelope() -> Envelope {
    support::envelope(
        "evt_redirect",
        "orders",
        "msg_1",
        Body::from_bytes(br#"{"n":1}"#),
    )
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let dest = Destination::start(None).await.unwrap();
    let deliverer = Deliverer::new(Duration::from_secs(5), None).unwrap();
    for status in [301, 302, 303, 307, 308] {
        let from = format!("/moved-{status}");
        dest.set(
            &from,
            Behaviour::Redirect {
                status,
                location: "/here",
            },
        );
        let failure = deliverer
            .deliver(
                &Route::new(
                    "default",
                    &format!("{}{from}", dest.url),
                    Duration::from_secs(5),
                ),
                &envelope(),
                br#"{"n":1}"#.to_vec(),
                1_700_000_000,
            )
            .await
            .expect_err("a redirect is not a delivery");
        assert_eq!(failure.status, Some(status));
        assert_eq!(failure.kind, FailureKind::Permanent, "{status}");
        assert!(
            failure.detail.contains(&status.to_string()),
            "{}",
            failure.detail
        );
        assert_eq!(dest.attempts(&from).len(), 1);
    }
    assert!(
        dest.attempts("/here").is_empty(),
        "the redirect was followed"
    );
}

#[tokio::test]
async fn a_failed_request_does_not_reveal_the_destination_url() {
    // A port nothing listens on: the connection is refused.
    let port = sluice_e2e::wait::free_port().unwrap();
    let deliverer = Deliverer::new(Duration::from_secs(5), None).unwrap();
    let failure = deliverer
        .deliver(
            &Route::new(
                "default",
                &format!("http://127.0.0.1:{port}/hooks/T0KEN-PATH?code=s3cr3t-code"),
                Duration::from_secs(5),
            ),
            &envelope(),
            br#"{"n":1}"#.to_vec(),
            1_700_000_000,
        )
        .await
        .expect_err("nothing listens there");
    assert_eq!(failure.kind, FailureKind::Transient);
    assert_eq!(failure.reason, "delivery_error");
    for secret in ["T0KEN-PATH", "s3cr3t-code", "127.0.0.1"] {
        assert!(
            !failure.detail.contains(secret),
            "the detail names the URL: {}",
            failure.detail
        );
    }
}
