//! The edge's pure path (parse headers, verify a Standard Webhooks signature, build and
//! encode the envelope) against its floor: the bare HMAC-SHA256 of the same body.
//! `make bench` prints the ratio; the target is at most 1.3x. Two lower bounds are measured
//! alongside: the signature check of the same request alone, without building an envelope.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_protocol::ingest::{prepare, Inbound, Prepared};
use sluice_protocol::signature::{SignedRequest, Verified};
use sluice_protocol::{HeaderMap, Scheme, Secret, SourceConfig, SourcesConfig};
use std::hint::black_box;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: i64 = 1_700_000_000;

/// A JSON body of `size` bytes, shaped like a real event (ASCII text, some escapes).
fn body(size: usize) -> Vec<u8> {
    let mut s = String::from("{\"type\":\"invoice.paid\",\"data\":\"");
    while s.len() < size - 2 {
        s.push_str("lorem ipsum dolor sit amet, consectetur adipiscing elit \\\"q\\\" ");
    }
    s.truncate(size - 2);
    s.push_str("\"}");
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let sources = SourcesConfig::from_json(
        r#"{"sources":[{"name":"standard","scheme":"standard-webhooks","destination":"https://example.com/x"}]}"#,
    )
    .unwrap();
    let source = sources.get("standard").unwrap();
    let secrets = Scheme::StandardWebhooks.parse_secrets(SECRET).unwrap();
    let key = match Scheme::StandardWebhooks.parse_secret(SECRET).unwrap() {
        sluice_protocol::Secret::Hmac(k) => k,
        _ => unreachable!(),
    };

    let mut group = c.benchmark_group("edge_pure_path");
    for size in [1024usize, 256 * 1024] {
        let body = body(size);
        let signed = Scheme::StandardWebhooks
            .sign(&secrets[0], "msg_bench", NOW, &body, &Default::default())
            .unwrap();
        let raw_headers: Vec<(String, String)> = signed
            .into_iter()
            .chain([
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "Svix-Webhooks/1.0".into()),
            ])
            .collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("floor_hmac_sha256", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
                    mac.update(black_box(body));
                    black_box(mac.finalize().into_bytes())
                })
            },
        );
        // Lower bounds for the pure path: verifying the same request and nothing else (no
        // envelope). `verify_borrowed` reads a request that stays alive (nothing allocated or
        // freed in the timing); `verify_owned` takes the request's parts as `prepare` does and
        // frees them. Whatever the envelope costs comes on top of these.
        group.bench_with_input(
            BenchmarkId::new("verify_borrowed", size),
            &body,
            |b, body| {
                let headers = HeaderMap::from_owned(raw_headers.clone());
                b.iter(|| black_box(verify(source, &headers, black_box(body), &secrets)))
            },
        );
        group.bench_with_input(BenchmarkId::new("verify_owned", size), &body, |b, body| {
            b.iter_batched(
                || (body.clone(), raw_headers.clone()),
                |(body, raw_headers)| {
                    let headers = HeaderMap::from_owned(raw_headers);
                    drop(black_box(verify(
                        source,
                        &headers,
                        black_box(&body),
                        &secrets,
                    )));
                },
                BatchSize::LargeInput,
            )
        });
        // The Worker hands the pure path what the runtime gave it as owned values: the body
        // it read, the header strings, the ids it generated. The benchmark makes them per
        // iteration outside the timing and measures what Sluice's code does with them.
        group.bench_with_input(BenchmarkId::new("prepare", size), &body, |b, body| {
            b.iter_batched(
                || {
                    (
                        body.clone(),
                        raw_headers.clone(),
                        "evt_01HZZZZZZZZZZZZZZZZZZZZZZZ".to_string(),
                        "0af7651916cd43dd8448eb211c80319c".to_string(),
                    )
                },
                |(body, raw_headers, event_id, fallback_trace_id)| {
                    let headers = HeaderMap::from_owned(raw_headers);
                    let prepared = prepare(
                        Inbound {
                            source,
                            headers: &headers,
                            body: black_box(body).into(),
                            now_ms: NOW as u64 * 1000,
                            event_id,
                            fallback_trace_id,
                            query: None,
                        },
                        &secrets,
                    )
                    .unwrap();
                    let Prepared::Queue(envelope) = prepared else {
                        unreachable!()
                    };
                    // The message as queued: the JSON line, and the body checked and borrowed
                    // (the SQS request escapes both into its own buffer). Dropped here, as the
                    // Worker drops it: returned, criterion would keep every iteration's
                    // envelope until the batch ends and the heap would keep growing.
                    drop(black_box(envelope.encode_parts()));
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The signature check `prepare` makes, alone.
fn verify(source: &SourceConfig, headers: &HeaderMap, body: &[u8], secrets: &[Secret]) -> Verified {
    Scheme::StandardWebhooks
        .verify(
            &SignedRequest {
                headers,
                body,
                now_secs: NOW,
                tolerance_secs: source.tolerance_secs,
            },
            secrets,
            &Default::default(),
        )
        .unwrap()
}

criterion_group!(benches, bench);
criterion_main!(benches);
