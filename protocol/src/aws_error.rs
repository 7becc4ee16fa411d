//! What of an AWS error response may be logged: its error code, nothing else.
//!
//! The edge calls SQS and S3 directly and logs why a call failed. An error body can echo
//! what the request carried: S3's `InvalidToken`/`ExpiredToken` answers include the session
//! token (`<Token-0>`), others the request id and host. So the edge logs the HTTP status and
//! the code found here (`ExpiredToken`, `AWS.SimpleQueueService.NonExistentQueue`, ...).
//!
//! Reads the two shapes AWS answers in: XML (`<Code>...</Code>`: S3 and the SQS query
//! protocol) and JSON (`__type` or `code`: the SQS JSON protocol). It must never return
//! anything but a code: a short token of letters, digits, `.`, `_`, `-` and `:`.

/// The error code in an AWS error `body`, if it has one that looks like a code.
pub fn error_code(body: &str) -> Option<&str> {
    let code = json_code(body).or_else(|| xml_code(body))?;
    // `com.amazonaws.sqs#QueueDoesNotExist` -> `QueueDoesNotExist`.
    let code = code.rsplit('#').next().unwrap_or(code).trim();
    let looks_like_a_code = !code.is_empty()
        && code.len() <= 80
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    looks_like_a_code.then_some(code)
}

/// `__type` (or `code`) of a JSON error body.
fn json_code(body: &str) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct JsonError<'a> {
        #[serde(rename = "__type", borrow)]
        kind: Option<&'a str>,
        #[serde(borrow)]
        code: Option<&'a str>,
    }
    let parsed: JsonError<'_> = serde_json::from_str(body.trim()).ok()?;
    parsed.kind.or(parsed.code)
}

/// The text of the first `<Code>` element of an XML error body.
fn xml_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    Some(&body[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::error_code;

    #[test]
    fn s3_expired_token_gives_its_code_and_never_the_token() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ExpiredToken</Code>\
            <Message>The provided token has expired.</Message>\
            <Token-0>IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN</Token-0>\
            <RequestId>4442587FB7D0A2F9</RequestId></Error>";
        let code = error_code(body);
        assert_eq!(code, Some("ExpiredToken"));
        assert!(!code.unwrap_or_default().contains("IQoJ"));
    }

    #[test]
    fn sqs_query_and_json_protocol_errors() {
        let query = "<ErrorResponse><Error><Type>Sender</Type>\
            <Code>AWS.SimpleQueueService.NonExistentQueue</Code>\
            <Message>The specified queue does not exist.</Message></Error></ErrorResponse>";
        assert_eq!(
            error_code(query),
            Some("AWS.SimpleQueueService.NonExistentQueue")
        );
        let json = r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#;
        assert_eq!(error_code(json), Some("QueueDoesNotExist"));
        assert_eq!(
            error_code(r#"{"code":"ThrottlingException","message":"Rate exceeded"}"#),
            Some("ThrottlingException")
        );
    }

    #[test]
    fn anything_else_gives_no_code() {
        for body in [
            "",
            "Service Unavailable",
            "<html><body>502 Bad Gateway</body></html>",
            r#"{"message":"no code here"}"#,
            "<Code>token=IQoJb3JpZ2luX2Vj EXAMPLE</Code>",
            "<Code></Code>",
            "<Code>unterminated",
        ] {
            assert_eq!(error_code(body), None, "{body:?}");
        }
    }
}
