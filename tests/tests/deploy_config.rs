//! `wrangler.toml` is deployable as written: each environment sets every var the edge
//! requires, with values the edge accepts, and the top level sets none (a deploy without
//! `--env` must fail closed rather than reach some stack). `wrangler deploy --dry-run`
//! (make test) checks the file's syntax and bundles the Worker, but never reads the values.

use sluice_protocol::claim_check::DEFAULT_INLINE_THRESHOLD;
use sluice_protocol::SourcesConfig;

const ENVIRONMENTS: [&str; 2] = ["dev", "production"];

fn wrangler() -> toml::Table {
    let text = std::fs::read_to_string(sluice_e2e::paths::root().join("wrangler.toml"))
        .expect("wrangler.toml");
    toml::from_str(&text).expect("wrangler.toml parses")
}

#[test]
fn the_top_level_has_no_vars() {
    let w = wrangler();
    assert!(
        w.get("vars").is_none(),
        "top-level [vars] would be deployed by a `wrangler deploy` without --env"
    );
    // tests/src/edge.rs takes the compatibility date from the top level.
    assert!(w
        .get("compatibility_date")
        .and_then(|d| d.as_str())
        .is_some());
}

#[test]
fn every_environment_sets_what_the_edge_requires() {
    let w = wrangler();
    let mut names = Vec::new();
    for env in ENVIRONMENTS {
        let e = w["env"][env]
            .as_table()
            .unwrap_or_else(|| panic!("[env.{env}] is missing"));
        names.push(e["name"].as_str().expect("env name").to_string());
        let vars = e["vars"]
            .as_table()
            .unwrap_or_else(|| panic!("[env.{env}.vars] is missing"));
        let var = |k: &str| {
            vars.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("[env.{env}.vars] {k} is missing or not a string"))
        };
        assert!(!var("AWS_REGION").is_empty());
        let queue = var("SQS_QUEUE_URL");
        assert!(
            queue.starts_with("https://sqs.") && queue.contains(".amazonaws.com/"),
            "{env}: SQS_QUEUE_URL {queue}"
        );
        assert!(
            queue.contains(&format!("sqs.{}.", var("AWS_REGION"))),
            "{env}: SQS_QUEUE_URL is not in AWS_REGION"
        );
        assert!(!var("PAYLOAD_BUCKET").is_empty());
        let threshold: usize = var("INLINE_THRESHOLD_BYTES")
            .parse()
            .expect("INLINE_THRESHOLD_BYTES is a number");
        assert!((1..=DEFAULT_INLINE_THRESHOLD).contains(&threshold));
        let sources = SourcesConfig::from_json(var("SLUICE_SOURCES"))
            .unwrap_or_else(|e| panic!("{env}: SLUICE_SOURCES: {e}"));
        assert!(!sources.sources.is_empty(), "{env}: no sources");
        for forbidden in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(
                !vars.contains_key(forbidden),
                "{env}: {forbidden} is a secret, not a var"
            );
        }
        for s in &sources.sources {
            assert!(
                !vars.contains_key(&s.secret_var()),
                "{env}: {} is a secret, not a var",
                s.secret_var()
            );
        }
    }
    names.dedup();
    assert_eq!(
        names.len(),
        ENVIRONMENTS.len(),
        "environments share a Worker name"
    );
}
