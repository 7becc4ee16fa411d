//! Replays the committed seed corpora (`corpus/<target>/seed-*`) and regression inputs
//! (`regressions/<target>/*`, crashes the fuzzers found) through every target's property
//! checks with plain `cargo test`, and checks the seeds still reach the paths they were
//! written for (the accepting path included), so a format change cannot leave them inert.

use sluice_fuzz::targets::{self, ingest_prepare};
use sluice_fuzz::{keys, Input};
use sluice_protocol::ingest::{prepare, Inbound, Prepared};
use sluice_protocol::signature::{GenericHmac, SchemeOptions, SignedRequest};
use sluice_protocol::{IngestError, Scheme, SignatureError};
use std::path::{Path, PathBuf};

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target)
}

fn files(path: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let name = name.strip_prefix(prefix)?.to_string();
            Some((name, std::fs::read(e.path()).ok()?))
        })
        .collect();
    out.sort();
    out
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(dir("corpus", target).join(format!("seed-{name}")))
        .unwrap_or_else(|e| panic!("seed {target}/{name}: {e}"))
}

#[test]
fn every_seed_and_regression_input_passes_its_target() {
    for (name, run) in targets::ALL {
        let seeds = files(&dir("corpus", name), "seed-");
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for (file, data) in seeds {
            assert!(data.len() <= 4096, "{name}/seed-{file} is not small");
            run(&data);
        }
        for (_, data) in files(&dir("regressions", name), "") {
            run(&data);
        }
    }
}

#[test]
fn every_libfuzzer_entry_is_a_listed_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets");
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    entries.sort();
    let listed: Vec<String> = targets::ALL.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(entries, listed);
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    for name in &listed {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} has no [[bin]]"
        );
    }
}

fn verify(
    scheme: Scheme,
    keys: &[&str],
    options: &SchemeOptions<'_>,
    target: &str,
    name: &str,
) -> Result<Option<String>, SignatureError> {
    let data = seed(target, name);
    let input = Input::parse(&data);
    let secrets: Vec<_> = keys
        .iter()
        .map(|k| scheme.parse_secret(k).unwrap())
        .collect();
    let req = SignedRequest {
        headers: &input.headers,
        body: input.body,
        now_secs: input.now_secs(),
        tolerance_secs: input.tolerance_secs(),
    };
    scheme
        .verify(&req, &secrets, options)
        .map(|v| v.idempotency_key)
}

#[test]
fn signature_seeds_reach_the_paths_they_were_written_for() {
    use SignatureError::*;
    let none = SchemeOptions::default();
    let s = |name: &str| verify(Scheme::Stripe, keys::STRIPE, &none, "sig_stripe", name);
    assert_eq!(s("dotnet-fixture"), Ok(Some("evt_123".into())));
    assert!(s("signed").is_ok());
    assert_eq!(s("only-v0"), Err(MalformedHeader("stripe-signature")));
    assert_eq!(s("stale"), Err(TimestampOutOfTolerance));
    assert_eq!(s("garbage"), Err(MalformedHeader("stripe-signature")));

    let g = |name: &str| verify(Scheme::Github, keys::GITHUB, &none, "sig_github", name);
    assert_eq!(g("documented"), Ok(Some("d-1".into())));
    for i in 0..3 {
        assert_eq!(
            g(&format!("malformed-{i}")),
            Err(MalformedHeader("x-hub-signature-256"))
        );
    }
    assert_eq!(g("missing"), Err(MissingHeader("x-hub-signature-256")));

    let sh = |name: &str| verify(Scheme::Shopify, keys::SHOPIFY, &none, "sig_shopify", name);
    assert_eq!(sh("php-fixture"), Ok(Some("wh-1".into())));
    assert_eq!(
        sh("malformed"),
        Err(MalformedHeader("x-shopify-hmac-sha256"))
    );

    let sl = |name: &str| verify(Scheme::Slack, keys::SLACK, &none, "sig_slack", name);
    assert!(sl("documented").is_ok());
    assert!(sl("url-verification").is_ok());
    assert_eq!(sl("malformed"), Err(MalformedHeader("x-slack-signature")));

    for name in [
        "documented",
        "duplicate-keys",
        "json-body-sha256",
        "port-443",
    ] {
        let data = seed("sig_twilio", name);
        let input = Input::parse(&data);
        let options = SchemeOptions {
            public_url: Some(input.meta_str("url").unwrap_or(keys::TWILIO_URL)),
            generic: None,
            external_macs: None,
        };
        assert!(
            verify(Scheme::Twilio, keys::TWILIO, &options, "sig_twilio", name).is_ok(),
            "{name}"
        );
    }

    let sw_keys = [keys::WHSEC, keys::WHPK];
    let sw = |name: &str| {
        verify(
            Scheme::StandardWebhooks,
            &sw_keys,
            &none,
            "sig_standard_webhooks",
            name,
        )
    };
    for name in ["v1-vector", "v1a-vector", "several"] {
        assert_eq!(
            sw(name),
            Ok(Some("msg_p5jXN8AQM9LWM0D4loKWxJek".into())),
            "{name}"
        );
    }
    assert_eq!(sw("stale"), Err(TimestampOutOfTolerance));
    assert_eq!(sw("malformed"), Err(MalformedHeader("webhook-signature")));
    assert_eq!(
        sw("bad-timestamp"),
        Err(MalformedHeader("webhook-timestamp"))
    );

    for (name, expected) in [
        ("sha512-base64", Ok(Some("e1".to_string()))),
        ("sha256-hex", Ok(None)),
        ("literal-braces", Err(Mismatch)),
    ] {
        let data = seed("sig_generic", name);
        let input = Input::parse(&data);
        let generic: GenericHmac = serde_json::from_str(input.meta_str("config").unwrap()).unwrap();
        generic.validate().unwrap();
        let options = SchemeOptions {
            public_url: None,
            generic: Some(&generic),
            external_macs: None,
        };
        assert_eq!(
            verify(
                Scheme::Generic,
                keys::GENERIC,
                &options,
                "sig_generic",
                name
            ),
            expected,
            "{name}"
        );
    }
}

