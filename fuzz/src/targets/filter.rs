//! Destination filters (`sluice_protocol::filter`): compiling any document never panics and
//! either fails with a path-and-reason error or yields a filter that keeps its document and
//! recompiles to itself; matching never panics, is deterministic, ignores the body when
//! `uses_body` says so, negates under `$not`, and treats header names case-insensitively.
//!
//! Input: a first line with the filter's JSON, then the event: a JSON object
//! `{"body": <any JSON; absent = not JSON>, "headers": {"name": "value"}, "source": "s"}`
//! (header values that are not strings are skipped), or, if the rest is not a JSON object,
//! an `application/x-www-form-urlencoded` body read with `form_body`.

use serde_json::{json, Map, Value};
use sluice_protocol::filter::{form_body, Filter, FilterEvent};
use std::collections::BTreeMap;

/// One input: the filter's document (`None` when the first line is not JSON) and the
/// event's parts.
#[derive(Debug)]
pub struct Case {
    pub filter: Option<Value>,
    pub body: Option<Value>,
    pub headers: BTreeMap<String, String>,
    pub source: String,
}

impl Case {
    /// Splits an input as the module's header describes. Never fails.
    pub fn parse(data: &[u8]) -> Case {
        let (head, rest) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let filter = serde_json::from_slice::<Value>(head).ok();
        match serde_json::from_slice::<Value>(rest) {
            Ok(Value::Object(event)) => Case {
                filter,
                headers: match event.get("headers") {
                    Some(Value::Object(h)) => h
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((k.to_ascii_lowercase(), v.as_str()?.to_string()))
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                },
                source: event
                    .get("source")
                    .and_then(Value::as_str)
                    .unwrap_or("s")
                    .to_string(),
                body: event.get("body").cloned(),
            },
            _ => {
                let form = form_body(rest);
                check_form(&form);
                Case {
                    filter,
                    body: Some(form),
                    headers: BTreeMap::new(),
                    source: "s".to_string(),
                }
            }
        }
    }

    /// The event the filter is matched against.
    pub fn event(&self) -> FilterEvent<'_> {
        FilterEvent {
            body: self.body.as_ref(),
            headers: &self.headers,
            source: &self.source,
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let case = Case::parse(data);
    let event = case.event();
    let Some(doc) = &case.filter else {
        return;
    };
    let filter = match Filter::compile(doc) {
        Ok(filter) => filter,
        Err(e) => {
            assert!(!e.reason.is_empty());
            let expected = if e.path.is_empty() {
                e.reason.clone()
            } else {
                format!("{}: {}", e.path, e.reason)
            };
            assert_eq!(e.to_string(), expected);
            return;
        }
    };
    assert_eq!(filter.document(), doc);
    assert_eq!(Filter::compile(filter.document()).as_ref(), Ok(&filter));

    let matched = filter.matches(&event);
    assert_eq!(filter.matches(&event), matched, "deterministic");
    if !filter.uses_body() {
        let without_body = FilterEvent {
            body: None,
            ..event
        };
        assert_eq!(
            filter.matches(&without_body),
            matched,
            "the body is not read"
        );
    }
    // Wrapped one level deeper, which may cross the bounds: then it must not compile.
    if let Ok(not) = Filter::compile(&json!({"$not": doc})) {
        assert_eq!(not.matches(&event), !matched, "$not negates");
    }
    if let Ok(both) = Filter::compile(&json!({"$and": [doc, doc]})) {
        assert_eq!(both.matches(&event), matched, "$and of itself");
    }
    if let Ok(either) = Filter::compile(&json!({"$or": [doc, {"$not": doc}]})) {
        assert!(either.matches(&event), "excluded middle");
    }
    if let Some(upper) = upper_case_header_names(doc) {
        let upper = Filter::compile(&upper).expect("only header names changed");
        assert_eq!(upper.matches(&event), matched, "header names ignore case");
    }
}

/// The document with the names directly under `headers` upper-cased, when that changes
/// something and merges no two names.
fn upper_case_header_names(doc: &Value) -> Option<Value> {
    let Some(Value::Object(names)) = doc.get("headers") else {
        return None;
    };
    let upper: Map<String, Value> = names
        .iter()
        .map(|(k, v)| {
            let k = if k.starts_with('$') {
                k.clone()
            } else {
                k.to_ascii_uppercase()
            };
            (k, v.clone())
        })
        .collect();
    if upper.len() != names.len() || upper.keys().eq(names.keys()) {
        return None;
    }
    let mut doc = doc.clone();
    doc["headers"] = Value::Object(upper);
    Some(doc)
}

/// A form body is an object of strings, a repeated field an array of two or more.
fn check_form(form: &Value) {
    let Value::Object(fields) = form else {
        panic!("form_body returned {form}");
    };
    for value in fields.values() {
        match value {
            Value::String(_) => {}
            Value::Array(values) => {
                assert!(values.len() >= 2);
                assert!(values.iter().all(Value::is_string));
            }
            other => panic!("form field {other}"),
        }
    }
}
