# Benchmark baseline, not shipped: Sluice's consume job written the way Powertools for AWS
# Lambda (Python) users write it, for `make bench` (tests/src/bin/sluice-consumer-bench.rs
# runs it under awslambdaric against the same local Runtime API, moto and destination as
# the Rust `bootstrap`, and compares the two).
#
# The same job per SQS record: decode Sluice's queue envelope (protocol/src/envelope.rs),
# then for each of the source's destinations (its routes, README "Routes: one source,
# several destinations"), one after the other: claim the (event, destination) pair in
# DynamoDB (Powertools idempotency, keyed per destination: one conditional PutItem, then an
# UpdateItem to COMPLETED; the record is deleted again when delivery fails), POST the body
# to that destination signed with Standard Webhooks headers (`webhook-id` = the pair's key,
# Sluice's: `{source}#{key}` for the destination `default`, `{source}#{key}#{destination}`
# for the others; `sluice-destination` = its name), and answer a partial batch response
# (Powertools batch utility). A record fails if any destination fails; on its retry the
# destinations delivered before are skipped (their claims are COMPLETED).
#
# Configuration: the consumer's own variables (SLUICE_SOURCES, SLUICE_TABLE,
# SLUICE_DESTINATION_SECRET, SLUICE_COMPLETED_TTL_SECS, SLUICE_DELIVERY_TIMEOUT_MS); AWS
# settings (AWS_ENDPOINT_URL for the local stack) come from boto3's usual chain. A source's
# `destinations` (name, url, plain `headers`, `timeout_ms`) or, the old way, its one
# `destination` URL (named `default`).
#
# Not reproduced (not on the happy path the benchmark measures): filters, secret header
# references and per-destination signing secrets (refused at start-up, never ignored),
# claim-checked S3 bodies, the envelope archive, dead-lettering with a reason, backoff
# through visibility changes, FIFO ordering, EMF metrics, concurrent delivery.

import base64
import hashlib
import hmac
import json
import os
import time

import requests
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.config import Config

ENVELOPE_VERSION = 2  # a JSON line, then a text body as received (protocol/src/envelope.rs)
DEFAULT_DESTINATION = "default"  # a source's one destination written the old way
_secret = os.environ.get("SLUICE_DESTINATION_SECRET", "")
SECRET = base64.b64decode(_secret.removeprefix("whsec_")) if _secret else None
DELIVERY_TIMEOUT = int(os.environ.get("SLUICE_DELIVERY_TIMEOUT_MS", "10000")) / 1000


def routes_of(source: dict) -> list[dict]:
    """A source's destinations, each with its URL, plain headers and timeout in seconds."""
    if "destination" in source:
        destinations = [{"name": DEFAULT_DESTINATION, "url": source["destination"]}]
    else:
        destinations = source["destinations"]
    routes = []
    for d in destinations:
        unsupported = {"filter", "signing_secret_arn"} & d.keys()
        if unsupported or not all(isinstance(v, str) for v in d.get("headers", {}).values()):
            raise ValueError(
                f"source {source['name']!r}: destination {d['name']!r}: "
                f"{sorted(unsupported) or 'secret headers'} not supported by this baseline"
            )
        routes.append(
            {
                "name": d["name"],
                "url": d["url"],
                "headers": {k.lower(): v for k, v in d.get("headers", {}).items()},
                "timeout": d.get("timeout_ms", DELIVERY_TIMEOUT * 1000) / 1000,
            }
        )
    return routes


ROUTES = {s["name"]: routes_of(s) for s in json.loads(os.environ["SLUICE_SOURCES"])["sources"]}

# Like Sluice: a batch whose records all failed is still a partial batch response.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Sluice's table: partition key `pk`; the other attribute names are Powertools' defaults
# (status, expiration, in_progress_expiration, validation), which Sluice shares.
persistence_layer = DynamoDBPersistenceLayer(
    table_name=os.environ["SLUICE_TABLE"],
    key_attr="pk",
    boto_config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard"}),
)
config = IdempotencyConfig(
    event_key_jmespath="dedup_key",
    payload_validation_jmespath="body_sha256",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=int(os.environ.get("SLUICE_COMPLETED_TTL_SECS", str(7 * 24 * 3600))),
)
http = requests.Session()


def decode_envelope(text: str) -> dict:
    head, _, tail = text.partition("\n")
    envelope = json.loads(head)
    if envelope.get("v") != ENVELOPE_VERSION:
        raise ValueError(f"unsupported envelope version {envelope.get('v')!r}")
    body = envelope["body"]
    if ("data" in body) == bool(tail):
        raise ValueError("envelope body both inside the JSON line and after it, or neither")
    if body["encoding"] == "utf8":
        envelope["body_bytes"] = (body["data"] if "data" in body else tail).encode()
    elif body["encoding"] == "base64":
        envelope["body_bytes"] = base64.b64decode(body["data"])
    else:
        raise ValueError(f"body encoding {body['encoding']!r} is not supported by this baseline")
    return envelope


@idempotent_function(
    data_keyword_argument="event",
    config=config,
    persistence_store=persistence_layer,
)
def deliver(event: dict) -> dict:
    envelope = event["envelope"]
    route = event["route"]
    body = envelope["body_bytes"]
    headers = {
        name: value
        for name, value in envelope.get("headers", {}).items()
        if not name.startswith("webhook-") and name != "user-agent"
    }
    if envelope.get("content_type"):
        headers["content-type"] = envelope["content_type"]
    headers.update(route["headers"])
    headers["sluice-event-id"] = envelope["id"]
    headers["sluice-source"] = envelope["source"]
    headers["sluice-destination"] = route["name"]
    if envelope.get("trace_id"):
        headers["sluice-trace-id"] = envelope["trace_id"]
    msg_id = event["dedup_key"]
    timestamp = str(int(time.time()))
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = timestamp
    if SECRET is not None:
        mac = hmac.new(SECRET, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
        headers["webhook-signature"] = "v1," + base64.b64encode(mac.digest()).decode()
    response = http.post(
        route["url"],
        data=body,
        headers=headers,
        timeout=(min(3, route["timeout"]), route["timeout"]),
    )
    response.raise_for_status()
    return {"status": response.status_code}


def record_handler(record: SQSRecord) -> list:
    envelope = decode_envelope(record.body)
    key = envelope.get("idempotency_key") or envelope["id"]
    event_key = f"{envelope['source']}#{key}"
    body_sha256 = hashlib.sha256(envelope["body_bytes"]).hexdigest()
    results = []
    for route in ROUTES[envelope["source"]]:
        name = route["name"]
        results.append(
            deliver(
                event={
                    # One idempotency record per (event, destination).
                    "dedup_key": event_key if name == DEFAULT_DESTINATION else f"{event_key}#{name}",
                    "body_sha256": body_sha256,
                    "route": route,
                    "envelope": envelope,
                }
            )
        )
    return results


def handler(event, context):
    config.register_lambda_context(context)
    return process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
