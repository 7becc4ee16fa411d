//! libFuzzer entry for [`sluice_fuzz::targets::sig_shopify`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::sig_shopify::run(data));
