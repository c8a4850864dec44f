//! USSD over SMPP, shared by the listener and client mode: the dialogues (keyed on
//! the customer's number and the session number of `its_session_info`), what one
//! PDU does to its dialogue, and the core's answer as a screen to send back.
//!
//! A PSSR indication opens a dialogue with the dialled string (in short_message or
//! destination_addr, as configured), a USSR confirm carries the next input, an abort
//! ends it. Everything is bounded: inputs per dialogue, bytes per input, dialogues
//! held at once; past a bound the dialogue ends with a screen saying so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::link::within_deadline;
use super::pdu;
use crate::config::{DialledIn, SmppSettings};
use crate::core::{Core, CoreError, UssdReply};
use crate::replies::UssdMeta;

type Key = (String, u8);

/// Where one dialogue stands: the service dialled and the inputs so far.
struct Dialogue {
    service_code: String,
    path: Vec<String>,
    touched: Instant,
}

/// The open dialogues of one transport (the listener, or client mode).
pub(crate) struct Dialogues {
    map: Mutex<HashMap<Key, Dialogue>>,
    idle: Duration,
    max: usize,
}

impl Dialogues {
    pub fn new(settings: &SmppSettings) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(settings.ussd_session_timeout_secs),
            max: settings.ussd_max_dialogues,
        }
    }

    /// The dialogue of `key` after `f` changed it; `None` when unknown or idle past
    /// the timeout (then it is forgotten). A new dialogue is not kept when the cap is
    /// reached even after idle ones are swept: the customer gets the "session
    /// expired" screen next time instead of the map growing.
    fn with<T>(&self, key: &Key, f: impl FnOnce(&mut Option<Dialogue>) -> T) -> T {
        let mut dialogues = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut entry = dialogues
            .remove(key)
            .filter(|d| d.touched.elapsed() < self.idle);
        let out = f(&mut entry);
        if let Some(mut d) = entry {
            if dialogues.len() >= self.max {
                dialogues.retain(|_, d| d.touched.elapsed() < self.idle);
            }
            if dialogues.len() < self.max {
                d.touched = Instant::now();
                dialogues.insert(key.clone(), d);
            } else {
                metrics::counter!("otpgw_ussd_dialogues_refused_total").increment(1);
            }
        }
        out
    }

    fn end(&self, key: &Key) {
        self.with(key, |d| *d = None);
    }

    /// Forgets idle dialogues.
    pub fn sweep(&self) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, d| d.touched.elapsed() < self.idle);
    }
}

/// What one USSD PDU asks for. (`step` returns `None` when there is nothing to
/// answer but the PDU's response: an abort, or our own operations coming back.)
pub(crate) enum Step {
    /// Walk the menu along this path of the service.
    Walk(String, Vec<String>),
    /// No such dialogue (never opened, idle past its timeout, or no room for it).
    Expired,
    /// Too many steps or too long an input: the dialogue ends.
    OverLimit,
}

/// A screen for the customer, and how to send it.
pub(crate) struct Screen {
    pub reply: UssdReply,
    /// Our source_addr: the service the customer dialled.
    pub source: String,
    pub meta: UssdMeta,
}

fn key(message: &pdu::Message) -> Key {
    (
        message.source.clone(),
        message.session_info.map_or(0, |s| s.0),
    )
}

