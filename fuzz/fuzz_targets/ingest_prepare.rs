//! libFuzzer entry for [`sluice_fuzz::targets::ingest_prepare`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::ingest_prepare::run(data));
