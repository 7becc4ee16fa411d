//! Sluice's local stack, shared by `make dev` (the `sluice-dev` binary) and the end-to-end
//! tests: moto for AWS, the Worker under `wrangler dev` (workerd), the consumer fed by
//! `sluice-local-poller`, and an HTTP destination that records deliveries.
//!
//! Everything binds to 127.0.0.1 on free ports; every process is started in its own process
//! group and killed when the [`stack::Stack`] is dropped. Waiting is always for a condition
//! with a deadline, never a bare sleep.

pub mod cli;
pub mod destination;
pub mod edge;
pub mod fault_proxy;
pub mod moto;
pub mod paths;
pub mod process;
pub mod runtime_api;
pub mod sqs_stub;
pub mod stack;
pub mod template;
pub mod wait;

pub use destination::{Behaviour, Delivery, Destination};
pub use stack::{DemoSource, Stack, StackOptions};
