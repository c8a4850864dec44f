//! The `otpgw` command line: `serve` runs the gateway; the other subcommands work on
//! the same configuration and database (migrations, cards, API keys).

mod cli;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use otpgw::config::Settings;
use otpgw::http::views::{ApiKeyView, EnrolledTokenView, TokenView};
use otpgw_rules::codes::Pan;
use otpgw_rules::vocab::Role;

use cli::{list_json, read_pan_text, stdin_line};

#[derive(Parser)]
#[command(
    name = "otpgw",
    version,
    about = "SMS/USSD dynamic-password (OTP) gateway"
)]
struct Cli {
    /// TOML configuration file. Without one, the embedded defaults apply
    /// (SQLite ./otpgw.db, SMPP 127.0.0.1:2775, HTTP 127.0.0.1:8080).
    #[arg(long, short, global = true, env = "OTPGW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: SMPP listener, HTTP API, migrations at start-up.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Copy the embedded SQLite database to PATH while the gateway runs: one
    /// consistent snapshot, mode 0600, checked (integrity, keys) before it is called a
    /// backup. Keep the key file with it. On PostgreSQL use pg_dump.
    Backup {
        /// Where the copy goes; must not exist.
        path: PathBuf,
    },
    /// Load and validate the configuration (and the keys, without creating any), print
    /// it with secrets hidden, and exit. Connects to nothing.
    CheckConfig,
    /// The hashing keys' file.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Enroll and manage cards.
    #[command(subcommand)]
    Card(cli::card::CardCommand),
    /// Customer tokens (TOTP apps and hardware tokens, OCRA) of a card.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage API keys (for machines).
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Local console operators: named people with a password and TOTP.
    #[command(subcommand)]
    Operator(cli::operator::OperatorCommand),
    /// Pushed codes, through the running gateway's HTTP API.
    #[command(subcommand)]
    Code(CodeCommand),
    /// The running gateway's SMPP links as tables: the listener's binds, the
    /// operator connections and the routes' queues (GET /v1/connections).
    Status {
        #[command(flatten)]
        remote: Remote,
        /// Print the API's JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running gateway to read its configuration again (as SIGHUP does):
    /// prints what took effect (`applied`) and what takes a restart (`kept`);
    /// an invalid file changes nothing and exits 1 (POST /v1/admin/reload).
    Reload {
        #[command(flatten)]
        remote: Remote,
    },
    /// Load tools: SMPP and verify load against a gateway (or any SMPP server), an
    /// instant SMPP server (the transport limit), and the store's write path alone.
    ///
    /// They are the `otpgw-bench` executable installed beside this one, which
    /// `otpgw bench` runs with its arguments unchanged: `otpgw bench --help` lists its
    /// modes, `otpgw bench MODE --help` their options.
    #[command(disable_help_flag = true)]
    Bench(BenchArgs),
}

// Everything after `bench`, for `otpgw-bench`.
#[derive(clap::Args)]
struct BenchArgs {
    /// The mode (sms, verify, transport, store) and its options.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "MODE AND OPTIONS"
    )]
    args: Vec<OsString>,
}

/// How a command reaches the running gateway: its HTTP address (default: from
/// `http.listen`, or `http.admin_listen` for the operations side's paths) and an API key (`OTPGW_API_KEY`, so it stays out of the
/// process list).
#[derive(clap::Args)]
struct Remote {
    #[arg(long)]
    url: Option<String>,
    #[arg(long, env = "OTPGW_API_KEY", hide_env_values = true)]
    key: String,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key file of new random keys at PATH (mode 0600), or keep and check
    /// the one there. Reads no configuration: run it once before the nodes start
    /// (deploy/compose.yaml does) and point every node at the file with
    /// `secrets.key_file`. Prints `{"path", "created"}`.
    Init { path: PathBuf },
}

