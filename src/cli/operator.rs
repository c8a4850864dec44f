//! `otpgw operator …`: local console operators on the configured database. The
//! first administrator is added here; later ones here or in the console. Passwords
//! come on standard input only (`--password-stdin`), never as arguments. The CLI
//! acts as `cli` in the audit, so it may enable, disable, reset or change the role
//! of anyone, except disable or demote the last enabled administrator.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use otpgw::config::Settings;
use otpgw::core::ports::OperatorInfo;
use otpgw_rules::vocab::Role;

use super::stdin_line;

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Add an operator, who sets up TOTP at the first console sign-in. Prints it
    /// as JSON.
    Add {
        /// 1 to 64 of a-z, 0-9 and . _ -, starting with a letter or digit.
        name: String,
        #[arg(long, value_parser = ["admin", "helpdesk"])]
        role: String,
        /// Read the password (one line: at least 12 characters, two kinds of
        /// character, not the name) from standard input. Required.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an operator (ends their sessions); the last enabled admin is refused.
    Disable { name: String },
    /// Enable a disabled or locked operator (clears the failed sign-ins).
    Enable { name: String },
    /// A new password (none of the last 5) from standard input; TOTP is set up
    /// again at the next sign-in, the lock is cleared, sessions end.
    Reset {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an operator's role (ends their sessions); demoting the last
    /// enabled admin is refused.
    Role {
        name: String,
        #[arg(long, value_parser = ["admin", "helpdesk"])]
        role: String,
    },
    /// Print the operators as JSON (never a hash or a secret).
    List,
}

fn view(o: &OperatorInfo) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "role": o.role.as_str(),
        "totp_enrolled": o.totp_enrolled,
        "failed_signins": o.failed_signins,
        "locked_at": o.locked_at,
        "disabled_at": o.disabled_at,
        "created_at": o.created_at,
        "changed_at": o.changed_at,
    })
}

fn password(from_stdin: bool) -> Result<String> {
    if !from_stdin {
        bail!("give --password-stdin and the password on standard input");
    }
    let line = stdin_line("the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn run(cmd: OperatorCommand, settings: Settings) -> Result<()> {
    let core = otpgw::app::build_core(&settings).await?;
    let ops = &core.operators;
    let info = match cmd {
        OperatorCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let role = Role::parse(&role).context("role is admin or helpdesk")?;
            let password = password(password_stdin)?;
            ops.add(&name, role, &password, "cli")
                .await
                .with_context(|| format!("Failed to add operator {name}"))?
        }
        OperatorCommand::Disable { name } => ops
            .set_disabled(&name, true, "cli")
            .await
            .with_context(|| format!("Failed to disable operator {name}"))?,
        OperatorCommand::Enable { name } => ops
            .set_disabled(&name, false, "cli")
            .await
            .with_context(|| format!("Failed to enable operator {name}"))?,
        OperatorCommand::Reset {
            name,
            password_stdin,
        } => {
            let password = password(password_stdin)?;
            ops.reset(&name, &password, "cli")
                .await
                .with_context(|| format!("Failed to reset operator {name}"))?
        }
        OperatorCommand::Role { name, role } => {
            let role = Role::parse(&role).context("role is admin or helpdesk")?;
            ops.set_role(&name, role, "cli")
                .await
                .with_context(|| format!("Failed to change the role of operator {name}"))?
        }
        OperatorCommand::List => {
            let all: Vec<_> = ops.list().await?.iter().map(view).collect();
            println!("{}", serde_json::Value::Array(all));
            return Ok(());
        }
    };
    println!("{}", view(&info));
    Ok(())
}
