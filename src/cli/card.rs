//! `otpgw card …`: enrol cards and manage them through their life (status, phone
//! number, ePIN, closure and reissue), on the configured database directly.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use otpgw::config::Settings;
use otpgw::core::ports::StatusChange;
use otpgw::http::views::{CardView, EnrolledView, EventView};

use otpgw_rules::vocab::{CardStatus, Language};

use super::{list_json, read_pan, stdin_line};

/// `--language`: one of the languages' names.
pub fn language_parser() -> impl clap::builder::TypedValueParser<Value = Language> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Language::ALL.iter().map(|l| l.as_str()))
        .map(|name| Language::parse(&name).unwrap_or(Language::Fa))
}

#[derive(Subcommand)]
pub enum CardCommand {
    /// Enroll a card for a phone number; prints the card as JSON.
    Enroll {
        /// The full card number; `-` reads it from standard input (keeps it out of
        /// shell history and the process list).
        #[arg(long)]
        pan: String,
        #[arg(long)]
        msisdn: String,
        /// The customer's language (fa, en) for what is sent unasked; default: the
        /// service's.
        #[arg(long, value_parser = language_parser())]
        language: Option<Language>,
    },
    /// Show a card, by id or by card number.
    Show(CardRef),
    /// Re-activate a locked or suspended card (resets its failure count).
    Reactivate(StatusArgs),
    /// Suspend a card's OTP service.
    Suspend(StatusArgs),
    /// Print a card's audit trail as JSON.
    Events(CardRef),
    /// Move a card to another phone number (voids its live code; the CLI sends no
    /// notices: change numbers over HTTP from a gateway with client mode for them).
    Phone {
        #[command(flatten)]
        card: CardRef,
        #[arg(long)]
        msisdn: String,
        #[arg(long)]
        reason: String,
    },
    /// Close a card: its digits get "not registered", verify answers not_enrolled,
    /// its live code is voided and its tokens revoked; the number may be enrolled
    /// again later as a new card.
    Close {
        #[command(flatten)]
        card: CardRef,
        #[arg(long)]
        reason: String,
    },
    /// Give a card a new card number (after expiry or loss): it keeps its id,
    /// phone, ePIN, tokens and lock state; the old number becomes a closed card.
    Reissue {
        #[command(flatten)]
        card: CardRef,
        /// The new card number; `-` reads it from standard input.
        #[arg(long)]
        new_pan: String,
        #[arg(long)]
        reason: String,
    },
    /// Load the bank's card base from FILE (`-`: standard input): CSV with a header
    /// line `pan,msisdn` (optional `language`: fa, en) or JSON lines with the same
    /// keys. Idempotent: an unchanged line changes nothing, a changed phone is a
    /// phone change (its live code voided, audited, pushed codes held back as after
    /// any phone change unless --initial-load), new cards are enrolled active. Bad
    /// lines are listed on stderr by line number and never stop the rest; the last
    /// line of output is `{"created","unchanged","updated","rejected"}`.
    Import {
        file: PathBuf,
        /// The first load of the card base: changed phones hold nothing back.
        #[arg(long)]
        initial_load: bool,
        /// Cards per write transaction, 1 to 10,000. Larger is faster (a million
        /// cards: 27,000/s at 5,000 against 19,000/s at 1,000 on SQLite) but holds
        /// the database's writer longer, so codes issued meanwhile wait up to a
        /// batch's commit: keep the default while the gateway serves customers.
        #[arg(long, default_value_t = otpgw::core::IMPORT_BATCH as u64,
              value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch: u64,
    },
    /// Write every card as CSV (id, last4, pan_hash, msisdn, status, language,
    /// closed_at; never a card number) for reconciliation with the card system.
    Export {
        /// Where to write (must not exist); standard output by default.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A phone number's cards as JSON, closed ones too (`{cards, next_cursor}`).
    List {
        #[arg(long)]
        msisdn: String,
        /// Only cards in this status (active, locked, suspended, pending, closed).
        #[arg(long, value_parser = parse_status)]
        status: Option<CardStatus>,
        /// `next_cursor` of the page before.
        #[arg(long)]
        cursor: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Set or clear a card's ePIN (the second factor the bank sets).
    #[command(subcommand)]
    Epin(EpinCommand),
}

#[derive(Subcommand)]
pub enum EpinCommand {
    /// Set or change the ePIN, read from standard input (never from the command
    /// line, where the process list and shell history would keep it).
    Set(CardRef),
    /// Remove the ePIN.
    Clear(CardRef),
}

/// A status change: which card, and why (audited).
#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    card: CardRef,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct CardRef {
    #[arg(long)]
    id: Option<i64>,
    /// The full card number; `-` reads it from standard input.
    #[arg(long)]
    pan: Option<String>,
}

pub async fn run(cmd: CardCommand, settings: Settings) -> Result<()> {
    let core = otpgw::app::build_core(&settings).await?;
    let resolve = |r: CardRef| {
        let core = core.clone();
        async move {
            let card = match (r.id, r.pan) {
                (Some(id), _) => core.backoffice.card(id).await?,
                (None, Some(pan)) => core.backoffice.lookup(&read_pan(&pan)?).await?,
                (None, None) => bail!("give --id or --pan"),
            };
            card.context("no such card")
        }
    };
    let change_status = |r: StatusArgs, to: StatusChange| {
        let (core, resolve) = (core.clone(), &resolve);
        async move {
            let id = resolve(r.card).await?.id;
            let reason = r.reason.as_deref();
            let card = core.backoffice.change_status(id, to, "cli", reason).await?;
            anyhow::Ok(serde_json::to_value(CardView::from(card))?)
        }
    };
    let json = match cmd {
        CardCommand::Enroll {
            pan,
            msisdn,
            language,
        } => serde_json::to_value(EnrolledView::from(
            core.enroll
                .card(&read_pan(&pan)?, &msisdn, language, "cli")
                .await?,
        ))?,
        CardCommand::Show(r) => serde_json::to_value(CardView::from(resolve(r).await?))?,
        CardCommand::Reactivate(r) => change_status(r, StatusChange::Reactivate).await?,
        CardCommand::Suspend(r) => change_status(r, StatusChange::Suspend).await?,
        CardCommand::Phone {
            card,
            msisdn,
            reason,
        } => {
            let id = resolve(card).await?.id;
            let changed = core
                .backoffice
                .change_phone(id, &msisdn, &reason, "cli", None);
            serde_json::to_value(CardView::from(changed.await?.card))?
        }
        CardCommand::Close { card, reason } => {
            let id = resolve(card).await?.id;
            serde_json::to_value(CardView::from(
                core.backoffice.close(id, &reason, "cli", None).await?,
            ))?
        }
        CardCommand::Reissue {
            card,
            new_pan,
            reason,
        } => {
            let id = resolve(card).await?.id;
            let pan = read_pan(&new_pan)?;
            let reissued = core.backoffice.reissue(id, &pan, &reason, "cli");
            serde_json::to_value(CardView::from(reissued.await?))?
        }
        CardCommand::List {
            msisdn,
            status,
            cursor,
            limit,
        } => {
            let page = core.backoffice.cards_page(&msisdn, status, cursor, limit);
            let page = page.await?;
            let cards: Vec<CardView> = page.cards.into_iter().map(CardView::from).collect();
            serde_json::json!({"cards": cards, "next_cursor": page.next.map(|n| n.to_string())})
        }
        CardCommand::Import {
            file,
            initial_load,
            batch,
        } => {
            return super::import::import(&core, &file, initial_load, batch as usize).await;
        }
        CardCommand::Export { out } => return super::import::export(&core, out).await,
        CardCommand::Events(r) => {
            let id = resolve(r).await?.id;
            list_json::<EventView, _>(core.backoffice.events(id).await?)?
        }
        CardCommand::Epin(EpinCommand::Set(r)) => {
            let id = resolve(r).await?.id;
            let line = stdin_line("the ePIN")?;
            serde_json::to_value(CardView::from(
                core.enroll.set_epin(id, Some(line.trim()), "cli").await?,
            ))?
        }
        CardCommand::Epin(EpinCommand::Clear(r)) => {
            let id = resolve(r).await?.id;
            serde_json::to_value(CardView::from(core.enroll.set_epin(id, None, "cli").await?))?
        }
    };
    println!("{json}");
    Ok(())
}

fn parse_status(raw: &str) -> Result<CardStatus, String> {
    CardStatus::parse(raw)
        .ok_or_else(|| "must be active, locked, suspended, pending or closed".to_owned())
}
