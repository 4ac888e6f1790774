//! Building and running a node: open the database, run migrations, load the agencies, bind the
//! listeners, start the background jobs.
//!
//! ```text
//!  App::build ──► Db::open_waiting ─► migrations ─► agencies sync
//!            (retries a database not answering yet, up to `database.start_timeout_secs`)
//!            └──► HttpServer (public API and web console) on `http.listen` (port 0 allowed: see `port()`)
//!            └──► SLA sweep every `sla.sweep_interval_secs`
//!            └──► with `[sms]`: the Kannel endpoint on the public listener, the SMS sender
//! ```

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App as ActixApp, HttpServer, web};

use crate::api::limits::Limits;
use crate::api::{self, ApiState};
use crate::auth::Auth;
use crate::config::Settings;
use crate::db::{Db, migrations};
use crate::domain::Timestamp;
use crate::metrics::Metrics;
use crate::tickets::Tickets;
use crate::tickets::store as ticket_store;

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened.
    #[error(transparent)]
    Connect(#[from] crate::db::ConnectError),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] migrations::MigrationError),
    /// A database step failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The signing key could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] crate::event_log::keys::KeysError),
    /// Federation set-up (certificates, client) failed.
    #[error("federation: {0}")]
    Federation(String),
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: String,
        /// The IO error.
        cause: std::io::Error,
    },
}

/// A node's database, migrated, in a new temporary directory (SQLite): for unit tests.
#[cfg(test)]
pub(crate) fn temp_database() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let settings = Settings::from_toml(&format!(
        "[node]\nid = \"prov-31.lapor.test\"\nprovince = \"31\"\ndata_dir = {:?}\n",
        dir.path()
    ))
    .expect("test settings");
    let db = open_database(&settings).expect("test database");
    (dir, db)
}

/// Opens the database — waiting for it up to `database.start_timeout_secs`, logging each
/// failed attempt — and brings its schema and agencies up to date.
pub fn open_database(settings: &Settings) -> Result<Db, StartError> {
    let db = Db::open_waiting(
        &settings.database,
        &settings.raw.database.options(),
        Duration::from_secs(settings.raw.database.start_timeout_secs),
    )?;
    let db = match &settings.statistics_database {
        Some(replica) => {
            tracing::info!(replica = %replica.describe(), "statistics read from a replica");
            db.with_statistics(replica, &settings.raw.database.options())
        }
        None => db,
    };
    let applied = db.with_writer(migrations::run_pending)??;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "migrations applied");
    }
    let agencies = settings.agencies.clone();
    db.write(move |c| {
        ticket_store::sync_agencies(c, &agencies)?;
        crate::federation::roster_store::reapply_agencies(c)
    })?;
    let version = crate::hub::STATISTICS_MIGRATION.replace('-', "");
    if applied
        .iter()
        .any(|m| m.replace('-', "").starts_with(&version))
    {
        fill_statistics(&db, settings)?;
    }
    Ok(db)
}

/// After the migration that adds the statistics, tickets stored before have no cells (and no
/// milestones): refold them once, so every later change subtracts cells that were added.
fn fill_statistics(db: &Db, settings: &Settings) -> Result<(), StartError> {
    use diesel::prelude::*;
    let held: i64 = {
        let mut c = db.read()?;
        crate::db::schema::tickets::table
            .count()
            .get_result(&mut c)
            .map_err(crate::db::DbError::from)?
    };
    if held == 0 {
        return Ok(());
    }
    let province = settings.raw.node.province.clone();
    let done = db.write(move |c| {
        ticket_store::rebuild(c, &province)
            .map_err(|e| crate::db::DbError::Unavailable(format!("statistics rebuild: {e}")))
    })?;
    tracing::info!(
        tickets = done.tickets,
        events = done.events,
        "statistics filled for the tickets stored before them"
    );
    Ok(())
}

/// How a node stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Finish the requests in progress (up to the shutdown timeout), then stop.
    Graceful,
    /// Drop every connection at once, as a crash would (requests in progress get no answer;
    /// what the database committed stays).
    Immediate,
}

