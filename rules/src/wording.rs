//! The bank's own wording: `[messages.<kind>] fa = "…", en = "…"` in the config
//! replaces the built-in text of a message kind in a language, and an optional
//! origin-bound last line (`@bank.example #1234567`, the WICG format browsers and
//! Android autofill read; with an Android app's SMS Retriever hash on the line
//! before) follows every code. Checked once at start-up: a code message without
//! `{code}`, an unknown placeholder, or a text longer than the segments the bank
//! allows is refused with its kind and language named.

use std::collections::HashMap;

use crate::texts::{self, Params, ReplyKind, PLACEHOLDERS};
use crate::vocab::Language;

/// The message kinds a bank may word (config names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    Code,
    Pushed,
    Locked,
    PhoneChangedOld,
    PhoneChangedNew,
    SimSwapped,
    Activation,
}
crate::named!(Message {
    Code = "code",
    Pushed = "pushed",
    Locked = "locked",
    PhoneChangedOld = "phone_changed_old",
    PhoneChangedNew = "phone_changed_new",
    SimSwapped = "sim_swapped",
    Activation = "activation",
});

impl Message {
    /// Kinds whose text carries a code: their template must say where.
    fn carries_code(self) -> bool {
        matches!(self, Self::Code | Self::Pushed | Self::Activation)
    }

    /// The reply this kind words; `Pushed` words a `Code` that the switch pushed.
    fn reply(self) -> ReplyKind {
        match self {
            Self::Code | Self::Pushed => ReplyKind::Code,
            Self::Locked => ReplyKind::Locked,
            Self::PhoneChangedOld => ReplyKind::PhoneChangedOld,
            Self::PhoneChangedNew => ReplyKind::PhoneChangedNew,
            Self::Activation => ReplyKind::Activation,
            Self::SimSwapped => ReplyKind::SimSwapped,
        }
    }
}

/// Why the bank's wording was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordingError {
    #[error("messages.{kind}.{lang}: the text must contain {{code}}, where the code goes")]
    NoCode {
        kind: &'static str,
        lang: &'static str,
    },
    #[error("messages.{kind}.{lang}: unknown placeholder {{{name}}} (known: {{code}}, {{ttl}}, {{hours}}, {{digits}}, {{short_code}}, {{retry}})")]
    UnknownPlaceholder {
        kind: &'static str,
        lang: &'static str,
        name: String,
    },
    #[error("messages.{kind}.{lang}: {segments} SMS segments ({encoding}, {units} characters) with a code and the autofill line; messages.max_segments allows {max}")]
    TooLong {
        kind: &'static str,
        lang: &'static str,
        segments: usize,
        encoding: &'static str,
        units: usize,
        max: usize,
    },
    #[error("messages.autofill_origin {0:?} is not a host name (like bank.example)")]
    Origin(String),
    #[error("messages.android_app_hash must be the 11 characters Android computes for the app")]
    AppHash,
}

/// How long a text is as SMS: encoding, length in its units, segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    pub encoding: &'static str,
    pub units: usize,
    pub segments: usize,
}

/// GSM-7 when every character has a GSM-7 form (160 septets, or 153 per part of a
/// long message), else UCS-2 (70 characters, or 67 per part).
pub fn length(text: &str) -> Length {
    let (encoding, units, single, part) = match otpgw_parsers::text::gsm7_septets(text) {
        Some(septets) => ("GSM-7", septets, 160, 153),
        None => ("UCS-2", text.encode_utf16().count(), 70, 67),
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    Length {
        encoding,
        units,
        segments,
    }
}

/// The bank's wording, checked.
#[derive(Debug, Clone, Default)]
pub struct Wording {
    texts: HashMap<(Message, Language), String>,
    autofill_origin: Option<String>,
    android_app_hash: Option<String>,
}

/// A sample of what a code message carries, for the length check.
fn sample() -> Params<'static> {
    Params {
        code: "1234567",
        ttl_secs: 120,
        digits: "4321",
        short_code: "30003303",
        retry_secs: 60,
        transaction: None,
        cap: None,
    }
}

