//! The bank's policies as plain values and pure rules: a payment a code can be bound
//! to (its validation, canonical form and display), the customer's cap, and which
//! ePINs are too weak to accept. No I/O: the keyed hashes live in `codes`, the
//! decisions that use these values in `core`.

use crate::vocab::Language;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("transaction.type must be one of purchase, transfer, bill, topup")]
    TransactionType,
    #[error("transaction.amount must be a positive whole number of minor units, at most 10^15")]
    Amount,
    #[error("transaction.currency must be an ISO 4217 code: three upper-case letters")]
    Currency,
    #[error("transaction.payee must be 1 to 64 printable characters")]
    Payee,
    #[error("epin must be exactly 4 digits")]
    EpinFormat,
    #[error("this ePIN is too easy to guess (four equal or consecutive digits)")]
    EpinWeak,
}

/// Largest accepted amount in minor units: below 2^53, so a JSON client in any
/// language reads it exactly.
pub const MAX_AMOUNT: u64 = 1_000_000_000_000_000;

/// What the payment is. A small fixed set, so the SMS can name it in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionType {
    Purchase,
    Transfer,
    Bill,
    Topup,
}

impl TransactionType {
    pub const ALL: [TransactionType; 4] = [Self::Purchase, Self::Transfer, Self::Bill, Self::Topup];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Transfer => "transfer",
            Self::Bill => "bill",
            Self::Topup => "topup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The word the SMS uses.
    pub fn label(self, lang: Language) -> &'static str {
        match (self, lang) {
            (Self::Purchase, Language::En) => "Purchase",
            (Self::Transfer, Language::En) => "Transfer",
            (Self::Bill, Language::En) => "Bill payment",
            (Self::Topup, Language::En) => "Top-up",
            (Self::Purchase, Language::Fa) => "خرید",
            (Self::Transfer, Language::Fa) => "انتقال وجه",
            (Self::Bill, Language::Fa) => "پرداخت قبض",
            (Self::Topup, Language::Fa) => "خرید شارژ",
        }
    }
}

/// A payment a code is bound to. The amount is a whole number of the currency's
/// minor units as the bank's switch counts them (see [`currency_exponent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub kind: TransactionType,
    pub amount: u64,
    pub currency: String,
    pub payee: String,
}

impl Transaction {
    /// Validates each part; the payee is trimmed.
    pub fn new(kind: &str, amount: u64, currency: &str, payee: &str) -> Result<Self, PolicyError> {
        let kind = TransactionType::parse(kind).ok_or(PolicyError::TransactionType)?;
        if amount == 0 || amount > MAX_AMOUNT {
            return Err(PolicyError::Amount);
        }
        if !is_currency(currency) {
            return Err(PolicyError::Currency);
        }
        let payee = payee.trim();
        let len = payee.chars().count();
        if len == 0 || len > 64 || payee.chars().any(|c| c.is_control()) {
            return Err(PolicyError::Payee);
        }
        Ok(Self {
            kind,
            amount,
            currency: currency.to_owned(),
            payee: payee.to_owned(),
        })
    }

    /// The one string the keyed hash is taken over. Versioned, and the payee comes
    /// last: every field before it has a fixed alphabet without `|`, so no two
    /// transactions share a canonical form.
    pub fn canonical(&self) -> String {
        format!(
            "v1|{}|{}|{}|{}",
            self.kind.as_str(),
            self.amount,
            self.currency,
            self.payee
        )
    }

    /// The amount in whole currency units, rounded up (for comparing with a cap).
    pub fn whole_units(&self) -> u64 {
        let scale = 10u64.pow(currency_exponent(&self.currency));
        self.amount.div_ceil(scale)
    }
}

/// Three upper-case ASCII letters: the shape of an ISO 4217 alphabetic code.
pub fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Digits after the decimal point in an amount of this currency. ISO 4217 gives IRR
/// two, but no Iranian switch counts fractions of a rial, so here IRR has none.
pub fn currency_exponent(currency: &str) -> u32 {
    match currency {
        "IRR" | "IRT" | "JPY" | "KRW" | "ISK" | "CLP" | "VND" | "XOF" | "XAF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// An amount in minor units, written for a customer: thousands grouped, the
/// currency's decimals, in the reply language's digits and separators
/// (`1,250,000 IRR`, `۱٬۲۵۰٬۰۰۰ IRR`, `12.50 EUR`).
pub fn format_amount(amount: u64, currency: &str, lang: Language) -> String {
    let exp = currency_exponent(currency);
    let scale = 10u64.pow(exp);
    let (whole, frac) = (amount / scale, amount % scale);
    let (group, point) = match lang {
        Language::En => (',', '.'),
        Language::Fa => ('٬', '٫'),
    };
    let mut out = group_digits(whole, group);
    if exp > 0 {
        out.push(point);
        out.push_str(&format!("{frac:0width$}", width = exp as usize));
    }
    let out = match lang {
        Language::En => out,
        Language::Fa => crate::vocab::to_persian_digits(&out),
    };
    format!("{out} {currency}")
}

/// `2500000` → `2,500,000` with the given separator.
pub fn group_digits(n: u64, sep: char) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// A card's ePIN, checked for shape and strength. `Debug` redacts it; it has no
/// `Display`, so it can only leave through [`Epin::expose`] (into the hash).
#[derive(Clone, PartialEq, Eq)]
pub struct Epin(String);

impl std::fmt::Debug for Epin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Epin(****)")
    }
}

