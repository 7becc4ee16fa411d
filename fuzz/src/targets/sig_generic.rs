//! Generic HMAC: the source's `generic` settings (`@config`, JSON; validated as the source
//! config parser does) and the request's signature, timestamp and id headers, through
//! `Scheme::verify`. Every valid configuration must round-trip sign/verify.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::signature::{GenericHmac, SchemeOptions};
use sluice_protocol::Scheme;

const DEFAULT: &str = r#"{"header":"X-Signature","algorithm":"sha512","encoding":"base64","prefix":"sha512=","timestamp_header":"X-Timestamp","id_header":"X-Event-Id","template":"{id}:{timestamp}:{body}"}"#;

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let config = input.meta_str("config").unwrap_or(DEFAULT);
    let Ok(generic) = serde_json::from_str::<GenericHmac>(config) else {
        return;
    };
    if generic.validate().is_err() {
        return; // A source with this config is refused at load; verify never sees it.
    }
    let t = SchemeUnderTest {
        scheme: Scheme::Generic,
        options: SchemeOptions {
            public_url: None,
            generic: Some(&generic),
            external_macs: None,
        },
        verify: keys::GENERIC,
        signers: keys::GENERIC,
        wrong: &["unrelated"],
    };
    let v = check_scheme(&t, &input, data);
    let id = input.id();
    for ok in v.assert_round_trips() {
        let expected = (generic.id_header.is_some() && !id.is_empty()).then_some(id);
        assert_eq!(ok.idempotency_key.as_deref(), expected);
    }
}
