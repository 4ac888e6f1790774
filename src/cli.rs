//! The command line: `serve`, `migrate`, `rebuild`, `init`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{self, App};
use crate::config::{NodeRole, Settings};
use crate::db::{Db, migrations};
use crate::domain::{NodeId, ProvinceCode};
use crate::tickets::store as ticket_store;

/// lapor-node: one province node (or the national hub) of the federated LAPOR! complaint system.
#[derive(Debug, Parser)]
#[command(name = "lapor-node", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables LAPOR__SECTION__KEY override it.
    #[arg(long, short, global = true, env = "LAPOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: migrate the database, then serve the API and run the SLA jobs until
    /// Ctrl-C or SIGTERM.
    Serve,
    /// Apply pending database migrations and exit (`--revert-all` undoes them all: this
    /// deletes every table and its data).
    Migrate {
        /// Revert every migration instead.
        #[arg(long)]
        revert_all: bool,
    },
    /// Rebuild the `tickets` projection from the event log, in one transaction, and print what
    /// was folded.
    Rebuild,
    /// Manage officer accounts: `officer add NAME --role verifier|liaison|admin|analyst
    /// [--agency CODE]`, `officer disable NAME`, `officer reset NAME`, `officer list`.
    Officer {
        /// What to do.
        #[command(subcommand)]
        command: crate::auth::cli::OfficerCommand,
    },
    /// Signing keys: `keys list` shows this node's keys and their validity; `keys rotate`
    /// makes a new signing key (stop the node first); old public keys stay published so old
    /// events still verify.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The hub-signed roster: make the roster key, sign, show, compare, apply to this node.
    Roster {
        /// What to do.
        #[command(subcommand)]
        command: crate::ops::roster::RosterCommand,
    },
    /// Erase the reporter's personal data of a report filed here (UU 27/2022 right to
    /// erasure): the contact and its salt are deleted and an `erased` event is appended; every
    /// signature stays valid.
    Erase {
        /// The report's tracking code, e.g. 31-K7QX-9F2M.
        tracking_code: String,
    },
    /// Check the event log: `audit verify` re-verifies every stored event (signature with the
    /// key valid at its time, id, chain continuity, ticket fold), prints counts, and exits
    /// non-zero naming each faulty event.
    Audit {
        /// What to check.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run a whole federation on loopback — the hub and two province nodes (31 DKI Jakarta,
    /// 53 Nusa Tenggara Timur) with a fresh dev CA, certificates and SQLite databases in a temp
    /// directory — walk a complaint across it, cut NTT's link and catch up; then keep serving
    /// until Ctrl-C.
    Demo {
        /// Stop after the scenario.
        #[arg(long)]
        exit: bool,
        /// Reports NTT files while its link is cut (each one verified and dispatched: three
        /// events, for the hub and for Jakarta).
        #[arg(long, default_value_t = 300)]
        backlog: usize,
    },
    /// Emulate a slow link in front of a node: a TCP proxy from `--listen` to `--to` with a
    /// bandwidth shared by every connection in each direction, one-way delay, jitter, a bounded
    /// queue and optional flapping; prints the bytes it carried every `--report-secs` and on
    /// Ctrl-C.
    Linksim(crate::demo::linksim_cli::LinksimArgs),
    /// Federation certificates: `certs ca --out DIR` creates a federation CA; `certs issue
    /// --ca DIR --node-id ID --out DIR` issues a node certificate (DNS SAN = node id, server
    /// and client use). Private keys are written 0600 and never overwritten.
    Certs {
        /// What to do.
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Federation peers: reachable or not, last contact, outbox depth and oldest undelivered
    /// age, refusals and quarantined events with their reasons and fixes (`peers`); pin a
    /// peer's new signing key (`peers pin`); offer a peer the events it refused again
    /// (`peers resend`).
    Peers {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<crate::ops::federation::PeersCommand>,
    },
    /// Follow the running node's delivery to one peer until nothing waits for it, with a
    /// progress bar (events, rate, time left); the peer is tried at once. Exits non-zero if
    /// `--timeout-secs` passes first.
    Sync {
        /// The peer's node id.
        #[arg(long)]
        peer: String,
        /// Give up after this many seconds (default: wait until done).
        #[arg(long)]
        timeout_secs: Option<u64>,
    },
    /// Agencies (instansi) and the node that handles each: `agencies list`, `agencies add CODE
    /// --name … --region … [--level …] [--owner NODE]`, `agencies import FILE.csv`,
    /// `agencies disable|enable CODE`. Added agencies live beside the reference list.
    Agencies {
        /// What to do.
        #[command(subcommand)]
        command: crate::tickets::agencies_cli::AgenciesCommand,
    },
    /// The SMS channel: `sms outbox` (messages by state, dead letters), `sms retry [ID]`,
    /// `sms block NUMBER [--note …]`, `sms unblock NUMBER`, `sms blocked`.
    Sms {
        /// What to do.
        #[command(subcommand)]
        command: crate::sms::admin::SmsCommand,
    },
    /// The federation's health as this node holds it: `federation status` prints every
    /// origin's chain (head held, events held; gap, partial or equivocation with event ids)
    /// and each peer's link — the table of `GET /api/v1/hub/federation`.
    Federation {
        /// What to do.
        #[command(subcommand)]
        command: FederationCommand,
    },
    /// Events refused by this node's inbox: `quarantine list`, `quarantine retry [--from
    /// PEER]` after their cause is fixed, `quarantine clear --from PEER|--reason CODE|--all`.
    Quarantine {
        /// What to do.
        #[command(subcommand)]
        command: crate::ops::federation::QuarantineCommand,
    },
    /// Configuration: `config check` checks it and the files it names without starting;
    /// `config example [--hub]` prints the documented example.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: crate::config_check::ConfigCommand,
    },
    /// Back the node up, online, into a new directory (0700, files 0600): the SQLite database
    /// (`VACUUM INTO`: one consistent snapshot while the node runs), the signing keys, the
    /// federation CA/certificate/key, the config file and the reference files, with a
    /// MANIFEST.json of their SHA-256. PostgreSQL: `pg_dump -Fc` the database beside it.
    Backup {
        /// Directory to create (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Leave the database out (PostgreSQL, or a database backed up otherwise).
        #[arg(long)]
        no_database: bool,
    },
    /// Restore a backup into a new, empty directory: checks the manifest, copies the files with
    /// private modes, points the config's paths at the new place, and audits the restored log.
    Restore {
        /// The backup directory (made by `lapor-node backup`).
        #[arg(long)]
        from: PathBuf,
        /// The node's new data directory (must not exist or be empty).
        #[arg(long)]
        dir: PathBuf,
    },
    /// After `restore`: what the node is missing of its own chain — for the hub and each peer,
    /// the head it holds against the head held here. The restored node fetches it back before
    /// it writes anything (`/readyz` says `restoring` meanwhile).
    RestoreCheck {
        /// Operator override: lift the restore hold now, when the missing events are known to
        /// be lost.
        #[arg(long)]
        release: bool,
    },
    /// Create a new node: a data directory with a working config.toml and a migrated
    /// database.
    Init {
        /// The node's DNS name, e.g. prov-31.lapor.test.
        #[arg(long)]
        node_id: String,
        /// The province code, e.g. 31.
        #[arg(long)]
        province: String,
        /// Directory to create (holds config.toml and the database).
        #[arg(long)]
        dir: PathBuf,
        /// Province node or national hub.
        #[arg(long, value_enum, default_value = "province")]
        role: RoleArg,
        /// Public API listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Overwrite an existing config.toml.
        #[arg(long)]
        force: bool,
    },
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List this node's keys.
    List,
    /// Make a new signing key, valid from now; the current one stays valid until now.
    Rotate,
}

