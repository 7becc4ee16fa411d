//! Event filters: which events a destination receives, written as a JSON document in
//! Hookdeck's filter syntax and matched against the event
//! `{"body": <JSON body>, "headers": {<lower-case name>: <value>}, "source": "<name>"}`.
//!
//! A filter is compiled once ([`Filter::compile`], which validates everything and reports a
//! fault with the JSON path of the offending part) and then matched against many events
//! ([`Filter::matches`]). This module is pure: it performs no I/O, never logs, never
//! panics (no `unwrap`/`expect` outside tests, no unbounded recursion, no indexing that can
//! fail), and never returns any part of an event: matching answers a `bool`, and errors
//! only ever name parts of the filter. [`form_body`] is the one helper that reads a body,
//! and it hands the body's own fields back to the caller who passed it in.
//!
//! # Syntax
//!
//! The document is an object with any of `body`, `headers` and `source` (each a
//! condition on that part of the event) and `$or`, `$and`, `$not` (combining whole
//! documents); every key must match. A condition is:
//!
//! - a string, number, boolean or `null`: equal to the event's value. Numbers compare
//!   numerically (`1` equals `1.0`); a string never equals a number (`"1"` is not `1`);
//!   `null` equals `null` only, not a missing key.
//! - an object of field names: each field's condition holds on the event value's field of
//!   that name. A missing field fails every condition except `{"$exist": false}` (and
//!   `$not` of a failing condition); a missing parent counts as missing fields, so
//!   `{"a": {"b": {"$exist": false}}}` holds when `a` is absent. `{}` holds always.
//! - an array `[c1, c2, ...]`: the event value is an array and, for every `ci`, some
//!   element satisfies `ci` (Hookdeck: "array must contain all the specified values").
//!   Elements may be any condition: `{"amounts": [{"$gte": 100}]}` is "some amount is at
//!   least 100". An empty array is a compile error (`{"$eq": []}` matches an empty array).
//! - an object of operators (keys starting with `$`), ANDed when there are several:
//!
//! | operator | operand | holds when the event value (present) ... |
//! |---|---|---|
//! | `$eq`, `$neq` | any value | is / is not deep-equal to it (exact: no array fan-out) |
//! | `$in`, `$nin` | array of values | is / is not deep-equal to one of them; an event array is "in" if it or any element is |
//! | `$gt`, `$gte`, `$lt`, `$lte` | number or string | is a number (compared numerically) or a string (compared lexicographically by Unicode code point) of the operand's kind |
//! | `$startsWith`, `$endsWith` | string | is a string with that prefix / suffix |
//! | `$contains` | any value | is a string containing it (a string operand), or an array with an element deep-equal to it |
//! | `$exist` | `true` / `false` | is present (`null` counts as present) / is absent |
//! | `$or`, `$and` | non-empty array of conditions | satisfies any / all of them (at the same level: `{"type": {"$or": ["a", "b"]}}`) |
//! | `$not` | a condition | does not satisfy it (this one also holds on a missing value) |
//!
//! Operators, `$eq`/`$neq` included, see the event value itself; only a plain value or an
//! operator-less object fans out over an event array.
//!
//! # Decisions (where Hookdeck's documentation is silent, or Sluice differs)
//!
//! - **Arrays.** A plain value or an operator-less object matches an event array when *any*
//!   element matches (Hookdeck's "array contains"); an object matches one element as a
//!   whole (`{"items": {"id": 1, "qty": 2}}` needs one item with both). The fan-out is one
//!   level: an element that is itself an array is not searched again. A filter array needs
//!   every one of its conditions met by some element (not necessarily distinct ones).
//! - **Mixing** operators and field names in one object is allowed and ANDed (Hookdeck's
//!   own examples do it: `{"event": {...}, "$not": {...}}`).
//! - **Missing values** fail every condition but `$exist: false`; `$neq` and `$nin` also
//!   need the value present (`{"$not": {"$eq": x}}` is the form that holds on absence).
//! - **`$in`/`$nin`** take an array and mean "is one of". Hookdeck's `$in` with a string
//!   operand (substring / element contained) is spelled `$contains` here; `$in` with a
//!   non-array is a compile error that says so. Hookdeck has no `$contains`.
//! - **Not supported** (compile errors): `$ref` (comparing two event fields), `$regex`
//!   and any other `$`-key. A field whose name starts with `$` cannot be matched.
//! - **No coercion:** header values and the source are strings, so `$gt: 100` never holds
//!   on a header (`{"$gte": "100"}` compares text).
//! - **A body that is not JSON** (`FilterEvent::body` is `None`) is a missing value: every
//!   condition under `body` fails except `$exist: false`, `{}` and `$not` of a failing
//!   condition. `{"body": {"$exist": true}}` means "the body is JSON".
//! - **Header names**, the keys directly under `headers` (also inside `$or`/`$and`/`$not`
//!   there), are lower-cased (ASCII) at compile time; the caller passes lower-case names,
//!   as [`crate::HeaderMap`] stores them. Values compare case-sensitively.
//! - **Form bodies** ([`form_body`]): each field a string; a repeated field an array of
//!   its values in order (as Node's `querystring` does), so a plain value still matches any
//!   of them. Brackets (`a[b]=c`) are not interpreted.
//!
//! # Bounds
//!
//! A filter may nest at most [`MAX_DEPTH`] (32) levels (the document itself is level 1,
//! every object, array or value inside one level deeper) and hold at most [`MAX_NODES`]
//! (1,000) JSON values in all (each object, array, string, number, boolean and `null`,
//! operands included, counts one); deeper or larger documents are compile errors. The
//! event is only walked where the filter points: a lookup is one map access, and recursion
//! follows the compiled filter (at most 32 levels deep), never the event, so a deeply
//! nested event costs nothing extra. Each filter node is evaluated at most once per event
//! value it reaches, so a match costs O(filter nodes) plus, where the filter crosses event
//! arrays, O(filter nodes × the elements it crosses) in the worst case (bounded by
//! filter size × event size); each comparison is linear in the filter operand (deep
//! equality stops at the operand's leaves) or the event string (prefix, substring).

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Deepest nesting a filter may have (the document itself is level 1).
pub const MAX_DEPTH: usize = 32;

/// Most JSON values a filter may hold, operands included.
pub const MAX_NODES: usize = 1_000;

/// Why a filter does not compile, and where: `path` is the JSON path of the fault within
/// the filter (`body.type.$startsWith`, `body.$or[1]`; empty for the document itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}", .path, separator(.path), .reason)]
pub struct FilterError {
    /// Where in the filter: keys joined by `.`, array indices as `[i]`.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

fn separator(path: &str) -> &'static str {
    if path.is_empty() {
        ""
    } else {
        ": "
    }
}

