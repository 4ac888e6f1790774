//! `lapor-node agencies …`: list, add, import, disable and enable agencies.

use std::path::PathBuf;

use clap::Subcommand;

use super::agencies::{self, AgencyError};
use crate::db::{Db, DbError};
use crate::domain::reference::{Agency, AgencyLevel, parse_agencies};
use crate::domain::{AgencyCode, NodeId, RegionCode};

/// `agencies` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgenciesCommand {
    /// Every agency: code, owning node, level, region, status, name.
    List,
    /// Add one agency of this province (or any other), beside the reference list.
    Add {
        /// Code: 2-32 characters of A-Z, 0-9 and '-', e.g. SULTENG-DINKES.
        code: String,
        /// Its name, e.g. "Dinas Kesehatan Provinsi Sulawesi Tengah".
        #[arg(long)]
        name: String,
        /// national, province or regency.
        #[arg(long, default_value = "province")]
        level: String,
        /// The region it serves: 2-digit province or 4-digit regency/city code.
        #[arg(long)]
        region: String,
        /// The node that handles its tickets (default: this node).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Add or update the agencies of a CSV file (`code,name,level,region,owner_node`, the
    /// format of config/agencies.csv); nothing is written if one row is wrong.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Stop new dispatches to an agency (its tickets stay as they are).
    Disable {
        /// The agency code.
        code: String,
    },
    /// Take dispatches to a disabled agency again.
    Enable {
        /// The agency code.
        code: String,
    },
}

/// Runs an `agencies` command; returns the lines to print.
pub fn run(
    db: &Db,
    settings: &crate::config::Settings,
    command: AgenciesCommand,
) -> anyhow::Result<Vec<String>> {
    let provinces = settings.provinces.clone();
    let write = |f: WriteJob| {
        db.write(move |c| Ok::<_, Wrapped>(f(c)?))
            .map_err(|w: Wrapped| anyhow::anyhow!("{}", w.0))
    };
    match command {
        AgenciesCommand::List => {
            let mut conn = db.read()?;
            let list = agencies::list(&mut conn)?;
            let mut out = vec![format!("{} agencies", list.len())];
            for a in list {
                let state = match (a.disabled, a.dropped_by_roster) {
                    (true, _) => "disabled".to_owned(),
                    (false, Some(v)) => format!("dropped by roster {v}"),
                    (false, None) => "active".to_owned(),
                };
                out.push(format!(
                    "{:<20} {:<24} {:<8} {:<4} {:<8} {}",
                    a.code, a.owner_node, a.level, a.region, state, a.name
                ));
            }
            Ok(out)
        }
        AgenciesCommand::Add {
            code,
            name,
            level,
            region,
            owner,
        } => {
            let owner = owner.unwrap_or_else(|| settings.node_id().to_string());
            let name = name.trim().to_owned();
            anyhow::ensure!(
                !name.is_empty() && !name.chars().any(char::is_control) && name.len() <= 200,
                "--name must be 1-200 characters of text"
            );
            let agency = Agency {
                code: AgencyCode::parse(&code)?,
                name,
                level: AgencyLevel::parse(&level).ok_or_else(|| {
                    anyhow::anyhow!("--level {level:?} must be national, province or regency")
                })?,
                region: RegionCode::parse(&region)?,
                owner: NodeId::parse(&owner)?,
            };
            let shown = agency.code.to_string();
            Ok(vec![write(Box::new(move |c| {
                agencies::add(c, &agency, &provinces)?;
                Ok(format!("added agency {shown}"))
            }))?])
        }
        AgenciesCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let list =
                parse_agencies(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Ok(vec![write(Box::new(move |c| {
                let n = agencies::import(c, &list, &provinces)?;
                Ok(format!(
                    "imported: {} added, {} updated, {} unchanged",
                    n.added, n.updated, n.unchanged
                ))
            }))?])
        }
        AgenciesCommand::Disable { code } => Ok(vec![write(Box::new(move |c| {
            agencies::set_disabled(c, &code, true)?;
            Ok(format!("agency {code} disabled: no new dispatches to it"))
        }))?]),
        AgenciesCommand::Enable { code } => Ok(vec![write(Box::new(move |c| {
            agencies::set_disabled(c, &code, false)?;
            Ok(format!("agency {code} enabled"))
        }))?]),
    }
}

/// One agency change, run on the writer; returns the line to print.
type WriteJob = Box<dyn FnOnce(&mut crate::db::DbConn) -> Result<String, AgencyError> + Send>;

/// An agency error through the writer (which also reports its own failures).
#[derive(Debug)]
struct Wrapped(String);

impl From<AgencyError> for Wrapped {
    fn from(e: AgencyError) -> Self {
        Self(e.to_string())
    }
}
impl From<diesel::result::Error> for Wrapped {
    fn from(e: diesel::result::Error) -> Self {
        Self(e.to_string())
    }
}
impl From<DbError> for Wrapped {
    fn from(e: DbError) -> Self {
        Self(e.to_string())
    }
}