/// `certs` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a federation CA (development; production federations bring their own).
    Ca {
        /// Directory for ca.pem and ca.key.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Issue a node certificate signed by the CA: for a node's signing request (`--csr`, the
    /// key stays on the node), or with a new key (development).
    Issue {
        /// The CA directory (ca.pem, ca.key).
        #[arg(long)]
        ca: PathBuf,
        /// The node id (DNS name), e.g. prov-31.lapor.test; with `--csr`, checked against the
        /// request.
        #[arg(long, required_unless_present = "csr")]
        node_id: Option<String>,
        /// A certificate signing request from `certs csr` (PEM): sign it instead of making a key.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// Directory for node.pem, a copy of ca.pem, and (without `--csr`) node.key.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// On the node: make its TLS key (node.key, 0600) and a certificate signing request
    /// (node.csr, DNS SAN = node id) to send to the federation CA.
    Csr {
        /// The node id (DNS name), e.g. prov-31.lapor.test.
        #[arg(long)]
        node_id: String,
        /// Directory for node.key and node.csr.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-verify every stored event.
    Verify,
}

/// `--role` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// A province node.
    Province,
    /// The national hub.
    Hub,
}

/// `federation …`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum FederationCommand {
    /// Every origin's chain as held here and each peer's link.
    Status,
}

