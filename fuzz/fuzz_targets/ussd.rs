//! The dialled-string grammar (`*720*1*4321#`) and the menu's card-digits input
//! (`4321 2,500,000`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let _ = otpgw_parsers::ussd::parse_ussd(s);
    let _ = otpgw_parsers::ussd::parse_card_input(s);
    let _ = otpgw_parsers::ussd::parse_cap(s);
});
