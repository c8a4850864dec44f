//! Pure, total parsers for the otpgw SMS/USSD one-time-password gateway.
//!
//! - [`digits`]: Persian, Arabic-Indic and full-width digits to ASCII.
//! - [`sms`]: classifies a customer's SMS body ([`sms::parse_sms`]).
//! - [`msisdn`]: subscriber numbers to E.164 ([`msisdn::normalize_msisdn`]).
//! - [`text`]: SMPP message octets to text by `data_coding`, and GSM-7 sizing
//!   for replies.
//! - [`ussd`]: splits dialled USSD strings such as `*720*1*1234#`, and reads
//!   the card digits and cap a customer gives in the menu.
//! - [`receipt`]: SMSC delivery receipts and the forms of a message id.
//!
//! Nothing here does I/O, and no function panics on any input: the lints
//! below keep indexing, slicing and unwrapping out of non-test code. No
//! function returns, stores or displays the digits of a full card number
//! that it has recognised as one.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

pub mod digits;
pub mod msisdn;
pub mod receipt;
pub mod sms;
pub mod text;
pub mod ussd;
