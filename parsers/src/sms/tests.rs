//! The SMS grammar, table by table: what customers type and what it means.

use super::*;
use SmsRequest::*;

fn last4(s: &str) -> SmsRequest {
    Last4(s.to_owned())
}

fn last6(s: &str) -> SmsRequest {
    Last6(s.to_owned())
}

/// Checks each answer against every input that must give it.
fn check_table(grammar: &SmsGrammar, table: &[(SmsRequest, &[&str])]) {
    for (expected, inputs) in table {
        for input in *inputs {
            assert_eq!(
                &parse_sms(input, grammar),
                expected,
                "parse_sms({input:?}, {grammar:?})"
            );
        }
    }
}

/// One table for the default grammar: a failing row names its input, so each
/// answer needs no test of its own.
#[test]
fn default_grammar_table() {
    let table: &[(SmsRequest, &[&str])] = &[
        // The last 4 digits.
        (
            last4("1234"),
            &[
                "1234",
                "  1234  ",
                "۱۲۳۴",
                "١٢٣٤",
                "１２３４",
                "1۲3٤",
                "12 34",
                "12-34",
                "۱۲ ۳۴",
                "12 - 34",
                "OTP 1234",
                "otp:1234",
                "Otp: 1234.",
                "OTP1234",
                "PIN 1234",
                "code#1234",
                "CODE - 1234",
                "otp\n1234\n",
                "OTP\t1234",
                "رمز ۱۲۳۴",
                "رمز۱۲۳۴",
                "رمز:۱۲۳۴",
                "رمز پویا 1234",
                "رمز پویا ۱۲۳۴",
                "رمز پویا۱۲۳۴",
                "رمز  پویا 1234",
                "رمز\u{200C}پویا 1234",
                "رمز پويا 1234", // Arabic yeh
                "كد 1234",       // Arabic kaf
                "کد ۱۲۳۴",
                "رمـز ۱۲۳۴", // tatweel
                "رمز\u{200C}۱۲۳۴",
                "\u{200C}1234\u{200C}",
                "\u{200D}1234",
                "\u{200F}۱۲۳۴\u{200E}",
                "\u{FEFF}1234",
                "\u{202B}۱۲۳۴\u{202C}",
                "1234\u{A0}",
                "(1234)",
                "#1234#",
                "*1234*",
                "1234،",
                "«۱۲۳۴»",
                "_1234_",
                "/1234;",
                "1234?",
                "?1234",
                "12\u{2013}34", // en dash
            ],
        ),
        (last4("0000"), &["0000"]),
        // The last 6 digits, when two cards of a phone share the last 4.
        (
            last6("123456"),
            &[
                "123456",
                "۱۲۳۴۵۶",
                "١٢٣٤٥٦",
                "１２３４５６",
                "OTP 123456",
                "رمز پویا ۱۲۳۴۵۶",
                "123 456",
                "12-34-56",
            ],
        ),
        // A card number, wherever it stands: never digits to look up.
        (
            FullPan,
            &[
                "6037991234567890",
                "6037 9912 3456 7890",
                "6037-9912-3456-7890",
                "1234-5678-9012-3456",
                "6037 - 9912 - 3456 - 7890",
                "۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۰",
                "٦٠٣٧ ٩٩١٢ ٣٤٥٦ ٧٨٩٠",
                "６０３７９９１２３４５６７８９０",
                "OTP 6037991234567890",
                "رمز ۶۰۳۷-۹۹۱۲-۳۴۵۶-۷۸۹۰",
                "1234567890123",       // 13
                "1234567890123456789", // 19
                "my card 6037991234567890 please",
                "card:6037991234567890",
                "abc6037991234567890xyz",
                "کارت من ۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۰ است",
                "کارت من ۶۰۳۷ ۹۹۱۲ ۳۴۵۶ ۷۸۹۰ است",
                "6037991234567890 1234",
                "1234 6037991234567890",
                "6037 9912 3456 7890 1234",
                "6037\u{200C}9912\u{200C}3456\u{200C}7890",
                "6037\u{A0}9912\u{A0}3456\u{A0}7890",
                "OTP 1234, card 6037991234567890",
                "12 34 56 78 90 12 34", // 14 in pairs
            ],
        ),
        // A keyword alone, or a question: help.
        (
            Help,
            &[
                "HELP",
                "help",
                "Help?",
                "HELP!",
                "-help-",
                "?",
                "??",
                "؟",
                "راهنما",
                " راهنما ",
                "\u{200C}راهنما",
                "کمک",
                "کمک؟",
                "OTP",
                "otp?",
                "Code:",
                "PIN",
                "رمز",
                "رمز پویا",
                "رمز پويا",
                "کد",
                "كد",
            ],
        ),
        // Nothing but blanks, marks and invisible characters.
        (
            Empty,
            &[
                "",
                "   ",
                "\n\t\r",
                "...",
                "-",
                "()",
                "،",
                "\u{200C}",
                "\u{200F}\u{200E}",
                "\u{FEFF}",
                "\u{A0}",
                "\0",
                " . , ; : ",
            ],
        ),
        // Anything else.
        (
            Unrecognised,
            &[
                "1",
                "123",
                "۱۲۳",
                "12345",
                "1234567",
                "1234 5678",
                "123456789012",         // 12
                "12345678901234567890", // 20 in one run
                "12a4",
                "۱۲a۴",
                "OTP 12a4",
                "1234a",
                "hello",
                "OTPX 1234",
                "codes 1234",
                "1234 OTP",
                "otp 1234 please",
                "help 1234",
                "help me",
                "1.234",
                "12.34",
                "1234/5678",
                "🙂",
                "1234 🙂",
                "ＯＴＰ 1234", // full-width Latin is not folded
                "رمزپویا 1234",
                "OTP 1234 OTP 5678",
                "1402/05/12 12:30",
            ],
        ),
    ];
    check_table(&SmsGrammar::default(), table);
}

