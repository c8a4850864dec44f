//! Start-up and shutdown. `App::build` connects the store (running migrations),
//! loads the keys, builds the core and binds both listeners, keeping the real bound
//! addresses (tests bind port 0). `run_until_stopped` serves until the cancellation
//! token fires, then stops accepting, unbinds SMPP sessions, lets in-flight HTTP
//! requests finish and closes the pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ConfigError, Settings};
use crate::core::{Clock, Core, DomainError, Ports, SystemClock};
use crate::http::{self, AppState};
use crate::replies::{Replies, Routes};
use crate::smpp;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] DomainError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// The store and core, migrated and ready: what `serve` and every CLI command share.
pub async fn build_core(settings: &Settings) -> Result<Core, AppError> {
    Ok(build(settings, Arc::new(SystemClock)).await?.0)
}

/// The core on its store, with the clock given (tests move a `HandClock`), and the
/// store itself for what only start-up code does with it (readiness, closing).
pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<(Core, Store), AppError> {
    let store = Store::connect(&settings.database).await?;
    check_keys_match_database(settings, &store).await?;
    let keys = settings.keys()?;
    store.migrate().await?;
    let core = Core::new(Ports::of(store.clone()), keys, settings, clock);
    Ok((core, store))
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
    smpp: TcpListener,
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
            smpp,
        })
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn smpp_addr(&self) -> std::io::Result<SocketAddr> {
        self.smpp.local_addr()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let tracker = TaskTracker::new();
        let http_addr = self.http_addr()?;
        let smpp_addr = self.smpp_addr()?;
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
        let state = AppState {
            core: self.core.clone(),
            metrics: crate::telemetry::init_metrics(),
            readiness: Arc::new(self.store.clone()),
            links: Arc::new(smpp::LinkBoard {
                operators,
                listener_sessions: smpp_server.bound_sessions(),
            }),
            smpp_listening: true,
        };
        let router = http::router(
            state,
            Duration::from_secs(self.settings.http.request_timeout_secs),
            self.settings.http.console,
        );
        let (http_shutdown, http_settings) = (shutdown.clone(), self.settings.http.clone());
        tracker.spawn(async move {
            http::server::run(self.http, router, &http_settings, http_shutdown).await
        });

        let smpp_task = tracker.spawn(smpp_server.run(self.smpp, shutdown.clone()));
        let (core, stop) = (self.core.clone(), shutdown.clone());
        tracker.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = every.tick() => core.housekeeping().await,
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
