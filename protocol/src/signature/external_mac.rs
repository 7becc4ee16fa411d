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
            Some((head, tail)) if head == *part => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
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
