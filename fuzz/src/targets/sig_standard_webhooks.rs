//! Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature` parsing
//! (space-separated `v1,<b64>` HMAC and `v1a,<b64>` ed25519 entries), tolerance and
//! verification with `whsec_` secrets and `whpk_` public keys, through `Scheme::verify`.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::signature::ed25519_pair;
use sluice_protocol::{Scheme, SignatureError};
use std::sync::OnceLock;

/// The `whpk_` key of seed 0x02 x 32: a valid key that signed none of the inputs.
fn other_public_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| ed25519_pair([2; 32]).1)
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let t = SchemeUnderTest {
        scheme: Scheme::StandardWebhooks,
        options: Default::default(),
        verify: &[keys::WHSEC, keys::WHPK],
        signers: &[keys::WHSEC, keys::WHSK],
        // Another HMAC secret and another ed25519 public key.
        wrong: &["whsec_c2VjcmV0", other_public_key()],
    };
    let v = check_scheme(&t, &input, data);
    let id = input.id();
    if id.is_empty() {
        // An empty webhook-id is malformed even when signed.
        for rt in &v.round_trips {
            assert_eq!(
                rt.verified,
                Err(SignatureError::MalformedHeader("webhook-id"))
            );
        }
    } else {
        for ok in v.assert_round_trips() {
            assert_eq!(ok.idempotency_key.as_deref(), Some(id));
        }
    }
    if let Ok(ok) = &v.result {
        assert_eq!(
            ok.idempotency_key.as_deref(),
            input.headers.get("webhook-id")
        );
    }
}