/// A running node.
pub struct App {
    port: u16,
    server: Server,
    federation: Option<(crate::federation::Federation, Server, u16)>,
    state: ApiState,
    sweep_every: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Opens the database and binds the listeners (nothing runs until [`App::run_until_stopped`]).
    pub fn build(settings: &Settings) -> Result<Self, StartError> {
        let db = open_database(settings)?;
        let key =
            crate::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())?;
        let metrics = std::sync::Arc::new(Metrics::new());
        let federation = crate::federation::Federation::new(settings, db.clone(), metrics.clone())
            .map_err(|e| StartError::Federation(e.to_string()))?;
        let tickets = Tickets::new_in(
            db.clone(),
            settings,
            key,
            federation.as_ref().map(|f| f.members().clone()),
        )?;
        tickets.count_into(metrics.clone());
        let sms = match settings.raw.sms.clone() {
            Some(s) => Some(crate::sms::Sms::new(
                tickets.clone(),
                settings,
                s,
                metrics.clone(),
            )?),
            None => None,
        };
        let state = ApiState {
            auth: Auth::new(db, settings.raw.auth.token_ttl_minutes),
            tickets,
            metrics: metrics.clone(),
            limits: std::sync::Arc::new(Limits::new(settings, metrics.clone())),
            federation: federation.clone(),
            sms: sms.clone(),
        };
        let federation = match federation {
            Some(f) => Some(federation_server(f)?),
            None => None,
        };
        let limit = settings.raw.http.max_body_bytes;
        let addr = settings.raw.http.listen;
        let listener = TcpListener::bind(addr).map_err(|cause| StartError::Bind {
            addr: addr.to_string(),
            cause,
        })?;
        let port = listener
            .local_addr()
            .map_err(|cause| StartError::Bind {
                addr: addr.to_string(),
                cause,
            })?
            .port();
        let data = web::Data::new(state.clone());
        let console = web::Data::new(crate::web::Console::new(settings));
        let server = HttpServer::new(move || {
            ActixApp::new()
                .app_data(data.clone())
                .app_data(console.clone())
                .app_data(web::Data::from(metrics.clone()))
                .app_data(api::json_config(limit, metrics.clone()))
                .app_data(api::query_config(metrics.clone()))
                .app_data(web::PayloadConfig::new(limit))
                .wrap(actix_web::middleware::from_fn(crate::metrics::track))
                .wrap(api::security_headers())
                .configure(|cfg| {
                    // The Kannel endpoint, when the node has an SMS channel.
                    if let Some(sms) = &sms {
                        cfg.app_data(web::Data::new(sms.clone()));
                        crate::sms::http::routes(cfg);
                    }
                })
                .configure(api::routes)
                .configure(crate::web::routes)
        })
        .workers(settings.raw.http.worker_count())
        .listen(listener)
        .map_err(|cause| StartError::Bind {
            addr: addr.to_string(),
            cause,
        })?
        .disable_signals()
        .run();
        tracing::info!(node = %settings.node_id(), port, database = %settings.database.describe(), "node listening");
        Ok(Self {
            port,
            server,
            federation,
            state,
            sweep_every: Duration::from_secs(settings.raw.sla.sweep_interval_secs),
        })
    }

    /// The public API's bound port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The federation listener's bound port, when federated.
    #[must_use]
    pub fn federation_port(&self) -> Option<u16> {
        self.federation.as_ref().map(|f| f.2)
    }

    /// The federation side, when federated (tests drive delivery through it).
    #[must_use]
    pub fn federation(&self) -> Option<&crate::federation::Federation> {
        self.federation.as_ref().map(|f| &f.0)
    }

    /// The handler state (tests drive commands through it).
    #[must_use]
    pub const fn state(&self) -> &ApiState {
        &self.state
    }

    /// Serves until Ctrl-C / SIGTERM, running the SLA sweep in the background.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(async {
            let _ = shutdown_signal().await;
            Stop::Graceful
        })
        .await
    }

    /// Serves until `stop` completes, running the SLA sweep (and, when federated, the delivery
    /// and catch-up workers) in the background.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = Stop> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let tickets = self.state.tickets.clone();
        let every = self.sweep_every;
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if tickets.hold().is_on() {
                    continue; // a restored node writes nothing until it has its own chain back
                }
                // A stop does not wait for a sweep under way beyond `serve`'s shutdown timeout:
                // each ticket is its own transaction, so a sweep cut off is simply not done.
                let t = tickets.clone();
                match tokio::task::spawn_blocking(move || t.sla_sweep(Timestamp::now(), 10_000))
                    .await
                {
                    Ok(Ok(s)) if s.breaches + s.closed > 0 => {
                        tracing::info!(breaches = s.breaches, closed = s.closed, "sla sweep");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "sla sweep failed"),
                    Err(e) => tracing::error!(error = %e, "sla sweep task failed"),
                }
            }
        });
        let sms_sender = match &self.state.sms {
            Some(sms) if sms.settings().worker => match crate::sms::sender::Sender::new(sms) {
                Ok(sender) => Some(tokio::spawn(sender.run())),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the SMS sender; messages stay queued");
                    None
                }
            },
            _ => None,
        };
        let server = self.server;
        let hold = self.state.tickets.hold().clone();
        if hold.is_on() {
            tracing::warn!(
                reason = hold.reason().unwrap_or_default(),
                "restored node: writes held"
            );
            if self.federation.is_none() {
                tracing::warn!(
                    "restored node is not federated: nobody holds its later events; writing again"
                );
                if let Err(e) = hold.release() {
                    tracing::error!(error = %e, "cannot remove the restore marker");
                }
            }
        }
        let (fed_server, fed_handle, workers) = match self.federation {
            Some((fed, srv, _)) => {
                let h = srv.handle();
                let workers = fed.settings().workers.then(|| {
                    let health = health_job(&self.state, &fed);
                    let run = fed.clone().run();
                    let recover = recovery_job(&fed, &hold);
                    tokio::spawn(async move {
                        tokio::join!(recover, run, health);
                    })
                    .abort_handle()
                });
                (Some(srv), Some(h), workers)
            }
            None => (None, None, None),
        };
        let stop_workers = workers.clone();
        let stop = async move {
            let graceful = matches!(stop.await, Stop::Graceful);
            tracing::info!(graceful, "shutting down");
            if let Some(w) = stop_workers {
                w.abort();
            }
            // A graceful stop waits for requests in flight, never longer than this: then the
            // listeners stop at once (a request stuck on a dead peer or a blocked task must not
            // hold the node up).
            let bounded = |h: actix_web::dev::ServerHandle| async move {
                if tokio::time::timeout(STOP_GRACE, h.stop(graceful))
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        secs = STOP_GRACE.as_secs(),
                        "graceful stop took too long; stopping at once"
                    );
                    h.stop(false).await;
                }
            };
            if let Some(h) = fed_handle {
                bounded(h).await;
            }
            bounded(handle).await;
        };
        let fed_run = async move {
            match fed_server {
                Some(s) => s.await,
                None => Ok(()),
            }
        };
        let (res, fed_res, ()) = tokio::join!(server, fed_run, stop);
        sweeper.abort();
        if let Some(s) = sms_sender {
            s.abort();
        }
        if let Some(w) = workers {
            w.abort();
        }
        res.and(fed_res)
    }
}