fn fault(path: &str, reason: impl Into<String>) -> FilterError {
    FilterError {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// What a filter is matched against.
#[derive(Debug, Clone, Copy)]
pub struct FilterEvent<'a> {
    /// The event's body as JSON; `None` when it is not JSON (every condition under `body`
    /// then sees a missing value).
    pub body: Option<&'a Value>,
    /// Header names lower-case, as [`crate::HeaderMap`] stores them.
    pub headers: &'a BTreeMap<String, String>,
    /// The source's name.
    pub source: &'a str,
}

/// A compiled filter. Build it with [`Filter::compile`]; match with [`Filter::matches`].
#[derive(Debug, Clone)]
pub struct Filter {
    document: Value,
    root: Node,
    uses_body: bool,
}

impl PartialEq for Filter {
    /// Filters are equal when their documents are.
    fn eq(&self, other: &Self) -> bool {
        self.document == other.document
    }
}

impl Filter {
    /// Validates and compiles a filter document. Every fault (an unknown key or operator,
    /// an operand of the wrong type, too deep or too large a document) is an error naming
    /// its path.
    pub fn compile(document: &Value) -> Result<Filter, FilterError> {
        let mut compiler = Compiler {
            nodes: 0,
            uses_body: false,
        };
        let root = compiler.document(document, "", 1)?;
        Ok(Filter {
            // Cloned only once validated: at most MAX_DEPTH deep and MAX_NODES large.
            document: document.clone(),
            root,
            uses_body: compiler.uses_body,
        })
    }

    /// True when the event matches.
    pub fn matches(&self, event: &FilterEvent<'_>) -> bool {
        eval(&self.root, Some(View::Event(event)))
    }

    /// True when the filter looks at the body: otherwise the caller need not parse it
    /// (and may pass `body: None`).
    pub fn uses_body(&self) -> bool {
        self.uses_body
    }

    /// The document the filter was compiled from, as given.
    pub fn document(&self) -> &Value {
        &self.document
    }
}

/// An `application/x-www-form-urlencoded` body as a JSON object of its fields: each value
/// a string (percent- and `+`-decoded, invalid UTF-8 replaced), a repeated field an array
/// of its values in order. Never fails: an empty body is `{}`.
pub fn form_body(body: &[u8]) -> Value {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(name.as_ref()) {
            None => {
                fields.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => {
                let first_value = first.take();
                *first = Value::Array(vec![first_value, value]);
            }
        }
    }
    Value::Object(fields)
}

// --- Compiled form ----------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    /// Every one holds (an empty list holds always).
    All(Vec<Node>),
    /// Some one holds.
    Any(Vec<Node>),
    Not(Box<Node>),
    /// A plain string, number, boolean or null: equality, fanned out over an array.
    Value(Value),
    /// An operator-less object: each field's condition on that field; fanned out over an
    /// array (one element must satisfy all of them).
    Fields(Vec<(String, Node)>),
    /// A filter array: each condition met by some element of an event array.
    Elements(Vec<Node>),
    Exist(bool),
    Eq(Value),
    Neq(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Compare(Comparison, Scalar),
    StartsWith(String),
    EndsWith(String),
    Contains(Value),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Gt => ordering == Ordering::Greater,
            Comparison::Gte => ordering != Ordering::Less,
            Comparison::Lt => ordering == Ordering::Less,
            Comparison::Lte => ordering != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone)]
enum Scalar {
    Number(Number),
    String(String),
}

/// Where field names are: header names are lower-cased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Value,
    HeaderNames,
}

const OPERATORS: &str = "$eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $startsWith, $endsWith, \
                         $contains, $exist, $or, $and, $not";

fn key_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Both `All` and `Any` of one part are that part.
fn all(mut parts: Vec<Node>) -> Node {
    if parts.len() == 1 {
        if let Some(only) = parts.pop() {
            return only;
        }
    }
    Node::All(parts)
}

struct Compiler {
    nodes: usize,
    uses_body: bool,
}

impl Compiler {
    /// Counts one JSON value at `depth`, refusing past the bounds. Every value of the
    /// document passes here before anything inside it is looked at, so compilation
    /// recurses at most MAX_DEPTH deep whatever the document.
    fn visit(&mut self, depth: usize, path: &str) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            return Err(fault(
                path,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(fault(
                path,
                format!("the filter holds more than {MAX_NODES} values"),
            ));
        }
        Ok(())
    }

