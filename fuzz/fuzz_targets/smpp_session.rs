//! A peer's bytes → framing → the listener session's state machine (open, bound as
//! transmitter/receiver/transceiver, closed), with the session's promises checked:
//! nothing handled before a bind, every request answered or the link closed, the
//! window kept, output bounded. The first byte sets up the model.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = otpgw::smpp::session_for_fuzzing(data);
});