#[test]
fn cap_table() {
    fn check(input: &str, expected: (SmsRequest, Option<u64>)) {
        assert_eq!(
            parse_sms_capped(input, &SmsGrammar::default()),
            expected,
            "parse_sms_capped({input:?})"
        );
    }
    let table = [
        ("5678 2500000", (last4("5678"), Some(2_500_000))),
        ("5678 2,500,000", (last4("5678"), Some(2_500_000))),
        ("۵۶۷۸ ۲٬۵۰۰٬۰۰۰", (last4("5678"), Some(2_500_000))),
        ("۵۶۷۸ ۲۵۰۰۰۰۰", (last4("5678"), Some(2_500_000))),
        ("٥٦٧٨ ٢٥٠٠٠٠٠", (last4("5678"), Some(2_500_000))),
        ("OTP 5678 2500000", (last4("5678"), Some(2_500_000))),
        ("رمز ۵۶۷۸ ۲٬۵۰۰٬۰۰۰", (last4("5678"), Some(2_500_000))),
        ("5678-2500000", (last4("5678"), Some(2_500_000))),
        ("5678*2500000", (last4("5678"), Some(2_500_000))),
        ("5678  1 ", (last4("5678"), Some(1))),
        ("5678 1'000", (last4("5678"), Some(1_000))),
        ("125678 999,999,999,999", (last6("125678"), Some(CAP_MAX))),
        // No cap: as parse_sms.
        ("5678", (last4("5678"), None)),
        ("12 34", (last4("1234"), None)),
        // Bad caps are not read as caps.
        ("5678 0", (Unrecognised, None)),
        ("5678 25,00,000", (Unrecognised, None)),
        ("5678 2500,000", (Unrecognised, None)),
        ("5678 1,000,000,000,000", (Unrecognised, None)),
        ("5678 2500000 3", (Unrecognised, None)),
        ("567 2500000", (Unrecognised, None)),
        // A card number is never read as digits and a cap.
        ("6037 9912 3456 7890", (FullPan, None)),
        ("1234 567890123", (FullPan, None)),
        ("1234 603799123456", (FullPan, None)),
    ];
    for (input, expected) in table {
        check(input, expected);
    }
}

#[test]
fn custom_grammar_table() {
    let only_ramz = SmsGrammar {
        keywords: vec!["رمز".to_owned()],
        help_keywords: vec!["راهنما".to_owned()],
    };
    check_table(
        &only_ramz,
        &[
            (last4("1234"), &["رمز 1234"]),
            (Unrecognised, &["رمز پویا 1234", "OTP 1234", "HELP"]),
            (Empty, &["?"]),
            (Help, &["راهنما"]),
        ],
    );
    let arabic_forms = SmsGrammar {
        keywords: vec!["كد".to_owned(), "Kod".to_owned()],
        help_keywords: vec!["يا".to_owned()],
    };
    check_table(
        &arabic_forms,
        &[
            (last4("1234"), &["کد 1234", "KOD 1234"]),
            (Help, &["kod", "یا"]),
        ],
    );
    let blank = SmsGrammar {
        keywords: vec![String::new(), "  ".to_owned(), "\u{200C}".to_owned()],
        help_keywords: vec![String::new()],
    };
    check_table(
        &blank,
        &[
            (Empty, &[""]),
            (last4("1234"), &["1234"]),
            (Unrecognised, &["x 1234"]),
            (FullPan, &["6037991234567890"]),
        ],
    );
    let none = SmsGrammar {
        keywords: vec![],
        help_keywords: vec![],
    };
    check_table(
        &none,
        &[
            (last4("1234"), &["1234"]),
            (Unrecognised, &["OTP 1234"]),
            (Empty, &["?"]),
            (FullPan, &["my card 6037991234567890"]),
        ],
    );
}

#[test]
fn debug_output_never_shows_the_pan() {
    let pans = [
        "6037991234567890",
        "my card 6037991234567890 please",
        "6037-9912-3456-7890",
        "۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۰",
    ];
    for body in pans {
        let shown = format!("{:?}", parse_sms(body, &SmsGrammar::default()));
        assert_eq!(shown, "FullPan");
        for group in ["6037", "9912", "3456", "7890"] {
            assert!(!shown.contains(group), "{shown}");
        }
    }
}
