//! The dialled-string grammar (`*720*1*4321#`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let _ = otpgw_parsers::ussd::parse_ussd(s);
});
