//! Stripe: `Stripe-Signature` (`t=…,v1=…[,v1=…][,v0=…]`) parsing, timestamp tolerance and
//! verification, through `Scheme::verify`.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::{Scheme, SignatureError};

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let t = SchemeUnderTest {
        scheme: Scheme::Stripe,
        options: Default::default(),
        verify: keys::STRIPE,
        signers: keys::STRIPE,
        wrong: &["unrelated"],
    };
    let v = check_scheme(&t, &input, data);
    let body_id = serde_json::from_slice::<serde_json::Value>(input.body)
        .ok()
        .and_then(|b| b.get("id")?.as_str().map(str::to_string));
    for ok in v.assert_round_trips() {
        assert_eq!(ok.idempotency_key, body_id);
    }
    if let Ok(ok) = &v.result {
        assert_eq!(ok.idempotency_key, body_id);
    }
    // A header with no timestamp or no v1 entry is malformed, whatever else it holds.
    if let Some(header) = input.headers.get("stripe-signature") {
        let items: Vec<_> = header.split(',').map(str::trim).collect();
        if !items.iter().any(|i| i.starts_with("v1=")) || !items.iter().any(|i| i.starts_with("t="))
        {
            assert_eq!(
                v.result,
                Err(SignatureError::MalformedHeader("stripe-signature"))
            );
        }
    }
}
