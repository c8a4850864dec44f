//! short_message decoding by data_coding (the first byte picks the coding).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&coding, bytes)) = data.split_first() {
        if let Ok(text) = otpgw_parsers::text::decode_short_message(coding, bytes) {
            let _ = otpgw_parsers::text::gsm7_septets(&text);
        }
    }
});
