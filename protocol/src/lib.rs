//! Sluice's protocol: everything that crosses a wire between the edge, the queue and the
//! consumer, as pure functions and data types.
//!
//! This crate performs no I/O and reads no clock: callers pass the current time, random
//! bytes and request parts in. That keeps it compiling for `wasm32-unknown-unknown` (the
//! edge Worker) and native (the Lambda consumer, the CLI, tests and benchmarks) alike, and
//! makes every rule in it unit-testable.
//!
//! It must never log, never hold a secret longer than a call, and never put a secret or a
//! signature into anything it returns.

pub mod archive;
pub mod aws_error;
pub mod breaker;
pub mod claim_check;
pub mod destination;
pub mod envelope;
mod envelope_json;
pub mod event_id;
pub mod fifo;
pub mod filter;
pub mod headers;
pub mod ingest;
pub mod ingest_error;
pub mod json_text;
pub mod queue_attributes;
pub mod rate_limit;
pub mod retry;
pub mod schedule;
pub mod send_message;
pub mod signature;
pub mod source;
pub mod sqs_text;

pub use destination::{DestinationConfig, DEFAULT_DESTINATION};
pub use envelope::{Body, Envelope, EnvelopeError, ENVELOPE_VERSION, ENVELOPE_VERSION_1};
pub use envelope_json::Encoded;
pub use headers::HeaderMap;
pub use ingest::{prepare, prepare_with, Inbound, Prepared};
pub use ingest_error::IngestError;
pub use signature::{Scheme, Secret, SecretError, SignatureError};
pub use source::{ConfigError, SourceConfig, SourcesConfig};
