//! Slack: `X-Slack-Signature` (`v0=<hex>`) and `X-Slack-Request-Timestamp` parsing,
//! tolerance, verification and the `url_verification` challenge, through `Scheme::verify`.

use crate::{check_scheme, keys, Input, SchemeUnderTest};
use sluice_protocol::Scheme;

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let t = SchemeUnderTest {
        scheme: Scheme::Slack,
        options: Default::default(),
        verify: keys::SLACK,
        signers: keys::SLACK,
        wrong: &["unrelated"],
    };
    let v = check_scheme(&t, &input, data);
    let body: Option<serde_json::Value> = serde_json::from_slice(input.body).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name)?.as_str().map(str::to_string))
    };
    let challenge = (field("type").as_deref() == Some("url_verification"))
        .then(|| field("challenge"))
        .flatten();
    for ok in v.assert_round_trips() {
        assert_eq!(ok.idempotency_key, field("event_id"));
        assert_eq!(ok.challenge, challenge);
    }
    if let Ok(ok) = &v.result {
        // A challenge is only ever handed out for a verified url_verification body.
        assert_eq!(ok.challenge, challenge);
    }
}
