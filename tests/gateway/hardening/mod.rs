//! Hostile input and faults (issue 11): everything a peer controls is bounded, and
//! what it cannot get is refused at once, while legitimate traffic carries on.
//!
//! `smpp`: hostile SMPP peers and connections; `http`: hostile HTTP clients and
//! guessing through verify; `receipts`: an operator SMSC's receipt flood; `operator_smsc`: one claiming
//! another operator's customers; `crash`: a process killed under load, and old records
//! pruned.

mod crash;
mod flood;
mod http;
mod operator_smsc;
mod receipts;
mod smpp;
