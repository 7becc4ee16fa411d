//! libFuzzer entry for [`sluice_fuzz::targets::secrets`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::secrets::run(data));
