//! Twilio: `X-Twilio-Signature` (base64 HMAC-SHA1) parsing and verification over the public
//! URL and sorted form parameters, or `bodySHA256` for JSON bodies, through
//! `Scheme::verify`. `@url` sets the source's public URL.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::signature::SchemeOptions;
use sluice_protocol::Scheme;

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let url = input.meta_str("url").unwrap_or(keys::TWILIO_URL);
    let t = SchemeUnderTest {
        scheme: Scheme::Twilio,
        options: SchemeOptions {
            public_url: Some(url),
            generic: None,
            external_macs: None,
        },
        verify: keys::TWILIO,
        signers: keys::TWILIO,
        wrong: &["unrelated"],
    };
    let v = check_scheme(&t, &input, data);
    // With `bodySHA256` in the URL the body is bound by its hash: signing a body whose hash
    // differs yields nothing that verifies, by design. Otherwise every body round-trips.
    if !url.contains("bodySHA256") {
        for ok in v.assert_round_trips() {
            let id = input.id();
            assert_eq!(
                ok.idempotency_key.as_deref(),
                (!id.is_empty()).then_some(id)
            );
        }
    } else {
        for rt in &v.round_trips {
            assert!(rt.tampered.is_err());
        }
    }
}
