//! A core on a fresh SQLite database in a temporary directory, on a `HandClock`,
//! and the steps the tests share: enrolling a card, a customer's SMS, a verifier's
//! key, a verify, and a fake of client mode's operator connections for what the
//! core sends unasked. Codes are read from the messages' text and never printed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otpgw::config::{DatabaseSettings, Secret, Settings};
use otpgw::core::{
    Core, Factors, HandClock, Inbound, Outbound, Push, Reply, ReplyPath, VerifyOutcome,
};
use otpgw_rules::codes::{Keys, Pan};
use otpgw_rules::records::{ApiKey, Card};
use otpgw_rules::texts::ReplyKind;
use otpgw_rules::vocab::{Channel, Role};

/// 2027-01-15 08:00:00 UTC: a fixed start, so every run sees the same times. It is
/// also the first millisecond of a 30 s and of a 60 s TOTP step.
pub const START: i64 = 1_800_000_000_000;

/// A test card (Luhn-valid, ends in 4321) and its customer's phone.
pub const PAN: &str = "6037990000004321";
pub const MSISDN: &str = "989121110080";
/// Another card, ending in 2468.
pub const PAN_2: &str = "6219861000002468";

pub struct Harness {
    pub core: Core,
    pub clock: Arc<HandClock>,
    /// The keys the core runs with (a code's public id is derived from them).
    pub keys: Keys,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn advance_ms(&self, by: i64) {
        self.advance(ms(by));
    }

    /// Moves the clock to `START + at` milliseconds (never back).
    pub fn at(&self, at: i64) {
        let now = self.core.now_ms();
        assert!(START + at >= now, "the clock never goes back");
        self.advance_ms(START + at - now);
    }

    /// Enrolls `pan` for `msisdn` (active at once under the default policy).
    pub async fn enroll(&self, pan: &str, msisdn: &str) -> Card {
        self.core
            .enroll
            .card(&card(pan), msisdn, None, "test")
            .await
            .expect("enrolled")
            .card
    }

    /// A customer's SMS through the core, as a listener peer delivers it.
    pub async fn sms(&self, from: &str, text: &str) -> Option<Reply> {
        self.core
            .issue
            .sms(&Inbound {
                channel: Channel::Sms,
                peer: "smsc".into(),
                from: from.into(),
                text: text.into(),
                path: ReplyPath::Local,
            })
            .await
            .expect("the core answers")
    }

    /// Asks for a code for the card ending in `last4` and returns it.
    pub async fn code(&self, from: &str, last4: &str) -> String {
        let reply = self.sms(from, last4).await.expect("a reply");
        assert_eq!(reply.kind, ReplyKind::Code, "a code for ****{last4}");
        assert!(reply.code_id.is_some());
        code_in(&reply.text)
    }

    /// A verifier's API key, as the store knows it.
    pub async fn verifier(&self) -> ApiKey {
        self.key(Role::Verifier).await.0
    }

    /// A new API key of `role`: as authenticated, and its plaintext.
    pub async fn key(&self, role: Role) -> (ApiKey, String) {
        let (_, plain) = self
            .core
            .access
            .create_key(role, Some("test"), "test", None)
            .await
            .expect("key created");
        let key = self
            .core
            .access
            .authenticate(&plain)
            .await
            .expect("store answers")
            .expect("the new key authenticates");
        (key, plain)
    }

    /// Where most verify tests start: `PAN` enrolled on `MSISDN`, a new verifier's key
    /// (as authenticated, and its plaintext) and a code issued to the card.
    pub async fn issued(&self) -> (ApiKey, String, String) {
        self.enroll(PAN, MSISDN).await;
        let (key, plain) = self.key(Role::Verifier).await;
        let code = self.code(MSISDN, "4321").await;
        (key, plain, code)
    }

    /// Connects a fake of client mode's operator connections (once per core).
    pub fn phone(&self) -> Arc<Phone> {
        let phone = Arc::new(Phone::default());
        self.core.set_outbound(phone.clone());
        phone
    }

    /// Verifies `code` for `pan` with no payment and no ePIN.
    pub async fn verify(
        &self,
        key: ApiKey,
        pan: &str,
        code: &str,
        request_id: &str,
    ) -> VerifyOutcome {
        self.core
            .verify
            .verify(key, &card(pan), code, request_id, Factors::default())
            .await
            .expect("a verdict")
    }
}

/// Client mode's operator connections, faked: one default route serving every
/// number, always able to send. What the core hands out is kept for the test.
#[derive(Default)]
pub struct Phone {
    sent: Mutex<Vec<Push>>,
}

impl Phone {
    /// The text of the last message handed out (it may hold a code: never print
    /// it).
    pub fn last_text(&self) -> String {
        let sent = self.sent.lock().expect("not poisoned");
        sent.last().expect("a message was handed out").text.clone()
    }

    pub fn count(&self) -> usize {
        self.sent.lock().expect("not poisoned").len()
    }
}

impl Outbound for Phone {
    fn route_for(&self, _msisdn: &str) -> Option<String> {
        Some(String::new())
    }

    fn holds(&self, _route: &str) -> bool {
        true
    }

    fn send(&self, push: Push) -> bool {
        self.sent.lock().expect("not poisoned").push(push);
        true
    }
}

pub fn card(pan: &str) -> Pan {
    Pan::parse(pan).expect("a valid test card number")
}

pub fn ms(n: i64) -> Duration {
    Duration::from_millis(u64::try_from(n).expect("a forward move"))
}

/// The 7-digit code in a reply's text (digits of any script). Panics without
/// showing the text, which holds the code.
pub fn code_in(text: &str) -> String {
    digits_in(text, 7)
}

/// The one run of exactly `len` digits (any script) in `text`, in ASCII. Panics
/// without showing the text.
pub fn digits_in(text: &str, len: usize) -> String {
    let mut runs = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        match otpgw_parsers::digits::digit_value(c) {
            Some(d) => run.push(char::from(b'0' + d)),
            None => {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
        }
    }
    let codes: Vec<String> = runs.into_iter().filter(|r| r.len() == len).collect();
    assert_eq!(codes.len(), 1, "exactly one {len}-digit run in the text");
    codes.into_iter().next().unwrap_or_default()
}

/// A code that is not `code`: its last digit changed.
pub fn wrong(code: &str) -> String {
    let mut digits: Vec<u8> = code.bytes().collect();
    let last = digits.last_mut().expect("a code");
    *last = b'0' + (*last - b'0' + 1) % 10;
    String::from_utf8(digits).expect("digits")
}

/// A core with the default settings, changed by `tune`.
pub async fn core_with(tune: impl FnOnce(&mut Settings)) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let keys = Keys::generate();
    let mut settings = Settings {
        database: DatabaseSettings {
            url: format!("sqlite://{}/otpgw.db", dir.path().display()),
            ..DatabaseSettings::default()
        },
        ..Settings::default()
    };
    settings.secrets.pan_key = Some(Secret::new(keys.pan_key_hex()));
    settings.secrets.code_key = Some(Secret::new(keys.code_key_hex()));
    tune(&mut settings);
    let clock = HandClock::at(START);
    let (core, _store) = otpgw::app::build(&settings, clock.clone())
        .await
        .expect("core on a fresh database");
    Harness {
        core,
        clock,
        keys,
        _dir: dir,
    }
}

pub async fn core() -> Harness {
    core_with(|_| {}).await
}
