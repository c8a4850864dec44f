//! The SMS grammar, table by table: what customers type and what it means.

use super::*;
use SmsRequest::*;

fn last4(s: &str) -> SmsRequest {
    Last4(s.to_owned())
}

fn last6(s: &str) -> SmsRequest {
    Last6(s.to_owned())
}

fn check_table(grammar: &SmsGrammar, table: &[(&str, SmsRequest)]) {
    for (input, expected) in table {
        assert_eq!(
            &parse_sms(input, grammar),
            expected,
            "parse_sms({input:?}, {grammar:?})"
        );
    }
}

#[test]
fn last4_table() {
    let table = [
        ("1234", last4("1234")),
        ("0000", last4("0000")),
        ("  1234  ", last4("1234")),
        ("۱۲۳۴", last4("1234")),
        ("١٢٣٤", last4("1234")),
        ("１２３４", last4("1234")),
        ("1۲3٤", last4("1234")),
        ("12 34", last4("1234")),
        ("12-34", last4("1234")),
        ("۱۲ ۳۴", last4("1234")),
        ("12 - 34", last4("1234")),
        ("OTP 1234", last4("1234")),
        ("otp:1234", last4("1234")),
        ("Otp: 1234.", last4("1234")),
        ("OTP1234", last4("1234")),
        ("PIN 1234", last4("1234")),
        ("code#1234", last4("1234")),
        ("CODE - 1234", last4("1234")),
        ("otp\n1234\n", last4("1234")),
        ("OTP\t1234", last4("1234")),
        ("رمز ۱۲۳۴", last4("1234")),
        ("رمز۱۲۳۴", last4("1234")),
        ("رمز:۱۲۳۴", last4("1234")),
        ("رمز پویا 1234", last4("1234")),
        ("رمز پویا ۱۲۳۴", last4("1234")),
        ("رمز پویا۱۲۳۴", last4("1234")),
        ("رمز  پویا 1234", last4("1234")),
        ("رمز\u{200C}پویا 1234", last4("1234")),
        ("رمز پويا 1234", last4("1234")), // Arabic yeh
        ("كد 1234", last4("1234")),       // Arabic kaf
        ("کد ۱۲۳۴", last4("1234")),
        ("رمـز ۱۲۳۴", last4("1234")), // tatweel
        ("رمز\u{200C}۱۲۳۴", last4("1234")),
        ("\u{200C}1234\u{200C}", last4("1234")),
        ("\u{200D}1234", last4("1234")),
        ("\u{200F}۱۲۳۴\u{200E}", last4("1234")),
        ("\u{FEFF}1234", last4("1234")),
        ("\u{202B}۱۲۳۴\u{202C}", last4("1234")),
        ("1234\u{A0}", last4("1234")),
        ("(1234)", last4("1234")),
        ("#1234#", last4("1234")),
        ("*1234*", last4("1234")),
        ("1234،", last4("1234")),
        ("«۱۲۳۴»", last4("1234")),
        ("_1234_", last4("1234")),
        ("/1234;", last4("1234")),
        ("1234?", last4("1234")),
        ("?1234", last4("1234")),
        ("12\u{2013}34", last4("1234")), // en dash
    ];
    check_table(&SmsGrammar::default(), &table);
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
fn last6_table() {
    let table = [
        ("123456", last6("123456")),
        ("۱۲۳۴۵۶", last6("123456")),
        ("١٢٣٤٥٦", last6("123456")),
        ("１２３４５６", last6("123456")),
        ("OTP 123456", last6("123456")),
        ("رمز پویا ۱۲۳۴۵۶", last6("123456")),
        ("123 456", last6("123456")),
        ("12-34-56", last6("123456")),
    ];
    check_table(&SmsGrammar::default(), &table);
}

#[test]
fn full_pan_table() {
    let table = [
        ("6037991234567890", FullPan),
        ("6037 9912 3456 7890", FullPan),
        ("6037-9912-3456-7890", FullPan),
        ("1234-5678-9012-3456", FullPan),
        ("6037 - 9912 - 3456 - 7890", FullPan),
        ("۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۰", FullPan),
        ("٦٠٣٧ ٩٩١٢ ٣٤٥٦ ٧٨٩٠", FullPan),
        ("６０３７９９１２３４５６７８９０", FullPan),
        ("OTP 6037991234567890", FullPan),
        ("رمز ۶۰۳۷-۹۹۱۲-۳۴۵۶-۷۸۹۰", FullPan),
        ("1234567890123", FullPan),       // 13
        ("1234567890123456789", FullPan), // 19
        ("my card 6037991234567890 please", FullPan),
        ("card:6037991234567890", FullPan),
        ("abc6037991234567890xyz", FullPan),
        ("کارت من ۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۰ است", FullPan),
        ("کارت من ۶۰۳۷ ۹۹۱۲ ۳۴۵۶ ۷۸۹۰ است", FullPan),
        ("6037991234567890 1234", FullPan),
        ("1234 6037991234567890", FullPan),
        ("6037 9912 3456 7890 1234", FullPan),
        ("6037\u{200C}9912\u{200C}3456\u{200C}7890", FullPan),
        ("6037\u{A0}9912\u{A0}3456\u{A0}7890", FullPan),
        ("OTP 1234, card 6037991234567890", FullPan),
        ("12 34 56 78 90 12 34", FullPan), // 14 in pairs
    ];
    check_table(&SmsGrammar::default(), &table);
}

#[test]
fn help_table() {
    let table = [
        ("HELP", Help),
        ("help", Help),
        ("Help?", Help),
        ("HELP!", Help),
        ("-help-", Help),
        ("?", Help),
        ("??", Help),
        ("؟", Help),
        ("راهنما", Help),
        (" راهنما ", Help),
        ("\u{200C}راهنما", Help),
        ("کمک", Help),
        ("کمک؟", Help),
        ("OTP", Help),
        ("otp?", Help),
        ("Code:", Help),
        ("PIN", Help),
        ("رمز", Help),
        ("رمز پویا", Help),
        ("رمز پويا", Help),
        ("کد", Help),
        ("كد", Help),
    ];
    check_table(&SmsGrammar::default(), &table);
}

#[test]
fn empty_table() {
    let table = [
        ("", Empty),
        ("   ", Empty),
        ("\n\t\r", Empty),
        ("...", Empty),
        ("-", Empty),
        ("()", Empty),
        ("،", Empty),
        ("\u{200C}", Empty),
        ("\u{200F}\u{200E}", Empty),
        ("\u{FEFF}", Empty),
        ("\u{A0}", Empty),
        ("\0", Empty),
        (" . , ; : ", Empty),
    ];
    check_table(&SmsGrammar::default(), &table);
}

#[test]
fn unrecognised_table() {
    let table = [
        ("1", Unrecognised),
        ("123", Unrecognised),
        ("۱۲۳", Unrecognised),
        ("12345", Unrecognised),
        ("1234567", Unrecognised),
        ("1234 5678", Unrecognised),
        ("123456789012", Unrecognised),         // 12
        ("12345678901234567890", Unrecognised), // 20 in one run
        ("12a4", Unrecognised),
        ("۱۲a۴", Unrecognised),
        ("OTP 12a4", Unrecognised),
        ("1234a", Unrecognised),
        ("hello", Unrecognised),
        ("OTPX 1234", Unrecognised),
        ("codes 1234", Unrecognised),
        ("1234 OTP", Unrecognised),
        ("otp 1234 please", Unrecognised),
        ("help 1234", Unrecognised),
        ("help me", Unrecognised),
        ("1.234", Unrecognised),
        ("12.34", Unrecognised),
        ("1234/5678", Unrecognised),
        ("🙂", Unrecognised),
        ("1234 🙂", Unrecognised),
        ("ＯＴＰ 1234", Unrecognised), // full-width Latin is not folded
        ("رمزپویا 1234", Unrecognised),
        ("OTP 1234 OTP 5678", Unrecognised),
        ("1402/05/12 12:30", Unrecognised),
    ];
    check_table(&SmsGrammar::default(), &table);
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
            ("رمز 1234", last4("1234")),
            ("رمز پویا 1234", Unrecognised),
            ("OTP 1234", Unrecognised),
            ("HELP", Unrecognised),
            ("?", Empty),
            ("راهنما", Help),
        ],
    );
    let arabic_forms = SmsGrammar {
        keywords: vec!["كد".to_owned(), "Kod".to_owned()],
        help_keywords: vec!["يا".to_owned()],
    };
    check_table(
        &arabic_forms,
        &[
            ("کد 1234", last4("1234")),
            ("KOD 1234", last4("1234")),
            ("kod", Help),
            ("یا", Help),
        ],
    );
    let blank = SmsGrammar {
        keywords: vec![String::new(), "  ".to_owned(), "\u{200C}".to_owned()],
        help_keywords: vec![String::new()],
    };
    check_table(
        &blank,
        &[
            ("", Empty),
            ("1234", last4("1234")),
            ("x 1234", Unrecognised),
            ("6037991234567890", FullPan),
        ],
    );
    let none = SmsGrammar {
        keywords: vec![],
        help_keywords: vec![],
    };
    check_table(
        &none,
        &[
            ("1234", last4("1234")),
            ("OTP 1234", Unrecognised),
            ("?", Empty),
            ("my card 6037991234567890", FullPan),
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