#[derive(Subcommand)]
enum CodeCommand {
    /// Issue a code for a card and send it to the card's phone (POST /v1/codes);
    /// needs a `verifier` key. Prints the answer (never the code) as JSON.
    Send {
        /// The full card number; `-` reads it from standard input.
        #[arg(long)]
        pan: String,
        /// Idempotency key; a random one by default.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a code's delivery and state (GET /v1/codes/{id}); needs an `admin` key.
    Show {
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Enroll a token for a card. Without --serial: a software token; prints the
    /// first activation part (the second goes by SMS only from a running gateway
    /// with client mode: enroll software tokens over HTTP, or replace them over HTTP
    /// later, `POST /v1/tokens/{id}/replace`).
    /// With --serial: a hardware token whose secret (hex or base32) is read from
    /// standard input, never from the command line.
    Enroll {
        #[arg(long)]
        card: i64,
        #[command(flatten)]
        shape: TokenShape,
        #[arg(long)]
        serial: Option<String>,
    },
    /// Import a hardware token from the vendor's file: CSV lines
    /// `serial,secret[,algorithm,digits,period]` (secret hex or base32, `#` starts a
    /// comment); the line of --serial is enrolled for --card as a TOTP token.
    Import {
        #[arg(long)]
        card: i64,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// A card's tokens as JSON (never a secret).
    List {
        #[arg(long)]
        card: i64,
    },
    /// Suspend an active token.
    Suspend(TokenRef),
    /// Re-activate a suspended token.
    Reactivate(TokenRef),
    /// Revoke a token for good; its secret is wiped.
    Revoke(TokenRef),
    /// Replace a software token (a lost phone): revoke it and enroll a new one of
    /// the same shape for the same card; prints the new token and its first
    /// activation part. As with `enroll`, the SMS part goes only from a running
    /// gateway with client mode: here the activation reports `no_route`, and
    /// `POST /v1/tokens/{new id}/replace` sends a fresh pair. A hardware token is
    /// replaced by enrolling the new device.
    Replace {
        #[arg(long)]
        id: i64,
    },
    /// Resynchronise a TOTP token from two consecutive codes.
    Resync {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        first: String,
        #[arg(long)]
        second: String,
    },
}

#[derive(clap::Args)]
struct TokenShape {
    /// totp or ocra.
    #[arg(long, default_value = "totp")]
    kind: String,
    /// TOTP: sha1 (default), sha256, sha512.
    #[arg(long)]
    algorithm: Option<String>,
    #[arg(long)]
    digits: Option<u32>,
    #[arg(long)]
    period: Option<u32>,
    /// OCRA: the suite.
    #[arg(long)]
    suite: Option<String>,
}

#[derive(clap::Args)]
struct TokenRef {
    #[arg(long)]
    id: i64,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create an API key; it is printed once, only its hash is stored.
    Create {
        #[arg(long, value_parser = role_parser())]
        role: Role,
        #[arg(long)]
        label: Option<String>,
    },
    /// List API keys as JSON: id, role, label, created_at, revoked_at (never a key).
    List,
    /// Revoke an API key: refused at once on every node, its console sessions end.
    Revoke {
        #[arg(long)]
        id: i64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Bench(bench) = cli.command {
        // The load tool reads no gateway configuration.
        return run_bench(bench.args);
    }
    if let Command::Keys(KeysCommand::Init { path }) = &cli.command {
        // Before any configuration: the nodes' configuration names this file.
        let created = otpgw::config::init_key_file(path)?;
        println!("{}", serde_json::json!({"path": path, "created": created}));
        return Ok(());
    }
    if let Command::CheckConfig = cli.command {
        // Before logging is set up: this command's output is the configuration.
        let (settings, shown) = Settings::describe(cli.config.as_deref())?;
        settings.check_keys()?;
        print!("{shown}");
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    otpgw::telemetry::init_logging(&settings.log, matches!(cli.command, Command::Serve));
    let runtime = tokio::runtime::Runtime::new().context("Failed to start the async runtime")?;
    let config = cli.config.clone();
    let result = runtime.block_on(run(cli.command, settings, config));
    if let Err(e) = &result {
        // Keys that would split a cluster: a status of its own, so that a service
        // manager or an orchestrator can tell it from a passing fault.
        let keys = e
            .chain()
            .any(|c| matches!(c.downcast_ref(), Some(otpgw::app::AppError::Keys(_))));
        if keys {
            eprintln!("Error: {e:#}");
            std::process::exit(2);
        }
    }
    result
}

/// `otpgw bench …`: the `otpgw-bench` executable in this executable's directory takes
/// this process's place (exec) with the arguments unchanged, so its output, its
/// handling of Ctrl-C and its exit status are the command's own. Returns only when it
/// could not be started.
fn run_bench(args: Vec<OsString>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("Failed to find the otpgw executable")?;
    let tool = exe.with_file_name(format!("otpgw-bench{}", std::env::consts::EXE_SUFFIX));
    // argv[0] `otpgw bench`: the tool's usage lines then name the command as typed.
    let error = std::process::Command::new(&tool)
        .arg0("otpgw bench")
        .args(args)
        .exec();
    if error.kind() == std::io::ErrorKind::NotFound {
        let dir = tool.parent().unwrap_or(&tool).display();
        bail!(
            "`otpgw bench` runs the load tool otpgw-bench, which is not installed beside \
             otpgw: {} does not exist. Build it in the otpgw repository with `cargo build \
             --release -p otpgw-bench` and copy target/release/otpgw-bench into {dir} \
             (for a debug build of otpgw: `cargo build -p otpgw-bench`).",
            tool.display()
        );
    }
    Err(error).with_context(|| format!("Failed to run {}", tool.display()))
}

async fn run(command: Command, settings: Settings, config: Option<PathBuf>) -> Result<()> {
    match command {
        Command::Serve => Ok(otpgw::app::serve(settings, config).await?),
        Command::CheckConfig | Command::Keys(_) => unreachable!("answered in main"),
        Command::Migrate => {
            otpgw::app::migrate(&settings)
                .await
                .context("Failed to apply migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Backup { path } => {
            let check = otpgw::app::backup(&settings, &path).await?;
            if check.integrity != "ok" || !check.keys_match {
                bail!(
                    "the copy {} failed its check (integrity: {}, keys match: {}): do not rely on it",
                    path.display(),
                    check.integrity,
                    check.keys_match
                );
            }
            // The copy is useless without the keys: say where they are to be kept from.
            let keys = if settings.secrets.pan_key.is_some() {
                "secrets.pan_key and secrets.code_key".to_owned()
            } else {
                settings.key_file_path().display().to_string()
            };
            let out = serde_json::json!({"path": path, "bytes": check.bytes,
                "integrity": check.integrity, "keys_match": check.keys_match, "keys": keys});
            println!("{out}");
            Ok(())
        }
        Command::Card(cmd) => cli::card::run(cmd, settings).await,
        Command::Operator(cmd) => cli::operator::run(cmd, settings).await,
        Command::Token(cmd) => token(cmd, settings).await,
        Command::Status { remote, json } => {
            let answer = call(
                &settings,
                &remote,
                reqwest::Method::GET,
                "/v1/connections",
                None,
            )
            .await?;
            if json {
                println!("{answer}");
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                print!("{}", cli::status::render(&answer, now));
            }
            Ok(())
        }
        Command::Reload { remote } => {
            let answer = call(
                &settings,
                &remote,
                reqwest::Method::POST,
                "/v1/admin/reload",
                None,
            )
            .await?;
            println!("{answer}");
            Ok(())
        }
        Command::Code(CodeCommand::Send {
            pan,
            request_id,
            remote,
        }) => {
            let pan = read_pan_text(&pan)?;
            Pan::parse(&pan)?;
            let request_id = request_id.unwrap_or_else(|| format!("cli-{:016x}", rand_id()));
            let body = serde_json::json!({"pan": pan.trim(), "request_id": request_id});
            let json = call(
                &settings,
                &remote,
                reqwest::Method::POST,
                "/v1/codes",
                Some(body),
            )
            .await?;
            println!("{json}");
            Ok(())
        }
        Command::Code(CodeCommand::Show { id, remote }) => {
            let json = call(
                &settings,
                &remote,
                reqwest::Method::GET,
                &format!("/v1/codes/{id}"),
                None,
            )
            .await?;
            println!("{json}");
            Ok(())
        }
        Command::Bench(_) => unreachable!("bench runs before the settings are loaded"),
        Command::Apikey(ApikeyCommand::Create { role, label }) => {
            let core = otpgw::app::build_core(&settings).await?;
            let (id, key) = core
                .access
                .create_key(role, label.as_deref(), "cli", None)
                .await?;
            println!(
                "{}",
                serde_json::json!({"id": id, "role": role.as_str(), "key": key})
            );
            eprintln!("Store this key now: it cannot be shown again.");
            Ok(())
        }
        Command::Apikey(ApikeyCommand::List) => {
            let core = otpgw::app::build_core(&settings).await?;
            let keys = core.access.keys().await?;
            println!("{}", list_json::<ApiKeyView, _>(keys)?);
            Ok(())
        }
        Command::Apikey(ApikeyCommand::Revoke { id }) => {
            let core = otpgw::app::build_core(&settings).await?;
            let info = core
                .access
                .revoke(id, "cli")
                .await
                .with_context(|| format!("Failed to revoke API key {id}"))?;
            println!("{}", serde_json::to_value(ApiKeyView::from(info))?);
            Ok(())
        }
    }
}

/// `--role`: one of the roles' names, as the API and the database spell them.
fn role_parser() -> impl clap::builder::TypedValueParser<Value = Role> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Role::ALL.iter().map(|r| r.as_str()))
        .map(|name| Role::parse(&name).unwrap_or(Role::Verifier))
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// One request to the running gateway's API; the JSON answer, or its error body
/// as the error.
async fn call(
    settings: &Settings,
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let base = match &remote.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            // The operations side (status, reload) has a listener of its own when
            // `http.admin_listen` is set; the public one answers its paths 404.
            let listen = match &settings.http.admin_listen {
                Some(admin) if otpgw::http::is_operations_path(path) => admin,
                _ => &settings.http.listen,
            };
            let listen = listen
                .replace("0.0.0.0", "127.0.0.1")
                .replace("[::]", "[::1]");
            format!("http://{listen}")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("Failed to build the HTTP client")?;
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(&remote.key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("Failed to reach the gateway at {base}"))?;
    let status = response.status();
    let json: serde_json::Value = response
        .json()
        .await
        .context("The gateway's answer is not JSON")?;
    if !status.is_success() {
        bail!("the gateway answered {status}: {json}");
    }
    Ok(json)
}

async fn token(cmd: TokenCommand, settings: Settings) -> Result<()> {
    use otpgw::core::ports::TokenChange;
    use otpgw::core::TokenRequest;
    use otpgw_rules::tokens::{Hash, TokenKind};
    let core = otpgw::app::build_core(&settings).await?;
    let hash = |a: Option<&str>| -> Result<Option<Hash>> {
        a.map(|a| Hash::parse(a).context("algorithm must be sha1, sha256 or sha512"))
            .transpose()
    };
    let json = match cmd {
        TokenCommand::Enroll {
            card,
            shape,
            serial,
        } => {
            let secret = match &serial {
                Some(_) => Some(stdin_line("the token's secret")?.trim().to_owned()),
                None => None,
            };
            let request = TokenRequest {
                kind: Some(TokenKind::parse(&shape.kind).context("kind must be totp or ocra")?),
                algorithm: hash(shape.algorithm.as_deref())?,
                digits: shape.digits,
                period: shape.period,
                suite: shape.suite.as_deref(),
                serial: serial.as_deref(),
                secret: secret.as_deref(),
            };
            serde_json::to_value(EnrolledTokenView::from(
                core.tokens.enroll(card, &request, "cli").await?,
            ))?
        }
        TokenCommand::Import { card, serial, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("Failed to read {}", file.display()))?;
            let line = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .find(|l| l.split(',').next().map(str::trim) == Some(serial.as_str()))
                .context("no line for this serial in the file")?;
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let number = |i: usize| -> Result<Option<u32>> {
                fields
                    .get(i)
                    .filter(|f| !f.is_empty())
                    .map(|f| f.parse().context("digits and period must be numbers"))
                    .transpose()
            };
            let request = TokenRequest {
                kind: Some(TokenKind::Totp),
                algorithm: hash(fields.get(2).copied().filter(|f| !f.is_empty()))?,
                digits: number(3)?,
                period: number(4)?,
                suite: None,
                serial: Some(&serial),
                secret: Some(
                    fields
                        .get(1)
                        .copied()
                        .context("no secret on the serial's line")?,
                ),
            };
            serde_json::to_value(EnrolledTokenView::from(
                core.tokens.enroll(card, &request, "cli").await?,
            ))?
        }
        TokenCommand::List { card } => list_json::<TokenView, _>(core.tokens.of_card(card).await?)?,
        TokenCommand::Suspend(r) => serde_json::to_value(TokenView::from(
            core.tokens
                .change(r.id, TokenChange::Suspend, "cli", r.reason.as_deref())
                .await?,
        ))?,
        TokenCommand::Reactivate(r) => serde_json::to_value(TokenView::from(
            core.tokens
                .change(r.id, TokenChange::Reactivate, "cli", r.reason.as_deref())
                .await?,
        ))?,
        TokenCommand::Revoke(r) => serde_json::to_value(TokenView::from(
            core.tokens
                .change(r.id, TokenChange::Revoke, "cli", r.reason.as_deref())
                .await?,
        ))?,
        TokenCommand::Replace { id } => serde_json::to_value(EnrolledTokenView::from(
            core.tokens.replace(id, "cli").await?,
        ))?,
        TokenCommand::Resync { id, first, second } => serde_json::to_value(TokenView::from(
            core.tokens.resync(id, &first, &second, "cli").await?,
        ))?,
    };
    println!("{json}");
    Ok(())
}

// jemalloc gives freed memory back to the system (glibc's arenas kept the memory of
// 10,000 closed SMPP sessions: 13 MB at start, 69 MB after they came and went).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: background threads return freed pages within a second or so,
/// even when the process is idle and allocates nothing that would trigger it.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";
