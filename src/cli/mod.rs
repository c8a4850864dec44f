//! Helpers the command line's subcommands share: secrets and card numbers read
//! from standard input, lists printed as JSON. Each group of subcommands with a
//! life of its own has a file here (`card.rs`, `operator.rs`, `status.rs`).

use std::io::BufRead;

use anyhow::{Context, Result};
use otpgw_rules::codes::Pan;

pub mod card;
mod import;
pub mod operator;
pub mod status;

/// One line of standard input, as typed: secrets come this way, never as
/// arguments (shell history, the process list).
pub fn stdin_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("Failed to read {what} from stdin"))?;
    Ok(line)
}

/// A list as the JSON array of its items' views.
pub fn list_json<V, T>(items: Vec<T>) -> Result<serde_json::Value>
where
    V: From<T> + serde::Serialize,
{
    let views: Vec<V> = items.into_iter().map(V::from).collect();
    Ok(serde_json::to_value(views)?)
}

pub fn read_pan(arg: &str) -> Result<Pan> {
    Ok(Pan::parse(&read_pan_text(arg)?)?)
}

/// The card number as given (`-`: from standard input), not yet checked.
pub fn read_pan_text(arg: &str) -> Result<String> {
    if arg == "-" {
        stdin_line("the card number")
    } else {
        Ok(arg.to_owned())
    }
}
