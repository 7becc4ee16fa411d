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
        let expected = input
            .headers
            .get("x-shopify-event-id")
            .or_else(|| input.headers.get("x-shopify-webhook-id"))
            .filter(|v| !v.is_empty());
        assert_eq!(ok.idempotency_key.as_deref(), expected);
    }
}
