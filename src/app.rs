//! Building and running a node: open the database, run migrations, load the agencies, bind the
//! listeners, start the background jobs.
//!
//! ```text
//!  App::build ──► Db::open ─► migrations ─► agencies sync
//!            └──► HttpServer (public API) on `http.listen` (port 0 allowed: see `port()`)
//!            └──► SLA sweep every `sla.sweep_interval_secs`
//! ```

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App as ActixApp, HttpResponse, HttpServer, web};

use crate::config::Settings;
use crate::db::{Db, migrations};
use crate::domain::Timestamp;
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
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: String,
        /// The IO error.
        cause: std::io::Error,
    },
}

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Ticket commands and queries.
    pub tickets: Tickets,
}

/// Opens the database and brings its schema and agencies up to date.
pub fn open_database(settings: &Settings) -> Result<Db, StartError> {
    let db = Db::open(&settings.database, settings.raw.database.pool_size)?;
    let applied = db.with_writer(migrations::run_pending)??;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "migrations applied");
    }
    db.write(|c| {
        ticket_store::sync_agencies(c, &settings.agencies).map_err(crate::db::DbError::from)
    })?;
    Ok(db)
}

/// A running node.
pub struct App {
    port: u16,
    server: Server,
    state: AppState,
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
        let state = AppState {
            tickets: Tickets::new(db, settings),
        };
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
        let server = HttpServer::new(move || {
            ActixApp::new()
                .app_data(data.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
        })
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
            state,
            sweep_every: Duration::from_secs(settings.raw.sla.sweep_interval_secs),
        })
    }

    /// The public API's bound port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The handler state (tests drive commands through it).
    #[must_use]
    pub const fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C / SIGTERM, running the SLA sweep in the background.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let tickets = self.state.tickets.clone();
        let every = self.sweep_every;
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
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
        let server = self.server;
        let stop = async move {
            let _ = shutdown_signal().await;
            tracing::info!("shutting down");
            handle.stop(true).await;
        };
        let (res, ()) = tokio::join!(server, stop);
        sweeper.abort();
        res
    }
}

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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.tickets.db().clone();
    let ready = web::block(move || -> Result<bool, String> {
        let mut conn = db.read().map_err(|e| e.to_string())?;
        migrations::all_applied(&mut conn).map_err(|e| e.to_string())
    })
    .await;
    match ready {
        Ok(Ok(true)) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(Ok(false)) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "not_ready", "message": "migrations pending"})),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"error": "not_ready", "message": "database unreachable"}))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "not_ready", "message": "readiness check failed"})),
    }
}
