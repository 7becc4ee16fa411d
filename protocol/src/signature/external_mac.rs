//! HMACs computed outside this crate, checked inside it.
//!
//! The edge runs as wasm, where HMAC-SHA256 is SHA-256 compiled to wasm; the Workers
//! runtime's WebCrypto computes the same MAC in native code, several times faster on large
//! bodies, but only asynchronously, while verification here is synchronous and pure. So the
//! edge verifies in two passes over the same request:
//!
//! 1. [`ExternalMacs::recording`]: every MAC the scheme needs is recorded (algorithm, key,
//!    the exact signed message) and counts as a mismatch for now;
//! 2. the caller computes each recorded MAC, then verifies again with
//!    [`ExternalMacs::answered`]: each MAC is looked up instead of computed, and compared with
//!    the request's candidates in constant time in `mac.rs`, like a MAC computed here.
//!
//! Every rule (headers, timestamps, which bytes are signed) stays in the schemes; only the
//! arithmetic moves. This module must never compare a MAC itself, and never let an answer
//! for one message stand for another: answers are matched on algorithm, key and the whole
//! message, and a request without an answer never verifies.

use super::mac::Algorithm;
use std::cell::RefCell;

/// One MAC a verification needs: HMAC-`algorithm` of `message` under `key`.
#[derive(Clone, PartialEq, Eq)]
pub struct MacRequest {
    pub algorithm: Algorithm,
    pub key: Vec<u8>,
    pub message: Vec<u8>,
}

impl std::fmt::Debug for MacRequest {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacRequest")
            .field("algorithm", &self.algorithm)
            .field("message_len", &self.message.len())
            .finish_non_exhaustive()
    }
}

/// One computed MAC and the request it answers.
struct Answer {
    request: MacRequest,
    mac: Vec<u8>,
}

/// Whether `parts`, concatenated, are exactly `message`.
fn same_message(message: &[u8], parts: &[&[u8]]) -> bool {
    let mut rest = message;
    for part in parts {
        match rest.split_at_checked(part.len()) {
            Some((head, tail)) if same_bytes(head, part) => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// `a == b` for slices of equal length, eight bytes at a time: on wasm32 `==` on slices is
/// a byte-at-a-time `memcmp`, and the edge compares whole bodies here. (Not secret: both
/// sides are the request's own bytes.)
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_match = a8.remainder() == b8.remainder();
    a.len() == b.len()
        && tails_match
        && a8.zip(b8).all(|(x, y)| {
            let word =
                |c: &[u8]| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            word(x) == word(y)
        })
}

enum Mode {
    Recording(RefCell<Vec<MacRequest>>),
    Answered(Vec<Answer>),
}

/// MACs supplied from outside: see the module documentation.
pub struct ExternalMacs {
    mode: Mode,
}

impl std::fmt::Debug for ExternalMacs {
    // Never prints keys or MACs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mode {
            Mode::Recording(r) => write!(f, "ExternalMacs::Recording({})", r.borrow().len()),
            Mode::Answered(a) => write!(f, "ExternalMacs::Answered({})", a.len()),
        }
    }
}

/// What [`ExternalMacs::lookup`] found for one MAC.
pub(crate) enum Lookup<'a> {
    /// Recording pass: noted, not verified.
    Recorded,
    /// The MAC computed outside.
    Answer(&'a [u8]),
    /// No answer for this algorithm, key and message: never verifies.
    Missing,
}

impl ExternalMacs {
    /// The first pass: records the MACs a verification needs.
    pub fn recording() -> Self {
        ExternalMacs {
            mode: Mode::Recording(RefCell::new(Vec::new())),
        }
    }

    /// The MACs recorded so far, each once (empty after an answered pass).
    pub fn take_requests(&self) -> Vec<MacRequest> {
        match &self.mode {
            Mode::Recording(r) => r.take(),
            Mode::Answered(_) => Vec::new(),
        }
    }

    /// The second pass: each request with the MAC computed for it.
    pub fn answered(answers: impl IntoIterator<Item = (MacRequest, Vec<u8>)>) -> Self {
        let answers = answers
            .into_iter()
            .map(|(request, mac)| Answer { request, mac })
            .collect();
        ExternalMacs {
            mode: Mode::Answered(answers),
        }
    }

    /// The MAC of `parts` (concatenated) under `key`, as supplied from outside.
    pub(crate) fn lookup(&self, algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Lookup<'_> {
        let matches = |r: &MacRequest| {
            r.algorithm == algorithm && r.key == key && same_message(&r.message, parts)
        };
        match &self.mode {
            Mode::Recording(recorded) => {
                let mut recorded = recorded.borrow_mut();
                let known = recorded.iter().any(matches);
                if !known {
                    recorded.push(MacRequest {
                        algorithm,
                        key: key.to_vec(),
                        message: parts.concat(),
                    });
                }
                Lookup::Recorded
            }
            Mode::Answered(answers) => answers
                .iter()
                .find(|a| matches(&a.request))
                .map_or(Lookup::Missing, |a| Lookup::Answer(&a.mac)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_only_byte_for_byte() {
        let message: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for split in [0, 1, 7, 8, 9, 500, 1000] {
            let (a, b) = message.split_at(split);
            assert!(same_message(&message, &[a, b]));
        }
        for at in [0, 5, 8, 511, 992, 999] {
            let mut other = message.clone();
            other[at] ^= 0x20;
            assert!(!same_message(&message, &[&other]), "byte {at}");
        }
        assert!(!same_message(&message, &[&message[..999]]));
        assert!(!same_message(&message[..999], &[&message]));
        assert!(!same_bytes(b"abc", b"abcd"));
    }
}
