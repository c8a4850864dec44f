//! `otpgw check-config`: the effective settings as TOML, each value followed by where
//! it came from (the file, an environment variable, or the built-in default), with
//! secrets masked. The output is itself a valid configuration file.

use std::path::Path;

use figment::{Figment, Source};
use toml_edit::{DocumentMut, Item, Table};

use super::schema::Settings;
use super::ConfigError;

/// Keys whose values are secrets wherever they stand (`[secrets]`, peers' and
/// operator connections' passwords, the SIM Swap API's and the console's OpenID
/// Connect client secrets).
const SECRET_KEYS: [&str; 4] = ["password", "pan_key", "code_key", "client_secret"];

impl Settings {
    /// The settings for `file` (and the environment), and the same as TOML with
    /// origins. Fails as loading does, for the same reasons.
    pub fn describe(file: Option<&Path>) -> Result<(Self, String), ConfigError> {
        let figment = Self::figment(file)?;
        let settings = Self::from_figment(&figment)?;
        let text = toml::to_string_pretty(&settings.redacted())
            .map_err(|e| ConfigError::Invalid(format!("cannot print the settings: {e}")))?;
        let mut doc: DocumentMut = text
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("cannot print the settings: {e}")))?;
        annotate(doc.as_table_mut(), &mut Vec::new(), &figment);
        let mut shown = doc.to_string();
        // What each operator connection may deliver, its default computed.
        if !settings.smpp.connections.is_empty() {
            shown.push_str(
                "\n# Customers' messages per second each operator connection may deliver:\n",
            );
            for c in &settings.smpp.connections {
                let whence = if c.mo_tps.is_some() {
                    "mo_tps"
                } else {
                    "its share of limits.global_per_second"
                };
                shown.push_str(&format!(
                    "#   {}: {}/s ({whence})\n",
                    c.name,
                    settings.mo_tps(c)
                ));
            }
        }
        // What each message costs, as the bank's operator pays for it.
        if let Ok(wording) = settings.messages.wording() {
            shown.push_str(
                "\n# SMS length of each message (with a 7-digit code and the autofill lines):\n",
            );
            for (kind, lang, len) in wording.lengths() {
                shown.push_str(&format!(
                    "#   messages.{}.{}: {} segment{}, {}, {} characters\n",
                    kind.as_str(),
                    lang.as_str(),
                    len.segments,
                    if len.segments == 1 { "" } else { "s" },
                    len.encoding,
                    len.units
                ));
            }
        }
        Ok((settings, shown))
    }
}

/// Masks secrets and writes each value's origin after it, walking tables and arrays
/// of tables (an array of tables has one origin: the source that gave the array).
fn annotate(table: &mut Table, path: &mut Vec<String>, figment: &Figment) {
    for (key, item) in table.iter_mut() {
        path.push(key.get().to_owned());
        match item {
            Item::Value(value) => {
                if SECRET_KEYS.contains(&key.get()) {
                    *value = "***".into();
                }
                value
                    .decor_mut()
                    .set_suffix(format!("  # {}", origin(figment, path)));
            }
            Item::Table(inner) => annotate(inner, path, figment),
            Item::ArrayOfTables(array) => {
                let whence = origin(figment, path);
                for inner in array.iter_mut() {
                    inner
                        .decor_mut()
                        .set_prefix(format!("\n# {}: {whence}\n", path.join(".")));
                    mask(inner);
                }
            }
            Item::None => {}
        }
        path.pop();
    }
}

/// Masks the secrets of one table of an array (its values share the array's origin).
fn mask(table: &mut Table) {
    for (key, item) in table.iter_mut() {
        if let Item::Value(value) = item {
            if SECRET_KEYS.contains(&key.get()) {
                *value = "***".into();
            }
        }
    }
}

/// "file PATH", "environment OTPGW_…" or "default".
fn origin(figment: &Figment, path: &[String]) -> String {
    let Some(metadata) = figment.find_metadata(&path.join(".")) else {
        return "default".into();
    };
    match &metadata.source {
        Some(Source::File(file)) => format!("file {}", file.display()),
        // The variable's name as `load.rs` reads it: OTPGW_ and the path joined by `__`.
        _ if metadata.name.contains("environment") => {
            format!("environment OTPGW_{}", path.join("__").to_ascii_uppercase())
        }
        _ => "default".into(),
    }
}
