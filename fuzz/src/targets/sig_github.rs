//! GitHub: `X-Hub-Signature-256` parsing and verification, through `Scheme::verify`.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::Scheme;

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let t = SchemeUnderTest {
        scheme: Scheme::Github,
        options: Default::default(),
        verify: keys::GITHUB,
        signers: keys::GITHUB,
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
}
