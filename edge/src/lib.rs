//! Sluice's edge: a Cloudflare Worker that accepts provider webhooks at `POST /hooks/{source}`,
//! verifies them (via `sluice-protocol`), and queues an envelope on SQS before answering 202.
//!
//! This crate is a thin shell: routing, reading the request, reading configuration from the
//! Worker's environment, and the SQS call. Every decision about a request lives in
//! `sluice_protocol::ingest`. It must never answer 202 before SQS accepted the message, never
//! log a secret or a body, and never queue a request that failed verification.

mod aws;
mod body;
mod config;
mod randomness;
mod reply;
mod s3;
mod sqs;
mod webcrypto;

use sluice_protocol::claim_check::{object_key, BodyRef};
use sluice_protocol::fifo;
use sluice_protocol::ingest::{
    check_declared_length, prepare_with, trace_id_from_traceparent, Inbound, Prepared,
};
use sluice_protocol::signature::ExternalMacs;
use sluice_protocol::{Body, Envelope, HeaderMap, IngestError, SignatureError, SourceConfig};
use std::borrow::Cow;
use worker::{event, Context, Env, Method, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    if path == "/healthz" {
        return reply::healthy();
    }
    // Every answer carries the trace id the envelope would: the caller's `traceparent`'s,
    // or a fresh one.
    let trace_id = req
        .headers()
        .get("traceparent")
        .ok()
        .flatten()
        .as_deref()
        .and_then(trace_id_from_traceparent)
        .unwrap_or_else(randomness::trace_id);
    let Some(source_name) = path.strip_prefix("/hooks/").filter(|s| !s.contains('/')) else {
        return reply::refused(&IngestError::NotFound, &trace_id);
    };
    let started = worker::Date::now().as_millis();
    match ingest(req, &env, source_name, &trace_id).await {
        Ok(Outcome::Accepted { event_id }) => reply::accepted(&event_id, &trace_id),
        Ok(Outcome::Answered(body)) => reply::answer(body, &trace_id),
        Err(error) => {
            if error.status() >= 500 {
                worker::console_error!(
                    "{{\"level\":\"error\",\"source\":\"{}\",\"code\":\"{}\",\"detail\":{},\"trace_id\":\"{}\",\"ms\":{}}}",
                    source_name,
                    error.code(),
                    serde_json::Value::String(error.to_string()),
                    trace_id,
                    worker::Date::now().as_millis().saturating_sub(started)
                );
            }
            reply::refused(&error, &trace_id)
        }
    }
}

/// What the edge answers a verified request with.
enum Outcome {
    /// Queued: 202 with the event id.
    Accepted { event_id: String },
    /// A provider handshake answered directly (200), nothing queued.
    Answered(String),
}

