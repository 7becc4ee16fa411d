//! SHA-256 and HMAC through the Workers runtime's WebCrypto: native code (hardware SHA where
//! the CPU has it), several times faster than SHA-256 compiled to wasm on bodies of
//! kilobytes. Computes only: every MAC comparison stays in `sluice_protocol`.

use sha2::{Digest, Sha256};
use sluice_protocol::signature::mac::Algorithm;
use sluice_protocol::signature::{ExternalMacs, MacRequest};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Below this many bytes, hashing in wasm costs less than a round trip through WebCrypto's
/// promises (measured: at 1 KiB the WebCrypto path cost the Worker more CPU per request).
pub const WORTH_IT_BYTES: usize = 16 * 1024;

fn subtle() -> Result<web_sys::SubtleCrypto, JsValue> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(scope.crypto()?.subtle())
}

/// Lower-case hex SHA-256 of `bytes`: by WebCrypto from [`WORTH_IT_BYTES`], in wasm below
/// (and if WebCrypto fails: same digest, slower).
pub async fn sha256_hex(bytes: &[u8]) -> String {
    if bytes.len() >= WORTH_IT_BYTES {
        if let Ok(digest) = subtle_digest(bytes).await {
            return hex::encode(digest);
        }
    }
    hex::encode(Sha256::digest(bytes))
}

async fn subtle_digest(bytes: &[u8]) -> Result<Vec<u8>, JsValue> {
    let promise = subtle()?.digest_with_str_and_u8_array("SHA-256", bytes)?;
    Ok(js_sys::Uint8Array::new(&JsFuture::from(promise).await?).to_vec())
}

/// HMAC of `message` under `key`, by WebCrypto (`importKey` + `sign`).
pub async fn hmac(algorithm: Algorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, JsValue> {
    let hash = match algorithm {
        Algorithm::Sha1 => "SHA-1",
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha512 => "SHA-512",
    };
    let params = js_sys::Object::new();
    js_sys::Reflect::set(&params, &"name".into(), &"HMAC".into())?;
    js_sys::Reflect::set(&params, &"hash".into(), &hash.into())?;
    let usages = js_sys::Array::of1(&"sign".into());
    let subtle = subtle()?;
    let key_data = js_sys::Uint8Array::from(key);
    let promise = subtle.import_key_with_object("raw", &key_data, &params, false, &usages)?;
    let crypto_key: web_sys::CryptoKey = JsFuture::from(promise).await?.unchecked_into();
    let promise = subtle.sign_with_str_and_u8_array("HMAC", &crypto_key, message)?;
    Ok(js_sys::Uint8Array::new(&JsFuture::from(promise).await?).to_vec())
}

/// Answers every MAC a recording pass asked for (see `sluice_protocol::ExternalMacs`).
pub async fn answer(requests: Vec<MacRequest>) -> Result<ExternalMacs, JsValue> {
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let mac = hmac(request.algorithm, &request.key, &request.message).await?;
        answers.push((request, mac));
    }
    Ok(ExternalMacs::answered(answers))
}
