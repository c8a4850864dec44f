//! Local console operators: what a valid name and password are, and when failed
//! sign-ins lock an operator. Pure rules; the core stores and times them.
//!
//! An operator signs in with a name, a password (Argon2id, see
//! [`crate::codes::Keys::password_hash`]) and a TOTP code from an authenticator app.
//! Five failures in a row, of either factor, lock the operator until an
//! administrator resets or enables them.

use crate::vocab::Role;

/// Failed sign-ins in a row (password or TOTP) that lock an operator.
pub const MAX_FAILURES: i64 = 5;
/// A new password may not be any of the last this many (the current one included).
pub const PASSWORD_HISTORY: usize = 5;
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Argon2 would take any length; a bound keeps a sign-in form's cost fixed.
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 64;
/// TOTP for operators: SHA-1, 6 digits, 30 s, what every authenticator app shows.
pub const TOTP_DIGITS: u32 = 6;
pub const TOTP_PERIOD: u32 = 30;
/// Steps either side of now a code is accepted in (clock skew of the phone).
pub const TOTP_WINDOW: u64 = 1;
pub const TOTP_SECRET_BYTES: usize = 20;

/// An operator name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
/// Lower case only, so `Sara` and `sara` cannot be two operators, and the name is
/// safe in the audit's `operator:NAME` and in a URI label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error(
        "the name may hold only lower-case letters a-z, digits and . _ -, and starts with a letter or digit"
    )]
    Characters,
}

impl Name {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
        let first_ok = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !first_ok || !raw.bytes().all(allowed) {
            return Err(NameError::Characters);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How the audit trail names this operator.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.0)
    }
}

/// The roles an operator may hold: the console's two.
pub fn operator_role(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Helpdesk)
}

/// A password as typed: never printed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Any text, for checking a sign-in (bounded: a longer one cannot match).
    pub fn given(raw: &str) -> Self {
        Self(raw.chars().take(MAX_PASSWORD_CHARS + 1).collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why a new password is refused; each says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error(
        "the password must mix at least two kinds of character (lower case, upper case, digits, others)"
    )]
    OneClass,
    #[error("the password must not contain the operator's name")]
    HoldsName,
    #[error("the password was one of this operator's last {PASSWORD_HISTORY}")]
    Reused,
}

/// Checks a new password for `name`: length, more than one class of character,
/// not the name (in any case, also inside it). Reuse is checked against the stored
/// hashes by the core.
pub fn new_password(name: &Name, raw: &str) -> Result<Password, PasswordError> {
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    let class = |c: char| {
        if c.is_lowercase() {
            0
        } else if c.is_uppercase() {
            1
        } else if c.is_numeric() {
            2
        } else {
            3
        }
    };
    let mut classes = raw.chars().map(class);
    let first = classes.next();
    if classes.all(|c| Some(c) == first) {
        return Err(PasswordError::OneClass);
    }
    if raw.to_lowercase().contains(name.as_str()) {
        return Err(PasswordError::HoldsName);
    }
    Ok(Password(raw.to_owned()))
}

/// What one more failed sign-in does to an operator with `failures` before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub failures: i64,
    /// This failure is the one that locks.
    pub locks: bool,
}

pub fn after_failure(failures: i64) -> Failure {
    let failures = failures.saturating_add(1);
    Failure {
        failures,
        locks: failures == MAX_FAILURES,
    }
}

/// Whether an operator with this many failures in a row is locked.
pub fn locked(failures: i64) -> bool {
    failures >= MAX_FAILURES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["sara", "a", "ali.rezaei", "op_2", "9lives", &"a".repeat(64)] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", NameError::Empty),
            (&*"a".repeat(65), NameError::TooLong),
            ("Sara", NameError::Characters),
            ("-sara", NameError::Characters),
            ("sa ra", NameError::Characters),
            ("sara:x", NameError::Characters),
            ("سارا", NameError::Characters),
        ];
        for (raw, want) in cases {
            assert_eq!(Name::parse(raw), Err(want), "{raw}");
        }
        assert_eq!(Name::parse("sara").unwrap().actor(), "operator:sara");
    }

    #[test]
    fn password_rules() {
        let sara = Name::parse("sara").unwrap();
        let cases: &[(&str, Result<(), PasswordError>)] = &[
            ("Short1!", Err(PasswordError::TooShort)),
            ("elevenchars", Err(PasswordError::TooShort)),
            ("alllowercaseletters", Err(PasswordError::OneClass)),
            ("123456789012", Err(PasswordError::OneClass)),
            ("!!!!!!!!!!!!", Err(PasswordError::OneClass)),
            ("Sara-the-clerk-1", Err(PasswordError::HoldsName)),
            ("xxSARAxx12345", Err(PasswordError::HoldsName)),
            ("correct horse battery", Ok(())),
            ("lowercase12345", Ok(())),
            // Twelve characters, not bytes: Persian letters count one each.
            ("رمزعبورمحکم۱۲", Ok(())),
        ];
        for (raw, want) in cases {
            assert_eq!(new_password(&sara, raw).map(|_| ()), *want, "{raw}");
        }
        let long = format!("Aa{}", "x".repeat(MAX_PASSWORD_CHARS));
        assert_eq!(
            new_password(&sara, &long).map(|_| ()),
            Err(PasswordError::TooLong)
        );
        assert_eq!(format!("{:?}", Password::given("secret")), "Password(***)");
    }

    #[test]
    fn the_fifth_failure_in_a_row_locks() {
        let mut failures = 0;
        let mut locked_at = None;
        for n in 1..=7 {
            let f = after_failure(failures);
            failures = f.failures;
            if f.locks {
                assert!(locked_at.is_none(), "locks once");
                locked_at = Some(n);
            }
            assert_eq!(locked(failures), n >= MAX_FAILURES);
        }
        assert_eq!(locked_at, Some(5));
    }
}
