//! The SMS grammar: any body, any keywords, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otpgw_parsers::sms::{parse_sms, SmsGrammar};

fuzz_target!(|body: &str| {
    let _ = parse_sms(body, &SmsGrammar::default());
});
