//! Sluice's consumer. Fed SQS batches (by the Lambda event source mapping in AWS, or by
//! `sluice-local-poller` locally), it deduplicates each event with a conditional write in
//! DynamoDB, delivers it, and reports partial batch failures.
//!
//! Guarantee: at-least-once in, exactly-once effect out. An event is acknowledged only after
//! it was delivered (or found already delivered); everything else is reported as a batch
//! item failure so SQS redelivers it, and its redrive policy moves poison to the DLQ.
//! Nothing here logs a secret or a body.

pub mod archive;
pub mod batch;
pub mod claim;
pub mod clock;
pub mod config;
pub mod ddb_direct;
pub mod delivery;
pub mod destination_secret;
pub mod fan_out;
pub mod lanes;
pub mod local_poller;
pub mod outcome;
pub mod payload;
pub mod processor;
pub mod routes;
pub mod settle;
pub mod telemetry;

pub use batch::Consumer;
pub use config::ConsumerConfig;
pub use processor::{Event, Processor};
