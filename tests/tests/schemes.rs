//! End to end for every signature scheme, through real workerd and moto: valid requests are
//! accepted and delivered byte-identical; tampered bodies, wrong secrets, stale and future
//! timestamps and missing headers are refused with the right code; a rotated-out secret is
//! still accepted; Slack's url_verification is answered and never queued. Each event is
//! delivered under its provider's event id; Twilio is checked against the configured public
//! URL (a custom domain); generic HMAC runs with SHA-1/base64 and SHA-512/hex as well.

use sluice_e2e::stack::{
    dev_ed25519_pair, dev_secret, every_scheme, read_log, unix_now, DemoSource, SourceSpec,
};
use sluice_e2e::wait::until;
use sluice_e2e::{Destination, Stack, StackOptions};
use sluice_protocol::signature::mac::Algorithm;
use sluice_protocol::signature::{Encoding, GenericHmac};
use sluice_protocol::Scheme;
use std::collections::BTreeSet;
use std::time::Duration;

async fn status_and_code(
    stack: &Stack,
    source: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    let resp = stack
        .post(source, headers, body)
        .await
        .expect("edge reachable");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

/// Bodies 2 and 3 are 40 KiB: above the size from which the edge computes MACs with
/// WebCrypto instead of in wasm, so both paths are exercised for every scheme.
fn body_for(source: &DemoSource, n: u32) -> Vec<u8> {
    let pad = if matches!(n, 2 | 3) {
        "abc\u{e9}".repeat(8 * 1024)
    } else {
        String::new()
    };
    match source.content_type() {
        "application/x-www-form-urlencoded" => {
            format!("MessageSid=SM{n}&From=%2B15550001111&Body=hello+{n}&Extra=%F0%9F%A6%80&Pad={pad}").into_bytes()
        }
        _ => format!("{{\"id\":\"evt_{}_{n}\",\"event_id\":\"Ev{n}\",\"type\":\"test\",\"n\":{n}, \"note\":\"caf\u{e9}\",\"pad\":\"{pad}\"}}", source.name)
            .into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_end_to_end() {
    let dest = Destination::start(None).await.unwrap();
    let mut options = StackOptions::for_test("schemes", &dest.url, &[]);
    options.sources = every_scheme();
    // Twilio behind a custom domain: the edge must check the configured public URL, not the
    // URL the request reached it at (127.0.0.1 here).
    for spec in options.sources.iter_mut() {
        if spec.scheme == Scheme::Twilio {
            spec.public_url = Some("https://hooks.example.com/hooks/twilio".into());
        }
    }
    // Generic HMAC with its other algorithms and encodings (the demo source is SHA-256, hex),
    // through WebCrypto's SHA-1 and SHA-512 as well for the 40 KiB bodies.
    let generic = |name: &str, hmac: GenericHmac| SourceSpec {
        generic: Some(hmac),
        ..SourceSpec::from((name, Scheme::Generic))
    };
    options.sources.push(generic(
        "generic-sha1",
        GenericHmac {
            header: "x-sig".into(),
            algorithm: Algorithm::Sha1,
            encoding: Encoding::Base64,
            prefix: String::new(),
            timestamp_header: None,
            id_header: Some("x-delivery".into()),
            template: "{body}".into(),
        },
    ));
    options.sources.push(generic(
        "generic-sha512",
        GenericHmac {
            header: "x-sig".into(),
            algorithm: Algorithm::Sha512,
            encoding: Encoding::Hex,
            prefix: "v1=".into(),
            timestamp_header: Some("x-ts".into()),
            id_header: Some("x-delivery".into()),
            template: "{id}.{timestamp}.{body}".into(),
        },
    ));
    let stack = Stack::start(options).await.expect("stack starts");
    let edge_log = stack.log("edge");
    let now = unix_now();

    for source in &stack.sources {
        let name = source.name.as_str();
        let timestamped = match source.scheme {
            Scheme::Stripe | Scheme::Slack | Scheme::StandardWebhooks => true,
            Scheme::Generic => source
                .generic
                .as_ref()
                .is_some_and(|g| g.timestamp_header.is_some()),
            Scheme::Github | Scheme::Shopify | Scheme::Twilio => false,
        };

        // Valid, with the current secret and with the one being rotated out.
        let mut expected = BTreeSet::new();
        for (n, secret) in [(1, &source.secret), (2, &source.previous_secret)] {
            let body = body_for(source, n);
            let headers = source.sign_with(secret, &format!("{name}-{n}"), now, &body);
            let (status, code) = status_and_code(&stack, name, &headers, &body).await;
            assert_eq!(status, 202, "{name} #{n}: {code}\n{}", read_log(&edge_log));
            expected.insert(body);
        }

        // Tampered body.
        let body = body_for(source, 3);
        let headers = source.sign_at(&format!("{name}-3"), now, &body);
        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x01;
        assert_eq!(
            status_and_code(&stack, name, &headers, &tampered).await,
            (401, "invalid_signature".to_string()),
            "{name}: tampered body"
        );

        // Wrong secret.
        let wrong = if source.secret.starts_with("whsk_") {
            dev_ed25519_pair().0
        } else {
            dev_secret(source.scheme)
        };
        let headers = source.sign_with(&wrong, &format!("{name}-4"), now, &body);
        assert_eq!(
            status_and_code(&stack, name, &headers, &body).await,
            (401, "invalid_signature".to_string()),
            "{name}: wrong secret"
        );

        // Stale and future timestamps, where the scheme signs one.
        if timestamped {
            for skew in [-400, 400] {
                let headers = source.sign_at(&format!("{name}-5"), now + skew, &body);
                assert_eq!(
                    status_and_code(&stack, name, &headers, &body).await,
                    (401, "timestamp_out_of_tolerance".to_string()),
                    "{name}: timestamp skew {skew}"
                );
            }
        }

        // No signature at all.
        assert_eq!(
            status_and_code(&stack, name, &[], &body).await,
            (401, "missing_signature".to_string()),
            "{name}: missing header"
        );

        // Exactly the two valid events arrive, byte-identical.
        let path = format!("/{name}");
        let got = until(
            &format!("two deliveries to {path}"),
            Duration::from_secs(60),
            || async {
                let d = dest.successful(&path);
                (d.len() >= 2).then_some(d)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\nconsumer log:\n{}", read_log(&stack.log("consumer"))));
        // Each under the provider's own event id (the scheme's idempotency key), which the
        // consumer delivers as `webhook-id` = `<source>#<key>`.
        let keys: BTreeSet<String> = got
            .iter()
            .filter_map(|d| d.headers.get("webhook-id").cloned())
            .collect();
        let expected_keys: BTreeSet<String> = [1, 2]
            .map(|n| match source.scheme {
                Scheme::Stripe => format!("{name}#evt_{name}_{n}"),
                Scheme::Slack => format!("{name}#Ev{n}"),
                _ => format!("{name}#{name}-{n}"),
            })
            .into_iter()
            .collect();
        assert_eq!(keys, expected_keys, "{name}: idempotency keys");
        let bodies: BTreeSet<Vec<u8>> = got.into_iter().map(|d| d.body).collect();
        assert_eq!(bodies, expected, "{name}: delivered bodies");
    }

    // Slack's url_verification handshake: answered after verification, never queued.
    let slack = stack.source("slack");
    let challenge = br#"{"token":"t","challenge":"ch4ll3ng3","type":"url_verification"}"#;
    let resp = stack
        .post("slack", &slack.sign("x", challenge), challenge)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(v["challenge"], "ch4ll3ng3");
    let (status, _) = status_and_code(&stack, "slack", &[], challenge).await;
    assert_eq!(status, 401, "an unsigned handshake is refused");

    // Give the consumer time to deliver anything wrongly queued, then check nothing came.
    let marker = body_for(slack, 9);
    let (status, _) = status_and_code(&stack, "slack", &slack.sign("m", &marker), &marker).await;
    assert_eq!(status, 202);
    until("the marker event", Duration::from_secs(30), || async {
        dest.successful("/slack")
            .iter()
            .any(|d| d.body == marker)
            .then_some(())
    })
    .await
    .unwrap();
    for source in &stack.sources {
        let extra = if source.name == "slack" { 3 } else { 2 };
        assert_eq!(
            dest.successful(&format!("/{}", source.name)).len(),
            extra,
            "{}: nothing refused was delivered",
            source.name
        );
    }

    // Every HMAC above was computed by the runtime's WebCrypto, none by the fallback in wasm.
    let log = read_log(&stack.log("edge"));
    assert!(
        !log.contains("webcrypto hmac failed"),
        "the edge fell back to computing MACs in wasm:\n{log}"
    );
}
