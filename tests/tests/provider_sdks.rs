//! Signatures made by providers' official SDKs verify at the edge (real workerd): Stripe's
//! `stripe` (npm), GitHub's `@octokit/webhooks-methods` (npm), `standardwebhooks` (PyPI) and
//! Twilio's `RequestValidator` (PyPI). Each signed request is accepted and delivered
//! byte-identical; the same SDK signature over a changed body is refused.

use sluice_e2e::paths;
use sluice_e2e::stack::read_log;
use sluice_e2e::wait::until;
use sluice_e2e::{Destination, Stack, StackOptions};
use sluice_protocol::Scheme;
use std::process::Command;
use std::time::Duration;

/// Which runtime runs a signing script.
#[derive(Clone, Copy)]
enum Runtime {
    /// `node` from PATH, with the packages in `node_modules`.
    Node,
    /// The project's venv, with the packages from `infra/requirements.txt`.
    Python,
}

/// Runs an SDK signing script and returns the headers it printed.
fn sdk_headers(runtime: Runtime, script: &str, input: serde_json::Value) -> Vec<(String, String)> {
    let root = paths::root();
    let program = match runtime {
        Runtime::Node => "node".into(),
        Runtime::Python => root.join(".venv/bin/python"),
    };
    let out = Command::new(&program)
        .arg(root.join("tests/sdk").join(script))
        .arg(input.to_string())
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {script}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    v.as_object()
        .expect("an object of headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_signatures_verify() {
    let dest = Destination::start(None).await.unwrap();
    let options = StackOptions::for_test(
        "sdks",
        &dest.url,
        &[
            ("stripe", Scheme::Stripe),
            ("github", Scheme::Github),
            ("standard", Scheme::StandardWebhooks),
            ("twilio", Scheme::Twilio),
        ],
    );
    let stack = Stack::start(options).await.expect("stack starts");

    let json_body =
        r#"{"id":"evt_sdk_1","object":"event","data":{"amount":4200,"note":"caf\u00e9"}}"#;
    let form_body = "AccountSid=AC123&Body=Hello+%F0%9F%A6%80&From=%2B15550001111&MessageSid=SM1&To=%2B15550002222";
    let cases = [
        (
            "stripe",
            Runtime::Node,
            "stripe_sign.mjs",
            serde_json::json!({"secret": stack.source("stripe").secret, "body": json_body}),
            json_body,
        ),
        (
            "github",
            Runtime::Node,
            "octokit_sign.mjs",
            serde_json::json!({"secret": stack.source("github").secret, "body": json_body, "id": "gh-sdk-1"}),
            json_body,
        ),
        (
            "standard",
            Runtime::Python,
            "standardwebhooks_sign.py",
            serde_json::json!({"secret": stack.source("standard").secret, "body": json_body, "id": "msg_sdk_1"}),
            json_body,
        ),
        (
            "twilio",
            Runtime::Python,
            "twilio_sign.py",
            serde_json::json!({
                "secret": stack.source("twilio").secret,
                "url": stack.source("twilio").public_url,
                "body": form_body,
            }),
            form_body,
        ),
    ];

    for (source, runtime, script, input, body) in cases {
        let headers = sdk_headers(runtime, script, input);
        let resp = stack.post(source, &headers, body.as_bytes()).await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            202,
            "{source}: the {script} signature was refused\n{}",
            read_log(&stack.log("edge"))
        );
        let changed = body.replace("4200", "4201").replace("Hello", "Hellp");
        let resp = stack
            .post(source, &headers, changed.as_bytes())
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            401,
            "{source}: a changed body must be refused"
        );

        let path = format!("/{source}");
        let got = until(
            &format!("delivery to {path}"),
            Duration::from_secs(60),
            || async { dest.successful(&path).into_iter().next() },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", read_log(&stack.log("consumer"))));
        assert_eq!(got.body, body.as_bytes(), "{source}: byte-identical");
    }
}
