//! Generic HMAC, for providers without a scheme of their own: which header carries the
//! signature, which hash, which encoding, an optional prefix (`sha256=`), an optional signed
//! timestamp header, and the template of the signed content (`{timestamp}.{body}`).

use super::external_mac::ExternalMacs;
use super::mac::{self, Algorithm};
use super::{check_timestamp, Secret, SignatureError, SignedRequest, Verified};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// How the signature is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// A generic HMAC scheme's settings (the source's `generic` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericHmac {
    /// Header holding the signature, e.g. `x-signature`.
    pub header: String,
    #[serde(default = "default_algorithm")]
    pub algorithm: Algorithm,
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,
    /// Text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    /// Header holding a signed Unix timestamp (seconds); enables the tolerance check.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Header holding the provider's delivery id (the idempotency key).
    #[serde(default)]
    pub id_header: Option<String>,
    /// The signed content: `{body}`, `{timestamp}` and `{id}` are replaced. Default `{body}`.
    #[serde(default = "default_template")]
    pub template: String,
}

fn default_algorithm() -> Algorithm {
    Algorithm::Sha256
}
fn default_encoding() -> Encoding {
    Encoding::Hex
}
fn default_template() -> String {
    "{body}".to_string()
}

enum Piece<'a> {
    Text(&'a str),
    Body,
    Timestamp,
    Id,
}

