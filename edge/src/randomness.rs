//! Fresh event and trace ids from the Workers runtime's `crypto.getRandomValues`.
//!
//! `SystemTime::now()` and OS randomness do not exist on wasm32; this is the only place the
//! edge draws random bytes.

use sluice_protocol::event_id::new_event_id;
use wasm_bindgen::JsCast;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    if let Ok(crypto) = scope.crypto() {
        // Filling at most 65536 bytes cannot fail.
        let _ = crypto.get_random_values_with_u8_array(&mut buf);
    }
    buf
}

/// A new Sluice event id for a request received at `now_ms`.
pub fn event_id(now_ms: u64) -> String {
    new_event_id(now_ms, random_bytes::<10>())
}

/// A new W3C trace id (32 lower-case hex characters).
pub fn trace_id() -> String {
    let bytes = random_bytes::<16>();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
