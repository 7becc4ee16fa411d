//! libFuzzer entry for [`sluice_fuzz::targets::envelope_roundtrip`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::targets::envelope_roundtrip::run(data));
