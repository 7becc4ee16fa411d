//! Points in time and ages as the CLI reads and prints them.
//!
//! Accepted: `now`; relative to now, `-2h`, `-90m`, `-1day 2h` (any `humantime` duration
//! after a minus sign); RFC 3339 in UTC, `2026-11-23T10:00:00Z` (fractional seconds
//! allowed). It must never guess a time zone: offsets other than `Z` are refused. The
//! parsing rules take "now" as an argument ([`parse_at`]), so every rule is unit-testable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Parses a time argument to Unix milliseconds, relative ones against `now_ms`.
pub fn parse_at(text: &str, now_ms: u64) -> Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let d = humantime::parse_duration(rel.trim())
            .map_err(|e| format!("`{text}`: not a relative time ({e}); e.g. -2h, -90m, -1day"))?;
        return Ok(now_ms.saturating_sub(d.as_millis() as u64));
    }
    let at = humantime::parse_rfc3339(t).map_err(|e| {
        format!(
            "`{text}`: not a time ({e}); use RFC 3339 in UTC (2026-11-23T10:00:00Z), \
             a relative time (-2h) or `now`"
        )
    })?;
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| format!("`{text}`: before 1970"))
}

/// clap value parser: a time argument against the current clock.
pub fn parse_arg(text: &str) -> Result<u64, String> {
    parse_at(text, now_ms())
}

/// RFC 3339 (UTC, seconds) for Unix milliseconds. A time RFC 3339 cannot write (after the
/// year 9999: a corrupt timestamp in a dead letter) prints as its number instead.
pub fn rfc3339(ms: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let written = UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .map(|at| write!(out, "{}", humantime::format_rfc3339_seconds(at)));
    match written {
        Some(Ok(())) => out,
        _ => format!("{ms} ms after 1970"),
    }
}

/// A short human age: `42s`, `7m 3s`, `2h 5m`, `3d 4h`.
pub fn age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_rfc3339_cannot_write_print_as_numbers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(253_402_300_800_000),
            "253402300800000 ms after 1970"
        );
        assert_eq!(rfc3339(u64::MAX), format!("{} ms after 1970", u64::MAX));
    }

    // 2026-11-23T12:34:56Z
    const NOW: u64 = 1_795_437_296_000;

    #[test]
    fn absolute_relative_and_now() {
        assert_eq!(parse_at("now", NOW), Ok(NOW));
        assert_eq!(parse_at("2026-11-23T12:34:56Z", NOW), Ok(NOW));
        assert_eq!(parse_at("2026-11-23T12:34:56.5Z", NOW), Ok(NOW + 500));
        assert_eq!(parse_at("-2h", NOW), Ok(NOW - 7_200_000));
        assert_eq!(parse_at("-90m", NOW), Ok(NOW - 5_400_000));
        assert_eq!(parse_at("-1day 2h", NOW), Ok(NOW - 93_600_000));
    }

    #[test]
    fn garbage_and_offsets_are_refused_with_a_hint() {
        for bad in ["yesterday", "-2x", "2026-11-23T12:34:56+01:00", "", "12:00"] {
            let e = parse_at(bad, NOW).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(rfc3339(NOW), "2026-11-23T12:34:56Z");
        assert_eq!(age(42), "42s");
        assert_eq!(age(423), "7m 3s");
        assert_eq!(age(7_500), "2h 5m");
        assert_eq!(age(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }
}
