//! What the tickets wing accepts, and the checks every input passes whatever the channel
//! (API, web form, SMS, Open311): a citizen's report and contact, an action on a ticket, an
//! officer's inbox query. These types know no wire format; each channel parses its own
//! (the API's bodies are `api::dto`) and converts into them.

use super::error::{Problem, TicketError, invalid};
use crate::config::LimitSettings;
use crate::domain::event::ArchiveReason;
use crate::domain::{AgencyCode, Category, Channel, Privacy, RegionCode, ReportKind};

/// Reporter contact: personal data, stored apart from the report and never put in an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// Name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

impl Contact {
    /// Some field is given.
    #[must_use]
    pub const fn is_given(&self) -> bool {
        self.name.is_some() || self.phone.is_some() || self.email.is_some()
    }

    /// The personal data a `created` event commits to: the fields given, as `(key, value)`
    /// pairs in key order (the members of [`contact_value`]'s object).
    pub(super) fn members(&self) -> Vec<(&'static str, &str)> {
        [
            ("email", &self.email),
            ("name", &self.name),
            ("phone", &self.phone),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    fn check(&self) -> Result<(), TicketError> {
        for (field, v, max) in [
            ("contact.name", &self.name, 200),
            ("contact.phone", &self.phone, 32),
            ("contact.email", &self.email, 254),
        ] {
            if let Some(v) = v {
                check_controls(field, v, false)?;
                if v.trim().is_empty() || v.chars().count() > max {
                    return Err(invalid(field, Problem::Length { max }));
                }
            }
        }
        if let Some(p) = &self.phone {
            let digits = p.trim_start_matches('+');
            if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("contact.phone", Problem::NotPhone));
            }
        }
        if let Some(e) = &self.email {
            if !e
                .split_once('@')
                .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
            {
                return Err(invalid("contact.email", Problem::NotEmail));
            }
        }
        Ok(())
    }
}

/// The personal data a `created` event commits to, as a JSON object of the fields given.
#[must_use]
pub fn contact_value(c: &Contact) -> serde_json::Value {
    serde_json::Value::Object(
        c.members()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect(),
    )
}

/// A report as a citizen files it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// Kind.
    pub kind: ReportKind,
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
    /// Category.
    pub category: Category,
    /// Region concerned.
    pub region: RegionCode,
    /// Agency the citizen names.
    pub agency: Option<AgencyCode>,
    /// Channel.
    pub channel: Channel,
    /// Privacy flags.
    pub privacy: Privacy,
    /// Reporter contact.
    pub contact: Option<Contact>,
}

impl NewReport {
    /// The checks that need no database: text fields, the contact, and a reporter for a
    /// report that is not anonymous. (Region and agency are checked against reference data.)
    pub(super) fn check(&self, limits: &LimitSettings) -> Result<(), TicketError> {
        check_text("title", &self.title, limits.title_max_chars, false)?;
        check_text("body", &self.text, limits.text_max_chars, true)?;
        if let Some(c) = &self.contact {
            c.check()?;
        }
        // A report whose reporter is not hidden names its reporter: without a contact there
        // is no one to name, and the flag would promise something the report cannot keep.
        if !self.privacy.anonymous && !self.contact.as_ref().is_some_and(Contact::is_given) {
            return Err(invalid("reporter", Problem::NoReporter));
        }
        Ok(())
    }
}

/// An action on a ticket: the officers' lifecycle actions and the citizen's follow-ups. Who
/// may take which is the state machine's decision (`TicketState::apply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Verify.
    Verify,
    /// Dispatch to an agency.
    Dispatch {
        /// The agency.
        agency: AgencyCode,
    },
    /// Postpone (*tunda*).
    Postpone {
        /// Why.
        note: String,
    },
    /// Archive.
    Archive {
        /// Why.
        reason: ArchiveReason,
    },
    /// Not our authority (*bukan wewenang*).
    NotOurAuthority {
        /// Why.
        note: String,
    },
    /// Start work.
    Start,
    /// Respond publicly.
    Respond {
        /// The response.
        message: String,
    },
    /// Mark resolved.
    Resolve {
        /// Closing remarks.
        message: String,
    },
    /// Citizen reply.
    Reply {
        /// The reply.
        message: String,
    },
    /// Citizen rating.
    Rate {
        /// 1 to 5.
        rating: u8,
    },
    /// Citizen reopen.
    Reopen {
        /// Why.
        message: String,
    },
}

