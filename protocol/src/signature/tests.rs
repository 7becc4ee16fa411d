//! Cross-scheme properties: every scheme signs and verifies its own output, rejects
//! tampering, accepts rotated secrets, and fails closed without a secret.

use super::*;
use crate::headers::HeaderMap;

fn generic() -> &'static GenericHmac {
    static G: std::sync::OnceLock<GenericHmac> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        serde_json::from_str(
            r#"{"header":"x-sig","timestamp_header":"x-ts","template":"{timestamp}.{body}"}"#,
        )
        .unwrap()
    })
}

fn options() -> SchemeOptions<'static> {
    SchemeOptions {
        public_url: Some("https://hooks.example.com/hooks/twilio"),
        generic: Some(generic()),
        external_macs: None,
    }
}

fn secret_text(scheme: Scheme, n: u8) -> String {
    match scheme {
        Scheme::StandardWebhooks => format!(
            "whsec_{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [n; 24])
        ),
        _ => format!("secret-{n}"),
    }
}

fn body_for(scheme: Scheme) -> &'static [u8] {
    match scheme {
        Scheme::Twilio => b"CallSid=CA1&From=%2B1555",
        _ => br#"{"id":"evt_1","hello":"world"}"#,
    }
}

#[test]
fn scheme_names_round_trip_through_config() {
    for s in ALL_SCHEMES {
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{}\"", s.as_str()));
        assert_eq!(serde_json::from_str::<Scheme>(&json).unwrap(), s);
    }
}

#[test]
fn every_scheme_round_trips_and_rejects_tampering() {
    let opts = options();
    for scheme in ALL_SCHEMES {
        let secret = scheme.parse_secret(&secret_text(scheme, 1)).unwrap();
        let body = body_for(scheme);
        let headers: HeaderMap = scheme
            .sign(&secret, "id-1", 1_000, body, &opts)
            .unwrap()
            .into_iter()
            .collect();
        let req = SignedRequest {
            headers: &headers,
            body,
            now_secs: 1_000,
            tolerance_secs: 300,
        };
        assert!(
            scheme
                .verify(&req, std::slice::from_ref(&secret), &opts)
                .is_ok(),
            "{scheme}"
        );
        let tampered = SignedRequest {
            body: b"CallSid=CA2&x=1",
            ..req
        };
        assert_eq!(
            scheme.verify(&tampered, std::slice::from_ref(&secret), &opts),
            Err(SignatureError::Mismatch),
            "{scheme}"
        );
    }
}

#[test]
fn rotation_accepts_old_and_new_secrets_for_every_scheme() {
    let opts = options();
    for scheme in ALL_SCHEMES {
        let list = format!("{} {}", secret_text(scheme, 1), secret_text(scheme, 2));
        let secrets = scheme.parse_secrets(&list).unwrap();
        let body = body_for(scheme);
        for s in &secrets {
            let headers: HeaderMap = scheme
                .sign(s, "d", 0, body, &opts)
                .unwrap()
                .into_iter()
                .collect();
            let req = SignedRequest {
                headers: &headers,
                body,
                now_secs: 0,
                tolerance_secs: 300,
            };
            assert!(scheme.verify(&req, &secrets, &opts).is_ok(), "{scheme}");
        }
        let third = scheme.parse_secret(&secret_text(scheme, 3)).unwrap();
        let headers: HeaderMap = scheme
            .sign(&third, "d", 0, body, &opts)
            .unwrap()
            .into_iter()
            .collect();
        let req = SignedRequest {
            headers: &headers,
            body,
            now_secs: 0,
            tolerance_secs: 300,
        };
        assert_eq!(
            scheme.verify(&req, &secrets, &opts),
            Err(SignatureError::Mismatch),
            "{scheme}"
        );
    }
}

