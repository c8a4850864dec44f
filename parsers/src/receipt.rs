//! SMSC delivery receipts: the `id:… stat:…` text of SMPP 3.4 Appendix B, and the
//! message ids they name.
//!
//! SMSCs disagree about how they write a message id: the `submit_sm_resp` may say
//! `1f3a` while the receipt says `7994` (the same number in decimal), or
//! `00000000000000007994`, or upper case. [`message_id_keys`] turns any id into
//! the numbers it could mean, so two forms of one id share a key.

/// The final (or intermediate) state a receipt reports, from `stat:` or the
/// `message_state` TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStat {
    Delivered,
    Expired,
    /// Undeliverable, rejected or deleted: the customer will not get it.
    Undelivered,
    /// Enroute, accepted, unknown, scheduled: not final, nothing to record.
    Pending,
}

impl ReceiptStat {
    /// The `stat:` word of the receipt text (SMPP 3.4 Appendix B).
    pub fn from_stat(word: &str) -> Option<Self> {
        Some(match word.to_ascii_uppercase().as_str() {
            "DELIVRD" | "DELIVERED" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "UNDELIV" | "UNDELIVERABLE" | "REJECTD" | "REJECTED" | "DELETED" => Self::Undelivered,
            "ENROUTE" | "ACCEPTD" | "ACCEPTED" | "UNKNOWN" | "SCHEDULED" => Self::Pending,
            _ => return None,
        })
    }

    /// The `message_state` TLV value (SMPP 3.4 §5.2.28).
    pub fn from_message_state(state: u8) -> Option<Self> {
        Some(match state {
            2 => Self::Delivered,
            3 => Self::Expired,
            4 | 5 | 8 => Self::Undelivered,
            0 | 1 | 6 | 7 | 9 => Self::Pending,
            _ => return None,
        })
    }
}

/// What the receipt text says: the message id and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptText {
    pub id: String,
    pub stat: Option<ReceiptStat>,
}

/// Longest message id we accept (the `message_id` field is at most 64 octets).
const ID_MAX: usize = 64;

/// Reads `id:` and `stat:` out of a receipt's text; `None` without an `id:`.
/// Fields may come in any order and case, separated by spaces.
pub fn parse_receipt_text(text: &str) -> Option<ReceiptText> {
    let mut id = None;
    let mut stat = None;
    for field in text.split_ascii_whitespace() {
        let Some((key, value)) = field.split_once(':') else {
            continue;
        };
        if key.eq_ignore_ascii_case("id") && id.is_none() {
            if value.is_empty() || value.len() > ID_MAX {
                return None;
            }
            id = Some(value.to_owned());
        } else if key.eq_ignore_ascii_case("stat") && stat.is_none() {
            stat = ReceiptStat::from_stat(value);
        } else if key.eq_ignore_ascii_case("text") {
            // The original message's first characters follow: nothing to read there.
            break;
        }
    }
    id.map(|id| ReceiptText { id, stat })
}

