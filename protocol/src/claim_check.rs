//! The claim check: bodies too large to travel inside an SQS message are stored in S3 first,
//! and the envelope carries only a reference (bucket, key, size, SHA-256).
//!
//! This module decides when a body goes to S3 and names the object; it never performs the
//! upload or the download itself. The consumer must check size and SHA-256 before use.

use serde::{Deserialize, Serialize};

/// SQS's hard limit on one message (body plus attributes), in bytes.
pub const SQS_MESSAGE_LIMIT: usize = 256 * 1024;
/// Default: envelopes larger than this go through S3. Leaves room for message attributes
/// under the 256 KiB limit that every SQS implementation (including moto) enforces.
pub const DEFAULT_INLINE_THRESHOLD: usize = 200 * 1024;

/// Where a claim-checked body is, and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyRef {
    pub bucket: String,
    pub key: String,
    /// Body length in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the body.
    pub sha256: String,
}

/// The object key for an event's body: `payloads/{source}/{yyyy}/{mm}/{dd}/{event_id}`.
/// Date-prefixed so lifecycle rules and `replay --from/--to` can select by day.
pub fn object_key(source: &str, received_at_ms: u64, event_id: &str) -> String {
    let (y, m, d) = civil_date(received_at_ms / 86_400_000);
    format!("payloads/{source}/{y:04}/{m:02}/{d:02}/{event_id}")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated() {
        // 2026-11-23T12:00:00Z
        assert_eq!(
            object_key("github", 1_795_435_200_000, "evt_1"),
            "payloads/github/2026/11/23/evt_1"
        );
        assert_eq!(object_key("s", 0, "e"), "payloads/s/1970/01/01/e");
        // 2024-02-29 (leap day)
        assert_eq!(
            object_key("s", 1_709_164_800_000, "e"),
            "payloads/s/2024/02/29/e"
        );
    }
}