    /// Counts an operand and everything in it.
    fn literal(&mut self, value: &Value, depth: usize, path: &str) -> Result<(), FilterError> {
        self.visit(depth, path)?;
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.literal(item, depth + 1, &index_path(path, i))?;
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    self.literal(item, depth + 1, &key_path(path, key))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A whole document: `body`, `headers`, `source`, `$or`, `$and`, `$not`.
    fn document(&mut self, value: &Value, path: &str, depth: usize) -> Result<Node, FilterError> {
        self.visit(depth, path)?;
        let Value::Object(entries) = value else {
            return Err(fault(
                path,
                "a filter must be a JSON object with `body`, `headers` or `source`",
            ));
        };
        let mut parts = Vec::new();
        let mut fields = Vec::new();
        for (key, item) in entries {
            let here = key_path(path, key);
            match key.as_str() {
                "body" => {
                    self.uses_body = true;
                    let node = self.condition(item, &here, depth + 1, Level::Value)?;
                    fields.push((key.clone(), node));
                }
                "headers" => {
                    let node = self.condition(item, &here, depth + 1, Level::HeaderNames)?;
                    fields.push((key.clone(), node));
                }
                "source" => {
                    let node = self.condition(item, &here, depth + 1, Level::Value)?;
                    fields.push((key.clone(), node));
                }
                "$or" | "$and" => {
                    let list =
                        self.list(item, &here, depth + 1, |c, v, p, d| c.document(v, p, d))?;
                    parts.push(if key == "$or" {
                        Node::Any(list)
                    } else {
                        Node::All(list)
                    });
                }
                "$not" => parts.push(Node::Not(Box::new(self.document(
                    item,
                    &here,
                    depth + 1,
                )?))),
                _ if key.starts_with('$') => {
                    return Err(fault(
                        &here,
                        "unknown operator at the top level: expected $or, $and or $not",
                    ))
                }
                _ => {
                    return Err(fault(
                        &here,
                        "unknown field: expected `body`, `headers` or `source`",
                    ))
                }
            }
        }
        if !fields.is_empty() {
            parts.push(Node::Fields(fields));
        }
        Ok(all(parts))
    }

    /// A non-empty array of conditions (`$or`, `$and`), each compiled by `each`.
    fn list(
        &mut self,
        value: &Value,
        path: &str,
        depth: usize,
        mut each: impl FnMut(&mut Self, &Value, &str, usize) -> Result<Node, FilterError>,
    ) -> Result<Vec<Node>, FilterError> {
        self.visit(depth, path)?;
        match value {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, item)| each(self, item, &index_path(path, i), depth + 1))
                .collect(),
            _ => Err(fault(path, "expects a non-empty array of filters")),
        }
    }

    /// A condition on one value.
    fn condition(
        &mut self,
        value: &Value,
        path: &str,
        depth: usize,
        level: Level,
    ) -> Result<Node, FilterError> {
        match value {
            Value::Object(entries) => self.object(entries, path, depth, level),
            Value::Array(items) => {
                self.visit(depth, path)?;
                if items.is_empty() {
                    return Err(fault(
                        path,
                        "an empty array matches nothing (use {\"$eq\": []} for an empty array)",
                    ));
                }
                let nodes = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.condition(item, &index_path(path, i), depth + 1, Level::Value)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Node::Elements(nodes))
            }
            _ => {
                self.visit(depth, path)?;
                Ok(Node::Value(value.clone()))
            }
        }
    }

    fn object(
        &mut self,
        entries: &Map<String, Value>,
        path: &str,
        depth: usize,
        level: Level,
    ) -> Result<Node, FilterError> {
        self.visit(depth, path)?;
        let mut parts = Vec::new();
        let mut fields = Vec::new();
        for (key, item) in entries {
            let here = key_path(path, key);
            if key.starts_with('$') {
                parts.push(self.operator(key, item, &here, depth + 1, level)?);
            } else {
                let name = match level {
                    Level::HeaderNames => key.to_ascii_lowercase(),
                    Level::Value => key.clone(),
                };
                fields.push((name, self.condition(item, &here, depth + 1, Level::Value)?));
            }
        }
        if !fields.is_empty() {
            parts.push(Node::Fields(fields));
        }
        Ok(all(parts))
    }

    /// One operator; `operand` is at `depth`, `path` ends with the operator.
    fn operator(
        &mut self,
        op: &str,
        operand: &Value,
        path: &str,
        depth: usize,
        level: Level,
    ) -> Result<Node, FilterError> {
        let node = match op {
            "$eq" | "$neq" | "$contains" => {
                self.literal(operand, depth, path)?;
                let operand = operand.clone();
                match op {
                    "$eq" => Node::Eq(operand),
                    "$neq" => Node::Neq(operand),
                    _ => Node::Contains(operand),
                }
            }
            "$in" | "$nin" => {
                let Value::Array(items) = operand else {
                    let hint = if operand.is_string() && op == "$in" {
                        " of values (Hookdeck's `$in` with a string is `$contains` here)"
                    } else {
                        " of values"
                    };
                    return Err(fault(path, format!("expects an array{hint}")));
                };
                self.literal(operand, depth, path)?;
                if op == "$in" {
                    Node::In(items.clone())
                } else {
                    Node::Nin(items.clone())
                }
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                self.visit(depth, path)?;
                let scalar = match operand {
                    Value::Number(n) => Scalar::Number(n.clone()),
                    Value::String(s) => Scalar::String(s.clone()),
                    _ => return Err(fault(path, "expects a number or a string")),
                };
                let comparison = match op {
                    "$gt" => Comparison::Gt,
                    "$gte" => Comparison::Gte,
                    "$lt" => Comparison::Lt,
                    _ => Comparison::Lte,
                };
                Node::Compare(comparison, scalar)
            }
            "$startsWith" | "$endsWith" => {
                self.visit(depth, path)?;
                let Value::String(text) = operand else {
                    return Err(fault(path, "expects a string"));
                };
                if op == "$startsWith" {
                    Node::StartsWith(text.clone())
                } else {
                    Node::EndsWith(text.clone())
                }
            }
            "$exist" => {
                self.visit(depth, path)?;
                let Value::Bool(want) = operand else {
                    return Err(fault(path, "expects true or false"));
                };
                Node::Exist(*want)
            }
            "$or" | "$and" => {
                let list = self.list(operand, path, depth, |c, v, p, d| {
                    c.condition(v, p, d, level)
                })?;
                if op == "$or" {
                    Node::Any(list)
                } else {
                    Node::All(list)
                }
            }
            "$not" => Node::Not(Box::new(self.condition(operand, path, depth, level)?)),
            "$ref" => {
                return Err(fault(
                    path,
                    "unknown operator: `$ref` (comparing two fields) is not supported",
                ))
            }
            "$regex" => {
                return Err(fault(
                    path,
                    "unknown operator: regular expressions are not supported",
                ))
            }
            _ => {
                return Err(fault(
                    path,
                    format!("unknown operator: expected one of {OPERATORS}"),
                ))
            }
        };
        Ok(node)
    }
}

// --- Matching ---------------------------------------------------------------------------

/// A value of the event as the filter sees it, borrowed: no part of the event is copied.
#[derive(Clone, Copy)]
enum View<'a> {
    /// The whole event: `body`, `headers`, `source`.
    Event(&'a FilterEvent<'a>),
    Json(&'a Value),
    Headers(&'a BTreeMap<String, String>),
    Str(&'a str),
}

impl<'a> View<'a> {
    fn get(self, key: &str) -> Option<View<'a>> {
        match self {
            View::Event(event) => match key {
                "body" => event.body.map(View::Json),
                "headers" => Some(View::Headers(event.headers)),
                "source" => Some(View::Str(event.source)),
                _ => None,
            },
            View::Json(Value::Object(fields)) => fields.get(key).map(View::Json),
            View::Headers(headers) => headers.get(key).map(|v| View::Str(v)),
            _ => None,
        }
    }

    fn as_str(self) -> Option<&'a str> {
        match self {
            View::Json(Value::String(s)) => Some(s),
            View::Str(s) => Some(s),
            _ => None,
        }
    }

    fn array(self) -> Option<&'a [Value]> {
        match self {
            View::Json(Value::Array(items)) => Some(items),
            _ => None,
        }
    }

    /// Equality with a plain value (not an array or object).
    fn equals_plain(self, plain: &Value) -> bool {
        match self {
            View::Json(value) => json_eq(value, plain),
            View::Str(s) => plain.as_str() == Some(s),
            View::Event(_) | View::Headers(_) => false,
        }
    }

    /// Deep equality with an operand.
    fn deep_eq(self, operand: &Value) -> bool {
        match self {
            View::Json(value) => json_eq(value, operand),
            View::Str(s) => operand.as_str() == Some(s),
            View::Headers(headers) => match operand {
                Value::Object(fields) => {
                    fields.len() == headers.len()
                        && fields
                            .iter()
                            .all(|(k, v)| headers.get(k).map(String::as_str) == v.as_str())
                }
                _ => false,
            },
            View::Event(_) => false,
        }
    }
}