/// Applies one PDU to its dialogue.
pub(crate) fn step(
    dialogues: &Dialogues,
    settings: &SmppSettings,
    message: &pdu::Message,
) -> Option<Step> {
    let key = key(message);
    let op = message
        .ussd_op
        .unwrap_or(if message.text.trim_start().starts_with('*') {
            pdu::USSD_PSSR_INDICATION
        } else {
            pdu::USSD_USSR_CONFIRM
        });
    let (max_steps, max_input) = (settings.ussd_max_steps, settings.ussd_max_input);
    match op {
        pdu::USSD_PSSR_INDICATION => {
            let dialled = match settings.ussd_dialled_in {
                DialledIn::ShortMessage => &message.text,
                DialledIn::DestinationAddr => &message.destination,
            };
            let parsed = (dialled.len() <= max_input)
                .then(|| otpgw_parsers::ussd::parse_ussd(dialled).ok())
                .flatten();
            let (service_code, path) = match parsed {
                Some(u) => (u.service_code, u.path),
                // Not a USSD string (or an absurd one): the core answers "unknown
                // service".
                None => (String::new(), Vec::new()),
            };
            if path.len() > max_steps {
                return Some(Step::OverLimit);
            }
            let walk = Step::Walk(service_code.clone(), path.clone());
            dialogues.with(&key, |d| {
                *d = Some(Dialogue {
                    service_code,
                    path,
                    touched: Instant::now(),
                });
            });
            Some(walk)
        }
        pdu::USSD_USSR_CONFIRM => Some(dialogues.with(&key, |d| {
            let input = message.text.trim();
            match d.as_mut() {
                None => Step::Expired,
                // Bounded: each step copies the path, and a peer cycling answers
                // must not grow one dialogue without end.
                Some(dialogue) if input.len() > max_input || dialogue.path.len() >= max_steps => {
                    *d = None;
                    Step::OverLimit
                }
                Some(dialogue) => {
                    dialogue.path.push(input.to_owned());
                    Step::Walk(dialogue.service_code.clone(), dialogue.path.clone())
                }
            }
        })),
        pdu::USSD_USER_ABORT => {
            dialogues.end(&key);
            tracing::info!("ussd dialogue aborted by the user");
            None
        }
        other => {
            tracing::debug!(op = other, "ussd operation with nothing to answer");
            None
        }
    }
}

/// The core's screen for a step, within the message deadline. A last screen ends
/// the dialogue.
pub(crate) async fn answer(
    core: &Core,
    dialogues: &Dialogues,
    settings: &SmppSettings,
    peer: &str,
    message: &pdu::Message,
    step: Step,
) -> Result<Screen, CoreError> {
    let end_with = |text: String| {
        core.normalize_msisdn(&message.source).map(|to| UssdReply {
            to,
            text,
            end: true,
            code_id: None,
        })
    };
    let reply = match step {
        Step::Walk(service_code, path) => {
            within_deadline(
                settings.message_timeout_secs,
                "ussd step",
                core.issue.ussd(peer, &message.source, &service_code, &path),
            )
            .await?
        }
        Step::Expired => end_with(core.issue.ussd_expired())?,
        Step::OverLimit => {
            tracing::info!("ussd dialogue past its bounds: ended");
            metrics::counter!("otpgw_ussd_over_limit_total").increment(1);
            end_with(core.issue.ussd_over_limit())?
        }
    };
    if reply.end {
        dialogues.end(&key(message));
    }
    let source = if message.destination.is_empty() {
        core.issue.ussd_code().to_owned()
    } else {
        message.destination.clone()
    };
    let meta = UssdMeta {
        end: reply.end,
        session_info: message.session_info,
    };
    Ok(Screen {
        reply,
        source,
        meta,
    })
}

#[cfg(test)]
mod tests {
    //! Dialogues on tokio's clock, paused and moved by hand: idle timeout and cap.

    use super::*;

    const CUSTOMER: &str = "989121110080";

