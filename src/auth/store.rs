//! Queries on `officers` and `sessions`.

use diesel::prelude::*;

use super::model::{OfficerRow, SessionRow};
use crate::db::DbConn;
use crate::db::schema::{agencies, officers, sessions};

/// Inserts a new officer (fails with a unique violation if the name is taken).
pub fn insert_officer(conn: &mut DbConn, row: &OfficerRow) -> QueryResult<()> {
    diesel::insert_into(officers::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// One officer by name.
pub fn officer(conn: &mut DbConn, username: &str) -> QueryResult<Option<OfficerRow>> {
    officers::table
        .find(username)
        .select(OfficerRow::as_select())
        .first(conn)
        .optional()
}

/// Every officer, by name.
pub fn officers(conn: &mut DbConn) -> QueryResult<Vec<OfficerRow>> {
    officers::table
        .order(officers::username.asc())
        .select(OfficerRow::as_select())
        .load(conn)
}

/// Whether an agency with this code is known.
pub fn agency_exists(conn: &mut DbConn, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(agencies::table.find(code))).get_result(conn)
}

/// Sets an officer's disabled flag; returns whether the officer exists.
pub fn set_disabled(conn: &mut DbConn, username: &str, disabled: bool) -> QueryResult<bool> {
    diesel::update(officers::table.find(username))
        .set(officers::disabled.eq(disabled))
        .execute(conn)
        .map(|n| n > 0)
}

/// Replaces an officer's password hash; returns whether the officer exists.
pub fn set_password_hash(conn: &mut DbConn, username: &str, hash: &str) -> QueryResult<bool> {
    diesel::update(officers::table.find(username))
        .set(officers::password_hash.eq(hash))
        .execute(conn)
        .map(|n| n > 0)
}

/// Sets an officer's role and agency; returns whether the officer exists.
pub fn set_role(
    conn: &mut DbConn,
    username: &str,
    role: &str,
    agency: Option<&str>,
) -> QueryResult<bool> {
    diesel::update(officers::table.find(username))
        .set((officers::role.eq(role), officers::agency.eq(agency)))
        .execute(conn)
        .map(|n| n > 0)
}

/// Stores a new session.
pub fn insert_session(conn: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// A session by token hash, with its officer (one query).
pub fn session_with_officer(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(SessionRow, OfficerRow)>> {
    sessions::table
        .inner_join(officers::table)
        .filter(sessions::token_hash.eq(token_hash))
        .select((SessionRow::as_select(), OfficerRow::as_select()))
        .first(conn)
        .optional()
}

/// Revokes one session; returns whether it existed.
pub fn revoke_session(conn: &mut DbConn, token_hash: &str) -> QueryResult<bool> {
    diesel::update(sessions::table.find(token_hash))
        .set(sessions::revoked.eq(true))
        .execute(conn)
        .map(|n| n > 0)
}

/// Revokes every live session of an officer; returns how many were revoked.
pub fn revoke_all(conn: &mut DbConn, username: &str) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::username.eq(username))
            .filter(sessions::revoked.eq(false)),
    )
    .set(sessions::revoked.eq(true))
    .execute(conn)
}

/// Every stored token hash (tests check that no token is stored in clear).
pub fn token_hashes(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    sessions::table.select(sessions::token_hash).load(conn)
}
