//! Writing JSON text fast: string literals escaped by `json-escape-simd` (SSE2/AVX2 on
//! x86_64, NEON on aarch64), integers by `itoa`. On wasm32 (the edge) serde_json escapes
//! instead: without SIMD in the build, `json-escape-simd` falls back to a 16-byte kernel
//! emulated in scalar code, slower there than serde_json's byte table.
//!
//! The building blocks of the hand-written encoders on the hot path (the envelope, the SQS
//! request, the consumer's DynamoDB requests and EMF lines). The output is exactly what serde_json writes for the same values; the
//! encoders' tests hold it to that. It must never write invalid JSON or invalid UTF-8.

/// Appends `value` as a JSON string literal (quotes included).
pub fn string(out: &mut Vec<u8>, value: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    json_escape_simd::escape_into(value, out);
    #[cfg(target_arch = "wasm32")]
    serde_escape(out, value);
}

/// serde_json's escaper: writing a `str` into a `Vec` cannot fail.
#[cfg(target_arch = "wasm32")]
fn serde_escape(out: &mut Vec<u8>, value: &str) {
    let _ = serde_json::to_writer(out, value);
}

/// Bodies are escaped this many bytes at a time (see [`long_string`]).
pub(crate) const BODY_CHUNK: usize = 16 * 1024;

/// Appends `value` as a JSON string literal, escaping a body-sized string without a large
/// reserve (see [`long_string_of_parts`]).
pub(crate) fn long_string(out: &mut Vec<u8>, value: &str) {
    long_string_of_parts(out, &[value]);
}

/// Appends the concatenation of `parts` as one JSON string literal.
///
/// Native: the SIMD escaper reserves its worst case (6 bytes out per byte in) before it
/// writes; for a whole body at once that would be six times the body, so it escapes a chunk
/// at a time. Each chunk comes out as a literal of its own; the quotes between chunks are
/// removed (a short move within the cache).
#[cfg(not(target_arch = "wasm32"))]
pub fn long_string_of_parts(out: &mut Vec<u8>, parts: &[&str]) {
    let mut first = true;
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            let mut cut = rest.len().min(BODY_CHUNK);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (chunk, tail) = rest.split_at(cut);
            if first {
                string(out, chunk);
                first = false;
            } else {
                out.pop(); // the closing quote so far: the string goes on
                let start = out.len();
                string(out, chunk);
                out.remove(start); // the chunk's own opening quote
            }
            rest = tail;
        }
    }
    if first {
        out.extend_from_slice(b"\"\"");
    }
}

/// Appends the concatenation of `parts` as one JSON string literal.
///
/// wasm32: serde_json's escaper reserves nothing ahead (see [`serde_parts`]).
#[cfg(target_arch = "wasm32")]
pub fn long_string_of_parts(out: &mut Vec<u8>, parts: &[&str]) {
    serde_parts(out, parts);
}

/// serde_json's escaper over `parts` as one literal: each part is escaped whole, its
/// opening quote dropped as it is written (no second pass over the body).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn serde_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        let mut rest = WithoutOpeningQuote {
            out: &mut *out,
            skipped: false,
        };
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut rest, part);
        out.pop(); // the part's closing quote: the string goes on
    }
    out.push(b'"');
}

/// Writes into `out` all but the first byte it is given (the opening quote of a literal).
struct WithoutOpeningQuote<'a> {
    out: &'a mut Vec<u8>,
    skipped: bool,
}

impl std::io::Write for WithoutOpeningQuote<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match buf.split_first() {
            Some((_, rest)) if !self.skipped => {
                self.skipped = true;
                self.out.extend_from_slice(rest);
            }
            _ => self.out.extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends `"name":` (names are fixed ASCII identifiers, no escaping needed).
pub(crate) fn name(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

pub(crate) fn integer(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        super::string(&mut out, "a\"b\\c\n");
        assert_eq!(out, br#""a\"b\\c\n""#);
    }

    #[test]
    fn short_and_long_strings_are_what_serde_writes() {
        let mut cases: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        cases.extend(
            [
                "",
                "evt_01",
                "application/json; charset=\"utf-8\"",
                "é漢🦀\u{7f}",
            ]
            .map(String::from),
        );
        for len in [127, 128, 129] {
            cases.push("a".repeat(len));
            cases.push("a".repeat(len - 1) + "\"");
        }
        for case in cases {
            let mut out = Vec::new();
            super::string(&mut out, &case);
            assert_eq!(out, serde_json::to_vec(&case).unwrap(), "{case:?}");
        }
    }

    #[test]
    fn parts_make_one_string() {
        let long = "x\"".repeat(super::BODY_CHUNK);
        for parts in [
            vec![],
            vec![""],
            vec!["", "a"],
            vec!["{\"v\":2}\n", "", "漢\u{1}"],
            vec!["a", long.as_str(), "b", long.as_str()],
        ] {
            let expected = serde_json::to_vec(&parts.concat()).unwrap();
            let mut out = Vec::new();
            super::long_string_of_parts(&mut out, &parts);
            assert_eq!(out, expected);
            // The edge's (wasm32) way, checked here too.
            let mut out = Vec::new();
            super::serde_parts(&mut out, &parts);
            assert_eq!(out, expected);
        }
    }
}