impl From<RoleArg> for NodeRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Province => Self::Province,
            RoleArg::Hub => Self::Hub,
        }
    }
}

/// `LAPOR_CLOCK_SHIFT_SECS=N`: the node's clock runs N seconds ahead of the system's, to
/// simulate days or weeks passing in tests and drills (`tests/it/outage.rs`). Said loudly.
fn shift_clock_from_env() -> anyhow::Result<()> {
    let Ok(text) = std::env::var("LAPOR_CLOCK_SHIFT_SECS") else {
        return Ok(());
    };
    let secs: i64 = text.trim().parse().map_err(|_| {
        anyhow::anyhow!("LAPOR_CLOCK_SHIFT_SECS={text:?} is not a whole number of seconds")
    })?;
    crate::domain::timestamp::shift_clock(secs.saturating_mul(1000));
    tracing::warn!(
        clock_shift_secs = secs,
        "LAPOR_CLOCK_SHIFT_SECS is set: this node's clock runs ahead of the system's (tests and drills only)"
    );
    Ok(())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            node_id,
            province,
            dir,
            role,
            listen,
            force,
        } => init(&node_id, &province, &dir, role.into(), &listen, force),
        Command::Demo { exit, backlog } => demo(exit, backlog),
        Command::Linksim(args) => crate::demo::linksim_cli::run(&args, &mut |l| say(l)),
        Command::Config { command } => crate::config_check::run(cli.config.as_deref(), &command),
        Command::Backup { out, no_database } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            for line in
                crate::ops::backup::run_backup(&settings, cli.config.as_deref(), &out, no_database)?
            {
                say(&line);
            }
            Ok(())
        }
        Command::Restore { from, dir } => {
            let (lines, faults) = crate::ops::backup::run_restore(&from, &dir)?;
            for line in lines {
                say(&line);
            }
            if faults > 0 {
                anyhow::bail!("the restored log has {faults} fault(s): see above");
            }
            Ok(())
        }
        Command::RestoreCheck { release } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            for line in crate::ops::restore_check::run(&settings, db, release)? {
                say(&line);
            }
            Ok(())
        }
        Command::Certs { command } => certs(command),
        Command::Peers { command } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            for line in crate::ops::federation::run_peers(&settings, db, command)? {
                say(&line);
            }
            Ok(())
        }
        Command::Sync { peer, timeout_secs } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            let synced = crate::ops::sync::run(
                &settings,
                &db,
                &peer,
                timeout_secs.map(std::time::Duration::from_secs),
                &mut std::io::stdout(),
                terminal,
            )?;
            match synced {
                crate::ops::sync::Synced::Done => Ok(()),
                crate::ops::sync::Synced::TimedOut => anyhow::bail!("not synced with {peer}"),
            }
        }
        Command::Agencies { command } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            for line in crate::tickets::agencies_cli::run(&db, &settings, command)? {
                say(&line);
            }
            Ok(())
        }
        Command::Sms { command } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            for line in crate::sms::admin::run(&db, command)? {
                say(&line);
            }
            Ok(())
        }
        Command::Federation {
            command: FederationCommand::Status,
        } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            for line in crate::ops::federation_status::run(&settings, &db)? {
                say(&line);
            }
            Ok(())
        }
        Command::Quarantine { command } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            for line in crate::ops::federation::run_quarantine(&settings, db, command)? {
                say(&line);
            }
            Ok(())
        }
        Command::Serve => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            shift_clock_from_env()?;
            // Held until the process ends: `keys rotate` and a second `serve` on this
            // directory see the node running.
            let mode = match settings.database {
                crate::config::DatabaseUrl::Sqlite(_) => crate::ops::lock::Mode::Exclusive,
                crate::config::DatabaseUrl::Postgres(_) => crate::ops::lock::Mode::Shared,
            };
            let _lock = crate::ops::lock::NodeLock::acquire(&settings.raw.node.data_dir, mode)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let served = rt.block_on(async {
                let app = App::build(&settings)?;
                app.run_until_stopped().await?;
                anyhow::Ok(())
            });
            // Blocking work still under way (an SLA sweep chunk, a backup) is given a moment;
            // every write is its own transaction, so what is cut off is simply not done.
            rt.shutdown_timeout(std::time::Duration::from_secs(10));
            served
        }
        Command::Migrate { revert_all } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = Db::open(&settings.database, 1)?;
            let names = if revert_all {
                db.with_writer(migrations::revert_all)??
            } else {
                db.with_writer(migrations::run_pending)??
            };
            let verb = if revert_all { "reverted" } else { "applied" };
            say(&format!(
                "{} migration(s) {verb} on {}",
                names.len(),
                settings.database.describe()
            ));
            for n in names {
                say(&format!("  {n}"));
            }
            Ok(())
        }
        Command::Officer { command } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            let auth = crate::auth::Auth::new(db, settings.raw.auth.token_ttl_minutes);
            for line in crate::auth::cli::run(&auth, command)? {
                say(&line);
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            let mut conn = db.read()?;
            let scope = crate::event_log::audit::Scope {
                node: settings.node_id().clone(),
                holds_all: settings.raw.node.role == crate::config::NodeRole::Hub,
            };
            let report = crate::event_log::audit::run(&mut conn, &scope)?;
            say(&format!(
                "audit: {} event(s) from {} origin(s), {} verified, {} ticket(s) folded, {} fault(s)",
                report.events,
                report.origins,
                report.verified,
                report.tickets,
                report.faults.len()
            ));
            for p in &report.partial {
                say(&format!(
                    "partial chain {}: {} event(s) held up to seq {} — a province holds only the \
                     events of tickets it takes part in (checked: signatures, and links between \
                     consecutive events)",
                    p.origin, p.held, p.head
                ));
            }
            for f in &report.faults {
                say(&format!("FAULT event {}: {}", f.event, f.reason));
            }
            if report.faults.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("audit found {} fault(s)", report.faults.len())
            }
        }
        Command::Roster { command } => {
            use crate::ops::roster::RosterCommand;
            let settings = match command {
                RosterCommand::Apply { .. } | RosterCommand::Entry { .. } => {
                    Some(load(cli.config.as_deref())?)
                }
                RosterCommand::Show { .. } => load(cli.config.as_deref()).ok(),
                _ => None,
            };
            let _log = settings
                .as_ref()
                .map(|s| crate::telemetry::init(&s.raw.log));
            for line in crate::ops::roster::run(&command, settings.as_ref())? {
                say(&line);
            }
            Ok(())
        }
        Command::Keys { command } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            // A rotation beside a running node would leave it signing with the retired key.
            let _lock = match command {
                KeysCommand::Rotate => Some(crate::ops::lock::NodeLock::acquire(
                    &settings.raw.node.data_dir,
                    crate::ops::lock::Mode::Exclusive,
                )?),
                KeysCommand::List => None,
            };
            let db = app::open_database(&settings)?;
            let path = settings.key_path();
            crate::event_log::keys::load(&db, settings.node_id(), &path)?;
            if matches!(command, KeysCommand::Rotate) {
                let now = crate::domain::Timestamp::now();
                let (old, new) =
                    crate::event_log::keys::rotate(&db, settings.node_id(), &path, now)?;
                say(&format!(
                    "rotated: {old} is retired (its events still verify), {new} signs from now"
                ));
            }
            let mut conn = db.read()?;
            for k in crate::event_log::keys::own_keys(&mut conn, settings.node_id())? {
                let from = crate::domain::Timestamp::from_millis(k.valid_from_ms);
                let until = k.valid_until_ms.map_or_else(
                    || "current".to_owned(),
                    |ms| crate::domain::Timestamp::from_millis(ms).to_string(),
                );
                say(&format!("{}  valid from {from}  until {until}", k.key_id));
            }
            Ok(())
        }
        Command::Erase { tracking_code } => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            let key = crate::event_log::keys::load(&db, settings.node_id(), &settings.key_path())?;
            let code = crate::domain::TrackingCode::parse(&tracking_code)?;
            let tickets = crate::tickets::Tickets::new(db.clone(), &settings, key)?;
            let mut conn = db.read()?;
            let row = ticket_store::by_tracking_code(&mut conn, tickets.codes(), &code)?
                .ok_or_else(|| anyhow::anyhow!("no report with tracking code {code}"))?;
            drop(conn);
            let id = crate::domain::TicketId::parse(&row.id)?;
            let event = tickets.erase(
                &id,
                &crate::domain::Actor::system(),
                crate::domain::Timestamp::now(),
            )?;
            say(&format!(
                "erased the personal data of {code}; event {}",
                event.id
            ));
            Ok(())
        }
        Command::Rebuild => {
            let settings = load(cli.config.as_deref())?;
            let _log = crate::telemetry::init(&settings.raw.log);
            let db = app::open_database(&settings)?;
            let province = settings.raw.node.province.clone();
            let me = settings.node_id().clone();
            let (done, escalations) = db.write(move |conn| {
                let done = ticket_store::rebuild(conn, &province)?;
                let escalations = crate::tickets::escalations::rederive(conn, &me)
                    .map_err(|e| ticket_store::RebuildError::Escalations(e.to_string()))?;
                Ok::<_, ticket_store::RebuildError>((done, escalations))
            })?;
            say(&format!(
                "rebuilt {} ticket(s) from {} event(s); {} event(s) refused by the fold; \
                 {escalations} missing SLA escalation(s) written",
                done.tickets, done.events, done.rejected
            ));
            Ok(())
        }
    }
}

