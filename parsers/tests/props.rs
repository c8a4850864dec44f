//! Property tests over the public API: no function panics on any input, and
//! a card number in an SMS is always reported as `FullPan` and never shown.

use otpgw_parsers::digits::{digit_value, normalize_digits};
use otpgw_parsers::msisdn::normalize_msisdn;
use otpgw_parsers::sms::{parse_sms, parse_sms_capped, SmsGrammar, SmsRequest, CAP_MAX};
use otpgw_parsers::text::{decode_short_message, gsm7_fits, gsm7_septets};
use otpgw_parsers::ussd::{parse_cap, parse_card_input, parse_ussd, CardInput};
use proptest::prelude::*;

/// Random Unicode rarely hits digits, keywords or separators, so most cases
/// are drawn from the characters the parsers actually care about.
fn sms_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9۰-۹٠-٩０-９ \\-*#+.,:;?()a-zA-Zرمزپویاکدكيهنمل\u{200C}\u{200F}\u{FEFF}\u{A0}،؟]{0,40}",
    ]
}

/// One digit of the given value in one of the four accepted scripts.
fn any_script_digit() -> impl Strategy<Value = char> {
    (0u32..10, 0usize..4).prop_map(|(v, script)| {
        let zero = ['0', '\u{06F0}', '\u{0660}', '\u{FF10}'];
        let base = zero.get(script).copied().unwrap_or('0');
        char::from_u32(u32::from(base) + v).unwrap_or('0')
    })
}

