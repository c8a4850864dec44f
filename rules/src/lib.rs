//! otpgw's vocabulary and pure rules, with no I/O: what a card, a code, a token and
//! a verdict are, and the decisions about them that do not depend on where they are
//! stored or how they arrived. The gateway crate's core calls these; its store and
//! transports only carry their values.
//!
//! Layout:
//! * `approvals` — two-person rules: the guarded actions, a proposal's outcome,
//!   who may approve.
//! * `vocab`   — card status, channel, delivery, code state, role, reason, verdict,
//!   language: the words every layer shares.
//! * `events`  — every kind of audit event, in one list.
//! * `records` — what the core and its store hand each other: cards, codes, events,
//!   API keys, tokens (never a secret in clear, never a full card number).
//! * `verify`  — the verification decision for SMS and USSD codes.
//! * `codes`   — keys and keyed hashes, codes from the OS CSPRNG, card numbers,
//!   constant-time comparison, Argon2id ePIN hashes.
//! * `ids`     — public ids: row ids under a keyed permutation, so they leak no count.
//! * `operators` — console operators: names, password rules, locking after failures.
//! * `payment` — payments a code is bound to, caps, ePIN rules, amounts in words.
//! * `seal`    — authenticated encryption of what must be stored but not read.
//! * `texts`   — every customer-facing SMS text in `fa` and `en`.
//! * `ussd`    — the USSD menu as a pure function of the inputs so far.
//! * `tokens`  — TOTP and OCRA arithmetic, and the verification decision with tokens.
//!
//! Nothing here reads a clock: times are epoch milliseconds passed in.

pub mod approvals;
pub mod codes;
pub mod events;
pub mod ids;
pub mod operators;
pub mod payment;
pub mod records;
pub mod seal;
pub mod texts;
pub mod tokens;
pub mod ussd;
pub mod verify;
pub mod vocab;
pub mod wording;