fn certs(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Ca { out, days } => {
            let f = crate::tls::certs::create_ca(&out, "LAPOR! federation CA", days)?;
            say(&format!(
                "federation CA: {} (key {}, mode 0600)",
                f.cert.display(),
                f.key.display()
            ));
        }
        CertsCommand::Csr { node_id, out } => {
            let node = NodeId::parse(&node_id)?;
            let f = crate::tls::certs::request(&node, &out)?;
            say(&format!(
                "key {} (mode 0600: it stays here) and signing request {} for {node}; send the \
                 request to the federation CA and install the node.pem and ca.pem it returns",
                f.key.display(),
                f.csr.display()
            ));
        }
        CertsCommand::Issue {
            ca,
            node_id,
            csr: Some(csr),
            out,
            days,
        } => {
            let node = node_id.as_deref().map(NodeId::parse).transpose()?;
            let (node, cert, ca_copy) = crate::tls::certs::issue_for_request(
                &ca,
                &csr,
                node.as_ref(),
                &out,
                crate::tls::certs::Validity::days(days),
            )?;
            say(&format!(
                "certificate for {node}: {} (CA copy {}); return both to the node",
                cert.display(),
                ca_copy.display()
            ));
        }
        CertsCommand::Issue {
            ca,
            node_id,
            csr: None,
            out,
            days,
        } => {
            let node = NodeId::parse(node_id.as_deref().unwrap_or_default())?;
            let f = crate::tls::certs::issue(
                &ca,
                &node,
                &out,
                crate::tls::certs::Validity::days(days),
            )?;
            say(&format!(
                "certificate for {node}: {} (key {}, mode 0600; CA copy {})",
                f.cert.display(),
                f.key.display(),
                f.ca.display()
            ));
        }
    }
    Ok(())
}