fn pan16() -> impl Strategy<Value = String> {
    proptest::collection::vec(any_script_digit(), 16).prop_map(|d| d.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn capped_parsing_never_panics_and_agrees_with_parse_sms(s in sms_like()) {
        let g = SmsGrammar::default();
        let (request, cap) = parse_sms_capped(&s, &g);
        match cap {
            // Without a cap it is exactly parse_sms.
            None => prop_assert_eq!(request, parse_sms(&s, &g)),
            Some(c) => {
                prop_assert!((1..=CAP_MAX).contains(&c));
                prop_assert!(matches!(request, SmsRequest::Last4(_) | SmsRequest::Last6(_)));
            }
        }
    }

    #[test]
    fn a_cap_in_any_script_is_read(cap in 1u64..=CAP_MAX, script in 0usize..4, grouped in any::<bool>()) {
        // Ungrouped, 9 digits or more after the 4 make a card-number-sized run,
        // which is (rightly) reported as a card number instead.
        let cap = if grouped { cap } else { cap % 99_999_999 + 1 };
        let zero = ['0', '\u{06F0}', '\u{0660}', '\u{FF10}'][script];
        let sep = ['٬', ',', ',', ','][script];
        let text = if grouped {
            let plain = cap.to_string();
            let mut out = String::new();
            for (i, c) in plain.chars().enumerate() {
                if i > 0 && (plain.len() - i) % 3 == 0 {
                    out.push(sep);
                }
                out.push(c);
            }
            out
        } else {
            cap.to_string()
        };
        let body: String = format!("5678 {text}")
            .chars()
            .map(|c| c.to_digit(10).and_then(|d| char::from_u32(zero as u32 + d)).unwrap_or(c))
            .collect();
        prop_assert_eq!(
            parse_sms_capped(&body, &SmsGrammar::default()),
            (SmsRequest::Last4("5678".into()), Some(cap))
        );
    }

    #[test]
    fn digits_never_panic(s in sms_like(), c in any::<char>()) {
        let n = normalize_digits(&s);
        prop_assert_eq!(n.chars().count(), s.chars().count());
        if let Some(v) = digit_value(c) {
            prop_assert!(v <= 9);
        }
    }

    #[test]
    fn parse_sms_never_panics(s in sms_like()) {
        match parse_sms(&s, &SmsGrammar::default()) {
            SmsRequest::Last4(d) => prop_assert!(d.len() == 4 && d.bytes().all(|b| b.is_ascii_digit())),
            SmsRequest::Last6(d) => prop_assert!(d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit())),
            _ => {}
        }
    }

    #[test]
    fn parse_sms_never_panics_with_any_grammar(
        s in sms_like(),
        keywords in proptest::collection::vec(sms_like(), 0..4),
        help_keywords in proptest::collection::vec(sms_like(), 0..4),
    ) {
        let _ = parse_sms(&s, &SmsGrammar { keywords, help_keywords });
    }

    #[test]
    fn a_16_digit_run_is_always_full_pan(prefix in sms_like(), pan in pan16(), suffix in sms_like()) {
        let body = format!("{prefix} {pan} {suffix}");
        let got = parse_sms(&body, &SmsGrammar::default());
        prop_assert_eq!(&got, &SmsRequest::FullPan, "body {:?}", body);
        let shown = format!("{got:?}");
        prop_assert!(!shown.contains(&normalize_digits(&pan)));
        prop_assert!(!shown.bytes().any(|b| b.is_ascii_digit()));
    }

    #[test]
    fn a_grouped_pan_is_always_full_pan(prefix in sms_like(), pan in pan16(), sep in "[ \\-]{1,3}", suffix in sms_like()) {
        let grouped: String = pan
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let lead = if i > 0 && i % 4 == 0 { sep.as_str() } else { "" };
                lead.chars().chain(std::iter::once(c)).collect::<Vec<_>>()
            })
            .collect();
        let body = format!("{prefix} {grouped} {suffix}");
        prop_assert_eq!(parse_sms(&body, &SmsGrammar::default()), SmsRequest::FullPan, "body {:?}", body);
    }

    #[test]
    fn normalize_msisdn_never_panics(raw in sms_like(), cc in "[0-9+]{0,4}|\\PC{0,4}") {
        if let Ok(n) = normalize_msisdn(&raw, &cc) {
            prop_assert!((8..=15).contains(&n.len()));
            prop_assert!(n.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn decode_never_panics(dc in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_short_message(dc, &bytes);
    }

    #[test]
    fn ucs2_round_trips(s in any::<String>()) {
        let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
        prop_assert_eq!(decode_short_message(8, &bytes), Ok(s));
    }

    #[test]
    fn gsm7_sizing_is_consistent(s in sms_like()) {
        prop_assert_eq!(gsm7_fits(&s), gsm7_septets(&s).is_some());
        if let Some(n) = gsm7_septets(&s) {
            let chars = s.chars().count();
            prop_assert!(n >= chars && n <= 2 * chars);
        }
    }

    #[test]
    fn gsm7_decoded_text_fits(bytes in proptest::collection::vec(0u8..0x80, 0..200)) {
        let decoded = decode_short_message(0, &bytes);
        prop_assert!(decoded.as_deref().is_ok_and(gsm7_fits));
    }

    #[test]
    fn parse_ussd_never_panics(s in prop_oneof![any::<String>(), "[*#0-9۰-۹a ]{0,30}"]) {
        if let Ok(u) = parse_ussd(&s) {
            for seg in std::iter::once(&u.service_code).chain(&u.path) {
                prop_assert!(seg.len() < 13 && seg.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn card_input_never_panics_and_never_carries_a_pan(s in sms_like(), pan in pan16()) {
        let _ = parse_cap(&s);
        match parse_card_input(&s) {
            CardInput::Last4 { digits, cap } | CardInput::Last6 { digits, cap } => {
                prop_assert!(digits.len() == 4 || digits.len() == 6);
                prop_assert!(cap.is_none_or(|c| (1..=CAP_MAX).contains(&c)));
            }
            CardInput::FullPan | CardInput::Other => {}
        }
        prop_assert_eq!(parse_card_input(&format!("{s} {pan}")), CardInput::FullPan);
    }
}

/// The cargo-fuzz corpus (`fuzz/corpus/`: seeds, and every crash found, kept as a
/// regression input) runs here too, on stable, with every test run.
#[test]
fn the_fuzz_corpus_parses_without_panic() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");
    let inputs = |target: &str| -> Vec<Vec<u8>> {
        std::fs::read_dir(format!("{root}/{target}"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    };
    for bytes in inputs("sms") {
        let body = String::from_utf8_lossy(&bytes);
        let grammar = otpgw_parsers::sms::SmsGrammar::default();
        let _ = otpgw_parsers::sms::parse_sms(&body, &grammar);
        let _ = otpgw_parsers::sms::parse_sms_capped(&body, &grammar);
    }
    for bytes in inputs("ussd") {
        let s = String::from_utf8_lossy(&bytes);
        let _ = otpgw_parsers::ussd::parse_ussd(&s);
        let _ = otpgw_parsers::ussd::parse_card_input(&s);
        let _ = otpgw_parsers::ussd::parse_cap(&s);
    }
    for bytes in inputs("msisdn") {
        let _ = otpgw_parsers::msisdn::normalize_msisdn(&String::from_utf8_lossy(&bytes), "98");
    }
    for bytes in inputs("text") {
        if let Some((&coding, rest)) = bytes.split_first() {
            let _ = otpgw_parsers::text::decode_short_message(coding, rest);
        }
    }
}
