#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, fuzz/corpus/<target>/seed-*, from the vectors the
protocol crate's unit tests use (providers' published examples and fixtures).

The seeds are committed; rerun this only to change them: `python3 fuzz/make_seeds.py`.
Request-shaped seeds use the format described in fuzz/src/lib.rs: header lines, `@` lines
for parameters, an empty line, then the body.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def request(headers, body=b"", meta=None):
    lines = [f"@{k}: {v}" for k, v in (meta or {}).items()]
    lines += [f"{k}: {v}" for k, v in headers]
    if isinstance(body, str):
        body = body.encode()
    return "\n".join(lines).encode() + b"\n\n" + body


def mac(alg, key, msg):
    if isinstance(key, str):
        key = key.encode()
    if isinstance(msg, str):
        msg = msg.encode()
    return hmac.new(key, msg, alg).digest()


# --- Stripe (stripe-dotnet fixture; the unit tests' own signed body) ---------------------
DOTNET_BODY = '{\n  "id": "evt_123",\n  "object": "event",\n  "account": "acct_123",\n  "api_version": "2017-05-25",\n  "created": 1533204620,\n  "data": {\n    "object": {\n      "id": "cus_123",\n      "object": "customer",\n      "created": 123456789,\n      "email": "test@stripe.com",\n      "livemode": false,\n      "metadata": {}\n    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n  "request": {\n    "id": "req_123",\n    "idempotency_key": "idempotency-key-123"\n  },\n  "type": "customer.created"\n}\n'
DOTNET_HEADER = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"
write("sig_stripe", "dotnet-fixture",
      request([("Stripe-Signature", DOTNET_HEADER)], DOTNET_BODY, {"now": 1533204620}))
STRIPE_BODY = '{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}'
sig = mac(hashlib.sha256, "whsec_test_secret", f"1700000000.{STRIPE_BODY}").hex()
write("sig_stripe", "signed", request([("Stripe-Signature", f"t=1700000000,v1=00ff,v1={sig}")], STRIPE_BODY))
write("sig_stripe", "only-v0", request([("Stripe-Signature", f"t=100,v0={sig}")], STRIPE_BODY, {"now": 100}))
write("sig_stripe", "stale", request([("Stripe-Signature", f"t=1700000000,v1={sig}")], STRIPE_BODY, {"now": 1700000301}))
write("sig_stripe", "garbage", request([("Stripe-Signature", "garbage")], STRIPE_BODY))

# --- GitHub (documented example) -----------------------------------------------------------
GH_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
write("sig_github", "documented",
      request([("X-Hub-Signature-256", GH_SIG), ("X-GitHub-Delivery", "d-1")], "Hello, World!"))
for i, bad in enumerate(["757107ea", "sha1=abcd", "sha256=zz"]):
    write("sig_github", f"malformed-{i}", request([("X-Hub-Signature-256", bad)], "Hello, World!"))
write("sig_github", "missing", request([], "Hello, World!"))

# --- Shopify (shopify-api-php fixture) -----------------------------------------------------
write("sig_shopify", "php-fixture",
      request([("X-Shopify-Hmac-Sha256", "/Redz4YXHLnSmmSN8grr5/Jl/Ua3d7yX3iWbjb8R8wo="),
               ("X-Shopify-Webhook-Id", "wh-1")], '{"foo":"bar"}'))
write("sig_shopify", "malformed", request([("X-Shopify-Hmac-Sha256", "%%%")], "{}"))

# --- Slack (documented example; url_verification) ------------------------------------------
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_BODY = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
write("sig_slack", "documented",
      request([("X-Slack-Signature", SLACK_SIG), ("X-Slack-Request-Timestamp", "1531420618")],
              SLACK_BODY, {"now": 1531420618}))
CHALLENGE = '{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
sig = "v0=" + mac(hashlib.sha256, SLACK_SECRET, f"v0:1531420618:{CHALLENGE}").hex()
write("sig_slack", "url-verification",
      request([("X-Slack-Signature", sig), ("X-Slack-Request-Timestamp", "1531420618")],
              CHALLENGE, {"now": 1531420618}))
