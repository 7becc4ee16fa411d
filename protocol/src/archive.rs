//! The event archive: every envelope the consumer takes on is kept in the payload bucket
//! under a key dated by when the edge received it, so `sluice replay --from --to` can find
//! a time window by listing hour prefixes, without reading objects outside it.
//!
//! Key: `archive/{source}/{yyyy}/{mm}/{dd}/{hh}/{received_at_ms}-{event_id}.json`; the
//! object is the envelope exactly as queued (a claim-checked body stays a reference to its
//! `payloads/` object). Since envelope version 2 that is a JSON line and the body, not one
//! JSON document; the `.json` suffix stays so archives written before and after list and
//! replay alike. This module only names keys; it never reads or writes S3.

use crate::claim_check::civil_date;

/// Prefix under which archived envelopes live.
pub const PREFIX: &str = "archive/";

const HOUR_MS: u64 = 3_600_000;

/// The archive key of an envelope received at `received_at_ms` (Unix ms).
pub fn key(source: &str, received_at_ms: u64, event_id: &str) -> String {
    format!(
        "{}{received_at_ms}-{event_id}.json",
        hour_prefix(source, received_at_ms)
    )
}

/// `archive/{source}/{yyyy}/{mm}/{dd}/{hh}/` for the hour containing `at_ms`.
pub fn hour_prefix(source: &str, at_ms: u64) -> String {
    let (y, m, d) = civil_date(at_ms / 86_400_000);
    let h = (at_ms % 86_400_000) / HOUR_MS;
    format!("{PREFIX}{source}/{y:04}/{m:02}/{d:02}/{h:02}/")
}

/// The hour prefixes covering `[from_ms, to_ms]`, oldest first (empty if `from > to`).
pub fn hour_prefixes(source: &str, from_ms: u64, to_ms: u64) -> Vec<String> {
    if from_ms > to_ms {
        return Vec::new();
    }
    let first = from_ms / HOUR_MS;
    let last = to_ms / HOUR_MS;
    (first..=last)
        .map(|hour| hour_prefix(source, hour * HOUR_MS))
        .collect()
}

/// `(received_at_ms, event_id)` from an archive key, `None` if it is not one.
pub fn parse_key(key: &str) -> Option<(u64, &str)> {
    let name = key.strip_prefix(PREFIX)?.rsplit('/').next()?;
    let stem = name.strip_suffix(".json")?;
    let (ms, id) = stem.split_once('-')?;
    if id.is_empty() {
        return None;
    }
    Some((ms.parse().ok()?, id))
}

/// True when an archive key's received-at lies in `[from_ms, to_ms]`.
pub fn in_window(key: &str, from_ms: u64, to_ms: u64) -> bool {
    parse_key(key).is_some_and(|(ms, _)| (from_ms..=to_ms).contains(&ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23T12:34:56.789Z
    const T: u64 = 1_795_437_296_789;

    #[test]
    fn keys_are_dated_to_the_hour_and_parse_back() {
        let k = key("github", T, "evt_01ABC");
        assert_eq!(
            k,
            format!("archive/github/2026/11/23/12/{T}-evt_01ABC.json")
        );
        assert_eq!(parse_key(&k), Some((T, "evt_01ABC")));
        assert!(in_window(&k, T, T));
        assert!(!in_window(&k, T + 1, T + 10));
    }

    #[test]
    fn prefixes_cover_the_window_across_midnight() {
        // 2026-11-23T23:10Z .. 2026-11-24T01:00Z
        let from = 1_795_475_400_000;
        let to = from + 110 * 60_000;
        assert_eq!(
            hour_prefixes("s", from, to),
            vec![
                "archive/s/2026/11/23/23/",
                "archive/s/2026/11/24/00/",
                "archive/s/2026/11/24/01/"
            ]
        );
        assert!(hour_prefixes("s", to, from).is_empty());
    }

    #[test]
    fn foreign_keys_are_not_archive_keys() {
        for k in [
            "payloads/s/2026/11/23/evt_1",
            "archive/s/2026/11/23/12/notanumber-evt.json",
            "archive/s/2026/11/23/12/123-.json",
            "archive/s/2026/11/23/12/123-evt",
        ] {
            assert_eq!(parse_key(k), None, "{k}");
        }
    }
}
