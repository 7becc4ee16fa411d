//! The extension point: what the consumer does with each event after deduplication.
//!
//! The default [`Processor`] is [`crate::delivery::Deliverer`], which POSTs the event to
//! one of its source's destinations. It is called once per (event, destination) pair. Your own Rust logic implements `Processor` and is passed to
//! [`crate::Consumer::with_processor`]; claiming, retries, dead-lettering and metrics stay
//! the consumer's job. A processor must be idempotent-safe only in the weak sense that it may
//! be retried after a failure it reported; it is never called twice for a success.

use crate::outcome::Failure;
use crate::routes::Route;
use futures_util::future::BoxFuture;
use sluice_protocol::{Envelope, SourceConfig};

/// One deduplicated event, ready to process.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub envelope: &'a Envelope,
    /// The provider's body, byte-exact (claim-checked bodies already fetched and verified).
    pub body: &'a [u8],
    /// The event's source configuration.
    pub source: &'a SourceConfig,
    /// The destination this call is for (its filter matched).
    pub destination: &'a Route,
    /// The current Unix time in seconds.
    pub now_secs: i64,
}

/// Processes events. Return a transient [`Failure`] to be retried with backoff, a
/// permanent one to be dead-lettered at once.
pub trait Processor: Send + Sync + 'static {
    fn process<'a>(&'a self, event: Event<'a>) -> BoxFuture<'a, Result<(), Failure>>;
}

impl Processor for crate::delivery::Deliverer {
    fn process<'a>(&'a self, event: Event<'a>) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            self.deliver(
                event.destination,
                event.envelope,
                event.body.to_vec(),
                event.now_secs,
            )
            .await
            .map(|_| ())
        })
    }
}
