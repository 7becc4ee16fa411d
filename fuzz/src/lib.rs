//! Shared pieces of Sluice's fuzz targets: the text format the request-shaped targets read,
//! and the properties every signature scheme must keep.
//!
//! Request-shaped inputs (the `sig_*` and `ingest_prepare` targets) are
//!
//! ```text
//! name: value          one header per line; lines without `:` are ignored
//! @now: 1614265330     pseudo-headers starting with `@` set parameters (clock, id, ...)
//!                      an empty line ends the headers
//! <body bytes, raw>
//! ```
//!
//! so the seed corpora (`fuzz/corpus/<target>/seed-*`, written by `fuzz/make_seeds.py`
//! from the unit tests' vectors) stay readable and libFuzzer's mutations still reach every
//! header parser and the body.

use sluice_protocol::signature::{mac, ExternalMacs, SchemeOptions, SignedRequest, Verified};
use sluice_protocol::{HeaderMap, IngestError, Scheme, Secret, SignatureError};
use std::collections::BTreeMap;

pub mod targets;

/// A request-shaped fuzz input.
#[derive(Debug)]
pub struct Input<'a> {
    /// Real headers, in input order.
    pub headers: HeaderMap,
    /// Pseudo-headers (`@name`), last one wins.
    pub meta: BTreeMap<String, String>,
    /// The body: every byte after the first empty line.
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `data` into headers, pseudo-headers and body. Never fails: header text that
    /// is not UTF-8 is read lossily (as a Worker sees header values: as strings).
    pub fn parse(data: &'a [u8]) -> Self {
        let (head, body): (&[u8], &[u8]) = match data.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &[]),
        };
        let head = String::from_utf8_lossy(head);
        let mut headers = HeaderMap::new();
        let mut meta = BTreeMap::new();
        for line in head.split('\n') {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.strip_prefix(' ').unwrap_or(value);
            match name.strip_prefix('@') {
                Some(meta_name) => {
                    meta.insert(meta_name.to_string(), value.to_string());
                }
                None => headers.insert(name, value),
            }
        }
        Input {
            headers,
            meta,
            body,
        }
    }

    /// A pseudo-header parsed as `T`, or `default`.
    pub fn meta_or<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.meta
            .get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// A pseudo-header as text.
    pub fn meta_str(&self, name: &str) -> Option<&str> {
        self.meta.get(name).map(String::as_str)
    }

    /// `@now` (Unix seconds), default 1_700_000_000.
    pub fn now_secs(&self) -> i64 {
        self.meta_or("now", 1_700_000_000)
    }

    /// `@tolerance` (seconds), default 300.
    pub fn tolerance_secs(&self) -> u64 {
        self.meta_or("tolerance", 300)
    }

    /// `@id`: the delivery id the round-trip property signs with, default `id-1`.
    pub fn id(&self) -> &str {
        self.meta_str("id").unwrap_or("id-1")
    }
}

/// True when `needle` occurs in `haystack` (bytes).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a scheme target configures: the scheme, its options, the secrets the verifier holds,
/// the secrets providers sign with, and secrets that must not verify.
pub struct SchemeUnderTest<'a> {
    pub scheme: Scheme,
    pub options: SchemeOptions<'a>,
    /// The secrets the verifier holds, each in the scheme's secret format (the edge reads
    /// them space-separated from `SLUICE_SECRET_<NAME>`).
    pub verify: &'a [&'a str],
    /// Provider signing secrets (each in the scheme's secret format).
    pub signers: &'a [&'a str],
    /// Secrets that must never accept what `verify` accepts.
    pub wrong: &'a [&'a str],
}

/// The properties every scheme keeps, checked on one fuzz input:
///
/// 1. verifying the input never panics, is deterministic, and maps to a 4xx/5xx with a JSON
///    error that leaks no secret text (unless the input itself carried it);
/// 2. a request accepted with the configured secrets is refused with unrelated ones (the
///    signature, not the parser, decides);
/// 3. for the input's body and `@id`, what each provider secret signs verifies, and the
///    same headers over a tampered body do not (`Mismatch`).
///
/// Returns the verification of the input as given, for target-specific checks.
pub fn check_scheme(t: &SchemeUnderTest<'_>, input: &Input<'_>, raw: &[u8]) -> Verification {
    let parse = |list: &[&str]| -> Vec<Secret> {
        list.iter()
            .map(|s| {
                t.scheme
                    .parse_secret(s)
                    .expect("the target's secrets parse")
            })
            .collect()
    };
    let secrets = parse(t.verify);
    let wrong = parse(t.wrong);
    let now = input.now_secs();
    let req = SignedRequest {
        headers: &input.headers,
        body: input.body,
        now_secs: now,
        tolerance_secs: input.tolerance_secs(),
    };

    // 1. The input as given.
    let result = t.scheme.verify(&req, &secrets, &t.options);
    assert_eq!(result, t.scheme.verify(&req, &secrets, &t.options));
    assert_eq!(
        result,
        verify_in_two_passes(t, &req, &secrets),
        "{}: MACs computed outside (the edge's WebCrypto passes) decided differently",
        t.scheme
    );
    match &result {
        Ok(_) => {
            // 2. Acceptance depends on the secret.
            let other = t.scheme.verify(&req, &wrong, &t.options);
            assert!(
                other.is_err(),
                "{} accepted a request under unrelated secrets",
                t.scheme
            );
        }
        Err(e) => {
            assert_ne!(*e, SignatureError::NoSecret);
            check_refusal(&IngestError::from(e.clone()), raw, &secret_texts(t));
        }
    }

    // 3. Sign/verify round trip for this body and id.
    let id = input.id();
    let mut round_trips = Vec::new();
    for signer in t.signers {
        let key = t.scheme.parse_secret(signer).expect("signer parses");
        let signed: HeaderMap = t
            .scheme
            .sign(&key, id, now, input.body, &t.options)
            .expect("options are configured")
            .into_iter()
            .collect();
        let ok = SignedRequest {
            headers: &signed,
            body: input.body,
            now_secs: now,
            tolerance_secs: 300,
        };
        let verified = t.scheme.verify(&ok, &secrets, &t.options);
        let mut tampered_body = input.body.to_vec();
        tampered_body.push(b'x');
        let tampered = SignedRequest {
            body: &tampered_body,
            ..ok
        };
        let refused = t.scheme.verify(&tampered, &secrets, &t.options);
        round_trips.push(RoundTrip {
            verified,
            tampered: refused,
        });
    }
    Verification {
        result,
        round_trips,
    }
}

