//! Parser for the body of a customer's SMS to the short code.
//!
//! Customers are asked to send the last 4 digits of their card, but in
//! practice they add keywords, punctuation, Persian digits and invisible
//! direction marks, and some send the whole card number. This module turns
//! any body into one [`SmsRequest`] without ever keeping a full card number:
//! a body that contains one is reported only as [`SmsRequest::FullPan`] so
//! the reply can warn the customer.

use std::collections::VecDeque;
use std::iter;

use nom::bytes::complete::{tag, take_while, take_while1, take_while_m_n};
use nom::character::complete::digit1;
use nom::combinator::{eof, opt, recognize};
use nom::error::{Error, ErrorKind};
use nom::multi::{many0, separated_list1};
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::digits::{ascii_digit, digit_value};

/// Shortest and longest card numbers (ISO/IEC 7812).
const PAN_MIN: usize = 13;
const PAN_MAX: usize = 19;

/// Words the customer may put before the digits, and words asking for help.
///
/// Matching ignores Latin case and the Arabic/Persian letter variants, so the
/// lists may be written in either form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsGrammar {
    pub keywords: Vec<String>,
    pub help_keywords: Vec<String>,
}

impl Default for SmsGrammar {
    fn default() -> Self {
        let own = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect();
        SmsGrammar {
            keywords: own(&["OTP", "PIN", "CODE", "رمز", "رمز پویا", "کد"]),
            help_keywords: own(&["HELP", "?", "راهنما", "کمک"]),
        }
    }
}

/// What a customer's SMS asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsRequest {
    /// Exactly 4 digits, as ASCII.
    Last4(String),
    /// Exactly 6 digits, as ASCII.
    Last6(String),
    /// The body contained 13..=19 digits: a full card number. The digits are
    /// deliberately not carried so they cannot reach logs or storage.
    FullPan,
    /// The customer asked how the service works.
    Help,
    /// Nothing but whitespace and punctuation.
    Empty,
    Unrecognised,
}

/// Classifies an SMS body. Never panics, whatever the input.
#[must_use]
pub fn parse_sms(body: &str, grammar: &SmsGrammar) -> SmsRequest {
    let folded = fold(body);
    let text = folded.trim();
    if text.is_empty() {
        return SmsRequest::Empty;
    }
    if is_only_help(text, &fold_all(&grammar.help_keywords)) {
        return SmsRequest::Help;
    }
    let core = text.trim_matches(is_sep);
    if core.is_empty() {
        return SmsRequest::Empty;
    }
    if let Some(request) = parse_request(core, &fold_all(&grammar.keywords)) {
        return request;
    }
    // Checked last so that a card number typed in the middle of a sentence
    // still earns the customer a warning rather than a generic error.
    if contains_pan(&folded) {
        SmsRequest::FullPan
    } else {
        SmsRequest::Unrecognised
    }
}

/// The largest cap a customer may set, in whole currency units: at most 12 digits,
/// so a cap can never hold enough digits of a card number to matter.
pub const CAP_MAX: u64 = 999_999_999_999;

/// Classifies an SMS body like [`parse_sms`], and reads the maximum amount a
/// customer may put after the card digits: `5678 2500000`, `OTP 5678 2,500,000`,
/// `۵۶۷۸ ۲٬۵۰۰٬۰۰۰` (any digit script; grouped by `,`, `٬` or `'` in threes, or not
/// grouped). The card digits must then be one run of 4 or 6. A cap of 0 or above
/// [`CAP_MAX`], or badly grouped, leaves the body to [`parse_sms`]; so does a body
/// that holds a card number anywhere — which includes 4 digits, a space and an
/// ungrouped cap of 9 digits or more (`1234 567890123` is 13 digits in a row: the
/// customer is warned, and nothing of it is kept). Never panics, whatever the input.
#[must_use]
pub fn parse_sms_capped(body: &str, grammar: &SmsGrammar) -> (SmsRequest, Option<u64>) {
    let folded = fold(body);
    let core = folded.trim().trim_matches(is_sep);
    if !core.is_empty() && !contains_pan(&folded) {
        if let Some(found) = parse_capped(core, &fold_all(&grammar.keywords)) {
            return found;
        }
    }
    (parse_sms(body, grammar), None)
}

/// Between the card digits and the cap.
fn is_cap_sep(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '*' | '/' | ':' | '#')
}

/// Thousands separators inside a cap.
fn is_thousands_sep(c: char) -> bool {
    matches!(c, ',' | '\u{066C}' | '\'' | '\u{2019}')
}

