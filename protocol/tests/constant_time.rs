//! Lint: MAC bytes are compared in constant time, in one place.
//!
//! The rule (see `src/signature/mac.rs`): every HMAC is computed and compared in
//! `signature/mac.rs`, whose `verify` uses `hmac`'s `verify_slice` (constant-time) and which
//! contains no `==`/`!=`/`eq`/`cmp` at all. Everywhere else a MAC can only be *produced*, by
//! `mac::compute` or a scheme's `sign`, and only inside a function named `sign`: so no
//! verification path can hold a computed MAC to compare with `==`, a string comparison or
//! anything else. Any other use of the HMAC machinery outside `mac.rs` fails the lint.
//!
//! The checks read the crate's source text (test modules excluded) and are themselves tested
//! against snippets that break each rule.

use std::path::{Path, PathBuf};

/// One rule broken at one place.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    rule: &'static str,
}

/// Tokens of the HMAC machinery that only `mac.rs` may use.
const MAC_MACHINERY: &[&str] = &[
    "Hmac<",
    "Mac::",
    "Mac as",
    "hmac::",
    "new_from_slice",
    "verify_slice",
    "verify_truncated",
    ".finalize(",
    "into_bytes()",
    "ct_eq",
];

/// Comparisons `mac.rs` must not contain at all.
const COMPARISONS: &[&str] = &[
    "==",
    "!=",
    ".eq(",
    "eq_ignore_ascii_case",
    ".cmp(",
    "memcmp",
];

/// The non-test code of a source file, as numbered lines with `//` comments removed.
/// Test modules come last in every file (`#[cfg(test)] mod tests …`); that convention is
/// checked, so nothing after the cut is production code.
fn production_lines(file: &str, text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    if cut < lines.len() {
        let next = lines[cut + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .unwrap_or("");
        assert!(
            next.starts_with("mod tests"),
            "{file}:{}: #[cfg(test)] must introduce the trailing test module, found {next:?}",
            cut + 1
        );
    }
    lines[..cut]
        .iter()
        .enumerate()
        .map(|(i, l)| (i + 1, strip_comment(l).to_string()))
        .collect()
}

/// A line without its `//` comment (string literals in this crate hold no `//` before code).
fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        // Keep `://` inside URL string literals.
        Some(i) if !line[..i].ends_with(':') => &line[..i],
        _ => line,
    }
}

/// The name of the function enclosing line index `at`: the nearest `fn name` above it.
fn enclosing_fn(lines: &[(usize, String)], at: usize) -> Option<String> {
    lines[..=at].iter().rev().find_map(|(_, l)| {
        let rest = l.split("fn ").nth(1)?;
        let before = l.split("fn ").next()?.trim();
        let is_item = before.is_empty()
            || before
                .split_whitespace()
                .all(|w| w.starts_with("pub") || w == "async" || w == "const");
        is_item.then(|| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
    })
}

/// Checks one file's text; `is_mac_rs` for `signature/mac.rs`.
fn check(file: &str, text: &str, is_mac_rs: bool) -> Vec<Violation> {
    let lines = production_lines(file, text);
    let mut out = Vec::new();
    let mut flag = |line: usize, rule: &'static str| {
        out.push(Violation {
            file: file.to_string(),
            line,
            rule,
        })
    };
    for (i, (n, l)) in lines.iter().enumerate() {
        if is_mac_rs {
            if COMPARISONS.iter().any(|c| l.contains(c)) {
                flag(*n, "mac.rs compares with something other than verify_slice");
            }
            continue;
        }
        if MAC_MACHINERY.iter().any(|m| l.contains(m)) {
            flag(*n, "HMAC machinery outside mac.rs");
        }
        let produces_mac = l.contains("mac::compute(")
            || l.match_indices("sign(").any(|(j, _)| is_sign_call(l, j));
        if produces_mac && enclosing_fn(&lines, i).as_deref() != Some("sign") {
            flag(*n, "a MAC is produced outside a `sign` function");
        }
    }
    if is_mac_rs {
        let verify = lines
            .iter()
            .position(|(_, l)| l.contains("pub fn verify("))
            .map(|i| {
                lines[i..]
                    .iter()
                    .take_while(|(_, l)| l.trim() != "}")
                    .map(|(_, l)| l.as_str())
                    .collect::<String>()
            });
        if !verify.is_some_and(|body| body.contains("verify_slice")) {
            flag(0, "mac::verify does not use verify_slice");
        }
    }
    out
}

