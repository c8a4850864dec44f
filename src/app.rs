//! Start-up and shutdown. `App::build` connects the store (running migrations),
//! loads the keys, builds the core and binds the listeners (SMPP, HTTP, and the
//! HTTP operations side's own when `http.admin_listen` is set), keeping the real
//! bound addresses (tests bind port 0). `run_until_stopped` serves until the cancellation
//! token fires, then stops accepting, unbinds SMPP sessions, lets in-flight HTTP
//! requests finish and closes the pool; `signals.rs` fires it on SIGTERM or Ctrl-C.
//! Start-up also refuses keys that would split a cluster (their fingerprints), and
//! CLI commands a database that does not exist.

mod reload;
mod signals;

pub use reload::Reloader;
pub use signals::serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ConfigError, Settings};
use crate::core::ports::{IdentityProvider, SimSwapCheck};
use crate::core::reload::Reload;
use crate::core::{Clock, Core, DomainError, Ports, SystemClock};
use crate::http::{self, AppState};
use crate::oidc::OidcClient;
use crate::replies::{Replies, Routes};
use crate::simswap::CamaraSimSwap;
use crate::smpp;
use crate::store::{BackupCheck, Store};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] DomainError),
    /// Keys that would split a cluster or protect nothing: exit status 2.
    #[error("{0}")]
    Keys(String),
    /// A CLI command pointed at a database that does not exist.
    #[error("{0}")]
    NoDatabase(String),
    /// A command this backend does not do (with what to use instead).
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    SimSwap(#[from] crate::simswap::SetupError),
    #[error(transparent)]
    Oidc(#[from] crate::oidc::SetupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// The store and core for a CLI command, on a database that already exists: a
/// command run in the wrong directory (or with a mistyped URL) must fail, not
/// quietly create a database and a key file and enroll a card there.
pub async fn build_core(settings: &Settings) -> Result<Core, AppError> {
    Ok(open_existing(settings).await?.0)
}

/// `otpgw backup PATH`: a consistent copy of the embedded SQLite database, taken
/// while the gateway runs, checked on the copy (integrity, and the keys that open
/// the database open the copy). On PostgreSQL the database's own tools do this.
pub async fn backup(settings: &Settings, to: &std::path::Path) -> Result<BackupCheck, AppError> {
    if crate::config::sqlite_path(&settings.database.url).is_none() {
        return Err(AppError::Unsupported(
            "otpgw backup copies the embedded SQLite database; on PostgreSQL use pg_dump, or \
             continuous archiving for point-in-time recovery, and keep secrets.pan_key and \
             secrets.code_key with the backup: it is useless without them"
                .into(),
        ));
    }
    let (_, store) = open_existing(settings).await?;
    let check = store.backup_to(to).await;
    store.close().await;
    Ok(check?)
}

async fn open_existing(settings: &Settings) -> Result<(Core, Store), AppError> {
    let missing = || {
        AppError::NoDatabase(format!(
            "the database {} does not exist: run this command where the gateway runs (or \
             with its --config), or create the database with `otpgw migrate` first",
            settings.redacted().database.url
        ))
    };
    if let Some(path) = crate::config::sqlite_path(&settings.database.url) {
        if !path.exists() {
            return Err(missing());
        }
    }
    let store = Store::connect(&settings.database).await?;
    if store.is_new().await? {
        store.close().await;
        return Err(missing());
    }
    open(settings, store, Arc::new(SystemClock)).await
}

/// The core on its store, with the clock given (tests move a `HandClock`), and the
/// store itself for what only start-up code does with it (readiness, closing).
pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<(Core, Store), AppError> {
    // A serving node keeps cards and keys in memory and hears other nodes' changes
    // (PostgreSQL); one-off commands (`open_existing`) read everything afresh.
    let store = Store::connect(&settings.database)
        .await?
        .follow_changes(&settings.database, settings.cluster.card_cache_ms);
    open(settings, store, clock).await
}

async fn open(
    settings: &Settings,
    store: Store,
    clock: Arc<dyn Clock>,
) -> Result<(Core, Store), AppError> {
    check_keys_match_database(settings, &store).await?;
    let keys = settings.keys()?;
    if let Some(name) = keys.published() {
        return Err(AppError::Keys(format!(
            "secrets.{name} is a published example key (or one byte repeated), which \
             protects nothing: generate each key with `openssl rand -hex 32`"
        )));
    }
    store.migrate().await?;
    check_fingerprints(settings, &keys, &store, clock.now_ms()).await?;
    let mut ports = Ports::of(store.clone());
    if let Some(sim_swap) = &settings.sim_swap {
        let check: Arc<dyn SimSwapCheck> = CamaraSimSwap::new(sim_swap)?;
        ports.sim_swap = Some(check);
    }
    if let (Some(oidc), Some(base)) = (&settings.console.oidc, settings.console.public_base()) {
        let provider: Arc<dyn IdentityProvider> = OidcClient::new(oidc, base)?;
        ports.identity = Some(provider);
    }
    let core = Core::new(ports, keys, settings, clock);
    Ok((core, store))
}

/// The first start on a database records its keys' fingerprints; every later start,
/// on any node, must bring the same keys. Different keys would make this node count
/// the others' codes as wrong (locking customers out), miss every enrolled card and
/// enroll a second row for the same card.
async fn check_fingerprints(
    settings: &Settings,
    keys: &otpgw_rules::codes::Keys,
    store: &Store,
    now: i64,
) -> Result<(), AppError> {
    let mine = keys.fingerprints();
    let held = store.key_fingerprints(&mine, now).await?;
    let differ: Vec<&str> = mine
        .iter()
        .filter(|(name, fp)| !held.iter().any(|(n, f)| n == name && f == fp))
        .map(|(name, _)| *name)
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(AppError::Keys(format!(
        "this node's {} differ from the keys the database {} was first started with: \
         start every node on this database with the same secrets.pan_key and \
         secrets.code_key (or key file)",
        differ.join(" and "),
        settings.redacted().database.url
    )))
}

/// Applies the migrations this build knows and closes the database (`otpgw migrate`).
pub async fn migrate(settings: &Settings) -> Result<(), AppError> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    store.close().await;
    Ok(())
}

/// On SQLite the key file lives beside the database and is created with it, so one
/// without the other means something was lost: a key file beside a brand-new database
/// (the database file, or its `-wal`, was deleted), or enrolled cards and no key file
/// (the keys were lost). Serving then would silently forget every card, or
/// enroll new ones under keys nobody backed up. Refuse, and say so.
async fn check_keys_match_database(settings: &Settings, store: &Store) -> Result<(), AppError> {
    let inline = settings.secrets.pan_key.is_some() || settings.secrets.code_key.is_some();
    if inline || crate::config::sqlite_path(&settings.database.url).is_none() {
        return Ok(());
    }
    let key_file = settings.key_file_path();
    let new_database = store.is_new().await?;
    if key_file.exists() && new_database && !settings.secrets.allow_new_database {
        return Err(ConfigError::Invalid(format!(
            "the key file {} exists but the database {} is brand new (no migrations applied): \
             was the database (or its -wal file) lost? Restore it from backup; to start a new \
             database with these keys on purpose, set secrets.allow_new_database = true",
            key_file.display(),
            settings.database.url
        ))
        .into());
    }
    if !key_file.exists() && !new_database && store.has_cards().await? {
        return Err(ConfigError::Invalid(format!(
            "the database {} has data but the key file {} is missing: restore the key file \
             from backup (a new key would find none of the enrolled cards)",
            settings.database.url,
            key_file.display()
        ))
        .into());
    }
    Ok(())
}

pub struct App {
    settings: Settings,
    core: Core,
    store: Store,
    http: TcpListener,
    /// The operations side's listener (`http.admin_listen`), if apart.
    admin: Option<TcpListener>,
    smpp: TcpListener,
    /// The file a reload reads again (none: the embedded defaults and environment).
    config_file: Option<PathBuf>,
    /// SIGHUP, installed before start-up; each one reloads.
    hangups: Option<tokio::signal::unix::Signal>,
}

async fn bind(addr: &str) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

impl App {
    pub async fn build(settings: Settings) -> Result<Self, AppError> {
        let (core, store) = build(&settings, Arc::new(SystemClock)).await?;
        let http = bind(&settings.http.listen).await?;
        let admin = match &settings.http.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let smpp = bind(&settings.smpp.listen).await?;
        for peer in &settings.smpp.peers {
            if peer.system_id == "test" && peer.password.expose() == "test" {
                tracing::warn!("SMPP peer test/test is accepted (embedded default, loopback only): configure real peers for production");
            }
        }
        if settings.smpp.peers.is_empty() {
            tracing::warn!("no SMPP peers configured: no one can bind");
        }
        Ok(Self {
            settings,
            core,
            store,
            http,
            admin,
            smpp,
            config_file: None,
            hangups: None,
        })
    }

    /// Where a reload reads the configuration again, and the SIGHUPs that ask for
    /// one (`POST /v1/admin/reload` asks too).
    pub fn reloading(
        mut self,
        file: Option<PathBuf>,
        hangups: Option<tokio::signal::unix::Signal>,
    ) -> Self {
        self.config_file = file;
        self.hangups = hangups;
        self
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The operations listener's address, when `http.admin_listen` is set.
    pub fn admin_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.admin.as_ref().map(TcpListener::local_addr).transpose()
    }

    pub fn smpp_addr(&self) -> std::io::Result<SocketAddr> {
        self.smpp.local_addr()
    }

    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) -> Result<(), AppError> {
        let tracker = TaskTracker::new();
        let http_addr = self.http_addr()?;
        let smpp_addr = self.smpp_addr()?;
        // Logged before the other two: whoever waits for those knows this one too.
        if let Some(addr) = self.admin_addr()? {
            tracing::info!(addr = %addr, "admin listening");
        }
        tracing::info!(addr = %http_addr, "http listening");
        tracing::info!(addr = %smpp_addr, "smpp listening");

        // The one way out for both directions; the core hands it pushed codes.
        let routes = Routes::new(&self.settings.smpp.connections);
        let replies = Replies::new(routes, self.core.clock());
        self.core.set_outbound(Arc::new(replies.clone()));
        tracker.spawn(crate::replies::run(
            replies.clone(),
            self.core.delivery.clone(),
            self.settings.service.sender_id.clone(),
            shutdown.clone(),
        ));
        let operators = (!self.settings.smpp.connections.is_empty()).then(|| {
            smpp::client::Operators::new(
                self.core.clone(),
                replies.clone(),
                self.settings.smpp.clone(),
                self.settings.service.clone(),
            )
        });
        if let Some(ops) = &operators {
            tracker.spawn(ops.clone().run(shutdown.clone()));
            tracing::info!(
                connections = self.settings.smpp.connections.len(),
                "client mode: binding to operator SMSCs"
            );
        }
        let smpp_server = smpp::Server::new(
            self.core.clone(),
            replies,
            self.settings.smpp.clone(),
            self.settings.service.clone(),
        );
        let reloader: Arc<dyn Reload> = Arc::new(Reloader::new(
            self.config_file.clone(),
            self.settings.clone(),
            self.core.clone(),
            smpp_server.peers(),
            operators.clone(),
        ));
        if let Some(hangups) = self.hangups.take() {
            tracker.spawn(signals::answer_hangups(
                hangups,
                reloader.clone(),
                shutdown.clone(),
            ));
        }
        let bad_keys = Arc::new(http::BadKeys::new(self.settings.http.bad_keys_per_ip));
        let state = AppState {
            core: self.core.clone(),
            metrics: crate::telemetry::init_metrics(),
            readiness: Arc::new(self.store.clone()),
            links: Arc::new(smpp::LinkBoard {
                operators,
                listener_sessions: smpp_server.bound_sessions(),
            }),
            smpp_listening: true,
            bad_keys: bad_keys.clone(),
            reload: Some(reloader),
            zone: self.settings.console.zone(),
        };
        let timeout = Duration::from_secs(self.settings.http.request_timeout_secs);
        let console = self.settings.http.console;
        let listeners = match self.admin {
            None => vec![(self.http, http::Side::Both)],
            Some(admin) => vec![
                (self.http, http::Side::Public),
                (admin, http::Side::Operations),
            ],
        };
        // Each listener has its own connection caps: a flood on the public one
        // takes no place of the operations one.
        for (listener, side) in listeners {
            let router = http::router_for(side, state.clone(), timeout, console);
            let (http_shutdown, http_settings) = (shutdown.clone(), self.settings.http.clone());
            tracker.spawn(async move {
                http::server::run(listener, router, &http_settings, http_shutdown).await
            });
        }

        let smpp_task = tracker.spawn(smpp_server.run(self.smpp, shutdown.clone()));
        let (core, stop) = (self.core.clone(), shutdown.clone());
        tracker.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = every.tick() => {
                        core.housekeeping().await;
                        bad_keys.sweep();
                    }
                }
            }
        });
        tracker.close();

        shutdown.cancelled().await;
        tracing::info!("shutting down: no new connections; unbinding SMPP sessions");
        let deadline = Duration::from_secs(10);
        if tokio::time::timeout(deadline, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown deadline passed with work still running");
        }
        drop(smpp_task);
        self.core.delivery.flush().await;
        // Whatever this node claimed and did not send is any node's again now.
        self.core.delivery.release().await;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}