write("sig_slack", "malformed",
      request([("X-Slack-Signature", "a2114d"), ("X-Slack-Request-Timestamp", "1531420618")],
              SLACK_BODY, {"now": 1531420618}))

# --- Twilio (documented example; twilio-python fixtures) -----------------------------------
TW_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TW_BODY = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212"
write("sig_twilio", "documented",
      request([("X-Twilio-Signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
               ("I-Twilio-Idempotency-Token", "t-1")], TW_BODY))
write("sig_twilio", "duplicate-keys",
      request([("X-Twilio-Signature", "IK+Dwps556ElfBT0I3Rgjkr1wJU=")],
              "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"))
write("sig_twilio", "json-body-sha256",
      request([("X-Twilio-Signature", "a9nBmqA0ju/hNViExpshrM61xv4=")],
              '{"property": "value", "boolean": true}',
              {"url": TW_URL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"}))
write("sig_twilio", "port-443",
      request([("X-Twilio-Signature", "kvajT1Ptam85bY51eRf/AJRuM3w=")],
              "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212",
              {"url": "https://mycompany.com:443/myapp.php?foo=1&bar=2"}))

# --- Standard Webhooks (spec v1 vector; JS library v1a vector) ------------------------------
SW_ID, SW_TS, SW_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
SW_V1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_V1A = "v1a,Ykcu7AtGZGmZxFEH1Gaa2Nd7feY/CTuruoL4fqgnKwfbHU4DhemoVHZdvGfIvKvn4BIgwktLGGPGIr/i9nK7AA=="


def sw(sig, ts=SW_TS, now=SW_TS, body=SW_BODY, msg_id=SW_ID):
    return request([("webhook-id", msg_id), ("webhook-timestamp", str(ts)),
                    ("webhook-signature", sig)], body, {"now": now, "id": msg_id})


write("sig_standard_webhooks", "v1-vector", sw(SW_V1))
write("sig_standard_webhooks", "v1a-vector", sw(SW_V1A))
write("sig_standard_webhooks", "several", sw(f"v1,Zm9vYmFy v1a,Zm9vYmFy {SW_V1}"))
write("sig_standard_webhooks", "stale", sw(SW_V1, now=SW_TS + 301))
write("sig_standard_webhooks", "malformed", sw("v1,***"))
write("sig_standard_webhooks", "bad-timestamp", sw(SW_V1, ts="yesterday"))

# --- Generic HMAC (the unit tests' configurations) ------------------------------------------
GENERIC = {"header": "X-Signature", "algorithm": "sha512", "encoding": "base64",
           "prefix": "sha512=", "timestamp_header": "X-Timestamp", "id_header": "X-Event-Id",
           "template": "{id}:{timestamp}:{body}"}
sig = base64.b64encode(mac(hashlib.sha512, "generic-key-1", "e1:1000:{}")).decode()
write("sig_generic", "sha512-base64",
      request([("X-Signature", f"sha512={sig}"), ("X-Timestamp", "1000"), ("X-Event-Id", "e1")],
              "{}", {"now": 1000, "id": "e1", "config": json.dumps(GENERIC)}))
PLAIN = {"header": "x-sig", "prefix": "sha256="}
sig = mac(hashlib.sha256, "generic-key-2", "payload").hex()
write("sig_generic", "sha256-hex",
      request([("x-sig", f"sha256={sig}")], "payload", {"config": json.dumps(PLAIN)}))
write("sig_generic", "literal-braces",
      request([("x", "00")], "B", {"config": json.dumps({"header": "x", "template": "{x}{body}", "algorithm": "sha1"})}))

# --- Secrets ---------------------------------------------------------------------------------
for name, text in [
    ("whsec", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("rotation", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_c2VjcmV0"),
    ("whpk", "whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="),
    ("whsk-pair", "whsk_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA=="),
    ("short-key", "whpk_AAAA"),
    ("raw", "hunter2 It's"),
    ("empty-prefix", "whsec_"),
]:
    write("secrets", name, text)

# --- Envelopes -------------------------------------------------------------------------------
def envelope(body, **extra):
    e = {"v": 1, "id": "evt_01", "source": "github", "idempotency_key": "d-1",
         "received_at_ms": 1700000000000, "content_type": "application/json",
         "headers": {"user-agent": "provider/1"}, "body": body}
    e.update(extra)
    return json.dumps(e, separators=(",", ":"))


write("envelope_decode", "utf8", envelope({"encoding": "utf8", "data": '{"a":1}'}))
write("envelope_decode", "base64", envelope({"encoding": "base64", "data": "/wD+Cg=="}))
write("envelope_decode", "s3", envelope({"encoding": "s3", "bucket": "b",
                                         "key": "payloads/github/2026/01/01/evt_01",
                                         "size": 5, "sha256": "ab"}, trace_id="f" * 32))
write("envelope_decode", "v3", envelope({"encoding": "utf8", "data": "x"}, v=3))
# Version 2 (written since): a JSON line, then a raw text body.
write("envelope_decode", "v2-text", envelope({"encoding": "utf8"}, v=2) + '\n{"a":"b\\"c"}\r\n')
write("envelope_decode", "v2-inline", envelope({"encoding": "utf8", "data": "\u0000"}, v=2) + "\n")
write("envelope_decode", "v2-base64", envelope({"encoding": "base64", "data": "/wD+Cg=="}, v=2) + "\n")
write("envelope_decode", "no-version", '{"id":"x"}')
write("envelope_decode", "garbage", "not json")

# Structured (arbitrary) input: any bytes decode to some envelope; a few shapes to start.
write("envelope_roundtrip", "zeros", b"\x00" * 64)
write("envelope_roundtrip", "text", b"\x01evt_01\x00github\x00" + bytes(range(32, 127)))
write("envelope_roundtrip", "binary", bytes(range(256)))

# --- Claim check -----------------------------------------------------------------------------
REF = {"bucket": "sluice-payloads", "key": "payloads/github/2026/11/23/evt_1", "size": 307200,
       "sha256": hashlib.sha256(b"x").hexdigest()}
write("claim_check", "reference", f"1795435200000 github evt_1\n{json.dumps(REF)}")
write("claim_check", "leap-day", '1709164800000 s e\n{"bucket":"b","key":"k","size":0,"sha256":""}')
write("claim_check", "epoch", "0 s e\n{}")
write("claim_check", "far-future", "18446744073709551615 s e\n")

# --- Archive keys ----------------------------------------------------------------------------
T = 1795437296789
write("archive_key", "key", f"archive/github/2026/11/23/12/{T}-evt_01ABC.json")
write("archive_key", "midnight", "1795475400000 s evt_1")
for i, k in enumerate(["payloads/s/2026/11/23/evt_1",
                       "archive/s/2026/11/23/12/notanumber-evt.json",
                       "archive/s/2026/11/23/12/123-.json",
                       "archive/s/2026/11/23/12/123-evt"]):
    write("archive_key", f"foreign-{i}", k)

# --- Source config ---------------------------------------------------------------------------
write("source_config", "defaults", """{"sources":[
    {"name":"github","scheme":"github","destination":"https://example.com/gh"},
    {"name":"std-1","scheme":"standard-webhooks","destination":"http://127.0.0.1:9/x",
     "max_body_bytes":1024,"tolerance_secs":60,"content_types":["application/json"]}
]}""")
write("source_config", "every-field", json.dumps({"sources": [
    {"name": "tw", "scheme": "twilio", "destination": "https://x/tw",
     "public_url": "https://hooks.example.com/hooks/tw", "require_json": False,
     "fifo_group_key": "header:i-twilio-idempotency-token"},
    {"name": "acme", "scheme": "generic", "destination": "https://x/acme",
     "fifo_group_key": "json:/customer/id", "generic": GENERIC},
]}))
for i, text in enumerate([
    '{"sources":[{"name":"gh","scheme":"github","destination":"ftp://x"}]}',
    '{"sources":[{"name":"Bad Name","scheme":"github","destination":"http://x"}]}',
    '{"sources":[{"name":"a","scheme":"github","destination":"http://x"},{"name":"a","scheme":"github","destination":"http://x"}]}',
    '{"sources":[{"name":"a","scheme":"carrier-pigeon","destination":"http://x"}]}',
    '{"sources":[{"name":"tw","scheme":"twilio","destination":"http://x"}]}',
    '{"sources":[{"name":"g","scheme":"generic","destination":"http://x","generic":{"header":"x-sig","template":"{timestamp}{body}"}}]}',
]):
    write("source_config", f"invalid-{i}", text)

# --- The edge's whole pure path ----------------------------------------------------------------
CT = ("content-type", "application/json")
write("ingest_prepare", "standard-v1",
      request([CT, ("webhook-id", SW_ID), ("webhook-timestamp", str(SW_TS)), ("webhook-signature", SW_V1),
               ("user-agent", "provider/1"),
               ("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")],
              SW_BODY, {"source": "standard", "now": SW_TS}))
write("ingest_prepare", "standard-v1a",
      request([CT, ("webhook-id", SW_ID), ("webhook-timestamp", str(SW_TS)), ("webhook-signature", SW_V1A)],
              SW_BODY, {"source": "standard", "now_ms": SW_TS * 1000 + 999}))
write("ingest_prepare", "stripe",
      request([CT, ("Stripe-Signature", DOTNET_HEADER)], DOTNET_BODY, {"source": "stripe", "now": 1533204620}))
gh_body = '{"zen":"Keep it logically awesome."}'
gh_sig = mac(hashlib.sha256, "It's-a-Secret-to-Everybody", gh_body).hex()
write("ingest_prepare", "github",
      request([CT, ("X-Hub-Signature-256", f"sha256={gh_sig}"), ("X-GitHub-Delivery", "d-1"),
               ("X-GitHub-Event", "push"), ("Authorization", "Bearer x"), ("Cookie", "a=b")],
              gh_body, {"source": "github", "content-length": len(gh_body)}))
write("ingest_prepare", "shopify",
      request([CT, ("X-Shopify-Hmac-Sha256", "/Redz4YXHLnSmmSN8grr5/Jl/Ua3d7yX3iWbjb8R8wo="),
               ("X-Shopify-Topic", "orders/create")], '{"foo":"bar"}', {"source": "shopify"}))
write("ingest_prepare", "slack-challenge",
      request([CT, ("X-Slack-Signature", "v0=" + mac(hashlib.sha256, SLACK_SECRET, f"v0:1531420618:{CHALLENGE}").hex()),
               ("X-Slack-Request-Timestamp", "1531420618")], CHALLENGE, {"source": "slack", "now": 1531420618}))
write("ingest_prepare", "twilio",
      request([("content-type", "application/x-www-form-urlencoded"),
               ("X-Twilio-Signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")], TW_BODY,
              {"source": "twilio", "query": "foo=1&bar=2"}))
g_sig = mac(hashlib.sha256, "generic-key-1", "1000.{\"id\":\"g-1\"}").hex()
write("ingest_prepare", "generic",
      request([("x-signature", f"sha256={g_sig}"), ("x-timestamp", "1000"), ("x-event-id", "g-1")],
              '{"id":"g-1"}', {"source": "generic", "now": 1000}))
write("ingest_prepare", "stripe-not-json",
      request([CT, ("Stripe-Signature", "t=1,v1=" + mac(hashlib.sha256, "webhook_secret", "1.{\"a\":").hex())],
              '{"a":', {"source": "stripe", "now": 1}))
write("ingest_prepare", "wrong-media-type",
      request([("content-type", "text/plain"), ("Stripe-Signature", "t=1,v1=00")], "{}", {"source": "stripe"}))
write("ingest_prepare", "too-large", request([], "x" * 1025, {"source": "github", "content-length": 1025}))

# --- Destination filters: a filter's JSON on the first line, then the event -----------------
def filter_case(flt, event):
    if not isinstance(event, (str, bytes)):
        event = json.dumps(event, separators=(",", ":"))
    if isinstance(event, str):
        event = event.encode()
    return json.dumps(flt, separators=(",", ":")).encode() + b"\n" + event


INVOICE = {"id": "evt_1", "object": "event", "type": "invoice.payment_succeeded",
           "data": {"object": {"id": "in_1", "amount_paid": 2500, "currency": "usd",
                               "lines": {"data": [{"amount": 2000, "price": {"unit_amount": 2000}},
                                                  {"amount": 500.0, "price": {"unit_amount": 500}}]},
                               "metadata": {"tenant": "acme-eu"}, "tax": None}}}
STRIPE_EVENT = {"body": INVOICE, "headers": {"stripe-signature": "t=1,v1=00",
                                             "content-type": "application/json"}, "source": "stripe"}
GITHUB_EVENT = {"body": {"ref": "refs/heads/main", "commits": [{"id": "c1", "added": ["a.rs"]}]},
                "headers": {"x-github-event": "push", "user-agent": "GitHub-Hookshot/1"},
                "source": "github"}
for name, flt, event in [
    ("starts-with", {"body": {"type": {"$startsWith": "invoice."}}}, STRIPE_EVENT),
    ("nested-gte", {"source": "stripe", "body": {"data": {"object": {"amount_paid": {"$gte": 1000}}}}},
     STRIPE_EVENT),
    ("or-of-types", {"body": {"type": {"$or": ["invoice.paid", "invoice.payment_failed",
                                               "invoice.payment_succeeded"]}}}, STRIPE_EVENT),
    ("header", {"headers": {"X-GitHub-Event": "push"}}, GITHUB_EVENT),
    ("arrays", {"body": {"data": {"object": {"lines": {"data": [{"amount": 500}, {"price": {"unit_amount": {"$gt": 1000}}}]}}}}},
     STRIPE_EVENT),
    ("every-operator", {"$and": [
        {"body": {"commits": {"id": {"$in": ["c0", "c1"]}, "added": {"$contains": "a.rs"}}}},
        {"body": {"ref": {"$endsWith": "/main", "$neq": "refs/heads/dev", "$nin": ["x"]}}},
        {"headers": {"user-agent": {"$gte": "GitHub", "$lt": "GitHub-Z", "$lte": "H", "$eq": "GitHub-Hookshot/1"}}},
        {"$or": [{"source": "stripe"}, {"source": {"$not": "stripe"}}]},
        {"$not": {"body": {"deleted": {"$exist": True}}}},
     ]}, GITHUB_EVENT),
    ("not-json-body", {"body": {"$exist": False}, "headers": {"x-a": "1"}},
     {"headers": {"x-a": "1"}, "source": "s"}),
    ("form-body", {"body": {"Digits": "1234", "From": {"$startsWith": "+1"}}},
     "Digits=5678&Digits=1234&From=%2B14158675309&To=%2B18005551212"),
    ("no-match", {"source": "stripe", "body": {"data": {"object": {"amount_paid": {"$gte": 10000}}}}},
     STRIPE_EVENT),
    ("invalid-regex", {"body": {"type": {"$regex": "^invoice"}}}, STRIPE_EVENT),
    ("invalid-in-string", {"body": {"type": {"$in": "invoice"}}}, STRIPE_EVENT),
    ("invalid-top-level", {"query": {"a": "b"}}, STRIPE_EVENT),
    ("invalid-empty-or", {"body": {"$or": []}}, STRIPE_EVENT),
    ("invalid-exist", {"headers": {"x-a": {"$exist": "yes"}}}, STRIPE_EVENT),
]:
    write("filter", name, filter_case(flt, event))
deep = "leaf"
for _ in range(31):
    deep = {"k": deep}
write("filter", "invalid-too-deep", filter_case({"body": deep}, {"body": {}}))

print("seeds written to", ROOT)