#[test]
fn no_secret_or_missing_options_fail_closed() {
    let headers = HeaderMap::new();
    let req = SignedRequest {
        headers: &headers,
        body: b"x",
        now_secs: 0,
        tolerance_secs: 300,
    };
    for scheme in ALL_SCHEMES {
        assert_eq!(
            scheme.verify(&req, &[], &options()),
            Err(SignatureError::NoSecret)
        );
    }
    let s = Secret::raw("x").unwrap();
    assert_eq!(
        Scheme::Twilio.verify(&req, std::slice::from_ref(&s), &SchemeOptions::default()),
        Err(SignatureError::NotConfigured("public_url"))
    );
    assert_eq!(
        Scheme::Generic.verify(&req, std::slice::from_ref(&s), &SchemeOptions::default()),
        Err(SignatureError::NotConfigured("generic"))
    );
    assert_eq!(Scheme::Github.parse_secrets("  "), Err(SecretError::Empty));
}

/// Verifies `req` the edge's way: a recording pass, the MACs computed "outside" (natively
/// here, by WebCrypto at the edge), then an answered pass.
fn verify_in_two_passes(
    scheme: Scheme,
    req: &SignedRequest<'_>,
    secrets: &[Secret],
    answer_for: &[u8],
) -> (usize, Result<Verified, SignatureError>) {
    let recorder = ExternalMacs::recording();
    let first = scheme.verify(
        req,
        secrets,
        &SchemeOptions {
            external_macs: Some(&recorder),
            ..options()
        },
    );
    let requests = recorder.take_requests();
    if first != Err(SignatureError::Mismatch) {
        return (requests.len(), first);
    }
    let count = requests.len();
    let answers = requests.into_iter().map(|mut r| {
        // What the outside computes the MAC over: the recorded message, or (to show that
        // an answer for other bytes never stands in) a different one.
        if answer_for != req.body {
            let at = r.message.len() - req.body.len();
            r.message.truncate(at);
            r.message.extend_from_slice(answer_for);
        }
        let mac = mac::compute(r.algorithm, &r.key, &[&r.message]);
        (r, mac)
    });
    let answered = ExternalMacs::answered(answers);
    let second = scheme.verify(
        req,
        secrets,
        &SchemeOptions {
            external_macs: Some(&answered),
            ..options()
        },
    );
    (count, second)
}

#[test]
fn macs_computed_outside_verify_exactly_like_macs_computed_here() {
    let opts = options();
    for scheme in ALL_SCHEMES {
        let list = format!("{} {}", secret_text(scheme, 1), secret_text(scheme, 2));
        let secrets = scheme.parse_secrets(&list).unwrap();
        let body = body_for(scheme);
        let headers: HeaderMap = scheme
            .sign(&secrets[1], "d", 0, body, &opts)
            .unwrap()
            .into_iter()
            .collect();
        let req = SignedRequest {
            headers: &headers,
            body,
            now_secs: 0,
            tolerance_secs: 300,
        };
        // One MAC per secret, recorded once however many candidates the header carries.
        let (count, result) = verify_in_two_passes(scheme, &req, &secrets, body);
        assert_eq!(count, 2, "{scheme}");
        assert_eq!(result, scheme.verify(&req, &secrets, &opts), "{scheme}");
        assert!(result.is_ok(), "{scheme}");

        // Tampered body: recorded and answered for the bytes received, still a mismatch.
        let mut tampered_body = body.to_vec();
        tampered_body[0] ^= 1;
        let tampered = SignedRequest {
            body: &tampered_body,
            ..req
        };
        let (_, result) = verify_in_two_passes(scheme, &tampered, &secrets, &tampered_body);
        assert_eq!(result, Err(SignatureError::Mismatch), "{scheme}");

        // An answer computed over other bytes (here: the original, correctly signed body)
        // never stands for the request's bytes.
        let (_, result) = verify_in_two_passes(scheme, &tampered, &secrets, body);
        assert_eq!(result, Err(SignatureError::Mismatch), "{scheme}");

        // No answers at all: never verifies.
        let nothing = ExternalMacs::answered([]);
        let result = scheme.verify(
            &req,
            &secrets,
            &SchemeOptions {
                external_macs: Some(&nothing),
                ..options()
            },
        );
        assert_eq!(result, Err(SignatureError::Mismatch), "{scheme}");
    }
}