fn demo(exit: bool, backlog: usize) -> anyhow::Result<()> {
    use crate::demo::{cluster, scenario};
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _log = crate::telemetry::init(&crate::config::LogSettings {
        format: crate::config::LogFormat::Text,
        filter,
    });
    let dir = tempfile::Builder::new().prefix("lapor-demo-").tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let specs = [
            cluster::NodeSpec::new(scenario::HUB, "31", NodeRole::Hub),
            cluster::NodeSpec::new(scenario::JAKARTA, "31", NodeRole::Province),
            cluster::NodeSpec::new(scenario::NTT, "53", NodeRole::Province),
        ];
        let mut opts = cluster::Options { workers: true, pull_interval_secs: 2, ..cluster::Options::default() };
        // The hub operator's roster key, pinned on every node (Papua joins by roster below).
        let roster_key = crate::demo::join::RosterAuthority::new();
        opts.federation_toml.push_str(&roster_key.toml());
        let ports = crate::demo::sms_walk::prepare(&mut opts, &mut |l| say(l));
        let mut c = cluster::Cluster::start(dir.path(), &specs, &opts).await?;
        say(&format!("lapor-node demo: a federation on loopback, files in {}", dir.path().display()));
        for n in c.nodes() {
            say(&format!(
                "  {:<22} public API {}   federation (mTLS) https://{}:{}",
                n.id, n.api, n.id, n.federation_port
            ));
        }
        // Kept to the end: later SMS notices go through it.
        let _kannel = match ports {
            Some(p) => {
                let (k, code) = crate::demo::sms_walk::first_report(&c, p, dir.path(), &mut |l| say(l)).await?;
                say(&format!("   the first report was filed by SMS: {code}"));
                Some(k)
            }
            None => None,
        };
        let summary = scenario::run(&c, &mut |l| say(l), backlog, Some(crate::demo::catchup::vsat())).await?;
        say(&format!(
            "done: ticket {} forwarded and answered; {} event(s) piled up during the outage, delivered {} ms after the link returned",
            summary.ticket,
            summary.piled_up,
            summary.catch_up.as_millis()
        ));
        crate::demo::join::papua_joins(&mut c, &roster_key, &opts, &mut |l| say(l)).await?;
        say("web consoles (click through the same steps; Bahasa Indonesia, English by the switch):");
        for line in crate::demo::console::accounts(&c).await? {
            say(&line);
        }
        if let Some(hub) = c.node(scenario::HUB) {
            hub_statistics(&hub.api, &mut |l| say(l)).await;
            // The provinces' status senders run on their own; one status each now, so the table
            // shows where the scenario ended.
            for n in c.nodes().filter(|n| n.id.as_str() != scenario::HUB) {
                if let Err(e) = n.federation.send_status(n.state.tickets.signing_key()).await {
                    say(&format!("  ({} could not send its status: {e})", n.id));
                }
            }
            say("the federation's health at the hub (`lapor-node federation status`):");
            for line in crate::ops::federation_status::run(&hub.settings, hub.federation.db())? {
                say(&format!("  {line}"));
            }
        }
        if exit {
            c.shutdown().await;
            return anyhow::Ok(());
        }
        say("serving until Ctrl-C; try the URLs above (the consoles, GET /api/v1/reports/<code>, /metrics)");
        let _ = tokio::signal::ctrl_c().await;
        c.shutdown().await;
        anyhow::Ok(())
    })
}

