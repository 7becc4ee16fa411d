// BENCHMARK BASELINE, NOT SHIPPED CODE.
//
// Sluice's edge job (issue 7) written the way Cloudflare users usually write it: a plain
// TypeScript Worker, WebCrypto HMAC (`crypto.subtle.verify`, constant-time) and the
// `aws4fetch` package for SigV4. `make bench` (target/debug/sluice-edge-load) runs it beside
// the Rust/wasm edge under the same `wrangler dev`, against the same SigV4-checking SQS/S3
// stub, and compares throughput, latency, bundle size and start-up.
//
// It does the same work per request as edge/src for the two schemes measured:
//   POST /hooks/{source}, source from SLUICE_SOURCES (JSON, as the Rust edge reads it),
//   scheme `standard-webhooks` (whsec_ HMAC, webhook-id/-timestamp/-signature, v1 entries)
//   or `stripe` (`Stripe-Signature: t=..,v1=..`, event id from the body's `id`);
//   max_body_bytes, content_types, require_json and tolerance_secs from the source;
//   the envelope of protocol/src/envelope.rs, byte for byte (same field order, omitted
//   fields, serde_json's escaping equals JSON.stringify's for valid UTF-8);
//   the claim check above INLINE_THRESHOLD_BYTES (body PUT to S3 first, reference queued);
//   SendMessage with the same message attributes; one retry; 202 {"id"} only after SQS
//   accepted; 401 on a bad signature, 503 when AWS fails.
// Left out on purpose: ed25519 (v1a) and the other schemes, FIFO queues, the exact error
// bodies of protocol/src/ingest_error.rs (statuses are the same).
//
// Vars and secrets are the Rust edge's: SLUICE_SOURCES, SQS_QUEUE_URL, SQS_ENDPOINT,
// AWS_REGION, PAYLOAD_BUCKET, S3_ENDPOINT, INLINE_THRESHOLD_BYTES, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, SLUICE_SECRET_<SOURCE>.

import { AwsClient } from "aws4fetch";

interface Env {
  SLUICE_SOURCES?: string;
  SQS_QUEUE_URL?: string;
  SQS_ENDPOINT?: string;
  AWS_REGION?: string;
  PAYLOAD_BUCKET?: string;
  S3_ENDPOINT?: string;
  INLINE_THRESHOLD_BYTES?: string;
  AWS_ACCESS_KEY_ID?: string;
  AWS_SECRET_ACCESS_KEY?: string;
  AWS_SESSION_TOKEN?: string;
  [secret: string]: string | undefined;
}

interface Source {
  name: string;
  scheme: string;
  max_body_bytes?: number;
  tolerance_secs?: number;
  content_types?: string[];
  require_json?: boolean;
}

const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
const DEFAULT_TOLERANCE_SECS = 300;
const DEFAULT_INLINE_THRESHOLD = 200 * 1024;
const SQS_TIMEOUT_MS = 4000;
const S3_TIMEOUT_MS = 8000;

// protocol/src/headers.rs: the only provider headers that travel in the envelope.
const FORWARDED = [
  "user-agent",
  "webhook-id",
  "webhook-timestamp",
  "x-github-event",
  "x-github-delivery",
  "x-github-hook-id",
  "x-github-hook-installation-target-id",
  "x-github-hook-installation-target-type",
  "stripe-version",
  "x-shopify-topic",
  "x-shopify-shop-domain",
  "x-shopify-event-id",
  "x-shopify-webhook-id",
  "x-shopify-api-version",
  "x-slack-request-timestamp",
  "i-twilio-idempotency-token",
].sort(); // the envelope's header map is a BTreeMap: sorted keys

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Refusal {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly traceId?: string,
  ) {}
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

// ---- configuration, parsed once per isolate -----------------------------------------------

let sourcesCache: { raw: string; byName: Map<string, Source> } | undefined;

