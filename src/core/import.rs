//! Bulk import of the bank's card base (issue 25): a batch of lines from the card
//! system's file (`otpgw card import`), each checked on its own, then stored as one
//! idempotent upsert. A new card is enrolled (active: the card system vouches for
//! it), an unchanged one changes nothing, a changed phone is a phone change
//! (audited, the hold applied unless it is the initial load), a changed language
//! is updated; a bad line is reported with its line number and never stops the
//! rest. Reading the file and reporting progress are the caller's.

use std::collections::HashMap;

use otpgw_rules::codes::Pan;
use otpgw_rules::vocab::Language;

use super::enroll::Enroll;
use super::ports::{ImportCard, Imported};
use super::CoreError;

/// Lines per batch the caller should hand over: one write transaction each, large
/// enough that the per-transaction cost fades, small enough for a short commit.
pub const IMPORT_BATCH: usize = 1000;

/// One line of the file as read: fields not yet checked.
#[derive(Debug, Clone)]
pub struct ImportLine {
    /// The line number in the file (the header is line 1), for the report.
    pub line: u64,
    pub pan: String,
    pub msisdn: String,
    pub language: Option<String>,
}

/// What a batch did; `rejected` names each bad line and why (never its PAN).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub created: u64,
    pub unchanged: u64,
    pub updated: u64,
    pub rejected: Vec<(u64, String)>,
}

impl ImportReport {
    pub fn add(&mut self, other: ImportReport) {
        self.created += other.created;
        self.unchanged += other.unchanged;
        self.updated += other.updated;
        self.rejected.extend(other.rejected);
    }
}

/// One file's import, across its batches: which cards it named on which line, so a
/// card named twice is refused on its second line whatever the batch size (the
/// first line stands, and a rerun changes nothing). A key is 8 bytes of the card
/// number's keyed hash: about 20 bytes of memory per card line, 20 MB for a
/// million, and a chance of two cards sharing one below one in 10^7 per million.
#[derive(Debug, Default)]
pub struct ImportRun {
    first_line: HashMap<u64, u64>,
}

impl ImportRun {
    fn key(pan_hash: &str) -> u64 {
        pan_hash
            .get(..16)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_default()
    }
}

impl Enroll {
    /// Checks and stores one batch of lines of `run`'s file (see the module's
    /// comment). `initial_load`: a changed phone holds no pushed codes back (the
    /// bank's first load is not a customer's number change).
    pub async fn import(
        &self,
        run: &mut ImportRun,
        lines: &[ImportLine],
        initial_load: bool,
        actor: &str,
    ) -> Result<ImportReport, CoreError> {
        let inner = &self.0;
        let keys = &inner.keys;
        let mut report = ImportReport::default();
        struct Checked {
            pan_hash: String,
            last4: String,
            last6_hash: String,
            msisdn: String,
            language: Option<Language>,
        }
        let mut checked: Vec<Checked> = Vec::with_capacity(lines.len());
        for l in lines {
            let pan = match Pan::parse(&l.pan) {
                Ok(pan) => pan,
                Err(e) => {
                    report.rejected.push((l.line, format!("pan: {e}")));
                    continue;
                }
            };
            let msisdn = match super::normalize_msisdn(&l.msisdn, &inner.country_code) {
                Ok(m) => m,
                Err(e) => {
                    report.rejected.push((l.line, format!("msisdn: {e}")));
                    continue;
                }
            };
            let language = match l.language.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(raw) => match Language::parse(&raw.to_ascii_lowercase()) {
                    Some(lang) => Some(lang),
                    None => {
                        report
                            .rejected
                            .push((l.line, "language: must be fa or en".to_owned()));
                        continue;
                    }
                },
            };
            let pan_hash = keys.pan_hash(&pan);
            // The same card twice in one file: the first line stands (a rerun then
            // still changes nothing).
            match run.first_line.entry(ImportRun::key(&pan_hash)) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    let first = first.get();
                    report
                        .rejected
                        .push((l.line, format!("the same card number as line {first}")));
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(l.line);
                }
            }
            checked.push(Checked {
                last4: pan.last4().to_owned(),
                last6_hash: keys.last6_hash(pan.last6()),
                pan_hash,
                msisdn,
                language,
            });
        }
        if checked.is_empty() {
            return Ok(report);
        }
        let cards: Vec<ImportCard<'_>> = checked
            .iter()
            .map(|c| ImportCard {
                pan_hash: &c.pan_hash,
                last4: &c.last4,
                last6_hash: &c.last6_hash,
                msisdn: &c.msisdn,
                language: c.language,
            })
            .collect();
        let now = inner.clock.now_ms();
        for outcome in inner.cards.import(&cards, initial_load, actor, now).await? {
            match outcome {
                Imported::Created => report.created += 1,
                Imported::Unchanged => report.unchanged += 1,
                Imported::Updated => report.updated += 1,
            }
        }
        Ok(report)
    }
}
