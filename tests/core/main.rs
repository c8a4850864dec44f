//! The core in process, with a clock the tests move by hand: everything about time
//! (code age, lock ends, limit windows, the guessing guards, TOTP steps, activation
//! codes, pushed codes, console sessions) is checked here without sleeping. The core runs on the real store (a fresh SQLite file per
//! test), built by the same start-up code as `otpgw serve`. The end-to-end tests
//! in `tests/gateway` cover what a peer sees over the sockets.

mod support;

mod access;
mod activation;
mod approvals;
mod code_age;
mod guessing;
mod limits;
mod locks;
mod operators;
mod retention;
mod totp;
