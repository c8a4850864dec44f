//! Fixture cards: Luhn-valid card numbers on distinct phone numbers (one number per
//! card, so per-number limits are not what the run measures), enrolled through the
//! admin API, read from a `pan,msisdn` CSV, or only made up (for a server that
//! answers any number, such as `bench transport`).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use otpgw_rules::codes::Pan;
use rand::Rng;

/// A fixture card. Its number never reaches a log or a report.
#[derive(Clone)]
pub struct Card {
    pub pan: String,
    pub msisdn: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Card(..)")
    }
}

impl Card {
    /// What the customer texts: the last 4 digits.
    pub fn last4(&self) -> &str {
        &self.pan[self.pan.len().saturating_sub(4)..]
    }
}

/// Bounds: a run never holds more fixture cards than this.
pub const MAX_CARDS: usize = 1_000_000;
/// Length of the generated MSISDNs (Iranian mobiles: 98 9xx xxx xxxx).
const MSISDN_LEN: usize = 12;
/// Issuer prefix of generated card numbers (a test BIN range).
const BIN: &str = "603799";
/// The nine digits between the BIN and the check digit.
const PAN_BODIES: usize = 1_000_000_000;

/// The Luhn check digit for `body` (12 to 18 ASCII digits): the digit with which the
/// rules crate, which decides for the gateway, accepts the number as a card.
pub fn luhn_check_digit(body: &str) -> u8 {
    (0..10u8)
        .find(|d| Pan::parse(&format!("{body}{d}")).is_ok())
        .expect("one digit of ten completes any 12 to 18 digits to a Luhn-valid number")
}

/// `n` cards with distinct random 16-digit numbers and consecutive MSISDNs
/// `prefix…` from a random start, so that repeated runs against one gateway rarely
/// meet old cards. The numbers are drawn without replacement: drawn independently,
/// two of 20,000 cards shared a number in about one run of five (nine free digits),
/// and the gateway refused the second enrolment with 409.
pub fn generate(n: usize, msisdn_prefix: &str) -> Result<Vec<Card>> {
    if n == 0 || n > MAX_CARDS {
        bail!("the number of cards must be between 1 and {MAX_CARDS}");
    }
    if !msisdn_prefix.bytes().all(|b| b.is_ascii_digit()) || msisdn_prefix.len() >= MSISDN_LEN {
        bail!("--from-prefix must be fewer than {MSISDN_LEN} digits");
    }
    let free = MSISDN_LEN - msisdn_prefix.len();
    let space = 10u64.saturating_pow(u32::try_from(free).unwrap_or(u32::MAX));
    let n64 = n as u64;
    if space < n64 {
        bail!("--from-prefix {msisdn_prefix} leaves room for only {space} numbers");
    }
    let mut rng = rand::rng();
    let start = rng.random_range(0..=space - n64);
    let bodies = rand::seq::index::sample(&mut rng, PAN_BODIES, n);
    Ok(bodies
        .into_iter()
        .zip(0..n64)
        .map(|(body, i)| {
            let mut pan = format!("{BIN}{body:09}");
            pan.push(char::from(b'0' + luhn_check_digit(&pan)));
            Card {
                pan,
                msisdn: format!("{msisdn_prefix}{:0free$}", start + i),
            }
        })
        .collect())
}

/// Reads `pan,msisdn` lines (a header line and blank lines are skipped); national
/// numbers get `country_code`, as the gateway does.
pub fn read_csv(path: &Path, country_code: &str) -> Result<Vec<Card>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    let mut cards = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("pan") || line.starts_with('#') {
            continue;
        }
        let Some((pan, msisdn)) = line.split_once(',') else {
            bail!("{}:{}: expected pan,msisdn", path.display(), i + 1);
        };
        let pan: String = pan.chars().filter(char::is_ascii_digit).collect();
        // The gateway answers to the normalised number: match on that.
        let msisdn = otpgw_parsers::msisdn::normalize_msisdn(msisdn.trim(), country_code);
        let (true, Ok(msisdn)) = ((13..=19).contains(&pan.len()), msisdn) else {
            // The line number only: the line holds a card number.
            bail!("{}:{}: not a card number and MSISDN", path.display(), i + 1);
        };
        cards.push(Card { pan, msisdn });
        if cards.len() > MAX_CARDS {
            bail!("{} has more than {MAX_CARDS} cards", path.display());
        }
    }
    if cards.is_empty() {
        bail!("{} holds no cards", path.display());
    }
    Ok(cards)
}

/// Enrolls `cards` with `POST /v1/cards`, 16 at a time. Fails on the first refusal,
/// naming its HTTP status (never the card).
pub async fn enroll(http: &str, admin_key: &str, cards: &[Card], quiet: bool) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/v1/cards", http.trim_end_matches('/'));
    let bar = crate::output::progress(Some(cards.len() as u64), "enroll", quiet);
    let mut results = futures::stream::iter(cards)
        .map(|card| {
            let req = client
                .post(&url)
                .bearer_auth(admin_key)
                .json(&serde_json::json!({"pan": card.pan, "msisdn": card.msisdn}));
            async move { req.send().await }
        })
        .buffer_unordered(16);
    while let Some(result) = results.next().await {
        let resp = result.with_context(|| format!("Failed to reach {url}"))?;
        let status = resp.status();
        if status != reqwest::StatusCode::CREATED {
            bail!("enrolling a fixture card failed: HTTP {status} from {url}");
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cards_are_luhn_valid_and_distinct() {
        assert_eq!(luhn_check_digit("603799000000432"), 1);
        let cards = generate(500, "98912").unwrap();
        assert!(cards
            .iter()
            .all(|c| c.pan.len() == 16 && Pan::parse(&c.pan).is_ok()));
        assert!(cards.iter().all(|c| c.msisdn.len() == 12));
        let numbers: std::collections::HashSet<_> = cards.iter().map(|c| &c.msisdn).collect();
        assert_eq!(numbers.len(), 500);
        // Drawn independently, 100,000 numbers repeat one in more than 99 % of draws.
        let many = generate(100_000, "98912").unwrap();
        let pans: std::collections::HashSet<_> = many.iter().map(|c| &c.pan).collect();
        assert_eq!(pans.len(), 100_000, "two generated cards share a number");
        assert!(generate(11, "98912345678").is_err());
        assert_eq!(format!("{:?}", cards[0]), "Card(..)");
    }

    #[test]
    fn csv_numbers_are_normalised_and_bad_lines_named_by_number_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cards.csv");
        std::fs::write(
            &path,
            "pan,msisdn\n6037990000004321,09121234567\n\n5022-2920-0077-1234,+98 912 765 4321\n",
        )
        .unwrap();
        let cards = read_csv(&path, "98").unwrap();
        let numbers: Vec<&str> = cards.iter().map(|c| c.msisdn.as_str()).collect();
        assert_eq!(numbers, ["989121234567", "989127654321"]);
        assert_eq!(cards[1].last4(), "1234");
        std::fs::write(&path, "6037990000004321,not a number\n").unwrap();
        let err = read_csv(&path, "98").unwrap_err().to_string();
        assert!(err.ends_with(":1: not a card number and MSISDN"), "{err}");
        assert!(!err.contains("6037"), "{err}");
    }
}
