//! Agencies (*instansi*) as managed data.
//!
//! The reference list (built in, or `reference.agencies_file`) is written into the `agencies`
//! table at every start. An operator adds a province's own agencies beside it, imports a CSV
//! of them, and disables or enables one (`lapor-node agencies …`, `GET/POST
//! /api/v1/admin/agencies`). Rows an operator added live in the database and survive restarts
//! (the start-up sync only inserts and updates the reference rows); a disabled agency takes no
//! new dispatches, and its tickets stay as they are.
//!
//! Dispatching needs the agency's owning node to be a member of this node's federation (this
//! node or one of its peers): otherwise the ticket would wait for a node no one delivers to.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::schema::agencies;
use crate::domain::reference::{Agency, Provinces};

/// An agency as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = agencies)]
pub struct AgencyInfo {
    /// Code, e.g. `DKI-DISHUB`.
    pub code: String,
    /// Name.
    pub name: String,
    /// `national`, `province` or `regency`.
    pub level: String,
    /// The region it serves.
    pub region: String,
    /// The node that handles its tickets.
    pub owner_node: String,
    /// Takes no new dispatches.
    pub disabled: bool,
    /// The roster version that stopped listing it (it takes no new dispatches), if one did.
    pub dropped_by_roster: Option<i64>,
}

impl AgencyInfo {
    /// Whether it takes new dispatches: not disabled here, not dropped by the roster.
    #[must_use]
    pub const fn dispatchable(&self) -> bool {
        !self.disabled && self.dropped_by_roster.is_none()
    }
}

/// Every agency, by code.
pub fn list(conn: &mut DbConn) -> QueryResult<Vec<AgencyInfo>> {
    agencies::table
        .order(agencies::code.asc())
        .select(AgencyInfo::as_select())
        .load(conn)
}

/// One agency.
pub fn get(conn: &mut DbConn, code: &str) -> QueryResult<Option<AgencyInfo>> {
    agencies::table
        .find(code)
        .select(AgencyInfo::as_select())
        .first(conn)
        .optional()
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// New agencies.
    pub added: usize,
    /// Agencies whose name, level, region or owner changed.
    pub updated: usize,
    /// Agencies already as given.
    pub unchanged: usize,
}

/// Why an agency could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AgencyError {
    /// The code is taken.
    #[error("agency {0} exists already (use `agencies import` to change it)")]
    Exists(String),
    /// No such agency.
    #[error("unknown agency {0}")]
    Unknown(String),
    /// The region is not in the province list.
    #[error("agency {code}: region {region} is not in the province list")]
    UnknownRegion {
        /// The agency.
        code: String,
        /// Its region.
        region: String,
    },
    /// Database failure.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn check_region(a: &Agency, provinces: &Provinces) -> Result<(), AgencyError> {
    if provinces.knows_region(&a.region) {
        Ok(())
    } else {
        Err(AgencyError::UnknownRegion {
            code: a.code.to_string(),
            region: a.region.to_string(),
        })
    }
}

/// Adds a new agency (refused when the code exists).
pub fn add(conn: &mut DbConn, a: &Agency, provinces: &Provinces) -> Result<(), AgencyError> {
    check_region(a, provinces)?;
    if get(conn, a.code.as_str())?.is_some() {
        return Err(AgencyError::Exists(a.code.to_string()));
    }
    import(conn, std::slice::from_ref(a), provinces)?;
    Ok(())
}

/// Inserts the agencies that are new and updates those that changed (their `disabled` flag is
/// kept), in the caller's transaction. Every region is checked first: nothing is written when
/// one is unknown.
pub fn import(
    conn: &mut DbConn,
    list: &[Agency],
    provinces: &Provinces,
) -> Result<Imported, AgencyError> {
    for a in list {
        check_region(a, provinces)?;
    }
    let mut out = Imported::default();
    for a in list {
        let row = (
            agencies::name.eq(&a.name),
            agencies::level.eq(a.level.as_str()),
            agencies::region.eq(a.region.as_str()),
            agencies::owner_node.eq(a.owner.as_str()),
        );
        match get(conn, a.code.as_str())? {
            None => {
                diesel::insert_into(agencies::table)
                    .values((agencies::code.eq(a.code.as_str()), row))
                    .execute(conn)?;
                out.added += 1;
            }
            Some(old)
                if old.name == a.name
                    && old.level == a.level.as_str()
                    && old.region == a.region.as_str()
                    && old.owner_node == a.owner.as_str() =>
            {
                out.unchanged += 1;
            }
            Some(_) => {
                diesel::update(agencies::table.find(a.code.as_str()))
                    .set(row)
                    .execute(conn)?;
                out.updated += 1;
            }
        }
    }
    Ok(out)
}

/// Disables (or enables again) an agency.
pub fn set_disabled(conn: &mut DbConn, code: &str, disabled: bool) -> Result<(), AgencyError> {
    let n = diesel::update(agencies::table.find(code))
        .set(agencies::disabled.eq(disabled))
        .execute(conn)?;
    if n == 0 {
        return Err(AgencyError::Unknown(code.to_owned()));
    }
    Ok(())
}
