//! `[messages]`: the bank's own wording of what customers read, per message kind
//! and language, and the autofill line after codes. Turned into the rules crate's
//! checked [`Wording`] at load, so a bad template stops `check-config` and `serve`
//! with the kind and language named.

use otpgw_rules::vocab::Language;
use otpgw_rules::wording::{Message, Wording, WordingError};
use serde::{Deserialize, Serialize};

/// One message kind in both languages; an absent one keeps the built-in text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageTexts {
    pub fa: Option<String>,
    pub en: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesSettings {
    /// The customer's own request for a code (`{code}` required).
    pub code: Option<MessageTexts>,
    /// A code the payment switch pushed (`{code}` required); absent: `code`'s.
    pub pushed: Option<MessageTexts>,
    /// The card locked after wrong codes.
    pub locked: Option<MessageTexts>,
    /// To the old number after a phone change.
    pub phone_changed_old: Option<MessageTexts>,
    /// To the new number after a phone change.
    pub phone_changed_new: Option<MessageTexts>,
    /// No code: the number's SIM changed recently.
    pub sim_swapped: Option<MessageTexts>,
    /// A card's activation code (`{code}` required).
    pub activation: Option<MessageTexts>,
    /// Adds `@<origin> #<code>` as the last line of every code message: browsers
    /// (WebOTP, Safari) and Android fill the code into that site's form only.
    pub autofill_origin: Option<String>,
    /// The Android app's 11-character SMS Retriever hash, on the line before.
    pub android_app_hash: Option<String>,
    /// The most SMS segments any message may take (with a 7-digit code and the
    /// autofill lines): each segment is billed, and old phones lose long ones.
    pub max_segments: usize,
}

impl Default for MessagesSettings {
    fn default() -> Self {
        Self {
            code: None,
            pushed: None,
            locked: None,
            phone_changed_old: None,
            phone_changed_new: None,
            sim_swapped: None,
            activation: None,
            autofill_origin: None,
            android_app_hash: None,
            max_segments: 3,
        }
    }
}

impl MessagesSettings {
    /// The checked wording.
    pub fn wording(&self) -> Result<Wording, WordingError> {
        let kinds = [
            (Message::Code, &self.code),
            (Message::Pushed, &self.pushed),
            (Message::Locked, &self.locked),
            (Message::PhoneChangedOld, &self.phone_changed_old),
            (Message::PhoneChangedNew, &self.phone_changed_new),
            (Message::SimSwapped, &self.sim_swapped),
            (Message::Activation, &self.activation),
        ];
        let mut texts = Vec::new();
        for (kind, t) in kinds {
            let Some(t) = t else { continue };
            for (lang, text) in [(Language::Fa, &t.fa), (Language::En, &t.en)] {
                if let Some(text) = text {
                    texts.push((kind, lang, text.clone()));
                }
            }
        }
        Wording::new(
            texts,
            self.autofill_origin.clone(),
            self.android_app_hash.clone(),
            self.max_segments,
        )
    }
}
