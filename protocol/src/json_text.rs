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
    // Most strings in the hot encoders are short names, ids and header values with nothing
    // to escape: copied as they are, without the escaper's per-call set-up.
    if value.len() <= SHORT && !needs_escape(value.as_bytes()) {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    json_escape_simd::escape_into(value, out);
    #[cfg(target_arch = "wasm32")]
    serde_escape(out, value);
}

/// Strings up to this long are checked for escapes byte by byte first (see [`string`]).
const SHORT: usize = 128;

/// Whether JSON needs any byte of `bytes` escaped: control characters, `"` and `\`
/// (serde_json writes everything else, DEL and non-ASCII included, as it is).
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// serde_json's escaper: writing a `str` into a `Vec` cannot fail.
#[cfg(target_arch = "wasm32")]
fn serde_escape(out: &mut Vec<u8>, value: &str) {
    let _ = serde_json::to_writer(out, value);
}

/// Bodies are escaped this many bytes at a time (see [`long_string`]).
pub(crate) const BODY_CHUNK: usize = 16 * 1024;

/// Appends `value` as a JSON string literal, escaping it a chunk at a time.
///
/// The SIMD escaper reserves its worst case (6 bytes out per byte in) before it writes; for
/// a whole body at once that is a buffer six times the body (60 MiB for a 10 MiB body, in
/// a Worker that has 128 MB). A chunk at a time keeps that reserve small.
pub(crate) fn long_string(out: &mut Vec<u8>, value: &str) {
    long_string_of_parts(out, &[value]);
}

/// Appends the concatenation of `parts` as one JSON string literal, a chunk at a time (see
/// [`long_string`]). Each chunk comes out of the escaper as a literal of its own; the
/// quotes between chunks are removed (a short move within the cache).
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
        for len in [super::SHORT - 1, super::SHORT, super::SHORT + 1] {
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
            let mut out = Vec::new();
            super::long_string_of_parts(&mut out, &parts);
            assert_eq!(out, serde_json::to_vec(&parts.concat()).unwrap());
        }
    }
}
