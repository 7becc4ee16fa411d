//! libFuzzer entry for [`sluice_fuzz::targets::sig_standard_webhooks`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::sig_standard_webhooks::run(data));
