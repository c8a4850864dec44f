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

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    fn load(text: &str) -> Result<Settings, super::super::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otpgw.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(Some(&path))
    }

    #[test]
    fn four_eyes_names_the_guarded_actions() {
        assert!(load("").unwrap().console.four_eyes.is_empty());
        let s = load("[console]\nfour_eyes = [\"lift_lock\", \"card_close\"]\n").unwrap();
        assert!(s.console.guards(Guarded::LiftLock) && s.console.guards(Guarded::CardClose));
        assert!(!s.console.guards(Guarded::PhoneChange));
        let e = load("[console]\nfour_eyes = [\"lift_lock\", \"wire_money\"]\n").unwrap_err();
        assert!(e.to_string().contains("wire_money"), "{e}");
    }
}
