//! What a citizen files: kind, channel, category and privacy flags.

use serde::{Deserialize, Serialize};

/// The three kinds of report LAPOR! accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A complaint about a public service.
    Pengaduan,
    /// A suggestion.
    Aspirasi,
    /// A request for public information.
    PermintaanInformasi,
}

/// How the report reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The web form.
    Web,
    /// SMS to the short number.
    Sms,
    /// The JSON API (mobile apps).
    Api,
    /// An Open311 client.
    Open311,
    /// Filed by an officer for a citizen at a service desk.
    WalkIn,
}

/// A report category: a short lower-case slug such as `transportasi` or `kesehatan`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// Parses 2–40 characters of `a-z0-9_-`.
    pub fn parse(s: &str) -> Result<Self, super::IdError> {
        let ok = (2..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(super::IdError {
                what: "category",
                value: s.chars().take(80).collect(),
                why: "must be 2-40 characters of a-z, 0-9, '_' or '-'",
            })
        }
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = super::IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Category> for String {
    fn from(value: Category) -> String {
        value.0
    }
}

/// Privacy flags, set by the citizen at intake and enforced by the software.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Privacy {
    /// *Anonim*: the report may be public, but the reporter's identity is hidden from everyone
    /// except the origin node's verifiers (also from the agency).
    pub anonymous: bool,
    /// *Rahasia*: the report itself is not public.
    pub confidential: bool,
}

/// Where an officer stands towards one ticket, for the reporter-identity rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer<'a> {
    /// The officer's role.
    pub role: super::Role,
    /// The agency a liaison acts for.
    pub agency: Option<&'a str>,
    /// The ticket originated at the officer's node.
    pub at_origin: bool,
    /// The officer's node handles the ticket.
    pub at_handler: bool,
}

/// Who may see a reporter's identity (name, phone, e-mail) — the one rule every view uses.
///
/// Nobody, when the report is anonymous: the identity is then kept at the origin only, for the
/// node itself to reach the citizen, and shown to no officer. Otherwise the two officers who
/// need it: the origin's verifiers (who check the report and may call the reporter) and the
/// liaison of the agency the ticket is dispatched to, at the node that handles it (to call the
/// reporter back) — which is why the identity travels to a handling node and nowhere else.
#[must_use]
pub fn may_see_reporter(anonymous: bool, ticket_agency: Option<&str>, viewer: &Viewer<'_>) -> bool {
    if anonymous {
        return false;
    }
    match viewer.role {
        super::Role::Verifier => viewer.at_origin,
        super::Role::Liaison => {
            viewer.at_handler && viewer.agency.is_some() && viewer.agency == ticket_agency
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn viewer(role: Role, agency: Option<&str>, at_origin: bool, at_handler: bool) -> Viewer<'_> {
        Viewer {
            role,
            agency,
            at_origin,
            at_handler,
        }
    }

    #[test]
    fn only_origin_verifiers_and_the_handling_agency_see_a_non_anonymous_reporter() {
        let dishub = Some("DKI-DISHUB");
        assert!(may_see_reporter(
            false,
            dishub,
            &viewer(Role::Verifier, None, true, false)
        ));
        assert!(may_see_reporter(
            false,
            dishub,
            &viewer(Role::Liaison, dishub, false, true)
        ));
        assert!(!may_see_reporter(
            false,
            dishub,
            &viewer(Role::Verifier, None, false, true)
        ));
        assert!(!may_see_reporter(
            false,
            dishub,
            &viewer(Role::Liaison, Some("X"), true, true)
        ));
        assert!(!may_see_reporter(
            false,
            dishub,
            &viewer(Role::Liaison, dishub, true, false)
        ));
        assert!(!may_see_reporter(
            false,
            None,
            &viewer(Role::Liaison, None, true, true)
        ));
        for role in [Role::Admin, Role::Analyst, Role::Citizen] {
            assert!(!may_see_reporter(
                false,
                dishub,
                &viewer(role, None, true, true)
            ));
        }
        for v in [
            viewer(Role::Verifier, None, true, true),
            viewer(Role::Liaison, dishub, true, true),
        ] {
            assert!(!may_see_reporter(true, dishub, &v), "anonymous: nobody");
        }
    }
}
