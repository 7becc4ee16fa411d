//! The body of an SQS `SendMessage` request (JSON protocol), written directly.
//!
//! The envelope is the message body: its JSON line and its raw text body (the two parts of
//! [`crate::Encoded`]) are escaped here, straight into the request, as one JSON string,
//! with the SIMD escaper of [`crate::json_text`]. The result is the JSON object serde would
//! write for the same message. It must never put anything in the request but the envelope,
//! its attributes and the FIFO ids: no secret, no signature.

use crate::json_text::{long_string_of_parts, name, string};

/// FIFO queue parameters of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoIds {
    pub group_id: String,
    pub deduplication_id: String,
}

/// `{"QueueUrl":…,"MessageBody":…,"MessageAttributes":{…}[,"MessageGroupId":…,
/// "MessageDeduplicationId":…]}` with every attribute a `String`; the message body is the
/// concatenation of `message` (e.g. [`crate::Encoded::parts`]).
pub fn request_body<'a>(
    queue_url: &str,
    message: &[&str],
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    fifo: Option<&FifoIds>,
) -> String {
    let message_len: usize = message.iter().map(|part| part.len()).sum();
    let mut out = Vec::with_capacity(1024 + message_len + message_len / 4);
    out.push(b'{');
    name(&mut out, "QueueUrl");
    string(&mut out, queue_url);
    out.push(b',');
    name(&mut out, "MessageBody");
    long_string_of_parts(&mut out, message);
    out.push(b',');
    name(&mut out, "MessageAttributes");
    out.push(b'{');
    for (i, (attribute, value)) in attributes.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(&mut out, attribute);
        out.extend_from_slice(b":{\"DataType\":\"String\",\"StringValue\":");
        string(&mut out, value);
        out.push(b'}');
    }
    out.push(b'}');
    if let Some(f) = fifo {
        out.push(b',');
        name(&mut out, "MessageGroupId");
        string(&mut out, &f.group_id);
        out.push(b',');
        name(&mut out, "MessageDeduplicationId");
        string(&mut out, &f.deduplication_id);
    }
    out.push(b'}');
    // Fixed ASCII and escaped `str`s only: always valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn is_the_json_object_serde_would_write() {
        let envelope =
            "{\"v\":1,\"body\":{\"encoding\":\"utf8\",\"data\":\"a\\\"b\\n🦀\"}}".repeat(2000);
        let attributes = [("sluice-source", "git\"hub"), ("sluice-event-id", "evt_1")];
        let fifo = FifoIds {
            group_id: "github#o\\1".into(),
            deduplication_id: "d\u{1}".into(),
        };
        for fifo in [None, Some(&fifo)] {
            let (line, body) = envelope.split_at(1000);
            let text = request_body("https://sqs/q.fifo", &[line, body], attributes, fifo);
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let mut expected = json!({
                "QueueUrl": "https://sqs/q.fifo",
                "MessageBody": envelope,
                "MessageAttributes": {
                    "sluice-source": {"DataType": "String", "StringValue": "git\"hub"},
                    "sluice-event-id": {"DataType": "String", "StringValue": "evt_1"},
                },
            });
            if let Some(f) = fifo {
                expected["MessageGroupId"] = f.group_id.clone().into();
                expected["MessageDeduplicationId"] = f.deduplication_id.clone().into();
            }
            assert_eq!(parsed, expected);
        }
    }
}