/// `2500000` or `2,500,000`: the value, if the grouping is regular and the value
/// is between 1 and [`CAP_MAX`].
fn cap_amount(input: &str) -> Res<'_, Option<u64>> {
    let (rest, (first, groups)) = (
        digit1,
        many0(preceded(take_while_m_n(1, 1, is_thousands_sep), digit1)),
    )
        .parse(input)?;
    let grouped_ok = groups.is_empty()
        || ((1..=3).contains(&first.len()) && groups.iter().all(|g: &&str| g.len() == 3));
    let digits: String = iter::once(first).chain(groups).collect();
    let value = digits
        .parse::<u64>()
        .ok()
        .filter(|v| grouped_ok && (1..=CAP_MAX).contains(v) && digits.len() <= 12);
    Ok((rest, value))
}

/// A whole input that is only a cap (`2500000`, `2,500,000`, `۲٬۵۰۰٬۰۰۰`), as a USSD
/// segment after the card digits is: its value, or `None` if it is anything else.
pub(crate) fn cap_alone(input: &str) -> Option<u64> {
    let folded = fold(input);
    let parsed: Res<'_, Option<u64>> = (cap_amount, eof).map(|(cap, _)| cap).parse(folded.trim());
    parsed.ok().and_then(|(_, cap)| cap)
}

/// `[keyword] digits cap`, with `digits` one run of 4 or 6.
fn parse_capped(core: &str, keywords: &[String]) -> Option<(SmsRequest, Option<u64>)> {
    let mut after_keyword: Vec<&str> = keywords
        .iter()
        .filter_map(|kw| keyword(core, kw).ok().map(|(rest, ())| rest))
        .collect();
    after_keyword.sort_by_key(|rest| rest.len());
    for rest in after_keyword.into_iter().chain(iter::once(core)) {
        let parsed: Res<'_, (&str, Option<u64>)> = (
            take_while(is_sep),
            digit1,
            take_while1(is_cap_sep),
            cap_amount,
            take_while(is_sep),
            eof,
        )
            .map(|(_, digits, _, cap, _, _)| (digits, cap))
            .parse(rest);
        if let Ok((_, (digits, Some(cap)))) = parsed {
            let request = match digits.len() {
                4 => SmsRequest::Last4(digits.to_owned()),
                6 => SmsRequest::Last6(digits.to_owned()),
                _ => continue,
            };
            return Some((request, Some(cap)));
        }
    }
    None
}

/// Brings body and keywords to one comparable form: ASCII digits, lower-case
/// Latin, Persian letter forms, and a plain space for every invisible or
/// non-breaking space that phones insert.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if let Some(d) = digit_value(c) {
            out.push(ascii_digit(d));
            continue;
        }
        match c {
            // Arabic keyboards produce yeh/alef maksura and kaf where Persian
            // text has its own letters; both render the same to the customer.
            '\u{064A}' | '\u{0649}' => out.push('\u{06CC}'),
            '\u{0643}' => out.push('\u{06A9}'),
            // Tatweel only stretches a word visually.
            '\u{0640}' => {}
            '\u{00A0}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => out.push(' '),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => {
                out.push('-')
            }
            '\u{061F}' => out.push('?'),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Folded keywords; blank ones are dropped because they would match anything.
fn fold_all(words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|w| fold(w))
        .filter(|w| !w.trim().is_empty())
        .collect()
}

/// Whitespace and punctuation a customer may scatter around the request.
fn is_sep(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || c.is_ascii_punctuation()
        || matches!(
            c,
            '،' | '؛'
                | '؟'
                | '٪'
                | '٫'
                | '٬'
                | '۔'
                | '«'
                | '»'
                | '…'
                | '‘'
                | '’'
                | '“'
                | '”'
                | '¡'
                | '¿'
                | '·'
                | '•'
        )
}

/// What may sit between digit groups of one number ("6037 9912", "12-34").
fn is_group_sep(c: char) -> bool {
    c.is_whitespace() || c == '-'
}

/// A character that would make a keyword only the start of a longer word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !c.is_ascii_digit()
}

type Res<'a, O> = IResult<&'a str, O>;

