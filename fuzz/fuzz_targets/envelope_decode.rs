//! libFuzzer entry for [`sluice_fuzz::targets::envelope_decode`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::envelope_decode::run(data));
