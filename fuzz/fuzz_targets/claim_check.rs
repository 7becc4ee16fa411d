//! libFuzzer entry for [`sluice_fuzz::targets::claim_check`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::claim_check::run(data));