/// Whether the `sign(` at byte `j` of `line` is a call (not `fn sign(`, not `.verify_sign(`
/// or another name ending in `sign`).
fn is_sign_call(line: &str, j: usize) -> bool {
    let before = &line[..j];
    let prev = before.chars().last();
    let is_own_name = prev.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
    is_own_name && !before.trim_end().ends_with("fn")
}

fn src_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            src_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn mac_bytes_are_compared_only_in_constant_time() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    src_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut checked = 0;
    for path in &files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "signature/tests.rs" {
            continue; // `#[cfg(test)] mod tests;` of signature/mod.rs
        }
        let text = std::fs::read_to_string(path).unwrap();
        violations.extend(check(&rel, &text, rel == "signature/mac.rs"));
        checked += 1;
    }
    assert!(
        files.iter().any(|p| p.ends_with("signature/mac.rs")) && checked >= 15,
        "the lint read the crate ({checked} files)"
    );
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_lint_catches_each_way_of_comparing_a_mac_directly() {
    let verify_with_eq = r#"
pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> bool {
    let expected = mac::compute(Algorithm::Sha256, key, &[req.body]);
    expected == candidate
}
"#;
    let v = check("x.rs", verify_with_eq, false);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "a MAC is produced outside a `sign` function");

    let resign_and_compare = r#"
pub(super) fn verify(req: &SignedRequest<'_>, secret: &Secret) -> bool {
    let headers = sign(secret, req.now_secs, req.body);
    headers[0].1 == header
}
"#;
    assert_eq!(check("x.rs", resign_and_compare, false).len(), 1);

    let raw_hmac = r#"
fn verify(key: &[u8], body: &[u8], candidate: &[u8]) -> bool {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(body);
    m.finalize().into_bytes().as_slice() == candidate
}
"#;
    let v = check("x.rs", raw_hmac, false);
    assert!(
        v.iter().all(|v| v.rule == "HMAC machinery outside mac.rs") && v.len() == 2,
        "{v:?}"
    );

    let mac_rs_with_eq = r#"
pub fn verify(alg: Algorithm, key: &[u8], parts: &[&[u8]], candidate: &[u8]) -> bool {
    compute(alg, key, parts) == candidate
}
"#;
    let v = check("signature/mac.rs", mac_rs_with_eq, true);
    assert_eq!(v.len(), 2, "an == and no verify_slice: {v:?}");

    let hidden_after_tests = "#[cfg(test)]\nfn verify() {}\n";
    assert!(std::panic::catch_unwind(|| check("x.rs", hidden_after_tests, false)).is_err());

    // What the schemes do is fine: producing in `sign`, comparing through mac::verify_any,
    // comparing lengths and names, and test code.
    let fine = r#"
pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[Secret]) -> Result<(), E> {
    if candidates.len() == 0 || version == "v1" { return Err(E::Malformed); }
    mac::verify_any(Algorithm::Sha256, secrets, &parts, &candidates) // not mac::compute(
}
pub(super) fn sign(secret: &Secret, body: &[u8]) -> String {
    hex::encode(mac::compute(Algorithm::Sha256, key, &[body]))
}
#[cfg(test)]
mod tests {
    fn t() { assert!(mac::compute(A, b"k", &[]) == x); }
}
"#;
    assert_eq!(check("x.rs", fine, false), vec![]);
}
