#!/usr/bin/env python3
"""Cost per million webhooks: Sluice (Cloudflare Worker + SQS + Rust Lambda + DynamoDB)
against API Gateway + Lambda (Python, Powertools), from list prices and measured inputs.

Usage: python3 bench/cost.py [target/bench-consumer.json]
Prints the Markdown tables docs/cost.md holds. Every price and assumption is a named
constant below; measured inputs come from `make bench` when its JSON is given.
"""
import json
import sys

# List prices (USD, us-east-1 / Cloudflare Workers Paid), as published in 2025. Check them
# before relying on the totals: prices change.
WORKERS_PER_M_REQUESTS = 0.30       # beyond the 10 M included in the $5 plan
WORKERS_PER_M_CPU_MS = 0.02         # beyond the 30 M CPU-ms included
SQS_PER_M_REQUESTS = 0.40           # standard queue; each 64 KiB chunk of a message is a request
LAMBDA_ARM_PER_GB_S = 0.0000133334
LAMBDA_X86_PER_GB_S = 0.0000166667
LAMBDA_PER_M_REQUESTS = 0.20
DDB_PER_M_WRU = 0.625               # on-demand write request units (items <= 1 KB: 1 WRU)
S3_PUT_PER_M = 5.00
S3_GET_PER_M = 0.40
S3_GB_MONTH = 0.023
APIGW_HTTP_PER_M = 1.00             # HTTP API, metered in 512 KB units
LOGS_PER_GB = 0.50                  # CloudWatch Logs ingestion

# Assumptions (not measured here): say so in the doc.
DESTINATION_LATENCY_S = 0.050       # your service's answer time per delivery
DDB_CALL_S = 0.008                  # one DynamoDB write, as seen from Lambda
BATCH = 10                          # SQS batch size (template default)
MEMORY_GB = 0.25                    # both consumers at 256 MB
EDGE_CPU_MS = {1: 0.2, 256: 4.0}    # Worker CPU per request (estimate from the native bench)
PY_INGEST_S = 0.030                 # Python ingest Lambda: verify + boto3 SendMessage, warm
LOG_BYTES_PER_EVENT = 900           # Sluice: one JSON log line + one EMF line per event
RETENTION_MONTHS = 1.0              # payload bucket lifecycle (30 days)


def consumer_inputs(path):
    sluice_cpu_us, py_cpu_us = 754.0, 5331.0  # docs/performance.md, 2026-11-23 run
    if path:
        with open(path) as f:
            data = json.load(f)
        sluice_cpu_us = float(data.get("sluice", {}).get("cpu_us_per_event", sluice_cpu_us))
        py_cpu_us = float(data.get("baseline", {}).get("cpu_us_per_event", py_cpu_us))
    return sluice_cpu_us, py_cpu_us


def sqs_requests(body_kib, claim_checked):
    # Envelope version 2: the body as received after a JSON line of well under 1 KiB.
    envelope_kib = 1 if claim_checked else body_kib + 1
    chunks = max(1, -(-int(envelope_kib) // 64))
    # send (chunks) + receive and delete, batched by the event source mapping
    return chunks + 2 * chunks / BATCH


def sluice(body_kib, archive):
    claim_checked = body_kib > 200
    rows = {
        "Workers requests": WORKERS_PER_M_REQUESTS,
        "Workers CPU": EDGE_CPU_MS[body_kib] * WORKERS_PER_M_CPU_MS,
        "SQS requests": sqs_requests(body_kib, claim_checked) * SQS_PER_M_REQUESTS,
        "Lambda requests": LAMBDA_PER_M_REQUESTS / BATCH,
        # records of a batch run concurrently: the batch lasts about one event's I/O
        "Lambda duration (arm64)": (2 * DDB_CALL_S + DESTINATION_LATENCY_S) / BATCH
        * MEMORY_GB * LAMBDA_ARM_PER_GB_S * 1e6,
        "DynamoDB writes (2)": 2 * DDB_PER_M_WRU,
        "CloudWatch Logs": LOG_BYTES_PER_EVENT * 1e6 / 1e9 * LOGS_PER_GB,
    }
    if claim_checked:
        rows["S3 PUT + GET (claim check)"] = S3_PUT_PER_M + S3_GET_PER_M
        rows["S3 storage (bodies, 30 days)"] = body_kib * 1e6 / 1024 / 1024 * S3_GB_MONTH * RETENTION_MONTHS
    if archive:
        rows["S3 PUT (replay archive)"] = S3_PUT_PER_M
    return rows


def apigw_python(body_kib):
    claim_checked = body_kib > 200
    rows = {
        "API Gateway HTTP API": APIGW_HTTP_PER_M,
        "Lambda ingest requests": LAMBDA_PER_M_REQUESTS,
        "Lambda ingest duration (x86, Python)": PY_INGEST_S * MEMORY_GB * LAMBDA_X86_PER_GB_S * 1e6,
        "SQS requests": sqs_requests(body_kib, claim_checked) * SQS_PER_M_REQUESTS,
        "Lambda consumer requests": LAMBDA_PER_M_REQUESTS / BATCH,
        # BatchProcessor runs a batch's records one after another
        "Lambda consumer duration (x86, Python)": (2 * DDB_CALL_S + DESTINATION_LATENCY_S)
        * MEMORY_GB * LAMBDA_X86_PER_GB_S * 1e6,
        "DynamoDB writes (2)": 2 * DDB_PER_M_WRU,
    }
    if claim_checked:
        rows["S3 PUT + GET (claim check)"] = S3_PUT_PER_M + S3_GET_PER_M
        rows["S3 storage (bodies, 30 days)"] = body_kib * 1e6 / 1024 / 1024 * S3_GB_MONTH * RETENTION_MONTHS
    return rows


def table(title, columns):
    names = []
    for _, rows in columns:
        for n in rows:
            if n not in names:
                names.append(n)
    out = [f"### {title}", "", "| item | " + " | ".join(c for c, _ in columns) + " |",
           "|---|" + "---:|" * len(columns)]
    for n in names:
        out.append(f"| {n} | " + " | ".join(
            f"${rows[n]:.3f}" if n in rows else "-" for _, rows in columns) + " |")
    out.append("| **total per million** | " + " | ".join(
        f"**${sum(rows.values()):.2f}**" for _, rows in columns) + " |")
    return "\n".join(out)


def main():
    sluice_cpu_us, py_cpu_us = consumer_inputs(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"Measured inputs: consumer CPU per event Sluice {sluice_cpu_us:.0f} us, "
          f"Powertools {py_cpu_us:.0f} us (CPU-only Lambda lower bound per million events: "
          f"Sluice ${sluice_cpu_us / 1e6 * MEMORY_GB * LAMBDA_ARM_PER_GB_S * 1e6:.4f}, "
          f"Powertools ${py_cpu_us / 1e6 * MEMORY_GB * LAMBDA_X86_PER_GB_S * 1e6:.4f}).")
    print()
    for kib in (1, 256):
        print(table(f"{kib} KiB bodies", [
            ("Sluice, archive off", sluice(kib, False)),
            ("Sluice, archive on", sluice(kib, True)),
            ("API Gateway + Lambda (Python)", apigw_python(kib)),
        ]))
        print()


if __name__ == "__main__":
    main()
