//! The claim-check reference: `BodyRef` as the consumer reads it (alone and inside an
//! envelope's `"encoding":"s3"` body), and the S3 object key the edge derives from the
//! source, the receive time and the event id.
//!
//! Input: a first line `<received_at_ms> <source> <event id>`, then the reference's JSON.

use sluice_protocol::claim_check::{object_key, BodyRef};
use sluice_protocol::{archive, Body, Envelope, ENVELOPE_VERSION};

const DAY_MS: u64 = 86_400_000;

/// The Gregorian day after `(y, m, d)`: an independent check of the key's date arithmetic.
fn next_day(y: i64, m: u32, d: u32) -> (i64, u32, u32) {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    match (d < days, m < 12) {
        (true, _) => (y, m, d + 1),
        (false, true) => (y, m + 1, 1),
        (false, false) => (y + 1, 1, 1),
    }
}

/// `(y, m, d)` from a key `payloads/{source}/{yyyy}/{mm}/{dd}/{id}`.
fn key_date(key: &str, source: &str, id: &str) -> (i64, u32, u32) {
    let prefix = format!("payloads/{source}/");
    let date = key
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(id))
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("key {key:?} is not payloads/{source}/…/{id}"));
    let parts: Vec<&str> = date.split('/').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert!(
        parts[0].len() >= 4 && parts[1].len() == 2 && parts[2].len() == 2,
        "{key}"
    );
    let (y, m, d) = (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
    );
    assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{key}");
    (y, m, d)
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, json) = text.split_once('\n').unwrap_or((text, ""));
    let mut words = first.splitn(3, ' ');
    let ms = words
        .next()
        .and_then(|w| w.parse::<u64>().ok())
        .unwrap_or(0);
    let source = words.next().unwrap_or("s");
    let id = words.next().unwrap_or("evt_1");

    // The key, and the day after it, agree with an independent calendar.
    let key = object_key(source, ms, id);
    let date = key_date(&key, source, id);
    if let Some(next) = ms.checked_add(DAY_MS) {
        let (y, m, d) = date;
        assert_eq!(
            key_date(&object_key(source, next, id), source, id),
            next_day(y, m, d)
        );
    }
    // The archive names the same day for the same instant.
    let (y, m, d) = date;
    assert!(archive::hour_prefix(source, ms)
        .starts_with(&format!("archive/{source}/{y:04}/{m:02}/{d:02}/")));

    // The reference as the consumer reads it.
    if let Ok(reference) = serde_json::from_str::<BodyRef>(json) {
        let again: BodyRef = serde_json::from_str(&serde_json::to_string(&reference).unwrap())
            .expect("a serialised reference reads back");
        assert_eq!(again, reference);
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            id: id.to_string(),
            source: source.to_string(),
            idempotency_key: None,
            received_at_ms: ms,
            content_type: None,
            trace_id: None,
            headers: Default::default(),
            body: Body::S3(reference),
        };
        assert_eq!(Envelope::decode(&envelope.encode()), Ok(envelope.clone()));
        assert!(
            envelope.body.to_bytes().is_err(),
            "claim-checked body read inline"
        );
    }
}
