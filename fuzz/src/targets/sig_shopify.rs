//! Shopify: `X-Shopify-Hmac-Sha256` (base64) parsing and verification, and the event-id
//! fallback, through `Scheme::verify`.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::Scheme;

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let t = SchemeUnderTest {
        scheme: Scheme::Shopify,
        options: Default::default(),
        verify: keys::SHOPIFY,
        signers: keys::SHOPIFY,
        wrong: &["unrelated"],
    };
    let v = check_scheme(&t, &input, data);
    for ok in v.assert_round_trips() {
        let id = input.id();
        assert_eq!(
            ok.idempotency_key.as_deref(),
            (!id.is_empty()).then_some(id)
        );
    }
    if let Ok(ok) = &v.result {
        // The event id, or the webhook id when the event id is missing or empty.
        let present = |name| input.headers.get(name).filter(|v: &&str| !v.is_empty());
        let expected = present("x-shopify-event-id").or_else(|| present("x-shopify-webhook-id"));
        assert_eq!(ok.idempotency_key.as_deref(), expected);
    }
}