function sources(env: Env): Map<string, Source> {
  const raw = env.SLUICE_SOURCES;
  if (!raw) throw new Refusal(500, "edge_misconfigured");
  if (sourcesCache?.raw !== raw) {
    const parsed = JSON.parse(raw) as { sources: Source[] };
    sourcesCache = { raw, byName: new Map(parsed.sources.map((s) => [s.name, s])) };
  }
  return sourcesCache.byName;
}

const keyCache = new Map<string, Promise<CryptoKey[]>>();

function b64decode(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function b64encode(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** The source's HMAC keys (space-separated secrets for rotation), imported once. */
function hmacKeys(env: Env, source: Source): Promise<CryptoKey[]> {
  const varName = "SLUICE_SECRET_" + source.name.toUpperCase().replaceAll("-", "_");
  const raw = env[varName];
  if (!raw) throw new Refusal(500, "source_misconfigured");
  const cacheKey = source.scheme + "\0" + raw;
  let keys = keyCache.get(cacheKey);
  if (!keys) {
    keys = Promise.all(
      raw
        .split(/\s+/)
        .filter((s) => s.length > 0)
        .map((secret) => {
          const bytes =
            source.scheme === "standard-webhooks"
              ? b64decode(secret.startsWith("whsec_") ? secret.slice(6) : secret)
              : encoder.encode(secret);
          return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, [
            "verify",
          ]);
        }),
    );
    keyCache.set(cacheKey, keys);
    keys.catch(() => keyCache.delete(cacheKey));
  }
  return keys;
}

let awsCache: { id: string; sqs: AwsClient; s3: AwsClient } | undefined;

function aws(env: Env): { sqs: AwsClient; s3: AwsClient } {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  const region = env.AWS_REGION;
  if (!accessKeyId || !secretAccessKey || !region) throw new Refusal(500, "edge_misconfigured");
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;
  const id = [accessKeyId, secretAccessKey, sessionToken, region].join("\0");
  if (awsCache?.id !== id) {
    // One retry on 5xx/429, like the Rust edge (aws4fetch's default is 10).
    const common = { accessKeyId, secretAccessKey, sessionToken, region, retries: 1 };
    awsCache = {
      id,
      sqs: new AwsClient({ ...common, service: "sqs" }),
      s3: new AwsClient({ ...common, service: "s3" }),
    };
  }
  return awsCache;
}

// ---- signatures -----------------------------------------------------------------------------

function concat(prefix: string, body: Uint8Array): Uint8Array {
  const head = encoder.encode(prefix);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

function checkTimestamp(value: string, nowSecs: number, toleranceSecs: number): void {
  const trimmed = value.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) throw new Refusal(400, "malformed_signature");
  if (Math.abs(nowSecs - Number(trimmed)) > toleranceSecs) {
    throw new Refusal(401, "timestamp_out_of_tolerance");
  }
}

/** True when any candidate is the HMAC of `signed` under any key (WebCrypto, constant-time). */
async function anyMatches(keys: CryptoKey[], candidates: Uint8Array[], signed: Uint8Array) {
  for (const key of keys) {
    for (const candidate of candidates) {
      if (await crypto.subtle.verify("HMAC", key, candidate, signed)) return true;
    }
  }
  return false;
}

function hexDecode(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new Refusal(400, "malformed_signature");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/** Standard Webhooks v1; returns the idempotency key (`webhook-id`). */
async function verifyStandard(
  headers: Headers,
  body: Uint8Array,
  keys: CryptoKey[],
  nowSecs: number,
  tolerance: number,
): Promise<string | undefined> {
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp");
  const signature = headers.get("webhook-signature");
  if (id === null || timestamp === null || signature === null) {
    throw new Refusal(401, "missing_signature");
  }
  if (id === "") throw new Refusal(400, "malformed_signature");
  checkTimestamp(timestamp, nowSecs, tolerance);
  const candidates: Uint8Array[] = [];
  let anyEntry = false;
  for (const entry of signature.split(" ")) {
    if (entry === "") continue;
    const comma = entry.indexOf(",");
    if (comma < 0) throw new Refusal(400, "malformed_signature");
    let sig: Uint8Array;
    try {
      sig = b64decode(entry.slice(comma + 1));
    } catch {
      throw new Refusal(400, "malformed_signature");
    }
    const version = entry.slice(0, comma);
    if (version === "v1") candidates.push(sig);
    if (version === "v1" || version === "v1a") anyEntry = true;
  }
  if (!anyEntry) throw new Refusal(400, "malformed_signature");
  const signed = concat(`${id}.${timestamp.trim()}.`, body);
  if (!(await anyMatches(keys, candidates, signed))) throw new Refusal(401, "invalid_signature");
  return id;
}

/** Stripe; returns the idempotency key (the body's `id`), read after verification. */
async function verifyStripe(
  headers: Headers,
  body: Uint8Array,
  keys: CryptoKey[],
  nowSecs: number,
  tolerance: number,
): Promise<string | undefined> {
  const header = headers.get("stripe-signature");
  if (header === null) throw new Refusal(401, "missing_signature");
  let t: string | undefined;
  const candidates: Uint8Array[] = [];
  for (const item of header.split(",")) {
    const trimmed = item.trim();
    const eq = trimmed.indexOf("=");
    if (eq < 0) throw new Refusal(400, "malformed_signature");
    const k = trimmed.slice(0, eq);
    const v = trimmed.slice(eq + 1);
    if (k === "t") t = v;
    else if (k === "v1") candidates.push(hexDecode(v));
  }
  if (t === undefined || candidates.length === 0) throw new Refusal(400, "malformed_signature");
  checkTimestamp(t, nowSecs, tolerance);
  if (!(await anyMatches(keys, candidates, concat(`${t}.`, body)))) {
    throw new Refusal(401, "invalid_signature");
  }
  return undefined; // filled from the parsed body by the caller
}

// ---- ids ------------------------------------------------------------------------------------

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** protocol/src/event_id.rs: `evt_` + ULID (48 bits of ms, 80 random bits), Crockford base32. */
function eventId(nowMs: number): string {
  const random = crypto.getRandomValues(new Uint8Array(10));
  let value = BigInt(nowMs) & 0xffffffffffffn;
  for (const b of random) value = (value << 8n) | BigInt(b);
  let out = "";
  for (let i = 25; i >= 0; i--) out += CROCKFORD[Number((value >> BigInt(5 * i)) & 31n)];
  return "evt_" + out;
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** The trace id of a W3C `traceparent`, or a fresh one. */
function traceId(traceparent: string | null): string {
  if (traceparent !== null) {
    const m = /^([0-9a-fA-F]{2})-([0-9a-fA-F]{32})-([0-9a-fA-F]{16})-([0-9a-fA-F]{2})$/.exec(
      traceparent.trim(),
    );
    if (m && !/^0+$/.test(m[2])) return m[2].toLowerCase();
  }
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

// ---- the envelope (protocol/src/envelope.rs) ------------------------------------------------

type Body =
  | { encoding: "utf8"; data: string }
  | { encoding: "base64"; data: string }
  | { encoding: "s3"; bucket: string; key: string; size: number; sha256: string };

interface Envelope {
  v: 2;
  id: string;
  source: string;
  idempotency_key?: string;
  received_at_ms: number;
  content_type?: string;
  trace_id: string;
  headers: Record<string, string>;
  body: Body;
}

/** Text SQS refuses raw (protocol/src/sqs_text.rs): control characters other than tab,
 * line feed and carriage return, U+FFFE and U+FFFF. */
const NOT_QUEUEABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

/** Envelope version 2 (protocol/src/envelope_json.rs): a JSON line (same field order as
 * the Rust struct, so JSON.stringify writes what serde_json writes), a line feed, then a
 * text body as received. */
function encode(e: Envelope): string {
  const raw = e.body.encoding === "utf8" && !NOT_QUEUEABLE.test(e.body.data);
  const line = JSON.stringify({
    v: e.v,
    id: e.id,
    source: e.source,
    idempotency_key: e.idempotency_key,
    received_at_ms: e.received_at_ms,
    content_type: e.content_type,
    trace_id: e.trace_id,
    headers: e.headers,
    body: raw ? { encoding: "utf8" } : e.body,
  }).replace(/[\ufffe\uffff]/g, (c) => (c === "\ufffe" ? "\\ufffe" : "\\uffff"));
  return raw ? `${line}\n${(e.body as { data: string }).data}` : `${line}\n`;
}

/** protocol/src/claim_check.rs: `payloads/{source}/{yyyy}/{mm}/{dd}/{event id}`. */
function objectKey(source: string, receivedAtMs: number, id: string): string {
  const day = new Date(receivedAtMs).toISOString().slice(0, 10).replaceAll("-", "/");
  return `payloads/${source}/${day}/${id}`;
}

async function withTimeout(
  client: AwsClient,
  url: string,
  init: RequestInit,
  ms: number,
): Promise<Response> {
  return client.fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
}

// ---- the request ----------------------------------------------------------------------------

async function ingest(request: Request, env: Env, sourceName: string): Promise<Response> {
  if (request.method !== "POST") throw new Refusal(405, "method_not_allowed");
  const source = sources(env).get(sourceName);
  if (!source) throw new Refusal(404, "unknown_source");
  const maxBody = source.max_body_bytes ?? DEFAULT_MAX_BODY_BYTES;
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBody) throw new Refusal(413, "payload_too_large");
  const keys = await hmacKeys(env, source);
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.length > maxBody) throw new Refusal(413, "payload_too_large");

  const contentType = request.headers.get("content-type") ?? undefined;
  const allowed = source.content_types ?? [];
  if (allowed.length > 0) {
    const media = (contentType ?? "").split(";")[0].trim().toLowerCase();
    if (contentType === undefined || !allowed.some((a) => a.toLowerCase() === media)) {
      throw new Refusal(415, "unsupported_media_type");
    }
  }
  const nowMs = Date.now();
  const nowSecs = Math.floor(nowMs / 1000);
  const tolerance = source.tolerance_secs ?? DEFAULT_TOLERANCE_SECS;
  let idempotencyKey: string | undefined;
  if (source.scheme === "standard-webhooks") {
    idempotencyKey = await verifyStandard(request.headers, body, keys, nowSecs, tolerance);
  } else if (source.scheme === "stripe") {
    await verifyStripe(request.headers, body, keys, nowSecs, tolerance);
  } else {
    throw new Refusal(500, "source_misconfigured");
  }

  // The body as text when it is valid UTF-8, else base64.
  let text: string | undefined;
  try {
    text = utf8.decode(body);
  } catch {
    text = undefined;
  }
  let parsed: unknown;
  let isJson = false;
  if ((source.require_json || source.scheme === "stripe") && text !== undefined) {
    try {
      parsed = JSON.parse(text);
      isJson = true;
    } catch {
      isJson = false;
    }
  }
  if (source.require_json && !isJson) throw new Refusal(400, "invalid_json");
  if (source.scheme === "stripe" && parsed !== null && typeof parsed === "object") {
    const id = (parsed as { id?: unknown }).id;
    if (typeof id === "string") idempotencyKey = id;
  }

  const forwarded: Record<string, string> = {};
  for (const name of FORWARDED) {
    const value = request.headers.get(name);
    if (value !== null) forwarded[name] = value;
  }
  const trace = traceId(request.headers.get("traceparent"));
  const envelope: Envelope = {
    v: 2,
    id: eventId(nowMs),
    source: source.name,
    idempotency_key: idempotencyKey,
    received_at_ms: nowMs,
    content_type: contentType,
    trace_id: trace,
    headers: forwarded,
    body:
      text !== undefined
        ? { encoding: "utf8", data: text }
        : { encoding: "base64", data: b64encode(body) },
  };
  const refuse = (status: number, code: string) => new Refusal(status, code, trace);

  const queueUrl = env.SQS_QUEUE_URL;
  const region = env.AWS_REGION;
  if (!queueUrl || !region) throw refuse(500, "edge_misconfigured");
  const clients = aws(env);
  let threshold = DEFAULT_INLINE_THRESHOLD;
  if (env.INLINE_THRESHOLD_BYTES) {
    threshold = Number(env.INLINE_THRESHOLD_BYTES);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > DEFAULT_INLINE_THRESHOLD) {
      throw refuse(500, "edge_misconfigured");
    }
  }

  let encoded = encode(envelope);
  // UTF-8 length is at least the UTF-16 length: encode only when it could be under.
  if (encoded.length > threshold || encoder.encode(encoded).length > threshold) {
    // Claim check: the body goes to S3 first, the queue gets the reference.
    const bucket = env.PAYLOAD_BUCKET;
    if (!bucket) throw refuse(413, "payload_too_large");
    const key = objectKey(envelope.source, nowMs, envelope.id);
    const url = env.S3_ENDPOINT
      ? `${env.S3_ENDPOINT.replace(/\/+$/, "")}/${bucket}/${key}`
      : `https://${bucket}.s3.${region}.amazonaws.com/${key}`;
    let put: Response;
    try {
      put = await withTimeout(
        clients.s3,
        url,
        {
          method: "PUT",
          headers: {
            "content-type": contentType ?? "application/octet-stream",
            "x-amz-meta-sluice-event-id": envelope.id,
          },
          body,
        },
        S3_TIMEOUT_MS,
      );
    } catch {
      throw refuse(503, "queue_unavailable");
    }
    if (!put.ok) throw refuse(503, "queue_unavailable");
    const sha256 = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", body)));
    envelope.body = { encoding: "s3", bucket, key, size: body.length, sha256 };
    encoded = encode(envelope);
  }

  const attributes: Record<string, { DataType: "String"; StringValue: string }> = {};
  const attr = (name: string, value: string) => {
    attributes[name] = { DataType: "String", StringValue: value };
  };
  attr("sluice-source", envelope.source);
  attr("sluice-event-id", envelope.id);
  if (idempotencyKey) attr("sluice-idempotency-key", idempotencyKey);
  attr("sluice-trace-id", trace);
  const endpoint = (env.SQS_ENDPOINT || `https://sqs.${region}.amazonaws.com`).replace(
    /\/+$/,
    "",
  );
  let sent: Response;
  try {
    sent = await withTimeout(
      clients.sqs,
      `${endpoint}/`,
      {
        method: "POST",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "AmazonSQS.SendMessage",
        },
        body: JSON.stringify({
          QueueUrl: queueUrl,
          MessageBody: encoded,
          MessageAttributes: attributes,
        }),
      },
      SQS_TIMEOUT_MS,
    );
  } catch {
    throw refuse(503, "queue_unavailable");
  }
  if (!sent.ok) {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "sqs send failed",
        event_id: envelope.id,
        status: sent.status,
      }),
    );
    throw refuse(503, "queue_unavailable");
  }
  return json(202, { id: envelope.id }, { "sluice-trace-id": trace });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === "/healthz") return json(200, { status: "ok" });
    const sourceName = path.startsWith("/hooks/") ? path.slice("/hooks/".length) : undefined;
    if (sourceName === undefined || sourceName.includes("/")) {
      return json(404, { error: { code: "not_found" } });
    }
    try {
      return await ingest(request, env, sourceName);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      const headers: Record<string, string> = {};
      if (e.status === 405) headers["allow"] = "POST";
      if (e.status === 503) headers["retry-after"] = "5";
      if (e.traceId) headers["sluice-trace-id"] = e.traceId;
      return json(e.status, { error: { code: e.code } }, headers);
    }
  },
};
