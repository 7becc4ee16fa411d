//! Which text SQS accepts in a message body: its XML character set, `#x9 | #xA | #xD |
//! #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`. Anything else is refused by
//! `SendMessage` (`InvalidMessageContents`), so a body is queued raw only if it passes here.
//!
//! For a Rust `str` (valid UTF-8, so no surrogates) that leaves two things to find: control
//! characters other than tab, line feed and carriage return, and the non-characters U+FFFE
//! and U+FFFF (`EF BF BE`, `EF BF BF`). This runs over every inline body on the edge, so
//! it is written to vectorise: whole blocks are folded without early exits. It must never
//! pass text SQS would refuse.

const BLOCK: usize = 64;

/// Whether SQS accepts `text` as (part of) a message body.
pub fn is_queueable(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut lead_ef = false;
    for block in blocks.by_ref() {
        let (control, ef) = scan(block);
        if control {
            return false;
        }
        lead_ef |= ef;
    }
    let (control, ef) = scan(blocks.remainder());
    if control {
        return false;
    }
    // `EF` starts U+F000-U+FFFF (fullwidth forms are common in CJK text): only then is
    // the rarer three-byte check worth making.
    !((lead_ef || ef) && has_non_character(bytes))
}

/// (any refused control byte, any `EF` byte) in `block`, without branching per byte.
#[inline(always)]
fn scan(block: &[u8]) -> (bool, bool) {
    let mut control = 0u8;
    let mut ef = 0u8;
    for &b in block {
        control |=
            u8::from(b < 0x20) & u8::from(b != b'\t') & u8::from(b != b'\n') & u8::from(b != b'\r');
        ef |= u8::from(b == 0xEF);
    }
    (control != 0, ef != 0)
}

/// Whether SQS accepts the character `c` (for text built a character at a time).
pub fn is_queueable_char(c: char) -> bool {
    !(c < ' ' && !matches!(c, '\t' | '\n' | '\r') || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// U+FFFE or U+FFFF in valid UTF-8. Text without an `EF` byte (most of it) is passed over
/// by a single fast search first.
pub fn has_non_character(bytes: &[u8]) -> bool {
    bytes.contains(&0xEF)
        && bytes
            .windows(3)
            .any(|w| w[0] == 0xEF && w[1] == 0xBF && (w[2] == 0xBE || w[2] == 0xBF))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule, one character at a time, straight from the SQS documentation.
    fn allowed(c: char) -> bool {
        matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
    }

    #[test]
    fn agrees_with_the_character_rule_everywhere_in_a_block() {
        let probes: Vec<char> = (0u32..0x80)
            .chain([
                0xFF, 0x7FF, 0xD7FF, 0xE000, 0xFF0C, 0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0x10FFFF,
            ])
            .filter_map(char::from_u32)
            .collect();
        for c in probes {
            for len in [0, 1, 31, 62, 63, 64, 65, 127, 128, 200] {
                for at in [0, len / 2, len] {
                    let mut text = "a".repeat(len);
                    text.insert(at, c);
                    assert_eq!(is_queueable(&text), allowed(c), "{c:?} at {at} of {len}");
                    assert_eq!(is_queueable_char(c), allowed(c), "{c:?}");
                }
            }
        }
    }

    #[test]
    fn typical_bodies_are_queueable() {
        assert!(is_queueable(""));
        assert!(is_queueable("{\"a\":\"b\\n\"}\r\n\t"));
        assert!(is_queueable("漢字，。🦀 \u{FF0C}\u{FFFD}"));
        assert!(!is_queueable("a\u{0}b"));
        assert!(!is_queueable("\u{1b}[31m"));
        assert!(!is_queueable(&("，".repeat(40) + "\u{FFFF}")));
    }
}