async fn ingest(
    mut req: Request,
    env: &Env,
    source_name: &str,
    trace_id: &str,
) -> Result<Outcome, IngestError> {
    if req.method() != Method::Post {
        return Err(IngestError::MethodNotAllowed);
    }
    let sources = config::sources(env)?;
    let source = sources
        .get(source_name)
        .ok_or_else(|| IngestError::UnknownSource(source_name.to_string()))?;
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    check_declared_length(source, declared)?;
    // Secrets are resolved before the body is read: a misconfigured source fails closed
    // without reading anything.
    let secrets = config::source_secrets(env, source)?;
    let body = body::read_capped(&mut req, source.max_body_bytes, declared).await?;
    let headers = HeaderMap::from_owned(req.headers().entries());
    let query = req.url().ok().and_then(|u| u.query().map(str::to_string));

    let now_ms = worker::Date::now().as_millis();
    let body_len = body.len();
    let query = query.as_deref();
    // The trace id given as the fallback: the envelope takes `traceparent`'s the same way
    // `fetch` did, so both are the one the response carries.
    let ids = (randomness::event_id(now_ms), trace_id.to_string());
    // For bodies of more than a few KiB the signature's HMACs are computed by WebCrypto
    // (native code) rather than in wasm: a first pass records which MACs the scheme needs,
    // a second checks them (see `sluice_protocol::ExternalMacs`). Every other rule runs in
    // both passes, so a request refused for any other reason is refused by the first.
    let recorder = ExternalMacs::recording();
    let first = if body_len >= webcrypto::WORTH_IT_BYTES {
        prepare_with(
            inbound(
                source,
                &headers,
                Cow::Borrowed(&body),
                now_ms,
                query,
                ids.clone(),
            ),
            &secrets,
            Some(&recorder),
        )
    } else {
        // Small body: no first pass; the single pass below computes the MACs in wasm.
        Err(IngestError::Signature(SignatureError::Mismatch))
    };
    let prepared = match first {
        Err(IngestError::Signature(SignatureError::Mismatch)) => {
            let requests = recorder.take_requests();
            let answered = if requests.is_empty() {
                None
            } else {
                match webcrypto::answer(requests).await {
                    Ok(answered) => Some(answered),
                    Err(_) => {
                        // The MACs are computed in wasm instead: slower, same decision.
                        worker::console_warn!(
                            "{{\"level\":\"warn\",\"msg\":\"webcrypto hmac failed; computing in wasm\"}}"
                        );
                        None
                    }
                }
            };
            // Moved in: a text body becomes the envelope's body without a copy.
            prepare_with(
                inbound(source, &headers, Cow::Owned(body), now_ms, query, ids),
                &secrets,
                answered.as_ref(),
            )?
        }
        // Decided without an HMAC (refused, or an ed25519 signature).
        other => other?,
    };
    let mut envelope = match prepared {
        Prepared::Queue(envelope) => *envelope,
        Prepared::Answer(body) => return Ok(Outcome::Answered(body)),
    };
    let auth = config::auth(env)?;
    let queue = config::queue(env, &auth)?;
    let payload = config::payload(env, &auth)?;
    // FIFO queues: order per message group, and let SQS drop provider retries itself.
    let fifo = queue.queue_url.ends_with(".fifo").then(|| {
        let body = envelope.body.inline_bytes().unwrap_or_default();
        sqs::Fifo {
            group_id: fifo::message_group_id(
                &source.name,
                source.fifo_group_key.as_deref(),
                &headers,
                &body,
            ),
            deduplication_id: fifo::deduplication_id(&envelope),
        }
    });
    // A body longer than the threshold cannot fit inline whatever its encoding: it goes to
    // the claim check without being encoded first. Otherwise the envelope is encoded once
    // (its JSON line; the body is only checked, not copied), and its size decides.
    let inline = (body_len <= payload.inline_threshold)
        .then(|| envelope.encode_parts())
        .filter(|e| e.len() <= payload.inline_threshold);
    let sent = match inline {
        Some(encoded) => sqs::send(&queue, &auth, &envelope, &encoded, fifo.as_ref()).await,
        None => {
            claim_check(&mut envelope, &payload, &auth).await?;
            let encoded = envelope.encode_parts();
            sqs::send(&queue, &auth, &envelope, &encoded, fifo.as_ref()).await
        }
    };
    sent?;
    Ok(Outcome::Accepted {
        event_id: envelope.id,
    })
}

/// The claim check: the envelope's body goes to S3 first and the envelope keeps only its
/// reference (bucket, key, size, SHA-256). Refused (413) when no bucket is configured.
async fn claim_check(
    envelope: &mut Envelope,
    payload: &config::PayloadConfig,
    auth: &aws::AwsAuth,
) -> Result<(), IngestError> {
    let Some(bucket) = payload.bucket.clone() else {
        return Err(IngestError::PayloadTooLarge {
            limit: payload.inline_threshold as u64,
        });
    };
    let key = object_key(&envelope.source, envelope.received_at_ms, &envelope.id);
    let placeholder = Body::Base64 {
        data: String::new(),
    };
    // The body was inline a moment ago, so this cannot fail; refuse rather than guess.
    let body = std::mem::replace(&mut envelope.body, placeholder)
        .into_vec()
        .map_err(|_| IngestError::EdgeMisconfigured)?;
    // One hash for the reference and for the upload's signature.
    let sha256 = webcrypto::sha256_hex(&body).await;
    s3::put(
        payload,
        auth,
        &key,
        &body,
        &sha256,
        envelope.content_type.as_deref(),
        &envelope.id,
    )
    .await?;
    envelope.body = Body::S3(BodyRef {
        bucket,
        key,
        size: body.len() as u64,
        sha256,
    });
    Ok(())
}

/// One request's parts for `prepare`; `ids` are its event id and fallback trace id.
fn inbound<'a>(
    source: &'a SourceConfig,
    headers: &'a HeaderMap,
    body: Cow<'a, [u8]>,
    now_ms: u64,
    query: Option<&'a str>,
    (event_id, fallback_trace_id): (String, String),
) -> Inbound<'a> {
    Inbound {
        source,
        headers,
        body,
        now_ms,
        event_id,
        fallback_trace_id,
        query,
    }
}
