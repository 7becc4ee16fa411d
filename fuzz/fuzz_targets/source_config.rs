//! libFuzzer entry for [`sluice_fuzz::targets::source_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::source_config::run(data));