/// A restored node's recovery: rounds every 5 s until its own chain is back and the hold is
/// released (nothing to do when the node was not restored). Stopped with the workers.
fn recovery_job(
    fed: &crate::federation::Federation,
    hold: &crate::event_log::hold::Hold,
) -> impl std::future::Future<Output = ()> + use<> {
    let (f, hold) = (fed.clone(), hold.clone());
    async move {
        while hold.is_on() {
            if let Err(e) = f.recover_own_chain(&hold, true).await {
                tracing::warn!(error = %e, "restore recovery round failed");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// Binds the federation listener: rustls with a required client certificate from the
/// federation CA, the peer's node id taken from it on connect, `TCP_NODELAY` set on every accepted connection
/// (in [`crate::tls::identity::on_connect`]).
fn federation_server(
    fed: crate::federation::Federation,
) -> Result<(crate::federation::Federation, Server, u16), StartError> {
    let s = fed.settings().clone();
    let files = crate::tls::config::TlsFiles {
        ca: s.ca_file.clone(),
        cert: s.cert_file.clone(),
        key: s.key_file.clone(),
    };
    let tls = crate::tls::config::server_config_with(&files, fed.members().policy())
        .map_err(|e| StartError::Federation(e.to_string()))?;
    let bind_err = |cause| StartError::Bind {
        addr: s.listen.to_string(),
        cause,
    };
    let listener = TcpListener::bind(s.listen).map_err(bind_err)?;
    let port = listener.local_addr().map_err(bind_err)?.port();
    let data = web::Data::new(fed.member().clone());
    let server = HttpServer::new(move || {
        ActixApp::new()
            .app_data(data.clone())
            .wrap(api::security_headers())
            .wrap(actix_web::middleware::from_fn(
                crate::federation::server::roster_version,
            ))
            .configure(crate::federation::server::routes)
    })
    .on_connect(crate::tls::identity::on_connect)
    .shutdown_timeout(5)
    // Behind a slow link a full queue delays the handshake, the request head and the next
    // request on a kept-alive connection by many seconds: these fit the slowest link.
    .keep_alive(Duration::from_secs(s.link_timeout_secs))
    .tls_handshake_timeout(Duration::from_secs(s.link_timeout_secs))
    .client_request_timeout(Duration::from_secs(s.link_timeout_secs))
    .client_disconnect_timeout(Duration::from_secs(5))
    .listen_rustls_0_23(listener, tls)
    .map_err(bind_err)?
    .disable_signals()
    .run();
    tracing::info!(node = %fed.node(), port, "federation listener (mTLS)");
    Ok((fed, server, port))
}

/// The federation-health job beside delivery: on a province under a hub, the status sender
/// (`federation::status_send`); on the hub, the alert job (`hub::watch::run_alerts`).
fn health_job(
    state: &ApiState,
    fed: &crate::federation::Federation,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    if !fed.is_hub(fed.node()) {
        // `run_status` returns at once on a node without a hub among its peers.
        Box::pin(fed.clone().run_status(state.tickets.signing_key().clone()))
    } else {
        let scope = crate::hub::watch::Scope {
            me: state.tickets.node().clone(),
            holds_all: true,
            federation: Some(fed.settings().clone()),
            members: Some(fed.members().clone()),
            escalate: state.tickets.hub_settings().clone(),
        };
        Box::pin(crate::hub::watch::run_alerts(
            state.tickets.db().clone(),
            scope,
            state.metrics.clone(),
        ))
    }
}

/// The longest a graceful stop waits for requests in flight.
const STOP_GRACE: Duration = Duration::from_secs(15);

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