impl Wording {
    /// Checks `texts` (kind, language, template) and the autofill settings;
    /// `max_segments` bounds every message as rendered with a sample code.
    pub fn new(
        texts: Vec<(Message, Language, String)>,
        autofill_origin: Option<String>,
        android_app_hash: Option<String>,
        max_segments: usize,
    ) -> Result<Self, WordingError> {
        if let Some(o) = &autofill_origin {
            let host = !o.is_empty()
                && o.len() <= 253
                && o.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !host {
                return Err(WordingError::Origin(o.clone()));
            }
        }
        if let Some(h) = &android_app_hash {
            let ok = h.len() == 11
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
            if !ok {
                return Err(WordingError::AppHash);
            }
        }
        let mut wording = Self {
            texts: HashMap::new(),
            autofill_origin,
            android_app_hash,
        };
        for (kind, lang, text) in texts {
            let (k, l) = (kind.as_str(), lang.as_str());
            if kind.carries_code() && !text.contains("{code}") {
                return Err(WordingError::NoCode { kind: k, lang: l });
            }
            let mut rest = text.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                let name = &rest[open + 1..open + close];
                if !PLACEHOLDERS.contains(&name) {
                    return Err(WordingError::UnknownPlaceholder {
                        kind: k,
                        lang: l,
                        name: name.to_owned(),
                    });
                }
                rest = &rest[open + close + 1..];
            }
            wording.texts.insert((kind, lang), text);
        }
        for (kind, lang, len) in wording.lengths() {
            if len.segments > max_segments {
                return Err(WordingError::TooLong {
                    kind: kind.as_str(),
                    lang: lang.as_str(),
                    segments: len.segments,
                    encoding: len.encoding,
                    units: len.units,
                    max: max_segments,
                });
            }
        }
        Ok(wording)
    }

    /// Every wordable message in both languages as sent (with a sample code and
    /// the autofill lines): what `check-config` prints.
    pub fn lengths(&self) -> Vec<(Message, Language, Length)> {
        let mut out = Vec::new();
        for kind in Message::ALL {
            for lang in Language::ALL {
                let reply = kind.reply();
                let text = match self.texts.get(&(*kind, *lang)) {
                    Some(t) => texts::render_from(t, reply, *lang, &sample()),
                    None => texts::render(reply, *lang, &sample()),
                };
                let text = self.finish(reply, text, &sample());
                out.push((*kind, *lang, length(&text)));
            }
        }
        out
    }

    /// A reply in `lang`: the bank's text for its kind when it set one, else the
    /// built-in one; a code gets the autofill lines. `pushed`: the code was pushed
    /// by the payment switch (`messages.pushed`, falling back to `messages.code`).
    pub fn render(&self, kind: ReplyKind, lang: Language, p: &Params<'_>, pushed: bool) -> String {
        let own = match kind {
            ReplyKind::Code if pushed => self
                .texts
                .get(&(Message::Pushed, lang))
                .or_else(|| self.texts.get(&(Message::Code, lang))),
            ReplyKind::Code => self.texts.get(&(Message::Code, lang)),
            ReplyKind::Locked => self.texts.get(&(Message::Locked, lang)),
            ReplyKind::PhoneChangedOld => self.texts.get(&(Message::PhoneChangedOld, lang)),
            ReplyKind::PhoneChangedNew => self.texts.get(&(Message::PhoneChangedNew, lang)),
            ReplyKind::Activation => self.texts.get(&(Message::Activation, lang)),
            ReplyKind::SimSwapped => self.texts.get(&(Message::SimSwapped, lang)),
            _ => None,
        };
        let text = match own {
            Some(t) => texts::render_from(t, kind, lang, p),
            None => texts::render(kind, lang, p),
        };
        self.finish(kind, text, p)
    }

    /// The bank's text of `message` in `lang`, when it set one (kinds the replies
    /// do not map by `ReplyKind`, such as the SIM-swap refusal).
    pub fn own(&self, message: Message, lang: Language) -> Option<&str> {
        self.texts.get(&(message, lang)).map(String::as_str)
    }

    /// The autofill lines after a code: the app hash, then `@origin #code` last,
    /// as the origin-bound format requires.
    fn finish(&self, kind: ReplyKind, mut text: String, p: &Params<'_>) -> String {
        if kind != ReplyKind::Code || p.code.is_empty() {
            return text;
        }
        if let Some(hash) = &self.android_app_hash {
            text.push('\n');
            text.push_str(hash);
        }
        if let Some(origin) = &self.autofill_origin {
            text.push_str("\n\n@");
            text.push_str(origin);
            text.push_str(" #");
            text.push_str(p.code);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: Message, lang: Language, text: &str) -> Result<Wording, WordingError> {
        Wording::new(vec![(kind, lang, text.to_owned())], None, None, 3)
    }

    #[test]
    fn a_code_message_without_the_code_is_refused_with_its_kind_and_language() {
        let e = one(Message::Pushed, Language::Fa, "رمز شما").unwrap_err();
        assert_eq!(
            e.to_string(),
            "messages.pushed.fa: the text must contain {code}, where the code goes"
        );
        assert!(one(Message::Locked, Language::En, "Card {digits} locked.").is_ok());
        let e = one(Message::Code, Language::En, "Code {code} {cod}").unwrap_err();
        assert!(matches!(e, WordingError::UnknownPlaceholder { .. }), "{e}");
    }

    #[test]
    fn a_text_longer_than_the_segments_allowed_is_refused() {
        let long = format!("{{code}} {}", "x".repeat(500));
        let e = one(Message::Code, Language::En, &long).unwrap_err();
        assert!(
            e.to_string()
                .contains("messages.code.en: 4 SMS segments (GSM-7"),
            "{e}"
        );
        let persian = format!("{{code}} {}", "ر".repeat(250));
        let e = one(Message::Code, Language::Fa, &persian).unwrap_err();
        assert!(
            e.to_string()
                .contains("messages.code.fa: 4 SMS segments (UCS-2"),
            "{e}"
        );
    }

    #[test]
    fn the_autofill_line_comes_last_with_the_app_hash_before_it() {
        let w = Wording::new(
            vec![(Message::Pushed, Language::En, "Pay with {code}".to_owned())],
            Some("bank.example".into()),
            Some("FA+9qCX9VSu".into()),
            3,
        )
        .unwrap();
        let p = sample();
        assert_eq!(
            w.render(ReplyKind::Code, Language::En, &p, true),
            "Pay with 1234567\nFA+9qCX9VSu\n\n@bank.example #1234567"
        );
        // The customer's own request keeps the built-in text, with the same lines.
        let asked = w.render(ReplyKind::Code, Language::En, &p, false);
        assert!(
            asked.starts_with("Your dynamic password: 1234567"),
            "{asked}"
        );
        assert!(asked.ends_with("\n@bank.example #1234567"), "{asked}");
        assert!(Wording::new(vec![], Some("https://bank".into()), None, 3).is_err());
        assert!(Wording::new(vec![], None, Some("short".into()), 3).is_err());
    }

    #[test]
    fn segments_follow_the_encoding() {
        assert_eq!(length(&"a".repeat(160)).segments, 1);
        assert_eq!(length(&"a".repeat(161)).segments, 2);
        assert_eq!(length(&"ر".repeat(70)).segments, 1);
        assert_eq!(length(&"ر".repeat(71)).segments, 2);
    }
}
