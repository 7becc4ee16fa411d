//! libFuzzer entry for [`sluice_fuzz::targets::filter`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::filter::run(data));