/// The numbers a message id may stand for, as decimal strings: its value read as
/// decimal (when it is all digits) and read as hexadecimal (when it is all hex
/// digits). Two forms of the same id share at least one key. Ids that are not
/// numbers (or too long for 128 bits) have no keys and match only exactly.
pub fn message_id_keys(id: &str) -> (Option<String>, Option<String>) {
    let id = id.trim();
    let decimal = (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.parse::<u128>().ok())
        .flatten()
        .map(|v| v.to_string());
    let hex = (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(id, 16).ok())
        .flatten()
        .map(|v| v.to_string());
    (decimal, hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_texts() {
        let check = |text: &str, expected: Option<(&str, Option<ReceiptStat>)>| {
            let got = parse_receipt_text(text);
            assert_eq!(
                got.as_ref().map(|r| (r.id.as_str(), r.stat)),
                expected,
                "{text:?}"
            );
        };
        check(
            "id:1f3a sub:001 dlvrd:001 submit date:2611221200 done date:2611221200 stat:DELIVRD err:000 text:",
            Some(("1f3a", Some(ReceiptStat::Delivered))),
        );
        check(
            "ID:00000000000000007994 stat:undeliv err:001",
            Some(("00000000000000007994", Some(ReceiptStat::Undelivered))),
        );
        check("stat:EXPIRED id:7", Some(("7", Some(ReceiptStat::Expired))));
        check("id:7 stat:WHATEVER", Some(("7", None)));
        check("id:9 text:stat:DELIVRD", Some(("9", None)));
        check("stat:DELIVRD", None);
        check("id: stat:DELIVRD", None);
        check("", None);
        check(&format!("id:{}", "1".repeat(65)), None);
    }

    #[test]
    fn id_forms_share_a_key() {
        let shares = |a: &str, b: &str| {
            let (a1, a2) = message_id_keys(a);
            let (b1, b2) = message_id_keys(b);
            [a1, a2]
                .iter()
                .flatten()
                .any(|k| [&b1, &b2].iter().any(|o| o.as_ref() == Some(k)))
        };
        assert!(shares("1f3a", "7994"));
        assert!(shares("1F3A", "00000000000000007994"));
        assert!(shares("0001f3a", "1f3a"));
        assert!(shares("12345", "00012345"));
        assert!(!shares("1f3a", "7995"));
        assert_eq!(message_id_keys("msg-1"), (None, None));
        assert_eq!(message_id_keys(""), (None, None));
        assert_eq!(message_id_keys(&"f".repeat(40)), (None, None));
    }

    #[test]
    fn message_states() {
        assert_eq!(
            ReceiptStat::from_message_state(2),
            Some(ReceiptStat::Delivered)
        );
        assert_eq!(
            ReceiptStat::from_message_state(8),
            Some(ReceiptStat::Undelivered)
        );
        assert_eq!(ReceiptStat::from_message_state(200), None);
    }
}

/// How an SMSC's `submit_sm_resp` ids relate to the ids in its receipts (what
/// Kannel calls `msg-id-type`): which keys [`submit_keys`] and [`receipt_keys`]
/// give, so that a receipt finds its message and no other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdForm {
    /// Unknown: both readings of every id ([`message_id_keys`]). An all-digit hex
    /// id then also reads as another decimal number, which can match another
    /// message's receipt.
    #[default]
    Guess,
    /// Hexadecimal in `submit_sm_resp`; the receipt gives the same number in
    /// decimal (or the very same text).
    Hex,
    /// Decimal in both, perhaps zero-padded in one.
    Decimal,
    /// Opaque text: the receipt repeats it exactly.
    Text,
}

fn value(id: &str, radix: u32) -> Option<String> {
    let id = id.trim();
    let digits = match radix {
        16 => id.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => id.bytes().all(|b| b.is_ascii_digit()),
    };
    (!id.is_empty() && digits)
        .then(|| u128::from_str_radix(id, radix).ok())
        .flatten()
        .map(|v| v.to_string())
}

/// The keys to store for a `submit_sm_resp` id under `form`: (decimal, hex).
pub fn submit_keys(id: &str, form: IdForm) -> (Option<String>, Option<String>) {
    match form {
        IdForm::Guess => message_id_keys(id),
        IdForm::Hex => (None, value(id, 16)),
        IdForm::Decimal => (value(id, 10), None),
        IdForm::Text => (None, None),
    }
}

/// The keys a receipt's id is looked up by under `form` (an exact match of the text
/// is tried first whatever the form).
pub fn receipt_keys(id: &str, form: IdForm) -> (Option<String>, Option<String>) {
    match form {
        IdForm::Guess => message_id_keys(id),
        IdForm::Hex | IdForm::Decimal => (value(id, 10), None),
        IdForm::Text => (None, None),
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;

    /// Whether a receipt's id finds the message a submit_sm_resp id named.
    fn finds(form: IdForm, submitted: &str, receipt: &str) -> bool {
        let (sd, sh) = submit_keys(submitted, form);
        let (rd, rh) = receipt_keys(receipt, form);
        submitted == receipt
            || [rd, rh]
                .iter()
                .flatten()
                .any(|k| [&sd, &sh].into_iter().flatten().any(|s| s == k))
    }

    #[test]
    fn each_form_matches_its_own_pairs_and_no_other() {
        use IdForm::*;
        for (form, submitted, receipt, found) in [
            // An all-digit hex id, its receipt in decimal: found; the decimal
            // reading of another message's id no longer is.
            (Hex, "100000", "1048576", true),
            (Hex, "1048576", "1048576", true),
            (Hex, "100000", "100000", true),
            (Hex, "1048576", "100000", false),
            (Hex, "1e240", "123456", true),
            (Guess, "100000", "1048576", true),
            (Guess, "1048576", "100000", true),
            (Decimal, "00000000000000007994", "7994", true),
            (Decimal, "7994", "1f3a", false),
            (Text, "msg-1", "msg-1", true),
            (Text, "0042", "42", false),
        ] {
            assert_eq!(
                finds(form, submitted, receipt),
                found,
                "{form:?} {submitted} ~ {receipt}"
            );
        }
    }
}