impl Epin {
    /// Exactly four digits in any script, surrounding spaces ignored. A weak ePIN
    /// is refused only where one is set ([`Epin::new_strong`]); at verify time any
    /// four digits are compared.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        let digits: Option<String> = raw
            .trim()
            .chars()
            .map(|c| otpgw_parsers::digits::digit_value(c).map(|d| char::from(b'0' + d)))
            .collect();
        match digits {
            Some(d) if d.len() == 4 => Ok(Self(d)),
            _ => Err(PolicyError::EpinFormat),
        }
    }

    /// As `parse`, refusing the weak ones (see [`is_weak_epin`]).
    pub fn new_strong(raw: &str) -> Result<Self, PolicyError> {
        let epin = Self::parse(raw)?;
        if is_weak_epin(&epin.0) {
            return Err(PolicyError::EpinWeak);
        }
        Ok(epin)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The 24 ePINs a bank must not accept: four equal digits (0000 … 9999), four
/// consecutive ascending digits (0123 … 6789) and four consecutive descending ones
/// (9876 … 3210). Consecutive means without wrapping: 7890 and 8901 are allowed.
pub fn is_weak_epin(digits: &str) -> bool {
    let d: Vec<i16> = digits.bytes().map(|b| i16::from(b) - 48).collect();
    if d.len() != 4 {
        return false;
    }
    let steps: Vec<i16> = d.windows(2).map(|w| w[1] - w[0]).collect();
    [0, 1, -1].iter().any(|s| steps.iter().all(|x| x == s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_epin_table() {
        let weak: Vec<String> = (0..10_000)
            .map(|n| format!("{n:04}"))
            .filter(|d| is_weak_epin(d))
            .collect();
        let mut expected: Vec<String> = (0..10).map(|d| d.to_string().repeat(4)).collect();
        expected.extend(["0123", "1234", "2345", "3456", "4567", "5678", "6789"].map(String::from));
        expected.extend(["3210", "4321", "5432", "6543", "7654", "8765", "9876"].map(String::from));
        expected.sort();
        assert_eq!(weak, expected);
        for ok in ["7890", "8901", "1357", "2580", "1123", "0987"] {
            assert!(!is_weak_epin(ok), "{ok}");
        }
        assert_eq!(Epin::new_strong("۱۲۳۴"), Err(PolicyError::EpinWeak));
        assert_eq!(Epin::new_strong("5555"), Err(PolicyError::EpinWeak));
        assert_eq!(Epin::new_strong("123"), Err(PolicyError::EpinFormat));
        assert_eq!(Epin::new_strong("12a4"), Err(PolicyError::EpinFormat));
        assert_eq!(Epin::new_strong(" ۲۵۸۰ ").unwrap().expose(), "2580");
        assert!(!format!("{:?}", Epin::parse("2580").unwrap()).contains("2580"));
    }

    #[test]
    fn transaction_canonical_form() {
        let t = Transaction::new("purchase", 2_500_000, "IRR", "  Digikala  ").unwrap();
        assert_eq!(t.canonical(), "v1|purchase|2500000|IRR|Digikala");
        let other = Transaction::new("purchase", 2_500_001, "IRR", "Digikala").unwrap();
        assert_ne!(t.canonical(), other.canonical());
        let with_bar = Transaction::new("bill", 1, "EUR", "a|b").unwrap();
        assert_eq!(with_bar.canonical(), "v1|bill|1|EUR|a|b");
        let long_payee = "x".repeat(65);
        let refused = [
            (("refund", 1, "IRR", "x"), PolicyError::TransactionType),
            (("bill", 0, "IRR", "x"), PolicyError::Amount),
            (("bill", MAX_AMOUNT + 1, "IRR", "x"), PolicyError::Amount),
            (("bill", 1, "irr", "x"), PolicyError::Currency),
            (("bill", 1, "IRR", " "), PolicyError::Payee),
            (("bill", 1, "IRR", "a\nb"), PolicyError::Payee),
            (("bill", 1, "IRR", long_payee.as_str()), PolicyError::Payee),
        ];
        for ((kind, amount, currency, payee), error) in refused {
            assert_eq!(
                Transaction::new(kind, amount, currency, payee),
                Err(error),
                "{kind} {amount} {currency} {payee:?}"
            );
        }
        assert_eq!(
            Transaction::new("bill", 1250, "EUR", "x")
                .unwrap()
                .whole_units(),
            13
        );
    }

    #[test]
    fn amounts_are_grouped_in_the_reply_language() {
        assert_eq!(
            format_amount(2_500_000, "IRR", Language::En),
            "2,500,000 IRR"
        );
        assert_eq!(
            format_amount(2_500_000, "IRR", Language::Fa),
            "۲٬۵۰۰٬۰۰۰ IRR"
        );
        assert_eq!(format_amount(1250, "EUR", Language::En), "12.50 EUR");
        assert_eq!(format_amount(5, "KWD", Language::En), "0.005 KWD");
        assert_eq!(format_amount(999, "IRR", Language::En), "999 IRR");
        assert_eq!(group_digits(1_000, ','), "1,000");
    }
}
