//! One step of a USSD dialogue, whichever transport carries it (SMPP in either
//! direction, or HTTP). The menu is the rules' (`otpgw_rules::ussd`); digits at the
//! end of the path issue a code exactly as an SMS would (`issue.rs`), with channel
//! `ussd`, and the screen shows it.

use otpgw_parsers::sms::SmsRequest;
use otpgw_rules::texts::ReplyKind;
use otpgw_rules::ussd;
use otpgw_rules::vocab::Channel;

use super::admission::Admit;
use super::issue::{Answer, Issue};
use super::{CoreError, Inbound, ReplyPath};

/// A USSD screen for the customer; `end` closes the session.
pub struct UssdReply {
    pub to: String,
    pub text: String,
    pub end: bool,
    pub code_id: Option<i64>,
}

// The text may hold a code: never print it.
crate::telemetry::debug_only!(UssdReply { end, code_id });

impl Issue {
    /// One step of a USSD dialogue. `path` holds every input since the dial (the
    /// segments of a one-shot `*720*1*1234#` included); digits at the end of it
    /// issue a code exactly as an SMS would, with channel `ussd` and the customer's
    /// cap if the path gave one (`*720*1*1234*2500000#`, or `1234 2500000` typed in
    /// the menu).
    pub async fn ussd(
        &self,
        peer: &str,
        from: &str,
        service_code: &str,
        path: &[String],
    ) -> Result<UssdReply, CoreError> {
        let inner = &self.0;
        let svc = &inner.service;
        let msisdn = super::normalize_msisdn(from, &svc.country_code)?;
        let screen = |screen, end| {
            (
                ussd::render(screen, svc.language, &svc.ussd_code),
                end,
                None,
            )
        };
        let (text, end, code_id) = if service_code != svc.ussd_code {
            screen(ussd::Screen::UnknownService, true)
        } else {
            match ussd::walk(path) {
                ussd::Walk::Show { screen: s, end } => screen(s, end),
                ussd::Walk::FullPan => {
                    tracing::warn!(peer, "a full card number was dialled; it was discarded");
                    (
                        self.screen(&Answer::say(ReplyKind::FullPan, "")),
                        true,
                        None,
                    )
                }
                ussd::Walk::Last4(d, cap) | ussd::Walk::Last6(d, cap) => {
                    let request = if d.len() == 4 {
                        SmsRequest::Last4(d.clone())
                    } else {
                        SmsRequest::Last6(d.clone())
                    };
                    let inbound = Inbound {
                        channel: Channel::Ussd,
                        peer: peer.to_owned(),
                        from: from.to_owned(),
                        text: String::new(),
                        // A USSD screen lives and dies with its dialogue.
                        path: ReplyPath::Local,
                    };
                    let answer = match inner.admission.msisdn(&msisdn).await {
                        Admit::Allow => {
                            inner
                                .issue_for(&inbound, &msisdn, &request, &d, cap)
                                .await?
                        }
                        over => Answer::limited(over),
                    };
                    match answer {
                        // A USSD screen costs the bank nothing: say it, briefly.
                        None => screen(ussd::Screen::TryLater, true),
                        Some(a) => (self.screen(&a), a.kind != ReplyKind::Ambiguous, a.code_id),
                    }
                }
            }
        };
        metrics::counter!("otpgw_ussd_screens_total", "end" => if end { "true" } else { "false" })
            .increment(1);
        Ok(UssdReply {
            to: msisdn,
            text,
            end,
            code_id,
        })
    }

    /// The final screen of a dialogue that went past its bounds (too many steps, an
    /// input too long, no room for another dialogue).
    pub fn ussd_over_limit(&self) -> String {
        self.fixed(ussd::Screen::InvalidEnd)
    }

    /// A USSD screen that says no more than "your session expired".
    pub fn ussd_expired(&self) -> String {
        self.fixed(ussd::Screen::Expired)
    }

    /// The service code customers dial (`*720#`).
    pub fn ussd_code(&self) -> &str {
        &self.0.service.ussd_code
    }

    fn fixed(&self, screen: ussd::Screen) -> String {
        let svc = &self.0.service;
        ussd::render(screen, svc.language, &svc.ussd_code)
    }

    fn screen(&self, a: &Answer) -> String {
        let inner = &self.0;
        let policy = inner.policy.get();
        ussd::render_answer(
            a.kind,
            inner.service.language,
            &a.params(inner, &policy, &inner.service.ussd_code),
        )
    }
}
