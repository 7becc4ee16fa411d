//! One module per fuzz target; `fuzz_targets/<name>.rs` feeds libFuzzer's inputs to
//! `<name>::run`, and `tests/corpus.rs` replays the committed seeds and regression inputs
//! through the same functions with plain `cargo test`.

pub mod archive_key;
pub mod claim_check;
pub mod envelope_decode;
pub mod envelope_roundtrip;
pub mod filter;
pub mod ingest_prepare;
pub mod secrets;
pub mod sig_generic;
pub mod sig_github;
pub mod sig_shopify;
pub mod sig_slack;
pub mod sig_standard_webhooks;
pub mod sig_stripe;
pub mod sig_twilio;
pub mod source_config;

/// A target's entry point: runs one input, panics if a property breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `cargo fuzz list` names them.
pub const ALL: &[(&str, Target)] = &[
    ("archive_key", archive_key::run),
    ("claim_check", claim_check::run),
    ("envelope_decode", envelope_decode::run),
    ("envelope_roundtrip", envelope_roundtrip::run),
    ("filter", filter::run),
    ("ingest_prepare", ingest_prepare::run),
    ("secrets", secrets::run),
    ("sig_generic", sig_generic::run),
    ("sig_github", sig_github::run),
    ("sig_shopify", sig_shopify::run),
    ("sig_slack", sig_slack::run),
    ("sig_standard_webhooks", sig_standard_webhooks::run),
    ("sig_stripe", sig_stripe::run),
    ("sig_twilio", sig_twilio::run),
    ("source_config", source_config::run),
];
