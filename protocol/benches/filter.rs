//! Destination filters (`sluice_protocol::filter`) on a realistic Stripe
//! `invoice.payment_succeeded` event (~2.5 KiB): the match alone, with the body parsed once
//! outside the loop (what a consumer pays per destination), and parse + match (what one
//! event pays when a filter needs its body).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use sluice_protocol::filter::{Filter, FilterEvent};
use std::collections::BTreeMap;
use std::hint::black_box;

/// A Stripe `invoice.payment_succeeded` event, shaped as Stripe sends it.
const EVENT: &str = r#"{
  "id": "evt_1PaYm2LkdIwHu7ixQz3bY8fK",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1720000000,
  "data": {
    "object": {
      "id": "in_1PaYlzLkdIwHu7ixv0hKxk2N",
      "object": "invoice",
      "account_country": "US",
      "account_name": "Acme, Inc.",
      "amount_due": 2500,
      "amount_paid": 2500,
      "amount_remaining": 0,
      "attempt_count": 1,
      "attempted": true,
      "billing_reason": "subscription_cycle",
      "charge": "ch_3PaYm0LkdIwHu7ix1bU4Jd0c",
      "collection_method": "charge_automatically",
      "created": 1719999990,
      "currency": "usd",
      "customer": "cus_QRsT1uVwXyZ2ab",
      "customer_email": "jenny.rosen@example.com",
      "customer_name": "Jenny Rosen",
      "customer_address": {"city": "San Francisco", "country": "US", "line1": "510 Townsend St", "line2": null, "postal_code": "94103", "state": "CA"},
      "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Nv0FGLkdIwHu7ix/test_YWNjdF8xTnYwRkdMa2RJd0h1N2l4",
      "invoice_pdf": "https://pay.stripe.com/invoice/acct_1Nv0FGLkdIwHu7ix/test_YWNjdF8xTnYwRkdMa2RJd0h1N2l4/pdf",
      "lines": {
        "object": "list",
        "data": [
          {
            "id": "il_1PaYlzLkdIwHu7ixa1b2c3d4",
            "object": "line_item",
            "amount": 2000,
            "currency": "usd",
            "description": "1 × Pro plan (at $20.00 / month)",
            "period": {"end": 1722678390, "start": 1719999990},
            "plan": {"id": "price_1Nv0HcLkdIwHu7ixPro", "object": "plan", "active": true, "amount": 2000, "interval": "month", "product": "prod_Pro"},
            "price": {"id": "price_1Nv0HcLkdIwHu7ixPro", "object": "price", "unit_amount": 2000, "type": "recurring"},
            "proration": false,
            "quantity": 1,
            "type": "subscription"
          },
          {
            "id": "il_1PaYlzLkdIwHu7ixe5f6g7h8",
            "object": "line_item",
            "amount": 500,
            "currency": "usd",
            "description": "1 × Extra seats (at $5.00 / month)",
            "period": {"end": 1722678390, "start": 1719999990},
            "plan": {"id": "price_1Nv0IdLkdIwHu7ixSeat", "object": "plan", "active": true, "amount": 500, "interval": "month", "product": "prod_Seat"},
            "price": {"id": "price_1Nv0IdLkdIwHu7ixSeat", "object": "price", "unit_amount": 500, "type": "recurring"},
            "proration": false,
            "quantity": 1,
            "type": "subscription"
          }
        ],
        "has_more": false,
        "total_count": 2,
        "url": "/v1/invoices/in_1PaYlzLkdIwHu7ixv0hKxk2N/lines"
      },
      "livemode": false,
      "metadata": {"order_id": "6735", "tenant": "acme-eu"},
      "number": "A1B2C3D4-0007",
      "paid": true,
      "payment_intent": "pi_3PaYm0LkdIwHu7ix0abcdEfg",
      "period_end": 1719999990,
      "period_start": 1717321590,
      "status": "paid",
      "status_transitions": {"finalized_at": 1719999991, "paid_at": 1720000000},
      "subscription": "sub_1Nv0JeLkdIwHu7ixSubAbc",
      "subtotal": 2500,
      "tax": null,
      "total": 2500,
      "webhooks_delivered_at": 1719999991
    }
  },
  "livemode": false,
  "pending_webhooks": 2,
  "request": {"id": null, "idempotency_key": null},
  "type": "invoice.payment_succeeded"
}"#;

fn bench(c: &mut Criterion) {
    let body: Value = serde_json::from_str(EVENT).unwrap();
    let headers: BTreeMap<String, String> = [
        ("content-type", "application/json; charset=utf-8"),
        (
            "stripe-signature",
            "t=1720000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
        ),
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        ),
        ("x-stripe-event", "invoice.payment_succeeded"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let filters = [
        (
            "starts_with_type",
            json!({"body": {"type": {"$startsWith": "invoice."}}}),
        ),
        (
            "nested_amount_gte",
            json!({"source": "stripe", "body": {"data": {"object": {"amount_paid": {"$gte": 1000}}}}}),
        ),
        (
            "or_of_three_types",
            json!({"body": {"type": {"$or": [
                "invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded"
            ]}}}),
        ),
        (
            "header_equality",
            json!({"headers": {"X-Stripe-Event": "invoice.payment_succeeded"}}),
        ),
    ];

    let mut group = c.benchmark_group("filter_match");
    group.throughput(Throughput::Elements(1));
    for (name, doc) in &filters {
        let filter = Filter::compile(doc).unwrap();
        let event = FilterEvent {
            body: Some(&body),
            headers: &headers,
            source: "stripe",
        };
        assert!(filter.matches(&event), "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| black_box(&filter).matches(black_box(&event)))
        });
    }
    group.finish();

    // Parse + match: the body (EVENT, ~3.2 KiB as Stripe sends it, pretty-printed) parsed
    // for each event, only when the filter reads it.
    let mut group = c.benchmark_group("filter_parse_and_match");
    group.throughput(Throughput::Elements(1));
    for (name, doc) in &filters {
        let filter = Filter::compile(doc).unwrap();
        group.bench_function(*name, |b| {
            b.iter(|| {
                let parsed: Option<Value> = if filter.uses_body() {
                    serde_json::from_slice(black_box(EVENT.as_bytes())).ok()
                } else {
                    None
                };
                let event = FilterEvent {
                    body: parsed.as_ref(),
                    headers: &headers,
                    source: "stripe",
                };
                black_box(filter.matches(&event))
            })
        });
    }
    group.finish();

    // Compiling a filter (once per destination at start-up).
    let mut group = c.benchmark_group("filter_compile");
    let (_, doc) = &filters[1];
    group.bench_function("nested_amount_gte", |b| {
        b.iter(|| Filter::compile(black_box(doc)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
