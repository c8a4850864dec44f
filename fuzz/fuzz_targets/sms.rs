//! The SMS grammar, with and without a customer's cap: any body, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otpgw_parsers::sms::{parse_sms, parse_sms_capped, SmsGrammar};

fuzz_target!(|body: &str| {
    let _ = parse_sms(body, &SmsGrammar::default());
    let _ = parse_sms_capped(body, &SmsGrammar::default());
});