/// Deep equality, numbers numerically. Recursion follows `operand` (a filter literal, at
/// most MAX_DEPTH deep) and stops at its leaves.
fn json_eq(value: &Value, operand: &Value) -> bool {
    match (value, operand) {
        (Value::Number(a), Value::Number(b)) => number_cmp(a, b) == Some(Ordering::Equal),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(k, y)| a.get(k).is_some_and(|x| json_eq(x, y)))
        }
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// Integers exactly (i64 and u64 alike), anything else as f64.
fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    fn integer(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn compare(view: View<'_>, scalar: &Scalar) -> Option<Ordering> {
    match (view, scalar) {
        (View::Json(Value::Number(a)), Scalar::Number(b)) => number_cmp(a, b),
        (_, Scalar::String(b)) => Some(view.as_str()?.cmp(b.as_str())),
        _ => None,
    }
}

fn in_list(view: View<'_>, list: &[Value]) -> bool {
    list.iter().any(|item| view.deep_eq(item))
        || view.array().is_some_and(|elements| {
            elements
                .iter()
                .any(|e| list.iter().any(|item| json_eq(e, item)))
        })
}

fn contains(view: View<'_>, operand: &Value) -> bool {
    if let Some(elements) = view.array() {
        return elements.iter().any(|e| json_eq(e, operand));
    }
    match (view.as_str(), operand) {
        (Some(text), Value::String(needle)) => text.contains(needle.as_str()),
        _ => false,
    }
}

/// Each field's condition on `value`'s field (missing when `value` is missing or has no
/// fields): no fan-out here.
fn fields_hold(fields: &[(String, Node)], value: Option<View<'_>>) -> bool {
    fields
        .iter()
        .all(|(key, node)| eval(node, value.and_then(|v| v.get(key))))
}

/// Recursion follows the compiled filter only (at most MAX_DEPTH deep): an array fan-out
/// looks at the elements without fanning out again.
fn eval(node: &Node, value: Option<View<'_>>) -> bool {
    match node {
        Node::All(nodes) => nodes.iter().all(|n| eval(n, value)),
        Node::Any(nodes) => nodes.iter().any(|n| eval(n, value)),
        Node::Not(inner) => !eval(inner, value),
        Node::Exist(want) => value.is_some() == *want,
        Node::Value(plain) => value.is_some_and(|v| match v.array() {
            Some(elements) => elements.iter().any(|e| json_eq(e, plain)),
            None => v.equals_plain(plain),
        }),
        Node::Fields(fields) => match value.and_then(View::array) {
            Some(elements) => elements
                .iter()
                .any(|e| fields_hold(fields, Some(View::Json(e)))),
            None => fields_hold(fields, value),
        },
        Node::Elements(nodes) => value.and_then(View::array).is_some_and(|elements| {
            nodes
                .iter()
                .all(|n| elements.iter().any(|e| eval(n, Some(View::Json(e)))))
        }),
        Node::Eq(operand) => value.is_some_and(|v| v.deep_eq(operand)),
        Node::Neq(operand) => value.is_some_and(|v| !v.deep_eq(operand)),
        Node::In(list) => value.is_some_and(|v| in_list(v, list)),
        Node::Nin(list) => value.is_some_and(|v| !in_list(v, list)),
        Node::Compare(comparison, scalar) => value
            .and_then(|v| compare(v, scalar))
            .is_some_and(|o| comparison.accepts(o)),
        Node::StartsWith(prefix) => value
            .and_then(View::as_str)
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        Node::EndsWith(suffix) => value
            .and_then(View::as_str)
            .is_some_and(|s| s.ends_with(suffix.as_str())),
        Node::Contains(operand) => value.is_some_and(|v| contains(v, operand)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Matches `filter` against an event with `body`, no headers, source `s`.
    fn body_matches(filter: Value, body: Value) -> bool {
        let f = Filter::compile(&filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let h = BTreeMap::new();
        f.matches(&FilterEvent {
            body: Some(&body),
            headers: &h,
            source: "s",
        })
    }

    /// A condition on `body.v` against the event body `{"v": value}`.
    fn on(condition: Value, value: Value) -> bool {
        body_matches(json!({"body": {"v": condition}}), json!({"v": value}))
    }

    /// A condition on `body.v` against a body without `v`.
    fn on_missing(condition: Value) -> bool {
        body_matches(json!({"body": {"v": condition}}), json!({"other": 1}))
    }

    fn error(filter: Value) -> (String, String) {
        let e = Filter::compile(&filter).expect_err(&filter.to_string());
        assert_eq!(
            e.to_string(),
            format!("{}{}{}", e.path, separator(&e.path), e.reason)
        );
        (e.path, e.reason)
    }

    #[test]
    fn plain_values_match_by_equality() {
        assert!(on(json!("a"), json!("a")));
        assert!(!on(json!("a"), json!("b")));
        assert!(on(json!(true), json!(true)));
        assert!(!on(json!(true), json!(false)));
        assert!(on(json!(null), json!(null)));
        assert!(!on(json!(null), json!(0)));
        assert!(!on_missing(json!(null)), "null is not a missing key");
        assert!(on(json!(42), json!(42)));
        assert!(!on(json!(42), json!(43)));
        assert!(!on_missing(json!("a")));
        assert!(!on(json!("a"), json!({"a": 1})));
    }

    #[test]
    fn numbers_compare_numerically_and_never_equal_strings() {
        assert!(on(json!(1), json!(1.0)));
        assert!(on(json!(1.0), json!(1)));
        assert!(on(json!(-5), json!(-5.0)));
        assert!(on(json!(u64::MAX), json!(u64::MAX)));
        assert!(!on(json!(u64::MAX), json!(i64::MAX)));
        assert!(on(json!(0.5), json!(0.5)));
        assert!(!on(json!(1), json!("1")));
        assert!(!on(json!("1"), json!(1)));
        assert!(!on(json!(1), json!(true)));
        assert!(!on(json!(0), json!(null)));
        assert!(on(json!({"$eq": {"a": [1, 2.0]}}), json!({"a": [1.0, 2]})));
        assert!(on(json!({"$gte": 1.5}), json!(2)));
        assert!(!on(json!({"$gt": 2}), json!(2.0)));
    }

    #[test]
    fn objects_nest_and_missing_keys_fail() {
        let body = json!({"data": {"object": {"amount": 1200, "currency": "usd"}}, "type": "x"});
        assert!(body_matches(
            json!({"body": {"data": {"object": {"currency": "usd"}}}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"body": {"type": "x", "data": {"object": {"amount": 1200, "currency": "usd"}}}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"body": {"type": "x", "data": {"object": {"amount": 1}}}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"body": {"data": {"missing": "usd"}}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"body": {"type": {"deeper": "x"}}}),
            body.clone()
        ));
        assert!(body_matches(json!({"body": {}}), body.clone()));
        assert!(
            body_matches(json!({}), body.clone()),
            "{{}} matches everything"
        );
        // A missing parent counts as missing fields.
        assert!(body_matches(
            json!({"body": {"nope": {"deeper": {"$exist": false}}}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"body": {"nope": {"deeper": {"$exist": true}}}}),
            body
        ));
    }

    #[test]
    fn plain_values_and_objects_match_any_element_of_an_event_array() {
        assert!(on(json!("gift"), json!(["x", "gift"])));
        assert!(!on(json!("gift"), json!(["x", "y"])));
        assert!(!on(json!("gift"), json!([])));
        assert!(on(json!(2), json!([1, 2.0])));
        // One element must satisfy the whole object.
        let items = json!([{"id": 1, "qty": 5}, {"id": 2, "qty": 7}]);
        assert!(on(json!({"id": 2}), items.clone()));
        assert!(on(json!({"id": 2, "qty": 7}), items.clone()));
        assert!(!on(json!({"id": 2, "qty": 5}), items.clone()));
        assert!(!on(json!({"id": 3}), items.clone()));
        // Hookdeck's documented example.
        assert!(body_matches(
            json!({"body": {"order": {"items": {"id": 456}}}}),
            json!({"order": {"id": 123, "items": [{"id": 456, "title": "My product"}]}})
        ));
        // One level only: an array inside the array is not searched again.
        assert!(!on(json!("gift"), json!([["gift"]])));
        assert!(!on(json!({"id": 1}), json!([[{"id": 1}]])));
    }

    #[test]
    fn a_filter_array_needs_every_condition_met_by_some_element() {
        let tags = json!(["gift", "something", "another"]);
        assert!(on(json!(["gift", "something"]), tags.clone()));
        assert!(on(json!(["another"]), tags.clone()));
        assert!(!on(json!(["gift", "missing"]), tags.clone()));
        assert!(!on(json!(["gift"]), json!("gift")), "not an array");
        assert!(!on_missing(json!(["gift"])));
        assert!(on(json!([{"$startsWith": "some"}, "gift"]), tags.clone()));
        assert!(on(json!([{"$gte": 100}]), json!([5, 150])));
        assert!(!on(json!([{"$gte": 100}]), json!([5, 50])));
        assert!(on(json!([{"id": 2}]), json!([{"id": 1}, {"id": 2}])));
        // An element that is an array is a value a nested filter array can look into.
        assert!(on(json!([["a", "b"]]), json!([["b", "a", "c"]])));
        assert!(
            on(json!(["a"]), json!([["a"]])),
            "a plain value fans out at its own level"
        );
    }

    #[test]
    fn eq_and_neq_compare_exactly() {
        assert!(on(json!({"$eq": "a"}), json!("a")));
        assert!(!on(json!({"$eq": "a"}), json!("b")));
        assert!(!on(json!({"$eq": "a"}), json!(["a"])), "no fan-out");
        assert!(on(json!({"$eq": ["a"]}), json!(["a"])));
        assert!(!on(json!({"$eq": ["a"]}), json!(["a", "b"])));
        assert!(on(json!({"$eq": []}), json!([])));
        assert!(on(json!({"$eq": {"k": 1}}), json!({"k": 1})));
        assert!(!on(json!({"$eq": {"k": 1}}), json!({"k": 1, "l": 2})));
        assert!(on(json!({"$eq": null}), json!(null)));
        assert!(!on_missing(json!({"$eq": null})));
        assert!(on(json!({"$neq": "a"}), json!("b")));
        assert!(!on(json!({"$neq": "a"}), json!("a")));
        assert!(on(json!({"$neq": 1}), json!("1")));
        assert!(!on(json!({"$neq": 1}), json!(1.0)));
        assert!(
            !on_missing(json!({"$neq": "a"})),
            "a missing value fails $neq"
        );
        assert!(on_missing(json!({"$not": {"$eq": "a"}})), "but $not holds");
    }

    #[test]
    fn in_and_nin_take_a_list() {
        assert!(on(json!({"$in": ["a", "b"]}), json!("b")));
        assert!(!on(json!({"$in": ["a", "b"]}), json!("c")));
        assert!(on(json!({"$in": [1, 2]}), json!(2.0)));
        assert!(
            on(json!({"$in": ["x", "b"]}), json!(["a", "b"])),
            "an element is in"
        );
        assert!(
            on(json!({"$in": [["a", "b"]]}), json!(["a", "b"])),
            "the array is in"
        );
        assert!(!on(json!({"$in": ["x"]}), json!(["a", "b"])));
        assert!(!on_missing(json!({"$in": ["a"]})));
        assert!(on(json!({"$nin": ["a", "b"]}), json!("c")));
        assert!(!on(json!({"$nin": ["a", "b"]}), json!("a")));
        assert!(!on(json!({"$nin": ["a"]}), json!(["b", "a"])));
        assert!(on(json!({"$nin": ["a"]}), json!(["b", "c"])));
        assert!(!on_missing(json!({"$nin": ["a"]})));
        assert!(!on(json!({"$in": []}), json!("a")));
        assert!(on(json!({"$nin": []}), json!("a")));
    }

    #[test]
    fn ordering_operators_on_numbers_and_strings() {
        assert!(on(json!({"$gt": 10}), json!(11)));
        assert!(!on(json!({"$gt": 10}), json!(10)));
        assert!(on(json!({"$gte": 10}), json!(10)));
        assert!(!on(json!({"$gte": 10}), json!(9.99)));
        assert!(on(json!({"$lt": 10}), json!(-1)));
        assert!(!on(json!({"$lt": 10}), json!(10)));
        assert!(on(json!({"$lte": 10}), json!(10.0)));
        assert!(!on(json!({"$lte": 10}), json!(10.5)));
        assert!(on(json!({"$gt": -1}), json!(u64::MAX)));
        assert!(on(json!({"$lt": 1e300}), json!(u64::MAX)));
        // Strings lexicographically (by code point); no coercion between kinds.
        assert!(on(
            json!({"$gt": "2024-01-01"}),
            json!("2024-06-30T00:00:00Z")
        ));
        assert!(!on(json!({"$lt": "apple"}), json!("banana")));
        assert!(
            on(json!({"$lt": "a"}), json!("B")),
            "upper case sorts first"
        );
        assert!(!on(json!({"$gt": 1}), json!("2")));
        assert!(!on(json!({"$gt": "1"}), json!(2)));
        assert!(!on(json!({"$gte": 0}), json!(null)));
        assert!(!on(json!({"$gte": 0}), json!([1])), "no fan-out");
        assert!(!on_missing(json!({"$lte": 0})));
        // Several operators in one object are ANDed.
        assert!(on(json!({"$gte": 100, "$lte": 500}), json!(300)));
        assert!(!on(json!({"$gte": 100, "$lte": 500}), json!(501)));
    }

    #[test]
    fn string_operators() {
        assert!(on(
            json!({"$startsWith": "invoice."}),
            json!("invoice.paid")
        ));
        assert!(!on(
            json!({"$startsWith": "invoice."}),
            json!("charge.invoice.")
        ));
        assert!(!on(json!({"$startsWith": "1"}), json!(12)));
        assert!(on(json!({"$endsWith": ".paid"}), json!("invoice.paid")));
        assert!(!on(
            json!({"$endsWith": ".paid"}),
            json!("invoice.paid.not")
        ));
        assert!(!on_missing(json!({"$endsWith": ""})));
        assert!(on(json!({"$contains": "voice"}), json!("invoice.paid")));
        assert!(!on(json!({"$contains": "charge"}), json!("invoice.paid")));
        assert!(on(json!({"$contains": "admin"}), json!(["user", "admin"])));
        assert!(!on(json!({"$contains": "adm"}), json!(["user", "admin"])));
        assert!(on(json!({"$contains": {"id": 1}}), json!([{"id": 1.0}])));
        assert!(!on(json!({"$contains": 1}), json!("1")));
        assert!(!on_missing(json!({"$contains": "a"})));
    }

    #[test]
    fn exist() {
        assert!(on(json!({"$exist": true}), json!(null)), "null is present");
        assert!(!on(json!({"$exist": false}), json!(null)));
        assert!(on_missing(json!({"$exist": false})));
        assert!(!on_missing(json!({"$exist": true})));
        assert!(on(
            json!({"$exist": true, "$startsWith": "https://"}),
            json!("https://x")
        ));
        assert!(!on(
            json!({"$exist": true, "$startsWith": "https://"}),
            json!("http://x")
        ));
    }

    #[test]
    fn or_and_not_at_a_field() {
        assert!(on(json!({"$or": ["active", "pending"]}), json!("pending")));
        assert!(!on(json!({"$or": ["active", "pending"]}), json!("closed")));
        assert!(on(json!({"$or": [{"$lt": 0}, {"$gt": 100}]}), json!(101)));
        assert!(!on(json!({"$or": [{"$lt": 0}, {"$gt": 100}]}), json!(50)));
        assert!(on(
            json!({"$and": [{"$gte": 100}, {"$lte": 500}]}),
            json!(100)
        ));
        assert!(!on(
            json!({"$and": [{"$gte": 100}, {"$lte": 500}]}),
            json!(99)
        ));
        assert!(on(json!({"$not": "deleted"}), json!("active")));
        assert!(!on(json!({"$not": "deleted"}), json!("deleted")));
        assert!(on(json!({"$not": "spam"}), json!(["ham", "eggs"])));
        assert!(!on(json!({"$not": "spam"}), json!(["ham", "spam"])));
        assert!(on_missing(json!({"$not": "deleted"})));
        assert!(on(json!({"$not": {"$in": ["a", "b"]}}), json!("c")));
        // Operators nest inside combinators inside objects.
        assert!(body_matches(
            json!({"body": {"event": {"type": "message"}, "$not": {"$or": [
                {"event": {"subtype": {"$or": ["message_changed", "message_deleted"]}}},
                {"team_id": {"$or": ["team1", "team2"]}}
            ]}}}),
            json!({"event": {"type": "message", "subtype": "bot_message"}, "team_id": "t9"})
        ));
        assert!(!body_matches(
            json!({"body": {"event": {"type": "message"}, "$not": {"$or": [
                {"event": {"subtype": {"$or": ["message_changed", "message_deleted"]}}},
                {"team_id": {"$or": ["team1", "team2"]}}
            ]}}}),
            json!({"event": {"type": "message"}, "team_id": "team2"})
        ));
    }

    #[test]
    fn mixing_operators_and_fields_ands_them() {
        let filter = json!({"$exist": true, "id": 2});
        assert!(on(filter.clone(), json!({"id": 2})));
        assert!(!on(filter.clone(), json!({"id": 3})));
        assert!(!on_missing(filter));
        let filter = json!({"$neq": {"id": 1}, "id": {"$gt": 0}});
        assert!(on(filter.clone(), json!({"id": 2})));
        assert!(!on(filter, json!({"id": 1})));
    }

    #[test]
    fn top_level_documents_combine() {
        let h = headers(&[
            ("x-github-event", "push"),
            ("user-agent", "GitHub-Hookshot/1"),
        ]);
        let body = json!({"ref": "refs/heads/main", "amount": 1000});
        let event = FilterEvent {
            body: Some(&body),
            headers: &h,
            source: "github",
        };
        let m = |f: Value| Filter::compile(&f).unwrap().matches(&event);
        assert!(m(json!({"source": "github"})));
        assert!(!m(json!({"source": "stripe"})));
        assert!(m(json!({"source": {"$in": ["stripe", "github"]}})));
        assert!(m(
            json!({"source": "github", "body": {"amount": {"$gte": 1000}}})
        ));
        assert!(!m(
            json!({"source": "stripe", "body": {"amount": {"$gte": 1000}}})
        ));
        assert!(m(
            json!({"$or": [{"source": "stripe"}, {"headers": {"x-github-event": "push"}}]})
        ));
        assert!(!m(
            json!({"$or": [{"source": "stripe"}, {"body": {"ref": "x"}}]})
        ));
        assert!(m(
            json!({"$and": [{"source": "github"}, {"body": {"ref": {"$endsWith": "/main"}}}]})
        ));
        assert!(!m(
            json!({"$and": [{"source": "github"}, {"body": {"ref": "x"}}]})
        ));
        assert!(m(json!({"$not": {"source": "stripe"}})));
        assert!(!m(json!({"$not": {"source": "github"}})));
        assert!(m(
            json!({"headers": {"$exist": true}, "source": {"$exist": true}})
        ));
        assert!(m(json!({"source": {"$startsWith": "git"}})));
    }

    #[test]
    fn header_names_are_lower_cased_values_are_not() {
        let h = headers(&[("x-github-event", "push"), ("x-count", "12")]);
        let event = FilterEvent {
            body: None,
            headers: &h,
            source: "s",
        };
        let m = |f: Value| Filter::compile(&f).unwrap().matches(&event);
        assert!(m(json!({"headers": {"X-GitHub-Event": "push"}})));
        assert!(m(json!({"headers": {"x-github-event": "push"}})));
        assert!(!m(json!({"headers": {"X-GitHub-Event": "Push"}})));
        assert!(!m(json!({"headers": {"x-missing": "push"}})));
        assert!(m(json!({"headers": {"X-Missing": {"$exist": false}}})));
        assert!(m(
            json!({"headers": {"$or": [{"X-A": "1"}, {"X-GitHub-Event": "push"}]}})
        ));
        assert!(m(
            json!({"headers": {"$not": {"X-GitHub-Event": "pull_request"}}})
        ));
        assert!(m(
            json!({"headers": {"x-github-event": {"$in": ["push", "ping"]}}})
        ));
        // Values are strings: no numeric coercion.
        assert!(!m(json!({"headers": {"x-count": 12}})));
        assert!(!m(json!({"headers": {"x-count": {"$gt": 10}}})));
        assert!(m(json!({"headers": {"x-count": {"$gte": "12"}}})));
        assert!(m(
            json!({"headers": {"$eq": {"x-github-event": "push", "x-count": "12"}}})
        ));
        assert!(!m(json!({"headers": {"$eq": {"x-github-event": "push"}}})));
        assert!(!m(json!({"headers": "push"})));
        // Only names directly under `headers` are lower-cased.
        let f = Filter::compile(&json!({"body": {"Type": "x"}})).unwrap();
        let body = json!({"type": "x"});
        assert!(!f.matches(&FilterEvent {
            body: Some(&body),
            ..event
        }));
    }

    #[test]
    fn a_body_that_is_not_json_is_missing() {
        let h = headers(&[("x-a", "1")]);
        let event = FilterEvent {
            body: None,
            headers: &h,
            source: "s",
        };
        let m = |f: Value| Filter::compile(&f).unwrap().matches(&event);
        assert!(!m(json!({"body": {"type": "x"}})));
        assert!(!m(json!({"body": {"type": {"$exist": true}}})));
        assert!(!m(json!({"body": {"$exist": true}})));
        assert!(!m(json!({"body": null})));
        assert!(!m(json!({"body": {"type": {"$neq": "x"}}})));
        assert!(m(json!({"body": {"$exist": false}})));
        assert!(m(json!({"body": {"type": {"$exist": false}}})));
        assert!(m(json!({"body": {"$not": {"type": "x"}}})));
        assert!(m(json!({"body": {}})));
        assert!(m(json!({"headers": {"x-a": "1"}})));
    }

    #[test]
    fn a_body_that_is_not_an_object() {
        assert!(body_matches(json!({"body": false}), json!(false)));
        assert!(!body_matches(json!({"body": false}), json!(true)));
        assert!(body_matches(
            json!({"body": {"$startsWith": "he"}}),
            json!("hello")
        ));
        assert!(body_matches(json!({"body": "a"}), json!(["a", "b"])));
        assert!(!body_matches(json!({"body": {"type": "x"}}), json!("type")));
    }

    #[test]
    fn uses_body_says_whether_the_body_is_read() {
        let uses = |f: Value| Filter::compile(&f).unwrap().uses_body();
        assert!(!uses(json!({})));
        assert!(!uses(
            json!({"headers": {"x-github-event": "push"}, "source": "s"})
        ));
        assert!(!uses(
            json!({"$or": [{"source": "a"}, {"headers": {"body": "x"}}]})
        ));
        assert!(uses(json!({"body": {"type": "x"}})));
        assert!(uses(
            json!({"$or": [{"source": "a"}, {"body": {"type": "x"}}]})
        ));
        assert!(uses(json!({"$not": {"body": {"$exist": false}}})));
    }

    #[test]
    fn document_debug_clone_and_equality() {
        let doc = json!({"body": {"type": {"$startsWith": "invoice."}}, "headers": {"X-A": "1"}});
        let f = Filter::compile(&doc).unwrap();
        assert_eq!(f.document(), &doc, "kept as given (header names too)");
        let g = f.clone();
        assert_eq!(f, g);
        assert!(format!("{f:?}").contains("StartsWith"));
        assert_ne!(f, Filter::compile(&json!({})).unwrap());
    }

    #[test]
    fn compile_errors_name_their_path() {
        let cases: &[(Value, &str, &str)] = &[
            (json!("body"), "", "a filter must be a JSON object"),
            (json!([]), "", "a filter must be a JSON object"),
            (json!(null), "", "a filter must be a JSON object"),
            (json!({"query": {}}), "query", "unknown field"),
            (json!({"Body": {}}), "Body", "unknown field"),
            (
                json!({"$eq": {}}),
                "$eq",
                "unknown operator at the top level",
            ),
            (
                json!({"body": {"type": {"$foo": 1}}}),
                "body.type.$foo",
                "unknown operator",
            ),
            (
                json!({"body": {"type": {"$regex": "^a"}}}),
                "body.type.$regex",
                "regular expressions",
            ),
            (json!({"body": {"a": {"$ref": "b"}}}), "body.a.$ref", "$ref"),
            (
                json!({"body": {"type": {"$startsWith": 1}}}),
                "body.type.$startsWith",
                "expects a string",
            ),
            (
                json!({"body": {"type": {"$endsWith": ["a"]}}}),
                "body.type.$endsWith",
                "expects a string",
            ),
            (
                json!({"body": {"a": {"$in": "x"}}}),
                "body.a.$in",
                "`$contains` here",
            ),
            (
                json!({"body": {"a": {"$in": 1}}}),
                "body.a.$in",
                "expects an array",
            ),
            (
                json!({"body": {"a": {"$nin": {"x": 1}}}}),
                "body.a.$nin",
                "expects an array",
            ),
            (
                json!({"body": {"a": {"$exist": "yes"}}}),
                "body.a.$exist",
                "expects true or false",
            ),
            (
                json!({"body": {"a": {"$exist": 1}}}),
                "body.a.$exist",
                "expects true or false",
            ),
            (
                json!({"body": {"a": {"$gt": {}}}}),
                "body.a.$gt",
                "expects a number or a string",
            ),
            (
                json!({"body": {"a": {"$lte": null}}}),
                "body.a.$lte",
                "expects a number or a string",
            ),
            (
                json!({"body": {"a": {"$gte": [1]}}}),
                "body.a.$gte",
                "expects a number or a string",
            ),
            (
                json!({"body": {"a": {"$lt": true}}}),
                "body.a.$lt",
                "expects a number or a string",
            ),
            (
                json!({"body": {"a": {"$or": []}}}),
                "body.a.$or",
                "non-empty array",
            ),
            (
                json!({"body": {"a": {"$and": {"b": 1}}}}),
                "body.a.$and",
                "non-empty array",
            ),
            (json!({"$or": []}), "$or", "non-empty array"),
            (json!({"$and": "x"}), "$and", "non-empty array"),
            (
                json!({"$or": [{"source": "a"}, "b"]}),
                "$or[1]",
                "must be a JSON object",
            ),
            (
                json!({"$or": [{"source": "a"}, {"bogus": 1}]}),
                "$or[1].bogus",
                "unknown field",
            ),
            (json!({"$not": "x"}), "$not", "must be a JSON object"),
            (
                json!({"$not": {"body": {"$bad": 1}}}),
                "$not.body.$bad",
                "unknown operator",
            ),
            (
                json!({"body": {"a": {"$or": [1, {"$x": 2}]}}}),
                "body.a.$or[1].$x",
                "unknown operator",
            ),
            (
                json!({"body": {"a": {"$not": {"$y": 1}}}}),
                "body.a.$not.$y",
                "unknown operator",
            ),
            (json!({"body": {"tags": []}}), "body.tags", "empty array"),
            (
                json!({"body": {"tags": ["a", {"$q": 1}]}}),
                "body.tags[1].$q",
                "unknown operator",
            ),
            (
                json!({"headers": {"X-A": {"$in": "a"}}}),
                "headers.X-A.$in",
                "expects an array",
            ),
        ];
        for (filter, path, reason) in cases {
            let (got_path, got_reason) = error(filter.clone());
            assert_eq!(&got_path, path, "{filter}");
            assert!(got_reason.contains(reason), "{filter}: {got_reason}");
        }
    }

    #[test]
    fn errors_display_path_then_reason() {
        let e = Filter::compile(&json!({"body": {"type": {"$startsWith": 1}}})).unwrap_err();
        assert_eq!(e.to_string(), "body.type.$startsWith: expects a string");
        assert_eq!(e.path, "body.type.$startsWith");
        assert_eq!(e.reason, "expects a string");
        let e = Filter::compile(&json!(1)).unwrap_err();
        assert_eq!(e.path, "");
        assert!(e.to_string().starts_with("a filter must be"));
    }

    /// `{"body": {"k": {"k": ... "leaf"}}}` whose leaf is at `depth` (the document is 1).
    fn nested(depth: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 0..depth.saturating_sub(2) {
            v = json!({ "k": v });
        }
        json!({ "body": v })
    }

    #[test]
    fn depth_is_bounded() {
        assert!(Filter::compile(&nested(MAX_DEPTH)).is_ok());
        let e = Filter::compile(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(e.path, format!("body{}", ".k".repeat(MAX_DEPTH - 1)));
        assert!(e.reason.contains("deeper than 32"), "{e}");
        // Operands count too, and so do arrays.
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH {
            deep = json!([deep]);
        }
        let e = Filter::compile(&json!({"body": {"a": {"$eq": deep}}})).unwrap_err();
        assert!(e.path.starts_with("body.a.$eq[0][0]"), "{e}");
        let e = Filter::compile(&json!({"body": {"a": {"$in": [deep]}}})).unwrap_err();
        assert!(e.reason.contains("deeper"), "{e}");
        // A document far deeper than the limit is refused without recursing into it.
        let mut very = json!(1);
        for _ in 0..5_000 {
            very = Value::Object(Map::from_iter([("k".to_string(), very)]));
        }
        let doc = Value::Object(Map::from_iter([("body".to_string(), very)]));
        assert!(Filter::compile(&doc).is_err());
        teardown(doc);
    }

    #[test]
    fn size_is_bounded() {
        // The document, `body`'s object, `$in`'s array: 3 values, then the elements.
        let fits: Vec<Value> = (0..MAX_NODES - 3).map(|i| json!(i)).collect();
        let f = Filter::compile(&json!({"body": {"$in": fits}})).unwrap();
        assert!(body_matches(f.document().clone(), json!(5)));
        let over: Vec<Value> = (0..MAX_NODES - 2).map(|i| json!(i)).collect();
        let e = Filter::compile(&json!({"body": {"$in": over}})).unwrap_err();
        assert_eq!(e.path, format!("body.$in[{}]", MAX_NODES - 3));
        assert!(e.reason.contains("more than 1000"), "{e}");
        // Field conditions count too.
        let fields: Map<String, Value> = (0..MAX_NODES)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect();
        assert!(Filter::compile(&json!({"body": fields})).is_err());
        let ors: Vec<Value> = (0..MAX_NODES)
            .map(|i| json!({"source": i.to_string()}))
            .collect();
        assert!(Filter::compile(&json!({"$or": ors})).is_err());
    }

    /// Drops a value without recursing (a hand-built deep value could overflow the stack).
    fn teardown(value: Value) {
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::Array(items) => stack.extend(items),
                Value::Object(fields) => stack.extend(fields.into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    #[test]
    fn matching_never_follows_the_event_deeper_than_the_filter() {
        // An event nested 10,000 levels deep (serde_json would refuse to parse it; built
        // by hand) costs a filter only the levels the filter names.
        let mut deep = json!([1]);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        let mut fields = Map::new();
        fields.insert("v".into(), deep);
        fields.insert("w".into(), json!({"x": 1}));
        let body = Value::Object(fields);
        let h = BTreeMap::new();
        let event = FilterEvent {
            body: Some(&body),
            headers: &h,
            source: "s",
        };
        let m = |f: Value| Filter::compile(&f).unwrap().matches(&event);
        for filter in [
            json!({"body": {"v": 1}}),
            json!({"body": {"v": {"k": 1}}}),
            json!({"body": {"v": [[1]]}}),
            json!({"body": {"v": [[[[[[[[1]]]]]]]]}}),
            json!({"body": {"v": {"$eq": [[[1]]]}}}),
            json!({"body": {"v": {"$in": [[[1]]]}}}),
            json!({"body": {"v": {"$contains": [1]}}}),
            json!({"body": {"v": {"$gt": 1}}}),
            json!({"body": {"v": {"$exist": false}}}),
        ] {
            assert!(!m(filter.clone()), "{filter}");
        }
        assert!(m(json!({"body": {"v": {"$exist": true}}})));
        assert!(m(json!({"body": {"w": {"x": 1}}})));
        teardown(body);
    }

    #[test]
    fn form_bodies_become_objects_of_strings() {
        assert_eq!(
            form_body(b"CallSid=CA123&From=%2B1415&Body=hello+world&Empty=&Flag"),
            json!({"CallSid": "CA123", "From": "+1415", "Body": "hello world", "Empty": "", "Flag": ""})
        );
        assert_eq!(
            form_body(b"Digits=5678&Digits=1234&Digits=0&a[b]=c"),
            json!({"Digits": ["5678", "1234", "0"], "a[b]": "c"})
        );
        assert_eq!(form_body(b""), json!({}));
        assert_eq!(form_body(b"k=%FF"), json!({"k": "\u{FFFD}"}));
        // A plain value matches any of a repeated field's values; an operator sees the array.
        let body = form_body(b"Digits=5678&Digits=1234&From=%2B1415");
        assert!(body_matches(
            json!({"body": {"Digits": "1234"}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"body": {"From": {"$startsWith": "+1"}}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"body": {"Digits": {"$startsWith": "12"}}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"body": {"Digits": [{"$startsWith": "12"}]}}),
            body
        ));
    }

    #[test]
    fn the_documented_examples() {
        let stripe = json!({"type": "invoice.payment_succeeded",
                            "data": {"object": {"amount_paid": 1999, "amount": 2500}}});
        let h = headers(&[("x-github-event", "push")]);
        let event = FilterEvent {
            body: Some(&stripe),
            headers: &h,
            source: "stripe",
        };
        let m = |f: Value| Filter::compile(&f).unwrap().matches(&event);
        assert!(m(json!({"body": {"type": {"$startsWith": "invoice."}}})));
        assert!(m(json!({"headers": {"x-github-event": "push"}})));
        assert!(m(
            json!({"source": "stripe", "body": {"data": {"object": {"amount": {"$gte": 1000}}}}})
        ));
        assert!(!m(
            json!({"source": "stripe", "body": {"data": {"object": {"amount": {"$gte": 10000}}}}})
        ));
    }
}
