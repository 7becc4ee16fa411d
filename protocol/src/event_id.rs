//! Sluice's own event ids: `evt_` followed by 26 Crockford base32 characters, a ULID layout
//! (48 bits of milliseconds, then 80 random bits), so ids sort by arrival time.
//!
//! The caller supplies the clock and the randomness (the edge uses `crypto.getRandomValues`);
//! this module never generates either itself.

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Builds an event id from a Unix time in milliseconds and 10 random bytes.
pub fn new_event_id(unix_ms: u64, random: [u8; 10]) -> String {
    let mut value: u128 = u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(30);
    out.push_str("evt_");
    for i in (0..26).rev() {
        let idx = ((value >> (5 * i)) & 0x1F) as usize;
        out.push(ALPHABET[idx] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_fixed_shape_and_sort_by_time() {
        let a = new_event_id(1_700_000_000_000, [0xFF; 10]);
        let b = new_event_id(1_700_000_000_001, [0x00; 10]);
        assert_eq!(a.len(), 30);
        assert!(a.starts_with("evt_"));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn randomness_changes_the_id() {
        let a = new_event_id(1, [1; 10]);
        let b = new_event_id(1, [2; 10]);
        assert_ne!(a, b);
    }
}
