//! `[console]`: the help desk's console. Here, the two-person rules: which
//! console actions one clerk proposes and a second, different clerk approves
//! (`four_eyes`, any of `lift_lock`, `apikey_create`, `phone_change`,
//! `card_close`; an unknown name is refused at load, naming it). Live: a reload
//! applies a changed list at the next action (proposals already open stay open).

use otpgw_rules::approvals::Guarded;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// The actions under two-person rules; empty (the default): none.
    pub four_eyes: Vec<Guarded>,
}

impl ConsoleSettings {
    pub fn guards(&self, action: Guarded) -> bool {
        self.four_eyes.contains(&action)
    }
}
