//! The Lambda entry point: runs the batch handler under `lambda_runtime`.
//!
//! Configuration errors stop the process at start-up (Lambda reports an init error), so a
//! misconfigured function never acknowledges anything.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_lambda_worker::{telemetry, Consumer};

// One thread: a Lambda at the default memory size has about one vCPU, and the records of a
// batch wait on I/O, not on each other; a multi-threaded runtime only adds cross-thread
// wake-ups (measured in docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    // Said in words (a config error names source, destination and field), not as the
    // error's Debug form, which is all a returned error prints.
    let consumer = Consumer::from_env().await.map_err(|e| {
        tracing::error!(detail = %e, "the consumer cannot start");
        Error::from(e.to_string())
    })?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let consumer = consumer.clone();
        async move { Ok::<SqsBatchResponse, Error>(consumer.handle(event).await) }
    }))
    .await
}
