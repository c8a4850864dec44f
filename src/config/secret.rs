//! A string that never prints, and fields that accept a number where a string is
//! meant (environment values that look like numbers arrive as integers).

use serde::{Deserialize, Serialize};

/// A string that never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "string_or_number")] String);

/// Environment values that look like numbers (`OTPGW_SERVICE__SHORT_CODES=[30003303]`,
/// a numeric password) arrive as integers; these fields are strings all the same.
/// (Leading zeros do not survive that trip: quote such values, `'"0098"'`.)
pub(super) fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Text(String),
        Unsigned(u64),
        Signed(i64),
    }
    Ok(match Value::deserialize(d)? {
        Value::Text(s) => s,
        Value::Unsigned(n) => n.to_string(),
        Value::Signed(n) => n.to_string(),
    })
}

pub(super) fn optional_string_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Option::<Item>::deserialize(d)?.map(|i| i.0))
}

pub(super) fn strings_or_numbers<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .map(|i| i.0)
        .collect())
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}