    /// What a step came to, comparable.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Walk(String, Vec<String>),
        Expired,
        OverLimit,
        Nothing,
    }

    fn seen(step: Option<Step>) -> Seen {
        match step {
            Some(Step::Walk(service, path)) => Seen::Walk(service, path),
            Some(Step::Expired) => Seen::Expired,
            Some(Step::OverLimit) => Seen::OverLimit,
            None => Seen::Nothing,
        }
    }

    fn walk(path: &[&str]) -> Seen {
        Seen::Walk("720".into(), path.iter().map(|p| (*p).to_owned()).collect())
    }

    fn settings(max_dialogues: usize) -> SmppSettings {
        SmppSettings {
            ussd_session_timeout_secs: 180,
            ussd_max_dialogues: max_dialogues,
            ..SmppSettings::default()
        }
    }

    fn pdu(session: u8, op: u8, text: &str) -> pdu::Message {
        pdu::Message {
            source: CUSTOMER.into(),
            destination: String::new(),
            text: text.into(),
            receipt: false,
            receipt_info: None,
            service_type: "USSD".into(),
            ussd_op: Some(op),
            session_info: Some((session, 0)),
        }
    }

    struct Peer {
        dialogues: Dialogues,
        settings: SmppSettings,
    }

    impl Peer {
        fn new(max_dialogues: usize) -> Self {
            let settings = settings(max_dialogues);
            Self {
                dialogues: Dialogues::new(&settings),
                settings,
            }
        }

        fn dial(&self, session: u8) -> Seen {
            self.send(session, pdu::USSD_PSSR_INDICATION, "*720#")
        }

        fn answer(&self, session: u8, input: &str) -> Seen {
            self.send(session, pdu::USSD_USSR_CONFIRM, input)
        }

        fn send(&self, session: u8, op: u8, text: &str) -> Seen {
            seen(step(
                &self.dialogues,
                &self.settings,
                &pdu(session, op, text),
            ))
        }

        fn held(&self) -> usize {
            self.dialogues.map.lock().unwrap().len()
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Each input restarts the idle wait: a dialogue used every 179.999 s lives
    /// on; one left alone for 180 s is forgotten, and its next input gets the
    /// "session expired" screen.
    #[tokio::test(start_paused = true)]
    async fn a_dialogue_lives_while_used_and_expires_when_idle() {
        let peer = Peer::new(10);
        assert_eq!(peer.dial(1), walk(&[]));
        tokio::time::advance(secs(180) - Duration::from_millis(1)).await;
        assert_eq!(peer.answer(1, "1"), walk(&["1"]));
        tokio::time::advance(secs(180) - Duration::from_millis(1)).await;
        assert_eq!(peer.answer(1, "4321"), walk(&["1", "4321"]), "restarted");
        tokio::time::advance(secs(180)).await;
        assert_eq!(peer.answer(1, "1"), Seen::Expired, "idle for 180 s");
        assert_eq!(peer.answer(1, "1"), Seen::Expired, "and forgotten");
        assert_eq!(peer.held(), 0);
        // Dialling again opens a new dialogue.
        assert_eq!(peer.dial(1), walk(&[]));
        assert_eq!(peer.answer(1, "1"), walk(&["1"]));
    }

    /// The timeout is `ussd_session_timeout_secs`, and a sweep forgets only the
    /// dialogues idle that long.
    #[tokio::test(start_paused = true)]
    async fn the_sweep_forgets_only_idle_dialogues() {
        let settings = SmppSettings {
            ussd_session_timeout_secs: 30,
            ..settings(10)
        };
        let peer = Peer {
            dialogues: Dialogues::new(&settings),
            settings,
        };
        assert_eq!(peer.dial(1), walk(&[]));
        tokio::time::advance(secs(20)).await;
        assert_eq!(peer.dial(2), walk(&[]));
        tokio::time::advance(secs(10)).await;
        peer.dialogues.sweep();
        assert_eq!(peer.held(), 1, "the first is 30 s idle, the second 10 s");
        assert_eq!(peer.answer(2, "1"), walk(&["1"]));
        assert_eq!(peer.answer(1, "1"), Seen::Expired);
    }

    /// At the cap a new dialogue gets its first screen but is not kept (its next
    /// input finds it expired), while open ones go on; once one of them has been
    /// idle past the timeout, its room goes to a new dialogue.
    #[tokio::test(start_paused = true)]
    async fn past_the_cap_a_new_dialogue_is_not_kept_until_one_goes_idle() {
        let peer = Peer::new(2);
        assert_eq!(peer.dial(1), walk(&[]));
        assert_eq!(peer.dial(2), walk(&[]));
        assert_eq!(peer.dial(3), walk(&[]), "the first screen is still served");
        assert_eq!(peer.held(), 2);
        assert_eq!(peer.answer(3, "1"), Seen::Expired, "no room was kept");
        tokio::time::advance(secs(100)).await;
        assert_eq!(peer.answer(1, "1"), walk(&["1"]));
        tokio::time::advance(secs(79)).await;
        assert_eq!(peer.dial(3), walk(&[]));
        assert_eq!(peer.answer(3, "1"), Seen::Expired, "both still in use");
        tokio::time::advance(secs(1)).await;
        // Dialogue 2 has been idle 180 s: swept to make room.
        assert_eq!(peer.dial(3), walk(&[]));
        assert_eq!(peer.held(), 2);
        assert_eq!(peer.answer(3, "1"), walk(&["1"]));
        assert_eq!(peer.answer(2, "1"), Seen::Expired);
        assert_eq!(peer.answer(1, "2"), walk(&["1", "2"]));
    }

    /// An abort ends the dialogue at once, whatever the clock says.
    #[tokio::test(start_paused = true)]
    async fn an_abort_ends_the_dialogue() {
        let peer = Peer::new(10);
        assert_eq!(peer.dial(1), walk(&[]));
        assert_eq!(peer.send(1, pdu::USSD_USER_ABORT, ""), Seen::Nothing);
        assert_eq!(peer.answer(1, "1"), Seen::Expired);
        assert_eq!(peer.held(), 0);
    }
}
