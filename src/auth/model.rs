//! Rows of the `officers` and `sessions` tables, and the text forms of officer roles.

use diesel::prelude::*;

use crate::db::schema::{officers, sessions};
use crate::domain::{AgencyCode, Role};

use super::Officer;

/// One officer account. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = officers)]
pub struct OfficerRow {
    /// Account name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role name (`verifier`, `liaison`, `admin`, `analyst`).
    pub role: String,
    /// A liaison's agency code.
    pub agency: Option<String>,
    /// Disabled accounts cannot log in or use their tokens.
    pub disabled: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

impl std::fmt::Debug for OfficerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfficerRow")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("agency", &self.agency)
            .field("disabled", &self.disabled)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

impl OfficerRow {
    /// The officer this row describes; fails (as a deserialisation error) on a role or agency
    /// that is not valid, which the table's checks should make impossible.
    pub fn to_officer(&self) -> Result<Officer, diesel::result::Error> {
        let bad = |m: String| diesel::result::Error::DeserializationError(m.into());
        let role = parse_role(&self.role).ok_or_else(|| {
            bad(format!(
                "officer {}: unknown role {:?}",
                self.username, self.role
            ))
        })?;
        let agency = self
            .agency
            .as_deref()
            .map(AgencyCode::parse)
            .transpose()
            .map_err(|e| bad(format!("officer {}: {e}", self.username)))?;
        Ok(Officer {
            username: self.username.clone(),
            role,
            agency,
        })
    }
}

/// One bearer-token session. Only the SHA-256 (hex) of the token is stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    /// Lower-case hex SHA-256 of the token.
    pub token_hash: String,
    /// The officer.
    pub username: String,
    /// Login time.
    pub created_at_ms: i64,
    /// Expiry time (exclusive).
    pub expires_at_ms: i64,
    /// Revoked by logout, disabling or a password reset.
    pub revoked: bool,
}

/// The stored name of an officer role; `None` for roles no account can have (citizen, system).
#[must_use]
pub const fn role_name(role: Role) -> Option<&'static str> {
    match role {
        Role::Verifier => Some("verifier"),
        Role::Liaison => Some("liaison"),
        Role::Admin => Some("admin"),
        Role::Analyst => Some("analyst"),
        Role::Citizen | Role::System => None,
    }
}

/// The officer role of a stored or typed name (exact, lower case).
#[must_use]
pub fn parse_role(name: &str) -> Option<Role> {
    match name {
        "verifier" => Some(Role::Verifier),
        "liaison" => Some(Role::Liaison),
        "admin" => Some(Role::Admin),
        "analyst" => Some(Role::Analyst),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in [Role::Verifier, Role::Liaison, Role::Admin, Role::Analyst] {
            assert_eq!(parse_role(role_name(role).unwrap()), Some(role));
        }
        assert_eq!(role_name(Role::Citizen), None);
        assert_eq!(parse_role("system"), None);
        assert_eq!(parse_role("Admin"), None);
    }
}
