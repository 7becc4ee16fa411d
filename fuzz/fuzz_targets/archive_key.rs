//! libFuzzer entry for [`sluice_fuzz::targets::archive_key`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::archive_key::run(data));
