//! `cardfile`: writes the card system's file an import benchmark reads
//! (`otpgw card import`, `POST /v1/cards/import`): a `pan,msisdn,language` header
//! and generated cards, with a chosen share of bad lines (a card number that fails
//! its check digit, a phone number that is no phone number) spread evenly, so a
//! run shows the rate with the bad-line path exercised too. It writes as it
//! generates; the file never sits in memory.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cards;

#[derive(Debug, clap::Args)]
pub struct CardFileArgs {
    /// How many lines (cards, good and bad).
    #[arg(long, default_value_t = 1_000_000)]
    cards: usize,
    /// Bad lines per thousand (10 is 1 %).
    #[arg(long, default_value_t = 0)]
    bad_per_mille: usize,
    /// Phone numbers start with this prefix (the rest is consecutive).
    #[arg(long, default_value = "98912")]
    from_prefix: String,
    /// The file to write; it must not exist.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: CardFileArgs) -> Result<()> {
    if args.bad_per_mille > 1000 {
        bail!("--bad-per-mille is at most 1000");
    }
    let file = std::fs::File::create_new(&args.out).with_context(|| {
        format!(
            "Failed to create {} (it must not exist)",
            args.out.display()
        )
    })?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "pan,msisdn,language")?;
    let free = 12usize.saturating_sub(args.from_prefix.len());
    if !args.from_prefix.bytes().all(|b| b.is_ascii_digit())
        || free == 0
        || 10u64.saturating_pow(free as u32) < args.cards as u64
        || args.cards > 1_000_000_000
    {
        bail!("--from-prefix must be digits leaving room for --cards phone numbers (12 digits in all)");
    }
    let mut bad = 0usize;
    for i in 0..args.cards {
        // Consecutive card numbers, so no two lines name the same card.
        let body = format!("603799{i:09}");
        let card = cards::Card {
            pan: format!("{body}{}", cards::luhn_check_digit(&body)),
            msisdn: format!("{}{i:0free$}", args.from_prefix),
        };
        let language = if i % 2 == 0 { "fa" } else { "en" };
        // Evenly spread: line i is bad when the running share falls behind.
        if (i + 1) * args.bad_per_mille / 1000 > bad {
            bad += 1;
            if bad % 2 == 0 {
                // The check digit moved by one: fails the Luhn check.
                let (body, check) = card.pan.split_at(card.pan.len() - 1);
                let wrong = (check.as_bytes()[0] - b'0' + 1) % 10;
                writeln!(out, "{body}{wrong},{},{language}", card.msisdn)?;
            } else {
                writeln!(out, "{},not-a-phone,{language}", card.pan)?;
            }
            continue;
        }
        writeln!(out, "{},{},{language}", card.pan, card.msisdn)?;
    }
    out.flush()?;
    eprintln!(
        "{} lines, {bad} of them bad, in {}",
        args.cards,
        args.out.display()
    );
    Ok(())
}