/// Prints the hub's national statistics URLs, and what the public one shows now.
async fn hub_statistics(api: &str, say: &mut dyn FnMut(&str)) {
    say("national statistics at the hub (public; small counts show as \"<5\"):");
    for path in crate::demo::scenario::HUB_PUBLIC {
        say(&format!("  {api}{path}"));
    }
    let [flows, backlog, health] = crate::demo::scenario::HUB_ANALYST;
    say(&format!(
        "  with an analyst's token (`officer add NAME --role analyst` on the hub): {api}{flows}, {api}{backlog}"
    ));
    say(&format!(
        "  the federation's health (each node's signed status beside what the hub holds, outbox matrix, chains, alerts; analyst or admin): {api}{health}"
    ));
    let stats = format!("{api}{}", crate::demo::scenario::HUB_PUBLIC[0]);
    say(&format!(
        "  the same on the dashboard: log in as admin.hub at {api}/petugas/masuk, then {api}/nasional"
    ));
    match reqwest::get(&stats).await {
        Ok(r) => match r.text().await {
            Ok(body) => say(&format!("  GET {stats} → {body}")),
            Err(e) => say(&format!("  (could not read the statistics: {e})")),
        },
        Err(e) => say(&format!("  (could not read the statistics: {e})")),
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
    Ok(Settings::load(path)?)
}

#[expect(clippy::print_stdout, reason = "the CLI's output")]
fn say(line: &str) {
    println!("{line}");
}

fn init(
    node_id: &str,
    province: &str,
    dir: &Path,
    role: NodeRole,
    listen: &str,
    force: bool,
) -> anyhow::Result<()> {
    let node_id = NodeId::parse(node_id)?;
    let province = ProvinceCode::parse(province)?;
    {
        use std::os::unix::fs::DirBuilderExt as _;
        // The node's directory holds its keys and database: its owner's only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let dir = std::fs::canonicalize(dir)?;
    let config_path = dir.join("config.toml");
    if config_path.exists() && !force {
        anyhow::bail!(
            "{} exists; pass --force to overwrite it",
            config_path.display()
        );
    }
    let role = match role {
        NodeRole::Province => "province",
        NodeRole::Hub => "hub",
    };
    let text = format!(
        "# lapor-node configuration for {node_id} (written by `lapor-node init`).\n\
         # Every key is documented in `lapor-node config example` (`--hub` for the hub's).\n\n\
         [node]\nid = \"{node_id}\"\nrole = \"{role}\"\nprovince = \"{province}\"\n\
         data_dir = {data_dir}\n\n[http]\nlisten = \"{listen}\"\n\n\
         [calendar]\n# National holidays and cuti bersama, YYYY-MM-DD.\nholidays = []\n",
        data_dir = toml::Value::String(dir.display().to_string()),
    );
    let settings = Settings::from_toml(&text)?;
    let db = app::open_database(&settings)?;
    let key =
        crate::event_log::keys::load_or_create(&db, settings.node_id(), &settings.key_path())?;
    drop(db);
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    say(&format!("created node {node_id} in {}", dir.display()));
    say(&format!("  config:   {}", config_path.display()));
    say(&format!("  database: {}", settings.database.describe()));
    say(&format!(
        "  signing key: {} ({})",
        key.id(),
        settings.key_path().display()
    ));
    say(&format!(
        "start it with: lapor-node serve --config {}",
        config_path.display()
    ));
    Ok(())
}
