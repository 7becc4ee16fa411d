//! Archive keys (`archive/{source}/{yyyy}/{mm}/{dd}/{hh}/{ms}-{event id}.json`) as the CLI's
//! replay reads them back with `archive::parse_key` and `in_window`, and the hour prefixes
//! it lists.
//!
//! Input: any text, parsed as a key; its pieces (or, if it is no key, the first line read as
//! `<ms> <source> <id>`) then drive the key builders.

use sluice_protocol::archive::{hour_prefix, hour_prefixes, in_window, key, parse_key, PREFIX};

const HOUR_MS: u64 = 3_600_000;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_key(text);
    if let Some((ms, id)) = parsed {
        assert!(text.starts_with(PREFIX) && text.ends_with(".json"));
        assert!(!id.is_empty() && !id.contains('/'));
        assert!(in_window(text, ms, ms));
        assert!(!in_window(text, ms.saturating_add(1), u64::MAX) || ms == u64::MAX);
    } else {
        assert!(!in_window(text, 0, u64::MAX));
    }

    // Build keys from the pieces and read them back.
    let (ms, source, id) = match parsed {
        Some((ms, id)) => {
            let source = text[PREFIX.len()..].split('/').next().unwrap_or("");
            (ms, source.to_string(), id.to_string())
        }
        None => {
            let mut words = text.lines().next().unwrap_or("").splitn(3, ' ');
            let ms = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            let source = words.next().unwrap_or("s").to_string();
            let id = words.next().unwrap_or("evt_1").to_string();
            (ms, source, id)
        }
    };
    let built = key(&source, ms, &id);
    assert!(built.starts_with(&hour_prefix(&source, ms)));
    if !id.is_empty() && !id.contains('/') {
        assert_eq!(parse_key(&built), Some((ms, id.as_str())), "{built}");
    } else {
        assert_ne!(parse_key(&built), Some((ms, id.as_str())));
    }

    // A bounded window's prefixes: one per hour, oldest first, covering `ms`.
    let span = u64::from(data.first().copied().unwrap_or(0)) * HOUR_MS / 4;
    let from = ms.saturating_sub(span / 2);
    let to = from.saturating_add(span);
    let prefixes = hour_prefixes(&source, from, to);
    assert_eq!(prefixes.len() as u64, to / HOUR_MS - from / HOUR_MS + 1);
    assert_eq!(prefixes.first(), Some(&hour_prefix(&source, from)));
    assert_eq!(prefixes.last(), Some(&hour_prefix(&source, to)));
    assert!(prefixes.contains(&hour_prefix(&source, ms)) || !(from..=to).contains(&ms));
    if let Some(after) = to.checked_add(1) {
        assert!(hour_prefixes(&source, after, from).is_empty());
    }
}