/// Matches one folded keyword at the start of `input`. Words of a multi-word
/// keyword may be separated by any whitespace (a ZWNJ is folded to a space),
/// and the keyword must end at a word boundary so "code" does not match
/// "codes".
fn keyword<'a>(input: &'a str, phrase: &str) -> Res<'a, ()> {
    let mut words = phrase.split_whitespace();
    let Some(first) = words.next() else {
        return Err(nom::Err::Error(Error::new(input, ErrorKind::Tag)));
    };
    let (mut rest, _) = tag(first).parse(input)?;
    for word in words {
        (rest, _) = (take_while1(char::is_whitespace), tag(word)).parse(rest)?;
    }
    match rest.chars().next() {
        Some(c) if is_word_char(c) => Err(nom::Err::Error(Error::new(rest, ErrorKind::Verify))),
        _ => Ok((rest, ())),
    }
}

/// A body consisting of one help keyword and optional punctuation. Tried
/// both with and without leading punctuation because "?" is itself a help
/// keyword and a separator.
fn is_only_help(text: &str, help: &[String]) -> bool {
    help.iter().any(|kw| {
        let only = |i: &str| {
            (|i| keyword(i, kw), take_while(is_sep), eof)
                .parse(i)
                .is_ok()
        };
        only(text) || only(text.trim_start_matches(is_sep))
    })
}

/// Digit groups joined by spaces or dashes, e.g. "6037-9912 3456".
fn digit_run(input: &str) -> Res<'_, &str> {
    recognize(separated_list1(take_while1(is_group_sep), digit1)).parse(input)
}

/// After the optional keyword: separators, optional digits, separators, end.
fn request_tail(input: &str) -> Res<'_, Option<&str>> {
    let (rest, (_, digits, _, _)) =
        (take_while(is_sep), opt(digit_run), take_while(is_sep), eof).parse(input)?;
    Ok((rest, digits))
}

/// The well-formed requests; `None` sends the caller to the card-number scan.
fn parse_request(core: &str, keywords: &[String]) -> Option<SmsRequest> {
    // Every keyword that matches is a candidate, longest first, so that
    // "رمز پویا 1234" is not read as "رمز" followed by the word "پویا".
    let mut after_keyword: Vec<&str> = keywords
        .iter()
        .filter_map(|kw| keyword(core, kw).ok().map(|(rest, ())| rest))
        .collect();
    after_keyword.sort_by_key(|rest| rest.len());
    let candidates = after_keyword
        .into_iter()
        .map(|rest| (true, rest))
        .chain(iter::once((false, core)));
    for (had_keyword, rest) in candidates {
        match request_tail(rest) {
            Ok((_, Some(digits))) => return classify(digits),
            // A bare keyword: the customer wants to know what to send.
            Ok((_, None)) if had_keyword => return Some(SmsRequest::Help),
            _ => {}
        }
    }
    None
}

fn classify(run: &str) -> Option<SmsRequest> {
    let count = run.chars().filter(char::is_ascii_digit).count();
    let digits = || run.chars().filter(char::is_ascii_digit).collect();
    match count {
        4 => Some(SmsRequest::Last4(digits())),
        6 => Some(SmsRequest::Last6(digits())),
        PAN_MIN..=PAN_MAX => Some(SmsRequest::FullPan),
        _ => None,
    }
}

/// True if the folded text holds 13..=19 digits in a row, counting digit
/// groups joined by spaces or dashes. Any consecutive groups count, so a
/// card number followed by more digits ("6037...7890 1234") is still found.
fn contains_pan(folded: &str) -> bool {
    let mut window = PanWindow::default();
    let mut run = 0usize;
    for c in folded.chars() {
        if c.is_ascii_digit() {
            run = run.saturating_add(1);
            continue;
        }
        if run > 0 {
            if window.push(run) {
                return true;
            }
            run = 0;
        }
        if !is_group_sep(c) {
            window.clear();
        }
    }
    run > 0 && window.push(run)
}

/// The most recent digit groups of one joined number whose total stays
/// <= PAN_MAX. Group lengths are positive, so that total is the largest
/// candidate ending at the newest group; if it is below PAN_MIN, no shorter
/// suffix reaches PAN_MIN either, which keeps the scan linear.
#[derive(Default)]
struct PanWindow {
    groups: VecDeque<usize>,
    sum: usize,
}

impl PanWindow {
    /// Adds a group and reports whether some run ending with it is PAN-sized.
    fn push(&mut self, len: usize) -> bool {
        self.groups.push_back(len);
        self.sum = self.sum.saturating_add(len);
        while self.sum > PAN_MAX {
            match self.groups.pop_front() {
                Some(old) => self.sum = self.sum.saturating_sub(old),
                None => self.sum = 0,
            }
        }
        self.sum >= PAN_MIN
    }

    fn clear(&mut self) {
        self.groups.clear();
        self.sum = 0;
    }
}

#[cfg(test)]
mod tests;
