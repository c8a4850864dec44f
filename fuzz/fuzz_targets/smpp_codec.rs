//! Bytes from a peer → framing → PDU values, as a session sees them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = otpgw::smpp::decode_for_fuzzing(data, 512);
});