#[test]
fn ingest_seeds_reach_the_paths_they_were_written_for() {
    let f = ingest_prepare::fixture();
    let outcome = |name: &str| {
        let data = seed("ingest_prepare", name);
        let input = Input::parse(&data);
        let source = input.meta_str("source").unwrap();
        let i = f
            .config
            .sources
            .iter()
            .position(|s| s.name == source)
            .unwrap();
        let now_default = u64::try_from(input.now_secs()).unwrap() * 1000;
        prepare(
            Inbound {
                source: &f.config.sources[i],
                headers: &input.headers,
                body: input.body.into(),
                now_ms: input.meta_or("now_ms", now_default),
                event_id: "evt_1".into(),
                fallback_trace_id: "f".repeat(32),
                query: input.meta_str("query"),
            },
            &f.secrets[i],
        )
    };
    for name in [
        "standard-v1",
        "standard-v1a",
        "stripe",
        "github",
        "shopify",
        "twilio",
        "generic",
    ] {
        assert!(
            matches!(outcome(name), Ok(Prepared::Queue(_))),
            "{name}: {:?}",
            outcome(name)
        );
    }
    assert!(matches!(
        outcome("slack-challenge"),
        Ok(Prepared::Answer(_))
    ));
    assert_eq!(outcome("stripe-not-json"), Err(IngestError::InvalidJson));
    assert_eq!(
        outcome("wrong-media-type"),
        Err(IngestError::UnsupportedContentType)
    );
    assert_eq!(
        outcome("too-large"),
        Err(IngestError::PayloadTooLarge { limit: 1024 })
    );
}

#[test]
fn filter_seeds_reach_the_paths_they_were_written_for() {
    use sluice_protocol::filter::Filter;
    let outcome = |name: &str| {
        let data = seed("filter", name);
        let case = targets::filter::Case::parse(&data);
        let filter = case.filter.as_ref().expect("the first line is JSON");
        Filter::compile(filter)
            .map(|f| f.matches(&case.event()))
            .map_err(|e| e.path)
    };
    for name in [
        "starts-with",
        "nested-gte",
        "or-of-types",
        "header",
        "arrays",
        "every-operator",
        "not-json-body",
        "form-body",
    ] {
        assert_eq!(outcome(name), Ok(true), "{name}");
    }
    assert_eq!(outcome("no-match"), Ok(false));
    for (name, path) in [
        ("invalid-regex", "body.type.$regex"),
        ("invalid-in-string", "body.type.$in"),
        ("invalid-top-level", "query"),
        ("invalid-empty-or", "body.$or"),
        ("invalid-exist", "headers.x-a.$exist"),
        (
            "invalid-too-deep",
            "body.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k",
        ),
    ] {
        assert_eq!(outcome(name), Err(path.to_string()), "{name}");
    }
}
