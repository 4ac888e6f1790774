//! Officer accounts administered by a node admin — from the browser (`web::admin`) and the
//! JSON API (`api::accounts`) alike: one function checks the admin's role, makes the change
//! and writes the audit line (who changed which account how; never a password).

use super::{Auth, AuthError, NotAllowed, Officer, invalid, model, store};
use crate::domain::{AgencyCode, Role, Timestamp};

/// A change to an officer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// A new account.
    Add {
        /// Account name.
        username: String,
        /// Initial password (checked for strength).
        password: String,
        /// Role name (`verifier`, `liaison`, `admin`, `analyst`).
        role: String,
        /// A liaison's agency code.
        agency: Option<String>,
    },
    /// Disable the account and end its sessions.
    Disable {
        /// Account name.
        username: String,
    },
    /// Set a new password and end its sessions.
    ResetPassword {
        /// Account name.
        username: String,
        /// The new password.
        password: String,
    },
    /// Change role and agency (takes effect on the account's next request).
    SetRole {
        /// Account name.
        username: String,
        /// Role name.
        role: String,
        /// A liaison's agency code.
        agency: Option<String>,
    },
}

impl AccountChange {
    /// The account it changes.
    #[must_use]
    pub fn username(&self) -> &str {
        match self {
            Self::Add { username, .. }
            | Self::Disable { username }
            | Self::ResetPassword { username, .. }
            | Self::SetRole { username, .. } => username,
        }
    }

    /// `add`, `disable`, `reset_password` or `set_role` (the audit line's `change`).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Add { .. } => "add",
            Self::Disable { .. } => "disable",
            Self::ResetPassword { .. } => "reset_password",
            Self::SetRole { .. } => "set_role",
        }
    }
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The caller is not an admin.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// The change itself was refused, or the database failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

fn role_and_agency(
    role: &str,
    agency: Option<&str>,
) -> Result<(Role, Option<AgencyCode>), AuthError> {
    let role = model::parse_role(role)
        .ok_or_else(|| invalid("role", "must be verifier, liaison, admin or analyst"))?;
    let agency = agency
        .map(AgencyCode::parse)
        .transpose()
        .map_err(|e| invalid("agency", e.to_string()))?;
    Ok((role, agency))
}

impl Auth {
    /// `admin` makes `change`; the audit line names both accounts and the change.
    ///
    /// # Errors
    ///
    /// [`AccountError::NotAllowed`] unless `admin` is an admin; the refusals of
    /// [`Auth::add`], [`Auth::disable`], [`Auth::reset_password`] and the same rules for a
    /// role change (a liaison needs a known agency, other roles none).
    pub fn administer(
        &self,
        admin: &Officer,
        change: &AccountChange,
        now: Timestamp,
    ) -> Result<(), AccountError> {
        admin.require(&[Role::Admin], "manage officer accounts")?;
        if matches!(change, AccountChange::Disable { username } if *username == admin.username) {
            return Err(invalid("username", "an admin cannot disable their own account").into());
        }
        match change {
            AccountChange::Add {
                username,
                password,
                role,
                agency,
            } => {
                let (role, agency) = role_and_agency(role, agency.as_deref())?;
                self.add(username, password, role, agency, now)?;
            }
            AccountChange::Disable { username } => self.disable(username)?,
            AccountChange::ResetPassword { username, password } => {
                self.reset_password(username, password)?;
            }
            AccountChange::SetRole {
                username,
                role,
                agency,
            } => {
                let (role, agency) = role_and_agency(role, agency.as_deref())?;
                self.set_role(username, role, agency)?;
            }
        }
        tracing::info!(officer = %admin.username, account = %change.username(), change = change.name(), "officer account changed");
        Ok(())
    }

    /// Sets an account's role and agency (a liaison needs a known agency, other roles none).
    pub fn set_role(
        &self,
        username: &str,
        role: Role,
        agency: Option<AgencyCode>,
    ) -> Result<(), AuthError> {
        let name = model::role_name(role)
            .ok_or_else(|| invalid("role", "must be verifier, liaison, admin or analyst"))?;
        match (role, &agency) {
            (Role::Liaison, None) => return Err(invalid("agency", "a liaison needs an agency")),
            (Role::Liaison, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(invalid("agency", format!("a {name} has no agency"))),
        }
        let (username, agency) = (username.to_owned(), agency.map(|a| a.to_string()));
        self.db.write(move |conn| {
            if let Some(code) = &agency {
                if !store::agency_exists(conn, code)? {
                    return Err(invalid("agency", format!("unknown agency {code}")));
                }
            }
            if store::set_role(conn, &username, name, agency.as_deref())? {
                Ok(())
            } else {
                Err(AuthError::UnknownOfficer(username))
            }
        })
    }
}
