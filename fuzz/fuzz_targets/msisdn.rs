//! Phone-number normalisation, national and international forms, any script.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let _ = otpgw_parsers::msisdn::normalize_msisdn(s, "98");
});