/// An HTTP field name (RFC 9110 `token`): the only names a request can carry.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits a template into literal text and placeholders.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let (text, tail) = rest.split_at(start);
        let placeholder = [
            ("{body}", Piece::Body),
            ("{timestamp}", Piece::Timestamp),
            ("{id}", Piece::Id),
        ]
        .into_iter()
        .find(|(p, _)| tail.starts_with(p));
        match placeholder {
            Some((p, piece)) => {
                if !text.is_empty() {
                    out.push(Piece::Text(text));
                }
                out.push(piece);
                rest = &tail[p.len()..];
            }
            None => {
                out.push(Piece::Text(&rest[..start + 1]));
                rest = &tail[1..];
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

impl GenericHmac {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.header.trim().is_empty() {
            return Err(("generic.header", "must name a header"));
        }
        // Settings under which no request could ever verify are refused here, naming the
        // field, rather than failing every request later (found by fuzzing: fuzz/sig_generic).
        let names = [
            ("generic.header", Some(&self.header)),
            ("generic.timestamp_header", self.timestamp_header.as_ref()),
            ("generic.id_header", self.id_header.as_ref()),
        ];
        for (i, (field, name)) in names.iter().enumerate() {
            let Some(name) = name else { continue };
            if !is_header_name(name) {
                return Err((field, "must be an HTTP header name"));
            }
            let earlier = names[..i].iter().filter_map(|(_, n)| *n);
            if earlier.clone().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err((field, "must differ from the other headers"));
            }
        }
        // The header value is trimmed before the prefix is removed (as HTTP trims it).
        if self.prefix.starts_with(char::is_whitespace) || self.prefix.contains(char::is_control) {
            return Err((
                "generic.prefix",
                "must not start with whitespace or contain control characters",
            ));
        }
        let p = pieces(&self.template);
        if !p.iter().any(|x| matches!(x, Piece::Body)) {
            return Err(("generic.template", "must contain {body}"));
        }
        if p.iter().any(|x| matches!(x, Piece::Timestamp)) && self.timestamp_header.is_none() {
            return Err((
                "generic.template",
                "uses {timestamp} but timestamp_header is not set",
            ));
        }
        if p.iter().any(|x| matches!(x, Piece::Id)) && self.id_header.is_none() {
            return Err(("generic.template", "uses {id} but id_header is not set"));
        }
        Ok(())
    }

    fn header_name(&self) -> &'static str {
        "generic signature header"
    }

    fn content<'a>(&'a self, body: &'a [u8], timestamp: &'a str, id: &'a str) -> Vec<&'a [u8]> {
        pieces(&self.template)
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_bytes(),
                Piece::Body => body,
                Piece::Timestamp => timestamp.as_bytes(),
                Piece::Id => id.as_bytes(),
            })
            .collect()
    }

    pub(super) fn verify_with(
        &self,
        req: &SignedRequest<'_>,
        secrets: &[Secret],
        external: Option<&ExternalMacs>,
    ) -> Result<Verified, SignatureError> {
        let h = req.headers;
        let header = h
            .get(&self.header)
            .ok_or(SignatureError::MissingHeader("generic signature header"))?;
        let encoded = header
            .trim()
            .strip_prefix(self.prefix.as_str())
            .ok_or(SignatureError::MalformedHeader(self.header_name()))?;
        let candidate = match self.encoding {
            Encoding::Hex => hex::decode(encoded).ok(),
            Encoding::Base64 => B64.decode(encoded).ok(),
        }
        .ok_or(SignatureError::MalformedHeader(self.header_name()))?;
        let timestamp = match &self.timestamp_header {
            Some(name) => {
                let v = h
                    .get(name)
                    .ok_or(SignatureError::MissingHeader("generic timestamp header"))?;
                check_timestamp(
                    v,
                    "generic timestamp header",
                    req.now_secs,
                    req.tolerance_secs,
                )?;
                v.trim()
            }
            None => "",
        };
        let id = self
            .id_header
            .as_deref()
            .and_then(|n| h.get(n))
            .unwrap_or("");
        let parts = self.content(req.body, timestamp, id);
        mac::verify_any(external, self.algorithm, secrets, &parts, &[&candidate])?;
        Ok(Verified {
            idempotency_key: (!id.is_empty()).then(|| id.to_string()),
            challenge: None,
        })
    }

    pub(super) fn sign(
        &self,
        secret: &Secret,
        id: &str,
        now_secs: i64,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let ts = now_secs.to_string();
        let key = secret.hmac_key().unwrap_or_default();
        let mac = mac::compute(self.algorithm, key, &self.content(body, &ts, id));
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => B64.encode(mac),
        };
        let mut out = vec![(
            self.header.to_ascii_lowercase(),
            format!("{}{encoded}", self.prefix),
        )];
        if let Some(t) = &self.timestamp_header {
            out.push((t.to_ascii_lowercase(), ts));
        }
        if let Some(i) = &self.id_header {
            out.push((i.to_ascii_lowercase(), id.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    impl GenericHmac {
        fn verify(
            &self,
            req: &SignedRequest<'_>,
            secrets: &[Secret],
        ) -> Result<Verified, SignatureError> {
            self.verify_with(req, secrets, None)
        }
    }

    use super::*;
    use crate::headers::HeaderMap;

    fn config() -> GenericHmac {
        serde_json::from_str(
            r#"{"header":"X-Signature","algorithm":"sha512","encoding":"base64","prefix":"sha512=",
                "timestamp_header":"X-Timestamp","id_header":"X-Event-Id","template":"{id}:{timestamp}:{body}"}"#,
        )
        .unwrap()
    }

    fn check(
        g: &GenericHmac,
        h: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, SignatureError> {
        let req = SignedRequest {
            headers: h,
            body,
            now_secs: now,
            tolerance_secs: 300,
        };
        g.verify(&req, &[Secret::raw("k").unwrap()])
    }

    #[test]
    fn configured_scheme_round_trips() {
        let g = config();
        g.validate().unwrap();
        let h: HeaderMap = g
            .sign(&Secret::raw("k").unwrap(), "e1", 1000, b"{}")
            .into_iter()
            .collect();
        assert!(h.get("x-signature").unwrap().starts_with("sha512="));
        assert_eq!(
            check(&g, &h, b"{}", 1000)
                .unwrap()
                .idempotency_key
                .as_deref(),
            Some("e1")
        );
        assert_eq!(check(&g, &h, b"{ }", 1000), Err(SignatureError::Mismatch));
        assert_eq!(
            check(&g, &h, b"{}", 1400),
            Err(SignatureError::TimestampOutOfTolerance)
        );
    }

    #[test]
    fn matches_an_independent_hmac() {
        // Plain "hex sha256 of the body with a sha256= prefix", checked against mac::compute.
        let g: GenericHmac =
            serde_json::from_str(r#"{"header":"x-sig","prefix":"sha256="}"#).unwrap();
        let expected = hex::encode(mac::compute(Algorithm::Sha256, b"k", &[b"payload"]));
        let h: HeaderMap = [("x-sig", format!("sha256={expected}"))]
            .into_iter()
            .collect();
        assert!(check(&g, &h, b"payload", 0).is_ok());
        let h: HeaderMap = [("x-sig", expected)].into_iter().collect();
        assert_eq!(
            check(&g, &h, b"payload", 0),
            Err(SignatureError::MalformedHeader("generic signature header"))
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut g = config();
        g.template = "{timestamp}".into();
        assert_eq!(g.validate().unwrap_err().0, "generic.template");
        let mut g = config();
        g.timestamp_header = None;
        assert_eq!(g.validate().unwrap_err().0, "generic.template");
        let mut g = config();
        g.header = " ".into();
        assert_eq!(g.validate().unwrap_err().0, "generic.header");
    }

    /// Regression (fuzz/sig_generic): these settings passed validation, yet no request, not
    /// even one `sign` produced, could verify (or carry its id): the header lookups
    /// collided, the prefix lost its leading space to the trimming of the header value, or
    /// a name or prefix could not travel in an HTTP header at all.
    #[test]
    fn settings_that_could_never_verify_are_refused() {
        let cases = [
            (
                r#"{"header":"x-sig","timestamp_header":"X-Sig","template":"{timestamp}{body}"}"#,
                "generic.timestamp_header",
            ),
            (
                r#"{"header":"x-sig","id_header":"x-sig","template":"{id}{body}"}"#,
                "generic.id_header",
            ),
            (
                r#"{"header":"x-sig","timestamp_header":"x-t","id_header":"x-t"}"#,
                "generic.id_header",
            ),
            (
                r#"{"header":"x-sig","prefix":" sha256="}"#,
                "generic.prefix",
            ),
            (
                r#"{"header":"x-sig","prefix":"sha256=\n"}"#,
                "generic.prefix",
            ),
            (r#"{"header":"x sig"}"#, "generic.header"),
            (
                r#"{"header":"x-sig","timestamp_header":""}"#,
                "generic.timestamp_header",
            ),
        ];
        for (json, field) in cases {
            let g: GenericHmac = serde_json::from_str(json).unwrap();
            assert_eq!(g.validate().map_err(|e| e.0), Err(field), "{json}");
        }
        // What the first of them signs indeed never verifies: the timestamp lookup finds the
        // signature header.
        let g: GenericHmac = serde_json::from_str(cases[0].0).unwrap();
        let h: HeaderMap = g
            .sign(&Secret::raw("k").unwrap(), "e1", 1000, b"{}")
            .into_iter()
            .collect();
        assert_eq!(
            check(&g, &h, b"{}", 1000),
            Err(SignatureError::MalformedHeader("generic timestamp header"))
        );
        // Trailing space in a prefix, and distinct names in any case, stay valid.
        let ok: GenericHmac = serde_json::from_str(
            r#"{"header":"X-Sig","prefix":"v1= ","timestamp_header":"X-Ts","id_header":"X-Id",
                "template":"{id}.{timestamp}.{body}"}"#,
        )
        .unwrap();
        ok.validate().unwrap();
        let h: HeaderMap = ok
            .sign(&Secret::raw("k").unwrap(), "e1", 1000, b"{}")
            .into_iter()
            .collect();
        assert_eq!(
            check(&ok, &h, b"{}", 1000)
                .unwrap()
                .idempotency_key
                .as_deref(),
            Some("e1")
        );
    }

    #[test]
    fn literal_braces_survive_in_templates() {
        let g: GenericHmac =
            serde_json::from_str(r#"{"header":"x","template":"{x}{body}"}"#).unwrap();
        let parts = g.content(b"B", "", "");
        assert_eq!(parts.concat(), b"{x}B");
    }
}
