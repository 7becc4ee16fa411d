//! Reads a request body with a hard cap, so a chunked or lying request cannot make the
//! Worker buffer more than the source allows.

use futures_util::StreamExt;
use sluice_protocol::IngestError;
use worker::Request;

/// The whole body, or `PayloadTooLarge` as soon as more than `limit` bytes arrived.
///
/// With a `Content-Length` (`declared`, already checked against `limit`) the runtime ends the
/// body there, so it is read in one piece; without one, chunk by chunk with the cap.
pub async fn read_capped(
    req: &mut Request,
    limit: u64,
    declared: Option<u64>,
) -> Result<Vec<u8>, IngestError> {
    let too_large = IngestError::PayloadTooLarge { limit };
    if declared.is_some() {
        let body = req
            .bytes()
            .await
            .map_err(|_| IngestError::PayloadTooLarge { limit })?;
        if body.len() as u64 > limit {
            return Err(too_large);
        }
        return Ok(body);
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all.
        Err(_) => return Ok(Vec::new()),
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| IngestError::PayloadTooLarge { limit })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
