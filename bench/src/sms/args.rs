//! The options of `bench sms` (and of the `sms` phase of `bench verify`): the SMPP
//! server and credentials, the shape of the load, and where the fixture cards come
//! from (a CSV file, enrolled through the admin API, or made up).

use anyhow::{bail, Result};
use clap::Args;

use crate::cards::{self, Card};
use crate::output::Output;

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The SMPP server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub smpp: String,
    #[arg(long)]
    pub system_id: String,
    #[arg(long, env = "OTPGW_BENCH_PASSWORD", hide_env_values = true)]
    pub password: String,
    #[command(flatten)]
    pub cpu: crate::cpu::CpuArgs,
}

#[derive(Debug, Clone, Args)]
pub struct Load {
    /// Transceiver sessions to bind.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub binds: u32,
    /// Messages in flight per session (sent, reply not yet received).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: u32,
    /// Messages per second over all sessions, or `open` (as fast as the windows allow).
    #[arg(long, default_value = "open")]
    pub rate: String,
    /// How long to send (30s, 2m, …). Without it or --count: 30s.
    #[arg(long, conflicts_with = "count")]
    pub duration: Option<String>,
    /// How many messages to send.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub count: Option<u64>,
    /// The short code the messages go to.
    #[arg(long, default_value = "30003303")]
    pub to: String,
    /// A message without its reply after this long counts as a timeout (its card is
    /// not used again in this run).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

#[derive(Debug, Clone, Args)]
pub struct CardSource {
    /// Fixture cards from a `pan,msisdn` CSV file. Numbers are normalised as the
    /// gateway does (national ones get --country-code), since replies are matched on
    /// the number the server sends back.
    #[arg(long, value_name = "FILE", group = "card_source")]
    pub cards: Option<std::path::PathBuf>,
    /// Generate this many Luhn-valid cards on distinct MSISDNs and enroll them through
    /// the admin API (--http, --admin-key).
    #[arg(long, value_name = "N", group = "card_source", requires_all = ["http", "admin_key"])]
    pub enroll: Option<usize>,
    /// Generate this many cards and enroll none: for a server that answers any number
    /// (`otpgw bench transport`).
    #[arg(long, value_name = "N", group = "card_source")]
    pub fake_cards: Option<usize>,
    /// The country code for national numbers in --cards.
    #[arg(long, default_value = "98")]
    pub country_code: String,
    /// Generated MSISDNs start with these digits and have 12 digits in all.
    #[arg(long, default_value = "98912")]
    pub from_prefix: String,
    /// The gateway's HTTP base URL (http://127.0.0.1:8080).
    #[arg(long)]
    pub http: Option<String>,
    /// An admin API key, to enroll the fixture cards.
    #[arg(long, env = "OTPGW_BENCH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

impl CardSource {
    pub async fn load(&self, quiet: bool) -> Result<Vec<Card>> {
        if let Some(path) = &self.cards {
            return cards::read_csv(path, &self.country_code);
        }
        if let Some(n) = self.fake_cards {
            return cards::generate(n, &self.from_prefix);
        }
        let Some(n) = self.enroll else {
            bail!("give --cards FILE, --enroll N (with --http and --admin-key) or --fake-cards N");
        };
        let (Some(http), Some(key)) = (&self.http, &self.admin_key) else {
            bail!("--enroll needs --http and --admin-key");
        };
        let cards = cards::generate(n, &self.from_prefix)?;
        cards::enroll(http, key, &cards, quiet).await?;
        Ok(cards)
    }
}

/// What one sms phase needs: `bench sms` is one, and `bench verify` starts with one.
#[derive(Debug, Clone, Args)]
pub struct Phase {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub load: Load,
    #[command(flatten)]
    pub cards: CardSource,
}

#[derive(Debug, Clone, Args)]
pub struct SmsArgs {
    #[command(flatten)]
    pub phase: Phase,
    #[command(flatten)]
    pub out: Output,
}