/// Verifies `req` the way the edge does: a recording pass, the recorded MACs computed
/// outside the scheme (here with `mac::compute`, at the edge by WebCrypto), an answered pass.
fn verify_in_two_passes(
    t: &SchemeUnderTest<'_>,
    req: &SignedRequest<'_>,
    secrets: &[Secret],
) -> Result<Verified, SignatureError> {
    let recorder = ExternalMacs::recording();
    let first = t.scheme.verify(
        req,
        secrets,
        &SchemeOptions {
            external_macs: Some(&recorder),
            ..t.options
        },
    );
    if first != Err(SignatureError::Mismatch) {
        return first;
    }
    let answered = ExternalMacs::answered(recorder.take_requests().into_iter().map(|r| {
        let mac = mac::compute(r.algorithm, &r.key, &[&r.message]);
        (r, mac)
    }));
    t.scheme.verify(
        req,
        secrets,
        &SchemeOptions {
            external_macs: Some(&answered),
            ..t.options
        },
    )
}

/// Every secret text a target holds, for leak checks.
fn secret_texts<'a>(t: &SchemeUnderTest<'a>) -> Vec<&'a str> {
    t.verify.iter().chain(t.signers).copied().collect()
}

/// A refusal is a 4xx or 5xx with a JSON body naming its code, and none of `secrets`
/// appears in it unless the input (`raw`) carried that text itself.
pub fn check_refusal(error: &IngestError, raw: &[u8], secrets: &[&str]) {
    let status = error.status();
    assert!((400..600).contains(&status), "status {status}");
    let json: serde_json::Value =
        serde_json::from_str(&error.to_json()).expect("refusal body is JSON");
    assert_eq!(json["error"]["code"], error.code());
    let text = error.to_json();
    for s in secrets {
        assert!(
            contains(raw, s.as_bytes()) || !text.contains(s),
            "secret text in a refusal: {text}"
        );
    }
}

/// One signer's sign/verify round trip.
#[derive(Debug)]
pub struct RoundTrip {
    /// Verifying what the signer produced.
    pub verified: Result<Verified, SignatureError>,
    /// Verifying the same headers over the body with one byte appended.
    pub tampered: Result<Verified, SignatureError>,
}

/// What [`check_scheme`] saw.
#[derive(Debug)]
pub struct Verification {
    pub result: Result<Verified, SignatureError>,
    pub round_trips: Vec<RoundTrip>,
}

impl Verification {
    /// Asserts that every round trip verified and its tampered copy did not; returns the
    /// verified results.
    pub fn assert_round_trips(&self) -> Vec<&Verified> {
        self.round_trips
            .iter()
            .map(|rt| {
                let v = rt
                    .verified
                    .as_ref()
                    .unwrap_or_else(|e| panic!("signed request refused: {e:?}"));
                assert_eq!(rt.tampered, Err(SignatureError::Mismatch), "tampered body");
                v
            })
            .collect()
    }
}

/// Parses every secret list as each scheme would; used by the `secrets` target and kept here
/// so it is unit-testable.
pub fn parse_all(text: &str) -> Vec<Result<Vec<Secret>, sluice_protocol::SecretError>> {
    sluice_protocol::signature::ALL_SCHEMES
        .iter()
        .map(|s| s.parse_secrets(text))
        .collect()
}

/// The secrets each target's verifier holds (the providers' published vectors' secrets, so
/// the seeds exercise the accepting path too) and a second one for rotation.
pub mod keys {
    pub const STRIPE: &[&str] = &["webhook_secret", "whsec_test_secret"];
    pub const GITHUB: &[&str] = &["It's a Secret to Everybody", "other-secret"];
    pub const SHOPIFY: &[&str] = &["steffi", "shpss_secret"];
    pub const SLACK: &[&str] = &["8f742231b10e8888abcd99yyyzzz85a5", "second-slack-secret"];
    pub const TWILIO: &[&str] = &["12345", "67890"];
    pub const GENERIC: &[&str] = &["generic-key-1", "generic-key-2"];
    /// Standard Webhooks: the spec's v1 secret and the JS library's v1a key pair.
    pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    pub const WHSK: &str = "whsk_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA==";
    pub const WHPK: &str = "whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=";
    /// Twilio's documented public URL.
    pub const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
}