impl Action {
    /// The checks on the action's own values, before the state machine judges it: texts
    /// within the limit, a rating from 1 to 5.
    pub(super) fn check(&self, limits: &LimitSettings) -> Result<(), TicketError> {
        let max = limits.text_max_chars;
        match self {
            Self::Postpone { note } | Self::NotOurAuthority { note } => {
                check_text("note", note, max, true)
            }
            Self::Respond { message }
            | Self::Resolve { message }
            | Self::Reply { message }
            | Self::Reopen { message } => check_text("message", message, max, true),
            Self::Rate { rating } if !(1..=5).contains(rating) => {
                Err(invalid("rating", Problem::OutOfRange { min: 1, max: 5 }))
            }
            _ => Ok(()),
        }
    }
}

/// An officer's inbox query: filters, a cursor and a page size, as given (checked by
/// [`super::Tickets::inbox`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxQuery {
    /// Status.
    pub status: Option<String>,
    /// Agency code.
    pub agency: Option<String>,
    /// Only tickets with a breached deadline.
    pub overdue: Option<bool>,
    /// Report kind.
    pub kind: Option<String>,
    /// Region code (province codes match their regencies too).
    pub region: Option<String>,
    /// Text search in title and body.
    pub text: Option<String>,
    /// The cursor a previous page returned.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 50).
    pub limit: Option<u32>,
}

/// SHA-256 (hex) of a follow-up token, as stored.
#[must_use]
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    crate::crypto::to_hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Checks a free-text field: not blank, at most `max` characters, and no control characters
/// (NUL, ESC, BEL, … and the C1 range) — they corrupt terminals, logs and SMS, and no citizen
/// types them. Multi-line fields (report bodies, messages, notes) keep line breaks and tabs.
fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    multiline: bool,
) -> Result<(), TicketError> {
    check_controls(field, text, multiline)?;
    if text.trim().is_empty() {
        return Err(invalid(field, Problem::Empty));
    }
    let len = text.chars().count();
    if len > max {
        return Err(invalid(field, Problem::TooLong { len, max }));
    }
    Ok(())
}

/// Refuses control characters in `text`; `multiline` allows `\n`, `\r` and `\t`.
fn check_controls(field: &'static str, text: &str, multiline: bool) -> Result<(), TicketError> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !allowed(*c))
    {
        None => Ok(()),
        Some((at, c)) => Err(invalid(
            field,
            Problem::Control {
                code: u32::from(c),
                at: at + 1,
                multiline,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(r: Result<(), TicketError>) -> (&'static str, Problem) {
        match r {
            Err(TicketError::Invalid { field, problem }) => (field, problem),
            other => panic!("expected a refused field, got {other:?}"),
        }
    }

    #[test]
    fn text_is_checked_for_controls_then_blankness_then_length() {
        assert_eq!(
            problem(check_text("title", "a\tb", 10, false)),
            (
                "title",
                Problem::Control {
                    code: 9,
                    at: 2,
                    multiline: false
                }
            )
        );
        assert!(check_text("body", "a\tb\r\nc", 10, true).is_ok());
        assert_eq!(
            problem(check_text("body", "\u{1b}", 10, true)).1,
            Problem::Control {
                code: 0x1b,
                at: 1,
                multiline: true
            }
        );
        assert_eq!(
            problem(check_text("body", " \n", 10, true)).1,
            Problem::Empty
        );
        assert_eq!(
            problem(check_text("body", "ééé", 2, true)).1,
            Problem::TooLong { len: 3, max: 2 }
        );
    }

    #[test]
    fn a_rating_outside_one_to_five_is_refused_before_the_state_machine() {
        let limits = LimitSettings::default();
        for rating in [0, 6] {
            assert_eq!(
                problem(Action::Rate { rating }.check(&limits)),
                ("rating", Problem::OutOfRange { min: 1, max: 5 })
            );
        }
        assert!(Action::Rate { rating: 5 }.check(&limits).is_ok());
    }
}
